"""The host client: stream samples to a board, check every answer against the golden model.

One code path, two transports. :class:`BoardClient` speaks the protocol of
:mod:`bitstreams.protocol` through any object with the :class:`Transport` methods:

* :class:`SerialTransport`: a real board's USB serial port (pyserial, imported when used);
* :class:`bitstreams.simuart.CocotbUARTTransport`: the RTL of the board top in a cocotb
  simulation, bit by bit on its UART pins.

:class:`SampleCodec` packs samples and unpacks results through the payload layouts of the
accelerator's description (``accelerator.json``, written by the bitstream flow into the build
folder beside the bitstream), so the client needs neither Amaranth nor its own copy of the
layout rules.

The client is written with ``async`` methods so that the simulated transport can wait for
simulated time; over a serial port the methods never suspend and ``asyncio.run`` drives them.

:func:`run_samples` sends samples with up to ``window`` requests outstanding, retries a sample
answered with an error (or not answered in time), and compares every result (class and every
score) with :class:`sw.golden.GoldenModel` exactly. ``bitspike run`` (:class:`Run`) is the
command line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from bitstreams import protocol as P
from bitstreams.boards import BUILD_ROOT
from hw.interface import DESCRIPTION_FILE, beats_per_sample, sample_beats
from sim.description import Description, DescriptionError
from sw.checks import is_int
from sw.digest import Sha256
from sw.fixedpoint import ceil_div
from sw.options import add_folding

__all__ = ["Transport", "SerialTransport", "BoardError", "DESCRIPTION_FILE", "SampleCodec",
           "find_descriptions", "codec_for", "frame_name", "BoardClient", "RunStats",
           "run_samples", "check_board", "results_table", "BenchStats", "BenchCapacityError",
           "run_benchmark",
           "check_benchmark", "benchmark_table", "Run"]


class Transport(Protocol):
    """Byte transport to a board (or a simulation of one)."""

    async def write(self, data: bytes) -> None:
        """Send ``data``."""

    async def read(self, timeout: float) -> bytes:
        """Bytes received so far (waiting up to ``timeout`` seconds of the transport's own
        clock for at least one); ``b""`` when none came."""

    def now(self) -> float:
        """The transport's clock in seconds (wall time, or simulated time)."""


#: How far short of a deadline a transport's clock may stop after waiting for it.
_CLOCK_SLACK = 1e-6


class BoardError(RuntimeError):
    """The board answered something unusable, or nothing."""


class BenchCapacityError(BoardError):
    """``--benchmark N`` asks for more samples than the board's store holds (a usage error:
    exit status 2)."""


class SerialTransport:
    """A serial port through pyserial: a device (``/dev/ttyUSB1``, ``COM5``) or any URL
    pyserial opens (``socket://host:port`` for a board served over the network,
    ``rfc2217://...``).

    Parameters
    ----------
    port : str
    baud : int
        Must equal the bitstream's (INFO reports it; 3 000 000 by default).
    """

    def __init__(self, port: str, baud: int = 3_000_000):
        try:
            import serial
        except ImportError:
            raise ImportError("the serial transport needs pyserial: pip install "
                              "'bitspike[board]' (or pip install pyserial)") from None
        if not is_int(baud) or baud <= 0:
            raise ValueError(f"baud must be a positive int, not {baud!r}")
        self._serial = serial.serial_for_url(port, baudrate=baud, timeout=0.1,
                                             write_timeout=5.0)
        self._serial.reset_input_buffer()

    async def write(self, data: bytes) -> None:
        self._serial.write(data)

    async def read(self, timeout: float) -> bytes:
        self._serial.timeout = max(0.0, timeout)
        first = self._serial.read(1)
        if not first:
            return b""
        return first + self._serial.read(self._serial.in_waiting)

    def now(self) -> float:
        return time.perf_counter()

    def close(self) -> None:
        self._serial.close()




