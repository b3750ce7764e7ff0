"""Formal proofs with SymbiYosys (``nox -s formal``): what holds for every input sequence.

Each property is a harness around a component (:mod:`hw.formal`), run on small networks drawn
by :func:`sw.randnet.random_artifact` with fixed seeds, and each has a mutation: the same
harness around a deliberately broken variant, which must fail with a counterexample waveform.
The mutations live in the harness (a ``mutation`` argument), never in the shipped gateware:

* ``ignore-ready``: the design is told every output beat was taken (its ``o.ready`` tied
  high) while the consumer's ``ready`` is free: a dropped ``ready`` term.
* ``swap-scores``: the output's first two class scores swapped (two outputs swapped).
* ``extra-register``: ``o.valid`` one register later than the plan states.
* the parser built with a timeout far beyond the one it is checked against (a parser that
  ignores its timeout within the proof's horizon).

Latencies come from the plan (:attr:`hw.plan.Plan.first_sample_latency`), expected outputs
from the golden model (:class:`sw.golden.GoldenModel`) over every possible input sample.
docs/verification.md ("Formal proofs") lists what is proven, at which depth, how long it takes.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Array, Assert, Assume, Cat, Const, Cover, Mux, Signal, Value

from bitstreams.link import FrameParser
from hw import Accelerator
from hw.formal import (
    FormalError,
    assert_stream,
    assume_stream,
    check,
    formal_module,
    internal_signals,
    run,
)
from hw.plan import make_plan
from hw.testing import sample_beats
from sw.folding import Folding, LayerFolding
from sw.golden import GoldenModel
from sw.randnet import random_artifact

pytestmark = pytest.mark.formal

#: Small networks (random_artifact options, folding or None for the default). Their whole input
#: space is at most 2^6 samples, so the conservation harness carries the golden model's output
#: for every one of them.
DESIGNS = {
    "mlp-3-4-3-multibit2": (dict(seed=11, sizes=[3, 4, 3], time_steps=2, input_kind="multibit",
                                 input_bits=2, reset="soft", leak_shift=1), None),
    "spike-3-4-2-folded": (dict(seed=12, sizes=[3, 4, 2], time_steps=2, input_kind="spike",
                                reset="hard", leak_shift=None), [(3, 2), (2, 1)]),
    "readout-2-3-gains": (dict(seed=13, sizes=[2, 3], time_steps=3, input_kind="multibit",
                               input_bits=3, step_gain=True), [(2, 2)]),
}
#: Networks whose arithmetic is a few bits wide, for the conservation proof over many samples
#: (the solver's time grows steeply with every further sample of the arithmetic of DESIGNS).
TINY = {
    "tiny-2-2-2-spike": (dict(seed=21, sizes=[2, 2, 2], time_steps=1, input_kind="spike",
                              reset="hard", leak_shift=None, frac_bits=0), None),
    "tiny-2-2-readout": (dict(seed=22, sizes=[2, 2], time_steps=1, input_kind="multibit",
                              input_bits=1, frac_bits=0), [(1, 1)]),
}
DESIGNS.update(TINY)


def _design(name, **options):
    kwargs, fold = DESIGNS[name]
    kwargs = dict(kwargs)
    art = random_artifact(kwargs.pop("seed"), **kwargs)
    folding = None if fold is None else Folding(tuple(LayerFolding(s, p) for s, p in fold))
    return art, Accelerator(art, folding, **options)


def _drive_input(m, dut):
    """``i`` from the environment: any beats at any time, held until taken."""
    m.d.comb += [dut.i.valid.eq(AnySeq(1)),
                 dut.i.payload.eq(AnySeq(Value.cast(dut.i.payload).shape()))]
    assume_stream(m, dut.i, "i")


def _output_ready(m, dut, mutation):
    """The consumer's ``ready`` (free), and what the design is given."""
    ready = Signal(name="consumer_ready")
    m.d.comb += ready.eq(AnySeq(1))
    m.d.comb += dut.o.ready.eq(1 if mutation == "ignore-ready" else ready)
    return ready


