"""The host link: frames in over a UART byte stream, samples into the accelerator, answers out.

:class:`HostLink` sits between a UART (:mod:`bitstreams.uart`) and an accelerator with an
input stream ``i`` and an output stream ``o`` (one output beat per sample, in order). It speaks
the protocol of :mod:`bitstreams.protocol`; every constant comes from there.

Block diagram::

    rx bytes ─► parser ─► sample buffer (2 slots, BRAM) ─► feeder ─► acc_i (beats)
                  │  (CRC, LEN, TYPE, timeout)                │ SEQ
                  ▼                                           ▼
              answer queue (errors, INFO)                  tag FIFO
                  │                                           │
                  └──────────► serializer ◄─── acc_o ◄────────┘
                                   │
                                   ▼ tx bytes

A sample reaches the accelerator only after its whole frame arrived and its CRC checked, so a
corrupted frame never disturbs a computation; it is answered with an error frame instead.

Each block is a component with its own signature and tests: :class:`FrameParser` (with a
:class:`FrameCRC`), :class:`AnswerQueue`, :class:`SampleFeeder`, :class:`FrameSerializer`
(with another :class:`FrameCRC`); :class:`HostLink` holds what they share (the two-slot
sample buffer and its pointers, the tag FIFO, the pending RESET) and wires them together.
"""

# Nested `with m.If()` blocks are Amaranth control flow; merging them changes what a
# following `m.Elif()` attaches to.
# ruff: noqa: SIM117

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Shape, Signal, Value
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitstreams import protocol as P
from sw.checks import check_choice, check_int
from sw.fixedpoint import ceil_div, ceil_log2

__all__ = ["HostLink", "FrameParser", "AnswerQueue", "SampleFeeder", "FrameSerializer",
           "FrameCRC", "ANSWER_KINDS", "ANSWER_LAYOUT", "CRC_IMPLEMENTATION", "crc16_step",
           "bench_capacity", "BENCH_STORE_NO_INIT"]


def _crc_matrix():
    """For each CRC output bit, the CRC bits and data bits it XORs (the step is linear)."""
    crc_terms = [[j for j in range(16) if (P.crc16_update(1 << j, 0) >> i) & 1]
                 for i in range(16)]
    data_terms = [[k for k in range(8) if (P.crc16_update(0, 1 << k) >> i) & 1]
                  for i in range(16)]
    return crc_terms, data_terms


_CRC_TERMS, _DATA_TERMS = _crc_matrix()


def crc16_step(crc, data):
    """Amaranth expression of :func:`bitstreams.protocol.crc16_update` (one byte per cycle).

    Built from the software step by linearity, so the two cannot differ.
    """
    bits = []
    for i in range(16):
        terms = [crc[j] for j in _CRC_TERMS[i]] + [data[k] for k in _DATA_TERMS[i]]
        bits.append(functools.reduce(operator.xor, terms) if terms else Const(0, 1))
    return Cat(*bits)


#: The CRC gateware :class:`FrameCRC` builds by default: ``"xor"`` (:func:`crc16_step`) or
#: ``"lib"`` (``amaranth.lib.crc``). docs/bitstreams.md gives the measurement that chose it.
CRC_IMPLEMENTATION = "xor"


class FrameCRC(wiring.Component):
    """CRC-16/CCITT-FALSE over a byte stream, one byte per cycle (the protocol's CRC).

    Timing
    ------
    ``crc`` is a register: ``start`` loads :data:`bitstreams.protocol.CRC_INIT` into it the
    cycle after; ``valid`` adds ``data`` to it the cycle after. ``start`` wins over ``valid``
    (the byte is not added). ``ok`` is ``crc == 0`` (no register): run over a frame after its
    SYNC, CRC bytes included, the CRC of a good frame is 0.

    Parameters
    ----------
    implementation : {"xor", "lib"} or None
        ``"xor"``: :func:`crc16_step`, the XOR network derived from the software step;
        ``"lib"``: ``amaranth.lib.crc`` with the catalogue's CRC16_CCITT_FALSE. None:
        :data:`CRC_IMPLEMENTATION`. Both compute the same CRC (tests check it).

    Members
    -------
    start : In(1)
        Begin a new CRC.
    valid : In(1)
        Add ``data``.
    data : In(8)
    crc : Out(16)
        The CRC so far.
    ok : Out(1)
        ``crc == 0``.
    """

    def __init__(self, implementation: str | None = None):
        implementation = CRC_IMPLEMENTATION if implementation is None else implementation
        check_choice("implementation", implementation, ("xor", "lib"))
        self.implementation = implementation
        super().__init__({"start": In(1), "valid": In(1), "data": In(8), "crc": Out(16),
                          "ok": Out(1)})

    def elaborate(self, platform):
        m = Module()
        if self.implementation == "lib":
            from amaranth.lib.crc.catalog import CRC16_CCITT_FALSE

            m.submodules.crc = crc = CRC16_CCITT_FALSE(data_width=8).create()
            m.d.comb += [crc.start.eq(self.start), crc.valid.eq(self.valid & ~self.start),
                         crc.data.eq(self.data), self.crc.eq(crc.crc)]
        else:
            value = Signal(16, init=P.CRC_INIT)
            with m.If(self.start):
                m.d.sync += value.eq(P.CRC_INIT)
            with m.Elif(self.valid):
                m.d.sync += value.eq(crc16_step(value, self.data))
            m.d.comb += self.crc.eq(value)
        m.d.comb += self.ok.eq(self.crc == 0)
        return m


#: Yosys command for a build whose benchmark store is SPRAM (``ram_style`` ``"huge"``):
#: Amaranth gives every memory an initial value (zeros here), the UP5K's SPRAM has none, and
#: Yosys maps no memory with an initial value onto it; the store is never read before it is
#: written, so its initial value goes.
BENCH_STORE_NO_INIT = r"delete t:$meminit_v2 r:MEMID=\bench_store %i"


def bench_capacity(store_bytes: int, sample_bytes: int) -> int:
    """Samples a benchmark store of ``store_bytes`` holds: :class:`HostLink` keeps each in
    ``2**ceil(log2(sample_bytes))`` bytes (the address is the sample's index, then the byte's),
    and the count is a power of two (at most 2**15: the BENCH answer counts in 16 bits); 0 when
    not even one fits."""
    check_int("store_bytes", store_bytes, 0)
    check_int("sample_bytes", sample_bytes, 1, 0xFFFF)
    fit = store_bytes >> max(1, ceil_log2(sample_bytes))
    return min(1 << 15, 1 << (fit.bit_length() - 1)) if fit else 0


def _payload_width(sig, name) -> int:
    if not isinstance(sig, stream.Signature):
        raise TypeError(f"{name} must be an amaranth.lib.stream.Signature, not {sig!r}")
    return Shape.cast(sig.members["payload"].shape).width


#: Everything the parser can ask the answer queue for, in priority order (lowest index wins
#: when several come in one cycle): an INFO answer, a STORED one, then each error code.
ANSWER_KINDS = ("info", "stored", *[c.name for c in P.ErrorCode])
_CODE_WIDTH = max(int(c) for c in P.ErrorCode).bit_length()
#: One queued answer: INFO, STORED or (neither) an error, the SEQ to answer with, the error
#: code.
ANSWER_LAYOUT = data.StructLayout({"info": 1, "stored": 1, "seq": 8, "code": _CODE_WIDTH})


