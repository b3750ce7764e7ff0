"""Committed synthesis and place-and-route baselines for the slow tool tests.

Each case (a fixed network, folding, clock and placement seed) has a file
``tests/baselines/<case>.json`` with the figures measured for it (Fmax, LUT4, flip-flops and,
on the iCE40, logic cells), the tolerance of each, and the tool versions measured with. Yosys
and nextpnr give the same result for the same input, options, seed and tool version, so the
tolerances are tight: a difference means the design (or a tool) changed, and the baseline must
be refreshed on purpose, with the reason in the commit:

    BITSPIKE_REFRESH_BASELINE=1 pytest -m slow -n 0 tests/test_hw_synth.py \\
        tests/test_bitstream_flow.py -k "baseline"

(which writes the measured figures instead of comparing them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BASELINES = Path(__file__).resolve().parent / "baselines"
REFRESH_ENV = "BITSPIKE_REFRESH_BASELINE"
#: Relative tolerance per metric (nextpnr's Fmax is the one figure that moves with any netlist
#: change; the cell counts move only when the design does).
TOLERANCE = {"fmax_mhz": 0.01, "lut4": 0.005, "ff": 0.005, "logic_cells": 0.005, "seed": 0}


def metrics(report: dict) -> dict:
    """The baseline figures of a flow report (a board build's or a core-only one's)."""
    u = report["utilization"]
    out = {"fmax_mhz": round(report["achieved_mhz"], 2), "lut4": u["lut4"]["used"],
           "ff": u["ff"]["used"], "seed": report["seed"]}  # the placement seed that gave them
    if "logic_cells" in u:
        out["logic_cells"] = u["logic_cells"]["used"]
    return out


def check(case: str, report: dict, definition: dict) -> None:
    """Compare ``report``'s figures with the baseline of ``case`` (AssertionError naming each
    figure off by more than its tolerance), or write them when refreshing."""
    measured = metrics(report)
    path = BASELINES / f"{case}.json"
    if os.environ.get(REFRESH_ENV):
        BASELINES.mkdir(exist_ok=True)
        path.write_text(json.dumps({
            "case": case, "definition": definition, "metrics": measured,
            "tolerance": {k: TOLERANCE[k] for k in measured}, "tools": report["tools"],
        }, indent=2, sort_keys=True) + "\n")
        return
    assert path.is_file(), (f"no baseline {path}: run the test with {REFRESH_ENV}=1 to "
                            f"record one")
    base = json.loads(path.read_text())
    assert base["definition"] == definition, (
        f"{path} was recorded for {base['definition']}, the test now builds {definition}: "
        f"refresh it ({REFRESH_ENV}=1)")
    off = []
    for name, want in base["metrics"].items():
        got = measured.get(name)
        tol = base["tolerance"][name]
        if got is None or abs(got - want) > tol * abs(want):
            off.append(f"{name} {got} (baseline {want} +/- {tol:.1%})")
    assert not off, (f"{case} differs from {path.name}: " + "; ".join(off)
                     + f" (tools now {report['tools']}, baseline {base['tools']}; if the "
                       f"change is intended, refresh with {REFRESH_ENV}=1)")
