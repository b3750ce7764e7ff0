"""digits-events: event statistics, learnability, and the picture in docs/datasets.md.

    python bench/digits_events.py [--png docs/img/digits-events.png] [--no-mlp]

For T = 1, 2, 4, 8 it prints the events per image, the fraction of frame pixels that spike, and
the test accuracy of two float classifiers trained on the flattened frames (scikit-learn
logistic regression and a 128-unit MLP; the default split, seed 0: 1347 / 450 images), next to
the same classifiers on the raw 8x8 pixels. Chance is 10 %. Then it draws a few digits and
their T = 4 frames (ON events red, OFF events blue) into the PNG. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from sw.atomic import atomic_path  # noqa: E402
from sw.data import load_dataset  # noqa: E402
from sw.data.digits import digits_to_events  # noqa: E402


def classifiers(use_mlp: bool):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    out = {"logreg": lambda: LogisticRegression(max_iter=2000)}
    if use_mlp:
        out["mlp128"] = lambda: MLPClassifier((128,), max_iter=500, random_state=0)
    return out


def accuracy(make, data) -> float:
    xtr = data.train.x.reshape(len(data.train), -1).astype(np.float64)
    xte = data.test.x.reshape(len(data.test), -1).astype(np.float64)
    scale = max(float(xtr.max()), 1.0)
    model = make().fit(xtr / scale, data.train.y)
    return float(model.score(xte / scale, data.test.y))


def picture(path: Path, count: int = 6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digits = load_dataset("digits")
    events = load_dataset("digits-events", time_steps=4)
    picks = [int(np.flatnonzero(digits.test.y == d)[0]) for d in range(count)]
    sides = ["right", "down", "left", "up"]
    fig, axes = plt.subplots(count, 5, figsize=(6.2, 1.3 * count))
    for row, i in enumerate(picks):
        axes[row, 0].imshow(digits.test.x[i, 0], cmap="gray", vmin=0, vmax=16)
        axes[row, 0].set_ylabel(f"label {digits.test.y[i]}")
        for t in range(4):
            rgb = np.zeros((8, 8, 3))
            rgb[..., 0] = events.test.x[i, t, 1]  # ON: red
            rgb[..., 2] = events.test.x[i, t, 0]  # OFF: blue
            rgb[(events.test.x[i, t, 0] == 0) & (events.test.x[i, t, 1] == 0)] = 1.0
            axes[row, t + 1].imshow(rgb, interpolation="nearest")
            if row == 0:
                axes[row, t + 1].set_title(f"t={t} ({sides[t]})", fontsize=9)
        if row == 0:
            axes[row, 0].set_title("pixels", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("digits-events, T = 4: ON red, OFF blue, both purple", fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:  # savefig takes the format from the name
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "digits-events.png")
    p.add_argument("--no-mlp", action="store_true", help="logistic regression only (faster)")
    args = p.parse_args(argv)
    from tqdm import tqdm

    makers = classifiers(not args.no_mlp)
    digits = load_dataset("digits")
    rows = []
    settings = [("pixels", None)] + [(f"T={t}", t) for t in (1, 2, 4, 8)]
    for label, t in tqdm(settings, desc="settings", leave=False):
        start = time.perf_counter()
        data = digits if t is None else load_dataset("digits-events", time_steps=t)
        convert = time.perf_counter() - start
        if t is None:
            per_image, density, inputs = "-", "-", str(data.info.features)
        else:
            n_events = [len(digits_to_events(img)) for img in digits.train.x[:300]]
            per_image = f"{np.mean(n_events):.0f}"
            density = f"{data.train.x.mean():.3f}"
            inputs = f"{t} x {data.info.features}"
        accs = {name: accuracy(make, data) for name, make in makers.items()}
        rows.append((label, inputs, per_image, density, accs, convert))
    names = list(makers)
    print(f"{'input':<8} {'features':<10} {'events/img':>10} {'density':>8} "
          + " ".join(f"{n + ' acc':>11}" for n in names) + f" {'convert s':>10}")
    for label, inputs, per_image, density, accs, convert in rows:
        print(f"{label:<8} {inputs:<10} {per_image:>10} {density:>8} "
              + " ".join(f"{100 * accs[n]:>10.1f}%" for n in names) + f" {convert:>10.2f}")
    print("chance: 10.0%; split: digits default (seed 0), 1347 train / 450 test images")
    picture(args.png)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
