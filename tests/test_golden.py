"""The golden model against the plain reference loop of docs/arithmetic.md, and its bounds."""

from __future__ import annotations

import numpy as np
import pytest
from golden_check import assert_matches_reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sw import fixedpoint as fx
from sw.artifact import Artifact, InputSpec, LIFLayer, ReadoutLayer
from sw.fixedpoint import FixedPoint
from sw.golden import BoundViolation, GoldenModel
from sw.randnet import random_artifact, random_inputs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net_seed=st.integers(0, 2**32 - 1), data_seed=st.integers(0, 2**32 - 1),
       sizes=st.lists(st.integers(1, 12), min_size=2, max_size=4),
       time_steps=st.sampled_from([1, 2, 3, 4, 7, 16]))
def test_golden_equals_reference_loop(net_seed, data_seed, sizes, time_steps):
    """Hundreds of random networks (every corner the generator draws) against the plain loop."""
    artifact = random_artifact(net_seed, sizes=sizes, time_steps=time_steps)
    x = random_inputs(artifact, 3, data_seed)
    assert_matches_reference(artifact, x)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("leak", [None, 1, 3])
@pytest.mark.parametrize("kind", ["multibit", "spike"])
def test_golden_corner_cases_against_reference(seed, reset, leak, kind):
    artifact = random_artifact(seed, sizes=[13, 7, 5, 3], time_steps=5, input_kind=kind,
                               reset=reset, leak_shift=leak, step_gain=True, zero_scale=0.3)
    assert_matches_reference(artifact, random_inputs(artifact, 4, seed + 1))


def test_worked_example_of_arithmetic_doc():
    """docs/arithmetic.md §2 and §4: x = 10, I = 37, hard and soft reset tables."""
    w = np.array([[1, 1, 0, 1]], dtype=np.uint8)
    common = dict(inputs=4, neurons=1, input=InputSpec("multibit", 3), time_steps=4,
                  membrane=FixedPoint(20, 2), leak_shift=2, step_gain=(1,) * 4, weights=w,
                  bias=[-3], threshold=[60], connected=[1])
    readout = ReadoutLayer(name="out", inputs=1, neurons=1, input=InputSpec("spike"),
                           time_steps=4, step_gain=(1,) * 4, weights=[[1]], scale=[1],
                           offset=[0], score=FixedPoint(8))
    x = np.array([[5, 2, 3, 6]])
    hard = GoldenModel(Artifact((LIFLayer(name="l", reset="hard", **common), readout))).run(
        x, record=True).layers[0]
    assert hard.current[0, :, 0].tolist() == [10] * 4
    assert hard.potential[0, :, 0].tolist() == [37, 65, 37, 65]
    assert hard.spikes[0, :, 0].tolist() == [0, 1, 0, 1]
    assert hard.membrane[0, :, 0].tolist() == [37, 0, 37, 0]
    soft = GoldenModel(Artifact((LIFLayer(name="l", reset="soft", **common), readout))).run(
        x, record=True).layers[0]
    assert soft.potential[0, :, 0].tolist() == [37, 65, 41, 68]
    assert soft.membrane[0, :, 0].tolist() == [37, 5, 41, 8]


def test_readout_tie_lowest_index_wins():
    """docs/arithmetic.md §6: scores 2, 7, 7 predict class 1."""
    # one input spike, weights chosen so x = +1 for every class; S = T * x = 2
    layer = ReadoutLayer(name="out", inputs=1, neurons=3, input=InputSpec("spike"),
                         time_steps=2, step_gain=(1, 1), weights=[[1], [1], [1]],
                         scale=[3, 0, 3], offset=[-4, 7, 1], score=FixedPoint(8))
    res = GoldenModel(Artifact((layer,))).run(np.ones((1, 2, 1), dtype=np.int64))
    assert res.scores.tolist() == [[2, 7, 7]]
    assert res.predictions.tolist() == [1]


