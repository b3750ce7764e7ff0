"""Multi-bit image datasets read from local files: MNIST, Fashion-MNIST, CIFAR-10.

Pixels are 8-bit unsigned integers (``input_bits`` 8), ``x`` is ``(n, C, H, W)`` uint8 and the
official train/test split is kept. ``bits`` keeps the most significant bits, ``downsample``
takes block means (see :class:`~sw.data.base.DatasetOptions`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sw.data.base import (
    Dataset,
    DatasetError,
    DatasetInfo,
    DatasetOptions,
    Split,
    find_root,
    pool_mean,
    reduce_bits,
    subset,
)
from sw.data.formats import read_cifar_binary, read_cifar_pickle, read_idx

__all__ = ["MNIST_LAYOUT", "FASHION_MNIST_LAYOUT", "CIFAR10_LAYOUT", "load_mnist",
           "load_fashion_mnist", "load_cifar10"]

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_layout(folder: str) -> str:
    return (f"  <root>/train-images-idx3-ubyte    (each file plain or .gz; the same files under\n"
            f"  <root>/train-labels-idx1-ubyte     <root>/{folder}/raw/ as torchvision stores\n"
            f"  <root>/t10k-images-idx3-ubyte      them, or <root>/{folder}/ are found too)\n"
            f"  <root>/t10k-labels-idx1-ubyte")


MNIST_LAYOUT = _idx_layout("MNIST")
FASHION_MNIST_LAYOUT = _idx_layout("FashionMNIST")

CIFAR10_LAYOUT = (
    "  <root>/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch  (python version,\n"
    "        as torchvision stores it; or these files directly in <root>)\n"
    "  or <root>/cifar-10-batches-bin/data_batch_1.bin .. data_batch_5.bin, test_batch.bin")


def _idx_file(folder: Path, stem: str) -> Path | None:
    # The original archives unpack to "train-images-idx3-ubyte"; some copies say
    # "train-images.idx3-ubyte".
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_set(name: str, folder: str, layout: str, opts: DatasetOptions) -> Dataset:
    root = opts.root_path(name, layout)
    base = find_root(root, ("", f"{folder}/raw", folder),
                     lambda p: _idx_file(p, _IDX_FILES["train"][0]) is not None)
    if base is None:
        raise DatasetError(f"{name}: no IDX files under {str(root)!r} (looked for "
                           f"train-images-idx3-ubyte[.gz] in it and in {folder}/raw, "
                           f"{folder}). Expected layout:\n{layout}")
    splits = {}
    for salt, (split, (images, labels)) in enumerate(_IDX_FILES.items()):
        paths = [_idx_file(base, images), _idx_file(base, labels)]
        for stem, p in zip((images, labels), paths, strict=True):
            if p is None:
                raise DatasetError(f"{name}: {stem}[.gz] is missing from {str(base)!r}. "
                                   f"Expected layout:\n{layout}")
        x = read_idx(paths[0], ndim=3)
        y = read_idx(paths[1], ndim=1).astype(np.int64)
        if len(x) != len(y):
            raise DatasetError(f"{name}: {paths[0].name} holds {len(x)} images but "
                               f"{paths[1].name} {len(y)} labels")
        if y.size and y.max() > 9:
            raise DatasetError(f"{name}: {paths[1].name} has label {y.max()}, expected 0..9")
        keep = subset(len(y), opts.limit, opts.seed, salt)
        splits[split] = (x[keep].reshape(-1, 1, *x.shape[1:]), y[keep])
    return _finish(name, splits, 8, 10, opts)


def _finish(name, splits, input_bits, classes, opts: DatasetOptions) -> Dataset:
    k = opts.downsample or 1
    out, bits = {}, input_bits
    for split, (x, y) in splits.items():
        x = pool_mean(np.ascontiguousarray(x), k, name)
        x, bits = reduce_bits(x, input_bits, opts.bits, name)
        out[split] = Split(x, y)
    shape = tuple(int(s) for s in out["train"].x.shape[1:])
    info = DatasetInfo(name, "multibit", bits, shape, classes)
    return Dataset(info, out["train"], out["test"])


def load_mnist(opts: DatasetOptions) -> Dataset:
    """MNIST from its IDX files: 60000 / 10000 images ``(1, 28, 28)``, 8-bit, 10 classes."""
    return _load_idx_set("mnist", "MNIST", MNIST_LAYOUT, opts)


def load_fashion_mnist(opts: DatasetOptions) -> Dataset:
    """Fashion-MNIST from its IDX files (same format and sizes as MNIST)."""
    return _load_idx_set("fashion-mnist", "FashionMNIST", FASHION_MNIST_LAYOUT, opts)


_CIFAR_PY = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"])
_CIFAR_BIN = ([f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"])


def load_cifar10(opts: DatasetOptions) -> Dataset:
    """CIFAR-10 from its batches: 50000 / 10000 images ``(3, 32, 32)``, 8-bit, 10 classes."""
    name = "cifar10"
    root = opts.root_path(name, CIFAR10_LAYOUT)
    layouts = ((("cifar-10-batches-py", ""), _CIFAR_PY, read_cifar_pickle),
               (("cifar-10-batches-bin", ""), _CIFAR_BIN, read_cifar_binary))
    for candidates, files, read in layouts:
        base = find_root(root, candidates, lambda p, f=files[0][0]: (p / f).is_file())
        if base is not None:
            (train_files, test_files), reader = files, read
            break
    else:
        raise DatasetError(f"{name}: no CIFAR-10 batches under {str(root)!r} (looked for "
                           f"data_batch_1 in cifar-10-batches-py/, cifar-10-batches-bin/ and "
                           f"the root). Expected layout:\n{CIFAR10_LAYOUT}")
    splits = {}
    for salt, (split, files) in enumerate((("train", train_files), ("test", test_files))):
        xs, ys = [], []
        for f in files:
            if not (base / f).is_file():
                raise DatasetError(f"{name}: {f} is missing from {str(base)!r}. Expected "
                                   f"layout:\n{CIFAR10_LAYOUT}")
            x, y = reader(base / f)
            xs.append(x)
            ys.append(y)
        x, y = np.concatenate(xs), np.concatenate(ys)
        keep = subset(len(y), opts.limit, opts.seed, salt)
        splits[split] = (x[keep], y[keep])
    return _finish(name, splits, 8, 10, opts)