class SampleCodec:
    """Packs samples into INFER payloads and unpacks RESULT payloads, through the payload
    layouts of the accelerator's description (``accelerator.json``, which ``hw.generate`` and
    the bitstream flow write from the very ``StructLayout`` objects the hardware is built
    from) and the beat order of :func:`hw.interface.sample_beats`; beat bytes little endian.
    Nothing here needs Amaranth.

    Parameters
    ----------
    description : sim.description.Description
        The accelerator's description (:meth:`load` reads one from a file or build folder).
    """

    def __init__(self, description: Description):
        if not isinstance(description, Description):
            raise TypeError(f"description must be a sim.description.Description, not "
                            f"{description!r}")
        d = description
        self.description = d
        self.lanes = d.lanes
        self.rows = d.rows
        self.inputs = d.inputs
        self.beats = beats_per_sample(d.inputs, d.rows, d.lanes)
        if self.beats != d.beats_per_sample:
            raise DescriptionError(f"{d.path}: input.beats_per_sample is "
                                   f"{d.beats_per_sample}, its input format gives {self.beats}")
        self.in_layout = d.input_stream.layout
        self.out_layout = d.output_stream.layout
        for name in ("prediction", "scores"):
            if name not in self.out_layout:
                raise DescriptionError(f"{d.path}: the output payload has no {name!r} field")
        self.field = d.input_field
        self.classes = self.out_layout["scores"].count
        self.beat_bytes = ceil_div(self.in_layout.width, 8)
        self.sample_bytes = self.beats * self.beat_bytes
        self.result_bytes = ceil_div(self.out_layout.width, 8)

    @classmethod
    def load(cls, path) -> SampleCodec:
        """The codec of a description file, or of the :data:`DESCRIPTION_FILE` in a build
        folder (DescriptionError naming the file when it is missing or malformed)."""
        path = Path(path)
        return cls(Description.load(path / DESCRIPTION_FILE if path.is_dir() else path))

    def check_info(self, info: P.DeviceInfo, digest: Sha256) -> None:
        """Raise BoardError unless the board was built for the artifact whose manifest digest
        is ``digest`` and with this description's sizes."""
        if info.version != P.PROTOCOL_VERSION:
            raise BoardError(f"the board speaks protocol version {info.version}, this client "
                             f"{P.PROTOCOL_VERSION}")
        if bytes(info.artifact_hash) != digest.prefix(8):
            raise BoardError(f"the board was built from another artifact (its manifest hash "
                             f"starts {info.artifact_hash.hex()}, this artifact's "
                             f"{digest.prefix(8).hex()})")
        expect = {"lanes": self.lanes, "beats": self.beats, "beat_bytes": self.beat_bytes,
                  "sample_bytes": self.sample_bytes, "result_bytes": self.result_bytes}
        for name, value in expect.items():
            if getattr(info, name) != value:
                raise BoardError(f"the board reports {name} = {getattr(info, name)}, the "
                                 f"description {self.description.path} gives {value}")

    def pack(self, sample) -> bytes:
        """INFER payload of one sample (``(N,)`` values or ``(T, N)`` spikes)."""
        beats = sample_beats(sample, inputs=self.inputs, rows=self.rows, lanes=self.lanes,
                             shape=self.description.shape)
        return b"".join(self.in_layout.pack({self.field: beat}).to_bytes(self.beat_bytes,
                                                                         "little")
                        for beat in beats)

    def pack_result(self, prediction: int, scores) -> bytes:
        """The RESULT payload the board sends for ``(prediction, scores)`` (what a benchmark
        run's CRC is taken over)."""
        word = self.out_layout.pack({"prediction": int(prediction),
                                     "scores": [int(v) for v in scores]})
        return word.to_bytes(self.result_bytes, "little")

    def unpack(self, payload: bytes) -> tuple[int, list[int]]:
        """``(prediction, scores)`` of a RESULT payload."""
        if len(payload) != self.result_bytes:
            raise BoardError(f"a RESULT payload of {len(payload)} bytes, expected "
                             f"{self.result_bytes}")
        fields = self.out_layout.unpack(int.from_bytes(payload, "little"))
        return int(fields["prediction"]), [int(v) for v in fields["scores"]]


def find_descriptions(artifact, artifact_dir, build=None, *, root=BUILD_ROOT
                      ) -> list[Description]:
    """The descriptions a board built from ``artifact`` (read from ``artifact_dir``) may have.

    ``build`` names a build folder (its :data:`DESCRIPTION_FILE`) or a description file; without
    it, every ``<root>/*/accelerator.json`` generated from this artifact (the bitstream flow
    writes one beside each bitstream). Raises DescriptionError (one line naming the file or
    folder) when there is none, or when the named one belongs to another artifact.
    """
    if build is not None:
        path = Path(build)
        desc = Description.load(path / DESCRIPTION_FILE if path.is_dir() else path)
        desc.check_artifact(artifact, artifact_dir)
        return [desc]
    found = []
    for path in sorted(Path(root).glob(f"*/{DESCRIPTION_FILE}")):
        try:
            desc = Description.load(path)
            desc.check_artifact(artifact, artifact_dir)
        except DescriptionError:
            continue  # another artifact's build (or a broken file): not this board's
        found.append(desc)
    if not found:
        raise DescriptionError(f"no {root}/*/{DESCRIPTION_FILE} was generated from "
                               f"{artifact_dir} (build the bitstream with python -m "
                               f"bitstreams.flow, or name its build folder with --build)")
    return found


def codec_for(descriptions: list[Description], info: P.DeviceInfo) -> SampleCodec:
    """The codec of the first description with the board's lanes (the payload layouts
    follow from the artifact and the lanes), else of the first (check_info then says what
    differs)."""
    for desc in descriptions:
        if desc.lanes == info.lanes:
            return SampleCodec(desc)
    return SampleCodec(descriptions[0])


