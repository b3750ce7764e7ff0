# amaranth: UnusedElaboratable=no
"""The host-link gateware (UART, CRC, framing) in Amaranth's simulator, and the wire protocol.

The link is exercised around a small stand-in accelerator defined here (a test fixture with the
same kind of streams as ``hw.Accelerator``: input beats, one output beat per sample); the real
accelerator is driven through the whole board top in ``test_bitstream_board.py``.
"""

import binascii
import random

import numpy as np
import pytest
from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bitstreams import protocol as P
from bitstreams.link import (
    ANSWER_KINDS,
    AnswerQueue,
    FrameCRC,
    FrameParser,
    FrameSerializer,
    HostLink,
    SampleFeeder,
    crc16_step,
)
from bitstreams.uart import UARTRx, UARTTx, divisor_for

# ----------------------------------------------------------------------------------------------
# Stand-in accelerator (test fixture)
# ----------------------------------------------------------------------------------------------

LANES, LANE_BITS, BEATS = 3, 4, 5
SCORE = data.ArrayLayout(data.signed(10), LANES)
OUT_LAYOUT = data.StructLayout({"prediction": 2, "scores": SCORE})


class StandInAccelerator(wiring.Component):
    """Test fixture: per sample of BEATS beats of LANES unsigned lanes, score k is the sum of
    lane k minus 20, and the prediction the first highest score. One sample at a time."""

    i: In(stream.Signature(LANES * LANE_BITS))
    o: Out(stream.Signature(OUT_LAYOUT))

    def elaborate(self, platform):
        m = Module()
        acc = Array([Signal(data.signed(10), name=f"acc{k}") for k in range(LANES)])
        beat = Signal(range(BEATS))
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            lanes = [self.i.payload[k * LANE_BITS:(k + 1) * LANE_BITS] for k in range(LANES)]
            new = [acc[k] + lanes[k] for k in range(LANES)]
            m.d.sync += beat.eq(beat + 1)
            for k in range(LANES):
                m.d.sync += acc[k].eq(new[k])
            with m.If(beat == BEATS - 1):
                m.d.sync += [beat.eq(0), self.o.valid.eq(1)]
                scores = [new[k] - 20 for k in range(LANES)]
                best, best_score = Const(0, 2), scores[0]
                for k in range(1, LANES):
                    higher = scores[k] > best_score
                    best = Mux(higher, k, best)
                    best_score = Mux(higher, scores[k], best_score)
                m.d.sync += self.o.payload.prediction.eq(best)
                for k in range(LANES):
                    m.d.sync += [self.o.payload.scores[k].eq(scores[k]), acc[k].eq(0)]
        return m


def stand_in_model(sample: np.ndarray) -> tuple[int, list[int]]:
    """(prediction, scores) of the fixture for a (BEATS, LANES) sample."""
    scores = [int(v) - 20 for v in sample.sum(axis=0)]
    return int(np.argmax(scores)), scores


def pack_sample(sample: np.ndarray) -> bytes:
    beat_bytes = (LANES * LANE_BITS + 7) // 8
    out = b""
    for row in sample:
        value = sum(int(v) << (LANE_BITS * k) for k, v in enumerate(row))
        out += value.to_bytes(beat_bytes, "little")
    return out


def unpack_result(payload: bytes) -> tuple[int, list[int]]:
    value = int.from_bytes(payload, "little")
    pred = value & 3
    scores = []
    for k in range(LANES):
        s = (value >> (2 + 10 * k)) & 0x3FF
        scores.append(s - 1024 if s & 0x200 else s)
    return pred, scores


def make_info(lost=0, bench_capacity=0):
    beat_bytes = (LANES * LANE_BITS + 7) // 8
    return P.DeviceInfo(version=P.PROTOCOL_VERSION, sample_bytes=BEATS * beat_bytes,
                        result_bytes=(OUT_LAYOUT.size + 7) // 8, beats=BEATS,
                        beat_bytes=beat_bytes, lanes=LANES, clock_hz=1_000_000,
                        clocks_per_bit=4, artifact_hash=bytes(range(8)),
                        folding=((3, 1), (4, 2)), lost_answers=lost,
                        bench_capacity=bench_capacity)


