"""The golden model's conv, pool and flatten against the plain reference loop (tests/reference.py,
written from the rules of sw/geometry.py and docs/arithmetic.md), and the conv bounds."""

from __future__ import annotations

import numpy as np
import pytest
import reference
from golden_check import assert_matches_reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sw import fixedpoint as fx
from sw.artifact import Artifact, ConvLayer, InputSpec, LIFLayer, ReadoutLayer
from sw.fixedpoint import FixedPoint
from sw.golden import BoundViolation, GoldenModel
from sw.randnet import random_conv_artifact, random_inputs

# -- hundreds of random conv networks -----------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net_seed=st.integers(0, 2**32 - 1), data_seed=st.integers(0, 2**32 - 1),
       in_shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)),
       time_steps=st.sampled_from([1, 2, 3, 5]),
       input_kind=st.sampled_from(["multibit", "spike"]))
def test_golden_equals_reference_on_random_conv_networks(net_seed, data_seed, in_shape,
                                                         time_steps, input_kind):
    """Random conv/pool stacks (every K, stride, padding, pool and dense tail the generator
    draws; reset, leak, gains, zero-scale channels, widths at the bound) against the loop.
    Hypothesis prints the falsifying seeds and shape; they replay the case."""
    artifact = random_conv_artifact(net_seed, in_shape=in_shape, time_steps=time_steps,
                                    input_kind=input_kind, max_channels=4)
    x = random_inputs(artifact, 2, data_seed)
    assert_matches_reference(artifact, x)


# -- corner cases -------------------------------------------------------------------------------

CORNERS = {
    "k1": ((3, 5, 7), [("conv", 4, 1, 1, 0), ("readout", 3)]),
    "k1-stride2-odd": ((2, 7, 5), [("conv", 3, 1, 2, 0), ("lif", 4), ("readout", 2)]),
    "k7-p0": ((2, 9, 8), [("conv", 3, 7, 1, 0), ("readout", 3)]),
    "k7-p6": ((1, 4, 5), [("conv", 2, 7, 1, 6), ("readout", 3)]),
    "k7-p6-stride2": ((1, 5, 4), [("conv", 2, 7, 2, 6), ("readout", 2)]),
    "k5-p2-on-3x3": ((2, 3, 3), [("conv", 2, 5, 1, 2), ("readout", 2)]),
    "stride2-odd": ((2, 9, 7), [("conv", 3, 3, 2, 1), ("conv", 2, 3, 2, 0), ("readout", 3)]),
    "stride2-even-p0": ((1, 8, 6), [("conv", 2, 3, 2, 0), ("readout", 2)]),
    "c_in-5-then-3": ((5, 4, 4), [("conv", 3, 3, 1, 1), ("conv", 7, 3, 1, 1), ("readout", 3)]),
    "1x1-map": ((3, 1, 1), [("conv", 4, 1, 1, 0), ("conv", 3, 3, 1, 1), ("readout", 2)]),
    "1xW-map": ((2, 1, 6), [("conv", 3, 3, 1, 1), ("readout", 2)]),
    "pool-drops-remainder": ((1, 7, 5), [("conv", 3, 3, 1, 1), ("pool", 2), ("readout", 3)]),
    "pool3-drops-remainder": ((2, 8, 7), [("conv", 2, 1, 1, 0), ("pool", 3), ("lif", 5),
                                          ("readout", 2)]),
    "pool-after-pool": ((1, 12, 12), [("conv", 2, 3, 1, 1), ("pool", 2), ("pool", 3),
                                      ("readout", 3)]),
    "pool-then-conv": ((2, 6, 6), [("conv", 3, 3, 1, 1), ("pool", 2), ("conv", 2, 3, 1, 0),
                                   ("lif", 3), ("readout", 2)]),
    "pool-to-1x1": ((1, 3, 2), [("conv", 2, 1, 1, 0), ("pool", 2), ("readout", 2)]),
    "conv-readout": ((2, 5, 5), [("conv", 3, 3, 1, 1), ("readout", 4)]),
    "three-convs-dense": ((1, 6, 6), [("conv", 2, 3, 1, 1), ("conv", 3, 3, 2, 1),
                                      ("conv", 2, 1, 1, 0), ("lif", 6), ("readout", 3)]),
}


