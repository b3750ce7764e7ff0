"""Artifact writer/loader: round trip, validation of every kind of bad input, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from manifest_edit import edit_manifest as _edit_manifest
from manifest_edit import rehash as _rehash

from sw.artifact import (
    Artifact,
    ArtifactError,
    InputSpec,
    LIFLayer,
    ReadoutLayer,
    load_artifact,
    weights_from_hex_lines,
    weights_to_hex_lines,
    write_artifact,
)
from sw.fixedpoint import FixedPoint
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_inputs


@pytest.fixture
def written(tmp_path, seed):
    artifact = random_artifact(seed, sizes=[13, 6, 4], time_steps=3, input_kind="multibit",
                               input_bits=4, step_gain=True)
    return artifact, write_artifact(artifact, tmp_path / "net")


def test_round_trip_is_exact(written, seed):
    artifact, path = written
    loaded = load_artifact(path)
    assert loaded.summary() == artifact.summary()
    for a, b in zip(artifact.layers, loaded.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights)
        assert a.step_gain == b.step_gain and a.input == b.input
    x = random_inputs(artifact, 20, seed)
    np.testing.assert_array_equal(GoldenModel(artifact).run(x).scores,
                                  GoldenModel(loaded).run(x).scores)


def test_weight_hex_round_trip_and_order(seed):
    rng = np.random.default_rng(seed)
    for n in (1, 3, 4, 5, 8, 63, 64, 65):
        w = rng.integers(0, 2, size=(4, n), dtype=np.uint8)
        lines = weights_to_hex_lines(w)
        assert all(len(line) == -(-n // 4) for line in lines)
        np.testing.assert_array_equal(weights_from_hex_lines(lines, 4, n), w)
    # bit i is input i: input 0 only -> "01", input 4 only (N=5) -> "10"
    assert weights_to_hex_lines(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]])) == ["01", "10"]


def test_written_files_are_the_documented_ones(written):
    artifact, path = written
    names = sorted(p.name for p in path.iterdir())
    assert names == ["fc0.params.csv", "fc0.weights.hex", "manifest.json", "out1.params.csv",
                     "out1.weights.hex"]
    assert (path / "fc0.params.csv").read_text().splitlines()[0] == "bias,threshold,connected"
    assert (path / "out1.params.csv").read_text().splitlines()[0] == "scale,offset"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["schema"] == "bitspike-artifact" and manifest["schema_version"] == 1
    assert manifest["layers"][0]["membrane"]["width"] == artifact.layers[0].membrane.width


# -- corrupted or inconsistent artifacts: each gives an error naming file and field -----------

def test_truncated_hex_file_is_caught_by_its_hash(written):
    _, path = written
    data = (path / "fc0.weights.hex").read_bytes()
    (path / "fc0.weights.hex").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"^fc0\.weights\.hex: content hash sha256:\w+ does "
                                            r"not match manifest\.json's"):
        load_artifact(path)


def test_truncated_hex_file_with_matching_hash_is_caught_by_its_size(written):
    _, path = written
    lines = (path / "fc0.weights.hex").read_text().splitlines()
    (path / "fc0.weights.hex").write_text("\n".join(lines[:-1]) + "\n")
    _rehash(path, "fc0.weights.hex")
    with pytest.raises(ArtifactError, match=r"^fc0\.weights\.hex: expected 6 lines \(one per "
                                            r"neuron\), found 5"):
        load_artifact(path)


def test_short_hex_line_is_refused(written):
    _, path = written
    lines = (path / "fc0.weights.hex").read_text().splitlines()
    lines[2] = lines[2][1:]
    (path / "fc0.weights.hex").write_text("\n".join(lines) + "\n")
    _rehash(path, "fc0.weights.hex")
    with pytest.raises(ArtifactError, match=r"^fc0\.weights\.hex: line 3: expected 4 hex digits "
                                            r"\(13 weight bits\)"):
        load_artifact(path)


def test_padding_bits_must_be_zero(written):
    _, path = written
    lines = (path / "fc0.weights.hex").read_text().splitlines()
    lines[0] = "f" + lines[0][1:]  # 13 inputs: the top 3 bits of 4 hex digits are padding
    (path / "fc0.weights.hex").write_text("\n".join(lines) + "\n")
    _rehash(path, "fc0.weights.hex")
    with pytest.raises(ArtifactError, match=r"line 1: bits above input 12 must be 0"):
        load_artifact(path)


def test_wrong_hash_in_manifest(written):
    _, path = written
    _edit_manifest(path, lambda m: m["hashes"].__setitem__("out1.params.csv", "sha256:" + "0" * 64))
    with pytest.raises(ArtifactError, match=r"^out1\.params\.csv: content hash"):
        load_artifact(path)


def test_wrong_sizes_in_manifest(written):
    _, path = written
    _edit_manifest(path, lambda m: m["layers"][0].__setitem__("neurons", 7))
    with pytest.raises(ArtifactError, match=r"^fc0\.weights\.hex: expected 7 lines"):
        load_artifact(path)


def test_inconsistent_layer_chain(written):
    _, path = written

    def edit(m):
        m["layers"][1]["inputs"] = 9  # the weight file holds 6 inputs per line: 2 hex digits
    _edit_manifest(path, edit)
    with pytest.raises(ArtifactError, match=r"^out1\.weights\.hex: line 1: expected 3 hex digits "
                                            r"\(9 weight bits\)"):
        load_artifact(path)


@pytest.mark.parametrize("field", ["membrane", "reset", "leak_shift", "step_gain", "files",
                                   "inputs", "input"])
def test_missing_field(written, field):
    _, path = written
    _edit_manifest(path, lambda m: m["layers"][0].pop(field))
    with pytest.raises(ArtifactError, match=rf"^manifest\.json: layers\[0\] \(fc0\)\.{field}"):
        load_artifact(path)


def test_missing_top_level_field(written):
    _, path = written
    _edit_manifest(path, lambda m: m.pop("hashes"))
    with pytest.raises(ArtifactError, match=r"^manifest\.json: hashes: missing"):
        load_artifact(path)


@pytest.mark.parametrize("version", [0, 3, "1", "2", None, 1.0, 2.0, True])
def test_unknown_schema_version(written, version):
    _, path = written
    _edit_manifest(path, lambda m: m.__setitem__("schema_version", version))
    with pytest.raises(ArtifactError, match=r"^manifest\.json: schema_version: unknown schema "
                                            r"version .*reads versions 1, 2"):
        load_artifact(path)


@pytest.mark.parametrize("edit,match", [
    # one bit above what the format itself needs (signed: 2 at least), far below the bound
    (lambda m: m["layers"][0]["membrane"].__setitem__(
        "width", max(m["layers"][0]["membrane"]["frac"], m["layers"][0]["leak_shift"] or 0,
                     1) + 1),
     r"fc0\.membrane\.width: width \d+ is below the \d+ bits the proven bound"),
    (lambda m: m["layers"][0]["membrane"].__setitem__("width", 99),
     r"membrane: width must be between 1 and 62, not 99"),
    (lambda m: m["layers"][0].__setitem__("reset", "sometimes"),
     r"fc0\.reset: must be 'hard' or 'soft', not 'sometimes'"),
    (lambda m: m["layers"][0].__setitem__("leak_shift", 0),
     r"fc0\.leak_shift: must be null \(no leak\) or an int k with 1 <= k"),
    (lambda m: m["layers"][0].__setitem__("step_gain", [1, 0, 1]),
     r"fc0\.step_gain: must be 3 ints >= 1"),
    (lambda m: m["layers"][0]["input"].__setitem__("bits", 17),
     r"input\.bits: must be between 1 and 16 for multibit inputs, not 17"),
    (lambda m: m["layers"][1]["input"].__setitem__("kind", "analog"),
     r"input\.kind: must be 'spike' or 'multibit', not 'analog'"),
    (lambda m: m["layers"][1].__setitem__("time_steps", 5),
     r"out1\.step_gain: must be 5 ints|out1\.time_steps"),
    (lambda m: m["layers"][0].__setitem__("kind", "conv"),
     r"kind: expected 'lif' or 'readout', found 'conv'"),
    (lambda m: m["layers"].reverse(),
     r"out1\.kind: a readout must be the last layer"),
    (lambda m: m["layers"][0]["membrane"].__setitem__("signed", "yes"),
     r"membrane\.signed: expected true or false, found 'yes'"),
    (lambda m: m["layers"][0].__setitem__("inputs", True),
     r"fc0\)\.inputs: expected a positive int, found True"),
    # JSON true is no gain (it was read as 1 before the check)
    (lambda m: m["layers"][0].__setitem__("step_gain", [True, 1, 1]),
     r"fc0\.step_gain: must be 3 ints >= 1 \(one per time step\), not \(True, 1, 1\)"),
    (lambda m: m["layers"][0].__setitem__("step_gain", [1.5, 1, 1]),
     r"fc0\.step_gain: must be 3 ints >= 1"),
    (lambda m: m["hashes"].__setitem__("fc0.weights.hex", "sha256:" + "A" * 64),
     r"^manifest\.json: hashes\.fc0\.weights\.hex: expected 'sha256:<64 lower-case hex "
     r"digits>', found 'sha256:AAAA"),
    (lambda m: m["hashes"].__setitem__("fc0.weights.hex", 12),
     r"^manifest\.json: hashes\.fc0\.weights\.hex: expected 'sha256:<64 lower-case hex "
     r"digits>', found 12"),
])
def test_out_of_range_or_mistyped_manifest_values(written, edit, match):
    _, path = written
    _edit_manifest(path, edit)
    with pytest.raises(ArtifactError, match=match) as info:
        load_artifact(path)
    assert str(info.value).startswith(("manifest.json", "fc0.", "out1."))


@pytest.mark.parametrize("row,match", [
    ("1,2", r"line 2: expected 3 comma-separated integers"),
    ("1,2,2", r"fc0\.connected: must hold 0 or 1"),
    ("1,x,1", r"line 2: expected an integer for 'threshold', found 'x'"),
    # a control character str.strip() would drop but int() refuses (found by the fuzz)
    ("1,\x1f34,1", r"line 2: expected an integer for 'threshold', found '\\x1f34'"),
    (f"{2**70},0,1", r"line 2: bias = \d+ is out of range"),
    (f"{2**40},0,1", r"fc0\.membrane\.width: width \d+ is below the \d+ bits"),
])
def test_out_of_range_params(written, row, match):
    _, path = written
    lines = (path / "fc0.params.csv").read_text().splitlines()
    lines[1] = row
    (path / "fc0.params.csv").write_text("\n".join(lines) + "\n")
    _rehash(path, "fc0.params.csv")
    with pytest.raises(ArtifactError, match=match):
        load_artifact(path)


def test_negative_readout_scale_is_refused(written):
    _, path = written
    lines = (path / "out1.params.csv").read_text().splitlines()
    lines[1] = "-3,0"
    (path / "out1.params.csv").write_text("\n".join(lines) + "\n")
    _rehash(path, "out1.params.csv")
    with pytest.raises(ArtifactError, match=r"out1\.scale: must be >= 0"):
        load_artifact(path)


def test_wrong_params_header(written):
    _, path = written
    text = (path / "fc0.params.csv").read_text().replace("bias,threshold", "threshold,bias", 1)
    (path / "fc0.params.csv").write_text(text)
    _rehash(path, "fc0.params.csv")
    with pytest.raises(ArtifactError, match=r"^fc0\.params\.csv: line 1: expected the header "
                                            r"line 'bias,threshold,connected'"):
        load_artifact(path)


def test_missing_files_and_directories(written, tmp_path):
    _, path = written
    with pytest.raises(ArtifactError, match=r"no artifact directory at .*nowhere"):
        load_artifact(tmp_path / "nowhere")
    (path / "out1.weights.hex").unlink()
    with pytest.raises(ArtifactError, match=r"^out1\.weights\.hex: missing from .* \(named by "
                                            r"layers\[1\] \(out1\)\.files\.weights\)"):
        load_artifact(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"^manifest\.json: is not valid JSON"):
        load_artifact(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"^manifest\.json: missing from"):
        load_artifact(path)


def test_file_names_cannot_escape_the_directory(written):
    _, path = written
    _edit_manifest(path, lambda m: m["layers"][0]["files"].__setitem__("params", "../x.csv"))
    with pytest.raises(ArtifactError, match=r"files\.params: expected a plain file name"):
        load_artifact(path)


# -- hostile inputs: refused before they can hang the loader or exhaust memory -----------------

def test_symlink_to_a_regular_file_is_read(written, tmp_path):
    _, path = written
    elsewhere = tmp_path / "elsewhere.csv"
    (path / "fc0.params.csv").rename(elsewhere)
    (path / "fc0.params.csv").symlink_to(elsewhere)
    load_artifact(path)


@pytest.mark.parametrize("name", ["manifest.json", "fc0.weights.hex"])
def test_files_larger_than_their_sizes_allow_are_not_read(written, tmp_path, name):
    _, path = written
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(1 << 40)  # sparse: a terabyte that takes no disk
    (path / name).unlink()
    (path / name).symlink_to(big)
    with pytest.raises(ArtifactError, match=rf"^{name}: is {1 << 40} bytes, more than the "
                                            r"\d+ its sizes allow"):
        load_artifact(path)


def test_manifest_cap_is_one_mebibyte(written):
    _, path = written
    _edit_manifest(path, lambda m: m["metadata"].__setitem__("pad", "x" * (1 << 20)))
    with pytest.raises(ArtifactError, match=r"^manifest\.json: is \d+ bytes, more than the "
                                            r"1048576"):
        load_artifact(path)


def test_layer_sizes_are_checked_before_reading(written):
    _, path = written
    # 2**17 x 2**17 weights would be a 4 GiB hex file and a 16 GiB array
    _edit_manifest(path, lambda m: m["layers"][0].update(inputs=2**16, neurons=2**16))
    with pytest.raises(ArtifactError, match=r"^manifest\.json: layers\[0\] \(fc0\)\.neurons: "
                                            r"inputs x neurons = 4294967296 is above the limit "
                                            r"MAX_SYNAPSES = 16777216"):
        load_artifact(path)
    with pytest.raises(ArtifactError, match=r"^fc\.inputs: 70000 is above the limit MAX_INPUTS"):
        _lif(inputs=70000, weights=np.zeros((2, 70000), np.uint8))


def test_duplicate_keys_and_bad_names_are_refused(written):
    _, path = written
    text = (path / "manifest.json").read_text().replace('"schema": ', '"schema": 1, "schema": ', 1)
    (path / "manifest.json").write_text(text)
    with pytest.raises(ArtifactError, match=r"^manifest\.json: the key 'schema' appears twice"):
        load_artifact(path)
    (path / "manifest.json").write_text(text.replace('"schema": 1, ', "", 1))
    for bad in ("a\u0000b", "", "manifest.json"):
        _edit_manifest(path, lambda m, bad=bad: m["layers"][0]["files"].__setitem__("params", bad))
        with pytest.raises(ArtifactError, match=r"files\.params: expected a plain file name"):
            load_artifact(path)


@pytest.mark.parametrize("field,value", [("inputs", "13"), ("neurons", 6.0),
                                         ("time_steps", False), ("leak_shift", "2"),
                                         ("leak_shift", 2.0)])
def test_strings_floats_and_bools_are_not_ints(written, field, value):
    _, path = written
    _edit_manifest(path, lambda m: m["layers"][0].__setitem__(field, value))
    with pytest.raises(ArtifactError, match=rf"fc0\)?\.{field}: .*{re.escape(repr(value))}"):
        load_artifact(path)


# -- atomic writes ------------------------------------------------------------------------------

def test_failed_write_leaves_no_half_written_artifact(tmp_path, monkeypatch, seed):
    artifact = random_artifact(seed, sizes=[5, 4, 3])
    calls = {"n": 0}
    real = Path.write_bytes

    def failing(self, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(artifact, tmp_path / "net")
    assert list(tmp_path.iterdir()) == [], "no artifact and no temporary directory left behind"


def test_failed_overwrite_keeps_the_previous_artifact(tmp_path, monkeypatch, seed):
    old = random_artifact(seed, sizes=[5, 4, 3])
    path = write_artifact(old, tmp_path / "net")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    monkeypatch.setattr(Path, "write_text", lambda self, text: (_ for _ in ()).throw(
        OSError("no space")))
    with pytest.raises(OSError, match="no space"):
        write_artifact(random_artifact(seed + 1, sizes=[5, 4, 3]), path, overwrite=True)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["net"]


def test_existing_artifact_is_not_replaced_without_overwrite(written):
    artifact, path = written
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        write_artifact(artifact, path)
    write_artifact(artifact, path, overwrite=True)
    assert load_artifact(path).summary() == artifact.summary()


# -- in-memory validation messages ----------------------------------------------------------------

def _lif(**changes):
    kw = dict(name="fc", inputs=4, neurons=2, input=InputSpec("spike"), time_steps=2,
              membrane=FixedPoint(16, 2), leak_shift=None, reset="hard", step_gain=(1, 1),
              weights=np.zeros((2, 4), np.uint8), bias=[0, 0], threshold=[1, 1],
              connected=[1, 1])
    kw.update(changes)
    return LIFLayer(**kw)


def _readout(**changes):
    kw = dict(name="out", inputs=2, neurons=2, input=InputSpec("spike"), time_steps=2,
              step_gain=(1, 1), weights=np.zeros((2, 2), np.uint8), scale=[1, 1],
              offset=[0, 0], score=FixedPoint(8))
    kw.update(changes)
    return ReadoutLayer(**kw)


@pytest.mark.parametrize("changes,match", [
    (dict(name="FC"), r"name: must match"),
    (dict(weights=np.zeros((3, 4))), r"fc\.weights: must be an integer array|must have shape"),
    (dict(weights=np.zeros((2, 4), np.uint8) + 2), r"fc\.weights: must hold bits"),
    (dict(bias=[0.5, 1.0]), r"fc\.bias: must be an integer array, not dtype float64"),
    (dict(threshold=[1]), r"fc\.threshold: must have shape \(2,\), not \(1,\)"),
    (dict(membrane=FixedPoint(16, 2, signed=False)), r"fc\.membrane: must be a signed"),
    (dict(time_steps=0), r"fc\.time_steps: must be a positive int, not 0"),
])
def test_layer_validation_messages(changes, match):
    with pytest.raises(ArtifactError, match=match):
        _lif(**changes)


def test_network_validation_messages():
    with pytest.raises(ArtifactError, match=r"must hold at least one layer"):
        Artifact(())
    with pytest.raises(ArtifactError, match=r"fc\.kind: the last layer must be a readout"):
        Artifact((_lif(),))
    with pytest.raises(ArtifactError, match=r"out\.kind: a readout must be the last layer"):
        Artifact((_readout(), _readout(name="out2")))
    with pytest.raises(ArtifactError, match=r"out\.inputs: must equal the previous layer's "
                                            r"neurons 2, not 3"):
        Artifact((_lif(), _readout(inputs=3, weights=np.zeros((2, 3), np.uint8))))
    with pytest.raises(ArtifactError, match=r"only the first layer may take multibit"):
        Artifact((_lif(), _readout(input=InputSpec("multibit", 2))))
    with pytest.raises(ArtifactError, match=r"layer names must be unique"):
        Artifact((_lif(name="out"), _readout()))
    with pytest.raises(ArtifactError, match=r"out\.time_steps: must equal the first layer's "
                                            r"time_steps 2, not 3"):
        Artifact((_lif(), _readout(time_steps=3, step_gain=(1, 1, 1))))


# -- each layer's own bounds and widths (docs/arithmetic.md §5, §6) ------------------------------

def _signed_width(max_abs: int) -> int:
    return max(2, int(max_abs).bit_length() + 1)


def _lif_facts(layer):
    """§5 written out neuron by neuron, independently of sw.fixedpoint."""
    xmax = layer.inputs * ((1 << layer.input.bits) - 1)
    f = layer.membrane.frac
    imax = max(layer.step_gain) * max(int(c) * (xmax << f) + abs(int(b))
                                      for c, b in zip(layer.connected, layer.bias, strict=True))
    growth = max(0, -int(min(layer.threshold))) if layer.reset == "soft" else 0
    bound = layer.time_steps * (imax + growth)
    largest = max([bound] + [abs(int(v)) for v in (*layer.threshold, *layer.bias)])
    width = max(_signed_width(largest), f + 1, (layer.leak_shift or 0) + 1)
    return dict(synaptic_width=_signed_width(xmax), current_bound=imax, membrane_bound=bound,
                required_width=width)


def _readout_facts(layer):
    """§6 written out class by class."""
    xmax = layer.inputs * ((1 << layer.input.bits) - 1)
    s = xmax * sum(layer.step_gain)
    score = max(int(a) * s + abs(int(c)) for a, c in zip(layer.scale, layer.offset, strict=True))
    return dict(synaptic_width=_signed_width(xmax), sum_bound=s, sum_width=_signed_width(s),
                score_bound=score, required_score_width=_signed_width(score))


def test_layer_widths_are_the_rules(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        art = random_artifact(rng, width_slack=int(rng.integers(0, 3)))
        for layer in art.lif_layers:
            assert {k: getattr(layer, k) for k in _lif_facts(layer)} == _lif_facts(layer)
            assert layer.synaptic_bound == layer.inputs * layer.input.max_value
            assert layer.membrane.width >= layer.required_width
        ro = art.readout
        assert {k: getattr(ro, k) for k in _readout_facts(ro)} == _readout_facts(ro)
        assert ro.score.width >= ro.required_score_width


def test_required_width_is_the_validation_boundary(seed):
    """A layer holds at exactly its required widths, and not one bit below."""
    art = random_artifact(seed, sizes=[11, 5, 3], frac_bits=3, leak_shift=2)
    fc0, out = art.layers
    common = {k: getattr(fc0, k) for k in ("name", "inputs", "neurons", "input", "time_steps",
                                            "leak_shift", "reset", "step_gain", "weights",
                                            "bias", "threshold", "connected")}
    need = fc0.required_width
    assert LIFLayer(membrane=FixedPoint(need, 3), **common).membrane.width == need
    with pytest.raises(ArtifactError, match=rf"fc0\.membrane\.width: width {need - 1} is below "
                                            rf"the {need} bits the proven bound "
                                            rf"{fc0.membrane_bound} \("):
        LIFLayer(membrane=FixedPoint(need - 1, 3), **common)
    common = {k: getattr(out, k) for k in ("name", "inputs", "neurons", "input", "time_steps",
                                            "step_gain", "weights", "scale", "offset")}
    need = out.required_score_width
    assert ReadoutLayer(score=FixedPoint(need), **common).score.width == need
    with pytest.raises(ArtifactError, match=rf"out1\.score\.width: width {need - 1} is below "
                                            rf"the {need} bits the proven score bound "
                                            rf"{out.score_bound} needs"):
        ReadoutLayer(score=FixedPoint(need - 1), **common)


def test_required_width_keeps_the_format_floors():
    """A layer whose bound needs 2 bits still needs W > F and W > k."""
    quiet = dict(connected=[0, 0], bias=[0, 0], threshold=[1, 1])
    assert _lif(**quiet).membrane_bound == 0
    assert _lif(**quiet, membrane=FixedPoint(16, 0)).required_width == 2
    assert _lif(**quiet, membrane=FixedPoint(16, 6)).required_width == 7
    assert _lif(**quiet, membrane=FixedPoint(16, 6), leak_shift=9).required_width == 10


def test_step_gain_takes_numpy_ints_and_keeps_python_ints():
    layer = _lif(step_gain=np.array([1, 2]))
    assert layer.step_gain == (1, 2) and all(type(g) is int for g in layer.step_gain)
    with pytest.raises(ArtifactError, match=r"fc\.step_gain: must be 2 ints >= 1"):
        _lif(step_gain=(1, 2.0))