class LinkDUT(wiring.Component):
    """HostLink + stand-in accelerator, byte streams exposed (no UART)."""

    def __init__(self, timeout=400, bench_capacity=0):
        self.acc = StandInAccelerator()
        self.link = HostLink(in_signature=self.acc.i.signature.flip(),
                             out_signature=self.acc.o.signature, beats=BEATS,
                             info=make_info(bench_capacity=bench_capacity),
                             timeout_cycles=timeout)
        super().__init__({"rx": In(stream.Signature(8)), "rx_error": In(1),
                          "tx": Out(stream.Signature(8))})

    def elaborate(self, platform):
        from amaranth.hdl import ResetInserter

        m = Module()
        m.submodules.link = link = self.link
        m.submodules.acc = acc = ResetInserter(link.acc_reset)(self.acc)
        wiring.connect(m, link.acc_i, acc.i)
        wiring.connect(m, acc.o, link.acc_o)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        m.d.comb += link.rx_error.eq(self.rx_error)
        return m


# ----------------------------------------------------------------------------------------------
# Protocol (pure Python)
# ----------------------------------------------------------------------------------------------

def test_crc16_check_value():
    # CRC-16/CCITT-FALSE's catalogued check value.
    assert P.crc16(b"123456789") == 0x29B1
    assert P.crc16(b"") == 0xFFFF


def test_frame_crc_residue_is_zero(seed):
    rng = random.Random(seed)
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 50)))
    raw = P.encode_frame(P.Request.INFER, rng.randrange(256), payload)
    assert raw[0] == P.REQUEST_SYNC
    assert P.crc16(raw[1:]) == 0
    assert len(raw) == P.OVERHEAD_BYTES + len(payload)


def test_decoder_round_trip_and_resync(seed):
    rng = random.Random(seed)
    frames = [P.Frame(rng.randrange(256), rng.randrange(256),
                      bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30))))
              for _ in range(20)]
    stream_ = b""
    corrupted = set()
    for k, f in enumerate(frames):
        raw = bytearray(P.encode_frame(f.type, f.seq, f.payload, sync=P.RESPONSE_SYNC))
        if k % 5 == 3:  # corrupt one byte after SYNC
            raw[1 + rng.randrange(len(raw) - 1)] ^= 1 << rng.randrange(8)
            corrupted.add(k)
        stream_ += b"\x00\x13" if k % 7 == 2 else b""
        stream_ += bytes(raw)
    dec = P.FrameDecoder(max_payload=64)
    out = []
    pos = 0
    while pos < len(stream_):  # feed in random chunks
        n = rng.randrange(1, 9)
        out += dec.feed(stream_[pos:pos + n])
        pos += n
    # A corrupted length near the end leaves the decoder waiting for bytes that never come:
    # the line goes idle, and the host's frame timeout drops the partial frame (and resyncs).
    out += dec.drop_partial()
    good = [f for f in out if isinstance(f, P.Frame)]
    assert good[:len(frames) - len(corrupted)] == [f for k, f in enumerate(frames)
                                                    if k not in corrupted] or \
        all(f in good for k, f in enumerate(frames) if k not in corrupted)
    assert any(isinstance(f, P.BadFrame) for f in out) == bool(corrupted or b"\x13" in stream_)


def test_frame_validation_messages():
    with pytest.raises(ValueError, match=r"seq must be an int in 0..255, not 256"):
        P.Frame(1, 256)
    with pytest.raises(TypeError, match=r"payload must be bytes, not str"):
        P.Frame(1, 0, "abc")
    with pytest.raises(ValueError, match=r"max_payload must be an int in 0..65535, not -1"):
        P.FrameDecoder(max_payload=-1)


def test_device_info_round_trip():
    info = make_info(lost=3)
    assert P.DeviceInfo.from_bytes(info.to_bytes()) == info
    with pytest.raises(P.ProtocolError, match=r"shorter than 30"):
        P.DeviceInfo.from_bytes(b"\x01\x02")


# ----------------------------------------------------------------------------------------------
# Gateware
# ----------------------------------------------------------------------------------------------

