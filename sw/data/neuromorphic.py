"""Event-camera datasets read from their original files: N-MNIST, DVS128 Gesture, CIFAR10-DVS.

Each recording becomes ``(T, 2, H/k, W/k)`` binary frames by :func:`sw.data.events.bin_events`
(channel 0 OFF, 1 ON; default T = 8; equal time bins over the sample unless ``bin_us`` is given;
``downsample`` k pools by OR, default 4 for the 128x128 sensors, 1 for N-MNIST).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sw.data.base import (
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetOptions,
    Split,
    check_memory,
    find_root,
    subset,
)
from sw.data.events import Events, bin_events
from sw.data.formats import dvs128_jaer_events, read_aedat2, read_aedat31, read_nmnist

__all__ = ["NMNIST_LAYOUT", "DVS_GESTURE_LAYOUT", "CIFAR10_DVS_LAYOUT", "CIFAR10_DVS_CLASSES",
           "DEFAULT_TIME_STEPS", "load_nmnist", "load_dvs_gesture", "load_cifar10_dvs"]

#: T of the event datasets when ``time_steps`` is not given.
DEFAULT_TIME_STEPS = 8

NMNIST_LAYOUT = (
    "  <root>/Train/<digit>/<id>.bin   (digit 0..9; the original N-MNIST binary files, as\n"
    "  <root>/Test/<digit>/<id>.bin     Train.zip / Test.zip unpack; <root>/NMNIST/ or\n"
    "                                   <root>/N-MNIST/ holding Train/ and Test/ is found too)")

DVS_GESTURE_LAYOUT = (
    "  <root>/DvsGesture/trials_to_train.txt   (lines like 'user01_fluorescent.aedat')\n"
    "  <root>/DvsGesture/trials_to_test.txt\n"
    "  <root>/DvsGesture/userXX_<lighting>.aedat          (AEDAT 3.1, as DvsGesture.tar.gz\n"
    "  <root>/DvsGesture/userXX_<lighting>_labels.csv      unpacks; or these files in <root>)\n"
    "      csv: a header line, then 'class,startTime_usec,endTime_usec' rows, class 1..11")

CIFAR10_DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                       "ship", "truck")

CIFAR10_DVS_LAYOUT = (
    "  <root>/<class>/cifar10_<class>_<index>.aedat   (AEDAT 2.0, as the original per-class\n"
    "      zips unpack; <class> is airplane, automobile, bird, cat, deer, dog, frog, horse,\n"
    "      ship, truck; <root>/CIFAR10-DVS/ or <root>/CIFAR10DVS/ holding them is found too)")


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", leave=False)


def _frames(opts: DatasetOptions, height: int, width: int, name: str) -> tuple[int, int]:
    t = opts.time_steps or DEFAULT_TIME_STEPS
    k = opts.downsample or (4 if height == 128 else 1)
    if height % k or width % k:
        ok = [d for d in range(1, height + 1) if height % d == 0 and width % d == 0]
        raise ValueError(f"downsample must divide {name}'s {height}x{width} sensor, not {k}; "
                         f"choose one of {', '.join(map(str, ok))}")
    return t, k


def _info(name, t, k, height, width, classes) -> DatasetInfo:
    return DatasetInfo(name, "spike", 1, (2, height // k, width // k), classes, t)


def _check_memory(name, splits, t, height, width):
    # the frames of every chosen sample, twice: the list of frames and their stacked copy
    check_memory(name, sum(len(s) for s in splits), (t, 2, height, width), copies=2)


def _stack(frames: list, shape: tuple) -> np.ndarray:
    if not frames:
        return np.zeros((0, *shape), dtype=np.uint8)
    return np.stack(frames)


# --- N-MNIST ----------------------------------------------------------------------------------

def _nmnist_files(folder: Path) -> list[tuple[Path, int]]:
    files = []
    for digit in range(10):
        d = folder / str(digit)
        if d.is_dir():
            files += [(f, digit) for f in sorted(d.glob("*.bin"))]
    return files


def load_nmnist(opts: DatasetOptions) -> Dataset:
    """N-MNIST: 60000 / 10000 saccade recordings of MNIST digits on a 34x34 sensor."""
    name, size = "nmnist", 34
    t, k = _frames(opts, size, size, name)
    root = opts.root_path(name, NMNIST_LAYOUT)
    base = find_root(root, ("", "NMNIST", "N-MNIST"), lambda p: (p / "Train").is_dir())
    if base is None:
        raise DatasetError(f"{name}: no Train/ folder under {str(root)!r}. Expected "
                           f"layout:\n{NMNIST_LAYOUT}")
    chosen = {}
    for salt, split in enumerate(("Train", "Test")):
        files = _nmnist_files(base / split)
        if not files:
            raise DatasetError(f"{name}: no <digit>/*.bin files in {str(base / split)!r}. "
                               f"Expected layout:\n{NMNIST_LAYOUT}")
        chosen[split] = [files[i] for i in subset(len(files), opts.limit, opts.seed, salt)]
    _check_memory(name, chosen.values(), t, size // k, size // k)
    splits = {}
    for split, files in chosen.items():
        frames = [bin_events(read_nmnist(f, size=size), time_steps=t, height=size, width=size,
                             downsample=k, bin_us=opts.bin_us)
                  for f, _ in _progress(files, opts.progress, f"{name} {split.lower()}")]
        y = np.array([label for _, label in files], dtype=np.int64)
        splits[split] = Split(_stack(frames, (t, 2, size // k, size // k)), y)
    return Dataset(_info(name, t, k, size, size, 10), splits["Train"], splits["Test"])


# --- DVS128 Gesture ---------------------------------------------------------------------------

def _read_labels(path: Path) -> list[tuple[int, int, int]]:
    """Rows ``(class 0..10, start_us, end_us)`` of a ``*_labels.csv`` file."""
    if not path.is_file():
        raise DatasetError(f"dvs-gesture: label file {str(path)!r} is missing. Expected "
                           f"layout:\n{DVS_GESTURE_LAYOUT}")
    rows = []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = [p for p in re.split(r"[,\s]+", line.strip()) if p]
        try:
            label, start, end = (int(v) for v in parts)
        except ValueError:
            raise DatasetError(f"dvs-gesture: {str(path)!r} line {n}: expected "
                               f"'class,startTime_usec,endTime_usec', found {line!r}") from None
        if not 1 <= label <= 11 or end <= start:
            raise DatasetError(f"dvs-gesture: {str(path)!r} line {n}: class must be 1..11 and "
                               f"endTime_usec > startTime_usec, found {line!r}")
        rows.append((label - 1, start, end))
    return rows


def _trials(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"dvs-gesture: {str(path)!r} is missing. Expected layout:\n"
                           f"{DVS_GESTURE_LAYOUT}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_dvs_gesture(opts: DatasetOptions) -> Dataset:
    """IBM DVS128 Gesture: 11 gesture classes on a 128x128 sensor, split by user (trial lists).

    Each row of a recording's label file is one sample: the events with
    ``startTime_usec <= t < endTime_usec``; with equal bins the window ``[start, end)`` is cut
    into T bins.
    """
    name, size = "dvs-gesture", 128
    t, k = _frames(opts, size, size, name)
    root = opts.root_path(name, DVS_GESTURE_LAYOUT)
    base = find_root(root, ("DvsGesture", ""), lambda p: (p / "trials_to_train.txt").is_file())
    if base is None:
        raise DatasetError(f"{name}: no trials_to_train.txt under {str(root)!r} (looked in it "
                           f"and in DvsGesture/). Expected layout:\n{DVS_GESTURE_LAYOUT}")
    splits, chosen = {}, {}
    for salt, split in enumerate(("train", "test")):
        samples = []  # (aedat path, label, start, end)
        for trial in _trials(base / f"trials_to_{split}.txt"):
            aedat = base / trial
            if not aedat.is_file():
                raise DatasetError(f"{name}: {trial} (listed in trials_to_{split}.txt) is "
                                   f"missing from {str(base)!r}")
            csv = base / (Path(trial).stem + "_labels.csv")
            samples += [(aedat, *row) for row in _read_labels(csv)]
        chosen[split] = [samples[i] for i in subset(len(samples), opts.limit, opts.seed, salt)]
    _check_memory(name, chosen.values(), t, size // k, size // k)
    for split, samples in chosen.items():
        frames, labels = [], []
        events, current, ordered = None, None, False
        for aedat, label, start, end in _progress(samples, opts.progress, f"{name} {split}"):
            if aedat != current:  # samples of one recording are consecutive
                events, current = read_aedat31(aedat, size=size), aedat
                ordered = bool(np.all(events.t[1:] >= events.t[:-1]))
            if ordered:  # recordings are time-ordered: cut the window by bisection
                lo, hi = np.searchsorted(events.t, [start, end], side="left")
                inside = events.select(slice(lo, hi))
            else:
                inside = events.select((events.t >= start) & (events.t < end))
            frames.append(bin_events(inside, time_steps=t, height=size, width=size,
                                     downsample=k, t_start=start, t_end=end, bin_us=opts.bin_us))
            labels.append(label)
        splits[split] = Split(_stack(frames, (t, 2, size // k, size // k)),
                              np.array(labels, dtype=np.int64))
    return Dataset(_info(name, t, k, size, size, 11), splits["train"], splits["test"])


# --- CIFAR10-DVS ------------------------------------------------------------------------------

_INDEX = re.compile(r"(\d+)\.aedat$")


def _cifar10_dvs_files(base: Path, cls: str) -> list[Path]:
    files = []
    for f in (base / cls).glob("*.aedat"):
        m = _INDEX.search(f.name)
        files.append((int(m.group(1)) if m else -1, f.name, f))
    return [f for *_, f in sorted(files)]


def load_cifar10_dvs(opts: DatasetOptions) -> Dataset:
    """CIFAR10-DVS: 10 x 1000 recordings of moving CIFAR-10 images on a 128x128 DVS.

    The dataset has no official split. Per class, recordings sorted by their index go to the
    test split first: the first ``round(test_size * n)`` of them (``test_size`` default 0.1, so
    indices 0..99 of 1000: the split most papers use), the rest to the train split.
    """
    name, size = "cifar10-dvs", 128
    t, k = _frames(opts, size, size, name)
    test_size = 0.1 if opts.test_size is None else opts.test_size
    root = opts.root_path(name, CIFAR10_DVS_LAYOUT)
    base = find_root(root, ("", "CIFAR10-DVS", "CIFAR10DVS"),
                     lambda p: any((p / c).is_dir() for c in CIFAR10_DVS_CLASSES))
    if base is None:
        raise DatasetError(f"{name}: no class folders (airplane/, automobile/, ...) under "
                           f"{str(root)!r}. Expected layout:\n{CIFAR10_DVS_LAYOUT}")
    chosen = {"train": [], "test": []}
    for label, cls in enumerate(CIFAR10_DVS_CLASSES):
        files = _cifar10_dvs_files(base, cls)
        if not files:
            raise DatasetError(f"{name}: no .aedat files in {str(base / cls)!r}. Expected "
                               f"layout:\n{CIFAR10_DVS_LAYOUT}")
        n_test = int(round(test_size * len(files)))
        chosen["test"] += [(f, label) for f in files[:n_test]]
        chosen["train"] += [(f, label) for f in files[n_test:]]
    chosen = {split: [files[i] for i in subset(len(files), opts.limit, opts.seed, salt)]
              for salt, (split, files) in enumerate(chosen.items())}
    _check_memory(name, chosen.values(), t, size // k, size // k)
    splits = {}
    for split, files in chosen.items():
        frames = []
        for f, _ in _progress(files, opts.progress, f"{name} {split}"):
            events: Events = dvs128_jaer_events(*read_aedat2(f))
            frames.append(bin_events(events, time_steps=t, height=size, width=size,
                                     downsample=k, bin_us=opts.bin_us))
        splits[split] = Split(_stack(frames, (t, 2, size // k, size // k)),
                              np.array([label for _, label in files], dtype=np.int64))
    return Dataset(_info(name, t, k, size, size, 10), splits["train"], splits["test"])
