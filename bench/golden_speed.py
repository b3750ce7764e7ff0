"""Throughput of the integer golden model on one core.

    python bench/golden_speed.py [--samples 200000] [--repeats 3]

Targets (one core): the dense digits model (64-128-10, T = 4, 5-bit direct-encoded input)
>= 244,000 samples/s; the digits conv model (the ``conv`` preset's geometry) >= 20,000
samples/s; an N-MNIST-shaped conv model (34x34x2 events, T = 8) >= 1,000 samples/s. The conv
networks are random networks of those geometries (cost does not depend on the weights or the
spike rates: a conv layer's sums are popcounts over every window word, sw/golden/_conv.py).
BLAS and the process are pinned to one core before numpy is imported; the table shows the best
of ``--repeats`` runs (the machine is shared, the best run is the least disturbed), after a
warm-up run that also compiles (or loads from numba's cache) the conv kernels. Conv networks
run ``--samples // --conv-divisor`` samples.
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
from sw.randnet import random_artifact, random_conv_artifact, random_inputs  # noqa: E402

NETWORKS = [
    # (label, sizes, T, input kind, input bits, reset, leak)
    ("digits MLP", [64, 128, 10], 4, "multibit", 5, "hard", 2),
    ("digits MLP soft/IF", [64, 128, 10], 4, "multibit", 5, "soft", None),
    ("events MLP", [128, 128, 10], 4, "spike", 1, "hard", 2),
    ("deeper", [64, 256, 128, 10], 8, "multibit", 5, "hard", 2),
]


def vgg_layers(channels, classes=10):
    """The layers of a ``SpikingVGG`` channel list (3x3 convs with padding 1, ``"M"`` = a 2x2
    pool) in :func:`sw.randnet.random_conv_artifact`'s form."""
    layers = [("pool", 2) if c == "M" else ("conv", c, 3, 1, 1) for c in channels]
    return layers + [("readout", classes)]


def conv_networks():
    from sw.models import PRESETS

    preset = PRESETS["conv"].defaults["channels"]
    label = ",".join(map(str, preset))
    return [
        # (label, in_shape, layers, T, input kind, input bits, target samples/s)
        (f"digits conv {label}", (1, 8, 8), vgg_layers(preset), 4, "multibit", 5, 20_000),
        ("digits conv 16,32,M", (1, 8, 8), vgg_layers((16, 32, "M")), 4, "multibit", 5, None),
        ("N-MNIST conv 16,M,32,M", (2, 34, 34), vgg_layers((16, "M", 32, "M")), 8, "spike", 1,
         1_000),
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
    p.add_argument("--conv-divisor", type=int, default=20,
                   help="conv networks run samples // this many samples (default 20)")
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"golden model throughput, one core, {args.samples:,} samples, best of "
          f"{args.repeats}")
    print(f"{'network':<24} {'shape':<42} {'checked':>14} {'unchecked':>14} {'target':>10}")

    def row(label, a, samples, target=None):
        x = random_inputs(a, samples, args.seed).astype("uint8")
        checked = measure(GoldenModel(a), x, args.repeats)
        unchecked = measure(GoldenModel(a, check_bounds=False), x, args.repeats)
        goal = f"{target:>10,}" if target else f"{'-':>10}"
        print(f"{label:<24} {a.summary():<42} {checked:>12,.0f}/s {unchecked:>12,.0f}/s {goal}",
              flush=True)

    for label, sizes, t_steps, kind, bits, reset, leak in NETWORKS:
        a = random_artifact(args.seed, sizes=sizes, time_steps=t_steps, input_kind=kind,
                            input_bits=bits, reset=reset, leak_shift=leak)
        row(label, a, args.samples, 244_000 if label == "digits MLP" else None)
    for label, in_shape, layers, t_steps, kind, bits, target in conv_networks():
        a = random_conv_artifact(args.seed, in_shape=in_shape, layers=layers,
                                 time_steps=t_steps, input_kind=kind, input_bits=bits,
                                 reset="hard", leak_shift=2)
        row(label, a, max(1, args.samples // args.conv_divisor), target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
