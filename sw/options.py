"""Command-line options that several commands share, declared once.

Each ``add_*`` function adds one option to an :class:`argparse.ArgumentParser` with the
project's one spelling, metavar and help text; the command says only what its default is.
"""

from __future__ import annotations

import argparse

__all__ = ["FOLDING_HELP", "add_folding"]

#: What a folding is, in every command that takes one (parsed by :meth:`sw.folding.Folding.parse`).
FOLDING_HELP = ("SIMDxPE per layer, e.g. 64x8,64x1 (one value: every layer, clamped to its "
                "size)")


def add_folding(parser: argparse.ArgumentParser, default: str) -> argparse.Action:
    """``--folding SIMDxPE,...``; ``default`` says what the command does without it."""
    return parser.add_argument("--folding", default=None, metavar="SIMDxPE,...",
                               help=f"{FOLDING_HELP}; default: {default}")
