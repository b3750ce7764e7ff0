"""ReadoutUnit against docs/arithmetic.md §6: S = Σ_t G[t]·x[t], score = A·S + C, argmax (ties:
lowest index)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from hw.accelerator import Accelerator, output_layout
from hw.readout import ReadoutUnit, readout_rom_layout, readout_rom_words, result_layout
from hw.testing import unused_ok
from sw import fixedpoint as fx
from sw.randnet import random_artifact


def _run(dut, samples, steps, rng=None):
    """Feed each sample's (groups x steps) operations; return results and trace beats."""
    results, traces = [], []
    pe, groups = dut._pe, dut.groups

    async def producer(ctx):
        for x in samples:  # x: (steps, classes) sums
            for g in range(groups):
                for t in range(steps):
                    while rng is not None and rng.random() < 0.3:
                        ctx.set(dut.i.valid, 0)
                        await ctx.tick()
                    lanes = [int(x[t, g * pe + p]) if g * pe + p < x.shape[1] else 0
                             for p in range(pe)]
                    ctx.set(dut.i.payload, {"current": lanes, "time_step": t, "group": g})
                    ctx.set(dut.i.valid, 1)
                    await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(dut.latency + 1):
            await ctx.tick()

    async def monitor(ctx):
        async for _, _, ov, o, tv, tr in ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                          dut.trace.valid, dut.trace.payload):
            if ov:
                results.append((int(o.prediction), [int(v) for v in o.scores]))
            if tv:
                traces.append((int(tr.group), [int(v) for v in tr.sums]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_process(monitor)
    sim.run()
    return results, traces


def test_readout_worked_example_tie_goes_to_the_lowest_index():
    """arithmetic.md §6: S = 2, 100, 3; A = 3, 0, 3; C = -4, 7, -2 -> scores 2, 7, 7 -> 1."""
    dut = ReadoutUnit(2, classes=3, step_gain=(1,), current_width=8, sum_width=8,
                      score_width=10, scale=[3, 0, 3], offset=[-4, 7, -2], direct=True)
    results, traces = _run(dut, [np.array([[2, 100, 3]])], 1)
    assert results == [(1, [2, 7, 7])]
    assert traces == [(0, [2, 100]), (1, [3, 0])]


def test_readout_padding_lanes_never_win():
    """4 classes, 3 per group: the second group's lanes 1 and 2 are padding (their score is
    0, their index would wrap to 0 and 1 in the 2-bit prediction); every real score is
    negative, so a padding lane taken for a class would win."""
    dut = ReadoutUnit(3, classes=4, step_gain=(1, 1), current_width=8, sum_width=9,
                      score_width=12, scale=[1, 1, 1, 1], offset=[-400, -300, -200, -100])
    x = np.array([[5, 1, -7, 3], [2, 0, 1, -4]])
    results, _ = _run(dut, [x], 2)
    assert results == [(3, [-393, -299, -206, -101])]


@pytest.mark.parametrize("classes,pe,steps,direct,gains", [
    (7, 3, 4, False, False),
    (5, 5, 1, False, False),
    (10, 1, 3, False, True),
    (6, 4, 4, True, True),
])
def test_readout_scores_and_argmax(classes, pe, steps, direct, gains, seed):
    rng = np.random.default_rng(seed)
    gain = tuple(int(g) for g in rng.integers(1, 5, size=steps)) if gains else (1,) * steps
    xmax = 40
    scale = rng.integers(0, 9, size=classes)
    scale[rng.random(classes) < 0.2] = 0
    offset = rng.integers(-300, 300, size=classes)
    smax = xmax * sum(gain)
    samples = []
    for _ in range(5):
        x = rng.integers(-xmax, xmax + 1, size=(steps, classes))
        if direct:
            x[:] = x[0]
        if rng.random() < 0.4:  # force a tie between two classes
            a, b = sorted(rng.choice(classes, size=2, replace=False))
            scale[b], offset[b] = scale[a], offset[a]
        samples.append(x)
    score_width = fx.signed_width(int(max(scale * smax + np.abs(offset))))
    dut = ReadoutUnit(pe, classes=classes, step_gain=gain, current_width=fx.signed_width(xmax),
                      sum_width=fx.signed_width(smax), score_width=score_width, scale=scale,
                      offset=offset, direct=direct)
    results, traces = _run(dut, [s[:1] if direct else s for s in samples],
                           1 if direct else steps, rng)
    expected, expected_traces = [], []
    for x in samples:
        sums = (x[0] * sum(gain)) if direct else (np.asarray(gain)[:, None] * x).sum(axis=0)
        scores = scale * sums + offset
        expected.append((int(np.argmax(scores)), [int(v) for v in scores]))
        for g in range(dut.groups):
            expected_traces.append((g, [int(sums[g * pe + p]) if g * pe + p < classes else None
                                        for p in range(pe)]))
    assert results == expected
    assert len(traces) == len(expected_traces)
    for (g, got), (eg, exp) in zip(traces, expected_traces, strict=True):
        assert g == eg
        assert [v for v, e in zip(got, exp, strict=True) if e is not None] == \
            [e for e in exp if e is not None]


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(pe=4), ValueError, "pe must be between 1 and 3, not 4"),
    (dict(classes=0), ValueError, "classes must be >= 1, not 0"),
    (dict(scale=[1, -1, 0]), ValueError, "scale must hold ints >= 0, not [1, -1, 0]"),
    (dict(offset=[1, 2]), ValueError, "scale and offset must hold 3 values each, not 3 and 2"),
    (dict(direct=1), TypeError, "direct must be a bool, not 1"),
    (dict(step_gain=(0,)), ValueError, "step_gain must hold ints >= 1, not (0,)"),
])
def test_readout_parameter_errors(kwargs, exc, message):
    args = dict(pe=1, classes=3, step_gain=(1,), current_width=4, sum_width=4, score_width=8,
                scale=[1, 1, 1], offset=[0, 0, 0], direct=False)
    args.update(kwargs)
    pe = args.pop("pe")
    with unused_ok(), pytest.raises(exc, match="^" + re.escape(message) + "$"):
        ReadoutUnit(pe, **args)


