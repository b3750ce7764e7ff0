"""SynapseArray and the pipelined popcount against numpy (docs/arithmetic.md §2)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.synapse import SynapseArray, popcount, popcount_register_levels, weight_counts
from hw.testing import unused_ok, vcd_path


class _Popcount(wiring.Component):
    def __init__(self, width, stages):
        self.width, self.stages = width, stages
        super().__init__({"bits": In(width), "count": Out(16), "tick": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.tick.eq(~self.tick)  # a clock domain even without registers
        m.d.comb += self.count.eq(popcount(m, self.bits, self.stages, "pc"))
        return m


@pytest.mark.parametrize("width,stages", [(1, 0), (7, 1), (64, 2), (70, 5)])
def test_popcount_matches_numpy_after_its_stages(width, stages, seed):
    rng = np.random.default_rng(seed)
    dut = _Popcount(width, stages)
    words = [int(v) for v in rng.integers(0, 1 << min(width, 62), size=20)]
    words += [(1 << width) - 1, 0]
    got = []

    async def bench(ctx):
        for k in range(len(words) + stages):
            if k < len(words):
                ctx.set(dut.bits, words[k])
            if k >= stages:
                got.append(ctx.get(dut.count))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [bin(w).count("1") for w in words]


def test_popcount_register_levels_spread_over_the_tree():
    assert popcount_register_levels(64, 0) == []
    assert popcount_register_levels(64, 1) == [6]
    assert popcount_register_levels(64, 2) == [3, 6]
    assert popcount_register_levels(64, 3) == [2, 4, 6]
    assert popcount_register_levels(2, 3) == [0, 1, 1]


def _reference(ops, simd, pe):
    """Expected outputs of a list of (spikes, weights, first, last, shift) operations: the
    sums ``2 * popcount(s & w) - popcount(s)`` less the weight counts ``popcount(w)``, both
    accumulated over the folds and bit-planes (Horner's rule)."""
    out = []
    acc = np.zeros(pe, dtype=np.int64)
    act = 0
    ones = np.zeros(pe, dtype=np.int64)
    for spikes, weights, first, last, shift in ops:
        s = np.array([(spikes >> i) & 1 for i in range(simd)])
        w = np.array([[(weights >> (p * simd + i)) & 1 for i in range(simd)]
                      for p in range(pe)])
        a = (w & s).sum(axis=1)
        c = int(s.sum())
        k = w.sum(axis=1)
        if first:
            acc, act, ones = a.astype(np.int64), c, k.astype(np.int64)
        elif shift:
            acc, act, ones = 2 * acc + a, 2 * act + c, 2 * ones + k
        else:
            acc, act, ones = acc + a, act + c, ones + k
        if last:
            out.append((2 * acc - act - ones).tolist())
    return out


@pytest.mark.parametrize("simd,pe,planes,chunks,stages", [
    (5, 3, 1, 3, 1),     # spikes, several folds
    (8, 2, 4, 2, 0),     # bit-serial, no popcount register
    (1, 1, 1, 1, 2),     # degenerate 1x1
    (13, 4, 3, 1, 3),    # odd sizes, one fold, bit-planes
])
def test_synapse_array_sums_are_the_xnor_popcount_form_less_the_weight_counts(
        simd, pe, planes, chunks, stages, seed):
    rng = np.random.default_rng(seed)
    sums = 6
    dut = SynapseArray(simd, pe, inputs=simd * chunks, input_bits=planes,
                       popcount_stages=stages, tag_shape=8)
    ops = []
    for _ in range(sums):
        for b in range(planes):
            for k in range(chunks):
                ops.append((int(rng.integers(0, 1 << simd)), int(rng.integers(0, 1 << (simd * pe))),
                            b == 0 and k == 0, b == planes - 1 and k == chunks - 1,
                            b > 0 and k == 0))
    expected = _reference(ops, simd, pe)
    got, tags = [], []

    async def producer(ctx):
        for n, (spikes, weights, first, last, shift) in enumerate(ops):
            while rng.random() < 0.3:  # idle cycles between operations change nothing
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.payload, {"spikes": spikes, "weights": weights, "first": first,
                                    "last": last, "shift": shift, "tag": n % 256})
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(dut.latency + 2):
            await ctx.tick()

    async def consumer(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                got.append([int(v) for v in payload.sums])
                tags.append(int(payload.tag))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_process(consumer)
    path = vcd_path(f"synapse_{simd}x{pe}")
    if path:
        with sim.write_vcd(path):
            sim.run()
    else:
        sim.run()
    assert got == expected
    last_ops = [n % 256 for n, op in enumerate(ops) if op[3]]
    assert tags == last_ops
    bound = simd * chunks * ((1 << planes) - 1)
    assert max(abs(v) for s in got for v in s) <= bound


def test_synapse_array_latency_is_popcount_stages_plus_two():
    dut = SynapseArray(4, 2, inputs=4, popcount_stages=0)
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.payload, {"spikes": 0b1011, "weights": 0b1111_0001, "first": 1,
                                "last": 1, "shift": 0, "tag": 0})
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for cycle in range(1, 6):
            if ctx.get(dut.o.valid):
                seen.append((cycle, [int(v) for v in ctx.get(dut.o.payload).sums]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # neuron 0: weights 0001 -> x = 2*1 - 3 = -1, K = 1; neuron 1: weights 1111 -> x = 2*3 - 3
    # = 3, K = 4; the array gives x - K
    assert seen == [(dut.latency, [-2, -1])]


def test_weight_counts_make_up_the_synaptic_sum(seed):
    """x_j = K_j - popcount(s ^ w_j) summed over the bit-planes: the identity the array and
    the stages' folded parameters rest on (docs/arithmetic.md §2)."""
    rng = np.random.default_rng(seed)
    for planes in (1, 3, 5):
        w = rng.integers(0, 2, size=(7, 11))
        p = rng.integers(0, 1 << planes, size=11)
        x = ((2 * w - 1) * p).sum(axis=1)
        mismatches = sum((1 << b) * (((p >> b) & 1) ^ w).sum(axis=1) for b in range(planes))
        k = np.array(weight_counts(w, planes))
        assert (k - mismatches == x).all(), f"seed {seed}, planes {planes}"
    assert weight_counts(np.array([[1, 0, 1], [0, 0, 0]]), 5) == [62, 0]


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(simd=0, pe=1, inputs=4), ValueError, "simd must be >= 1, not 0"),
    (dict(simd=2, pe=1.5, inputs=4), TypeError, "pe must be an int, not 1.5"),
    (dict(simd=5, pe=1, inputs=4), ValueError, "simd must be <= inputs = 4, not 5"),
    (dict(simd=2, pe=1, inputs=4, input_bits=17), ValueError,
     "input_bits must be between 1 and 16, not 17"),
    (dict(simd=2, pe=1, inputs=4, popcount_stages=9), ValueError,
     "popcount_stages must be between 0 and 8, not 9"),
    (dict(simd=2, pe=1, inputs=True), TypeError, "inputs must be an int, not True"),
])
def test_synapse_array_parameter_errors(kwargs, exc, message):
    simd, pe = kwargs.pop("simd"), kwargs.pop("pe")
    with unused_ok(), pytest.raises(exc, match="^" + re.escape(message) + "$"):
        SynapseArray(simd, pe, **kwargs)


def test_synapse_array_reports_widths():
    with unused_ok():
        dut = SynapseArray(8, 3, inputs=64, input_bits=5)
        assert dut.sum_width == 12          # |x| <= 64 * 31 = 1984 < 2**11, plus a sign bit
        assert dut.latency == 5
        del dut
