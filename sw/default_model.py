"""The default model: the digits network that the main job and the bitstream flow use when no
artifact is named.

``ensure_trained`` trains it (``sw.train.TrainConfig()``: digits, hardware-profile MLP
64-128-10, T=4, AGMM) into :data:`RUN_DIR`, or reuses/resumes what is there;
``ensure_exported`` exports it to :data:`ARTIFACT_DIR`, or reuses the artifact when it came from
the same checkpoint. Both report through a ``log`` callable (one line a call, no step numbers:
each job numbers its own steps). Nothing here depends on the hardware, the simulators or the
board flow, so every job can call it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sw.digest import Sha256

__all__ = ["RUN_DIR", "ARTIFACT_DIR", "ensure_trained", "ensure_exported", "ensure_default"]

#: Where the default model is trained.
RUN_DIR = Path("runs/default")
#: Where it is exported.
ARTIFACT_DIR = Path("artifacts/digits")


def _quiet(line: str) -> None:
    pass


def ensure_trained(run_dir: Path = RUN_DIR, log: Callable[[str], None] = _quiet) -> Path:
    """The checkpoint of the default model in ``run_dir``: reused when it is complete and was
    trained with today's default options, resumed when interrupted, trained otherwise (on
    :data:`sw.train.DEFAULT_THREADS` torch threads, as ``bitspike train`` trains it)."""
    from sw.train import (
        CHECKPOINT,
        CheckpointError,
        TrainConfig,
        load_checkpoint,
        torch_threads,
        train,
    )

    run_dir = Path(run_dir)
    config = TrainConfig()
    path = run_dir / CHECKPOINT
    if path.is_file():
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            log(f"{exc}; training afresh")
            ckpt = None
        if ckpt is not None and ckpt["config"] == config.to_json():
            if int(ckpt["epoch"]) >= config.total_epochs:
                log(f"reusing the trained default model in {run_dir} ({ckpt['epoch']} epochs)")
                return path
            log(f"resuming the default model in {run_dir} at epoch {ckpt['epoch']}")
            with torch_threads():
                train(None, run_dir, resume=True)
            return path
        if ckpt is not None:
            log(f"{run_dir} holds a model trained with other options; training the default "
                f"model afresh")
    else:
        log(f"training the default digits model into {run_dir}")
    with torch_threads():
        train(config, run_dir, overwrite=True)
    return path


def ensure_exported(checkpoint: Path, out: Path = ARTIFACT_DIR,
                    log: Callable[[str], None] = _quiet,
                    detail: Callable[[str], None] = _quiet):
    """The artifact exported from ``checkpoint`` at ``out`` (re-exported when it came from
    another checkpoint); ``detail`` gets the export report's table, a line a call."""
    from sw.artifact import ArtifactError, load_artifact
    from sw.export import export

    checkpoint, out = Path(checkpoint), Path(out)
    digest = Sha256.of_file(checkpoint)
    if (out / "manifest.json").is_file():
        try:
            art = load_artifact(out)
        except ArtifactError:
            art = None
        if art is not None:
            try:
                recorded = Sha256.parse(art.metadata.get("checkpoint_sha256"))
            except ValueError:
                recorded = None
            if recorded == digest:
                log(f"reusing the artifact {out} (exported from this checkpoint)")
                return art
    log(f"exporting {checkpoint} to {out}")
    art, report = export(checkpoint, out, overwrite=True, log=_quiet)
    for line in report.table().splitlines():
        detail(line)
    return art


def ensure_default(log: Callable[[str], None] = _quiet):
    """Train and export the default model as needed; returns ``(artifact, ARTIFACT_DIR)``."""
    checkpoint = ensure_trained(RUN_DIR, log)
    return ensure_exported(checkpoint, ARTIFACT_DIR, log, lambda line: log("  " + line)), \
        ARTIFACT_DIR
