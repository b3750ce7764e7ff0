"""cocotb testbench of the generated accelerator, against the integer golden model, exactly.

Run through :func:`sim.accelerator.simulate` (which the pytest wrappers, ``bench/cycles.py`` and
``python -m sim.main`` call); parameters come from :class:`sim.params.TBParams` in the
environment. Everything the testbench knows about the hardware comes from the description JSON
the generator wrote beside the Verilog (ports, payload layouts, lanes, beats per sample,
folding, ideal cycles); everything it expects comes from ``sw.golden`` run on the artifact.

Tests (``testcases``):

* ``regression``: every input sample through the design, with the configured idle gaps on the
  input and backpressure on the output; every output beat (prediction and every score) is
  compared; with ``trace``, every LIF layer's x, h, v and spikes per time step and the
  readout's sums too. Writes the outputs and their cycles to the results file.
* ``reset_mid_sample``: reset asserted while a sample is half transferred (and others are in
  flight), then the remaining samples: each must come out exactly (clean state).
* ``back_to_back``: no gaps, no backpressure; the source offers a beat every cycle. Measures
  the steady-state cycles per inference.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock

from hw.plan import issue_groups, stage_layers
from sim.cycles import steady_state
from sim.description import Description, DescriptionError
from sim.params import TBParams
from sim.scoreboard import Expected, Scoreboard
from sim.streams import CycleLoop, StreamSink, StreamSource, never, random_pattern
from sw.artifact import ConvLayer, LIFLayer, PoolLayer, load_artifact
from sw.atomic import atomic_write_json, atomic_write_text
from sw.fixedpoint import ceil_div
from sw.golden import GoldenModel

#: Cycles of margin on top of the stall timeout (pipeline fill, reset).
_TIMEOUT_MARGIN = 2000


class AcceleratorTB:
    """Clock, reset, input driver, output and trace monitors, and scoreboards of one run.

    Parameters
    ----------
    dut : cocotb handle of the top module
    params : TBParams
    gaps, backpressure : float or None
        Override the parameters' probabilities (``back_to_back`` sets both to 0).
    """

    def __init__(self, dut, params: TBParams, *, gaps=None, backpressure=None):
        self.dut = dut
        self.params = params
        self.desc = Description.load(params.description)
        self.artifact = load_artifact(params.artifact)
        self.desc.check_artifact(self.artifact, params.artifact)
        self.x = np.load(params.inputs)
        self.golden = GoldenModel(self.artifact).run(self.x, record=params.trace)
        # The PE of every layer's stage (a pool layer's is its conv stage's), and the order
        # in which each stage emits its groups (a conv stage: hw.plan.issue_groups).
        self.layer_pe, self.group_order = {}, {}
        for (layer, pool), (_, pe) in zip(stage_layers(self.artifact), self.desc.folding,
                                          strict=True):
            for la in (layer, pool):
                if la is not None:
                    self.layer_pe[la.name] = pe
                    self.group_order[la.name] = range(ceil_div(la.neurons, pe))
            if isinstance(layer, ConvLayer):
                self.group_order[layer.name] = issue_groups(layer, pe, pool)
        self.rng = random.Random(params.seed)
        gaps = params.gaps if gaps is None else gaps
        backpressure = params.backpressure if backpressure is None else backpressure
        self.gaps, self.backpressure = gaps, backpressure

        clk = getattr(dut, self.desc.clock)
        self.loop = CycleLoop(clk, getattr(dut, self.desc.reset))
        replay = params.replay_hint()
        self.out_board = Scoreboard("o", seed=params.seed, replay=replay)
        # One scoreboard per trace stream: the stages work on different samples at once, so
        # only each stream on its own is in sample order.
        self.trace_boards = {layer.name: Scoreboard(f"trace_{layer.name}", seed=params.seed,
                                                    replay=replay)
                             for layer in self.artifact.layers} if params.trace else {}
        i, o = self.desc.input_stream, self.desc.output_stream
        self.source = StreamSource(
            getattr(dut, i.valid), getattr(dut, i.ready), getattr(dut, i.payload),
            idle=random_pattern(gaps, self.rng), name="i")
        self.sink = StreamSink(
            getattr(dut, o.valid), getattr(dut, o.ready), getattr(dut, o.payload),
            busy=random_pattern(backpressure, self.rng), on_beat=self._on_output, name="o")
        self.loop.add(self.source, self.sink)
        self.traces = []
        if params.trace:
            missing = [la.name for la in self.artifact.layers
                       if la.name not in self.desc.trace_streams]
            if missing:
                raise DescriptionError(f"{self.desc.path}: no trace stream for {missing}; "
                                       f"generate the accelerator with trace=True (--trace)")
            for layer in self.artifact.layers:
                t = self.desc.trace_streams[layer.name]
                sink = StreamSink(getattr(dut, t.valid), None, getattr(dut, t.payload),
                                  busy=never, name=f"trace_{layer.name}",
                                  on_beat=self._trace_handler(layer))
                self.traces.append(sink)
                self.loop.add(sink)
        self.outputs = []        # (sample, cycle, prediction, scores)
        self.in_flight = []      # samples sent (or being sent), oldest first, not yet output
        self._last_progress = 0.0
        Clock(clk, 10, unit="ns").start()
        self.loop.start()

    # -- input -----------------------------------------------------------------------------------
    def beats(self, sample: int) -> list[int]:
        """The input beats of one sample, packed through the description's input layout."""
        return self.desc.pack_input(self.x[sample])

    def send(self, samples):
        """Queue samples on the input stream and their expectations on the scoreboards."""
        for s in samples:
            self.source.send_all(self.beats(s))
            self.in_flight.append(s)
            self.out_board.expect(self._expected_output(s))
            for name, items in self._expected_trace(s).items():
                self.trace_boards[name].expect_all(items)

    def _expected_output(self, s: int) -> Expected:
        scores = [int(v) for v in self.golden.scores[s]]
        prediction = int(self.golden.predictions[s])
        p = self.params
        g = s + p.sample_offset
        if g == p.corrupt_at and p.corrupt == "score":
            scores[g % len(scores)] += 1
        elif g == p.corrupt_at and p.corrupt == "prediction":
            prediction = (prediction + 1) % len(scores)
        return Expected({"prediction": prediction, "scores": scores}, sample=g)

    def _expected_trace(self, s: int) -> dict:
        """Trace beats of sample ``s`` per layer, in the order its stage emits them: group by
        group, time step by time step (the readout: one beat of sums per group)."""
        out = {}
        p = self.params
        if not p.trace:
            return out
        g_s = s + p.sample_offset
        for li, (layer, trace) in enumerate(zip(self.artifact.layers, self.golden.layers,
                                                strict=True)):
            pe = self.layer_pe[layer.name]
            items = out[layer.name] = []
            for g in self.group_order[layer.name]:
                lanes = slice(g * pe, min((g + 1) * pe, layer.neurons))
                if isinstance(layer, PoolLayer):
                    items.extend(Expected({"time_step": t, "group": g, "spikes": [
                        int(v) for v in trace.spikes[s, t, lanes]]}, sample=g_s,
                        layer=layer.name, time_step=t) for t in range(layer.time_steps))
                elif isinstance(layer, (LIFLayer, ConvLayer)):
                    for t in range(layer.time_steps):
                        values = {
                            "time_step": t, "group": g,
                            "spikes": [int(v) for v in trace.spikes[s, t, lanes]],
                            "current": [int(v) for v in trace.current[s, t, lanes]],
                            "potential": [int(v) for v in trace.potential[s, t, lanes]],
                            "membrane": [int(v) for v in trace.membrane[s, t, lanes]],
                        }
                        if (g_s == p.corrupt_at and g == self.group_order[layer.name][0]
                                and t == layer.time_steps - 1):
                            if p.corrupt == "membrane" and li == 0:
                                values["membrane"][0] += 1
                            elif p.corrupt == "spike" and li == 0:
                                values["spikes"][0] ^= 1
                        items.append(Expected(values, sample=g_s, layer=layer.name,
                                              time_step=t))
                else:
                    items.append(Expected({"group": g,
                                           "sums": [int(v) for v in trace.sums[s, lanes]]},
                                          sample=g_s, layer=layer.name))
        return out

    # -- output ----------------------------------------------------------------------------------
    def _on_output(self, cycle: int, word: int):
        got = self.desc.output_stream.layout.unpack(word)
        sample = (self.in_flight.pop(0) + self.params.sample_offset if self.in_flight
                  else -1)
        self.outputs.append((sample, cycle, int(got["prediction"]),
                             [int(v) for v in got["scores"]]))
        self.out_board.compare(got, cycle=cycle)
        self._report_progress()

    def _trace_handler(self, layer):
        layout = self.desc.trace_streams[layer.name].layout
        pe = self.layer_pe[layer.name]
        board = self.trace_boards[layer.name]

        def handle(cycle, word):
            got = layout.unpack(word)
            # Lanes past the layer's last neuron (the last group's padding) carry no value.
            valid = min(pe, layer.neurons - int(got["group"]) * pe)
            if "spikes" in got and not isinstance(got["spikes"], list):
                got["spikes"] = [(got["spikes"] >> k) & 1 for k in range(pe)]
            for name, value in got.items():
                if isinstance(value, list):
                    got[name] = value[:max(valid, 0)]
            board.compare(got, cycle=cycle)

        return handle

    def _report_progress(self):
        if not self.params.progress:
            return
        now = time.monotonic()
        if now - self._last_progress > 0.5:
            self._last_progress = now
            atomic_write_text(self.params.progress, str(len(self.outputs)))

    # -- control ---------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.out_board.ok and all(b.ok for b in self.trace_boards.values())

    @property
    def boards(self) -> list:
        return [self.out_board, *self.trace_boards.values()]

    def timeout(self, samples: int) -> int:
        """Cycles after which a run of ``samples`` counts as stalled."""
        slow = 1.0 / max(1e-3, (1.0 - self.gaps) * (1.0 - self.backpressure))
        per_sample = max(self.desc.ideal_cycles, self.desc.beats_per_sample)
        return int(self.params.timeout_factor * slow * per_sample * max(samples, 1)
                   + _TIMEOUT_MARGIN + self.desc.latency_bound)

    async def reset(self, cycles: int = 2):
        self.loop.reset(cycles)
        await self.loop.cycles(cycles + 1)

    async def wait_outputs(self, count: int, what: str):
        """Wait until ``count`` outputs came out (or a mismatch stops the run early)."""
        await self.loop.wait_for(lambda: len(self.outputs) >= count or not self.ok,
                                 timeout=self.timeout(count - len(self.outputs)), what=what)

    async def drain(self):
        """Let trace beats of the last sample come out and catch any extra output."""
        await self.loop.cycles(max(50, self.desc.latency_bound))

    def check(self, expected_outputs: int):
        """Fail the test on any mismatch, or when outputs or trace beats are missing."""
        problems = [b.report() for b in self.boards if not b.ok]
        if problems:
            raise AssertionError("\n".join(problems))
        if len(self.outputs) != expected_outputs:
            raise AssertionError(f"{len(self.outputs)} of {expected_outputs} outputs came out "
                                 f"({self.params.replay_hint()})")
        for board in self.trace_boards.values():
            if board.pending:
                raise AssertionError(f"{board.stream}: {board.pending} trace beats missing "
                                     f"({self.params.replay_hint()})")

    def write_results(self, test: str, **extra):
        if not self.params.results:
            return
        path = Path(self.params.results)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results[test] = {
            "ok": self.ok,
            "outputs": [{"sample": s, "cycle": c, "prediction": p, "scores": sc}
                        for s, c, p, sc in self.outputs],
            "input_beats": len(self.source.sent),
            "compared": self.out_board.compared,
            "trace_compared": sum(b.compared for b in self.trace_boards.values()),
            "mismatched_outputs": self.out_board.mismatched_items,
            "mismatched_trace": sum(b.mismatched_items for b in self.trace_boards.values()),
            "mismatches": [str(m) for b in self.boards for m in b.mismatches],
            "report": "\n".join(b.report() for b in self.boards),
            "cycles": self.loop.cycle,
            **extra,
        }
        atomic_write_json(path, results)


