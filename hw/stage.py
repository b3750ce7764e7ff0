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

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from hw import timing
from hw.buffer import BufferReader, BufferWriter
from hw.common import check_bool, check_choice, delay
from hw.lif import LIFUnit
from hw.plan import stage_cycles
from hw.readout import ReadoutUnit
from hw.sequencer import Sequencer
from hw.synapse import SynapseArray
from sw import fixedpoint as fx
from sw.artifact import LIFLayer, ReadoutLayer
from sw.folding import LayerFolding, pack_weights

__all__ = ["WEIGHT_MEMORY", "lif_rom_layout", "lif_rom_words", "lif_trace_layout", "LIFStage",
           "ReadoutStage"]

#: Choices of where synthesis puts a stage's weights.
WEIGHT_MEMORY = ("auto", "block", "logic")


def lif_rom_layout(pe: int, width: int) -> data.StructLayout:
    """Word layout of a LIF stage's parameter ROM: lane p is neuron ``group * pe + p``."""
    return data.StructLayout({
        "bias": data.ArrayLayout(signed(width), pe),
        "threshold": data.ArrayLayout(signed(width), pe),
        "connected": unsigned(pe),
    })


def lif_rom_words(layer: LIFLayer, pe: int) -> list[int]:
    """The ROM contents, one word per neuron group, each a :func:`lif_rom_layout` constant
    (the layout the stage reads the ROM with). Padding lanes (beyond the layer's neurons) get
    B = 0, c = 0 and the largest threshold, so they never fire."""
    w = layer.membrane.width
    layout = lif_rom_layout(pe, w)
    never = (1 << (w - 1)) - 1
    words = []
    for g in range(fx.ceil_div(layer.neurons, pe)):
        lanes = range(g * pe, (g + 1) * pe)
        real = [j for j in lanes if j < layer.neurons]
        pad = pe - len(real)
        words.append(layout.const({
            "bias": [int(layer.bias[j]) for j in real] + [0] * pad,
            "threshold": [int(layer.threshold[j]) for j in real] + [never] * pad,
            "connected": sum(int(layer.connected[j]) << p for p, j in enumerate(real)),
        }).as_bits())
    return words


def lif_trace_layout(layer: LIFLayer, pe: int, current_width: int) -> data.StructLayout:
    """Payload of a LIF stage's trace stream: one beat per (group, time step)."""
    w = layer.membrane.width
    return data.StructLayout({
        "time_step": unsigned(max(1, fx.ceil_log2(layer.time_steps))),
        "group": unsigned(max(1, fx.ceil_log2(fx.ceil_div(layer.neurons, pe)))),
        "spikes": unsigned(pe),
        "current": data.ArrayLayout(signed(current_width), pe),
        "potential": data.ArrayLayout(signed(w), pe),
        "membrane": data.ArrayLayout(signed(w), pe),
    })


def _check_layer(layer, folding, kind):
    if not isinstance(layer, kind):
        raise TypeError(f"layer must be a {kind.__name__}, not {type(layer).__name__}")
    if not isinstance(folding, LayerFolding):
        raise TypeError(f"folding must be a LayerFolding, not {folding!r}")
    folding.check(layer)


