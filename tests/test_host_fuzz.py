"""Byte-level fuzz of the host client against the Python board, through a faulty line.

``FaultyLine`` sits between :class:`bitstreams.host.BoardClient` and the ``FakeBoard`` of
``test_host.py`` (which decodes requests and computes answers with its own code, from the
docs and the golden model). It keeps simulated time (3 Mbaud, 10 bits a byte) and, at random,
puts on the line: noise bursts (random bytes, and false headers), bit flips, truncated and
oversized frames, duplicated and delayed answers, dropped answers, answers to requests never
sent, corrupted requests, and a board that goes silent for good.

The property, for every case: every sample is either answered exactly as the golden model
computes it or reported as failed (``answered + failed == samples``); nothing hangs (the line
fails the case past a bound of simulated time or of reads); a line that delivered a corrupted
byte leaves bad frames counted, a clean one none; the report prints the same counts; and the
exit status (``bitspike run`` returns 0 exactly when ``RunStats.ok``) is 0 only when every
sample was answered exactly.

A CRC-16 passes one corrupted frame in 65536, which no client can tell from a good one (the
golden-model check then reports the sample as a mismatch). So that the property holds for
every case, not for all but a few in a thousand runs, the line never builds a frame the CRC
would pass by chance: false headers carry a SEQ the client never uses, a merged frame of the
wrong length is refused by its size, and after a truncated frame the line stays quiet past the
client's frame timeout (the client drops the partial frame, then resynchronises), instead of
letting the next bytes complete it into a frame with a 1-in-65536 chance of a valid CRC.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import numpy as np
import pytest
from test_host import FakeBoard, _codec, _doc_frame

from bitstreams import protocol as P
from bitstreams.host import BoardClient, check_board, results_table, run_samples
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_inputs

BYTE_S = 10 / 3e6
TIMEOUT = 0.01         # the client's answer timeout (simulated seconds)
#: Fault kinds that put a corrupted byte on the line (each leaves at least one bad frame).
CORRUPTING = {"noise", "header", "flip", "truncate", "oversize"}
#: SEQ values the client never reaches in a case (it counts up from 1; < 100 requests).
UNUSED_SEQ = range(200, 256)


class Hang(AssertionError):
    """The client went on past the case's bound of simulated time or reads."""


