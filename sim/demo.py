"""A small stream design that exercises the verification machinery on its own.

:class:`StreamFifo` is Amaranth's ``SyncFIFOBuffered`` behind ``lib.stream`` interfaces ``i`` and
``o`` with a structured payload (a signed value, an unsigned tag, an array of signed elements).
:func:`generate` writes its Verilog and a JSON description shaped like the accelerator's (top
module, clock and reset, streams with their payload layouts), so the stream drivers, the layout
packing, the scoreboard and the runner wrapper are tested on a design whose behaviour is known
exactly (every item comes out once, in order) before they meet the accelerator.
"""

from __future__ import annotations

import os
from pathlib import Path

from amaranth import Module, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.atomic import atomic_write_json, atomic_write_text
from sw.checks import is_int

__all__ = ["StreamFifo", "generate", "payload_layout"]


def payload_layout(width: int, elements: int) -> data.StructLayout:
    return data.StructLayout({
        "value": signed(width),
        "tag": unsigned(3),
        "items": data.ArrayLayout(signed(5), elements),
    })


class StreamFifo(wiring.Component):
    """A FIFO between two streams.

    **Timing**: an item written at edge k can be read from edge k+2 on (the buffered FIFO's
    registered output); ``i.ready`` is low only when the FIFO is full; reset empties it.

    Parameters
    ----------
    width : int
        Width of the ``value`` field (2..64).
    depth : int
        FIFO depth (>= 2).
    elements : int
        Elements of the ``items`` array field (>= 1).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, width: int = 12, depth: int = 4, elements: int = 3):
        for name, value, lo, hi in (("width", width, 2, 64), ("depth", depth, 2, 1 << 16),
                                    ("elements", elements, 1, 64)):
            if not is_int(value):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
        self.layout = payload_layout(width, elements)
        self.depth = depth
        super().__init__({"i": In(stream.Signature(self.layout)),
                          "o": Out(stream.Signature(self.layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=self.layout.size, depth=self.depth)
        m.d.comb += [
            buf.w_data.eq(self.i.payload),
            buf.w_en.eq(self.i.valid),
            self.i.ready.eq(buf.w_rdy),
            self.o.payload.eq(buf.r_data),
            self.o.valid.eq(buf.r_rdy),
            buf.r_en.eq(self.o.ready),
        ]
        return m


def _layout_json(layout: data.StructLayout) -> dict:
    fields = []
    for name, member in layout:
        shape = member.shape
        if isinstance(shape, data.ArrayLayout):
            elem = shape.elem_shape
            fields.append({"name": name, "offset": member.offset, "width": member.width,
                           "signed": False, "count": shape.length,
                           "element": {"width": elem.width, "signed": elem.signed}})
        else:
            fields.append({"name": name, "offset": member.offset, "width": member.width,
                           "signed": shape.signed})
    return {"width": layout.size, "fields": fields}


def generate(out_dir: str | os.PathLike, *, width: int = 12, depth: int = 4,
             elements: int = 3, name: str = "stream_fifo") -> dict:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; return the description."""
    from amaranth.back import verilog

    dut = StreamFifo(width, depth, elements)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(dut, name=name, emit_src=False)
    layout = _layout_json(dut.layout)
    desc = {
        "top": name,
        "verilog": f"{name}.v",
        "clock": "clk",
        "reset": "rst",
        "streams": {
            "i": {"direction": "in", "valid": "i__valid", "ready": "i__ready",
                  "payload": "i__payload", "layout": layout},
            "o": {"direction": "out", "valid": "o__valid", "ready": "o__ready",
                  "payload": "o__payload", "layout": layout},
        },
        "depth": depth,
    }
    atomic_write_text(out / f"{name}.v", text)
    atomic_write_json(out / f"{name}.json", desc)
    return desc
