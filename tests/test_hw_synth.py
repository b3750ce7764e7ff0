"""The digits-size accelerator through the real tools (slow): Verilator -Wall lint and Yosys
``synth`` of the generated Verilog, and iCE40 UP5K / ECP5 place-and-route timing of the
bitstream flow's core-only target, compared with committed baselines."""

from __future__ import annotations

import re
import subprocess

import pytest
import synth_baseline

from bitstreams.boards import get_board
from bitstreams.flow import ToolError, build_core, find_tool
from hw.generate import LINT_WAIVERS, generate
from sw.folding import Folding
from sw.randnet import random_artifact

pytestmark = [pytest.mark.slow, pytest.mark.synth]


def _tool(name, mode="auto"):
    try:
        return find_tool(name, mode)[0]
    except ToolError as exc:
        pytest.fail(f"{exc}: pip install -e .[dev] installs it")


@pytest.fixture(scope="module")
def digits():
    """The default digits geometry: 64 5-bit pixels -> 128 LIF -> 10 classes, T = 4."""
    return random_artifact(0, sizes=[64, 128, 10], time_steps=4, input_kind="multibit",
                           input_bits=5)


@pytest.fixture(scope="module")
def digits_verilog(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("digits-hw")
    desc = generate(digits, Folding.parse("32x4,32x1", digits), out, trace=True,
                    weight_memory="block")
    return out, desc


def test_digits_verilog_lints_with_only_the_explained_warnings(digits_verilog):
    verilator = _tool("verilator", "system")
    out, desc = digits_verilog
    res = subprocess.run([verilator, "--lint-only", "-Wall", desc["verilog"]], cwd=out,
                         capture_output=True, text=True, timeout=600)
    kinds = set(re.findall(r"%Warning-([A-Z0-9_]+):", res.stderr))
    errors = [line for line in res.stderr.splitlines()
              if line.startswith("%Error") and "Exiting due to" not in line]
    assert not errors, "\n".join(errors[:20])
    unexplained = kinds - set(LINT_WAIVERS)
    assert not unexplained, f"unexplained Verilator warnings: {unexplained}"


def test_digits_verilog_synthesises_with_yosys(digits_verilog):
    yosys = _tool("yosys")
    out, desc = digits_verilog
    res = subprocess.run([yosys, "-q", "-p", f"read_verilog {desc['verilog']}; "
                          f"synth -top {desc['top']}"], cwd=out, capture_output=True,
                         text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.parametrize("board,folding,freq,weights", [
    # the iCEBreaker's default folding (its board build's); 32x4,32x1 had met 48 MHz at one
    # seed in three before the LIF unit's last change, and at none of four after it
    ("icebreaker", "64x1,8x1", 48, "block"),
    ("ulx3s-85f", "64x4,32x1", 125, "auto"),
])
def test_digits_accelerator_meets_its_clock_baseline(digits, board, folding, freq, weights,
                                                     tmp_path):
    """The accelerator alone (the flow's core-only target) fits and meets the clock the board
    builds need, with room left on the UP5K for the host link, within the board's placement
    attempts (seeds 1, 2, ... as the board flow tries them: the UP5K at 48 MHz is within a few
    per cent of its one-cycle LIF loop, and seeds 1-3 have given 46.6-50.5 MHz); the seed that
    meets it, its Fmax and cells are those of the committed baseline (fixed network and
    folding)."""
    tries = []
    for seed in range(1, get_board(board).seeds + 1):
        report = build_core(board, digits, folding=folding, clock_hz=freq * 1e6, seed=seed,
                            out_dir=tmp_path / f"seed{seed}",
                            accelerator_options={"weight_memory": weights},
                            log=lambda *a: None)
        tries.append(round(report["achieved_mhz"], 2))
        if report["achieved_mhz"] >= freq:
            break
    assert report["achieved_mhz"] >= freq, (tries, report["fmax"])
    if board == "icebreaker":
        lc = report["utilization"]["logic_cells"]
        assert lc["used"] <= 0.8 * lc["available"], report["utilization"]
    synth_baseline.check(f"core-{board}-digits", report, {
        "network": "random_artifact(0, [64, 128, 10], T=4, multibit 5 bits)",
        "folding": folding, "clock_mhz": freq, "weight_memory": weights})