def test_crc16_step_matches_software(seed):
    rng = random.Random(seed)
    crc, byte = Signal(16), Signal(8)
    out = Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_step(crc, byte))
    sim = Simulator(m)
    cases = [(rng.randrange(1 << 16), rng.randrange(256)) for _ in range(200)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == P.crc16_update(c, b), (hex(c), hex(b))

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("implementation", ["xor", "lib"])
def test_frame_crc_gateware_check_value(implementation):
    """Both CRC gateware implementations, simulated byte by byte, give CRC-16/CCITT-FALSE's
    catalogued check value on b"123456789" (0x29B1), which is also the host's
    ``binascii.crc_hqx(data, 0xFFFF)``; the CRC over the data and its CRC (MSB first) is 0,
    and ``start`` wins over ``valid``."""
    check = b"123456789"
    assert binascii.crc_hqx(check, 0xFFFF) == 0x29B1 == P.crc16(check)
    dut = FrameCRC(implementation)
    seen = []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        ctx.set(dut.valid, 1)  # ignored: start wins
        ctx.set(dut.data, 0x42)
        await ctx.tick()
        ctx.set(dut.start, 0)
        assert ctx.get(dut.crc) == 0xFFFF
        for byte in check + bytes([0x29, 0xB1]):
            ctx.set(dut.data, byte)
            await ctx.tick()
            seen.append((ctx.get(dut.crc), ctx.get(dut.ok)))
        ctx.set(dut.valid, 0)
        await ctx.tick()
        assert ctx.get(dut.crc) == 0  # no valid: unchanged

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen[len(check) - 1] == (0x29B1, 0)
    assert seen[-1] == (0, 1)
    assert [c for c, _ in seen] == [P.crc16(check[:k + 1]) for k in range(len(check))] + [
        P.crc16(check + b"\x29"), 0]
    with pytest.raises(ValueError, match=r"implementation must be one of 'xor', 'lib', not "
                                         r"'table'"):
        FrameCRC("table")


def test_uart_divisor():
    assert divisor_for(48e6, 3e6) == 16
    assert divisor_for(125e6, 3e6) == 42
    with pytest.raises(ValueError, match=r"needs at least 4 clock cycles per bit"):
        divisor_for(12e6, 6e6)
    with pytest.raises(ValueError, match=r"% off \(at most 2 % allowed\)"):
        divisor_for(10e6, 1.8e6)
    with pytest.raises(TypeError, match=r"divisor must be an int, not 4.0"):
        UARTRx(4.0)
    with pytest.raises(ValueError, match=r"divisor must be >= 4, not 3"):
        UARTTx(3)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_uart_loopback(divisor, seed):
    rng = random.Random(seed)
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sent = [rng.randrange(256) for _ in range(12)]
    received = []
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def producer(ctx):
        for b in sent:
            ctx.set(tx.i.payload, b)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)
            for _ in range(rng.randrange(3)):
                await ctx.tick()

    async def consumer(ctx):
        ctx.set(rx.o.ready, 1)
        while len(received) < len(sent):
            _, _, valid, payload, ferr = await ctx.tick().sample(rx.o.valid, rx.o.payload,
                                                                 rx.framing_error)
            assert not ferr
            if valid:
                received.append(payload)

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-6 * divisor * 10 * (len(sent) + 4) * 3)
    assert received == sent


def _run_link(chunks, *, expect=None, until_seq=None, tx_ready_prob=1.0, seed=0, timeout=400,
              byte_gap=16, max_cycles=200_000, bench_capacity=0):
    """Feed ``chunks`` (bytes, or ("gap", cycles), or ("ferr",)) into the link's rx stream;
    return the frames it transmits, once every chunk was sent and ``expect`` frames (or the
    frame numbered ``until_seq``) arrived, and nothing more came for a while."""
    rng = random.Random(seed)
    dut = LinkDUT(timeout=timeout, bench_capacity=bench_capacity)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    decoder = P.FrameDecoder()
    frames = []
    sent = []

    def done():
        if not sent:
            return False
        if until_seq is not None:
            return any(f.seq == until_seq for f in frames)
        return len(frames) >= expect

    async def producer(ctx):
        for chunk in chunks:
            if isinstance(chunk, tuple) and chunk[0] == "gap":
                await ctx.tick().repeat(chunk[1])
                continue
            if isinstance(chunk, tuple) and chunk[0] == "ferr":
                ctx.set(dut.rx_error, 1)
                await ctx.tick()
                ctx.set(dut.rx_error, 0)
                await ctx.tick().repeat(byte_gap)
                continue
            for b in chunk:
                ctx.set(dut.rx.payload, b)
                ctx.set(dut.rx.valid, 1)
                await ctx.tick()
                assert ctx.get(dut.rx.ready)
                ctx.set(dut.rx.valid, 0)
                await ctx.tick().repeat(byte_gap + rng.randrange(4))
        sent.append(True)

    async def consumer(ctx):
        cycles, quiet = 0, 0
        while cycles < max_cycles and not (done() and quiet >= 2000):
            ready = rng.random() < tx_ready_prob
            ctx.set(dut.tx.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.tx.valid, dut.tx.payload)
            cycles += 1
            quiet += 1
            if valid and ready:
                frames.extend(decoder.feed(bytes([payload])))
                quiet = 0

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert sent, "the producer did not finish"
    bad = [f for f in frames if not isinstance(f, P.Frame)]
    assert not bad, bad[:3]
    assert decoder.pending == 0
    return frames


