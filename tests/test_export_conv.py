"""Export of conv models (SpikingVGG): BatchNorm2d folding per channel, pools, the flatten into
the readout, float vs integer agreement, refusals, and the real CLI end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sw import geometry
from sw.artifact import ConvLayer, InputSpec, PoolLayer, load_artifact
from sw.data import DatasetInfo, Split
from sw.export import (
    ExportError,
    FoldedPool,
    build_artifact,
    check_deployable,
    element_order_permutation,
    float_spikes,
    fold_model,
    model_inputs,
    torch_flatten_to_element_order,
)
from sw.golden import GoldenModel
from sw.models import build_model
from sw.nn import BinaryConv2d

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
BITS = 3
MULTIBIT = DatasetInfo("toy", "multibit", BITS, (2, 6, 6), 4)
EVENTS = DatasetInfo("toy-events", "spike", 1, (2, 6, 6), 4, 4)


# ----------------------------------------------------------------------------------------------
# the flatten permutation
# ----------------------------------------------------------------------------------------------

def test_flatten_permutation_matches_torch_and_the_element_order_and_round_trips(seed):
    rng = np.random.default_rng(seed)
    c, h, w = shape = (3, 2, 4)
    fmap = rng.integers(0, 100, size=shape)
    chw = torch.as_tensor(fmap).flatten().numpy()        # what nn.Linear after flatten reads
    hwc = geometry.chw_to_hwc(fmap).reshape(-1)          # what the artifact streams
    perm = element_order_permutation(shape)
    assert np.array_equal(chw[perm], hwc)
    # spelled out: element (c, y, x) sits at (y·W + x)·C + c of the element order
    for ci in range(c):
        for y in range(h):
            for x in range(w):
                assert hwc[geometry.map_index(y, x, ci, w, c)] == fmap[ci, y, x]
    # hand-checked head of the permutation: (y, x) = (0, 0) channels 0..2, then (0, 1)
    assert perm[:4].tolist() == [0, 8, 16, 1]
    weights = rng.integers(0, 2, size=(5, c * h * w))
    moved = torch_flatten_to_element_order(weights, shape)
    assert np.array_equal(moved @ hwc, weights @ chw)
    assert np.array_equal(moved[:, np.argsort(perm)], weights)   # round trip
    with pytest.raises(ValueError, match=r"weights have 23 columns, a \(3, 2, 4\) map has 24"):
        torch_flatten_to_element_order(weights[:, 1:], shape)


# ----------------------------------------------------------------------------------------------
# exact folding: negative and zero BatchNorm scales, pools, flatten
# ----------------------------------------------------------------------------------------------

def hand_built_conv(rng, info, *, reset, gate):
    """A VGG whose folding is exact (as tests/test_export.py's hand_built: dyadic BatchNorm,
    eps 0, no leak, dyadic gate gains). In every conv block channel 0 has a negative scale (its
    weight row is negated) and channel 1 a zero scale (connected 0)."""
    agmm = dict(stat="batch", alpha="learned") if gate else None
    model = build_model("vgg", info, time_steps=4, channels=(4, "M", 3), reset=reset,
                        leak_shift=None, threshold=1.0, agmm=agmm, bn_eps=0.0).double()
    with torch.no_grad():
        for block in model.blocks:
            w = block.synapse.weight
            m = w.shape[0]
            w.copy_(torch.tensor(rng.choice([-0.5, 0.5], size=tuple(w.shape))))
            bn = block.norm
            bn.running_var.fill_(4.0)
            bn.running_mean.copy_(torch.tensor(rng.integers(-8, 9, size=m) / 4.0))
            gamma = rng.choice([0.5, 1.0, 2.0, 4.0], size=m) * rng.choice([-1, 1], size=m)
            if isinstance(block.synapse, BinaryConv2d):
                gamma[0] = -abs(gamma[0])
                gamma[1] = 0.0
            bn.weight.copy_(torch.tensor(gamma))
            bn.bias.copy_(torch.tensor(rng.integers(-16, 17, size=m) / 8.0))
            if block.gate is not None:
                block.gate.running_stat.zero_()
                block.gate.alpha.copy_(torch.tensor([2, 3, 5, 2], dtype=torch.float64) / 4)
    model.eval()
    return model


def _inputs(rng, info, n):
    if info.input_kind == "multibit":
        x = rng.integers(0, 2 ** BITS, size=(n, *info.shape))
        x[0], x[1] = 0, 2 ** BITS - 1
        return x
    return rng.integers(0, 2, size=(n, 4, *info.shape))


@pytest.mark.parametrize("info", [MULTIBIT, EVENTS], ids=["multibit", "events"])
@pytest.mark.parametrize("reset,gate", [("hard", False), ("soft", True)])
def test_hand_built_conv_float_and_integer_agree_exactly(info, reset, gate, seed):
    rng = np.random.default_rng(seed)
    spec = InputSpec("multibit", BITS) if info.input_kind == "multibit" else InputSpec("spike")
    for _ in range(20):  # draw until conv1's neurons do switch (one or two draws)
        model = hand_built_conv(rng, info, reset=reset, gate=gate)
        folded = fold_model(model)
        art = build_artifact(folded, input_spec=spec, time_steps=4, frac_bits=8,
                             scale_bits=6, gain_bits=1)
        x = _inputs(rng, info, 200)
        golden = GoldenModel(art).run(model_inputs(Split(x, np.zeros(len(x))), art),
                                      record=True)
        if all(0 < s.mean() < 1 for s in golden.spikes):
            break
    assert all(0 < s.mean() < 1 for s in golden.spikes)
    conv1, pool1, conv2, out = art.layers
    assert isinstance(conv1, ConvLayer) and isinstance(pool1, PoolLayer)
    assert isinstance(folded[1], FoldedPool) and pool1.kernel == 2
    assert conv1.in_shape == info.shape and conv1.out_shape == (4, 6, 6)
    assert conv2.in_shape == (4, 3, 3) and out.inputs == 3 * 3 * 3
    assert (conv1.fan_in, conv2.fan_in) == (9 * 2, 9 * 4)      # N = K·K·C_in
    assert conv1.input == spec and conv2.input.kind == "spike"
    for layer, fl in ((conv1, folded[0]), (conv2, folded[2])):
        assert fl.a[0] < 0 and fl.a[1] == 0
        assert layer.connected.tolist()[:2] == [1, 0]
        assert np.array_equal(layer.weights[0], 1 - fl.bits[0])    # negated row
        assert np.array_equal(layer.weights[2:][fl.a[2:] > 0], fl.bits[2:][fl.a[2:] > 0])
        assert layer.membrane.width == layer.required_width
        assert layer.step_gain == ((2, 3, 5, 2) if gate else (1, 1, 1, 1))
    assert out.score.width == out.required_score_width
    # the trained kernel's bits, in window order (ky·K + kx)·C_in + c
    kernel = (model.blocks[0].synapse.weight.detach().numpy() >= 0).astype(np.uint8)
    assert np.array_equal(folded[0].bits, geometry.conv_weight_rows(kernel))
    o, ky, kx, c = 3, 2, 0, 1
    assert folded[0].bits[o, geometry.window_index(ky, kx, c, 3, 2)] == kernel[o, c, ky, kx]
    # every spike of every layer (conv1, its pool, conv2), in the golden model's element order
    fs = float_spikes(model, x)
    assert [s.shape for s in fs] == [s.shape for s in golden.spikes]
    assert [s.shape[2] for s in fs] == [4 * 36, 4 * 9, 3 * 9]
    for k, (a, b) in enumerate(zip(fs, golden.spikes, strict=True)):
        assert np.array_equal(a, b), f"spikes of {art.lif_layers[k].name} differ"
    # the readout (permuted flatten): integer scores are the float logits times one constant
    logits = model(torch.tensor(x)).detach().numpy()
    a_max = float(np.max(np.abs(folded[-1].a)))
    g_min = float(folded[-1].gain.min()) if gate else 1.0
    qg = 1 if gate else 0
    assert np.array_equal(golden.scores, logits / (a_max * g_min) * 2.0 ** (6 + qg))


def test_float_spikes_without_the_permutation_would_differ(seed):
    """The element order is not the torch order (a check that the exact test above can fail):
    conv1's float spikes flattened CHW differ from the golden model's."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        model = hand_built_conv(rng, MULTIBIT, reset="hard", gate=False)
        art = build_artifact(fold_model(model), input_spec=InputSpec("multibit", BITS),
                             time_steps=4, frac_bits=8, scale_bits=6)
        x = _inputs(rng, MULTIBIT, 50)
        golden = GoldenModel(art).run(x)
        if 0 < golden.spikes[0].mean() < 1:
            break
    with torch.no_grad():
        chw = model.neurons[0](model.blocks[0](model.prepare(torch.tensor(x)), static=True))
    chw = chw.transpose(0, 1).flatten(2).to(torch.uint8).numpy()
    assert not np.array_equal(chw, golden.spikes[0])
    assert np.array_equal(np.sort(chw, axis=2), np.sort(golden.spikes[0], axis=2))


