"""Generate the accelerator's Verilog and run its cocotb testbench: the Python side.

    from sim.accelerator import generate, simulate
    desc = generate("artifacts/digits", out_dir="sim_build/digits")        # Verilog + JSON
    run = simulate(desc, "artifacts/digits", x, simulator="icarus", build_dir="sim_build/digits")
    run.mismatches, run.predictions, run.steady_cycles, run.ideal_cycles

:func:`simulate` writes the inputs next to the build, passes every parameter to
``sim/tb_accelerator.py`` through :class:`sim.params.TBParams`, runs it with
:func:`sim.runner.run` and reads back what it measured: the outputs (prediction, scores) and the
cycle each came out, the mismatch count and the first mismatch, and the steady-state cycles per
inference. Any failed test raises :class:`sim.runner.SimulationError` (unless ``check=False``),
whose message carries the first mismatch and the seed that replays it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.description import Description
from sim.params import TBParams
from sim.runner import SimResult, SimulationError, default_simulator, run

__all__ = ["TESTCASES", "RegressionRun", "generate", "simulate", "artifact_dir_of"]

TESTCASES = ("regression", "back_to_back", "reset_mid_sample")


@dataclass
class RegressionRun:
    """What one :func:`simulate` call measured.

    Attributes
    ----------
    sim : SimResult
        The runner's result (tests, wall times, log, waves).
    results : dict
        Per cocotb test: outputs (sample, cycle, prediction, scores), counts, mismatches.
    description : Description
    """

    sim: SimResult
    results: dict
    description: Description
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def _main(self) -> dict:
        for name in ("regression", "back_to_back", "reset_mid_sample"):
            if name in self.results:
                return self.results[name]
        return {}

    @property
    def outputs(self) -> list:
        return self._main().get("outputs", [])

    @property
    def predictions(self) -> np.ndarray:
        """Predicted class of every sample, in sample order (main test)."""
        outs = sorted(self.outputs, key=lambda o: o["sample"])
        return np.array([o["prediction"] for o in outs], dtype=np.int64)

    @property
    def scores(self) -> np.ndarray:
        outs = sorted(self.outputs, key=lambda o: o["sample"])
        return np.array([o["scores"] for o in outs], dtype=np.int64)

    @property
    def mismatches(self) -> int:
        """Output items (and trace beats) that differed from the golden model, all tests."""
        return sum(r.get("mismatched_outputs", 0) + r.get("mismatched_trace", 0)
                   for r in self.results.values())

    @property
    def first_mismatch(self) -> str | None:
        for r in self.results.values():
            if r.get("mismatches"):
                return r["mismatches"][0]
        return None

    @property
    def ideal_cycles(self) -> int:
        return self.description.ideal_cycles

    @property
    def steady_cycles(self) -> float | None:
        """Steady-state cycles per inference from the ``back_to_back`` test (None if not run)."""
        r = self.results.get("back_to_back")
        return None if r is None else r.get("steady_cycles")

    @property
    def ok(self) -> bool:
        return self.sim.ok and self.mismatches == 0


def artifact_dir_of(artifact, build_dir: Path) -> Path:
    """A directory holding ``artifact``: itself when it is a path, else written under
    ``build_dir`` (the testbench loads the artifact from files, like every other consumer)."""
    if isinstance(artifact, (str, os.PathLike)):
        return Path(artifact)
    from sw.artifact import write_artifact

    path = Path(build_dir) / "artifact"
    write_artifact(artifact, path, overwrite=True)
    return path


def _options_key(artifact_dir: Path, folding, options: dict) -> str:
    h = hashlib.sha256((artifact_dir / "manifest.json").read_bytes())
    h.update(json.dumps({"folding": str(folding) if folding is not None else None,
                         **options}, sort_keys=True).encode())
    return h.hexdigest()


def generate(artifact, *, out_dir, folding=None, trace: bool = False, lanes: int | None = None,
             reuse: bool = True, **options) -> Description:
    """Generate the Verilog and description of ``artifact`` (a directory or an Artifact) into
    ``out_dir`` with ``hw.generate``; reuse what is there when it was generated from the same
    artifact with the same options. ``folding`` is a ``sw.folding.Folding``, a string
    ``"SxP,..."`` or None (the generator's default)."""
    from hw import generate as hw_generate
    from sw.artifact import load_artifact
    from sw.folding import Folding

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    adir = artifact_dir_of(artifact, out_dir)
    art = load_artifact(adir)
    if isinstance(folding, str):
        folding = Folding.parse(folding, art)
    key = _options_key(adir, folding, {"trace": trace, "lanes": lanes, **options})
    stamp = out_dir / "generated.key"
    hw_dir = out_dir / "hw"
    if reuse and stamp.is_file() and stamp.read_text() == key:
        found = sorted(hw_dir.glob("*.json"))
        if found:
            return Description.load(_description_file(hw_dir))
    if hw_dir.exists():
        shutil.rmtree(hw_dir)
    stamp.unlink(missing_ok=True)
    hw_generate(art, folding, hw_dir, trace=trace, lanes=lanes, **options)
    desc = Description.load(_description_file(hw_dir))
    stamp.write_text(key)
    return desc


def _description_file(hw_dir: Path) -> Path:
    from hw import DESCRIPTION_FILE

    return hw_dir / DESCRIPTION_FILE


def simulate(description, artifact, x, *, build_dir, simulator: str | None = None,
             testcases=("regression",), seed: int = 0, gaps: float = 0.0,
             backpressure: float = 0.0, trace: bool = False, corrupt: str = "none",
             corrupt_at: int = 0, waves: bool = False, progress=None,
             check: bool = True) -> RegressionRun:
    """Run the accelerator's cocotb tests on inputs ``x`` (the golden model's input shape).

    Parameters
    ----------
    description : Description or path
        What :func:`generate` returned (the Verilog sits beside it).
    artifact : path or Artifact
        The artifact the description was generated from.
    x : array
        ``(B, N)`` values or ``(B, T, N)`` spikes.
    build_dir : path
        This case's own directory (simulator build, inputs, results, log, waves).
    simulator : str
        ``icarus`` or ``verilator`` (default: ``$SIM``, else icarus).
    testcases : sequence of str
        Among :data:`TESTCASES`.
    seed, gaps, backpressure, trace, corrupt, corrupt_at
        See :class:`sim.params.TBParams`.
    waves : bool
        Dump a waveform (FST with Icarus, VCD with Verilator) into ``build_dir``.
    progress : callable or None
        ``progress(done_samples)`` is called about twice a second while the simulation runs.
    check : bool
        Raise SimulationError on any failed test (default).
    """
    if not isinstance(description, Description):
        description = Description.load(description)
    unknown = [t for t in testcases if t not in TESTCASES]
    if unknown or not testcases:
        raise ValueError(f"testcases must be among {', '.join(TESTCASES)}, not {list(testcases)}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    adir = artifact_dir_of(artifact, build_dir).resolve()
    x = np.asarray(x)
    if len(x) < 1:
        raise ValueError("x must hold at least one sample")
    inputs = build_dir / "inputs.npy"
    np.save(inputs, x)
    results = build_dir / "results.json"
    results.unlink(missing_ok=True)
    progress_file = build_dir / "progress.txt"
    progress_file.unlink(missing_ok=True)
    params = TBParams(description=str(description.path.resolve()), artifact=str(adir),
                      inputs=str(inputs), seed=int(seed), samples=len(x), gaps=gaps,
                      backpressure=backpressure, trace=trace, corrupt=corrupt,
                      corrupt_at=corrupt_at, results=str(results),
                      progress=str(progress_file) if progress else "")
    simulator = simulator or default_simulator()
    t0 = time.perf_counter()

    def go():
        return run(sources=[description.verilog], toplevel=description.top,
                   test_module="sim.tb_accelerator", testcases=list(testcases),
                   build_dir=build_dir / simulator, simulator=simulator, env=params.to_env(),
                   waves=waves, seed=seed, log_file=build_dir / f"{simulator}.log", check=False)

    sim = go() if progress is None else _with_progress(go, progress_file, progress)
    wall = time.perf_counter() - t0
    measured = json.loads(results.read_text()) if results.is_file() else {}
    out = RegressionRun(sim=sim, results=measured, description=description, wall_s=wall)
    if check and not sim.ok:
        lines = [f"{t.name}: {t.message}" for t in sim.failed]
        raise SimulationError(
            f"{len(sim.failed)} of {len(sim.tests)} accelerator test(s) failed on {simulator} "
            f"(seed {seed}, log {sim.log_file}):\n" + "\n".join(lines), sim)
    return out


def _with_progress(go, progress_file: Path, callback):
    box = {}

    def target():
        try:
            box["result"] = go()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    last = -1
    while thread.is_alive():
        thread.join(0.5)
        try:
            done = int(progress_file.read_text() or 0)
        except (FileNotFoundError, ValueError):
            continue
        if done != last:
            callback(done)
            last = done
    if "error" in box:
        raise box["error"]
    return box["result"]
