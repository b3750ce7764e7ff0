"""Fold a trained checkpoint into the integer deployment artifact (docs/arithmetic.md §7-§8).

    from sw.export import export
    artifact, report = export("runs/digits/checkpoint.pt", "artifacts/digits")
    report.float_accuracy, report.integer_accuracy

Per binary layer the float model computes the BatchNorm'd current ``y_j = a_j·x_j + b_j`` of the
integer synaptic sum ``x_j`` (``a_j`` = input scale x weight scale x BatchNorm scale), times the
AGMM gate's constant factor ``g[t]`` when one stays at inference. The exporter

* negates the weight row of a neuron whose ``a_j`` is negative and marks ``a_j = 0`` neurons
  ``connected = 0``;
* turns a gate into integer step gains ``G[t] = round_half_up(g[t]/g_min·2^Qg)``;
* divides the membrane by ``|a_j|·g_min·2^-Qg·2^-F``: ``B_j = round_half_up(b_j/|a_j|·2^F)``,
  ``Θ_j = threshold_to_int(θ·2^(F+Qg)/(|a_j|·g_min))``;
* gives the readout ``A_j = round_half_up(|a_j|/a_max·2^Q)`` and
  ``C_j = round_half_up(Σ_t g[t]·b_j/(a_max·g_min)·2^(Q+Qg))``;
* picks F (the same in every layer) as the smallest value whose integer model, on the training
  split, reproduces at least ``spike_agreement`` of the float model's hidden spikes and
  ``agreement`` of its predictions, and every width exactly at the proven bounds (the rules
  ``sw.fixedpoint.lif_width`` / ``readout_width``, which ``LIFLayer.required_width`` /
  ``ReadoutLayer.required_score_width`` ask too).

A conv model (``SpikingVGG``) folds the same way, per output channel: each BinaryConv2d +
BatchNorm2d block becomes a :class:`~sw.artifact.ConvLayer` (weight rows in the window order of
:mod:`sw.geometry`, bounds with N = K·K·C_in), each ``"M"`` a 2x2 :class:`~sw.artifact.PoolLayer`,
and the dense layer after the last conv/pool takes its weight columns permuted from PyTorch's
CHW flatten to the artifact's element order (:func:`torch_flatten_to_element_order`).

It refuses, with a message saying what to train instead, a model that the artifact cannot hold:
a conv kernel, stride or padding outside the artifact's rules, a full-precision layer (``paper``
profile) or a data-dependent gate.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sw import fixedpoint as fx
from sw import geometry
from sw.artifact import (
    Artifact,
    ConvLayer,
    InputSpec,
    LIFLayer,
    PoolLayer,
    ReadoutLayer,
    artifact_lock,
    write_artifact,
)
from sw.checks import check_int, is_int, is_real
from sw.digest import Sha256
from sw.fixedpoint import FixedPoint

__all__ = ["ExportError", "ExportReport", "FoldedLayer", "FoldedPool", "export", "fold_model",
           "build_artifact", "check_deployable", "float_spikes", "model_inputs", "unfinished",
           "element_order_permutation", "torch_flatten_to_element_order"]


class ExportError(ValueError):
    """The checkpoint holds a model the deployment artifact cannot express, or folding failed."""


@dataclass
class FoldedLayer:
    """One binary block in float form, ready to be quantised.

    ``a``/``b``: per-neuron (conv: per-output-channel) scale and shift of ``y = a·x + b`` (x the
    integer synaptic sum); ``gain``: the gate's per-time-step factor (ones without a gate);
    ``bits``: weight bits as trained (1 = +1), before any sign flip, one row per neuron (conv:
    per output channel, in the window order of :func:`sw.geometry.conv_weight_rows`), columns in
    the artifact's input order. ``in_shape`` is None for a dense layer; for a conv layer it is
    the input map ``(C, H, W)`` and ``kernel``, ``stride``, ``padding`` its geometry.
    """

    name: str
    bits: np.ndarray
    a: np.ndarray
    b: np.ndarray
    gain: np.ndarray
    gated: bool
    threshold: float | None = None
    leak_shift: int | None = None
    reset: str | None = None
    in_shape: tuple | None = None
    kernel: int | None = None
    stride: int | None = None
    padding: int | None = None


@dataclass
class FoldedPool:
    """A spike pool (``"M"`` of a VGG model): OR over non-overlapping k×k windows of the map
    ``in_shape`` of the conv/pool layer before it. No parameters to fold."""

    name: str
    in_shape: tuple
    kernel: int = 2


@dataclass
class ExportReport:
    """What :func:`export` measured.

    ``checkpoint_sha256`` is the checkpoint file's :class:`~sw.digest.Sha256`; the artifact's
    metadata records its written form ``"sha256:<hex>"``.
    """

    checkpoint: str
    checkpoint_sha256: Sha256
    dataset: str
    test_samples: int
    float_accuracy: float
    integer_accuracy: float
    prediction_agreement: float
    spike_agreement: float
    frac_bits: int
    frac_search: list = field(default_factory=list)
    widths: dict = field(default_factory=dict)
    step_gain: dict = field(default_factory=dict)
    output: str | None = None

    def table(self) -> str:
        rows = [
            ("checkpoint", self.checkpoint),
            ("dataset", f"{self.dataset} test split ({self.test_samples} samples)"),
            ("float model", f"{100 * self.float_accuracy:.2f} %"),
            ("integer model", f"{100 * self.integer_accuracy:.2f} %"),
            ("agreement", f"predictions {100 * self.prediction_agreement:.2f} %, hidden spikes "
                          f"{100 * self.spike_agreement:.3f} %"),
            ("frac bits F", str(self.frac_bits)),
            ("widths", ", ".join(f"{k} {v}" for k, v in self.widths.items())),
            ("step gains", ", ".join(f"{k} {list(v)}" for k, v in self.step_gain.items())
             or "-"),
        ]
        if self.output:
            rows.insert(0, ("artifact", self.output))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


# ----------------------------------------------------------------------------------------------
# checks and folding
# ----------------------------------------------------------------------------------------------

def check_deployable(model) -> None:
    """Raise :class:`ExportError` unless every layer is a binary dense layer or a binary conv
    the artifact can hold (:func:`_conv_problem`) and every gate that stays is a per-time-step
    constant."""
    problems = getattr(model, "deploy_problems", None)
    if problems is not None and problems():
        raise ExportError(f"{type(model).__name__} is a training-only model; the deployment "
                          f"artifact (binary layers between integer LIF neurons) cannot hold "
                          f"its " + "; ".join(problems()))
    from sw.nn import BinaryConv2d, BinaryLinear

    for name, block in zip(model.layer_names, model.blocks, strict=True):
        syn = block.synapse
        if isinstance(syn, BinaryConv2d):
            problem = _conv_problem(syn)
            if problem:
                raise ExportError(f"layer {name!r} has {problem} — train --model vgg, conv "
                                  f"or conv-events (3x3 convs, stride 1, padding 1) to deploy")
        elif not isinstance(syn, BinaryLinear):
            raise ExportError(
                f"layer {name!r} is a full-precision {type(syn).__name__} (profile "
                f"{model.profile!r}); the deployment artifact holds binary layers only — "
                f"train --profile hardware to deploy")
        if block.gate is not None and block.gate.data_dependent:
            raise ExportError(
                f"layer {name!r} has a data-dependent AGMM gate (stat {block.gate.stat!r}: its "
                f"factor changes per sample), which no fixed integer model computes — train "
                f"with --agmm-stat batch, or remove the gate with --agmm-deploy finetune "
                f"--finetune-epochs N, to deploy")
        if block.gate is not None:
            gain = block.gate.inference_gain()
            if not bool(torch.all(gain > 0)):
                raise ExportError(f"layer {name!r}: the AGMM gate's inference factor "
                                  f"{gain.tolist()} is not positive at every time step; the "
                                  f"integer step gains G[t] must be >= 1")


def _conv_problem(syn) -> str | None:
    """What of a BinaryConv2d's geometry the artifact cannot hold (``ConvLayer``'s rules:
    :data:`sw.geometry.KERNELS`, :data:`sw.geometry.STRIDES`, ``0 <= padding < kernel``), or
    None."""
    k, s, p = syn.kernel_size, syn.stride, syn.padding
    if k not in geometry.KERNELS:
        return (f"a {k}x{k} kernel; the deployment artifact holds kernels "
                f"{', '.join(map(str, geometry.KERNELS))} only")
    if s not in geometry.STRIDES:
        return f"stride {s}; the deployment artifact holds strides 1 and 2 only"
    if not (is_int(p) and 0 <= p < k):
        return (f"padding {p!r}; the deployment artifact holds zero padding 0 <= P < K = {k} "
                f"only")
    return None


def element_order_permutation(shape) -> np.ndarray:
    """``perm`` with ``hwc = chw_flat[perm]``: for each position ``i`` of the artifact's element
    order (:func:`sw.geometry.map_index`, ``(y·W + x)·C + c``) the index of the same element
    in PyTorch's ``flatten`` of a ``(C, H, W)`` map (``(c·H + y)·W + x``)."""
    c, h, w = (int(v) for v in shape)
    return np.ascontiguousarray(geometry.chw_to_hwc(np.arange(c * h * w).reshape(c, h, w))
                                .reshape(-1))


