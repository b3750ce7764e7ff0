"""The operation counter of a stage: one sample's folds, group by group."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.common import check_int
from sw import fixedpoint as fx

__all__ = ["Sequencer"]


class Sequencer(wiring.Component):
    """Issues one sample's operations in the order the stages use::

        for group in 0..groups-1:                # PE neurons at a time
            for time_step in 0..steps-1:         # spike inputs: T; multi-bit inputs: 1
                for plane in planes-1..0:        # bit-planes, most significant first
                    for chunk in 0..chunks-1:    # SIMD inputs at a time
                        operation
            (idle until the group has taken ``period`` cycles)

    A sample starts when ``can_start`` is high and the sequencer is idle or issuing the
    sample's last cycle, so successive samples follow each other without a gap.

    **Timing**: ``start`` and ``end`` are combinational (from ``can_start`` and registers); the
    operation fields are registers. ``valid`` is high on the cycles that carry an operation:
    ``steps * planes * chunks`` of every ``period`` cycles of a group. Reset stops the sequence.

    Parameters
    ----------
    groups, steps, planes, chunks : int
        Loop counts (>= 1; planes <= 16).
    period : int or None
        Cycles per group (default: the operations per group; a larger value adds idle cycles).

    Members
    -------
    can_start : In(1)
    start : Out(1)
        A sample starts (the caller takes/claims its buffer slots in this cycle).
    end : Out(1)
        The sample's last cycle.
    valid : Out(1)
        An operation is issued.
    group, time_step, plane, chunk : Out
    weight_addr : Out
        ``group * chunks + chunk``: the weight word of the operation
        (:func:`sw.folding.pack_weights` order).
    first, shift, last : Out(1)
        The operation starts a sum, starts a lower bit-plane of it, completes it.
    group_end : Out(1)
        The last cycle of a group.
    """

    def __init__(self, *, groups: int, steps: int = 1, planes: int = 1, chunks: int,
                 period: int | None = None):
        check_int("groups", groups, 1)
        check_int("steps", steps, 1)
        check_int("planes", planes, 1, 16)
        check_int("chunks", chunks, 1)
        ops = steps * planes * chunks
        if period is None:
            period = ops
        check_int("period", period, ops)
        self._groups, self._steps, self._planes, self._chunks = groups, steps, planes, chunks
        self._period = period
        super().__init__({
            "can_start": In(1), "start": Out(1), "end": Out(1), "valid": Out(1),
            "group": Out(unsigned(fx.ceil_log2(groups))),
            "time_step": Out(unsigned(fx.ceil_log2(steps))),
            "plane": Out(unsigned(fx.ceil_log2(planes))),
            "chunk": Out(unsigned(fx.ceil_log2(chunks))),
            "weight_addr": Out(unsigned(fx.ceil_log2(groups * chunks))),
            "first": Out(1), "shift": Out(1), "last": Out(1), "group_end": Out(1),
        })

    @property
    def operations_per_group(self) -> int:
        return self._steps * self._planes * self._chunks

    @property
    def cycles_per_sample(self) -> int:
        """Cycles from a sample's start to the next sample's earliest start."""
        return self._groups * self._period

    def elaborate(self, platform):
        m = Module()
        groups, steps, planes, chunks = self._groups, self._steps, self._planes, self._chunks
        ops, period = self.operations_per_group, self._period
        padded = period > ops
        total = groups * period

        busy = Signal(name="busy")
        base = Signal.like(self.weight_addr, name="group_base")
        # Down-counters with registered "last cycle" flags keep start/end two LUT levels from
        # registers (they fan out to every counter).
        left = Signal(range(total), name="sample_left")
        at_end = Signal(name="at_sample_end")
        group_left = Signal(range(period), name="group_left")
        at_group_end = Signal(name="at_group_end")

        last_chunk = self.chunk == chunks - 1
        last_plane = self.plane == 0
        issue = busy & (group_left >= period - ops) if padded else busy
        group_end = busy & at_group_end
        m.d.comb += [
            self.valid.eq(issue),
            self.weight_addr.eq(base + self.chunk),
            self.first.eq((self.chunk == 0) & (self.plane == planes - 1)),
            self.shift.eq((self.chunk == 0) & (self.plane != planes - 1)),
            self.last.eq(last_chunk & last_plane),
            self.group_end.eq(group_end),
            self.end.eq(busy & at_end),
            self.start.eq((~busy | self.end) & self.can_start),
        ]

        with m.If(self.start):
            m.d.sync += [busy.eq(1), self.group.eq(0), self.time_step.eq(0),
                         self.plane.eq(planes - 1), self.chunk.eq(0), base.eq(0),
                         left.eq(total - 1), at_end.eq(total == 1),
                         group_left.eq(period - 1), at_group_end.eq(period == 1)]
        with m.Elif(self.end):
            m.d.sync += busy.eq(0)
        with m.Elif(busy):
            m.d.sync += [left.eq(left - 1), at_end.eq(left == 1),
                         group_left.eq(group_left - 1), at_group_end.eq(group_left == 1)]
            with m.If(group_end):
                m.d.sync += [group_left.eq(period - 1), at_group_end.eq(period == 1),
                             self.group.eq(self.group + 1), base.eq(base + chunks)]
            with m.If(issue):
                m.d.sync += self.chunk.eq(self.chunk + 1)
                with m.If(last_chunk):
                    m.d.sync += [self.chunk.eq(0), self.plane.eq(self.plane - 1)]
                    with m.If(last_plane):
                        m.d.sync += [self.plane.eq(planes - 1),
                                     self.time_step.eq(self.time_step + 1)]
                        with m.If(self.time_step == steps - 1):
                            m.d.sync += self.time_step.eq(0)
        return m
