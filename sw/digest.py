"""Content digests: the one typed value for a SHA-256 the project writes or compares.

A digest is written ``"sha256:<64 hex digits>"`` everywhere (manifest hashes, the checkpoint
digest an export records, ``accelerator.json``'s ``manifest_sha256``); :meth:`Sha256.parse` is
the one parser, and the board protocol carries the first 8 bytes (:meth:`Sha256.prefix`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

__all__ = ["Sha256"]

_TEXT = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Sha256:
    """A SHA-256 digest.

    Parameters
    ----------
    digest : bytes
        The 32 bytes.
    """

    digest: bytes

    def __post_init__(self):
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise ValueError(f"digest must be 32 bytes, not {self.digest!r}")

    @classmethod
    def of_bytes(cls, data: bytes) -> Sha256:
        return cls(hashlib.sha256(data).digest())

    @classmethod
    def of_file(cls, path: str | os.PathLike) -> Sha256:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return cls(h.digest())

    @classmethod
    def parse(cls, text) -> Sha256:
        """The digest written as ``"sha256:<64 lower-case hex digits>"``; ValueError otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"a digest must be a string 'sha256:<64 hex digits>', not {text!r}")
        match = _TEXT.fullmatch(text)
        if match is None:
            raise ValueError(f"a digest must be 'sha256:<64 hex digits>', not {text!r}")
        return cls(bytes.fromhex(match.group(1)))

    @property
    def hex(self) -> str:
        return self.digest.hex()

    def prefix(self, n: int = 8) -> bytes:
        """The first ``n`` bytes (what the board's INFO answer carries)."""
        return self.digest[:n]

    def __str__(self) -> str:
        return "sha256:" + self.digest.hex()
