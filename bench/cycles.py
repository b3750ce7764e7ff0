"""Steady-state cycles per inference of the generated accelerator vs the ideal bound.

For several networks (the trained digits model, random ones with spike inputs, T=1, T=16, odd
sizes, three layers; conv networks: the digits conv model's geometry, an N-MNIST-shaped
34x34x2 one, odd shapes with stride 2, padding 0/1/2, K = 1/3/5, 3 input channels) and several
foldings each, generates the Verilog, streams samples back to
back through it in a cocotb simulation (no idle input cycle, output always ready; every output
is still compared with the golden model exactly) and measures the mean spacing of the outputs
once the pipeline is full. The ideal bound comes from the generator's description: the slowest
of the input transfer (``input`` cycles: beats x cycles per beat) and the stages' issue cycles
(docs/hardware.md).

    python bench/cycles.py                       # all cases, Icarus
    python bench/cycles.py --quick               # a few cases
    python bench/cycles.py --simulator verilator --samples 48
    python bench/cycles.py --conv-only           # the conv cases

A conv stage's SIMD divides C_in and its PE divides C_out (docs/hardware.md, "Conv stages"),
so the odd case with 3 input channels runs at SIMD 1 and 3.

Prints a table (measured, ideal, ratio) and exits with status 1 when a ratio exceeds --limit
(default 1.0: every case at its bound, as docs/verification.md claims) or any output differs
from the golden model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.accelerator import generate, simulate  # noqa: E402
from sim.runner import SIMULATORS, SimulationError, default_simulator  # noqa: E402
from sw.randnet import random_artifact, random_conv_artifact, random_inputs  # noqa: E402

#: name -> (random_artifact options, [(folding, lanes)]); None = the generator's default.
RANDOM_CASES = {
    "spike 32-24-10 T=4": (dict(sizes=[32, 24, 10], time_steps=4, input_kind="spike"),
                           [(None, None), ("8x4,8x2", None), ("32x24,24x10", None)]),
    "multibit/4b 20-16-5 T=1": (dict(sizes=[20, 16, 5], time_steps=1, input_kind="multibit",
                                     input_bits=4),
                                [(None, None), ("4x4,16x1", None), ("20x16,16x5", 1)]),
    "spike 12-10-4 T=16": (dict(sizes=[12, 10, 4], time_steps=16, input_kind="spike"),
                           [(None, None), ("6x5,5x2", None), ("3x2,5x1", None)]),
    "multibit/5b 37-23-7 T=4 (odd)": (dict(sizes=[37, 23, 7], time_steps=4,
                                           input_kind="multibit", input_bits=5),
                                      [(None, None), ("5x3,7x2", None), ("37x23,23x7", 3)]),
    "multibit/3b 16-12-8-4 T=3": (dict(sizes=[16, 12, 8, 4], time_steps=3,
                                       input_kind="multibit", input_bits=3),
                                  [(None, None), ("16x4,12x2,8x1", None)]),
}
DIGITS_FOLDINGS = [(None, None), ("64x8,64x1", None), ("32x4,32x1", None)]


def _vgg(channels, classes=10):
    """A ``SpikingVGG`` channel list as :func:`sw.randnet.random_conv_artifact` layers (3x3
    convs with padding 1, ``"M"`` = 2x2 pool)."""
    return [("pool", 2) if c == "M" else ("conv", c, 3, 1, 1) for c in channels] + [
        ("readout", classes)]


#: name -> (random_conv_artifact options, [(folding, lanes)], samples or None for --samples).
#: The cost of a case does not depend on its weights, so the digits conv model's geometry
#: stands for the model (the ``conv`` preset: 32,64,M on 8x8 5-bit input, T = 4).
CONV_CASES = {
    "digits conv 32,64,M T=4": (
        dict(in_shape=(1, 8, 8), layers=_vgg((32, 64, "M")), input_kind="multibit",
             input_bits=5, time_steps=4),
        [(None, None), ("1x32,32x8,64x1", None), ("1x8,16x4,32x1", None)], 8),
    "N-MNIST 2x34x34 16,M,32,M T=8": (
        dict(in_shape=(2, 34, 34), layers=_vgg((16, "M", 32, "M")), input_kind="spike",
             time_steps=8),
        [(None, None)], 4),
    "odd: 3x9x7 k5p2,s2k3p0,k1 T=2": (
        dict(in_shape=(3, 9, 7), layers=[("conv", 6, 5, 1, 2), ("conv", 4, 3, 2, 0),
                                         ("conv", 4, 1, 1, 0), ("readout", 3)],
             input_kind="spike", time_steps=2),
        [(None, None), ("3x2,6x4,2x2,4x1", None), ("1x1,2x2,4x4,16x3", None)], None),
    "odd: 3x7x7/4b k3s2p1,pool3 T=3": (
        dict(in_shape=(3, 7, 7), layers=[("conv", 6, 3, 2, 1), ("pool", 3), ("lif", 5),
                                         ("readout", 4)],
             input_kind="multibit", input_bits=4, time_steps=3),
        [(None, None), ("3x3,6x5,5x4", None), ("3x6,6x5,5x4", 1)], None),
}
QUICK = ["spike 32-24-10 T=4", "multibit/5b 37-23-7 T=4 (odd)"]


def digits_artifact():
    """The trained default digits model (trained and exported on first use, then reused)."""
    from sw.default_model import ARTIFACT_DIR, RUN_DIR, ensure_exported, ensure_trained

    checkpoint = ensure_trained(ROOT / RUN_DIR)
    artifact = ensure_exported(checkpoint, ROOT / ARTIFACT_DIR)
    return ROOT / ARTIFACT_DIR, artifact


def measure(name, artifact, folding, lanes, x, simulator, build):
    desc = generate(artifact, out_dir=build, folding=folding, lanes=lanes)
    adir = artifact if isinstance(artifact, Path) else build / "artifact"
    run = simulate(desc, adir, x, build_dir=build, simulator=simulator,
                   testcases=("back_to_back",))
    stages = "/".join(str(c) for c in desc.raw["cycles"].get("stages", []))
    return {
        "network": name,
        "folding": ",".join(f"{s}x{p}" for s, p in desc.folding),
        "lanes": desc.lanes,
        "beats": desc.beats_per_sample,
        "input": int(desc.raw["cycles"].get("input_cycles", desc.beats_per_sample)),
        "stages": stages,
        "ideal": desc.ideal_cycles,
        "measured": run.steady_cycles,
        "ratio": run.steady_cycles / desc.ideal_cycles,
        "exact": run.ok,
        "wall": run.wall_s,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--simulator", choices=SIMULATORS, default=None)
    p.add_argument("--samples", type=int, default=32,
                   help="samples per case (the second half is measured; default 32)")
    p.add_argument("--seed", type=int, default=1, help="seed of the random networks")
    p.add_argument("--quick", action="store_true", help="two random networks only")
    p.add_argument("--no-digits", action="store_true", help="skip the trained digits model")
    p.add_argument("--no-conv", action="store_true", help="skip the conv cases")
    p.add_argument("--conv-only", action="store_true", help="the conv cases only")
    p.add_argument("--limit", type=float, default=1.0,
                   help="largest acceptable measured/ideal ratio (default 1.0: at the bound)")
    p.add_argument("--build-dir", default=str(ROOT / "sim_build" / "cycles"))
    args = p.parse_args(argv)
    simulator = args.simulator or default_simulator()
    build_root = Path(args.build_dir)

    cases = []
    if not args.no_digits and not args.quick and not args.conv_only:
        from sw.cli_artifact import dataset_inputs

        adir, art = digits_artifact()
        x, _ = dataset_inputs(art, "digits", "test")
        for folding, lanes in DIGITS_FOLDINGS:
            cases.append(("digits 64-128-10 T=4 (trained)", adir, folding, lanes,
                          x[:args.samples]))
    names = [] if args.conv_only else QUICK if args.quick else list(RANDOM_CASES)
    for k, name in enumerate(names):
        options, foldings = RANDOM_CASES[name]
        rng = np.random.default_rng([args.seed, k])
        art = random_artifact(rng, **options)
        x = random_inputs(art, args.samples, rng, extremes=0.0)
        for folding, lanes in foldings:
            cases.append((name, art, folding, lanes, x))
    conv = [] if args.no_conv or args.quick else list(CONV_CASES)
    for k, name in enumerate(conv):
        options, foldings, samples = CONV_CASES[name]
        rng = np.random.default_rng([args.seed, 100 + k])
        art = random_conv_artifact(rng, **options)
        x = random_inputs(art, samples or args.samples, rng, extremes=0.0)
        for folding, lanes in foldings:
            cases.append((name, art, folding, lanes, x))

    from tqdm import tqdm

    rows = []
    t0 = time.perf_counter()
    bar = tqdm(cases, unit="case", leave=False, disable=not sys.stderr.isatty())
    for k, (name, art, folding, lanes, x) in enumerate(bar):
        build = build_root / f"case{k:02d}"
        try:
            rows.append(measure(name, art, folding, lanes, x, simulator, build))
        except SimulationError as exc:
            print(f"{name} [{folding}]: {exc}", file=sys.stderr)
            rows.append({"network": name, "folding": folding or "default", "lanes": "-",
                         "beats": "-", "input": "-",
                         "stages": "-", "ideal": "-", "measured": None, "ratio": None,
                         "exact": False, "wall": 0.0})

    print(f"steady-state cycles per inference, {simulator}, {args.samples} samples per case, "
          f"back to back ({time.perf_counter() - t0:.0f} s)")
    head = (f"{'network':<32} {'folding':<18} {'lanes':>5} {'beats':>5} {'input':>5} "
            f"{'stage cycles':>24} {'ideal':>6} {'measured':>9} {'ratio':>6}  exact")
    print(head)
    print("-" * len(head))
    bad = 0
    for r in rows:
        measured = "-" if r["measured"] is None else f"{r['measured']:.2f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        flag = "" if r["ratio"] is not None and r["ratio"] <= args.limit else "  <-- over"
        bad += bool(flag) or not r["exact"]
        print(f"{r['network']:<32} {r['folding']:<18} {r['lanes']:>5} {r['beats']:>5} "
              f"{r['input']:>5} {r['stages']:>24} "
              f"{r['ideal']:>6} {measured:>9} {ratio:>6}  {'yes' if r['exact'] else 'NO'}{flag}")
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    if ratios:
        print(f"ratio: max {max(ratios):.3f}, mean {np.mean(ratios):.3f} (limit {args.limit})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
