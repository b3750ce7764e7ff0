"""The main job: train (or reuse) a default digits model, export it, generate the accelerator's
Verilog and check it against the golden model on the test split with cocotb.

    python -m sim.main                      # what `nox -s simulate` runs: the default MLP
    python -m sim.main --model conv         # the conv model (nox -s simulate -- --model conv)
    python -m sim.main --samples 200 --simulator verilator
    python -m sim.main --artifact artifacts/digits --folding 64x8,64x1 --waves

Steps (each reuses its output when it is already there and matches):

1. train the default model named by ``--model`` (:data:`sw.default_model.MODELS`): ``mlp``
   (the default; ``sw.train.TrainConfig()``: digits, hardware-profile MLP 64-128-10, T=4,
   AGMM) into ``runs/default``, or ``conv`` (``TrainConfig(model="conv")``: VGG 32,64,M on
   digits 8x8) into ``runs/conv``; an interrupted run is resumed;
2. export it to ``artifacts/digits`` (``conv``: ``artifacts/digits-conv``; re-exported when
   the checkpoint changed);
3. generate the Verilog and its description into
   ``sim_build/simulate/<model>/<folding>/hw`` (``<model>`` is ``artifact`` with
   ``--artifact``);
4. run the cocotb testbench on the test split: every output (prediction and every class score)
   compared with the golden model exactly, and the steady-state cycles per inference measured
   against the ideal bound of the folding;
5. print float, golden and RTL accuracy, the RTL/golden mismatches, cycles per inference and
   the simulation wall time. The exit status is 1 on any mismatch or failed test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from sim.runner import SIMULATORS, SimulationError, default_simulator, simulator_problem
from sw.default_model import DEFAULT, MODELS
from sw.options import add_folding

__all__ = ["main", "build_parser", "ensure_trained", "ensure_exported"]

BUILD_DIR = Path("sim_build/simulate")
#: Simulated cycles (samples x the ideal cycles per inference) above which the job takes
#: Verilator when no simulator is named (no --simulator, no $SIM): Icarus runs the digits MLP's
#: 72,000 in a minute, the conv model's 8.3 million in hours (docs/verification.md).
LONG_JOB_CYCLES = 1_000_000


def _say(text: str) -> None:
    print(text, flush=True)


def ensure_trained(run_dir: Path, model: str = DEFAULT) -> Path:
    """Step 1: the default model's checkpoint (:func:`sw.default_model.ensure_trained`)."""
    from sw import default_model

    return default_model.ensure_trained(run_dir, lambda line: _say(f"[1/4] {line}"), model)


def ensure_exported(checkpoint: Path, out: Path, model: str = DEFAULT):
    """Step 2: the artifact exported from ``checkpoint``
    (:func:`sw.default_model.ensure_exported`)."""
    from sw import default_model

    return default_model.ensure_exported(checkpoint, out, lambda line: _say(f"[2/4] {line}"),
                                         lambda line: _say(f"      {line}"), model)


