"""The top level: input stream -> one dataflow stage per layer -> output stream."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw import timing
from hw.buffer import BufferWriter, SampleBuffer
from hw.common import check_bool, check_int
from hw.interface import beats_per_sample
from hw.plan import DEFAULT_BUDGET, make_plan, stage_layers
from hw.readout import result_layout
from hw.stage import LIFStage, ReadoutStage
from sw.artifact import Artifact

__all__ = ["input_layout", "output_layout", "InputAdapter", "Accelerator"]


def input_layout(bits: int, lanes: int) -> data.StructLayout:
    """Input beat: ``values``, ``lanes`` unsigned values of ``bits`` bits (1 for spikes);
    value k of beat b is input ``b * lanes + k`` (of the time step, for spike inputs)."""
    return data.StructLayout({"values": data.ArrayLayout(unsigned(bits), lanes)})


def output_layout(artifact: Artifact) -> data.StructLayout:
    """Output beat: ``prediction`` and every class's ``scores``, the readout unit's result
    (:func:`hw.readout.result_layout`)."""
    return result_layout(artifact.readout.neurons, artifact.readout.score.width)


class InputAdapter(wiring.Component):
    """Writes input beats into the first stage's buffer, one sample per slot.

    **Timing**: ``i.ready`` is high while a slot is claimed and the previous beat is written.
    A beat is written one bit-plane per cycle: plane 0 in the cycle it is transferred, the
    other P-1 planes in the following cycles (``ready`` low meanwhile), so multi-bit input
    takes P cycles per beat and spike input one. The sample's last write commits the slot
    and, if another slot is free, claims it in the same cycle, so samples follow back to back.
    Values beyond the last input (padding of the last beat of a row) are written as 0 whatever
    the host sends. Reset drops a partly received sample.

    Parameters
    ----------
    inputs : int
        N.
    bits : int
        Bits per value (1 for spikes).
    lanes : int
        Values per beat (1..inputs).
    rows : int
        Rows per sample (:attr:`sw.artifact.Artifact.rows_per_sample`).
    slots : int
        Slots of the buffer written (:data:`hw.timing.SLOTS`).

    Members
    -------
    i : In(stream.Signature(input_layout(bits, lanes)))
    w : Out(BufferWriter)
    """

    def __init__(self, *, inputs: int, bits: int, lanes: int, rows: int, slots: int):
        check_int("inputs", inputs, 1)
        check_int("bits", bits, 1, 16)
        check_int("lanes", lanes, 1, inputs)
        check_int("rows", rows, 1, 1024)
        timing.check_slots("slots", slots)
        self._inputs, self._bits, self._lanes, self._rows = inputs, bits, lanes, rows
        self._beats = beats_per_sample(inputs, rows, lanes)
        self._groups = self._beats // rows
        self.layout = input_layout(bits, lanes)
        super().__init__({
            "i": In(stream.Signature(self.layout)),
            "w": Out(BufferWriter(slots=slots, rows=rows, planes=bits, groups=self._groups,
                                  width=lanes)),
        })

    @property
    def beats(self) -> int:
        """Beats per sample (:func:`hw.interface.beats_per_sample`)."""
        return self._beats

    @property
    def cycles_per_sample(self) -> int:
        """Cycles per sample at full rate: one per beat and bit-plane
        (:func:`hw.timing.input_cycles_per_beat`)."""
        return self.beats * timing.input_cycles_per_beat(self._bits)

    def elaborate(self, platform):
        m = Module()
        planes, lanes = self._bits, self._lanes
        active = Signal(name="active")
        slot = Signal.like(self.w.slot, name="slot")
        group = Signal.like(self.w.group, name="beat")
        row = Signal.like(self.w.row, name="row")
        # Registered "at the last group / row" flags keep claim/commit short.
        last_group = Signal(name="at_last_beat_of_row")
        last_row = Signal(name="at_last_row")
        xfer = self.i.valid & self.i.ready

        # Zero the padding values of a row's last beat.
        valid_last = self._inputs - (self._groups - 1) * lanes
        values = self.i.payload.values
        beat = Signal(lanes * planes, name="beat_values")
        m.d.comb += beat.eq(Cat(*(values[k] if k < valid_last else Mux(last_group, 0, values[k])
                                  for k in range(lanes))))

        def plane_bits(word, b):
            return Cat(*(word[k * planes + b] for k in range(lanes)))

        if planes == 1:
            busy = Const(0, 1)
            beat_end = xfer
            m.d.comb += [self.w.en.eq(xfer), self.w.data.eq(beat), self.w.plane.eq(0)]
        else:
            # One bit-plane per cycle: plane 0 straight from the beat, the rest from a copy.
            busy = Signal(name="busy")
            held = Signal(lanes * planes, name="held")
            plane = Signal(range(planes), name="plane")
            last_plane = Signal(name="at_last_plane")
            beat_end = busy & last_plane
            with m.If(xfer):
                m.d.sync += [held.eq(beat), busy.eq(1), plane.eq(1),
                             last_plane.eq(planes == 2)]
            with m.Elif(busy):
                m.d.sync += [plane.eq(plane + 1), last_plane.eq(plane == planes - 2)]
                with m.If(last_plane):
                    m.d.sync += busy.eq(0)
            source = Signal(lanes * planes, name="plane_source")
            m.d.comb += source.eq(Mux(busy, held, beat))
            with m.Switch(Mux(busy, plane, 0)):
                for b in range(planes - 1):
                    with m.Case(b):
                        m.d.comb += self.w.data.eq(plane_bits(source, b))
                with m.Default():
                    m.d.comb += self.w.data.eq(plane_bits(source, planes - 1))
            m.d.comb += [self.w.en.eq(xfer | busy), self.w.plane.eq(Mux(busy, plane, 0))]

        done = beat_end & last_group & last_row
        claim = (~active | done) & self.w.free
        m.d.comb += [self.i.ready.eq(active & ~busy), self.w.claim.eq(claim),
                     self.w.slot.eq(slot), self.w.row.eq(row), self.w.group.eq(group),
                     self.w.commit.eq(done)]
        groups, rows = self._groups, self._rows
        with m.If(claim):
            m.d.sync += [active.eq(1), slot.eq(self.w.next_slot), group.eq(0), row.eq(0),
                         last_group.eq(groups == 1), last_row.eq(rows == 1)]
        with m.Elif(done):
            m.d.sync += active.eq(0)
        with m.Elif(beat_end):
            m.d.sync += [group.eq(group + 1), last_group.eq(group == groups - 2)]
            with m.If(last_group):
                m.d.sync += [group.eq(0), last_group.eq(groups == 1), row.eq(row + 1),
                             last_row.eq(row == rows - 2)]
        return m


class Accelerator(wiring.Component):
    """The streaming BSNN accelerator of an artifact: a FINN-style dataflow pipeline.

    ::

        i ─► InputAdapter ─► buffer ─► LIFStage ─► buffer ─► … ─► ReadoutStage ─► o
                                          └─► trace_<layer>          └─► trace_<readout>

    Each layer is a stage with its own weight memory and sequencer; stages are joined by
    :class:`~hw.buffer.SampleBuffer` slots holding whole samples, so every stage works on a
    different sample at the same time. Sizes, widths, T, leak, reset, gains, biases,
    thresholds, scales and offsets all come from the artifact; the folding sets SIMD x PE per
    layer (:func:`hw.plan.default_folding` when not given).

    **Timing**: in steady state one sample per :attr:`ideal_cycles` cycles (the slowest of
    the input transfer and the stages, :mod:`hw.plan`); one output beat per input sample, in
    order. ``i.ready`` drops while every input slot is taken; ``o`` holds its beat until
    ``o.ready``; back-pressure on ``o`` fills the output FIFO, then stops the readout, then
    the buffers upstream, then ``i``. Nothing is lost or duplicated. Reset (synchronous)
    empties every buffer and stage: samples in flight are dropped and the next input beat is
    the first beat of a new sample.

    Parameters
    ----------
    artifact : Artifact
    folding : Folding or None
        Per-layer SIMD x PE (:func:`hw.plan.default_folding` with ``budget`` when None).
    lanes : int or None
        Input values per beat (default :func:`hw.plan.default_lanes`).
    trace : bool
        Add one ``trace_<layer>`` stream per layer (``always_ready``: sample ``valid``
        every cycle): LIF layers carry x, h, v and s of PE neurons per (group, time step),
        the readout each group's sums S.
    slots : int or None
        Slots of every buffer (:data:`hw.timing.SLOTS`: 2..32; default: 2 or 3 each for most
        networks, :func:`hw.plan.buffer_slots`).
    popcount_stages : int
        Register stages in every popcount tree (:data:`hw.timing.POPCOUNT_STAGES`: 0..8).
    out_depth : int or None
        Result credits: the score registers and an output FIFO of ``out_depth - 1``
        (:data:`hw.timing.OUT_DEPTH`: 1..64; default
        :func:`hw.plan.result_credits`).
    budget : int
        Synaptic bits per cycle for the default folding.
    weight_memory : {"auto", "block", "logic"}
        Where synthesis should put the weight memories (``ram_style``/``rom_style``).
    memory_register : bool
        Register every block-RAM read before any logic (default: for the ECP5, whose block
        RAM is slow to its output); off (the iCE40 boards), the buffers' chunks, the weight
        words and a replaying layer's parameters feed logic from the memories' ports, each
        stage's front a cycle shorter and without flip-flop copies of those words, which cost
        the iCE40 a logic cell each (:func:`hw.timing.buffer_read_latency`,
        :func:`hw.timing.weight_read_latency`; the plan's latencies follow).

    Members
    -------
    i : In(stream.Signature(input_layout(bits, lanes)))
    o : Out(stream.Signature(output_layout(artifact)))
    trace_<layer> : Out(stream.Signature(..., always_ready=True)), with ``trace`` only

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range, or a folding that does not suit the
        artifact.
    """

    def __init__(self, artifact: Artifact, folding=None, *, lanes: int | None = None,
                 trace: bool = False, slots: int | None = None, popcount_stages: int = 3,
                 out_depth: int | None = None, budget: int = DEFAULT_BUDGET,
                 weight_memory: str = "auto", memory_register: bool = True):
        if not isinstance(artifact, Artifact):
            raise TypeError(f"artifact must be an Artifact, not {type(artifact).__name__}")
        check_bool("trace", trace)
        self.artifact = artifact
        self.plan = make_plan(artifact, folding, lanes=lanes, slots=slots,
                              popcount_stages=popcount_stages, out_depth=out_depth,
                              budget=budget, memory_register=memory_register)
        self.folding = self.plan.folding
        self._trace = trace
        self.weight_memory = weight_memory
        a, plan = artifact, self.plan
        rows = a.rows_per_sample
        self.adapter = InputAdapter(inputs=a.inputs, bits=a.input.bits, lanes=plan.lanes,
                                    rows=rows, slots=plan.slots[0])
        self.buffers = []
        self.stages = []
        #: (layer, fused pool or None) per stage (:func:`hw.plan.stage_layers`)
        self.stage_layers = stage_layers(a)
        for k, ((layer, pool), f) in enumerate(zip(self.stage_layers, self.folding.layers,
                                                   strict=True)):
            if k == 0:
                buf = SampleBuffer(slots=plan.slots[0], rows=rows, elements=a.inputs,
                                   planes=a.input.bits, write_lanes=plan.lanes,
                                   read_lanes=f.simd, memory_register=plan.memory_register)
            else:
                pf = self.folding.layers[k - 1]
                buf = SampleBuffer(slots=plan.slots[k], rows=a.time_steps,
                                   elements=layer.inputs, write_lanes=pf.pe, read_lanes=f.simd,
                                   memory_register=plan.memory_register)
            self.buffers.append(buf)
            if layer.kind in ("lif", "conv"):
                stage = LIFStage(layer, f, in_slots=plan.slots[k], out_slots=plan.slots[k + 1],
                                 popcount_stages=popcount_stages, trace=trace,
                                 weight_memory=weight_memory, pool=pool,
                                 memory_register=plan.memory_register)
            else:
                stage = ReadoutStage(layer, f, in_slots=plan.slots[k],
                                     popcount_stages=popcount_stages,
                                     out_depth=plan.out_depth,
                                     trace=trace, weight_memory=weight_memory,
                                     memory_register=plan.memory_register)
            self.stages.append(stage)
        members = {
            "i": In(stream.Signature(self.adapter.layout)),
            "o": Out(stream.Signature(self.stages[-1].result_layout)),
        }
        if trace:
            for (layer, pool), stage in zip(self.stage_layers, self.stages, strict=True):
                members[f"trace_{layer.name}"] = Out(stream.Signature(stage.trace_layout,
                                                                      always_ready=True))
                if pool is not None:
                    members[f"trace_{pool.name}"] = Out(stream.Signature(
                        stage.pool_trace_layout, always_ready=True))
        super().__init__(members)

    @property
    def lanes(self) -> int:
        return self.plan.lanes

    @property
    def memory_register(self) -> bool:
        """Whether block-RAM reads are registered before any logic (the plan's option)."""
        return self.plan.memory_register

    @property
    def beats_per_sample(self) -> int:
        return self.plan.beats

    @property
    def ideal_cycles(self) -> int:
        """The steady-state bound, cycles per sample (:class:`hw.plan.Plan`)."""
        return self.plan.ideal_cycles

    @property
    def trace(self) -> bool:
        return self._trace

    def elaborate(self, platform):
        m = Module()
        m.submodules.input = self.adapter
        wiring.connect(m, wiring.flipped(self.i), self.adapter.i)
        for k, (buf, stage) in enumerate(zip(self.buffers, self.stages, strict=True)):
            layer, pool = self.stage_layers[k]
            name = layer.name
            m.submodules[f"buffer_{name}"] = buf
            m.submodules[f"stage_{name}"] = stage
            writer = self.adapter.w if k == 0 else self.stages[k - 1].o_buf
            wiring.connect(m, writer, buf.w)
            wiring.connect(m, stage.i_buf, buf.r)
            if self._trace:
                wiring.connect(m, wiring.flipped(getattr(self, f"trace_{name}")), stage.trace)
                if pool is not None:
                    wiring.connect(m, wiring.flipped(getattr(self, f"trace_{pool.name}")),
                                   stage.trace_pool)
        wiring.connect(m, wiring.flipped(self.o), self.stages[-1].o)
        return m
