"""cocotb side of ``bitspike run --sim``: the host client streams a dataset to the board top.

The test ``stream_dataset``: the testbench of :mod:`bitstreams.tb_board` (clock, reset, the
simulated UART of :mod:`bitstreams.simuart`, the product's :class:`~bitstreams.host.BoardClient`)
resets the board, asks for INFO, checks it against the artifact and the description, and runs
:func:`bitstreams.host.run_samples` over every sample. It asserts nothing about the answers:
it records them (and INFO, or the client's error) in the results file, and the command line
(:mod:`bitstreams.simboard`) compares them with the golden model and prints the board report,
exactly as it does for a real board. Progress (samples done) goes to a second file, written
atomically so that the command line never reads half a number. The test ``benchmark`` runs
:func:`bitstreams.host.run_benchmark` instead (``bitspike run --sim --benchmark N``).
"""

from __future__ import annotations

import time

import cocotb

from bitstreams.host import BenchCapacityError, BoardError, run_benchmark, run_samples
from bitstreams.tb_board import BoardTB
from sw.atomic import atomic_write_json, atomic_write_text


@cocotb.test()
async def stream_dataset(dut):
    tb = BoardTB(dut)
    progress_path = tb.params["progress"]
    done, last = 0, 0.0

    def progress(n):
        nonlocal done, last
        done += n
        if time.monotonic() - last > 0.2 or done == len(tb.x):  # a few writes a second
            last = time.monotonic()
            atomic_write_text(progress_path, str(done))

    try:
        info, codec = await tb.open()
        stats = await run_samples(tb.client, codec, tb.x, window=tb.params["window"],
                                  progress=progress)
    except BoardError as exc:  # the board's own failure: reported like a real board's
        atomic_write_json(tb.params["results"], {"error": str(exc)})
        return
    atomic_write_json(tb.params["results"], {
        "info": info.to_bytes().hex(), "samples": stats.samples, "answered": stats.answered,
        "failed": stats.failed, "predictions": stats.predictions.tolist(),
        "scores": stats.scores.tolist(),
        "errors": [[int(k), v] for k, v in stats.errors.items()], "retries": stats.retries,
        "late": stats.late, "bad_frames": stats.bad_frames, "seconds": stats.seconds,
        "framing_errors": tb.transport.framing_errors})


@cocotb.test()
async def benchmark(dut):
    """``bitspike run --sim --benchmark N``: :func:`bitstreams.host.run_benchmark` on the
    samples; records the two BENCH answers (or the client's error) for the command line."""
    tb = BoardTB(dut)
    progress_path = tb.params["progress"]
    done = 0

    def progress(n):
        nonlocal done
        done += n
        atomic_write_text(progress_path, str(done))

    try:
        info, codec = await tb.open()
        stats = await run_benchmark(tb.client, codec, info, tb.x, progress=progress)
    except BoardError as exc:
        atomic_write_json(tb.params["results"],
                          {"error": str(exc), "status": 2 if isinstance(exc, BenchCapacityError)
                           else 1})
        return
    atomic_write_json(tb.params["results"], {
        "info": info.to_bytes().hex(), "samples": stats.samples,
        "first": stats.first.to_bytes().hex(), "full": stats.full.to_bytes().hex(),
        "store_seconds": stats.store_seconds})
