"""The checks of ``bitspike nir import`` that the NIR tests share (tests/test_nir.py and the
interop tests): an import both ways, through the checkpoint and with ``--export``, gives one
artifact; the golden model of an imported artifact equals another library's forward."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bitspike import cli


def files(path) -> dict:
    """``{name: bytes}`` of every file in the directory ``path`` (an artifact)."""
    return {name: (Path(path) / name).read_bytes() for name in sorted(os.listdir(path))}


def import_both_ways(graph, out, options=()) -> Path:
    """``bitspike nir import GRAPH -o OUT --export``, and ``nir import`` into a checkpoint
    (``OUT.pt``) that ``bitspike export`` folds (into ``OUT-ckpt``): the two artifacts are the
    same, byte for byte. Returns OUT, which holds it."""
    out = Path(out)
    options = [str(v) for v in options]
    ckpt = out.with_name(out.name + ".pt")
    folded = out.with_name(out.name + "-ckpt")
    assert cli.main(["nir", "import", str(graph), "-o", str(ckpt), *options]) == 0
    assert ckpt.is_file(), ckpt
    assert cli.main(["export", str(ckpt), "-o", str(folded)]) == 0
    assert cli.main(["nir", "import", str(graph), "-o", str(out), "--export", *options]) == 0
    assert files(out) == files(folded), graph
    return out


def check_golden_matches(artifact, x, ref_spikes, ref_pred, where: str) -> None:
    """The golden model of ``artifact`` on ``x``: every layer's spikes equal to ``ref_spikes``
    (bool arrays, sample x step x neuron) and the predictions to ``ref_pred``; the first
    mismatch is reported with its layer, sample, step and neuron."""
    from sw.golden import GoldenModel

    res = GoldenModel(artifact).run(x)
    assert len(res.spikes) == len(ref_spikes), f"{where}: layers"
    for k, (s, r) in enumerate(zip(res.spikes, ref_spikes, strict=True)):
        if not np.array_equal(s.astype(bool), r):
            b, t, j = (int(v[0]) for v in np.nonzero(s.astype(bool) != r))
            pytest.fail(f"{where}, layer {k}: first mismatch at sample {b}, step {t}, "
                        f"neuron {j}")
    assert np.array_equal(res.predictions, ref_pred), f"{where}: predictions"