def _expect_fail(exc_info, mode="bmc"):
    result = exc_info.value.result
    assert not result.passed and result.mode == mode
    assert result.failed, result.describe()
    assert result.waveform is not None and result.waveform.stat().st_size > 0
    assert str(result.waveform) in str(exc_info.value)
    return result


# -- the stream contract on the accelerator's output ------------------------------------------

def contract_spec(dut, mutation=None):
    m = formal_module()
    m.submodules.dut = dut
    _drive_input(m, dut)
    ready = _output_ready(m, dut, mutation)
    assert_stream(m, dut.o, "o", ready=ready)
    # not vacuous: an output beat waits on a low ready and is then taken
    waited = Signal()
    m.d.sync += waited.eq(waited | dut.o.valid & ~ready)
    m.d.comb += Cover(waited & dut.o.valid & ready)
    return m


def _contract_depth(dut):
    # the induction reaches past the first output beat, so its base case has seen one
    return dut.plan.first_sample_latency + 4


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_output_stream_contract_is_proven(name, tmp_path):
    art, dut = _design(name, trace=True)
    check(contract_spec(dut), name=f"contract-{name}", mode="prove",
          depth=_contract_depth(dut), workdir=tmp_path)


def test_output_stream_contract_is_not_vacuous(tmp_path):
    art, dut = _design("mlp-3-4-3-multibit2")
    check(contract_spec(dut), name="contract-cover", mode="cover",
          depth=_contract_depth(dut) + 4, workdir=tmp_path)


def test_output_stream_contract_catches_a_dropped_ready(tmp_path):
    art, dut = _design("mlp-3-4-3-multibit2")
    with pytest.raises(FormalError) as exc:
        check(contract_spec(dut, "ignore-ready"), name="contract-ignore-ready", mode="bmc",
              depth=_contract_depth(dut), workdir=tmp_path)
    result = _expect_fail(exc)
    assert any("before the transfer" in f for f in result.failed), result.describe()


# -- sample conservation and equivalence with the golden model --------------------------------

def _every_sample(art):
    """Every possible input sample of the network, in the datasets' layout."""
    if art.input.kind == "spike":
        shape, values = (art.time_steps, art.inputs), (0, 1)
    else:
        shape, values = (art.inputs,), range(1 << art.input.bits)
    count = int(np.prod(shape))
    return np.array(list(itertools.product(values, repeat=count)),
                    dtype=np.int64).reshape(-1, *shape)


def _sample_key(dut, sample) -> int:
    """The input beats of ``sample``, concatenated as the harness captures them."""
    width = dut.adapter.layout.size
    key = 0
    for b, beat in enumerate(sample_beats(dut.artifact, dut.lanes, sample)):
        key |= Value.cast(dut.adapter.layout.const(beat)).value << (b * width)
    return key


def golden_table(art, dut):
    """``{input key: output beat}`` of the golden model, for every possible input sample."""
    if art.inputs % dut.lanes:
        raise ValueError("the conservation harness needs lanes dividing the inputs (no padding)")
    samples = _every_sample(art)
    golden = GoldenModel(art).run(samples)
    layout = dut.o.payload.shape()
    table = {}
    for k, sample in enumerate(samples):
        beat = layout.const({"prediction": int(golden.predictions[k]),
                             "scores": [int(v) for v in golden.scores[k]]})
        table[_sample_key(dut, sample)] = Value.cast(beat).value
    return table


def in_flight_bound(plan) -> int:
    """Samples the accelerator can hold: every buffer slot and every result credit."""
    return sum(plan.slots) + plan.out_depth