# ----------------------------------------------------------------------------------------------
# refusals
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    (dict(kernel_size=4, padding=1), r"has a 4x4 kernel; the deployment artifact holds kernels "
                                     r"1, 3, 5, 7 only"),
    (dict(kernel_size=3, stride=3, padding=1), r"has stride 3; the deployment artifact holds "
                                               r"strides 1 and 2 only"),
    (dict(kernel_size=3, padding=3), r"has padding 3; the deployment artifact holds zero "
                                     r"padding 0 <= P < K = 3 only"),
])
def test_conv_geometry_outside_the_artifact_is_refused(kwargs, message):
    model = build_model("vgg", MULTIBIT, channels=(4, "M"))
    model.blocks[0].synapse = BinaryConv2d(2, 4, **kwargs)
    with pytest.raises(ExportError, match=r"^layer 'conv1' " + message + r" — train --model "
                                          r"vgg, conv or conv-events \(3x3 convs, stride 1, "
                                          r"padding 1\) to deploy$"):
        check_deployable(model)


def test_conv_refusals_keep_the_dense_messages():
    paper = build_model("vgg", MULTIBIT, profile="paper", channels=(4, "M"))
    with pytest.raises(ExportError, match=r"layer 'conv1' is a full-precision Conv2d \(profile "
                                          r"'paper'\); .* train --profile hardware to deploy"):
        check_deployable(paper)
    sample = build_model("vgg", MULTIBIT, channels=(4, "M"), agmm=dict(stat="sample"))
    with pytest.raises(ExportError, match=r"layer 'conv1' has a data-dependent AGMM gate"):
        check_deployable(sample)
    check_deployable(build_model("conv", MULTIBIT))  # the preset is deployable


