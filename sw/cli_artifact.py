"""``bitspike info | golden | bram``: artifact subcommands (no torch, no amaranth needed)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sw.options import MAX_TIME_STEPS, add_folding, check_output_dir, int_in, positive_int


def _load(path):
    from sw.artifact import ArtifactError, load_artifact

    try:
        return load_artifact(path)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def dataset_inputs(artifact, dataset: str, split: str = "test", root=None, seed: int = 0,
                   options: dict | None = None):
    """The inputs and labels of a dataset split in the layout the artifact takes them
    (:meth:`sw.artifact.Artifact.shape_inputs`: flattened for a dense network, maps for a conv
    network).

    ``options``: further :class:`sw.data.DatasetOptions` (``downsample``, ``bits``, ``limit``,
    ...). Raises SystemExit(2) with a clear message when the dataset does not suit the artifact.
    """
    from sw.data import DatasetError, load_dataset

    try:
        data = load_dataset(dataset, root=root, time_steps=artifact.time_steps, seed=seed,
                            **(options or {}))
    except (DatasetError, TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    part = getattr(data, split)
    x = artifact.shape_inputs(part.x)
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
        from sw.artifact import ConvLayer, LIFLayer, PoolLayer

        a = _load(args.artifact)
        print(f"artifact {args.artifact}: {a.summary()}")
        print(f"{'layer':<10} {'kind':<8} {'N':>6} {'M':>6} {'input':<12} {'format':<14} "
              f"{'leak':<6} {'reset':<6} {'bound':>14}  geometry")
        for layer in a.layers:
            inp = (f"{layer.input.kind}/{layer.input.bits}b")
            geometry = ""
            if isinstance(layer, (ConvLayer, PoolLayer)):
                shapes = "x".join(map(str, layer.in_shape)) + " -> " + "x".join(
                    map(str, layer.out_shape))
                geometry = (f"{shapes}, pool {layer.kernel}x{layer.kernel}"
                            if isinstance(layer, PoolLayer) else
                            f"{shapes}, kernel {layer.kernel}x{layer.kernel} stride "
                            f"{layer.stride} padding {layer.padding}, fan-in {layer.fan_in}")
            if isinstance(layer, PoolLayer):
                fmt, leak, reset, bound = "OR", "-", "-", "-"
            elif isinstance(layer, (LIFLayer, ConvLayer)):
                fmt = f"W={layer.membrane.width} F={layer.membrane.frac}"
                leak = "none" if layer.leak_shift is None else f"k={layer.leak_shift}"
                bound, reset = layer.membrane_bound, layer.reset
            else:
                fmt = f"score W={layer.score.width}"
                leak, reset, bound = "-", "-", layer.score_bound
            print(f"{layer.name:<10} {layer.kind:<8} {layer.inputs:>6} {layer.neurons:>6} "
                  f"{inp:<12} {fmt:<14} {leak:<6} {reset:<6} {bound:>14}  {geometry}".rstrip())
        for key, value in sorted(a.metadata.items()):
            print(f"  {key}: {value}")
        return 0


def recorded_dataset(artifact) -> dict:
    """The dataset an artifact was trained on, from its metadata (``bitspike export`` records
    it): ``{"dataset", "root", "seed", "options"}``; digits with seed 0 for an artifact that
    records none (a random network)."""
    meta = artifact.metadata
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    options = {k: training[k] for k in DATASET_OPTIONS if training.get(k) is not None}
    return {"dataset": meta.get("dataset", "digits"),
            "root": meta.get("data_root", training.get("root")),
            "seed": int(meta.get("data_seed", 0)), "options": options}


#: The training config's dataset options that shape the inputs (the golden model must see the
#: inputs the network was trained on).
DATASET_OPTIONS = ("downsample", "bits", "bin_us")


class Golden:
    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="artifact directory")
        p.add_argument("--dataset", default=None,
                       help="dataset name (default: the one the artifact records, with its "
                            "root, split seed and options; digits for a random network)")
        p.add_argument("--root", default=None,
                       help="dataset root for file-based datasets (default: the one the "
                            "artifact records, when --dataset is its dataset)")
        p.add_argument("--split", default="test", choices=["train", "test"],
                       help="which split to run")
        p.add_argument("--limit", type=positive_int, default=None,
                       help="use the first LIMIT samples (default: all)")

    @staticmethod
    def run(args):
        from sw.golden import GoldenModel

        a = _load(args.artifact)
        rec = recorded_dataset(a)
        dataset = args.dataset or rec["dataset"]
        same = dataset == rec["dataset"]
        root = args.root if args.root is not None or not same else rec["root"]
        x, y = dataset_inputs(a, dataset, args.split, root, seed=rec["seed"] if same else 0,
                              options=rec["options"] if same else None)
        if args.limit is not None:
            x, y = x[:args.limit], y[:args.limit]
        model = GoldenModel(a)
        t0 = time.perf_counter()
        res = model.run(x)
        dt = time.perf_counter() - t0
        acc = float(np.mean(res.predictions == y)) if len(y) else float("nan")
        print(f"golden model: {a.summary()} on {dataset}/{args.split} ({len(y)} samples)")
        print(f"  accuracy      {100 * acc:.2f} %")
        for layer, spikes in zip(a.lif_layers, res.spikes, strict=True):
            print(f"  firing rate   {layer.name}: {100 * spikes.mean():.2f} %")
        print(f"  throughput    {len(y) / max(dt, 1e-9):,.0f} samples/s")
        return 0


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated ints >= 1 (``64,128,10``)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be comma-separated ints >= 1, not {text!r}")
    return values


def time_steps_or_random(text: str):
    """An argparse type: T in 1..MAX_TIME_STEPS, or ``random`` (drawn from the seed)."""
    if text == "random":
        return None
    try:
        return int_in(1, MAX_TIME_STEPS)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be an int in 1..{MAX_TIME_STEPS} or 'random', "
                                         f"not {text!r}") from None


class Bram:
    @staticmethod
    def configure(p):
        p.add_argument("artifact", help="artifact directory")
        p.add_argument("--simd", type=int_list, default=None,
                       help="inputs per cycle: one value for every layer or a comma list "
                            "(default: none; give it with --pe, or --folding)")
        p.add_argument("--pe", type=int_list, default=None,
                       help="neurons per cycle: one value for every layer or a comma list "
                            "(default: none; give it with --simd, or --folding)")
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
                folding = Folding.from_lists(args.simd, args.pe, a)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        check_output_dir(args.output)
        paths = write_bram_files(a, folding, args.output)
        print(f"{'layer':<10} {'folding':<8} {'depth':>6} {'width':>6} {'bits':>8}  file")
        for layer, f, path in zip(a.weighted_layers, folding.layers, paths, strict=True):
            depth = f.depth(layer)
            print(f"{layer.name:<10} {str(f):<8} {depth:>6} {f.word_width:>6} "
                  f"{depth * f.word_width:>8}  {Path(path)}")
        return 0


class Random:
    @staticmethod
    def configure(p):
        p.add_argument("-o", "--output", required=True, help="artifact directory to write")
        p.add_argument("--sizes", type=int_list, default=[64, 128, 10], metavar="N,M1,...,C",
                       help="inputs, hidden layer sizes, classes (default: 64,128,10)")
        p.add_argument("--time-steps", type=time_steps_or_random, default=4, metavar="T",
                       help=f"time steps, 1..{MAX_TIME_STEPS}, or 'random': one of 1, 2, 3, 4, "
                            "5, 8, 16 drawn from --seed (default: 4)")
        p.add_argument("--input", choices=["multibit", "spike"], default="multibit",
                       help="first-layer input kind")
        p.add_argument("--input-bits", type=int_in(1, 16), default=5,
                       help="bits of a multibit input, 1..16 (ignored for spikes)")
        p.add_argument("--seed", type=int_in(0, 2**63 - 1), default=0,
                       help="seed of every random draw")
        p.add_argument("--conv", action="store_true",
                       help="draw a convolutional network (schema version 2) instead: its "
                            "input map (1-3 channels of 3..12 x 3..12 pixels), 1-3 conv layers "
                            "(K 1/3/5/7, stride 1/2, padding 0..K-1, 1-8 channels), spike "
                            "pools, 0-1 dense layers and the readout are drawn from --seed; "
                            "--sizes is ignored, --time-steps, --input and --input-bits apply")
        p.add_argument("--force", action="store_true", help="replace an existing artifact")

    @staticmethod
    def run(args):
        from sw.artifact import write_artifact
        from sw.randnet import random_artifact, random_conv_artifact

        if len(args.sizes) < 2:
            print(f"error: --sizes needs at least N,classes, not "
                  f"{','.join(map(str, args.sizes))}", file=sys.stderr)
            return 2
        check_output_dir(args.output)
        if args.conv:
            a = random_conv_artifact(args.seed, time_steps=args.time_steps,
                                     input_kind=args.input, input_bits=args.input_bits)
        else:
            a = random_artifact(args.seed, sizes=args.sizes, time_steps=args.time_steps,
                                input_kind=args.input, input_bits=args.input_bits)
        try:
            write_artifact(a, args.output, overwrite=args.force)
        except FileExistsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.output}: {a.summary()} (random, seed {args.seed})")
        return 0
