"""The default models: the digits networks that the main job and the bitstream flow use when no
artifact is named.

:data:`MODELS` is the one table of their names, training configs and paths:

* ``"mlp"`` (the default): ``sw.train.TrainConfig()``: digits, hardware-profile MLP 64-128-10,
  T=4, AGMM; trained into ``runs/default``, exported to ``artifacts/digits``;
* ``"conv"``: ``TrainConfig(model="conv")``, the ``conv`` preset of :data:`sw.models.PRESETS`
  (VGG 32,64,M on digits 8x8, 80 epochs + the gate-free fine-tune); trained into
  ``runs/conv``, exported to ``artifacts/digits-conv``.

``ensure_trained`` trains a model into its run directory, or reuses/resumes what is there;
``ensure_exported`` exports it, or reuses the artifact when it came from the same checkpoint.
Both report through a ``log`` callable (one line a call, no step numbers: each job numbers its
own steps). Nothing here depends on the hardware, the simulators or the board flow, so every
job can call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sw.digest import Sha256

__all__ = ["DefaultModel", "MODELS", "DEFAULT", "RUN_DIR", "ARTIFACT_DIR", "get", "config",
           "ensure_trained", "ensure_exported", "ensure_default"]


@dataclass(frozen=True)
class DefaultModel:
    """A named default model: ``TrainConfig(**options)`` trained into ``run_dir`` and exported
    to ``artifact_dir`` (both relative to the working directory)."""

    name: str
    options: dict
    run_dir: Path
    artifact_dir: Path
    summary: str


#: name -> the default model of that name (the one table of their configs and paths).
MODELS: dict[str, DefaultModel] = {
    "mlp": DefaultModel("mlp", {}, Path("runs/default"), Path("artifacts/digits"),
                        "digits MLP 64-128-10, T=4"),
    "conv": DefaultModel("conv", {"model": "conv"}, Path("runs/conv"),
                         Path("artifacts/digits-conv"),
                         "digits VGG 32,64,M on 8x8 input, T=4"),
}
#: The model of the jobs run without ``--model``.
DEFAULT = "mlp"
#: Where the default MLP is trained (``MODELS["mlp"].run_dir``).
RUN_DIR = MODELS[DEFAULT].run_dir
#: Where it is exported (``MODELS["mlp"].artifact_dir``).
ARTIFACT_DIR = MODELS[DEFAULT].artifact_dir


def get(name: str = DEFAULT) -> DefaultModel:
    """The default model ``name``; ValueError naming the known ones otherwise."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {name!r}") from None


def config(name: str = DEFAULT):
    """The ``sw.train.TrainConfig`` of default model ``name``."""
    from sw.train import TrainConfig

    return TrainConfig(**get(name).options)


def _quiet(line: str) -> None:
    pass


def ensure_trained(run_dir: Path | None = None, log: Callable[[str], None] = _quiet,
                   model: str = DEFAULT) -> Path:
    """The checkpoint of default model ``model`` in ``run_dir`` (default: the model's own):
    reused when it is complete and was trained with today's options of that model, resumed
    when interrupted, trained otherwise (on :data:`sw.train.DEFAULT_THREADS` torch threads, as
    ``bitspike train`` trains it)."""
    from sw.train import CHECKPOINT, CheckpointError, load_checkpoint, torch_threads, train

    entry = get(model)
    run_dir = Path(entry.run_dir if run_dir is None else run_dir)
    cfg = config(model)
    label = "default model" if entry.name == DEFAULT else f"default {entry.name} model"
    path = run_dir / CHECKPOINT
    if path.is_file():
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as exc:
            log(f"{exc}; training afresh")
            ckpt = None
        if ckpt is not None and ckpt["config"] == cfg.to_json():
            if int(ckpt["epoch"]) >= cfg.total_epochs:
                log(f"reusing the trained {label} in {run_dir} ({ckpt['epoch']} epochs)")
                return path
            log(f"resuming the {label} in {run_dir} at epoch {ckpt['epoch']}")
            with torch_threads():
                train(None, run_dir, resume=True)
            return path
        if ckpt is not None:
            log(f"{run_dir} holds a model trained with other options; training the {label} afresh")
    else:
        log(f"training the {label} ({entry.summary}) into {run_dir}")
    with torch_threads():
        train(cfg, run_dir, overwrite=True)
    return path


def ensure_exported(checkpoint: Path, out: Path | None = None,
                    log: Callable[[str], None] = _quiet,
                    detail: Callable[[str], None] = _quiet, model: str = DEFAULT):
    """The artifact exported from ``checkpoint`` at ``out`` (default: the artifact directory of
    default model ``model``; re-exported when it came from another checkpoint); ``detail``
    gets the export report's table, a line a call."""
    from sw.artifact import ArtifactError, load_artifact
    from sw.export import export

    checkpoint = Path(checkpoint)
    out = Path(get(model).artifact_dir if out is None else out)
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


def ensure_default(log: Callable[[str], None] = _quiet, model: str = DEFAULT):
    """Train and export default model ``model`` as needed, at its own paths; returns
    ``(artifact, artifact directory)``."""
    entry = get(model)
    checkpoint = ensure_trained(entry.run_dir, log, model)
    return ensure_exported(checkpoint, entry.artifact_dir, log, lambda line: log("  " + line),
                           model), entry.artifact_dir
