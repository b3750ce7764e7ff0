"""``python -m hw.synth``: the accelerator alone through Yosys and nextpnr (kept for its old
command line; it is the bitstream flow's core-only target).

    python -m hw.synth ARTIFACT --folding 64x4,32x1 --device up5k

is ``python -m bitstreams.flow --core-only --board icebreaker --artifact ARTIFACT ...``
(``--device ecp5-85k``: ``--board ulx3s-85f``): devices, tools and options come from the board
registry (:mod:`bitstreams.boards`) and :func:`bitstreams.flow.find_tool`, the harness from
:class:`bitstreams.core.CoreHarness`.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["DEVICE_BOARDS", "main"]

#: ``--device`` -> the board whose device it is.
DEVICE_BOARDS = {"up5k": "icebreaker", "ecp5-85k": "ulx3s-85f"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw.synth", description=__doc__.split("\n")[0])
    p.add_argument("artifact", help="artifact directory")
    p.add_argument("--folding", default=None, help="SIMDxPE per layer (default: hw's)")
    p.add_argument("--device", choices=sorted(DEVICE_BOARDS), default="up5k")
    p.add_argument("--freq", type=float, default=None, help="target MHz (default: the board's)")
    p.add_argument("--lanes", type=int, default=None)
    p.add_argument("--popcount-stages", type=int, default=None)
    p.add_argument("--budget", type=int, default=None,
                   help="synaptic bits per cycle of the default folding (default: hw's)")
    p.add_argument("--weight-memory", choices=["auto", "block", "logic"], default=None)
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--workdir", default=None, help="build folder")
    args = p.parse_args(argv)

    from bitstreams.flow import main as flow_main
    from hw.plan import DEFAULT_BUDGET, default_folding
    from sw.artifact import ArtifactError, load_artifact

    folding = args.folding
    if folding is None:
        # This command's default, as before: hw's default folding (not the board's budget).
        try:
            folding = str(default_folding(load_artifact(args.artifact),
                                          budget=args.budget or DEFAULT_BUDGET))
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    argv = ["--core-only", "--board", DEVICE_BOARDS[args.device], "--artifact", args.artifact,
            "--seed", str(args.seed)]
    for flag, value in (("--folding", folding), ("--clock", args.freq),
                        ("--out", args.workdir)):
        if value is not None:
            argv += [flag, str(value)]
    for name, value in (("lanes", args.lanes), ("popcount_stages", args.popcount_stages),
                        ("budget", args.budget), ("weight_memory", args.weight_memory)):
        if value is not None:
            argv += ["--hw-option", f"{name}={value}"]
    return flow_main(argv)


if __name__ == "__main__":
    sys.exit(main())
