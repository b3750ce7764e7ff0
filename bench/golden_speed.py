"""Throughput of the integer golden model on one core.

    python bench/golden_speed.py [--samples 200000] [--repeats 3]

Target: >= 100,000 samples/s for a 64-128-10 network at T = 4 (5-bit direct-encoded input) on
one core. BLAS and the process are pinned to one core before numpy is imported; the table shows
the best of ``--repeats`` runs (the machine is shared, the best run is the least disturbed).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sw.golden import GoldenModel  # noqa: E402
from sw.randnet import random_artifact, random_inputs  # noqa: E402

NETWORKS = [
    # (label, sizes, T, input kind, input bits, reset, leak)
    ("digits MLP", [64, 128, 10], 4, "multibit", 5, "hard", 2),
    ("digits MLP soft/IF", [64, 128, 10], 4, "multibit", 5, "soft", None),
    ("events MLP", [128, 128, 10], 4, "spike", 1, "hard", 2),
    ("deeper", [64, 256, 128, 10], 8, "multibit", 5, "hard", 2),
]


def measure(model, x, repeats):
    model.run(x[:256])  # warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.run(x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"golden model throughput, one core, {args.samples:,} samples, best of "
          f"{args.repeats}")
    print(f"{'network':<20} {'shape':<30} {'checked':>14} {'unchecked':>14}")
    for label, sizes, t_steps, kind, bits, reset, leak in NETWORKS:
        a = random_artifact(args.seed, sizes=sizes, time_steps=t_steps, input_kind=kind,
                            input_bits=bits, reset=reset, leak_shift=leak)
        x = random_inputs(a, args.samples, args.seed).astype("uint8")
        checked = measure(GoldenModel(a), x, args.repeats)
        unchecked = measure(GoldenModel(a, check_bounds=False), x, args.repeats)
        print(f"{label:<20} {a.summary():<30} {checked:>12,.0f}/s {unchecked:>12,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
