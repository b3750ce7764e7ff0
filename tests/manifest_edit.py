"""Editing a written artifact in place, for the loader's tests: one place for both edits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def rehash(path: Path, name: str):
    """Edit a data file *and* fix its hash, to reach the checks behind the hash check."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["hashes"][name] = "sha256:" + hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(path: Path, edit):
    """Apply ``edit`` to the parsed manifest.json and write it back."""
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
