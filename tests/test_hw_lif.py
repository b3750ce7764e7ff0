"""LIFUnit against the rules of docs/arithmetic.md §4 (sw.fixedpoint.leak, h >= Θ, resets)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hw.common import gain_lookup
from hw.lif import LIFUnit
from hw.stage import lif_rom_layout, lif_rom_words
from hw.testing import unused_ok
from sw import fixedpoint as fx
from sw.randnet import random_artifact


def _layer(seed, *, reset, leak_shift, step_gain, neurons=7, time_steps=5):
    art = random_artifact(seed, sizes=[9, neurons, 2], time_steps=time_steps,
                          input_kind="multibit", input_bits=3, reset=reset,
                          leak_shift=leak_shift, step_gain=step_gain, zero_scale=0.3)
    return art.layers[0]


def _expected(layer, ops):
    """(h, v, s) per operation and lane, from the arithmetic doc."""
    f = layer.membrane.frac
    state = {}
    out = []
    for op in ops:
        hs, vs, ss = [], [], []
        for p, (x, b, th, c) in enumerate(zip(op["current"], op["bias"], op["threshold"],
                                              op["connected"], strict=True)):
            v_prev = 0 if op["time_step"] == 0 else state[p]
            current = layer.step_gain[op["time_step"]] * ((x << f) * c + b)
            h = int(fx.leak(v_prev, layer.leak_shift)) + current
            s = int(h >= th)
            reset_value = 0 if layer.reset == "hard" else h - th
            v = reset_value if s else h
            assert layer.membrane.contains([h, v])
            state[p] = v
            hs.append(h)
            vs.append(v)
            ss.append(s)
        out.append((hs, vs, ss))
    return out


@pytest.mark.parametrize("reset,leak_shift,step_gain,pe", [
    ("hard", 2, False, 3),
    ("soft", 1, False, 2),
    ("soft", None, True, 3),    # no leak, step gains: the multiplier path
    ("hard", None, False, 1),
    ("soft", 4, True, 4),
])
def test_lif_unit_matches_the_arithmetic(reset, leak_shift, step_gain, pe, seed):
    rng = np.random.default_rng(seed)
    layer = _layer(seed, reset=reset, leak_shift=leak_shift, step_gain=step_gain)
    t_steps, f = layer.time_steps, layer.membrane.frac
    bound = fx.synaptic_bound(layer.inputs, layer.input.bits)
    cw = fx.signed_width(bound)
    dut = LIFUnit(pe, width=layer.membrane.width, frac=f, leak_shift=layer.leak_shift,
                  reset=layer.reset, step_gain=layer.step_gain, current_width=cw, tag_shape=8)
    ops = []
    for group in range(fx.ceil_div(layer.neurons, pe)):
        idx = [min(group * pe + p, layer.neurons - 1) for p in range(pe)]
        for t in range(t_steps):
            x = rng.integers(-bound, bound + 1, size=pe)
            if rng.random() < 0.2:
                x[:] = bound if rng.random() < 0.5 else -bound   # the extremes
            ops.append({"current": [int(v) for v in x],
                        "bias": [int(layer.bias[j]) for j in idx],
                        "threshold": [int(layer.threshold[j]) for j in idx],
                        "connected": [int(layer.connected[j]) for j in idx],
                        "time_step": t, "tag": len(ops) % 256})
    expected = _expected(layer, ops)
    got = []

    async def producer(ctx):
        for op in ops:
            while rng.random() < 0.25:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            payload = dict(op)
            payload["connected"] = sum(c << p for p, c in enumerate(op["connected"]))
            ctx.set(dut.i.payload, payload)
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(dut.latency + 1):
            await ctx.tick()

    async def consumer(ctx):
        async for _, _, valid, out in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                got.append(([int(v) for v in out.potential], [int(v) for v in out.membrane],
                            [(int(out.spikes) >> p) & 1 for p in range(pe)],
                            int(out.time_step), int(out.tag),
                            [int(v) for v in out.current]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_process(consumer)
    sim.run()
    assert len(got) == len(ops)
    for n, (op, exp, res) in enumerate(zip(ops, expected, got, strict=True)):
        assert res[:3] == exp, f"operation {n} (time step {op['time_step']}): {res} != {exp}"
        assert res[3:] == (op["time_step"], op["tag"], op["current"])
    spikes = [s for _, _, ss in expected for s in ss]
    assert 0 < sum(spikes) < len(spikes) or len(spikes) < 8  # the draw exercises both outcomes


def test_lif_unit_worked_example_of_the_doc():
    """docs/arithmetic.md §4: x = 10, F = 2, k = 2, B = -3, Θ = 60, T = 4."""
    rows = {}
    for reset in ("hard", "soft"):
        dut = LIFUnit(1, width=10, frac=2, leak_shift=2, reset=reset, step_gain=(1, 1, 1, 1),
                      current_width=6)
        res = []

        async def bench(ctx, dut=dut):
            for t in range(4):
                ctx.set(dut.i.payload, {"current": [10], "bias": [-3], "threshold": [60],
                                        "connected": 1, "time_step": t})
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
            ctx.set(dut.i.valid, 0)
            for _ in range(dut.latency + 1):
                await ctx.tick()

        async def watch(ctx, dut=dut, res=res):
            async for _, _, valid, out in ctx.tick().sample(dut.o.valid, dut.o.payload):
                if valid:
                    res.append((int(out.potential[0]), int(out.spikes), int(out.membrane[0])))

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.add_process(watch)
        sim.run()
        rows[reset] = res
    assert rows["hard"] == [(37, 0, 37), (65, 1, 0), (37, 0, 37), (65, 1, 0)]
    assert rows["soft"] == [(37, 0, 37), (65, 1, 5), (41, 0, 41), (68, 1, 8)]


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(pe=0), ValueError, "pe must be >= 1, not 0"),
    (dict(width=63), ValueError, "width must be between 2 and 62, not 63"),
    (dict(frac=8), ValueError, "frac must be between 0 and 7, not 8"),
    (dict(leak_shift=8), ValueError, "leak_shift must be between 1 and 7, not 8"),
    (dict(leak_shift=1.0), TypeError, "leak_shift must be an int, not 1.0"),
    (dict(reset="none"), ValueError, "reset must be one of 'hard', 'soft', not 'none'"),
    (dict(step_gain=(1, 0)), ValueError, "step_gain must hold ints >= 1, not (1, 0)"),
    (dict(step_gain=3), TypeError, "step_gain must be a non-empty tuple of ints, not 3"),
    (dict(current_width=1), ValueError, "current_width must be between 2 and 62, not 1"),
])
def test_lif_unit_parameter_errors(kwargs, exc, message):
    args = dict(pe=2, width=8, frac=2, leak_shift=2, reset="hard", step_gain=(1, 1),
                current_width=5)
    args.update(kwargs)
    pe = args.pop("pe")
    with unused_ok(), pytest.raises(exc, match="^" + re.escape(message) + "$"):
        LIFUnit(pe, **args)


def test_lif_unit_latency_depends_on_gains():
    with unused_ok():
        plain = LIFUnit(1, width=8, frac=0, leak_shift=None, reset="hard", step_gain=(1, 1),
                        current_width=4)
        gained = LIFUnit(1, width=8, frac=0, leak_shift=None, reset="hard", step_gain=(1, 2),
                         current_width=4)
        assert (plain.has_gain, plain.latency) == (False, 3)
        assert (gained.has_gain, gained.latency) == (True, 4)
        del plain, gained


def _old_lif_rom_words(layer, pe):
    """The ROM words as hw.stage built them before the layout did (hand shifts): kept here as
    an independent statement of the word format. The bias field carries the weight count
    ``K_j << F`` of a connected neuron (the synapse array gives ``x_j - K_j``), modulo 2^W."""
    w = layer.membrane.width
    f = layer.membrane.frac
    ones = np.asarray(layer.weights).sum(axis=1) * ((1 << layer.input.bits) - 1)
    mask = (1 << w) - 1
    never = (1 << (w - 1)) - 1
    words = []
    for g in range(-(-layer.neurons // pe)):
        word = 0
        for p in range(pe):
            j = g * pe + p
            if j < layer.neurons:
                b, t, c = int(layer.bias[j]), int(layer.threshold[j]), int(layer.connected[j])
                b += c * (int(ones[j]) << f)
            else:
                b, t, c = 0, never, 0
            word |= (b & mask) << (p * w)
            word |= (t & mask) << (pe * w + p * w)
            word |= c << (2 * pe * w + p)
        words.append(word)
    return words


@pytest.mark.parametrize("neurons,pe", [(7, 3), (7, 7), (7, 1), (5, 4)])
def test_lif_rom_words_are_the_layout_the_stage_reads(neurons, pe, seed):
    """Built from lif_rom_layout; bit-identical to the hand-shifted words, with negative biases
    and thresholds and padding lanes (5 neurons in groups of 4)."""
    layer = _layer(seed, reset="soft", leak_shift=2, step_gain=False, neurons=neurons)
    bias, threshold = np.array(layer.bias), np.array(layer.threshold)
    bias[0], threshold[-1] = -abs(int(bias[0])) - 1, -abs(int(threshold[-1])) - 1
    layer = dataclasses.replace(layer, bias=bias, threshold=threshold)  # negatives, always
    words = lif_rom_words(layer, pe)
    assert words == _old_lif_rom_words(layer, pe)
    layout = lif_rom_layout(pe, layer.membrane.width)
    assert all(0 <= word < 1 << layout.size for word in words)


def test_gain_lookup_is_complete_over_the_time_step_bits():
    """T = 3 gains over a 2-bit time step: 0..2 give G[t]; the value 3 (no time step) gives the
    last gain from the default, so the case has no hole (Verilator's CASEINCOMPLETE)."""
    m = Module()
    t = Signal(2)
    gain = gain_lookup(m, (3, 2, 4), t)
    seen = []

    async def bench(ctx):
        for v in range(4):
            ctx.set(t, v)
            seen.append(ctx.get(gain))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [3, 2, 4, 4]
    assert len(gain) == 3
