"""The window walk of a conv stage: which input pixel, weights and output each operation uses.

A conv stage (:class:`hw.stage.LIFStage` of a :class:`sw.artifact.ConvLayer`) runs the same
:class:`~hw.sequencer.Sequencer` as a dense stage, with one neuron group per (output position,
channel group) and the window's ``K·K·C_in / SIMD`` chunks as its synapse folds. Beside it a
:class:`WindowWalk` follows the sequencer (its ``start``, ``issue`` and ``group_end``) through
the layer's geometry and gives, for the operation the sequencer issues:

* ``chunk``: the input-buffer chunk holding the operation's SIMD inputs. Chunk ``sf`` of a
  window is tap ``(ky, kx) = divmod(sf // (C_in/SIMD), K)``, channels
  ``(sf mod (C_in/SIMD))·SIMD ...`` (the window order of :mod:`sw.geometry`), at input pixel
  ``(y·S − P + ky, x·S − P + kx)``; the map is stored in element order, so that is buffer
  chunk ``(pixel_y·W + pixel_x)·C_in/SIMD + sf mod (C_in/SIMD)``. No padding is stored:
* ``pad``: the tap lies outside the map; the stage feeds zeros for it (an input of 0
  contributes nothing, docs/arithmetic.md §9).
* ``weight_addr``: ``channel_group·SF + sf``, the weight word (every position shares them).
* ``channel_group`` (the parameter ROM address), ``group`` (the neuron group's index in the
  layer's element order over PE, :func:`hw.plan.issue_groups`), ``out_group`` (the group of
  the output buffer: ``group``, or with a fused pool the pooled pixel's), ``window_first`` /
  ``window_last`` (the group is the first / last position of its pool window) and
  ``last_group`` (the sample's last group).

Positions come in :func:`hw.plan.issue_positions` order, and with a fused k×k pool the walk
is pool window → channel group → the window's positions, so the pooled spikes of one channel
group are complete after k·k consecutive groups.

All outputs are combinational from the walk's registers (and the sequencer's chunk); the stage
registers ``chunk`` and ``pad`` before the buffer read (:func:`hw.timing.conv_address_latency`).
"""

from __future__ import annotations

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sw import fixedpoint as fx
from sw.artifact import ConvLayer, PoolLayer
from sw.folding import LayerFolding

__all__ = ["WindowWalk"]


def _wrap(m: Module, counter: Signal, size: int):
    """Advance ``counter`` modulo ``size``; returns the "at its last value" condition (the
    caller's carry into the next counter)."""
    last = counter == size - 1
    with m.If(last):
        m.d.sync += counter.eq(0)
    with m.Else():
        m.d.sync += counter.eq(counter + 1)
    return last


