"""Will a design fit a device? Four checks, each before the slow step that follows it
(the cell model's, between the first two, is :mod:`bitstreams.cells`; :func:`check` takes
its estimate).

1. :func:`memory_estimate` (instant, before synthesis): every memory of the elaborated design,
   from its exact shape, mapped the way Yosys' ``memory_libmap`` maps it (the cheapest of
   logic, LUT RAM and block RAM by the cost figures of Yosys' own memory libraries: iCE40
   ``SB_RAM40_4K`` cost 64; ECP5 ``DP16KD`` cost 128, ``TRELLIS_DPR16X4`` cost 4; logic costs
   1 per bit of RAM and 1/16 per bit of ROM). Memories whose block-RAM mapping is clearly the
   cheapest count as certain; the check fails when they alone exceed the device.
2. :func:`synthesis_usage` (after Yosys, before nextpnr): the cells of ``stat -json``; a
   design whose LUT4s, flip-flops, block RAMs or multipliers alone exceed the device fails.
3. :func:`pack_usage` (nextpnr ``--pack-only``, seconds, before placement): nextpnr's exact
   cell counts after packing (iCE40 logic cells pair a LUT4 with a flip-flop).

Each failing check raises :class:`FitError`, whose message says what is short and by how
much, e.g. ``does not fit iCE40UP5K: needs 41 block RAMs (SB_RAM40_4K, 4 Kbit), the device
has 30 (11 too many)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from bitstreams.boards import Capacity

__all__ = ["FitError", "Shortfall", "Memory", "MemoryEstimate", "design_memories",
           "memory_estimate", "choose_weight_memory", "synthesis_usage", "pack_usage", "check"]

#: Shape of one SPRAM (iCE40UP5K SB_SPRAM256KA), where ``ram_style = "huge"`` memories go.
SPRAM_SHAPE = (16, 16384)
#: Cost of one block RAM / of 16x4 LUT RAM in Yosys' memory libraries, per family.
_BRAM_COST = {"ice40": 64, "ecp5": 128}
_LUTRAM_COST = {"ecp5": 4}
#: Block-RAM mappings cheaper than this fraction of the alternative are counted as certain.
CERTAIN = 0.5
#: The cell model's estimate stops a build before synthesis only when it exceeds the device
#: by more than this fraction (the model is within a few per cent of the packed counts it was
#: calibrated on, bench/cells.py).
CELL_MARGIN = 0.10

_BRAM_NAME = {"ice40": "SB_RAM40_4K, 4 Kbit", "ecp5": "DP16KD, 18 Kbit"}


@dataclass(frozen=True)
class Shortfall:
    """One resource a design needs more of than the device has."""

    what: str
    needed: int
    available: int

    def __str__(self):
        return (f"needs {self.needed} {self.what}, the device has {self.available} "
                f"({self.needed - self.available} too many)")


class FitError(RuntimeError):
    """The design does not fit the device.

    Attributes
    ----------
    device : str
    shortfalls : list of Shortfall
    stage : str
        Which check found it ("memory estimate", "synthesis", "packing").
    """

    def __init__(self, device: str, shortfalls: list, stage: str):
        self.device = device
        self.shortfalls = list(shortfalls)
        self.stage = stage
        super().__init__(f"does not fit {device}: " + "; ".join(map(str, self.shortfalls))
                         + f" (found by the {stage}, before place and route)")


@dataclass(frozen=True)
class Memory:
    """One memory of a design: its hierarchical name, word width (of a ROM: the bits that
    are not the same constant in every word), depth, whether it is written (RAM), whether
    every read port is synchronous, and the ``ram_style`` / ``rom_style`` attribute asking
    for a mapping (``"block"``, ``"logic"``) if any."""

    name: str
    width: int
    depth: int
    writable: bool
    sync_read: bool
    style: str | None = None

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass
class MemoryEstimate:
    """Where each memory is expected to go, and the block RAMs that is."""

    family: str
    capacity: Capacity
    mapping: list = field(default_factory=list)    # (Memory, "bram"|"lutram"|"logic", blocks)

    @property
    def bram(self) -> int:
        """Block RAMs of every memory expected in block RAM."""
        return sum(blocks for _, kind, blocks in self.mapping if kind == "bram")

    @property
    def spram(self) -> int:
        """Single-port RAMs of the memories that asked for them (``ram_style = "huge"``)."""
        return sum(blocks for _, kind, blocks in self.mapping if kind == "spram")

    @property
    def certain_bram(self) -> int:
        """Block RAMs of the memories whose block-RAM mapping is clearly the cheapest."""
        total = 0
        for mem, kind, blocks in self.mapping:
            if kind == "bram":
                costs = _costs(mem, self.family, self.capacity)
                others = [v for k, v in costs.items() if k != "bram"]
                if not others or costs["bram"] <= CERTAIN * min(others):
                    total += blocks
        return total

    def table(self) -> str:
        lines = [f"{'memory':<44} {'width':>6} {'depth':>6} {'bits':>8}  maps to"]
        for mem, kind, blocks in self.mapping:
            where = f"{blocks} block RAM{'s' if blocks != 1 else ''}" if kind == "bram" else kind
            lines.append(f"{mem.name:<44} {mem.width:>6} {mem.depth:>6} {mem.bits:>8}  {where}")
        return "\n".join(lines)


def design_memories(elaboratable, platform=None) -> list[Memory]:
    """Every memory of an elaborated design: each fragment of Amaranth's fragment tree that
    an ``amaranth.lib.memory.Memory`` elaborated into, read through that component's public
    attributes (``data``, ``read_ports``, ``write_ports``, ``attrs``)."""
    from amaranth.hdl import Fragment, Shape
    from amaranth.lib.memory import Memory as AmaranthMemory

    out = []

    def walk(frag, path):
        memory = next((o for o in frag.origins if isinstance(o, AmaranthMemory)), None)
        if memory is not None:
            data = memory.data
            writable = bool(memory.write_ports)
            style = memory.attrs.get("ram_style" if writable else "rom_style")
            width = Shape.cast(data.shape).width
            if not writable:
                # Yosys drops the bit columns of a ROM that hold the same value in every word
                # (a ROM of one word, or of equal words, is a constant: no memory at all).
                words = [_const(x) for x in data.init]
                width = sum(1 for b in range(width) if len({(w >> b) & 1 for w in words}) > 1)
            if width:
                out.append(Memory(
                    name=".".join(path) or "top", width=width,
                    depth=data.depth, writable=writable,
                    sync_read=all(p.domain != "comb" for p in memory.read_ports),
                    style=str(style) if style is not None else None))
        for sub, name, _ in frag.subfragments:
            walk(sub, (*path, str(name)))

    walk(Fragment.get(elaboratable, platform), ())
    return out


def _const(value) -> int:
    from amaranth.hdl import Const

    if isinstance(value, int):
        return value
    return Const.cast(value.as_value() if hasattr(value, "as_value") else value).value


def bram_blocks(width: int, depth: int, capacity: Capacity) -> int:
    """Fewest block RAMs holding a ``width`` x ``depth`` memory (one aspect ratio for all)."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in capacity.bram_shapes)


