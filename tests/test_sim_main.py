"""The main job (``python -m sim.main``, ``nox -s simulate``): options, and end to end."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from sim.main import main
from sim.testing import build_dir_for, require_simulator


@pytest.mark.parametrize("argv,message", [
    (["--samples", "0"], "--samples must be >= 1, not 0"),
    (["--gaps", "1.5"], "--gaps must be in [0, 1), not 1.5"),
    (["--backpressure", "-0.1"], "--backpressure must be in [0, 1), not -0.1"),
    (["--jobs", "0"], "--jobs must be >= 1, not 0"),
    (["--model", "conv", "--artifact", "artifacts/digits"],
     "error: --model and --artifact exclude each other"),
])
def test_bad_options(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_model_option_through_bitspike_simulate(capsys):
    """``bitspike simulate`` is the same job: the same --model, the same one-line errors."""
    from bitspike.cli import main as bitspike

    assert bitspike(["simulate", "--model", "mlp", "--artifact", "artifacts/digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model and --artifact exclude each other") and \
        err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exit_:
        bitspike(["simulate", "--model", "vgg"])
    assert exit_.value.code == 2
    assert "argument --model: invalid choice: 'vgg' (choose from 'mlp', 'conv')" in \
        capsys.readouterr().err


def test_bad_artifact(capsys, tmp_path):
    assert main(["--artifact", str(tmp_path / "missing")]) == 2
    assert "no artifact directory" in capsys.readouterr().err


def test_bad_simulator(capsys, monkeypatch):
    monkeypatch.setenv("SIM", "modelsim")
    assert main([]) == 2
    assert "SIM='modelsim' is not one of icarus, verilator" in capsys.readouterr().err


@pytest.mark.slow
def test_random_artifact_on_digits(request, tmp_path, seed, capsys):
    """--artifact: any artifact taking 64 5-bit inputs runs on the digits test split."""
    require_simulator("icarus")
    from sw.artifact import write_artifact
    from sw.randnet import random_artifact

    art = random_artifact(seed, sizes=[64, 12, 10], time_steps=2, input_kind="multibit",
                          input_bits=5)
    write_artifact(art, tmp_path / "net")
    build = build_dir_for(request)
    rc = main(["--artifact", str(tmp_path / "net"), "--dataset", "digits", "--samples", "24",
               "--build-dir", str(build), "--gaps", "0.2", "--backpressure", "0.3",
               "--seed", str(seed), "--trace"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "RTL/golden mismatches  0" in out
    assert "RTL == golden model on every output" in out


@pytest.mark.slow
def test_trained_digits_main_job(request, tmp_path, capsys):
    """The main job on a freshly trained default model: 200 test samples, RTL == golden,
    RTL accuracy equal to golden accuracy, cycles per inference at the ideal bound."""
    require_simulator("icarus")
    build = build_dir_for(request)
    argv = ["--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "digits"),
            "--build-dir", str(build), "--samples", "200"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = dict(line.split("  ", 1) for line in out.splitlines() if "  " in line
                and not line.startswith(" "))
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["RTL/golden mismatches"] == "0"
    assert rows["RTL accuracy"] == rows["golden accuracy"]
    # At the bound exactly, as docs/verification.md says.
    cycles = re.fullmatch(r"(\d+\.\d\d) measured, (\d+) ideal, ratio 1\.000",
                          rows["cycles/inference"])
    assert cycles and float(cycles[1]) == int(cycles[2]), rows["cycles/inference"]
    # A second run reuses the trained model and the artifact.
    assert main(argv + ["--samples", "16"]) == 0
    again = capsys.readouterr().out
    assert "reusing the trained default model" in again
    assert "reusing the artifact" in again


@pytest.mark.slow
def test_trained_conv_main_job(request, monkeypatch, tmp_path, capsys):
    """``--model conv`` end to end on the table's conv model made tiny (:func:`_tiny_conv`):
    trained, exported, generated and simulated on 12 test samples with Icarus (a few thousand
    cycles each): RTL == golden, RTL accuracy equal to golden accuracy, cycles per inference at
    the ideal bound."""
    require_simulator("icarus")
    entry = _tiny_conv(monkeypatch, tmp_path)
    build = build_dir_for(request)
    assert main(["--model", "conv", "--build-dir", str(build), "--samples", "12"]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert rows["artifact"].startswith(f"{entry.artifact_dir} (")
    assert rows["RTL/golden mismatches"] == "0"
    assert rows["RTL accuracy"] == rows["golden accuracy"]
    cycles = re.fullmatch(r"(\d+\.\d\d) measured, (\d+) ideal, ratio 1\.000",
                          rows["cycles/inference"])
    assert cycles and float(cycles[1]) == int(cycles[2]), rows["cycles/inference"]
    assert (build / "conv" / "default" / "hw").is_dir()


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_default_model_trains_on_the_threads_bitspike_train_uses(tmp_path, monkeypatch, model):
    """The main job's model must be the one `bitspike train` makes: same config, same torch
    thread count (the float reductions, hence the weights, depend on it); the caller's thread
    count comes back afterwards."""
    import torch

    import sim.main
    import sw.train
    from sw.train import DEFAULT_THREADS, TrainConfig

    seen = []

    def fake_train(config, out_dir, **kwargs):
        seen.append((config, torch.get_num_threads()))
        return out_dir

    monkeypatch.setattr(sw.train, "train", fake_train)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sim.main.ensure_trained(tmp_path / "run", model)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    config = TrainConfig() if model == "mlp" else TrainConfig(model="conv")
    assert seen == [(config, DEFAULT_THREADS)]
    assert after == 2


def test_default_model_table():
    """One table names the default models, their configs and their paths."""
    from sw import default_model
    from sw.train import TrainConfig

    paths = {name: (m.run_dir, m.artifact_dir) for name, m in default_model.MODELS.items()}
    assert paths == {"mlp": (Path("runs/default"), Path("artifacts/digits")),
                     "conv": (Path("runs/conv"), Path("artifacts/digits-conv"))}
    assert default_model.DEFAULT == "mlp"
    assert paths["mlp"] == (default_model.RUN_DIR, default_model.ARTIFACT_DIR)
    assert default_model.config() == default_model.config("mlp") == TrainConfig()
    conv = default_model.config("conv")
    assert conv == TrainConfig(model="conv")
    assert (conv.dataset, conv.model, conv.channels, conv.epochs) == \
        ("digits", "conv", (32, 64, "M"), 80)
    with pytest.raises(ValueError, match="model must be one of mlp, conv, not 'vgg'"):
        default_model.get("vgg")


def _tiny_conv(monkeypatch, tmp_path):
    """The table's conv model made tiny (8,16,M, 256 samples a split, one epoch and one
    fine-tune epoch) and moved under ``tmp_path``, so a test can run the job on it in seconds;
    returns the entry."""
    from sw import default_model

    entry = dataclasses.replace(
        default_model.MODELS["conv"],
        options={"model": "conv", "channels": (8, 16, "M"), "epochs": 1,
                 "finetune_epochs": 1, "batch_size": 128, "limit": 256},
        run_dir=tmp_path / "runs" / "conv", artifact_dir=tmp_path / "artifacts" / "digits-conv")
    monkeypatch.setitem(default_model.MODELS, "conv", entry)
    return entry


def test_conv_model_main_job_on_a_fake_simulation(monkeypatch, tmp_path, capsys):
    """``--model conv`` trains the conv model into its run directory, exports it to its
    artifact directory and builds under <build-dir>/conv/<folding> (the defaults follow the
    table); a second run reuses both. The simulator is replaced (the real one: the slow
    test below)."""
    entry = _tiny_conv(monkeypatch, tmp_path)
    builds = []
    _fake_hardware(monkeypatch, SimpleNamespace(folding=[(8, 1), (16, 1), (256, 1)],
                                                ideal_cycles=15), builds)
    argv = ["--model", "conv", "--samples", "8", "--simulator", "icarus", "--jobs", "1",
            "--build-dir", str(tmp_path / "build")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"[1/4] training the default conv model (digits VGG 32,64,M on 8x8 input, T=4) " \
           f"into {entry.run_dir}" in out
    assert f"[2/4] exporting {entry.run_dir / 'checkpoint.pt'} to {entry.artifact_dir}" in out
    rows = _table(out)
    assert rows["artifact"].startswith(f"{entry.artifact_dir} (")
    assert re.fullmatch(r"\d+\.\d\d %", rows["float accuracy"]), rows["float accuracy"]
    assert rows["RTL accuracy"] == rows["golden accuracy"]
    assert builds == [tmp_path / "build" / "conv" / "default"]
    from sw.artifact import load_artifact

    assert load_artifact(entry.artifact_dir).layers[0].kind == "conv"
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert f"[1/4] reusing the trained default conv model in {entry.run_dir} (2 epochs)" in again
    assert f"[2/4] reusing the artifact {entry.artifact_dir}" in again


# -- the verdict: the scoreboard's comparison is the one comparison -----------------------------


def _main_on_a_fake_simulation(monkeypatch, tmp_path, seed, tamper):
    """The main job on a random 64-12-10 artifact, with generate/simulate replaced: the fake
    simulation answers the golden model's outputs, changed by ``tamper(outputs, results,
    tests)``; returns main's exit status."""
    import sim.main
    from sw.artifact import write_artifact
    from sw.randnet import random_artifact

    art = random_artifact(seed, sizes=[64, 12, 10], time_steps=2, input_kind="multibit",
                          input_bits=5)
    write_artifact(art, tmp_path / "net")
    _fake_hardware(monkeypatch, SimpleNamespace(folding=[(64, 4), (12, 2)], ideal_cycles=15),
                   tamper=tamper)
    return sim.main.main(["--artifact", str(tmp_path / "net"), "--dataset", "digits",
                          "--samples", "8", "--simulator", "icarus", "--jobs", "1",
                          "--build-dir", str(tmp_path / "build")])