def torch_flatten_to_element_order(weights: np.ndarray, shape) -> np.ndarray:
    """The weight columns of a dense layer that reads a ``(C, H, W)`` map flattened by PyTorch
    (CHW order), reordered for the same map flattened in the artifact's element order (HWC):
    ``torch_flatten_to_element_order(w, shape) @ hwc_flat == w @ chw_flat``."""
    w = np.asarray(weights)
    perm = element_order_permutation(shape)
    if w.shape[-1] != len(perm):
        raise ValueError(f"weights have {w.shape[-1]} columns, a {tuple(shape)} map has "
                         f"{len(perm)} elements")
    return np.ascontiguousarray(w[..., perm])


def fold_model(model) -> list:
    """The float ``a``, ``b``, gate gains and LIF parameters of every block (eval mode), in the
    artifact's layer order: a :class:`FoldedLayer` per block, a :class:`FoldedPool` after each
    pooled conv block of a VGG model."""
    from sw.nn import BinaryConv2d

    check_deployable(model)
    layers = []
    t_steps = model.time_steps
    pool_after = getattr(model, "pool_after", ())
    shape = tuple(model.info.shape)  # the map a conv block reads (C, H, W)
    flattened = None  # the map shape a dense block reads flattened by PyTorch, if any
    pools = 0
    for k, (name, block) in enumerate(zip(model.layer_names, model.blocks, strict=True)):
        syn, bn = block.synapse, block.norm
        w = syn.weight.detach().double()
        conv = isinstance(syn, BinaryConv2d)
        if conv:
            bits = geometry.conv_weight_rows((w >= 0).numpy().astype(np.uint8))
            geo = dict(in_shape=shape, kernel=syn.kernel_size, stride=syn.stride,
                       padding=syn.padding)
            shape = (syn.out_channels,
                     *(geometry.conv_output_size(v, syn.kernel_size, syn.stride, syn.padding)
                       for v in shape[1:]))
        else:
            bits = (w >= 0).numpy().astype(np.uint8)
            if flattened is not None:
                bits = torch_flatten_to_element_order(bits, flattened)
                flattened = None
            geo = {}
        scale = torch.ones(w.shape[0], dtype=torch.float64)
        s = syn.channel_scale()
        if s is not None:
            scale = s.detach().double()
        inv = 1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
        gamma = bn.weight.detach().double() if bn.affine else torch.ones_like(inv)
        beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(inv)
        in_scale = model.input_scale if k == 0 else 1.0
        a = in_scale * scale * gamma * inv
        b = beta - gamma * inv * bn.running_mean.double()
        gated = block.gate is not None
        gain = (block.gate.inference_gain().double().numpy() if gated
                else np.ones(t_steps))
        folded = FoldedLayer(name=name, bits=bits, a=a.numpy(), b=b.numpy(), gain=gain,
                             gated=gated, **geo)
        if k < len(model.neurons):
            lif = model.neurons[k]
            folded.threshold = float(lif.threshold)
            folded.leak_shift = lif.leak_shift
            folded.reset = lif.reset_mode
        layers.append(folded)
        if conv and k < len(pool_after) and pool_after[k]:
            pools += 1
            layers.append(FoldedPool(f"pool{pools}", shape, 2))
            shape = (shape[0], *(geometry.pool_output_size(v, 2) for v in shape[1:]))
        if conv:
            flattened = shape
    return layers


