"""Atomic file writes: write a temporary sibling, then rename it over the target.

A reader never sees a half-written file, and a failure (an exception, a full disk, an
interrupt) leaves the previous file, or no file, in place. Every writer of a result file in
the project goes through these functions.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
    "default_mode",
]


def default_mode(directory: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` would give under the current umask.

    ``tempfile`` creates private (0600/0700) entries; results are meant to be shared like any
    other file the user writes, so they get the ordinary permissions before the rename.
    """
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit it is renamed to ``path``.

    For writers that want a file name (``torch.save``, ``savefig``). ``suffix`` lets a writer
    that picks a format from the extension see the right one (``suffix=".png"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            tmp.chmod(default_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """``obj`` as indented JSON with a final newline."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")
