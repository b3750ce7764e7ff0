"""Dataflow stages: one per layer, each streaming its folds back to back.

A stage reads whole samples from its input :class:`~hw.buffer.SampleBuffer` slot, runs the
layer's folded matrix-vector product through a :class:`~hw.synapse.SynapseArray` with the
weights in a :class:`~amaranth.lib.memory.Memory` initialised from the artifact
(:func:`sw.folding.pack_weights`), and feeds the sums to PE LIF neurons (:class:`LIFStage`,
spikes into the next buffer) or to the readout (:class:`ReadoutStage`, one result per
sample). Neurons are processed group by group, all time steps of a group before the next
group, so each lane's membrane lives in one register and a multi-bit input layer computes its
synaptic sums once per sample and replays them for the T time steps.

A stage starts a sample only when its input slot is committed and room for its output is
reserved (a claimed output slot, or a result credit); from then on its operations flow
without stalls, one per cycle.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from hw import timing
from hw.buffer import BufferReader, BufferWriter
from hw.common import check_bool, check_choice, delay, wrap_signed
from hw.lif import LIFUnit
from hw.plan import check_stage_folding, stage_cycles, stage_groups
from hw.readout import ReadoutUnit
from hw.sequencer import Sequencer
from hw.synapse import SynapseArray, weight_counts
from hw.window import WindowWalk
from sw import fixedpoint as fx
from sw.artifact import ConvLayer, LIFLayer, PoolLayer, ReadoutLayer
from sw.folding import LayerFolding, pack_weights

__all__ = ["WEIGHT_MEMORY", "lif_rom_layout", "lif_rom_words", "lif_trace_layout",
           "pool_trace_layout", "LIFStage", "ReadoutStage"]

#: Choices of where synthesis puts a stage's weights.
WEIGHT_MEMORY = ("auto", "block", "logic")


def lif_rom_layout(pe: int, width: int) -> data.StructLayout:
    """Word layout of a LIF stage's parameter ROM: lane p is neuron ``group * pe + p``."""
    return data.StructLayout({
        "bias": data.ArrayLayout(signed(width), pe),
        "threshold": data.ArrayLayout(signed(width), pe),
        "connected": unsigned(pe),
    })


def lif_rom_words(layer: LIFLayer | ConvLayer, pe: int) -> list[int]:
    """The ROM contents, one word per neuron group (a conv layer: per channel group), each a
    :func:`lif_rom_layout` constant (the layout the stage reads the ROM with). Padding lanes
    (beyond the layer's neurons) get B = 0, c = 0 and the largest threshold, so they never
    fire.

    The bias field holds ``B_j + c_j * (K_j << F)`` (wrapped to the membrane width), with
    ``K_j`` the weight count of :func:`hw.synapse.weight_counts`: the synapse array gives
    ``x_j - K_j``, and ``((x_j - K_j) << F) + B_j + (K_j << F)`` is the drive
    ``(x_j << F) + B_j`` of docs/arithmetic.md §4, which fits the width, so the wrap-around
    cancels."""
    w = layer.membrane.width
    f = layer.membrane.frac
    layout = lif_rom_layout(pe, w)
    never = (1 << (w - 1)) - 1
    counts = weight_counts(layer.weights, layer.input.bits)
    words = []
    rows = layer.weight_rows
    for g in range(fx.ceil_div(rows, pe)):
        lanes = range(g * pe, (g + 1) * pe)
        real = [j for j in lanes if j < rows]
        pad = pe - len(real)
        words.append(layout.const({
            "bias": [wrap_signed(int(layer.bias[j])
                                 + int(layer.connected[j]) * (counts[j] << f), w)
                     for j in real] + [0] * pad,
            "threshold": [int(layer.threshold[j]) for j in real] + [never] * pad,
            "connected": sum(int(layer.connected[j]) << p for p, j in enumerate(real)),
        }).as_bits())
    return words


def _group_counts(layer, pe: int, factor: int = 1):
    """The weight counts ``factor * K_j`` (:func:`hw.synapse.weight_counts`) by group of PE
    rows: (the word layout, one word per group), for a trace-only ROM."""
    counts = [factor * k for k in weight_counts(layer.weights, layer.input.bits)]
    width = fx.unsigned_width(max(counts, default=0))
    layout = data.ArrayLayout(unsigned(width), pe)
    padded = counts + [0] * (fx.ceil_div(len(counts), pe) * pe - len(counts))
    return layout, [layout.const(padded[g:g + pe]).as_bits()
                    for g in range(0, len(padded), pe)]


