"""``bitspike verilog``: generate the accelerator of an artifact."""

from __future__ import annotations

import sys
import time
from pathlib import Path


class Verilog:
    @staticmethod
    def configure(p):
        from hw.plan import DEFAULT_BUDGET
        from hw.stage import WEIGHT_MEMORY
        from hw.timing import POPCOUNT_STAGES, SLOTS
        from sw.options import add_folding, int_in, positive_int

        p.add_argument("artifact", help="artifact directory (holding manifest.json)")
        add_folding(p, "the fastest folding within --budget")
        p.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET,
                       help="synaptic bits per cycle (sum of SIMD*PE) for the default folding "
                            f"(default {DEFAULT_BUDGET})")
        p.add_argument("--lanes", type=positive_int, default=None,
                       help="input values per beat (default: the smallest divisor of the first "
                            "layer's SIMD that keeps the input transfer under half the "
                            "slowest stage)")
        p.add_argument("--trace", action="store_true",
                       help="add the debug trace streams (every layer's x, h, v, s / sums)")
        p.add_argument("--slots", type=int_in(*SLOTS), default=None,
                       help="samples every buffer holds (default: per buffer, enough for a "
                            "slot's round trip; see docs/hardware.md)")
        p.add_argument("--popcount-stages", type=int_in(*POPCOUNT_STAGES), default=3,
                       help="register stages in every popcount tree (default 3)")
        p.add_argument("--weight-memory", choices=WEIGHT_MEMORY, default="auto",
                       help="where synthesis puts the weights (ram_style/rom_style attribute)")
        p.add_argument("--no-memory-register", dest="memory_register", action="store_false",
                       help="feed logic straight from the memories' read ports (one cycle "
                            "less per stage, no flip-flop copies of the words: the iCE40 "
                            "boards' choice; default: every block-RAM read registered)")
        p.add_argument("--top", default="bitspike_accel", help="top module name")
        p.add_argument("-o", "--output", required=True, help="output directory")

    @staticmethod
    def run(args):
        from tqdm import tqdm

        from hw.generate import DESCRIPTION_FILE, generate
        from sw.artifact import ArtifactError, load_artifact
        from sw.folding import Folding
        from sw.options import check_output_dir

        try:
            artifact = load_artifact(args.artifact)
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        steps = ["elaborate", "verilog", "write"]
        try:
            folding = Folding.parse(args.folding, artifact) if args.folding else None
            check_output_dir(args.output)  # before the elaboration, not after it
            with tqdm(total=len(steps), desc="verilog", unit="step", leave=False) as bar:
                def progress(name):
                    bar.set_postfix_str(name)
                    if name != steps[0]:
                        bar.update(1)

                desc = generate(artifact, folding, args.output, top=args.top,
                                lanes=args.lanes, trace=args.trace, slots=args.slots,
                                popcount_stages=args.popcount_stages,
                                weight_memory=args.weight_memory, budget=args.budget,
                                memory_register=args.memory_register, progress=progress)
                bar.update(1)
        except (TypeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        dt = time.perf_counter() - t0
        out = Path(args.output)
        print(f"accelerator for {artifact.summary()}  ({dt:.1f} s)")
        print(f"{'layer':<10} {'kind':<8} {'N':>5} {'M':>5} {'folding':>9} {'cycles':>8} "
              f"{'latency':>8} {'weight bits':>12}")
        by_name = {layer.name: layer for layer in artifact.layers}
        for layer in desc["layers"]:
            # N and M of the synapse array: a conv layer's window K·K·C_in and its C_out
            # channels (fan_in, weight_rows), not its map sizes; a dense layer's N and M
            src = by_name.get(layer["name"])
            n = getattr(src, "fan_in", layer["inputs"])
            m = getattr(src, "weight_rows", layer["neurons"])
            print(f"{layer['name']:<10} {layer['kind']:<8} {n:>5} "
                  f"{m:>5} {layer['simd']:>5}x{layer['pe']:<3} "
                  f"{layer['cycles_per_sample']:>8} {layer['latency']:>8} "
                  f"{layer['weight_memory_bits']:>12}")
        inp, cyc = desc["input"], desc["cycles"]
        buf_bits = sum(b["bits"] for b in desc["buffers"])
        print(f"input      {inp['kind']}/{inp['bits']}b, {inp['lanes']} lanes, "
              f"{inp['beats_per_sample']} beats per sample")
        print(f"buffers    {buf_bits} bits in {len(desc['buffers'])} buffers "
              f"(slots {', '.join(str(b['slots']) for b in desc['buffers'])})")
        print(f"ideal      {cyc['ideal_per_sample']} cycles per sample "
              f"(bottleneck: {cyc['bottleneck']}), first-sample latency {cyc['latency']} cycles")
        print(f"wrote      {out / desc['verilog']}, {out / DESCRIPTION_FILE}, "
              f"{len(desc['memories'])} .mem files")
        return 0
