"""MNIST / Fashion-MNIST (IDX) and CIFAR-10 (python and binary batches) on tiny files written
here byte by byte in the real formats."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from sw.data import DatasetError, DatasetInfo, load_dataset
from sw.data.formats import read_cifar_pickle, read_idx

# --- writers (independent of the readers: the format spelled out with struct) -----------------

def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx(folder, images, labels, *, gz=False, dotted=False, prefix="train"):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images),
                      (f"{prefix}-labels-idx1-ubyte", labels)):
        name = stem.replace("-idx", ".idx") if dotted else stem
        data = _idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def _mnist_like(rng, n, size=28):
    return (rng.integers(0, 256, size=(n, size, size), dtype=np.uint8),
            rng.integers(0, 10, size=n, dtype=np.uint8))


def _write_mnist(folder, rng, *, n_train=5, n_test=3, **kw):
    train, test = _mnist_like(rng, n_train), _mnist_like(rng, n_test)
    _write_idx(folder, *train, prefix="train", **kw)
    _write_idx(folder, *test, prefix="t10k", **kw)
    return train, test


# --- MNIST / Fashion-MNIST --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "sub", "gz", "dotted"), [
    ("mnist", "", False, False),
    ("mnist", "MNIST/raw", True, False),
    ("mnist", "", False, True),
    ("fashion-mnist", "FashionMNIST/raw", False, False),
    ("fashion-mnist", "", True, True),
])
def test_idx_layouts(tmp_path, seed, name, sub, gz, dotted):
    rng = np.random.default_rng(seed)
    (xtr, ytr), (xte, yte) = _write_mnist(tmp_path / sub if sub else tmp_path, rng, gz=gz,
                                          dotted=dotted)
    data = load_dataset(name, root=tmp_path)
    assert data.info == DatasetInfo(name, "multibit", 8, (1, 28, 28), 10)
    assert data.train.x.dtype == np.uint8 and data.train.x.shape == (5, 1, 28, 28)
    assert np.array_equal(data.train.x[:, 0], xtr) and np.array_equal(data.test.x[:, 0], xte)
    assert data.train.y.dtype == np.int64
    assert np.array_equal(data.train.y, ytr) and np.array_equal(data.test.y, yte)


def test_idx_bits_and_downsample(tmp_path, seed):
    rng = np.random.default_rng(seed)
    (xtr, _), _ = _write_mnist(tmp_path, rng)
    data = load_dataset("mnist", root=tmp_path, bits=3, downsample=7)
    assert data.info == DatasetInfo("mnist", "multibit", 3, (1, 4, 4), 10)
    for n in range(5):
        for r in range(4):
            for c in range(4):
                block = xtr[n, 7 * r:7 * r + 7, 7 * c:7 * c + 7].astype(int)
                assert data.train.x[n, 0, r, c] == (block.sum() // 49) >> 5
    with pytest.raises(ValueError, match="^downsample must divide mnist's 28x28 samples, not 3; "
                                         "choose one of 1, 2, 4, 7, 14, 28$"):
        load_dataset("mnist", root=tmp_path, downsample=3)
    with pytest.raises(ValueError, match="^bits must be between 1 and 8 for mnist, not 9$"):
        load_dataset("mnist", root=tmp_path, bits=9)


def test_idx_limit(tmp_path, seed):
    rng = np.random.default_rng(seed)
    (xtr, ytr), _ = _write_mnist(tmp_path, rng, n_train=20)
    data = load_dataset("mnist", root=tmp_path, limit=4, seed=seed)
    assert len(data.train) == 4 and len(data.test) == 3
    rows = [next(i for i in range(20) if np.array_equal(xtr[i], data.train.x[k, 0]))
            for k in range(4)]
    assert rows == sorted(rows) and np.array_equal(ytr[rows], data.train.y)


def test_idx_missing_test_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    _write_idx(tmp_path, *_mnist_like(rng, 2), prefix="train")
    with pytest.raises(DatasetError) as exc:
        load_dataset("mnist", root=tmp_path)
    assert str(exc.value).startswith(f"mnist: t10k-images-idx3-ubyte[.gz] is missing from "
                                     f"{str(tmp_path)!r}. Expected layout:\n")


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\x00\x0d\x03" + b"\0" * 12, ": IDX type 0x0d, expected 0x08 (unsigned byte)"),
    (b"\x00\x00\x08\x01" + b"\0\0\0\x05", ": IDX file with 1 dimensions, expected 3"),
    (b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + b"\1" * 7,
     ": the header announces (2, 2, 2) = 8 bytes of data, the file holds 7"),
    (b"PK\x03\x04", " is not an IDX file (it must start with 00 00 <type> <ndim>)"),
])
def test_idx_malformed(tmp_path, content, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as exc:
        read_idx(path, ndim=3)
    assert str(exc.value) == repr(str(path)) + message


def test_idx_label_count_mismatch(tmp_path, seed):
    rng = np.random.default_rng(seed)
    images, labels = _mnist_like(rng, 4)
    _write_idx(tmp_path, images, labels[:3], prefix="train")
    _write_idx(tmp_path, *_mnist_like(rng, 2), prefix="t10k")
    with pytest.raises(DatasetError, match="^mnist: train-images-idx3-ubyte holds 4 images but "
                                           "train-labels-idx1-ubyte 3 labels$"):
        load_dataset("mnist", root=tmp_path)


# --- CIFAR-10 ---------------------------------------------------------------------------------

def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """The documented row layout: 1024 red values, 1024 green, 1024 blue, each row-major."""
    return np.stack([np.concatenate([img[0].ravel(), img[1].ravel(), img[2].ravel()])
                     for img in images]).astype(np.uint8)


def _cifar_batch(rng, n):
    return (rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
            rng.integers(0, 10, size=n).tolist())


def _write_cifar_py(folder, batches):
    """Pickled like the originals (Python 2 era, protocol 2): bytes keys, a list of labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": _cifar_rows(images),
                 b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
        raw = pickle.dumps(batch, protocol=2)
        # numpy 1.x, which wrote the originals, named its module numpy.core
        raw = raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
        assert b"cnumpy.core.multiarray\n_reconstruct" in raw
        (folder / name).write_bytes(raw)


