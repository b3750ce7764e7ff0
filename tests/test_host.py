# amaranth: UnusedElaboratable=no
"""The host client against a Python stand-in of a board (fast), and ``bitspike run`` over a
socket through pyserial.

``FakeBoard`` below is a test fixture: the board's side of the protocol written in Python, its
answers computed by the golden model, with faults injected on purpose (a dropped answer, a
corrupted answer, a BUSY refusal, a wrong score). The RTL of the real board top is driven by
the same client in ``test_bitstream_board.py``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from bitspike.cli import main as cli_main
from bitstreams import protocol as P
from bitstreams.host import (
    BoardClient,
    BoardError,
    SampleCodec,
    SerialTransport,
    check_board,
    results_table,
    run_samples,
)
from bitstreams.top import artifact_digest
from sw.artifact import write_artifact
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_inputs


class FakeBoard:
    """Test fixture: the board's protocol in Python; answers from the golden model.

    ``faults`` maps the index of a received INFER request (0, 1, ...) to "drop", "corrupt",
    "busy" or "wrong".
    """

    def __init__(self, artifact, lanes, faults=None):
        self.codec = SampleCodec(artifact, lanes)
        self.golden = GoldenModel(artifact)
        self.artifact = artifact
        self.faults = dict(faults or {})
        self.decoder = P.FrameDecoder(sync=P.REQUEST_SYNC, max_payload=self.codec.sample_bytes)
        self.infers = 0
        self.info = P.DeviceInfo(
            version=P.PROTOCOL_VERSION, sample_bytes=self.codec.sample_bytes,
            result_bytes=self.codec.result_bytes, beats=self.codec.beats,
            beat_bytes=self.codec.beat_bytes, lanes=lanes, clock_hz=48_000_000,
            clocks_per_bit=16, artifact_hash=artifact_digest(artifact)[:8],
            folding=tuple((1, 1) for _ in artifact.layers))

    def _sample(self, payload: bytes) -> np.ndarray:
        c = self.codec
        values = []
        for b in range(c.beats):
            beat = int.from_bytes(payload[b * c.beat_bytes:(b + 1) * c.beat_bytes], "little")
            values += c.in_layout.unpack(beat)[c.field]
        rows = np.array(values).reshape(c.rows, c.per_row * c.lanes)[:, :self.artifact.inputs]
        return rows.reshape(self.artifact.input_shape())

    def handle(self, data: bytes) -> bytes:
        out = b""
        for frame in self.decoder.feed(data):
            if not isinstance(frame, P.Frame):
                continue
            if frame.type == P.Request.INFO:
                out += P.encode_frame(P.Response.INFO, frame.seq, self.info.to_bytes(),
                                      sync=P.RESPONSE_SYNC)
            elif frame.type == P.Request.RESET:
                out += P.encode_frame(P.Response.RESET_DONE, frame.seq, sync=P.RESPONSE_SYNC)
            elif frame.type == P.Request.INFER:
                fault = self.faults.get(self.infers)
                self.infers += 1
                if fault == "drop":
                    continue
                if fault == "busy":
                    out += P.encode_frame(P.Response.ERROR, frame.seq,
                                          P.error_payload(P.ErrorCode.BUSY),
                                          sync=P.RESPONSE_SYNC)
                    continue
                res = self.golden.run(self._sample(frame.payload)[None])
                scores = [int(v) for v in res.scores[0]]
                if fault == "wrong":
                    scores[-1] += 1
                word = self.codec.out_layout.pack({"prediction": int(res.predictions[0]),
                                                   "scores": scores})
                raw = bytearray(P.encode_frame(P.Response.RESULT, frame.seq,
                                               word.to_bytes(self.codec.result_bytes, "little"),
                                               sync=P.RESPONSE_SYNC))
                if fault == "corrupt":
                    raw[6] ^= 0x01
                out += bytes(raw)
        return out


class InProcess:
    """Test fixture: a transport straight into a FakeBoard, with a clock that runs at 3 Mbaud
    (10 bits per byte) and jumps forward on a read that times out."""

    def __init__(self, board):
        self.board = board
        self.buf = b""
        self.clock = 0.0

    async def write(self, data):
        self.clock += len(data) * 10 / 3e6
        self.buf += self.board.handle(data)

    async def read(self, timeout):
        if not self.buf:
            self.clock += timeout
            return b""
        data, self.buf = self.buf, b""
        self.clock += len(data) * 10 / 3e6
        return data

    def now(self):
        return self.clock


@pytest.fixture
def net(seed):
    rng = np.random.default_rng(seed)
    artifact = random_artifact(rng, sizes=[13, 6, 3], time_steps=3)
    x = random_inputs(artifact, 12, rng)
    return artifact, x, int(rng.integers(1, 6))


def _run(board, x, **kw):
    client = BoardClient(InProcess(board), timeout=0.01)
    stats = asyncio.run(run_samples(client, board.codec, x, **kw))
    return check_board(stats, board.artifact, x)


def test_every_answer_checked_exactly(net):
    artifact, x, lanes = net
    stats = _run(FakeBoard(artifact, lanes), x, window=4)
    golden = GoldenModel(artifact).run(x)
    assert stats.ok and stats.answered == len(x)
    assert np.array_equal(stats.predictions, golden.predictions)
    assert np.array_equal(stats.scores, golden.scores)
    assert stats.inferences_per_s > 0
    assert "mismatches vs golden         0" in results_table(stats)


def test_faults_are_retried(net):
    artifact, x, lanes = net
    board = FakeBoard(artifact, lanes, faults={1: "drop", 3: "corrupt", 5: "busy"})
    stats = _run(board, x, window=3)
    assert stats.ok, (stats.failed, stats.mismatches)
    assert stats.retries == 3
    assert stats.errors == {P.ErrorCode.BUSY: 1}
    assert stats.bad_frames >= 1


def test_wrong_answer_is_a_mismatch(net):
    # The test of the test: one score off by one must be reported, with the sample.
    artifact, x, lanes = net
    stats = _run(FakeBoard(artifact, lanes, faults={2: "wrong"}), x)
    assert not stats.ok
    assert len(stats.mismatches) == 1
    index, what, expected, got = stats.mismatches[0]
    assert index == 2 and what == f"scores[{artifact.classes - 1}]" and got == expected + 1


def test_unanswered_sample_fails(net):
    artifact, x, lanes = net
    board = FakeBoard(artifact, lanes, faults={k: "drop" for k in range(3)})
    stats = _run(board, x[:1], retries=2)
    assert stats.failed == [0] and not stats.ok


def test_codec_matches_the_hardware_description(seed):
    # The client packs beats exactly as the accelerator's generator describes them.
    from amaranth.hdl import Fragment

    import hw
    from sim.description import Description

    rng = np.random.default_rng(seed)
    for kind in ("multibit", "spike"):
        artifact = random_artifact(rng, sizes=[11, 5, 3], time_steps=2, input_kind=kind)
        lanes = int(rng.integers(1, 6))
        acc = hw.Accelerator(artifact, None, lanes=lanes)
        Fragment.get(acc, None)  # elaborated, as any accelerator a description comes from
        desc = Description.from_json(hw.describe(acc), Path("accelerator.json"))
        codec = SampleCodec(artifact, lanes)
        assert codec.beats == acc.beats_per_sample
        for sample in random_inputs(artifact, 5, rng):
            beats = desc.pack_input(sample)
            assert codec.pack(sample) == b"".join(
                b.to_bytes(codec.beat_bytes, "little") for b in beats)


def test_check_info_refuses_another_board(net):
    artifact, _, lanes = net
    board = FakeBoard(artifact, lanes)
    codec = board.codec
    other = random_artifact(1, sizes=[13, 6, 3], time_steps=3)
    with pytest.raises(BoardError, match=r"built from another artifact"):
        codec.check_info(board.info, artifact_digest(other))
    wrong = P.DeviceInfo(**{**board.info.__dict__, "beats": board.info.beats + 1})
    with pytest.raises(BoardError, match=r"the board reports beats = "):
        codec.check_info(wrong, artifact_digest(artifact))


def test_validation_messages(net):
    artifact, _, lanes = net
    with pytest.raises(ValueError, match=r"lanes must be a positive int, not 0"):
        SampleCodec(artifact, 0)
    with pytest.raises(ValueError, match=r"timeout must be > 0 seconds, not 0"):
        BoardClient(InProcess(None), timeout=0)
    client = BoardClient(InProcess(FakeBoard(artifact, lanes)))
    with pytest.raises(ValueError, match=r"window must be an int in 1..64, not 0"):
        asyncio.run(run_samples(client, SampleCodec(artifact, lanes), [], window=0))


def test_silent_board_is_an_error(net):
    artifact, _, lanes = net

    class Silent(FakeBoard):
        def handle(self, data):
            return b""

    client = BoardClient(InProcess(Silent(artifact, lanes)), timeout=0.05)
    with pytest.raises(BoardError, match=r"no answer to INFO within 0.05 s"):
        asyncio.run(client.info())


def test_serial_transport_needs_pyserial(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "serial", None)
    with pytest.raises(ImportError, match=r"needs pyserial: pip install 'bitspike\[board\]'"):
        SerialTransport("/dev/null")


def _serve(board, ready, stop):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)
    ready.append(srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.settimeout(0.1)
    with conn:
        while not stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                break
            conn.sendall(board.handle(data))
    srv.close()


def test_bitspike_run_over_a_socket(tmp_path, capsys, seed):
    # The whole command, through pyserial (socket:// URL), against the Python board.
    artifact = random_artifact(seed, sizes=[64, 12, 10], time_steps=2, input_kind="multibit",
                               input_bits=5)
    write_artifact(artifact, tmp_path / "art")
    board = FakeBoard(artifact, 4)
    ready, stop = [], threading.Event()
    thread = threading.Thread(target=_serve, args=(board, ready, stop), daemon=True)
    thread.start()
    while not ready:
        pass
    try:
        rc = cli_main(["run", str(tmp_path / "art"), "--port", f"socket://127.0.0.1:{ready[0]}",
                       "--dataset", "digits", "--limit", "30"])
    finally:
        stop.set()
        thread.join(5)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "samples                      30" in out
    assert "mismatches vs golden         0" in out
    assert board.infers == 30


def test_bitspike_run_bad_port(tmp_path, capsys):
    artifact = random_artifact(0, sizes=[64, 4, 10], time_steps=2, input_kind="multibit",
                               input_bits=5)
    write_artifact(artifact, tmp_path / "art")
    rc = cli_main(["run", str(tmp_path / "art"), "--port", str(tmp_path / "no-such-port"),
                   "--limit", "2"])
    assert rc == 2
    assert "error: cannot open" in capsys.readouterr().err


def test_bitspike_run_bad_artifact(tmp_path, capsys):
    rc = cli_main(["run", str(tmp_path / "missing"), "--port", "socket://127.0.0.1:9"])
    assert rc == 2
    assert "manifest.json" in capsys.readouterr().err
