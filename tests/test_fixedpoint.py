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


# -- the width rules, on plain numbers (docs/arithmetic.md §5, §6) -------------------------------

def test_membrane_rules_reproduce_the_worked_example():
    """docs/arithmetic.md §5: N = 64, 5-bit pixels, F = 4, max|B| = 100, G = 1, T = 4, soft
    reset, min Θ = -20: Imax = 31844, V = 127456, W = 18."""
    bias, threshold = [100, -7, 3], [-20, 50, 9]
    imax = fx.current_bound(inputs=64, input_bits=5, frac=4, step_gain=(1, 1, 1, 1),
                            bias=bias, connected=[1, 1, 0])
    assert imax == 64 * 31 * 16 + 100 == 31844
    v = fx.lif_membrane_bound(imax, threshold=threshold, reset="soft", time_steps=4)
    assert v == 4 * (31844 + 20) == 127456
    assert fx.lif_membrane_bound(imax, threshold=threshold, reset="hard", time_steps=4) == 4 * imax
    assert fx.lif_bound_width(v, threshold=threshold, bias=bias) == 18
    assert fx.lif_width(v, threshold=threshold, bias=bias, frac=4, leak_shift=2) == 18


def test_current_bound_takes_the_largest_gain_and_ignores_disconnected_inputs():
    # neuron 0 is disconnected (c = 0): only its |B| counts, and here it is the largest
    imax = fx.current_bound(inputs=3, input_bits=1, frac=2, step_gain=(1, 3, 2),
                            bias=[-50, 4], connected=[0, 1])
    assert imax == 3 * max(50, (3 << 2) + 4)


def test_lif_width_keeps_the_format_floors():
    """W > F (a sign bit above the fraction) and W > k (the leak shift), even where the bound
    alone needs fewer bits: the floors the exporter used to add by hand."""
    tiny = dict(threshold=[1], bias=[0])
    assert fx.lif_bound_width(1, **tiny) == 2
    assert fx.lif_width(1, **tiny, frac=0, leak_shift=None) == 2
    assert fx.lif_width(1, **tiny, frac=6, leak_shift=None) == 7
    assert fx.lif_width(1, **tiny, frac=0, leak_shift=9) == 10
    assert fx.lif_width(1, **tiny, frac=6, leak_shift=3) == 7
    # the bound wins when it is the widest; |Θ| and |B| count as much as the bound
    assert fx.lif_width(1000, **tiny, frac=6, leak_shift=3) == fx.signed_width(1000) == 11
    assert fx.lif_bound_width(3, threshold=[-600], bias=[0]) == fx.signed_width(600)
    assert fx.lif_bound_width(3, threshold=[1], bias=[2**40]) == 42


def test_readout_rules():
    """docs/arithmetic.md §6: |S| <= N·(2^P−1)·Σ G, |score| <= max_j (A_j·|S|max + |C_j|)."""
    s = fx.sum_bound(inputs=10, input_bits=3, step_gain=(1, 2, 4))
    assert s == 10 * 7 * 7
    assert fx.score_bound(s, scale=[3, 0, 1], offset=[-5, -10**6, 2]) == 10**6
    assert fx.score_bound(s, scale=[3, 0, 1], offset=[-5, 7, 2]) == 3 * s + 5
    assert fx.readout_width(3 * s + 5) == fx.signed_width(3 * s + 5) == 12
    assert fx.synaptic_width(10, 3) == fx.signed_width(70) == 8


def test_bounds_stay_exact_beyond_int64():
    big = fx.current_bound(inputs=1000, input_bits=16, frac=40, step_gain=(7,), bias=[0],
                           connected=[1])
    assert big == 7 * 1000 * 65535 * 2**40 > 2**63
    assert fx.score_bound(2**62, scale=[255], offset=[1]) == 255 * 2**62 + 1


def test_membrane_bound_refuses_an_unknown_reset():
    with pytest.raises(ValueError, match=r"reset must be one of 'hard', 'soft', not 'none'"):
        fx.lif_membrane_bound(5, threshold=[1], reset="none", time_steps=2)


def test_fixedpoint_imports_nothing_of_the_layers():
    """The rules take numbers: sw.fixedpoint imports neither sw.artifact (the layers, which
    import it) nor torch or amaranth, not even under TYPE_CHECKING."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(fx.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    assert imported, "the parse found the module's imports"
    for name in imported:
        assert not name.startswith((".", "sw.artifact", "torch", "amaranth")), name
    # nor by another route
    calls = {node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "__import__" not in calls and not any(n.startswith("importlib") for n in imported)
