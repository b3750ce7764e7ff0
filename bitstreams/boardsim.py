"""Simulate the board top's RTL with the host client driving its UART (cocotb).

:func:`generate` writes the Verilog of :class:`bitstreams.top.LinkTop` (UART + host link +
accelerator, no PLL); :func:`simulate` runs the cocotb tests of :mod:`bitstreams.tb_board` on
it through :func:`sim.runner.run` (which fails loudly when a test fails) and returns what they
recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["TOP", "TESTCASES", "generate", "simulate"]

TOP = "bitspike_board"
TESTCASES = ("answers_like_golden", "errors_are_answered")


def generate(artifact, folding=None, out_dir=".", *, clocks_per_bit: int = 4,
             clock_hz: float = 100e6, frame_timeout_s: float = 20e-6,
             accelerator_options: dict | None = None, bench_bytes: int = 0) -> dict:
    """Write ``bitspike_board.v`` (the board top without PLL, ports ``clk``, ``rst``,
    ``uart_rx``, ``uart_tx``, ``busy``, ``error``) and the accelerator's description
    (``accelerator.json``, which the host client reads), and return their parameters.
    ``bench_bytes``: the host link's benchmark store (:class:`bitstreams.top.LinkTop`)."""
    from amaranth.back import verilog

    from bitstreams.top import LinkTop, write_description
    from hw.generate import top_ports

    top = LinkTop(artifact, folding, clock_hz=clock_hz, baud=clock_hz / clocks_per_bit,
                  timeout_s=frame_timeout_s, accelerator_options=accelerator_options,
                  bench_bytes=bench_bytes)
    if top.divisor != clocks_per_bit:
        raise ValueError(f"clocks_per_bit {clocks_per_bit} gives divisor {top.divisor}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{TOP}.v"
    text = verilog.convert(top, name=TOP, ports=top_ports(top), emit_src=False)
    if not path.is_file() or path.read_text() != text:  # unchanged: the simulator's build is
        path.write_text(text)                            # reused (it compares file times)
    description = write_description(top, out)
    return {"verilog": str(path), "description": str(description), "clock_hz": clock_hz,
            "clocks_per_bit": clocks_per_bit,
            "frame_timeout_s": frame_timeout_s, "folding": str(top.folding),
            "info": top.info}


def simulate(artifact, artifact_dir, x, *, build_dir, folding=None, testcases=TESTCASES,
             simulator: str | None = None, window: int = 4, timeout_s: float = 2e-3,
             clock_hz: float = 100e6, clocks_per_bit: int = 4, waves: bool = False,
             accelerator_options: dict | None = None) -> dict:
    """Build the board top for ``artifact`` (read from ``artifact_dir``) and run ``testcases``
    on samples ``x``; returns ``{testcase: recorded results}``.

    ``clock_hz`` and ``clocks_per_bit`` set the simulated clock and UART (the defaults keep
    simulations short; a board's own, e.g. 48 MHz and 16, give its end-to-end rate in
    simulated time).

    Raises
    ------
    sim.runner.SimulationError
        A test failed (with its message), or the simulation could not run.
    """
    from sim.runner import run

    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    gen = generate(artifact, folding, build, clocks_per_bit=clocks_per_bit, clock_hz=clock_hz,
                   accelerator_options=accelerator_options)
    inputs = build / "inputs.npy"
    np.save(inputs, np.asarray(x))
    results = build / "results.json"
    results.unlink(missing_ok=True)
    params = {"artifact": str(Path(artifact_dir).resolve()), "inputs": str(inputs),
              "description": gen["description"],
              "period_ns": 1e9 / gen["clock_hz"], "clocks_per_bit": clocks_per_bit,
              "timeout": timeout_s, "window": window, "results": str(results),
              "frame_timeout_s": gen["frame_timeout_s"]}
    params_file = build / "tb_params.json"
    params_file.write_text(json.dumps(params, indent=2))
    run(sources=[gen["verilog"]], toplevel=TOP, test_module="bitstreams.tb_board",
        testcases=list(testcases), build_dir=build / "sim", simulator=simulator,
        env={"BITSPIKE_BOARD_TB": str(params_file)}, waves=waves,
        log_file=build / "sim.log")
    return json.loads(results.read_text()) if results.is_file() else {}