def conservation_spec(art, dut, mutation=None):
    """A shadow FIFO of every sample's input beats; each output beat the consumer takes must be
    the golden model's output for the oldest sample not yet answered, and never more samples
    are in flight than :func:`in_flight_bound`."""
    bound = in_flight_bound(dut.plan)
    capacity = 1 << (bound + 1).bit_length()
    m = formal_module()
    m.submodules.dut = dut
    _drive_input(m, dut)
    ready = _output_ready(m, dut, mutation)
    table = golden_table(art, dut)
    beats, width = dut.beats_per_sample, dut.adapter.layout.size
    key_width = beats * width
    if 1 << key_width != len(table):
        raise ValueError(f"{len(table)} samples for {key_width} key bits")

    in_xfer = dut.i.valid & dut.i.ready
    beat = Signal(range(beats), name="beat_index")
    held = Signal(max(1, (beats - 1) * width), name="held_beats")
    key = Signal(key_width, name="sample_key")
    raw = Value.cast(dut.i.payload)
    m.d.comb += key.eq(Cat(held[:(beats - 1) * width], raw) if beats > 1 else raw)
    push = in_xfer & (beat == beats - 1)
    with m.If(in_xfer):
        if beats > 1:
            m.d.sync += held.word_select(beat, width).eq(raw)
        m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))

    fifo = Array(Signal(key_width, name=f"shadow_{k}") for k in range(capacity))
    wptr = Signal(range(capacity), name="shadow_write")
    rptr = Signal(range(capacity), name="shadow_read")
    count = Signal(range(capacity + 1), name="shadow_count")
    out_xfer = dut.o.valid & ready
    payload = Value.cast(dut.o.payload)
    if mutation == "swap-scores":
        scores = dut.o.payload.scores
        payload = Cat(dut.o.payload.prediction, scores[1], scores[0],
                      *(scores[k] for k in range(2, len(scores))))
    expected = Array(Const(table[k], len(payload)) for k in range(len(table)))
    with m.If(push):
        m.d.comb += Assert(count < bound, "more samples in flight than slots and credits")
        m.d.sync += [fifo[wptr].eq(key), wptr.eq(wptr + 1)]
    with m.If(out_xfer):
        # one Assert a line: a counterexample names the line
        m.d.comb += Assert(count != 0, "an output beat without an input sample")
        golden = expected[fifo[rptr]]
        m.d.comb += Assert(payload == golden, "not the golden model's output for that sample")
        m.d.sync += rptr.eq(rptr + 1)
    m.d.sync += count.eq(count + push - out_xfer)
    # not vacuous: three samples answered
    answered = Signal(range(4))
    with m.If(out_xfer & (answered != 3)):
        m.d.sync += answered.eq(answered + 1)
    m.d.comb += Cover(answered == 3)
    return m


#: Cycles past the plan's first-sample latency that each conservation check runs (BMC depth
#: ``first_sample_latency + extra``): with samples back to back, ``extra // ideal_cycles + 1``
#: answers, fewer under gaps and back-pressure, every one compared. The solver's time grows
#: steeply with each further answer of a wide datapath, so the networks with 4..6-bit scores
#: check the first answers and the tiny ones check more.
CONSERVATION = {"tiny-2-2-2-spike": 6, "tiny-2-2-readout": 2, "mlp-3-4-3-multibit2": 2,
                "spike-3-4-2-folded": 2, "readout-2-3-gains": 2}


def _conservation_depth(name, dut):
    return dut.plan.first_sample_latency + CONSERVATION[name]


@pytest.mark.parametrize("name", sorted(CONSERVATION))
def test_every_sample_answered_once_in_order_with_the_golden_output(name, tmp_path):
    art, dut = _design(name)
    check(conservation_spec(art, dut), name=f"conservation-{name}", mode="bmc",
          depth=_conservation_depth(name, dut), workdir=tmp_path)


def test_conservation_is_not_vacuous(tmp_path):
    """Three answers within the tiny network's depth."""
    art, dut = _design("tiny-2-2-2-spike")
    check(conservation_spec(art, dut), name="conservation-cover", mode="cover",
          depth=_conservation_depth("tiny-2-2-2-spike", dut), workdir=tmp_path)


