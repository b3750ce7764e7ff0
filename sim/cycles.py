"""Cycle accounting: steady-state cycles per inference from the cycles outputs came out at."""

from __future__ import annotations

__all__ = ["steady_state"]


def steady_state(cycles) -> float | None:
    """Cycles per inference once the pipeline is full: the mean spacing of the second half
    of the output cycles ``cycles`` (in order), which leaves the pipeline fill out. None with
    fewer than 4 outputs."""
    cycles = [int(c) for c in cycles]
    if any(b < a for a, b in zip(cycles, cycles[1:], strict=False)):
        raise ValueError("cycles must be in increasing order")
    n = len(cycles)
    if n < 4:
        return None
    start = n // 2
    return (cycles[-1] - cycles[start]) / (n - 1 - start)