def _gains(layer: FoldedLayer, gain_bits: int):
    g = np.asarray(layer.gain, dtype=np.float64)
    g_min = float(g.min())
    if not layer.gated or np.all(g == g[0]):
        return (1,) * len(g), g_min, 0
    q = gain_bits
    return tuple(int(v) for v in fx.round_half_up(g / g_min * 2.0 ** q)), g_min, q


def build_artifact(folded: list, *, input_spec: InputSpec, time_steps: int,
                   frac_bits: int, scale_bits: int = 8, gain_bits: int = 4,
                   metadata: dict | None = None) -> Artifact:
    """Quantise folded layers (:func:`fold_model`) into an :class:`Artifact` with
    F = ``frac_bits`` (§7-§8). A conv layer folds per output channel exactly as a dense layer
    per neuron; its bounds use N = K·K·C_in (the columns of its weight rows)."""
    for name, value, hi in (("frac_bits", frac_bits, 40), ("scale_bits", scale_bits, 30),
                            ("gain_bits", gain_bits, 16)):
        check_int(name, value)
        if not 0 <= value <= hi:
            raise ValueError(f"{name} must be an int in 0..{hi}, not {value!r}")
    f = frac_bits
    layers = []
    spec = input_spec
    for k, layer in enumerate(folded):
        last = k == len(folded) - 1
        if isinstance(layer, FoldedPool):
            layers.append(PoolLayer(name=layer.name, in_shape=layer.in_shape, kernel=layer.kernel,
                                    time_steps=time_steps))
            spec = InputSpec("spike")
            continue
        a = np.asarray(layer.a, dtype=np.float64)
        b = np.asarray(layer.b, dtype=np.float64)
        neg = a < 0
        bits = np.where(neg[:, None], 1 - layer.bits, layer.bits).astype(np.uint8)
        absa = np.abs(a)
        gain, g_min, qg = _gains(layer, gain_bits)
        m, n = bits.shape  # n: the inputs of one synaptic sum (conv: K·K·C_in)
        if last:
            a_max = float(absa.max()) if absa.size and absa.max() > 0 else 1.0
            scale = fx.round_half_up(absa / a_max * 2.0 ** scale_bits)
            offset = fx.round_half_up(float(np.sum(layer.gain)) * b / (a_max * g_min)
                                      * 2.0 ** (scale_bits + qg))
            width = fx.readout_width(fx.score_bound(
                fx.sum_bound(inputs=n, input_bits=spec.bits, step_gain=gain),
                scale=scale, offset=offset))
            # Wider than the integer model allows: the layer refuses it, with its own message.
            layers.append(ReadoutLayer(name=layer.name, inputs=n, neurons=m, input=spec,
                                       time_steps=time_steps, step_gain=gain, weights=bits,
                                       scale=scale, offset=offset,
                                       score=FixedPoint(min(width, fx.MAX_WIDTH))))
            break
        conn = absa > 0
        a_ref = float(absa.max()) if conn.any() else 1.0
        unit = np.where(conn, absa, a_ref)
        bias_f = b / unit * 2.0 ** f
        big = np.abs(bias_f) >= 2.0 ** (fx.MAX_WIDTH - 1)
        if big.any():
            j = int(np.argmax(big))
            raise ExportError(f"layer {layer.name!r}, neuron {j}: the folded bias {bias_f[j]:.3g} "
                              f"(b = {b[j]:.3g} over a nearly zero scale a = {a[j]:.3g}) does "
                              f"not fit {fx.MAX_WIDTH} bits")
        bias = fx.round_half_up(bias_f)
        # thresholds beyond every reachable value are clipped below (before the int cast)
        theta_f = np.minimum(layer.threshold / (unit * g_min) * 2.0 ** (f + qg),
                             2.0 ** (fx.MAX_WIDTH - 1))
        theta = fx.threshold_to_int(theta_f)
        connected = conn.astype(np.uint8)
        # A threshold above every reachable membrane value never fires: clip it to one above
        # the proven bound (docs/arithmetic.md §7), so an almost-zero scale does not inflate
        # the register width. The bound depends on the thresholds only through R, the soft
        # reset's growth below the lowest one, which the clip leaves as it is.
        try:
            imax = fx.current_bound(inputs=n, input_bits=spec.bits, frac=f, step_gain=gain,
                                    bias=bias, connected=connected)
            reach = fx.lif_membrane_bound(imax, threshold=theta, reset=layer.reset,
                                          time_steps=time_steps)
            # (a bound too wide for int64 is refused by the layer below; the clip stays in it)
            theta = np.minimum(theta, min(reach + 1, 1 << fx.MAX_WIDTH))
            width = fx.lif_width(reach, threshold=theta, bias=bias, frac=f,
                                 leak_shift=layer.leak_shift)
            # Wider than the integer model allows: the layer refuses it, with its own message.
            lif = dict(name=layer.name, input=spec, time_steps=time_steps,
                       membrane=FixedPoint(min(width, fx.MAX_WIDTH), f),
                       leak_shift=layer.leak_shift, reset=layer.reset, step_gain=gain,
                       weights=bits, bias=bias, threshold=theta, connected=connected)
            if layer.in_shape is None:
                layers.append(LIFLayer(inputs=n, neurons=m, **lif))
            else:
                layers.append(ConvLayer(in_shape=layer.in_shape, channels=m,
                                        kernel=layer.kernel, stride=layer.stride,
                                        padding=layer.padding, **lif))
        except ValueError as exc:
            raise ExportError(f"layer {layer.name!r} does not fit the integer model with "
                              f"F = {f}: {exc}") from None
        spec = InputSpec("spike")
    return Artifact(layers=tuple(layers), metadata=dict(metadata or {}))