def frame_name(frame: P.Frame) -> str:
    """How a protocol error names an answer: its type (by name when known) and SEQ."""
    try:
        kind = P.Response(frame.type).name
    except ValueError:
        kind = f"frame type {frame.type:#04x}"
    return f"{kind} seq {frame.seq}"


class BoardClient:
    """Requests and answers over a :class:`Transport`.

    The receiver is bounded like the board's: a frame longer than the largest answer the board
    can send (:attr:`max_payload`) is thrown away at its header, and a frame whose next byte
    does not come within ``frame_timeout`` is dropped; both count in :attr:`bad_frames`, and
    the search for the next SYNC resumes at the byte after the false one.

    Parameters
    ----------
    transport : Transport
    timeout : float
        Seconds (of the transport's clock) to wait for an answer before sending again.
    frame_timeout : float, optional
        Seconds without a byte after which a half-received frame is dropped (default: a
        quarter of ``timeout``; a USB serial adapter delivers within ~16 ms, so a real frame
        never pauses that long, and a dropped false frame still leaves time to find the answer
        hidden behind it before ``timeout``).
    """

    def __init__(self, transport: Transport, *, timeout: float = 1.0,
                 frame_timeout: float | None = None):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
        frame_timeout = timeout / 4 if frame_timeout is None else frame_timeout
        if not frame_timeout > 0:
            raise ValueError(f"frame_timeout must be > 0 seconds, not {frame_timeout!r}")
        self.transport = transport
        self.timeout = timeout
        self.frame_timeout = frame_timeout
        self._info_bytes: int | None = None
        self._result_bytes: int | None = None
        self.decoder = P.FrameDecoder(sync=P.RESPONSE_SYNC, max_payload=self.max_payload)
        self._frames = deque()
        self._last_byte = 0.0
        self._seq = 0
        self._sent: dict[int, int] = {}  # seq -> type of the last request sent with it
        self._answered: set[int] = set()  # seqs whose last request was answered
        self.bad_frames = 0
        #: One line per malformed answer, each naming the frame (see :func:`frame_name`).
        self.protocol_errors: list[str] = []

    @property
    def max_payload(self) -> int:
        """The largest payload the board can send: an ERROR's byte, its INFO (any INFO until
        one was read) and a RESULT (once :meth:`expect_results` or INFO gave its size)."""
        return max(P.ERROR_BYTES, self._info_bytes or P.INFO_MAX_BYTES, self._result_bytes or 0)

    def expect_results(self, result_bytes: int) -> None:
        """RESULT frames hold ``result_bytes`` (the codec's); bounds the receiver."""
        if not is_int(result_bytes) or not 1 <= result_bytes <= 0xFFFF:
            raise ValueError(f"result_bytes must be an int in 1..65535, not {result_bytes!r}")
        self._result_bytes = result_bytes
        self.decoder.max_payload = self.max_payload

    def next_seq(self) -> int:
        # 1..255: SEQ 0 is the board's for NO_SYNC errors, so it never names a request; a SEQ
        # comes back only after 254 others, so a late answer is not taken for a newer request.
        self._seq = self._seq % 255 + 1
        return self._seq

    async def send(self, type: int, seq: int, payload: bytes = b"") -> None:
        self._sent[seq] = int(type)
        self._answered.discard(seq)
        await self.transport.write(P.encode_frame(type, seq, payload))

    def protocol_error(self, frame: P.Frame, what: str) -> str:
        """Record (and return) the one-line report of a malformed answer."""
        message = f"protocol error: {frame_name(frame)}: {what}"
        self.protocol_errors.append(message)
        return message

    def _take(self, items) -> None:
        for item in items:
            if isinstance(item, P.Frame):
                self._frames.append(item)
            else:
                self.bad_frames += 1

    async def receive(self, timeout: float) -> P.Frame | None:
        """The next good frame from the board, or None after ``timeout`` seconds of silence.
        Undecodable bytes, frames too long and frames left incomplete for ``frame_timeout``
        are counted in :attr:`bad_frames`."""
        tr = self.transport
        deadline = tr.now() + timeout
        while not self._frames:
            now = tr.now()
            frame_deadline = self._last_byte + self.frame_timeout
            if self.decoder.pending and now >= frame_deadline:
                self._take(self.decoder.drop_partial())
                continue
            left = deadline - now
            if left <= 0:
                return None
            for_frame = self.decoder.pending and frame_deadline - now <= left
            until = frame_deadline if for_frame else deadline
            data = await tr.read(until - now)
            if data:
                self._last_byte = tr.now()
                self._take(self.decoder.feed(data))
            elif tr.now() < until - _CLOCK_SLACK:
                continue  # the transport returned early: wait on
            elif for_frame:
                # Waited out the frame timeout. Decided with a slack, not by comparing clocks
                # exactly: the clock after a wait may round to just short of the deadline
                # (a float sum, a simulator's whole nanoseconds) and never reach it.
                self._take(self.decoder.drop_partial())
            else:
                return None
        return self._frames.popleft()

    def flush(self) -> list[P.Frame]:
        """Drop a half-received frame now (counted in :attr:`bad_frames`); the frames found
        behind it, and any not yet taken by :meth:`receive`."""
        self._take(self.decoder.drop_partial())
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def classify(self, frame: P.Frame) -> str:
        """What an answer whose SEQ is not outstanding is: ``"late"`` (its request was given
        up), ``"duplicate"`` (its request was answered already) or ``"unsent"``."""
        if frame.seq not in self._sent:
            return "unsent"
        return "duplicate" if frame.seq in self._answered else "late"

    def stray(self, frame: P.Frame) -> bool:
        """Record a protocol error for an answer (not an ERROR, which may carry a corrupted
        request's SEQ) to a request never sent, or a second answer; True for a late one."""
        kind = self.classify(frame)
        if frame.type == P.Response.ERROR:
            return False
        if kind == "unsent":
            self.protocol_error(frame, "answers a request never sent")
        elif kind == "duplicate":
            name = _request_name(self._sent[frame.seq])
            self.protocol_error(frame, f"a second answer to {name} seq {frame.seq}")
        return kind == "late"

    async def request(self, type: int, payload: bytes = b"", *, expect: int,
                      retries: int = 2) -> P.Frame:
        """Send one request and return its answer of type ``expect``; sent again (at most
        ``retries`` times) when answered with an error or not within the timeout. BoardError
        after that, or on a malformed answer (one line naming the frame)."""
        name = _request_name(type)
        for attempt in range(retries + 1):
            seq = self.next_seq()
            await self.send(type, seq, payload)
            deadline = self.transport.now() + self.timeout
            error = None
            while error is None:
                frame = await self.receive(max(0.0, deadline - self.transport.now()))
                if frame is None:
                    error = (f"no answer to {name} within {self.timeout:g} s ({attempt + 1} "
                             f"tries; is the board programmed, the port and baud rate right?)")
                    break
                if frame.seq != seq:
                    self.stray(frame)
                    continue  # a late answer to something earlier, or a NO_SYNC error
                self._answered.add(seq)
                if frame.type == P.Response.ERROR:
                    if len(frame.payload) != P.ERROR_BYTES:
                        raise BoardError(self.protocol_error(
                            frame, f"payload of {len(frame.payload)} bytes, expected "
                                   f"{P.ERROR_BYTES}"))
                    error = f"the board answered {name} with error {frame.error!r}"
                    break
                if frame.type != expect:
                    raise BoardError(self.protocol_error(
                        frame, f"answers {name} seq {seq}, expected "
                               f"{P.Response(expect).name}"))
                return frame
        raise BoardError(error)

    async def info(self) -> P.DeviceInfo:
        frame = await self.request(P.Request.INFO, expect=P.Response.INFO)
        try:
            info = P.DeviceInfo.from_bytes(frame.payload)
        except P.ProtocolError as exc:
            raise BoardError(self.protocol_error(frame, str(exc))) from None
        # From now on the receiver accepts no frame longer than this board can send.
        self._info_bytes = len(frame.payload)
        self._result_bytes = info.result_bytes
        self.decoder.max_payload = self.max_payload
        return info

    async def reset(self) -> None:
        """Return the board's accelerator and link to idle (samples in flight are dropped)."""
        await self.request(P.Request.RESET, expect=P.Response.RESET_DONE)


