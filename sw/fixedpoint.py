"""Fixed-point rules of the integer BSNN: the one source of truth.

Every integer rule that the exporter, the golden model and the hardware generator share lives
here: the fixed-point type, the leak, the threshold and bias rounding used by folding, and the
worst-case bounds from which register widths are derived. ``docs/arithmetic.md`` is the normative
text; the functions below implement it and cite its sections.

Nothing here imports torch, amaranth or :mod:`sw.artifact`, so every part of the project can use
it: the rules take plain numbers and arrays, and each layer type of :mod:`sw.artifact` offers the
bounds and widths it needs as properties computed with these rules (``LIFLayer.required_width``,
``ReadoutLayer.required_score_width``...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw.checks import check_bool, check_choice, check_int

__all__ = [
    "MAX_WIDTH",
    "FixedPoint",
    "signed_width",
    "unsigned_width",
    "leak",
    "input_max",
    "synaptic_bound",
    "synaptic_width",
    "current_bound",
    "lif_membrane_bound",
    "lif_bound_width",
    "lif_width",
    "sum_bound",
    "score_bound",
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
        # every type first, then the ranges: a wrong type is reported before a wrong value
        check_int("width", self.width)
        check_int("frac", self.frac)
        check_bool("signed", self.signed)
        check_int("width", self.width, 1, MAX_WIDTH)
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


def leak(v, shift: int | None, *, out=None):
    """The membrane leak of docs/arithmetic.md §3: ``v - (v >>> k)``, or ``v`` for no leak.

    ``>>>`` is an arithmetic (flooring) right shift. Works on Python ints and integer numpy
    arrays alike. ``|leak(v)| <= |v|`` for every integer v, which the bounds below rely on.
    ``out``: a numpy array of v's shape and dtype to compute into (no temporaries).
    """
    if out is None:
        return v if shift is None else v - (v >> shift)
    if shift is None:
        np.copyto(out, v)
    else:
        np.right_shift(v, shift, out=out)
        np.subtract(v, out, out=out)
    return out


def input_max(bits: int) -> int:
    """Largest value of an unsigned ``bits``-bit input (1 for spikes)."""
    return (1 << bits) - 1


def synaptic_bound(inputs: int, input_bits: int) -> int:
    """Bound on ``|x_j[t]|`` for N inputs of ``input_bits`` bits: ``N * (2**P - 1)`` (§2)."""
    return int(inputs) * input_max(input_bits)


def synaptic_width(inputs: int, input_bits: int) -> int:
    """Signed width of the synaptic sum ``x_j[t]``: ``signed_width(synaptic_bound)`` (§2)."""
    return signed_width(synaptic_bound(inputs, input_bits))


def _max_abs(values) -> int:
    """``max |v|`` over ``values`` as a Python int (0 for none), exact beyond int64."""
    return int(max(np.abs(np.asarray(values, dtype=object)), default=0))


def current_bound(*, inputs: int, input_bits: int, frac: int, step_gain, bias,
                  connected) -> int:
    """``Imax``, the bound on ``|I_j[t]|``, ``I_j[t] = G[t] * (c_j * (x_j[t] << F) + B_j)``
    (docs/arithmetic.md §5), over every neuron, time step and possible input.

    Parameters
    ----------
    inputs, input_bits : int
        N and P of the layer's input (P = 1 for spikes).
    frac : int
        F, the membrane's fractional bits.
    step_gain : sequence of int
        G[t].
    bias, connected : (M,) int arrays
        B_j and c_j.
    """
    xmax = synaptic_bound(inputs, input_bits) << frac
    per_neuron = np.asarray(connected, dtype=object) * xmax + np.abs(
        np.asarray(bias, dtype=object))
    return max(step_gain) * int(max(per_neuron, default=0))


def lif_membrane_bound(imax: int, *, threshold, reset: str, time_steps: int) -> int:
    """``V = T * (Imax + R)``, the proven bound on ``|h_j[t]|`` and ``|v_j[t]|`` for every
    t < T (docs/arithmetic.md §5).

    ``R = max(0, -min Θ)`` for soft reset, 0 for hard reset: ``|h[t]| <= |v[t-1]| + Imax``
    because the leak never grows a magnitude, and a reset adds at most R, so
    ``|v[t]| <= (t + 1) * (Imax + R) <= T * (Imax + R)``.

    Parameters
    ----------
    imax : int
        :func:`current_bound`.
    threshold : (M,) int array
        Θ_j.
    reset : {"hard", "soft"}
    time_steps : int
        T.
    """
    check_choice("reset", reset, ("hard", "soft"))
    reset_growth = 0
    if reset == "soft" and len(threshold):
        reset_growth = max(0, -int(np.min(threshold)))
    return time_steps * (imax + reset_growth)


def lif_bound_width(membrane_bound: int, *, threshold, bias) -> int:
    """The smallest two's-complement width holding ``±max(V, max|Θ_j|, max|B_j|)``: the
    membrane width the proven bound of docs/arithmetic.md §5 asks for."""
    return signed_width(max(int(membrane_bound), _max_abs(threshold), _max_abs(bias)))


def lif_width(membrane_bound: int, *, threshold, bias, frac: int,
              leak_shift: int | None) -> int:
    """W, the smallest membrane register width a LIF layer allows (docs/arithmetic.md §5):
    :func:`lif_bound_width`, and at least ``F + 1`` (the format keeps a sign bit above its
    fractional bits, ``frac < width``) and ``k + 1`` (a leak shift is below the width,
    ``k < W``). :attr:`sw.artifact.LIFLayer.required_width` asks this.

    Parameters
    ----------
    membrane_bound : int
        V, :func:`lif_membrane_bound`.
    threshold, bias : (M,) int arrays
        Θ_j and B_j.
    frac : int
        F.
    leak_shift : int or None
        k, or None (no leak).
    """
    return max(lif_bound_width(membrane_bound, threshold=threshold, bias=bias), frac + 1,
               (leak_shift or 0) + 1)


def sum_bound(*, inputs: int, input_bits: int, step_gain) -> int:
    """Bound on ``|S_j| = |Σ_t G[t] * x_j[t]|``, the readout's accumulated input:
    ``N * (2**P - 1) * Σ_t G[t]`` (docs/arithmetic.md §6)."""
    return synaptic_bound(inputs, input_bits) * sum(step_gain)


def score_bound(sum_bound: int, *, scale, offset) -> int:
    """Bound on ``|score_j| = |A_j * S_j + C_j|``: ``max_j (A_j * |S|max + |C_j|)``
    (docs/arithmetic.md §6).

    Parameters
    ----------
    sum_bound : int
        ``|S|max``, :func:`sum_bound`.
    scale, offset : (M,) int arrays
        A_j >= 0 and C_j.
    """
    scale = np.asarray(scale, dtype=object)
    offset = np.abs(np.asarray(offset, dtype=object))
    return int(max(scale * int(sum_bound) + offset, default=0))


def readout_width(score_bound: int) -> int:
    """The score register width a readout needs: the signed width of :func:`score_bound`
    (docs/arithmetic.md §6). :attr:`sw.artifact.ReadoutLayer.required_score_width` asks this.
    """
    return signed_width(score_bound)


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
