"""Stream payload layouts read from a hardware description (JSON), and packing through them.

The accelerator's generator writes, for every stream, the layout of its payload as a list of
fields (name, bit offset, width, signedness; arrays with their element layout). The testbench
packs what it sends and unpacks what it receives through :class:`PayloadLayout` built from that
list, so the bit positions are never typed twice: the hardware and the testbench cannot drift.

Nothing here imports cocotb or amaranth; the functions work on Python ints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sw.checks import is_int

__all__ = ["LayoutError", "Field", "PayloadLayout", "to_signed"]


class LayoutError(ValueError):
    """A payload layout in a description is malformed, or a value does not fit its field."""


def to_signed(value: int, width: int) -> int:
    """Read the ``width``-bit two's-complement integer stored in ``value``'s low bits."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


@dataclass(frozen=True)
class Field:
    """One field of a payload: an integer, or an array of ``count`` equal integers.

    Attributes
    ----------
    name : str
    offset : int
        Bit offset of the field's least significant bit in the payload.
    width : int
        Total bits of the field (``count * element_width`` for arrays).
    signed : bool
        Signedness of the integer or of each element.
    count : int or None
        Number of elements for an array field, None for a scalar.
    element_width : int
        Width of one element (equals ``width`` for a scalar).
    """

    name: str
    offset: int
    width: int
    signed: bool = False
    count: int | None = None
    element_width: int = 0

    def __post_init__(self):
        if self.element_width == 0:
            object.__setattr__(self, "element_width", self.width)
        for attr in ("offset", "width", "element_width"):
            value = getattr(self, attr)
            if not is_int(value) or value < 0:
                raise LayoutError(f"field {self.name!r}: {attr} must be an int >= 0, "
                                  f"not {value!r}")
        if self.count is not None and self.count * self.element_width != self.width:
            raise LayoutError(f"field {self.name!r}: {self.count} elements of "
                              f"{self.element_width} bits do not make its width {self.width}")

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def _check(self, v: int, where: str) -> int:
        if not is_int(v):
            try:
                v = int(v)  # numpy integers
            except (TypeError, ValueError):
                raise LayoutError(f"{where}: expected an int, not {v!r}") from None
        w = self.element_width
        lo, hi = ((-(1 << (w - 1)), (1 << (w - 1)) - 1) if self.signed else (0, (1 << w) - 1))
        if w and not lo <= v <= hi:
            kind = "signed" if self.signed else "unsigned"
            raise LayoutError(f"{where}: {v} does not fit {w} bits ({kind}, {lo}..{hi})")
        return v & ((1 << w) - 1)

    def encode(self, value) -> int:
        """The field's bits (not yet shifted to its offset)."""
        if self.count is None:
            return self._check(value, f"field {self.name!r}")
        values = list(value)
        if len(values) != self.count:
            raise LayoutError(f"field {self.name!r}: expected {self.count} elements, "
                              f"got {len(values)}")
        bits = 0
        for k, v in enumerate(values):
            bits |= self._check(v, f"field {self.name!r}[{k}]") << (k * self.element_width)
        return bits

    def decode(self, bits: int):
        """The field's value from its bits (already shifted down from its offset)."""
        w = self.element_width
        if self.count is None:
            return to_signed(bits, w) if self.signed and w else bits & self.mask

        def one(k):
            raw = (bits >> (k * w)) & ((1 << w) - 1)
            return to_signed(raw, w) if self.signed and w else raw

        return [one(k) for k in range(self.count)]


class PayloadLayout:
    """A payload: named fields at bit offsets, read from a description.

    Parameters
    ----------
    fields : sequence of Field
    width : int
        Total payload width in bits (the port width).
    """

    def __init__(self, fields: Sequence[Field], width: int):
        if not is_int(width) or width < 0:
            raise LayoutError(f"width must be an int >= 0, not {width!r}")
        self.fields = tuple(fields)
        self.width = width
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise LayoutError(f"field names must be unique, not {names}")
        used = 0
        for f in sorted(self.fields, key=lambda f: f.offset):
            if f.offset < used:
                raise LayoutError(f"field {f.name!r} at bit {f.offset} overlaps the field "
                                  f"before it (which ends at bit {used})")
            used = f.offset + f.width
        if used > width:
            raise LayoutError(f"fields end at bit {used}, beyond the payload width {width}")
        self._by_name = {f.name: f for f in self.fields}

    def __getitem__(self, name: str) -> Field:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple:
        return tuple(f.name for f in self.fields)

    def pack(self, values: Mapping) -> int:
        """Pack ``{field: value}`` (every field) into the payload integer."""
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self._by_name]
        if missing or extra:
            raise LayoutError(f"pack needs exactly the fields {list(self.names)}; "
                              f"missing {missing}, unknown {extra}")
        word = 0
        for f in self.fields:
            word |= f.encode(values[f.name]) << f.offset
        return word

    def unpack(self, word: int) -> dict:
        """``{field: value}`` from the payload integer (signed fields sign-extended)."""
        word = int(word)
        return {f.name: f.decode((word >> f.offset) & f.mask) for f in self.fields}

    @classmethod
    def from_json(cls, obj, where: str = "payload") -> PayloadLayout:
        """Build from a description's layout: ``{"width": W, "fields": [...]}``.

        Each field is ``{"name", "offset", "width", "signed"}``; an array field adds
        ``"count"`` and ``"element": {"width", "signed"}``.
        """
        if not isinstance(obj, Mapping) or "fields" not in obj or "width" not in obj:
            raise LayoutError(f"{where}: expected an object with 'width' and 'fields', "
                              f"found {obj!r}")
        fields = []
        for k, fobj in enumerate(obj["fields"]):
            try:
                name = fobj["name"]
                offset, width = fobj["offset"], fobj["width"]
                element = fobj.get("element")
                if element is not None or fobj.get("count") is not None:
                    if element is None or "count" not in fobj:
                        raise KeyError("count/element")
                    fields.append(Field(name, offset, width, bool(element.get("signed", False)),
                                        count=fobj["count"], element_width=element["width"]))
                else:
                    fields.append(Field(name, offset, width, bool(fobj.get("signed", False))))
            except (KeyError, TypeError, AttributeError) as exc:
                raise LayoutError(f"{where}.fields[{k}]: expected name, offset, width, signed "
                                  f"(and count/element for arrays), found {fobj!r} "
                                  f"({exc})") from None
        return cls(fields, obj["width"])

    def to_json(self) -> dict:
        out = []
        for f in self.fields:
            item = {"name": f.name, "offset": f.offset, "width": f.width, "signed": f.signed}
            if f.count is not None:
                item["count"] = f.count
                item["element"] = {"width": f.element_width, "signed": f.signed}
            out.append(item)
        return {"width": self.width, "fields": out}

    def __repr__(self):
        return f"PayloadLayout({', '.join(f'{f.name}@{f.offset}:{f.width}' for f in self.fields)})"
