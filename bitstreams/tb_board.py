"""cocotb tests of the board top (UART, host link, accelerator), driven by the host client.

The Verilog is :class:`bitstreams.top.LinkTop` (the board top without its PLL and pins);
the host side is the product's own :class:`bitstreams.host.BoardClient` with the simulated
UART transport (:mod:`bitstreams.simuart`): the code path ``bitspike run`` takes on a real
board, ending on the design's ``uart_rx``/``uart_tx`` pins. Run through
:func:`bitstreams.boardsim.simulate`; parameters come from the JSON file named by the
``BITSPIKE_BOARD_TB`` environment variable.

Tests:

* ``answers_like_golden``: RESET, INFO (the board reports this artifact's hash and sizes),
  then every sample with up to ``window`` requests in flight; every answer (class and every
  score) must equal the golden model's, and every sample must be answered.
* ``errors_are_answered``: a frame with a flipped bit (BAD_CRC), a truncated frame (TIMEOUT),
  stray bytes (NO_SYNC), an unknown type, a character without a stop bit (FRAMING): each is
  answered with its error frame within the client's timeout (never a hang), and a good sample
  sent afterwards is still computed exactly.
* ``survives_line_noise``: the host-client fuzz of ``tests/test_host_fuzz.py``, shorter, on the
  RTL: :class:`NoisyLine` puts noise, bit flips, cut and doubled bytes and deaf spells on both
  directions of the simulated UART (seed from ``BITSPIKE_LINE_NOISE_SEED``, a few cases of a
  few samples each); every sample must be answered exactly like the golden model or reported
  failed, the counts must add up, and bytes corrupted on the way to the host must leave bad
  frames counted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from bitstreams import protocol as P
from bitstreams.host import BoardClient, SampleCodec, check_board, results_table, run_samples
from bitstreams.simuart import CocotbUARTTransport
from sw.artifact import load_artifact, manifest_digest

PARAMS_ENV = "BITSPIKE_BOARD_TB"
NOISE_SEED_ENV = "BITSPIKE_LINE_NOISE_SEED"


def _params() -> dict:
    path = os.environ.get(PARAMS_ENV)
    if not path:
        raise RuntimeError(f"{PARAMS_ENV} must name the testbench's parameter file")
    return json.loads(Path(path).read_text())


class BoardTB:
    """Clock, reset, the simulated UART and a client for one test."""

    def __init__(self, dut):
        self.dut = dut
        self.params = _params()
        self.artifact = load_artifact(self.params["artifact"])
        self.x = np.load(self.params["inputs"])
        period_ps = 2 * round(self.params["period_ns"] * 500)  # even, whole picoseconds
        cocotb.start_soon(Clock(dut.clk, period_ps, unit="ps").start())
        self.transport = CocotbUARTTransport(dut.clk, dut.uart_rx, dut.uart_tx,
                                             self.params["clocks_per_bit"])
        self.client = BoardClient(self.transport, timeout=self.params["timeout"])

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 4)

    async def open(self):
        """RESET and INFO through the client; returns the codec for this board."""
        await self.reset()
        await self.client.reset()
        info = await self.client.info()
        codec = SampleCodec.load(self.params["description"])
        codec.check_info(info, manifest_digest(self.artifact))
        assert info.clocks_per_bit == self.params["clocks_per_bit"], info
        return info, codec

    def record(self, name: str, result: dict) -> None:
        path = Path(self.params["results"])
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[name] = result
        path.write_text(json.dumps(data, indent=2))


@cocotb.test()
async def answers_like_golden(dut):
    tb = BoardTB(dut)
    info, codec = await tb.open()
    stats = await run_samples(tb.client, codec, tb.x, window=tb.params["window"])
    check_board(stats, tb.artifact, tb.x)
    tb.record("answers_like_golden", {
        "samples": stats.samples, "answered": stats.answered, "failed": stats.failed,
        "mismatches": stats.mismatches, "errors": {str(k): v for k, v in stats.errors.items()},
        "retries": stats.retries, "sim_seconds": stats.seconds,
        "predictions": stats.predictions.tolist(), "scores": stats.scores.tolist(),
        "framing_errors": tb.transport.framing_errors,
    })
    assert not stats.mismatches, f"first mismatch (sample, what, golden, board): " \
                                 f"{stats.mismatches[0]}"
    assert stats.ok, f"unanswered samples {stats.failed}, errors {dict(stats.errors)}"
    assert not stats.errors and stats.retries == 0 and tb.transport.framing_errors == 0


async def _expect_error(tb, code, seq):
    frame = await tb.client.receive(tb.params["timeout"])
    assert frame is not None, f"no answer within {tb.params['timeout']} s: expected {code!r}"
    assert frame.type == P.Response.ERROR and frame.error == code and frame.seq == seq, \
        f"expected error {code!r} for seq {seq}, got {frame}"


@cocotb.test()
async def errors_are_answered(dut):
    tb = BoardTB(dut)
    info, codec = await tb.open()
    client, transport = tb.client, tb.transport
    sample = codec.pack(tb.x[0])
    quiet = tb.params["frame_timeout_s"] * 3

    bad = bytearray(P.encode_frame(P.Request.INFER, 11, sample))
    bad[P.HEADER_BYTES + len(sample) // 2] ^= 0x04
    await transport.write(bytes(bad))
    await _expect_error(tb, P.ErrorCode.BAD_CRC, 11)

    await transport.write(P.encode_frame(P.Request.INFER, 12, sample)[:P.HEADER_BYTES + 3])
    await _expect_error(tb, P.ErrorCode.TIMEOUT, 12)

    await transport.write(P.encode_frame(0x7E, 13))
    await _expect_error(tb, P.ErrorCode.UNKNOWN_TYPE, 13)

    await transport.write(b"\x00\x42\x13")
    await _expect_error(tb, P.ErrorCode.NO_SYNC, 0)
    assert await client.receive(quiet) is None, "more than one answer to a run of stray bytes"

    await transport.write(P.encode_frame(P.Request.INFER, 14, sample)[:P.HEADER_BYTES])
    await transport.write_bits([0] * 10)  # a character whose stop bit is 0
    await _expect_error(tb, P.ErrorCode.FRAMING, 14)
    await transport.write_bits([1] * 20)
    assert await client.receive(quiet) is None, "an extra answer after the framing error"

    stats = await run_samples(client, codec, tb.x[:2], window=2)
    check_board(stats, tb.artifact, tb.x[:2])
    tb.record("errors_are_answered", {"answered": stats.answered,
                                      "mismatches": stats.mismatches})
    assert stats.ok and not stats.errors, (stats.failed, stats.mismatches, stats.errors)


class NoisyLine:
    """The simulated UART transport with faults on both directions, at random.

    To the board: a flipped bit, noise before a request, a request cut short (the board then
    answers BAD_CRC, NO_SYNC, TIMEOUT, ... or nothing). To the host: noise before the bytes
    received, a flipped bit, bytes cut out, bytes doubled, and deaf spells (nothing received
    for a while: a board gone silent). ``p_fault`` is the chance per request written and per
    answer-sized stretch of bytes read.
    """

    def __init__(self, uart, rng, p_fault: float):
        self.uart, self.rng, self.p_fault = uart, rng, p_fault
        self.corrupted = 0   # reads that delivered a corrupted byte to the host
        self.faults = {}
        self._deaf_until = 0.0

    def _count(self, kind):
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def _noise(self):
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 12)))

    async def write(self, data: bytes) -> None:
        if self.rng.random() < self.p_fault:
            kind = self.rng.choice(["flip", "noise", "cut"])
            self._count(f"to board: {kind}")
            data = bytearray(data)
            if kind == "flip":
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
            elif kind == "noise":
                data[:0] = self._noise()
            else:
                data = data[:self.rng.randrange(1, len(data))]
            data = bytes(data)
        await self.uart.write(data)

    async def read(self, timeout: float) -> bytes:
        data = await self.uart.read(timeout)
        if self.now() < self._deaf_until:
            return b""  # lost on the line (the frame timeout deals with any half frame)
        # The UART hands over bytes as they come, often one per read: the chance scales with
        # the bytes, so p_fault stays the chance per answer-sized stretch (~32 bytes).
        if not data or self.rng.random() >= self.p_fault * len(data) / 32:
            return data
        kind = self.rng.choice(["noise", "flip", "cut", "double", "deaf"])
        self._count(f"to host: {kind}")
        data = bytearray(data)
        if kind == "noise":
            data[:0] = self._noise()
        elif kind == "flip":
            data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        elif kind == "cut":
            k = self.rng.randrange(len(data))
            del data[k:k + self.rng.randrange(1, 8)]
        elif kind == "double":
            data = data + data
        else:
            self._deaf_until = self.now() + self.rng.uniform(0, 1e-4)
            return b""
        if kind != "double":  # a doubled chunk is whole frames again: no bad frame needed
            self.corrupted += 1
        return bytes(data)

    def now(self) -> float:
        return self.uart.now()


@cocotb.test()
async def survives_line_noise(dut):
    import random

    from sw.golden import GoldenModel

    seed = os.environ.get(NOISE_SEED_ENV)
    if seed is None:
        raise RuntimeError(f"{NOISE_SEED_ENV} must give the fuzz seed")
    rng = random.Random(int(seed))
    tb = BoardTB(dut)
    info, codec = await tb.open()
    cases = []
    per_case = 3
    for case in range(len(tb.x) // per_case):
        x = tb.x[case * per_case:(case + 1) * per_case]
        p_fault = rng.choice([0.2, 0.4, 0.6])
        window = rng.randrange(1, 5)
        line = NoisyLine(tb.transport, rng, p_fault)
        # One client for the whole run, so SEQs keep counting up: an answer from an earlier
        # case is late, never taken for a newer request.
        tb.client.transport = line
        bad0, errors0 = tb.client.bad_frames, len(tb.client.protocol_errors)
        stats = await run_samples(tb.client, codec, x, window=window)
        check_board(stats, tb.artifact, x)
        golden = GoldenModel(tb.artifact).run(x)
        where = f"seed {seed}, case {case} (p_fault {p_fault}, window {window}, {line.faults})"
        answered = np.flatnonzero(stats.predictions >= 0)
        assert stats.answered + len(stats.failed) == len(x), where
        assert not stats.mismatches, f"{where}: a wrong answer was accepted: {stats.mismatches}"
        assert np.array_equal(stats.scores[answered], golden.scores[answered]), where
        if line.corrupted:
            assert stats.bad_frames > bad0, f"{where}: corrupted bytes left no bad frame"
        table = results_table(stats)
        assert f"{'samples':<28} {len(x)}" in table and "bad frames" in table, table
        cases.append({"p_fault": p_fault, "window": window, "faults": line.faults,
                      "answered": stats.answered, "failed": stats.failed,
                      "bad_frames": stats.bad_frames - bad0, "retries": stats.retries,
                      "late": stats.late,
                      "protocol_errors": stats.protocol_errors[errors0:],
                      "errors": {str(k): v for k, v in stats.errors.items()},
                      "sim_seconds": stats.seconds})
        tb.client.transport = tb.transport
    # After the noise, a clean line: the board still answers every sample exactly.
    stats = await run_samples(tb.client, codec, tb.x[:2], window=2)
    check_board(stats, tb.artifact, tb.x[:2])
    tb.record("survives_line_noise", {"cases": cases, "clean_after": stats.ok})
    assert stats.ok, (stats.failed, stats.mismatches, stats.errors)
