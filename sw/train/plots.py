"""PNG plots comparing training runs (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

from sw.atomic import atomic_path

__all__ = ["PlotError", "read_metrics", "plot_runs"]


class PlotError(ValueError):
    """A run directory has no readable metrics."""


def read_metrics(run) -> list[dict]:
    """The per-epoch rows of ``<run>/metrics.jsonl``."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise PlotError(f"{path}: missing (expected the metrics file of a 'bitspike train' run)")
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise PlotError(f"{path}: line {i + 1} is not JSON ({exc})") from None
    if not rows:
        raise PlotError(f"{path}: no epochs recorded")
    for key in ("epoch", "test_accuracy", "flip_rate_mean", "firing_rate_mean"):
        if key not in rows[0]:
            raise PlotError(f"{path}: line 1 lacks {key!r}")
    return rows


def _save(fig, path: Path):
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def plot_runs(runs, out, *, labels=None) -> list[Path]:
    """Write ``accuracy.png``, ``flip_rate.png`` and ``firing_rate.png`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(runs)
    if labels is not None and len(labels) != len(runs):
        raise PlotError(f"{len(labels)} labels for {len(runs)} runs")
    data = [read_metrics(r) for r in runs]
    labels = labels or [Path(r).name for r in runs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    panels = [
        ("accuracy.png", "test accuracy (%)", lambda r: 100 * r["test_accuracy"], False),
        ("flip_rate.png", "sign flips per step (% of binary weights)",
         lambda r: 100 * r["flip_rate_mean"], True),
        ("firing_rate.png", "hidden firing rate (%)", lambda r: 100 * r["firing_rate_mean"],
         False),
    ]
    files = []
    for name, ylabel, get, log in panels:
        fig, ax = plt.subplots(figsize=(6, 4))
        for rows, label in zip(data, labels, strict=True):
            ax.plot([r["epoch"] for r in rows], [get(r) for r in rows], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = out / name
        _save(fig, path)
        plt.close(fig)
        files.append(path)
    return files
