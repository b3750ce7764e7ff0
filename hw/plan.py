"""Build planning: default folding, input lanes, buffer slots and the ideal cycle bound.

Everything here is arithmetic on the artifact and the folding (no Amaranth), so the CLI, the
generator, the testbenches and the benches all quote the same numbers.

The ideal bound (steady state, every stage busy on successive samples) is the slowest of

* the input transfer: ``P * ceil(N / LANES)`` cycles per sample for multi-bit input (one
  beat, then its P bit-planes written one per cycle) or ``T * ceil(N / LANES)`` for spike
  input (one beat per cycle);
* each stage's issue cycles per sample (:func:`stage_cycles`): ``T * ceil(N/SIMD) *
  ceil(M/PE)`` for spike inputs, ``P * ceil(N/SIMD) * ceil(M/PE)`` for the bit-serial
  multi-bit first layer (computed once per sample), which a LIF layer also needs to be at
  least ``T * ceil(M/PE)`` (one LIF update per lane per cycle). A conv stage's neuron groups
  are its output positions times ``C_out / PE`` channel groups and its N is the window
  ``K·K·C_in``: ``T * H_out·W_out * (K·K·C_in / SIMD) * (C_out / PE)`` (positions a
  following pool drops, ``H_out mod k`` rows and columns, are not computed).

A network's stages are its weighted layers (:func:`stage_layers`); a pool layer is fused into
the output of the conv stage before it. A conv stage reads each window straight from its
input buffer, one pixel's channel slice per chunk, so SIMD must divide C_in, and it writes
whole pixels, so PE must divide C_out (:func:`check_stage_folding`; FINN's sliding-window and
matrix-vector units have the same two rules).

The blocks' latencies and cycles come from :mod:`hw.timing` (one function per block, which the
block's ``latency`` property returns too); the plan sums them. The ranges of ``slots``,
``popcount_stages`` and ``out_depth`` are :data:`hw.timing.SLOTS`, ``POPCOUNT_STAGES`` and
``OUT_DEPTH``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw import timing
from hw.interface import beats_per_sample
from sw import fixedpoint as fx
from sw.artifact import Artifact, ConvLayer, LIFLayer, PoolLayer
from sw.checks import check_bool, check_int, check_optional_int
from sw.folding import Folding, LayerFolding

__all__ = ["DEFAULT_BUDGET", "stage_layers", "check_stage_folding", "issue_positions",
           "issue_groups", "stage_groups", "default_folding", "balanced_foldings",
           "default_lanes", "input_beats",
           "input_cycles", "stage_cycles", "stage_latency", "buffer_slots", "result_credits",
           "Plan", "make_plan"]

#: Synaptic bits per cycle (sum of SIMD x PE over the layers) the default folding may use.
DEFAULT_BUDGET = 512


def stage_layers(artifact: Artifact) -> tuple:
    """The stages of a network, one per weighted layer (the layers a folding lists), each as
    ``(layer, pool)``: the pool layer fused into a conv stage's output, else None.

    Raises ValueError naming a pool layer that does not follow a conv layer."""
    stages = []
    for k, layer in enumerate(artifact.layers):
        if not isinstance(layer, PoolLayer):
            stages.append((layer, None))
            continue
        prev = artifact.layers[k - 1] if k else None
        if not isinstance(prev, ConvLayer):
            what = f"a {prev.kind} layer" if prev is not None else "the input"
            raise ValueError(f"layer {layer.name!r}: the hardware fuses a pool layer into the "
                             f"conv stage before it, but it follows {what}")
        stages[-1] = (prev, layer)
    return tuple(stages)


def check_stage_folding(layer, folding: LayerFolding) -> None:
    """Raise ValueError unless ``folding`` suits ``layer``'s stage: the folding's own rule
    (:meth:`sw.folding.LayerFolding.check`), and for a conv layer SIMD dividing C_in and PE
    dividing C_out (a chunk is one pixel's channel slice, a group one pixel's channels)."""
    folding.check(layer)
    if not isinstance(layer, ConvLayer):
        return
    c_in = layer.in_shape[0]
    if c_in % folding.simd:
        raise ValueError(f"layer {layer.name!r}: simd {folding.simd} must divide its {c_in} "
                         f"input channels (a conv stage reads one pixel's channels per chunk)")
    if layer.channels % folding.pe:
        raise ValueError(f"layer {layer.name!r}: pe {folding.pe} must divide its "
                         f"{layer.channels} output channels (a conv stage writes whole pixels)")


def issue_positions(layer: ConvLayer, pool: PoolLayer | None = None) -> list:
    """The output positions ``(y, x)`` of a conv stage in the order it computes them: raster
    order, or with a fused k×k pool each pool window's k·k positions (raster order inside)
    one after the other, windows in raster order; positions no window covers are skipped.
    (Per position the stage computes its C_out / PE channel groups in turn, and with a pool
    it runs the channel group over the window's positions before the next group:
    :func:`issue_groups`.)"""
    # the pooled map's size is the pool layer's (sw.geometry.pool_output_size)
    _, hp, wp = layer.out_shape if pool is None else pool.out_shape
    k = 1 if pool is None else pool.kernel
    return [(py * k + dy, px * k + dx) for py in range(hp) for px in range(wp)
            for dy in range(k) for dx in range(k)]


def issue_groups(layer: ConvLayer, pe: int, pool: PoolLayer | None = None) -> list:
    """The neuron groups of a conv stage in issue order, each as its index in the layer's
    element order divided by PE (``(y·W_out + x)·C_out/PE + channel group``, so lane p of
    group g is neuron ``g·PE + p``, as for a dense layer)."""
    _, _, w = layer.out_shape
    k = 1 if pool is None else pool.kernel
    groups = layer.channels // pe
    pos = issue_positions(layer, pool)
    order = []
    for start in range(0, len(pos), k * k):
        window = pos[start:start + k * k]
        for cg in range(groups):
            order.extend((y * w + x) * groups + cg for y, x in window)
    return order


def stage_groups(layer, folding: LayerFolding, pool: PoolLayer | None = None) -> int:
    """Neuron groups a stage runs per sample: ``ceil(M / PE)``, or for a conv stage its
    computed positions (:func:`issue_positions`) times ``C_out / PE``."""
    if isinstance(layer, ConvLayer):
        return len(issue_positions(layer, pool)) * folding.neuron_folds(layer)
    return folding.neuron_folds(layer)


def stage_cycles(layer, folding: LayerFolding, pool: PoolLayer | None = None) -> int:
    """Issue cycles per sample of a layer's stage (see the module docstring): its neuron
    groups (:func:`stage_groups`) times :func:`hw.timing.group_period`."""
    return stage_groups(layer, folding, pool) * timing.group_period(layer, folding)


def stage_latency(layer, folding: LayerFolding, popcount_stages: int,
                  memory_register: bool = True) -> int:
    """Cycles from the last cycle of a stage's sample (its last operation, or the end of its
    last group's period) to the sample's output (the commit of its spikes, or its result
    entering the output FIFO): the stage's blocks' latencies (:mod:`hw.timing`, the functions
    the blocks' ``latency`` properties return), summed as the stage sums them."""
    front = timing.front_latency(layer, memory_register)
    synapse = timing.synapse_latency(popcount_stages)
    if isinstance(layer, (LIFLayer, ConvLayer)):
        return timing.lif_stage_latency(layer, folding, front=front, synapse=synapse,
                                        lif=timing.lif_latency(layer.step_gain),
                                        memory_register=memory_register)
    return timing.readout_stage_latency(front=front, synapse=synapse,
                                        readout=timing.readout_latency(folding.pe))


def input_beats(artifact: Artifact, lanes: int) -> int:
    """Input stream beats per sample (:func:`hw.interface.beats_per_sample`)."""
    return beats_per_sample(artifact.inputs, artifact.rows_per_sample, lanes)


def input_cycles(artifact: Artifact, lanes: int) -> int:
    """Cycles the input adapter needs per sample at full rate (one per beat and bit-plane,
    :func:`hw.timing.input_cycles_per_beat`)."""
    return input_beats(artifact, lanes) * timing.input_cycles_per_beat(artifact.input.bits)


def _candidates(n: int) -> list[int]:
    vals = {n}
    v = 1
    while v < n:
        vals.add(v)
        v *= 2
    return sorted(vals)


def _options(layer, pool) -> list:
    """(cycles, bits, -simd, folding) of every candidate folding of a stage: SIMD and PE over
    powers of two and the full size (for a conv stage: those dividing C_in and C_out)."""
    if isinstance(layer, ConvLayer):
        simds = [s for s in _candidates(layer.in_shape[0]) if layer.in_shape[0] % s == 0]
        pes = [p for p in _candidates(layer.channels) if layer.channels % p == 0]
    else:
        simds, pes = _candidates(layer.inputs), _candidates(layer.neurons)
    return [(stage_cycles(layer, f, pool), s * p, -s, f)
            for s in simds for p in pes for f in [LayerFolding(s, p)]]


def default_folding(artifact: Artifact, budget: int = DEFAULT_BUDGET) -> Folding:
    """The folding with the fewest cycles per sample whose synaptic bits per cycle
    (``Σ SIMD·PE``) stay within ``budget``; ties go to the fewest bits.

    SIMD and PE run over powers of two and the layer's full size (a conv stage's over those
    that divide C_in and C_out, :func:`check_stage_folding`). For a target number of
    cycles, each layer takes its cheapest folding that meets it (ties: the larger SIMD,
    since the weight word then feeds fewer, wider popcounts); the smallest target whose total
    fits the budget wins. With a budget below what even 1x1 folding needs, every layer is
    folded 1x1.
    """
    check_int("budget", budget, 1)
    for _, bits, folding in balanced_foldings(artifact):
        if bits <= budget:
            return folding
    return Folding(tuple(LayerFolding(1, 1) for _ in stage_layers(artifact)))


def balanced_foldings(artifact: Artifact) -> list[tuple[int, int, Folding]]:
    """``(cycles, bits, folding)`` for every cycle target of :func:`default_folding`, fewest
    cycles first: for each target, every layer's cheapest folding that meets it (ties: the
    larger SIMD); ``cycles`` is the slowest stage's, ``bits`` the folding's ``Σ SIMD·PE``.
    A folding that several targets give is listed once."""
    if not isinstance(artifact, Artifact):
        raise TypeError(f"artifact must be an Artifact, not {type(artifact).__name__}")
    stages = stage_layers(artifact)
    options = [_options(layer, pool) for layer, pool in stages]
    targets = sorted({c for opts in options for c, *_ in opts})
    out, seen = [], set()
    for target in targets:
        chosen = []
        for opts in options:
            fits = [o for o in opts if o[0] <= target]
            if not fits:
                break
            chosen.append(min(fits, key=lambda o: (o[1], o[2])))
        else:
            folding = Folding(tuple(o[3] for o in chosen))
            if folding not in seen:
                seen.add(folding)
                out.append((max(o[0] for o in chosen), sum(o[1] for o in chosen), folding))
    return out


def default_lanes(artifact: Artifact, folding: Folding) -> int:
    """Input values per beat: the smallest divisor of the first layer's SIMD whose transfer
    (:func:`input_cycles`) takes at most half the slowest stage's cycles, so the host can
    leave gaps without slowing the pipeline (SIMD itself if none does). A divisor of SIMD
    keeps the input buffer in its narrow, block-RAM friendly layout."""
    simd = folding.layers[0].simd
    slowest = max(stage_cycles(la, f, pool) for (la, pool), f in
                  zip(stage_layers(artifact), folding.layers, strict=True))
    for lanes in range(1, simd + 1):
        if simd % lanes == 0 and 2 * input_cycles(artifact, lanes) <= slowest:
            return lanes
    return simd


def buffer_slots(producer_cycles: int, producer_latency: int, consumer_cycles: int,
                 period: int) -> int:
    """Slots a buffer needs so that neither side waits in steady state, one sample per
    ``period`` cycles.

    The producer holds a slot from the start of a sample to its commit
    (``producer_cycles + producer_latency`` cycles), the consumer from the next cycle until its
    last read (``consumer_cycles``), and the slot is claimable one cycle after that: a slot
    turns around in ``producer_cycles + producer_latency + consumer_cycles + 2`` cycles, so
    ``ceil(turnaround / period)`` slots (at least 2, :data:`hw.timing.SLOTS`) keep a sample
    starting every ``period``.
    """
    turnaround = producer_cycles + producer_latency + consumer_cycles + 2
    return max(timing.SLOTS[0], fx.ceil_div(turnaround, max(period, 1)))


def result_credits(readout_cycles: int, readout_latency: int, period: int) -> int:
    """Result credits so the readout never waits for a prompt host: a credit is held from a
    sample's start through its result's trip to ``o`` and its return
    (``readout_cycles + readout_latency + 3`` cycles). One credit (no output FIFO, the
    score registers are the only copy of a result) where that fits in a ``period``."""
    return max(timing.OUT_DEPTH[0],
               fx.ceil_div(readout_cycles + readout_latency + 3, max(period, 1)))


@dataclass(frozen=True)
class Plan:
    """The derived build facts of an accelerator (all from the artifact and the options)."""

    folding: Folding
    lanes: int
    beats: int
    input_cycles: int
    slots: tuple[int, ...]          # one per buffer: input buffer, then after each LIF stage
    stage_cycles: tuple[int, ...]
    stage_latency: tuple[int, ...]
    popcount_stages: int
    out_depth: int
    memory_register: bool = True

    @property
    def ideal_cycles(self) -> int:
        """The bound: max(input cycles, every stage's cycles) per sample."""
        return max(self.input_cycles, *self.stage_cycles)

    @property
    def first_sample_latency(self) -> int:
        """Cycles from the transfer of a sample's first input beat to its output beat on ``o``
        (valid) when the accelerator is idle and ``o.ready`` is high: the input transfer (until
        its last write commits the slot), then each stage's start, issue and pipeline to its
        commit, then the output FIFO."""
        stages = sum(timing.STAGE_START_LATENCY + c + lat
                     for c, lat in zip(self.stage_cycles, self.stage_latency, strict=True))
        return self.input_cycles + stages + timing.output_fifo_latency(self.out_depth)

    @property
    def bottleneck(self) -> str:
        worst = self.ideal_cycles
        if self.input_cycles == worst and self.input_cycles > max(self.stage_cycles):
            return "input"
        return f"stage {self.stage_cycles.index(worst)}"


def _check_derived(name: str, value: int, bounds: tuple[int, int]) -> None:
    # The derived counts fit the ranges for every latency the blocks have today (hw.timing);
    # a block that grows its pipeline must raise the range too, and this says so before a
    # buffer rejects its parameter with less context.
    if value > bounds[1]:
        raise ValueError(f"the default {name} would be {value}, more than the {bounds[1]} the "
                         f"blocks take (hw.timing); give {name} or fold less")


def make_plan(artifact: Artifact, folding: Folding | None = None, *, lanes: int | None = None,
              slots: int | None = None, popcount_stages: int = 3, out_depth: int | None = None,
              budget: int = DEFAULT_BUDGET, memory_register: bool = True) -> Plan:
    """Validate the build options and derive the plan (defaults filled in)."""
    if not isinstance(artifact, Artifact):
        raise TypeError(f"artifact must be an Artifact, not {type(artifact).__name__}")
    stages = stage_layers(artifact)
    if folding is None:
        folding = default_folding(artifact, budget)
    if not isinstance(folding, Folding):
        raise TypeError(f"folding must be a sw.folding.Folding, not {folding!r}")
    folding.check(artifact)
    for (layer, _), f in zip(stages, folding.layers, strict=True):
        check_stage_folding(layer, f)
    if lanes is None:
        lanes = default_lanes(artifact, folding)
    check_int("lanes", lanes)
    if not 1 <= lanes <= artifact.inputs:
        raise ValueError(f"lanes must be between 1 and the {artifact.inputs} inputs, "
                         f"not {lanes!r}")
    check_optional_int("slots", slots, *timing.SLOTS)
    timing.check_popcount_stages(popcount_stages)
    check_optional_int("out_depth", out_depth, *timing.OUT_DEPTH)
    cycles = tuple(stage_cycles(la, f, pool) for (la, pool), f in
                   zip(stages, folding.layers, strict=True))
    check_bool("memory_register", memory_register)
    latency = tuple(stage_latency(la, f, popcount_stages, memory_register)
                    for (la, _), f in zip(stages, folding.layers, strict=True))
    # A conv stage holds its input slot for its address register's cycle more.
    holds = tuple(c + (timing.conv_address_latency() if isinstance(la, ConvLayer) else 0)
                  for c, (la, _) in zip(cycles, stages, strict=True))
    beats = input_beats(artifact, lanes)
    in_cycles = input_cycles(artifact, lanes)
    period = max(in_cycles, *cycles)
    # The input adapter commits a slot with its last write (no pipeline behind it).
    producers = [(in_cycles, 0)] + list(zip(cycles[:-1], latency[:-1], strict=True))
    if slots is None:
        slot_list = tuple(buffer_slots(pc, pl, cc, period)
                          for (pc, pl), cc in zip(producers, holds, strict=True))
        _check_derived("slots", max(slot_list), timing.SLOTS)
    else:
        slot_list = (slots,) * len(cycles)
    if out_depth is None:
        out_depth = result_credits(cycles[-1], latency[-1], period)
        _check_derived("out_depth", out_depth, timing.OUT_DEPTH)
    return Plan(folding=folding, lanes=lanes, beats=beats, input_cycles=in_cycles,
                slots=slot_list,
                stage_cycles=cycles, stage_latency=latency, popcount_stages=popcount_stages,
                out_depth=out_depth, memory_register=memory_register)