def _costs(mem: Memory, family: str, capacity: Capacity | None = None) -> dict:
    if mem.style in ("block", "logic") and (mem.style == "logic" or mem.sync_read):
        # An explicit style wins (Yosys honours ram_style / rom_style).
        if mem.style == "logic":
            return {"logic": 0.0}
        return {"bram": 0.0 if capacity is None else float(
            bram_blocks(mem.width, mem.depth, capacity))}
    costs = {"logic": mem.bits * (1.0 if mem.writable else 1 / 16)}
    if family in _LUTRAM_COST and mem.writable:
        costs["lutram"] = _LUTRAM_COST[family] * math.ceil(mem.width / 4) * math.ceil(
            mem.depth / 16)
    if mem.sync_read and capacity is not None:
        costs["bram"] = _BRAM_COST[family] * bram_blocks(mem.width, mem.depth, capacity)
    return costs


def choose_weight_memory(make_design, family: str, capacity: Capacity, *,
                         block: bool = True):
    """``(weight_memory, design, estimate)``: ``"block"`` when ``block`` and the memories
    of ``make_design("block")`` then all fit the block RAMs (every memory Yosys would put
    there, :attr:`MemoryEstimate.bram`, not only the certain ones), else ``"auto"``
    (Yosys' choice per memory). ``make_design(weight_memory)`` returns the elaboratable
    whose memories are counted."""
    if block:
        design = make_design("block")
        estimate = memory_estimate(design_memories(design), family, capacity)
        if estimate.bram <= capacity.bram:
            return "block", design, estimate
    design = make_design("auto")
    return "auto", design, memory_estimate(design_memories(design), family, capacity)


