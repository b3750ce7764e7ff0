"""Resources, Fmax and throughput of the default digits model on both boards, several foldings.

For each board and folding: the whole board top (UART host link + accelerator) is built with
``bitstreams.flow`` (Yosys, nextpnr, pack; the board's placement seed attempts), and the
accelerator's steady-state cycles per inference are measured in a cocotb simulation of its
Verilog (samples back to back, every output compared with the golden model). Printed per row:

* LUT4 / FF / BRAM / SPRAM used (iCE40: also logic cells, LUT4 + flip-flop pairs, and the
  cell model's estimate of them made before synthesis with its error, bitstreams/cells.py;
  SPRAM: the UP5K's single-port RAMs, where the link's benchmark store goes; "-" on the ECP5);
* Fmax achieved by nextpnr for the design clock, and whether the board's clock is met;
* cycles per inference (simulation) and the ideal bound of the folding;
* inferences/s at the achieved Fmax = Fmax / cycles (the accelerator's own rate; the UART
  link moves far fewer, see docs/bitstreams.md);
* synaptic operations per second = inferences/s x sum over layers of N x M x T (every synapse
  once per time step, the work a dense SNN does per inference).

    python bench/fpga.py                     # both boards, all foldings (about 15 minutes)
    python bench/fpga.py --quick             # the boards' default foldings only
    python bench/fpga.py --boards icebreaker --foldings 64x2,16x1
    python bench/fpga.py --link              # end to end over the UART, simulated

``--link`` instead simulates each board's whole top (UART at the board's rate, host link,
accelerator at the board's clock and default folding) with the host client, and prints the
end-to-end inferences/s in simulated time: what ``bitspike run`` can reach on the board.

Figures in docs/bitstreams.md come from this script.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sw.atomic import atomic_write_json  # noqa: E402

#: board -> foldings of the digits model (the board's default first)
FOLDINGS = {
    "icebreaker": ["64x2,16x1", "64x1,8x1", "32x1,4x1"],
    "ulx3s-85f": ["64x8,64x1", "64x4,32x1", "64x1,8x1"],
}


def synaptic_ops(artifact) -> int:
    """Synaptic operations per inference: every synapse once per time step."""
    return sum(layer.inputs * layer.neurons * artifact.time_steps for layer in artifact.layers)


def measure_cycles(adir, folding, lanes, x, build, simulator):
    """Steady-state cycles per inference of the accelerator alone (cocotb, back to back),
    built as the board top builds it (same folding and input lanes)."""
    from sim.accelerator import generate, simulate

    desc = generate(adir, out_dir=build, folding=folding, lanes=lanes)
    run = simulate(desc, adir, x, build_dir=build, simulator=simulator,
                   testcases=("back_to_back",))
    return run.steady_cycles, desc.ideal_cycles, run.ok


def link(args) -> int:
    """End-to-end rate through the simulated UART, host link and accelerator."""
    import hw
    from bitstreams.boards import get_board
    from bitstreams.boardsim import simulate
    from bitstreams.flow import default_artifact
    from bitstreams.host import SampleCodec
    from bitstreams.pll import ecp5_pll, ice40_pll
    from bitstreams.protocol import OVERHEAD_BYTES
    from bitstreams.uart import divisor_for
    from sw.cli_artifact import dataset_inputs

    artifact, adir = default_artifact(log=lambda line: print(line, file=sys.stderr))
    adir = (ROOT / adir) if not Path(adir).is_absolute() else Path(adir)
    x, _ = dataset_inputs(artifact, "digits", "test")
    x = x[:min(args.samples, 12)]
    print(f"end to end through the board top (simulated), {len(x)} digits samples, window 4")
    print(f"{'board':<11} {'folding':<11} {'clock':>6} {'baud':>10} {'request B':>9} "
          f"{'result B':>8} {'inf/s':>8} {'exact':>6}")
    ok = True
    for name in [b.strip() for b in args.boards.split(",") if b.strip()]:
        board = get_board(name)
        pll = (ice40_pll if board.family == "ice40" else ecp5_pll)(board.oscillator_hz,
                                                                    board.clock_hz)
        folding = hw.default_folding(artifact, budget=board.budget)
        cpb = divisor_for(pll.f_out, board.baud)
        res = simulate(artifact, adir, x, build_dir=Path(args.out) / f"link-{name}",
                       folding=folding, testcases=("answers_like_golden",),
                       clock_hz=pll.f_out, clocks_per_bit=cpb, timeout_s=0.05,
                       accelerator_options=board.accelerator)["answers_like_golden"]
        exact = res["answered"] == len(x) and not res["mismatches"]
        ok &= exact
        codec = SampleCodec.load(Path(args.out) / f"link-{name}")
        rate = res["answered"] / res["sim_seconds"]
        print(f"{name:<11} {str(folding):<11} {pll.f_out / 1e6:>6g} "
              f"{pll.f_out / cpb:>10,.0f} {codec.sample_bytes + OVERHEAD_BYTES:>9} "
              f"{codec.result_bytes + OVERHEAD_BYTES:>8} {rate:>8,.0f} "
              f"{'yes' if exact else 'NO':>6}")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--boards", default="icebreaker,ulx3s-85f")
    p.add_argument("--foldings", default=None,
                   help="SIMDxPE per layer for every board (default: the table above)")
    p.add_argument("--quick", action="store_true", help="the boards' default foldings only")
    p.add_argument("--samples", type=int, default=24,
                   help="samples simulated back to back per folding (default 24)")
    p.add_argument("--simulator", default=None, help="icarus (default) or verilator")
    p.add_argument("--out", default=str(ROOT / "build" / "bench-fpga"))
    p.add_argument("--link", action="store_true",
                   help="simulate the whole board top over its UART instead (end to end)")
    args = p.parse_args(argv)
    if args.link:
        return link(args)

    from tqdm import tqdm

    from bitstreams.boards import get_board
    from bitstreams.fit import FitError
    from bitstreams.flow import FlowError, build, default_artifact
    from sw.cli_artifact import dataset_inputs

    artifact, adir = default_artifact(log=lambda line: print(line, file=sys.stderr))
    adir = (ROOT / adir) if not Path(adir).is_absolute() else Path(adir)
    x, _ = dataset_inputs(artifact, "digits", "test")
    x = x[:args.samples]
    sops = synaptic_ops(artifact)
    out = Path(args.out)
    boards = [b.strip() for b in args.boards.split(",") if b.strip()]
    cases = []
    for name in boards:
        get_board(name)
        foldings = ([args.foldings] if args.foldings else
                    FOLDINGS[name][:1] if args.quick else FOLDINGS[name])
        cases += [(name, f) for f in foldings]

    rows, cycles_cache = [], {}
    t0 = time.perf_counter()
    for name, folding in tqdm(cases, unit="build", file=sys.stderr):
        tag = f"{name}-{folding.replace(',', '_')}"
        try:
            report = build(name, artifact, artifact_dir=adir, folding=folding,
                           out_dir=out / tag, log=lambda line: None)
        except (FitError, FlowError, ValueError) as exc:  # a row that says why; go on
            rows.append({"board": name, "folding": folding, "error": str(exc)})
            continue
        if folding not in cycles_cache:
            cycles_cache[folding] = measure_cycles(adir, folding, report["lanes"], x,
                                                   out / f"sim-{tag}", args.simulator)
        measured, ideal, exact = cycles_cache[folding]
        fmax = report["achieved_mhz"]
        u = report["utilization"]
        rate = fmax * 1e6 / measured if measured else None
        rows.append({
            "board": name, "folding": folding, "lut4": u["lut4"]["used"],
            "lut4_available": u["lut4"]["available"], "ff": u["ff"]["used"],
            "bram": u["bram"]["used"], "bram_available": u["bram"]["available"],
            "spram": u.get("spram", {}).get("used"),
            "logic_cells": u.get("logic_cells", {}).get("used"),
            "logic_cells_model": (report.get("cell_estimate") or {}).get("logic_cells"),
            "clock_mhz": report["clock"]["pll_mhz"], "fmax_mhz": fmax,
            "timing_met": report["timing_met"], "seed": report["seed"],
            "cycles": measured, "ideal": ideal, "exact": exact,
            "inferences_per_s": rate, "sops": rate * sops if rate else None,
        })
    atomic_write_json(out / "results.json", rows)

    print(f"default digits model {artifact.summary()}, {sops} synaptic operations per "
          f"inference; {time.perf_counter() - t0:.0f} s")
    head = (f"{'board':<11} {'folding':<12} {'LUT4':>6} {'LC':>5} {'model':>12} {'FF':>6} "
            f"{'BRAM':>7} {'SPRAM':>5} "
            f"{'Fmax MHz':>9} {'clock':>8} {'cycles':>7} {'ideal':>6} {'inf/s @Fmax':>12} "
            f"{'GSOP/s':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['board']:<11} {r['folding']:<12} {r['error'][:90]}")
            continue
        lc = "-" if r["logic_cells"] is None else str(r["logic_cells"])
        est, packed = r["logic_cells_model"], r["logic_cells"]
        model = ("-" if est is None or packed is None else
                 f"{est} {100 * (est / packed - 1):+.0f}%")
        spram = "-" if r["spram"] is None else str(r["spram"])
        met = "met" if r["timing_met"] else "NOT met"
        print(f"{r['board']:<11} {r['folding']:<12} {r['lut4']:>6} {lc:>5} {model:>12} "
              f"{r['ff']:>6} "
              f"{r['bram']:>3}/{r['bram_available']:<3} {spram:>5} {r['fmax_mhz']:>9.1f} "
              f"{r['clock_mhz']:>4g} {met:<3} {r['cycles']:>7.1f} {r['ideal']:>6} "
              f"{r['inferences_per_s']:>12,.0f} {r['sops'] / 1e9:>7.2f}")
    return 0 if all("error" not in r and r["exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
