"""Fixed-point rules of the integer BSNN: the one source of truth.

Every integer rule that the exporter, the golden model and the hardware generator share lives
here: the fixed-point type, the leak, the threshold and bias rounding used by folding, and the
worst-case bounds from which register widths are derived. ``docs/arithmetic.md`` is the normative
text; the functions below implement it and cite its sections.

Nothing here imports torch or amaranth, so every part of the project can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sw.artifact import LIFLayer, ReadoutLayer

__all__ = [
    "MAX_WIDTH",
    "FixedPoint",
    "signed_width",
    "unsigned_width",
    "leak",
    "input_max",
    "synaptic_bound",
    "current_bound",
    "membrane_bound",
    "lif_width",
    "readout_sum_bound",
    "readout_score_bound",
    "readout_width",
    "round_half_up",
    "threshold_to_int",
]

#: Widest register the integer model allows. The golden model computes in int64, and
#: ``h = leak(v) + I`` adds two W-bit values, so W <= 62 keeps every intermediate exact.
MAX_WIDTH = 62


@dataclass(frozen=True)
class FixedPoint:
    """A two's-complement (or unsigned) fixed-point format.

    Parameters
    ----------
    width : int
        Total number of bits, sign included (1..62).
    frac : int
        Fractional bits; the real value of the integer ``n`` is ``n / 2**frac``.
    signed : bool
        Two's complement when true.

    Attributes
    ----------
    min, max : int
        The smallest and largest integer the format holds. Derived, never stored.
    """

    width: int
    frac: int = 0
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.width, int) or isinstance(self.width, bool):
            raise TypeError(f"width must be an int, not {self.width!r}")
        if not isinstance(self.frac, int) or isinstance(self.frac, bool):
            raise TypeError(f"frac must be an int, not {self.frac!r}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, not {self.signed!r}")
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width must be between 1 and {MAX_WIDTH}, not {self.width}")
        if self.signed and self.width < 2:
            raise ValueError(f"a signed format needs width >= 2, not {self.width}")
        if not 0 <= self.frac < self.width:
            raise ValueError(f"frac must be between 0 and width - 1 = {self.width - 1}, "
                             f"not {self.frac}")

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def contains(self, values) -> bool:
        """True when every integer in ``values`` is representable."""
        arr = np.asarray(values)
        if arr.size == 0:
            return True
        return bool(int(arr.min()) >= self.min and int(arr.max()) <= self.max)

    def to_json(self) -> dict:
        return {"width": self.width, "frac": self.frac, "signed": self.signed}

    @classmethod
    def from_json(cls, obj: dict) -> FixedPoint:
        return cls(width=obj["width"], frac=obj["frac"], signed=obj["signed"])


def signed_width(max_abs: int) -> int:
    """Smallest two's-complement width holding every integer in ``[-max_abs, max_abs]``."""
    max_abs = int(max_abs)
    if max_abs < 0:
        raise ValueError(f"max_abs must be >= 0, not {max_abs}")
    return max(2, max_abs.bit_length() + 1)


def unsigned_width(max_value: int) -> int:
    """Smallest unsigned width holding every integer in ``[0, max_value]`` (at least 1)."""
    max_value = int(max_value)
    if max_value < 0:
        raise ValueError(f"max_value must be >= 0, not {max_value}")
    return max(1, max_value.bit_length())


def leak(v, shift: int | None):
    """The membrane leak of docs/arithmetic.md §3: ``v - (v >>> k)``, or ``v`` for no leak.

    ``>>>`` is an arithmetic (flooring) right shift. Works on Python ints and integer numpy
    arrays alike. ``|leak(v)| <= |v|`` for every integer v, which the bounds below rely on.
    """
    if shift is None:
        return v
    return v - (v >> shift)


def input_max(bits: int) -> int:
    """Largest value of an unsigned ``bits``-bit input (1 for spikes)."""
    return (1 << bits) - 1


