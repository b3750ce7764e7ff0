"""The readout: score accumulation, per-class scale and offset, argmax (docs/arithmetic.md §6)."""

from __future__ import annotations

import numpy as np
from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw import timing
from hw.common import check_bool, check_int, check_step_gain, delay, gain_lookup
from sw import fixedpoint as fx

__all__ = ["ReadoutUnit", "result_layout", "readout_rom_layout", "readout_rom_words"]


def result_layout(classes: int, score_width: int) -> data.StructLayout:
    """A result (the readout's ``o``, the accelerator's output beat): ``prediction`` (unsigned,
    ``max(1, ceil_log2(classes))`` bits) and every class's signed ``scores``."""
    return data.StructLayout({
        "prediction": unsigned(max(1, fx.ceil_log2(classes))),
        "scores": data.ArrayLayout(signed(score_width), classes),
    })


def readout_rom_layout(pe: int, scale_width: int, score_width: int) -> data.StructLayout:
    """Word layout of the readout's parameter ROM: ``scale`` (A_j) and ``offset`` (C_j) of the
    PE classes of one group (lane p is class ``group * pe + p``)."""
    return data.StructLayout({
        "scale": data.ArrayLayout(unsigned(scale_width), pe),
        "offset": data.ArrayLayout(signed(score_width), pe),
    })


def readout_rom_words(scale, offset, pe: int, scale_width: int, score_width: int) -> list[int]:
    """The ROM contents: one word per group, each a :func:`readout_rom_layout` constant (the
    layout the unit reads the ROM with), padding classes with A = 0, C = 0."""
    scale = [int(a) for a in np.asarray(scale, dtype=object)]
    offset = [int(c) for c in np.asarray(offset, dtype=object)]
    layout = readout_rom_layout(pe, scale_width, score_width)
    pad = [0] * (fx.ceil_div(len(scale), pe) * pe - len(scale))
    scale, offset = scale + pad, offset + pad
    return [layout.const({"scale": scale[g:g + pe], "offset": offset[g:g + pe]}).as_bits()
            for g in range(0, len(scale), pe)]


def _greater(m: Module, a, b, name: str):
    """``a > b`` for signed values as the sign of ``b - a`` (one subtraction: a carry chain,
    where a comparison operator may become a LUT ripple)."""
    diff = Signal(signed(max(len(a), len(b)) + 1), name=f"{name}_diff")
    m.d.comb += diff.eq(b - a)
    return diff[-1]


