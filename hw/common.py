"""Small helpers shared by the gateware: parameter checks, delay lines, layout descriptions."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data

from sw.checks import check_bool, check_choice, check_int, check_step_gain

# The parameter checks live in sw.checks (Amaranth-free); re-exported for the gateware.
__all__ = ["check_int", "check_bool", "check_choice", "check_step_gain", "delay", "layout_json"]


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
