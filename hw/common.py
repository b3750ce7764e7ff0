"""Small helpers shared by the gateware: parameter checks, delay lines, layout descriptions."""

from __future__ import annotations

from amaranth import Module, Signal, unsigned
from amaranth.lib import data

__all__ = ["check_int", "check_bool", "check_choice", "delay", "layout_json"]


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` if it is an int in ``lo..hi``; raise TypeError/ValueError naming it."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if lo is not None and value < lo:
        if hi is None:
            raise ValueError(f"{name} must be >= {lo}, not {value!r}")
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_step_gain(step_gain) -> tuple:
    """A non-empty sequence of ints >= 1 (a layer's per-time-step gains), as a tuple."""
    if not isinstance(step_gain, (tuple, list)) or not step_gain:
        raise TypeError(f"step_gain must be a non-empty tuple of ints, not {step_gain!r}")
    for g in step_gain:
        if not isinstance(g, int) or isinstance(g, bool) or g < 1:
            raise ValueError(f"step_gain must hold ints >= 1, not {tuple(step_gain)!r}")
    return tuple(int(g) for g in step_gain)


def check_choice(name: str, value, choices) -> object:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                         f"not {value!r}")
    return value


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
