"""sw.fixedpoint: the fixed-point type, the leak, rounding, widths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw import fixedpoint as fx
from sw.fixedpoint import FixedPoint


def test_fixed_point_ranges():
    assert (FixedPoint(8).min, FixedPoint(8).max) == (-128, 127)
    assert (FixedPoint(8, 3, signed=False).min, FixedPoint(8, 3, signed=False).max) == (0, 255)
    assert FixedPoint(4).contains([-8, 7]) and not FixedPoint(4).contains([8])
    assert FixedPoint.from_json(FixedPoint(18, 4).to_json()) == FixedPoint(18, 4)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(width=8.0), TypeError, r"width must be an int, not 8\.0"),
    (dict(width=8, frac=True), TypeError, r"frac must be an int, not True"),
    (dict(width=8, signed=1), TypeError, r"signed must be a bool, not 1"),
    (dict(width=0), ValueError, r"width must be between 1 and 62, not 0"),
    (dict(width=63), ValueError, r"width must be between 1 and 62, not 63"),
    (dict(width=1), ValueError, r"a signed format needs width >= 2, not 1"),
    (dict(width=8, frac=8), ValueError, r"frac must be between 0 and width - 1 = 7, not 8"),
])
def test_fixed_point_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FixedPoint(**kwargs)


@given(st.integers(0, 2**60))
def test_signed_width_is_the_smallest(max_abs):
    w = fx.signed_width(max_abs)
    assert FixedPoint(w).contains([-max_abs, max_abs])
    if w > 2:
        assert not FixedPoint(w - 1).contains([-max_abs, max_abs])


def test_unsigned_width_and_logs():
    assert [fx.unsigned_width(v) for v in (0, 1, 2, 255, 256)] == [1, 1, 2, 8, 9]
    assert [fx.ceil_log2(n) for n in (1, 2, 3, 4, 10, 16, 17)] == [0, 1, 2, 2, 4, 4, 5]
    assert fx.ceil_div(10, 4) == 3 and fx.ceil_div(8, 4) == 2
    with pytest.raises(ValueError, match=r"n must be >= 1, not 0"):
        fx.ceil_log2(0)


@given(st.integers(-(2**40), 2**40), st.integers(1, 20))
def test_leak_never_grows_a_magnitude_and_matches_numpy(v, k):
    out = fx.leak(v, k)
    assert abs(out) <= abs(v)
    assert out == v - (v // (1 << k))  # >>> is floor division by 2^k
    assert fx.leak(np.array([v], np.int64), k)[0] == out
    assert fx.leak(v, None) == v


def test_leak_worked_examples():
    assert [fx.leak(v, 2) for v in (37, 5, 41, -5, -1)] == [28, 4, 31, -3, 0]


def test_rounding_rules():
    assert fx.round_half_up([0.5, 1.5, -0.5, -1.5, 2.49]).tolist() == [1, 2, 0, -1, 2]
    assert fx.threshold_to_int([2.0, 2.0000000001, 2.1, -2.1, -2.0]).tolist() == [2, 2, 3, -2, -2]
