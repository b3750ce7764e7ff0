"""The dataset types, the loading options and the transforms every loader shares.

A loader turns local files into a :class:`Dataset` of integer numpy arrays. The options it takes
are one frozen dataclass, :class:`DatasetOptions`, validated before any file is opened; a loader
ignores the options that do not apply to it (``time_steps`` for an image set, ``bits`` for an
event set).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from sw.checks import check_bool, check_int, is_real
from sw.options import MAX_TIME_STEPS

__all__ = ["DatasetError", "DatasetInfo", "Split", "Dataset", "DatasetOptions", "DatasetSpec",
           "reduce_bits", "pool_mean", "subset", "find_root", "memory_limit", "check_memory"]


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
    """One split: ``x`` (see :mod:`sw.data` for the layouts) and integer labels ``y``."""

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
    """A loaded dataset: what its samples are, its two splits and the options that made it."""

    info: DatasetInfo
    train: Split
    test: Split
    options: DatasetOptions | None = None


def _check_int(name, value, low, high=None, *, none_ok=True):
    # None is "the loader's default" for most options (not "an int or None" in messages)
    if value is None and none_ok:
        return
    check_int(name, value, low, high)


@dataclass(frozen=True)
class DatasetOptions:
    """The options every loader takes (keyword arguments of :func:`sw.data.load_dataset`).

    Parameters
    ----------
    root : str or os.PathLike or None
        Directory holding the dataset's files (file-based datasets only; see each loader for
        the layout it expects).
    seed : int
        Seed of every random choice: the train/test split of ``digits`` and ``digits-events``,
        the subset drawn by ``limit``. Default 0.
    test_size : float
        Fraction of samples in the test split of datasets without an official split
        (``digits``, ``digits-events``: default 0.25; ``cifar10-dvs``: default 0.1).
    time_steps : int or None
        T, frames per sample of event datasets, 1..1024 (``sw.options.MAX_TIME_STEPS``, the
        cap training has too); None: the dataset's default.
    downsample : int or None
        Spatial pooling factor k: an ``H x W`` sample becomes ``H/k x W/k``. Events are pooled
        by OR (a frame pixel spikes when any of its k*k sensor pixels had an event), multi-bit
        pixels by the floor of the block mean. k must divide H and W. None: the dataset's
        default (4 for the 128x128 sensors, 1 elsewhere).
    bits : int or None
        Multi-bit datasets: keep the ``bits`` most significant bits of each value (a right
        shift by ``input_bits - bits``), so a bit-serial first layer needs fewer bit-planes.
    bin_us : int or None
        Event datasets: fixed time bins of ``bin_us`` microseconds from the sample's start
        (events after ``T * bin_us`` are dropped). None (default): T equal bins over the
        sample's whole duration.
    limit : int or None
        Load at most ``limit`` samples per split, a subset drawn with ``seed`` (files that are
        not drawn are never read).
    progress : bool
        Show a progress bar while reading files.
    """

    root: str | os.PathLike | None = None
    seed: int = 0
    test_size: float | None = None
    time_steps: int | None = None
    downsample: int | None = None
    bits: int | None = None
    bin_us: int | None = None
    limit: int | None = None
    progress: bool = False

    def __post_init__(self):
        if self.root is not None and not isinstance(self.root, str | os.PathLike):
            raise TypeError(f"root must be a path, not {self.root!r}")
        _check_int("seed", self.seed, 0, 2**32 - 1, none_ok=False)
        if self.test_size is not None:
            if not is_real(self.test_size):
                raise TypeError(f"test_size must be a float, not {self.test_size!r}")
            if not 0 < self.test_size < 1:
                raise ValueError(f"test_size must be between 0 and 1 (exclusive), "
                                 f"not {self.test_size}")
        _check_int("time_steps", self.time_steps, 1, MAX_TIME_STEPS)
        _check_int("downsample", self.downsample, 1)
        _check_int("bits", self.bits, 1, 16)
        _check_int("bin_us", self.bin_us, 1)
        _check_int("limit", self.limit, 1)
        check_bool("progress", self.progress)

    @classmethod
    def from_kwargs(cls, options: dict) -> DatasetOptions:
        """Build options from keyword arguments; an unknown name is a TypeError naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown dataset option {unknown[0]!r}; known options: "
                            f"{', '.join(sorted(known))}")
        return cls(**options)

    def root_path(self, name: str, layout: str) -> Path:
        """``root`` as a Path; a missing ``root`` or directory is a DatasetError with ``layout``."""
        if self.root is None:
            raise DatasetError(f"{name}: this dataset is read from local files; pass "
                               f"root=<directory> (--root on the command line). Expected "
                               f"layout:\n{layout}")
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"{name}: dataset root {str(root)!r} is not a directory. "
                               f"Expected layout:\n{layout}")
        return root


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: a loader with what a user needs to know before calling it.

    Calling the spec calls the loader: ``DATASETS["mnist"](root=...)``.

    Attributes
    ----------
    name : str
    summary : str
        One line: what the samples are.
    layout : str or None
        The on-disk layout the loader expects under ``root`` (None: built in, no files).
    loader : callable
        ``loader(DatasetOptions) -> Dataset``.
    """

    name: str
    summary: str
    layout: str | None
    loader: Callable[[DatasetOptions], Dataset]

    def __call__(self, **options) -> Dataset:
        opts = DatasetOptions.from_kwargs(options)
        data = self.loader(opts)
        data.options = opts
        return data


def reduce_bits(x: np.ndarray, input_bits: int, bits: int | None, name: str):
    """Keep the ``bits`` most significant of ``input_bits`` bits; returns ``(x, bits)``."""
    if bits is None or bits == input_bits:
        return x, input_bits
    if bits > input_bits:
        raise ValueError(f"bits must be between 1 and {input_bits} for {name}, not {bits}")
    return (x >> (input_bits - bits)).astype(x.dtype), bits


def _check_factor(k: int, height: int, width: int, name: str):
    if height % k or width % k:
        ok = [d for d in range(1, min(height, width) + 1) if height % d == 0 and width % d == 0]
        raise ValueError(f"downsample must divide {name}'s {height}x{width} samples, not {k}; "
                         f"choose one of {', '.join(map(str, ok))}")


def pool_mean(x: np.ndarray, k: int, name: str) -> np.ndarray:
    """Block mean (floor) of ``(n, C, H, W)`` unsigned images by ``k``; values keep their bits."""
    if k == 1:
        return x
    n, c, h, w = x.shape
    _check_factor(k, h, w, name)
    blocks = x.reshape(n, c, h // k, k, w // k, k).astype(np.int64).sum(axis=(3, 5))
    return (blocks // (k * k)).astype(x.dtype)


def subset(n: int, limit: int | None, seed: int, salt: int = 0) -> np.ndarray:
    """Indices of the samples ``limit`` keeps (sorted; all of them when ``limit`` is None)."""
    if limit is None or limit >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.choice(n, size=limit, replace=False))


def find_root(root: Path, candidates: tuple[str, ...], probe: Callable[[Path], bool]):
    """The first of ``root / c`` for ``c`` in ``candidates`` that satisfies ``probe``, or None."""
    for c in candidates:
        path = root / c if c else root
        if path.is_dir() and probe(path):
            return path
    return None


#: The most memory a loader's arrays may take, whatever the machine: a few GiB.
MEMORY_CAP = 8 << 30


def memory_limit() -> int:
    """Bytes a dataset's arrays may take: a quarter of physical memory, at most MEMORY_CAP."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: the cap alone
        return MEMORY_CAP
    return min(MEMORY_CAP, physical // 4)


def check_memory(name: str, samples: int, shape: tuple, *, copies: int = 1,
                 limit: int | None = None) -> int:
    """Refuse, before allocating, ``samples`` uint8 arrays of ``shape``, held ``copies`` times
    at the peak, that would take more than ``limit`` bytes (default :func:`memory_limit`);
    returns the estimate in bytes."""
    need = copies * int(samples) * int(np.prod(shape))
    limit = memory_limit() if limit is None else limit
    if need > limit:
        held = f", held {copies} times while they are made," if copies > 1 else ""
        raise ValueError(f"{name}: {samples} samples of {tuple(shape)} frames{held} would take "
                         f"{need / 2**30:.1f} GiB of memory, more than the {limit / 2**30:.1f} "
                         f"GiB a dataset may take here (a quarter of this machine's memory, at "
                         f"most {MEMORY_CAP >> 30} GiB); lower time_steps, raise downsample or "
                         f"set limit")
    return need
