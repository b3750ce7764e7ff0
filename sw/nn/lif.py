"""Multi-step leaky integrate-and-fire neuron restricted to what the integer model represents.

Per neuron, per sample, time steps t = 0..T-1, from ``u[-1] = 0``::

    h[t] = λ·u[t-1] + I[t]            charge   (λ = 1 - 2**-k, or 1 with no leak)
    s[t] = h[t] >= θ                  fire     (greater or equal, as in docs/arithmetic.md §4)
    u[t] = hard: s ? 0 : h            reset
           soft: s ? h - θ : h

The input current ``I`` has layout ``[T, B, ...]``. The integer model computes the same update
with ``leak(v) = v - (v >>> k)``; the two agree exactly whenever the float arithmetic is exact and
the shift drops no bits (tests/test_nn_lif.py), and otherwise differ by the flooring of the shift,
which the exporter measures.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sw.checks import check_optional_int, is_real
from sw.nn.surrogate import SURROGATES, get_surrogate

__all__ = ["LIF", "RESETS"]

RESETS = ("hard", "soft")


class LIF(nn.Module):
    """Multi-step LIF neuron (charge, fire, reset).

    Parameters
    ----------
    threshold : float
        θ, positive.
    leak_shift : int or None
        k of the leak factor ``1 - 2**-k`` (1 <= k <= 30); None: no leak (integrate and fire).
    reset : {"hard", "soft"}
    surrogate : str
        Name in :data:`sw.nn.surrogate.SURROGATES` (default "triangle").
    surrogate_alpha : float or None
        Sharpness of the surrogate (its default when None).
    detach_reset : bool
        Stop the gradient through the reset path.

    Attributes
    ----------
    threshold, decay : buffers
        θ and λ, saved in the state dict.
    """

    def __init__(self, *, threshold: float = 1.0, leak_shift: int | None = None,
                 reset: str = "hard", surrogate: str = "triangle",
                 surrogate_alpha: float | None = None, detach_reset: bool = False):
        super().__init__()
        if not is_real(threshold):
            raise TypeError(f"threshold must be a number, not {threshold!r}")
        if not threshold > 0 or not math.isfinite(threshold):
            raise ValueError(f"threshold must be positive and finite, not {threshold!r}")
        check_optional_int("leak_shift", leak_shift, 1, 30)
        if reset not in RESETS:
            raise ValueError(f"reset must be 'hard' or 'soft', not {reset!r}")
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, "
                             f"not {surrogate!r}")
        self.leak_shift = leak_shift
        self.reset_mode = reset
        self.surrogate_name = surrogate
        self.surrogate = get_surrogate(surrogate, surrogate_alpha)
        self.detach_reset = bool(detach_reset)
        decay = 1.0 if leak_shift is None else 1.0 - 2.0 ** -leak_shift
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.register_buffer("decay", torch.tensor(decay))

    def charge(self, u: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        if self.leak_shift is None:
            return u + current
        return self.decay.to(u.dtype) * u + current

    def fire(self, h: torch.Tensor) -> torch.Tensor:
        return self.surrogate(h - self.threshold.to(h.dtype))

    def reset(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.detach_reset:
            s = s.detach()
        if self.reset_mode == "hard":
            return h * (1 - s)
        return h - s * self.threshold.to(h.dtype)

    def _run(self, current: torch.Tensor, record: bool):
        if current.dim() < 2:
            raise ValueError(f"current must have layout [T, B, ...], not shape "
                             f"{tuple(current.shape)}")
        u = torch.zeros_like(current[0])
        spikes, hs, us = [], [], []
        for t in range(current.shape[0]):
            h = self.charge(u, current[t])
            s = self.fire(h)
            u = self.reset(h, s)
            spikes.append(s)
            if record:
                hs.append(h)
                us.append(u)
        return spikes, hs, us

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` for the input current ``[T, B, ...]``."""
        return torch.stack(self._run(current, False)[0])

    def trace(self, current: torch.Tensor):
        """``(spikes, potential h, membrane u)``, each ``[T, B, ...]``."""
        spikes, hs, us = self._run(current, True)
        return torch.stack(spikes), torch.stack(hs), torch.stack(us)

    def extra_repr(self):
        leak = "none" if self.leak_shift is None else f"1-2^-{self.leak_shift}"
        return (f"threshold={float(self.threshold)}, leak={leak}, reset={self.reset_mode}, "
                f"surrogate={self.surrogate!r}")
