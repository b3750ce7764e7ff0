"""The geometry rules of sw.geometry and the worked examples of docs/arithmetic.md §9."""

from __future__ import annotations

import numpy as np
import pytest

from sw import geometry
from sw.artifact import ConvLayer, InputSpec, PoolLayer, ReadoutLayer
from sw.fixedpoint import FixedPoint
from sw.golden import GoldenModel


def test_element_order_worked_example():
    # C = 2, H = 2, W = 3 (docs/arithmetic.md §9, "Maps and the element order")
    assert geometry.map_index(0, 2, 1, width=3, channels=2) == 5
    assert geometry.map_index(1, 0, 0, width=3, channels=2) == 6
    chw = np.arange(12).reshape(2, 2, 3)  # value = PyTorch's flatten index c·H·W + y·W + x
    hwc = geometry.chw_to_hwc(chw).reshape(-1)
    assert hwc[5] == 8 and hwc[6] == 3
    for c in range(2):
        for y in range(2):
            for x in range(3):
                assert hwc[geometry.map_index(y, x, c, 3, 2)] == chw[c, y, x]
    assert np.array_equal(geometry.hwc_to_chw(geometry.chw_to_hwc(chw)), chw)


def test_window_order_and_weight_rows():
    k, c_in = 3, 2
    kernel = np.arange(4 * c_in * k * k).reshape(4, c_in, k, k)
    rows = geometry.conv_weight_rows(kernel)
    assert rows.shape == (4, k * k * c_in)
    for o in range(4):
        for ky in range(k):
            for kx in range(k):
                for c in range(c_in):
                    assert rows[o, geometry.window_index(ky, kx, c, k, c_in)] == kernel[o, c, ky,
                                                                                       kx]
    with pytest.raises(ValueError, match=r"\(C_out, C_in, K, K\)"):
        geometry.conv_weight_rows(np.zeros((2, 3, 3)))


@pytest.mark.parametrize("size,k,s,p,out", [
    (8, 3, 1, 1, 8), (8, 3, 2, 1, 4), (7, 3, 2, 1, 4), (7, 3, 2, 0, 3), (5, 5, 1, 0, 1),
    (1, 7, 1, 6, 7), (34, 1, 2, 0, 17), (4, 7, 1, 1, 0),
])
def test_conv_output_size(size, k, s, p, out):
    assert geometry.conv_output_size(size, k, s, p) == out
    # the same count as the windows one can place, stepping S, on the padded input
    assert out == max(0, len(range(0, size + 2 * p - k + 1, s)))


def test_pool_output_size_drops_the_remainder():
    assert geometry.pool_output_size(34, 2) == 17
    assert geometry.pool_output_size(17, 2) == 8
    assert geometry.pool_output_size(9, 3) == 3


def _conv(weights, in_shape, *, kernel=3, stride=1, padding=1, spec=None, threshold=(1,)):
    channels = len(weights)
    return ConvLayer(name="conv", in_shape=in_shape, channels=channels, kernel=kernel,
                     stride=stride, padding=padding, input=spec or InputSpec("spike"),
                     time_steps=1, membrane=FixedPoint(8, 0), leak_shift=None, reset="hard",
                     step_gain=(1,), weights=np.array(weights), bias=np.zeros(channels, int),
                     threshold=np.array(threshold), connected=np.ones(channels, int))


def _readout(n, classes=2):
    return ReadoutLayer(name="out", inputs=n, neurons=classes, input=InputSpec("spike"),
                        time_steps=1, step_gain=(1,), weights=np.ones((classes, n), int),
                        scale=np.ones(classes, int), offset=np.zeros(classes, int),
                        score=FixedPoint(16))


def test_conv_worked_example_zero_padding_adds_nothing():
    from sw.artifact import Artifact

    # weight bits in window order 1 1 0 / 1 0 1 / 0 1 1 over the 2x2 map [[1, 0], [1, 1]]
    conv = _conv([[1, 1, 0, 1, 0, 1, 0, 1, 1]], (1, 2, 2))
    art = Artifact((conv, _readout(conv.neurons)))
    x = np.array([[[[[1, 0], [1, 1]]]]])  # (B, T, C, H, W)
    res = GoldenModel(art).run(x, record=True)
    current = res.layers[0].current[0, 0]  # element order (y, x, c), C_out = 1
    assert current[geometry.map_index(0, 0, 0, 2, 1)] == 1
    # every output by hand, padding as 0 (a padding of -1 would change each one)
    w = np.array([1, 1, -1, 1, -1, 1, -1, 1, 1]).reshape(3, 3)
    img = np.pad(np.array([[1, 0], [1, 1]]), 1)
    for y in range(2):
        for x_ in range(2):
            assert current[y * 2 + x_] == int(np.sum(img[y:y + 3, x_:x_ + 3] * w))


def test_pool_worked_example_is_an_or():
    from sw.artifact import Artifact

    spikes = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1]])
    # a 1x1 conv with weight +1 and threshold 1 passes its spike input through unchanged
    conv = _conv([[1]], (1, 4, 4), kernel=1, padding=0)
    pool = PoolLayer(name="pool", in_shape=conv.out_shape, kernel=2, time_steps=1)
    art = Artifact((conv, pool, _readout(pool.neurons)))
    res = GoldenModel(art).run(spikes[None, None, None])
    assert np.array_equal(res.layers[0].spikes[0, 0], spikes.reshape(-1))
    assert np.array_equal(res.layers[1].spikes[0, 0], [1, 0, 1, 1])