class _StageBase(wiring.Component):
    """The front of a stage: sequencer, input buffer reads, weight memory, synapse array."""

    def _setup(self, layer, folding, *, in_slots, popcount_stages, trace, weight_memory):
        timing.check_slots("in_slots", in_slots)
        timing.check_popcount_stages(popcount_stages)
        check_bool("trace", trace)
        check_choice("weight_memory", weight_memory, WEIGHT_MEMORY)
        self._weight_memory = weight_memory
        self.layer, self.folding = layer, folding
        self._trace = trace
        self._popcount_stages = popcount_stages
        self._direct = layer.input.kind == "multibit"
        self._sf = folding.synapse_folds(layer)
        self._nf = folding.neuron_folds(layer)
        self._planes = layer.input.bits
        self._steps = layer.rows_per_sample
        self._current_width = layer.synaptic_width
        self.weight_words = pack_weights(layer.weights, folding.simd, folding.pe)
        self._reader = BufferReader(slots=in_slots, rows=self._steps, chunks=self._sf,
                                    planes=self._planes, read_lanes=folding.simd)
        return self._reader

    def _synapse(self, tag_layout) -> SynapseArray:
        f = self.folding
        return SynapseArray(f.simd, f.pe, inputs=self.layer.inputs, input_bits=self._planes,
                            popcount_stages=self._popcount_stages, tag_shape=tag_layout)

    @property
    def cycles_per_sample(self) -> int:
        """Ideal cycles per sample of this stage (:func:`hw.plan.stage_cycles`)."""
        return stage_cycles(self.layer, self.folding)

    @property
    def period(self) -> int:
        """Cycles per neuron group (:func:`hw.timing.group_period`)."""
        return timing.group_period(self.layer, self.folding)

    @property
    def front_latency(self) -> int:
        """Cycles from an operation's issue to its arrival at the synapse array: the input
        buffer's read latency (:attr:`hw.buffer.BufferReader.read_latency`), which the weight
        word's path is built to match."""
        return self._reader.read_latency

    @property
    def weight_memory_bits(self) -> int:
        return len(self.weight_words) * self.folding.word_width

    def _front(self, m):
        """Sequencer -> (buffer read, weight read) -> synapse array. Returns (seq, synapse,
        the front latency)."""
        f = self.folding
        m.submodules.sequencer = seq = Sequencer(
            groups=self._nf, steps=self._steps, planes=self._planes, chunks=self._sf,
            period=self.period)
        attrs = {} if self._weight_memory == "auto" else {
            "ram_style": self._weight_memory, "rom_style": self._weight_memory}
        m.submodules.weights = wmem = Memory(shape=unsigned(f.word_width),
                                             depth=len(self.weight_words),
                                             init=self.weight_words, attrs=attrs)
        wrd = wmem.read_port(domain="sync")
        m.d.comb += wrd.addr.eq(seq.weight_addr)
        lat = self.front_latency
        # The read port takes one cycle; registers after it bring the word to the synapse
        # array with the buffer's data (one register today: the word feeds every popcount
        # tree, so it leaves from a register).
        weights = delay(m, wrd.data, lat - 1, "weight_word")

        m.d.comb += [
            self.i_buf.row.eq(seq.time_step),
            self.i_buf.chunk.eq(seq.chunk),
            self.i_buf.plane.eq(seq.plane),
        ]
        m.submodules.synapse = syn = self.synapse
        m.d.comb += [
            syn.i.valid.eq(delay(m, seq.valid, lat, "op_valid")),
            syn.i.payload.spikes.eq(self.i_buf.data),
            syn.i.payload.weights.eq(weights),
            syn.i.payload.first.eq(delay(m, seq.first, lat, "op_first")),
            syn.i.payload.last.eq(delay(m, seq.last, lat, "op_last")),
            syn.i.payload.shift.eq(delay(m, seq.shift, lat, "op_shift")),
        ]
        return seq, syn, lat