def _samples(rng, n):
    return [np.array([[rng.randrange(16) for _ in range(LANES)] for _ in range(BEATS)])
            for _ in range(n)]


def test_link_results_in_order(seed):
    rng = random.Random(seed)
    samples = _samples(rng, 6)
    chunks = [P.encode_frame(P.Request.INFER, 10 + k, pack_sample(s))
              for k, s in enumerate(samples)]
    frames = _run_link(chunks, expect=6, tx_ready_prob=0.7, seed=seed)
    assert [f.type for f in frames] == [P.Response.RESULT] * 6
    assert [f.seq for f in frames] == [10 + k for k in range(6)]
    for f, s in zip(frames, samples, strict=True):
        assert unpack_result(f.payload) == stand_in_model(s)


def test_link_errors_are_answered(seed):
    rng = random.Random(seed)
    (good,) = _samples(rng, 1)
    sample = pack_sample(good)
    bad_crc = bytearray(P.encode_frame(P.Request.INFER, 1, sample))
    bad_crc[7] ^= 0x10
    short = P.encode_frame(P.Request.INFER, 3, sample[:-1])
    huge = P.encode_frame(P.Request.INFER, 4, sample)[:3] + bytes([0xFF, 0x01])
    chunks = [
        bytes(bad_crc),
        P.encode_frame(0x42, 2),                                   # unknown type
        short,                                                     # LEN != sample bytes
        huge, ("gap", 600),                                        # LEN > any payload
        b"\x00\x01\x02",                                           # stray bytes: one NO_SYNC
        P.encode_frame(P.Request.INFER, 5, sample)[:9], ("gap", 600),   # truncated: TIMEOUT
        P.encode_frame(P.Request.INFO, 6, b"\x00"),                # INFO with a payload
        P.encode_frame(P.Request.INFER, 7, sample)[:4], ("ferr",), ("gap", 600),  # FRAMING
        P.encode_frame(P.Request.INFER, 8, sample),                # still works afterwards
        P.encode_frame(P.Request.INFO, 9),
    ]
    frames = _run_link(chunks, expect=10, seed=seed)
    got = [(f.seq, f.error) if f.type == P.Response.ERROR else (f.seq, f.type) for f in frames]
    E = P.ErrorCode
    assert got == [
        (1, E.BAD_CRC),
        (2, E.UNKNOWN_TYPE),
        (3, E.BAD_LENGTH),
        (4, E.BAD_LENGTH),
        (0, E.NO_SYNC),
        (5, E.TIMEOUT),
        (6, E.BAD_LENGTH),
        (7, E.FRAMING),
        (8, P.Response.RESULT),
        (9, P.Response.INFO),
    ]
    assert unpack_result(frames[8].payload) == stand_in_model(good)
    assert P.DeviceInfo.from_bytes(frames[9].payload) == make_info()


