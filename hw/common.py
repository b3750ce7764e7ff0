"""Small helpers shared by the gateware: parameter checks, delay lines, the step-gain lookup,
layout descriptions."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data

from sw import fixedpoint as fx
from sw.checks import check_bool, check_choice, check_int, check_step_gain

# The parameter checks live in sw.checks (Amaranth-free); re-exported for the gateware.
__all__ = ["check_int", "check_bool", "check_choice", "check_step_gain", "delay", "gain_lookup",
           "layout_json"]


def wrap_signed(value: int, width: int) -> int:
    """``value`` modulo ``2**width`` as a signed ``width``-bit integer (two's complement
    wrap-around: a constant that only ever enters sums whose results fit ``width`` bits)."""
    half = 1 << (width - 1)
    return ((int(value) + half) % (1 << width)) - half


def delay(m: Module, value, cycles: int, name: str):
    """``value`` delayed by ``cycles`` register stages (``value`` itself for 0 cycles).

    Works for plain values and for views (the layout is kept).
    """
    shape = value.shape() if hasattr(value, "shape") else unsigned(len(value))
    for k in range(cycles):
        reg = Signal(shape, name=f"{name}_d{k + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def gain_lookup(m: Module, step_gain, time_step, name: str = "gain") -> Signal:
    """``G[time_step]`` (unsigned, wide enough for the largest gain), combinational.

    A case over the time steps whose default is the last gain: ``time_step`` has
    ``ceil_log2(T)`` bits, so for T not a power of two some of its values are no time step, and
    without the default the case would be incomplete (Verilator's CASEINCOMPLETE; the values
    never occur, so what they select does not matter).
    """
    gain = Signal(fx.unsigned_width(max(step_gain)), name=name)
    with m.Switch(time_step):
        for t, g in enumerate(step_gain[:-1]):
            with m.Case(t):
                m.d.comb += gain.eq(g)
        with m.Default():
            m.d.comb += gain.eq(step_gain[-1])
    return gain


def layout_json(layout) -> dict:
    """Describe a flat payload layout (scalars and arrays of scalars) as JSON.

    ``{"width": W, "fields": [{"name", "offset", "width", "signed"[, "count", "element"]}]}``;
    an array field has ``"count"`` elements of ``"element": {"width", "signed"}``, element k at
    bit ``offset + k * element.width``.
    """
    if not isinstance(layout, data.StructLayout):
        raise TypeError(f"layout must be a StructLayout, not {layout!r}")
    fields = []
    for name, member in layout:
        shape = member.shape
        if isinstance(shape, data.ArrayLayout):
            elem = shape.elem_shape
            if isinstance(elem, data.Layout):
                raise TypeError(f"field {name!r}: nested layouts are not described")
            elem = elem if hasattr(elem, "signed") else elem.as_shape()
            fields.append({"name": name, "offset": member.offset, "width": member.width,
                           "signed": bool(elem.signed), "count": shape.length,
                           "element": {"width": elem.width, "signed": bool(elem.signed)}})
        elif isinstance(shape, data.Layout):
            raise TypeError(f"field {name!r}: nested layouts are not described")
        else:
            shape = shape if hasattr(shape, "signed") else shape.as_shape()
            fields.append({"name": name, "offset": member.offset, "width": member.width,
                           "signed": bool(shape.signed)})
    return {"width": layout.size, "fields": fields}
