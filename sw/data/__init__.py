"""Datasets as integer numpy arrays, read from local files only (nothing is downloaded).

Every loader returns a :class:`Dataset` whose ``x`` arrays are what the integer model takes:

* ``input_kind == "multibit"``: unsigned integers of ``input_bits`` bits, shape ``(n, C, H, W)``
  (the same value at every time step: direct encoding);
* ``input_kind == "spike"``: {0, 1} frames, shape ``(n, T, C, H, W)``.

A network flattens one sample (or one frame) in row-major ``(C, H, W)`` order; that order is the
input index ``i`` of the artifact. The registry :data:`DATASETS` maps a name to its loader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DatasetInfo", "Split", "Dataset", "DATASETS", "load_dataset", "load_digits",
           "DatasetError"]


class DatasetError(ValueError):
    """A dataset is missing, incomplete or malformed; the message says what layout is expected."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset's samples are.

    Attributes
    ----------
    name : str
    input_kind : {"multibit", "spike"}
    input_bits : int
        Bits per value (1 for spikes).
    shape : tuple of int
        ``(C, H, W)`` of one sample / frame.
    classes : int
    time_steps : int or None
        T of spike datasets (frames per sample); None for multibit ones.
    """

    name: str
    input_kind: str
    input_bits: int
    shape: tuple
    classes: int
    time_steps: int | None = None

    def __post_init__(self):
        if self.input_kind not in ("multibit", "spike"):
            raise ValueError(f"input_kind must be 'multibit' or 'spike', not {self.input_kind!r}")
        if self.input_kind == "spike" and (self.input_bits != 1 or not self.time_steps):
            raise ValueError("spike datasets have input_bits 1 and a time_steps count")

    @property
    def features(self) -> int:
        """N, inputs of the first layer."""
        return int(np.prod(self.shape))


@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray

    def __len__(self):
        return len(self.y)

    def flat(self) -> np.ndarray:
        """``x`` flattened per sample (multibit: ``(n, N)``) or per frame (``(n, T, N)``)."""
        lead = 1 if self.x.ndim == 4 else 2
        return self.x.reshape(*self.x.shape[:lead], -1)


@dataclass
class Dataset:
    info: DatasetInfo
    train: Split
    test: Split


def load_digits(*, seed: int = 0, test_size: float = 0.25, **_ignored) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16, 5 bits).

    The train/test split is stratified and fixed by ``seed`` (default 0: 1347 / 450 images).
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    d = _load()
    x = d.data.astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed,
                                          stratify=y)
    info = DatasetInfo("digits", "multibit", 5, (1, 8, 8), 10)
    return Dataset(info, Split(xtr, ytr), Split(xte, yte))


#: name -> loader(**options) -> Dataset. Loaders take keyword options (root, time_steps, seed...)
#: and ignore those that do not apply to them.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
}


def load_dataset(name: str, **options) -> Dataset:
    """Load a dataset by registry name; see :data:`DATASETS`."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}"
                           ) from None
    return loader(**options)