def test_link_busy_and_reset(seed):
    rng = random.Random(seed)
    samples = _samples(rng, 12)
    # The transmitter is stalled: results pile up, tags and both buffer slots fill, later
    # samples are answered BUSY, and answers that find the answer queue full are counted and
    # reported by INFO: none is silently dropped.
    chunks = [P.encode_frame(P.Request.INFER, k, pack_sample(s)) for k, s in enumerate(samples)]
    chunks += [("gap", 20_000), P.encode_frame(P.Request.INFO, 99)]
    frames = _run_link(chunks, until_seq=99, tx_ready_prob=0.01, seed=seed, byte_gap=4)
    info = P.DeviceInfo.from_bytes(frames[-1].payload)
    assert frames[-1].seq == 99
    answered = {f.seq: f for f in frames[:-1]}
    assert len(answered) == len(frames) - 1
    assert len(answered) + info.lost_answers == len(samples)
    assert info.lost_answers > 0
    busy = [s for s, f in answered.items() if f.type == P.Response.ERROR]
    assert busy and all(answered[s].error == P.ErrorCode.BUSY for s in busy)
    results = [s for s, f in answered.items() if f.type == P.Response.RESULT]
    assert results == sorted(results)
    for s in results:
        assert unpack_result(answered[s].payload) == stand_in_model(samples[s])

    # A reset in the middle of a sample's beats clears the accelerator: a half-fed sample
    # cannot leak into the next one.
    chunks = [P.encode_frame(P.Request.INFER, 1, pack_sample(samples[0])),
              P.encode_frame(P.Request.RESET, 2),
              P.encode_frame(P.Request.INFER, 3, pack_sample(samples[1]))]
    frames = _run_link(chunks, expect=3, seed=seed)
    assert [(f.seq, f.type) for f in frames] == [(1, P.Response.RESULT),
                                                 (2, P.Response.RESET_DONE),
                                                 (3, P.Response.RESULT)]
    assert unpack_result(frames[2].payload) == stand_in_model(samples[1])


def test_link_validation():
    acc = StandInAccelerator()
    kw = dict(in_signature=acc.i.signature.flip(), out_signature=acc.o.signature, beats=BEATS,
              info=make_info(), timeout_cycles=100)
    with pytest.raises(TypeError, match=r"in_signature must be an amaranth.lib.stream.Signature"):
        HostLink(**{**kw, "in_signature": 3})
    with pytest.raises(ValueError, match=r"beats must be >= 1, not 0"):
        HostLink(**{**kw, "beats": 0})
    with pytest.raises(ValueError, match=r"info.beats is 5, but the signatures and beats give 4"):
        HostLink(**{**kw, "beats": 4})
    with pytest.raises(TypeError, match=r"info must be a DeviceInfo"):
        HostLink(**{**kw, "info": {}})


# ----------------------------------------------------------------------------------------------
# The link's components, each on its own
# ----------------------------------------------------------------------------------------------

def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_answer_queue_encodes_queues_and_counts_losses():
    dut = AnswerQueue(depth=2)
    kinds = list(ANSWER_KINDS)
    out = []

    async def bench(ctx):
        async def raise_(names, seq):
            ctx.set(dut.events, sum(1 << kinds.index(n) for n in names))
            ctx.set(dut.seq, seq)
            await ctx.tick()
            ctx.set(dut.events, 0)

        await raise_(["TIMEOUT", "BAD_CRC"], 7)   # two at once: the lower kind (BAD_CRC) wins
        assert not ctx.get(dut.o.valid)
        await ctx.tick()
        assert not ctx.get(dut.o.valid) and ctx.get(dut.error) == 0
        await ctx.tick()                           # on o three cycles after it was raised
        assert ctx.get(dut.o.valid) and ctx.get(dut.error) == 1  # registered error pulse
        await raise_(["NO_SYNC"], 9)               # NO_SYNC answers with SEQ 0
        await raise_(["info"], 3)                  # the FIFO (depth 2) is full: lost
        await raise_(["BUSY"], 4)                  # lost too
        for _ in range(4):
            await ctx.tick()
        assert ctx.get(dut.lost) == 2
        ctx.set(dut.o.ready, 1)
        while ctx.get(dut.o.valid):
            p = ctx.get(dut.o.payload)
            out.append((p.info, p.seq, p.code))
            await ctx.tick()

    _sim(dut, bench)
    assert out == [(0, 7, P.ErrorCode.BAD_CRC), (0, 0, P.ErrorCode.NO_SYNC)]
    with pytest.raises(ValueError, match=r"depth must be >= 1, not 0"):
        AnswerQueue(0)


