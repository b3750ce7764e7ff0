"""The Adaptive Gradient Modulation Mechanism (AGMM) gate.

After each binary synapse + BatchNorm block, the gate scales the block output ``X[t]`` of time
step t (layout ``[T, B, ...]``)::

    Y[t] = α[t] · σ(E(X[t])) · X[t]

σ is the logistic sigmoid. In the backward pass the gradient reaching the block is scaled by the
same positive factor (plus a term through E), which is how the gate modulates the gradient
magnitudes that drive weight sign flips (docs/agmm.md). The reading of E and α is switchable:

``stat="sample"``
    E is the mean over channels and space of each sample: a data-dependent factor per sample and
    time step. It cannot be folded into a fixed integer model (the exporter refuses it; remove it
    with a gate-free fine-tune instead).
``stat="batch"``
    E is the mean over the batch, channels and space, like BatchNorm; running statistics per time
    step (momentum ``momentum``) replace it at inference, so the deployed gate is the constant
    ``g[t] = α[t]·σ(E_run[t])``, which folds into the artifact's ``step_gain`` (arithmetic.md §8).
``moment="mean"`` / ``"abs"``
    E of X, or E of |X|.
``alpha="learned"`` / ``"fixed"``
    α[t] a trained parameter per time step, or the constant ``alpha_init``.

Every gate also tracks ``running_gain[t]``, the running mean of its factor per time step, which
the trainer logs and uses to fold the gate into the BatchNorm before a gate-free fine-tune.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sw.checks import check_int, is_real

__all__ = ["AGMMGate", "STATS", "MOMENTS", "ALPHAS"]

STATS = ("sample", "batch")
MOMENTS = ("mean", "abs")
ALPHAS = ("learned", "fixed")


class AGMMGate(nn.Module):
    """``Y[t] = α[t]·σ(E(X[t]))·X[t]`` over inputs of layout ``[T, B, ...]``.

    Parameters
    ----------
    time_steps : int
        T; α has one entry per time step.
    stat : {"sample", "batch"}
    moment : {"mean", "abs"}
    alpha : {"learned", "fixed"}
    alpha_init : float
        Initial (or fixed) α, positive.
    momentum : float
        Running-statistics momentum in (0, 1].

    Attributes
    ----------
    alpha : Parameter or buffer, shape [T]
    running_stat : buffer [T]
        Running E per time step (used at inference by ``stat="batch"``).
    running_gain : buffer [T]
        Running mean of the gate factor per time step.
    """

    def __init__(self, time_steps: int, *, stat: str = "batch", moment: str = "mean",
                 alpha: str = "learned", alpha_init: float = 1.0, momentum: float = 0.1):
        super().__init__()
        check_int("time_steps", time_steps, 1)
        if stat not in STATS:
            raise ValueError(f"stat must be one of {STATS}, not {stat!r}")
        if moment not in MOMENTS:
            raise ValueError(f"moment must be one of {MOMENTS}, not {moment!r}")
        if alpha not in ALPHAS:
            raise ValueError(f"alpha must be one of {ALPHAS}, not {alpha!r}")
        if not is_real(alpha_init):
            raise TypeError(f"alpha_init must be a number, not {alpha_init!r}")
        if not alpha_init > 0 or not math.isfinite(alpha_init):
            raise ValueError(f"alpha_init must be positive and finite, not {alpha_init!r}")
        if not is_real(momentum) or not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], not {momentum!r}")
        self.time_steps = time_steps
        self.stat, self.moment, self.alpha_mode = stat, moment, alpha
        self.momentum = float(momentum)
        init = torch.full((time_steps,), float(alpha_init))
        if alpha == "learned":
            self.alpha = nn.Parameter(init)
        else:
            self.register_buffer("alpha", init)
        self.register_buffer("running_stat", torch.zeros(time_steps))
        self.register_buffer("running_gain", torch.full((time_steps,), float(alpha_init) / 2))

    @property
    def data_dependent(self) -> bool:
        """True when the inference-time factor depends on the input (``stat="sample"``)."""
        return self.stat == "sample"

    def _moment(self, x):
        return x.abs() if self.moment == "abs" else x

    def factor(self, x: torch.Tensor) -> torch.Tensor:
        """The gate factor, broadcastable against ``x`` (``[T, 1, ...]`` or ``[T, B, 1, ...]``)."""
        if x.dim() < 2 or x.shape[0] != self.time_steps:
            raise ValueError(f"x must have layout [T={self.time_steps}, B, ...], not shape "
                             f"{tuple(x.shape)}")
        t_steps = self.time_steps
        tail = [1] * (x.dim() - 2)
        v = self._moment(x)
        if self.stat == "sample":
            e = v.reshape(t_steps, x.shape[1], -1).mean(2).view(t_steps, x.shape[1], *tail)
        elif self.training:
            e = v.reshape(t_steps, -1).mean(1)
            with torch.no_grad():
                self.running_stat.lerp_(e.detach().to(self.running_stat.dtype), self.momentum)
            e = e.view(t_steps, 1, *tail)
        else:
            e = self.running_stat.to(x.dtype).view(t_steps, 1, *tail)
        alpha = self.alpha.to(x.dtype).view(t_steps, *([1] * (e.dim() - 1)))
        g = alpha * torch.sigmoid(e)
        if self.training:
            with torch.no_grad():
                mean = g.detach().reshape(t_steps, -1).mean(1).to(self.running_gain.dtype)
                self.running_gain.lerp_(mean, self.momentum)
        return g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor(x) * x

    def inference_gain(self) -> torch.Tensor | None:
        """The constant per-time-step factor the gate applies in eval mode, or None when the
        factor depends on the data (``stat="sample"``)."""
        if self.data_dependent:
            return None
        return (self.alpha.detach() * torch.sigmoid(self.running_stat)).clone()

    def extra_repr(self):
        return (f"T={self.time_steps}, stat={self.stat}, moment={self.moment}, "
                f"alpha={self.alpha_mode}")
