"""digits-events: the integer DVS model against an independent float re-implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sw.data import DatasetInfo, load_dataset
from sw.data.digits import (
    bin_digit_events,
    digits_to_events,
    digits_to_frames,
    log_intensity,
    render,
    saccade_path,
)

# --- an independent reading of the model in docs/datasets.md / sw/data/digits.py -------------

def _ref_path():
    corners = [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5), (-0.5, -0.5)]
    points = [corners[0]]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        for s in range(1, 9):
            points.append((x0 + (x1 - x0) * s / 8, y0 + (y1 - y0) * s / 8))
    return points  # in pixels; every value is a multiple of 1/8, exact in binary floats


def _ref_render(img, dx, dy):
    def pixel(r, c):
        return float(img[r][c]) if 0 <= r < 8 and 0 <= c < 8 else 0.0

    out = [[0] * 8 for _ in range(8)]
    for r in range(8):
        for c in range(8):
            sy, sx = r - dy, c - dx
            r0, c0 = math.floor(sy), math.floor(sx)
            fy, fx = sy - r0, sx - c0
            v = ((1 - fy) * (1 - fx) * pixel(r0, c0) + (1 - fy) * fx * pixel(r0, c0 + 1)
                 + fy * (1 - fx) * pixel(r0 + 1, c0) + fy * fx * pixel(r0 + 1, c0 + 1))
            out[r][c] = round(v * 64)  # exact: weights are multiples of 1/64
    return out


def _ref_log(j):
    return math.floor(256 * math.log2(j + 64))


def _ref_frames(img, time_steps):
    path = _ref_path()
    ref = [[_ref_log(v) for v in row] for row in _ref_render(img, *path[0])]
    frames = np.zeros((time_steps, 2, 8, 8), dtype=np.uint8)
    steps = len(path) - 1
    for s in range(1, steps + 1):
        level = _ref_render(img, *path[s])
        b = ((s - 1) * time_steps) // steps
        for r in range(8):
            for c in range(8):
                d = _ref_log(level[r][c]) - ref[r][c]
                if d >= 128:
                    frames[b, 1, r, c] = 1
                    ref[r][c] += (d // 128) * 128
                elif d <= -128:
                    frames[b, 0, r, c] = 1
                    ref[r][c] -= ((-d) // 128) * 128
    return frames


# --- the pieces -------------------------------------------------------------------------------

def test_log_intensity_is_exact():
    j = np.arange(0, 1025)
    L = log_intensity(j)
    assert L[0] == 256 * 6  # log2(64) = 6
    assert L[64] == 256 * 7 and L[960] == 256 * 10
    # the defining inequality 2**L <= (j + 64)**256 < 2**(L + 1), in exact integers
    for v, lv in zip(j.tolist(), L.tolist(), strict=True):
        big = (v + 64) ** 256
        assert (1 << lv) <= big < (1 << (lv + 1))


def test_saccade_path():
    path = saccade_path()
    assert len(path) == 33
    assert path[0] == path[8 * 4] == (-4, -4)
    assert (path[8], path[16], path[24]) == ((4, -4), (4, 4), (-4, 4))
    steps = {(b[0] - a[0], b[1] - a[1]) for a, b in zip(path, path[1:], strict=False)}
    assert steps == {(1, 0), (0, 1), (-1, 0), (0, -1)}
    assert [(x / 8, y / 8) for x, y in path] == _ref_path()


def test_render_matches_float_bilinear(seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 17, size=(8, 8))
    for dx, dy in [(0, 0), (-4, -4), (3, -1), (4, 4), (-7, 5), (8, 0)]:
        got = render(img[None], dx, dy)[0]
        assert np.array_equal(got, np.array(_ref_render(img, dx / 8, dy / 8))), (dx, dy)
    assert np.array_equal(render(img[None], 0, 0)[0], img * 64)


def test_blank_image_has_no_events():
    assert len(digits_to_events(np.zeros((8, 8), dtype=int))) == 0
    assert not digits_to_frames(np.zeros((3, 8, 8), dtype=int)).any()


def test_single_pixel_events_by_hand():
    """One pixel at 16 in row 4, column 4, during the first side (moving right, t = 0..7).

    L(0) = 1536, L(64) = 1792, L(128) = 1941, L(192) = 2048, L(256) = 2130, L(320) = 2197,
    L(384) = 2254, L(448) = 2304, L(512) = 2347. At sub-step s the pixel is seen at x offset
    (s - 4) / 8 and y offset -1/2, so rows 3 and 4 each get half of it vertically, and
    horizontally column 3 keeps (4 - s) / 8 of it (s <= 4), column 4 keeps 1/2 + s/8 (s <= 4)
    then 1 - (s - 4) / 8, column 5 gets (s - 4) / 8 (s >= 4). J = 16 * 64 * 1/2 * that.
    """
    assert log_intensity(np.arange(0, 513, 64)).tolist() == [1536, 1792, 1941, 2048, 2130,
                                                             2197, 2254, 2304, 2347]
    img = np.zeros((8, 8), dtype=int)
    img[4, 4] = 16
    ev = digits_to_events(img)
    first = ev.select(ev.t < 8)
    got = sorted(zip(first.t.tolist(), first.y.tolist(), first.x.tolist(), first.p.tolist(),
                     strict=True))
    expect = []
    for row in (3, 4):
        # column 3, reference 2130: J 192 (d -82), 128 (d -189: 1 OFF, ref 2002),
        # 64 (d -210: 1 OFF, ref 1874), 0 (d -338: 2 OFF)
        expect += [(1, row, 3, 0), (2, row, 3, 0), (3, row, 3, 0), (3, row, 3, 0)]
        # column 4, reference 2130: J 320 (d 67), 384 (d 124), 448 (d 174: 1 ON, ref 2258),
        # 512, 448, 384, 320, 256 (d -128: 1 OFF)
        expect += [(2, row, 4, 1), (7, row, 4, 0)]
        # column 5, reference 1536: J 0 .. 0, 64 (d 256: 2 ON, ref 1792), 128 (d 149: 1 ON,
        # ref 1920), 192 (d 128: 1 ON, ref 2048), 256 (d 82)
        expect += [(4, row, 5, 1), (4, row, 5, 1), (5, row, 5, 1), (6, row, 5, 1)]
    assert got == sorted(expect)


# --- the whole conversion ---------------------------------------------------------------------

@pytest.mark.parametrize("time_steps", [1, 3, 4, 8])
def test_frames_match_reference(seed, time_steps):
    from sklearn.datasets import load_digits

    images = load_digits().data.reshape(-1, 8, 8).astype(int)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=4, replace=False)
    got = digits_to_frames(images[picks], time_steps=time_steps)
    for n, i in enumerate(picks):
        want = _ref_frames(images[i], time_steps)
        assert np.array_equal(got[n], want), f"image {i}, T={time_steps}"


@pytest.mark.parametrize(("time_steps", "downsample"), [(4, 1), (5, 2), (2, 4)])
def test_frames_equal_binned_events(seed, time_steps, downsample):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 17, size=(3, 8, 8))
    frames = digits_to_frames(images, time_steps=time_steps, downsample=downsample)
    for n in range(3):
        binned = bin_digit_events(digits_to_events(images[n]), time_steps=time_steps,
                                  downsample=downsample)
        assert np.array_equal(frames[n], binned)


def test_frames_validation():
    with pytest.raises(ValueError, match="^images must hold pixels 0..16, found 0..17$"):
        bad = np.zeros((1, 8, 8), dtype=int)
        bad[0, 2, 3] = 17
        digits_to_frames(bad)
    with pytest.raises(ValueError, match="^downsample must divide digits-events' 8x8 frames, "
                                         "not 3; choose one of 1, 2, 4, 8$"):
        load_dataset("digits-events", downsample=3)


# --- the loader -------------------------------------------------------------------------------

def test_loader_shapes_and_split():
    data = load_dataset("digits-events")
    digits = load_dataset("digits")
    assert data.info == DatasetInfo("digits-events", "spike", 1, (2, 8, 8), 10, 4)
    assert data.train.x.shape == (1347, 4, 2, 8, 8) and data.test.x.shape == (450, 4, 2, 8, 8)
    assert data.train.x.dtype == np.uint8
    assert set(np.unique(data.train.x).tolist()) == {0, 1}
    assert np.array_equal(data.train.y, digits.train.y) and np.array_equal(data.test.y,
                                                                           digits.test.y)
    # sample i of the split is the conversion of digit image i of the same split
    for i in (0, 100, 449):
        assert np.array_equal(data.test.x[i], digits_to_frames(digits.test.x[i])[0])
    assert data.train.flat().shape == (1347, 4, 128)


def test_loader_options(seed):
    data = load_dataset("digits-events", time_steps=6, downsample=2, seed=seed, limit=20)
    assert data.info.time_steps == 6 and data.info.shape == (2, 4, 4)
    assert data.train.x.shape == (20, 6, 2, 4, 4)
    digits = load_dataset("digits", seed=seed, limit=20)
    assert np.array_equal(data.test.y, digits.test.y)
    assert np.array_equal(data.test.x, digits_to_frames(digits.test.x, time_steps=6,
                                                        downsample=2))
    # bits does not apply to a spike dataset: ignored
    assert np.array_equal(load_dataset("digits-events", bits=2, limit=5).test.x,
                          load_dataset("digits-events", limit=5).test.x)


def test_learnable_by_nearest_centroid():
    """Well above chance (10 %) with a classifier that takes milliseconds: class means."""
    data = load_dataset("digits-events")
    xtr = data.train.flat().reshape(len(data.train), -1).astype(float)
    xte = data.test.flat().reshape(len(data.test), -1).astype(float)
    centroids = np.stack([xtr[data.train.y == k].mean(axis=0) for k in range(10)])
    dist = ((xte[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = float((dist.argmin(axis=1) == data.test.y).mean())
    assert accuracy > 0.8, accuracy
