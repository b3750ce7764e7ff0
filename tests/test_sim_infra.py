"""The verification machinery on its own: payload layouts, scoreboard, parameters, runner, and
the stream drivers/monitors on a small FIFO design (sim/demo.py) whose behaviour is known."""

from __future__ import annotations

import json
import os
import random

import pytest

from sim.cycles import steady_state
from sim.layout import Field, LayoutError, PayloadLayout, to_signed
from sim.params import ENV_VAR, TBParams
from sim.runner import SimulationError, build, run, simulator_problem
from sim.runner import test as run_tests
from sim.scoreboard import Expected, Scoreboard
from sim.testing import SIM_PARAMS, build_dir_for, require_simulator

# -- payload layouts -----------------------------------------------------------------------------


def _layout():
    return PayloadLayout([Field("prediction", 0, 4), Field("flag", 4, 1),
                          Field("scores", 5, 30, True, count=3, element_width=10)], 40)


def test_layout_round_trip(seed):
    rng = random.Random(seed)
    layout = _layout()
    for _ in range(200):
        values = {"prediction": rng.randint(0, 15), "flag": rng.randint(0, 1),
                  "scores": [rng.randint(-512, 511) for _ in range(3)]}
        word = layout.pack(values)
        assert 0 <= word < 1 << 40
        assert layout.unpack(word) == values


def test_layout_bit_positions():
    layout = _layout()
    word = layout.pack({"prediction": 9, "flag": 1, "scores": [-1, 0, 5]})
    assert word & 0xF == 9
    assert (word >> 4) & 1 == 1
    assert (word >> 5) & 0x3FF == 0x3FF  # -1 in 10 bits
    assert (word >> 15) & 0x3FF == 0
    assert (word >> 25) & 0x3FF == 5
    assert to_signed(0x3FF, 10) == -1 and to_signed(0x1FF, 10) == 511


def test_layout_json_round_trip():
    layout = _layout()
    again = PayloadLayout.from_json(json.loads(json.dumps(layout.to_json())))
    assert again.to_json() == layout.to_json()


def test_layout_errors():
    layout = _layout()
    with pytest.raises(LayoutError, match=r"field 'scores'\[1\]: 512 does not fit 10 bits "
                                          r"\(signed, -512\.\.511\)"):
        layout.pack({"prediction": 0, "flag": 0, "scores": [0, 512, 0]})
    with pytest.raises(LayoutError, match=r"field 'prediction': 16 does not fit 4 bits"):
        layout.pack({"prediction": 16, "flag": 0, "scores": [0, 0, 0]})
    with pytest.raises(LayoutError, match=r"missing \['flag'\], unknown \['x'\]"):
        layout.pack({"prediction": 0, "scores": [0, 0, 0], "x": 1})
    with pytest.raises(LayoutError, match=r"field 'b' at bit 3 overlaps"):
        PayloadLayout([Field("a", 0, 4), Field("b", 3, 2)], 8)
    with pytest.raises(LayoutError, match=r"fields end at bit 9, beyond the payload width 8"):
        PayloadLayout([Field("a", 0, 9)], 8)
    with pytest.raises(LayoutError, match=r"payload\.fields\[0\]: expected name, offset"):
        PayloadLayout.from_json({"width": 4, "fields": [{"name": "a"}]})


# -- scoreboard ----------------------------------------------------------------------------------


def test_scoreboard_exact_and_first_mismatch():
    sb = Scoreboard("o", seed=1234, replay="BITSPIKE_SEED=99")
    sb.expect_all([Expected({"prediction": 3, "scores": [1, 2, 3]}, sample=0),
                   Expected({"membrane": [5, -6], "spikes": [0, 1]}, sample=1, layer="fc0",
                            time_step=2)])
    assert sb.compare({"prediction": 3, "scores": [1, 2, 3]}) == []
    found = sb.compare({"membrane": [5, -7], "spikes": [0, 1]}, cycle=77)
    assert len(found) == 1
    assert not sb.ok and sb.compared == 2 and sb.mismatched_items == 1
    report = sb.report()
    assert ("o: sample 1, time step 2, layer 'fc0', neuron 1, field membrane[1]: expected -6, "
            "got -7 at cycle 77") in report
    assert "seed 1234; replay with BITSPIKE_SEED=99" in report


def test_scoreboard_unexpected_and_dropped_items():
    sb = Scoreboard("o")
    sb.expect(Expected({"prediction": 1}, sample=0))
    sb.expect(Expected({"prediction": 2}, sample=1))
    assert sb.drop_pending()[1].sample == 1 and sb.pending == 0
    assert sb.compare({"prediction": 1})  # nothing expected any more
    assert "unexpected item" in sb.report()


