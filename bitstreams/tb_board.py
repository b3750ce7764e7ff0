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
from bitstreams.host import BoardClient, SampleCodec, check_board, run_samples
from bitstreams.simuart import CocotbUARTTransport
from sw.artifact import load_artifact, manifest_digest

PARAMS_ENV = "BITSPIKE_BOARD_TB"


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