@pytest.mark.parametrize("mutation", ["ignore-ready", "swap-scores"])
def test_conservation_catches(mutation, tmp_path):
    art, dut = _design("tiny-2-2-2-spike")
    with pytest.raises(FormalError) as exc:
        check(conservation_spec(art, dut, mutation), name=f"conservation-{mutation}",
              mode="bmc", depth=_conservation_depth("tiny-2-2-2-spike", dut),
              workdir=tmp_path)
    result = _expect_fail(exc)
    assert any("golden model" in f for f in result.failed), result.describe()


# -- bounded latency: the planner's first-sample latency, exactly ------------------------------

def latency_spec(dut, *, ready: int, mutation=None, latency=None):
    """From the idle accelerator, the first sample's beats back to back (any idle time before
    them): ``o.valid`` is low until exactly ``latency`` cycles (default the plan's) after the
    first beat's transfer, and high then, with ``o.ready`` held at ``ready``."""
    m = formal_module()
    m.submodules.dut = dut
    _drive_input(m, dut)
    m.d.comb += dut.o.ready.eq(ready)
    latency = dut.plan.first_sample_latency if latency is None else latency
    beats = dut.beats_per_sample
    xfer = dut.i.valid & dut.i.ready
    started = Signal(name="started")
    elapsed = Signal(range(latency + 2), name="elapsed")
    taken = Signal(range(beats + 1), name="first_sample_beats")
    with m.If(xfer & ~started):
        m.d.sync += [started.eq(1), elapsed.eq(1)]
    with m.Elif(started & (elapsed != latency + 1)):
        m.d.sync += elapsed.eq(elapsed + 1)
    with m.If(xfer & (taken != beats)):
        m.d.sync += taken.eq(taken + 1)
    with m.If(started & (taken != beats)):
        m.d.comb += Assume(dut.i.valid)
    valid = dut.o.valid
    if mutation == "extra-register":
        late = Signal(name="late_valid")
        m.d.sync += late.eq(dut.o.valid)
        valid = late
    with m.If(~started | (elapsed < latency)):
        m.d.comb += Assert(~valid, "output before the stated latency")
    with m.If(started & (elapsed == latency)):
        m.d.comb += Assert(valid, "no output at the stated latency")
    return m


def _latency_depth(dut):
    return dut.plan.first_sample_latency + 6  # the first beat taken in any of cycles 0..5


@pytest.mark.parametrize("ready", [1, 0], ids=["ready-high", "ready-low"])
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_first_output_comes_at_the_planned_latency(name, ready, tmp_path):
    """With ``o.ready`` high as the plan states it, and low too: ``valid`` never waits for
    ``ready``."""
    art, dut = _design(name)
    check(latency_spec(dut, ready=ready), name=f"latency-{name}-{ready}", mode="bmc",
          depth=_latency_depth(dut), workdir=tmp_path)


@pytest.mark.parametrize("name", ["mlp-3-4-3-multibit2", "readout-2-3-gains"])
def test_without_memory_registers_answers_are_golden_at_the_planned_latency(name, tmp_path):
    """The iCE40 boards' build (``memory_register=False``: reads feed logic from the memories'
    ports, a multi-bit layer replays from the ROM's port): every sample answered once, in
    order, with the golden output, and the first at the plan's (shorter) latency."""
    art, dut = _design(name, memory_register=False)
    registered = make_plan(art, dut.folding)
    assert dut.plan.first_sample_latency < registered.first_sample_latency, dut.plan
    check(conservation_spec(art, dut), name=f"conservation-noreg-{name}", mode="bmc",
          depth=_conservation_depth(name, dut), workdir=tmp_path)
    art, dut = _design(name, memory_register=False)
    check(latency_spec(dut, ready=1), name=f"latency-noreg-{name}", mode="bmc",
          depth=_latency_depth(dut), workdir=tmp_path)


