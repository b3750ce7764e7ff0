"""Exact comparison of what the hardware produced with what the golden model expects.

The scoreboard holds an ordered queue of expected items (one per sample, or one per traced time
step and layer). Every item the hardware produces is compared with the head of the queue, field
by field and element by element, with ``==`` on integers: no tolerance. The first mismatch is
kept with everything needed to find it again: the sample, the time step, the layer, the field,
the neuron (array index), the expected and the received value, and the seed that replays the
run. Nothing here imports cocotb, so the logic is tested on its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["Expected", "Mismatch", "Scoreboard"]


@dataclass
class Expected:
    """One expected item.

    Attributes
    ----------
    values : dict
        ``{field: int or list of int}`` as the payload layout unpacks it.
    sample : int
        Index of the input sample it belongs to.
    layer : str or None
        The layer it describes (trace items), None for the network's output.
    time_step : int or None
        The time step it describes (trace items), None for a whole sample.
    """

    values: dict
    sample: int
    layer: str | None = None
    time_step: int | None = None


@dataclass
class Mismatch:
    """A difference between the hardware and the golden model."""

    stream: str
    sample: int
    field: str
    expected: object
    got: object
    index: int | None = None
    layer: str | None = None
    time_step: int | None = None
    cycle: int | None = None

    def where(self) -> str:
        parts = [f"sample {self.sample}"]
        if self.time_step is not None:
            parts.append(f"time step {self.time_step}")
        if self.layer is not None:
            parts.append(f"layer {self.layer!r}")
        name = self.field if self.index is None else f"{self.field}[{self.index}]"
        if self.index is not None and self.field in ("membrane", "spikes", "potential",
                                                     "sums", "scores", "current"):
            parts.append(f"neuron {self.index}")
        parts.append(f"field {name}")
        return ", ".join(parts)

    def __str__(self):
        at = f" at cycle {self.cycle}" if self.cycle is not None else ""
        return (f"{self.stream}: {self.where()}: expected {self.expected}, got {self.got}{at}")


@dataclass
class Scoreboard:
    """Compares received items with expected ones, in order, exactly.

    Parameters
    ----------
    stream : str
        Name of the compared stream (for messages).
    seed : int or None
        The seed that replays the run; printed with the first mismatch.
    replay : str
        How to replay (e.g. an environment assignment), printed with the first mismatch.
    max_mismatches : int
        Keep at most this many mismatches (the first one is what matters).

    Attributes
    ----------
    compared : int
        Items compared so far.
    mismatches : list of Mismatch
    mismatched_items : int
        Items with at least one differing field.
    """

    stream: str
    seed: int | None = None
    replay: str = ""
    max_mismatches: int = 20
    compared: int = 0
    mismatched_items: int = 0
    mismatches: list = field(default_factory=list)
    _queue: deque = field(default_factory=deque)

    def expect(self, item: Expected) -> None:
        self._queue.append(item)

    def expect_all(self, items) -> None:
        self._queue.extend(items)

    @property
    def pending(self) -> int:
        """Expected items not received yet."""
        return len(self._queue)

    def drop_pending(self) -> list:
        """Forget every item not received yet (a reset discarded them); returns them."""
        dropped = list(self._queue)
        self._queue.clear()
        return dropped

    def compare(self, got: dict, *, cycle: int | None = None) -> list:
        """Compare ``got`` with the next expected item; returns this item's mismatches.

        An item arriving when nothing is expected is itself a mismatch (the hardware produced
        more than it was given).
        """
        if not self._queue:
            m = Mismatch(self.stream, sample=-1, field="(unexpected item)", expected="nothing",
                         got=got, cycle=cycle)
            self._record([m])
            return [m]
        exp = self._queue.popleft()
        self.compared += 1
        found = []
        for name, want in exp.values.items():
            if name not in got:
                found.append(Mismatch(self.stream, exp.sample, name, want, "(missing)",
                                      layer=exp.layer, time_step=exp.time_step, cycle=cycle))
                continue
            have = got[name]
            if isinstance(want, (list, tuple)):
                have = list(have) if isinstance(have, (list, tuple)) else [have]
                if len(have) != len(want):
                    found.append(Mismatch(self.stream, exp.sample, name, f"{len(want)} values",
                                          f"{len(have)} values", layer=exp.layer,
                                          time_step=exp.time_step, cycle=cycle))
                    continue
                for k, (w, h) in enumerate(zip(want, have, strict=True)):
                    if int(w) != int(h):
                        found.append(Mismatch(self.stream, exp.sample, name, int(w), int(h),
                                              index=k, layer=exp.layer,
                                              time_step=exp.time_step, cycle=cycle))
            elif int(want) != int(have):
                found.append(Mismatch(self.stream, exp.sample, name, int(want), int(have),
                                      layer=exp.layer, time_step=exp.time_step, cycle=cycle))
        if found:
            self._record(found)
        return found

    def _record(self, found):
        self.mismatched_items += 1
        room = self.max_mismatches - len(self.mismatches)
        if room > 0:
            self.mismatches.extend(found[:room])

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def report(self) -> str:
        """A summary; with mismatches, the first one and how to replay it."""
        if self.ok:
            return f"{self.stream}: {self.compared} items compared, all exact"
        first = self.mismatches[0]
        lines = [f"{self.stream}: {self.mismatched_items} of {self.compared} items differ; "
                 f"first mismatch: {first}"]
        if self.seed is not None:
            lines.append(f"seed {self.seed}" + (f"; replay with {self.replay}"
                                                 if self.replay else ""))
        more = self.mismatches[1:6]
        if more:
            lines.append("next: " + "; ".join(str(m) for m in more))
        return "\n".join(lines)