def memory_estimate(memories: list[Memory], family: str, capacity: Capacity
                    ) -> MemoryEstimate:
    """Map each memory to its cheapest implementation, as Yosys does: the cheaper of block
    and LUT RAM (a tie goes to block RAM), unless logic costs no more than that."""
    if family not in _BRAM_COST:
        raise ValueError(f"family must be one of {', '.join(_BRAM_COST)}, not {family!r}")
    est = MemoryEstimate(family, capacity)
    for mem in memories:
        if mem.style == "huge":
            # 16-bit words, a whole SPRAM word each (the benchmark store is 16 bits wide).
            blocks = math.ceil(mem.width / SPRAM_SHAPE[0]) * math.ceil(mem.depth
                                                                       / SPRAM_SHAPE[1])
            est.mapping.append((mem, "spram", blocks))
            continue
        costs = _costs(mem, family, capacity)
        rams = [k for k in ("bram", "lutram") if k in costs]
        kind = min(rams, key=lambda k: costs[k]) if rams else "logic"
        if "logic" in costs and (not rams or costs["logic"] <= costs[kind]):
            kind = "logic"
        blocks = bram_blocks(mem.width, mem.depth, capacity) if kind == "bram" else 0
        est.mapping.append((mem, kind, blocks))
    return est


def synthesis_usage(stat: dict, family: str) -> dict:
    """Cell counts from Yosys' ``stat -json`` output: ``{"lut", "ff", "carry", "bram",
    "dsp"}``."""
    design = stat.get("design", stat)
    cells = design.get("num_cells_by_type", {})

    def total(prefixes):
        return sum(n for name, n in cells.items() if name.startswith(prefixes))

    if family == "ice40":
        return {"lut": cells.get("SB_LUT4", 0), "ff": total(("SB_DFF",)),
                "carry": cells.get("SB_CARRY", 0), "bram": cells.get("SB_RAM40_4K", 0),
                "dsp": cells.get("SB_MAC16", 0)}
    return {"lut": cells.get("LUT4", 0),
            "ff": cells.get("TRELLIS_FF", 0), "carry": cells.get("CCU2C", 0),
            "bram": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0),
            "dsp": cells.get("MULT18X18D", 0)}


def pack_usage(report: dict) -> dict:
    """``{cell: (used, available)}`` from a nextpnr report (``utilization``)."""
    return {name: (int(v["used"]), int(v["available"]))
            for name, v in report.get("utilization", {}).items()}


def check(capacity: Capacity, family: str, *, estimate: MemoryEstimate | None = None,
          cells=None, synthesis: dict | None = None, packed: dict | None = None) -> None:
    """Raise :class:`FitError` for every resource the design surely lacks.

    Give one of ``estimate`` (memory estimate), ``cells`` (a
    :class:`bitstreams.cells.CellEstimate`: fails beyond the device by more than
    :data:`CELL_MARGIN`), ``synthesis`` (:func:`synthesis_usage`) or ``packed``
    (:func:`pack_usage`).
    """
    bram_what = f"block RAMs ({_BRAM_NAME[family]})"
    short = []
    if cells is not None:
        if cells.logic_cells > capacity.logic * (1 + CELL_MARGIN):
            short.append(Shortfall(f"logic cells by the cell model (which is within "
                                   f"{CELL_MARGIN:.0%} of packed builds)", cells.logic_cells,
                                   capacity.logic))
        stage = "cell model"
    elif estimate is not None:
        if estimate.certain_bram > capacity.bram:
            short.append(Shortfall(bram_what, estimate.certain_bram, capacity.bram))
        if estimate.spram > capacity.spram:
            short.append(Shortfall("single-port RAMs (SPRAM, 256 Kbit)", estimate.spram,
                                   capacity.spram))
        stage = "memory estimate"
    elif synthesis is not None:
        logic_what = ("logic cells (at least one per LUT4)" if family == "ice40"
                      else "LUT4s")
        for key, what, avail in (("lut", logic_what, capacity.logic),
                                 ("ff", "flip-flops", capacity.ffs),
                                 ("bram", bram_what, capacity.bram),
                                 ("dsp", "multipliers", capacity.dsp)):
            if synthesis.get(key, 0) > avail:
                short.append(Shortfall(what, synthesis[key], avail))
        stage = "synthesis statistics"
    elif packed is not None:
        names = {"logic": "logic cells", "ff": "flip-flops", "bram": bram_what,
                 "dsp": "multipliers", "spram": "single-port RAMs"}
        for role, cell in capacity.cells.items():
            used, avail = packed.get(cell, (0, 0))
            if used > avail:
                short.append(Shortfall(f"{names[role]} ({cell})", used, avail))
        for cell, (used, avail) in packed.items():
            if used > avail and cell not in capacity.cells.values():
                short.append(Shortfall(cell, used, avail))
        stage = "packing step"
    else:
        raise ValueError("give estimate, synthesis or packed")
    if short:
        raise FitError(capacity.device, short, stage)


def load_json(path: Path) -> dict:
    """A JSON file written by a tool, with a clear error when it is missing or malformed."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the tool did not write it (see its log)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
