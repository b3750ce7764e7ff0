"""PE leaky integrate-and-fire neurons: charge, fire, reset (docs/arithmetic.md §4)."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import timing
from hw.common import check_choice, check_int, check_step_gain, gain_lookup
from sw import fixedpoint as fx

__all__ = ["LIFUnit"]


class LIFUnit(wiring.Component):
    """PE LIF neurons updated one time step per operation.

    Per lane p, with the operation's synaptic sum ``x``, the neuron's bias ``B``, threshold
    ``Θ`` and connection flag ``c``, and the time step's gain ``G[t]``::

        I = G[t] * (c ? (x << F) + B : B)                 charge
        h = leak(v) + I                                    v is the lane's membrane register
        s = h >= Θ                                         fire
        v = hard: s ? 0 : h      soft: s ? h - Θ : h       reset

    ``leak(v) = v - (v >>> k)`` (``sw.fixedpoint.leak``). The comparison is done as
    ``leak(v) + (I - Θ) >= 0`` with ``I - Θ`` computed a stage earlier, and each of the two
    three-operand sums ``v - (v >>> k) + c`` is reduced carry-save to a single adder, so the
    one-cycle membrane loop holds one carry chain (plus a LUT level before and after).
    A lane's operations are the time steps 0..T-1 of one neuron, in order, then those of the
    next neuron: after time step T-1 the lane's register is cleared, so every neuron (and
    every sample) starts from ``v = 0`` with no test in the loop.

    **Timing**: latency :attr:`latency` cycles (3, or 4 with step gains other than 1;
    :func:`hw.timing.lif_latency`) from an operation on ``i`` to its result on ``o``; one
    operation per cycle; operations of the same lane may follow each other back to back (the
    membrane loop is one cycle). No backpressure (``always_ready`` streams). Reset clears the
    valid flags and the membranes.

    Parameters
    ----------
    pe : int
        Neurons per operation (>= 1).
    width : int
        W, the membrane width (``layer.membrane.width``, 2..62).
    frac : int
        F, the membrane's fractional bits (0..W-1).
    leak_shift : int or None
        k (1 <= k < W), or None for no leak.
    reset : {"hard", "soft"}
    step_gain : tuple of int
        G[t] >= 1 for t = 0..T-1; a multiplier is built only if one differs from 1.
    current_width : int
        Width of the signed synaptic sums ``x`` on ``i`` (2..62).
    tag_shape : shape-like
        Shape of the ``tag`` carried from an operation to its result.

    Members
    -------
    i : In(stream.Signature(StructLayout({current, bias, threshold, connected, time_step,
        tag}), always_ready=True))
    o : Out(stream.Signature(StructLayout({spikes, potential, membrane, current, time_step,
        tag}), always_ready=True))
        ``potential`` is h, ``membrane`` the v carried to the next time step, ``current``
        the operation's x.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, pe: int, *, width: int, frac: int, leak_shift, reset: str,
                 step_gain, current_width: int, tag_shape=0):
        check_int("pe", pe, 1)
        check_int("width", width, 2, fx.MAX_WIDTH)
        check_int("frac", frac, 0, width - 1)
        if leak_shift is not None:
            check_int("leak_shift", leak_shift, 1, width - 1)
        check_choice("reset", reset, ("hard", "soft"))
        step_gain = check_step_gain(step_gain)
        check_int("current_width", current_width, 2, fx.MAX_WIDTH)
        self._pe, self._width, self._frac = pe, width, frac
        self._leak_shift, self._reset = leak_shift, reset
        self._gain = tuple(int(g) for g in step_gain)
        self._current_width = current_width
        steps = len(self._gain)
        lanes = data.ArrayLayout
        self.i_layout = data.StructLayout({
            "current": lanes(signed(current_width), pe),
            "bias": lanes(signed(width), pe),
            "threshold": lanes(signed(width), pe),
            "connected": unsigned(pe),
            "time_step": unsigned(fx.ceil_log2(steps)),
            "tag": tag_shape,
        })
        self.o_layout = data.StructLayout({
            "spikes": unsigned(pe),
            "potential": lanes(signed(width), pe),
            "membrane": lanes(signed(width), pe),
            "current": lanes(signed(current_width), pe),
            "time_step": unsigned(fx.ceil_log2(steps)),
            "tag": tag_shape,
        })
        super().__init__({
            "i": In(stream.Signature(self.i_layout, always_ready=True)),
            "o": Out(stream.Signature(self.o_layout, always_ready=True)),
        })

    @property
    def has_gain(self) -> bool:
        """Whether a step-gain multiplier is built (:func:`hw.timing.has_step_gain`)."""
        return timing.has_step_gain(self._gain)

    @property
    def latency(self) -> int:
        """Cycles from an operation on ``i`` to its result on ``o``
        (:func:`hw.timing.lif_latency`)."""
        return timing.lif_latency(self._gain)

    def elaborate(self, platform):
        m = Module()
        pe, w, f = self._pe, self._width, self._frac
        op = self.i.payload

        # Stage 1: drive D = c ? (x << F) + B : B, registered (the operation's fields come
        # from registers and the parameter ROM's read port).
        s1 = Signal(self.i_layout, name="s1")
        s1_valid = Signal(name="s1_valid")
        drive = Signal(data.ArrayLayout(signed(w), pe), name="drive")
        # Θ less the loop's +1 (with a leak, see stage 4), ready for stage 3's one subtraction:
        # D - Θ + 1 as two adders in series would be the pipeline's longest path.
        k = self._leak_shift
        bump = 0 if k is None else 1
        thr = Signal(data.ArrayLayout(signed(w + 1), pe), name="threshold_less_bump")
        m.d.sync += [s1_valid.eq(self.i.valid), s1.eq(op)]
        for p in range(pe):
            charged = (op.current[p] << f) + op.bias[p]
            m.d.sync += [drive[p].eq(Mux(op.connected[p], charged, op.bias[p])),
                         thr[p].eq(op.threshold[p] - bump)]

        # Stage 2 (with gains): I = G[t] * D.
        valid, carried = s1_valid, s1
        if self.has_gain:
            g_t = gain_lookup(m, self._gain, s1.time_step)
            s2 = Signal(self.i_layout, name="s2")
            s2_valid = Signal(name="s2_valid")
            scaled = Signal(data.ArrayLayout(signed(w), pe), name="scaled")
            thr2 = Signal.like(thr, name="threshold_less_bump_d2")
            m.d.sync += [s2_valid.eq(s1_valid), s2.eq(s1), thr2.eq(thr)]
            for p in range(pe):
                m.d.sync += scaled[p].eq(drive[p] * g_t)
            valid, carried, drive, thr = s2_valid, s2, scaled, thr2

        # Stage 3: the loop's addends, I and I - Θ (plus one with a leak, see below).
        ext = w + 2
        current = Signal(data.ArrayLayout(signed(ext), pe), name="input_current")
        margin = Signal(data.ArrayLayout(signed(ext), pe), name="margin")
        s3 = Signal(self.i_layout, name="s3")
        s3_valid = Signal(name="s3_valid")
        s3_last = Signal(name="s3_last")  # t == T-1: the lane's register is cleared after it
        m.d.sync += [s3_valid.eq(valid), s3.eq(carried),
                     s3_last.eq(carried.time_step == len(self._gain) - 1)]
        for p in range(pe):
            m.d.sync += [current[p].eq(drive[p] + bump),
                         margin[p].eq(drive[p] - thr[p])]

        # Stage 4: the membrane loop. With a leak, leak(v) + c = v + ~(v >>> k) + (c + 1):
        # three addends reduced bitwise (one LUT level, carry-save) into one carry chain, so
        # the loop is LUT, adder, compare-and-select, for h and for h - Θ side by side.
        membrane = [Signal(signed(w), name=f"membrane{p}") for p in range(pe)]
        # The loop's logic is combinational from the registers alone, outside the
        # ``If(s3_valid)`` below: an assignment inside it would gate v with s3_valid, putting that
        # high-fanout flag at the head of every lane's carry chains.
        lanes_out = []
        for p in range(pe):
            v = Signal(signed(ext), name=f"v{p}")
            m.d.comb += v.eq(membrane[p])
            kept = v.as_unsigned()
            h = Signal(signed(ext), name=f"potential{p}")
            d = Signal(signed(ext), name=f"over{p}")
            if k is None:
                m.d.comb += [h.eq(kept.as_signed() + current[p]),
                             d.eq(kept.as_signed() + margin[p])]
            else:
                shifted = (~(v >> k)).as_unsigned()
                for total, addend in ((h, current[p]), (d, margin[p])):
                    a_, b_, c_ = kept, shifted, addend.as_unsigned()
                    ssum = Signal(ext, name=f"{total.name}_sum")
                    scarry = Signal(ext, name=f"{total.name}_carry")
                    m.d.comb += [ssum.eq(a_ ^ b_ ^ c_),
                                 scarry.eq(((a_ & b_) | (a_ & c_) | (b_ & c_)) << 1)]
                    m.d.comb += total.eq(ssum + scarry)
            fire = Signal(name=f"fire{p}")
            m.d.comb += fire.eq(~d[ext - 1])
            reset_value = 0 if self._reset == "hard" else d[:w]
            nxt = Signal(signed(w), name=f"next{p}")
            m.d.comb += nxt.eq(Mux(fire, reset_value, h[:w]))
            lanes_out.append((h, nxt, fire))
        m.d.sync += [self.o.valid.eq(s3_valid)]
        with m.If(s3_valid):
            m.d.sync += [self.o.payload.time_step.eq(s3.time_step),
                         self.o.payload.tag.eq(s3.tag), self.o.payload.current.eq(s3.current)]
            for p, (h, nxt, _) in enumerate(lanes_out):
                # The register starts the lane's next neuron (t = 0) from v = 0.
                m.d.sync += [membrane[p].eq(Mux(s3_last, 0, nxt)),
                             self.o.payload.potential[p].eq(h[:w]),
                             self.o.payload.membrane[p].eq(nxt)]
            m.d.sync += self.o.payload.spikes.eq(Cat(*(fire for *_, fire in lanes_out)))
        return m