def test_scoreboard_length_mismatch():
    sb = Scoreboard("o")
    sb.expect(Expected({"scores": [1, 2]}, sample=4))
    assert sb.compare({"scores": [1, 2, 3]})[0].expected == "2 values"


# -- parameters and runner ------------------------------------------------------------------------


def test_params_round_trip_and_validation():
    p = TBParams(description="d.json", seed=7, gaps=0.25, backpressure=0.5, corrupt="score")
    assert TBParams.from_env(p.to_env()) == p
    with pytest.raises(ValueError, match=r"gaps must be a probability in \[0, 1\), not 1\.0"):
        TBParams(gaps=1.0)
    with pytest.raises(ValueError, match=r"corrupt must be one of none, score, .* not 'x'"):
        TBParams(corrupt="x")
    with pytest.raises(TypeError, match=r"seed must be an int, not '3'"):
        TBParams(seed="3")
    with pytest.raises(RuntimeError, match=f"{ENV_VAR} is not set"):
        TBParams.from_env({})
    with pytest.raises(ValueError, match=r"unknown parameters \['bogus'\]"):
        TBParams.from_env({ENV_VAR: json.dumps({"bogus": 1})})


def test_steady_state():
    # Pipeline fill (first output at 100), then one output every 7 cycles.
    assert steady_state([100, 107, 114, 121, 128, 135]) == 7.0
    assert steady_state([5, 9, 20, 30, 40, 50, 60, 70]) == 10.0  # the fill is left out
    assert steady_state([1, 2, 3]) is None
    with pytest.raises(ValueError, match="increasing order"):
        steady_state([3, 2, 5, 9])


def test_runner_rejects_unknown_simulator():
    with pytest.raises(ValueError, match=r"simulator must be one of icarus, verilator, "
                                         r"not 'modelsim'"):
        simulator_problem("modelsim")


# -- the stream machinery on a FIFO ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fifo(tmp_path_factory):
    from sim.demo import generate

    out = tmp_path_factory.mktemp("fifo")
    desc = generate(out, width=12, depth=4, elements=3)
    return out, desc


_FIFO_BUILDS = {}


def _run_fifo(fifo, request, simulator, params, testcases, check=True):
    """One build of the FIFO per simulator (a Verilator build takes ~10 s), one test
    directory per case."""
    out, desc = fifo
    case_dir = build_dir_for(request)
    if simulator not in _FIFO_BUILDS:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # one build per xdist worker
        shared = case_dir.parent / f"fifo_{simulator}{worker}"
        build(sources=[out / desc["verilog"]], toplevel=desc["top"], build_dir=shared,
              simulator=simulator)
        _FIFO_BUILDS[simulator] = shared
    params = TBParams(description=str(out / f"{desc['top']}.json"),
                      results=str(case_dir / "results.json"), **params)
    return run_tests(toplevel=desc["top"], test_module="sim.tb_demo", testcases=testcases,
                     build_dir=_FIFO_BUILDS[simulator], test_dir=case_dir,
                     simulator=simulator, env=params.to_env(), log_file=case_dir / "sim.log",
                     check=check), case_dir


@pytest.mark.parametrize("simulator", SIM_PARAMS)
@pytest.mark.parametrize("gaps,backpressure", [(0.0, 0.0), (0.3, 0.5)], ids=["flat", "gaps-bp"])
def test_fifo_stream(fifo, request, seed, simulator, gaps, backpressure):
    require_simulator(simulator)
    result, build = _run_fifo(fifo, request, simulator,
                              dict(seed=seed, samples=300, gaps=gaps, backpressure=backpressure),
                              ["fifo_stream", "fifo_reset_mid_stream"])
    assert [t.name for t in result.tests] == ["fifo_stream", "fifo_reset_mid_stream"]
    assert result.ok
    measured = json.loads((build / "results.json").read_text())
    assert measured["ok"] and measured["compared"] >= 8  # the last test's own count


@pytest.mark.parametrize("simulator", SIM_PARAMS)
def test_fifo_corrupted_expectation_is_caught(fifo, request, seed, simulator):
    """A test of the test: one flipped bit in one expected item must fail the run."""
    require_simulator(simulator)
    with pytest.raises(SimulationError) as info:
        _run_fifo(fifo, request, simulator,
                  dict(seed=seed, samples=50, gaps=0.2, backpressure=0.3, corrupt="item",
                       corrupt_at=17), ["fifo_stream"])
    message = str(info.value)
    assert "1 of 1 cocotb test(s) failed" in message
    assert "first mismatch: o: sample 17, field value" in message
    assert f"seed {seed}" in message
    assert info.value.result is not None and not info.value.result.ok