@pytest.mark.parametrize("kind", ["multibit", "spike"])
@pytest.mark.parametrize("corner", sorted(CORNERS))
def test_golden_conv_corner_cases_against_reference(seed, corner, kind):
    in_shape, layers = CORNERS[corner]
    artifact = random_conv_artifact(seed, in_shape=in_shape, layers=layers, time_steps=3,
                                    input_kind=kind)
    assert artifact.layers[0].in_shape == in_shape
    assert_matches_reference(artifact, random_inputs(artifact, 3, seed + 1))


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("leak", [None, 2])
def test_golden_conv_reset_leak_gains_zero_scale(seed, reset, leak):
    """Soft and hard reset, leak, folded step gains and many zero-scale (c = 0) channels."""
    artifact = random_conv_artifact(seed, in_shape=(2, 6, 5), layers=[
        ("conv", 6, 3, 1, 1), ("pool", 2), ("conv", 5, 3, 1, 1), ("lif", 7), ("readout", 3)],
        time_steps=4, reset=reset, leak_shift=leak, step_gain=True, zero_scale=0.4)
    conv = artifact.layers[0]
    assert conv.reset == reset and conv.leak_shift == leak
    assert_matches_reference(artifact, random_inputs(artifact, 3, seed))


def test_golden_conv_with_zero_scale_channels(seed):
    """c = 0 channels integrate the constant G·B at every position, whatever the input."""
    for s in range(seed, seed + 1000):  # a draw with both kinds of channel
        artifact = random_conv_artifact(s, in_shape=(2, 5, 5), layers=[
            ("conv", 6, 3, 1, 1), ("readout", 3)], time_steps=3, zero_scale=0.5)
        conv = artifact.layers[0]
        if 0 < conv.connected.sum() < conv.channels:
            break
    x = random_inputs(artifact, 4, seed)
    res = assert_matches_reference(artifact, x)
    off = np.flatnonzero(conv.connected == 0)
    # channel o is neuron j with j mod C_out = o
    h = res.layers[0].potential.reshape(4, 3, -1, conv.channels)
    assert (h[..., off] == h[:1, :, :1, off]).all(), "a c = 0 channel's h is the same everywhere"
    on = np.flatnonzero(conv.connected == 1)
    assert (h[..., on] != h[:1, :, :1, on]).any(), "connected channels do see their inputs"


@pytest.mark.parametrize("time_steps", [1, 2])
def test_golden_conv_with_event_input(seed, time_steps):
    """2-channel event frames (the datasets' (B, T, C, H, W) layout), a different frame per
    step; T = 1 included."""
    artifact = random_conv_artifact(seed, in_shape=(2, 8, 8), layers=[
        ("conv", 4, 3, 2, 1), ("pool", 2), ("lif", 6), ("readout", 3)],
        time_steps=time_steps, input_kind="spike")
    x = random_inputs(artifact, 3, seed)
    assert x.shape == (3, time_steps, 2, 8, 8) == artifact.input_shape(3)
    assert_matches_reference(artifact, x)


def test_multibit_conv_current_is_the_same_every_step(seed):
    artifact = random_conv_artifact(seed, in_shape=(2, 6, 6), layers=[
        ("conv", 3, 3, 1, 1), ("readout", 3)], time_steps=5, input_kind="multibit",
        input_bits=6)
    x = random_inputs(artifact, 3, seed)
    assert x.shape == (3, 2, 6, 6)
    cur = assert_matches_reference(artifact, x).layers[0].current
    assert (cur == cur[:, :1, :]).all()


# -- the rules themselves, on hand-worked examples ---------------------------------------------

def _conv(in_shape, weights, *, kernel, stride=1, padding=0, bits=1, kind="multibit",
          time_steps=1, bias=0, threshold=1 << 20, frac=0):
    channels = len(weights)
    common = dict(name="c", in_shape=in_shape, channels=channels, kernel=kernel,
                  stride=stride, padding=padding, input=InputSpec(kind, bits),
                  time_steps=time_steps, leak_shift=None, reset="hard",
                  step_gain=(1,) * time_steps, weights=np.array(weights, np.uint8),
                  bias=[bias] * channels, threshold=[threshold] * channels,
                  connected=[1] * channels)
    probe = ConvLayer(membrane=FixedPoint(fx.MAX_WIDTH, frac), **common)
    return ConvLayer(membrane=FixedPoint(probe.required_width, frac), **common)