def _write_cifar_bin(folder, batches):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels) in batches.items():
        rows = _cifar_rows(images)
        (folder / f"{name}.bin").write_bytes(b"".join(bytes([lab]) + row.tobytes()
                                                      for lab, row in zip(labels, rows,
                                                                          strict=True)))


def _cifar_set(rng):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: _cifar_batch(rng, 2 if name != "test_batch" else 3) for name in names}


@pytest.mark.parametrize(("writer", "sub"), [
    (_write_cifar_py, "cifar-10-batches-py"),
    (_write_cifar_py, ""),
    (_write_cifar_bin, "cifar-10-batches-bin"),
])
def test_cifar10_layouts(tmp_path, seed, writer, sub):
    rng = np.random.default_rng(seed)
    batches = _cifar_set(rng)
    writer(tmp_path / sub if sub else tmp_path, batches)
    data = load_dataset("cifar10", root=tmp_path)
    assert data.info == DatasetInfo("cifar10", "multibit", 8, (3, 32, 32), 10)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    assert np.array_equal(data.train.x, np.concatenate([b[0] for b in train]))
    assert np.array_equal(data.train.y, np.concatenate([b[1] for b in train]))
    assert np.array_equal(data.test.x, batches["test_batch"][0])
    assert data.test.y.tolist() == batches["test_batch"][1]
    # the row layout by hand: red plane first
    img = batches["test_batch"][0][1]
    assert data.test.x[1, 0, 5, 7] == img[0, 5, 7] and data.test.x[1, 2, 31, 0] == img[2, 31, 0]


def test_cifar10_bits_and_downsample(tmp_path, seed):
    rng = np.random.default_rng(seed)
    batches = _cifar_set(rng)
    _write_cifar_py(tmp_path / "cifar-10-batches-py", batches)
    data = load_dataset("cifar10", root=tmp_path, bits=4, downsample=4)
    assert data.info.shape == (3, 8, 8) and data.info.input_bits == 4
    img = batches["test_batch"][0][2].astype(int)
    assert data.test.x[2, 1, 3, 5] == (img[1, 12:16, 20:24].sum() // 16) >> 4


def test_cifar10_missing_batch(tmp_path, seed):
    rng = np.random.default_rng(seed)
    batches = _cifar_set(rng)
    del batches["data_batch_4"]
    _write_cifar_py(tmp_path / "cifar-10-batches-py", batches)
    with pytest.raises(DatasetError, match=r"^cifar10: data_batch_4 is missing from "):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_pickle_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DatasetError, match=r"is not a CIFAR-10 python batch \(\w+\.print is "
                                           r"not allowed in a CIFAR batch\)"):
        read_cifar_pickle(path)


def test_cifar_pickle_wrong_shape(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
                                  protocol=2))
    with pytest.raises(DatasetError, match=r"'data' must be uint8 of shape \(n, 3072\), not "
                                           r"uint8 \(2, 100\)"):
        read_cifar_pickle(path)


def test_cifar_binary_wrong_size(tmp_path, seed):
    rng = np.random.default_rng(seed)
    batches = _cifar_set(rng)
    _write_cifar_bin(tmp_path, batches)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="a whole number of 3073-byte records, this file has "
                                           "9218 bytes"):
        load_dataset("cifar10", root=tmp_path)
