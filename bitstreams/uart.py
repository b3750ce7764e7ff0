"""A plain 8N1 UART: receiver and transmitter with byte streams.

Both run in the ``sync`` domain at a fixed number of clock cycles per bit (``divisor``), which
the board top computes from its clock and the baud rate (:func:`divisor_for`).
"""

# Nested `with m.If()` blocks are Amaranth control flow; merging them changes what a
# following `m.Elif()` attaches to.
# ruff: noqa: SIM117

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from sw.checks import check_int

__all__ = ["UARTRx", "UARTTx", "divisor_for", "MAX_BAUD_ERROR"]

#: Largest relative difference between the requested baud rate and clock / divisor. Each side
#: of an 8N1 link may be off by about 2 % before the stop bit is sampled in the wrong bit.
MAX_BAUD_ERROR = 0.02


def divisor_for(clock_hz: float, baud: float) -> int:
    """Clock cycles per UART bit for ``baud`` at ``clock_hz``, rounded to nearest.

    Raises
    ------
    ValueError
        The divisor is below 4, or the baud rate it gives is off by more than
        :data:`MAX_BAUD_ERROR`.
    """
    if not clock_hz > 0:
        raise ValueError(f"clock_hz must be > 0, not {clock_hz!r}")
    if not baud > 0:
        raise ValueError(f"baud must be > 0, not {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"baud {baud:g} is too fast for a {clock_hz / 1e6:g} MHz clock "
                         f"(needs at least 4 clock cycles per bit)")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud:g} at {clock_hz / 1e6:g} MHz: the nearest divisor "
                         f"{divisor} gives {clock_hz / divisor:.0f} baud, {100 * error:.1f} % "
                         f"off (at most {100 * MAX_BAUD_ERROR:g} % allowed)")
    return divisor


class _UARTBase(wiring.Component):
    """The clock divisor shared by the receiver and the transmitter (validated: an int >= 4)."""

    def __init__(self, divisor: int):
        check_int("divisor", divisor, 4)
        self._divisor = divisor
        super().__init__()

    @property
    def divisor(self) -> int:
        """Clock cycles per bit."""
        return self._divisor


class UARTRx(_UARTBase):
    """8N1 receiver.

    The line is synchronised with two flip-flops. A falling edge starts a character; the start
    bit is checked again half a bit later (a shorter glitch is ignored), then every bit is
    sampled in its middle.

    Timing
    ------
    A byte appears on ``o`` (``valid`` high) half a bit after the middle of its stop bit and
    stays until taken; a consumer must take it within one character time. ``overrun`` pulses
    when a byte completes while the previous one is still untaken (the new byte is lost).
    ``framing_error`` pulses instead of ``o.valid`` when the stop bit is 0 (wrong baud rate, a
    break, a broken line); the receiver then waits for the line to return high. Reset returns
    to waiting for a start bit.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 4).

    Members
    -------
    rx : In(1)
        The serial line (idle high).
    o : Out(stream.Signature(8))
        Received bytes.
    framing_error, overrun : Out(1)
        One-cycle pulses.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    framing_error: Out(1)
    overrun: Out(1)

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(div))
        bit = Signal(range(10))
        shift = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(line):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(div - 1), bit.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(div - 1), shift.eq(Cat(shift[1:], line)),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(line):
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.framing_error.eq(1)
                        m.next = "BREAK"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTx(_UARTBase):
    """8N1 transmitter.

    Timing
    ------
    ``i.ready`` is high while the transmitter is idle; a byte taken at a clock edge starts its
    start bit on the next cycle, and ``i.ready`` rises again when its stop bit has been on the
    line for a whole bit time (10 bit times per byte, back to back). Reset returns the line to
    idle (high) at once.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 4).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        The serial line (idle high, registered).
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        div = self._divisor
        timer = Signal(range(div))
        # start bit, 8 data bits, stop bit, shifted out LSB first; all ones when idle.
        shift = Signal(10, init=(1 << 10) - 1)
        bits = Signal(range(11))

        m.d.comb += self.i.ready.eq(bits == 0)
        m.d.sync += self.tx.eq(shift[0])
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))),
                             bits.eq(10), timer.eq(div - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), bits.eq(bits - 1),
                         timer.eq(div - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m
