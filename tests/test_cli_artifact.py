"""The artifact subcommands of the ``bitspike`` command, run in-process and as a process."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bitspike.cli import COMMANDS, main
from sw.artifact import load_artifact
from sw.folding import hex_lines_to_words, unpack_weights


def test_help_lists_every_registered_command():
    out = subprocess.run([sys.executable, "-m", "bitspike", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_random_info_golden_bram(tmp_path, capsys, seed):
    art = tmp_path / "net"
    assert main(["random", "-o", str(art), "--sizes", "64,20,10", "--seed", str(seed)]) == 0
    assert main(["random", "-o", str(art)]) == 2
    assert "exists; pass overwrite=True" in capsys.readouterr().err
    assert main(["info", str(art)]) == 0
    out = capsys.readouterr().out
    assert "64-20-10 T=4 input=multibit/5b" in out and "fc0" in out and "out1" in out
    assert main(["golden", str(art), "--dataset", "digits", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "(50 samples)" in out and "accuracy" in out and "samples/s" in out
    assert main(["bram", str(art), "--simd", "16,8", "--pe", "4,3", "-o", str(tmp_path / "b")]) == 0
    a = load_artifact(art)
    for layer, (s, p) in zip(a.layers, [(16, 4), (8, 3)], strict=True):
        lines = (tmp_path / "b" / f"{layer.name}.weights.{s}x{p}.mem").read_text().splitlines()
        words = hex_lines_to_words(lines, s * p)
        np.testing.assert_array_equal(unpack_weights(words, s, p, layer.neurons, layer.inputs),
                                      layer.weights)


@pytest.mark.parametrize("args,message", [
    (["--simd", "8"], "give --simd and --pe"),
    (["--simd", "8", "--pe", "1,1,1"], "--pe gives 3 values; the artifact has 2 layers"),
    (["--folding", "8x1,99x1"], "layer 'out1': simd 99 exceeds its 20 inputs"),
    (["--folding", "8x1", "--pe", "1"], "give either --folding or --simd/--pe, not both"),
])
def test_bram_errors(tmp_path, capsys, args, message):
    art = tmp_path / "net"
    main(["random", "-o", str(art), "--sizes", "64,20,10"])
    assert main(["bram", str(art), *args, "-o", str(tmp_path / "b")]) == 2
    assert message in capsys.readouterr().err


def test_bad_artifact_is_reported_not_raised(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["info", str(tmp_path / "missing")])
    assert info.value.code == 2
    assert "no artifact directory" in capsys.readouterr().err


def test_golden_refuses_a_dataset_that_does_not_fit(tmp_path, capsys):
    art = tmp_path / "net"
    main(["random", "-o", str(art), "--sizes", "30,5,3"])
    with pytest.raises(SystemExit):
        main(["golden", str(art), "--dataset", "digits"])
    assert "the artifact takes multibit inputs of shape (30,)" in capsys.readouterr().err


def test_verilog_offers_the_weight_memories_the_stages_take(tmp_path, capsys):
    from hw.stage import WEIGHT_MEMORY

    main(["random", "-o", str(tmp_path / "net"), "--sizes", "6,4,2"])
    with pytest.raises(SystemExit) as info:
        main(["verilog", str(tmp_path / "net"), "--weight-memory", "bram", "-o",
              str(tmp_path / "hw")])
    assert info.value.code == 2
    choices = ", ".join(repr(c) for c in WEIGHT_MEMORY)
    assert (f"argument --weight-memory: invalid choice: 'bram' (choose from {choices})"
            in capsys.readouterr().err)


def _with_metadata(tmp_path, sizes, input_kind, **metadata):
    """A random artifact recording a dataset the way ``bitspike export`` does."""
    from sw.artifact import Artifact, write_artifact
    from sw.randnet import random_artifact

    a = random_artifact(3, sizes=sizes, time_steps=4, input_kind=input_kind, input_bits=5)
    out = tmp_path / "rec"
    write_artifact(Artifact(layers=a.layers, metadata=metadata), out)
    return out


def test_golden_defaults_to_the_recorded_dataset_and_options(tmp_path, capsys):
    """Without --dataset, golden runs on the artifact's dataset with its split seed and its
    input options (here digits-events pooled by 2: 2x4x4 = 32 inputs per frame, which plain
    digits-events (128) or digits (64) would not fit)."""
    from sw.data import load_dataset
    from sw.golden import GoldenModel

    art = _with_metadata(tmp_path, [32, 7, 10], "spike", dataset="digits-events", data_seed=3,
                         training={"downsample": 2, "root": None})
    assert main(["golden", str(art), "--limit", "40"]) == 0
    out = capsys.readouterr().out
    assert "on digits-events/test (40 samples)" in out
    data = load_dataset("digits-events", downsample=2, seed=3)
    pred = GoldenModel(load_artifact(art)).run(data.test.flat()[:40]).predictions
    acc = 100 * float(np.mean(pred == data.test.y[:40]))
    assert f"accuracy      {acc:.2f} %" in out
    # naming the recorded dataset keeps its options; another dataset is loaded as it comes
    assert main(["golden", str(art), "--dataset", "digits-events", "--limit", "40"]) == 0
    assert f"accuracy      {acc:.2f} %" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["golden", str(art), "--dataset", "digits"])
    assert "the artifact takes spike inputs of shape (4, 32)" in capsys.readouterr().err


def test_golden_uses_the_recorded_root(tmp_path, capsys):
    # a file-based dataset's root comes from the artifact; the error names the recorded root
    art = _with_metadata(tmp_path, [196, 5, 10], "multibit", dataset="mnist",
                         data_root=str(tmp_path / "mnist-files"))
    with pytest.raises(SystemExit):
        main(["golden", str(art)])
    assert f"dataset root {str(tmp_path / 'mnist-files')!r} is not a directory" in (
        capsys.readouterr().err)


def test_conv_artifact_info_golden_bram(tmp_path, capsys, seed):
    """A conv network through the artifact commands: info shows its geometry, golden runs the
    digits test split in the maps' layout, bram folds its weighted layers only (the window
    K·K·C_in x the output channels for a conv layer; nothing for a pool)."""
    from sw.artifact import write_artifact
    from sw.golden import GoldenModel
    from sw.randnet import random_conv_artifact

    conv = random_conv_artifact(seed, in_shape=(1, 8, 8), layers=[
        ("conv", 6, 3, 1, 1), ("pool", 2), ("conv", 5, 3, 2, 0), ("readout", 10)],
        input_kind="multibit", input_bits=5, time_steps=3)
    art = write_artifact(conv, tmp_path / "conv")
    assert main(["info", str(art)]) == 0
    out = capsys.readouterr().out
    assert "1x8x8-c6k3-p2-c5k3s2p0-10 T=3" in out
    assert "1x8x8 -> 6x8x8, kernel 3x3 stride 1 padding 1, fan-in 9" in out
    assert "6x8x8 -> 6x4x4, pool 2x2" in out
    assert "6x4x4 -> 5x1x1, kernel 3x3 stride 2 padding 0, fan-in 54" in out
    assert main(["golden", str(art), "--dataset", "digits", "--limit", "40"]) == 0
    out = capsys.readouterr().out
    assert "(40 samples)" in out and "firing rate   pool1" in out
    from sw.data import load_dataset

    x = load_dataset("digits").test.x[:40]
    acc = float(np.mean(GoldenModel(conv).run(x).predictions
                        == load_dataset("digits").test.y[:40]))
    assert f"accuracy      {100 * acc:.2f} %" in out
    assert main(["bram", str(art), "--folding", "9x2,18x5,5x4", "-o", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    weighted = [la for la in conv.layers if la.kind != "pool"]
    for layer, (s, p) in zip(weighted, [(9, 2), (18, 5), (5, 4)], strict=True):
        depth = -(-layer.fan_in // s) * -(-layer.weight_rows // p)
        path = tmp_path / "b" / f"{layer.name}.weights.{s}x{p}.mem"
        words = hex_lines_to_words(path.read_text().split(), s * p)
        assert len(words) == depth, layer.name
        assert np.array_equal(unpack_weights(words, s, p, layer.weight_rows, layer.fan_in),
                              layer.weights)
        assert f"{layer.name:<10} {s}x{p}" in out
    assert not list((tmp_path / "b").glob("pool1*"))
    # one folding per weighted layer: the pool does not count
    assert main(["bram", str(art), "--folding", "9x2,18x5,9x1,5x4", "-o",
                 str(tmp_path / "c")]) == 2
    assert "folding gives 4 layers, the artifact has 3 with weights" in capsys.readouterr().err
    # one SxP for every layer is clamped to each layer's window and output channels
    assert main(["bram", str(art), "--folding", "64x8", "-o", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "conv0      9x6" in out and "conv2      54x5" in out and "out3       5x8" in out
