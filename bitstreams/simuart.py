"""The simulated-UART transport: the host client's bytes on the UART pins of an RTL simulation.

:class:`CocotbUARTTransport` has the methods of :class:`bitstreams.host.Transport`, so the
same :class:`~bitstreams.host.BoardClient` that drives a real board over pyserial drives the
board top's Verilog in cocotb: ``write`` shifts each byte onto the design's ``uart_rx`` pin as
an 8N1 character (start bit, 8 data bits LSB first, stop bit, ``clocks_per_bit`` clock cycles
each); a background coroutine samples the design's ``uart_tx`` pin in the middle of each bit
and collects the bytes ``read`` returns. Time is simulated time.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, Timer
from cocotb.utils import get_sim_time

from sw.checks import is_int

__all__ = ["CocotbUARTTransport"]


class CocotbUARTTransport:
    """A UART at ``clocks_per_bit`` clock cycles per bit on a simulated design's pins.

    Parameters
    ----------
    clock : cocotb handle
        The design's clock (already running).
    rx : cocotb handle
        The design's serial input (driven here; idle high).
    tx : cocotb handle
        The design's serial output (sampled here).
    clocks_per_bit : int
        The design's UART divisor (INFO reports it).

    Attributes
    ----------
    framing_errors : int
        Characters from the design whose stop bit was 0.
    """

    def __init__(self, clock, rx, tx, clocks_per_bit: int):
        if not is_int(clocks_per_bit) or clocks_per_bit < 4:
            raise ValueError(f"clocks_per_bit must be an int >= 4, not {clocks_per_bit!r}")
        self._clock, self._rx, self._tx = clock, rx, tx
        self._cpb = clocks_per_bit
        self._buf = bytearray()
        self._arrived = Event()
        self.framing_errors = 0
        self._rx.value = 1
        self._task = cocotb.start_soon(self._receive())

    async def write(self, data: bytes) -> None:
        for byte in bytes(data):
            for bit in (0, *((byte >> i) & 1 for i in range(8)), 1):
                self._rx.value = bit
                await ClockCycles(self._clock, self._cpb)

    async def write_bits(self, bits) -> None:
        """Drive raw line levels, one bit time each (to break a character on purpose)."""
        for bit in bits:
            self._rx.value = int(bit)
            await ClockCycles(self._clock, self._cpb)
        self._rx.value = 1

    async def _receive(self) -> None:
        half = self._cpb // 2
        while True:
            await FallingEdge(self._tx)
            await ClockCycles(self._clock, half)
            if int(self._tx.value) != 0:
                continue  # a glitch, not a start bit
            byte = 0
            for i in range(8):
                await ClockCycles(self._clock, self._cpb)
                byte |= int(self._tx.value) << i
            await ClockCycles(self._clock, self._cpb)
            if int(self._tx.value) != 1:
                self.framing_errors += 1
                continue
            self._buf.append(byte)
            self._arrived.set()

    async def read(self, timeout: float) -> bytes:
        if not self._buf and timeout > 0:
            self._arrived.clear()
            await First(self._arrived.wait(), Timer(max(1, round(timeout * 1e9)), "ns"))
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def now(self) -> float:
        return get_sim_time("sec")

    def close(self) -> None:
        self._task.cancel()