@pytest.mark.parametrize("variant", ["extra-register", "plan-minus-one", "plan-plus-one"])
def test_latency_catches(variant, tmp_path):
    """A design one register slower fails, and so does a plan one cycle off either way: the
    stated latency is exact."""
    art, dut = _design("mlp-3-4-3-multibit2")
    plan = dut.plan.first_sample_latency
    options = {"extra-register": dict(mutation="extra-register"),
               "plan-minus-one": dict(latency=plan - 1),
               "plan-plus-one": dict(latency=plan + 1)}[variant]
    with pytest.raises(FormalError) as exc:
        check(latency_spec(dut, ready=1, **options), name=f"latency-{variant}", mode="bmc",
              depth=_latency_depth(dut), workdir=tmp_path)
    _expect_fail(exc)


# -- the host link's frame parser: no byte sequence wedges it ----------------------------------

#: FrameParser's documented minimum byte spacing ("bytes must come at least 8 cycles apart").
BYTE_SPACING = 8
TIMEOUT = 16
_STATES = ["HUNT", "TYPE", "SEQ", "LEN0", "LEN1", "PAYLOAD", "CRC0", "CRC1", "CHECK",
           "DISPATCH"]


def parser_idle_bound(timeout_cycles: int) -> int:
    """Quiet cycles after which the parser is back in HUNT: its timeout, then the registered
    byte, the registered timeout flag and the state register (pinned exact by the tests)."""
    return timeout_cycles + 3


def parser_spec(*, timeout_cycles: int, bound: int, one_hot: bool = False):
    """Any bytes, framing errors, ``slot_full`` and ``reset_pending`` at any time (bytes at
    least :data:`BYTE_SPACING` cycles apart); after ``bound`` cycles of a quiet line the parser
    is in HUNT and outside any frame."""
    parser = FrameParser(sample_bytes=2, timeout_cycles=timeout_cycles)
    names = [f"parser_{s.lower()}" for s in _STATES] + ["inframe"]
    built, state = internal_signals(parser, *names)
    m = formal_module()
    m.submodules.parser = built
    m.d.comb += [parser.rx.valid.eq(AnySeq(1)), parser.rx.payload.eq(AnySeq(8)),
                 parser.rx_error.eq(AnySeq(1)), parser.slot_full.eq(AnySeq(1)),
                 parser.reset_pending.eq(AnySeq(1))]
    since_byte = Signal(range(BYTE_SPACING + 1), init=BYTE_SPACING)
    with m.If(parser.rx.valid):
        m.d.sync += since_byte.eq(1)
    with m.Elif(since_byte != BYTE_SPACING):
        m.d.sync += since_byte.eq(since_byte + 1)
    m.d.comb += Assume(~parser.rx.valid | (since_byte == BYTE_SPACING))
    # the UART pulses its framing error instead of a byte, never with one
    m.d.comb += Assume(~(parser.rx.valid & parser.rx_error))
    quiet = Signal(range(bound + 1), name="quiet_cycles")
    with m.If(parser.rx.valid | parser.rx_error):
        m.d.sync += quiet.eq(0)
    with m.Elif(quiet != bound):
        m.d.sync += quiet.eq(quiet + 1)
    if one_hot:
        bits = Cat(*(state[f"parser_{s.lower()}"] for s in _STATES))
        m.d.comb += Assert((bits != 0) & ((bits & (bits - 1)) == 0), "state not one-hot")
    with m.If(quiet == bound):
        m.d.comb += Assert(state["parser_hunt"] & ~state["inframe"], "not back in HUNT")
        for s in _STATES[1:]:
            m.d.comb += Assert(~state[f"parser_{s.lower()}"], f"still in {s}")
    return m


def _parser_depth(timeout_cycles):
    """BMC depth: four wraps of the idle counter (which runs on past the timeout and wraps),
    128 cycles for a timeout of 16, so every sequence of up to 16 bytes (8 cycles apart at
    the least) with any framing errors, then the quiet line. k-induction does not close: its
    step starts from states the parser never reaches (no state bit set at all)."""
    return 4 << (timeout_cycles + 1).bit_length()


