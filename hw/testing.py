"""Helpers for Amaranth-simulator testbenches of the accelerator's blocks.

Stream helpers follow ``amaranth/lib/stream`` rules from the testbench side: a producer drives
``valid`` and the payload and holds them until the transfer; a consumer drives ``ready``. Both
can insert random idle cycles (gaps and back-pressure) from a seeded generator.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import warnings

from hw.interface import sample_beats as _beats

__all__ = ["stream_put", "stream_get", "watch", "vcd_path", "sample_beats", "trace_beat",
           "run_accelerator", "unused_ok"]


async def stream_put(ctx, stream, payloads, *, rng: random.Random | None = None,
                     gaps: float = 0.0, on_beat=None):
    """Send every payload in ``payloads`` on ``stream`` (an ``In`` stream of the DUT), in
    order; with ``rng``, leave ``valid`` low for a cycle with probability ``gaps`` first.
    ``on_beat(index)`` is called right after each transfer."""
    for index, payload in enumerate(payloads):
        while rng is not None and rng.random() < gaps:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        if on_beat is not None:
            on_beat(index)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, count: int, *, rng: random.Random | None = None,
                     backpressure: float = 0.0, on_beat=None) -> list:
    """Receive ``count`` payloads from ``stream`` (an ``Out`` stream of the DUT); with ``rng``,
    hold ``ready`` low for a cycle with probability ``backpressure`` before each cycle.

    Returns the payloads as ``ctx.get`` gives them (views become dicts/lists via
    ``on_beat`` if given, which is called as ``on_beat(cycle_payload)``).
    """
    out = []
    while len(out) < count:
        ready = not (rng is not None and rng.random() < backpressure)
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if ready and valid:
            out.append(on_beat(payload) if on_beat else payload)
    ctx.set(stream.ready, 0)
    return out


async def watch(ctx, stream, sink: list, *, convert=None):
    """Append every beat of an ``always_ready`` stream to ``sink`` (runs forever: add it with
    ``background=True``)."""
    while True:
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid:
            sink.append(convert(payload) if convert else payload)


def vcd_path(name: str) -> str | None:
    """Where to write a waveform for test ``name``: ``$BITSPIKE_VCD/<name>.vcd`` when the
    ``BITSPIKE_VCD`` environment variable names a directory, else None (no waveform)."""
    root = os.environ.get("BITSPIKE_VCD")
    if not root:
        return None
    os.makedirs(root, exist_ok=True)
    return os.path.join(root, f"{name}.vcd")


def sample_beats(artifact, lanes: int, sample) -> list[dict]:
    """The input beats of one sample (``(N,)`` values or ``(T, N)`` spikes) as payload dicts,
    in :func:`hw.interface.sample_beats` order."""
    return [{"values": beat} for beat in _beats(sample, inputs=artifact.inputs,
                                                rows=artifact.rows_per_sample, lanes=lanes,
                                                shape=artifact.in_shape)]


def trace_beat(payload) -> dict:
    """A trace or output payload view as a dict of ints / lists of ints."""
    out = {}
    for name, _ in payload.shape():
        field = getattr(payload, name)
        if hasattr(field, "shape") and hasattr(field.shape(), "length"):
            out[name] = [int(v) for v in field]
        else:
            out[name] = int(field)
    return out


def run_accelerator(dut, x, *, seed: int = 0, gaps: float = 0.0, backpressure: float = 0.0,
                    max_cycles: int | None = None, vcd: str | None = None) -> dict:
    """Simulate ``dut`` (an :class:`hw.Accelerator`) on the samples ``x``.

    A producer testbench sends every sample's beats (random idle cycles with probability
    ``gaps``), a consumer takes one output per sample (``ready`` low with probability
    ``backpressure``), and with ``dut.trace`` every trace beat is recorded.

    Returns ``{"outputs": [dict], "cycles": [output cycle], "inputs": [input cycle],
    "traces": {layer: [dict]}}``, cycles counted in clock edges (a beat's cycle is the edge
    that transferred it);
    raises TimeoutError when the outputs have not all come after ``max_cycles`` cycles.
    """
    from amaranth.sim import Simulator

    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    art = dut.artifact
    beats = [b for sample in x for b in sample_beats(art, dut.lanes, sample)]
    outputs, cycles, in_cycles = [], [], []
    traces = {layer.name: [] for layer in art.layers} if dut.trace else {}
    limit = max_cycles or (len(x) + 4) * 4 * max(dut.ideal_cycles, 1) + 400
    state = {"cycle": 0}

    async def clock(ctx):
        async for _ in ctx.tick():
            state["cycle"] += 1

    async def producer(ctx):
        await stream_put(ctx, dut.i, beats, rng=rng_in, gaps=gaps,
                         on_beat=lambda index: in_cycles.append(state["cycle"]))

    async def consumer(ctx):
        while len(outputs) < len(x):
            if state["cycle"] > limit:
                raise TimeoutError(f"{len(outputs)} of {len(x)} outputs after {limit} cycles")
            ready = not rng_out.random() < backpressure
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if ready and valid:
                outputs.append(trace_beat(payload))
                cycles.append(state["cycle"])
        ctx.set(dut.o.ready, 0)

    def tracer(name, stream):
        async def bench(ctx):
            async for _, _, valid, payload in ctx.tick().sample(stream.valid, stream.payload):
                if valid:
                    traces[name].append(trace_beat(payload))
        return bench

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_process(clock)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    for name in traces:
        sim.add_process(tracer(name, getattr(dut, f"trace_{name}")))
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return {"outputs": outputs, "cycles": cycles, "inputs": in_cycles, "traces": traces}


@contextlib.contextmanager
def unused_ok():
    """Let components be built and dropped without elaborating them (parameter tests):
    Amaranth warns about every unused ``Elaboratable`` when it is garbage collected, so the
    warning is ignored until what was built here has been collected."""
    from amaranth.hdl import UnusedElaboratable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        try:
            yield
        finally:
            gc.collect()
