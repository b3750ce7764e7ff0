"""hw.plan: the cycle bound, the default folding and lanes, buffer sizing (no simulation)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from hw import timing
from hw.plan import (
    buffer_slots,
    default_folding,
    default_lanes,
    input_beats,
    input_cycles,
    make_plan,
    result_credits,
    stage_cycles,
    stage_latency,
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
    (dict(slots=33), ValueError, "slots must be between 2 and 32, not 33"),
    (dict(slots=1), ValueError, "slots must be between 2 and 32, not 1"),
    (dict(slots=2.0), TypeError, "slots must be an int or None, not 2.0"),
    (dict(popcount_stages=True), TypeError, "popcount_stages must be an int, not True"),
    (dict(popcount_stages=9), ValueError, "popcount_stages must be between 0 and 8, not 9"),
    (dict(out_depth=65), ValueError, "out_depth must be between 1 and 64, not 65"),
    (dict(out_depth=True), TypeError, "out_depth must be an int or None, not True"),
    (dict(lanes="8"), TypeError, "lanes must be an int, not '8'"),
    (dict(folding=[LayerFolding(1, 1)]), TypeError,
     "folding must be a sw.folding.Folding, not [LayerFolding(simd=1, pe=1)]"),
])
def test_make_plan_parameter_errors(digits, kwargs, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        make_plan(digits, **kwargs)


def test_the_ranges_are_accepted_at_their_ends(digits):
    lo, hi = timing.SLOTS
    assert make_plan(digits, slots=lo).slots == (lo, lo)
    assert make_plan(digits, slots=hi).slots == (hi, hi)
    for depth in timing.OUT_DEPTH:
        assert make_plan(digits, out_depth=depth).out_depth == depth
    for stages in timing.POPCOUNT_STAGES:
        assert make_plan(digits, popcount_stages=stages).popcount_stages == stages


def test_a_one_cycle_network_gets_the_slots_it_needs():
    """Every layer folded fully, T = 1: a period of one cycle. The hidden buffer's round trip
    is its producer's latency plus a few cycles, so it needs that many slots (18 here, 23 with
    8 popcount stages: more than the 16 the blocks used to take)."""
    art = random_artifact(1, sizes=[2, 2, 2], time_steps=1, input_kind="multibit",
                          input_bits=1, step_gain=True)
    assert art.layers[0].step_gain != (1,)    # the seed draws a gain: a 4-cycle LIF unit
    folding = Folding.parse("2x2,2x2", art)
    plan = make_plan(art, folding)
    assert plan.ideal_cycles == 1
    assert plan.slots[1] == 1 + plan.stage_latency[0] + 1 + 2 == 18
    deep = make_plan(art, folding, popcount_stages=8)
    assert deep.slots[1] == 23 <= timing.SLOTS[1]


def test_a_derived_count_beyond_the_range_is_reported(digits, monkeypatch):
    """Should a block's pipeline grow past what the ranges allow, the plan says so (instead of
    a buffer rejecting its slots)."""
    art = random_artifact(1, sizes=[2, 2, 2], time_steps=1, input_kind="multibit",
                          input_bits=1, step_gain=True)
    monkeypatch.setattr(timing, "synapse_latency", lambda stages: stages + 80)
    with pytest.raises(ValueError, match=r"^the default slots would be \d+, more than the 32 "
                                         r"the blocks take \(hw\.timing\); give slots or "
                                         r"fold less$"):
        make_plan(art, Folding.parse("2x2,2x2", art))
    plan = make_plan(art, Folding.parse("2x2,2x2", art), slots=32, out_depth=64)
    assert plan.slots == (32, 32)
    with pytest.raises(ValueError, match=r"^the default out_depth would be \d+, more than the "
                                         r"64 the blocks take"):
        make_plan(art, Folding.parse("2x2,2x2", art), slots=32)


@pytest.mark.parametrize("owner,layer", [("lif_latency", 0), ("synapse_latency", None),
                                         ("buffer_read_latency", None),
                                         ("readout_latency", -1)])
def test_the_plan_follows_the_one_latency_owner(digits, monkeypatch, owner, layer):
    """A block's latency is one function in hw.timing: give it 100 more registers and the
    plan's stage latencies (every stage that has the block), and with them the buffer slots
    and result credits, follow."""
    folding = Folding.parse("64x8,64x1", digits)     # period 80: room for a few more slots
    before = make_plan(digits, folding, popcount_stages=3)
    original = getattr(timing, owner)
    monkeypatch.setattr(timing, owner, lambda *args: original(*args) + 100)
    after = make_plan(digits, folding, popcount_stages=3)
    grown = [after.stage_latency[k] - before.stage_latency[k] for k in range(2)]
    assert grown == ([100, 100] if layer is None else
                     [100 if k == layer % 2 else 0 for k in range(2)])
    assert after.stage_cycles == before.stage_cycles
    period = after.ideal_cycles
    assert after.slots == (buffer_slots(after.input_cycles, 0, after.stage_cycles[0], period),
                           buffer_slots(after.stage_cycles[0], after.stage_latency[0],
                                        after.stage_cycles[1], period))
    assert after.out_depth == result_credits(after.stage_cycles[1], after.stage_latency[1],
                                             period)
    assert (after.slots, after.out_depth) != (before.slots, before.out_depth)


def test_popcount_stages_move_every_stage_latency_one_for_one(digits):
    base = make_plan(digits, popcount_stages=0)
    for stages in range(1, 9):
        plan = make_plan(digits, popcount_stages=stages)
        assert [b + stages for b in base.stage_latency] == list(plan.stage_latency)


def test_stage_latency_is_the_sum_of_the_block_formulas(digits):
    """An independent statement of the sums (the formulas as they stood before hw.timing):
    buffer read 3 (memory, word register, chunk register), synapse array popcount + 2, then a
    LIF stage's parameter read 1 and its LIF unit 3 (4 with gains), or the readout unit
    6 + ceil_log2(PE); a multi-bit LIF layer adds its last group's T-step replay less the idle
    tail of the group's period."""
    fc, out = digits.layers
    for f in (LayerFolding(64, 8), LayerFolding(16, 4), LayerFolding(1, 128)):
        ops = 5 * f.synapse_folds(fc)
        idle = max(ops, 4) - ops
        assert stage_latency(fc, f, 3) == 3 + 5 + 1 + 4 + 3 - idle
    for pe, levels in ((1, 0), (2, 1), (3, 2), (10, 4)):
        assert stage_latency(out, LayerFolding(8, pe), 2) == 3 + 4 + 6 + levels
    gains = random_artifact(4, sizes=[10, 7, 5], time_steps=3, input_kind="spike",
                            step_gain=True)
    assert gains.layers[0].step_gain != (1, 1, 1)
    assert stage_latency(gains.layers[0], LayerFolding(5, 7), 3) == 3 + 5 + 1 + 4


def test_plan_imports_without_amaranth():
    """The host client and the CLIs use hw.plan (and hw.timing, hw.interface) on machines without
    Amaranth."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'amaranth' or name.startswith('amaranth.'):\n"
        "            raise ImportError('amaranth is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import hw.plan, hw.timing, hw.interface\n"
        "from sw.randnet import random_artifact\n"
        "print(hw.plan.make_plan(random_artifact(0, sizes=[6, 4, 3])).ideal_cycles > 0)\n"
        "print(any(m.startswith('amaranth') for m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "False"]
