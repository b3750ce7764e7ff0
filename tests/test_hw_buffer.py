"""SampleBuffer (its three layouts, slot flow control), Sequencer (operation order) and the
parameter checks of the stage-level blocks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw import InputAdapter, LIFStage, ReadoutStage, SampleBuffer, Sequencer, timing
from hw.accelerator import Accelerator
from hw.synapse import SynapseArray
from hw.testing import unused_ok
from sw.folding import LayerFolding
from sw.randnet import random_artifact


@pytest.mark.parametrize("slots,rows,elements,planes,wl,rl", [
    (2, 3, 10, 1, 2, 4),     # chunked: 4 is a multiple of 2
    (3, 2, 11, 1, 3, 4),     # row layout: 4 is not a multiple of 3
    (2, 1, 9, 3, 3, 6),      # bit-planes, chunked
    (2, 1, 7, 2, 7, 2),      # row layout, one write group
    (2, 2, 13, 1, 8, 2),     # grouped: 8 = 4 x 2
    (3, 1, 16, 2, 4, 1),     # grouped, bit-planes
    (2, 1, 6, 1, 6, 2),      # row layout: 6 = 3 x 2, not a power-of-two multiple
])
@pytest.mark.parametrize("memory_register", [True, False])
def test_sample_buffer_reads_back_what_was_written(slots, rows, elements, planes, wl, rl,
                                                   memory_register, seed):
    rng = np.random.default_rng(seed)
    dut = SampleBuffer(slots=slots, rows=rows, elements=elements, planes=planes,
                       write_lanes=wl, read_lanes=rl, memory_register=memory_register)
    assert dut.read_latency == dut.r.signature.read_latency == (3 if memory_register else 2)
    per_word = wl // rl
    grouped = wl % rl == 0 and per_word & (per_word - 1) == 0
    assert dut.layout == ("chunked" if rl % wl == 0 else "grouped" if grouped else "row")
    samples = [rng.integers(0, 2, size=(rows, planes, elements)) for _ in range(slots + 2)]
    got = []

    def word(bits):
        return sum(int(b) << k for k, b in enumerate(bits))

    async def producer(ctx):
        for sample in samples:
            while not ctx.get(dut.w.free):
                await ctx.tick()
            slot = ctx.get(dut.w.next_slot)
            ctx.set(dut.w.claim, 1)
            await ctx.tick()
            ctx.set(dut.w.claim, 0)
            for r in range(rows):
                for b in range(planes):
                    for g in range(dut.groups):
                        bits = sample[r, b, g * wl:(g + 1) * wl]
                        ctx.set(dut.w.slot, slot)
                        ctx.set(dut.w.row, r)
                        ctx.set(dut.w.plane, b)
                        ctx.set(dut.w.group, g)
                        ctx.set(dut.w.data, word(bits))
                        ctx.set(dut.w.en, 1)
                        await ctx.tick()
            ctx.set(dut.w.en, 0)
            ctx.set(dut.w.commit, 1)
            await ctx.tick()
            ctx.set(dut.w.commit, 0)

    async def consumer(ctx):
        for _ in samples:
            while not ctx.get(dut.r.full):
                await ctx.tick()
            slot = ctx.get(dut.r.next_slot)
            ctx.set(dut.r.take, 1)
            await ctx.tick()
            ctx.set(dut.r.take, 0)
            sample = np.zeros((rows, planes, dut.chunks * rl), dtype=np.int64)
            for r in range(rows):
                for b in range(planes):
                    for k in range(dut.chunks):
                        ctx.set(dut.r.slot, slot)
                        ctx.set(dut.r.row, r)
                        ctx.set(dut.r.plane, b)
                        ctx.set(dut.r.chunk, k)
                        for _ in range(dut.read_latency):  # the one owner's latency
                            await ctx.tick()
                        value = ctx.get(dut.r.data)
                        sample[r, b, k * rl:(k + 1) * rl] = [(value >> i) & 1 for i in range(rl)]
            got.append(sample)
            ctx.set(dut.r.release, 1)
            await ctx.tick()
            ctx.set(dut.r.release, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert len(got) == len(samples)
    for n, (want, have) in enumerate(zip(samples, got, strict=True)):
        assert np.array_equal(have[:, :, :elements], want), f"sample {n}"
        assert not have[:, :, elements:].any(), f"sample {n}: padding must read as 0"


def test_sequencer_issues_the_documented_order():
    dut = Sequencer(groups=2, steps=2, planes=2, chunks=2, period=10)
    ops = []

    async def bench(ctx):
        ctx.set(dut.can_start, 1)
        await ctx.tick()
        ctx.set(dut.can_start, 0)
        for _ in range(2 * 10):
            if ctx.get(dut.valid):
                ops.append((ctx.get(dut.group), ctx.get(dut.time_step), ctx.get(dut.plane),
                            ctx.get(dut.chunk), ctx.get(dut.weight_addr), ctx.get(dut.first),
                            ctx.get(dut.shift), ctx.get(dut.last)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    expected = []
    for g in range(2):
        for t in range(2):
            for b in (1, 0):
                for k in range(2):
                    expected.append((g, t, b, k, g * 2 + k, int(k == 0 and b == 1),
                                     int(k == 0 and b == 0), int(k == 1 and b == 0)))
    assert ops == expected
    assert dut.cycles_per_sample == 20


@pytest.mark.parametrize("build,exc,message", [
    (lambda: SampleBuffer(slots=0, rows=1, elements=4, write_lanes=1, read_lanes=1),
     ValueError, "slots must be between 2 and 32, not 0"),
    (lambda: SampleBuffer(slots=2, rows=1, elements=4, write_lanes=5, read_lanes=1),
     ValueError, "write_lanes must be between 1 and 4, not 5"),
    (lambda: SampleBuffer(slots=2, rows=1, elements=4, planes=17, write_lanes=1,
                          read_lanes=1), ValueError, "planes must be between 1 and 16, not 17"),
    (lambda: Sequencer(groups=2, steps=1, planes=1, chunks=3, period=2), ValueError,
     "period must be >= 3, not 2"),
    (lambda: Sequencer(groups="2", chunks=1), TypeError, "groups must be an int, not '2'"),
    (lambda: InputAdapter(inputs=4, bits=5, lanes=8, rows=1, slots=2), ValueError,
     "lanes must be between 1 and 4, not 8"),
])
def test_block_parameter_errors(build, exc, message):
    with unused_ok(), pytest.raises(exc, match="^" + re.escape(message) + "$"):
        build()


def test_stage_parameter_errors(seed):
    art = random_artifact(seed, sizes=[6, 4, 3], input_kind="spike")
    fc, out = art.layers
    with unused_ok():
        with pytest.raises(TypeError,
                           match="^layer must be a LIFLayer or ConvLayer, not ReadoutLayer$"):
            LIFStage(out, LayerFolding(1, 1))
        with pytest.raises(ValueError, match="^layer 'fc0': pe 5 exceeds its 4 neurons$"):
            LIFStage(fc, LayerFolding(1, 5))
        with pytest.raises(TypeError, match=r"^folding must be a LayerFolding, not \(1, 1\)$"):
            ReadoutStage(out, (1, 1))
        with pytest.raises(ValueError, match="^weight_memory must be one of 'auto', 'block', "
                                             "'logic', not 'bram'$"):
            ReadoutStage(out, LayerFolding(1, 1), weight_memory="bram")
        with pytest.raises(ValueError, match="^out_depth must be between 1 and 64, not 0$"):
            ReadoutStage(out, LayerFolding(1, 1), out_depth=0)


def test_every_block_takes_the_one_set_of_ranges(seed):
    """slots, popcount_stages and out_depth have one range each (hw.timing); the plan and every
    block that takes them accept its ends and reject the values just outside with the same
    message."""
    art = random_artifact(seed, sizes=[6, 4, 3], input_kind="spike")
    fc, out = art.layers
    f = LayerFolding(1, 1)
    takers = {
        "slots": [
            lambda v: SampleBuffer(slots=v, rows=1, elements=4, write_lanes=1, read_lanes=1),
            lambda v: InputAdapter(inputs=4, bits=1, lanes=1, rows=1, slots=v),
            lambda v: LIFStage(fc, f, in_slots=v), lambda v: LIFStage(fc, f, out_slots=v),
            lambda v: ReadoutStage(out, f, in_slots=v),
            lambda v: Accelerator(art, None, slots=v)],
        "popcount_stages": [
            lambda v: SynapseArray(2, 2, inputs=4, popcount_stages=v),
            lambda v: LIFStage(fc, f, popcount_stages=v),
            lambda v: ReadoutStage(out, f, popcount_stages=v),
            lambda v: Accelerator(art, None, popcount_stages=v)],
        "out_depth": [
            lambda v: ReadoutStage(out, f, out_depth=v),
            lambda v: Accelerator(art, None, out_depth=v)],
    }
    ranges = {"slots": timing.SLOTS, "popcount_stages": timing.POPCOUNT_STAGES,
              "out_depth": timing.OUT_DEPTH}
    assert ranges == {"slots": (2, 32), "popcount_stages": (0, 8), "out_depth": (1, 64)}
    with unused_ok():
        for option, builds in takers.items():
            lo, hi = ranges[option]
            for build in builds:
                build(lo)
                build(hi)
                for bad in (lo - 1, hi + 1):
                    with pytest.raises(ValueError, match=rf"^\w*{option} must be between "
                                                         rf"{lo} and {hi}, not {bad}$"):
                        build(bad)
