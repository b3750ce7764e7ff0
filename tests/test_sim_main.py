"""The main job (``python -m sim.main``, ``nox -s simulate``): options, and end to end."""

from __future__ import annotations

import pytest

from sim.main import main
from sim.testing import build_dir_for, require_simulator


@pytest.mark.parametrize("argv,message", [
    (["--samples", "0"], "--samples must be >= 1, not 0"),
    (["--gaps", "1.5"], "--gaps must be in [0, 1), not 1.5"),
    (["--backpressure", "-0.1"], "--backpressure must be in [0, 1), not -0.1"),
    (["--jobs", "0"], "--jobs must be >= 1, not 0"),
])
def test_bad_options(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


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
    RTL accuracy equal to golden accuracy, cycles per inference within 1.10x the bound."""
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
    ratio = float(rows["cycles/inference"].rsplit("ratio", 1)[1])
    assert ratio <= 1.10
    # A second run reuses the trained model and the artifact.
    assert main(argv + ["--samples", "16"]) == 0
    again = capsys.readouterr().out
    assert "reusing the trained default model" in again
    assert "reusing the artifact" in again


def test_default_model_trains_on_the_threads_bitspike_train_uses(tmp_path, monkeypatch):
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
        sim.main.ensure_trained(tmp_path / "run")
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen == [(TrainConfig(), DEFAULT_THREADS)]
    assert after == 2
