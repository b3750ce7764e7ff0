"""Fuzzing the artifact loader: every mutation of a valid artifact is refused with an
ArtifactError naming its file, or loads to an artifact the golden model runs; none hangs and
none raises anything else (issue 11, item 3). Then each class of hostile input through
``bitspike info`` (one ``error:`` line, exit 2)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_edit import rehash as _rehash

from sw.artifact import ArtifactError, load_artifact, write_artifact
from sw.golden import GoldenModel
from sw.randnet import random_artifact, random_conv_artifact, random_inputs

FILES = ["manifest.json", "fc0.weights.hex", "fc0.params.csv", "out1.weights.hex",
         "out1.params.csv"]
DATA = FILES[1:]
EXAMPLES = 500
CASE_SECONDS = 5  # a load takes milliseconds; anything near this is a hang
#: a golden run of the loaded artifact: milliseconds, but a conv layer's first run in a process
#: compiles its kernel for the artifact's state type (numba, tens of seconds on a busy machine)
RUN_SECONDS = 180


class Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise Hang()


def _json_paths(obj, prefix=()):
    """Every path into the manifest (dict keys and list indices), the root excluded."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(
        obj, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _json_paths(value, (*prefix, key))


# Replacement values: other types, huge and edge numbers, and raw JSON text that json.dumps
# would not write (a 5000-digit int, deep nesting), spliced in textually.
_RAW = {
    "int5000": "9" * 5000,
    "int70": "1" + "0" * 70,
    "deep40": "[" * 40 + "]" * 40,
    "deep100k": "[" * 100_000 + "]" * 100_000,
    "objdeep": '{"a":' * 50 + "1" + "}" * 50,
}
VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2, 62, 63, 1.0, 1.5, -0.0, "", "1", "x",
                     [], {}, [1], {"a": 1}, 2**31, 2**63, 10**18, 2**40, 10**30,
                     float("inf"), float("nan")]),
    st.sampled_from(sorted(_RAW)).map(lambda k: ("raw", k)),
    st.integers(), st.text(max_size=8),
)


@st.composite
def mutations(draw, manifest, files=tuple(FILES)):
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "json", "json-delete",
                                 "dev-zero", "fifo", "directory", "missing", "symlink-big"]))
    name = draw(st.sampled_from(files))
    if kind == "json":
        paths = list(_json_paths(manifest))
        return (kind, "manifest.json", draw(st.sampled_from(paths)), draw(VALUES))
    if kind == "json-delete":
        return (kind, "manifest.json", draw(st.sampled_from(list(_json_paths(manifest)))))
    if kind in ("flip", "truncate", "extend"):
        # the data file's hash fixed after the edit too, or the hash check alone would catch it
        rehash = name != "manifest.json" and draw(st.booleans())
        pos = draw(st.integers(0, 10_000))
        if kind == "flip":
            return (kind, name, pos, draw(st.integers(1, 255)), rehash)
        if kind == "extend":
            return (kind, name, draw(st.binary(min_size=1, max_size=64)), rehash)
        return (kind, name, pos, rehash)
    return (kind, name)


def _apply(path: Path, mutation, manifest):
    kind, name = mutation[0], mutation[1]
    target = path / name
    if kind == "json":
        m = copy.deepcopy(manifest)
        *parents, last = mutation[2]
        obj = m
        for key in parents:
            obj = obj[key]
        value = mutation[3]
        raw = isinstance(value, tuple)
        obj[last] = "@@RAW@@" if raw else value
        text = json.dumps(m)
        if raw:
            text = text.replace('"@@RAW@@"', _RAW[value[1]])
        target.write_text(text)
    elif kind == "json-delete":
        m = copy.deepcopy(manifest)
        *parents, last = mutation[2]
        obj = m
        for key in parents:
            obj = obj[key]
        del obj[last]
        target.write_text(json.dumps(m))
    elif kind in ("flip", "truncate", "extend"):
        data = bytearray(target.read_bytes())
        if kind == "flip":
            data[mutation[2] % len(data)] ^= mutation[3]
        elif kind == "truncate":
            del data[mutation[2] % len(data):]
        else:
            data += mutation[2]
        target.write_bytes(bytes(data))
        if mutation[-1]:
            _rehash(path, name)
    elif kind == "dev-zero":
        target.unlink()
        target.symlink_to("/dev/zero")
    elif kind == "fifo":
        target.unlink()
        os.mkfifo(target)
    elif kind == "directory":
        target.unlink()
        target.mkdir()
    elif kind == "missing":
        target.unlink()
    elif kind == "symlink-big":
        # a regular file far above any size the manifest allows (sparse: no disk used)
        big = path.parent / f"{path.name}-big"
        with open(big, "wb") as f:
            f.truncate(1 << 40)
        target.unlink()
        target.symlink_to(big)


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    artifact = random_artifact(7, sizes=[9, 5, 3], time_steps=2, input_kind="multibit",
                               input_bits=3, step_gain=True)
    path = write_artifact(artifact, tmp_path_factory.mktemp("fuzz") / "valid")
    return path, json.loads((path / "manifest.json").read_text())


