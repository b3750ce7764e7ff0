"""The accelerator's interface as plain data, without Amaranth: the input-beat order (the one
packer every producer of input beats uses: the Amaranth testbenches, the cocotb description,
the board's host client) and the name of the description file the generator writes beside the
Verilog.

docs/hardware.md: a sample is ``rows`` rows of ``inputs`` values (:attr:`sw.artifact.Artifact.
rows_per_sample`: 1 for multi-bit input, T for spike input); each row is sent as
``ceil(inputs / lanes)`` beats, value k of beat b being input ``b * lanes + k`` of the row, the
last beat of a row zero-padded; rows follow one another. A conv network's row is its input
map in the element order of :mod:`sw.geometry` (``(y·W + x)·C + c``): a sample given in the
datasets' layout (``(C, H, W)`` values or ``(T, C, H, W)`` spikes) is reordered by
:func:`sample_beats` when it is told the map's ``shape``.
"""

from __future__ import annotations

import numpy as np

from sw.checks import check_int
from sw.fixedpoint import ceil_div
from sw.geometry import chw_to_hwc

__all__ = ["DESCRIPTION_FILE", "beats_per_sample", "sample_beats"]

#: The accelerator description (``hw.generate`` writes it beside the Verilog; docs/hardware.md
#: specifies it): ports, payload layouts, cycles, the artifact's manifest hash.
DESCRIPTION_FILE = "accelerator.json"


def beats_per_sample(inputs: int, rows: int, lanes: int) -> int:
    """Input beats of one sample: ``rows * ceil(inputs / lanes)``."""
    check_int("inputs", inputs, 1)
    check_int("rows", rows, 1)
    check_int("lanes", lanes, 1, inputs)
    return rows * ceil_div(inputs, lanes)


def sample_beats(sample, *, inputs: int, rows: int, lanes: int,
                 shape: tuple | None = None) -> list[list[int]]:
    """The beats of one sample (``rows * inputs`` values, e.g. ``(N,)`` or ``(T, N)``), each a
    list of ``lanes`` ints, in the order the accelerator takes them. With ``shape``, the
    ``(C, H, W)`` input map of a conv network, the sample is ``(C, H, W)`` values or
    ``(T, C, H, W)`` spikes, sent in element order."""
    count = beats_per_sample(inputs, rows, lanes)
    x = np.asarray(sample, dtype=np.int64)
    if shape is not None:
        frame = tuple(int(v) for v in shape)
        # one row: multi-bit values (C, H, W), or spikes of T = 1 (1, C, H, W)
        if x.shape != (rows, *frame) and not (rows == 1 and x.shape == frame):
            raise ValueError(f"a sample must have shape {(rows, *frame)}"
                             f"{f' or {frame}' if rows == 1 else ''}, not {x.shape}")
        x = chw_to_hwc(x)
    if x.size != rows * inputs:
        raise ValueError(f"a sample must hold {rows} x {inputs} values, not shape {x.shape}")
    per_row = count // rows
    padded = np.zeros((rows, per_row * lanes), dtype=np.int64)
    padded[:, :inputs] = x.reshape(rows, inputs)
    return [[int(v) for v in beat] for beat in padded.reshape(count, lanes)]
