"""Helpers for the pytest wrappers of the cocotb testbenches (``tests/test_sim*.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.runner import simulator_problem

__all__ = ["ROOT", "build_dir_for", "require_simulator", "SIM_PARAMS"]

ROOT = Path(__file__).resolve().parent.parent

#: Simulators to parametrize over: Icarus always; Verilator runs a representative subset
#: (its builds take ~10 s each), marked slow.
SIM_PARAMS = [pytest.param("icarus", id="icarus"),
              pytest.param("verilator", id="verilator", marks=pytest.mark.slow)]


def build_dir_for(request) -> Path:
    """``sim_build/<test id>`` under the repository: one build per case, kept for inspection
    (waves, logs) after the run."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1]).strip("_")
    path = ROOT / "sim_build" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_simulator(simulator: str) -> None:
    """Fail the calling test, saying what to install, when ``simulator`` cannot run here.

    A missing simulator is an installation error, not a reason to pass quietly.
    """
    problem = simulator_problem(simulator)
    if problem:
        pytest.fail(f"{simulator} unavailable: {problem}", pytrace=False)