class LIFStage(_StageBase):
    """One LIF layer: folded synapses, PE LIF neurons, spikes out per (group, time step).

    **Timing**: a sample takes :attr:`cycles_per_sample` cycles of issue
    (:func:`stage_cycles`); the next sample starts in the cycle after the last one when its
    input slot is committed and an output slot is free. The last spikes of a sample are
    written :attr:`latency` cycles after its last issue cycle, with the commit. Reset returns
    to idle.

    Parameters
    ----------
    layer : LIFLayer
    folding : LayerFolding
        SIMD x PE; must suit the layer.
    in_slots, out_slots : int
        Slots of the input and output buffers (:data:`hw.timing.SLOTS`: 2..32).
    popcount_stages : int
        Register stages in each popcount tree (:data:`hw.timing.POPCOUNT_STAGES`: 0..8).
    trace : bool
        Add the ``trace`` stream.
    weight_memory : {"auto", "block", "logic"}
        Where synthesis should put the weights: its own choice, block RAM, or logic (LUTs);
        passed as the memory's ``ram_style``/``rom_style`` attribute.

    Members
    -------
    i_buf : Out(BufferReader)
    o_buf : Out(BufferWriter)
        Rows are time steps, groups are the PE-neuron groups, data the PE spikes.
    trace : Out(stream.Signature(lif_trace_layout, always_ready=True)), with ``trace`` only
        One beat per (group, time step): x, h, v and s of the group's PE lanes (lanes beyond
        the layer's neurons carry padding).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type, or a folding that does not suit the layer.
    """

    def __init__(self, layer: LIFLayer, folding: LayerFolding, *, in_slots: int = 2,
                 out_slots: int = 2, popcount_stages: int = 3, trace: bool = False,
                 weight_memory: str = "auto"):
        _check_layer(layer, folding, LIFLayer)
        timing.check_slots("out_slots", out_slots)
        reader = self._setup(layer, folding, in_slots=in_slots,
                             popcount_stages=popcount_stages, trace=trace,
                             weight_memory=weight_memory)
        self.rom_words = lif_rom_words(layer, folding.pe)
        self.rom_layout = lif_rom_layout(folding.pe, layer.membrane.width)
        self.trace_layout = lif_trace_layout(layer, folding.pe, self._current_width)
        self._tag_layout = data.StructLayout({
            "group": unsigned(fx.ceil_log2(self._nf)),
            "time_step": unsigned(fx.ceil_log2(self._steps)),
            "slot": unsigned(fx.ceil_log2(out_slots)),
            "sample_end": unsigned(1),
        })
        #: The blocks, built here so that :attr:`latency` is the sum of theirs.
        self.synapse = self._synapse(self._tag_layout)
        self.lif = LIFUnit(
            folding.pe, width=layer.membrane.width, frac=layer.membrane.frac,
            leak_shift=layer.leak_shift, reset=layer.reset, step_gain=layer.step_gain,
            current_width=self._current_width, tag_shape=data.StructLayout({
                "group": unsigned(fx.ceil_log2(self._nf)),
                "slot": unsigned(fx.ceil_log2(out_slots)),
                "sample_end": unsigned(1),
            }))
        members = {
            "i_buf": Out(reader),
            "o_buf": Out(BufferWriter(slots=out_slots, rows=layer.time_steps, planes=1,
                                      groups=self._nf, width=folding.pe)),
        }
        if trace:
            members["trace"] = Out(stream.Signature(self.trace_layout, always_ready=True))
        super().__init__(members)

    @property
    def latency(self) -> int:
        """Cycles from a sample's last operation to the commit of its spikes: the front, the
        synapse array's and the LIF unit's latencies, summed by
        :func:`hw.timing.lif_stage_latency`."""
        return timing.lif_stage_latency(self.layer, self.folding, front=self.front_latency,
                                        synapse=self.synapse.latency, lif=self.lif.latency)

    def elaborate(self, platform):
        m = Module()
        layer = self.layer
        steps = layer.time_steps
        tag_layout = self._tag_layout
        seq, syn, lat = self._front(m)

        slot_in = Signal.like(self.i_buf.slot, name="slot_in")
        slot_out = Signal.like(self.o_buf.slot, name="slot_out")
        m.d.comb += [
            seq.can_start.eq(self.i_buf.full & self.o_buf.free),
            self.i_buf.take.eq(seq.start), self.o_buf.claim.eq(seq.start),
            self.i_buf.release.eq(seq.end),
            self.i_buf.slot.eq(slot_in),
        ]
        # A sample's first operation issues in the cycle after its start.
        with m.If(seq.start):
            m.d.sync += [slot_in.eq(self.i_buf.next_slot), slot_out.eq(self.o_buf.next_slot)]

        tag = Signal(tag_layout, name="op_tag")
        m.d.comb += [tag.group.eq(seq.group), tag.time_step.eq(seq.time_step),
                     tag.slot.eq(slot_out), tag.sample_end.eq(seq.end)]
        m.d.comb += syn.i.payload.tag.eq(delay(m, tag, lat, "op_tag"))

        # Neuron parameters of the group whose sums come out of the array; the sums wait in a
        # register for the read (timing.PARAMS_READ_LATENCY).
        m.submodules.params = rom = Memory(shape=unsigned(self.rom_layout.size),
                                           depth=len(self.rom_words), init=self.rom_words)
        rom_rd = rom.read_port(domain="sync")
        m.d.comb += rom_rd.addr.eq(syn.o.payload.tag.group)
        params = data.View(self.rom_layout, rom_rd.data)
        sums = Signal(syn.o_layout, name="sums")
        sums_valid = Signal(name="sums_valid")
        m.d.sync += [sums_valid.eq(syn.o.valid), sums.eq(syn.o.payload)]

        m.submodules.lif = lif = self.lif
        if not self._direct:
            m.d.comb += [
                lif.i.valid.eq(sums_valid),
                lif.i.payload.current.eq(sums.sums),
                lif.i.payload.bias.eq(params.bias),
                lif.i.payload.threshold.eq(params.threshold),
                lif.i.payload.connected.eq(params.connected),
                lif.i.payload.time_step.eq(sums.tag.time_step),
                lif.i.payload.tag.group.eq(sums.tag.group),
                lif.i.payload.tag.slot.eq(sums.tag.slot),
                lif.i.payload.tag.sample_end.eq(sums.tag.sample_end),
            ]
        else:
            # Replay the group's sums for time steps 0..T-1 (one per cycle).
            held = Signal(lif.i_layout, name="held")
            held_end = Signal(name="held_sample_end")
            active = Signal(name="replay_active")
            step = Signal(range(steps), name="replay_step")
            last_group = sums.tag.group == self._nf - 1
            with m.If(sums_valid):
                m.d.sync += [held.current.eq(sums.sums), held.bias.eq(params.bias),
                             held.threshold.eq(params.threshold),
                             held.connected.eq(params.connected),
                             held.tag.group.eq(sums.tag.group),
                             held.tag.slot.eq(sums.tag.slot), held_end.eq(last_group),
                             active.eq(1), step.eq(0)]
            with m.Elif(active):
                m.d.sync += step.eq(step + 1)
                with m.If(step == steps - 1):
                    m.d.sync += active.eq(0)
            m.d.comb += [
                lif.i.valid.eq(active),
                lif.i.payload.current.eq(held.current),
                lif.i.payload.bias.eq(held.bias),
                lif.i.payload.threshold.eq(held.threshold),
                lif.i.payload.connected.eq(held.connected),
                lif.i.payload.time_step.eq(step),
                lif.i.payload.tag.group.eq(held.tag.group),
                lif.i.payload.tag.slot.eq(held.tag.slot),
                lif.i.payload.tag.sample_end.eq(held_end & (step == steps - 1)),
            ]

        out = lif.o.payload
        m.d.comb += [
            self.o_buf.en.eq(lif.o.valid),
            self.o_buf.slot.eq(out.tag.slot),
            self.o_buf.row.eq(out.time_step),
            self.o_buf.plane.eq(0),
            self.o_buf.group.eq(out.tag.group),
            self.o_buf.data.eq(out.spikes),
            self.o_buf.commit.eq(lif.o.valid & out.tag.sample_end),
        ]
        if self._trace:
            m.d.comb += [
                self.trace.valid.eq(lif.o.valid),
                self.trace.payload.time_step.eq(out.time_step),
                self.trace.payload.group.eq(out.tag.group),
                self.trace.payload.spikes.eq(out.spikes),
                self.trace.payload.current.eq(out.current),
                self.trace.payload.potential.eq(out.potential),
                self.trace.payload.membrane.eq(out.membrane),
            ]
        return m