def lif_trace_layout(layer: LIFLayer | ConvLayer, pe: int,
                     current_width: int) -> data.StructLayout:
    """Payload of a LIF stage's trace stream: one beat per (group, time step); a conv layer's
    groups are numbered in its element order over PE (:func:`hw.plan.issue_groups`)."""
    w = layer.membrane.width
    return data.StructLayout({
        "time_step": unsigned(max(1, fx.ceil_log2(layer.time_steps))),
        "group": unsigned(max(1, fx.ceil_log2(fx.ceil_div(layer.neurons, pe)))),
        "spikes": unsigned(pe),
        "current": data.ArrayLayout(signed(current_width), pe),
        "potential": data.ArrayLayout(signed(w), pe),
        "membrane": data.ArrayLayout(signed(w), pe),
    })


def pool_trace_layout(pool: PoolLayer, pe: int) -> data.StructLayout:
    """Payload of a conv stage's pool trace stream: the pooled spikes it writes, one beat per
    (pooled group, time step); lane p of group g is the pool layer's output ``g·PE + p``."""
    return data.StructLayout({
        "time_step": unsigned(max(1, fx.ceil_log2(pool.time_steps))),
        "group": unsigned(max(1, fx.ceil_log2(fx.ceil_div(pool.neurons, pe)))),
        "spikes": unsigned(pe),
    })