def test_parser_returns_to_hunt_after_a_quiet_line(tmp_path):
    check(parser_spec(timeout_cycles=TIMEOUT, bound=parser_idle_bound(TIMEOUT)),
          name="parser-liveness", mode="bmc", depth=_parser_depth(TIMEOUT), workdir=tmp_path)


def test_parser_state_stays_one_hot(tmp_path):
    """Exactly one state bit is set in every reachable state, from any byte sequence: a byte
    arriving in the cycle its frame times out ends the frame and does not also advance it
    (before the fix it did, setting HUNT and the next state together, and a last CRC byte at
    that moment was both timed out and dispatched)."""
    check(parser_spec(timeout_cycles=TIMEOUT, bound=parser_idle_bound(TIMEOUT), one_hot=True),
          name="parser-one-hot", mode="bmc", depth=_parser_depth(TIMEOUT), workdir=tmp_path)


def test_parser_idle_bound_is_exact(tmp_path):
    """One quiet cycle fewer is not enough: some byte sequence leaves the parser in a frame."""
    result = run(parser_spec(timeout_cycles=TIMEOUT, bound=parser_idle_bound(TIMEOUT) - 1),
                 name="parser-bound-minus-one", mode="bmc", depth=_parser_depth(TIMEOUT),
                 workdir=tmp_path)
    assert not result.passed and result.waveform is not None, result.describe()


def test_parser_that_ignores_its_timeout_is_caught(tmp_path):
    with pytest.raises(FormalError) as exc:
        check(parser_spec(timeout_cycles=1 << 12, bound=parser_idle_bound(TIMEOUT)),
              name="parser-no-timeout", mode="bmc", depth=_parser_depth(TIMEOUT),
              workdir=tmp_path)
    _expect_fail(exc)


# -- no overflow: the LIF unit at the exporter's width against an unbounded shadow ------------

#: Extra bits of the shadow over the unit's width: far more than any sum the tests reach, so
#: the shadow's arithmetic is the unbounded one.
SHADOW_BITS = 16


