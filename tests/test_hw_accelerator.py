"""The whole Accelerator in the Amaranth simulator against sw.golden, bit for bit.

Small random networks reach the corner cases (N not a multiple of SIMD, M not a multiple of PE,
T = 1, soft/hard reset, leak/no leak, step gains, zero-scale neurons and classes, multi-bit and
spike inputs, a readout-only network), with random gaps on ``i`` and back-pressure on ``o``;
the trace streams check every layer's x, h, v and spikes (and the readout's sums) against
``GoldenModel.run(record=True)``. Larger regressions run on the generated Verilog (sim/).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from hw import Accelerator, timing
from hw.generate import first_sample_latency
from hw.lif import LIFUnit
from hw.testing import run_accelerator, sample_beats, stream_get, stream_put, unused_ok
from sw.folding import Folding, LayerFolding
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_inputs

CASES = {
    # name: (random_artifact options, folding per layer or None for the default)
    "multibit-odd": (dict(sizes=[11, 7, 5], time_steps=3, input_kind="multibit", input_bits=3,
                          reset="soft", leak_shift=2, zero_scale=0.3), [(4, 3), (3, 2)]),
    "spike-two-hidden": (dict(sizes=[9, 6, 5, 4], time_steps=2, input_kind="spike",
                              reset="hard", leak_shift=None), [(2, 4), (6, 5), (5, 3)]),
    "t1-gains": (dict(sizes=[6, 5, 3], time_steps=1, input_kind="multibit", input_bits=2,
                      step_gain=True), [(6, 5), (5, 3)]),
    "gains-soft-noleak": (dict(sizes=[7, 9, 4], time_steps=4, input_kind="spike",
                               step_gain=True, reset="soft", leak_shift=None),
                          [(3, 2), (4, 1)]),
    "readout-only": (dict(sizes=[10, 4], time_steps=3, input_kind="multibit", input_bits=4,
                          step_gain=True), [(3, 3)]),
    "replay-bound": (dict(sizes=[4, 6, 3], time_steps=8, input_kind="multibit", input_bits=1,
                          reset="soft", leak_shift=3), [(4, 2), (3, 1)]),  # T > P·SF
    "default-folding": (dict(sizes=[12, 10, 3], time_steps=2, input_kind="multibit",
                             input_bits=5, reset="hard", leak_shift=1), None),
    # The readout has slack in the period: one result credit, no output FIFO.
    "one-credit": (dict(sizes=[16, 12, 3], time_steps=4, input_kind="multibit", input_bits=2,
                        reset="soft", leak_shift=1), [(2, 1), (12, 3)]),
}


def _build(name, seed, **options):
    kwargs, fold = CASES[name]
    art = random_artifact(seed, **kwargs)
    folding = None if fold is None else Folding(tuple(LayerFolding(s, p) for s, p in fold))
    return art, Accelerator(art, folding, **options)


def _check_outputs(res, golden, where):
    for s, out in enumerate(res["outputs"]):
        assert out["scores"] == golden.scores[s].tolist(), f"{where}: sample {s} scores"
        assert out["prediction"] == int(golden.predictions[s]), f"{where}: sample {s} class"


def _check_traces(dut, res, golden, samples):
    art = dut.artifact
    for layer, f, trace in zip(art.layers, dut.folding.layers, golden.layers, strict=True):
        beats = res["traces"][layer.name]
        nf = f.neuron_folds(layer)
        per_sample = nf * (art.time_steps if layer.kind == "lif" else 1)
        assert len(beats) == samples * per_sample, f"{layer.name}: trace beat count"
        for n, beat in enumerate(beats):
            s, k = divmod(n, per_sample)
            g, t = divmod(k, art.time_steps) if layer.kind == "lif" else (k, None)
            assert beat["group"] == g
            lanes = [g * f.pe + p for p in range(f.pe) if g * f.pe + p < layer.neurons]
            if layer.kind == "lif":
                assert beat["time_step"] == t
                where = f"sample {s}, layer {layer.name!r}, time step {t}, group {g}"
                spikes = [(beat["spikes"] >> p) & 1 for p in range(len(lanes))]
                assert spikes == trace.spikes[s, t, lanes].tolist(), where
                n_l = len(lanes)
                assert beat["current"][:n_l] == trace.current[s, t, lanes].tolist(), where
                assert beat["potential"][:n_l] == trace.potential[s, t, lanes].tolist(), where
                assert beat["membrane"][:n_l] == trace.membrane[s, t, lanes].tolist(), where
            else:
                assert beat["sums"][:len(lanes)] == trace.sums[s, lanes].tolist()


@pytest.mark.parametrize("memory_register", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_accelerator_matches_golden_with_gaps_and_backpressure(name, memory_register, seed):
    art, dut = _build(name, seed, trace=True, memory_register=memory_register)
    x = random_inputs(art, 5, seed)
    golden = GoldenModel(art).run(x, record=True)
    res = run_accelerator(dut, x, seed=seed, gaps=0.3, backpressure=0.3)
    _check_outputs(res, golden, name)
    _check_traces(dut, res, golden, len(x))


@pytest.mark.parametrize("memory_register", [True, False])
@pytest.mark.parametrize("name", ["multibit-odd", "spike-two-hidden", "replay-bound",
                                  "default-folding", "one-credit"])
def test_accelerator_steady_state_meets_the_ideal_bound(name, memory_register, seed):
    """With a host that never waits, outputs come exactly ``ideal_cycles`` apart, and the
    first one the described latency after the first input beat (with and without the
    memory-read registers, whose latencies the plan follows)."""
    art, dut = _build(name, seed, memory_register=memory_register)
    x = random_inputs(art, 7, seed)
    res = run_accelerator(dut, x, seed=seed)
    _check_outputs(res, GoldenModel(art).run(x), name)
    gaps = np.diff(res["cycles"])
    assert gaps[2:].tolist() == [dut.ideal_cycles] * (len(x) - 3), (gaps, dut.plan)
    assert res["cycles"][0] - res["inputs"][0] == first_sample_latency(dut)


def test_one_result_credit_only_where_the_readout_has_slack(seed):
    """The plan gives one credit (no output FIFO: the score registers are the one copy of a
    result) where a sample's readout and its result's return fit in the period; forced on a
    network without that slack, the readout waits for its result to be taken and the outputs
    come further apart than the bound (still exact)."""
    art, dut = _build("one-credit", seed)
    assert dut.plan.out_depth == 1, dut.plan
    x = random_inputs(art, 6, seed)
    res = run_accelerator(dut, x, seed=seed)
    _check_outputs(res, GoldenModel(art).run(x), "one-credit")
    gaps = np.diff(res["cycles"])[2:]
    assert (gaps == dut.ideal_cycles).all(), (gaps.tolist(), dut.plan)

    art, dut = _build("multibit-odd", seed)
    assert dut.plan.out_depth == 2, dut.plan
    forced = Accelerator(art, dut.folding, out_depth=1)
    x = random_inputs(art, 6, seed)
    golden = GoldenModel(art).run(x)
    gaps = {}
    for name, acc in (("planned", dut), ("out_depth=1", forced)):
        res = run_accelerator(acc, x, seed=seed)
        _check_outputs(res, golden, f"multibit-odd, {name}")
        gaps[name] = np.diff(res["cycles"])[2:]
    assert (gaps["planned"] == dut.ideal_cycles).all(), (gaps["planned"].tolist(), dut.plan)
    assert (gaps["out_depth=1"] > dut.ideal_cycles).all(), (gaps["out_depth=1"].tolist(),
                                                             forced.plan)


def test_accelerator_reset_mid_stream_starts_clean(seed):
    """A reset in the middle of a sample drops everything in flight; the next beats are a new
    sample and come out exact."""
    art, dut = _build("multibit-odd", seed)
    x = random_inputs(art, 4, seed)
    golden = GoldenModel(art).run(x[2:])
    first = [b for s in x[:2] for b in sample_beats(art, dut.lanes, s)]
    second = [b for s in x[2:] for b in sample_beats(art, dut.lanes, s)]
    cut = len(first) - 1  # stop one beat short of the second sample's end
    got = []

    top = Module()
    top.submodules.dut = dut
    top.domains.sync = domain = ClockDomain("sync")

    async def producer(ctx):
        await stream_put(ctx, dut.i, first[:cut])
        for _ in range(5):
            await ctx.tick()
        ctx.set(domain.rst, 1)
        await ctx.tick()
        ctx.set(domain.rst, 0)
        await stream_put(ctx, dut.i, second)

    async def consumer(ctx):
        # Outputs of samples cut off by the reset may appear before it; keep only later ones.
        ctx.set(dut.o.ready, 1)
        async for _, rst, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if rst:
                got.clear()
                break
            if valid:
                got.append(int(payload.prediction))
        after = await stream_get(ctx, dut.o, len(golden.predictions))
        got.extend(int(p.prediction) for p in after)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert got == golden.predictions.tolist()


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(lanes=0), ValueError, "lanes must be between 1 and the 11 inputs, not 0"),
    (dict(lanes=2.0), TypeError, "lanes must be an int, not 2.0"),
    (dict(slots=1), ValueError, "slots must be between 2 and 32, not 1"),
    (dict(slots=33), ValueError, "slots must be between 2 and 32, not 33"),
    (dict(popcount_stages=-1), ValueError, "popcount_stages must be between 0 and 8, not -1"),
    (dict(out_depth=0), ValueError, "out_depth must be between 1 and 64, not 0"),
    (dict(trace="yes"), TypeError, "trace must be a bool, not 'yes'"),
    (dict(folding="4x3"), TypeError, "folding must be a sw.folding.Folding, not '4x3'"),
    (dict(folding=Folding((LayerFolding(12, 1), LayerFolding(1, 1)))), ValueError,
     "layer 'fc0': simd 12 exceeds its 11 inputs"),
    (dict(folding=Folding((LayerFolding(1, 1),))), ValueError,
     "folding gives 1 layers, the artifact has 2"),
])
def test_accelerator_parameter_errors(kwargs, exc, message, seed):
    art = random_artifact(seed, **CASES["multibit-odd"][0])
    folding = kwargs.pop("folding", None)
    with unused_ok(), pytest.raises(exc, match="^" + re.escape(message) + "$"):
        Accelerator(art, folding, **kwargs)
    with unused_ok(), pytest.raises(TypeError, match="^artifact must be an Artifact, not dict$"):
        Accelerator({}, None)


def test_a_one_cycle_network_with_23_slots_runs_at_the_bound(seed):
    """Every layer folded fully, T = 1, 8 popcount stages: a period of one cycle, and the
    hidden buffer needs 23 slots for its round trip (the most any plan derives; the blocks took
    at most 16 before, so the default build of such a network failed)."""
    art = random_artifact(1, sizes=[2, 2, 2], time_steps=1, input_kind="multibit",
                          input_bits=1, step_gain=True)
    dut = Accelerator(art, Folding.parse("2x2,2x2", art), popcount_stages=8)
    assert (dut.ideal_cycles, dut.plan.slots[1]) == (1, 23)
    x = random_inputs(art, 30, seed)
    res = run_accelerator(dut, x)
    _check_outputs(res, GoldenModel(art).run(x), "one-cycle")
    gaps = np.diff(res["cycles"])
    assert gaps[2:].tolist() == [1] * (len(x) - 3)
    assert res["cycles"][0] - res["inputs"][0] == first_sample_latency(dut)


LATENCY_NETS = {
    # name: (random_artifact options, folding); LIF with and without gains, multi-bit (replay)
    # and spike inputs, readouts of 1, 3 and 4 classes per group
    "multibit-gains": (dict(sizes=[9, 6, 5, 4], time_steps=3, input_kind="multibit",
                            input_bits=2, step_gain=True), "3x2,2x3,3x2"),
    "replay-plain": (dict(sizes=[4, 6, 3], time_steps=8, input_kind="multibit", input_bits=1,
                          step_gain=False), "4x2,3x1"),
    "spike-gains-soft": (dict(sizes=[10, 7, 5], time_steps=3, input_kind="spike",
                              step_gain=True, reset="soft"), "5x2,7x4"),
    "spike-plain": (dict(sizes=[12, 9, 10], time_steps=2, input_kind="spike",
                         step_gain=False), "4x3,9x3"),
}


@pytest.mark.parametrize("memory_register", [True, False])
@pytest.mark.parametrize("name", sorted(LATENCY_NETS))
def test_plan_latencies_are_the_sums_of_the_elaborated_blocks(name, memory_register):
    """Each stage's latency (and the plan's, which the buffer slots, result credits and the
    described first-sample latency use) is its buffer's read latency plus the ``latency`` of
    the blocks it elaborates, with the stage's own parameter register (a replaying layer's
    only with ``memory_register``) and (multi-bit LIF) its last group's replay."""
    kwargs, fold = LATENCY_NETS[name]
    art = random_artifact(0, **kwargs)
    seen = set()
    with unused_ok():
        acc = Accelerator(art, Folding.parse(fold, art), memory_register=memory_register)
        for k, (layer, stage, buf) in enumerate(zip(art.layers, acc.stages, acc.buffers,
                                                    strict=True)):
            m = stage.elaborate(None)
            assert m.submodules.synapse is stage.synapse
            assert stage.front_latency == buf.read_latency == (3 if memory_register else 2)
            front = buf.read_latency + stage.synapse.latency
            if layer.kind == "lif":
                assert m.submodules.lif is stage.lif
                expected = front + timing.PARAMS_READ_LATENCY + stage.lif.latency
                if layer.input.kind == "multibit":
                    ops = layer.input.bits * stage.folding.synapse_folds(layer)
                    expected += layer.time_steps - (max(ops, layer.time_steps) - ops)
                    if not memory_register:
                        expected -= timing.PARAMS_READ_LATENCY
                seen.add(("lif", stage.lif.latency, layer.input.kind))
            else:
                assert m.submodules.unit is stage.unit
                expected = front + stage.unit.latency
                seen.add(("readout", stage.folding.pe))
            assert acc.plan.stage_latency[k] == stage.latency == expected, (name, k)
        del acc, stage, m, buf
    want = {"multibit-gains": {("lif", 4, "multibit"), ("lif", 4, "spike"), ("readout", 2)},
            "replay-plain": {("lif", 3, "multibit"), ("readout", 1)},
            "spike-gains-soft": {("lif", 4, "spike"), ("readout", 4)},
            "spike-plain": {("lif", 3, "spike"), ("readout", 3)}}
    assert seen == want[name]