def _with_readout(layer, classes=2):
    n = layer.neurons
    readout = ReadoutLayer(name="out", inputs=n, neurons=classes, input=InputSpec("spike"),
                           time_steps=layer.time_steps, step_gain=(1,) * layer.time_steps,
                           weights=np.ones((classes, n), np.uint8), scale=[1] * classes,
                           offset=[0] * classes, score=FixedPoint(fx.MAX_WIDTH))
    return Artifact((layer, readout))


def _both(artifact, x):
    """The conv layer's currents (B, T, M) from the golden model, checked against the
    reference."""
    return assert_matches_reference(artifact, x).layers[0].current


def test_zero_padding_adds_nothing_whatever_the_weight():
    """1 channel 3x3 of ones, K = 3, P = 1, all weights +1: a corner window holds 4 pixels,
    an edge window 6, the centre 9; with all weights −1 the same, negated. Padding that counted
    (as −1 or +1) would give ±9 everywhere."""
    x = np.ones((1, 1, 3, 3), np.int64)
    for bit, sign in ((1, 1), (0, -1)):
        art = _with_readout(_conv((1, 3, 3), [[bit] * 9], kernel=3, padding=1))
        cur = _both(art, x)[0, 0]
        assert cur.reshape(3, 3).tolist() == [[4 * sign, 6 * sign, 4 * sign],
                                             [6 * sign, 9 * sign, 6 * sign],
                                             [4 * sign, 6 * sign, 4 * sign]]


def test_window_order_and_element_order_on_one_pixel():
    """One input spike at (c=1, y=1, x=2) of a (2, 3, 4) map, K = 3, P = 1, two output channels.
    Output (o, y, x) reads the pixel through tap (ky, kx) = (2 − y, 3 − x) when that is in
    0..2. Channel 0's only +1 weight is bit (0·3 + 1)·2 + 1 = 3 (tap (0, 1), channel 1): +1 at
    output (2, 2), −1 at the other 8 outputs whose window holds the pixel, 0 elsewhere.
    Channel 1 is all −1. Neuron (o, y, x) is current index (y·4 + x)·2 + o."""
    w0 = [0] * 18
    w0[3] = 1
    art = _with_readout(_conv((2, 3, 4), [w0, [0] * 18], kernel=3, padding=1, kind="spike"))
    x = np.zeros((1, 1, 2, 3, 4), np.int64)
    x[0, 0, 1, 1, 2] = 1
    cur = _both(art, x)[0, 0]
    assert cur.shape == (24,)
    hwc = cur.reshape(3, 4, 2)  # element order: pixel-major, channel-minor
    in_window = [[0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]]
    expect0 = [[-v for v in row] for row in in_window]
    expect0[2][2] = 1
    assert hwc[:, :, 0].tolist() == expect0
    assert hwc[:, :, 1].tolist() == [[-v for v in row] for row in in_window]


def test_stride_two_reads_every_other_window():
    """K = 1, S = 2 on a 1-channel 5x5 map: output (y, x) is input (2y, 2x)."""
    x = np.arange(25, dtype=np.int64).reshape(1, 1, 5, 5) % 8
    art = _with_readout(_conv((1, 5, 5), [[1]], kernel=1, stride=2, bits=3))
    cur = _both(art, x)[0, 0]
    assert cur.reshape(3, 3).tolist() == x[0, 0, ::2, ::2].tolist()


def test_kernel_the_size_of_the_map_is_the_dense_layer():
    """K = H = W and P = 0: one window, and the window order is the element order, so the conv
    is the dense layer of the same weight rows on the flattened map (C_out neurons)."""
    rng = np.random.default_rng(4)
    c_in, k, c_out, t_steps = 3, 5, 4, 3
    w = rng.integers(0, 2, size=(c_out, k * k * c_in), dtype=np.uint8)
    params = dict(input=InputSpec("spike"), time_steps=t_steps, leak_shift=1, reset="soft",
                  step_gain=(1, 2, 1), weights=w, bias=[3, -2, 0, 5], threshold=[4, 9, -1, 30],
                  connected=[1, 1, 0, 1], membrane=FixedPoint(16, 1))
    conv = ConvLayer(name="c", in_shape=(c_in, k, k), channels=c_out, kernel=k, stride=1,
                     padding=0, **params)
    dense = LIFLayer(name="c", inputs=c_in * k * k, neurons=c_out, **params)
    x = (rng.random((6, t_steps, c_in, k, k)) < 0.5).astype(np.int64)
    flat = x.transpose(0, 1, 3, 4, 2).reshape(6, t_steps, -1)  # (C, H, W) -> element order
    a = assert_matches_reference(_with_readout(conv, 3), x).layers[0]
    b = GoldenModel(_with_readout(dense, 3)).run(flat, record=True).layers[0]
    for attr in ("current", "potential", "membrane", "spikes"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)