def lif_spec(layer, *, width=None):
    """One lane of :class:`hw.lif.LIFUnit` built for ``layer`` (``width``: the layer's membrane
    width unless given), any neuron of the layer (its bias, threshold, connection), any
    synaptic sums within the layer's proven bound (``synaptic_bound``), time steps 0..T-1 in
    order with any gaps: every h, v and spike equals the same update computed
    ``SHADOW_BITS`` wider."""
    from amaranth.asserts import AnyConst
    from amaranth.hdl import signed

    from hw.lif import LIFUnit

    w = layer.membrane.width if width is None else width
    f, k, steps = layer.membrane.frac, layer.leak_shift, layer.time_steps
    lif = LIFUnit(1, width=w, frac=f, leak_shift=k, reset=layer.reset,
                  step_gain=layer.step_gain, current_width=layer.synaptic_width)
    m = formal_module()
    m.submodules.lif = lif
    wide = signed(w + SHADOW_BITS)
    neuron = Signal(range(layer.neurons), name="neuron")
    m.d.comb += neuron.eq(AnyConst(range(layer.neurons)))
    bias = Array(Const(int(b), wide) for b in layer.bias)[neuron]
    threshold = Array(Const(int(t), wide) for t in layer.threshold)[neuron]
    connected = Array(Const(int(c), 1) for c in layer.connected)[neuron]
    gain = Array(Const(int(g), wide) for g in layer.step_gain)
    x = Signal(signed(layer.synaptic_width), name="synaptic_sum")
    valid = Signal(name="op_valid")
    t = Signal(range(steps), name="time_step")
    m.d.comb += [x.eq(AnySeq(x.shape())), valid.eq(AnySeq(1))]
    m.d.comb += Assume((x <= layer.synaptic_bound) & (x >= -layer.synaptic_bound))
    op = lif.i.payload
    m.d.comb += [lif.i.valid.eq(valid), op.current[0].eq(x), op.bias[0].eq(bias),
                 op.threshold[0].eq(threshold), op.connected.eq(connected),
                 op.time_step.eq(t)]
    with m.If(valid):
        m.d.sync += t.eq(Mux(t == steps - 1, 0, t + 1))

    # the shadow: the update of docs/arithmetic.md, SHADOW_BITS wider, one op per valid cycle
    v = Signal(wide, name="shadow_membrane")
    drive = Signal(wide, name="shadow_drive")
    h = Signal(wide, name="shadow_potential")
    nxt = Signal(wide, name="shadow_next")
    fire = Signal(name="shadow_spike")
    m.d.comb += drive.eq(gain[t] * Mux(connected, (x << f) + bias, bias))
    m.d.comb += h.eq((v if k is None else v - (v >> k)) + drive)
    m.d.comb += fire.eq(h >= threshold)
    m.d.comb += nxt.eq(Mux(fire, 0 if layer.reset == "hard" else h - threshold, h))
    with m.If(valid):
        m.d.sync += v.eq(Mux(t == steps - 1, 0, nxt))
    # results come lif.latency cycles after their operation
    line = [(valid, h, nxt, fire)]
    for n in range(lif.latency):
        stage = (Signal(name=f"exp_valid{n}"), Signal(wide, name=f"exp_potential{n}"),
                 Signal(wide, name=f"exp_membrane{n}"), Signal(name=f"exp_spike{n}"))
        m.d.sync += [a.eq(b) for a, b in zip(stage, line[-1], strict=True)]
        line.append(stage)
    e_valid, e_h, e_v, e_s = line[-1]
    out = lif.o.payload
    m.d.comb += Assert(lif.o.valid == e_valid, "a result without its operation")
    with m.If(e_valid):
        m.d.comb += Assert(out.potential[0] == e_h, "potential h differs from the shadow")
        m.d.comb += Assert(out.membrane[0] == e_v, "membrane v differs from the shadow")
        m.d.comb += Assert(out.spikes[0] == e_s, "spike differs from the shadow")
    return m


def _artifact(name):
    kwargs = dict(DESIGNS[name][0])
    return random_artifact(kwargs.pop("seed"), **kwargs)


def _lif_layers():
    return [(name, layer.name) for name in sorted(DESIGNS)
            for layer in _artifact(name).layers if layer.kind == "lif"]


def _lif_layer(name, layer_name):
    return next(la for la in _artifact(name).layers if la.name == layer_name)


def _lif_depth(layer):
    return 3 * layer.time_steps + 8  # a whole neuron (T steps) with gaps, and its results


@pytest.mark.parametrize("name,layer_name", _lif_layers())
def test_lif_unit_never_overflows_at_the_exported_width(name, layer_name, tmp_path):
    layer = _lif_layer(name, layer_name)
    check(lif_spec(layer), name=f"lif-{name}-{layer_name}", mode="bmc",
          depth=_lif_depth(layer), workdir=tmp_path)


@pytest.mark.parametrize("name", ["spike-3-4-2-folded", "tiny-2-2-2-spike"])
def test_lif_unit_one_bit_narrower_is_caught(name, tmp_path):
    """The membrane register one bit narrower than the exporter's width overflows for some
    input within the proven bound. (Not every layer's width is tight: for
    ``mlp-3-4-3-multibit2``'s fc0 one bit fewer still computes every reachable value.)"""
    layer = _lif_layer(name, "fc0")
    with pytest.raises(FormalError) as exc:
        check(lif_spec(layer, width=layer.membrane.width - 1), name=f"lif-narrow-{name}",
              mode="bmc", depth=_lif_depth(layer), workdir=tmp_path)
    result = _expect_fail(exc)
    assert any("differs from the shadow" in f for f in result.failed), result.describe()