def _worst_case_layer(n, bits, t_steps, f, reset, negative):
    """All weights +1 (or -1), maximal bias, threshold never reached: h[T-1] = ±T*Imax."""
    m = 3
    xmax = fx.synaptic_bound(n, bits) << f
    bias = 5 if not negative else -5
    imax = xmax + 5
    threshold = t_steps * imax + 1 if not negative else t_steps * imax
    weights = np.ones((m, n), np.uint8) if not negative else np.zeros((m, n), np.uint8)
    common = dict(name="l", inputs=n, neurons=m, input=InputSpec("multibit", bits),
                  time_steps=t_steps, leak_shift=None, reset=reset, step_gain=(1,) * t_steps,
                  weights=weights, bias=[bias] * m, threshold=[threshold] * m, connected=[1] * m)
    probe = LIFLayer(membrane=FixedPoint(fx.MAX_WIDTH, f), **common)
    return LIFLayer(membrane=FixedPoint(probe.required_width, f), **common), imax


@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("n,bits,t_steps,f", [(64, 5, 4, 4), (7, 8, 16, 0), (33, 1, 1, 6)])
def test_worst_case_reaches_but_never_exceeds_the_width(n, bits, t_steps, f, negative):
    layer, imax = _worst_case_layer(n, bits, t_steps, f, "hard", negative)
    readout = ReadoutLayer(name="out", inputs=3, neurons=2, input=InputSpec("spike"),
                           time_steps=t_steps, step_gain=(1,) * t_steps,
                           weights=np.ones((2, 3), np.uint8), scale=[1, 1], offset=[0, 0],
                           score=FixedPoint(8))
    x = np.full((2, n), (1 << bits) - 1)
    res = GoldenModel(Artifact((layer, readout))).run(x, record=True)
    h = res.layers[0].potential
    extreme = int(np.abs(h).max())
    assert extreme == t_steps * imax, "the proven bound is reached exactly"
    assert extreme <= layer.membrane.max
    assert extreme > layer.membrane.max >> 1, "the top magnitude bit is needed: width is tight"


def test_soft_reset_with_negative_threshold_reaches_the_bound():
    """Soft reset below a negative threshold grows v by |Θ| per step: V = T * (Imax + R)."""
    n, t_steps = 5, 6
    weights = np.ones((1, n), np.uint8)
    common = dict(name="l", inputs=n, neurons=1, input=InputSpec("spike"), time_steps=t_steps,
                  leak_shift=None, reset="soft", step_gain=(1,) * t_steps, weights=weights,
                  bias=[3], threshold=[-20], connected=[1])
    probe = LIFLayer(membrane=FixedPoint(fx.MAX_WIDTH, 1), **common)
    layer = LIFLayer(membrane=FixedPoint(probe.required_width, 1), **common)
    readout = ReadoutLayer(name="out", inputs=1, neurons=1, input=InputSpec("spike"),
                           time_steps=t_steps, step_gain=(1,) * t_steps, weights=[[1]],
                           scale=[1], offset=[0], score=FixedPoint(8))
    res = GoldenModel(Artifact((layer, readout))).run(np.ones((1, t_steps, n), np.int64),
                                                      record=True)
    v = res.layers[0].membrane[0, :, 0]
    assert int(v[-1]) == layer.membrane_bound == t_steps * ((n << 1) + 3 + 20)
    assert int(v[-1]) <= layer.membrane.max


def test_bound_violation_is_detected_when_a_width_is_too_small():
    """The golden model's overflow assertion can fail: shrink a width behind the validator."""
    layer, _ = _worst_case_layer(16, 4, 4, 2, "hard", False)
    readout = ReadoutLayer(name="out", inputs=3, neurons=1, input=InputSpec("spike"),
                           time_steps=4, step_gain=(1,) * 4, weights=np.ones((1, 3), np.uint8),
                           scale=[1], offset=[0], score=FixedPoint(8))
    artifact = Artifact((layer, readout))
    object.__setattr__(layer, "membrane", FixedPoint(layer.membrane.width - 1, 2))
    with pytest.raises(BoundViolation, match=r"layer 'l', time step \d: membrane potential h"):
        GoldenModel(artifact).run(np.full((1, 16), 15))