class FaultyLine:
    """Test fixture: a transport from a BoardClient to a FakeBoard that injects faults.

    Answers are queued with the simulated time they arrive at; ``read`` delivers those due,
    or waits (jumps the clock) for the next one, up to its timeout.
    """

    def __init__(self, board, rng, *, p_fault, silent_after, max_seconds, max_reads):
        self.board, self.rng = board, rng
        self.p_fault = p_fault
        self.silent_after = silent_after  # requests answered before the board goes silent
        self.max_seconds, self.max_reads = max_seconds, max_reads
        self.clock = 0.0
        self.quiet_until = 0.0  # nothing arrives before this (after a truncated frame)
        self.reads = 0
        self.requests = 0
        self.queue = []  # [time, order, bytes, kind]
        self.order = 0
        self.injected = Counter()   # fault kind -> times put in the queue
        self.delivered = Counter()  # fault kind -> times read by the client
        self.unsolicited = []       # SEQs of answers to requests never sent, as delivered

    def _push(self, when, data, kind=None):
        when = max(when, self.quiet_until)
        self.order += 1
        self.queue.append([when, self.order, bytes(data), kind])
        if kind:
            self.injected[kind] += 1

    def _noise(self):
        n = int(self.rng.integers(1, 24))
        return self.rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()

    def _header(self):
        # Noise that looks like the start of an answer: a known type, an unused SEQ, and a
        # length anywhere from plausible to impossible.
        type_ = int(self.rng.choice([0x81, 0x82, 0x83, 0xEE]))
        length = int(self.rng.choice([0, 1, self.board.result_bytes,
                                      int(self.rng.integers(0, 64)), 0xFFFF]))
        seq = int(self.rng.choice(UNUSED_SEQ))
        return bytes([P.RESPONSE_SYNC, type_, seq, length & 0xFF, length >> 8])

    async def write(self, data):
        self.clock += len(data) * BYTE_S
        self.requests += 1
        data = bytearray(data)
        if self.rng.random() < self.p_fault / 4:  # a corrupted request: the board drops it
            k = int(self.rng.integers(len(data)))
            data[k] ^= 1 << int(self.rng.integers(8))
            self.injected["request"] += 1
        answers = self.board.answers(bytes(data))
        if self.silent_after is not None and self.requests > self.silent_after:
            self.injected["silent"] += len(answers)
            return
        when = self.clock
        for frame in answers:
            when += len(frame) * BYTE_S
            self._answer(when, frame)

    def _answer(self, when, frame):
        rng = self.rng
        if rng.random() >= self.p_fault:
            self._push(when, frame)
            return
        kind = str(rng.choice(["noise", "header", "flip", "truncate", "oversize", "duplicate",
                               "delay", "drop", "unsolicited"]))
        if kind == "noise":
            self._push(when, self._noise(), kind)
            self._push(when, frame)
        elif kind == "header":
            self._push(when, self._header() + self._noise()[:int(rng.integers(0, 4))], kind)
            self._push(when, frame)
        elif kind == "flip":
            raw = bytearray(frame)
            raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
            self._push(when, raw, kind)
        elif kind == "truncate":
            self._push(when, frame[:int(rng.integers(1, len(frame)))], kind)
            # past the client's frame timeout (TIMEOUT / 4) before the next byte: see above
            self.quiet_until = max(self.quiet_until, when) + TIMEOUT / 2
            for q in self.queue:  # bytes already queued (delayed answers) wait too
                if when < q[0] < self.quiet_until:
                    q[0] = self.quiet_until
        elif kind == "oversize":  # a frame claiming more than any answer, its bytes after it
            raw = bytearray(frame)
            raw[3], raw[4] = 0xFF, 0xFF
            self._push(when, raw, kind)
        elif kind == "duplicate":
            self._push(when, frame)
            self._push(when + float(rng.uniform(0, 2 * TIMEOUT)), frame, kind)
        elif kind == "delay":  # sometimes past the client's timeout (then a late answer)
            self._push(when + float(rng.uniform(0, 3 * TIMEOUT)), frame, kind)
        elif kind == "drop":
            self.injected[kind] += 1
        else:  # a well-formed RESULT for a SEQ never sent
            seq = int(rng.choice(UNUSED_SEQ))
            payload = bytes(int(b) for b in rng.integers(0, 256, self.board.result_bytes))
            self._push(when, _doc_frame(P.RESPONSE_SYNC, 0x81, seq, payload), kind)
            self._push(when, frame)

    async def read(self, timeout):
        self.reads += 1
        if self.reads > self.max_reads or self.clock > self.max_seconds:
            raise Hang(f"still reading after {self.reads} reads, {self.clock:.3f} s simulated")
        due = [q for q in self.queue if q[0] <= self.clock]
        if not due:
            later = [q[0] for q in self.queue if q[0] <= self.clock + timeout]
            if not later:
                self.clock += timeout
                return b""
            self.clock = min(later)
            due = [q for q in self.queue if q[0] <= self.clock]
        due.sort(key=lambda q: (q[0], q[1]))
        for q in due:
            self.queue.remove(q)
            if q[3]:
                self.delivered[q[3]] += 1
            if q[3] == "unsolicited":
                self.unsolicited.append(q[2][2])
        data = b"".join(q[2] for q in due)
        self.clock += len(data) * BYTE_S
        return data

    def now(self):
        return self.clock


def _report_counts(table: str) -> tuple[int, int, int]:
    """(answered, never answered, bad frames) as the report prints them."""
    m = re.search(r"^answered +(\d+)(?: \((\d+) never answered: samples [\d, .]+\))?$", table,
                  re.M)
    bad = re.search(r"bad frames (\d+)", table)
    assert m and bad, table
    return int(m[1]), int(m[2] or 0), int(bad[1])


def _case(artifact, lanes, codec, x, golden, rng, case):
    """One fuzz case; returns its stats and line. Raises AssertionError naming the case."""
    silent = rng.random() < 0.1
    p_fault = float(rng.choice([0.0, 0.05, 0.2, 0.5]))
    window = int(rng.integers(1, 5))
    retries = 2
    board = FakeBoard(artifact, lanes)
    board._cache = golden  # shared across cases: the same samples, the same answers
    n = len(x)
    # The longest a case may take: every attempt waits out its timeout, one at a time.
    bound = n * (retries + 1) * (TIMEOUT + 0.002) + 0.1
    line = FaultyLine(board, rng, p_fault=p_fault,
                      silent_after=int(rng.integers(0, n)) if silent else None,
                      max_seconds=bound, max_reads=200 * n * (retries + 1))
    client = BoardClient(line, timeout=TIMEOUT)
    where = f"case {case} (p_fault {p_fault}, window {window}, silent {silent})"
    stats = asyncio.run(run_samples(client, codec, x, window=window, retries=retries))
    check_board(stats, artifact, x)
    expected = GoldenModel(artifact).run(x)
    answered = np.flatnonzero(stats.predictions >= 0)
    assert stats.answered + len(stats.failed) == n, where
    assert sorted(set(stats.failed)) == sorted(stats.failed), where
    assert set(answered.tolist()).isdisjoint(stats.failed), where
    assert not stats.mismatches, f"{where}: a wrong answer was accepted: {stats.mismatches}"
    assert np.array_equal(stats.predictions[answered], expected.predictions[answered]), where
    assert np.array_equal(stats.scores[answered], expected.scores[answered]), where
    corrupted = sum(line.delivered[k] for k in CORRUPTING)
    if corrupted:
        assert stats.bad_frames >= 1, f"{where}: {dict(line.delivered)} left no bad frame"
    else:
        assert stats.bad_frames == 0, f"{where}: {stats.bad_frames} bad frames on a clean line"
    for seq in line.unsolicited:
        assert any(f"seq {seq}: answers a request never sent" in m
                   for m in stats.protocol_errors), f"{where}: {stats.protocol_errors}"
    if not (line.delivered["duplicate"] or line.unsolicited or corrupted):
        assert not stats.protocol_errors, f"{where}: {stats.protocol_errors}"
    table = results_table(stats)
    assert _report_counts(table) == (stats.answered, len(stats.failed), stats.bad_frames), \
        f"{where}: {table}"
    exit_status = 0 if stats.ok else 1  # Run.run's
    assert (exit_status == 0) == (stats.answered == n and not stats.mismatches), where
    assert stats.seconds <= bound, where
    return stats, line