def _fake_hardware(monkeypatch, desc, builds=None, tamper=lambda *a: None):
    """Replace generate/simulate: ``generate`` answers ``desc`` (and appends its build folder
    to ``builds``), the fake simulation answers the golden model's outputs of the artifact,
    changed by ``tamper(outputs, results, tests)``."""
    import sim.accelerator
    import sim.main
    from sim.accelerator import RegressionRun
    from sim.runner import SimResult, TestOutcome
    from sw.artifact import load_artifact
    from sw.golden import GoldenModel

    def fake_generate(artifact_dir, out_dir, **kwargs):
        if builds is not None:
            builds.append(out_dir)
        return desc

    def fake_simulate(description, artifact_dir, x, **kwargs):
        golden = GoldenModel(load_artifact(artifact_dir)).run(x)
        outputs = [{"sample": k, "cycle": 100 + 15 * k, "prediction": int(p),
                    "scores": [int(v) for v in s]}
                   for k, (p, s) in enumerate(zip(golden.predictions, golden.scores,
                                                  strict=True))]
        results = {"ok": True, "outputs": outputs, "compared": len(outputs),
                   "mismatched_outputs": 0, "mismatched_trace": 0, "mismatches": [],
                   "steady_cycles": 15.0}
        tests = [TestOutcome("back_to_back", passed=True)]
        tamper(outputs, results, tests)
        run = RegressionRun(sim=SimResult(simulator="icarus", tests=tests),
                            results={"back_to_back": results}, description=description)
        run.extra.update(jobs=1, logs=["icarus.log"])
        return run

    monkeypatch.setattr(sim.main, "simulator_problem", lambda simulator: None)
    monkeypatch.setattr(sim.accelerator, "generate", fake_generate)
    monkeypatch.setattr(sim.accelerator, "simulate", fake_simulate)