class ReadoutStage(_StageBase):
    """The readout layer: folded synapses, score accumulation, argmax, one result per sample.

    **Timing**: a sample takes :attr:`cycles_per_sample` cycles of issue; it starts only with
    a result credit (``out_depth`` of them: the readout's score registers plus an output FIFO
    of ``out_depth - 1`` entries), so its result never waits inside the pipeline. ``o``
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
        Result credits (:data:`hw.timing.OUT_DEPTH`: 2..64): the score registers and a FIFO
        of ``out_depth - 1``.
    trace : bool
        Add the ``trace`` stream: each group's sums S (one beat per group per sample).
    weight_memory : {"auto", "block", "logic"}
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
                 weight_memory: str = "auto"):
        _check_layer(layer, folding, ReadoutLayer)
        timing.check_out_depth(out_depth)
        reader = self._setup(layer, folding, in_slots=in_slots,
                             popcount_stages=popcount_stages, trace=trace,
                             weight_memory=weight_memory)
        self._out_depth = out_depth
        self.unit = ReadoutUnit(
            folding.pe, classes=layer.neurons, step_gain=layer.step_gain,
            current_width=self._current_width,
            sum_width=layer.sum_width,
            score_width=layer.score.width, scale=layer.scale, offset=layer.offset,
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
        seq, syn, lat = self._front(m)

        credits = Signal(range(self._out_depth + 1), init=self._out_depth, name="credits")
        credits_next = Signal.like(credits, name="credits_next")
        has_credit = Signal(init=1, name="has_credit")
        slot_in = Signal.like(self.i_buf.slot, name="slot_in")
        m.d.comb += [
            seq.can_start.eq(self.i_buf.full & has_credit),
            self.i_buf.take.eq(seq.start),
            self.i_buf.release.eq(seq.end),
            self.i_buf.slot.eq(slot_in),
        ]
        with m.If(seq.start):
            m.d.sync += slot_in.eq(self.i_buf.next_slot)
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
        # The unit's score registers hold a finished result until it moves into the FIFO
        # (at once, unless the FIFO is full); the credits guarantee that the next sample's
        # first scores come only after that.
        m.submodules.fifo = out_fifo = fifo.SyncFIFOBuffered(width=self.result_layout.size,
                                                             depth=self._out_depth - 1)
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
            wiring.connect(m, wiring.flipped(self.trace), unit.trace)
        return m
