"""Readers of the on-disk formats the datasets are distributed in (numpy only, no downloads).

Each reader takes one file and returns numpy arrays; a file that does not match its format
raises :class:`~sw.data.base.DatasetError` naming the file and what was expected.

* IDX (MNIST, Fashion-MNIST): a big-endian header ``00 00 <type> <ndim>``, ``ndim`` big-endian
  uint32 sizes, then the data (type ``0x08`` = unsigned byte). Plain or gzip-compressed.
* CIFAR-10, python version: pickled dicts (Python 2, ``encoding="bytes"``) with ``b"data"``, a
  ``(10000, 3072)`` uint8 array (1024 red, 1024 green, 1024 blue values, rows top to bottom),
  and ``b"labels"``. Unpickling is restricted to the few numpy names those files use.
* CIFAR-10, binary version: records of 1 label byte + 3072 pixel bytes (same pixel order).
* N-MNIST: 5 bytes per event: x, y, then a big-endian 24-bit word holding the polarity in its
  top bit (1 ON, 0 OFF) and a 23-bit timestamp in microseconds.
* AEDAT 2.0 (jAER; CIFAR10-DVS): ASCII header lines starting with ``#``, then big-endian
  ``(uint32 address, uint32 timestamp)`` pairs. DVS128 addresses: bit 0 polarity (0 ON, 1 OFF),
  bits 1-7 x, bits 8-14 y (jAER's axes: x mirrored, y up), bit 15 external/sync events.
* AEDAT 3.1 (cAER; DVS128 Gesture): ASCII header up to ``#!END-HEADER``, then packets of a
  28-byte little-endian header (int16 type, int16 source, int32 event size, int32 timestamp
  offset, int32 timestamp overflow, int32 capacity, int32 number, int32 valid) and
  ``capacity * size`` bytes of events. Polarity events (type 1, 8 bytes): uint32 data with
  bit 0 valid, bit 1 polarity (1 ON), bits 2-16 y, bits 17-31 x (row 0 at the top), then an
  int32 timestamp in microseconds; the full time is ``overflow << 31 | timestamp``.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

from sw.data.base import DatasetError
from sw.data.events import Events

__all__ = ["read_idx", "read_cifar_pickle", "read_cifar_binary", "read_nmnist",
           "read_aedat_header", "read_aedat2", "read_aedat31", "dvs128_jaer_events"]


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"{str(path)!r} looks gzip-compressed but does not decompress: "
                               f"{exc}") from None
    return data


# --- IDX (MNIST / Fashion-MNIST) -------------------------------------------------------------

def read_idx(path, *, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (plain or ``.gz``)."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(f"{str(path)!r} is not an IDX file (it must start with 00 00 <type> "
                           f"<ndim>)")
    dtype_code, file_ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise DatasetError(f"{str(path)!r}: IDX type 0x{dtype_code:02x}, expected 0x08 "
                           f"(unsigned byte)")
    if file_ndim != ndim:
        raise DatasetError(f"{str(path)!r}: IDX file with {file_ndim} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{str(path)!r}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = int(np.prod(shape))
    if len(data) - header != size:
        raise DatasetError(f"{str(path)!r}: the header announces {shape} = {size} bytes of data, "
                           f"the file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


# --- CIFAR-10 ---------------------------------------------------------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds: dicts, lists, bytes and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
        ("_codecs", "encode"): ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        import importlib

        return getattr(importlib.import_module(target[0]), target[1])


def read_cifar_pickle(path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python batch: ``(x (n, 3, 32, 32) uint8, y (n,) int64)``."""
    path = Path(path)
    raw = _read_bytes(path)
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means "not a CIFAR batch"
        raise DatasetError(f"{str(path)!r} is not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(batch, dict):
        raise DatasetError(f"{str(path)!r}: expected a pickled dict, found {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DatasetError(f"{str(path)!r}: a CIFAR-10 batch holds 'data' and 'labels'; found "
                           f"keys {sorted(map(str, batch))}")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{str(path)!r}: 'data' must be uint8 of shape (n, 3072), not "
                           f"{data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{str(path)!r}: {len(labels)} labels for {data.shape[0]} images")
    _check_labels(labels, 10, path)
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar_binary(path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch (records of 1 + 3072 bytes): ``(x, y)`` as above."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % 3073:
        raise DatasetError(f"{str(path)!r}: a CIFAR-10 binary batch is a whole number of "
                           f"3073-byte records, this file has {len(raw)} bytes")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
    labels = rec[:, 0].astype(np.int64)
    _check_labels(labels, 10, path)
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


def _check_labels(labels, classes, path):
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise DatasetError(f"{str(path)!r}: labels must be 0..{classes - 1}, found "
                           f"{labels.min()}..{labels.max()}")


# --- N-MNIST ----------------------------------------------------------------------------------

def read_nmnist(path, *, size: int = 34) -> Events:
    """One N-MNIST ``.bin`` recording; coordinates must lie on the ``size x size`` sensor."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) % 5:
        raise DatasetError(f"{str(path)!r}: N-MNIST files hold 5 bytes per event, this one has "
                           f"{len(raw)} bytes")
    ev = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = ev[:, 0], ev[:, 1]
    p = ev[:, 2] >> 7
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    if len(ev) and (x.max() >= size or y.max() >= size):
        raise DatasetError(f"{str(path)!r}: event at x={x.max()}, y={y.max()} outside the "
                           f"{size}x{size} N-MNIST sensor")
    return Events(x, y, p, t)


# --- AEDAT ------------------------------------------------------------------------------------

def read_aedat_header(raw: bytes, path) -> tuple[str, int]:
    """``(version, offset of the first data byte)`` of an AEDAT 1/2/3 file's bytes.

    The header is the run of lines starting with ``#``; AEDAT 3 ends it with ``#!END-HEADER``.
    """
    version, pos = None, 0
    while pos < len(raw) and raw[pos:pos + 1] == b"#":
        end = raw.find(b"\n", pos)
        if end < 0:
            raise DatasetError(f"{str(path)!r}: AEDAT header line without an end")
        line = raw[pos:end].rstrip(b"\r")
        pos = end + 1
        if line.startswith(b"#!AER-DAT"):
            version = line[len(b"#!AER-DAT"):].decode("ascii", "replace").strip()
        if line.startswith(b"#!END-HEADER") or line.startswith(b"#End Of ASCII Header"):
            break
    if version is None:
        raise DatasetError(f"{str(path)!r} is not an AEDAT file (no '#!AER-DAT<version>' header "
                           f"line)")
    return version, pos


def read_aedat2(path) -> tuple[np.ndarray, np.ndarray]:
    """An AEDAT 2.0 file: ``(address, timestamp)`` as uint32 arrays."""
    path = Path(path)
    raw = _read_bytes(path)
    version, start = read_aedat_header(raw, path)
    if not version.startswith("2"):
        raise DatasetError(f"{str(path)!r}: AEDAT version {version}, expected 2.0 (jAER); "
                           f"AEDAT 4 re-packagings are not supported, use the original files")
    body = raw[start:]
    if len(body) % 8:
        raise DatasetError(f"{str(path)!r}: AEDAT 2.0 data must be 8-byte (address, timestamp) "
                           f"pairs, found {len(body)} bytes")
    pairs = np.frombuffer(body, dtype=">u4").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint32), pairs[:, 1].astype(np.uint32)


def dvs128_jaer_events(address: np.ndarray, timestamp: np.ndarray) -> Events:
    """DVS128 events from jAER raw addresses, in image coordinates (row 0 at the top).

    jAER extracts ``x = 127 - bits 1-7``, ``y = bits 8-14`` (y up) and ON when bit 0 is 0; the
    image row is ``127 - y``. Events with bit 15 (external input) or bit 31 set are dropped.
    """
    a = address.astype(np.int64)
    real = (a & 0x80008000) == 0
    a = a[real]
    x = 127 - ((a >> 1) & 0x7F)
    y = 127 - ((a >> 8) & 0x7F)
    p = 1 - (a & 1)
    return Events(x, y, p, timestamp[real].astype(np.int64))


_PACKET = struct.Struct("<hhiiiiii")
_POLARITY_EVENT = 1


def read_aedat31(path, *, size: int = 128) -> Events:
    """The valid polarity events of an AEDAT 3.1 file (other event types are skipped)."""
    path = Path(path)
    raw = _read_bytes(path)
    version, pos = read_aedat_header(raw, path)
    if not version.startswith("3"):
        raise DatasetError(f"{str(path)!r}: AEDAT version {version}, expected 3.1 (cAER)")
    words, overflows, counts = [], [], []
    while pos < len(raw):
        if pos + _PACKET.size > len(raw):
            raise DatasetError(f"{str(path)!r}: truncated AEDAT 3.1 packet header at byte {pos}")
        etype, _src, esize, _tsoff, overflow, capacity, number, _valid = \
            _PACKET.unpack_from(raw, pos)
        pos += _PACKET.size
        nbytes = capacity * esize
        if esize <= 0 or capacity < 0 or number > capacity or pos + nbytes > len(raw):
            raise DatasetError(f"{str(path)!r}: malformed AEDAT 3.1 packet at byte "
                               f"{pos - _PACKET.size} (size {esize}, capacity {capacity}, "
                               f"number {number}, {len(raw) - pos} bytes left)")
        if etype == _POLARITY_EVENT:
            if esize != 8:
                raise DatasetError(f"{str(path)!r}: polarity events must be 8 bytes, not {esize}")
            words.append(np.frombuffer(raw, dtype="<u4", count=2 * number, offset=pos))
            overflows.append(overflow)
            counts.append(number)
        pos += nbytes
    pairs = np.concatenate(words).reshape(-1, 2) if words else np.zeros((0, 2), dtype="<u4")
    data, stamp = pairs[:, 0], pairs[:, 1].astype(np.int64)
    if len(set(overflows)) > 1:  # the 31-bit clock wrapped during the recording
        stamp |= np.repeat(np.array(overflows, dtype=np.int64) << 31, counts)
    elif overflows:
        stamp |= np.int64(overflows[0]) << 31
    valid = (data & 1) == 1
    if not valid.all():
        data, stamp = data[valid], stamp[valid]
    t = stamp
    x, y, p = (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, (data >> 1) & 1
    if len(data) and (x.max() >= size or y.max() >= size):
        raise DatasetError(f"{str(path)!r}: event at x={x.max()}, y={y.max()} outside the "
                           f"{size}x{size} sensor")
    return Events(x, y, p, t)
