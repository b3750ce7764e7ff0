"""How fast the file-based loaders read: synthetic files of realistic size, in the real formats.

    python bench/dataset_io.py [--scale 1.0] [--keep DIR]

Writes, in a temporary directory, random events / pixels in each dataset's on-disk format
(N-MNIST .bin files, a DVS128 Gesture AEDAT 3.1 recording with its label file, CIFAR10-DVS
AEDAT 2.0 files, MNIST IDX files, CIFAR-10 python batches), loads them with ``load_dataset``
and prints a table: samples, events read, seconds, samples/s and events/s, and the time the
full dataset would take at that rate. ``--scale`` multiplies the number of samples written.
Nothing is downloaded; the files are random, only their sizes are realistic.
"""

from __future__ import annotations

import argparse
import pickle
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from sw.data import load_dataset  # noqa: E402
from sw.data.neuromorphic import CIFAR10_DVS_CLASSES  # noqa: E402

RNG = np.random.default_rng(0)


def _times(n, duration_us):
    return np.sort(RNG.integers(0, duration_us, n))


def write_nmnist(root: Path, files: int, events: int) -> int:
    for split, count in (("Train", files), ("Test", max(1, files // 6))):
        for i in range(count):
            folder = root / split / str(i % 10)
            folder.mkdir(parents=True, exist_ok=True)
            t = _times(events, 300_000)
            rec = np.zeros((events, 5), dtype=np.uint8)
            rec[:, 0] = RNG.integers(0, 34, events)
            rec[:, 1] = RNG.integers(0, 34, events)
            rec[:, 2] = (RNG.integers(0, 2, events) << 7) | (t >> 16)
            rec[:, 3] = (t >> 8) & 0xFF
            rec[:, 4] = t & 0xFF
            (folder / f"{i:05d}.bin").write_bytes(rec.tobytes())
    return events


def write_gesture(root: Path, recordings: int, gestures: int, rate: int) -> int:
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    names = []
    per_gesture_us = 6_000_000
    for r in range(recordings):
        name = f"user{r + 1:02d}_natural"
        names.append(name)
        n = rate * per_gesture_us // 1_000_000 * gestures
        t = _times(n, gestures * per_gesture_us)
        data = ((RNG.integers(0, 128, n) << 17) | (RNG.integers(0, 128, n) << 2)
                | (RNG.integers(0, 2, n) << 1) | 1).astype("<u4")
        body = bytearray(header)
        for start in range(0, n, 4096):  # cAER writes packets of a few thousand events
            chunk = slice(start, min(n, start + 4096))
            k = chunk.stop - chunk.start
            body += struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, k, k, k)
            pairs = np.stack([data[chunk], t[chunk].astype("<u4")], axis=1)
            body += pairs.astype("<u4").tobytes()
        (root / f"{name}.aedat").write_bytes(bytes(body))
        rows = "".join(f"{g % 11 + 1},{g * per_gesture_us},{(g + 1) * per_gesture_us}\n"
                       for g in range(gestures))
        (root / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + rows)
    (root / "trials_to_train.txt").write_text("".join(f"{n}.aedat\n" for n in names[:-1]))
    (root / "trials_to_test.txt").write_text(f"{names[-1]}.aedat\n")
    return rate * per_gesture_us // 1_000_000


def write_cifar10_dvs(root: Path, per_class: int, events: int) -> int:
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"
    for cls in CIFAR10_DVS_CLASSES:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            address = ((RNG.integers(0, 128, events) << 8) | (RNG.integers(0, 128, events) << 1)
                       | RNG.integers(0, 2, events))
            pairs = np.stack([address, _times(events, 1_300_000)], axis=1).astype(">u4")
            (root / cls / f"cifar10_{cls}_{i}.aedat").write_bytes(header + pairs.tobytes())
    return events


def write_mnist(root: Path, n_train: int) -> None:
    for prefix, n in (("train", n_train), ("t10k", max(1, n_train // 6))):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, n, dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + images.tobytes())
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + struct.pack(">I", n) + labels.tobytes())


def write_cifar10(root: Path, per_batch: int) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": RNG.integers(0, 10, per_batch).tolist()}
        # Protocol 4 stores the pixels as raw bytes, as the original (Python 2) batches do;
        # protocol 2 from Python 3 would route them through a slower latin-1 text detour.
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiply the samples written")
    p.add_argument("--keep", type=Path, default=None, help="write the files here and keep them")
    args = p.parse_args(argv)

    def n(x):
        return max(1, int(round(x * args.scale)))

    # (name, writer, options, full dataset size in samples)
    plan = [
        ("nmnist", lambda r: write_nmnist(r, n(600), 4000), {}, 70_000),
        ("dvs-gesture", lambda r: write_gesture(r, max(2, n(3)), 12, 100_000), {}, 1_342),
        ("cifar10-dvs", lambda r: write_cifar10_dvs(r, n(20), 200_000), {"test_size": 0.1},
         10_000),
        ("mnist", lambda r: write_mnist(r, n(60_000)), {}, 70_000),
        ("cifar10", lambda r: write_cifar10(r, n(10_000)), {}, 60_000),
    ]
    base = args.keep or Path(tempfile.mkdtemp(prefix="bitspike-io-"))
    rows = []
    for name, writer, options, full in plan:
        root = base / name
        root.mkdir(parents=True, exist_ok=True)
        per_sample = writer(root)
        start = time.perf_counter()
        data = load_dataset(name, root=root, progress=True, **options)
        seconds = time.perf_counter() - start
        samples = len(data.train) + len(data.test)
        events = samples * per_sample if per_sample else None
        rows.append((name, samples, events, seconds, full, data.info))
    print(f"{'dataset':<12} {'samples':>8} {'events':>12} {'seconds':>8} {'samples/s':>10} "
          f"{'Mevents/s':>10} {'full set':>9}  frame / sample shape")
    for name, samples, events, seconds, full, info in rows:
        ev = f"{events:>12,}" if events else f"{'-':>12}"
        mev = f"{events / seconds / 1e6:>10.1f}" if events else f"{'-':>10}"
        print(f"{name:<12} {samples:>8} {ev} {seconds:>8.2f} {samples / seconds:>10.0f} {mev} "
              f"{full / (samples / seconds):>8.0f}s  {info.shape}"
              + (f" x T={info.time_steps}" if info.time_steps else ""))
    print("full set: the time the whole dataset (its sample count) takes at the measured rate")
    if args.keep is None:
        import shutil

        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
