"""``bitspike run --sim``: a simulated board for users without one.

The board top that goes into a bitstream (:class:`bitstreams.top.LinkTop`: UART, host link,
accelerator; written without the PLL by :func:`bitstreams.boardsim.generate`) runs in Icarus or
Verilator, built for a board of the registry: its default folding, its PLL's clock and its
accelerator options, so it is the top that board would get. The host side is the client of
:mod:`bitstreams.host` (``BoardClient`` and ``run_samples``) inside the cocotb test
:mod:`bitstreams.tb_simboard`, over the simulated UART transport of :mod:`bitstreams.simuart`:
every request and answer is the same byte sequence a real board gets and sends, bit by bit on
the design's ``uart_rx``/``uart_tx`` pins.

Bytes flow: ``run_samples`` -> ``BoardClient.send`` -> ``CocotbUARTTransport.write`` (8N1 on
``uart_rx``) -> RTL UART -> host link -> accelerator -> host link -> RTL UART -> ``uart_tx``
sampled by the transport -> ``BoardClient.receive``. The cocotb process writes what
``run_samples`` measured to a results file (JSON, atomically); :func:`simulate_run` rebuilds
the :class:`~bitstreams.host.RunStats` fields from it, and ``bitspike run`` compares with the golden
model and prints the report exactly as on a board.

Only the UART's clocks per bit differ by default (``clocks_per_bit``, 4 instead of the board's
e.g. 16 at 3 Mbaud): fewer simulated cycles per byte, the same bytes. The report's baud line
then shows the simulated rate, and its inferences/s are of simulated time.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from bitstreams.boards import get_board
from bitstreams.boardsim import TOP, generate
from bitstreams.protocol import DeviceInfo, ErrorCode

__all__ = ["SIM_BUILD_ROOT", "SIM_TIMEOUT_S", "SimBoardError", "answer_timeout_s",
           "board_clock_hz", "simulate_run", "note", "simulate_command", "simulate_benchmark"]

#: Where ``bitspike run --sim`` builds (``<root>/<board>-<simulator>``); not under
#: :data:`bitstreams.boards.BUILD_ROOT`, whose descriptions a real board's run looks up.
SIM_BUILD_ROOT = Path("build/simboard")
#: Simulated seconds the client waits for an answer beyond the accelerator's latency bound (a
#: real board's default, 1 s, would be tens of millions of simulated cycles before a lost answer
#: is sent again): the request's and the answer's bytes on the simulated UART.
SIM_TIMEOUT_S = 2e-3


def answer_timeout_s(description: dict, clock_hz: float) -> float:
    """How long the simulated client waits for an answer by default: the accelerator's
    latency bound (the description's ``cycles.latency_bound``: a sample's latency with every
    slot ahead of it full, :mod:`hw.generate`) at ``clock_hz``, plus :data:`SIM_TIMEOUT_S` for
    the frames on the UART. A slow folding (the conv model on the UP5K takes 1.5 ms a sample
    at 48 MHz) so never times out an answer that is on its way."""
    return SIM_TIMEOUT_S + description["cycles"]["latency_bound"] / clock_hz


class SimBoardError(RuntimeError):
    """``bitspike run --sim`` could not give a report; ``status`` is its exit status (1: the
    simulated board did not answer as a board must, as on a real board; 2: no simulation)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def board_clock_hz(board) -> float:
    """The clock the board's PLL makes of its target (what its bitstream runs at)."""
    from bitstreams.pll import ecp5_pll, ice40_pll

    pll = ice40_pll if board.family == "ice40" else ecp5_pll
    return pll(board.oscillator_hz, board.clock_hz).f_out


def _error_code(k: int):
    try:
        return ErrorCode(k)
    except ValueError:
        return k