def test_direct_encoding_current_is_the_same_every_step(seed):
    artifact = random_artifact(seed, sizes=[20, 9, 4], time_steps=6, input_kind="multibit")
    res = GoldenModel(artifact).run(random_inputs(artifact, 5, seed), record=True)
    cur = res.layers[0].current
    assert (cur == cur[:, :1, :]).all()


def test_batch_chunking_gives_the_same_results(seed, monkeypatch):
    import sw.golden as golden

    artifact = random_artifact(seed, sizes=[10, 8, 3], time_steps=3)
    x = random_inputs(artifact, 37, seed)
    whole = GoldenModel(artifact).run(x, record=True)
    monkeypatch.setattr(golden, "_CHUNK", 8)
    chunked = GoldenModel(artifact).run(x, record=True)
    np.testing.assert_array_equal(whole.scores, chunked.scores)
    for a, b in zip(whole.layers, chunked.layers, strict=True):
        for attr in ("current", "potential", "membrane", "spikes", "sums"):
            if getattr(a, attr) is not None:
                np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))


@pytest.mark.parametrize("bad,match", [
    (lambda x: x[:, :-1], r"inputs must have shape \(B, N\) = \(B, 6\)"),
    (lambda x: x + 100, r"inputs must be in 0\.\.7 \(multibit, 3 bit\), found"),
    (lambda x: x - 1 - x.max(), r"inputs must be in 0\.\.7"),
    (lambda x: x.astype(float) + 0.5, r"inputs must be integers"),
])
def test_bad_inputs_are_refused(bad, match):
    artifact = random_artifact(1, sizes=[6, 3], time_steps=2, input_kind="multibit",
                               input_bits=3)
    x = random_inputs(artifact, 2, 1)
    with pytest.raises(ValueError, match=match):
        GoldenModel(artifact).run(bad(x))


def test_spike_inputs_need_a_time_axis():
    artifact = random_artifact(2, sizes=[6, 3], time_steps=2, input_kind="spike")
    with pytest.raises(ValueError, match=r"\(B, T, N\) = \(B, 2, 6\)"):
        GoldenModel(artifact).run(np.zeros((1, 6), np.int64))


def test_empty_batch():
    artifact = random_artifact(3, sizes=[6, 4, 3], time_steps=2)
    res = GoldenModel(artifact).run(np.zeros((0, *artifact.input_shape()), np.int64))
    assert res.scores.shape == (0, 3) and res.predictions.shape == (0,)


@pytest.mark.parametrize("gain", [False, True])
@pytest.mark.parametrize("kind", ["spike", "multibit"])
def test_unrecorded_readout_of_step_sums_equals_the_recorded_one(seed, kind, gain):
    """An unrecorded run sums the readout's inputs over the steps before its one product; the
    recorded run (checked against the reference everywhere else) sums the T products. Same
    sums and scores, with and without folded step gains, readout first or after LIF layers."""
    for s, sizes in ((seed, [12, 9, 4]), (seed + 1, [7, 5]), (seed + 2, [20, 6, 6, 3])):
        artifact = random_artifact(s, sizes=sizes, time_steps=5, input_kind=kind,
                                   step_gain=gain)
        x = random_inputs(artifact, 11, s)
        recorded = GoldenModel(artifact).run(x, record=True)
        plain = GoldenModel(artifact).run(x)
        np.testing.assert_array_equal(plain.layers[-1].sums, recorded.layers[-1].sums,
                                      err_msg=f"seed {s}")
        np.testing.assert_array_equal(plain.scores, recorded.scores, err_msg=f"seed {s}")
        np.testing.assert_array_equal(plain.predictions, recorded.predictions)