def _old_readout_rom_words(scale, offset, pe, scale_width, score_width):
    """The ROM words as they were built before the layout did (hand shifts)."""
    words = []
    for g in range(-(-len(scale) // pe)):
        word = 0
        for p in range(pe):
            j = g * pe + p
            a, c = (int(scale[j]), int(offset[j])) if j < len(scale) else (0, 0)
            word |= a << (p * scale_width)
            word |= (c & ((1 << score_width) - 1)) << (pe * scale_width + p * score_width)
        words.append(word)
    return words


@pytest.mark.parametrize("classes,pe", [(10, 3), (10, 10), (4, 1), (7, 4)])
def test_readout_rom_words_are_the_layout_the_unit_reads(classes, pe, seed):
    rng = np.random.default_rng(seed)
    scale = rng.integers(0, 9, size=classes)
    offset = rng.integers(-300, 300, size=classes)
    offset[0] = -300                                   # a negative offset in every case
    scale_width, score_width = fx.unsigned_width(int(scale.max())), 12
    words = readout_rom_words(scale, offset, pe, scale_width, score_width)
    assert words == _old_readout_rom_words(scale, offset, pe, scale_width, score_width)
    with unused_ok():
        dut = ReadoutUnit(pe, classes=classes, step_gain=(1,), current_width=8, sum_width=10,
                          score_width=score_width, scale=scale, offset=offset)
        assert dut.rom_words == words
        assert dut.rom_layout == readout_rom_layout(pe, scale_width, score_width)
        del dut


@pytest.mark.parametrize("pe,latency", [(1, 6), (2, 7), (3, 8), (4, 8), (5, 9), (9, 10)])
def test_readout_latency_grows_with_the_argmax_tree(pe, latency):
    with unused_ok():
        dut = ReadoutUnit(pe, classes=9, step_gain=(1,), current_width=4, sum_width=4,
                          score_width=8, scale=[1] * 9, offset=[0] * 9)
        assert dut.latency == latency
        del dut


def test_the_result_layout_is_the_accelerators_output_beat():
    """One layout: the unit's ``o``, the readout stage's result and ``hw.output_layout``."""
    art = random_artifact(2, sizes=[6, 4, 5])
    with unused_ok():
        acc = Accelerator(art, None)
        layout = result_layout(5, art.readout.score.width)
        assert acc.stages[-1].unit.o_layout == layout
        assert acc.stages[-1].result_layout == layout
        assert output_layout(art) == layout
        assert acc.o.payload.shape() == layout
        del acc
    assert [name for name, _ in layout] == ["prediction", "scores"]
    assert layout["prediction"].shape == unsigned(3)
    assert layout["scores"].shape == data.ArrayLayout(signed(art.readout.score.width), 5)
    assert result_layout(1, 4)["prediction"].shape == unsigned(1)   # at least one bit