def test_pool_is_the_or_of_each_window_and_drops_the_remainder():
    """K = 1 conv with threshold 1 passes the input spikes through; a 2x2 pool of a 5x5 map is
    the OR of rows/cols 0-1 and 2-3, and row/col 4 is never read."""
    art = random_conv_artifact(0, in_shape=(1, 5, 5), layers=[("conv", 1, 1, 1, 0), ("pool", 2),
                                                              ("readout", 2)],
                               input_kind="spike", time_steps=1)
    conv = ConvLayer(**{**{k: getattr(art.layers[0], k) for k in (
        "name", "in_shape", "channels", "kernel", "stride", "padding", "input", "time_steps",
        "membrane", "leak_shift", "reset", "step_gain")}, "weights": [[1]], "bias": [0],
        "threshold": [1], "connected": [1]})
    artifact = Artifact((conv, *art.layers[1:]))
    x = np.zeros((3, 1, 1, 5, 5), np.int64)
    x[0, 0, 0, 1, 1] = 1      # window (0, 0)
    x[1, 0, 0, 4, :] = 1      # the dropped row only
    x[1, 0, 0, :, 4] = 1      # and the dropped column
    x[2, 0, 0, 2, 3] = 1      # window (1, 1)
    x[2, 0, 0, 0, 2] = 1      # window (0, 1)
    res = assert_matches_reference(artifact, x)
    assert res.layers[0].spikes[:, 0].reshape(3, 5, 5).tolist() == x[:, 0, 0].tolist()
    pooled = res.layers[1].spikes[:, 0].reshape(3, 2, 2)
    assert pooled.tolist() == [[[1, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 1], [0, 1]]]


# -- widths: reached, never exceeded ------------------------------------------------------------

def _worst_case_conv(in_shape, kernel, padding, bits, t_steps, f, negative):
    """All weights +1 (or −1), every input at its maximum, maximal |bias|, a threshold never
    reached: a window entirely on the map gives h[T−1] = ±T·Imax with N = K·K·C_in."""
    c_out = 3
    n = kernel * kernel * in_shape[0]
    imax = (fx.synaptic_bound(n, bits) << f) + 5
    weights = [[0 if negative else 1] * n] * c_out
    layer = _conv(in_shape, weights, kernel=kernel, padding=padding, bits=bits,
                  time_steps=t_steps, bias=-5 if negative else 5,
                  threshold=t_steps * imax + (0 if negative else 1), frac=f)
    return layer, imax


@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("in_shape,kernel,padding,bits,t_steps,f", [
    ((3, 5, 5), 3, 1, 5, 4, 2), ((2, 7, 7), 7, 6, 8, 3, 0), ((5, 3, 4), 1, 0, 1, 1, 6),
    ((1, 6, 6), 5, 0, 4, 16, 3)])
def test_worst_case_reaches_but_never_exceeds_the_width(in_shape, kernel, padding, bits,
                                                        t_steps, f, negative):
    layer, imax = _worst_case_conv(in_shape, kernel, padding, bits, t_steps, f, negative)
    assert layer.current_bound == imax and layer.membrane_bound == t_steps * imax
    artifact = _with_readout(layer)
    x = np.full((2, *in_shape), (1 << bits) - 1)
    h = assert_matches_reference(artifact, x).layers[0].potential
    extreme = int(np.abs(h).max())
    assert extreme == t_steps * imax, "the proven bound is reached exactly"
    assert extreme <= layer.membrane.max
    assert extreme > layer.membrane.max >> 1, "the top magnitude bit is needed: width is tight"


def test_bound_violation_is_detected_in_a_conv_layer():
    """Shrink the width behind the validator: the golden model's check on every step fires."""
    layer, _ = _worst_case_conv((2, 4, 4), 3, 1, 4, 3, 2, False)
    artifact = _with_readout(layer)
    object.__setattr__(layer, "membrane", FixedPoint(layer.membrane.width - 1, 2))
    with pytest.raises(BoundViolation, match=r"layer 'c'"):
        GoldenModel(artifact).run(np.full((1, 2, 4, 4), 15))


# -- a test of the test: a wrong reference is caught -------------------------------------------

