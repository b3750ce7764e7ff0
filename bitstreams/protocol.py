"""The host-link protocol: frames, CRC, error codes (pure Python, shared by host and gateware).

Every constant of the wire format lives here; the gateware (:mod:`bitstreams.link`) and the
host client (:mod:`bitstreams.host`) both import them, so the two sides cannot drift.
``docs/bitstreams.md`` is the user-facing description.

Frame (both directions)::

    SYNC  TYPE  SEQ  LEN_LO  LEN_HI  PAYLOAD[LEN]  CRC_HI  CRC_LO

* ``SYNC``: :data:`REQUEST_SYNC` (host to board) or :data:`RESPONSE_SYNC` (board to host).
* ``TYPE``: one of :class:`Request` / :class:`Response`.
* ``SEQ``: a byte chosen by the host; the board answers every request with its ``SEQ``.
* ``LEN``: payload length in bytes, little endian.
* ``CRC``: CRC-16/CCITT-FALSE (polynomial ``0x1021``, initial value ``0xFFFF``, no reflection,
  no final XOR) over ``TYPE`` to the last payload byte, sent most significant byte first. Run
  over the whole frame after ``SYNC``, including the CRC bytes, the CRC is 0 for a good frame.

Nothing here imports amaranth.
"""

from __future__ import annotations

import binascii
import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from sw.checks import is_int

__all__ = [
    "REQUEST_SYNC",
    "RESPONSE_SYNC",
    "HEADER_BYTES",
    "OVERHEAD_BYTES",
    "PROTOCOL_VERSION",
    "CRC_POLY",
    "CRC_INIT",
    "Request",
    "Response",
    "ErrorCode",
    "ProtocolError",
    "Frame",
    "crc16",
    "crc16_update",
    "encode_frame",
    "FrameDecoder",
    "BadFrame",
    "DeviceInfo",
    "BenchResult",
    "BENCH_BYTES",
    "results_crc",
    "feed_cycles",
    "hash_cycles",
    "bench_period",
    "INFO_FIXED_BYTES",
    "INFO_MAX_BYTES",
    "ERROR_BYTES",
    "error_payload",
]

REQUEST_SYNC = 0xA5
RESPONSE_SYNC = 0x5A
#: SYNC, TYPE, SEQ, LEN_LO, LEN_HI.
HEADER_BYTES = 5
#: Bytes of a frame besides its payload (header and CRC).
OVERHEAD_BYTES = HEADER_BYTES + 2
PROTOCOL_VERSION = 2
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF


class Request(enum.IntEnum):
    """Frame types the host sends."""

    #: Payload: one input sample, packed as the accelerator's input beats (see DeviceInfo).
    INFER = 0x01
    #: Empty payload; answered with a :attr:`Response.INFO` frame.
    INFO = 0x02
    #: Empty payload; returns the accelerator and the link to idle, answered with
    #: :attr:`Response.RESET_DONE` once done. Send nothing else until that answer arrives.
    #: It also empties the benchmark store.
    RESET = 0x03
    #: Payload: one input sample (as INFER), appended to the on-chip benchmark store;
    #: answered with :attr:`Response.STORED`, or ERROR FULL when the store holds
    #: :attr:`DeviceInfo.bench_capacity` samples already (BUSY while a run is on).
    BENCH_STORE = 0x04
    #: Empty payload: run every stored sample back to back from the store, answered with
    #: :attr:`Response.BENCH` when the last result is in. Samples (INFER, BENCH_STORE)
    #: are answered BUSY meanwhile.
    BENCH_RUN = 0x05


class Response(enum.IntEnum):
    """Frame types the board sends."""

    #: Payload: the accelerator's output beat (class and scores), little endian.
    RESULT = 0x81
    #: Payload: :class:`DeviceInfo`.
    INFO = 0x82
    #: Empty payload: the reset requested with the same SEQ is complete.
    RESET_DONE = 0x83
    #: Empty payload: the BENCH_STORE with the same SEQ is in the store.
    STORED = 0x84
    #: Payload: :class:`BenchResult` (samples run, cycles counted, CRC of their results).
    BENCH = 0x85
    #: Payload: one byte, the :class:`ErrorCode`.
    ERROR = 0xEE


