"""The logic-cell model: its features, its calibration, and its estimate of a real board top
against that build's committed packed count."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from synth_baseline import BASELINES

from bitstreams import cells, fit
from bitstreams.boards import BOARDS, ICE40UP5K
from bitstreams.flow import find_tools
from sw.randnet import random_artifact


def _rtlil(component) -> str:
    from amaranth.back import rtlil

    return rtlil.convert(component, name="top")


_PORTS = {"a": In(8), "b": In(8), "s": In(1), "q": Out(20)}


class _Tiny(wiring.Component):
    """An 8-bit multiplexer, an 8-bit XOR and a 4-bit AND, registered, in a submodule."""

    def __init__(self):
        super().__init__(_PORTS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = _Inner()
        m.d.comb += [inner.a.eq(self.a), inner.b.eq(self.b), inner.s.eq(self.s),
                     self.q.eq(inner.q)]
        return m


class _Inner(wiring.Component):
    def __init__(self):
        super().__init__(_PORTS)

    def elaborate(self, platform):
        m = Module()
        r = Signal(20)
        m.d.sync += r.eq(Mux(self.s, self.a, self.b) | ((self.a ^ self.b) << 8)
                         | ((self.a[:4] & self.b[:4]) << 16))
        m.d.comb += self.q.eq(r)
        return m


def _yosys():
    tools = find_tools("ice40")
    return tools.exe["yosys"], tools.env()


def test_features_of_a_small_design_by_block():
    yosys, env = _yosys()
    netlist = cells.coarse_netlist(_rtlil(_Tiny()), yosys, {**os.environ, **env})
    feats = cells.design_features(netlist, "ice40", ICE40UP5K)
    assert set(feats) == {"inner"}, feats
    f = feats["inner"]
    # the multiplexer's 8 bits; the XOR's 8; the AND's 4, and the ORs that merge the three
    # (constant-zero bits folded by opt_expr)
    assert f["mux"] == 8 and f["xor"] == 8, f
    assert f["bit"] >= 4, f
    assert cells._block("$flatten\\core.\\accelerator.\\stage_fc1.\\lif.$12") == \
        "core.accelerator.stage_fc1"
    assert cells._block("$auto$opt_dff.cc:1$7") == "(top)"


def test_committed_calibration_matches_its_builds():
    """The committed weights reproduce every calibration build's packed count within the
    margin the fit check allows (they were fitted to them: a hand-edited weight or feature
    list that no longer matches the data fails here)."""
    data = json.loads(cells.MODEL_FILE.read_text())
    model = cells.load_model("ice40")
    assert model is not None and set(model.weights) == set(cells.FEATURES)
    assert len(model.calibration) >= 8
    errors = [model.predict(b["features"]) / b["logic_cells"] - 1 for b in model.calibration]
    assert max(map(abs, errors)) <= fit.CELL_MARGIN, errors
    # the weights are the least-squares fit of the recorded data
    from scipy.optimize import nnls

    x = np.array([[b["features"][k] for k in cells.FEATURES] for b in model.calibration],
                 float)
    y = np.array([b["logic_cells"] for b in model.calibration], float)
    refit = nnls(x, y)[0]
    assert np.allclose(refit, [model.weights[k] for k in cells.FEATURES], rtol=1e-4), refit
    assert cells.load_model("ecp5") is None and "ecp5" not in data["models"]


def test_estimate_of_the_small_board_build_is_within_the_margin_of_its_baseline(tmp_path):
    """The board top of tests/baselines/board-icebreaker-small.json (a real packed count,
    committed by the slow flow test), elaborated as the flow does and estimated from its
    RTLIL in a few seconds."""
    from bitstreams.flow import elaborate_top

    baseline = json.loads((BASELINES / "board-icebreaker-small.json").read_text())
    board = BOARDS["icebreaker"]
    art = random_artifact(np.random.default_rng(7), sizes=[16, 8, 4], time_steps=2,
                          input_kind="multibit", input_bits=4)
    top, _, choice = elaborate_top(board, art, None, clock_hz=30e6,
                                   options=board.accelerator)
    assert choice == "block"  # as the baseline's build chose
    plan = board.make_platform().prepare(top, name="top", synth_opts=board.synth_opts)
    plan.extract(tmp_path)
    yosys, env = _yosys()
    est = cells.estimate_rtlil((tmp_path / "top.il").read_text(), "ice40", ICE40UP5K, yosys,
                               {**os.environ, **env})
    packed = baseline["metrics"]["logic_cells"]
    print(f"cell model {est.logic_cells}, packed {packed}")
    assert abs(est.logic_cells / packed - 1) <= fit.CELL_MARGIN, (est.logic_cells, packed)
    assert est.logic_cells == pytest.approx(sum(est.blocks.values()), abs=len(est.blocks))
    assert any(b.startswith("core.accelerator.stage_") for b in est.blocks), est.blocks


def test_cell_model_check_fails_only_beyond_the_margin():
    cap = ICE40UP5K
    within = cells.CellEstimate("ice40", int(cap.logic * (1 + fit.CELL_MARGIN)))
    fit.check(cap, "ice40", cells=within)
    beyond = cells.CellEstimate("ice40", int(cap.logic * (1 + fit.CELL_MARGIN)) + 1)
    with pytest.raises(fit.FitError) as info:
        fit.check(cap, "ice40", cells=beyond)
    assert info.value.stage == "cell model"
    assert str(info.value) == (
        f"does not fit iCE40UP5K: needs {beyond.logic_cells} logic cells by the cell model "
        f"(which is within 10% of packed builds), the device has 5280 "
        f"({beyond.logic_cells - 5280} too many) (found by the cell model, before place and "
        f"route)")


def test_folding_search_takes_the_fastest_that_fits_and_says_why_the_others_did_not():
    from bitstreams import autofold
    from hw.plan import balanced_foldings

    board = BOARDS["icebreaker"]
    art = random_artifact(np.random.default_rng(7), sizes=[16, 8, 4], time_steps=2,
                          input_kind="multibit", input_bits=4)
    from bitstreams.flow import elaborate_top

    yosys, env = _yosys()
    tools = {"yosys": yosys, "env": {**os.environ, **env}}

    def elaborate(f):
        return elaborate_top(board, art, f, clock_hz=30e6, options=board.accelerator)

    lines = []
    folding, tried = autofold.search(board, art, elaborate, clock_hz=30e6, log=lines.append,
                                     **tools)
    order = [f for _, _, f in balanced_foldings(art)]
    assert [c.folding for c in tried] == order[:len(tried)]  # fastest first, none skipped
    assert tried[-1].verdict == "chosen" and tried[-1].folding == folding
    assert tried[-1].logic_cells <= autofold.ROOM * board.capacity.logic
    assert all(c.verdict != "chosen" and c.verdict for c in tried[:-1])
    assert len(lines) == len(tried) and str(folding) in lines[-1]
    # the smallest folding reaching a rate: the slowest candidate at or above it
    rates = [(30e6 / c, f) for c, _, f in balanced_foldings(art)]
    target = rates[len(rates) // 2][0]
    small, tried = autofold.search(board, art, elaborate, clock_hz=30e6, target_rate=target,
                                   log=lambda line: None, **tools)
    reaching = [f for r, f in rates if r >= target]
    assert small == reaching[-1] and tried[0].rate >= target
    with pytest.raises(autofold.SearchError, match="no folding reaches"):
        autofold.search(board, art, elaborate, clock_hz=30e6, target_rate=1e12,
                        log=lambda line: None,
                        **tools)
    with pytest.raises(ValueError, match="the ecp5 has none"):
        autofold.search(BOARDS["ulx3s-85f"], art, elaborate, log=lambda line: None, **tools)