def _request_name(type: int) -> str:
    try:
        return P.Request(type).name
    except ValueError:
        return f"request type {type:#04x}"


@dataclass
class RunStats:
    """What :func:`run_samples` measured.

    Every sample ends either answered or in :attr:`failed`: ``answered + len(failed) ==
    samples``. :attr:`bad_frames` and :attr:`protocol_errors` are the client's for its whole
    session (INFO and RESET included). Protocol errors are reported but do not fail a run by
    themselves: the run is :attr:`ok` when every sample was answered and equals the golden
    model.
    """

    samples: int = 0
    answered: int = 0
    failed: list = field(default_factory=list)        # sample indices never answered
    predictions: np.ndarray | None = None
    scores: np.ndarray | None = None
    errors: Counter = field(default_factory=Counter)  # error code -> count
    retries: int = 0
    late: int = 0
    bad_frames: int = 0
    protocol_errors: list = field(default_factory=list)  # one line each, naming the frame
    seconds: float = 0.0
    mismatches: list = field(default_factory=list)    # (index, what, expected, got)
    correct: int = 0                                  # against the labels
    golden_correct: int = 0

    @property
    def inferences_per_s(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else float("nan")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.mismatches and self.answered == self.samples


async def run_samples(client: BoardClient, codec: SampleCodec, x, *, window: int = 4,
                      retries: int = 2, progress=None) -> RunStats:
    """Send every sample of ``x`` (``(B, N)`` or ``(B, T, N)``); return the board's answers.

    Up to ``window`` requests are outstanding at once (the board holds 2 samples in its
    buffer and 4 in the accelerator, and queues 4 answers, so up to 4 are never refused);
    a sample answered with an error or a malformed answer, or not within the client's
    timeout, is sent again, at most ``retries`` times.
    """
    if not is_int(window) or not 1 <= window <= 64:
        raise ValueError(f"window must be an int in 1..64, not {window!r}")
    x = np.asarray(x)
    n = len(x)
    stats = RunStats(samples=n)
    stats.predictions = np.full(n, -1, dtype=np.int64)
    stats.scores = np.zeros((n, codec.classes), dtype=np.int64)
    payloads = [codec.pack(x[i]) for i in range(n)]
    client.expect_results(codec.result_bytes)
    todo = deque(range(n))
    attempts = Counter()
    pending = {}  # seq -> (index, deadline)
    start = client.transport.now()
    tr = client.transport

    def retry(i):
        if attempts[i] <= retries:
            stats.retries += 1
            todo.appendleft(i)
        else:
            stats.failed.append(i)
            if progress:
                progress(1)

    def take(frame):
        entry = pending.pop(frame.seq, None)
        if entry is None:
            if frame.type == P.Response.ERROR and len(frame.payload) == P.ERROR_BYTES:
                stats.errors[frame.error] += 1
            if client.stray(frame):
                stats.late += 1
            return
        i = entry[0]
        client._answered.add(frame.seq)
        if frame.type == P.Response.ERROR:
            if len(frame.payload) != P.ERROR_BYTES:
                client.protocol_error(frame, f"payload of {len(frame.payload)} bytes, "
                                             f"expected {P.ERROR_BYTES}")
            else:
                stats.errors[frame.error] += 1
                if not isinstance(frame.error, P.ErrorCode):
                    client.protocol_error(frame, f"unknown error code {frame.error}")
        elif frame.type != P.Response.RESULT:
            client.protocol_error(frame, f"answers INFER seq {frame.seq} (sample {i}), "
                                         f"expected RESULT")
        elif len(frame.payload) != codec.result_bytes:
            client.protocol_error(frame, f"payload of {len(frame.payload)} bytes, expected "
                                         f"{codec.result_bytes}")
        else:
            stats.predictions[i], stats.scores[i] = codec.unpack(frame.payload)
            stats.answered += 1
            if progress:
                progress(1)
            return
        retry(i)  # an unusable answer: the board will not answer this request again

    while todo or pending:
        while todo and len(pending) < window:
            i = todo.popleft()
            seq = client.next_seq()
            while seq in pending:
                seq = client.next_seq()
            attempts[i] += 1
            await client.send(P.Request.INFER, seq, payloads[i])
            pending[seq] = (i, tr.now() + client.timeout)
        wait = min(d for _, d in pending.values()) - tr.now()
        frame = await client.receive(max(0.0, wait))
        if frame is not None:
            take(frame)
        now = tr.now()
        for seq in [s for s, (_, d) in pending.items() if d <= now]:
            i, _ = pending.pop(seq)
            retry(i)
    # Bytes of a frame still arriving can no longer answer anything: counted now, not lost.
    for frame in client.flush():
        take(frame)
    stats.seconds = tr.now() - start
    stats.bad_frames = client.bad_frames
    stats.protocol_errors = list(client.protocol_errors)
    return stats


@dataclass
class BenchStats:
    """What :func:`run_benchmark` measured: the BENCH answers of a run of the first sample
    alone (``first``) and of all of them (``full``), and how long storing them took."""

    samples: int
    first: P.BenchResult
    full: P.BenchResult
    store_seconds: float
    crc_first: int | None = None      # the golden model's, filled in by check_benchmark
    crc_full: int | None = None

    @property
    def steady_cycles(self) -> float:
        """Cycles per sample in the steady state: what the run of all samples took beyond
        the run of the first alone, per further sample."""
        if self.samples < 2:
            return float(self.first.cycles)
        return (self.full.cycles - self.first.cycles) / (self.samples - 1)

    @property
    def fill_cycles(self) -> int:
        """The first sample's cycles beyond one steady period (the pipeline's fill, the
        link's feeding of the first sample and its last result's take)."""
        return self.first.cycles - round(self.steady_cycles)

    @property
    def ok(self) -> bool:
        return (self.first.crc == self.crc_first and self.full.crc == self.crc_full
                and self.first.samples == 1 and self.full.samples == self.samples)


async def run_benchmark(client: BoardClient, codec: SampleCodec, info: P.DeviceInfo, x, *,
                        progress=None) -> BenchStats:
    """The on-chip benchmark: reset the board (which empties its store), store the first
    sample and run it alone, store the others and run them all; returns the two BENCH
    answers. A store is not sent again after an error or a lost answer (a lost STORED may
    hide a stored sample): BoardError instead.

    ``client.timeout`` is each answer's wait; a run's adds the run's own time at the board's
    clock (``len(x)`` times the description's latency bound)."""
    x = np.asarray(x)
    n = len(x)
    if not 1 <= n <= info.bench_capacity:
        raise BenchCapacityError(
            f"--benchmark {n}: the board's store holds {info.bench_capacity} samples of "
            f"{info.sample_bytes} bytes" if info.bench_capacity else
            f"--benchmark {n}: the board has no benchmark store (built without one)")
    payloads = [codec.pack(x[i]) for i in range(n)]
    await client.reset()
    run_s = n * codec.description.latency_bound / info.clock_hz

    async def store(payload):
        await client.request(P.Request.BENCH_STORE, payload, expect=P.Response.STORED,
                             retries=0)
        if progress:
            progress(1)

    async def run():
        timeout = client.timeout
        client.timeout = timeout + run_s
        try:
            frame = await client.request(P.Request.BENCH_RUN, expect=P.Response.BENCH,
                                         retries=0)
        finally:
            client.timeout = timeout
        try:
            return P.BenchResult.from_bytes(frame.payload)
        except P.ProtocolError as exc:
            raise BoardError(client.protocol_error(frame, str(exc))) from None

    start = client.transport.now()
    await store(payloads[0])
    first = await run()
    for payload in payloads[1:]:
        await store(payload)
    seconds = client.transport.now() - start
    full = await run()
    return BenchStats(samples=n, first=first, full=full, store_seconds=seconds)


def check_benchmark(stats: BenchStats, artifact, x, codec: SampleCodec) -> BenchStats:
    """The CRCs the golden model's results give (of the first sample; of all)."""
    from sw.golden import GoldenModel

    golden = GoldenModel(artifact).run(np.asarray(x))
    payloads = [codec.pack_result(p, s) for p, s in zip(golden.predictions, golden.scores,
                                                            strict=True)]
    stats.crc_first = P.results_crc(payloads[:1])
    stats.crc_full = P.results_crc(payloads)
    return stats


def benchmark_table(stats: BenchStats, info: P.DeviceInfo, ideal_cycles: int) -> str:
    """The report of ``bitspike run --benchmark``."""
    period = P.bench_period(info, ideal_cycles)
    steady = stats.steady_cycles
    clock = info.clock_hz
    mark = "=" if stats.full.crc == stats.crc_full else "!="
    mark1 = "=" if stats.first.crc == stats.crc_first else "!="
    bound = ("the accelerator's ideal bound" if period == ideal_cycles else
             f"the link's {'feeder' if period == P.feed_cycles(info) else 'hashing'} "
             f"(the accelerator's bound is {ideal_cycles})")
    rate = stats.samples / stats.store_seconds if stats.store_seconds > 0 else float("nan")
    lines = [
        f"{'benchmark samples':<28} {stats.samples} (run from the board's store, back to "
        f"back; it holds {info.bench_capacity})",
        f"{'results CRC':<28} {stats.full.crc:#06x} {mark} golden model's "
        f"{stats.crc_full:#06x} (first sample alone: {stats.first.crc:#06x} {mark1} "
        f"{stats.crc_first:#06x})",
        f"{'samples counted':<28} {stats.full.samples} (first run: {stats.first.samples})",
        f"{'cycles counted':<28} {stats.full.cycles:,} ({stats.samples} samples); "
        f"{stats.first.cycles:,} (the first alone)",
        f"{'steady state':<28} {steady:,.3f} cycles/inference; expected {period} "
        f"({bound}): ratio {period / steady if steady else float('nan'):.3f}",
        f"{'fill':<28} {stats.fill_cycles:,} cycles (the first sample beyond one period)",
        f"{'on-chip inferences/s':<28} {clock / steady if steady else float('nan'):,.0f} at "
        f"{clock / 1e6:g} MHz (steady state); {stats.samples * clock / stats.full.cycles:,.0f}"
        f" over the whole run",
        f"{'link (storing samples)':<28} {rate:,.1f} samples/s at {info.baud:,.0f} baud "
        f"(the UART's bound: {info.baud / 10 / (info.sample_bytes + P.OVERHEAD_BYTES):,.1f})",
    ]
    return "\n".join(lines)


def check_board(stats: RunStats, artifact, x, labels=None) -> RunStats:
    """Compare the board's answers with the golden model (exactly) and count accuracy."""
    from sw.golden import GoldenModel

    golden = GoldenModel(artifact).run(np.asarray(x))
    answered = stats.predictions >= 0
    for i in np.flatnonzero(answered):
        if stats.predictions[i] != golden.predictions[i]:
            stats.mismatches.append((int(i), "prediction", int(golden.predictions[i]),
                                     int(stats.predictions[i])))
        if not np.array_equal(stats.scores[i], golden.scores[i]):
            k = int(np.flatnonzero(stats.scores[i] != golden.scores[i])[0])
            stats.mismatches.append((int(i), f"scores[{k}]", int(golden.scores[i][k]),
                                     int(stats.scores[i][k])))
    if labels is not None:
        labels = np.asarray(labels)
        stats.correct = int(np.sum(stats.predictions[answered] == labels[answered]))
        stats.golden_correct = int(np.sum(golden.predictions == labels))
    return stats


def results_table(stats: RunStats, info: P.DeviceInfo | None = None) -> str:
    n = stats.samples
    failed = ""
    if stats.failed:
        shown = ", ".join(str(i) for i in sorted(stats.failed)[:10])
        more = ", ..." if len(stats.failed) > 10 else ""
        failed = f" ({len(stats.failed)} never answered: samples {shown}{more})"
    lines = [f"{'samples':<28} {n}", f"{'answered':<28} {stats.answered}{failed}"]
    if n:
        lines.append(f"{'board accuracy':<28} {100 * stats.correct / n:.2f} %")
        lines.append(f"{'golden model accuracy':<28} {100 * stats.golden_correct / n:.2f} %")
    lines.append(f"{'mismatches vs golden':<28} {len(stats.mismatches)}")
    errs = ", ".join(f"{getattr(k, 'name', k)}: {v}" for k, v in sorted(
        stats.errors.items(), key=lambda kv: str(kv[0]))) or "none"
    lines.append(f"{'link errors':<28} {errs} (retries {stats.retries}, bad frames "
                 f"{stats.bad_frames}, late answers {stats.late})")
    lines.append(f"{'protocol errors':<28} {len(stats.protocol_errors)}")
    lines.append(f"{'inferences/s (end to end)':<28} {stats.inferences_per_s:,.1f}")
    if info is not None:
        fold = ",".join(f"{s}x{p}" for s, p in info.folding)
        lines.append(f"{'board':<28} {info.clock_hz / 1e6:g} MHz, folding {fold}, "
                     f"{info.baud:,.0f} baud")
    for i, what, exp, got in stats.mismatches[:5]:
        lines.append(f"  mismatch: sample {i} {what}: golden {exp}, board {got}")
    for message in stats.protocol_errors[:5]:
        lines.append(f"  {message}")
    return "\n".join(lines)


class Run:
    """``bitspike run``: stream a dataset to a board over its serial port."""

    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="the artifact the board was built from")
        p.add_argument("--build", default=None, metavar="PATH",
                       help=f"the bitstream's build folder (the flow writes {DESCRIPTION_FILE}, "
                            f"the accelerator's payload layouts, beside the bitstream) or that "
                            f"file itself (default: the folder under {BUILD_ROOT}/ built from "
                            f"ARTIFACT)")
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--port", help="serial port, e.g. /dev/ttyUSB1")
        where.add_argument("--sim", action="store_true",
                           help="no board: simulate the board top's Verilog (UART, host link, "
                                "accelerator) driven by this client over its UART pins "
                                "(--build is then the simulation's folder)")
        p.add_argument("--board", default="icebreaker",
                       help="with --sim: the board whose top (folding, clock) is simulated")
        add_folding(p, "with --sim: the board's, as its bitstream flow chooses it")
        p.add_argument("--simulator", default=None, choices=["icarus", "verilator"],
                       help="with --sim (default: $SIM, else Icarus if installed)")
        p.add_argument("--clocks-per-bit", type=int, default=4,
                       help="with --sim: UART clocks per bit (default 4: fast, same bytes)")
        p.add_argument("--baud", type=int, default=3_000_000,
                       help="UART rate of the bitstream (default 3000000)")
        p.add_argument("--dataset", default=None,
                       help="dataset name (default: the one the artifact records, with its "
                            "root, split seed and options; digits for a random network)")
        p.add_argument("--root", default=None,
                       help="dataset root for file-based datasets (default: the recorded one)")
        p.add_argument("--split", default="test", choices=["train", "test"])
        p.add_argument("--limit", type=int, default=None, help="send the first LIMIT samples")
        p.add_argument("--window", type=int, default=4,
                       help="requests outstanding at once (default 4)")
        p.add_argument("--timeout", type=float, default=None,
                       help="seconds to wait for an answer before sending again (default 1; "
                            "with --sim the accelerator's latency bound plus 0.002 s of "
                            "simulated time)")
        p.add_argument("--no-reset", action="store_true",
                       help="do not reset the board before streaming")
        p.add_argument("--benchmark", type=int, default=None, metavar="N",
                       help="on-chip benchmark instead of streaming: store the first N samples "
                            "in the board's memory, run them back to back there, and report "
                            "the cycles its counter counted and whether the CRC of its "
                            "results equals the golden model's (the board resets first)")

    @staticmethod
    def run(args) -> int:
        from tqdm import tqdm

        from sw.artifact import ArtifactError, load_artifact, manifest_digest
        from sw.cli_artifact import dataset_inputs, recorded_dataset

        if args.folding is not None and not args.sim:
            print("error: --folding is for --sim (a board reports its own folding)",
                  file=sys.stderr)
            return 2
        if args.benchmark is not None and args.benchmark < 1:
            print(f"error: --benchmark must be at least 1, not {args.benchmark}",
                  file=sys.stderr)
            return 2
        try:
            artifact = load_artifact(args.artifact)
            descriptions = [] if args.sim else find_descriptions(artifact, args.artifact,
                                                                 args.build)
        except (ArtifactError, DescriptionError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        recorded = recorded_dataset(artifact)
        if args.dataset is None or args.dataset == recorded["dataset"]:
            args.dataset = recorded["dataset"]
            x, y = dataset_inputs(artifact, args.dataset, args.split,
                                  args.root or recorded["root"], seed=recorded["seed"],
                                  options=recorded["options"])
        else:
            x, y = dataset_inputs(artifact, args.dataset, args.split, args.root,
                                  seed=recorded["seed"])
        if args.limit is not None:
            x, y = x[:args.limit], y[:args.limit]
        if args.benchmark is not None:
            if args.benchmark > len(x):
                cut = "" if args.limit is None else f", --limit {args.limit}"
                plural = "s" * (len(x) != 1)
                print(f"error: --benchmark {args.benchmark}: only {len(x)} sample{plural} to "
                      f"run ({args.dataset}/{args.split}{cut})", file=sys.stderr)
                return 2
            x, y = x[:args.benchmark], y[:args.benchmark]
        if args.sim and args.benchmark is not None:
            from bitstreams.simboard import SimBoardError, simulate_benchmark

            try:
                info, fields, build, note = simulate_benchmark(args, artifact, x)
            except SimBoardError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return exc.status
            stats, codec = BenchStats(**fields), SampleCodec.load(build)
            check_benchmark(stats, artifact, x, codec)
            print(f"board benchmark: {artifact.summary()} on {args.dataset}/{args.split}")
            print(note)
            print(benchmark_table(stats, info, codec.description.ideal_cycles))
            return 0 if stats.ok else 1
        if args.sim:  # no board: its top's Verilog in a simulator, the same client and report
            from bitstreams.simboard import SimBoardError, simulate_command

            try:
                info, fields, note = simulate_command(args, artifact, x)
            except SimBoardError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return exc.status
            stats = check_board(RunStats(**fields), artifact, x, y)
            print(f"board run: {artifact.summary()} on {args.dataset}/{args.split}")
            print(note)
            print(results_table(stats, info))
            return 0 if stats.ok else 1
        try:
            transport = SerialTransport(args.port, args.baud)
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # pyserial's SerialException is an OSError
            print(f"error: cannot open {args.port}: {exc}", file=sys.stderr)
            return 2
        client = BoardClient(transport, timeout=1.0 if args.timeout is None else args.timeout)

        async def session():
            if not args.no_reset:
                await client.reset()
            info = await client.info()
            codec = codec_for(descriptions, info)
            codec.check_info(info, manifest_digest(artifact))
            if args.benchmark is not None:
                with tqdm(total=len(x), desc="storing", unit="sample", file=sys.stderr) as bar:
                    stats = await run_benchmark(client, codec, info, x, progress=bar.update)
                return info, (stats, codec)
            with tqdm(total=len(x), desc="board", unit="sample", file=sys.stderr) as bar:
                stats = await run_samples(client, codec, x, window=args.window,
                                          progress=bar.update)
            return info, stats

        try:
            info, stats = asyncio.run(session())
        except BoardError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, BenchCapacityError) else 1
        finally:
            transport.close()
        if args.benchmark is not None:
            stats, codec = stats
            check_benchmark(stats, artifact, x, codec)
            print(f"board benchmark: {artifact.summary()} on {args.dataset}/{args.split}")
            print(benchmark_table(stats, info, codec.description.ideal_cycles))
            return 0 if stats.ok else 1
        check_board(stats, artifact, x, y)
        print(f"board run: {artifact.summary()} on {args.dataset}/{args.split}")
        print(results_table(stats, info))
        return 0 if stats.ok else 1
