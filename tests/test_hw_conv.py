"""Conv stages in hardware: the plan's rules and cycle counts, and cocotb regressions of conv
networks against the golden model, exactly.

The plan tests restate docs/hardware.md's rules (SIMD divides C_in, PE divides C_out, a pool
is fused into the conv stage before it) and the cycle bound of a conv stage written out from
the layer's sizes, not from the plan's code. The regressions draw random conv networks (conv
kernels 1/3/5, strides 1/2, every padding, pools, dense LIF layers, multi-bit and spike input)
and random legal foldings from the test's fresh seed (printed on failure), and run each with
input gaps, output backpressure, the trace of every layer (conv x/h/v/s per position, pooled
spikes), reset in the middle of a sample and back to back at the ideal bound. The default
suite runs one small network and the test of the test; the rest is ``slow``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hw.plan import (
    issue_groups,
    issue_positions,
    make_plan,
    stage_cycles,
    stage_layers,
)
from sim.accelerator import TESTCASES, generate, simulate
from sim.runner import SimulationError
from sim.testing import build_dir_for, require_simulator
from sw.artifact import ConvLayer, write_artifact
from sw.folding import Folding, LayerFolding
from sw.randnet import random_conv_artifact, random_inputs


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _legal_folding(artifact, rng) -> Folding:
    """A random folding every stage accepts: for a conv layer SIMD | C_in and PE | C_out."""
    layers = []
    for layer in artifact.weighted_layers:
        if isinstance(layer, ConvLayer):
            simd = int(rng.choice(_divisors(layer.in_shape[0])))
            pe = int(rng.choice(_divisors(layer.channels)))
        else:
            simd = int(rng.integers(1, layer.inputs + 1))
            pe = int(rng.integers(1, layer.neurons + 1))
        layers.append(LayerFolding(simd, pe))
    return Folding(tuple(layers))


# -- the plan ------------------------------------------------------------------------------------


def test_conv_stage_cycles_are_the_bound_written_out():
    """T·H_out·W_out·(K²·C_in/SIMD)·(C_out/PE) for spike input; P planes once per sample (and
    at least T per group) for multi-bit input; positions a pool drops are not computed."""
    art = random_conv_artifact(0, in_shape=(4, 9, 7), layers=[
        ("conv", 6, 3, 2, 1), ("pool", 2), ("conv", 8, 5, 1, 2), ("readout", 3)],
        input_kind="spike", time_steps=3)
    (c1, p1), (c2, p2), (out, _) = stage_layers(art)
    assert (c1.name, p1.name, c2.name, p2, out.kind) == ("conv0", "pool1", "conv2", None,
                                                         "readout")
    assert c1.out_shape == (6, 5, 4)           # (9 + 2 - 3) // 2 + 1, (7 + 2 - 3) // 2 + 1
    # 5 x 4 positions, the 2x2 pool covers 4 x 4 of them
    assert stage_cycles(c1, LayerFolding(2, 3), p1) == 3 * (4 * 4) * (9 * 4 // 2) * (6 // 3)
    assert stage_cycles(c1, LayerFolding(4, 6)) == 3 * (5 * 4) * 9 * 1
    assert c2.in_shape == (6, 2, 2)
    assert stage_cycles(c2, LayerFolding(6, 2)) == 3 * (2 * 2) * 25 * 4

    multi = random_conv_artifact(1, in_shape=(1, 8, 8), layers=[
        ("conv", 32, 3, 1, 1), ("readout", 10)], input_kind="multibit", input_bits=5,
        time_steps=4)
    conv = multi.layers[0]
    assert stage_cycles(conv, LayerFolding(1, 8)) == 64 * 4 * (5 * 9)     # P·K²·C_in/SIMD
    tiny = random_conv_artifact(1, in_shape=(1, 3, 3), layers=[
        ("conv", 2, 1, 1, 0), ("readout", 2)], input_kind="multibit", input_bits=2,
        time_steps=5)
    # 2 planes x 1 chunk per group, but the LIF unit takes T = 5 cycles per group
    assert stage_cycles(tiny.layers[0], LayerFolding(1, 1)) == 9 * 2 * 5


def test_issue_order_covers_every_pooled_position_once():
    art = random_conv_artifact(2, in_shape=(2, 7, 6), layers=[
        ("conv", 4, 3, 1, 1), ("pool", 3), ("readout", 2)], input_kind="spike", time_steps=2)
    conv, pool = art.layers[0], art.layers[1]
    pos = issue_positions(conv, pool)
    assert pos[:9] == [(y, x) for y in range(3) for x in range(3)]        # the first window
    assert sorted(pos) == [(y, x) for y in range(6) for x in range(6)]    # row 6 dropped
    groups = issue_groups(conv, 2, pool)
    # each window runs one channel group over its 9 positions, then the next
    assert groups[:9] == [(y * 6 + x) * 2 for y in range(3) for x in range(3)]
    assert groups[9] == 1
    assert len(set(groups)) == len(groups) == 36 * 2
    raster = issue_groups(conv, 4)
    assert raster == list(range(7 * 6))


def test_conv_foldings_and_pools_are_refused_by_name(tmp_path):
    art = random_conv_artifact(3, in_shape=(6, 6, 6), layers=[
        ("conv", 4, 3, 1, 1), ("pool", 2), ("readout", 3)], input_kind="spike", time_steps=2)
    with pytest.raises(ValueError, match=r"^layer 'conv0': simd 4 must divide its 6 input "
                                         r"channels \(a conv stage reads one pixel's channels "
                                         r"per chunk\)$"):
        make_plan(art, Folding((LayerFolding(4, 2), LayerFolding(1, 1))))
    with pytest.raises(ValueError, match=r"^layer 'conv0': pe 3 must divide its 4 output "
                                         r"channels \(a conv stage writes whole pixels\)$"):
        make_plan(art, Folding((LayerFolding(3, 3), LayerFolding(1, 1))))
    runs = random_conv_artifact(3, in_shape=(1, 8, 8), layers=[
        ("conv", 2, 3, 1, 1), ("pool", 2), ("pool", 2), ("readout", 3)])
    with pytest.raises(ValueError, match=r"^layer 'pool2': the hardware fuses a pool layer "
                                         r"into the conv stage before it, but it follows a "
                                         r"pool layer$"):
        make_plan(runs)
    path = write_artifact(art, tmp_path / "conv")
    proc = subprocess.run([sys.executable, "-m", "bitspike", "verilog", str(path), "-o",
                           str(tmp_path / "hw"), "--folding", "4x2,1x1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "simd 4 must divide its 6 input channels" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "hw").exists() or not any((tmp_path / "hw").iterdir())


def test_verilog_table_shows_a_conv_layers_synapse_array(tmp_path, capsys):
    """`bitspike verilog` lists a conv layer's N and M as its synapse array's: the window's
    K·K·C_in bits and the C_out channels, not the input and output map sizes."""
    from bitspike.cli import main

    art = random_conv_artifact(3, in_shape=(6, 6, 6), layers=[
        ("conv", 4, 3, 1, 1), ("pool", 2), ("readout", 3)], input_kind="spike", time_steps=2)
    path = write_artifact(art, tmp_path / "conv")
    assert main(["verilog", str(path), "-o", str(tmp_path / "hw"), "--folding", "2x2,1x1"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] in (["conv0"], ["out2"])}
    assert rows["conv0"][2:4] == ["54", "4"], rows   # 3·3·6 window bits, 4 channels
    assert rows["out2"][2:4] == ["36", "3"], rows    # the pooled 3x3x4 map, 3 classes


def test_default_folding_of_a_conv_network_is_legal():
    rng = np.random.default_rng(4)
    for _ in range(20):
        art = random_conv_artifact(rng, max_channels=8, pool_runs=False)
        plan = make_plan(art)            # checks every stage's folding
        assert plan.ideal_cycles == max(plan.input_cycles, *plan.stage_cycles)


# -- cocotb ----------------------------------------------------------------------------------


def _run(request, seed, artifact, folding=None, *, samples=8, simulator="icarus",
         testcases=TESTCASES, memory_register=True, **kw):
    x = random_inputs(artifact, samples, np.random.default_rng(seed))
    build = build_dir_for(request)
    desc = generate(artifact, out_dir=build, folding=folding, trace=True,
                    memory_register=memory_register)
    return simulate(desc, build / "artifact", x, build_dir=build, simulator=simulator,
                    testcases=testcases, seed=seed, gaps=0.3, backpressure=0.4, trace=True,
                    **kw)


def _assert_exact(run):
    assert run.ok, run.first_mismatch
    for name, result in run.results.items():
        assert result["ok"], (name, result["report"])
        assert result["mismatched_outputs"] == 0 and result["mismatched_trace"] == 0
    regression = run.results["regression"]
    assert regression["compared"] == len(regression["outputs"])
    assert regression["trace_compared"] > 0
    if "back_to_back" in run.results:
        assert run.steady_cycles == run.ideal_cycles, (run.steady_cycles, run.ideal_cycles)


@pytest.mark.parametrize("input_kind", ["spike", "multibit"])
def test_small_conv_network_icarus(request, seed, input_kind):
    """A padded 3x3 conv with a fused 2x2 pool, then a stride-2 conv and the readout; the
    multi-bit-input one (its first conv replays its sums T times) without the memory-read
    registers (the iCE40 boards' build)."""
    require_simulator("icarus")
    art = random_conv_artifact(seed, in_shape=(2, 6, 6), layers=[
        ("conv", 4, 3, 1, 1), ("pool", 2), ("conv", 2, 3, 2, 0), ("readout", 3)],
        input_kind=input_kind, input_bits=3, time_steps=2)
    run = _run(request, seed, art, Folding((LayerFolding(2, 2), LayerFolding(4, 1),
                                            LayerFolding(1, 1))),
               memory_register=input_kind == "spike")
    _assert_exact(run)
    assert run.results["reset_mid_sample"]["dropped_samples"]


@pytest.mark.parametrize("corrupt", ["membrane", pytest.param("spike", marks=pytest.mark.slow)])
def test_corrupted_conv_expectation_is_caught(request, seed, corrupt):
    """A test of the test: one conv neuron's golden value changed by one fails the run."""
    require_simulator("icarus")
    art = random_conv_artifact(seed, in_shape=(1, 5, 5), layers=[
        ("conv", 2, 3, 1, 1), ("pool", 2), ("readout", 2)], input_kind="multibit",
        input_bits=2, time_steps=2)
    with pytest.raises(SimulationError) as info:
        _run(request, seed, art, samples=6, testcases=("regression",), corrupt=corrupt,
             corrupt_at=3)
    message = str(info.value)
    assert "1 of 1 accelerator test(s) failed" in message
    assert (f"first mismatch: trace_conv0: sample 3, time step 1, layer 'conv0', neuron 0, "
            f"field {'membrane' if corrupt == 'membrane' else 'spikes'}") in message


# -- slow: random conv networks, every folding of a small conv layer ---------------------------

CONV_NETWORKS = 24
#: The most cycles per sample a random case may take (the median draw takes ~750 and the
#: slowest ~100,000, which Icarus needs a quarter of an hour for): a folding over it is
#: drawn again, a network whose default folding is over it too is drawn again.
MAX_CYCLES = 4000


def _draw_conv_case(rng, default: bool):
    """A random conv network (at most 20 draws) and a random legal folding of it (at most 10
    draws; None: the default) whose ideal cycles per sample are at most MAX_CYCLES."""
    for _ in range(20):
        art = random_conv_artifact(
            rng, in_shape=(int(rng.integers(1, 4)), int(rng.integers(3, 9)),
                           int(rng.integers(3, 9))),
            time_steps=int(rng.integers(1, 5)), max_channels=6, max_kernel=5,
            pool_runs=False)
        foldings = [None] if default else [_legal_folding(art, rng) for _ in range(10)]
        for folding in foldings:
            if make_plan(art, folding).ideal_cycles <= MAX_CYCLES:
                return art, folding
    raise AssertionError("no conv network within MAX_CYCLES in 20 draws")


@pytest.mark.slow
@pytest.mark.parametrize("index", range(CONV_NETWORKS))
def test_random_conv_network(request, seed, index):
    """A random conv network (shapes, kernels, strides, paddings, pools, dense layers, input
    kind, T, reset, leak, gains) under a random legal folding, or the default one; every other
    one without the memory-read registers."""
    require_simulator("icarus")
    art, folding = _draw_conv_case(np.random.default_rng(seed), default=index % 4 == 0)
    _assert_exact(_run(request, seed, art, folding, memory_register=index % 2 == 0))


def test_random_conv_cases_stay_within_their_cycle_cap(seed):
    """The draws of the slow regression end within MAX_CYCLES, and still vary: several
    kernels, strides, pools and input kinds appear over 24 draws."""
    rng = np.random.default_rng(seed)
    kinds = set()
    for index in range(CONV_NETWORKS):
        art, folding = _draw_conv_case(rng, default=index % 4 == 0)
        assert make_plan(art, folding).ideal_cycles <= MAX_CYCLES
        kinds.add(art.input.kind)
        kinds.update(f"{la.kind}{getattr(la, 'kernel', '')}" for la in art.layers)
    assert {"spike", "multibit", "pool2", "readout"} <= kinds, kinds


def _small_conv():
    return dict(in_shape=(4, 4, 4), layers=[("conv", 4, 3, 1, 1), ("pool", 2),
                                           ("readout", 2)], input_kind="spike", time_steps=2)


@pytest.mark.slow
@pytest.mark.parametrize("simd", _divisors(4))
@pytest.mark.parametrize("pe", _divisors(4))
def test_every_folding_of_a_small_conv_layer(request, seed, simd, pe):
    require_simulator("icarus")
    art = random_conv_artifact(seed, **_small_conv())
    folding = Folding((LayerFolding(simd, pe), LayerFolding(2, 1)))
    _assert_exact(_run(request, seed, art, folding, testcases=("regression", "back_to_back")))


@pytest.mark.slow
def test_conv_network_verilator(request, seed):
    """A multi-bit-input conv network with a pool on Verilator."""
    require_simulator("verilator")
    art = random_conv_artifact(seed, in_shape=(1, 8, 8), layers=[
        ("conv", 4, 3, 1, 1), ("pool", 2), ("conv", 8, 3, 1, 1), ("lif", 6), ("readout", 4)],
        input_kind="multibit", input_bits=5, time_steps=3)
    _assert_exact(_run(request, seed, art, simulator="verilator", samples=12))


# -- the window walk on its own (Amaranth simulator) --------------------------------------------


@pytest.mark.parametrize("shape,conv,pool,fold", [
    ((2, 5, 4), (4, 3, 1, 1), None, (2, 2)),     # padding 1, raster order
    ((4, 7, 6), (2, 5, 2, 2), None, (2, 1)),     # stride 2, padding 2, two channel chunks
    ((3, 6, 7), (6, 3, 1, 0), 2, (1, 3)),        # no padding, a 2x2 pool (a column dropped)
    ((1, 9, 9), (2, 1, 1, 0), 3, (1, 1)),        # K = 1, a 3x3 pool
])
def test_window_walk_follows_the_geometry(shape, conv, pool, fold):
    """Every operation of one sample: the input chunk, padding flag, weight word and groups
    the walk gives equal a plain model of docs/hardware.md ("Conv stages") built from the
    geometry text: chunk sf = tap (ky, kx), channel chunk; pixel (y·S − P + ky, x·S − P + kx)."""
    from amaranth import Module
    from amaranth.sim import Simulator

    from hw.sequencer import Sequencer
    from hw.window import WindowWalk

    c_out, k, s, p = conv
    layers = [("conv", c_out, k, s, p)] + ([("pool", pool)] if pool else []) + [("readout", 2)]
    art = random_conv_artifact(0, in_shape=shape, layers=layers, input_kind="spike",
                               time_steps=2)
    layer = art.layers[0]
    pool_layer = art.layers[1] if pool else None
    f = LayerFolding(*fold)
    c_in, h, w = shape
    sub, sf = c_in // f.simd, k * k * c_in // f.simd
    groups = issue_groups(layer, f.pe, pool_layer)
    steps = 2

    m = Module()
    m.submodules.seq = seq = Sequencer(groups=len(groups), steps=steps, chunks=sf)
    m.submodules.walk = walk = WindowWalk(layer, f, pool_layer)
    m.d.comb += [walk.start.eq(seq.start), walk.issue.eq(seq.valid),
                 walk.group_end.eq(seq.group_end), walk.sf.eq(seq.chunk)]
    got = []

    async def bench(ctx):
        ctx.set(seq.can_start, 1)
        await ctx.tick()
        ctx.set(seq.can_start, 0)
        for _ in range(len(groups) * steps * sf):
            assert ctx.get(seq.valid)
            pad = ctx.get(walk.pad)
            got.append((ctx.get(walk.group), ctx.get(walk.channel_group),
                        ctx.get(walk.out_group), ctx.get(walk.window_first),
                        ctx.get(walk.window_last), ctx.get(walk.last_group),
                        None if pad else ctx.get(walk.chunk), ctx.get(walk.weight_addr)))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    _, h_out, w_out = layer.out_shape
    ncg = c_out // f.pe
    pk = pool or 1
    expected = []
    for n, g in enumerate(groups):
        (y, x), cg = divmod(g // ncg, w_out), g % ncg
        dy, dx = y % pk, x % pk
        pooled = (y // pk) * (w_out // pk) + x // pk
        for _ in range(steps):
            for chunk in range(sf):
                (ky, kx), cs = divmod(chunk // sub, k), chunk % sub
                iy, ix = y * s - p + ky, x * s - p + kx
                inside = 0 <= iy < h and 0 <= ix < w
                expected.append((g, cg, pooled * ncg + cg, int(dy == 0 and dx == 0),
                                 int(dy == pk - 1 and dx == pk - 1), int(n == len(groups) - 1),
                                 (iy * w + ix) * sub + cs if inside else None,
                                 cg * sf + chunk))
    assert got == expected
