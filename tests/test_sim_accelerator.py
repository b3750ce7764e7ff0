"""cocotb regressions of the generated accelerator against the golden model, exactly.

Random networks drawn from the test's fresh seed (printed on failure; replay with
``BITSPIKE_SEED=<run seed>``) cover the random generator's corner cases (odd sizes, T = 1 and
16, spike and 1..8-bit inputs, hard/soft reset, leak/no leak, step gains, zero-scale neurons,
one to three layers) and every legal folding of a small network; each runs with random idle
gaps on the input and random backpressure on the output, with the debug trace (every layer's
x, h, v and spikes) compared too, plus reset in the middle of a sample and back-to-back samples.

The default suite runs one small network on Icarus and one corrupted expectation (the test of
the test); everything else is ``slow`` (``nox -s slow``). Builds go to ``sim_build/<test id>``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.accelerator import TESTCASES, generate, simulate
from sim.runner import SimulationError
from sim.testing import SIM_PARAMS, build_dir_for, require_simulator
from sw.folding import Folding, LayerFolding
from sw.randnet import random_artifact, random_inputs

# name -> (random_artifact options, folding kind); together they reach every corner the
# generator draws, under every kind of folding.
NETWORKS = {
    "odd-multibit5": (dict(sizes=[13, 7, 3], time_steps=4, input_kind="multibit",
                           input_bits=5), "random"),
    "spike-T1": (dict(sizes=[9, 5, 4], time_steps=1, input_kind="spike"), "serial"),
    "spike-T16": (dict(sizes=[6, 5, 3], time_steps=16, input_kind="spike"), "full"),
    "multibit-T16": (dict(sizes=[5, 4, 2], time_steps=16, input_kind="multibit",
                          input_bits=3), "random"),
    "readout-only": (dict(sizes=[11, 5], time_steps=3, input_kind="multibit", input_bits=4),
                     "random"),
    "readout-only-spike": (dict(sizes=[7, 3], time_steps=2, input_kind="spike"), "serial"),
    "three-layers": (dict(sizes=[10, 9, 6, 4], time_steps=3, input_kind="multibit",
                          input_bits=2), "random"),
    "bits1": (dict(sizes=[12, 6, 3], time_steps=2, input_kind="multibit", input_bits=1),
              "full"),
    "bits8": (dict(sizes=[8, 6, 3], time_steps=2, input_kind="multibit", input_bits=8),
              "serial"),
    "soft-noleak": (dict(sizes=[9, 8, 3], time_steps=5, reset="soft", leak_shift=None),
                    "random"),
    "hard-leak1": (dict(sizes=[9, 8, 3], time_steps=5, reset="hard", leak_shift=1),
                   "default"),
    "soft-leak4": (dict(sizes=[7, 7, 2], time_steps=8, reset="soft", leak_shift=4),
                   "random"),
    "gains": (dict(sizes=[8, 6, 3], time_steps=4, step_gain=True), "random"),
    "gains-spike": (dict(sizes=[8, 6, 3], time_steps=3, step_gain=True, input_kind="spike"),
                    "full"),
    "zero-scale": (dict(sizes=[10, 8, 4], time_steps=3, zero_scale=0.5), "random"),
    "frac0": (dict(sizes=[9, 5, 3], time_steps=4, frac_bits=0), "default"),
    "frac6": (dict(sizes=[9, 5, 3], time_steps=4, frac_bits=6), "random"),
    "one-input": (dict(sizes=[1, 3, 2], time_steps=3), "full"),
    "one-neuron": (dict(sizes=[5, 1, 2], time_steps=3), "serial"),
    "one-class": (dict(sizes=[6, 4, 1], time_steps=2), "random"),
    "wide-slack": (dict(sizes=[9, 6, 3], time_steps=4, width_slack=3), "random"),
    "drawn": (dict(), "default"),
}


def _folding(artifact, kind: str, rng) -> Folding | None:
    """``default`` (the generator's), ``full`` (N x M), ``serial`` (1 x 1), ``random``."""
    if kind == "default":
        return None
    layers = []
    for layer in artifact.layers:
        if kind == "full":
            layers.append(LayerFolding(layer.inputs, layer.neurons))
        elif kind == "serial":
            layers.append(LayerFolding(1, 1))
        else:
            layers.append(LayerFolding(int(rng.integers(1, layer.inputs + 1)),
                                       int(rng.integers(1, layer.neurons + 1))))
    return Folding(tuple(layers))


def _run(request, seed, spec: dict, *, folding_kind="random", samples=24, simulator="icarus",
         testcases=TESTCASES, gaps=0.3, backpressure=0.4, trace=True, **kw):
    rng = np.random.default_rng(seed)
    artifact = random_artifact(rng, **spec)
    folding = _folding(artifact, folding_kind, rng)
    x = random_inputs(artifact, samples, rng)
    build = build_dir_for(request)
    desc = generate(artifact, out_dir=build, folding=folding, trace=trace)
    return simulate(desc, build / "artifact", x, build_dir=build, simulator=simulator,
                    testcases=testcases, seed=seed, gaps=gaps, backpressure=backpressure,
                    trace=trace, **kw)


def _assert_exact(run):
    assert run.ok, run.first_mismatch
    for name, result in run.results.items():
        assert result["ok"], (name, result["report"])
        assert result["mismatched_outputs"] == 0 and result["mismatched_trace"] == 0
    assert run.results["regression"]["compared"] == len(run.results["regression"]["outputs"])
    if "back_to_back" in run.results:
        # Back to back, every stage issues without a bubble: the steady state is the ideal
        # bound of the description exactly (docs/verification.md, "Cycle accounting").
        assert run.steady_cycles == run.ideal_cycles, (run.steady_cycles, run.ideal_cycles)


# -- default suite: one small network, and the test of the test --------------------------------


def test_small_network_icarus(request, seed):
    """Gaps, backpressure and the trace on; reset mid-sample; back to back."""
    require_simulator("icarus")
    run = _run(request, seed, dict(sizes=[7, 5, 3], time_steps=3, input_kind="multibit",
                                   input_bits=3), samples=16)
    _assert_exact(run)
    assert run.results["regression"]["trace_compared"] > 0
    assert run.results["reset_mid_sample"]["dropped_samples"]
    assert run.steady_cycles == run.ideal_cycles


@pytest.mark.parametrize("corrupt", ["score", pytest.param("membrane", marks=pytest.mark.slow),
                                     pytest.param("spike", marks=pytest.mark.slow),
                                     pytest.param("prediction", marks=pytest.mark.slow)])
def test_corrupted_expectation_is_caught(request, seed, corrupt):
    """A test of the test: one golden value changed by one must fail the run and say where."""
    require_simulator("icarus")
    with pytest.raises(SimulationError) as info:
        _run(request, seed, dict(sizes=[6, 4, 3], time_steps=2, input_kind="multibit",
                                 input_bits=2), samples=8, testcases=("regression",),
             corrupt=corrupt, corrupt_at=5)
    message = str(info.value)
    assert "1 of 1 accelerator test(s) failed" in message
    where = {"score": "o: sample 5, neuron",
             "prediction": "o: sample 5, field prediction",
             "membrane": "trace_fc0: sample 5, time step 1, layer 'fc0', neuron 0, field membrane",
             "spike": "trace_fc0: sample 5, time step 1, layer 'fc0', neuron 0, field spikes"}
    assert f"first mismatch: {where[corrupt]}" in message
    assert f"seed {seed}" in message


# -- slow: the random-network regression -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETWORKS))
def test_random_network(request, seed, name):
    require_simulator("icarus")
    spec, folding = NETWORKS[name]
    _assert_exact(_run(request, seed, spec, folding_kind=folding))


def _all_foldings(sizes):
    """Enough foldings of a small network that every layer meets every (SIMD, PE) it allows."""
    pairs = [[(s, p) for s in range(1, n + 1) for p in range(1, m + 1)]
             for n, m in zip(sizes[:-1], sizes[1:], strict=True)]
    count = max(len(p) for p in pairs)
    return [Folding(tuple(LayerFolding(*pl[k % len(pl)]) for pl in pairs)) for k in range(count)]


SMALL = [3, 4, 3]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_all_foldings(SMALL))))
def test_every_folding_of_a_small_network(request, seed, index):
    require_simulator("icarus")
    folding = _all_foldings(SMALL)[index]
    rng = np.random.default_rng(seed)
    artifact = random_artifact(rng, sizes=SMALL, time_steps=3)
    x = random_inputs(artifact, 12, rng)
    build = build_dir_for(request)
    desc = generate(artifact, out_dir=build, folding=folding, trace=True)
    assert [tuple(f) for f in desc.folding] == [(f.simd, f.pe) for f in folding.layers]
    run = simulate(desc, build / "artifact", x, build_dir=build,
                   testcases=("regression", "back_to_back"), seed=seed, gaps=0.3,
                   backpressure=0.4, trace=True)
    _assert_exact(run)  # back to back at the bound under every folding, too
    assert run.results["regression"]["trace_compared"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("simulator", [p for p in SIM_PARAMS if p.id == "verilator"])
@pytest.mark.parametrize("name", ["odd-multibit5", "gains-spike"])
def test_random_network_verilator(request, seed, simulator, name):
    """Representative cases on Verilator (a build takes up to a minute): multi-bit and spike
    input, step gains; trace, gaps, backpressure, reset mid-sample, back to back."""
    require_simulator(simulator)
    spec, folding = NETWORKS[name]
    _assert_exact(_run(request, seed, spec, folding_kind=folding, simulator=simulator,
                       samples=24))
