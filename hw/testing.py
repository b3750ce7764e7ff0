"""Helpers for Amaranth-simulator testbenches of the accelerator's blocks.

Stream helpers follow ``amaranth/lib/stream`` rules from the testbench side: a producer drives
``valid`` and the payload and holds them until the transfer; a consumer drives ``ready``. Both
can insert random idle cycles (gaps and back-pressure) from a seeded generator.
"""

from __future__ import annotations

import os
import random

__all__ = ["stream_put", "stream_get", "watch", "vcd_path"]


async def stream_put(ctx, stream, payloads, *, rng: random.Random | None = None,
                     gaps: float = 0.0):
    """Send every payload in ``payloads`` on ``stream`` (an ``In`` stream of the DUT), in
    order; with ``rng``, leave ``valid`` low for a cycle with probability ``gaps`` first."""
    for payload in payloads:
        while rng is not None and rng.random() < gaps:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
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
