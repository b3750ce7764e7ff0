"""The XNOR/popcount synapse array: SIMD input bits x PE neurons per cycle, accumulated over folds.

docs/arithmetic.md §2: for a chunk of input bits ``s`` and a neuron's weight bits ``w``, the
chunk's share of the synaptic sum is ``2 * popcount(s & w) - popcount(s)``, which is also
``popcount(w) - popcount(s ^ w)``. The array uses the second form: it counts the mismatches
``d_p = popcount(s ^ w_p)`` of each of its PE neurons, accumulates them over the synapse folds
(and bit-planes, most significant first, by Horner's rule: ``acc = 2 * acc + d`` at the start
of each lower plane) and emits ``-D_p`` when the last fold has gone in. The weight counts are
constants of the artifact: ``x_p = K_p - D_p`` with ``K_p = (2^P - 1) * popcount(w_p)``
(:func:`weight_counts`), which the stages fold into their parameters (a LIF stage's bias, a
readout's offset), so no popcount of the inputs is needed: one tree per neuron, none shared.
Padding (inputs beyond the layer's, a conv window's zero padding) is a 0 bit in ``s`` and, in
the packed weights beyond the layer's inputs, a 0 bit in ``w``; a padded window position keeps
its weight bit, which it adds to ``D`` and ``K`` alike.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import timing
from hw.common import check_int, delay
from sw import fixedpoint as fx

__all__ = ["popcount", "popcount_register_levels", "weight_counts", "SynapseArray"]


def weight_counts(weights, input_bits: int = 1) -> list[int]:
    """``K_j = (2^P - 1) * popcount(w_j)`` for every row j of a (rows, inputs) weight-bit
    matrix: the synaptic sum of row j is ``K_j`` less what :class:`SynapseArray` counts."""
    w = np.asarray(weights, dtype=np.int64)
    return [int(k) * fx.input_max(input_bits) for k in w.sum(axis=1)]


def popcount_register_levels(width: int, stages: int) -> list[int]:
    """Tree levels after which :func:`popcount` places its ``stages`` registers.

    A ``width``-bit popcount is a tree of ``ceil_log2(width)`` adder levels. The last register
    goes after the last level (so the count leaves the tree from a register), the others are
    spread evenly before it.
    """
    levels = fx.ceil_log2(max(width, 1))
    return [round((k + 1) * levels / stages) for k in range(stages)]


def popcount(m: Module, bits, stages: int, name: str):
    """Add a pipelined popcount of ``bits`` to ``m``; the count appears ``stages`` cycles later.

    Returns the count (unsigned, ``unsigned_width(len(bits))`` bits).
    """
    width = len(bits)
    out_width = fx.unsigned_width(width)
    level_regs = popcount_register_levels(width, stages)
    # Each term is (value, number of input bits it counts).
    terms = [(bits[k], 1) for k in range(width)]

    def register_after(level, terms):
        for _ in range(level_regs.count(level)):
            regs = []
            for k, (value, leaves) in enumerate(terms):
                r = Signal(fx.unsigned_width(leaves), name=f"{name}_l{level}_{k}")
                m.d.sync += r.eq(value)
                regs.append((r, leaves))
            terms = regs
        return terms

    levels = fx.ceil_log2(max(width, 1))
    terms = register_after(0, terms)
    for level in range(1, levels + 1):
        nxt = []
        for k in range(0, len(terms) - 1, 2):
            (a, na), (b, nb) = terms[k], terms[k + 1]
            nxt.append(((a + b)[:fx.unsigned_width(na + nb)], na + nb))
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = register_after(level, nxt)
    count = Signal(out_width, name=f"{name}_count")
    m.d.comb += count.eq(terms[0][0])
    return count


class SynapseArray(wiring.Component):
    """SIMD x PE XNOR/popcount array with fold accumulators.

    One operation per cycle: a chunk of ``simd`` input bits (one bit-plane of it for multi-bit
    inputs) and the ``pe * simd`` weight bits of one memory word (bit ``p * simd + s`` is the
    weight of neuron p for input s, the layout of :func:`sw.folding.pack_weights`). Operations
    flagged ``first`` start a new sum, ``shift`` starts the next lower bit-plane (the sums so
    far are doubled first), ``last`` ends it: the PE sums ``x_p - K_p`` (minus the mismatch
    counts; :func:`weight_counts` gives ``K``) appear on ``o`` with the operation's ``tag``.

    **Timing**: latency :attr:`latency` = ``popcount_stages + 2`` cycles
    (:func:`hw.timing.synapse_latency`) from an operation with ``last`` on ``i`` to its sums on
    ``o``; one operation per cycle, no backpressure (both streams are
    ``always_ready``: the caller schedules operations). Reset clears the output valid only;
    every sum starts with a ``first`` operation.

    Parameters
    ----------
    simd : int
        Input bits per operation (>= 1).
    pe : int
        Neurons per operation (>= 1).
    inputs : int
        N, the layer's input count (>= 1); bounds the sums.
    input_bits : int
        P, bits per input (1 for spikes, 1..16 for multi-bit inputs).
    popcount_stages : int
        Register stages inside each popcount tree (:data:`hw.timing.POPCOUNT_STAGES`: 0..8).
    tag_shape : shape-like
        Shape of the ``tag`` carried from an operation to its sums.

    Members
    -------
    i : In(stream.Signature(StructLayout({spikes, weights, first, last, shift, tag}),
        always_ready=True))
    o : Out(stream.Signature(StructLayout({sums: ArrayLayout(signed(sum_width), pe), tag}),
        always_ready=True))

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, simd: int, pe: int, *, inputs: int, input_bits: int = 1,
                 popcount_stages: int = 3, tag_shape=0):
        check_int("simd", simd, 1)
        check_int("pe", pe, 1)
        check_int("inputs", inputs, 1)
        check_int("input_bits", input_bits, 1, 16)
        timing.check_popcount_stages(popcount_stages)
        if simd > inputs:
            raise ValueError(f"simd must be <= inputs = {inputs}, not {simd!r}")
        self._simd, self._pe = simd, pe
        self._inputs, self._input_bits = inputs, input_bits
        self._stages = popcount_stages
        bound = fx.synaptic_bound(inputs, input_bits)
        self._sum_width = fx.signed_width(bound)
        self.i_layout = data.StructLayout({
            "spikes": unsigned(simd),
            "weights": unsigned(simd * pe),
            "first": unsigned(1),
            "last": unsigned(1),
            "shift": unsigned(1),
            "tag": tag_shape,
        })
        self.o_layout = data.StructLayout({
            "sums": data.ArrayLayout(signed(self._sum_width), pe),
            "tag": tag_shape,
        })
        super().__init__({
            "i": In(stream.Signature(self.i_layout, always_ready=True)),
            "o": Out(stream.Signature(self.o_layout, always_ready=True)),
        })

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def pe(self) -> int:
        return self._pe

    @property
    def sum_width(self) -> int:
        """Width of each signed sum: ``signed_width(synaptic_bound(inputs, input_bits))``."""
        return self._sum_width

    @property
    def latency(self) -> int:
        """Cycles from an operation with ``last`` on ``i`` to its sums on ``o``
        (:func:`hw.timing.synapse_latency`)."""
        return timing.synapse_latency(self._stages)

    def elaborate(self, platform):
        m = Module()
        simd, pe, stages = self._simd, self._pe, self._stages
        op = self.i.payload

        counts = []
        for p in range(pe):
            word = op.weights[p * simd:(p + 1) * simd]
            counts.append(popcount(m, op.spikes ^ word, stages, f"popcount{p}"))
        valid = delay(m, self.i.valid, stages, "valid")
        first = delay(m, op.first, stages, "first")
        last = delay(m, op.last, stages, "last")
        shift = delay(m, op.shift, stages, "shift")
        tag = delay(m, op.tag, stages, "tag")

        # Accumulate the mismatches negated, -D_p (a subtraction per cycle, so the output
        # needs no negation of its own): first -> -d; shift -> 2 * acc - d; else acc - d.
        acc = [Signal(signed(self._sum_width), name=f"acc{p}") for p in range(pe)]
        done = Signal(name="done")
        done_tag = Signal.like(tag, name="done_tag")
        m.d.sync += done.eq(valid & last)
        with m.If(valid):
            m.d.sync += done_tag.eq(tag)
            for reg, cnt in zip(acc, counts, strict=True):
                base = Mux(first, 0, Mux(shift, reg << 1, reg))
                m.d.sync += reg.eq(base - cnt)

        # x_p - K_p = -D_p, registered.
        m.d.sync += self.o.valid.eq(done)
        with m.If(done):
            m.d.sync += self.o.payload.tag.eq(done_tag)
            for p in range(pe):
                m.d.sync += self.o.payload.sums[p].eq(acc[p])
        return m