def test_blocks_and_plan_share_the_latency_owner(monkeypatch):
    """Giving the LIF unit's one latency function two more cycles changes the unit's
    ``latency``, its stage's and the plan's together."""
    art = random_artifact(0, **LATENCY_NETS["spike-gains-soft"][0])
    folding = Folding.parse(LATENCY_NETS["spike-gains-soft"][1], art)
    with unused_ok():
        before = Accelerator(art, folding)
        lif, stage, plan = (before.stages[0].lif.latency, before.stages[0].latency,
                            before.plan.stage_latency)
        original = timing.lif_latency
        monkeypatch.setattr(timing, "lif_latency", lambda gains: original(gains) + 2)
        after = Accelerator(art, folding)
        unit = LIFUnit(2, width=8, frac=2, leak_shift=None, reset="hard", step_gain=(1, 3),
                       current_width=6)
        assert unit.latency == 4 + 2
        assert after.stages[0].lif.latency == lif + 2
        assert after.stages[0].latency == stage + 2
        assert after.plan.stage_latency == (plan[0] + 2, plan[1])
        del before, after, unit


@pytest.mark.slow
def test_random_networks_run_at_the_bound(seed):
    """Random networks, half with the default folding and half with a random one: outputs exact,
    steady state exactly at the ideal bound, first output after the described latency."""
    rng = np.random.default_rng(seed)
    for case in range(24):
        sizes = [int(v) for v in rng.integers(1, 24, size=int(rng.integers(2, 5)))]
        art = random_artifact(rng, sizes=sizes)
        folding = None if case % 2 else Folding(tuple(
            LayerFolding(int(rng.integers(1, la.inputs + 1)), int(rng.integers(1, la.neurons + 1)))
            for la in art.layers))
        memory_register = bool(rng.integers(2))
        dut = Accelerator(art, folding, memory_register=memory_register)
        x = random_inputs(art, 6, rng)
        res = run_accelerator(dut, x)
        where = (f"case {case}: {art.summary()} folding {dut.folding} "
                 f"memory_register={memory_register}")
        _check_outputs(res, GoldenModel(art).run(x), where)
        gaps = np.diff(res["cycles"])[2:].tolist()
        assert gaps == [dut.ideal_cycles] * len(gaps), (where, gaps, dut.plan)
        assert res["cycles"][0] - res["inputs"][0] == first_sample_latency(dut), where