class ErrorCode(enum.IntEnum):
    """Why the board answered a request with an error frame."""

    #: The CRC over the frame did not check.
    BAD_CRC = 1
    #: LEN is wrong for the request type (INFER: the sample size; others: 0). A LEN larger
    #: than any request's payload is answered at once, without waiting for the payload.
    BAD_LENGTH = 2
    #: TYPE is not a :class:`Request`.
    UNKNOWN_TYPE = 3
    #: The frame stopped arriving before it was complete (the receiver's frame timeout).
    TIMEOUT = 4
    #: Both sample buffers were full (or a reset was pending): the sample was not taken.
    BUSY = 5
    #: Bytes arrived outside a frame (answered once per run of such bytes; SEQ is 0).
    NO_SYNC = 6
    #: A UART character had no stop bit (wrong baud rate or a broken line) inside a frame.
    FRAMING = 7
    #: The benchmark store is full (or the board has none): the sample was not stored.
    FULL = 8


_ERROR_CODES = {int(c) for c in ErrorCode}


class ProtocolError(RuntimeError):
    """The other side broke the protocol, or a frame could not be built."""


def crc16_update(crc: int, byte: int) -> int:
    """One step of CRC-16/CCITT-FALSE: the CRC after feeding ``byte`` (MSB first)."""
    return binascii.crc_hqx(bytes([byte]), crc)


