"""A synapse block: synapse (binary or full-precision) -> BatchNorm -> optional AGMM gate.

Inputs are either *static* ``[B, ...]`` (direct encoding: the same value at every time step, so
the synaptic current is computed once per sample and broadcast over T) or a sequence
``[T, B, ...]`` (BatchNorm then treats the T·B frames as one batch). The output is always
``[T, B, ...]``. Under autocast (``bitspike train --amp``) the synapse and BatchNorm may compute
in bf16/fp16; the block's output is cast back to float32 before the gate, so the gate and the
LIF neuron after it run in float32 (float32 and float64 inputs are left as they are).
"""

from __future__ import annotations

import torch
from torch import nn

from sw.nn.agmm import AGMMGate

__all__ = ["SynapseBlock"]


class SynapseBlock(nn.Module):
    """Parameters
    ----------
    synapse : nn.Module
        ``BinaryLinear``/``BinaryConv2d`` or a full-precision ``nn.Linear``/``nn.Conv2d``.
    norm : nn.Module
        ``nn.BatchNorm1d`` (after a linear synapse) or ``nn.BatchNorm2d`` (after a conv).
    gate : AGMMGate or None
    time_steps : int
    """

    def __init__(self, synapse: nn.Module, norm: nn.Module, gate: AGMMGate | None,
                 time_steps: int):
        super().__init__()
        if gate is not None and not isinstance(gate, AGMMGate):
            raise TypeError(f"gate must be an AGMMGate or None, not {type(gate).__name__}")
        self.synapse = synapse
        self.norm = norm
        self.gate = gate
        self.time_steps = time_steps

    def current(self, x, static: bool):
        """BatchNorm'd synaptic current ``[T, B, ...]`` before the gate."""
        if static:
            z = self.norm(self.synapse(x))
            return z.unsqueeze(0).expand(self.time_steps, *z.shape)
        t_steps, batch = x.shape[:2]
        z = self.norm(self.synapse(x.flatten(0, 1)))
        return z.view(t_steps, batch, *z.shape[1:])

    def forward(self, x, static: bool = False):
        z = self.current(x, static)
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()
        return z if self.gate is None else self.gate(z)