@pytest.mark.parametrize("simulator", SIM_PARAMS)
def test_fifo_waves(fifo, request, seed, simulator):
    """A waveform on request: FST from Icarus, VCD from Verilator, next to the build."""
    require_simulator(simulator)
    out, desc = fifo
    build = build_dir_for(request)
    params = TBParams(description=str(out / f"{desc['top']}.json"), seed=seed, samples=20)
    result = run(sources=[out / desc["verilog"]], toplevel=desc["top"], test_module="sim.tb_demo",
                 testcases=["fifo_stream"], build_dir=build, simulator=simulator,
                 env=params.to_env(), log_file=build / "sim.log", waves=True)
    assert result.ok and result.waves is not None
    assert result.waves.suffix == (".fst" if simulator == "icarus" else ".vcd")
    assert result.waves.is_file() and result.waves.stat().st_size > 100


# -- the accelerator's description ----------------------------------------------------------------


def test_description_of_a_generated_accelerator(tmp_path, seed):
    """The testbench's reading of hw.generate's description: ports, input packing, checks."""
    import numpy as np

    from sim.accelerator import generate
    from sim.description import Description, DescriptionError
    from sw.artifact import manifest_digest, write_artifact
    from sw.randnet import random_artifact, random_inputs

    rng = np.random.default_rng(seed)
    art = random_artifact(rng, sizes=[11, 4, 3], time_steps=2, input_kind="spike")
    desc = generate(art, out_dir=tmp_path / "gen", lanes=4, trace=True)
    assert desc.verilog.is_file() and desc.top in desc.verilog.read_text()
    assert (desc.lanes, desc.rows, desc.inputs) == (4, 2, 11)
    assert desc.beats_per_sample == 2 * 3  # T rows of ceil(11 / 4) beats
    assert set(desc.trace_streams) == {layer.name for layer in art.layers}
    assert desc.input_stream.ready is not None and desc.trace_streams["fc0"].ready is None
    x = random_inputs(art, 1, rng)[0]
    beats = desc.pack_input(x)
    layout = desc.input_stream.layout
    got = np.array([layout.unpack(b)[desc.input_field] for b in beats]).reshape(2, 12)
    assert np.array_equal(got[:, :11], x) and not got[:, 11:].any()  # zero padding
    desc.check_artifact(art, tmp_path / "gen" / "artifact")
    other = random_artifact(rng, sizes=[11, 4, 3], time_steps=2, input_kind="spike")
    write_artifact(other, tmp_path / "other")
    with pytest.raises(DescriptionError, match="generated from another artifact"):
        desc.check_artifact(other, tmp_path / "other")
    with pytest.raises(DescriptionError, match="no such description file"):
        Description.load(tmp_path / "missing.json")
    # The manifest hash is a value, written one way: "sha256:<hex>".
    assert desc.manifest_sha256 == manifest_digest(art)
    raw = json.loads(desc.path.read_text())
    for bad in (manifest_digest(art).hex, "sha256:" + "0" * 63, 17):
        with pytest.raises(DescriptionError, match=r"accelerator\.json: manifest_sha256: a "
                                                   r"digest must be"):
            Description.from_json({**raw, "manifest_sha256": bad}, desc.path)
    unhashed = Description.from_json({**raw, "manifest_sha256": None}, desc.path)
    unhashed.check_artifact(other)  # nothing recorded, nothing to compare


def test_generated_ports_are_checked_against_the_signature(tmp_path, seed):
    """The converter infers a port's direction from what drives it; the generator refuses a
    Verilog whose directions are not the signature's."""
    import numpy as np

    from hw.generate import _check_port_directions
    from sim.accelerator import generate
    from sw.randnet import random_artifact

    art = random_artifact(np.random.default_rng(seed), sizes=[5, 3, 2], time_steps=2)
    desc = generate(art, out_dir=tmp_path / "gen")
    text, ports = desc.verilog.read_text(), desc.raw["ports"]
    _check_port_directions(text, desc.top, ports)
    assert {p["name"] for p in ports} >= {"clk", "rst", "i__valid", "i__ready", "o__payload"}
    flipped = text.replace("  output i__ready;", "  input i__ready;", 1)
    assert flipped != text
    with pytest.raises(ValueError, match=r"the Verilog of bitspike_accel does not declare the "
                                         r"signature's ports \(differing: \[\('i__ready', "
                                         r"'in'\), \('i__ready', 'out'\)\]\)"):
        _check_port_directions(flipped, desc.top, ports)
    with pytest.raises(ValueError, match=r"differing: \[\('o__valid', 'out'\)\]"):
        _check_port_directions(text, desc.top, [p for p in ports if p["name"] != "o__valid"])
