"""Binary spiking models: an MLP and a small VGG-style conv net, in two profiles (and, in
:mod:`sw.resnet`, the paper's spiking ResNet-18, registered here as ``"resnet18"``).

``hardware``
    Every synapse is binary; the first layer takes the dataset's integer values (pixels times a
    fixed input scale ``2**-bits``, or spikes), the readout is the sum over time of the last
    block's output. Deployable (MLP, and VGG with the artifact's conv geometry: 3x3 pad-1
    convs, 2x2 spike pools).
``paper``
    Full-precision first and last synapse, binary in between, as in Liang et al. (AAAI 2025);
    for the sign-flip study, not deployable.

Every block is synapse -> BatchNorm -> (AGMM gate) and every block but the last feeds a LIF
neuron. ``forward`` takes the dataset's layout (``[B, C, H, W]`` values, or ``[B, T, C, H, W]``
spikes) and returns the logits ``[B, classes] = Σ_t (readout block output)[t]``.

The registry :data:`MODELS` maps a model name to its class; :data:`PRESETS` names tuned
configurations of a model (``conv``, ``conv-events``: a VGG with its channels, dataset and epochs
chosen), which ``bitspike train --model NAME`` selects like a model (docs/training.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import nn

from sw.checks import is_real
from sw.resnet import SpikingResNet18
from sw.spiking_net import PROFILES, SpikingNet

#: the base class under its earlier name
_SpikingNet = SpikingNet

__all__ = ["PROFILES", "MODELS", "PRESETS", "Preset", "SpikingMLP", "SpikingVGG", "build_model",
           "parse_sizes", "preset_defaults"]


def parse_sizes(text, name: str) -> tuple:
    """``"128,128"`` -> ``(128, 128)``; for VGG channels ``"16,M,32"`` keeps ``"M"``."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    elif isinstance(text, str):
        items = [p.strip() for p in text.split(",") if p.strip()]
    else:
        raise TypeError(f"{name} must be a comma-separated string or a list, not {text!r}")
    out = []
    for item in items:
        if item in ("M", "m"):
            out.append("M")
            continue
        try:
            value = int(item)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold positive ints (or 'M' for pooling), "
                             f"not {text!r}") from None
        if value < 1:
            raise ValueError(f"{name} must hold positive ints, not {text!r}")
        out.append(value)
    return tuple(out)


class SpikingMLP(SpikingNet):
    """Dense BSNN ``N - hidden... - classes``; layers named ``fc1, fc2, ..., out``.

    Parameters
    ----------
    info : sw.data.DatasetInfo
    hidden : tuple of int
        Hidden layer sizes (default ``(128,)``).
    time_steps, profile, lif, agmm, weight_scale, bn_eps
        See :func:`build_model`.
    """

    kind = "mlp"

    def __init__(self, info, *, hidden=(128,), **options):
        super().__init__(info, **options)
        hidden = parse_sizes(hidden, "hidden")
        if "M" in hidden:
            raise ValueError(f"hidden must hold positive ints, not {hidden!r}")
        sizes = [info.features, *hidden, info.classes]
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            self._add("out" if last else f"fc{i + 1}", "linear", sizes[i], sizes[i + 1],
                      first=i == 0, last=last)
        self.hidden = hidden

    def prepare(self, x):
        x = super().prepare(x)
        return x.flatten(1) if self.static_input else x.flatten(2)


class SpikingVGG(SpikingNet):
    """Conv BSNN: 3x3 conv blocks (``"M"`` = 2x2 max-pool over spikes) then a dense readout;
    layers named ``conv1, conv2, ..., out``. Trains in both profiles; the hardware profile is
    deployable (a ConvLayer per block, a PoolLayer per ``"M"``, sw.export)."""

    kind = "vgg"

    def __init__(self, info, *, channels=(16, "M", 32, "M"), **options):
        super().__init__(info, **options)
        channels = parse_sizes(channels, "channels")
        if not any(c != "M" for c in channels):
            raise ValueError(f"channels needs at least one conv layer, not {channels!r}")
        c_in, h, w = info.shape
        self.pool_after: list[bool] = []
        n_conv = 0
        for i, c in enumerate(channels):
            if c == "M":
                if not self.pool_after:
                    raise ValueError(f"channels must start with a conv layer, not {channels!r}")
                if self.pool_after[-1]:
                    raise ValueError(f"channels {channels!r} has two 'M' in a row; one 'M' is "
                                     f"one 2x2 pool (pool once, or use fewer pixels)")
                self.pool_after[-1] = True
                h, w = h // 2, w // 2
                if h < 1 or w < 1:
                    raise ValueError(f"channels {channels!r} pools {info.shape} below 1x1")
                continue
            n_conv += 1
            self._add(f"conv{n_conv}", "conv", c_in, c, first=i == 0, last=False)
            self.pool_after.append(False)
            c_in = c
        self.channels = channels
        self._add("out", "linear", c_in * h * w, info.classes, first=False, last=True)
        self.pool = nn.MaxPool2d(2)

    def _between(self, k, spikes):
        if self.pool_after[k]:
            t_steps, batch = spikes.shape[:2]
            spikes = self.pool(spikes.flatten(0, 1))
            spikes = spikes.view(t_steps, batch, *spikes.shape[1:])
        return spikes

    def _reshape_in(self, k, h, static):
        if k == len(self.blocks) - 1:
            return h.flatten(2)
        return h


