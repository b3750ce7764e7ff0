"""Slot buffers between dataflow stages: whole samples of spikes (or input values) in flight.

A :class:`SampleBuffer` holds ``slots`` samples. Each sample is ``rows`` rows (time steps; 1 for
multi-bit input values) of ``elements`` elements of ``planes`` bits (1 for spikes, P for
multi-bit values). The producer claims a slot, writes it one bit-plane of ``write_lanes``
elements at a time (group g holds elements ``g * write_lanes ...``) and commits it; the
consumer takes a committed slot, reads it ``read_lanes`` bits at a time (chunk k of one
bit-plane of one row: elements ``k * read_lanes ...``) and releases it. Slots are used in
order; both sides learn their slot index from the buffer when they claim or take.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw import timing
from hw.common import check_bool, check_int, delay
from sw import fixedpoint as fx

__all__ = ["BufferWriter", "BufferReader", "SampleBuffer"]


def _idx(n: int):
    return unsigned(fx.ceil_log2(n))


def _advance(m: Module, ptr: Signal, modulo: int) -> None:
    """``ptr = (ptr + 1) % modulo`` at the next edge."""
    if modulo == 1:
        return
    with m.If(ptr == modulo - 1):
        m.d.sync += ptr.eq(0)
    with m.Else():
        m.d.sync += ptr.eq(ptr + 1)


class BufferWriter(wiring.Signature):
    """The producer's side of a :class:`SampleBuffer` (members as the producer sees them).

    Members
    -------
    free : In(1)
        A slot can be claimed this cycle.
    next_slot : In(range(slots))
        The slot a claim in this cycle gets.
    claim : Out(1)
        Claim the next slot (only while ``free``).
    en, slot, row, plane, group, data : Out
        Write ``data`` (``write_lanes`` bits: one bit-plane of a group of elements) as group
        ``group`` of bit-plane ``plane`` of row ``row`` of slot ``slot``.
    commit : Out(1)
        The oldest claimed slot is complete (may come with its last write).
    """

    def __init__(self, *, slots, rows, planes, groups, width):
        super().__init__({
            "free": In(1), "next_slot": In(_idx(slots)), "claim": Out(1),
            "en": Out(1), "slot": Out(_idx(slots)), "row": Out(_idx(rows)),
            "plane": Out(_idx(planes)), "group": Out(_idx(groups)), "data": Out(width),
            "commit": Out(1),
        })


class BufferReader(wiring.Signature):
    """The consumer's side of a :class:`SampleBuffer` (members as the consumer sees them).

    Members
    -------
    full : In(1)
        A committed slot can be taken this cycle.
    next_slot : In(range(slots))
        The slot a take in this cycle gets.
    take : Out(1)
        Take the next committed slot (only while ``full``).
    slot, row, chunk, plane : Out
        Read address; ``data`` holds the chunk :attr:`read_latency` cycles later.
    data : In(read_lanes)
    release : Out(1)
        The oldest taken slot has been read for the last time (it may come with its last
        read request).
    """

    def __init__(self, *, slots, rows, chunks, planes, read_lanes, memory_register=True):
        self._memory_register = memory_register
        super().__init__({
            "full": In(1), "next_slot": In(_idx(slots)), "take": Out(1),
            "slot": Out(_idx(slots)), "row": Out(_idx(rows)), "chunk": Out(_idx(chunks)),
            "plane": Out(_idx(planes)), "data": In(read_lanes), "release": Out(1),
        })

    @property
    def read_latency(self) -> int:
        """Cycles from a read address to its ``data`` (:func:`hw.timing.buffer_read_latency`,
        the latency of the :class:`SampleBuffer` behind this side)."""
        return timing.buffer_read_latency(self._memory_register)


class SampleBuffer(wiring.Component):
    """A ring of sample slots with independent write and read widths, in one memory.

    Three layouts, chosen from the widths:

    * **chunked** (``read_lanes`` a multiple of ``write_lanes``): one word per (slot, row,
      plane, chunk) of ``read_lanes`` bits, written with granularity ``write_lanes``; a read
      is one word. Narrow and deep, so it maps to block RAM.
    * **grouped** (``write_lanes`` a power-of-two multiple of ``read_lanes``): one word per
      (slot, row, plane, group) of ``write_lanes`` bits; a write is one word, a read selects
      its chunk from one word. Narrow and deep too.
    * **row** (otherwise): one word per (slot, row, plane) holding the whole padded row,
      written with granularity ``write_lanes``; a read selects its chunk from the word.

    Bits never written (padding past the last element) read as 0.

    **Timing**: a read request in cycle c returns its chunk in cycle c + :attr:`read_latency`
    (3: the memory, a register of its word, then a register of the chunk; a row-layout word
    is too wide to register whole: its chunk is selected, registered, then delayed; without
    ``memory_register`` 2: the memory, then the register of the chunk;
    :func:`hw.timing.buffer_read_latency`). Writes land at
    the end of their cycle; a slot committed in cycle c can be taken from cycle c + 1.
    ``free``/``full`` depend on registers only. Reset empties every slot (the contents stay,
    unread).

    Parameters
    ----------
    slots : int
        Samples in flight (:data:`hw.timing.SLOTS`: 2..32).
    rows : int
        Rows per sample (time steps, or 1), 1..1024.
    elements : int
        Elements per row (>= 1).
    planes : int
        Bits per element (1..16).
    write_lanes : int
        Elements per write (1..elements).
    read_lanes : int
        Bits per read: elements of one plane (1..elements).
    memory_register : bool
        Register the memory's word before the chunk is selected (default; for a block RAM
        slow to its output, the ECP5's); without, the chunk is selected from the read port's
        data into the one register.

    Members
    -------
    w : In(BufferWriter)
    r : In(BufferReader)

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, *, slots: int, rows: int, elements: int, planes: int = 1,
                 write_lanes: int, read_lanes: int, memory_register: bool = True):
        timing.check_slots("slots", slots)
        check_bool("memory_register", memory_register)
        self._memory_register = memory_register
        check_int("rows", rows, 1, 1024)
        check_int("elements", elements, 1)
        check_int("planes", planes, 1, 16)
        check_int("write_lanes", write_lanes, 1, elements)
        check_int("read_lanes", read_lanes, 1, elements)
        self._slots, self._rows, self._elements, self._planes = slots, rows, elements, planes
        self._wl, self._rl = write_lanes, read_lanes
        self._groups = fx.ceil_div(elements, write_lanes)
        self._chunks = fx.ceil_div(elements, read_lanes)
        self._chunked = read_lanes % write_lanes == 0
        per_word = write_lanes // read_lanes
        self._grouped = (not self._chunked and write_lanes % read_lanes == 0
                         and per_word & (per_word - 1) == 0)
        span = max(self._groups * write_lanes, self._chunks * read_lanes)
        self._row_bits = fx.ceil_div(span, write_lanes) * write_lanes
        super().__init__({
            "w": In(BufferWriter(slots=slots, rows=rows, planes=planes, groups=self._groups,
                                 width=write_lanes)),
            "r": In(BufferReader(slots=slots, rows=rows, chunks=self._chunks, planes=planes,
                                 read_lanes=read_lanes, memory_register=memory_register)),
        })

    @property
    def groups(self) -> int:
        """Writes per row and plane: ``ceil(elements / write_lanes)``."""
        return self._groups

    @property
    def chunks(self) -> int:
        """Reads per row and plane: ``ceil(elements / read_lanes)``."""
        return self._chunks

    @property
    def layout(self) -> str:
        """``"chunked"``, ``"grouped"`` or ``"row"`` (see the class docstring)."""
        return "chunked" if self._chunked else "grouped" if self._grouped else "row"

    @property
    def read_latency(self) -> int:
        """Cycles from a read request to its chunk (:func:`hw.timing.buffer_read_latency`)."""
        return timing.buffer_read_latency(self._memory_register)

    @property
    def word_width(self) -> int:
        """Bits of one memory word."""
        return self._rl if self._chunked else self._wl if self._grouped else self._row_bits

    @property
    def depth(self) -> int:
        words = self._slots * self._rows * self._planes
        if self._chunked:
            return words * self._chunks
        return words * self._groups if self._grouped else words

    @property
    def storage_bits(self) -> int:
        return self.word_width * self.depth

    def elaborate(self, platform):
        m = Module()
        slots, rows, planes, chunks = self._slots, self._rows, self._planes, self._chunks
        wl, rl = self._wl, self._rl

        # -- slot bookkeeping ------------------------------------------------------------------
        used = Signal(range(slots + 1), name="used")
        full = Signal(range(slots + 1), name="full")
        wp = Signal(_idx(slots), name="claim_ptr")
        rp = Signal(_idx(slots), name="take_ptr")
        used_next = Signal.like(used, name="used_next")
        full_next = Signal.like(full, name="full_next")
        # free/full are registered flags computed from the next counts: the stages' start
        # logic then begins at a register.
        free_flag = Signal(init=1, name="free_flag")
        full_flag = Signal(name="full_flag")
        m.d.comb += [used_next.eq(used + self.w.claim - self.r.release),
                     full_next.eq(full + self.w.commit - self.r.take)]
        m.d.sync += [used.eq(used_next), full.eq(full_next),
                     free_flag.eq(used_next < slots), full_flag.eq(full_next != 0)]
        with m.If(self.w.claim):
            _advance(m, wp, slots)
        with m.If(self.r.take):
            _advance(m, rp, slots)
        m.d.comb += [self.w.free.eq(free_flag), self.w.next_slot.eq(wp),
                     self.r.full.eq(full_flag), self.r.next_slot.eq(rp)]

        # -- storage ---------------------------------------------------------------------------
        m.submodules.storage = storage = Memory(shape=unsigned(self.word_width),
                                                depth=self.depth, init=[])
        wr = storage.write_port(granularity=wl)
        rd = storage.read_port(domain="sync")
        # A narrow word (chunked, grouped) goes straight into a register and the chunk is
        # selected after it: nothing between a block RAM's output and a flip-flop. A row word
        # can be hundreds of bits wide: its chunk is selected first, then delayed a cycle.

        def row_index(slot, row, plane):
            index = slot
            if rows > 1:
                index = index * rows + row
            if planes > 1:
                index = index * planes + plane
            return index

        w, r = self.w, self.r
        reg = int(self._memory_register)   # the word's register, or the row chunk's delay
        if self._chunked:
            per_word = rl // wl
            chunk_of = w.group if per_word == 1 else w.group // per_word
            granule = 0 if per_word == 1 else w.group % per_word
            waddr = row_index(w.slot, w.row, w.plane)
            raddr = row_index(r.slot, r.row, r.plane)
            if chunks > 1:
                waddr, raddr = waddr * chunks + chunk_of, raddr * chunks + r.chunk
            m.d.comb += [wr.addr.eq(waddr), wr.data.eq(Cat(*([w.data] * per_word))),
                         rd.addr.eq(raddr)]
            for g in range(per_word):
                m.d.comb += wr.en[g].eq(w.en & (granule == g))
            m.d.sync += r.data.eq(delay(m, rd.data, reg, "read_word"))
        elif self._grouped:
            per_word = wl // rl
            waddr = row_index(w.slot, w.row, w.plane)
            raddr = row_index(r.slot, r.row, r.plane)
            if self._groups > 1:
                waddr = waddr * self._groups + w.group
                raddr = raddr * self._groups + (r.chunk >> fx.ceil_log2(per_word))
            m.d.comb += [wr.addr.eq(waddr), wr.data.eq(w.data), wr.en.eq(w.en),
                         rd.addr.eq(raddr)]
            sub = delay(m, r.chunk[:fx.ceil_log2(per_word)], 1 + reg, "chunk_in_word")
            m.d.sync += r.data.eq(delay(m, rd.data, reg, "read_word").word_select(sub, rl))
        else:
            per_row = self._row_bits // wl
            m.d.comb += [wr.addr.eq(row_index(w.slot, w.row, w.plane)),
                         wr.data.eq(Cat(*([w.data] * per_row))),
                         rd.addr.eq(row_index(r.slot, r.row, r.plane))]
            for g in range(per_row):
                m.d.comb += wr.en[g].eq(w.en & (w.group == g))
            chunk = delay(m, r.chunk, 1, "chunk")
            picked = rd.data.word_select(chunk, rl) if chunks > 1 else rd.data[:rl]
            m.d.sync += r.data.eq(delay(m, picked, reg, "read_chunk"))
        return m