def test_client_survives_a_faulty_line(seed):
    rng = np.random.default_rng(seed)
    cases = 0
    outcomes = Counter()
    for _ in range(4):
        artifact = random_artifact(rng, sizes=[13, 6, 3], time_steps=int(rng.integers(1, 4)),
                                   input_kind=str(rng.choice(["multibit", "spike"])))
        lanes = int(rng.integers(1, 6))
        codec = _codec(artifact, lanes)
        x = random_inputs(artifact, 10, rng)
        golden = {}
        for _case_in_net in range(150):
            stats, line = _case(artifact, lanes, codec, x, golden, rng, cases)
            cases += 1
            outcomes["ok" if stats.ok else "failed samples"] += 1
            outcomes["bad frames"] += stats.bad_frames
            outcomes["protocol errors"] += len(stats.protocol_errors)
            outcomes["late"] += stats.late
            outcomes.update({f"fault {k}": v for k, v in line.delivered.items()})
    print(f"{cases} cases, 0 hangs, 0 wrong answers accepted; {dict(outcomes)}")
    # The cases must have exercised both endings and every fault (else the property is idle).
    assert outcomes["ok"] and outcomes["failed samples"], (cases, outcomes)
    assert all(outcomes[f"fault {k}"] for k in CORRUPTING | {"duplicate", "delay",
                                                             "unsolicited"}), outcomes
    assert cases == 600, cases


def test_fuzz_catches_a_client_that_takes_any_seq(seed, monkeypatch):
    # The test of the test: a client that takes an answer to a SEQ it never sent as the
    # answer to an outstanding request accepts wrong answers, and the fuzz says so.
    import bitstreams.host as host

    rng = np.random.default_rng(seed)
    artifact = random_artifact(rng, sizes=[13, 6, 3], time_steps=2)
    lanes = int(rng.integers(1, 6))
    codec = _codec(artifact, lanes)
    x = random_inputs(artifact, 10, rng)
    real_receive = host.BoardClient.receive

    async def receive(self, timeout):
        frame = await real_receive(self, timeout)
        if frame is not None and frame.seq in UNUSED_SEQ:
            return P.Frame(frame.type, self._seq, frame.payload)  # the newest request's
        return frame

    monkeypatch.setattr(host.BoardClient, "receive", receive)
    caught = 0
    for case in range(200):
        try:
            _case(artifact, lanes, codec, x, {}, rng, case)
        except AssertionError:
            caught += 1
    assert caught, "200 cases with a client that takes any SEQ passed"


@pytest.mark.slow
def test_board_rtl_survives_line_noise(request, seed, monkeypatch):
    # The same property on the board top's RTL (cocotb, Icarus): bitstreams.tb_board's
    # survives_line_noise puts faults on both directions of the simulated UART.
    from bitstreams.boardsim import simulate
    from sim.testing import build_dir_for, require_simulator
    from sw.artifact import write_artifact
    from sw.data import load_dataset
    from sw.folding import Folding

    require_simulator("icarus")
    artifact = random_artifact(np.random.default_rng(seed), sizes=[64, 12, 10], time_steps=3,
                               input_kind="multibit", input_bits=5)
    build = build_dir_for(request)
    write_artifact(artifact, build / "artifact", overwrite=True)
    x = load_dataset("digits").test.flat()[:12]
    monkeypatch.setenv("BITSPIKE_LINE_NOISE_SEED", str(seed))
    results = simulate(artifact, build / "artifact", x, build_dir=build,
                       folding=Folding.parse("16x4,4x5", artifact),
                       testcases=("survives_line_noise",), simulator="icarus",
                       timeout_s=150e-6)
    res = results["survives_line_noise"]
    cases = res["cases"]
    print(f"{len(cases)} RTL cases, 0 hangs, 0 wrong answers accepted: {cases}")
    assert len(cases) == 4 and res["clean_after"], res
    assert sum(c["answered"] + len(c["failed"]) for c in cases) == len(x), cases
    assert any(c["faults"] for c in cases), cases  # the line did put faults on