def _parse(frames, *, slot_full=0, reset_pending=0, timeout=400):
    """Feed request bytes (16 cycles apart) into a FrameParser; return what it raised."""
    dut = FrameParser(sample_bytes=6, timeout_cycles=timeout)
    kinds = list(ANSWER_KINDS)
    seen = {"writes": [], "events": [], "commit": [], "reset": [], "verdict_seq": []}

    async def bench(ctx):
        ctx.set(dut.slot_full, slot_full)
        ctx.set(dut.reset_pending, reset_pending)
        data = b"".join(frames)
        for byte in data:
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, byte)
            await ctx.tick()
            ctx.set(dut.rx.valid, 0)
            for _ in range(15):
                await ctx.tick()
        for _ in range(2 * timeout):  # quiet line: verdicts, and a cut frame's timeout
            await ctx.tick()

    async def watch(ctx):
        async for _, _, en, addr, wdata, ev, commit, reset, verdict, seq in ctx.tick().sample(
                dut.write_en, dut.write_addr, dut.write_data, dut.events, dut.commit,
                dut.reset_request, dut.verdict, dut.seq):
            if en:
                seen["writes"].append((addr, wdata))
            for k, name in enumerate(kinds):
                if ev >> k & 1:
                    seen["events"].append(name)
            if commit:
                seen["commit"].append(1)
            if reset:
                seen["reset"].append(1)
            if verdict:
                seen["verdict_seq"].append(seq)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run()
    return seen


def test_frame_parser_stores_a_good_sample_and_commits():
    payload = bytes([1, 2, 3, 4, 5, 6])
    seen = _parse([P.encode_frame(P.Request.INFER, 0x42, payload)])
    assert seen["writes"] == list(enumerate(payload))
    assert seen["commit"] == [1] and seen["events"] == [] and seen["verdict_seq"] == [0x42]


def test_frame_parser_verdicts():
    seen = _parse([P.encode_frame(P.Request.INFO, 1), P.encode_frame(P.Request.RESET, 2),
                   P.encode_frame(0x7E, 3), P.encode_frame(P.Request.INFO, 4, b"x"),
                   b"\x13\x14"])
    assert seen["events"] == ["info", "UNKNOWN_TYPE", "BAD_LENGTH", "NO_SYNC"]
    assert seen["reset"] == [1] and seen["verdict_seq"] == [1, 2, 3, 4]
    bad = bytearray(P.encode_frame(P.Request.INFER, 5, bytes(6)))
    bad[7] ^= 1
    assert _parse([bytes(bad)])["events"] == ["BAD_CRC"]
    busy = _parse([P.encode_frame(P.Request.INFER, 6, bytes(6))], slot_full=1)
    assert busy["events"] == ["BUSY"] and busy["writes"] == [] and busy["commit"] == []
    assert _parse([P.encode_frame(P.Request.INFER, 6, bytes(6))], reset_pending=1)[
        "events"] == ["BUSY"]
    # A LEN longer than any request is answered at once (no waiting for its payload).
    assert _parse([P.encode_frame(P.Request.INFER, 7, bytes(6))[:5].replace(
        b"\x06\x00", b"\x07\x01")])["events"] == ["BAD_LENGTH"]
    # A frame cut short: TIMEOUT once the line stays quiet.
    assert _parse([P.encode_frame(P.Request.INFER, 8, bytes(6))[:6]], timeout=40)[
        "events"] == ["TIMEOUT"]
    with pytest.raises(ValueError, match=r"timeout_cycles must be >= 16, not 8"):
        FrameParser(sample_bytes=6, timeout_cycles=8)
    with pytest.raises(ValueError, match=r"sample_bytes must be between 1 and 65535, not 0"):
        FrameParser(sample_bytes=0, timeout_cycles=40)


