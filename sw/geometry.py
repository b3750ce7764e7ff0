"""Geometry of convolutional layers: the one owner of every shape and index rule.

docs/arithmetic.md §9 is the normative text. Everything here is plain integers and numpy, so
the artifact, the golden model, the exporter and the hardware generator all ask the same rules:

* a feature map is ``(C, H, W)``: channels, height, width;
* **element order** (the flatten into a dense layer, a layer's neuron index, the order the
  hardware streams a map in): pixel-major, channel-minor, ``index(y, x, c) = (y·W + x)·C + c``
  (:func:`map_index`, "HWC"). A stream of a map is its pixels in raster order, each pixel's
  channels together;
* a conv layer's **weight row** of output channel ``o`` holds its ``K·K·C_in`` window bits in
  the same order, ``i(ky, kx, c) = (ky·K + kx)·C_in + c`` (:func:`window_index`);
* output size ``H_out = (H + 2P − K) // S + 1`` (:func:`conv_output_size`), and a k×k spike
  pool over non-overlapping windows ``H_out = H // k`` (:func:`pool_output_size`; rows and
  columns past the last whole window are dropped, as PyTorch's ``MaxPool2d`` does);
* window ``(y, x)`` of a conv reads input pixels ``(y·S − P + ky, x·S − P + kx)``; a position
  outside the map is zero padding: an input of value 0, which adds nothing to the sum whatever
  its weight (:func:`window_origin`).
"""

from __future__ import annotations

import numpy as np

from sw.checks import check_int

__all__ = [
    "KERNELS",
    "STRIDES",
    "conv_output_size",
    "pool_output_size",
    "map_index",
    "window_index",
    "window_origin",
    "chw_to_hwc",
    "hwc_to_chw",
    "conv_weight_rows",
]

#: Kernel sizes a conv layer may have (odd, 1..7).
KERNELS = (1, 3, 5, 7)
#: Strides a conv layer may have.
STRIDES = (1, 2)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """``(size + 2·padding − kernel) // stride + 1``: output rows (or columns) of a conv;
    0 or less when the padded input is smaller than the kernel."""
    return (int(size) + 2 * int(padding) - int(kernel)) // int(stride) + 1


def pool_output_size(size: int, kernel: int) -> int:
    """``size // kernel``: output rows (or columns) of a non-overlapping k×k pool."""
    return int(size) // int(kernel)


def map_index(y: int, x: int, c: int, width: int, channels: int) -> int:
    """Position of element ``(c, y, x)`` of a ``(C, H, W)`` map in the element order:
    ``(y·W + x)·C + c``."""
    return (y * width + x) * channels + c


def window_index(ky: int, kx: int, c: int, kernel: int, channels: int) -> int:
    """Bit of a conv weight row that weights window tap ``(ky, kx)`` of input channel ``c``:
    ``(ky·K + kx)·C_in + c``."""
    return (ky * kernel + kx) * channels + c


def window_origin(y: int, x: int, stride: int, padding: int) -> tuple[int, int]:
    """Input pixel of tap (0, 0) of output position ``(y, x)``: ``(y·S − P, x·S − P)``."""
    return y * stride - padding, x * stride - padding


def chw_to_hwc(x: np.ndarray) -> np.ndarray:
    """``(..., C, H, W)`` -> ``(..., H, W, C)`` (a view)."""
    check_int("ndim", np.ndim(x), 3)
    return np.moveaxis(x, -3, -1)


def hwc_to_chw(x: np.ndarray) -> np.ndarray:
    """``(..., H, W, C)`` -> ``(..., C, H, W)`` (a view)."""
    check_int("ndim", np.ndim(x), 3)
    return np.moveaxis(x, -1, -3)


def conv_weight_rows(weights: np.ndarray) -> np.ndarray:
    """A conv kernel ``(C_out, C_in, K, K)`` (PyTorch's layout) as the artifact's weight rows
    ``(C_out, K·K·C_in)`` in window order (:func:`window_index`)."""
    w = np.asarray(weights)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"a conv kernel must have shape (C_out, C_in, K, K), not {w.shape}")
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1))