class WindowWalk(wiring.Component):
    """Follows a conv stage's sequencer through its layer's geometry (see the module
    docstring).

    Parameters
    ----------
    layer : ConvLayer
    folding : LayerFolding
        SIMD dividing C_in, PE dividing C_out (:func:`hw.plan.check_stage_folding`).
    pool : PoolLayer or None
        The pool fused into the stage's output.

    Members
    -------
    start, issue, group_end : In(1)
        The sequencer's ``start``, ``valid`` and ``group_end``.
    sf : In(range(SF))
        The sequencer's ``chunk``: the operation's chunk of the window.
    chunk, pad, weight_addr, channel_group, group, out_group, window_first, window_last,
    last_group : Out
    """

    def __init__(self, layer: ConvLayer, folding: LayerFolding, pool: PoolLayer | None = None):
        if not isinstance(layer, ConvLayer):
            raise TypeError(f"layer must be a ConvLayer, not {type(layer).__name__}")
        self.layer, self.folding, self.pool = layer, folding, pool
        c_in, self._h, self._w = layer.in_shape
        self._sub = c_in // folding.simd
        self._sf = folding.synapse_folds(layer)
        self._ncg = folding.neuron_folds(layer)
        _, h_out, w_out = layer.out_shape
        self._k = 1 if pool is None else pool.kernel
        # the pooled map's size is the pool layer's (sw.geometry.pool_output_size)
        self._hp, self._wp = (h_out, w_out) if pool is None else pool.out_shape[1:]
        self._w_out = w_out
        groups = h_out * w_out * self._ncg
        out_groups = self._hp * self._wp * self._ncg
        chunks = fx.ceil_div(layer.inputs, folding.simd)
        super().__init__({
            "start": In(1), "issue": In(1), "group_end": In(1),
            "sf": In(unsigned(fx.ceil_log2(self._sf))),
            "chunk": Out(unsigned(fx.ceil_log2(chunks))), "pad": Out(1),
            "weight_addr": Out(unsigned(fx.ceil_log2(self._ncg * self._sf))),
            "channel_group": Out(unsigned(fx.ceil_log2(self._ncg))),
            "group": Out(unsigned(fx.ceil_log2(groups))),
            "out_group": Out(unsigned(fx.ceil_log2(out_groups))),
            "window_first": Out(1), "window_last": Out(1), "last_group": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layer, k = self.layer, self._k
        kernel, stride, padding = layer.kernel, layer.stride, layer.padding
        h, w, sub, ncg = self._h, self._w, self._sub, self._ncg

        # -- the group walk: pool window (py, px) -> channel group -> (dy, dx) ----------------
        py = Signal(range(self._hp), name="pool_y")
        px = Signal(range(self._wp), name="pool_x")
        dy = Signal(range(k), name="window_y")
        dx = Signal(range(k), name="window_x")
        cg = Signal(range(ncg), name="channel_group")
        cg_base = Signal.like(self.weight_addr, name="weight_base")
        out_group = Signal.like(self.out_group, name="out_group")
        # -- the tap walk: (ky, kx) -> channel chunk -----------------------------------------
        ky = Signal(range(kernel), name="tap_y")
        kx = Signal(range(kernel), name="tap_x")
        cs = Signal(range(sub), name="channel_chunk")

        with m.If(self.start):
            m.d.sync += [py.eq(0), px.eq(0), dy.eq(0), dx.eq(0), cg.eq(0), cg_base.eq(0),
                         out_group.eq(0), ky.eq(0), kx.eq(0), cs.eq(0)]
        with m.Else():
            with m.If(self.issue), m.If(_wrap(m, cs, sub)), m.If(_wrap(m, kx, kernel)):
                _wrap(m, ky, kernel)
            with m.If(self.group_end), m.If(_wrap(m, dx, k)), m.If(_wrap(m, dy, k)):
                m.d.sync += out_group.eq(out_group + 1)
                with m.If(_wrap(m, cg, ncg)):
                    m.d.sync += cg_base.eq(0)
                    with m.If(_wrap(m, px, self._wp)):
                        _wrap(m, py, self._hp)
                with m.Else():
                    m.d.sync += cg_base.eq(cg_base + self._sf)

        # -- the operation's input pixel ------------------------------------------------------
        coord = signed(fx.ceil_log2(max(h, w) * 2 + 2 * kernel) + 2)
        oy = Signal(range(self._hp * k), name="out_y")
        ox = Signal(range(self._wp * k), name="out_x")
        iy = Signal(coord, name="in_y")
        ix = Signal(coord, name="in_x")
        m.d.comb += [oy.eq(py * k + dy), ox.eq(px * k + dx),
                     iy.eq(oy * stride + ky - padding), ix.eq(ox * stride + kx - padding)]
        pixel = Signal(signed(coord.width + fx.ceil_log2(w) + 1), name="in_pixel")
        m.d.comb += pixel.eq(iy * w + ix)
        m.d.comb += [
            self.pad.eq((iy < 0) | (iy >= h) | (ix < 0) | (ix >= w)),
            self.chunk.eq(pixel * sub + cs),
            self.weight_addr.eq(cg_base + self.sf),
            self.channel_group.eq(cg),
            self.group.eq((oy * self._w_out + ox) * ncg + cg),
            self.out_group.eq(out_group),
            self.window_first.eq((dy == 0) & (dx == 0)),
            self.window_last.eq((dy == k - 1) & (dx == k - 1)),
            self.last_group.eq((py == self._hp - 1) & (px == self._wp - 1) & (cg == ncg - 1)
                               & (dy == k - 1) & (dx == k - 1)),
        ]
        return m