# ----------------------------------------------------------------------------------------------
# float-side helpers
# ----------------------------------------------------------------------------------------------

def model_inputs(split, artifact: Artifact) -> np.ndarray:
    """A dataset split's inputs the way the integer model takes them: the artifact's layout
    (:meth:`~sw.artifact.Artifact.shape_inputs`: flattened for a dense network, the dataset's
    ``(B, C, H, W)`` / ``(B, T, C, H, W)`` for a conv one)."""
    return artifact.shape_inputs(split.x)


def _element_order(spikes: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...]`` spikes -> ``(B, T, M)`` uint8, a map ``[T, B, C, H, W]`` flattened in the
    artifact's element order (HWC, :mod:`sw.geometry`) as the golden model numbers it."""
    s = spikes.detach().transpose(0, 1)
    if s.dim() == 5:
        s = s.permute(0, 1, 3, 4, 2)
    return s.flatten(2).to(torch.uint8).cpu()


@torch.no_grad()
def float_spikes(model, x, *, batch_size: int = 1024) -> list:
    """Spikes ``(B, T, M)`` of the float model (eval mode), as uint8, one array per layer
    before the readout in the artifact's order and layout, as
    :attr:`sw.golden.GoldenResult.spikes` lists them: every LIF layer's spikes and, after a
    pooled conv layer, the pooled spikes; a map's spikes in element order (HWC)."""
    x = torch.as_tensor(x)
    pool_after = list(getattr(model, "pool_after", ()))
    pooled = [k < len(pool_after) and pool_after[k] for k in range(len(model.neurons))]
    # (layer index, pooled?) in the artifact's layer order
    order = [(k, p) for k in range(len(model.neurons)) for p in ((False, True) if pooled[k]
                                                                  else (False,))]
    outs = {key: [] for key in order}

    def hook(mod, inp, out, k):
        outs[k, False].append(_element_order(out))
        if pooled[k]:
            outs[k, True].append(_element_order(model._between(k, out)))

    hooks = [m.register_forward_hook(lambda mod, inp, out, k=k: hook(mod, inp, out, k))
             for k, m in enumerate(model.neurons)]
    was = model.training
    model.eval()
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return [torch.cat(outs[key]).numpy() if outs[key] else np.zeros((0,), np.uint8)
            for key in order]


