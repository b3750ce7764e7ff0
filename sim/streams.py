"""cocotb drivers and monitors for Amaranth ``lib.stream`` valid/ready interfaces.

A stream transfers a payload on a rising clock edge where ``valid`` and ``ready`` are both
high. The rules (Amaranth's ``stream.rst``): ``valid`` never waits for ``ready``, and once
``valid`` is high the payload holds until it is transferred. :class:`StreamSource` obeys them,
:class:`StreamSink` checks that the hardware does.

Everything runs from one :class:`CycleLoop` per clock, which calls every member twice a cycle:
``drive(cycle)`` right after the rising edge (new valid/payload/ready values), ``sample(cycle)``
in the read-only phase before the next edge, where the settled ``valid`` and ``ready`` show
whether a transfer happens at that edge. Sampling there, rather than at the edge itself, is what
makes the same testbench exact on Icarus and on Verilator. One loop (two triggers a cycle) is
also several times faster than a coroutine per stream.

Idle gaps (source) and backpressure (sink) come from seeded random generators, so every run is
replayable from its seed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import cocotb
from cocotb.triggers import Event, ReadOnly, RisingEdge

__all__ = [
    "ProtocolError",
    "never",
    "random_pattern",
    "CycleLoop",
    "StreamSource",
    "StreamSink",
    "read_int",
]


class ProtocolError(AssertionError):
    """The hardware broke the stream rules (valid withdrawn, payload changed, X on a port)."""


def never() -> bool:
    return False


def random_pattern(probability: float, rng: random.Random) -> Callable[[], bool]:
    """A per-cycle coin: True with ``probability`` (idle cycle / ready low), from ``rng``."""
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"probability must be in [0, 1), not {probability!r}")
    if probability == 0.0:
        return never
    rand = rng.random
    return lambda: rand() < probability


def read_int(handle, what: str) -> int:
    """The unsigned value of a port; an X or Z bit is a protocol error, not a zero."""
    value = handle.value
    try:
        return int(value)
    except ValueError:
        raise ProtocolError(f"{what} holds unresolved bits: {value}") from None


class CycleLoop:
    """Runs ``drive`` after every rising edge and ``sample`` before the next one.

    Parameters
    ----------
    clk : handle
        The clock (driven elsewhere, e.g. by ``cocotb.clock.Clock``).
    rst : handle or None
        A synchronous, active-high reset. While :meth:`reset` holds it, members are told
        through ``in_reset`` and no transfer is sampled.

    Attributes
    ----------
    cycle : int
        Rising edges seen since :meth:`start`.
    """

    def __init__(self, clk, rst=None):
        self.clk = clk
        self.rst = rst
        self.members = []
        self.cycle = 0
        self.in_reset = False
        self._reset_left = 0
        self._waiters = []
        self._task = None

    def add(self, *members):
        self.members.extend(members)
        return members[0] if len(members) == 1 else members

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self._task

    def reset(self, cycles: int = 2):
        """Hold reset high for the next ``cycles`` edges (from the next drive phase on)."""
        if cycles < 1:
            raise ValueError(f"cycles must be >= 1, not {cycles}")
        self._reset_left = cycles

    async def _run(self):
        edge, settle = RisingEdge(self.clk), ReadOnly()
        members = self.members
        while True:
            await edge
            self.cycle += 1
            cycle = self.cycle
            if self.rst is not None:
                in_reset = self._reset_left > 0
                if in_reset != self.in_reset:
                    self.rst.value = int(in_reset)
                    self.in_reset = in_reset
                if in_reset:
                    self._reset_left -= 1
            for m in members:
                m.drive(cycle, self.in_reset)
            await settle
            if not self.in_reset:
                for m in members:
                    m.sample(cycle)
            if self._waiters:
                for waiter in list(self._waiters):
                    cond, event = waiter
                    if cond():
                        self._waiters.remove(waiter)
                        event.set()

    async def wait_for(self, cond: Callable[[], bool], *, timeout: int, what: str) -> int:
        """Wait until ``cond()`` holds in a sample phase; returns the cycle.

        Raises
        ------
        TimeoutError
            ``cond`` did not hold within ``timeout`` cycles (a stall or a lost transfer).
        """
        if cond():
            return self.cycle
        event = Event()
        deadline = self.cycle + timeout
        waiter = (lambda: cond() or self.cycle >= deadline, event)
        self._waiters.append(waiter)
        await event.wait()
        if not cond():
            raise TimeoutError(f"{what}: nothing after {timeout} cycles (cycle {self.cycle}); "
                               f"the design stalled or lost a transfer")
        return self.cycle

    async def cycles(self, n: int):
        """Wait ``n`` cycles."""
        target = self.cycle + n
        await self.wait_for(lambda: self.cycle >= target, timeout=n + 1, what="cycles")


class StreamSource:
    """Drives ``valid``/``payload`` of a stream into the design from a queue of payload ints.

    Parameters
    ----------
    valid, ready, payload : handles
    idle : callable
        Called once per cycle when a new beat could start; True leaves the cycle idle.
    name : str

    Attributes
    ----------
    sent : list of int
        The cycle of every transfer, in order.
    """

    def __init__(self, valid, ready, payload, *, idle: Callable[[], bool] = never,
                 name: str = "source"):
        self.valid, self.ready, self.payload = valid, ready, payload
        self.idle = idle
        self.name = name
        self.queue = deque()
        self.sent = []
        self._current = None
        self._valid = 0
        valid.value = 0

    def send(self, word: int):
        self.queue.append(int(word))

    def send_all(self, words):
        self.queue.extend(int(w) for w in words)

    @property
    def empty(self) -> bool:
        """Nothing queued and nothing on the wire."""
        return self._current is None and not self.queue

    def flush(self):
        """Drop everything queued and the beat on the wire (e.g. across a reset)."""
        self.queue.clear()
        self._current = None

    def drive(self, cycle, in_reset):
        if in_reset:
            self._current = None
        elif self._current is None and self.queue and not self.idle():
            self._current = self.queue.popleft()
            self.payload.value = self._current
        want = int(self._current is not None)
        if want != self._valid:
            self.valid.value = want
            self._valid = want

    def sample(self, cycle):
        if self._current is not None and self.ready.value == 1:
            self.sent.append(cycle)
            self._current = None


class StreamSink:
    """Accepts a stream out of the design, checking the stream rules, with backpressure.

    Parameters
    ----------
    valid, ready, payload : handles
        ``ready`` None for an ``always_ready`` stream (no ready port).
    busy : callable
        Called once per cycle; True holds ``ready`` low for that cycle (backpressure).
    on_beat : callable
        ``on_beat(cycle, word)`` for every transfer.
    name : str

    Attributes
    ----------
    beats : int
        Transfers so far.
    """

    def __init__(self, valid, ready, payload, *, busy: Callable[[], bool] = never,
                 on_beat: Callable[[int, int], None] | None = None, name: str = "sink"):
        self.valid, self.ready, self.payload = valid, ready, payload
        self.busy = busy
        self.on_beat = on_beat
        self.name = name
        self.beats = 0
        self._held = None  # payload offered but not taken in the previous cycle
        if ready is None:  # an always-ready stream: every valid cycle is a transfer
            self._ready = 1
            self.busy = never
        else:
            self._ready = 0
            ready.value = 0

    def drive(self, cycle, in_reset):
        if self.ready is None:
            return
        want = 0 if in_reset else int(not self.busy())
        if want != self._ready:
            self.ready.value = want
            self._ready = want
        if in_reset:
            self._held = None

    def sample(self, cycle):
        valid = self.valid.value
        if valid != 1:
            if valid != 0:
                raise ProtocolError(f"{self.name}: valid is {valid} at cycle {cycle}")
            if self._held is not None:
                raise ProtocolError(f"{self.name}: valid dropped at cycle {cycle} before the "
                                    f"payload offered at an earlier cycle was transferred")
            return
        word = read_int(self.payload, f"{self.name} payload (cycle {cycle})")
        if self._held is not None and word != self._held:
            raise ProtocolError(f"{self.name}: payload changed from {self._held:#x} to "
                                f"{word:#x} at cycle {cycle} while valid waited for ready")
        if self._ready:
            self._held = None
            self.beats += 1
            if self.on_beat is not None:
                self.on_beat(cycle, word)
        else:
            self._held = word
