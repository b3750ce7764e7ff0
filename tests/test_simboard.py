"""``bitspike run --sim``: the board top's Verilog in a simulator, driven by the host client.

The command builds the board top a board of the registry would get (its default folding and
PLL clock), streams dataset samples through the client over the simulated UART pins, and prints
the report of a real board's run: every answer must equal the golden model's. A second run with
the golden expectation deliberately changed must be reported as a mismatch with exit status 1,
so the exact-match check above cannot pass by comparing nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from bitspike.cli import main as cli_main
from sim.testing import build_dir_for, require_simulator
from sw.artifact import write_artifact
from sw.golden import GoldenModel
from sw.randnet import random_artifact


def _small_artifact(build, seed):
    # Digits-shaped input (64 multibit values) so the digits dataset feeds it; 12 hidden
    # neurons keep the Verilog small and the simulation to seconds.
    artifact = random_artifact(np.random.default_rng(seed), sizes=[64, 12, 10], time_steps=2,
                               input_kind="multibit", input_bits=5)
    write_artifact(artifact, build / "artifact", overwrite=True)
    return artifact


def _alter_golden_score(monkeypatch, sample):
    """The golden model's score 0 of ``sample`` one step higher: what a correct board then
    disagrees with (the tests of the tests)."""
    run = GoldenModel.run

    def altered(self, x, *args, **kwargs):
        result = run(self, x, *args, **kwargs)
        result.scores[sample, 0] += 1
        return result

    monkeypatch.setattr(GoldenModel, "run", altered)


def _sim(build, *extra):
    return cli_main(["run", str(build / "artifact"), "--sim", "--build", str(build / "sim"),
                     *extra])


def test_run_sim_answers_exactly_and_reports_a_mismatch(request, seed, capsys, monkeypatch):
    # One test, two runs of the same build (the second reuses the compiled design), to keep
    # the fast suite short.
    require_simulator("icarus")
    build = build_dir_for(request)
    _small_artifact(build, seed)
    rc = _sim(build, "--simulator", "icarus", "--limit", "3")
    out, err = capsys.readouterr()
    assert rc == 0, (out, err[-3000:])
    lines = {line[:28].strip(): line[28:].strip() for line in out.splitlines()}
    assert lines["samples"] == "3" and lines["answered"] == "3", out
    assert lines["mismatches vs golden"] == "0", out
    assert lines["link errors"] == "none (retries 0, bad frames 0, late answers 0)", out
    assert lines["protocol errors"] == "0", out
    assert lines["board accuracy"] == lines["golden model accuracy"], out
    assert "simulated icebreaker board top on icarus: UART at 4 clocks per bit (the board: " \
           "16, 3,000,000 baud)" in out
    assert lines["board"].startswith("48 MHz, folding "), out  # the iCEBreaker's PLL clock
    assert "simulated icebreaker" in err and "3/3" in err  # the progress bar reached the end

    # A test of the test: the golden expectation of sample 1 is changed by one score step,
    # so the same (correct) board must now be reported as disagreeing, on that sample and
    # score, with exit status 1.
    _alter_golden_score(monkeypatch, 1)
    rc = _sim(build, "--simulator", "icarus", "--limit", "2")
    out, err = capsys.readouterr()
    assert rc == 1, (out, err[-3000:])
    assert "mismatches vs golden         1" in out
    assert "  mismatch: sample 1 scores[0]: golden " in out


def test_run_sim_builds_the_folding_asked_for(request, seed, capsys):
    # --folding replaces the board's default (8x12,8x1 for this network on the iCEBreaker):
    # the simulated board reports the folding it was built with, and answers exactly.
    require_simulator("icarus")
    build = build_dir_for(request)
    _small_artifact(build, seed)
    rc = _sim(build, "--simulator", "icarus", "--limit", "2", "--folding", "8x3,4x1")
    out, err = capsys.readouterr()
    assert rc == 0, (out, err[-3000:])
    lines = {line[:28].strip(): line[28:].strip() for line in out.splitlines()}
    assert lines["board"].startswith("48 MHz, folding 8x3,4x1,"), out
    assert lines["answered"] == "2" and lines["mismatches vs golden"] == "0", out
    assert lines["link errors"] == "none (retries 0, bad frames 0, late answers 0)", out


def test_run_sim_benchmark_hashes_every_result_at_the_bound(request, seed, capsys,
                                                             monkeypatch):
    # The on-chip benchmark on the simulated iCEBreaker top: 5 samples stored, run alone
    # (the first) and back to back; the board's CRC over the results equals the golden
    # model's, and the steady period is the one the link and the accelerator allow.
    require_simulator("icarus")
    build = build_dir_for(request)
    _small_artifact(build, seed)
    rc = _sim(build, "--simulator", "icarus", "--benchmark", "5")
    out, err = capsys.readouterr()
    assert rc == 0, (out, err[-3000:])
    lines = {line[:28].strip(): line[28:].strip() for line in out.splitlines()}
    assert lines["benchmark samples"].startswith("5 (run from the board's store"), out
    crc = lines["results CRC"].split()
    assert crc[1] == "=" and crc[0] == crc[4], out
    assert lines["samples counted"] == "5 (first run: 1)", out
    steady = lines["steady state"]
    assert steady.endswith("ratio 1.000"), out
    assert float(steady.split()[0].replace(",", "")) == float(steady.split()[3]), out
    assert "5/5" in err  # the store's progress bar reached the end

    # A test of the test: one golden score changed, so the board's CRC must now disagree
    # with the golden model's (exit status 1).
    _alter_golden_score(monkeypatch, 3)
    rc = _sim(build, "--simulator", "icarus", "--benchmark", "5")
    out, err = capsys.readouterr()
    assert rc == 1, (out, err[-3000:])
    lines = {line[:28].strip(): line[28:].strip() for line in out.splitlines()}
    assert lines["results CRC"].split()[1] == "!=", out
    assert " = " in lines["results CRC"].split("first sample alone")[1], out  # sample 0 agrees


@pytest.mark.parametrize("extra, message", [
    (["--sim", "--board", "nosuch"],
     "error: board must be one of icebreaker, ulx3s-85f, not 'nosuch'"),
    (["--sim", "--folding", "7x3,4x1,2x2"], "error: folding gives 3 layers, the artifact has 2"),
    (["--port", "/dev/null", "--folding", "8x3,4x1"],
     "error: --folding is for --sim (a board reports its own folding)"),
    (["--sim", "--benchmark", "0"], "error: --benchmark must be at least 1, not 0"),
    (["--sim", "--benchmark", "2"],
     "error: --benchmark 2: only 1 sample to run (digits/test, --limit 1)"),
], ids=["board", "folding", "folding-without-sim", "benchmark-0", "benchmark-past-split"])
def test_run_sim_errors_are_one_line(tmp_path, seed, capsys, extra, message):
    write_artifact(random_artifact(seed, sizes=[64, 4, 10], time_steps=2,
                                   input_kind="multibit", input_bits=5), tmp_path / "art")
    rc = cli_main(["run", str(tmp_path / "art"), *extra, "--limit", "1",
                   "--build", str(tmp_path / "sim")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.splitlines()[-1] == message, err
    assert sum(line.startswith("error") for line in err.splitlines()) == 1


@pytest.mark.slow
def test_run_sim_on_verilator(request, seed, capsys):
    require_simulator("verilator")
    build = build_dir_for(request)
    _small_artifact(build, seed)
    rc = _sim(build, "--simulator", "verilator", "--board", "ulx3s-85f", "--limit", "8")
    out, err = capsys.readouterr()
    assert rc == 0, (out, err[-3000:])
    assert "answered                     8" in out and "mismatches vs golden         0" in out
    assert "simulated ulx3s-85f board top on verilator" in out