@pytest.fixture(scope="module")
def valid_conv(tmp_path_factory):
    """A conv network (schema version 2): conv0, pool1 (no files), fc2, out3."""
    artifact = random_conv_artifact(7, in_shape=(2, 5, 4), layers=[
        ("conv", 3, 3, 1, 1), ("pool", 2), ("lif", 4), ("readout", 3)], time_steps=2,
        input_kind="multibit", input_bits=3, step_gain=True)
    path = write_artifact(artifact, tmp_path_factory.mktemp("fuzz") / "valid")
    return path, json.loads((path / "manifest.json").read_text())


def test_loader_fuzz_refuses_or_loads_and_never_hangs(valid, seed, tmp_path):
    _fuzz(*valid, FILES, EXAMPLES, seed, tmp_path)


def test_loader_fuzz_of_a_conv_artifact(valid_conv, seed, tmp_path):
    source, manifest = valid_conv
    files = sorted(p.name for p in source.iterdir())
    assert manifest["schema_version"] == 2 and len(files) == 7
    _fuzz(source, manifest, files, EXAMPLES // 2, seed, tmp_path)


def _fuzz(source, manifest, files, examples, seed, tmp_path):
    results: Counter = Counter()
    failures = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutation=mutations(manifest, tuple(files)))
    def case(mutation):
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        path = work / "a"
        shutil.copytree(source, path)
        _apply(path, mutation, manifest)
        old = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try:
            art = load_artifact(path)
            signal.setitimer(signal.ITIMER_REAL, RUN_SECONDS)
            x = random_inputs(art, 3, seed)
            GoldenModel(art).run(x)
            results["loaded and ran"] += 1
        except ArtifactError as exc:
            # named: the message starts with the file (or the directory) it is about
            assert exc.file and str(exc).startswith(exc.file), (mutation, str(exc))
            results[f"refused: {exc.file}"] += 1
        except Hang:
            failures.append(("hang", mutation))
            raise
        except Exception as exc:
            failures.append((type(exc).__name__, mutation))
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            shutil.rmtree(work)

    hypothesis.seed(seed)(case)()
    tried = sum(results.values())
    print(f"loader fuzz: {tried} mutations, {dict(sorted(results.items()))}, "
          f"0 crashes, 0 hangs")
    assert tried >= examples // 2 and not failures, (tried, results, failures)
    # the fuzz reaches both outcomes: mutations that keep a valid artifact and refusals
    assert results["loaded and ran"] > 0 and tried > results["loaded and ran"], results


# -- each class of hostile input through the command line ----------------------------------------

def _edit(path: Path, edit):
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))


def _raw(path: Path, edit, raw):
    _edit(path, lambda m: edit(m, "@@RAW@@"))
    text = (path / "manifest.json").read_text().replace('"@@RAW@@"', raw)
    (path / "manifest.json").write_text(text)


def _replace(path: Path, name: str, make):
    (path / name).unlink()
    make(path / name)


BAD = {
    "manifest-fifo": (lambda p: _replace(p, "manifest.json", os.mkfifo),
                      r"manifest\.json: expected a regular file, found a FIFO"),
    "data-dev-zero": (lambda p: _replace(p, "fc0.weights.hex",
                                         lambda t: t.symlink_to("/dev/zero")),
                      r"fc0\.weights\.hex: expected a regular file, found a device"),
    "manifest-directory": (lambda p: _replace(p, "manifest.json", Path.mkdir),
                           r"manifest\.json: expected a regular file, found a directory"),
    "data-fifo": (lambda p: _replace(p, "out1.params.csv", os.mkfifo),
                  r"out1\.params\.csv: expected a regular file, found a FIFO"),
    "terabytes": (lambda p: _edit(p, lambda m: m["layers"][0].update(inputs=2**20,
                                                                     neurons=2**20)),
                  r"manifest\.json: layers\[0\] \(fc0\)\.inputs: 1048576 is above the limit"),
    "long-int": (lambda p: _raw(p, lambda m, r: m["layers"][0].__setitem__("inputs", r),
                                "9" * 5000),
                 r"manifest\.json: .*an integer of 5000 digits"),
    "deep-json": (lambda p: _raw(p, lambda m, r: m["metadata"].__setitem__("x", r),
                                 "[" * 100_000 + "]" * 100_000),
                  r"manifest\.json: is not valid JSON: nested deeper than 32"),
    "string-int": (lambda p: _edit(p, lambda m: m["layers"][0].__setitem__("neurons", "5")),
                   r"manifest\.json: layers\[0\] \(fc0\)\.neurons: expected a positive int, "
                   r"found '5'"),
    "bool-int": (lambda p: _edit(p, lambda m: m["layers"][0]["membrane"].__setitem__(
        "frac", True)), r"manifest\.json: layers\[0\] \(fc0\)\.membrane\.frac: expected an int"),
    "float-version": (lambda p: _edit(p, lambda m: m.__setitem__("schema_version", 1.0)),
                      r"manifest\.json: schema_version: unknown schema version 1\.0"),
    "bool-version": (lambda p: _edit(p, lambda m: m.__setitem__("schema_version", True)),
                     r"manifest\.json: schema_version: unknown schema version True"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_info_refuses_each_class_with_one_error_line(valid, tmp_path, case):
    import re

    make, pattern = BAD[case]
    path = tmp_path / "a"
    shutil.copytree(valid[0], path)
    make(path)
    out = subprocess.run([sys.executable, "-m", "bitspike", "info", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert re.match(pattern, lines[0][len("error: "):]), lines[0]
    assert out.stdout == ""
