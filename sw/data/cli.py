"""``bitspike datasets``: list the datasets, show their expected layouts, load one and summarise."""

from __future__ import annotations

import sys
import time

import numpy as np


class Datasets:
    @staticmethod
    def configure(p):
        from sw.options import MAX_TIME_STEPS, add_dataset_options, int_in

        p.add_argument("name", nargs="?", help="a dataset to load and summarise (default: "
                                               "none, list them all)")
        p.add_argument("--layout", action="store_true",
                       help="print the on-disk layout each file-based dataset expects")
        p.add_argument("--root", default=None,
                       help="dataset root for file-based datasets (default: none; they need "
                            "it)")
        p.add_argument("--time-steps", type=int_in(1, MAX_TIME_STEPS), default=None,
                       help=f"T of event datasets, 1..{MAX_TIME_STEPS} (default: the "
                            "dataset's, 4 for digits-events, 8 for the cameras)")
        add_dataset_options(p)
        p.add_argument("--test-size", type=float, default=None,
                       help="test fraction of datasets without an official split (default: "
                            "0.25 for digits and digits-events, 0.1 for cifar10-dvs)")
        p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0,
                       help="split / subset seed (default 0)")

    @staticmethod
    def run(args):
        from sw.data import DATASETS

        if args.name is None:
            return _list(DATASETS, args.layout)
        if args.name not in DATASETS:
            print(f"error: unknown dataset {args.name!r}; known: {', '.join(sorted(DATASETS))}",
                  file=sys.stderr)
            return 2
        if args.layout:
            return _layout(DATASETS[args.name])
        return _load(args)


def _list(datasets, layouts: bool) -> int:
    print(f"{'name':<15} {'files':<10} summary")
    for name, spec in datasets.items():
        print(f"{name:<15} {'built in' if spec.layout is None else '--root':<10} {spec.summary}")
    if layouts:
        for spec in datasets.values():
            if spec.layout is not None:
                print()
                _layout(spec)
    return 0


def _layout(spec) -> int:
    if spec.layout is None:
        print(f"{spec.name}: built in, no files needed")
    else:
        print(f"{spec.name} (--root <root>):\n{spec.layout}")
    return 0


def _load(args) -> int:
    from sw.data import DatasetError, load_dataset

    options = {"root": args.root, "time_steps": args.time_steps, "downsample": args.downsample,
               "bits": args.bits, "bin_us": args.bin_us, "limit": args.limit,
               "test_size": args.test_size, "seed": args.seed, "progress": True}
    start = time.perf_counter()
    try:
        data = load_dataset(args.name, **options)
    except (DatasetError, TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    info = data.info
    steps = f", T={info.time_steps}" if info.time_steps else ""
    print(f"{info.name}: {info.input_kind} inputs, {info.input_bits} bit, shape {info.shape}"
          f"{steps}, {info.features} inputs per {'frame' if info.time_steps else 'sample'}, "
          f"{info.classes} classes (loaded in {elapsed:.1f} s)")
    print(f"{'split':<6} {'samples':>8} {'x shape':<24} {'dtype':<6} {'values':<8} "
          f"{'mean':>8}  samples per class")
    for split in ("train", "test"):
        part = getattr(data, split)
        x = part.x
        values = f"{x.min()}..{x.max()}" if x.size else "-"
        mean = f"{x.mean():.4f}" if x.size else "-"
        counts = np.bincount(part.y, minlength=info.classes).tolist()
        print(f"{split:<6} {len(part):>8} {str(x.shape):<24} {str(x.dtype):<6} {values:<8} "
              f"{mean:>8}  {counts}")
    return 0