def _float_predictions(checkpoint: Path, x_split, y) -> np.ndarray | None:
    """The float model's predictions on samples of the test split (None without torch)."""
    try:
        from sw.train import build_from_checkpoint, evaluate, load_checkpoint
    except ImportError:
        return None
    model, _, _ = build_from_checkpoint(load_checkpoint(checkpoint))
    return np.asarray(evaluate(model, x_split, y)["predictions"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sim.main",
        description="Train/export a default digits model, generate the accelerator and check "
                    "RTL == golden model on the test split with cocotb (the `nox -s simulate` "
                    "job).")
    p.add_argument("--simulator", choices=SIMULATORS, default=None,
                   help="cocotb simulator (default: $SIM, else icarus when installed, "
                        "else verilator; verilator for a job of more than "
                        f"{LONG_JOB_CYCLES:,} simulated cycles, e.g. --model conv)")
    p.add_argument("--samples", type=int, default=None,
                   help="test samples to simulate (default: the whole test split)")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="the default model to train/export and simulate: "
                        + "; ".join(f"{m.name}: {m.summary}, {m.run_dir} -> {m.artifact_dir}"
                                    for m in MODELS.values())
                        + f" (default {DEFAULT}; not with --artifact)")
    p.add_argument("--artifact", default=None,
                   help="simulate this artifact instead of training/exporting a default model")
    p.add_argument("--dataset", default=None,
                   help="dataset of --artifact (default: the one it records, with its root, "
                        "split seed and options; digits for a random network)")
    add_folding(p, "the generator's (hw.plan.default_folding)")
    p.add_argument("--waves", action="store_true",
                   help="dump a waveform (FST with Icarus, VCD with Verilator)")
    p.add_argument("--trace", action="store_true",
                   help="debug mode: also compare every layer's membranes and spikes per time "
                        "step (builds the trace ports)")
    p.add_argument("--gaps", type=float, default=0.0,
                   help="probability of an idle input cycle (default 0: back to back; cycles "
                        "per inference are measured only then)")
    p.add_argument("--backpressure", type=float, default=0.0,
                   help="probability of output ready low per cycle (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of gaps/backpressure (default 0)")
    p.add_argument("--jobs", type=int, default=None,
                   help="simulator processes sharing the samples (default: 2 with Icarus on a "
                        "machine with 2+ cores, else 1)")
    p.add_argument("--run-dir", default=None,
                   help="training run directory (default: the model's, "
                        + ", ".join(f"{m.run_dir} for {m.name}" for m in MODELS.values()) + ")")
    p.add_argument("--out", default=None,
                   help="artifact directory to export to (default: the model's, "
                        + ", ".join(f"{m.artifact_dir} for {m.name}" for m in MODELS.values())
                        + ")")
    p.add_argument("--build-dir", default=str(BUILD_DIR),
                   help=f"Verilog and simulation directory; each model builds in its own "
                        f"<model>/<folding> folder under it (default {BUILD_DIR})")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.model is not None and args.artifact is not None:
        print("error: --model and --artifact exclude each other (--model trains/exports a "
              "default model, --artifact simulates a given one)", file=sys.stderr)
        return 2
    model = MODELS[args.model or DEFAULT]
    simulator = args.simulator or default_simulator()
    if simulator not in SIMULATORS:
        print(f"error: SIM={simulator!r} is not one of {', '.join(SIMULATORS)}", file=sys.stderr)
        return 2
    problem = simulator_problem(simulator)
    if problem:
        print(f"error: {simulator}: {problem}", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print(f"error: --jobs must be >= 1, not {args.jobs}", file=sys.stderr)
        return 2
    jobs = args.jobs or (2 if simulator == "icarus" and (os.cpu_count() or 1) >= 2 else 1)
    if args.samples is not None and args.samples < 1:
        print(f"error: --samples must be >= 1, not {args.samples}", file=sys.stderr)
        return 2
    for name in ("gaps", "backpressure"):
        v = getattr(args, name)
        if not 0.0 <= v < 1.0:
            print(f"error: --{name} must be in [0, 1), not {v}", file=sys.stderr)
            return 2

    from sw.artifact import ArtifactError, load_artifact
    from sw.cli_artifact import dataset_inputs, recorded_dataset
    from sw.golden import GoldenModel

    checkpoint = None
    if args.artifact:
        try:
            artifact = load_artifact(args.artifact)
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        artifact_dir = Path(args.artifact)
        _say(f"[1/4] using the artifact {artifact_dir} (no training)")
        _say("[2/4] -")
    else:
        checkpoint = ensure_trained(Path(args.run_dir or model.run_dir), model.name)
        artifact_dir = Path(args.out or model.artifact_dir)
        artifact = ensure_exported(checkpoint, artifact_dir, model.name)
    # The data the network was trained on (name, root, split seed, input options), unless
    # another dataset is named; as `bitspike golden` does.
    recorded = recorded_dataset(artifact)
    dataset = args.dataset or recorded["dataset"]
    data_args = dict(root=recorded["root"], seed=recorded["seed"], options=recorded["options"]) \
        if dataset == recorded["dataset"] else dict(seed=recorded["seed"])
    x, y = dataset_inputs(artifact, dataset, "test", **data_args)
    if args.samples is not None:
        x, y = x[:args.samples], y[:args.samples]

    from sim.accelerator import generate, simulate

    build_dir = Path(args.build_dir) / ("artifact" if args.artifact else model.name) / \
        (args.folding or "default").replace(",", "_")
    _say(f"[3/4] generating the Verilog into {build_dir / 'hw'}")
    t0 = time.perf_counter()
    try:
        desc = generate(artifact_dir, out_dir=build_dir, folding=args.folding, trace=args.trace)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gen_s = time.perf_counter() - t0
    folding = ",".join(f"{s}x{p}" for s, p in desc.folding)
    cycles = desc.ideal_cycles * len(x)
    if (args.simulator is None and not os.environ.get("SIM", "").strip()
            and simulator != "verilator" and cycles > LONG_JOB_CYCLES
            and simulator_problem("verilator") is None):
        simulator = "verilator"
        jobs = args.jobs or 1
        _say(f"      {cycles:,} cycles to simulate: Verilator (name --simulator icarus for "
             f"Icarus)")
    back_to_back = args.gaps == 0.0 and args.backpressure == 0.0
    testcase = "back_to_back" if back_to_back else "regression"
    mode = ("back to back" if back_to_back else
            f"gaps {args.gaps}, backpressure {args.backpressure}")
    _say(f"[4/4] cocotb on {simulator}: {len(x)} {dataset} test samples, folding {folding}, "
         f"{mode}{', trace' if args.trace else ''}")

    from tqdm import tqdm

    bar = tqdm(total=len(x), unit="sample", desc="simulating", leave=False,
               disable=not sys.stderr.isatty())
    try:
        run = simulate(desc, artifact_dir, x, build_dir=build_dir, simulator=simulator,
                       testcases=(testcase,), seed=args.seed, gaps=args.gaps,
                       backpressure=args.backpressure, trace=args.trace, waves=args.waves,
                       progress=lambda done: bar.update(done - bar.n), jobs=jobs, check=False)
    except SimulationError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()

    # The scoreboard compared every output with the golden model; here the golden model only
    # gives its accuracy.
    golden = GoldenModel(artifact).run(x)
    rtl_pred = run.predictions
    complete = len(rtl_pred) == len(x)
    mismatches = run.mismatches
    golden_acc = float(np.mean(golden.predictions == y))
    rtl_acc = float(np.mean(rtl_pred == y[:len(rtl_pred)])) if len(rtl_pred) else 0.0
    float_note = ""
    float_acc = None
    if checkpoint is not None:
        pred = _float_predictions(checkpoint, _split_samples(dataset, artifact, len(x),
                                                             data_args), y)
        if pred is not None:
            float_acc = float(np.mean(pred == y))
    if float_acc is None and "float_accuracy" in artifact.metadata:
        float_acc = float(artifact.metadata["float_accuracy"])
        float_note = " (exporter's figure, whole test split)"

    ideal = desc.ideal_cycles
    steady = run.steady_cycles
    traced = sum(r.get("trace_compared", 0) for r in run.results.values())
    rows = [
        ("artifact", f"{artifact_dir} ({artifact.summary()})"),
        ("folding", f"{folding} (ideal {ideal} cycles/inference)"),
        ("simulator", f"{simulator} ({run.extra['jobs']} simulator process"
                      f"{'es' if run.extra['jobs'] > 1 else ''})"),
        ("samples", f"{len(x)} ({dataset} test split)"),
        ("float accuracy", "n/a" if float_acc is None else f"{100 * float_acc:.2f} %{float_note}"),
        ("golden accuracy", f"{100 * golden_acc:.2f} %"),
        ("RTL accuracy", f"{100 * rtl_acc:.2f} %" + ("" if complete else
                                                    f" ({len(rtl_pred)} outputs only)")),
        ("RTL/golden mismatches", f"{mismatches}" + ("" if run.first_mismatch is None else
                                                     f" (first: {run.first_mismatch})")),
        *([("trace beats compared", f"{traced} (every layer's x, h, v, spikes and sums)")]
          if args.trace else []),
        ("cycles/inference", "n/a (gaps or backpressure on)" if steady is None else
         f"{steady:.2f} measured, {ideal} ideal, ratio {steady / ideal:.3f}"),
        ("simulation wall time", f"{run.wall_s:.1f} s (generate {gen_s:.1f} s, build "
                                 f"{run.sim.build_s:.1f} s)"),
    ]
    if run.sim.waves is not None:
        rows.append(("waves", str(run.sim.waves)))
    width = max(len(k) for k, _ in rows)
    print()
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    failed = [t for t in run.sim.tests if not t.passed]
    if failed or mismatches or not complete:
        for t in failed:
            print(f"FAILED {t.name}: {t.message}", file=sys.stderr)
        print(f"RTL does not match the golden model (logs: {', '.join(run.extra['logs'])})",
              file=sys.stderr)
        return 1
    print("RTL == golden model on every output")
    return 0


def _split_samples(dataset, artifact, n, data_args):
    """The first ``n`` test samples in the dataset's own layout (what the float model takes)."""
    from sw.data import load_dataset

    data = load_dataset(dataset, time_steps=artifact.time_steps, root=data_args.get("root"),
                        seed=data_args["seed"], **data_args.get("options", {}))
    return data.test.x[:n]


if __name__ == "__main__":
    from sw.options import run_command

    sys.exit(run_command(main))
