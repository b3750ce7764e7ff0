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

import contextlib
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
from sim.runner import SimResult, SimulationError, build, default_simulator, test

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
             corrupt_at: int = 0, waves: bool = False, progress=None, jobs: int = 1,
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
        This case's own directory (simulator build, inputs, results, logs, waves).
    simulator : str
        ``icarus`` or ``verilator`` (default: ``$SIM``, else icarus).
    testcases : sequence of str
        Among :data:`TESTCASES`.
    seed, gaps, backpressure, trace, corrupt, corrupt_at
        See :class:`sim.params.TBParams`; ``corrupt_at`` is a sample index of ``x``.
    waves : bool
        Dump a waveform (FST with Icarus, VCD with Verilator), one per job.
    progress : callable or None
        ``progress(done_samples)`` is called about twice a second while the simulation runs.
    jobs : int
        Simulator processes sharing the samples (contiguous slices, one build); each job
        measures its own steady state. Icarus is single-threaded, so 2 jobs on 2 cores halve
        the wall time of a long run.
    check : bool
        Raise SimulationError on any failed test (default).
    """
    if not isinstance(description, Description):
        description = Description.load(description)
    unknown = [t for t in testcases if t not in TESTCASES]
    if unknown or not testcases:
        raise ValueError(f"testcases must be among {', '.join(TESTCASES)}, not {list(testcases)}")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, not {jobs!r}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    adir = artifact_dir_of(artifact, build_dir).resolve()
    x = np.asarray(x)
    if len(x) < 1:
        raise ValueError("x must hold at least one sample")
    simulator = simulator or default_simulator()
    # Each job needs a few samples of its own to reach a steady state.
    jobs = max(1, min(jobs, len(x) // 8))
    bounds = np.linspace(0, len(x), jobs + 1).astype(int)
    t0 = time.perf_counter()
    sim_dir = build_dir / simulator
    build_s = build(sources=[description.verilog], toplevel=description.top, build_dir=sim_dir,
                    simulator=simulator, waves=waves)

    plans = []
    for k in range(jobs):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        job_dir = build_dir if jobs == 1 else build_dir / f"job{k}"
        job_dir.mkdir(parents=True, exist_ok=True)
        inputs = job_dir / "inputs.npy"
        np.save(inputs, x[lo:hi])
        results = job_dir / "results.json"
        results.unlink(missing_ok=True)
        progress_file = job_dir / "progress.txt"
        progress_file.unlink(missing_ok=True)
        here = lo <= corrupt_at < hi
        params = TBParams(description=str(description.path.resolve()), artifact=str(adir),
                          inputs=str(inputs), seed=int(seed) + k, samples=hi - lo,
                          sample_offset=lo, gaps=gaps, backpressure=backpressure, trace=trace,
                          corrupt=corrupt if here else "none",
                          corrupt_at=corrupt_at if here else 0, results=str(results),
                          progress=str(progress_file) if progress else "")
        plans.append((job_dir, params, results, progress_file))

    def go(job_dir, params):
        test_dir = sim_dir if jobs == 1 else job_dir
        name = f"{simulator}.log" if jobs == 1 else f"{simulator}.{job_dir.name}.log"
        log = build_dir / name
        return test(toplevel=description.top, test_module="sim.tb_accelerator",
                    testcases=list(testcases), build_dir=sim_dir, test_dir=test_dir,
                    simulator=simulator, env=params.to_env(), waves=waves, seed=params.seed,
                    log_file=log, check=False)

    sims = _run_jobs([(go, (d, p)) for d, p, _, _ in plans],
                     [f for *_, f in plans] if progress else None, progress)
    wall = time.perf_counter() - t0
    merged_sim = SimResult(simulator=simulator, build_s=build_s, build_dir=sim_dir,
                           test_s=max(s.test_s for s in sims), log_file=sims[0].log_file,
                           waves=sims[0].waves)
    for sim in sims:
        merged_sim.tests.extend(sim.tests)
    measured = _merge_results([json.loads(r.read_text()) if r.is_file() else {}
                               for _, _, r, _ in plans])
    out = RegressionRun(sim=merged_sim, results=measured, description=description, wall_s=wall)
    out.extra["jobs"] = jobs
    out.extra["logs"] = [str(s.log_file) for s in sims]
    if check and not merged_sim.ok:
        lines = [f"{t.name}: {t.message}" for t in merged_sim.failed]
        raise SimulationError(
            f"{len(merged_sim.failed)} of {len(merged_sim.tests)} accelerator test(s) failed on "
            f"{simulator} (seed {seed}, log {', '.join(out.extra['logs'])}):\n"
            + "\n".join(lines), merged_sim)
    return out


def _merge_results(parts: list) -> dict:
    """One results dict per test from the jobs' (outputs concatenated, counts summed, the
    slowest steady state kept)."""
    merged = {}
    for part in parts:
        for name, r in part.items():
            if name not in merged:
                merged[name] = {**r, "outputs": list(r.get("outputs", [])),
                                "mismatches": list(r.get("mismatches", []))}
                continue
            m = merged[name]
            m["ok"] = m["ok"] and r["ok"]
            m["outputs"] += r.get("outputs", [])
            m["mismatches"] += r.get("mismatches", [])
            for key in ("input_beats", "compared", "trace_compared", "mismatched_outputs",
                        "mismatched_trace", "cycles"):
                m[key] = m.get(key, 0) + r.get(key, 0)
            m["report"] = m.get("report", "") + "\n" + r.get("report", "")
            if r.get("steady_cycles") is not None:
                m["steady_cycles"] = max(m.get("steady_cycles") or 0, r["steady_cycles"])
            if "dropped_samples" in r:
                m["dropped_samples"] = m.get("dropped_samples", []) + r["dropped_samples"]
    return merged


def _run_jobs(calls, progress_files, callback) -> list:
    """Run ``calls`` (function, args) in threads (each starts a simulator process); while they
    run, report the summed progress files to ``callback``. Re-raises the first error."""
    results = [None] * len(calls)
    errors = []

    def target(k, fn, args):
        try:
            results[k] = fn(*args)
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(k, fn, args), daemon=True)
               for k, (fn, args) in enumerate(calls)]
    for t in threads:
        t.start()
    last = -1
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.5 / len(threads))
        if progress_files is None:
            continue
        done = 0
        for f in progress_files:
            with contextlib.suppress(FileNotFoundError, ValueError):
                done += int(f.read_text() or 0)
        if done != last:
            callback(done)
            last = done
    if errors:
        raise errors[0]
    return results