def _table(out: str) -> dict:
    return {k.strip(): v.strip() for k, v in (line.split("  ", 1) for line in out.splitlines()
                                              if "  " in line and not line.startswith(" "))}


def test_main_passes_when_the_scoreboard_found_every_output_exact(monkeypatch, tmp_path, seed,
                                                                  capsys):
    assert _main_on_a_fake_simulation(monkeypatch, tmp_path, seed, lambda *a: None) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert rows["RTL/golden mismatches"] == "0"
    assert rows["RTL accuracy"] == rows["golden accuracy"]
    assert rows["cycles/inference"] == "15.00 measured, 15 ideal, ratio 1.000"
    assert out.rstrip().endswith("RTL == golden model on every output")


def test_main_fails_on_the_scoreboards_mismatches(monkeypatch, tmp_path, seed, capsys):
    first = "o: sample 3, neuron 1, field scores[1]: expected 5, got 6 at cycle 145"

    def differ(outputs, results, tests):
        outputs[3]["scores"][1] += 1
        results.update(ok=False, mismatched_outputs=1, mismatches=[first])
        tests[0] = TestOutcome("back_to_back", passed=False, message="o: 1 of 8 items differ")

    from sim.runner import TestOutcome

    assert _main_on_a_fake_simulation(monkeypatch, tmp_path, seed, differ) == 1
    captured = capsys.readouterr()
    assert _table(captured.out)["RTL/golden mismatches"] == f"1 (first: {first})"
    assert "FAILED back_to_back: o: 1 of 8 items differ" in captured.err
    assert "RTL does not match the golden model (logs: icarus.log)" in captured.err
    assert "RTL == golden model" not in captured.out


