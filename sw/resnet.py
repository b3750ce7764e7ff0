"""A Bi-Real-style spiking ResNet-18, the network of the AGMM paper (training only).

Liang et al., AAAI 2025 (AGMM) train a spiking version of Bi-Real Net (Liu et al., "Bi-Real
Net: Enhancing the Performance of 1-bit CNNs with Improved Representational Capability and
Advanced Training Algorithm", ECCV 2018). Bi-Real gives *every* binary 3x3 convolution + BN its
own real-valued identity shortcut, ``x[l+1] = BN(BinConv(sign(x[l]))) + x[l]``, and replaces the
shortcut of a downsampling convolution by 2x2 average pooling + a full-precision 1x1 conv + BN.
The spiking version used here replaces ``sign`` by a LIF neuron; see :class:`SpikingResNet18`.

The model cannot be deployed: the artifact holds binary layers between integer LIF neurons, and
this network has a full-precision stem conv and FC, real-valued shortcut additions and average
pooling (:meth:`SpikingResNet18.deploy_problems`, which ``bitspike export`` reports).
"""

from __future__ import annotations

import torch
from torch import nn

from sw.checks import check_int
from sw.nn import LIF, BinaryConv2d, SynapseBlock
from sw.spiking_net import SpikingNet

__all__ = ["SpikingResNet18", "IMAGENET_STEM_MIN_SIZE"]

#: inputs at least this many pixels high and wide get the ImageNet stem (7x7 stride-2 conv +
#: 3x3 stride-2 max-pool); smaller ones (CIFAR's 32x32) a 3x3 stride-1 conv
IMAGENET_STEM_MIN_SIZE = 64

_REDUCED = (torch.float16, torch.bfloat16)


def _fp32(x: torch.Tensor) -> torch.Tensor:
    """Autocast's reduced-precision outputs back to float32 (float32/float64 untouched)."""
    return x.float() if x.dtype in _REDUCED else x


