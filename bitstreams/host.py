"""The host client: stream samples to a board, check every answer against the golden model.

One code path, two transports. :class:`BoardClient` speaks the protocol of
:mod:`bitstreams.protocol` through any object with the :class:`Transport` methods:

* :class:`SerialTransport`: a real board's USB serial port (pyserial, imported when used);
* :class:`bitstreams.simuart.CocotbUARTTransport`: the RTL of the board top in a cocotb
  simulation, bit by bit on its UART pins.

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
from typing import Protocol

import numpy as np

from bitstreams import protocol as P

__all__ = ["Transport", "SerialTransport", "BoardError", "SampleCodec", "BoardClient",
           "RunStats", "run_samples", "check_board", "Run"]


class Transport(Protocol):
    """Byte transport to a board (or a simulation of one)."""

    async def write(self, data: bytes) -> None:
        """Send ``data``."""

    async def read(self, timeout: float) -> bytes:
        """Bytes received so far (waiting up to ``timeout`` seconds of the transport's own
        clock for at least one); ``b""`` when none came."""

    def now(self) -> float:
        """The transport's clock in seconds (wall time, or simulated time)."""


class BoardError(RuntimeError):
    """The board answered something unusable, or nothing."""


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
        if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
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
    layouts of the accelerator (``hw.input_layout`` / ``hw.output_layout``, the same
    ``StructLayout`` objects the hardware is built from) and the beat order docs/hardware.md
    states: value k of beat b is input ``b*lanes + k`` of the row, rows (time steps, for spike
    input) one after the other, the last beat of a row zero-padded; beat bytes little endian.

    Parameters
    ----------
    artifact : sw.artifact.Artifact
    lanes : int
        Input values per beat of the bitstream (INFO reports it).
    """

    def __init__(self, artifact, lanes: int):
        import hw
        from hw.common import layout_json
        from hw.plan import input_beats
        from sim.layout import PayloadLayout
        from sw.fixedpoint import ceil_div

        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"lanes must be a positive int, not {lanes!r}")
        self.artifact = artifact
        self.lanes = lanes
        self.rows = 1 if artifact.input.kind == "multibit" else artifact.time_steps
        self.per_row = ceil_div(artifact.inputs, lanes)
        self.beats = input_beats(artifact, lanes)
        self.in_layout = PayloadLayout.from_json(
            layout_json(hw.input_layout(artifact.input.bits, lanes)), "input beat")
        self.out_layout = PayloadLayout.from_json(layout_json(hw.output_layout(artifact)),
                                                  "output beat")
        self.field = self.in_layout.names[0]
        self.beat_bytes = ceil_div(self.in_layout.width, 8)
        self.sample_bytes = self.beats * self.beat_bytes
        self.result_bytes = ceil_div(self.out_layout.width, 8)

    def check_info(self, info: P.DeviceInfo, artifact_hash: bytes) -> None:
        """Raise BoardError unless the board was built for this artifact and these sizes."""
        if info.version != P.PROTOCOL_VERSION:
            raise BoardError(f"the board speaks protocol version {info.version}, this client "
                             f"{P.PROTOCOL_VERSION}")
        if bytes(info.artifact_hash) != bytes(artifact_hash[:8]):
            raise BoardError(f"the board was built from another artifact (its manifest hash "
                             f"starts {info.artifact_hash.hex()}, this artifact's "
                             f"{artifact_hash[:8].hex()})")
        expect = {"beats": self.beats, "beat_bytes": self.beat_bytes,
                  "sample_bytes": self.sample_bytes, "result_bytes": self.result_bytes}
        for name, value in expect.items():
            if getattr(info, name) != value:
                raise BoardError(f"the board reports {name} = {getattr(info, name)}, the "
                                 f"artifact with {self.lanes} lanes gives {value}")

    def pack(self, sample) -> bytes:
        """INFER payload of one sample (``(N,)`` values or ``(T, N)`` spikes)."""
        x = np.asarray(sample, dtype=np.int64).reshape(self.rows, self.artifact.inputs)
        padded = np.zeros((self.rows, self.per_row * self.lanes), dtype=np.int64)
        padded[:, :self.artifact.inputs] = x
        out = bytearray()
        for chunk in padded.reshape(self.rows * self.per_row, self.lanes):
            beat = self.in_layout.pack({self.field: [int(v) for v in chunk]})
            out += beat.to_bytes(self.beat_bytes, "little")
        return bytes(out)

    def unpack(self, payload: bytes) -> tuple[int, list[int]]:
        """``(prediction, scores)`` of a RESULT payload."""
        if len(payload) != self.result_bytes:
            raise BoardError(f"a RESULT payload of {len(payload)} bytes, expected "
                             f"{self.result_bytes}")
        fields = self.out_layout.unpack(int.from_bytes(payload, "little"))
        return int(fields["prediction"]), [int(v) for v in fields["scores"]]


class BoardClient:
    """Requests and answers over a :class:`Transport`.

    Parameters
    ----------
    transport : Transport
    timeout : float
        Seconds (of the transport's clock) to wait for an answer before sending again.
    """

    def __init__(self, transport: Transport, *, timeout: float = 1.0):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {timeout!r}")
        self.transport = transport
        self.timeout = timeout
        self.decoder = P.FrameDecoder(sync=P.RESPONSE_SYNC)
        self._frames = deque()
        self._seq = 0
        self.bad_frames = 0

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    async def send(self, type: int, seq: int, payload: bytes = b"") -> None:
        await self.transport.write(P.encode_frame(type, seq, payload))

    async def receive(self, timeout: float) -> P.Frame | None:
        """The next good frame from the board, or None after ``timeout`` seconds of silence.
        Undecodable bytes are counted in :attr:`bad_frames`."""
        deadline = self.transport.now() + timeout
        while not self._frames:
            left = deadline - self.transport.now()
            if left <= 0:
                return None
            data = await self.transport.read(left)
            for item in self.decoder.feed(data):
                if isinstance(item, P.Frame):
                    self._frames.append(item)
                else:
                    self.bad_frames += 1
        return self._frames.popleft()

    async def request(self, type: int, payload: bytes = b"", *, expect: int) -> P.Frame:
        """Send one request and return its answer of type ``expect`` (BoardError on an error
        answer or silence)."""
        seq = self.next_seq()
        await self.send(type, seq, payload)
        deadline = self.transport.now() + self.timeout
        while True:
            frame = await self.receive(max(0.0, deadline - self.transport.now()))
            if frame is None:
                raise BoardError(f"no answer to {P.Request(type).name} within "
                                 f"{self.timeout:g} s (is the board programmed, the port and "
                                 f"baud rate right?)")
            if frame.seq != seq:
                continue  # a late answer to something earlier
            if frame.type == P.Response.ERROR:
                raise BoardError(f"the board answered {P.Request(type).name} with error "
                                 f"{frame.error!r}")
            if frame.type != expect:
                raise BoardError(f"the board answered {P.Request(type).name} with frame type "
                                 f"{frame.type:#04x}")
            return frame

    async def info(self) -> P.DeviceInfo:
        frame = await self.request(P.Request.INFO, expect=P.Response.INFO)
        return P.DeviceInfo.from_bytes(frame.payload)

    async def reset(self) -> None:
        """Return the board's accelerator and link to idle (samples in flight are dropped)."""
        await self.request(P.Request.RESET, expect=P.Response.RESET_DONE)


@dataclass
class RunStats:
    """What :func:`run_samples` measured."""

    samples: int = 0
    answered: int = 0
    failed: list = field(default_factory=list)        # sample indices never answered
    predictions: np.ndarray | None = None
    scores: np.ndarray | None = None
    errors: Counter = field(default_factory=Counter)  # error code -> count
    retries: int = 0
    late: int = 0
    bad_frames: int = 0
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
    a sample answered with an error, or not within the client's timeout, is sent again, at
    most ``retries`` times.
    """
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 64:
        raise ValueError(f"window must be an int in 1..64, not {window!r}")
    x = np.asarray(x)
    n = len(x)
    stats = RunStats(samples=n)
    stats.predictions = np.full(n, -1, dtype=np.int64)
    stats.scores = np.zeros((n, codec.artifact.classes), dtype=np.int64)
    payloads = [codec.pack(x[i]) for i in range(n)]
    todo = deque(range(n))
    attempts = Counter()
    pending = {}  # seq -> (index, deadline)
    start = client.transport.now()
    tr = client.transport
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
            if frame.type == P.Response.ERROR:
                stats.errors[frame.error] += 1
            entry = pending.pop(frame.seq, None)
            if entry is None:
                if frame.type != P.Response.ERROR:
                    stats.late += 1
            elif frame.type == P.Response.RESULT:
                i = entry[0]
                stats.predictions[i], stats.scores[i] = codec.unpack(frame.payload)
                stats.answered += 1
                if progress:
                    progress(1)
            else:
                _retry(entry[0], attempts, retries, todo, stats, progress)
        now = tr.now()
        for seq in [s for s, (_, d) in pending.items() if d <= now]:
            i, _ = pending.pop(seq)
            _retry(i, attempts, retries, todo, stats, progress)
    stats.seconds = tr.now() - start
    stats.bad_frames = client.bad_frames
    return stats


def _retry(i, attempts, retries, todo, stats, progress):
    if attempts[i] <= retries:
        stats.retries += 1
        todo.appendleft(i)
    else:
        stats.failed.append(i)
        if progress:
            progress(1)


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
    lines = [f"{'samples':<28} {n}",
             f"{'answered':<28} {stats.answered}"
             + (f" ({len(stats.failed)} never answered)" if stats.failed else "")]
    if n:
        lines.append(f"{'board accuracy':<28} {100 * stats.correct / n:.2f} %")
        lines.append(f"{'golden model accuracy':<28} {100 * stats.golden_correct / n:.2f} %")
    lines.append(f"{'mismatches vs golden':<28} {len(stats.mismatches)}")
    errs = ", ".join(f"{getattr(k, 'name', k)}: {v}" for k, v in sorted(
        stats.errors.items(), key=lambda kv: str(kv[0]))) or "none"
    lines.append(f"{'link errors':<28} {errs} (retries {stats.retries}, bad frames "
                 f"{stats.bad_frames})")
    lines.append(f"{'inferences/s (end to end)':<28} {stats.inferences_per_s:,.1f}")
    if info is not None:
        fold = ",".join(f"{s}x{p}" for s, p in info.folding)
        lines.append(f"{'board':<28} {info.clock_hz / 1e6:g} MHz, folding {fold}, "
                     f"{info.baud:,.0f} baud")
    for i, what, exp, got in stats.mismatches[:5]:
        lines.append(f"  mismatch: sample {i} {what}: golden {exp}, board {got}")
    return "\n".join(lines)


class Run:
    """``bitspike run``: stream a dataset to a board over its serial port."""

    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="the artifact the board was built from")
        p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
        p.add_argument("--baud", type=int, default=3_000_000,
                       help="UART rate of the bitstream (default 3000000)")
        p.add_argument("--dataset", default="digits", help="dataset name (default digits)")
        p.add_argument("--root", default=None, help="dataset root for file-based datasets")
        p.add_argument("--split", default="test", choices=["train", "test"])
        p.add_argument("--limit", type=int, default=None, help="send the first LIMIT samples")
        p.add_argument("--window", type=int, default=4,
                       help="requests outstanding at once (default 4)")
        p.add_argument("--timeout", type=float, default=1.0,
                       help="seconds to wait for an answer before sending again")
        p.add_argument("--no-reset", action="store_true",
                       help="do not reset the board before streaming")

    @staticmethod
    def run(args) -> int:
        from tqdm import tqdm

        from bitstreams.top import artifact_digest
        from sw.artifact import ArtifactError, load_artifact
        from sw.cli_artifact import dataset_inputs

        try:
            artifact = load_artifact(args.artifact)
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        x, y = dataset_inputs(artifact, args.dataset, args.split, args.root)
        if args.limit is not None:
            x, y = x[:args.limit], y[:args.limit]
        try:
            transport = SerialTransport(args.port, args.baud)
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # pyserial's SerialException is an OSError
            print(f"error: cannot open {args.port}: {exc}", file=sys.stderr)
            return 2
        client = BoardClient(transport, timeout=args.timeout)

        async def session():
            if not args.no_reset:
                await client.reset()
            info = await client.info()
            codec = SampleCodec(artifact, info.lanes)
            codec.check_info(info, artifact_digest(artifact))
            with tqdm(total=len(x), desc="board", unit="sample", file=sys.stderr) as bar:
                stats = await run_samples(client, codec, x, window=args.window,
                                          progress=bar.update)
            return info, stats

        try:
            info, stats = asyncio.run(session())
        except BoardError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            transport.close()
        check_board(stats, artifact, x, y)
        print(f"board run: {artifact.summary()} on {args.dataset}/{args.split}")
        print(results_table(stats, info))
        return 0 if stats.ok else 1