@pytest.mark.parametrize("test_passed", [False, True], ids=["test-failed", "test-passed"])
def test_main_fails_when_outputs_are_missing(monkeypatch, tmp_path, seed, capsys, test_passed):
    """Missing outputs fail the job even if the cocotb test had (wrongly) passed."""
    from sim.runner import TestOutcome

    def missing(outputs, results, tests):
        del outputs[5:]
        results["compared"] = 5
        if not test_passed:
            tests[0] = TestOutcome("back_to_back", passed=False,
                                   message="5 of 8 outputs came out")

    assert _main_on_a_fake_simulation(monkeypatch, tmp_path, seed, missing) == 1
    captured = capsys.readouterr()
    assert _table(captured.out)["RTL accuracy"].endswith("% (5 outputs only)")
    assert "RTL does not match the golden model" in captured.err
    assert ("FAILED back_to_back: 5 of 8 outputs came out" in captured.err) != test_passed


@pytest.mark.parametrize("ideal,named,want", [(15, None, "icarus"),
                                              (200_000, None, "verilator"),
                                              (200_000, "icarus", "icarus")])
def test_a_long_job_takes_verilator_unless_a_simulator_is_named(monkeypatch, tmp_path, seed,
                                                                capsys, ideal, named, want):
    """8 samples x 200,000 cycles is over sim.main.LONG_JOB_CYCLES: Verilator, and the job
    says so; a named simulator (--simulator) is kept; a short job keeps the default."""
    import sim.accelerator
    import sim.main
    from sw.artifact import write_artifact
    from sw.randnet import random_artifact

    art = random_artifact(seed, sizes=[64, 12, 10], time_steps=2, input_kind="multibit",
                          input_bits=5)
    write_artifact(art, tmp_path / "net")
    _fake_hardware(monkeypatch, SimpleNamespace(folding=[(64, 4), (12, 2)],
                                                ideal_cycles=ideal))
    used = []
    fake = sim.accelerator.simulate
    monkeypatch.setattr(sim.accelerator, "simulate",
                        lambda *a, **kw: used.append(kw["simulator"]) or fake(*a, **kw))
    monkeypatch.delenv("SIM", raising=False)
    monkeypatch.setattr(sim.main, "default_simulator", lambda: "icarus")
    args = ["--artifact", str(tmp_path / "net"), "--dataset", "digits", "--samples", "8",
            "--jobs", "1", "--build-dir", str(tmp_path / "build")]
    assert sim.main.main(args + (["--simulator", named] if named else [])) == 0
    assert used == [want]
    note = "1,600,000 cycles to simulate: Verilator"
    assert (note in capsys.readouterr().out) == (want == "verilator")