@torch.no_grad()
def _float_predictions(model, x, batch_size=1024):
    x = torch.as_tensor(x)
    model.eval()
    out = [model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def _spike_agreement(float_s, int_s) -> float:
    total = sum(s.size for s in float_s)
    same = sum(int(np.sum(a == b)) for a, b in zip(float_s, int_s, strict=True))
    return same / total if total else 1.0


# ----------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------

def export(checkpoint, out=None, *, frac_bits: int | str = "auto", scale_bits: int = 8,
           gain_bits: int = 4, agreement: float = 0.998, spike_agreement: float = 0.999,
           max_frac_bits: int = 12,
           calibration_samples: int = 2000, root=None, overwrite: bool = False, data=None,
           log=None) -> tuple[Artifact, ExportReport]:
    """Export a training checkpoint (or run directory) to an artifact.

    Parameters
    ----------
    checkpoint : path
        ``checkpoint.pt`` or the run directory holding it.
    out : path or None
        Artifact directory to write (atomically); None: build and measure only.
    frac_bits : int or "auto"
        F of every membrane; "auto" searches 0..``max_frac_bits`` (see module docstring).
    scale_bits, gain_bits : int
        Q of the readout scales and Qg of the step gains.
    agreement, spike_agreement : float
        Agreement with the float model's predictions and hidden spikes (training split) that
        "auto" asks for.
    calibration_samples : int
        Training samples used by the "auto" search.
    root : path
        Dataset root (file-based datasets); default: the one the run trained with.
    overwrite : bool
        Replace an existing artifact.
    data : sw.data.Dataset, optional
        Already loaded dataset.
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    (Artifact, ExportReport)
    """
    from sw.data import Split
    from sw.golden import GoldenModel
    from sw.train.loop import build_from_checkpoint, load_checkpoint, load_data

    # a string other than "auto" is a wrong choice, so ValueError like a wrong number
    if frac_bits != "auto" and (not is_int(frac_bits) or not 0 <= frac_bits <= 40):
        raise ValueError(f"frac_bits must be 'auto' or an int in 0..40, not {frac_bits!r}")
    for name, v in (("agreement", agreement), ("spike_agreement", spike_agreement)):
        if not is_real(v):
            raise TypeError(f"{name} must be a number, not {v!r}")
        if not 0 < v <= 1:
            raise ValueError(f"{name} must be in (0, 1], not {v!r}")
    with contextlib.ExitStack() as held:
        if out is not None:
            # One writer per artifact path, decided before the work: a second exporter to
            # ``out`` fails here at once, not after its whole F search.
            held.enter_context(artifact_lock(out))
            if Path(out).exists() and not overwrite:
                raise FileExistsError(f"{out} exists; pass overwrite=True (--force) to replace "
                                      f"it")
        log = log or (lambda line: None)
        ckpt = load_checkpoint(checkpoint)
        model, config, info = build_from_checkpoint(ckpt)
        model = model.double()
        check_deployable(model)
        if data is None:
            cfg = config if root is None else config.replace(root=str(root))
            data = load_data(cfg)
        if data.info.input_kind != info.input_kind or data.info.shape != info.shape:
            raise ExportError(f"dataset {data.info.name!r} ({data.info.input_kind}, shape "
                              f"{data.info.shape}) is not the one the model trained on "
                              f"({info.input_kind}, shape {info.shape})")
        folded = fold_model(model)
        spec = (InputSpec("multibit", info.input_bits) if info.input_kind == "multibit"
                else InputSpec("spike"))

        def build(f, metadata=None):
            return build_artifact(folded, input_spec=spec, time_steps=config.time_steps,
                                  frac_bits=f, scale_bits=scale_bits, gain_bits=gain_bits,
                                  metadata=metadata)

        search = []
        if frac_bits == "auto":
            calib = Split(data.train.x[:calibration_samples], data.train.y[:calibration_samples])
            want = _float_predictions(model, calib.x)
            want_spikes = float_spikes(model, calib.x)
            best = None
            for f in range(0, max_frac_bits + 1):
                try:
                    art = build(f)
                except ExportError:
                    break
                res = GoldenModel(art).run(model_inputs(calib, art))
                agree = float(np.mean(res.predictions == want))
                spikes = _spike_agreement(want_spikes, res.spikes)
                widths = [layer.membrane.width for layer in art.weighted_layers[:-1]]
                search.append({"frac_bits": f, "agreement": agree, "spike_agreement": spikes,
                               "max_membrane_width": max(widths, default=0)})
                log(f"F={f}: on {len(want)} training samples, predictions {100 * agree:.2f} %, "
                    f"hidden spikes {100 * spikes:.3f} % as the float model; membrane width "
                    f"{max(widths, default=0)}")
                if best is None or (spikes, agree) > best[1:]:
                    best = (f, spikes, agree)
                if agree >= agreement and spikes >= spike_agreement:
                    best = (f, spikes, agree)
                    break
            if best is None:
                raise ExportError("no fractional-bit count gives a valid integer model")
            frac = best[0]
        else:
            frac = frac_bits

        test_x = data.test.x
        y = np.asarray(data.test.y)
        float_pred = _float_predictions(model, test_x)
        float_acc = float(np.mean(float_pred == y)) if len(y) else 0.0
        art = build(frac)
        result = GoldenModel(art).run(model_inputs(data.test, art))
        int_acc = float(np.mean(result.predictions == y)) if len(y) else 0.0
        agree = float(np.mean(result.predictions == float_pred)) if len(y) else 1.0
        spike_agree = _spike_agreement(float_spikes(model, test_x), result.spikes)

        digest = Sha256.of_file(ckpt["path"])
        metadata = {
            "dataset": config.dataset,
            "data_seed": config.data_seed,
            "data_root": str(root) if root is not None else config.root,
            "model": config.model,
            "profile": config.profile,
            "hidden": list(config.hidden),
            "time_steps": config.time_steps,
            "float_accuracy": round(float_acc, 6),
            "integer_accuracy": round(int_acc, 6),
            "prediction_agreement": round(agree, 6),
            "test_samples": int(len(y)),
            "agmm": ("off" if not config.agmm else
                     f"stat={config.agmm_stat} moment={config.agmm_moment} "
                     f"alpha={config.agmm_alpha} deploy={config.agmm_deploy}"),
            "gate_removed": bool(ckpt.get("gates_removed")),
            "input_scale": model.input_scale,
            "export": {"frac_bits": frac, "scale_bits": scale_bits, "gain_bits": gain_bits},
            "training": config.to_json(),
            "epochs_trained": int(ckpt["epoch"]),
            "checkpoint_sha256": str(digest),
        }
        if not art.is_dense:  # (a dense artifact's metadata stays as it was, byte for byte)
            metadata["channels"] = list(config.channels)
        art = Artifact(layers=art.layers, metadata=metadata)
        report = ExportReport(
            checkpoint=str(ckpt["path"]), checkpoint_sha256=digest, dataset=config.dataset,
            test_samples=int(len(y)), float_accuracy=float_acc, integer_accuracy=int_acc,
            prediction_agreement=agree, spike_agreement=spike_agree, frac_bits=frac,
            frac_search=search,
            widths={layer.name: (layer.score.width if isinstance(layer, ReadoutLayer)
                                 else layer.membrane.width) for layer in art.weighted_layers},
            step_gain={layer.name: layer.step_gain for layer in art.weighted_layers
                       if any(g != 1 for g in layer.step_gain)})
        if out is not None:
            write_artifact(art, out, overwrite=overwrite, locked=True)
            report.output = str(out)
        return art, report


def unfinished(ckpt) -> str | None:
    """What a checkpoint's run has not done yet that its config plans, or None when finished:
    epochs short of the plan, an AGMM gate the config removes by a fine-tune still in."""
    from sw.train.config import TrainConfig

    config = TrainConfig.from_json(ckpt["config"])
    done, plan = int(ckpt["epoch"]), config.total_epochs
    missing = []
    if done < plan:
        split = (f": {config.epochs} + {config.finetune_epochs} gate-free fine-tune"
                 if config.finetunes else "")
        missing.append(f"{done} of {plan} epochs trained{split}")
    if config.finetunes and not ckpt.get("gates_removed"):
        missing.append("the AGMM gate is not removed yet (the config removes it with the "
                       "fine-tune)")
    return "; ".join(missing) or None


class Export:
    """``bitspike export CHECKPOINT -o ARTIFACT``."""

    @staticmethod
    def configure(p):
        from sw.options import int_in

        p.add_argument("checkpoint", help="checkpoint.pt of a training run, or the run directory")
        p.add_argument("-o", "--out", required=True, help="artifact directory to write")
        p.add_argument("--frac-bits", default="auto",
                       help="membrane fractional bits F, 0..40, or 'auto' (default): the "
                            "smallest F whose integer model agrees with the float model (see "
                            "--agreement, --spike-agreement)")
        p.add_argument("--agreement", type=float, default=0.998,
                       help="prediction agreement on the training split that 'auto' asks for "
                            "(default 0.998)")
        p.add_argument("--spike-agreement", type=float, default=0.999,
                       help="hidden-spike agreement on the training split that 'auto' asks "
                            "for (default 0.999)")
        p.add_argument("--scale-bits", type=int_in(0, 30), default=8,
                       help="Q, bits of the readout's per-class scales A_j (default 8)")
        p.add_argument("--gain-bits", type=int_in(0, 16), default=4,
                       help="Qg, bits of the step gains G[t] of a kept AGMM gate (default 4)")
        p.add_argument("--root", default=None,
                       help="dataset root (file-based datasets; default: the run's)")
        p.add_argument("--force", action="store_true",
                       help="replace an existing artifact, and export an unfinished run "
                            "(with a warning)")

    @staticmethod
    def run(args):
        from sw import nir_checkpoint
        from sw.options import check_output_dir
        from sw.train.loop import CheckpointError, load_checkpoint

        frac = args.frac_bits
        if frac != "auto":
            try:
                frac = int(frac)
            except ValueError:
                frac = None
            if frac is None or not 0 <= frac <= 40:
                print(f"error: --frac-bits must be 'auto' or an int in 0..40, not "
                      f"{args.frac_bits!r}", file=sys.stderr)
                return 2
        # everything that can be refused at once is, before the checkpoint's data is loaded
        # and the F search runs
        check_output_dir(args.out)
        if Path(args.out).exists() and not args.force:
            print(f"error: {args.out} exists; pass --force to replace it", file=sys.stderr)
            return 2
        try:
            ckpt = load_checkpoint(args.checkpoint, nir=True)
            if ckpt["format"] == nir_checkpoint.FORMAT:
                return _export_nir_checkpoint(ckpt, args)
            missing = unfinished(ckpt)
        except (CheckpointError, ValueError, TypeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if missing and not args.force:
            print(f"error: {ckpt['path']} is an unfinished run ({missing}); resume it with "
                  f"bitspike train -o RUN --resume, or pass --force to export it anyway",
                  file=sys.stderr)
            return 2
        if missing:
            print(f"WARNING: exporting an unfinished run ({missing}): the artifact is not the "
                  f"network its config describes", file=sys.stderr)
        try:
            _, report = export(args.checkpoint, args.out, frac_bits=frac,
                               scale_bits=args.scale_bits, gain_bits=args.gain_bits,
                               agreement=args.agreement, spike_agreement=args.spike_agreement,
                               root=args.root, overwrite=args.force,
                               log=lambda line: print(line, flush=True))
        except (ExportError, CheckpointError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(report.table())
        return 0


#: the options of ``bitspike export`` that fold a training run, with their defaults: a NIR
#: import checkpoint's mapping sets F, the scales and the gains itself (docs/nir.md)
_TRAINING_OPTIONS = {"frac_bits": "auto", "agreement": 0.998, "spike_agreement": 0.999,
                     "scale_bits": 8, "gain_bits": 4, "root": None}


def _export_nir_checkpoint(ckpt, args) -> int:
    """``bitspike export`` of the checkpoint ``bitspike nir import`` wrote: its graph folded by
    the mapping (:func:`sw.nir_checkpoint.fold`), the same artifact ``nir import --export``
    writes."""
    from sw.artifact import write_artifact
    from sw.nir_checkpoint import fold

    for name, default in _TRAINING_OPTIONS.items():
        if getattr(args, name) != default:
            option = "--" + name.replace("_", "-")
            print(f"error: {option}: {ckpt['path']} is a NIR import checkpoint, whose "
                  f"mapping sets F, the scales and the gains itself (docs/nir.md); drop "
                  f"{option}", file=sys.stderr)
            return 2
    artifact, report = fold(ckpt)
    write_artifact(artifact, args.out, overwrite=args.force)
    print(f"wrote {args.out}: {artifact.summary()} from the NIR import checkpoint "
          f"{ckpt['path']} (graph {ckpt['source']['path']})")
    print("\n".join(report.lines()))
    return 0
