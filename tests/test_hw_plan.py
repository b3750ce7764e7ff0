"""hw.plan: the cycle bound, the default folding and lanes, buffer sizing (no simulation)."""

from __future__ import annotations

import re

import pytest

from hw.plan import (
    buffer_slots,
    default_folding,
    default_lanes,
    input_beats,
    input_cycles,
    make_plan,
    result_credits,
    stage_cycles,
)
from sw.folding import Folding, LayerFolding
from sw.randnet import random_artifact


@pytest.fixture(scope="module")
def digits():
    """The default digits geometry: 64 5-bit pixels -> 128 LIF -> 10 classes, T = 4."""
    return random_artifact(0, sizes=[64, 128, 10], time_steps=4, input_kind="multibit",
                           input_bits=5)


def test_stage_cycles_follow_the_bound(digits):
    fc, out = digits.layers
    assert stage_cycles(fc, LayerFolding(64, 8)) == 5 * 1 * 16          # P·SF·NF
    assert stage_cycles(fc, LayerFolding(16, 4)) == 5 * 4 * 32
    assert stage_cycles(out, LayerFolding(64, 1)) == 4 * 2 * 10          # T·SF·NF
    assert stage_cycles(out, LayerFolding(128, 10)) == 4
    # a multi-bit LIF layer needs T cycles per neuron group for its LIF replay
    one_plane = random_artifact(1, sizes=[8, 6, 2], time_steps=16, input_kind="multibit",
                                input_bits=1)
    assert stage_cycles(one_plane.layers[0], LayerFolding(8, 3)) == 2 * 16


def test_default_folding_is_the_fastest_within_the_budget(digits):
    folding = default_folding(digits)
    cycles = [stage_cycles(la, f) for la, f in zip(digits.layers, folding.layers, strict=True)]
    bits = sum(f.simd * f.pe for f in folding.layers)
    assert bits <= 512
    assert str(folding) == "64x4,32x1" and cycles == [160, 160]
    fast = default_folding(digits, budget=4096)
    assert max(stage_cycles(la, f) for la, f in zip(digits.layers, fast.layers,
                                                    strict=True)) < 160
    assert str(default_folding(digits, budget=1)) == "1x1,1x1"


def test_default_lanes_keep_the_input_off_the_critical_path(digits):
    folding = Folding.parse("64x8,64x1", digits)
    # slowest stage 80 cycles; each beat takes 5 cycles (one per bit-plane):
    # 4 lanes: 16 beats, 80 cycles > 40; 8 lanes: 8 beats, 40 cycles <= 40
    assert default_lanes(digits, folding) == 8
    assert (input_beats(digits, 8), input_cycles(digits, 8)) == (8, 40)
    spikes = random_artifact(2, sizes=[20, 6, 3], time_steps=3, input_kind="spike")
    assert input_beats(spikes, 4) == 3 * 5


def test_buffers_turn_around_within_the_period():
    assert buffer_slots(160, 13, 160, 160) == 3
    assert buffer_slots(10, 5, 100, 100) == 2
    assert buffer_slots(5, 11, 4, 5) == 5
    assert result_credits(160, 10, 160) == 2
    assert result_credits(4, 10, 5) == 4


def test_make_plan_fills_in_the_defaults(digits):
    plan = make_plan(digits)
    assert plan.ideal_cycles == max(plan.input_cycles, *plan.stage_cycles)
    assert plan.bottleneck in ("stage 0", "stage 1")
    assert len(plan.slots) == 2 and all(s >= 2 for s in plan.slots)
    assert make_plan(digits, slots=4).slots == (4, 4)


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(budget=0), ValueError, "budget must be >= 1, not 0"),
    (dict(budget="big"), TypeError, "budget must be an int, not 'big'"),
    (dict(lanes=65), ValueError, "lanes must be between 1 and the 64 inputs, not 65"),
    (dict(slots=17), ValueError, "slots must be between 2 and 16, not 17"),
    (dict(popcount_stages=True), TypeError, "popcount_stages must be an int, not True"),
    (dict(folding=[LayerFolding(1, 1)]), TypeError,
     "folding must be a sw.folding.Folding, not [LayerFolding(simd=1, pe=1)]"),
])
def test_make_plan_parameter_errors(digits, kwargs, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        make_plan(digits, **kwargs)