def crc16(data: Iterable[int], crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``).

    ``binascii.crc_hqx`` is this CRC (polynomial 0x1021, MSB first, no reflection, no final
    XOR) given the initial value; it runs in C.
    """
    return binascii.crc_hqx(bytes(data), crc)


@dataclass(frozen=True)
class Frame:
    """A decoded frame (either direction)."""

    type: int
    seq: int
    payload: bytes = b""

    def __post_init__(self):
        for name in ("type", "seq"):
            v = getattr(self, name)
            if not is_int(v) or not 0 <= v <= 0xFF:
                raise ValueError(f"{name} must be an int in 0..255, not {v!r}")
        if not isinstance(self.payload, (bytes, bytearray)):
            raise TypeError(f"payload must be bytes, not {type(self.payload).__name__}")
        if len(self.payload) > 0xFFFF:
            raise ValueError(f"payload must be at most 65535 bytes, not {len(self.payload)}")
        object.__setattr__(self, "payload", bytes(self.payload))

    @property
    def error(self) -> ErrorCode | int | None:
        """The error code of an error frame (an int if unknown), None for other frames."""
        if self.type != Response.ERROR or len(self.payload) != 1:
            return None
        code = self.payload[0]
        return ErrorCode(code) if code in _ERROR_CODES else code


def encode_frame(type: int, seq: int, payload: bytes = b"", *, sync: int = REQUEST_SYNC
                 ) -> bytes:
    """The bytes of one frame (``sync`` = :data:`REQUEST_SYNC` for requests)."""
    frame = Frame(int(type), int(seq), bytes(payload))
    body = bytes([frame.type, frame.seq]) + struct.pack("<H", len(frame.payload)) + frame.payload
    return bytes([sync]) + body + struct.pack(">H", crc16(body))


def error_payload(code: int) -> bytes:
    """Payload of an error frame."""
    return bytes([int(code) & 0xFF])


@dataclass(frozen=True)
class BadFrame:
    """Bytes the :class:`FrameDecoder` had to throw away, and why."""

    reason: str
    data: bytes


class FrameDecoder:
    """Incremental decoder of a byte stream into :class:`Frame` objects.

    Bytes before a SYNC are skipped (reported as :class:`BadFrame`); a frame whose CRC does
    not check, or whose LEN exceeds ``max_payload``, is reported as :class:`BadFrame` and the
    search for the next SYNC resumes at the byte after the bad frame's SYNC (so a good frame
    hidden behind a corrupted one is still found). The decoder keeps no clock: a receiver
    that stops hearing bytes in the middle of a frame calls :meth:`drop_partial` (the host
    client does so after its frame timeout), so noise that looks like a header cannot hold
    back the frames behind it.

    Parameters
    ----------
    sync : int
        The SYNC byte to look for (:data:`RESPONSE_SYNC` on the host).
    max_payload : int
        Largest LEN accepted.
    """

    def __init__(self, *, sync: int = RESPONSE_SYNC, max_payload: int = 0xFFFF):
        if not is_int(sync) or not 0 <= sync <= 0xFF:
            raise ValueError(f"sync must be a byte value, not {sync!r}")
        if not is_int(max_payload) or not 0 <= max_payload <= 0xFFFF:
            raise ValueError(f"max_payload must be an int in 0..65535, not {max_payload!r}")
        self.sync = sync
        self.max_payload = max_payload
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list:
        """Add received bytes; return the frames (and BadFrame records) now complete."""
        self._buf += data
        out = []
        while self._buf:
            start = self._buf.find(self.sync)
            if start < 0:
                out.append(BadFrame("bytes outside a frame", bytes(self._buf)))
                self._buf.clear()
                break
            if start:
                out.append(BadFrame("bytes outside a frame", bytes(self._buf[:start])))
                del self._buf[:start]
            if len(self._buf) < HEADER_BYTES:
                break
            length = self._buf[3] | (self._buf[4] << 8)
            if length > self.max_payload:
                out.append(BadFrame(f"length {length} exceeds {self.max_payload}",
                                    bytes(self._buf[:HEADER_BYTES])))
                del self._buf[:1]
                continue
            total = OVERHEAD_BYTES + length
            if len(self._buf) < total:
                break
            raw = bytes(self._buf[:total])
            if crc16(raw[1:]) != 0:
                out.append(BadFrame("bad CRC", raw))
                del self._buf[:1]
                continue
            out.append(Frame(raw[1], raw[2], raw[HEADER_BYTES:HEADER_BYTES + length]))
            del self._buf[:total]
        return out

    def drop_partial(self) -> list:
        """Give up on the frame being received (no more bytes are coming): report it as a
        :class:`BadFrame` and decode the bytes after its SYNC again, as after a bad CRC; the
        same for every further incomplete frame among them. Returns what :meth:`feed` would
        (the dropped frames first, then any frame found behind them)."""
        out = []
        while self._buf:
            if len(self._buf) < HEADER_BYTES:
                reason = f"incomplete header ({len(self._buf)} of {HEADER_BYTES} bytes)"
            else:
                length = self._buf[3] | (self._buf[4] << 8)
                reason = (f"incomplete frame ({len(self._buf)} of {OVERHEAD_BYTES + length} "
                          f"bytes)")
            out.append(BadFrame(reason, bytes(self._buf)))
            rest = bytes(self._buf[1:])
            self._buf.clear()
            out += self.feed(rest)
        return out


@dataclass(frozen=True)
class DeviceInfo:
    """What the board reports about itself (payload of a :attr:`Response.INFO` frame).

    Layout (little endian)::

        0      u8    protocol version
        1      u8    layers L
        2..3   u16   sample bytes (payload of an INFER frame)
        4..5   u16   result bytes (payload of a RESULT frame)
        6..7   u16   input beats per sample
        8..9   u16   bytes per input beat
        10..11 u16   input lanes (values per beat)
        12..15 u32   clock frequency in Hz
        16..19 u32   UART clocks per bit
        20     u8    answers lost because the answer queue was full (saturating)
        21     u8    benchmark store: log2 of the samples it holds, plus 1 (0: none)
        22..29 8 B   the artifact's manifest digest, first 8 bytes (manifest_digest().prefix(8))
        30..   L x (u16 simd, u16 pe)   the folding, per layer
    """

    version: int
    sample_bytes: int
    result_bytes: int
    beats: int
    beat_bytes: int
    lanes: int
    clock_hz: int
    clocks_per_bit: int
    artifact_hash: bytes
    folding: tuple
    lost_answers: int = 0
    #: Samples the on-chip benchmark store holds (0: no benchmark mode; else a power of two).
    bench_capacity: int = 0

    _FIXED = struct.Struct("<BBHHHHHIIBB8s")

    #: Byte offset of the ``lost_answers`` counter (the only field that changes at run time).
    LOST_OFFSET = 20

    def to_bytes(self) -> bytes:
        fixed = self._FIXED.pack(self.version, len(self.folding), self.sample_bytes,
                                 self.result_bytes, self.beats, self.beat_bytes, self.lanes,
                                 self.clock_hz, self.clocks_per_bit,
                                 min(self.lost_answers, 255), _bench_code(self.bench_capacity),
                                 bytes(self.artifact_hash[:8]))
        return fixed + b"".join(struct.pack("<HH", s, p) for s, p in self.folding)

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceInfo:
        n = cls._FIXED.size
        if len(data) < n:
            raise ProtocolError(f"INFO payload of {len(data)} bytes is shorter than {n}")
        (version, layers, sample_bytes, result_bytes, beats, beat_bytes, lanes, clock_hz,
         cpb, lost, bench, digest) = cls._FIXED.unpack(data[:n])
        if len(data) != n + 4 * layers:
            raise ProtocolError(f"INFO payload of {len(data)} bytes does not hold the folding "
                                f"of {layers} layers ({n + 4 * layers} bytes expected)")
        folding = tuple(struct.unpack_from("<HH", data, n + 4 * i) for i in range(layers))
        # Sizes the client divides by or packs with: a zero would end in a traceback (or a
        # sample of no bytes) far from the INFO frame that caused it.
        positive = {"layers": layers, "sample_bytes": sample_bytes,
                    "result_bytes": result_bytes, "beats": beats, "beat_bytes": beat_bytes,
                    "lanes": lanes, "clock_hz": clock_hz, "clocks_per_bit": cpb}
        for name, value in positive.items():
            if value == 0:
                raise ProtocolError(f"INFO reports {name} = 0")
        if sample_bytes != beats * beat_bytes:
            raise ProtocolError(f"INFO reports sample_bytes = {sample_bytes}, not beats x "
                                f"beat_bytes = {beats} x {beat_bytes}")
        for k, (simd, pe) in enumerate(folding):
            if simd == 0 or pe == 0:
                raise ProtocolError(f"INFO reports folding {simd}x{pe} for layer {k}")
        if bench > 16:
            raise ProtocolError(f"INFO reports a benchmark store of 2**{bench - 1} samples "
                                f"(at most 2**15)")
        return cls(version, sample_bytes, result_bytes, beats, beat_bytes, lanes, clock_hz,
                   cpb, digest, folding, lost, 1 << (bench - 1) if bench else 0)

    @property
    def baud(self) -> float:
        return self.clock_hz / self.clocks_per_bit

    @property
    def payload_bytes(self) -> int:
        """Length of this INFO's payload."""
        return self._FIXED.size + 4 * len(self.folding)


