"""Command-line options that several commands share, declared once.

Each ``add_*`` function adds one option to an :class:`argparse.ArgumentParser` with the
project's one spelling, metavar and help text; the command says only what its default is.
The ``*_int`` functions are argparse ``type=`` converters: a bad value is refused by argparse
with one line naming the option (``argument --limit: must be an int >= 1, not '0'``), exit 2,
before the command does any work. :func:`check_output_dir` refuses an output location that
cannot be written, before the work whose result would go there.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path

__all__ = ["FOLDING_HELP", "MAX_TIME_STEPS", "add_folding", "int_in", "positive_int",
           "check_output_dir", "HelpFormatter", "run_command", "os_error_message",
           "add_dataset_options"]

#: What a folding is, in every command that takes one (parsed by :meth:`sw.folding.Folding.parse`).
FOLDING_HELP = ("SIMDxPE per layer, e.g. 64x8,64x1 (one value: every layer, clamped to its "
                "size)")

#: The largest T a command takes (training, datasets, random networks): beyond it a dataset's
#: frames or a network's run time grow without any use.
MAX_TIME_STEPS = 1024


def add_folding(parser: argparse.ArgumentParser, default: str) -> argparse.Action:
    """``--folding SIMDxPE,...``; ``default`` says what the command does without it."""
    return parser.add_argument("--folding", default=None, metavar="SIMDxPE,...",
                               help=f"{FOLDING_HELP}; default: {default}")


def int_in(lo: int, hi: int | None = None):
    """An argparse type: an int in ``lo..hi`` (``hi`` None: no upper bound)."""
    want = f"an int >= {lo}" if hi is None else f"an int in {lo}..{hi}"

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, not {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {want}, not {text!r}")
        return value

    convert.__name__ = "int"  # argparse names the type in its own messages
    return convert


#: An int >= 1 (a count: samples, epochs, threads).
positive_int = int_in(1)


def check_output_dir(path) -> Path:
    """Refuse an output directory that cannot be made or written, before any work is done.

    ``path`` may exist (then it must be a writable directory) or not (then its nearest existing
    ancestor must be a writable directory, where the missing folders will be made). Raises the
    OSError the write would meet (``NotADirectoryError``, ``PermissionError``, read-only file
    system) naming the path in the way, which ``bitspike`` prints as one line.
    """
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        readonly = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        code = errno.EROFS if readonly else errno.EACCES
        raise OSError(code, os.strerror(code), str(probe))
    return path


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already says it.

    Flags (``store_true``) and options without a default (None: "not given") show none.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        # "is": a default of 0 is a default to show, unlike False (a flag) or None (not given)
        if ("default" in text.lower() or action.default is None or action.default is False
                or action.default is argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        return f"{text} (default: %(default)s)"


def run_command(run) -> int:
    """Run a command (``run() -> exit status``) with the one error path every entry point
    shares: Ctrl-C is ``interrupted`` (130); a closed pipe (``bitspike info A | head``) stops
    quietly (141, as a shell tool does); an OSError of the environment (unwritable, read-only
    or full disk, a directory where a file was expected) is one line naming the path (2)."""
    try:
        return int(run() or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Keep Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2


def os_error_message(exc: OSError) -> str:
    """``"<path>: <reason>"`` of an OSError (``"<reason>"`` when it names no path)."""
    reason = exc.strerror or str(exc)
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return ": ".join([*map(str, paths), reason]) if paths else reason


def add_dataset_options(parser) -> None:
    """The dataset options that shape the inputs (``sw.data.DatasetOptions``), declared once
    for ``bitspike datasets`` and ``bitspike train``: ``--downsample``, ``--bits``,
    ``--bin-us``, ``--limit``."""
    parser.add_argument("--downsample", type=positive_int, default=None,
                        help="spatial pooling factor k, dividing H and W: events by OR, pixels "
                             "by the block mean (default: the dataset's, 4 for 128x128 "
                             "sensors, else 1)")
    parser.add_argument("--bits", type=int_in(1, 16), default=None,
                        help="keep this many most significant bits of multi-bit pixels "
                             "(default: all)")
    parser.add_argument("--bin-us", type=positive_int, default=None,
                        help="event datasets: fixed time bins of this many microseconds "
                             "(default: T equal bins over each sample)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="at most this many samples per split, a seeded subset "
                             "(default: all)")
