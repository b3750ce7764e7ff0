"""The logic-cell model (bitstreams/cells.py) against packed builds: a table of estimate vs
nextpnr's packed logic cells per build, and the calibration that fits the model's weights.

Each case is built with ``bitstreams.flow`` up to packing (``--fit-only``: Yosys and nextpnr
``--pack-only``; a build that overflows the device still reports its packed count), its
``top.il`` goes through the model's coarse Yosys pass, and the row shows the estimate, the
packed count and the error. ``--calibrate`` fits the weights to these builds (non-negative
least squares), prints each build's leave-one-out error (its estimate from weights fitted to
the other builds) and writes ``bitstreams/cell_model.json`` with the builds' features.

    python bench/cells.py                  # build the 12 cases, compare (about 15 minutes)
    python bench/cells.py --calibrate      # ... and refit the weights
    python bench/cells.py --builds DIR...  # compare (or --calibrate) on existing build folders
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bitstreams import cells  # noqa: E402
from bitstreams.boards import get_board  # noqa: E402
from sw.atomic import atomic_write_json  # noqa: E402

#: (name, model, folding, accelerator options): the iCEBreaker cases, the builds the committed
#: calibration was fitted to ("random": sw.randnet.random_artifact(default_rng(7), [16, 8, 4],
#: T=2, multi-bit 4-bit input) at 30 MHz, the board flow test's network)
CASES = [
    ("digits-16x1,2x1", "mlp", "16x1,2x1", {}),
    ("digits-16x2,8x1", "mlp", "16x2,8x1", {}),
    ("digits-32x1,4x1", "mlp", "32x1,4x1", {}),
    ("digits-32x2,8x1", "mlp", "32x2,8x1", {}),
    ("digits-32x4,32x1", "mlp", "32x4,32x1", {}),
    ("digits-64x1,16x1", "mlp", "64x1,16x1", {}),
    ("digits-64x1,8x1", "mlp", "64x1,8x1", {}),
    ("digits-64x2,16x1", "mlp", "64x2,16x1", {}),
    ("digits-64x2,16x1-weights-in-logic", "mlp", "64x2,16x1", {"weight_memory": "auto"}),
    ("digits-64x4,32x1-weights-in-logic", "mlp", "64x4,32x1", {"weight_memory": "auto"}),
    ("digits-conv-1x2,32x2,1x1", "conv", "1x2,32x2,1x1", {}),
    ("random-16-8-4-16x4,8x1", "random", "16x4,8x1", {}),
]


def packed_cells(build_dir: Path) -> int:
    """nextpnr's packed logic cells (ICESTORM_LC) from a build folder's pack.log."""
    counts = re.findall(r"ICESTORM_LC:\s+(\d+)/", (build_dir / "pack.log").read_text())
    if not counts:
        raise ValueError(f"{build_dir / 'pack.log'}: no ICESTORM_LC count")
    return int(counts[-1])


def features_of(build_dir: Path, board) -> dict:
    netlist = cells.coarse_netlist((build_dir / "top.il").read_text())
    total = cells.total_features(cells.design_features(netlist, board.family, board.capacity))
    return {k: total[k] for k in cells.FEATURES}


def build_cases(out: Path, board) -> list[Path]:
    from tqdm import tqdm

    from bitstreams.fit import FitError
    from bitstreams.flow import build, default_artifact

    dirs = []
    for name, model, folding, options in tqdm(CASES, unit="build", file=sys.stderr):
        clock = None
        if model == "random":
            from sw.randnet import random_artifact

            artifact, adir, clock = random_artifact(
                np.random.default_rng(7), sizes=[16, 8, 4], time_steps=2,
                input_kind="multibit", input_bits=4), None, 30e6
        else:
            artifact, adir = default_artifact(log=lambda line: None, model=model)
        d = out / name
        try:
            build(board, artifact, artifact_dir=adir, folding=folding, out_dir=d,
                  clock_hz=clock, fit_only=True, accelerator_options=options,
                  log=lambda line: None)
        except FitError as exc:  # an overflow found at packing still has its count
            if exc.stage != "packing step":
                raise
        dirs.append(d)
    return dirs


def fit_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(x, y)[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--builds", nargs="+", default=None, help="existing build folders")
    p.add_argument("--calibrate", action="store_true", help="refit and write the weights")
    p.add_argument("--out", default=str(ROOT / "build" / "bench-cells"))
    args = p.parse_args(argv)
    board = get_board("icebreaker")
    dirs = ([Path(d) for d in args.builds] if args.builds
            else build_cases(Path(args.out), board))
    names = [d.name for d in dirs]
    feats = [features_of(d, board) for d in dirs]
    packed = np.array([packed_cells(d) for d in dirs], float)
    x = np.array([[f[k] for k in cells.FEATURES] for f in feats], float)
    if args.calibrate:
        weights = fit_weights(x, packed)
        loo = []
        for i in range(len(dirs)):
            keep = np.arange(len(dirs)) != i
            loo.append(float(x[i] @ fit_weights(x[keep], packed[keep])))
        path = cells.MODEL_FILE
        data = json.loads(path.read_text()) if path.exists() else {"models": {}}
        data["models"][board.family] = {
            "weights": {k: round(float(w), 6) for k, w in zip(cells.FEATURES, weights,
                                                                strict=True)},
            "calibration": [{"name": n, "features": f, "logic_cells": int(c)}
                            for n, f, c in zip(names, feats, packed, strict=True)]}
        atomic_write_json(path, data)
        print(f"weights written to {path}: "
              + ", ".join(f"{k} {w:.4f}" for k, w in zip(cells.FEATURES, weights, strict=True)))
    else:
        model = cells.load_model(board.family)
        weights = np.array([model.weights[k] for k in cells.FEATURES])
        loo = None
    est = x @ weights
    head = (f"{'build':<34} {'packed LC':>9} {'model':>7} {'error':>7}"
            + (f" {'leave-one-out':>13}" if loo else ""))
    print(head)
    print("-" * len(head))
    for i, name in enumerate(names):
        line = (f"{name[:34]:<34} {packed[i]:>9.0f} {est[i]:>7.0f} "
                f"{100 * (est[i] / packed[i] - 1):>+6.1f}%")
        if loo:
            line += f" {100 * (loo[i] / packed[i] - 1):>+12.1f}%"
        print(line)
    worst = float(np.max(np.abs(est / packed - 1)))
    worst_loo = (max(abs(e / c - 1) for e, c in zip(loo, packed, strict=True)) if loo
                 else None)
    print(f"largest error {100 * worst:.1f}% over {len(names)} builds"
          + (f"; leave-one-out {100 * worst_loo:.1f}%" if loo else ""))
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
