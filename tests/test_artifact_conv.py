"""Artifact schema version 2: conv and pool layers written and read back exactly, and the
loader's named error for every new field (in the style of tests/test_artifact.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from manifest_edit import edit_manifest as _edit_manifest

from sw.artifact import (
    Artifact,
    ArtifactError,
    ConvLayer,
    PoolLayer,
    load_artifact,
    weights_to_hex_lines,
    write_artifact,
)
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_conv_artifact, random_inputs

# conv0 (2x7x6 -> 3x7x6), pool1 (-> 3x3x3), conv2 (-> 4x1x1), fc3 (5), out4 (3)
LAYERS = [("conv", 3, 3, 1, 1), ("pool", 2), ("conv", 4, 3, 2, 0), ("lif", 5), ("readout", 3)]


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.fixture
def written(tmp_path, seed):
    artifact = random_conv_artifact(seed, in_shape=(2, 7, 6), layers=LAYERS, time_steps=2,
                                    input_kind="spike", step_gain=True)
    return artifact, write_artifact(artifact, tmp_path / "net")


def assert_same_artifact(a: Artifact, b: Artifact):
    assert a.summary() == b.summary()
    assert a.metadata == b.metadata
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert type(la) is type(lb) and la.name == lb.name and la.kind == lb.kind
        assert la.time_steps == lb.time_steps and la.input == lb.input
        for attr in ("in_shape", "out_shape", "channels", "kernel", "stride", "padding",
                     "inputs", "neurons", "step_gain", "membrane", "leak_shift", "reset",
                     "score"):
            if hasattr(la, attr):
                assert getattr(la, attr) == getattr(lb, attr), (la.name, attr)
        for attr in ("weights", "bias", "threshold", "connected", "scale", "offset"):
            if hasattr(la, attr):
                np.testing.assert_array_equal(getattr(la, attr), getattr(lb, attr),
                                              err_msg=f"{la.name}.{attr}")


# -- round trips ------------------------------------------------------------------------------

def test_conv_round_trips_are_exact(tmp_path, seed):
    rng = np.random.default_rng(seed)
    kinds = set()
    for i in range(12):
        artifact = random_conv_artifact(rng, width_slack=int(rng.integers(0, 3)))
        path = write_artifact(artifact, tmp_path / f"net{i}")
        loaded = load_artifact(path)
        assert_same_artifact(artifact, loaded)
        assert _manifest(path)["schema_version"] == 2 == artifact.schema_version
        assert not artifact.is_dense
        kinds.update(layer.kind for layer in artifact.layers)
        # writing what was loaded gives the same bytes (the manifest names every file's hash)
        again = write_artifact(loaded, tmp_path / f"again{i}")
        assert (again / "manifest.json").read_bytes() == (path / "manifest.json").read_bytes()
        x = random_inputs(artifact, 4, seed + i)
        a, b = GoldenModel(artifact).run(x), GoldenModel(loaded).run(x)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.predictions, b.predictions)
    assert "conv" in kinds and "readout" in kinds


def test_dense_artifacts_are_still_version_1(tmp_path, seed):
    artifact = random_artifact(seed, sizes=[7, 5, 3])
    path = write_artifact(artifact, tmp_path / "dense")
    assert _manifest(path)["schema_version"] == 1 == artifact.schema_version
    assert_same_artifact(artifact, load_artifact(path))


def test_conv_files_are_the_documented_ones(written):
    artifact, path = written
    names = sorted(p.name for p in path.iterdir())
    # a pool layer has no weights or parameters, so no files
    assert names == ["conv0.params.csv", "conv0.weights.hex", "conv2.params.csv",
                     "conv2.weights.hex", "fc3.params.csv", "fc3.weights.hex", "manifest.json",
                     "out4.params.csv", "out4.weights.hex"]
    conv0 = artifact.layers[0]
    lines = (path / "conv0.weights.hex").read_text().splitlines()
    # one line per output channel, K·K·C_in = 18 bits: 5 hex digits
    assert len(lines) == 3 and all(len(line) == 5 for line in lines)
    assert lines == weights_to_hex_lines(conv0.weights)
    params = (path / "conv0.params.csv").read_text().splitlines()
    assert params[0] == "bias,threshold,connected" and len(params) == 1 + 3
    m = _manifest(path)
    assert m["layers"][0] == {
        "name": "conv0", "kind": "conv", "in_shape": [2, 7, 6], "channels": 3, "kernel": 3,
        "stride": 1, "padding": 1, "input": {"kind": "spike", "bits": 1}, "time_steps": 2,
        "step_gain": list(conv0.step_gain), "membrane": conv0.membrane.to_json(),
        "leak_shift": conv0.leak_shift, "reset": conv0.reset,
        "files": {"weights": "conv0.weights.hex", "params": "conv0.params.csv"}}
    assert m["layers"][1] == {"name": "pool1", "kind": "pool", "in_shape": [3, 7, 6],
                              "kernel": 2, "time_steps": 2}
    assert m["layers"][2]["in_shape"] == [3, 3, 3]
    assert m["layers"][3]["inputs"] == 4 and artifact.layers[2].out_shape == (4, 1, 1)
    assert set(m["hashes"]) == set(names) - {"manifest.json"}


def test_window_order_of_the_weight_file(tmp_path):
    """Bit (ky·K + kx)·C_in + c of a weight line is tap (ky, kx) of input channel c."""
    artifact = random_conv_artifact(3, in_shape=(2, 3, 3), layers=[("conv", 1, 3, 1, 1),
                                                                   ("readout", 2)])
    conv = artifact.layers[0]
    w = np.zeros((1, 18), np.uint8)
    w[0, (1 * 3 + 2) * 2 + 1] = 1  # tap (1, 2), channel 1: bit 11
    layer = ConvLayer(**{**_fields(conv), "weights": w})
    path = write_artifact(Artifact((layer, artifact.readout)), tmp_path / "one")
    assert (path / "conv0.weights.hex").read_text() == "00800\n"  # 1 << 11
    np.testing.assert_array_equal(load_artifact(path).layers[0].weights, w)


def _fields(conv: ConvLayer) -> dict:
    return {k: getattr(conv, k) for k in (
        "name", "in_shape", "channels", "kernel", "stride", "padding", "input", "time_steps",
        "membrane", "leak_shift", "reset", "step_gain", "weights", "bias", "threshold",
        "connected")}


# -- the loader's named errors for the new fields ----------------------------------------------

def _set(i, key, value):
    return lambda m: m["layers"][i].__setitem__(key, value)


def _pop(i, key):
    return lambda m: m["layers"][i].pop(key)


@pytest.mark.parametrize("edit,match", [
    (_set(0, "in_shape", [2, 7]),
     r"layers\[0\] \(conv0\)\.in_shape: expected 3 positive ints \[channels, height, width\], "
     r"found \[2, 7\]"),
    (_set(0, "in_shape", [2, 7, 6, 1]), r"\(conv0\)\.in_shape: expected 3 positive ints"),
    (_set(0, "in_shape", [2, 0, 6]), r"\(conv0\)\.in_shape: expected 3 positive ints"),
    (_set(0, "in_shape", [2, -7, 6]), r"\(conv0\)\.in_shape: expected 3 positive ints"),
    (_set(0, "in_shape", [2, 7.0, 6]), r"\(conv0\)\.in_shape: expected 3 positive ints"),
    (_set(0, "in_shape", [True, 7, 6]), r"\(conv0\)\.in_shape: expected 3 positive ints"),
    (_set(0, "in_shape", "2x7x6"),
     r"\(conv0\)\.in_shape: expected a list \[channels, height, width\], found '2x7x6'"),
    (_set(0, "in_shape", [2, 1 << 20, 6]),
     r"\(conv0\)\.in_shape: C·H·W = 12582912 is above the limit MAX_MAP"),
    (_set(0, "stride", 3), r"conv0\.stride: must be 1 or 2, not 3"),
    (_set(0, "stride", 0), r"conv0\.stride: must be 1 or 2, not 0"),
    (_set(0, "padding", 3),
     r"conv0\.padding: must be an int with 0 <= padding < kernel = 3, not 3"),
    (_set(0, "padding", -1), r"conv0\.padding: must be an int with 0 <= padding < kernel"),
    (_set(0, "kernel", 0),
     r"layers\[0\] \(conv0\)\.kernel: must be one of 1, 3, 5, 7 \(odd\), not 0"),
    (_set(0, "channels", 0), r"\(conv0\)\.channels: must be >= 1, found 0"),
    (_set(0, "kernel", "3"), r"\(conv0\)\.kernel: expected an int, found '3'"),
    (_set(0, "stride", 1.0), r"\(conv0\)\.stride: expected an int, found 1\.0"),
    (_set(0, "padding", True), r"\(conv0\)\.padding: expected an int, found True"),
    (_set(1, "kernel", 1), r"pool1\.kernel: must be an int with 2 <= kernel <= min\(H, W\) "
                           r"= 6, not 1"),
    (_set(1, "kernel", 7), r"pool1\.kernel: must be an int with 2 <= kernel <= min\(H, W\) "
                           r"= 6, not 7"),
    (_set(1, "in_shape", [3, 8, 6]),
     r"pool1\.in_shape: must equal the previous layer's out_shape \[3, 7, 6\], not \[3, 8, 6\]"),
    (_set(2, "in_shape", [3, 4, 3]),
     r"conv2\.in_shape: must equal the previous layer's out_shape \[3, 3, 3\], not \[3, 4, 3\]"),
    (_set(1, "time_steps", 3), r"pool1\.time_steps: must equal the first layer's time_steps 2"),
    (_set(1, "time_steps", 0), r"pool1\.time_steps: must be a positive int, not 0"),
    (lambda m: m["layers"].pop(0),
     r"pool1\.kind: a pool layer pools the spikes of a conv layer; it cannot be the first"),
    (lambda m: m.__setitem__("schema_version", 1),
     r"layers\[0\] \(conv0\)\.kind: expected 'lif' or 'readout', found 'conv' \(schema_version "
     r"1 holds dense layers only; 'conv' layers need schema_version 2\)"),
    (lambda m: (m.__setitem__("schema_version", 1), m["layers"].pop(0)),
     r"layers\[0\] \(pool1\)\.kind: expected 'lif' or 'readout', found 'pool' \(schema_version "
     r"1 holds dense layers only"),
    (_set(1, "kind", "maxpool"),
     r"layers\[1\] \(pool1\)\.kind: expected 'lif' or 'conv' or 'pool' or 'readout', found "
     r"'maxpool'"),
    (_pop(0, "in_shape"), r"layers\[0\] \(conv0\)\.in_shape: missing"),
    (_pop(0, "channels"), r"layers\[0\] \(conv0\)\.channels: missing; expected an int"),
    (_pop(0, "kernel"), r"layers\[0\] \(conv0\)\.kernel: missing; expected an int"),
    (_pop(0, "stride"), r"layers\[0\] \(conv0\)\.stride: missing; expected an int"),
    (_pop(0, "padding"), r"layers\[0\] \(conv0\)\.padding: missing; expected an int"),
    (_pop(1, "kernel"), r"layers\[1\] \(pool1\)\.kernel: missing; expected an int"),
    (_pop(1, "in_shape"), r"layers\[1\] \(pool1\)\.in_shape: missing"),
    (_set(0, "channels", 5), r"^conv0\.weights\.hex: expected 5 lines"),
])
def test_conv_manifest_errors_are_named(written, edit, match):
    _, path = written
    _edit_manifest(path, edit)
    with pytest.raises(ArtifactError, match=match) as info:
        load_artifact(path)
    assert str(info.value).startswith(("manifest.json: ", "conv0.")), str(info.value)


@pytest.mark.parametrize("kernel", [4, 2, 9])
def test_a_kernel_outside_1_3_5_7_is_named(written, kernel):
    """K in the manifest sets the width of the weight lines (K·K·C_in bits): the loader checks
    it before it reads the weight file, so a bad K is named as the kernel, not as a weight
    file of the wrong width."""
    _, path = written
    _edit_manifest(path, _set(0, "kernel", kernel))
    with pytest.raises(ArtifactError, match=rf"^manifest\.json: layers\[0\] \(conv0\)\.kernel: "
                                            rf"must be one of 1, 3, 5, 7 \(odd\), not {kernel}$"):
        load_artifact(path)


def test_a_conv_weight_file_counts_output_channels(written):
    _, path = written
    _edit_manifest(path, _set(0, "channels", 5))
    with pytest.raises(ArtifactError, match=r"^conv0\.weights\.hex: expected 5 lines \(one per "
                                            r"output channel\), found 3"):
        load_artifact(path)


def test_conv_after_dense_is_refused(tmp_path):
    """conv0 (1x4x4 -> 1x4x4), fc1 (16), out2: the manifest's first two layers swapped."""
    artifact = random_conv_artifact(5, in_shape=(1, 4, 4), layers=[
        ("conv", 1, 1, 1, 0), ("lif", 16), ("readout", 3)], input_kind="spike", time_steps=2)
    path = write_artifact(artifact, tmp_path / "net")
    load_artifact(path)  # valid as written
    _edit_manifest(path, lambda m: m["layers"].insert(0, m["layers"].pop(1)))
    with pytest.raises(ArtifactError, match=r"^manifest\.json: conv0\.kind: a conv layer takes "
                                            r"a feature map; it cannot follow the dense layer "
                                            r"'fc1'"):
        load_artifact(path)


