"""sw.atomic: a failed write leaves the previous file (or none), never a partial one."""

from __future__ import annotations

import json

import pytest

from sw.atomic import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_writes_and_replaces(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    atomic_write_json(tmp_path / "f.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "f.json").read_text()) == {"a": [1, 2]}
    assert sorted(x.name for x in tmp_path.rglob("*")) == ["f.json", "f.txt", "sub"]


def test_failure_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "f.png"
    p.write_text("old")
    with pytest.raises(RuntimeError, match="writer failed"), atomic_path(p, suffix=".png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_text("partial")
        raise RuntimeError("writer failed")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.png"]


def test_results_get_the_permissions_a_plain_write_gets(tmp_path):
    """tempfile makes private 0600 files and 0700 folders; results are shared like any file."""
    import os

    from sw.artifact import write_artifact
    from sw.randnet import random_artifact

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "report.json", {"ok": True})
        (tmp_path / "plain").write_text("x")
        net = write_artifact(random_artifact(1, sizes=[5, 3, 2]), tmp_path / "net")
    finally:
        os.umask(old)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "plain").stat().st_mode & 0o777 == 0o644
    assert net.stat().st_mode & 0o777 == 0o755
    assert (net / "manifest.json").stat().st_mode & 0o777 == 0o644
