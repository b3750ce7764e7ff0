"""Surrogate gradients of the spike function.

The forward pass of every surrogate is the exact step ``s = (x >= 0)`` (x = h - θ), so a neuron
fires on ``h >= θ`` as in docs/arithmetic.md §4. Only the backward pass differs: it uses the
derivative of a smooth *primitive* ``S(x)`` that approximates the step. Each surrogate exposes
its primitive so one contract test can check the gradient against a finite difference.

The registry :data:`SURROGATES` maps a name to its class; :func:`get_surrogate` builds one.
"""

from __future__ import annotations

import math

import torch

from sw.checks import is_real

__all__ = ["Surrogate", "Triangle", "Sigmoid", "Arctan", "SURROGATES", "get_surrogate"]


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class Surrogate:
    """A spike function: exact step forward, ``derivative(x)`` backward.

    Parameters
    ----------
    alpha : float
        Sharpness; larger is closer to the step. Positive.
    """

    name = "surrogate"
    default_alpha = 1.0

    def __init__(self, alpha: float | None = None):
        alpha = self.default_alpha if alpha is None else alpha
        if not is_real(alpha):
            raise TypeError(f"alpha must be a number, not {alpha!r}")
        if not alpha > 0 or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a positive finite number, not {alpha!r}")
        self.alpha = float(alpha)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFn.apply(x, self)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha})"


class Triangle(Surrogate):
    """``S'(x) = α · max(0, 1 - α|x|)``: a triangle of width 2/α and area 1 (default α = 1)."""

    name = "triangle"

    def primitive(self, x):
        a = self.alpha
        y = a * x
        left = 0.5 * (1 + y) ** 2
        right = 1 - 0.5 * (1 - y) ** 2
        return torch.where(y <= -1, torch.zeros_like(y),
                           torch.where(y >= 1, torch.ones_like(y),
                                       torch.where(y < 0, left, right)))

    def derivative(self, x):
        a = self.alpha
        return a * torch.clamp(1 - a * x.abs(), min=0)


class Sigmoid(Surrogate):
    """``S(x) = sigmoid(α x)`` (default α = 4)."""

    name = "sigmoid"
    default_alpha = 4.0

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


class Arctan(Surrogate):
    """``S(x) = arctan(π/2 · α x) / π + 1/2`` (default α = 2)."""

    name = "arctan"
    default_alpha = 2.0

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x):
        return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x) ** 2)


#: name -> surrogate class
SURROGATES: dict[str, type[Surrogate]] = {
    "triangle": Triangle,
    "sigmoid": Sigmoid,
    "arctan": Arctan,
}


def get_surrogate(name: str, alpha: float | None = None) -> Surrogate:
    """Build the surrogate registered as ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"surrogate must be a str, not {name!r}")
    if name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, not {name!r}")
    return SURROGATES[name](alpha)
