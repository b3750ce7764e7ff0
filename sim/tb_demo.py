"""cocotb testbench of :class:`sim.demo.StreamFifo`: the verification machinery's own check.

Run through :func:`sim.runner.run` (``tests/test_sim_infra.py``); parameters come from
:class:`sim.params.TBParams` in the environment. The reference model of a FIFO is the identity:
every item comes out once, in order.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock

from sim.layout import PayloadLayout
from sim.params import TBParams
from sim.scoreboard import Expected, Scoreboard
from sim.streams import CycleLoop, StreamSink, StreamSource, random_pattern
from sw.atomic import atomic_write_json


class TB:
    """Clock, reset, the input driver, the output monitor and the scoreboard of the FIFO."""

    def __init__(self, dut, params: TBParams):
        self.dut = dut
        self.params = params
        self.desc = json.loads(Path(params.description).read_text())
        self.rng = random.Random(params.seed)
        streams = self.desc["streams"]
        self.in_layout = PayloadLayout.from_json(streams["i"]["layout"], "streams.i.layout")
        self.out_layout = PayloadLayout.from_json(streams["o"]["layout"], "streams.o.layout")
        clk = getattr(dut, self.desc["clock"])
        self.loop = CycleLoop(clk, getattr(dut, self.desc["reset"]))
        self.scoreboard = Scoreboard("o", seed=params.seed, replay=params.replay_hint())
        self.source = StreamSource(
            getattr(dut, streams["i"]["valid"]), getattr(dut, streams["i"]["ready"]),
            getattr(dut, streams["i"]["payload"]),
            idle=random_pattern(params.gaps, self.rng), name="i")
        self.sink = StreamSink(
            getattr(dut, streams["o"]["valid"]), getattr(dut, streams["o"]["ready"]),
            getattr(dut, streams["o"]["payload"]),
            busy=random_pattern(params.backpressure, self.rng), on_beat=self._on_beat,
            name="o")
        self.loop.add(self.source, self.sink)
        Clock(clk, 10, unit="ns").start()
        self.loop.start()

    def _on_beat(self, cycle, word):
        self.scoreboard.compare(self.out_layout.unpack(word), cycle=cycle)

    def random_item(self) -> dict:
        values = {}
        for f in self.in_layout.fields:
            w = f.element_width
            lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if f.signed else (0, (1 << w) - 1)
            draw = [self.rng.randint(lo, hi) for _ in range(f.count or 1)]
            values[f.name] = draw if f.count is not None else draw[0]
        return values

    def expect(self, index: int, item: dict):
        values = json.loads(json.dumps(item))
        if self.params.corrupt == "item" and index == self.params.corrupt_at:
            name = self.out_layout.fields[0].name
            values[name] = values[name] ^ 1  # one bit of the expectation, not of the design
        self.scoreboard.expect(Expected(values, sample=index))

    async def reset(self, cycles: int = 2):
        self.loop.reset(cycles)
        await self.loop.cycles(cycles + 1)

    def check(self, expected_items: int):
        """Fail the test on any mismatch, or when items are missing."""
        if not self.scoreboard.ok:
            raise AssertionError(self.scoreboard.report())
        if self.scoreboard.compared != expected_items:
            raise AssertionError(f"{self.scoreboard.compared} of {expected_items} items came "
                                 f"out ({self.params.replay_hint()})")

    def write_results(self, **extra):
        if self.params.results:
            out = {"compared": self.scoreboard.compared, "ok": self.scoreboard.ok,
                   "mismatches": [str(m) for m in self.scoreboard.mismatches],
                   "cycles": self.loop.cycle, **extra}
            atomic_write_json(self.params.results, out)


@cocotb.test()
async def fifo_stream(dut):
    """Random items through the FIFO with the configured gaps and backpressure."""
    tb = TB(dut, TBParams.from_env())
    await tb.reset()
    n = tb.params.samples
    for k in range(n):
        item = tb.random_item()
        tb.expect(k, item)
        tb.source.send(tb.in_layout.pack(item))
    await tb.loop.wait_for(lambda: tb.scoreboard.compared >= n or not tb.scoreboard.ok,
                           timeout=int(tb.params.timeout_factor * n) + 100, what="FIFO output")
    await tb.loop.cycles(5)  # anything extra coming out is an error too
    tb.write_results()
    tb.check(n)


@cocotb.test()
async def fifo_reset_mid_stream(dut):
    """Reset while items are in flight: the FIFO empties; later items pass exactly."""
    tb = TB(dut, TBParams.from_env())
    await tb.reset()
    n = max(tb.params.samples, 8)
    for k in range(n):
        item = tb.random_item()
        tb.expect(k, item)
        tb.source.send(tb.in_layout.pack(item))
    await tb.loop.wait_for(lambda: tb.scoreboard.compared >= 2, timeout=50 * n,
                           what="first outputs")
    tb.source.flush()
    await tb.reset(tb.rng.randint(1, 3))
    tb.scoreboard.drop_pending()  # what was inside the FIFO is gone by design
    before = tb.scoreboard.compared
    for k in range(n, 2 * n):
        item = tb.random_item()
        tb.expect(k, item)
        tb.source.send(tb.in_layout.pack(item))
    await tb.loop.wait_for(lambda: tb.scoreboard.compared >= before + n
                           or not tb.scoreboard.ok, timeout=50 * n, what="FIFO after reset")
    await tb.loop.cycles(5)
    tb.write_results()
    tb.check(before + n)