def synaptic_bound(inputs: int, input_bits: int) -> int:
    """Bound on ``|x_j[t]|`` for N inputs of ``input_bits`` bits: ``N * (2**P - 1)``."""
    return int(inputs) * input_max(input_bits)


def current_bound(layer: LIFLayer) -> int:
    """Bound on ``|I_j[t]|``, ``I_j[t] = G[t] * (c_j * (x_j[t] << F) + B_j)`` (§4).

    Taken over every neuron and time step of the layer and every possible input.
    """
    xmax = synaptic_bound(layer.inputs, layer.input.bits) << layer.membrane.frac
    per_neuron = np.asarray(layer.connected, dtype=object) * xmax + np.abs(
        np.asarray(layer.bias, dtype=object))
    return max(layer.step_gain) * int(max(per_neuron, default=0))


def membrane_bound(layer: LIFLayer) -> int:
    """Proven bound on ``|h_j[t]|`` and ``|v_j[t]|`` for every t < T (docs/arithmetic.md §5).

    With ``Imax = current_bound(layer)`` and ``R = max(0, -min Θ)`` for soft reset (0 for hard
    reset): ``|h[t]| <= |v[t-1]| + Imax`` because the leak never grows a magnitude, and a reset
    adds at most R, so ``|v[t]| <= (t + 1) * (Imax + R) <= T * (Imax + R)``.
    """
    imax = current_bound(layer)
    reset_growth = 0
    if layer.reset == "soft":
        reset_growth = max(0, -int(np.min(layer.threshold))) if len(layer.threshold) else 0
    return layer.time_steps * (imax + reset_growth)


def lif_width(layer: LIFLayer) -> int:
    """Membrane register width the layer needs: the bound, the thresholds and the biases fit."""
    thr = np.asarray(layer.threshold, dtype=object)
    bias = np.asarray(layer.bias, dtype=object)
    largest = max(
        membrane_bound(layer),
        int(max(np.abs(thr), default=0)),
        int(max(np.abs(bias), default=0)),
    )
    return signed_width(largest)


def readout_sum_bound(layer: ReadoutLayer) -> int:
    """Bound on ``|S_j| = |Σ_t G[t] * x_j[t]|``, the readout's accumulated input (§6)."""
    return synaptic_bound(layer.inputs, layer.input.bits) * sum(layer.step_gain)


def readout_score_bound(layer: ReadoutLayer) -> int:
    """Bound on ``|score_j| = |A_j * S_j + C_j|`` (§6)."""
    smax = readout_sum_bound(layer)
    scale = np.asarray(layer.scale, dtype=object)
    offset = np.abs(np.asarray(layer.offset, dtype=object))
    return int(max(scale * smax + offset, default=0))


def readout_width(layer: ReadoutLayer) -> int:
    """Score register width the readout needs."""
    return signed_width(readout_score_bound(layer))


def round_half_up(x) -> np.ndarray:
    """Round to the nearest integer, halves upwards: ``floor(x + 1/2)``; returns int64.

    Used by folding for biases, offsets and scales, where the integer model only approximates
    the float model. Deterministic and platform independent (unlike banker's rounding).
    """
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def threshold_to_int(theta, *, rel_tol: float = 1e-9) -> np.ndarray:
    """Integer threshold equivalent to a real one: ``h >= θ  <=>  h >= ceil(θ)`` for integer h.

    Values within ``rel_tol`` (relative) of an integer are treated as that integer, so float
    round-off in folding (``2.0000000001``) does not move a threshold by a whole unit.
    """
    theta = np.asarray(theta, dtype=np.float64)
    nearest = np.rint(theta)
    close = np.abs(theta - nearest) <= rel_tol * np.maximum(1.0, np.abs(theta))
    return np.where(close, nearest, np.ceil(theta)).astype(np.int64)


def ceil_log2(n: int) -> int:
    """``ceil(log2(n))`` for n >= 1 (0 for n == 1): address and index widths."""
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    return (n - 1).bit_length()


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


__all__ += ["ceil_log2", "ceil_div"]