def _padding_matters():
    return [random_conv_artifact(s, in_shape=(2, 5, 4), layers=[
        ("conv", 3, 3, 1, 1), ("pool", 2), ("lif", 4), ("readout", 3)], time_steps=2,
        input_kind=kind) for s, kind in ((11, "multibit"), (12, "spike"))]


def _channel_major_window(layer, inp, y, x):
    """The classic layout bug: window bit (c·K + ky)·K + kx (PyTorch's (C_in, K, K) order)."""
    right = _right_window(layer, inp, y, x)
    k, c_in = layer.kernel, layer.in_shape[0]
    wrong = [None] * len(right)
    for ky in range(k):
        for kx in range(k):
            for c in range(c_in):
                wrong[(c * k + ky) * k + kx] = right[(ky * k + kx) * c_in + c]
    return wrong


_right_window = reference.window_values


@pytest.mark.parametrize("corrupt", ["padding is 1", "channel-major window"])
def test_a_corrupted_reference_is_detected(monkeypatch, corrupt):
    artifacts = _padding_matters()
    inputs = [random_inputs(a, 4, 1, extremes=0) for a in artifacts]
    for a, x in zip(artifacts, inputs, strict=True):
        assert_matches_reference(a, x)  # the true reference agrees
    if corrupt == "padding is 1":
        monkeypatch.setattr(reference, "PADDING_VALUE", 1)
    else:
        monkeypatch.setattr(reference, "window_values", _channel_major_window)
    for a, x in zip(artifacts, inputs, strict=True):
        with pytest.raises(AssertionError, match=r"layer 0 \(conv0, conv\): synaptic sums"):
            assert_matches_reference(a, x)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (2, 2)])