class ReadoutUnit(wiring.Component):
    """Per-class score accumulation, scale and offset, and the argmax, PE classes at a time.

    Operations arrive group by group: for each group of PE classes, its synaptic sums of
    time steps 0..T-1 in order (``direct`` readouts: one operation per group carrying the
    once-per-sample sums). For each lane::

        S = Σ_t G[t] * x[t]              (direct: S = x * Σ_t G[t])
        score = A * S + C

    The class with the highest score wins, the lowest index on ties. When the last group of a
    sample has been scored, ``o`` carries the prediction and every class's score for one cycle.

    **Timing**: :attr:`latency` cycles from the operation that completes the last group on ``i``
    to the result on ``o``; one operation per cycle; no backpressure (``always_ready``
    streams: the caller reserves room for the result before it starts a sample). ``trace``
    carries each group's sums S (one beat per group, when the group's last operation has gone
    in). Reset clears the valid flags; the running argmax restarts at every group 0.

    Parameters
    ----------
    pe : int
        Classes per operation (1..classes).
    classes : int
        Number of classes (>= 1).
    step_gain : tuple of int
        G[t] >= 1, t = 0..T-1.
    current_width : int
        Width of the signed synaptic sums on ``i`` (2..62).
    sum_width : int
        Width of S (:attr:`sw.artifact.ReadoutLayer.sum_width`).
    score_width : int
        Width of the scores (``layer.score.width``).
    scale, offset : sequence of int
        A_j >= 0 and C_j, one per class.
    direct : bool
        The synaptic sums are the same at every time step (multi-bit input): one operation
        per group, S = x * Σ G.

    Members
    -------
    i : In(stream.Signature(StructLayout({current, time_step, group}), always_ready=True))
    o : Out(stream.Signature(StructLayout({prediction, scores}), always_ready=True))
    trace : Out(stream.Signature(StructLayout({group, sums}), always_ready=True))

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, pe: int, *, classes: int, step_gain, current_width: int,
                 sum_width: int, score_width: int, scale, offset, direct: bool = False):
        check_int("classes", classes, 1)
        check_int("pe", pe, 1, classes)
        step_gain = check_step_gain(step_gain)
        check_int("current_width", current_width, 2, fx.MAX_WIDTH)
        check_int("sum_width", sum_width, 2, fx.MAX_WIDTH)
        check_int("score_width", score_width, 2, fx.MAX_WIDTH)
        check_bool("direct", direct)
        scale = np.asarray(scale)
        offset = np.asarray(offset)
        if scale.shape != (classes,) or offset.shape != (classes,):
            raise ValueError(f"scale and offset must hold {classes} values each, not "
                             f"{scale.shape[0] if scale.ndim else scale!r} and "
                             f"{offset.shape[0] if offset.ndim else offset!r}")
        if (scale < 0).any():
            raise ValueError(f"scale must hold ints >= 0, not {scale.tolist()!r}")
        self._pe, self._classes = pe, classes
        self._gain = tuple(int(g) for g in step_gain)
        self._direct = direct
        self._current_width, self._sum_width, self._score_width = (current_width, sum_width,
                                                                   score_width)
        self._scale = [int(a) for a in scale]
        self._offset = [int(c) for c in offset]
        self._scale_width = fx.unsigned_width(max(self._scale))
        self._groups = fx.ceil_div(classes, pe)
        steps = len(self._gain)
        self.i_layout = data.StructLayout({
            "current": data.ArrayLayout(signed(current_width), pe),
            "time_step": unsigned(fx.ceil_log2(steps)),
            "group": unsigned(fx.ceil_log2(self._groups)),
        })
        self.o_layout = result_layout(classes, score_width)
        self.trace_layout = data.StructLayout({
            "group": unsigned(max(1, fx.ceil_log2(self._groups))),
            "sums": data.ArrayLayout(signed(sum_width), pe),
        })
        self.rom_layout = readout_rom_layout(pe, self._scale_width, score_width)
        super().__init__({
            "i": In(stream.Signature(self.i_layout, always_ready=True)),
            "o": Out(stream.Signature(self.o_layout, always_ready=True)),
            "trace": Out(stream.Signature(self.trace_layout, always_ready=True)),
        })

    @property
    def groups(self) -> int:
        return self._groups

    @property
    def latency(self) -> int:
        """Cycles from the operation completing the last group to the result on ``o``:
        gain, sum, A·S, +C, ``ceil_log2(pe)`` argmax tree levels, running argmax (2)
        (:func:`hw.timing.readout_latency`)."""
        return timing.readout_latency(self._pe)

    @property
    def rom_words(self) -> list[int]:
        """Contents of the scale/offset ROM (one word per group, :attr:`rom_layout`)."""
        return readout_rom_words(self._scale, self._offset, self._pe, self._scale_width,
                                 self._score_width)

    def elaborate(self, platform):
        m = Module()
        pe, steps = self._pe, len(self._gain)
        op = self.i.payload
        sw = self._sum_width

        # Stage 1: G[t] * x (direct: x * Σ G).
        s1_valid = Signal(name="s1_valid")
        s1_final = Signal(name="s1_final")
        s1_first = Signal(name="s1_first")
        s1_group = Signal.like(op.group, name="s1_group")
        weighted = Signal(data.ArrayLayout(signed(sw), pe), name="weighted")
        final = Const(1) if self._direct else (op.time_step == steps - 1)
        first = Const(1) if self._direct else (op.time_step == 0)
        m.d.sync += [s1_valid.eq(self.i.valid), s1_final.eq(final), s1_first.eq(first),
                     s1_group.eq(op.group)]
        if self._direct:
            factor = Const(sum(self._gain), fx.unsigned_width(sum(self._gain)))
        elif timing.has_step_gain(self._gain):
            factor = gain_lookup(m, self._gain, op.time_step)
        else:
            factor = None
        for p in range(pe):
            x = op.current[p]
            m.d.sync += weighted[p].eq(x if factor is None else x * factor)

        # Stage 2: S accumulation; the ROM is read for the group on its final operation.
        sums = Signal(data.ArrayLayout(signed(sw), pe), name="sums")
        s2_valid = Signal(name="s2_valid")
        s2_group = Signal.like(s1_group, name="s2_group")
        m.d.sync += [s2_valid.eq(s1_valid & s1_final), s2_group.eq(s1_group)]
        with m.If(s1_valid):
            for p in range(pe):
                m.d.sync += sums[p].eq(Mux(s1_first, 0, sums[p]) + weighted[p])
        m.submodules.rom = rom = Memory(shape=unsigned(self.rom_layout.size),
                                        depth=self._groups, init=self.rom_words)
        rom_rd = rom.read_port(domain="sync")
        m.d.comb += rom_rd.addr.eq(s1_group)
        params = data.View(self.rom_layout, rom_rd.data)
        m.d.comb += [self.trace.valid.eq(s2_valid), self.trace.payload.group.eq(s2_group)]
        for p in range(pe):
            m.d.comb += self.trace.payload.sums[p].eq(sums[p])

        # Stage 3: A * S.
        ws = self._score_width
        product = Signal(data.ArrayLayout(signed(ws), pe), name="product")
        s3_valid = Signal(name="s3_valid")
        s3_group = Signal.like(s1_group, name="s3_group")
        m.d.sync += [s3_valid.eq(s2_valid), s3_group.eq(s2_group)]
        for p in range(pe):
            m.d.sync += product[p].eq(sums[p] * params.scale[p])
        s3_offset = Signal(data.ArrayLayout(signed(ws), pe), name="s3_offset")
        m.d.sync += s3_offset.eq(params.offset)

        # Stage 4: + C.
        score = Signal(data.ArrayLayout(signed(ws), pe), name="score")
        s4_valid = Signal(name="s4_valid")
        s4_group = Signal.like(s1_group, name="s4_group")
        m.d.sync += [s4_valid.eq(s3_valid), s4_group.eq(s3_group)]
        for p in range(pe):
            m.d.sync += score[p].eq(product[p] + s3_offset[p])

        # Stage 5: keep the scores; reduce the group's lanes to their best (value, index) in
        # a tree registered after every level (lower index wins ties: the right operand is
        # taken only when strictly greater).
        index_shape = self.o_layout["prediction"].shape
        nodes = []
        for p in range(pe):
            idx = Signal(index_shape, name=f"lane_index{p}")
            present = Signal(name=f"lane_present{p}")
            # Compare before truncating to the index width: padding lanes are not present.
            m.d.comb += [idx.eq(s4_group * pe + p), present.eq(s4_group * pe + p < self._classes)]
            nodes.append((score[p], idx, present))
        valid, group = s4_valid, s4_group
        level = 0
        while len(nodes) > 1:
            level += 1
            merged = []
            for k in range(0, len(nodes) - 1, 2):
                (va, ia, pa), (vb, ib, pb) = nodes[k], nodes[k + 1]
                v = Signal(signed(ws), name=f"tree{level}_{k // 2}_score")
                i = Signal(index_shape, name=f"tree{level}_{k // 2}_index")
                q = Signal(name=f"tree{level}_{k // 2}_present")
                take_b = pb & (~pa | _greater(m, vb, va, f"tree{level}_{k // 2}"))
                m.d.sync += [v.eq(Mux(take_b, vb, va)), i.eq(Mux(take_b, ib, ia)),
                             q.eq(pa | pb)]
                merged.append((v, i, q))
            if len(nodes) % 2:
                va, ia, pa = nodes[-1]
                v = Signal(signed(ws), name=f"tree{level}_last_score")
                i = Signal(index_shape, name=f"tree{level}_last_index")
                q = Signal(name=f"tree{level}_last_present")
                m.d.sync += [v.eq(va), i.eq(ia), q.eq(pa)]
                merged.append((v, i, q))
            nodes = merged
            valid = delay(m, valid, 1, f"tree{level}_valid")
            group = delay(m, group, 1, f"tree{level}_group")
        group_best, group_index, _ = nodes[0]

        # The group's scores go into the result registers when its argmax is known, so a
        # sample's result is complete and unchanged in the cycle ``o`` carries it.
        # (In the cycle of the running argmax's update, one after the tree: a next sample's
        # first group may follow at once.)
        lanes_late = delay(m, score, level + 1, "lane_scores")
        write = delay(m, valid, 1, "scores_write")
        write_group = delay(m, group, 1, "scores_group")
        scores = Signal(self.o_layout["scores"].shape, name="scores")
        with m.If(write):
            for j in range(self._classes):
                with m.If(write_group == j // pe):
                    m.d.sync += scores[j].eq(lanes_late[j % pe])

        # Stage 6: the running best over the groups, in two cycles, so that the comparison
        # ends in one register (``take``) and not in the enables of the best's: the group's
        # best is compared with the best so far (including the previous cycle's candidate,
        # when it was taken), then written. The result after the last group.
        best = Signal(signed(ws), name="best_score")
        best_index = Signal(index_shape, name="best_index")
        cand = Signal(signed(ws), name="candidate_score")
        cand_index = Signal(index_shape, name="candidate_index")
        take = Signal(name="take")
        last = Signal(name="last_group")
        done = Signal(name="done")
        so_far = Mux(take, cand, best)
        m.d.sync += [cand.eq(group_best), cand_index.eq(group_index),
                     take.eq(valid & ((group == 0) | _greater(m, group_best, so_far, "running"))),
                     last.eq(valid & (group == self._groups - 1)), done.eq(last)]
        with m.If(take):
            m.d.sync += [best.eq(cand), best_index.eq(cand_index)]
        m.d.comb += [self.o.valid.eq(done), self.o.payload.prediction.eq(best_index),
                     self.o.payload.scores.eq(scores)]
        return m