class AnswerQueue(wiring.Component):
    """The queue of INFO, STORED and error answers waiting for the serializer.

    Timing
    ------
    ``events`` (one bit per :data:`ANSWER_KINDS`) is registered with ``seq``; the cycle after,
    a priority encoder turns it into one :data:`ANSWER_LAYOUT` entry (the lowest kind wins;
    NO_SYNC answers with SEQ 0), written into the FIFO the cycle after that: an event reaches
    ``o`` three cycles after it is raised. A byte comes at most every 16 cycles, so the two
    cycles cost nothing and keep the parser's decisions, the encoding and the FIFO in separate
    cycles. An entry that finds the FIFO full is dropped and counted in ``lost`` (saturating
    at 255); ``error`` pulses (registered) for every error entry written or dropped.

    Parameters
    ----------
    depth : int
        Answers the FIFO holds.

    Members
    -------
    events : In(len(ANSWER_KINDS))
        The answers asked for this cycle (one-hot, or several at once).
    seq : In(8)
        The SEQ of the frame the events are about.
    o : Out(stream.Signature(ANSWER_LAYOUT))
        The queued answers.
    lost : Out(8)
        Answers dropped because the FIFO was full.
    error : Out(1)
        An error answer was queued (one-cycle pulse).
    """

    def __init__(self, depth: int):
        check_int("depth", depth, 1)
        self._depth = depth
        super().__init__({"events": In(len(ANSWER_KINDS)), "seq": In(8),
                          "o": Out(stream.Signature(ANSWER_LAYOUT)), "lost": Out(8),
                          "error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        width = ANSWER_LAYOUT.size
        m.submodules.fifo = answers = fifo.SyncFIFO(width=width, depth=self._depth)
        raised = Signal(len(ANSWER_KINDS))
        seq_q = Signal(8)  # seq one cycle later, for the answer encoded a cycle after
        m.d.sync += [raised.eq(self.events), seq_q.eq(self.seq)]
        entry = Const(0, width)
        for k, name in reversed(list(enumerate(ANSWER_KINDS))):  # lowest index wins
            code = int(P.ErrorCode[name]) if name in P.ErrorCode.__members__ else 0
            seq = Const(0, 8) if name == "NO_SYNC" else seq_q
            entry = Mux(raised[k], Cat(Const(name == "info", 1), Const(name == "stored", 1), seq,
                                       Const(code, _CODE_WIDTH)), entry)
        enqueue = Signal()
        enqueued = Signal.like(entry)
        m.d.sync += [enqueue.eq(raised != 0), enqueued.eq(entry)]
        m.d.comb += [answers.w_en.eq(enqueue), answers.w_data.eq(enqueued),
                     self.o.valid.eq(answers.r_rdy), self.o.payload.eq(answers.r_data),
                     answers.r_en.eq(self.o.ready)]
        with m.If(answers.w_en & ~answers.w_rdy & (self.lost != 0xFF)):
            m.d.sync += self.lost.eq(self.lost + 1)
        error_pulse = Signal()
        with m.If(answers.w_en & ~answers.w_data[0] & ~answers.w_data[1]):
            m.d.comb += error_pulse.eq(1)
        m.d.sync += self.error.eq(error_pulse)
        return m


class FrameParser(wiring.Component):
    """The receiver: request frames from the UART's bytes, checked, with their verdicts.

    Timing
    ------
    ``rx`` is always ready; bytes must come at least 8 cycles apart. Stage 1 registers each
    received byte with what the parser asks of it (comparisons against constants); stage 2,
    the state machine, only combines registered flags. A sample's payload is written to
    ``write_*`` (its byte index within the slot) as it arrives, unless the slot is taken
    (``slot_full``), a reset is pending or a benchmark run is on (``bench_busy``), in which
    case the frame is answered BUSY. A BENCH_STORE sample is written the same way, with
    ``write_bench`` high, unless the store is full (``bench_full``: answered FULL), a reset is
    pending or a run is on (BUSY). Three cycles after a frame's last CRC byte came, in its
    DISPATCH cycle, the parser raises exactly one of: ``commit`` (a good sample is in the
    slot), ``bench_commit`` (a good sample is in the store, with the STORED event),
    ``bench_run`` (a good BENCH_RUN while the link is idle: no run on, no reset pending, no
    sample in flight, ``link_busy`` low), ``reset_request`` (a good RESET), or an ``events``
    bit (INFO or an error); ``verdict`` is high the cycle before, when ``seq`` holds the
    frame's SEQ for good. Errors that end a frame early (TIMEOUT, FRAMING, BAD_LENGTH) and
    stray bytes (NO_SYNC, once per run) raise their event at once.

    Parameters
    ----------
    sample_bytes : int
        The INFER payload length.
    timeout_cycles : int
        A frame whose next byte does not arrive within this many cycles is dropped and answered
        with a TIMEOUT error.

    Members
    -------
    rx : In(stream.Signature(8))
        Received bytes.
    rx_error : In(1)
        A UART framing error (pulse).
    slot_full : In(1)
        The slot the next sample would be written to is taken.
    reset_pending : In(1)
        A RESET is waiting to be carried out (samples are refused meanwhile).
    bench_busy : In(1)
        A benchmark run is on (samples and runs are refused meanwhile).
    bench_full : In(1)
        The benchmark store is full (or there is none).
    link_busy : In(1)
        A sample is in a slot or in the accelerator (a BENCH_RUN is refused meanwhile).
    write_addr : Out(range of sample_bytes)
    write_data : Out(8)
    write_en : Out(1)
        A payload byte to store at ``write_addr`` of the slot (or of the store's next sample).
    write_bench : Out(1)
        The frame being written is a BENCH_STORE (held through the frame).
    events : Out(len(ANSWER_KINDS))
        Answers for :class:`AnswerQueue`.
    seq : Out(8)
        SEQ of the frame being received.
    verdict : Out(1)
        The frame's checks are being registered (``seq`` is final).
    commit : Out(1)
        A good INFER frame's sample is complete in its slot.
    reset_request : Out(1)
        A good RESET frame arrived.
    bench_commit : Out(1)
        A good BENCH_STORE frame's sample is complete in the store.
    bench_run : Out(1)
        A good BENCH_RUN frame arrived, to be carried out.
    """

    def __init__(self, *, sample_bytes: int, timeout_cycles: int):
        check_int("sample_bytes", sample_bytes, 1, 0xFFFF)
        check_int("timeout_cycles", timeout_cycles, 16)
        self._sample_bytes = sample_bytes
        self._timeout = timeout_cycles
        self._idx_w = max(1, ceil_log2(sample_bytes))
        super().__init__({
            "rx": In(stream.Signature(8)), "rx_error": In(1), "slot_full": In(1),
            "reset_pending": In(1), "bench_busy": In(1), "bench_full": In(1), "link_busy": In(1),
            "write_addr": Out(self._idx_w), "write_data": Out(8), "write_en": Out(1),
            "write_bench": Out(1), "events": Out(len(ANSWER_KINDS)), "seq": Out(8),
            "verdict": Out(1), "commit": Out(1), "reset_request": Out(1),
            "bench_commit": Out(1), "bench_run": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sample_bytes = self._sample_bytes
        fseq = self.seq
        commit = self.commit
        event = {k: Signal(name=f"event_{k.lower()}") for k in ANSWER_KINDS}
        m.d.comb += self.events.eq(Cat(*event.values()))

        def answer(name):
            return event[name].eq(1)

        m.d.comb += self.rx.ready.eq(1)
        got = Signal()
        byte = Signal(8)
        framing = Signal()
        is_sync, is_zero = Signal(), Signal()
        eq_lo, gt_lo, eq_hi, gt_hi = Signal(), Signal(), Signal(), Signal()
        is_infer, is_info, is_reset = Signal(), Signal(), Signal()
        is_bstore, is_brun = Signal(), Signal()
        m.d.sync += [
            got.eq(self.rx.valid), byte.eq(self.rx.payload), framing.eq(self.rx_error),
            is_sync.eq(self.rx.payload == P.REQUEST_SYNC), is_zero.eq(self.rx.payload == 0),
            eq_lo.eq(self.rx.payload == (sample_bytes & 0xFF)),
            gt_lo.eq(self.rx.payload > (sample_bytes & 0xFF)),
            eq_hi.eq(self.rx.payload == (sample_bytes >> 8)),
            gt_hi.eq(self.rx.payload > (sample_bytes >> 8)),
            is_infer.eq(self.rx.payload == P.Request.INFER),
            is_info.eq(self.rx.payload == P.Request.INFO),
            is_reset.eq(self.rx.payload == P.Request.RESET),
            is_bstore.eq(self.rx.payload == P.Request.BENCH_STORE),
            is_brun.eq(self.rx.payload == P.Request.BENCH_RUN),
        ]
        type_infer, type_info, type_reset = Signal(), Signal(), Signal()
        type_bstore, type_brun = Signal(), Signal()
        len_lo = Signal(8)
        lo_eq, lo_gt, lo_zero = Signal(), Signal(), Signal()
        v_commit, v_busy, v_bad_length = Signal(), Signal(), Signal()
        v_info, v_reset, v_unknown = Signal(), Signal(), Signal()
        v_stored, v_full, v_run = Signal(), Signal(), Signal()
        len_is_sample = Signal()
        len_is_zero = Signal()
        remaining = Signal(range(sample_bytes))
        widx = Signal(self._idx_w)
        m.submodules.crc = rx_crc = FrameCRC()
        crc_ok = Signal()
        store = Signal()          # an INFER sample is being written to its slot
        bstore = Signal()         # a BENCH_STORE sample is being written to the store
        bstore_full = Signal()    # a BENCH_STORE sample refused: the store is full
        stray_reported = Signal()
        idle = Signal(range(self._timeout + 1))
        timed_out = Signal()

        m.d.sync += [timed_out.eq(idle == self._timeout), crc_ok.eq(rx_crc.ok)]
        # Every byte goes into the CRC; the SYNC that starts a frame restarts it instead.
        m.d.comb += [rx_crc.data.eq(byte), rx_crc.valid.eq(got)]
        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += idle.eq(idle + 1)

        # A one-hot state machine written out by hand: every next-state and action term is a
        # short AND/OR of registered flags, two or three LUT levels deep on an iCE40 (a
        # binary-encoded FSM with this many transitions took five or more).
        names = ["HUNT", "TYPE", "SEQ", "LEN0", "LEN1", "PAYLOAD", "CRC0", "CRC1", "CHECK",
                 "DISPATCH"]
        st = {n: Signal(name=f"parser_{n.lower()}", init=int(n == "HUNT")) for n in names}
        inframe = Signal()         # in TYPE .. CRC1 (kept as its own flip-flop)
        rem_zero = Signal()        # remaining == 0, registered (remaining moves on bytes only)
        m.d.sync += rem_zero.eq(remaining == 0)
        abort = framing | timed_out
        start = st["HUNT"] & got & is_sync
        bad_len = gt_hi | (eq_hi & lo_gt)
        zero_len = is_zero & lo_zero
        stay = ~got & ~abort
        # A byte moves a frame on only when the frame is not aborted in the same cycle: a byte
        # arriving just as the frame times out (or with a framing error) ends the frame, and
        # must not also advance it (nor, as its last CRC byte, dispatch it).
        adv = got & ~abort

        m.d.sync += [
            st["HUNT"].eq(st["HUNT"] & ~start | st["DISPATCH"] | inframe & abort
                          | st["LEN1"] & adv & bad_len),
            st["TYPE"].eq(start | st["TYPE"] & stay),
            st["SEQ"].eq(st["TYPE"] & adv | st["SEQ"] & stay),
            st["LEN0"].eq(st["SEQ"] & adv | st["LEN0"] & stay),
            st["LEN1"].eq(st["LEN0"] & adv | st["LEN1"] & stay),
            st["PAYLOAD"].eq(st["LEN1"] & adv & ~bad_len & ~zero_len
                             | st["PAYLOAD"] & ~abort & ~(got & rem_zero)),
            st["CRC0"].eq(st["LEN1"] & adv & ~bad_len & zero_len
                          | st["PAYLOAD"] & adv & rem_zero | st["CRC0"] & stay),
            st["CRC1"].eq(st["CRC0"] & adv | st["CRC1"] & stay),
            st["CHECK"].eq(st["CRC1"] & adv),
            st["DISPATCH"].eq(st["CHECK"]),
            inframe.eq(start | inframe & ~abort & ~(st["CRC1"] & got)
                       & ~(st["LEN1"] & got & bad_len)),
        ]

        # HUNT: a SYNC starts a frame; anything else is a stray byte, answered once per run.
        with m.If(st["HUNT"]):
            with m.If(timed_out):
                m.d.sync += stray_reported.eq(0)  # silence ends a run of stray bytes
            with m.If(start):
                m.d.comb += rx_crc.start.eq(1)
                m.d.sync += [stray_reported.eq(0), fseq.eq(0),
                             type_infer.eq(0), type_info.eq(0), type_reset.eq(0),
                             type_bstore.eq(0), type_brun.eq(0)]
            with m.Elif((got | framing) & ~stray_reported):
                m.d.comb += answer("NO_SYNC")
                m.d.sync += stray_reported.eq(1)
        # Inside a frame, a UART framing error or the frame timeout ends it with an answer.
        with m.If(inframe & framing):
            m.d.comb += answer("FRAMING")
            m.d.sync += stray_reported.eq(1)
        with m.Elif(inframe & timed_out):
            m.d.comb += answer("TIMEOUT")
        with m.If(st["TYPE"] & got):
            m.d.sync += [type_infer.eq(is_infer), type_info.eq(is_info),
                         type_reset.eq(is_reset), type_bstore.eq(is_bstore),
                         type_brun.eq(is_brun)]
        with m.If(st["SEQ"] & got):
            m.d.sync += fseq.eq(byte)
        with m.If(st["LEN0"] & got):
            m.d.sync += [len_lo.eq(byte), lo_eq.eq(eq_lo), lo_gt.eq(gt_lo), lo_zero.eq(is_zero)]
        with m.If(st["LEN1"] & got):
            is_sample = eq_hi & lo_eq
            m.d.sync += [len_is_sample.eq(is_sample), len_is_zero.eq(zero_len),
                         remaining.eq(Cat(len_lo, byte) - 1), widx.eq(0),
                         store.eq(type_infer & is_sample & ~self.reset_pending
                                  & ~self.bench_busy & ~self.slot_full),
                         bstore.eq(type_bstore & is_sample & ~self.reset_pending
                                   & ~self.bench_busy & ~self.bench_full),
                         bstore_full.eq(type_bstore & is_sample & ~self.reset_pending
                                        & ~self.bench_busy & self.bench_full)]
            with m.If(bad_len):
                m.d.comb += answer("BAD_LENGTH")
                m.d.sync += stray_reported.eq(1)
        m.d.comb += [self.write_addr.eq(widx), self.write_data.eq(byte),
                     self.write_en.eq(st["PAYLOAD"] & got & (store | bstore)),
                     self.write_bench.eq(type_bstore)]
        with m.If(st["PAYLOAD"] & got):
            m.d.sync += [widx.eq(widx + 1), remaining.eq(remaining - 1)]
        m.d.comb += self.verdict.eq(st["CHECK"])
        with m.If(st["CHECK"]):
            # The verdict on everything but the CRC, registered (crc_ok registers the CRC of
            # the last byte in this same cycle).
            sample_type = type_infer | type_bstore
            empty_type = type_info | type_reset | type_brun
            known_len = sample_type & len_is_sample | empty_type & len_is_zero
            # A run needs the link idle: no reset pending, no run on, no sample in a slot or
            # in the accelerator (their results would be counted in the run).
            run_refused = self.reset_pending | self.bench_busy | self.link_busy
            m.d.sync += [
                v_commit.eq(type_infer & len_is_sample & store),
                v_stored.eq(type_bstore & len_is_sample & bstore),
                v_busy.eq(type_infer & len_is_sample & ~store
                          | type_bstore & len_is_sample & ~bstore & ~bstore_full
                          | type_brun & len_is_zero & run_refused),
                v_full.eq(type_bstore & len_is_sample & bstore_full),
                v_run.eq(type_brun & len_is_zero & ~run_refused),
                v_bad_length.eq((sample_type | empty_type) & ~known_len),
                v_info.eq(type_info & len_is_zero),
                v_reset.eq(type_reset & len_is_zero),
                v_unknown.eq(~(sample_type | empty_type)),
            ]
        with m.If(st["DISPATCH"]):
            with m.If(~crc_ok):
                m.d.comb += answer("BAD_CRC")
            with m.Else():
                m.d.comb += [commit.eq(v_commit), event["BUSY"].eq(v_busy),
                             event["BAD_LENGTH"].eq(v_bad_length), event["info"].eq(v_info),
                             event["UNKNOWN_TYPE"].eq(v_unknown),
                             self.reset_request.eq(v_reset),
                             self.bench_commit.eq(v_stored), event["stored"].eq(v_stored),
                             event["FULL"].eq(v_full), self.bench_run.eq(v_run)]
        return m


class SampleFeeder(wiring.Component):
    """Feeds committed samples from the sample buffer to the accelerator, beat by beat.

    Timing
    ------
    When the slot it points at is full and the tag FIFO has room (seen in one cycle of IDLE,
    registered, and acted on in the next: the decision starts from one flip-flop), the feeder
    writes the slot's SEQ to ``tag_*`` and then, per beat, reads the beat's bytes one per
    cycle (the buffer's read port has one cycle of latency), waits one cycle for the last byte
    and presents the beat on ``acc_i`` until taken: ``beat_bytes + 2`` cycles per beat plus
    any wait on ``acc_i.ready`` (:func:`bitstreams.protocol.feed_cycles`). ``release`` pulses
    with the sample's last beat taken. ``reset`` returns it to idle at once (a beat being
    presented is dropped).

    Parameters
    ----------
    in_signature : amaranth.lib.stream.Signature
        The accelerator's input stream (as seen by the accelerator).
    beats : int
        Input beats per sample.
    sample_bytes : int
        Bytes per sample (``beats * beat_bytes``).

    Members
    -------
    slot_full : In(1)
        The slot the feeder points at holds a sample.
    slot_seq : In(8)
        That sample's SEQ.
    read_addr : Out(range of sample_bytes)
        Byte index within the slot for the buffer's read port.
    read_data : In(8)
        The buffer's read data (one cycle after ``read_addr``).
    read_next : Out(range of sample_bytes)
        What ``read_addr`` will be in the next cycle (a memory with a registered output
        addressed one cycle ahead gives its data with the same timing).
    tag_ready : In(1)
        The tag FIFO has room.
    tag_valid : Out(1)
        Write ``tag`` into the tag FIFO (only while ``tag_ready``).
    tag : Out(8)
    release : Out(1)
        The slot is free again.
    reset : In(1)
        Return to idle.
    acc_i : Out(in_signature)
        The beats.
    """

    def __init__(self, *, in_signature, beats: int, sample_bytes: int):
        self._in_width = _payload_width(in_signature, "in_signature")
        check_int("beats", beats, 1)
        check_int("sample_bytes", sample_bytes, 1, 0xFFFF)
        beat_bytes = ceil_div(self._in_width, 8)
        if sample_bytes != beats * beat_bytes:
            raise ValueError(f"sample_bytes must be beats x beat bytes = {beats * beat_bytes}, "
                             f"not {sample_bytes}")
        self._beats = beats
        self._beat_bytes = beat_bytes
        self._idx_w = max(1, ceil_log2(sample_bytes))
        super().__init__({
            "slot_full": In(1), "slot_seq": In(8), "read_addr": Out(self._idx_w),
            "read_data": In(8), "read_next": Out(self._idx_w), "tag_ready": In(1),
            "tag_valid": Out(1), "tag": Out(8),
            "release": Out(1), "reset": In(1), "acc_i": Out(in_signature),
        })

    def elaborate(self, platform):
        m = Module()
        beat_bytes = self._beat_bytes
        beat_reg = Signal(8 * beat_bytes)
        ridx = Signal(self._idx_w)
        ridx_next = Signal(self._idx_w)
        lane = Signal(range(beat_bytes))
        lane_q = Signal(range(beat_bytes))
        load_q = Signal()
        beat = Signal(range(self._beats))
        go = Signal()
        m.d.sync += go.eq(0)
        m.d.comb += [self.read_addr.eq(ridx), ridx_next.eq(ridx), self.read_next.eq(ridx_next),
                     self.acc_i.payload.eq(beat_reg[:self._in_width])]
        m.d.sync += ridx.eq(ridx_next)
        m.d.sync += load_q.eq(0)
        with m.If(load_q):
            with m.Switch(lane_q):
                for k in range(beat_bytes):
                    with m.Case(k):
                        m.d.sync += beat_reg[8 * k:8 * (k + 1)].eq(self.read_data)

        def stop_on_reset():
            with m.If(self.reset):
                m.next = "IDLE"

        with m.FSM(name="feeder"):
            with m.State("IDLE"):
                # (Index 0 whether a sample starts or not: ``read_next`` follows the state
                # alone, a short path into the memory's address.)
                m.d.comb += ridx_next.eq(0)
                # Neither condition can go away while the feeder idles (only its own release
                # frees a slot's sample, only its own writes fill the tag FIFO), so the
                # registered ``go`` still holds; a reset meanwhile is seen at once.
                m.d.sync += go.eq(self.slot_full & self.tag_ready & ~self.reset)
                with m.If(go & ~self.reset):
                    m.d.comb += [self.tag_valid.eq(1), self.tag.eq(self.slot_seq)]
                    m.d.sync += [lane.eq(0), beat.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += ridx_next.eq(ridx + 1)
                m.d.sync += [lane_q.eq(lane), load_q.eq(1), lane.eq(lane + 1)]
                with m.If(lane == beat_bytes - 1):
                    m.d.sync += lane.eq(0)
                    m.next = "LAST"
                stop_on_reset()
            with m.State("LAST"):
                m.next = "SEND"
                stop_on_reset()
            with m.State("SEND"):
                m.d.comb += self.acc_i.valid.eq(1)
                with m.If(self.acc_i.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(beat == self._beats - 1):
                        m.d.comb += self.release.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "LOAD"
                stop_on_reset()
        return m


class FrameSerializer(wiring.Component):
    """The transmitter: answer frames (RESET_DONE, INFO, STORED, ERROR, RESULT, BENCH) onto
    the UART's bytes, and the CRC of a benchmark run's results.

    Timing
    ------
    What is waiting is registered first (``reset_pending``, ``answer.valid``, a result with
    its tag), so the FIFO levels stay off the path into the one-hot state machine; of several,
    a pending reset goes first (``reset_taken`` pulses as the serializer takes it, and the
    frame is RESET_DONE), then a queued answer, then a result. A frame's payload is loaded
    into a shift register when the frame is picked and leaves from its low byte; ``result``
    is taken (``ready`` high for one cycle, with ``tag_take``) in that cycle, so the
    accelerator's output is free while the RESULT frame is on the wire, and the payload is
    the link's only copy of it. One byte goes to ``tx`` at a time, each held until taken.

    While ``bench_on``, a result is not sent: its bytes go into the benchmark CRC instead, one
    per cycle (``hashing`` is high meanwhile), so a result costs ``result_bytes + 1`` cycles
    from its take to the next pick. ``bench_start`` restarts that CRC. A pending BENCH answer
    (``bench_pending``; taken with ``bench_taken``) goes after a reset and the queued
    answers: ``bench_samples``, ``bench_cycles`` and the CRC, as
    :class:`bitstreams.protocol.BenchResult`.

    Parameters
    ----------
    out_signature : amaranth.lib.stream.Signature
        The accelerator's output stream (as seen by the accelerator).
    info : bitstreams.protocol.DeviceInfo
        The INFO payload (its ``lost_answers`` byte comes from ``lost``).
    info_rom_style : str or None
        ``rom_style`` of the ROM holding it (``"block"``, ``"logic"``; None: Yosys' choice).
        Its read is registered either way: in a block RAM's output or after the logic.

    Members
    -------
    reset_pending : In(1)
        A RESET is waiting.
    reset_seq : In(8)
        Its SEQ.
    reset_taken : Out(1)
        The serializer takes the reset now (a one-cycle pulse: carry it out, clear pending).
    answer : In(stream.Signature(ANSWER_LAYOUT))
        Queued INFO and error answers.
    tag_valid : In(1)
    tag : In(8)
        The SEQ of the oldest sample inside the accelerator.
    tag_take : Out(1)
        That tag is done with (its RESULT was sent).
    result : In(out_signature)
        Results from the accelerator.
    lost : In(8)
        Answers lost so far (for INFO).
    bench_on : In(1)
        A benchmark run is on: results are hashed, not sent.
    bench_start : In(1)
        A run starts (restarts the CRC).
    hashing : Out(1)
        A result's bytes are going into the CRC.
    bench_pending : In(1)
    bench_seq : In(8)
    bench_samples : In(16)
    bench_cycles : In(32)
        A run's BENCH answer is waiting, with its figures.
    bench_taken : Out(1)
        The serializer takes the BENCH answer now (a one-cycle pulse).
    tx : Out(stream.Signature(8))
        Bytes to transmit.
    """

    def __init__(self, *, out_signature, info: P.DeviceInfo, info_rom_style: str | None = None):
        self._info_rom_style = check_choice("info_rom_style", info_rom_style,
                                            (None, "block", "logic"))
        self._out_width = _payload_width(out_signature, "out_signature")
        if not isinstance(info, P.DeviceInfo):
            raise TypeError(f"info must be a DeviceInfo, not {info!r}")
        if info.result_bytes != ceil_div(self._out_width, 8):
            raise ValueError(f"info.result_bytes is {info.result_bytes}, but out_signature "
                             f"gives {ceil_div(self._out_width, 8)}")
        self._info = info
        super().__init__({
            "reset_pending": In(1), "reset_seq": In(8), "reset_taken": Out(1),
            "answer": In(stream.Signature(ANSWER_LAYOUT)), "tag_valid": In(1), "tag": In(8),
            "tag_take": Out(1), "result": In(out_signature), "lost": In(8),
            "bench_on": In(1), "bench_start": In(1), "hashing": Out(1),
            "bench_pending": In(1), "bench_seq": In(8), "bench_samples": In(16),
            "bench_cycles": In(32),
            "bench_taken": Out(1), "tx": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        info = self._info
        result_len = info.result_bytes
        info_rom = list(info.to_bytes())
        info_len = len(info_rom)
        longest = max(info_len, result_len, P.BENCH_BYTES)
        otype = Signal(8)
        oseq = Signal(8)
        olen = Signal(16)
        oempty = Signal()
        ocode = Signal(_CODE_WIDTH)
        left = Signal(range(longest))    # payload bytes after the one being sent next
        m.submodules.crc = tx_crc = FrameCRC()
        ocrc = tx_crc.crc
        crc_en = Signal()
        tx_byte = self.tx.payload
        m.d.comb += [tx_crc.data.eq(tx_byte),
                     tx_crc.valid.eq(self.tx.valid & self.tx.ready & crc_en)]
        with m.If(self.tx.valid & self.tx.ready):
            m.d.sync += self.tx.valid.eq(0)

        # A result's payload is loaded whole into a shift register when its frame is picked
        # and leaves from its low byte, shifted by a byte after each: every bit is one LUT
        # (load or shift) in front of its flip-flop, where a byte multiplexer over the result
        # would cost more and keep it held for the whole frame. The result (and its tag) is
        # taken the cycle its frame is picked, which frees the accelerator's output at once.
        # A BENCH payload (samples, cycles, CRC: final once the answer is pending) is loaded
        # into the same register when its frame is picked. The INFO payload is constant but
        # for one byte: a small ROM, indexed by the count of bytes left and registered (a
        # payload byte goes out at most every other cycle, so the register holds the next byte
        # by then; on the iCE40 a block RAM, whose output is that register, where logic puts a
        # deep multiplexer in front of it); an error's one byte is its code.
        payload = Signal(8 * max(result_len, P.BENCH_BYTES))
        result_bits = Cat(Value.cast(self.result.payload),
                          Const(0, len(payload) - self._out_width))
        # The INFO ROM, last byte first (its address is ``left``), read the cycle after
        # ``left`` is set; its lost-answers byte is a zero there, and ``lost`` is ORed in.
        lost_at = info_len - 1 - P.DeviceInfo.LOST_OFFSET
        m.submodules.info_rom = rom = Memory(
            shape=8, depth=info_len,
            init=[0 if k == P.DeviceInfo.LOST_OFFSET else b
                  for k, b in enumerate(info_rom)][::-1])
        if self._info_rom_style is not None:
            rom.attrs["rom_style"] = self._info_rom_style
        rom_rd = rom.read_port(domain="sync")
        info_at_lost = Signal()
        m.d.comb += rom_rd.addr.eq(left)
        m.d.sync += info_at_lost.eq(left == lost_at)
        # The benchmark CRC runs over the hashed results' bytes.
        m.submodules.bench_crc = bench_crc = FrameCRC()
        bench_word = Cat(self.bench_samples, self.bench_cycles, bench_crc.crc)  # little endian
        kind_info, kind_error = Signal(), Signal()
        info_byte = rom_rd.data | Mux(info_at_lost, self.lost, 0)
        payload_byte = Mux(kind_info, info_byte, Mux(kind_error, ocode, payload[:8]))
        load_result = Signal()

        def emit(value, in_crc=True):
            return [tx_byte.eq(value), self.tx.valid.eq(1), crc_en.eq(in_crc)]

        # What is waiting, registered: the FIFO levels behind these flags stay off the path into
        # the state machine. Each is read only in IDLE, which the serializer reaches a cycle
        # or more after it took the last thing it picked, so none of them is stale there.
        have_reset, have_answer, have_result = Signal(), Signal(), Signal()
        have_bench = Signal()
        m.d.sync += [have_reset.eq(self.reset_pending), have_answer.eq(self.answer.valid),
                     have_result.eq(self.result.valid & self.tag_valid),
                     have_bench.eq(self.bench_pending)]

        # One-hot state machine, as the parser's: each term a short AND/OR of registers.
        snames = ["IDLE", "SYNC", "TYPE", "SEQ", "LEN0", "LEN1", "PAYLOAD", "CRC0", "CRC1",
                  "DONE", "HASH"]
        ss = {n: Signal(name=f"serializer_{n.lower()}", init=int(n == "IDLE")) for n in snames}
        at_last = Signal()   # no payload byte after the one being sent
        m.d.comb += at_last.eq(left == 0)
        empty = ~self.tx.valid
        pick = ss["IDLE"] & (have_reset | have_answer | have_bench | have_result)
        # The result's take, registered: the same condition as the pick below (IDLE, a result
        # waiting and nothing before it), computed from what the registers above and IDLE's
        # will hold, so that ``result.ready`` leaves this block from one flip-flop.
        idle_next, take_result = Signal(), Signal()
        m.d.sync += take_result.eq(idle_next & ~self.reset_pending & ~self.answer.valid
                                   & ~self.bench_pending & self.result.valid & self.tag_valid)
        # A result picked during a run is hashed, not framed.
        hash_pick = ss["IDLE"] & ~have_reset & ~have_answer & ~have_bench & have_result \
            & self.bench_on
        emit_payload = ss["PAYLOAD"] & empty
        hash_byte = ss["HASH"]
        m.d.comb += [self.hashing.eq(ss["HASH"]),
                     bench_crc.start.eq(self.bench_start), bench_crc.data.eq(payload[:8]),
                     bench_crc.valid.eq(hash_byte)]
        m.d.comb += idle_next.eq(ss["IDLE"] & ~pick | ss["DONE"] & empty | hash_byte & at_last)
        m.d.sync += [
            ss["IDLE"].eq(idle_next),
            ss["HASH"].eq(hash_pick | ss["HASH"] & ~at_last),
            ss["SYNC"].eq(pick & ~hash_pick | ss["SYNC"] & ~empty),
            ss["TYPE"].eq(ss["SYNC"] & empty | ss["TYPE"] & ~empty),
            ss["SEQ"].eq(ss["TYPE"] & empty | ss["SEQ"] & ~empty),
            ss["LEN0"].eq(ss["SEQ"] & empty | ss["LEN0"] & ~empty),
            ss["LEN1"].eq(ss["LEN0"] & empty | ss["LEN1"] & ~empty),
            ss["PAYLOAD"].eq(ss["LEN1"] & empty & ~oempty | ss["PAYLOAD"]
                             & ~(emit_payload & at_last)),
            ss["CRC0"].eq(ss["LEN1"] & empty & oempty | emit_payload & at_last
                          | ss["CRC0"] & ~empty),
            ss["CRC1"].eq(ss["CRC0"] & empty | ss["CRC1"] & ~empty),
            ss["DONE"].eq(ss["CRC1"] & empty | ss["DONE"] & ~empty),
        ]
        with m.If(ss["IDLE"]):
            with m.If(have_reset):
                m.d.comb += self.reset_taken.eq(1)
                m.d.sync += [otype.eq(P.Response.RESET_DONE), oseq.eq(self.reset_seq),
                             olen.eq(0), oempty.eq(1)]
            with m.Elif(have_answer):
                m.d.comb += self.answer.ready.eq(1)
                entry = self.answer.payload
                with m.If(entry.info):
                    m.d.sync += [otype.eq(P.Response.INFO), olen.eq(info_len),
                                 left.eq(info_len - 1)]
                with m.Else():
                    m.d.sync += [otype.eq(P.Response.ERROR), olen.eq(1), left.eq(0)]
                with m.If(entry.stored):
                    m.d.sync += [otype.eq(P.Response.STORED), olen.eq(0)]
                m.d.sync += [oseq.eq(entry.seq), ocode.eq(entry.code), oempty.eq(entry.stored),
                             kind_info.eq(entry.info), kind_error.eq(~entry.info)]
            with m.Elif(have_bench):
                m.d.comb += self.bench_taken.eq(1)
                m.d.sync += [otype.eq(P.Response.BENCH), oseq.eq(self.bench_seq),
                             olen.eq(P.BENCH_BYTES),
                             left.eq(P.BENCH_BYTES - 1), oempty.eq(0), kind_info.eq(0),
                             kind_error.eq(0)]
            with m.Elif(have_result):
                m.d.sync += [otype.eq(P.Response.RESULT), oseq.eq(self.tag),
                             olen.eq(result_len), left.eq(result_len - 1), oempty.eq(0),
                             kind_info.eq(0), kind_error.eq(0)]
        m.d.comb += [self.result.ready.eq(take_result), self.tag_take.eq(take_result),
                     load_result.eq(take_result)]
        # The byte to send, as an OR of the one-hot states' bytes (a shallow tree; a chain of
        # ifs would be a priority multiplexer, one LUT level per state).
        sources = [("SYNC", Const(P.RESPONSE_SYNC, 8)), ("TYPE", otype), ("SEQ", oseq),
                   ("LEN0", olen[:8]), ("LEN1", olen[8:]), ("PAYLOAD", payload_byte),
                   ("CRC0", ocrc[8:]), ("CRC1", ocrc[:8])]
        byte_next = functools.reduce(operator.or_, [Mux(ss[n], v, 0) for n, v in sources])
        sending = ~(ss["IDLE"] | ss["DONE"] | ss["HASH"])  # the other states send a byte
        with m.If(empty & sending):
            m.d.sync += emit(byte_next, in_crc=~(ss["SYNC"] | ss["CRC0"] | ss["CRC1"]))
        m.d.comb += tx_crc.start.eq(ss["SYNC"] & empty)
        with m.If(emit_payload):
            m.d.sync += left.eq(left - 1)
        with m.If(hash_byte):
            m.d.sync += left.eq(left - 1)
        # One enable and a multiplexer per bit: load a result, load a BENCH payload (its low
        # bits) or shift by a byte (also under an INFO, STORED or error payload, which do not
        # read it).
        # (registered, as the result's take is: the enable of every payload bit leaves from
        # registers; the payload is not read before the frame's PAYLOAD state)
        load_bench = Signal()
        m.d.sync += load_bench.eq(self.bench_taken)
        with m.If(load_result | load_bench | emit_payload | hash_byte):
            m.d.sync += payload.eq(Mux(load_result, result_bits,
                                       Mux(load_bench, bench_word, payload[8:])))
        return m


class HostLink(wiring.Component):
    """Framed host protocol between a UART and an accelerator.

    Timing
    ------
    ``rx`` is always ready (a UART cannot wait); bytes must come at least 8 clock cycles apart
    (a UART delivers one per 10 bit times: 40 cycles or more). A sample is fed to ``acc_i`` one
    byte per cycle from the buffer, ``beat_bytes + 2`` cycles per beat plus any wait on
    ``acc_i.ready``; at most ``tags`` samples are inside the accelerator at once. ``acc_o`` is
    taken when its RESULT frame starts (the transmitter holds the payload) and waits
    (``ready`` low) while an earlier frame is on the wire.
    ``acc_reset`` pulses for one cycle when a RESET request is carried out (between two answer
    frames); the link clears its sample buffer, tags and benchmark store in the same cycle,
    then answers RESET_DONE.
    Reset of the domain returns everything to idle.

    **Benchmark mode** (``info.bench_capacity`` samples, 0 for none): BENCH_STORE samples go
    into a store (``2**ceil(log2(sample_bytes))`` bytes per sample, one memory of 16-bit words
    with one address, so that it maps onto single-port RAM such as the UP5K's SPRAM);
    BENCH_RUN feeds them to the accelerator back to back, as INFER samples are fed, and hashes
    their results instead of sending them. A counter counts the cycles from the run's start
    (the cycle after the BENCH_RUN frame's verdict) to the cycle the last result is taken; then
    the BENCH answer carries the count, the cycles and the CRC.

    Parameters
    ----------
    in_signature, out_signature : amaranth.lib.stream.Signature
        The accelerator's input and output stream signatures (as seen by the accelerator).
    beats : int
        Input beats per sample.
    info : bitstreams.protocol.DeviceInfo
        What the board reports in its INFO answer; its sizes must agree with the signatures.
    timeout_cycles : int
        A frame whose next byte does not arrive within this many cycles is dropped and answered
        with a TIMEOUT error.
    tags : int
        Samples allowed inside the accelerator at once (depth of the SEQ FIFO).
    answers : int
        Depth of the queue of error and INFO answers waiting for the transmitter.
    bench_ram_style : str or None
        ``ram_style`` of the benchmark store (``"huge"``: the iCE40UP5K's SPRAM).
    info_rom_style : str or None
        ``rom_style`` of the INFO ROM (:class:`FrameSerializer`).

    Members
    -------
    rx : In(stream.Signature(8))
        Received bytes.
    rx_error : In(1)
        A UART framing error (pulse).
    tx : Out(stream.Signature(8))
        Bytes to transmit.
    acc_i : Out(in_signature)
        Samples, beat by beat, to the accelerator.
    acc_o : In(out_signature)
        Results from the accelerator.
    acc_reset : Out(1)
        Resets the accelerator (one-cycle pulse, a register's output).
    acc_reset_next : Out(1)
        ``acc_reset`` one cycle early (that register's input), so that a top can register
        the accelerator's whole reset (its domain's reset and this pulse) in one flip-flop,
        which then drives the reset's fan-out alone.
    error : Out(1)
        Pulses whenever an error answer is queued (for a LED).
    busy : Out(1)
        High while samples are inside the accelerator.
    """

    def __init__(self, *, in_signature, out_signature, beats: int, info: P.DeviceInfo,
                 timeout_cycles: int, tags: int = 4, answers: int = 4,
                 bench_ram_style: str | None = None, info_rom_style: str | None = None):
        in_width = _payload_width(in_signature, "in_signature")
        out_width = _payload_width(out_signature, "out_signature")
        for name, value, low in (("beats", beats, 1), ("timeout_cycles", timeout_cycles, 16),
                                 ("tags", tags, 1), ("answers", answers, 1)):
            check_int(name, value, low)
        if not isinstance(info, P.DeviceInfo):
            raise TypeError(f"info must be a DeviceInfo, not {info!r}")
        beat_bytes = ceil_div(in_width, 8)
        expect = {"beats": beats, "beat_bytes": beat_bytes, "sample_bytes": beats * beat_bytes,
                  "result_bytes": ceil_div(out_width, 8)}
        for name, value in expect.items():
            if getattr(info, name) != value:
                raise ValueError(f"info.{name} is {getattr(info, name)}, but the signatures "
                                 f"and beats give {value}")
        if info.sample_bytes > 0xFFFF:
            raise ValueError(f"a sample of {info.sample_bytes} bytes does not fit one frame "
                             f"(at most 65535)")

        self._in_width = in_width
        self._out_width = out_width
        self._beats = beats
        self._info = info
        self._timeout = timeout_cycles
        self._tags = tags
        self._answers = answers
        self._bench_style = bench_ram_style
        self._info_rom_style = info_rom_style
        super().__init__({
            "rx": In(stream.Signature(8)),
            "rx_error": In(1),
            "tx": Out(stream.Signature(8)),
            "acc_i": Out(in_signature),
            "acc_o": In(out_signature),
            "acc_reset": Out(1),
            "acc_reset_next": Out(1),
            "error": Out(1),
            "busy": Out(1),
        })

    @property
    def info(self) -> P.DeviceInfo:
        return self._info

    @property
    def sample_bytes(self) -> int:
        return self._info.sample_bytes

    @property
    def result_bytes(self) -> int:
        return self._info.result_bytes

    def elaborate(self, platform):
        m = Module()
        info = self._info
        idx_w = max(1, ceil_log2(info.sample_bytes))
        soft_reset = Signal()  # a registered pulse: it fans out to the whole accelerator
        m.d.sync += soft_reset.eq(0)
        m.d.comb += self.acc_reset.eq(soft_reset)

        m.submodules.parser = parser = FrameParser(sample_bytes=info.sample_bytes,
                                                   timeout_cycles=self._timeout)
        m.submodules.answers = answers = AnswerQueue(self._answers)
        m.submodules.feeder = feeder = SampleFeeder(
            in_signature=self.acc_i.signature, beats=self._beats,
            sample_bytes=info.sample_bytes)
        m.submodules.serializer = serializer = FrameSerializer(
            out_signature=self.acc_o.signature.flip(), info=info,
            info_rom_style=self._info_rom_style)
        m.submodules.tags = tags = ResetInserter(soft_reset)(
            fifo.SyncFIFO(width=8, depth=self._tags))

        # -- the sample buffer: two slots, filled by the parser, emptied by the feeder ---------
        m.submodules.buffer = buffer = Memory(shape=8, depth=2 << idx_w, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port(domain="sync")
        full = Signal(2)
        slot_seq = Array([Signal(8, name=f"slot_seq{i}") for i in range(2)])
        fill_ptr = Signal()
        feed_ptr = Signal()
        reset_pending = Signal()
        reset_seq = Signal(8)

        # -- the benchmark store and run ----------------------------------------------------------
        capacity = info.bench_capacity
        count_w = capacity.bit_length() if capacity else 1
        stored = Signal(count_w)       # samples in the store
        fed = Signal(count_w)          # samples of the run fed so far
        to_take = Signal(count_w)      # results of the run not yet taken
        last_fed = Signal(count_w)     # the run's last sample's index (stored - 1)
        running = Signal()             # a run is on (until its BENCH answer is taken)
        counting = Signal()            # from the run's start to its last result's take
        cycles = Signal(32)
        bench_pending = Signal()
        feed_more = Signal()           # a run has stored samples left to feed (fed != stored)
        bench_seq = Signal(8)
        # Registered comparisons of the take count (to_take == 0, to_take == 1): they end the
        # count in the cycle of a take, whose logic is deep already.
        all_taken, last_take = Signal(), Signal()
        if capacity:
            attrs = {} if self._bench_style is None else {"ram_style": self._bench_style}
            # 16-bit words written a byte at a time (the UP5K's SPRAM is 16 bits wide, with
            # write masks): a sample's bytes are whole words, as it takes 2**idx_w >= 2 bytes.
            m.submodules.bench_store = store = Memory(shape=16, depth=capacity << (idx_w - 1),
                                                init=[], attrs=attrs)
            st_wr = store.write_port(granularity=8)
            st_rd = store.read_port(domain="sync")
            # One address for both ports (writes come only between runs, reads only during
            # one): single-port RAM. A run reads one cycle ahead (the feeder's next address)
            # and registers the word, so the RAM's slow output ends in a register and the
            # feeder sees its byte a cycle after its address, as from the sample buffer.
            st_addr = Signal(len(st_wr.addr) + 1)
            st_word = Signal(16)  # the word read, registered
            st_half = Signal()    # which byte of it the feeder reads
            m.d.comb += [st_addr.eq(Mux(running, Cat(feeder.read_next, fed[:-1] if count_w > 1
                                                     else Const(0, 0)),
                                        Cat(parser.write_addr, stored[:-1] if count_w > 1
                                            else Const(0, 0)))),
                         st_wr.addr.eq(st_addr[1:]), st_rd.addr.eq(st_addr[1:]),
                         st_wr.data.eq(Cat(parser.write_data, parser.write_data)),
                         st_wr.en.eq(Mux(parser.write_en & parser.write_bench,
                                         Mux(parser.write_addr[0], 0b10, 0b01), 0))]
            # No read in a write's cycle (the SPRAM's output holds then: Yosys's no_change).
            m.d.comb += st_rd.en.eq(~st_wr.en.any())
            st_half_early = Signal()  # the same, in the cycle the RAM reads the word
            m.d.sync += [st_word.eq(st_rd.data), st_half_early.eq(st_addr[0]),
                         st_half.eq(st_half_early)]
        with m.If(soft_reset):
            m.d.sync += [stored.eq(0), running.eq(0), counting.eq(0), bench_pending.eq(0),
                         feed_more.eq(0)]
        with m.Else():
            with m.If(parser.bench_commit):
                m.d.sync += stored.eq(stored + 1)
            with m.If(parser.bench_run):
                m.d.sync += [running.eq(1), counting.eq(1), cycles.eq(0), fed.eq(0),
                             to_take.eq(stored), last_fed.eq(stored - 1),
                             bench_seq.eq(parser.seq), feed_more.eq(stored != 0),
                             all_taken.eq(stored == 0), last_take.eq(stored == 1)]
            # A register, not a comparison on the feeder's path: the count's compare would
            # sit in front of the feeder's handshake and the tag FIFO's enables (and no adder
            # before the compare: last_fed).
            with m.If(running & feeder.release):
                m.d.sync += [fed.eq(fed + 1), feed_more.eq(fed != last_fed)]
            with m.If(running & serializer.tag_take):
                m.d.sync += [to_take.eq(to_take - 1), all_taken.eq(last_take),
                             last_take.eq(to_take == 2)]
            with m.If(counting):
                m.d.sync += cycles.eq(cycles + 1)
            # The count stops with the last take (a run of no samples counts one cycle).
            with m.If(counting & (all_taken | last_take & serializer.tag_take)):
                m.d.sync += counting.eq(0)
            with m.If(running & ~counting & ~serializer.hashing & ~bench_pending):
                m.d.sync += bench_pending.eq(1)
            with m.If(serializer.bench_taken):
                m.d.sync += [bench_pending.eq(0), running.eq(0)]
        with m.If(soft_reset):
            m.d.sync += [full.eq(0), fill_ptr.eq(0), feed_ptr.eq(0)]
        with m.Else():
            with m.If(parser.commit):
                m.d.sync += [full.bit_select(fill_ptr, 1).eq(1), fill_ptr.eq(~fill_ptr)]
            with m.If(feeder.release & ~running):
                m.d.sync += [full.bit_select(feed_ptr, 1).eq(0), feed_ptr.eq(~feed_ptr)]
        with m.If(parser.verdict):
            m.d.sync += slot_seq[fill_ptr].eq(parser.seq)  # harmless unless the sample commits

        # -- parser: bytes in, samples into the buffer, answers asked for ------------------------
        wiring.connect(m, wiring.flipped(self.rx), parser.rx)
        m.d.comb += [parser.rx_error.eq(self.rx_error),
                     parser.slot_full.eq(full.bit_select(fill_ptr, 1)),
                     parser.reset_pending.eq(reset_pending),
                     parser.bench_busy.eq(running), parser.bench_full.eq(stored == capacity),
                     parser.link_busy.eq(full.any() | tags.r_rdy | self.acc_o.valid),
                     wr.addr.eq(Cat(parser.write_addr, fill_ptr)), wr.data.eq(parser.write_data),
                     wr.en.eq(parser.write_en & ~parser.write_bench),
                     answers.events.eq(parser.events), answers.seq.eq(parser.seq),
                     self.error.eq(answers.error)]
        with m.If(parser.reset_request):
            m.d.sync += [reset_pending.eq(1), reset_seq.eq(parser.seq)]

        # -- feeder: buffer to accelerator, each sample's SEQ into the tag FIFO ------------------
        # (during a run: the store's samples, in order, each tagged with its index)
        m.d.comb += [feeder.slot_full.eq(Mux(running, feed_more,
                                             full.bit_select(feed_ptr, 1))),
                     feeder.slot_seq.eq(Mux(running, fed, slot_seq[feed_ptr])),
                     rd.addr.eq(Cat(feeder.read_addr, feed_ptr)),
                     feeder.read_data.eq(Mux(running, st_word.word_select(st_half, 8),
                                             rd.data) if capacity else rd.data),
                     feeder.tag_ready.eq(tags.w_rdy), tags.w_en.eq(feeder.tag_valid),
                     tags.w_data.eq(feeder.tag), feeder.reset.eq(soft_reset),
                     self.busy.eq(tags.r_rdy)]
        wiring.connect(m, feeder.acc_i, wiring.flipped(self.acc_i))

        # -- serializer: answers, results (with their tags) out --------------------------------
        m.d.comb += [serializer.reset_pending.eq(reset_pending),
                     serializer.reset_seq.eq(reset_seq),
                     serializer.tag_valid.eq(tags.r_rdy), serializer.tag.eq(tags.r_data),
                     tags.r_en.eq(serializer.tag_take), serializer.lost.eq(answers.lost),
                     serializer.bench_on.eq(running), serializer.bench_start.eq(parser.bench_run),
                     serializer.bench_pending.eq(bench_pending),
                     serializer.bench_seq.eq(bench_seq), serializer.bench_samples.eq(stored),
                     serializer.bench_cycles.eq(cycles)]
        # Taking a reset clears it even when the parser asks for another in the same cycle.
        with m.If(serializer.reset_taken):
            m.d.sync += [soft_reset.eq(1), reset_pending.eq(0)]
        m.d.comb += self.acc_reset_next.eq(serializer.reset_taken)
        wiring.connect(m, answers.o, serializer.answer)
        wiring.connect(m, wiring.flipped(self.acc_o), serializer.result)
        wiring.connect(m, serializer.tx, wiring.flipped(self.tx))
        return m