def _check_layer(layer, folding, kind):
    if not isinstance(layer, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise TypeError(f"layer must be a {names}, not {type(layer).__name__}")
    if not isinstance(folding, LayerFolding):
        raise TypeError(f"folding must be a LayerFolding, not {folding!r}")
    check_stage_folding(layer, folding)


class _StageBase(wiring.Component):
    """The front of a stage: sequencer, input buffer reads, weight memory, synapse array."""

    def _setup(self, layer, folding, *, in_slots, popcount_stages, trace, weight_memory,
               memory_register, pool=None):
        timing.check_slots("in_slots", in_slots)
        check_bool("memory_register", memory_register)
        self._memory_register = memory_register
        timing.check_popcount_stages(popcount_stages)
        check_bool("trace", trace)
        check_choice("weight_memory", weight_memory, WEIGHT_MEMORY)
        self._weight_memory = weight_memory
        self.layer, self.folding = layer, folding
        self._trace = trace
        self._popcount_stages = popcount_stages
        self._direct = layer.input.kind == "multibit"
        self._conv = isinstance(layer, ConvLayer)
        self.pool = pool
        self._sf = folding.synapse_folds(layer)
        self._nf = folding.neuron_folds(layer)
        #: neuron groups per sample: weight groups, or a conv layer's positions x them
        self._groups = stage_groups(layer, folding, pool)
        self._planes = layer.input.bits
        self._steps = layer.rows_per_sample
        self._current_width = layer.synaptic_width
        self.weight_words = pack_weights(layer.weights, folding.simd, folding.pe)
        self._reader = BufferReader(slots=in_slots, rows=self._steps,
                                    chunks=fx.ceil_div(layer.inputs, folding.simd),
                                    planes=self._planes, read_lanes=folding.simd,
                                    memory_register=memory_register)
        return self._reader

    def _synapse(self, tag_layout) -> SynapseArray:
        f = self.folding
        return SynapseArray(f.simd, f.pe, inputs=self.layer.fan_in, input_bits=self._planes,
                            popcount_stages=self._popcount_stages, tag_shape=tag_layout)

    @property
    def cycles_per_sample(self) -> int:
        """Ideal cycles per sample of this stage (:func:`hw.plan.stage_cycles`)."""
        return stage_cycles(self.layer, self.folding, self.pool)

    @property
    def period(self) -> int:
        """Cycles per neuron group (:func:`hw.timing.group_period`)."""
        return timing.group_period(self.layer, self.folding)

    @property
    def front_latency(self) -> int:
        """Cycles from an operation's issue to its arrival at the synapse array: the input
        buffer's read latency (:attr:`hw.buffer.BufferReader.read_latency`), after a conv
        stage's address register (:func:`hw.timing.conv_address_latency`); the weight word's
        path is built to match (:func:`hw.timing.front_latency`)."""
        return self._address_latency + self._reader.read_latency

    @property
    def _address_latency(self) -> int:
        return timing.conv_address_latency() if self._conv else 0

    @property
    def weight_memory_bits(self) -> int:
        return len(self.weight_words) * self.folding.word_width

    def _front(self, m):
        """Sequencer (and a conv stage's window walk) -> (buffer read, weight read) -> synapse
        array. Returns (seq, walk or None, synapse, the front latency)."""
        f = self.folding
        m.submodules.sequencer = seq = Sequencer(
            groups=self._groups, steps=self._steps, planes=self._planes, chunks=self._sf,
            period=self.period)
        walk = None
        weight_addr, chunk = seq.weight_addr, seq.chunk
        if self._conv:
            m.submodules.walk = walk = WindowWalk(self.layer, f, self.pool)
            m.d.comb += [walk.start.eq(seq.start), walk.issue.eq(seq.valid),
                         walk.group_end.eq(seq.group_end), walk.sf.eq(seq.chunk)]
            weight_addr, chunk = walk.weight_addr, walk.chunk
        attrs = {} if self._weight_memory == "auto" else {
            "ram_style": self._weight_memory, "rom_style": self._weight_memory}
        m.submodules.weights = wmem = Memory(shape=unsigned(f.word_width),
                                             depth=len(self.weight_words),
                                             init=self.weight_words, attrs=attrs)
        wrd = wmem.read_port(domain="sync")
        pre = self._address_latency
        lat = self.front_latency
        # The word reaches the synapse array with the buffer's data: the read port takes one
        # cycle and, with memory_register, one register follows it (the word then feeds every
        # popcount tree from a flip-flop; timing.weight_read_latency); the rest of the front
        # latency delays the narrow address, not the SIMD·PE-bit word.
        word_latency = timing.weight_read_latency(self._memory_register)
        m.d.comb += wrd.addr.eq(delay(m, weight_addr, lat - word_latency, "weight_addr"))
        weights = delay(m, wrd.data, word_latency - 1, "weight_word")

        m.d.comb += [
            self.i_buf.row.eq(delay(m, seq.time_step, pre, "read_row")),
            self.i_buf.chunk.eq(delay(m, chunk, pre, "read_chunk")),
            self.i_buf.plane.eq(delay(m, seq.plane, pre, "read_plane")),
        ]
        spikes = self.i_buf.data
        if self._conv:
            # A tap outside the map reads as zeros (no padding is stored).
            pad = delay(m, walk.pad, lat, "op_pad")
            spikes = Mux(pad, 0, self.i_buf.data)
        m.submodules.synapse = syn = self.synapse
        m.d.comb += [
            syn.i.valid.eq(delay(m, seq.valid, lat, "op_valid")),
            syn.i.payload.spikes.eq(spikes),
            syn.i.payload.weights.eq(weights),
            syn.i.payload.first.eq(delay(m, seq.first, lat, "op_first")),
            syn.i.payload.last.eq(delay(m, seq.last, lat, "op_last")),
            syn.i.payload.shift.eq(delay(m, seq.shift, lat, "op_shift")),
        ]
        return seq, walk, syn, lat

    def _input_slot(self, m, seq):
        """Take and release the input slot; returns the register holding the slot taken (for
        the stage's own use at the sample's start). The buffer sees it (and the release)
        after a conv stage's address register, with the reads."""
        slot_in = Signal.like(self.i_buf.slot, name="slot_in")
        pre = self._address_latency
        m.d.comb += [
            self.i_buf.take.eq(seq.start),
            self.i_buf.release.eq(delay(m, seq.end, pre, "release")),
            self.i_buf.slot.eq(delay(m, slot_in, pre, "read_slot")),
        ]
        with m.If(seq.start):
            m.d.sync += slot_in.eq(self.i_buf.next_slot)
        return slot_in


class LIFStage(_StageBase):
    """One LIF or conv layer: folded synapses, PE LIF neurons, spikes out per (group, time
    step).

    A conv layer's neuron groups are (output position, channel group): the window walk
    (:class:`hw.window.WindowWalk`) turns each group's synapse folds into reads of the input
    pixels' channel slices (zeros for padded taps), the weight words and parameters are the
    channel group's, and the group's spikes are one output pixel's PE channels. With a fused
    ``pool`` the stage ORs each pool window's spikes per time step (the window's positions
    come one after the other for a channel group) and writes the pooled pixel instead.

    **Timing**: a sample takes :attr:`cycles_per_sample` cycles of issue
    (:func:`stage_cycles`); the next sample starts in the cycle after the last one when its
    input slot is committed and an output slot is free. The last spikes of a sample are
    written :attr:`latency` cycles after its last issue cycle, with the commit. Reset returns
    to idle.

    Parameters
    ----------
    layer : LIFLayer or ConvLayer
    folding : LayerFolding
        SIMD x PE; must suit the layer (:func:`hw.plan.check_stage_folding`).
    in_slots, out_slots : int
        Slots of the input and output buffers (:data:`hw.timing.SLOTS`: 2..32).
    popcount_stages : int
        Register stages in each popcount tree (:data:`hw.timing.POPCOUNT_STAGES`: 0..8).
    trace : bool
        Add the ``trace`` stream (and ``trace_pool`` with a pool).
    weight_memory : {"auto", "block", "logic"}
        Where synthesis should put the weights: its own choice, block RAM, or logic (LUTs);
        passed as the memory's ``ram_style``/``rom_style`` attribute.
    pool : PoolLayer or None
        A pool layer following a conv layer, fused into this stage's output.
    memory_register : bool
        Register block-RAM reads before any logic (:func:`hw.timing.buffer_read_latency`,
        :func:`hw.timing.weight_read_latency`); off, the input buffer's chunk, the weight word
        and a replaying layer's parameters feed logic from the memories' ports, one cycle
        sooner and without flip-flop copies.

    Members
    -------
    i_buf : Out(BufferReader)
    o_buf : Out(BufferWriter)
        Rows are time steps, groups are the PE-neuron groups (pooled ones with a pool), data
        the PE spikes.
    trace : Out(stream.Signature(lif_trace_layout, always_ready=True)), with ``trace`` only
        One beat per (group, time step): x, h, v and s of the group's PE lanes (lanes beyond
        the layer's neurons carry padding).
    trace_pool : Out(stream.Signature(pool_trace_layout, always_ready=True)), with ``trace``
        and a pool only: the pooled spikes as they are written.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type, or a folding that does not suit the layer.
    """

    def __init__(self, layer: LIFLayer | ConvLayer, folding: LayerFolding, *,
                 in_slots: int = 2, out_slots: int = 2, popcount_stages: int = 3,
                 trace: bool = False, weight_memory: str = "auto",
                 pool: PoolLayer | None = None, memory_register: bool = True):
        _check_layer(layer, folding, (LIFLayer, ConvLayer))
        if pool is not None:
            if not isinstance(pool, PoolLayer):
                raise TypeError(f"pool must be a PoolLayer or None, not {pool!r}")
            if not isinstance(layer, ConvLayer) or pool.in_shape != layer.out_shape:
                raise ValueError(f"pool {pool.name!r} must take the {layer.name!r} conv "
                                 f"layer's output map")
        timing.check_slots("out_slots", out_slots)
        reader = self._setup(layer, folding, in_slots=in_slots,
                             popcount_stages=popcount_stages, trace=trace,
                             weight_memory=weight_memory, memory_register=memory_register,
                             pool=pool)
        out = pool if pool is not None else layer
        self._out_groups = fx.ceil_div(out.neurons, folding.pe)
        self.rom_words = lif_rom_words(layer, folding.pe)
        self.rom_layout = lif_rom_layout(folding.pe, layer.membrane.width)
        self.trace_layout = lif_trace_layout(layer, folding.pe, self._current_width)
        self.pool_trace_layout = pool_trace_layout(pool, folding.pe) if pool else None
        # a group's index (a conv layer's: in its element order over PE, which counts the
        # positions a pool drops too)
        group = unsigned(fx.ceil_log2(fx.ceil_div(layer.neurons, folding.pe)))
        slot = unsigned(fx.ceil_log2(out_slots))
        lif_tag = {"group": group, "slot": slot, "sample_end": unsigned(1)}
        if self._conv:
            lif_tag.update({"out_group": unsigned(fx.ceil_log2(self._out_groups)),
                            "window_first": unsigned(1), "window_last": unsigned(1),
                            "channel_group": unsigned(fx.ceil_log2(self._nf))})
            self._tag_layout = data.StructLayout({
                **lif_tag, "time_step": unsigned(fx.ceil_log2(self._steps)),
                "channel_group": unsigned(fx.ceil_log2(self._nf)), "last_group": unsigned(1)})
        else:
            self._tag_layout = data.StructLayout({
                "group": group, "time_step": unsigned(fx.ceil_log2(self._steps)),
                "slot": slot, "sample_end": unsigned(1)})
        #: The blocks, built here so that :attr:`latency` is the sum of theirs.
        self.synapse = self._synapse(self._tag_layout)
        self.lif = LIFUnit(
            folding.pe, width=layer.membrane.width, frac=layer.membrane.frac,
            leak_shift=layer.leak_shift, reset=layer.reset, step_gain=layer.step_gain,
            current_width=self._current_width, tag_shape=data.StructLayout(lif_tag))
        members = {
            "i_buf": Out(reader),
            "o_buf": Out(BufferWriter(slots=out_slots, rows=layer.time_steps, planes=1,
                                      groups=self._out_groups, width=folding.pe)),
        }
        if trace:
            members["trace"] = Out(stream.Signature(self.trace_layout, always_ready=True))
            if pool is not None:
                members["trace_pool"] = Out(stream.Signature(self.pool_trace_layout,
                                                             always_ready=True))
        super().__init__(members)

    @property
    def latency(self) -> int:
        """Cycles from a sample's last operation to the commit of its spikes: the front, the
        synapse array's and the LIF unit's latencies, summed by
        :func:`hw.timing.lif_stage_latency`."""
        return timing.lif_stage_latency(self.layer, self.folding, front=self.front_latency,
                                        synapse=self.synapse.latency, lif=self.lif.latency,
                                        memory_register=self._memory_register)

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        steps = layer.time_steps
        tag_layout = self._tag_layout
        seq, walk, syn, lat = self._front(m)

        slot_out = Signal.like(self.o_buf.slot, name="slot_out")
        self._input_slot(m, seq)
        m.d.comb += [
            seq.can_start.eq(self.i_buf.full & self.o_buf.free),
            self.o_buf.claim.eq(seq.start),
        ]
        # A sample's first operation issues in the cycle after its start.
        with m.If(seq.start):
            m.d.sync += slot_out.eq(self.o_buf.next_slot)

        tag = Signal(tag_layout, name="op_tag")
        m.d.comb += [tag.time_step.eq(seq.time_step), tag.slot.eq(slot_out),
                     tag.sample_end.eq(seq.end)]
        if self._conv:
            m.d.comb += [tag.group.eq(walk.group), tag.out_group.eq(walk.out_group),
                         tag.channel_group.eq(walk.channel_group),
                         tag.window_first.eq(walk.window_first),
                         tag.window_last.eq(walk.window_last),
                         tag.last_group.eq(walk.last_group)]
        else:
            m.d.comb += tag.group.eq(seq.group)
        m.d.comb += syn.i.payload.tag.eq(delay(m, tag, lat, "op_tag"))

        # Neuron parameters of the group whose sums come out of the array; the sums wait in a
        # register for the read (timing.params_read_wait: not in a replay without
        # memory_register, which reads the parameters during the replay).
        # (with the weights' memory style: a parameter ROM in logic is a multiplexer tree of
        # the biases, which the weight counts folded in make as deep as the address allows)
        attrs = {} if self._weight_memory == "auto" else {"rom_style": self._weight_memory}
        m.submodules.params = rom = Memory(shape=unsigned(self.rom_layout.size),
                                           depth=len(self.rom_words), init=self.rom_words,
                                           attrs=attrs)
        rom_rd = rom.read_port(domain="sync")
        m.d.comb += rom_rd.addr.eq(syn.o.payload.tag.channel_group if self._conv
                                   else syn.o.payload.tag.group)
        params = data.View(self.rom_layout, rom_rd.data)
        if timing.params_read_wait(layer, self._memory_register):
            sums = Signal(syn.o_layout, name="sums")
            sums_valid = Signal(name="sums_valid")
            m.d.sync += [sums_valid.eq(syn.o.valid), sums.eq(syn.o.payload)]
        else:
            sums, sums_valid = syn.o.payload, syn.o.valid

        m.submodules.lif = lif = self.lif
        tag_fields = [name for name in lif.i.payload.tag.shape().members
                      if name != "sample_end"]
        if not self._direct:
            m.d.comb += [
                lif.i.valid.eq(sums_valid),
                lif.i.payload.current.eq(sums.sums),
                lif.i.payload.bias.eq(params.bias),
                lif.i.payload.threshold.eq(params.threshold),
                lif.i.payload.connected.eq(params.connected),
                lif.i.payload.time_step.eq(sums.tag.time_step),
                lif.i.payload.tag.sample_end.eq(sums.tag.sample_end),
            ]
            m.d.comb += [getattr(lif.i.payload.tag, name).eq(getattr(sums.tag, name))
                         for name in tag_fields]
        else:
            # Replay the group's sums for time steps 0..T-1 (one per cycle). With
            # memory_register the sums and the parameters read for them are held in registers;
            # without, the sums are held from the array's output and the parameters come from
            # the ROM's port, whose address (the array's output's group) holds for the group's
            # period, at least T cycles.
            reg = self._memory_register
            held = Signal(lif.i_layout, name="held")
            held_end = Signal(name="held_sample_end")
            active = Signal(name="replay_active")
            step = Signal(range(steps), name="replay_step")
            last_group = (sums.tag.last_group if self._conv
                          else sums.tag.group == self._groups - 1)
            replayed = held if reg else params
            with m.If(sums_valid):
                m.d.sync += [held.current.eq(sums.sums), held_end.eq(last_group),
                             active.eq(1), step.eq(0)]
                if reg:
                    m.d.sync += [held.bias.eq(params.bias), held.threshold.eq(params.threshold),
                                 held.connected.eq(params.connected)]
                m.d.sync += [getattr(held.tag, name).eq(getattr(sums.tag, name))
                             for name in tag_fields]
            with m.Elif(active):
                m.d.sync += step.eq(step + 1)
                with m.If(step == steps - 1):
                    m.d.sync += active.eq(0)
            m.d.comb += [
                lif.i.valid.eq(active),
                lif.i.payload.current.eq(held.current),
                lif.i.payload.bias.eq(replayed.bias),
                lif.i.payload.threshold.eq(replayed.threshold),
                lif.i.payload.connected.eq(replayed.connected),
                lif.i.payload.time_step.eq(step),
                lif.i.payload.tag.sample_end.eq(held_end & (step == steps - 1)),
            ]
            m.d.comb += [getattr(lif.i.payload.tag, name).eq(getattr(held.tag, name))
                         for name in tag_fields]

        out = lif.o.payload
        write, spikes = lif.o.valid, out.spikes
        group = out.tag.out_group if self._conv else out.tag.group
        if self.pool is not None:
            # OR the window's spikes per time step; write the pooled pixel at its last
            # position (window_first starts it afresh, so no clear is needed).
            m.submodules.pooled = acc = Memory(shape=unsigned(self.folding.pe), depth=steps,
                                               init=[])
            acc_rd = acc.read_port(domain="comb")
            acc_wr = acc.write_port()
            spikes = Signal(self.folding.pe, name="pooled_spikes")
            m.d.comb += [acc_rd.addr.eq(out.time_step),
                         spikes.eq(out.spikes | Mux(out.tag.window_first, 0, acc_rd.data)),
                         acc_wr.addr.eq(out.time_step), acc_wr.data.eq(spikes),
                         acc_wr.en.eq(lif.o.valid)]
            write = lif.o.valid & out.tag.window_last
        m.d.comb += [
            self.o_buf.en.eq(write),
            self.o_buf.slot.eq(out.tag.slot),
            self.o_buf.row.eq(out.time_step),
            self.o_buf.plane.eq(0),
            self.o_buf.group.eq(group),
            self.o_buf.data.eq(spikes),
            self.o_buf.commit.eq(lif.o.valid & out.tag.sample_end),
        ]
        if self._trace:
            # The trace's x adds back the weight counts the synapse array leaves out.
            layout, words = _group_counts(layer, self.folding.pe)
            m.submodules.trace_counts = krom = Memory(shape=unsigned(layout.size),
                                                      depth=len(words), init=words)
            krd = krom.read_port(domain="comb")
            m.d.comb += krd.addr.eq(out.tag.channel_group if self._conv else out.tag.group)
            kview = data.View(layout, krd.data)
            m.d.comb += [
                self.trace.valid.eq(lif.o.valid),
                self.trace.payload.time_step.eq(out.time_step),
                self.trace.payload.group.eq(out.tag.group),
                self.trace.payload.spikes.eq(out.spikes),
                *[self.trace.payload.current[p].eq(out.current[p] + kview[p])
                  for p in range(self.folding.pe)],
                self.trace.payload.potential.eq(out.potential),
                self.trace.payload.membrane.eq(out.membrane),
            ]
            if self.pool is not None:
                m.d.comb += [
                    self.trace_pool.valid.eq(write),
                    self.trace_pool.payload.time_step.eq(out.time_step),
                    self.trace_pool.payload.group.eq(group),
                    self.trace_pool.payload.spikes.eq(spikes),
                ]
        return m


class ReadoutStage(_StageBase):
    """The readout layer: folded synapses, score accumulation, argmax, one result per sample.

    **Timing**: a sample takes :attr:`cycles_per_sample` cycles of issue; it starts only with
    a result credit (``out_depth`` of them: the readout's score registers plus an output FIFO
    of ``out_depth - 1`` entries, none for one credit), so its result never waits inside the
    pipeline. ``o``
    follows the stream rules (``valid`` holds until ``ready``); ``ready`` low only stops new
    samples from starting once every credit is taken. Reset empties the FIFO and restores
    the credits.

    Parameters
    ----------
    layer : ReadoutLayer
    folding : LayerFolding
    in_slots : int
    popcount_stages : int
    out_depth : int
        Result credits (:data:`hw.timing.OUT_DEPTH`: 1..64): the score registers and a FIFO
        of ``out_depth - 1`` (none for 1: ``o`` carries the score registers).
    trace : bool
        Add the ``trace`` stream: each group's sums S (one beat per group per sample).
    weight_memory : {"auto", "block", "logic"}
        As for :class:`LIFStage`.
    memory_register : bool
        As for :class:`LIFStage`.

    Members
    -------
    i_buf : Out(BufferReader)
    o : Out(stream.Signature(StructLayout({prediction, scores})))
    trace : Out(stream.Signature(StructLayout({group, sums}), always_ready=True)), with
        ``trace`` only.

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type, or a folding that does not suit the layer.
    """

    def __init__(self, layer: ReadoutLayer, folding: LayerFolding, *, in_slots: int = 2,
                 popcount_stages: int = 3, out_depth: int = 2, trace: bool = False,
                 weight_memory: str = "auto", memory_register: bool = True):
        _check_layer(layer, folding, ReadoutLayer)
        timing.check_out_depth(out_depth)
        reader = self._setup(layer, folding, in_slots=in_slots,
                             popcount_stages=popcount_stages, trace=trace,
                             weight_memory=weight_memory, memory_register=memory_register)
        self._out_depth = out_depth
        # The synapse array gives x_j - K_j, so S_j comes out short by K_j * ΣG; the offsets
        # add A_j * K_j * ΣG back (wrapped to the score width: the scores fit it, so the
        # wrap-around cancels).
        gains = sum(int(g) for g in layer.step_gain)
        counts = weight_counts(layer.weights, layer.input.bits)
        offset = [wrap_signed(int(c) + int(a) * k * gains, layer.score.width)
                  for a, c, k in zip(layer.scale, layer.offset, counts, strict=True)]
        self.unit = ReadoutUnit(
            folding.pe, classes=layer.neurons, step_gain=layer.step_gain,
            current_width=self._current_width,
            sum_width=layer.sum_width,
            score_width=layer.score.width, scale=layer.scale, offset=offset,
            direct=self._direct)
        self.result_layout = self.unit.o_layout
        self.trace_layout = self.unit.trace_layout
        self._tag_layout = data.StructLayout({
            "group": unsigned(fx.ceil_log2(self._nf)),
            "time_step": unsigned(fx.ceil_log2(self._steps)),
        })
        self.synapse = self._synapse(self._tag_layout)
        members = {
            "i_buf": Out(reader),
            "o": Out(stream.Signature(self.result_layout)),
        }
        if trace:
            members["trace"] = Out(stream.Signature(self.trace_layout, always_ready=True))
        super().__init__(members)

    @property
    def latency(self) -> int:
        """Cycles from a sample's last operation to its result entering the output FIFO: the
        front, the synapse array's and the readout unit's latencies, summed by
        :func:`hw.timing.readout_stage_latency`."""
        return timing.readout_stage_latency(front=self.front_latency,
                                            synapse=self.synapse.latency,
                                            readout=self.unit.latency)

    def elaborate(self, platform):
        m = Module()
        tag_layout = self._tag_layout
        seq, _, syn, lat = self._front(m)

        credits = Signal(range(self._out_depth + 1), init=self._out_depth, name="credits")
        credits_next = Signal.like(credits, name="credits_next")
        has_credit = Signal(init=1, name="has_credit")
        self._input_slot(m, seq)
        m.d.comb += seq.can_start.eq(self.i_buf.full & has_credit)
        m.d.comb += credits_next.eq(credits - seq.start + (self.o.valid & self.o.ready))
        m.d.sync += [credits.eq(credits_next), has_credit.eq(credits_next != 0)]

        tag = Signal(tag_layout, name="op_tag")
        m.d.comb += [tag.group.eq(seq.group), tag.time_step.eq(seq.time_step)]
        m.d.comb += syn.i.payload.tag.eq(delay(m, tag, lat, "op_tag"))

        m.submodules.unit = unit = self.unit
        m.d.comb += [
            unit.i.valid.eq(syn.o.valid),
            unit.i.payload.current.eq(syn.o.payload.sums),
            unit.i.payload.time_step.eq(syn.o.payload.tag.time_step),
            unit.i.payload.group.eq(syn.o.payload.tag.group),
        ]
        if self._out_depth == 1:
            # No FIFO: ``o`` carries the score registers, which hold the result until it is
            # taken, since the next sample starts only with the credit its transfer returns.
            # ``valid`` is registered, as a one-entry FIFO's would be.
            held = Signal(name="result_held")
            m.d.sync += held.eq(unit.o.valid | held & ~self.o.ready)
            m.d.comb += [self.o.valid.eq(held), self.o.payload.eq(unit.o.payload)]
        else:
            # The unit's score registers hold a finished result until it moves into the FIFO
            # (at once, unless the FIFO is full); the credits guarantee that the next
            # sample's first scores come only after that.
            m.submodules.fifo = out_fifo = fifo.SyncFIFOBuffered(
                width=self.result_layout.size, depth=self._out_depth - 1)
            pending = Signal(name="result_pending")
            m.d.sync += pending.eq((unit.o.valid | pending) & ~out_fifo.w_rdy)
            m.d.comb += [
                out_fifo.w_en.eq(unit.o.valid | pending),
                out_fifo.w_data.eq(unit.o.payload),
                self.o.valid.eq(out_fifo.r_rdy),
                self.o.payload.eq(out_fifo.r_data),
                out_fifo.r_en.eq(self.o.ready),
            ]
        if self._trace:
            # The trace's S adds back the K_j * ΣG the synapse array leaves out.
            layout, words = _group_counts(self.layer, self.folding.pe,
                                          sum(int(g) for g in self.layer.step_gain))
            m.submodules.trace_counts = krom = Memory(shape=unsigned(layout.size),
                                                      depth=len(words), init=words)
            krd = krom.read_port(domain="comb")
            kview = data.View(layout, krd.data)
            m.d.comb += [krd.addr.eq(unit.trace.payload.group),
                         self.trace.valid.eq(unit.trace.valid),
                         self.trace.payload.group.eq(unit.trace.payload.group),
                         *[self.trace.payload.sums[p].eq(unit.trace.payload.sums[p] + kview[p])
                           for p in range(self.folding.pe)]]
        return m