def simulate_run(artifact, artifact_dir, x, *, board="icebreaker", folding=None,
                 simulator=None, build_dir=None, clocks_per_bit: int = 4, window: int = 4,
                 timeout_s: float | None = None, progress=None, testcase="stream_dataset"):
    """Stream ``x`` through the simulated board top; returns ``(info, fields)``: the board's
    INFO and the :class:`bitstreams.host.RunStats` fields ``run_samples`` measured (not yet
    compared with the golden model; this module does not import the client's, which imports
    it for ``bitspike run --sim``).

    ``folding`` (a ``sw.folding.Folding``, a ``SIMDxPE,...`` string or None: the board's
    default) is the accelerator's; ``timeout_s`` (simulated seconds; None:
    :func:`answer_timeout_s`) how long the client waits for an answer before sending again.
    ``progress(n)`` is called as samples are answered (polled from the simulation's progress
    file while it runs). ``testcase="benchmark"`` runs the on-chip benchmark instead
    (:func:`bitstreams.host.run_benchmark`) and returns ``(info, data)``, the BENCH answers
    as :mod:`bitstreams.tb_simboard` recorded them (:func:`simulate_benchmark` reads them).

    Raises
    ------
    ValueError
        An unknown board, or a ``clocks_per_bit`` the UART cannot take.
    sim.runner.SimulationError
        The simulator is unusable, the build failed or the simulation crashed.
    SimBoardError
        The simulated board did not answer INFO/RESET, or reported another artifact.
    """
    from hw.plan import default_folding
    from sim.runner import SimulationError, default_simulator, run
    from sw.atomic import atomic_write_json

    board = get_board(board) if isinstance(board, str) else board
    simulator = simulator or default_simulator()
    if isinstance(folding, str):
        from sw.folding import Folding

        folding = Folding.parse(folding, artifact)
    elif folding is None:
        folding = default_folding(artifact, budget=board.budget)
    build = Path(build_dir or SIM_BUILD_ROOT / f"{board.name}-{simulator}").resolve()
    build.mkdir(parents=True, exist_ok=True)
    gen = generate(artifact, folding, build, clocks_per_bit=clocks_per_bit,
                   clock_hz=board_clock_hz(board), accelerator_options=board.accelerator,
                   bench_bytes=board.bench_bytes)
    inputs, results, progress_file = (build / "inputs.npy", build / "results.json",
                                      build / "progress")
    if timeout_s is None:
        timeout_s = answer_timeout_s(json.loads(Path(gen["description"]).read_text()),
                                     gen["clock_hz"])
    np.save(inputs, np.asarray(x))
    results.unlink(missing_ok=True)
    progress_file.unlink(missing_ok=True)
    params = {"artifact": str(Path(artifact_dir).resolve()), "inputs": str(inputs),
              "description": gen["description"], "period_ns": 1e9 / gen["clock_hz"],
              "clocks_per_bit": clocks_per_bit, "timeout": timeout_s, "window": window,
              "results": str(results), "progress": str(progress_file)}
    atomic_write_json(build / "tb_params.json", params)

    finished = threading.Event()
    failure = []

    def simulate():
        try:
            run(sources=[gen["verilog"]], toplevel=TOP, test_module="bitstreams.tb_simboard",
                testcases=[testcase], build_dir=build / "sim", simulator=simulator,
                env={"BITSPIKE_BOARD_TB": str(build / "tb_params.json")},
                log_file=build / "sim.log")
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)
        finally:
            finished.set()

    worker = threading.Thread(target=simulate, daemon=True)
    worker.start()
    shown = 0
    while not finished.wait(0.5):
        shown = _poll(progress_file, shown, progress)
    worker.join()
    if failure:
        if isinstance(failure[0], SimulationError):  # one line, and where to look
            first = str(failure[0]).splitlines()[0]
            where = "" if "log" in first else f" (log: {build / 'sim.log'})"
            raise SimulationError(first + where) from None
        raise failure[0]
    _poll(progress_file, shown, progress)
    data = json.loads(results.read_text())
    if "error" in data:
        raise SimBoardError(data["error"], data.get("status", 1))
    info = DeviceInfo.from_bytes(bytes.fromhex(data["info"]))
    if testcase == "benchmark":
        return info, data
    fields = dict(samples=data["samples"], answered=data["answered"],
                  failed=list(data["failed"]),
                  predictions=np.asarray(data["predictions"], dtype=np.int64),
                  scores=np.asarray(data["scores"], dtype=np.int64).reshape(data["samples"], -1),
                  errors=Counter({_error_code(k): v for k, v in data["errors"]}),
                  retries=data["retries"], late=data["late"],
                  # a character without its stop bit: on a real port, bytes the decoder drops
                  bad_frames=data["bad_frames"] + data["framing_errors"],
                  seconds=data["seconds"])
    return info, fields