def test_sample_feeder_sends_beats_and_tags():
    sig = stream.Signature(LANES * LANE_BITS)
    dut = SampleFeeder(in_signature=sig, beats=BEATS, sample_bytes=BEATS * 2)
    slot = bytes(random.Random(5).randrange(256) for _ in range(BEATS * 2))
    beats, tags, released, cycles = [], [], [], []

    async def bench(ctx):
        ctx.set(dut.slot_seq, 0x33)
        ctx.set(dut.tag_ready, 1)
        ctx.set(dut.slot_full, 1)
        ctx.set(dut.acc_i.ready, 1)
        prev = 0
        for _ in range(200):
            # A synchronous read port: this cycle's data is the byte addressed last cycle.
            ctx.set(dut.read_data, slot[prev] if prev < len(slot) else 0)
            prev = ctx.get(dut.read_addr)
            await ctx.tick()
            if released:
                ctx.set(dut.slot_full, 0)

    async def watch(ctx):
        cycle = 0
        async for _, _, valid, ready, payload, tag_valid, tag, release in ctx.tick().sample(
                dut.acc_i.valid, dut.acc_i.ready, dut.acc_i.payload, dut.tag_valid, dut.tag,
                dut.release):
            cycle += 1
            if valid and ready:
                beats.append(payload)
                cycles.append(cycle)
            if tag_valid:
                tags.append(tag)
            if release:
                released.append(1)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run()
    want = [int.from_bytes(slot[2 * b:2 * b + 2], "little") & ((1 << LANES * LANE_BITS) - 1)
            for b in range(BEATS)]
    assert beats[:BEATS] == want and tags[0] == 0x33 and released[0] == 1
    # beat_bytes + 2 cycles per beat: one read per byte, the read port's latency, the transfer
    assert [b - a for a, b in zip(cycles, cycles[1:BEATS], strict=False)] == [4] * (BEATS - 1)
    with pytest.raises(ValueError, match=r"sample_bytes must be beats x beat bytes = 10, not 9"):
        SampleFeeder(in_signature=sig, beats=BEATS, sample_bytes=9)
    with pytest.raises(TypeError, match=r"in_signature must be an amaranth.lib.stream.Signature"):
        SampleFeeder(in_signature=3, beats=BEATS, sample_bytes=10)


def _serialize(setup, cycles=1500):
    """Run a FrameSerializer with ``setup(ctx, dut)`` and tx always ready; return the bytes
    sent and the cycles in which reset_taken / result.ready / tag_take were high."""
    sig = stream.Signature(OUT_LAYOUT)
    dut = FrameSerializer(out_signature=sig, info=make_info())
    sent, strobes = bytearray(), []

    async def bench(ctx):
        ctx.set(dut.tx.ready, 1)
        await setup(ctx, dut)

    async def watch(ctx):
        async for _, _, valid, payload, taken, rready, take in ctx.tick().sample(
                dut.tx.valid, dut.tx.payload, dut.reset_taken, dut.result.ready,
                dut.tag_take):
            if valid:
                sent.append(payload)
            if taken or rready or take:
                strobes.append((taken, rready, take))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(watch)
    sim.run_until(cycles * 1e-6)
    frames = P.FrameDecoder(sync=P.RESPONSE_SYNC).feed(bytes(sent))
    return frames, strobes


