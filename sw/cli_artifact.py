"""``bitspike info | golden | bram``: artifact subcommands (no torch, no amaranth needed)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from sw.options import add_folding


def _load(path):
    from sw.artifact import ArtifactError, load_artifact

    try:
        return load_artifact(path)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def dataset_inputs(artifact, dataset: str, split: str = "test", root=None, seed: int = 0):
    """The inputs and labels of a dataset split, flattened the way the artifact takes them.

    Raises SystemExit(2) with a clear message when the dataset does not suit the artifact.
    """
    from sw.data import DatasetError, load_dataset

    try:
        data = load_dataset(dataset, root=root, time_steps=artifact.time_steps, seed=seed)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    part = getattr(data, split)
    x = part.flat()
    want = artifact.input_shape()
    if x.shape[1:] != want or data.info.input_kind != artifact.input.kind:
        print(f"error: dataset {dataset!r} gives {data.info.input_kind} inputs of shape "
              f"{x.shape[1:]}, the artifact takes {artifact.input.kind} inputs of shape {want}",
              file=sys.stderr)
        raise SystemExit(2)
    if x.size and x.max() > artifact.input.max_value:
        print(f"error: dataset {dataset!r} has values up to {x.max()}, the artifact's "
              f"{artifact.input.bits}-bit input holds up to {artifact.input.max_value}",
              file=sys.stderr)
        raise SystemExit(2)
    return x, part.y


class Info:
    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="artifact directory (holding manifest.json)")

    @staticmethod
    def run(args):
        from sw.artifact import LIFLayer

        a = _load(args.artifact)
        print(f"artifact {args.artifact}: {a.summary()}")
        print(f"{'layer':<10} {'kind':<8} {'N':>6} {'M':>6} {'input':<12} {'format':<14} "
              f"{'leak':<6} {'reset':<6} {'bound':>14}")
        for layer in a.layers:
            inp = (f"{layer.input.kind}/{layer.input.bits}b")
            if isinstance(layer, LIFLayer):
                fmt = f"W={layer.membrane.width} F={layer.membrane.frac}"
                leak = "none" if layer.leak_shift is None else f"k={layer.leak_shift}"
                bound, reset = layer.membrane_bound, layer.reset
            else:
                fmt = f"score W={layer.score.width}"
                leak, reset, bound = "-", "-", layer.score_bound
            print(f"{layer.name:<10} {layer.kind:<8} {layer.inputs:>6} {layer.neurons:>6} "
                  f"{inp:<12} {fmt:<14} {leak:<6} {reset:<6} {bound:>14}")
        for key, value in sorted(a.metadata.items()):
            print(f"  {key}: {value}")
        return 0


class Golden:
    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="artifact directory")
        p.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
        p.add_argument("--root", default=None, help="dataset root for file-based datasets")
        p.add_argument("--split", default="test", choices=["train", "test"])
        p.add_argument("--limit", type=int, default=None, help="use the first LIMIT samples")

    @staticmethod
    def run(args):
        from sw.golden import GoldenModel

        a = _load(args.artifact)
        x, y = dataset_inputs(a, args.dataset, args.split, args.root)
        if args.limit is not None:
            x, y = x[:args.limit], y[:args.limit]
        model = GoldenModel(a)
        t0 = time.perf_counter()
        res = model.run(x)
        dt = time.perf_counter() - t0
        acc = float(np.mean(res.predictions == y)) if len(y) else float("nan")
        print(f"golden model: {a.summary()} on {args.dataset}/{args.split} ({len(y)} samples)")
        print(f"  accuracy      {100 * acc:.2f} %")
        for layer, spikes in zip(a.lif_layers, res.spikes, strict=True):
            print(f"  firing rate   {layer.name}: {100 * spikes.mean():.2f} %")
        print(f"  throughput    {len(y) / max(dt, 1e-9):,.0f} samples/s")
        return 0


class Bram:
    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="artifact directory")
        p.add_argument("--simd", default=None,
                       help="inputs per cycle: one value for every layer or a comma list")
        p.add_argument("--pe", default=None,
                       help="neurons per cycle: one value for every layer or a comma list")
        add_folding(p, "from --simd and --pe")
        p.add_argument("-o", "--output", required=True, help="output directory")

    @staticmethod
    def run(args):
        from sw.folding import Folding, write_bram_files

        a = _load(args.artifact)
        try:
            if args.folding:
                if args.simd or args.pe:
                    raise ValueError("give either --folding or --simd/--pe, not both")
                folding = Folding.parse(args.folding, a)
            else:
                if not (args.simd and args.pe):
                    raise ValueError("give --simd and --pe (or --folding SIMDxPE,...)")
                simd = [int(v) for v in args.simd.split(",")]
                pe = [int(v) for v in args.pe.split(",")]
                folding = Folding.from_lists(simd, pe, a)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        paths = write_bram_files(a, folding, args.output)
        print(f"{'layer':<10} {'folding':<8} {'depth':>6} {'width':>6} {'bits':>8}  file")
        for layer, f, path in zip(a.layers, folding.layers, paths, strict=True):
            depth = f.depth(layer)
            print(f"{layer.name:<10} {str(f):<8} {depth:>6} {f.word_width:>6} "
                  f"{depth * f.word_width:>8}  {Path(path)}")
        return 0


class Random:
    @staticmethod
    def configure(p):
        p.add_argument("-o", "--output", required=True, help="artifact directory to write")
        p.add_argument("--sizes", default="64,128,10",
                       help="N,M1,...,classes (default 64,128,10)")
        p.add_argument("--time-steps", type=int, default=4)
        p.add_argument("--input", choices=["multibit", "spike"], default="multibit")
        p.add_argument("--input-bits", type=int, default=5)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--force", action="store_true", help="replace an existing artifact")

    @staticmethod
    def run(args):
        from sw.artifact import write_artifact
        from sw.randnet import random_artifact

        sizes = [int(v) for v in args.sizes.split(",")]
        a = random_artifact(args.seed, sizes=sizes, time_steps=args.time_steps,
                            input_kind=args.input, input_bits=args.input_bits)
        try:
            write_artifact(a, args.output, overwrite=args.force)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.output}: {a.summary()} (random, seed {args.seed})")
        return 0