def _bench_code(capacity: int) -> int:
    """INFO byte 21: ``log2(capacity) + 1``, 0 for no store."""
    if not is_int(capacity) or capacity < 0 or capacity > 1 << 15 or capacity & (capacity - 1):
        raise ProtocolError(f"bench_capacity must be 0 or a power of two up to 32768, not "
                            f"{capacity!r}")
    return capacity.bit_length()


@dataclass(frozen=True)
class BenchResult:
    """Payload of a :attr:`Response.BENCH` frame (little endian)::

        0..1   u16   samples run
        2..5   u32   cycles counted: from the cycle the run starts to the cycle the last
                     result is taken (:attr:`bitstreams.host.BenchStats.fill_cycles` says how much
                     of that is not the samples' own period)
        6..7   u16   CRC-16 (this protocol's) of the samples' RESULT payloads, concatenated in
                     order (:func:`results_crc`)
    """

    samples: int
    cycles: int
    crc: int

    _LAYOUT = struct.Struct("<HIH")

    def to_bytes(self) -> bytes:
        return self._LAYOUT.pack(self.samples, self.cycles, self.crc)

    @classmethod
    def from_bytes(cls, data: bytes) -> BenchResult:
        if len(data) != cls._LAYOUT.size:
            raise ProtocolError(f"BENCH payload of {len(data)} bytes, not "
                                f"{cls._LAYOUT.size}")
        return cls(*cls._LAYOUT.unpack(data))


#: Payload of a BENCH frame.
BENCH_BYTES = BenchResult._LAYOUT.size


def results_crc(payloads: Iterable[bytes]) -> int:
    """The CRC a BENCH answer carries: :func:`crc16` over the RESULT payloads, in order."""
    crc = CRC_INIT
    for payload in payloads:
        crc = crc16(payload, crc)
    return crc


# The link's rates in a benchmark run: facts of the gateware (bitstreams.link, whose tests
# check them), kept here so that the host client, which needs no Amaranth, can ask them.
def feed_cycles(info: DeviceInfo) -> int:
    """:class:`bitstreams.link.SampleFeeder`: cycles per sample when the accelerator takes
    every beat at once: two cycles to claim the slot (one to see it full, registered, one to
    take it), then ``beat_bytes + 2`` per beat."""
    return 2 + info.beats * (info.beat_bytes + 2)


def hash_cycles(info: DeviceInfo) -> int:
    """:class:`bitstreams.link.FrameSerializer` during a benchmark run: cycles per result,
    its pick and one per byte into the CRC."""
    return 1 + info.result_bytes


def bench_period(info: DeviceInfo, ideal_cycles: int) -> int:
    """Cycles per sample of a benchmark run in its steady state: the accelerator's bound, or
    the link's feeder or hashing where either is slower."""
    return max(ideal_cycles, feed_cycles(info), hash_cycles(info))


#: Payload of an INFO frame: the fixed part, and the most (255 layers).
INFO_FIXED_BYTES = DeviceInfo._FIXED.size
INFO_MAX_BYTES = INFO_FIXED_BYTES + 4 * 255
#: Payload of an ERROR frame.
ERROR_BYTES = 1
