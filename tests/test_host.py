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
import json
import re
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from bitspike.cli import main as cli_main
from bitstreams import protocol as P
from bitstreams.host import (
    DESCRIPTION_FILE,
    BoardClient,
    BoardError,
    SampleCodec,
    SerialTransport,
    check_board,
    codec_for,
    results_table,
    run_samples,
)
from sim.description import Description
from sw.artifact import manifest_digest, write_artifact
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_inputs

# -- the board's side, written from docs/bitstreams.md alone ---------------------------------
# The fake board decodes requests and encodes answers with its own code (frame format, CRC,
# beat packing, result and INFO layouts as the docs state them), never with bitstreams.protocol
# or the client's codec, so that a bug in either cannot cancel out.

_REQUEST_SYNC, _RESPONSE_SYNC = 0xA5, 0x5A
_INFER, _INFO, _RESET = 0x01, 0x02, 0x03
_RESULT, _INFO_ANSWER, _RESET_DONE, _ERROR = 0x81, 0x82, 0x83, 0xEE
_BUSY = 5


def _doc_crc(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE bit by bit: polynomial 0x1021, initial 0xFFFF, MSB first."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _doc_frame(sync: int, type_: int, seq: int, payload: bytes = b"") -> bytes:
    """SYNC TYPE SEQ LEN_LO LEN_HI PAYLOAD CRC_HI CRC_LO."""
    body = bytes([type_, seq, len(payload) & 0xFF, len(payload) >> 8]) + payload
    crc = _doc_crc(body)
    return bytes([sync]) + body + bytes([crc >> 8, crc & 0xFF])


def _doc_frames(buf: bytearray):
    """Complete request frames at the front of ``buf`` (consumed): ``(type, seq, payload)``;
    bytes outside a frame and frames whose CRC fails are skipped."""
    while True:
        start = buf.find(_REQUEST_SYNC)
        if start < 0:
            buf.clear()
            return
        del buf[:start]
        if len(buf) < 5:
            return
        length = buf[3] | buf[4] << 8
        if len(buf) < 7 + length:
            return
        raw = bytes(buf[:7 + length])
        if _doc_crc(raw[1:]) != 0:
            del buf[:1]
            continue
        del buf[:7 + length]
        yield raw[1], raw[2], raw[5:5 + length]


class FakeBoard:
    """Test fixture: the board's protocol in Python; answers from the golden model.

    ``faults`` maps the index of a received INFER request (0, 1, ...) to "drop", "corrupt",
    "busy" or "wrong".
    """

    def __init__(self, artifact, lanes, faults=None):
        a = artifact
        self.golden = GoldenModel(artifact)
        self.artifact = artifact
        self.lanes = lanes
        self.faults = dict(faults or {})
        self.infers = 0
        self._buf = bytearray()
        self._cache = {}
        # docs/hardware.md: beats of `lanes` unsigned `bits`-bit values, value k at bit k*bits;
        # a row is ceil(N / lanes) beats; docs/bitstreams.md: each beat little endian in
        # ceil(lanes * bits / 8) bytes.
        self.bits = a.input.bits
        self.per_row = -(-a.inputs // lanes)
        self.rows = 1 if a.input.kind == "multibit" else a.time_steps
        self.beat_bytes = -(-lanes * self.bits // 8)
        self.beats = self.rows * self.per_row
        self.sample_bytes = self.beats * self.beat_bytes
        # RESULT: prediction (unsigned, max(1, ceil_log2(classes)) bits), then every class's
        # signed score of score.width bits, little endian in ceil(width / 8) bytes.
        self.prediction_bits = max(1, (a.classes - 1).bit_length())
        self.score_bits = a.readout.score.width
        self.result_bytes = -(-(self.prediction_bits + a.classes * self.score_bits) // 8)
        # INFO payload, the layout of bitstreams.protocol.DeviceInfo's docstring.
        self.info_bytes = struct.pack(
            "<BBHHHHHIIBB8s", 2, len(a.layers), self.sample_bytes, self.result_bytes,
            self.beats, self.beat_bytes, lanes, 48_000_000, 16, 0, 0, manifest_digest(a).digest[:8]
        ) + b"".join(struct.pack("<HH", 1, 1) for _ in a.layers)
        self.info = P.DeviceInfo.from_bytes(self.info_bytes)

    def _sample(self, payload: bytes) -> np.ndarray:
        values = []
        for b in range(self.beats):
            beat = int.from_bytes(payload[b * self.beat_bytes:(b + 1) * self.beat_bytes],
                                  "little")
            mask = (1 << self.bits) - 1
            values += [(beat >> (k * self.bits)) & mask for k in range(self.lanes)]
        rows = np.array(values).reshape(self.rows, self.per_row * self.lanes)
        return rows[:, :self.artifact.inputs].reshape(self.artifact.input_shape())

    def _result(self, prediction: int, scores) -> bytes:
        word = prediction
        mask = (1 << self.score_bits) - 1
        for k, score in enumerate(scores):
            word |= (int(score) & mask) << (self.prediction_bits + k * self.score_bits)
        return word.to_bytes(self.result_bytes, "little")

    def answers(self, data: bytes) -> list[bytes]:
        """The answer frames to the requests completed by ``data``, one bytes object each."""
        self._buf += data
        out = []
        for type_, seq, payload in _doc_frames(self._buf):
            if type_ == _INFO:
                out.append(_doc_frame(_RESPONSE_SYNC, _INFO_ANSWER, seq, self.info_bytes))
            elif type_ == _RESET:
                out.append(_doc_frame(_RESPONSE_SYNC, _RESET_DONE, seq))
            elif type_ == _INFER:
                fault = self.faults.get(self.infers)
                self.infers += 1
                if fault == "drop":
                    continue
                if fault == "busy":
                    out.append(_doc_frame(_RESPONSE_SYNC, _ERROR, seq, bytes([_BUSY])))
                    continue
                prediction, scores = self._golden(payload)
                if fault == "wrong":
                    scores[-1] += 1
                raw = bytearray(_doc_frame(_RESPONSE_SYNC, _RESULT, seq,
                                           self._result(prediction, scores)))
                if fault == "corrupt":
                    raw[6] ^= 0x01
                out.append(bytes(raw))
        return out

    def _golden(self, payload: bytes) -> tuple[int, list[int]]:
        # Cached by payload: the fuzz tests send the same samples many times.
        if payload not in self._cache:
            res = self.golden.run(self._sample(payload)[None])
            self._cache[payload] = (int(res.predictions[0]), [int(v) for v in res.scores[0]])
        prediction, scores = self._cache[payload]
        return prediction, list(scores)

    def handle(self, data: bytes) -> bytes:
        return b"".join(self.answers(data))


def _description_json(artifact, lanes) -> dict:
    """The accelerator description for ``artifact`` at ``lanes``: hw.describe, what the
    bitstream flow writes as accelerator.json."""
    import hw
    from hw.generate import describe
    from hw.testing import unused_ok

    with unused_ok():  # described, never elaborated
        acc = hw.Accelerator(artifact, None, lanes=lanes)
        desc = describe(acc, manifest_hash=manifest_digest(artifact))
        del acc
    return desc


def _description(artifact, lanes) -> Description:
    return Description.from_json(_description_json(artifact, lanes), Path("accelerator.json"))


def _codec(artifact, lanes) -> SampleCodec:
    return SampleCodec(_description(artifact, lanes))


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


def _run(board, x, codec=None, **kw):
    client = BoardClient(InProcess(board), timeout=0.01)
    codec = codec or _codec(board.artifact, board.lanes)
    stats = asyncio.run(run_samples(client, codec, x, **kw))
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

    rng = np.random.default_rng(seed)
    for kind in ("multibit", "spike"):
        artifact = random_artifact(rng, sizes=[11, 5, 3], time_steps=2, input_kind=kind)
        lanes = int(rng.integers(1, 6))
        acc = hw.Accelerator(artifact, None, lanes=lanes)
        Fragment.get(acc, None)  # elaborated, as any accelerator a description comes from
        desc = Description.from_json(hw.describe(acc), Path("accelerator.json"))
        codec = SampleCodec(desc)
        assert codec.beats == acc.beats_per_sample
        for sample in random_inputs(artifact, 5, rng):
            beats = desc.pack_input(sample)
            assert codec.pack(sample) == b"".join(
                b.to_bytes(codec.beat_bytes, "little") for b in beats)


def test_check_info_refuses_another_board(net):
    artifact, _, lanes = net
    board = FakeBoard(artifact, lanes)
    codec = _codec(artifact, lanes)
    codec.check_info(board.info, manifest_digest(artifact))  # the board's own passes
    other = random_artifact(1, sizes=[13, 6, 3], time_steps=3)
    with pytest.raises(BoardError, match=r"built from another artifact"):
        codec.check_info(board.info, manifest_digest(other))
    wrong = P.DeviceInfo(**{**board.info.__dict__, "beats": board.info.beats + 1})
    with pytest.raises(BoardError, match=r"the board reports beats = "):
        codec.check_info(wrong, manifest_digest(artifact))
    wrong = P.DeviceInfo(**{**board.info.__dict__, "lanes": board.info.lanes + 1})
    with pytest.raises(BoardError, match=r"the board reports lanes = \d+, the description "
                                         r"accelerator.json gives \d+"):
        codec.check_info(wrong, manifest_digest(artifact))


def test_validation_messages(net):
    artifact, _, lanes = net
    raw = _description_json(artifact, lanes)
    raw["input"]["lanes"] = 0
    with pytest.raises(ValueError, match=r"lanes must be between 1 and 13, not 0"):
        SampleCodec(Description.from_json(raw, Path("accelerator.json")))
    with pytest.raises(TypeError, match=r"description must be a sim.description.Description, "
                                        r"not 4"):
        SampleCodec(4)
    with pytest.raises(ValueError, match=r"timeout must be > 0 seconds, not 0"):
        BoardClient(InProcess(None), timeout=0)
    client = BoardClient(InProcess(FakeBoard(artifact, lanes)))
    with pytest.raises(ValueError, match=r"window must be an int in 1..64, not 0"):
        asyncio.run(run_samples(client, _codec(artifact, lanes), [], window=0))


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
    srv.settimeout(120)  # the command loads its dataset before it connects (slow when busy)
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


def _write_description(artifact, lanes, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DESCRIPTION_FILE
    path.write_text(json.dumps(_description_json(artifact, lanes)))
    return path


def _run_over_socket(tmp_path, monkeypatch, seed, *, extra=(), limit=30, tamper=None):
    """``bitspike run`` through pyserial (a socket:// URL) against a FakeBoard (its answers
    through ``tamper``, see Tampered); returns (exit status, stdout, stderr, board)."""
    artifact = random_artifact(seed, sizes=[64, 12, 10], time_steps=2, input_kind="multibit",
                               input_bits=5)
    write_artifact(artifact, tmp_path / "art")
    monkeypatch.chdir(tmp_path)
    other = random_artifact(seed + 1, sizes=[64, 12, 10], time_steps=2,
                            input_kind="multibit", input_bits=5)
    _write_description(other, 4, Path("build/bitstreams/aaa-other"))
    build = _write_description(artifact, 4, Path("build/bitstreams/icebreaker")).parent
    extra = [a.format(build=build) for a in extra]
    board = Tampered(artifact, 4, tamper) if tamper else FakeBoard(artifact, 4)
    ready, stop = [], threading.Event()
    thread = threading.Thread(target=_serve, args=(board, ready, stop), daemon=True)
    thread.start()
    while not ready:
        pass
    try:
        rc = cli_main(["run", str(tmp_path / "art"), "--port", f"socket://127.0.0.1:{ready[0]}",
                       "--dataset", "digits", "--limit", str(limit), *extra])
    finally:
        stop.set()
        thread.join(5)
    return rc, board


@pytest.mark.parametrize("where", ["default", "--build"])
def test_bitspike_run_over_a_socket(tmp_path, capsys, seed, monkeypatch, where):
    # The whole command, through pyserial (socket:// URL), against the Python board; the
    # payload layouts come from the build folder's accelerator.json: found under
    # build/bitstreams/ by default (beside another artifact's build), or named.
    extra = ["--build", "{build}"] if where == "--build" else []
    rc, board = _run_over_socket(tmp_path, monkeypatch, seed, extra=extra)
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, (out, captured.err[-2000:])
    assert "samples                      30" in out
    assert "mismatches vs golden         0" in out
    assert board.infers == 30


@pytest.mark.parametrize("before", [_RESET_DONE, _RESULT])
def test_noise_burst_before_the_first_answer(tmp_path, capsys, seed, monkeypatch, before):
    # Issue 11: five bytes that look like a frame header (LEN 65535) before the first answer
    # (the RESET's, or the first sample's) once cost every answer after them (0 of 20
    # answered, exit 1, "bad frames 0"). Now every sample is answered exactly, without a
    # retry, the noise is counted as bad frames, and the exit status is 0.
    noise = bytes([_RESPONSE_SYNC, _RESULT, 0x01, 0xFF, 0xFF])

    once = _tamper_once(lambda frames: noise + b"".join(frames))

    def tamper(frames):
        if frames and frames[0][1] == before or tamper.hit:
            tamper.hit = True
            return once(frames)
        return b"".join(frames)

    tamper.hit = False
    rc, board = _run_over_socket(tmp_path, monkeypatch, seed, limit=20, tamper=tamper)
    captured = capsys.readouterr()
    print(captured.out)  # the report, shown with -s (and on failure)
    out = captured.out
    assert tamper.hit
    assert rc == 0, (out, captured.err[-2000:])
    assert f"{'answered':<28} 20\n" in out
    assert "mismatches vs golden         0" in out
    assert re.search(r"\(retries 0, bad frames [1-9]\d*, late answers 0\)", out), out
    assert f"{'protocol errors':<28} 0" in out
    assert board.infers == 20


def test_bitspike_run_bad_port(tmp_path, capsys):
    artifact = random_artifact(0, sizes=[64, 4, 10], time_steps=2, input_kind="multibit",
                               input_bits=5)
    write_artifact(artifact, tmp_path / "art")
    build = _write_description(artifact, 4, tmp_path / "build").parent
    rc = cli_main(["run", str(tmp_path / "art"), "--port", str(tmp_path / "no-such-port"),
                   "--limit", "2", "--build", str(build)])
    assert rc == 2
    assert "error: cannot open" in capsys.readouterr().err


def test_bitspike_run_needs_the_description(tmp_path, capsys, monkeypatch):
    # No description: one line naming where it was looked for, before any port is opened;
    # a named one from another artifact, or a missing file: one line naming the file.
    artifact = random_artifact(0, sizes=[64, 4, 10], time_steps=2, input_kind="multibit",
                               input_bits=5)
    write_artifact(artifact, tmp_path / "art")
    monkeypatch.chdir(tmp_path)
    port = ["--port", "socket://127.0.0.1:9"]
    assert cli_main(["run", "art", *port]) == 2
    err = capsys.readouterr().err
    assert err == ("error: no build/bitstreams/*/accelerator.json was generated from art "
                   "(build the bitstream with python -m bitstreams.flow, or name its build "
                   "folder with --build)\n")
    other = random_artifact(1, sizes=[64, 4, 10], time_steps=2, input_kind="multibit",
                            input_bits=5)
    path = _write_description(other, 4, tmp_path / "b")
    assert cli_main(["run", "art", *port, "--build", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: generated from another artifact") and \
        err.count("\n") == 1
    assert cli_main(["run", "art", *port, "--build", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'none'}: no such description "
                                       f"file\n")


def test_fake_board_catches_a_codec_bug(net):
    # The fake board decodes with its own code: a codec that packs beats big endian (or
    # reads results wrongly) is caught, not cancelled out.
    artifact, x, lanes = net

    class BigEndian(SampleCodec):
        def pack(self, sample):
            good = super().pack(sample)
            n = self.beat_bytes
            return b"".join(good[k:k + n][::-1] for k in range(0, len(good), n))

    class ShiftedScores(SampleCodec):
        def unpack(self, payload):
            prediction, scores = super().unpack(payload)
            return prediction, scores[1:] + scores[:1]

    desc = _description(artifact, lanes)
    stats = _run(FakeBoard(artifact, lanes), x, codec=ShiftedScores(desc))
    assert stats.mismatches
    if lanes * artifact.input.bits > 8:  # a one-byte beat reads the same either way
        stats = _run(FakeBoard(artifact, lanes), x, codec=BigEndian(desc))
        assert stats.mismatches


_NO_AMARANTH = """
import json, sys
sys.modules["amaranth"] = None  # importing amaranth (or any amaranth.x) now raises
import numpy as np
import bitstreams.host as host
case = json.loads(open(sys.argv[1]).read())
codec = host.SampleCodec.load(case["description"])
assert codec.pack(np.array(case["sample"])).hex() == case["infer"], "INFER payload differs"
assert codec.unpack(bytes.fromhex(case["result"])) == (case["prediction"], case["scores"])
assert not [m for m in sys.modules if m.startswith("amaranth.")], "amaranth was imported"
print("ok")
"""


def test_host_client_needs_no_amaranth(tmp_path, seed):
    # bitstreams.host imports, packs a sample and unpacks a result from an accelerator.json
    # with Amaranth not importable.
    rng = np.random.default_rng(seed)
    artifact = random_artifact(rng, sizes=[13, 6, 3], time_steps=3, input_kind="spike")
    lanes = int(rng.integers(2, 6))
    path = _write_description(artifact, lanes, tmp_path / "build")
    desc = Description.load(path)
    sample = random_inputs(artifact, 1, rng)[0]
    board = FakeBoard(artifact, lanes)
    scores = [int(v) for v in rng.integers(-5, 6, size=artifact.classes)]
    case = {"description": str(path.parent), "sample": sample.tolist(),
            "infer": b"".join(b.to_bytes(board.beat_bytes, "little")
                              for b in desc.pack_input(sample)).hex(),
            "result": board._result(2, scores).hex(), "prediction": 2, "scores": scores}
    (tmp_path / "case.json").write_text(json.dumps(case))
    res = subprocess.run([sys.executable, "-c", _NO_AMARANTH, str(tmp_path / "case.json")],
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-3000:]


def test_bitspike_run_bad_artifact(tmp_path, capsys):
    rc = cli_main(["run", str(tmp_path / "missing"), "--port", "socket://127.0.0.1:9"])
    assert rc == 2
    assert "manifest.json" in capsys.readouterr().err


def test_codec_for_picks_the_description_with_the_boards_lanes(net):
    # Two builds of the same artifact (say both boards) with other input lanes: the client
    # takes the one whose lanes the board reports.
    artifact, _, lanes = net
    other = lanes + 1
    descs = [_description(artifact, other), _description(artifact, lanes)]
    info = FakeBoard(artifact, lanes).info
    assert codec_for(descs, info).lanes == lanes
    assert codec_for(descs[:1], info).lanes == other  # none fits: check_info then says so
    with pytest.raises(BoardError, match=r"the board reports lanes = "):
        codec_for(descs[:1], info).check_info(info, manifest_digest(artifact))


# -- a link that is not clean: bounded frames, the frame timeout, resync, malformed answers ----


class Tampered(FakeBoard):
    """Test fixture: a FakeBoard whose answer frames go through ``tamper(answers)`` (a list of
    frames in, bytes out) before they reach the client."""

    def __init__(self, artifact, lanes, tamper):
        super().__init__(artifact, lanes)
        self.tamper = tamper

    def handle(self, data):
        return self.tamper(self.answers(data))


def _answer(type_, seq, payload=b""):
    return _doc_frame(_RESPONSE_SYNC, type_, seq, payload)


def _tamper_once(make):
    """A tamper function that rewrites the first answer batch with ``make(frames)``, then
    passes answers through."""
    state = {"done": False}

    def tamper(frames):
        if state["done"] or not frames:
            return b"".join(frames)
        state["done"] = True
        return make(frames)

    return tamper


@pytest.mark.parametrize("length", [0xFFFF, 20])
def test_false_header_before_an_answer(net, length):
    # Noise that looks like a RESULT header: one claiming more than the board can send is
    # thrown away at once; one claiming a plausible length swallows the real answer until
    # its CRC fails, and the answer is then found from the byte after the false SYNC. No
    # answer is lost, no retry needed, the noise is counted.
    artifact, x, lanes = net
    noise = bytes([_RESPONSE_SYNC, _RESULT, 1, length & 0xFF, length >> 8])
    board = Tampered(artifact, lanes, _tamper_once(lambda frames: noise + b"".join(frames)))
    stats = _run(board, x)
    assert stats.ok and stats.retries == 0 and not stats.protocol_errors
    assert stats.bad_frames >= 1


def test_frame_timeout_drops_a_half_received_frame(net):
    # A false header (its length within bounds) arrives after the last answer it could hide
    # behind: nothing more comes, so only the frame timeout can free the answer behind it.
    artifact, x, lanes = net
    board = FakeBoard(artifact, lanes)
    codec = _codec(artifact, lanes)
    tr = InProcess(board)
    client = BoardClient(tr, timeout=1.0, frame_timeout=0.05)
    client.expect_results(codec.result_bytes)
    good = _answer(_RESULT, 7, bytes(codec.result_bytes))
    # The false header claims more bytes than the real frame after it holds.
    tr.buf = bytes([_RESPONSE_SYNC, _RESULT, 7, codec.result_bytes + 10, 0]) + good[:3]
    frame = asyncio.run(client.receive(0.01))
    assert frame is None and client.bad_frames == 0 and client.decoder.pending  # still waiting
    tr.buf = good[3:]  # the rest of the real frame: still inside the false one's length
    frame = asyncio.run(client.receive(1.0))
    assert frame == P.Frame(_RESULT, 7, bytes(codec.result_bytes))
    # Two records: the false frame dropped, then its other 4 header bytes outside a frame.
    assert client.bad_frames == 2 and not client.decoder.pending
    # Dropped once no byte came for the frame timeout, well before the answer timeout.
    assert 0.05 <= tr.clock < 0.1, tr.clock


def test_receiver_is_bounded_by_the_boards_largest_answer(net):
    artifact, _, lanes = net
    board = FakeBoard(artifact, lanes)
    client = BoardClient(InProcess(board))
    assert client.decoder.max_payload == P.INFO_MAX_BYTES  # any INFO, until one is read
    info = asyncio.run(client.info())
    assert client.decoder.max_payload == max(len(board.info_bytes), info.result_bytes, 1)
    assert client.decoder.max_payload < 0xFFFF


def _info_bytes(board, **fields):
    info = {**board.info.__dict__, **fields}
    return P.DeviceInfo(**info).to_bytes()


@pytest.mark.parametrize("payload, message", [
    (lambda b: _info_bytes(b, lanes=0), r"INFO seq 1: INFO reports lanes = 0$"),
    (lambda b: _info_bytes(b, beats=0), r"INFO seq 1: INFO reports beats = 0$"),
    (lambda b: _info_bytes(b, clocks_per_bit=0), r"INFO seq 1: INFO reports clocks_per_bit = 0"),
    (lambda b: _info_bytes(b, sample_bytes=b.sample_bytes + 1),
     r"INFO seq 1: INFO reports sample_bytes = \d+, not beats x beat_bytes = \d+ x \d+$"),
    (lambda b: _info_bytes(b, folding=((0, 1),)), r"INFO seq 1: INFO reports folding 0x1 for "
                                                  r"layer 0"),
    (lambda b: b.info_bytes[:12], r"INFO seq 1: INFO payload of 12 bytes is shorter than 30"),
    (lambda b: b.info_bytes + b"\0", r"INFO seq 1: INFO payload of \d+ bytes does not hold the "
                                     r"folding"),
])
def test_malformed_info_is_a_protocol_error(net, payload, message):
    # One line naming the frame, never a traceback from deep inside the codec.
    artifact, _, lanes = net
    board = FakeBoard(artifact, lanes)
    bad = payload(board)
    board.info_bytes = bad
    client = BoardClient(InProcess(board))
    with pytest.raises(BoardError, match=r"^protocol error: " + message) as exc:
        asyncio.run(client.info())
    assert "\n" not in str(exc.value)


def test_wrong_answer_type_to_info_is_a_protocol_error(net):
    artifact, _, lanes = net
    board = Tampered(artifact, lanes, lambda frames: b"".join(
        _answer(_RESET_DONE, 1) for _ in frames))
    with pytest.raises(BoardError, match=r"^protocol error: RESET_DONE seq 1: answers INFO seq "
                                         r"1, expected INFO$"):
        asyncio.run(BoardClient(InProcess(board)).info())


def test_info_and_reset_are_sent_again_after_an_error(net):
    artifact, _, lanes = net
    board = Tampered(artifact, lanes, _tamper_once(
        lambda frames: _answer(_ERROR, frames[0][2], bytes([1]))))  # BAD_CRC, once
    client = BoardClient(InProcess(board))
    asyncio.run(client.reset())
    assert asyncio.run(client.info()) == board.info


def _stream_with(net, make):
    """run_samples over a board whose answers to the first batch become ``make(frames)``."""
    artifact, x, lanes = net
    board = Tampered(artifact, lanes, _tamper_once(make))
    return _run(board, x, window=1)


@pytest.mark.parametrize("make, message", [
    (lambda f: _answer(_RESULT, f[0][2], f[0][5:-3]),
     r"^protocol error: RESULT seq 1: payload of \d+ bytes, expected \d+$"),
    (lambda f: _answer(_RESULT, f[0][2], f[0][5:-2] + b"\0"),
     r"^protocol error: RESULT seq 1: payload of \d+ bytes, expected \d+$"),
    (lambda f: _answer(0x42, f[0][2], b"\1\2"),
     r"^protocol error: frame type 0x42 seq 1: answers INFER seq 1 \(sample 0\), expected "
     r"RESULT$"),
    (lambda f: _answer(_INFO_ANSWER, f[0][2]),
     r"^protocol error: INFO seq 1: answers INFER seq 1 \(sample 0\), expected RESULT$"),
    (lambda f: _answer(_ERROR, f[0][2], b"\5\5"),
     r"^protocol error: ERROR seq 1: payload of 2 bytes, expected 1$"),
    (lambda f: _answer(_ERROR, f[0][2], b"\x63"),
     r"^protocol error: ERROR seq 1: unknown error code 99$"),
])
def test_malformed_result_is_reported_and_retried(net, make, message):
    stats = _stream_with(net, make)
    assert stats.ok and stats.retries == 1, stats.failed
    assert len(stats.protocol_errors) == 1
    assert re.match(message, stats.protocol_errors[0]), stats.protocol_errors
    assert stats.protocol_errors[0] in results_table(stats)


def test_unsent_and_duplicate_answers_are_protocol_errors(net):
    stats = _stream_with(net, lambda f: f[0] + f[0] + _answer(_RESULT, 200, f[0][5:-2]))
    assert stats.ok and stats.retries == 0
    assert stats.protocol_errors == ["protocol error: RESULT seq 1: a second answer to INFER "
                                     "seq 1",
                                     "protocol error: RESULT seq 200: answers a request never "
                                     "sent"]
    table = results_table(stats)
    assert f"{'protocol errors':<28} 2" in table


def test_late_answer_is_counted_not_an_error(net):
    # An answer after its request was given up (and sent again) is late, not a protocol
    # error: the board did answer that request.
    artifact, x, lanes = net
    held = []

    def tamper(frames):
        if len(held) == 0 and frames:  # the first answer: held back past the timeout
            held.append(frames[0])
            return b"".join(frames[1:])
        if len(held) == 1:  # then delivered before the next answer
            held.append(b"")
            return held[0] + b"".join(frames)
        return b"".join(frames)

    stats = _run(Tampered(artifact, lanes, tamper), x, window=1)
    assert stats.ok and stats.retries == 1 and stats.late == 1 and not stats.protocol_errors


def test_noise_report_lines(net):
    # The report adds up: answered and never-answered samples, bad frames, protocol errors.
    artifact, x, lanes = net
    board = FakeBoard(artifact, lanes, faults={k: "drop" for k in range(3)})
    stats = _run(board, x[:2], retries=2, window=1)
    table = results_table(stats)
    assert f"{'answered':<28} 1 (1 never answered: samples 0)" in table
    assert "bad frames 0, late answers 0" in table