#: model name -> class
MODELS: dict[str, type[nn.Module]] = {"mlp": SpikingMLP, "vgg": SpikingVGG,
                                      "resnet18": SpikingResNet18}


@dataclass(frozen=True)
class Preset:
    """A named configuration of a registered model: its class is ``MODELS[model]``, and
    ``defaults`` are the training options (:class:`sw.train.TrainConfig` fields: ``dataset``,
    ``channels``, ``epochs``) it uses unless the run says otherwise (explicit options win)."""

    model: str
    defaults: dict = field(default_factory=dict)
    summary: str = ""


#: The model presets, the one table of their defaults (docs/training.md, "Presets", has the
#: measurements). ``conv``: digits 8x8, multi-bit input; 32,64,M, 80 epochs (+ the 10 gate-free
#: fine-tune epochs): float and integer 99.56 % for seed 0; ~29 kbit of weights (fits the
#: iCE40UP5K's block RAM). ``conv-events``: 2-channel event input (digits-events 8x8; N-MNIST
#: 34x34, best with --downsample 2); the same channels: integer 97.11 % mean of seeds 0-2 on
#: digits-events (dense default 95.11 %), where 16,M,32,M pools the 8x8 maps to 2x2 and loses
#: ~4 points.
PRESETS: dict[str, Preset] = {
    "conv": Preset("vgg", {"dataset": "digits", "channels": (32, 64, "M"), "epochs": 80},
                   "VGG for digits 8x8 multi-bit input"),
    "conv-events": Preset("vgg", {"dataset": "digits-events", "channels": (32, 64, "M"),
                                  "epochs": 80},
                          "VGG for 2-channel event input (digits-events, N-MNIST)"),
}
MODELS.update({name: MODELS[p.model] for name, p in PRESETS.items()})


def preset_defaults(name: str) -> dict:
    """The training-option defaults of model ``name``: its preset's (:data:`PRESETS`), or {}
    for a plain model."""
    p = PRESETS.get(name)
    return dict(p.defaults) if p is not None else {}


def build_model(name: str, info, *, time_steps: int = 4, profile: str = "hardware",
                hidden=(128,), channels=None, threshold: float = 1.0,
                leak_shift: int | None = 2, reset: str = "hard", surrogate: str = "triangle",
                surrogate_alpha: float | None = None, detach_reset: bool = False,
                agmm: dict | None = None, weight_scale: str | None = None,
                bn_eps: float = 1e-5, width: int = 64) -> nn.Module:
    """Build a registered model for a dataset.

    Parameters
    ----------
    name : a key of :data:`MODELS` ("mlp", "vgg", "resnet18", or a preset of :data:`PRESETS`)
    info : sw.data.DatasetInfo
    time_steps : int
    profile : {"hardware", "paper"}
    hidden, channels
        MLP hidden sizes; VGG channel list (None: the preset's, else ``16,M,32,M``).
    threshold, leak_shift, reset, surrogate, surrogate_alpha, detach_reset
        LIF options (:class:`sw.nn.LIF`).
    agmm : dict or None
        Keyword options of :class:`sw.nn.AGMMGate` (stat, moment, alpha, alpha_init), or None
        for no gate.
    weight_scale : {None, "mean", "learned"}
    bn_eps : float
    width : int
        ResNet-18 first-stage channels (:class:`sw.resnet.SpikingResNet18`; others ignore it).
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {name!r}")
    if channels is None:
        channels = preset_defaults(name).get("channels", (16, "M", 32, "M"))
    name = PRESETS[name].model if name in PRESETS else name
    if not is_real(bn_eps) or not bn_eps >= 0 or not math.isfinite(bn_eps):
        raise ValueError(f"bn_eps must be a finite number >= 0, not {bn_eps!r}")
    lif = dict(threshold=threshold, leak_shift=leak_shift, reset=reset, surrogate=surrogate,
               surrogate_alpha=surrogate_alpha, detach_reset=detach_reset)
    common = dict(time_steps=time_steps, profile=profile, lif=lif, agmm=agmm,
                  weight_scale=weight_scale, bn_eps=bn_eps)
    if name == "mlp":
        return SpikingMLP(info, hidden=hidden, **common)
    if name == "resnet18":
        return SpikingResNet18(info, width=width, **common)
    return SpikingVGG(info, channels=channels, **common)