@cocotb.test()
async def regression(dut):
    """Every sample, with gaps and backpressure; every output (and trace beat) exact."""
    tb = AcceleratorTB(dut, TBParams.from_env())
    await tb.reset()
    n = len(tb.x)
    tb.send(range(n))
    await tb.wait_outputs(n, "regression outputs")
    await tb.drain()
    tb.write_results("regression")
    tb.check(n)


@cocotb.test()
async def back_to_back(dut):
    """No idle input cycle, no backpressure: samples follow each other as fast as the design
    takes them; measures steady-state cycles per inference."""
    tb = AcceleratorTB(dut, TBParams.from_env(), gaps=0.0, backpressure=0.0)
    await tb.reset()
    n = len(tb.x)
    tb.send(range(n))
    await tb.wait_outputs(n, "back-to-back outputs")
    await tb.drain()
    cycles = [c for _, c, _, _ in tb.outputs]
    tb.write_results("back_to_back", steady_cycles=steady_state(cycles),
                     ideal_cycles=tb.desc.ideal_cycles)
    tb.check(n)


@cocotb.test()
async def reset_mid_sample(dut):
    """Reset while a sample is half sent: afterwards every sample is computed exactly."""
    tb = AcceleratorTB(dut, TBParams.from_env())
    await tb.reset()
    n = len(tb.x)
    beats = tb.desc.beats_per_sample
    first = min(n - 1, tb.rng.randint(2, 4))
    if first < 1:
        raise ValueError(f"reset_mid_sample needs at least 2 samples, got {n}")
    tb.send(range(first))
    # Reset during sample `first - 1` (a later one when one beat per sample: then between).
    target = (first - 1) * beats + (tb.rng.randint(1, beats - 1) if beats > 1 else 0)
    await tb.loop.wait_for(lambda: len(tb.source.sent) >= target or not tb.ok,
                           timeout=tb.timeout(first), what="beats before the reset")
    tb.source.flush()
    await tb.reset(tb.rng.randint(1, 3))
    dropped = tb.out_board.drop_pending()  # samples in flight at the reset: gone by design
    for board in tb.trace_boards.values():
        board.drop_pending()
    tb.in_flight.clear()
    before = len(tb.outputs)
    tb.send(range(first, n))
    await tb.wait_outputs(before + n - first, "outputs after the reset")
    await tb.drain()
    tb.write_results("reset_mid_sample", reset_after_beats=target,
                     dropped_samples=[e.sample for e in dropped])
    tb.check(before + n - first)
