"""The accelerator alone in a pin harness: the design of the flow's core-only target.

The harness gives the accelerator a handful of pins (the input payload shifts in from one pin,
the output payload is folded to a parity pin and the prediction), so it fits any package and
nothing is optimised away; the flow (:func:`bitstreams.flow.build_core`) synthesises and places
it on a board's device to measure the accelerator's own cost and timing, without the host link.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CoreHarness"]


class CoreHarness(wiring.Component):
    """A component around an accelerator with a handful of pins.

    Timing
    ------
    ``din`` shifts into a register as wide as the input payload, one bit per cycle; ``load``
    presents that register on the accelerator's input stream (``i.valid``); ``take`` is
    ``o.ready``. ``busy`` is ``~i.ready``; ``dout`` (the parity of the output payload),
    ``done`` (``o.valid``) and ``pred`` (the prediction) are registered.

    Parameters
    ----------
    accelerator : hw.Accelerator
        The design measured.

    Members
    -------
    din, load, take : In(1)
    busy, dout, done : Out(1)
    pred : Out(prediction width)
    """

    def __init__(self, accelerator):
        from hw.accelerator import Accelerator

        if not isinstance(accelerator, Accelerator):
            raise TypeError(f"accelerator must be an hw.Accelerator, not {accelerator!r}")
        self.accelerator = accelerator
        super().__init__({"din": In(1), "load": In(1), "take": In(1), "busy": Out(1),
                          "dout": Out(1), "done": Out(1),
                          "pred": Out(len(accelerator.o.payload.prediction))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = a = self.accelerator
        width = len(a.i.payload.as_value())
        shift = Signal(width)
        m.d.sync += shift.eq((shift << 1) | self.din)
        m.d.comb += [a.i.payload.eq(shift), a.i.valid.eq(self.load),
                     self.busy.eq(~a.i.ready), a.o.ready.eq(self.take)]
        out = a.o.payload.as_value()
        m.d.sync += [self.dout.eq(out.xor()), self.done.eq(a.o.valid),
                     self.pred.eq(a.o.payload.prediction)]
        return m