def _frames(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a per-frame module to ``[T, B, C, H, W]``."""
    t_steps, batch = x.shape[:2]
    y = module(x.flatten(0, 1))
    return y.view(t_steps, batch, *y.shape[1:])


class SpikingResNet18(SpikingNet):
    """Bi-Real-style spiking ResNet-18 (Liang et al., AAAI 2025; Liu et al., ECCV 2018).

    Formulation (all tensors ``[T, B, C, H, W]``; the shortcut stream ``x`` is real-valued)::

        x[0]   = BN(Conv_fp(input))                 full-precision stem (+ max-pool, ImageNet)
        s[l]   = LIF_l(x[l])                        spikes of unit l's input stream
        x[l+1] = Gate_l(BN_l(BinConv_l(s[l])))      binary 3x3 conv + BN + AGMM gate ...
                 + shortcut_l(x[l])                 ... plus the real-valued Bi-Real shortcut
        logits = Σ_t FC(mean_{h,w} LIF_16(x[16]))   global average pool of the last spikes

    for the 16 binary convolutions l = 0..15 (4 stages of 2 basic blocks of 2 convs; stage
    widths ``width``·(1, 2, 4, 8)). The shortcut carries the LIF's real-valued *input* (its
    membrane input current), exactly where Bi-Real carries the real activation before ``sign``:
    it is the identity, or for the first conv of stages 2-4 (stride 2, channels doubled) a 2x2
    average pool + full-precision 1x1 conv + BN. Every LIF restarts from ``u = 0`` per sample
    and runs over the T axis, as in the other models. The stem is a 3x3 stride-1 conv for inputs
    smaller than :data:`IMAGENET_STEM_MIN_SIZE` px (CIFAR), else ResNet's 7x7 stride-2 conv
    followed by a 3x3 stride-2 max-pool (on the real-valued stream). The stem conv and the FC
    (with bias, no BN) are full precision whatever ``profile`` says (the paper's setting), and
    only the binary convs carry an AGMM gate.

    Layers (``layer_names``, aligned with ``blocks``): ``stem``, ``layer1.0.conv1``, ...,
    ``layer4.1.conv2``, ``fc``; ``neurons[k]`` spikes on the stream after block k and carries its
    name in the firing-rate log. ``shortcuts[l]`` is the shortcut of binary conv l. The trainer's
    interface (``prepare``, ``binary_synapses()``, ``gates``, ``remove_gates()``, the options)
    is inherited from :class:`sw.spiking_net.SpikingNet`, as the other models do.

    Under autocast (``bitspike train --amp``) the convolutions run in reduced precision, but
    every block output and shortcut is brought back to float32 before the gate, the addition
    and the LIF, so spikes and membrane state stay float32.

    Parameters
    ----------
    info : sw.data.DatasetInfo
    width : int
        Channels of the first stage (64 in ResNet-18).
    time_steps, profile, lif, agmm, weight_scale, bn_eps
        See :func:`sw.models.build_model` (``profile`` is checked but changes nothing here).
    """

    kind = "resnet"

    def __init__(self, info, *, time_steps: int, profile: str, lif: dict, agmm: dict | None,
                 weight_scale: str | None, bn_eps: float, width: int = 64):
        check_int("width", width, 1, 4096)
        super().__init__(info, time_steps=time_steps, profile=profile, lif=lif, agmm=agmm,
                         weight_scale=weight_scale, bn_eps=bn_eps)
        self.width = width
        c_in, h, w = info.shape
        t_steps = self.time_steps
        self.imagenet_stem = min(h, w) >= IMAGENET_STEM_MIN_SIZE
        if self.imagenet_stem:
            stem = nn.Conv2d(c_in, width, 7, stride=2, padding=3, bias=False)
            self.stem_pool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            stem = nn.Conv2d(c_in, width, 3, padding=1, bias=False)
            self.stem_pool = None
        self._append("stem", SynapseBlock(stem, self._norm(width), None, t_steps))
        self.shortcuts = nn.ModuleList()
        c = width
        for stage in range(4):
            c_out = width * 2 ** stage
            for block in range(2):
                for conv in (1, 2):
                    stride = 2 if stage > 0 and block == 0 and conv == 1 else 1
                    syn = BinaryConv2d(c, c_out, 3, stride=stride, padding=1,
                                       scale=self.weight_scale)
                    self._append(f"layer{stage + 1}.{block}.conv{conv}",
                                 SynapseBlock(syn, self._norm(c_out), self._gate(), t_steps))
                    self.shortcuts.append(self._shortcut(c, c_out, stride))
                    c = c_out
        self.blocks.append(SynapseBlock(nn.Linear(c, info.classes), nn.Identity(), None,
                                        t_steps))
        self.layer_names.append("fc")

    def _norm(self, channels):
        return nn.BatchNorm2d(channels, eps=self.bn_eps)

    def _append(self, name, block):
        self.blocks.append(block)
        self.neurons.append(LIF(**self.lif_options))
        self.layer_names.append(name)

    def _shortcut(self, c_in, c_out, stride):
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        layers = []
        if stride > 1:
            # ceil_mode matches the stride-2 conv's output size ceil(H/2) for odd H too
            layers.append(nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False))
        layers += [nn.Conv2d(c_in, c_out, 1, bias=False), self._norm(c_out)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.prepare(x)
        stream = _fp32(self.blocks[0](h, static=self.static_input))
        if self.stem_pool is not None:
            stream = _frames(self.stem_pool, stream)
        for k, shortcut in enumerate(self.shortcuts, start=1):
            spikes = self.neurons[k - 1](stream)
            skip = stream if isinstance(shortcut, nn.Identity) else _frames(shortcut, stream)
            stream = _fp32(self.blocks[k](spikes)) + _fp32(skip)
        spikes = self.neurons[-1](stream)
        pooled = spikes.mean((-2, -1))  # [T, B, C]
        return _fp32(self.blocks[-1](pooled)).sum(0)

    def deploy_problems(self) -> list[str]:
        """Why ``bitspike export`` cannot fold this network into the integer artifact."""
        stem = self.blocks[0].synapse
        k = stem.kernel_size[0]
        return [
            f"full-precision stem conv 'stem' ({k}x{k} Conv2d"
            + (" + max-pool on real values)" if self.imagenet_stem else ")"),
            "full-precision last FC 'fc' (Linear with bias)",
            f"real-valued shortcuts ({len(self.shortcuts)} additions of the membrane input "
            f"around every binary conv, 3 of them through a full-precision 1x1 conv + BN)",
            "average pooling (global over space before the FC, 2x2 in the downsampling "
            "shortcuts)",
        ]

