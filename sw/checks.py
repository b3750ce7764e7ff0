"""Parameter checks shared by every layer of the project: the one place that says what an int,
a bool or a choice is, and how a bad value is reported.

An int is an ``int`` and not a ``bool`` (Python's ``True`` is an ``int``); a failed type check
raises ``TypeError``, a failed range or relation check ``ValueError``, and the message names the
parameter and shows the value with ``!r``. Nothing here imports numpy, torch or amaranth.
"""

from __future__ import annotations

__all__ = ["is_int", "is_real", "check_int", "check_optional_int", "check_bool", "check_choice",
           "check_step_gain"]


def is_int(value) -> bool:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value) -> bool:
    """True for an ``int`` or ``float`` that is not a ``bool`` (a real number parameter)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` if it is an int in ``lo..hi``; raise TypeError/ValueError naming it."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if lo is not None and value < lo:
        if hi is None:
            raise ValueError(f"{name} must be >= {lo}, not {value!r}")
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
    if hi is not None and value > hi:
        if lo is None:
            raise ValueError(f"{name} must be <= {hi}, not {value!r}")
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value!r}")
    return value


def check_optional_int(name: str, value, lo: int | None = None,
                       hi: int | None = None) -> int | None:
    """:func:`check_int`, with ``None`` allowed (``must be an int or None``)."""
    if value is None:
        return None
    if not is_int(value):
        raise TypeError(f"{name} must be an int or None, not {value!r}")
    return check_int(name, value, lo, hi)


def check_bool(name: str, value) -> bool:
    """Return ``value`` if it is a bool; raise TypeError naming it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_choice(name: str, value, choices) -> object:
    """Return ``value`` if it is one of ``choices``; raise ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                         f"not {value!r}")
    return value


def check_step_gain(step_gain) -> tuple:
    """A non-empty sequence of ints >= 1 (a layer's per-time-step gains), as a tuple."""
    if not isinstance(step_gain, (tuple, list)) or not step_gain:
        raise TypeError(f"step_gain must be a non-empty tuple of ints, not {step_gain!r}")
    for g in step_gain:
        if not is_int(g) or g < 1:
            raise ValueError(f"step_gain must hold ints >= 1, not {tuple(step_gain)!r}")
    return tuple(int(g) for g in step_gain)
