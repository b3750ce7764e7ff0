"""``bitspike nir export | import``: NIR graphs to and from bitspike artifacts (docs/nir.md).

``import`` writes a checkpoint (:mod:`sw.nir_checkpoint`) that ``bitspike export`` folds into
an artifact, or with ``--export`` that artifact at once. Needs the optional ``nir`` package
(``pip install 'bitspike[interop]'``); a checkpoint (writing one, or exporting one) needs torch
too. Every refusal is one line, exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sw.options import check_output_dir, int_in


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


class Nir:
    @staticmethod
    def configure(p):
        sub = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                               help="export (artifact -> NIR) or import (NIR -> artifact)")
        e = sub.add_parser("export", help="write an artifact (or a checkpoint, folded first) as "
                                          "a NIR graph (HDF5)",
                           formatter_class=p.formatter_class)
        e.add_argument("source", help="artifact directory (holding manifest.json), or a "
                                      "training checkpoint.pt / run directory, or a "
                                      "'bitspike nir import' checkpoint")
        e.add_argument("-o", "--out", required=True, help="NIR file to write (model.nir)")
        e.add_argument("--dt", type=float, default=None,
                       help="time step of the discretisation the graph's time constants "
                            "assume (default: 1e-4, snnTorch's)")
        e.add_argument("--unit-threshold", action="store_true",
                       help="scale every neuron's membrane so its threshold is 1 (for "
                            "consumers that take one threshold per layer, e.g. snnTorch)")
        e.add_argument("--pool", choices=["sum", "avg"], default="sum",
                       help="the NIR node of a spike OR pool, followed by a LIF with threshold "
                            "0: SumPool2d (Norse imports it) or AvgPool2d (snnTorch does)")
        e.add_argument("--force", action="store_true", help="replace an existing file")
        i = sub.add_parser("import", help="map a NIR graph (Affine/Linear, Conv2d, SumPool2d or "
                                          "AvgPool2d + threshold, Flatten, LIF/IF) to a "
                                          "checkpoint that 'bitspike export' folds into an "
                                          "artifact (--export: the artifact at once)",
                           formatter_class=p.formatter_class)
        i.add_argument("graph", help="NIR file (HDF5) to read")
        i.add_argument("-o", "--out", required=True,
                       help="checkpoint file to write (model.pt; 'bitspike export model.pt -o "
                            "ARTIFACT' folds it), or with --export the artifact directory")
        i.add_argument("--export", action="store_true",
                       help="write the artifact the checkpoint folds into, not the checkpoint "
                            "(the same artifact, byte for byte)")
        i.add_argument("--time-steps", type=int_in(1, 1024), default=None, metavar="T",
                       help="time steps per sample; NIR does not record them (default: the "
                            "value a bitspike-written graph records)")
        i.add_argument("--input", choices=["spike", "multibit"], default=None,
                       help="first-layer input kind (default: recorded, else spike)")
        i.add_argument("--input-bits", type=int_in(1, 16), default=None,
                       help="bits of a multibit input (default: recorded, else 8)")
        i.add_argument("--dt", type=float, default=None,
                       help="time step of the discretisation (default: recorded, else 1e-4)")
        i.add_argument("--binarize", action="store_true",
                       help="binarize weights that are not ±c per output neuron (approximate; "
                            "needs --dataset, where the float and binary accuracies are "
                            "reported)")
        i.add_argument("--dataset", default=None,
                       help="dataset (test split) on which --binarize reports the float graph's "
                            "and the binarized artifact's accuracy (default: none)")
        i.add_argument("--limit", type=int_in(1), default=None,
                       help="use the first LIMIT samples of --dataset (default: all)")
        i.add_argument("--force", action="store_true",
                       help="replace an existing checkpoint (artifact)")

    @staticmethod
    def run(args):
        from sw.artifact import ArtifactError
        from sw.nir import NIRError

        if args.dt is not None and not (args.dt > 0 and args.dt < float("inf")):
            return _fail(f"--dt must be a positive number, not {args.dt!r}")
        try:
            if args.action == "export":
                return _export(args)
            return _import(args)
        except (NIRError, ArtifactError) as exc:
            return _fail(str(exc))


def _export(args) -> int:
    from sw.artifact import load_artifact
    from sw.nir import DT, NIRError, artifact_to_graph, write_graph

    check_output_dir(Path(args.out).parent)
    if Path(args.out).exists() and not args.force:
        return _fail(f"{args.out} exists; pass --force to replace it")
    src = Path(args.source)
    if (src / "manifest.json").is_file():
        artifact = load_artifact(src)
    elif src.exists():
        try:
            from sw.export import ExportError, export
            from sw.nir_checkpoint import FORMAT, fold
            from sw.train.loop import CheckpointError, load_checkpoint
        except ImportError as exc:
            return _fail(f"{src}: exporting a checkpoint needs torch ({exc})")
        try:
            ckpt = load_checkpoint(src, nir=True)
            if ckpt["format"] == FORMAT:
                artifact, _ = fold(ckpt)
            else:
                artifact, _ = export(src, None)
        except NIRError:
            raise
        except (ExportError, CheckpointError, ValueError) as exc:
            return _fail(f"{src}: {exc}")
    else:
        return _fail(f"{src}: no such artifact or checkpoint")
    graph = artifact_to_graph(artifact, dt=args.dt or DT, unit_threshold=args.unit_threshold,
                              pool=args.pool)
    write_graph(graph, args.out)
    nodes = ", ".join(f"{name}:{type(node).__name__}" for name, node in graph.nodes.items())
    print(f"wrote {args.out}: {artifact.summary()} as NIR ({nodes})")
    soft = [layer.name for layer in artifact.lif_layers
            if getattr(layer, "reset", None) == "soft"]
    if soft:
        print(f"  note      soft reset in {', '.join(soft)}: NIR cannot express it (kept in the "
              f"node metadata for bitspike; other libraries reset to v_reset = 0, docs/nir.md)")
    return 0


def _import(args) -> int:
    from sw.artifact import write_artifact
    from sw.nir import graph_from_dict, read_graph_dict

    if args.binarize and not args.dataset:
        return _fail("--binarize needs --dataset: the accuracy change it causes is reported "
                     "there")
    out = Path(args.out)
    if args.export:
        check_output_dir(out)
    else:
        check_output_dir(out.parent)
        if out.is_dir():
            return _fail(f"{out} is a directory; the checkpoint is one file (e.g. "
                         f"{out / 'checkpoint.pt'}), or pass --export to write an artifact")
    if out.exists() and not args.force:
        return _fail(f"{out} exists; pass --force to replace it")
    if not args.export:
        try:
            import torch  # noqa: F401  (the checkpoint file's format)
        except ImportError as exc:
            return _fail(f"writing a checkpoint needs torch ({exc}): pip install "
                         f"'bitspike[train]', or pass --export to write the artifact")
    from sw.nir_checkpoint import fold, make_checkpoint, write_checkpoint

    data = read_graph_dict(args.graph)
    ckpt = make_checkpoint(data, source=args.graph, time_steps=args.time_steps,
                           input_kind=args.input, input_bits=args.input_bits, dt=args.dt,
                           binarize=args.binarize)
    # the artifact of both outputs is the fold of this checkpoint: --export writes it, the
    # checkpoint file folds into it again (bitspike export)
    artifact, report = fold(ckpt)
    accuracy = None
    if args.dataset:
        accuracy = _accuracies(graph_from_dict(data, args.graph), artifact, args)
    if args.export:
        write_artifact(artifact, out, overwrite=args.force)
    else:
        ckpt["mapping"] = {"summary": artifact.summary(), "exact": report.exact,
                           "frac_bits": list(report.frac_bits), "notes": list(report.notes)}
        write_checkpoint(ckpt, out)
    origin = "a bitspike graph (integers from its metadata)" if report.from_bitspike else \
        "the graph's parameters"
    if args.export:
        print_import(out, artifact, report, origin)
    else:
        print(f"wrote {out}: a NIR import checkpoint of {artifact.summary()} from {origin}; "
              f"'bitspike export {out} -o ARTIFACT' folds it")
        print("\n".join(report.lines()))
    if accuracy is not None:
        n, acc_float, acc_int = accuracy
        print(f"  accuracy  {args.dataset} test split ({n} samples): float graph "
              f"{100 * acc_float:.2f} %, bitspike artifact {100 * acc_int:.2f} % "
              f"(change {100 * (acc_int - acc_float):+.2f} points)")
    return 0


def print_import(out, artifact, report, origin: str) -> None:
    """The lines that say an import's artifact was written: what, from where, how exactly."""
    print(f"wrote {out}: {artifact.summary()} from {origin}")
    print("\n".join(report.lines()))


def _accuracies(graph, artifact, args):
    """(samples, float graph accuracy, artifact accuracy) on the dataset's test split; the
    float graph runs the Euler equations of docs/nir.md (:func:`sw.nir.simulate_graph`)."""
    import numpy as np

    from sw.cli_artifact import dataset_inputs
    from sw.golden import GoldenModel
    from sw.nir import DT, simulate_graph

    x, y = dataset_inputs(artifact, args.dataset, "test")
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    dt = args.dt or float(np.asarray(meta.get("dt", DT)))
    float_pred = simulate_graph(graph, x, artifact.time_steps, dt=dt)
    int_pred = GoldenModel(artifact).run(x).predictions
    return len(y), float(np.mean(float_pred == y)), float(np.mean(int_pred == y))
