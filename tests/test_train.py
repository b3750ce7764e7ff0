"""Training: configuration, run layout, metrics, determinism, resume, plots, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from sw.train import TrainConfig, load_checkpoint, state_digest, train
from sw.train.loop import CheckpointError, build_from_checkpoint
from sw.train.metrics import FlipCounter

torch.set_num_threads(1)

SMALL = dict(epochs=3, hidden=(24,), batch_size=256, agmm_deploy="keep")


def digest_of(run):
    model, _, _ = build_from_checkpoint(load_checkpoint(run))
    return state_digest(model)


def test_run_layout_and_metrics(tmp_path):
    run = train(TrainConfig(**SMALL), tmp_path / "run", progress=False)
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl", "summary.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*tmp"))  # atomic writes leave no temporary files
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    r = rows[0]
    for key in ("loss", "train_accuracy", "test_accuracy", "flip_rate", "firing_rate", "alpha",
                "gate_gain", "time_s", "epoch_time_s", "lr", "phase"):
        assert key in r, key
    assert set(r["flip_rate"]) == {"fc1", "out"}
    assert all(0 < v < 1 for v in r["flip_rate"].values())  # early epochs do flip weights
    assert set(r["firing_rate"]) == {"fc1"} and 0 < r["firing_rate"]["fc1"] < 1
    assert len(r["alpha"]["fc1"]) == 4 and len(r["gate_gain"]["out"]) == 4
    assert rows[-1]["test_accuracy"] > 0.5
    assert rows[-1]["lr"] < rows[0]["lr"]  # cosine decay
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["ranks_agree"]
    assert json.loads((run / "config.json").read_text()) == TrainConfig(**SMALL).to_json()


def test_same_seed_same_weights_and_resume_equals_uninterrupted(tmp_path):
    cfg = TrainConfig(**SMALL, seed=5)
    a = train(cfg, tmp_path / "a", progress=False)
    b = train(cfg, tmp_path / "b", progress=False, stop_after=1)
    assert load_checkpoint(b)["epoch"] == 1 and not (b / "summary.json").exists()
    with pytest.raises(FileExistsError, match=r"already holds a run"):
        train(cfg, tmp_path / "b", progress=False)
    train(None, tmp_path / "b", resume=True, progress=False)
    assert digest_of(a) == digest_of(b)
    rows_a = (a / "metrics.jsonl").read_text().splitlines()
    rows_b = (b / "metrics.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if "time" not in k} for x in rows_a]
    assert strip == [{k: v for k, v in json.loads(x).items() if "time" not in k}
                     for x in rows_b]
    c = train(cfg.replace(seed=6), tmp_path / "c", progress=False)
    assert digest_of(c) != digest_of(a)


def test_finetune_removes_the_gate_and_resumes_across_it(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 2, "agmm_deploy": "finetune"}, agmm_stat="sample",
                      finetune_epochs=2)
    a = train(cfg, tmp_path / "a", progress=False)
    ckpt = load_checkpoint(a)
    assert ckpt["gates_removed"] and ckpt["epoch"] == 4
    rows = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["train", "train", "finetune", "finetune"]
    assert rows[1]["alpha"] and not rows[2]["alpha"]
    model, _, _ = build_from_checkpoint(ckpt)
    assert model.gates == []
    b = train(cfg, tmp_path / "b", progress=False, stop_after=3)
    train(None, b, resume=True, progress=False)
    assert digest_of(a) == digest_of(b)


@pytest.mark.parametrize("profile", ["hardware", "paper"])
def test_conv_net_and_events_train(tmp_path, profile):
    cfg = TrainConfig(dataset="digits-events", model="vgg", channels=(4, "M", 8), epochs=1,
                      profile=profile, agmm_deploy="keep")
    run = train(cfg, tmp_path / "v", progress=False)
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    binary = {"hardware": {"conv1", "conv2", "out"}, "paper": {"conv2"}}[profile]
    assert set(row["flip_rate"]) == binary
    assert set(row["firing_rate"]) == {"conv1", "conv2"}


def test_flip_counter_counts_exactly():
    from sw.nn import BinaryLinear

    layer = BinaryLinear(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -0.1, 0.2, 0.0], [1.0, -1.0, 0.5, -0.5]]))
    counter = FlipCounter({"fc": layer})
    counter.before()
    with torch.no_grad():
        layer.weight[0, 0] = -0.1   # flips
        layer.weight[0, 3] = -1e-9  # 0 (+1) -> negative: flips
        layer.weight[1, 2] = 0.1    # no flip
    counter.after()
    counter.before()
    counter.after()                 # a step without change
    assert counter.rates() == {"fc": (2 / 8 + 0) / 2}
    with pytest.raises(RuntimeError, match=r"after\(\) called without before\(\)"):
        counter.after()


def test_config_validation_messages():
    with pytest.raises(ValueError, match=r"model must be one of mlp, vgg, resnet18, .*conv, "
                                         r"conv-events, not 'rnn'"):
        TrainConfig(model="rnn")
    with pytest.raises(ValueError, match=r"profile must be one of \('hardware', 'paper'\), "
                                         r"not 'fpga'"):
        TrainConfig(profile="fpga")
    with pytest.raises(ValueError, match=r"time_steps must be between 1 and 1024, not 0"):
        TrainConfig(time_steps=0)
    with pytest.raises(TypeError, match=r"epochs must be an int, not 2.5"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ValueError, match=r"batch_size must be >= 2, not 1"):
        TrainConfig(batch_size=1)
    with pytest.raises(ValueError, match=r"agmm_stat must be one of \('sample', 'batch'\), "
                                         r"not 'global'"):
        TrainConfig(agmm_stat="global")
    with pytest.raises(ValueError, match=r"agmm_deploy='finetune' needs finetune_epochs >= 1, "
                                         r"not 0 \(or agmm_deploy='keep' to keep the gate\)"):
        TrainConfig(finetune_epochs=0)
    assert TrainConfig(agmm=False, epochs=7).total_epochs == 7  # no gate, no fine-tune
    assert TrainConfig(agmm_deploy="keep", epochs=7).total_epochs == 7
    assert TrainConfig(epochs=7, finetune_epochs=3).total_epochs == 10
    with pytest.raises(ValueError, match=r"lr must be a positive number or None, not -0.1"):
        TrainConfig(lr=-0.1)
    with pytest.raises(ValueError, match=r"leak_shift must be None or an int in 1\.\.30, "
                                         r"not 0"):
        TrainConfig(leak_shift=0)
    with pytest.raises(ValueError, match=r"hidden must hold positive ints \(or 'M' for "
                                         r"pooling\), not '12,x'"):
        TrainConfig(hidden="12,x")
    with pytest.raises(ValueError, match=r"unknown training options \['colour'\]"):
        TrainConfig.from_json({"colour": 1})
    assert TrainConfig(hidden="32, 16").hidden == (32, 16)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match=r"not a bitspike training checkpoint"):
        load_checkpoint(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a readable torch checkpoint"):
        load_checkpoint(junk)


def test_plots_and_cli(tmp_path, capsys):
    from bitspike.cli import main
    from sw.train.plots import PlotError, plot_runs

    run = tmp_path / "r"
    assert main(["train", "-o", str(run), "--epochs", "2", "--hidden", "16", "--quiet",
                 "--agmm", "off"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["agmm"] is False and cfg["hidden"] == [16] and cfg["epochs"] == 2
    assert main(["train", "-o", str(run), "--epochs", "2"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "-o", str(tmp_path / "x"), "--finetune-epochs", "0", "--quiet"]) == 2
    assert "needs finetune_epochs >= 1" in capsys.readouterr().err
    files = plot_runs([run, run], tmp_path / "plots", labels=["a", "b"])
    assert [f.name for f in files] == ["accuracy.png", "flip_rate.png", "firing_rate.png"]
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(PlotError, match=r"metrics.jsonl: missing"):
        plot_runs([tmp_path / "none"], tmp_path / "plots")
    assert main(["plot", str(run), "-o", str(tmp_path / "p2")]) == 0
    assert (tmp_path / "p2" / "accuracy.png").is_file()


def _write_idx(path, array):
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def test_file_dataset_trains_and_exports(tmp_path, seed):
    """A file-based dataset (MNIST IDX files, generated here) through train and export."""
    import numpy as np

    from sw.export import export
    from sw.golden import GoldenModel
    from sw.train import load_data

    rng = np.random.default_rng(seed)
    root = tmp_path / "mnist"
    root.mkdir()
    for prefix, n in (("train", 240), ("t10k", 80)):
        y = np.arange(n) % 10
        x = rng.integers(0, 40, size=(n, 10, 10))
        for i, label in enumerate(y):  # one bright bar per class: learnable
            x[i, label, :] = 200 + rng.integers(0, 56)
        _write_idx(root / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte", y)
    cfg = TrainConfig(dataset="mnist", root=str(root), epochs=4, finetune_epochs=1,
                      hidden=(32,), batch_size=64, seed=seed % 1000)
    run = train(cfg, tmp_path / "run", progress=False)
    art, rep = export(run, tmp_path / "art")
    assert art.summary() == "100-32-10 T=4 input=multibit/8b"
    assert art.metadata["training"]["root"] == str(root)
    data = load_data(cfg)
    pred = GoldenModel(art).run(data.test.flat()).predictions
    assert float(np.mean(pred == data.test.y)) == rep.integer_accuracy
    assert rep.integer_accuracy > 0.5


def test_train_cli_takes_the_dataset_options_and_mnist_sized_data_deploys(tmp_path, capsys):
    """MNIST-format files (written here, 28x28 8-bit) trained from the command line with
    --downsample 2 --bits 4 --limit: the run records the options, export reads the same data
    (196 inputs of 4 bits) and golden finds the dataset, its root and options in the artifact."""
    import struct

    import numpy as np

    from bitspike.cli import main
    from sw.artifact import load_artifact

    rng = np.random.default_rng(0)
    root = tmp_path / "mnist"
    root.mkdir()
    for prefix, n in (("train", 40), ("t10k", 24)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            (root / f"{prefix}-{kind}-ubyte").write_bytes(header + arr.tobytes())
    run, art = tmp_path / "run", tmp_path / "art"
    assert main(["train", "--dataset", "mnist", "--root", str(root), "--downsample", "2",
                 "--bits", "4", "--limit", "30", "--epochs", "1", "--finetune-epochs", "1",
                 "--hidden", "8", "--batch-size", "16", "-o", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["downsample"], config["bits"], config["limit"]) == (2, 4, 30)
    assert main(["export", str(run), "-o", str(art)]) == 0
    out = capsys.readouterr().out
    assert "mnist test split (24 samples)" in out
    a = load_artifact(art)
    assert (a.layers[0].inputs, a.input.kind, a.input.bits) == (196, "multibit", 4)
    assert a.metadata["data_root"] == str(root)
    assert main(["golden", str(art)]) == 0
    assert "on mnist/test (24 samples)" in capsys.readouterr().out


def test_train_config_checks_the_dataset_options():
    with pytest.raises(ValueError, match=r"^limit must be >= 1, not 0$"):
        TrainConfig(limit=0)
    with pytest.raises(TypeError, match="downsample must be an int or None"):
        TrainConfig(downsample="2")


def test_model_presets_set_defaults_and_explicit_options_win(capsys):
    """A preset (sw.models.PRESETS) is a model name: it sets its dataset/channels/epochs unless
    the run gives them (TrainConfig and the CLI alike), and its name is the recorded model."""
    import argparse

    from sw.data import DatasetInfo
    from sw.models import PRESETS, build_model
    from sw.train.cli import Train
    from sw.train.config import GENERIC_DEFAULTS

    conv = TrainConfig(model="conv")
    assert (conv.dataset, conv.channels, conv.epochs) == ("digits", (32, 64, "M"), 80)
    assert conv.to_json()["model"] == "conv"
    ev = TrainConfig(model="conv-events")
    assert (ev.dataset, ev.channels, ev.epochs) == (
        "digits-events", PRESETS["conv-events"].defaults["channels"], 80)
    # explicit wins, also when it equals the generic default
    mine = TrainConfig(model="conv", dataset="digits-events", channels="16,M,32,M", epochs=50)
    assert (mine.dataset, mine.channels, mine.epochs) == ("digits-events", (16, "M", 32, "M"), 50)
    # plain models keep the generic defaults (the default digits model is unchanged)
    for name in ("mlp", "vgg"):
        cfg = TrainConfig(model=name)
        assert {k: getattr(cfg, k) for k in GENERIC_DEFAULTS} == GENERIC_DEFAULTS
    assert TrainConfig.from_json(conv.to_json()) == conv  # saved resolved: resumes the same
    model = build_model("conv", DatasetInfo("digits", "multibit", 4, (1, 8, 8), 10))
    assert model.kind == "vgg" and model.channels == (32, 64, "M")

    parser = argparse.ArgumentParser()
    Train.configure(parser)
    args = parser.parse_args(["--model", "conv-events", "--epochs", "3"])
    cfg = Train.config_from_args(args)
    assert (cfg.model, cfg.dataset, cfg.epochs) == ("conv-events", "digits-events", 3)
    assert cfg.channels == PRESETS["conv-events"].defaults["channels"]
    cfg = Train.config_from_args(parser.parse_args([]))
    assert cfg == TrainConfig()
    text = parser.format_help()
    assert all(name in text for name in PRESETS)
    assert "--dataset digits-events" in " ".join(text.split())


def test_a_preset_trains_the_same_weights_as_its_model_with_the_same_options(tmp_path):
    opts = dict(channels=(4, "M"), epochs=1, finetune_epochs=1, limit=200, batch_size=64)
    a = train(TrainConfig(model="conv", **opts), tmp_path / "a", progress=False)
    b = train(TrainConfig(model="vgg", **opts), tmp_path / "b", progress=False)
    assert digest_of(a) == digest_of(b)