def test_export_cli_refuses_a_paper_vgg_in_one_line(tmp_path, capsys):
    from bitspike.cli import main
    from sw.train import TrainConfig, train

    run = train(TrainConfig(model="vgg", profile="paper", channels=(4, "M"), epochs=1,
                            agmm=False, limit=64), tmp_path / "vgg", progress=False)
    capsys.readouterr()
    assert main(["export", str(run), "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err == ("error: layer 'conv1' is a full-precision Conv2d (profile 'paper'); the "
                   "deployment artifact holds binary layers only — train --profile hardware to "
                   "deploy\n")
    assert not (tmp_path / "a").exists()


# ----------------------------------------------------------------------------------------------
# the real CLI: train a preset, export, load, golden
# ----------------------------------------------------------------------------------------------

def _bitspike(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "bitspike", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _table_value(table: str, key: str) -> str:
    m = re.search(rf"^{re.escape(key)}\s+(.*)$", table, re.M)
    assert m, f"no {key!r} row in\n{table}"
    return m.group(1)


# (the events run takes ~25 s of CPU on top of the digits one: slow; the hand-built test above
# covers spike input into a conv layer in the fast suite)
@pytest.mark.parametrize("preset,dataset", [
    ("conv", "digits"),
    pytest.param("conv-events", "digits-events", marks=pytest.mark.slow),
])
def test_cli_trains_and_exports_a_conv_preset(tmp_path, preset, dataset):
    from sw.train import load_checkpoint, load_data
    from sw.train.loop import build_from_checkpoint

    # the preset picks the dataset; the explicit --channels/--epochs win over its defaults
    _bitspike("train", "--model", preset, "--channels", "4,M,8", "--epochs", "1",
              "--finetune-epochs", "1", "--quiet", cwd=tmp_path)
    run = tmp_path / "runs" / f"{dataset}-{preset}-hardware-T4-s0"   # the preset in the name
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["dataset"]) == (preset, dataset)
    assert (config["channels"], config["epochs"]) == ([4, "M", 8], 1)
    table = _bitspike("export", str(run), "-o", str(tmp_path / "art"), cwd=tmp_path)
    art = load_artifact(tmp_path / "art")
    assert art.schema_version == 2
    assert [layer.kind for layer in art.layers] == ["conv", "pool", "conv", "readout"]
    assert art.in_shape == (2 if preset == "conv-events" else 1, 8, 8)
    assert art.input.kind == ("spike" if preset == "conv-events" else "multibit")
    md = art.metadata
    assert md["model"] == preset and md["channels"] == [4, "M", 8]
    # the golden model on the test split gives the integer accuracy the exporter reported
    model, cfg, _ = build_from_checkpoint(load_checkpoint(run))
    data = load_data(cfg)
    x = model_inputs(data.test, art)
    assert x.shape[1:] == art.input_shape()
    pred = GoldenModel(art).run(x).predictions
    acc = float(np.mean(pred == data.test.y))
    assert round(acc, 6) == md["integer_accuracy"]
    assert _table_value(table, "integer model") == f"{100 * acc:.2f} %"
    # float vs integer: the reported agreement is the measured one, and it is high
    with torch.no_grad():  # the exporter's float model: float64
        float_pred = model.double()(torch.as_tensor(data.test.x)).argmax(1).numpy()
    agree = float(np.mean(pred == float_pred))
    assert round(agree, 6) == md["prediction_agreement"] and agree >= 0.97
    spikes = _table_value(table, "agreement")
    assert spikes.startswith(f"predictions {100 * agree:.2f} %, hidden spikes ")
    assert float(spikes.split("hidden spikes ")[1].rstrip(" %")) >= 99.0
    widths = _table_value(table, "widths")
    assert widths == ", ".join(f"{layer.name} {layer.membrane.width}"
                               for layer in art.weighted_layers[:-1]) + \
        f", out {art.readout.score.width}"
    assert md["float_accuracy"] > 0.3
    # bitspike golden finds the dataset and its options in the artifact and agrees
    out = _bitspike("golden", str(tmp_path / "art"), cwd=tmp_path)
    assert f"{100 * acc:.2f} %" in out


@pytest.mark.parametrize("size,readout", [(34, 64 * 17 * 17), (17, 64 * 8 * 8)])
def test_conv_events_preset_on_nmnist_sized_input_fits_the_artifact(size, readout, seed):
    """N-MNIST's 34x34x2 (the loader's default) and 17x17x2 (--downsample 2): the preset's
    network folds into an artifact the golden model runs, in the shapes docs/training.md
    gives."""
    info = DatasetInfo("nmnist", "spike", 1, (2, size, size), 10, 4)
    model = build_model("conv-events", info).double().eval()
    art = build_artifact(fold_model(model), input_spec=InputSpec("spike"), time_steps=4,
                         frac_bits=4)
    conv1, conv2, pool1, out = art.layers
    assert conv1.in_shape == (2, size, size) and conv2.neurons == 64 * size * size
    assert pool1.kind == "pool" and out.inputs == readout
    x = np.random.default_rng(seed).integers(0, 2, size=(2, 4, 2, size, size))
    result = GoldenModel(art).run(model_inputs(Split(x, np.zeros(2)), art))
    assert [s.shape[2] for s in result.spikes] == [32 * size * size, 64 * size * size, readout]
    assert [s.shape for s in float_spikes(model, x)] == [s.shape for s in result.spikes]


@pytest.mark.parametrize("channels,match", [
    ("M,8", r"channels must start with a conv layer"),
    ("8,M,M", r"channels \(8, 'M', 'M'\) has two 'M' in a row"),
    ("8,M,8,M,8,M,8,M", r"pools \(1, 8, 8\) below 1x1"),
])
def test_vgg_channel_lists_that_cannot_be_built_are_named(channels, match):
    from sw.data import load_dataset
    from sw.models import build_model

    with pytest.raises(ValueError, match=match):
        build_model("vgg", load_dataset("digits").info, channels=channels)


def _nmnist_event_bytes(events) -> bytes:
    """N-MNIST's file format, 5 bytes per event: x, y, polarity << 7 | t[22:16], t[15:8],
    t[7:0] (written independently of sw.data.formats, which reads it)."""
    return b"".join(bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
                    for x, y, p, t in events)


def test_cli_conv_events_on_nmnist_files(tmp_path, seed):
    """N-MNIST through the whole software path: files in its real format (written here, a
    digit's events drawn around a class-dependent spot), `bitspike train --model conv-events
    --dataset nmnist --downsample 2`, export and golden, which reads the dataset, root and
    downsampling the artifact records."""
    rng = np.random.default_rng(seed)
    root = tmp_path / "nmnist"
    for split, count in (("Train", 8), ("Test", 4)):
        for digit in (1, 7):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(count):
                cx, cy = (8, 8) if digit == 1 else (24, 24)
                xs = np.clip(rng.normal(cx, 4, 60).astype(int), 0, 33)
                ys = np.clip(rng.normal(cy, 4, 60).astype(int), 0, 33)
                ts = np.sort(rng.integers(0, 300_000, 60))
                events = [(int(x), int(y), int(p), int(t)) for x, y, p, t in
                          zip(xs, ys, rng.integers(0, 2, 60), ts, strict=True)]
                (folder / f"{i + 1:05d}.bin").write_bytes(_nmnist_event_bytes(events))
    _bitspike("train", "--model", "conv-events", "--dataset", "nmnist", "--root", str(root),
              "--downsample", "2", "--channels", "4,M", "--epochs", "2", "--finetune-epochs",
              "1", "--batch-size", "8", "-o", str(tmp_path / "run"), "--quiet", cwd=tmp_path)
    table = _bitspike("export", str(tmp_path / "run"), "-o", str(tmp_path / "art"), cwd=tmp_path)
    art = load_artifact(tmp_path / "art")
    assert art.in_shape == (2, 17, 17) and art.input.kind == "spike"
    assert [layer.kind for layer in art.layers] == ["conv", "pool", "readout"]
    assert art.layers[1].out_shape == (4, 8, 8)
    assert _table_value(table, "dataset") == "nmnist test split (8 samples)"
    out = _bitspike("golden", str(tmp_path / "art"), cwd=tmp_path)
    assert "on nmnist/test (8 samples)" in out
    assert f"accuracy      {_table_value(table, 'integer model')}" in out
