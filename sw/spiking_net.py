"""The base of every spiking model: options, input handling, the trainer's interface.

It lives apart from :mod:`sw.models` (the registry, which imports every model) so that a model
in its own module (:mod:`sw.resnet`) can inherit it without an import cycle.
"""

from __future__ import annotations

import torch
from torch import nn

from sw.checks import check_int
from sw.nn import LIF, AGMMGate, BinaryConv2d, BinaryLinear, SynapseBlock

__all__ = ["PROFILES", "SpikingNet"]

PROFILES = ("hardware", "paper")


class SpikingNet(nn.Module):
    """Common part of the spiking models: options, input handling, blocks, neurons, gates and
    the trainer's interface (``prepare``, ``blocks``, ``neurons``, ``layer_names``,
    ``binary_synapses``, ``gates``, ``remove_gates``). Subclasses build the blocks and the
    forward pass: :class:`sw.models.SpikingMLP`, :class:`sw.models.SpikingVGG`,
    :class:`sw.resnet.SpikingResNet18`."""

    def __init__(self, info, *, time_steps: int, profile: str, lif: dict, agmm: dict | None,
                 weight_scale: str | None, bn_eps: float):
        super().__init__()
        check_int("time_steps", time_steps, 1, 1024)
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
        if info.input_kind == "spike" and info.time_steps is not None \
                and info.time_steps != time_steps:
            raise ValueError(f"time_steps = {time_steps} but dataset {info.name!r} gives "
                             f"{info.time_steps} frames per sample")
        self.info = info
        self.time_steps = time_steps
        self.profile = profile
        self.lif_options = dict(lif)
        self.agmm_options = None if agmm is None else dict(agmm)
        self.weight_scale = weight_scale
        self.bn_eps = bn_eps
        self.static_input = info.input_kind == "multibit"
        #: fixed scale of the first layer's input: pixels * 2**-bits (spikes: 1)
        self.input_scale = 2.0 ** -info.input_bits if self.static_input else 1.0
        self.blocks = nn.ModuleList()
        self.neurons = nn.ModuleList()
        self.layer_names: list[str] = []

    def _gate(self):
        if self.agmm_options is None:
            return None
        return AGMMGate(self.time_steps, **self.agmm_options)

    def _synapse(self, kind, n_in, n_out, binary):
        if kind == "linear":
            if binary:
                return BinaryLinear(n_in, n_out, scale=self.weight_scale)
            return nn.Linear(n_in, n_out, bias=False)
        if binary:
            return BinaryConv2d(n_in, n_out, 3, padding=1, scale=self.weight_scale)
        return nn.Conv2d(n_in, n_out, 3, padding=1, bias=False)

    def _add(self, name, kind, n_in, n_out, *, first, last):
        binary = self.profile == "hardware" or not (first or last)
        norm = (nn.BatchNorm1d(n_out, eps=self.bn_eps) if kind == "linear"
                else nn.BatchNorm2d(n_out, eps=self.bn_eps))
        self.blocks.append(SynapseBlock(self._synapse(kind, n_in, n_out, binary), norm,
                                        self._gate(), self.time_steps))
        if not last:
            self.neurons.append(LIF(**self.lif_options))
        self.layer_names.append(name)

    @property
    def gates(self) -> list:
        return [b.gate for b in self.blocks if b.gate is not None]

    def binary_synapses(self) -> dict:
        """``{layer name: synapse}`` of every binary synapse (the sign-flip study's subjects)."""
        return {name: b.synapse for name, b in zip(self.layer_names, self.blocks, strict=True)
                if isinstance(b.synapse, (BinaryLinear, BinaryConv2d))}

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Dataset layout -> the first block's input (scaled values ``[B, ...]`` or spikes
        ``[T, B, ...]``)."""
        x = torch.as_tensor(x).to(next(self.parameters()).dtype)
        if self.static_input:
            return x * self.input_scale
        if x.shape[1] != self.time_steps:
            raise ValueError(f"spike input must have layout [B, T={self.time_steps}, ...], "
                             f"not shape {tuple(x.shape)}")
        return x.transpose(0, 1)

    def _between(self, k, spikes):  # pragma: no cover - overridden
        return spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.prepare(x)
        static = self.static_input
        for k, block in enumerate(self.blocks):
            h = self._reshape_in(k, h, static)
            z = block(h, static=static)
            static = False
            if k < len(self.neurons):
                h = self._between(k, self.neurons[k](z))
            else:
                return z.sum(0)
        raise RuntimeError("a model needs at least one block")  # pragma: no cover

    def _reshape_in(self, k, h, static):
        return h

    def remove_gates(self, *, fold: bool = True) -> list:
        """Drop every AGMM gate (before a gate-free fine-tune).

        With ``fold`` the gate's mean inference factor (over time steps; the running mean of
        the factor for a data-dependent gate) is first multiplied into its BatchNorm's weight
        and bias, so the network starts the fine-tune close to where it was. Returns the folded
        factors (empty without ``fold``).
        """
        folded = []
        for block in self.blocks:
            if block.gate is None:
                continue
            if fold:
                gain = block.gate.inference_gain()
                g = float((gain if gain is not None else block.gate.running_gain).mean())
                with torch.no_grad():
                    block.norm.weight.mul_(g)
                    block.norm.bias.mul_(g)
                folded.append(g)
            block.gate = None
        self.agmm_options = None
        return folded