def test_frame_serializer_answers():
    async def answers(ctx, dut):
        ctx.set(dut.lost, 9)
        ctx.set(dut.answer.valid, 1)
        ctx.set(dut.answer.payload, {"info": 1, "seq": 5, "code": 0})
        while not ctx.get(dut.answer.ready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(dut.answer.payload, {"info": 0, "seq": 6, "code": int(P.ErrorCode.BUSY)})
        while not ctx.get(dut.answer.ready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(dut.answer.valid, 0)

    frames, strobes = _serialize(answers)
    info = make_info(lost=9)
    assert frames == [P.Frame(P.Response.INFO, 5, info.to_bytes()),
                      P.Frame(P.Response.ERROR, 6, bytes([P.ErrorCode.BUSY]))]
    assert strobes == []


def test_frame_serializer_results_and_reset():
    async def results(ctx, dut):
        ctx.set(dut.reset_pending, 1)
        ctx.set(dut.reset_seq, 0x21)
        while not ctx.get(dut.reset_taken):
            await ctx.tick()
        await ctx.tick()
        ctx.set(dut.reset_pending, 0)
        ctx.set(dut.tag_valid, 1)
        ctx.set(dut.tag, 0x77)
        ctx.set(dut.result.valid, 1)
        ctx.set(dut.result.payload, {"prediction": 2, "scores": [-3, 5, 511]})
        while not ctx.get(dut.result.ready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(dut.result.valid, 0)
        ctx.set(dut.tag_valid, 0)

    frames, strobes = _serialize(results)
    word = OUT_LAYOUT.const({"prediction": 2, "scores": [-3, 5, 511]}).as_value().value
    assert frames == [P.Frame(P.Response.RESET_DONE, 0x21),
                      P.Frame(P.Response.RESULT, 0x77, word.to_bytes(make_info().result_bytes,
                                                                     "little"))]
    assert strobes == [(1, 0, 0), (0, 1, 1)]  # one reset taken; the result taken once, with its tag
    with pytest.raises(ValueError, match=r"info.result_bytes is 5, but out_signature gives 4"):
        FrameSerializer(out_signature=stream.Signature(OUT_LAYOUT),
                        info=P.DeviceInfo(**{**make_info().__dict__, "result_bytes": 5}))
    with pytest.raises(ValueError, match=r"info_rom_style must be one of None, 'block', "
                                         r"'logic', not 'huge'"):
        FrameSerializer(out_signature=stream.Signature(OUT_LAYOUT), info=make_info(),
                        info_rom_style="huge")


# ----------------------------------------------------------------------------------------------
# Benchmark mode
# ----------------------------------------------------------------------------------------------
def _bench(samples, *, capacity=8, seed=0, extra=()):
    """Store ``samples``, run them, then send ``extra``; return the frames answered."""
    chunks = [P.encode_frame(P.Request.BENCH_STORE, 20 + k, pack_sample(s))
              for k, s in enumerate(samples)]
    chunks += [P.encode_frame(P.Request.BENCH_RUN, 0x77), *extra]
    n = len(samples) + 1 + len(extra)
    return _run_link(chunks, expect=n, seed=seed, bench_capacity=capacity)


def _result_payload(sample) -> bytes:
    pred, scores = stand_in_model(sample)
    word = OUT_LAYOUT.const({"prediction": pred, "scores": scores}).as_value().value
    return word.to_bytes(make_info().result_bytes, "little")


def test_benchmark_runs_the_store_and_hashes_every_result(seed):
    """BENCH_STORE samples are answered STORED (FULL past the capacity); BENCH_RUN answers
    BENCH with the count, the cycles and the CRC of the results the host expects; a run of n
    samples counts a fixed fill plus n - 1 periods (the stand-in's, here the feeder's)."""
    rng = random.Random(seed)
    samples = _samples(rng, 9)
    frames = _bench(samples, capacity=8, seed=seed)
    got = [(f.seq, f.error) if f.type == P.Response.ERROR else (f.seq, f.type) for f in frames]
    assert got == [(20 + k, P.Response.STORED) for k in range(8)] + [
        (28, P.ErrorCode.FULL), (0x77, P.Response.BENCH)], f"seed {seed}"
    result = P.BenchResult.from_bytes(frames[-1].payload)
    assert result.samples == 8
    assert result.crc == P.results_crc(_result_payload(s) for s in samples[:8]), f"seed {seed}"
    cycles = {}
    for n in (1, 2, 5):
        (*_, bench) = _bench(samples[:n], capacity=8, seed=seed)
        cycles[n] = P.BenchResult.from_bytes(bench.payload).cycles
    # the stand-in takes a beat a cycle: the feeder sets the period
    period = P.bench_period(make_info(), ideal_cycles=BEATS)
    assert period == P.feed_cycles(make_info()) > P.hash_cycles(make_info())
    assert cycles[2] - cycles[1] == period and cycles[5] - cycles[1] == 4 * period, cycles
    assert result.cycles == cycles[1] + 7 * period, cycles


def test_benchmark_refusals_and_reset(seed):
    """Samples during a run are BUSY; a board without a store answers FULL and runs nothing;
    RESET empties the store; INFER works after a run."""
    rng = random.Random(seed)
    samples = _samples(rng, 3)
    extra = [P.encode_frame(P.Request.RESET, 0x30), P.encode_frame(P.Request.BENCH_RUN, 0x31),
             P.encode_frame(P.Request.INFER, 0x32, pack_sample(samples[0]))]
    frames = _bench(samples[:2], capacity=4, seed=seed, extra=extra)
    kinds = [(f.seq, f.type) for f in frames]
    assert kinds == [(20, P.Response.STORED), (21, P.Response.STORED),
                     (0x77, P.Response.BENCH), (0x30, P.Response.RESET_DONE),
                     (0x31, P.Response.BENCH), (0x32, P.Response.RESULT)], f"seed {seed}"
    assert P.BenchResult.from_bytes(frames[4].payload).samples == 0
    assert unpack_result(frames[5].payload) == stand_in_model(samples[0])
    # no store: FULL, and a run of nothing
    frames = _bench(samples[:1], capacity=0, seed=seed)
    assert [(f.seq, f.error if f.type == P.Response.ERROR else f.type) for f in frames] == [
        (20, P.ErrorCode.FULL), (0x77, P.Response.BENCH)]
    assert P.BenchResult.from_bytes(frames[1].payload) == P.BenchResult(0, 1, P.CRC_INIT)