def _poll(path: Path, shown: int, progress) -> int:
    try:
        done = int(path.read_text())
    except (OSError, ValueError):
        return shown
    if progress and done > shown:
        progress(done - shown)
    return max(done, shown)


def note(info: DeviceInfo, board, simulator: str) -> str:
    """The report's line saying what was simulated."""
    board = get_board(board) if isinstance(board, str) else board
    from bitstreams.uart import divisor_for

    real = divisor_for(info.clock_hz, board.baud)
    return (f"simulated {board.name} board top on {simulator}: UART at {info.clocks_per_bit} "
            f"clocks per bit (the board: {real}, {board.baud:,} baud), the same bytes; "
            f"inferences/s in simulated time")


def simulate_benchmark(args, artifact, x):
    """``bitspike run --sim --benchmark N``: the on-chip benchmark on the simulated board
    top; returns ``(info, fields, build, note)``: the fields of a
    :class:`bitstreams.host.BenchStats` (the CRCs not yet compared) and the simulation's
    folder (its ``accelerator.json``), or raises :class:`SimBoardError` (one line)."""
    from tqdm import tqdm

    from bitstreams.protocol import BenchResult
    from sim.runner import SimulationError, default_simulator
    from sw.folding import Folding

    simulator = args.simulator or default_simulator()
    try:
        board = get_board(args.board)
        if not board.bench_bytes:
            raise SimBoardError(f"board {board.name} has no benchmark store", 2)
        folding = None if args.folding is None else Folding.parse(args.folding, artifact)
        with tqdm(total=len(x), desc=f"storing in simulated {board.name}", unit="sample",
                  file=sys.stderr) as bar:
            info, data = simulate_run(artifact, args.artifact, x, board=board, folding=folding,
                                      simulator=simulator, build_dir=args.build,
                                      clocks_per_bit=args.clocks_per_bit,
                                      timeout_s=args.timeout, progress=bar.update,
                                      testcase="benchmark")
    except (ValueError, SimulationError) as exc:
        raise SimBoardError(str(exc), 2) from None
    build = Path(args.build or SIM_BUILD_ROOT / f"{board.name}-{simulator}")
    fields = dict(samples=data["samples"],
                  first=BenchResult.from_bytes(bytes.fromhex(data["first"])),
                  full=BenchResult.from_bytes(bytes.fromhex(data["full"])),
                  store_seconds=data["store_seconds"])
    return info, fields, build, note(info, board, simulator)


def simulate_command(args, artifact, x):
    """``bitspike run --sim`` (:class:`bitstreams.host.Run`): :func:`simulate_run` with the
    command's options and a progress bar; returns ``(info, fields, note)``, or raises
    :class:`SimBoardError` (one line)."""
    from tqdm import tqdm

    from sim.runner import SimulationError, default_simulator
    from sw.folding import Folding

    simulator = args.simulator or default_simulator()
    try:
        board = get_board(args.board)  # before the progress bar: an unknown board is one line
        folding = None if args.folding is None else Folding.parse(args.folding, artifact)
        with tqdm(total=len(x), desc=f"simulated {board.name}", unit="sample",
                  file=sys.stderr) as bar:
            info, fields = simulate_run(artifact, args.artifact, x, board=board,
                                        folding=folding,
                                        simulator=simulator, build_dir=args.build,
                                        clocks_per_bit=args.clocks_per_bit,
                                        window=args.window, timeout_s=args.timeout,
                                        progress=bar.update)
    except (ValueError, SimulationError) as exc:
        raise SimBoardError(str(exc), 2) from None
    return info, fields, note(info, board, simulator)
