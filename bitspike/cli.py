"""The ``bitspike`` command: one subcommand per step of the data path.

Subcommands are registered in :data:`COMMANDS` (name -> ``"module:Class"``, one-line help).
The class has static methods ``configure(parser)`` and ``run(args) -> int``; a bare
``"module"`` is a whole job whose ``main(argv) -> int`` parses its own options (the main job,
the bitstream flow: ``bitspike simulate`` is ``python -m sim.main``). A command's module is
imported only when its subcommand runs, so ``bitspike --help`` stays fast and a missing optional
dependency (torch, amaranth) only matters to the subcommands that need it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bitspike import __version__
from sw.options import run_command

#: name -> ("module:Class", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("sw.cli_artifact:Info", "validate an artifact, print its layers and widths"),
    "golden": ("sw.cli_artifact:Golden", "run an artifact's integer golden model on a dataset"),
    "random": ("sw.cli_artifact:Random", "write a random integer network (tests, exploration)"),
    "bram": ("sw.cli_artifact:Bram", "pack an artifact's weights for a folding as $readmemh files"),
    "run": ("bitstreams.host:Run", "stream a dataset to a board over UART, check every answer"),
    "verilog": ("hw.cli:Verilog", "generate the accelerator's Verilog, .mem files and description"),
    "train": ("sw.train.cli:Train", "train a binary spiking network (AGMM) into a run directory"),
    "export": ("sw.export:Export", "fold a training checkpoint into an integer artifact"),
    "nir": ("sw.cli_nir:Nir", "NIR graphs: export an artifact/checkpoint, import a graph "
                              "from another library (needs bitspike[interop])"),
    "plot": ("sw.train.cli:Plot", "PNG plots comparing training runs (accuracy, flips, firing)"),
    "datasets": ("sw.data.cli:Datasets", "list the datasets and their file layouts, load one"),
    "simulate": ("sim.main", "the main job: train/export the default model (or take an "
                             "artifact), check RTL == golden with cocotb (= nox -s simulate)"),
    "bitstream": ("bitstreams.flow", "build a board's bitstream and report.json "
                                     "(= nox -s bitstream)"),
}


def _load(target: str):
    module, _, obj = target.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, obj) if obj else mod


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bitspike",
        description="Binary spiking neural networks: train (AGMM), export to an integer model, "
                    "generate and verify an FPGA accelerator, build bitstreams.")
    parser.add_argument("--version", action="version", version=f"bitspike {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (target, help_text) in COMMANDS.items():
        # add_help=False: "--help" after a command reaches that command's own parser.
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.set_defaults(_target=target)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    # Parse the command name first, then let its module add its own options.
    args, _ = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    target = COMMANDS[args.command][0]
    rest = argv[argv.index(args.command) + 1:]
    if ":" not in target:
        # A whole job with its own parser and exit codes (``main(argv) -> int``): the same
        # program as ``python -m <module>`` and its nox session.
        return _guarded(lambda: _load(target).main(rest))
    command = _load(target)
    from sw.options import HelpFormatter

    sub = argparse.ArgumentParser(prog=f"bitspike {args.command}",
                                  description=COMMANDS[args.command][1],
                                  formatter_class=HelpFormatter)
    command.configure(sub)
    cmd_args = sub.parse_args(rest)
    return _guarded(lambda: command.run(cmd_args))


_guarded = run_command  # the one error path of every entry point (sw.options.run_command)