def test_in_memory_chain_errors_are_named(seed):
    artifact = random_conv_artifact(seed, in_shape=(2, 6, 6), layers=[
        ("conv", 3, 3, 1, 1), ("pool", 2), ("readout", 4)], input_kind="multibit",
        input_bits=3)
    conv, pool, out = artifact.layers
    with pytest.raises(ArtifactError, match=r"pool1\.kind: a pool layer pools the spikes of a "
                                            r"conv layer; it cannot be the first layer"):
        Artifact((pool, out))
    bad = PoolLayer(name="pool1", in_shape=(3, 6, 5), kernel=2, time_steps=pool.time_steps)
    with pytest.raises(ArtifactError, match=r"pool1\.in_shape: must equal the previous layer's "
                                            r"out_shape \[3, 6, 6\], not \[3, 6, 5\]"):
        Artifact((conv, bad, out))
    for kernel in (1, 7):
        with pytest.raises(ArtifactError, match=rf"p\.kernel: must be an int with 2 <= kernel "
                                                rf"<= min\(H, W\) = 6, not {kernel}"):
            PoolLayer(name="p", in_shape=(3, 6, 6), kernel=kernel, time_steps=1)
    for key, value, match in [
            ("kernel", 4, r"c\.kernel: must be one of 1, 3, 5, 7"),
            ("stride", 3, r"c\.stride: must be 1 or 2, not 3"),
            ("padding", 3, r"c\.padding: must be an int with 0 <= padding < kernel = 3"),
            ("in_shape", (2, 6), r"c\.in_shape: must be 3 positive ints"),
            ("in_shape", (2, 0, 6), r"c\.in_shape: must be 3 positive ints"),
            ("in_shape", (2, 1, 6), None)]:
        fields = {**_fields(conv), "name": "c", key: value}
        if match is None:  # a 1-row map padded by 1 still holds a 3x3 kernel
            assert ConvLayer(**fields).out_shape == (3, 1, 6)
            continue
        with pytest.raises(ArtifactError, match=match):
            ConvLayer(**fields)
    with pytest.raises(ArtifactError, match=r"c\.in_shape: the 1x6 input padded by 0 is smaller "
                                            r"than the 3x3 kernel"):
        ConvLayer(**{**_fields(conv), "name": "c", "in_shape": (2, 1, 6), "padding": 0})


def test_bitspike_random_conv(tmp_path, capsys):
    from bitspike import cli

    out = tmp_path / "net"
    argv = ["random", "--conv", "-o", str(out), "--seed", "5", "--time-steps", "3", "--input",
            "spike"]
    assert cli.main(argv) == 0
    loaded = load_artifact(out)
    expected = random_conv_artifact(5, time_steps=3, input_kind="spike", input_bits=5)
    assert_same_artifact(loaded, expected)
    assert loaded.schema_version == 2 and loaded.input.kind == "spike"
    assert capsys.readouterr().out == (f"wrote {out}: {expected.summary()} (random, seed 5)\n")
    assert cli.main(argv) == 2  # exists, no --force
    assert "exists" in capsys.readouterr().err