def test_conv_weight_rows_of_a_pytorch_kernel_give_the_cross_correlation(stride, padding):
    """A (C_out, C_in, K, K) ±1 kernel through :func:`sw.geometry.conv_weight_rows` computes
    PyTorch's conv2d (a cross-correlation over the zero-padded (C, H, W) input), written here
    with numpy on channel-first arrays, in the element order."""
    from sw.geometry import conv_weight_rows

    rng = np.random.default_rng(stride * 10 + padding)
    c_in, c_out, k, h, w, bits = 3, 4, 3, 7, 6, 4
    kernel = rng.choice([-1, 1], size=(c_out, c_in, k, k))
    rows = conv_weight_rows((kernel + 1) // 2)
    layer = _conv((c_in, h, w), rows.tolist(), kernel=k, stride=stride, padding=padding,
                  bits=bits)
    x = rng.integers(0, 1 << bits, size=(2, c_in, h, w))
    _, h_out, w_out = layer.out_shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    expect = np.zeros((2, c_out, h_out, w_out), np.int64)
    for ky in range(k):
        for kx in range(k):
            taps = padded[:, :, ky:ky + stride * (h_out - 1) + 1:stride,
                          kx:kx + stride * (w_out - 1) + 1:stride]
            expect += np.einsum("oc,bcyx->boyx", kernel[:, :, ky, kx], taps)
    cur = _both(_with_readout(layer), x)[:, 0]
    np.testing.assert_array_equal(cur, expect.transpose(0, 2, 3, 1).reshape(2, -1))


@pytest.mark.parametrize("kind", ["spike", "multibit"])
def test_empty_batches_and_chunked_runs(kind, seed):
    """An empty batch gives empty results of the right shapes; a run split into chunks (conv
    networks take fewer samples per chunk) equals the run in one piece on every recorded value."""
    from sw.golden import GoldenModel
    from sw.randnet import random_conv_artifact, random_inputs

    art = random_conv_artifact(seed, in_shape=(2, 6, 6), layers=[
        ("conv", 3, 3, 1, 1), ("pool", 2), ("lif", 5), ("readout", 4)], input_kind=kind,
        input_bits=3, time_steps=3)
    empty = GoldenModel(art).run(np.zeros((0, *art.input_shape()), np.uint8), record=True)
    assert empty.scores.shape == (0, 4) and empty.predictions.shape == (0,)
    assert [s.shape for s in empty.spikes] == [(0, 3, 108), (0, 3, 27), (0, 3, 5)]
    x = random_inputs(art, 50, seed)
    whole = GoldenModel(art).run(x, record=True)
    chunked = GoldenModel(art)
    chunked._chunk = 7
    parts = chunked.run(x, record=True)
    assert np.array_equal(parts.scores, whole.scores)
    for a, b in zip(parts.layers, whole.layers, strict=True):
        for key in ("current", "potential", "membrane", "spikes", "sums"):
            if getattr(b, key) is not None:
                assert np.array_equal(getattr(a, key), getattr(b, key)), (a.name, key)


# -- the compiled kernel's code paths (sw/golden/_conv.py) --------------------------------------

KERNEL_PATHS = {
    # map rows of whole 8-byte groups (packed eight spikes at a time), 3 words a row, 16 bits of
    # left padding; windows of 7 words (a pass of four words, one of two, one of one)
    "rows-of-8-byte-groups": ((16, 6, 6), [("conv", 5, 5, 1, 2), ("readout", 3)]),
    # the same rows, stride 2 and no padding: segments cut at odd word offsets
    "rows-of-8-byte-groups-stride2": ((8, 9, 9), [("conv", 4, 3, 2, 0), ("readout", 2)]),
    # rows that are not whole groups (packed spike by spike); windows of 3 words
    "odd-rows": ((3, 7, 7), [("conv", 4, 5, 1, 2), ("readout", 3)]),
    # windows of <= 64 bits (one word) after a conv whose rows are whole groups
    "one-word-windows": ((1, 8, 8), [("conv", 8, 3, 1, 1), ("conv", 3, 1, 1, 0),
                                     ("readout", 2)]),
    # exactly 64 and 128 bits: segments and windows that end on a word boundary
    "word-aligned": ((16, 4, 4), [("conv", 8, 1, 1, 0), ("conv", 2, 1, 1, 0),
                                  ("readout", 2)]),
    "word-aligned-k3": ((64, 3, 3), [("conv", 3, 3, 1, 1), ("readout", 2)]),
}


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("path", sorted(KERNEL_PATHS))
def test_conv_kernel_paths_against_reference(seed, path, reset):
    """Each way the kernel packs spikes and assembles windows, on spike input (the multi-bit
    first layer is in every other test), against the reference loop."""
    in_shape, layers = KERNEL_PATHS[path]
    artifact = random_conv_artifact(seed, in_shape=in_shape, layers=layers, time_steps=3,
                                    input_kind="spike", reset=reset)
    assert_matches_reference(artifact, random_inputs(artifact, 2, seed + 1))


def test_recording_and_checking_do_not_change_a_conv_run(seed):
    """The kernel's record and check switches only add outputs: spikes, scores and the
    predictions of a recorded, an unrecorded and an unchecked run are equal (random conv
    networks, fresh seeds every session)."""
    for s in range(seed, seed + 6):
        artifact = random_conv_artifact(s, in_shape=(2, 7, 6), max_channels=6)
        x = random_inputs(artifact, 9, s)
        runs = [GoldenModel(artifact).run(x, record=True), GoldenModel(artifact).run(x),
                GoldenModel(artifact, check_bounds=False).run(x)]
        for other in runs[1:]:
            np.testing.assert_array_equal(other.scores, runs[0].scores, err_msg=f"seed {s}")
            np.testing.assert_array_equal(other.predictions, runs[0].predictions)
            for a, b in zip(other.spikes, runs[0].spikes, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"seed {s}")
        assert runs[1].layers[0].potential is None and runs[0].layers[0].potential is not None


def test_soft_reset_bound_violation_is_detected_in_a_conv_layer():
    """The kernel's range of v after a soft reset is checked too. Zero input, B = 0 and
    Θ = −40: every step fires and v grows by 40 (h = 0, 40; v = 40, 80), so a 7-bit width
    (−64..63, behind the validator) holds every h but not v[1]."""
    layer = _conv((1, 3, 3), [[1]], kernel=1, time_steps=2, bias=0, threshold=-40)
    artifact = _with_readout(layer)
    object.__setattr__(layer, "reset", "soft")
    x = np.zeros((1, 1, 3, 3), np.int64)
    trace = GoldenModel(artifact, check_bounds=False).run(x, record=True).layers[0]
    assert (trace.potential[0].T == [0, 40]).all() and (trace.membrane[0].T == [40, 80]).all()
    object.__setattr__(layer, "membrane", FixedPoint(7, 0))
    with pytest.raises(BoundViolation, match=r"layer 'c', time step 1: membrane after soft "
                                             r"reset 80\.\.80 leaves the proven range "
                                             r"-64\.\.63 \(7 bits\)"):
        GoldenModel(artifact).run(x)
