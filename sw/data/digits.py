"""The built-in datasets: scikit-learn's 8x8 digits and ``digits-events``, their DVS conversion.

``digits``: 1797 images of 8x8 pixels valued 0..16 (5 bits), bundled with scikit-learn.

``digits-events``: the same images seen by a simulated event camera (a DVS) while they make a
small saccade, computed with integers only, so the frames are the same on every machine:

1. **Motion.** The image moves along a square of side one pixel centred on its rest position:
   offsets ``(dx, dy)`` in eighths of a pixel go (-4, -4) -> (4, -4) -> (4, 4) -> (-4, 4) ->
   (-4, -4) (right, down, left, up), 8 sub-steps per side, S = 32 sub-steps in all.
2. **Rendering.** At offset ``(dx, dy)`` the pixel ``(y, x)`` sees the image at
   ``(y - dy/8, x - dx/8)``, bilinearly interpolated with weights in 64ths (zero outside the
   image): ``J = sum w * p``, 0..1024.
3. **Log intensity.** ``L = floor(256 * log2(J + 64))`` (the +64, one grey level, keeps
   black finite), computed exactly as ``(J + 64) ** 256`` 's bit length minus one.
4. **Change detector.** Each pixel keeps a reference ``R``, set to ``L`` at the start position.
   At each sub-step s = 1..S: with ``d = L - R`` and contrast threshold ``C = 128`` (half an
   octave, a 41 % change), ``d >= C`` emits ``d // C`` ON events, ``d <= -C`` emits
   ``(-d) // C`` OFF events, and ``R`` moves by the emitted events times ``C``.
5. **Frames.** An event of sub-step s has time ``s - 1`` and goes to frame
   ``((s - 1) * T) // S`` (the equal bins of :func:`sw.data.events.bin_events` over
   ``[0, S)``); channel 0 OFF, channel 1 ON; a pixel is 1 when it had at least one event.

With T = 4 (the default) each frame is one side of the square, one direction of motion.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sw.data.base import (
    Dataset,
    DatasetInfo,
    DatasetOptions,
    Split,
    check_memory,
    pool_mean,
    reduce_bits,
    subset,
)
from sw.data.events import Events, bin_events

__all__ = ["SUBPIXEL", "LOG_SCALE", "OFFSET", "CONTRAST", "SACCADE", "DEFAULT_TIME_STEPS",
           "load_digits", "load_digits_events", "saccade_path", "log_intensity", "render",
           "digits_to_events", "digits_to_frames"]

#: Sub-pixel units per pixel of the saccade path.
SUBPIXEL = 8
#: Fixed-point scale of the log intensity: ``L = floor(LOG_SCALE * log2(J + OFFSET))``.
LOG_SCALE = 256
#: Added to the rendered intensity (in 64ths of a grey level) before the log.
OFFSET = SUBPIXEL * SUBPIXEL
#: Contrast threshold of the change detector, in units of ``1 / LOG_SCALE`` octave.
CONTRAST = 128
#: Corners of the square saccade, in ``1 / SUBPIXEL`` pixel, and sub-steps per side.
SACCADE = ((-4, -4), (4, -4), (4, 4), (-4, 4), (-4, -4))
STEPS_PER_SIDE = 8
#: T of ``digits-events`` when ``time_steps`` is not given.
DEFAULT_TIME_STEPS = 4

_PIXEL_MAX = 16  # sklearn digits pixels are 0..16
_DIGITS_BITS = 5


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = d.data.astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _split(y: np.ndarray, opts: DatasetOptions) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test indices fixed by ``seed`` (scikit-learn's train_test_split)."""
    from sklearn.model_selection import train_test_split

    test_size = 0.25 if opts.test_size is None else opts.test_size
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, random_state=opts.seed,
                              stratify=y)
    tr = tr[subset(len(tr), opts.limit, opts.seed, 0)]
    te = te[subset(len(te), opts.limit, opts.seed, 1)]
    return tr, te


def load_digits(opts: DatasetOptions) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16, 5 bits).

    The train/test split is stratified and fixed by ``seed`` (default 0: 1347 / 450 images).
    """
    x, y = _digits_arrays()
    x = pool_mean(np.array(x), opts.downsample or 1, "digits")
    x, bits = reduce_bits(x, _DIGITS_BITS, opts.bits, "digits")
    tr, te = _split(y, opts)
    info = DatasetInfo("digits", "multibit", bits, tuple(x.shape[1:]), 10)
    return Dataset(info, Split(x[tr], y[tr]), Split(x[te], y[te]))


# --- the DVS model ----------------------------------------------------------------------------

def saccade_path() -> list[tuple[int, int]]:
    """The S + 1 offsets ``(dx, dy)`` (start position first), in ``1 / SUBPIXEL`` pixel."""
    points = [SACCADE[0]]
    for (x0, y0), (x1, y1) in zip(SACCADE, SACCADE[1:], strict=False):
        for s in range(1, STEPS_PER_SIDE + 1):
            points.append((x0 + (x1 - x0) * s // STEPS_PER_SIDE,
                           y0 + (y1 - y0) * s // STEPS_PER_SIDE))
    return points


@lru_cache(maxsize=1)
def _log_table() -> np.ndarray:
    top = _PIXEL_MAX * OFFSET + OFFSET
    # floor(LOG_SCALE * log2(v)) = floor(log2(v ** LOG_SCALE)), exact in integers.
    table = np.array([0] + [(v ** LOG_SCALE).bit_length() - 1 for v in range(1, top + 1)],
                     dtype=np.int64)
    table.flags.writeable = False
    return table


def log_intensity(j: np.ndarray) -> np.ndarray:
    """``floor(LOG_SCALE * log2(j + OFFSET))`` of rendered intensities ``j`` (0..1024)."""
    return _log_table()[np.asarray(j, dtype=np.int64) + OFFSET]


def render(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``(n, H, W)`` images shifted by ``(dx, dy) / SUBPIXEL`` pixel, in 64ths (bilinear)."""
    n, h, w = images.shape
    pad = np.zeros((n, h + 4, w + 4), dtype=np.int64)
    pad[:, 2:-2, 2:-2] = images
    # The output pixel (y, x) samples the image at (y - dy, x - dx): an integer part and a
    # fraction in 1/SUBPIXEL, for each axis.
    iy, fy = divmod(-dy, SUBPIXEL)
    ix, fx = divmod(-dx, SUBPIXEL)
    rows = np.arange(h) + iy + 2
    cols = np.arange(w) + ix + 2
    u = SUBPIXEL

    def at(r, c):
        return pad[:, r][:, :, c]

    return ((u - fy) * (u - fx) * at(rows, cols) + (u - fy) * fx * at(rows, cols + 1)
            + fy * (u - fx) * at(rows + 1, cols) + fy * fx * at(rows + 1, cols + 1))


def _event_counts(images: np.ndarray):
    """Yield ``(s, on, off)``: per sub-step, the ON and OFF event counts of every pixel."""
    path = saccade_path()
    ref = log_intensity(render(images, *path[0]))
    for s, (dx, dy) in enumerate(path[1:], start=1):
        d = log_intensity(render(images, dx, dy)) - ref
        on = np.where(d >= CONTRAST, d // CONTRAST, 0)
        off = np.where(d <= -CONTRAST, (-d) // CONTRAST, 0)
        ref = ref + (on - off) * CONTRAST
        yield s, on, off


def digits_to_events(image: np.ndarray) -> Events:
    """The events of one ``(8, 8)`` (or ``(1, 8, 8)``) digit image; ``t`` is the sub-step - 1.

    A pixel that emits several events in one sub-step appears that many times.
    """
    img = np.asarray(image, dtype=np.int64).reshape(1, 8, 8)
    xs, ys, ps, ts = [], [], [], []
    for s, on, off in _event_counts(img):
        for pol, count in ((1, on[0]), (0, off[0])):
            r, c = np.nonzero(count)
            reps = count[r, c]
            ys.append(np.repeat(r, reps))
            xs.append(np.repeat(c, reps))
            ps.append(np.full(reps.sum(), pol, dtype=np.int64))
            ts.append(np.full(reps.sum(), s - 1, dtype=np.int64))
    return Events(*(np.concatenate(a).astype(np.int64) for a in (xs, ys, ps, ts)))


def digits_to_frames(images: np.ndarray, *, time_steps: int = DEFAULT_TIME_STEPS,
                     downsample: int = 1) -> np.ndarray:
    """``(n, T, 2, 8/k, 8/k)`` uint8 spike frames of ``(n, 1, 8, 8)`` or ``(n, 8, 8)`` images.

    Equals :func:`~sw.data.events.bin_events` of :func:`digits_to_events` over ``[0, S)``.
    """
    images = np.asarray(images)
    imgs = images.reshape(-1, 8, 8).astype(np.int64)
    if imgs.size and (imgs.min() < 0 or imgs.max() > _PIXEL_MAX):
        raise ValueError(f"images must hold pixels 0..{_PIXEL_MAX}, found "
                         f"{imgs.min()}..{imgs.max()}")
    k = downsample
    if 8 % k:
        raise ValueError(f"downsample must divide digits-events' 8x8 frames, not {k}; choose "
                         f"one of 1, 2, 4, 8")
    n, steps = len(imgs), len(saccade_path()) - 1
    frames = np.zeros((n, time_steps, 2, 8 // k, 8 // k), dtype=np.uint8)
    for s, on, off in _event_counts(imgs):
        b = ((s - 1) * time_steps) // steps
        for channel, count in ((0, off), (1, on)):
            hit = (count > 0).reshape(n, 8 // k, k, 8 // k, k).any(axis=(2, 4))
            frames[:, b, channel] |= hit.astype(np.uint8)
    return frames


def bin_digit_events(events: Events, *, time_steps: int, downsample: int = 1) -> np.ndarray:
    """Frames of one image's :func:`digits_to_events`, binned like :func:`digits_to_frames`."""
    steps = len(saccade_path()) - 1
    return bin_events(events, time_steps=time_steps, height=8, width=8, downsample=downsample,
                      t_start=0, t_end=steps)


@lru_cache(maxsize=4)
def _all_frames(time_steps: int, downsample: int) -> np.ndarray:
    frames = digits_to_frames(_digits_arrays()[0], time_steps=time_steps, downsample=downsample)
    frames.flags.writeable = False
    return frames


def load_digits_events(opts: DatasetOptions) -> Dataset:
    """``digits-events``: the digits through the DVS model above, ``(n, T, 2, 8, 8)`` frames.

    Same stratified split as ``digits`` for the same ``seed`` and ``test_size``.
    """
    t = opts.time_steps or DEFAULT_TIME_STEPS
    k = opts.downsample or 1
    if 8 % k == 0:  # (another k is refused, with its choices, by digits_to_frames)
        # every image's frames, then the two splits' copies of them
        n = len(_digits_arrays()[1])
        check_memory("digits-events", n, (t, 2, 8 // k, 8 // k), copies=2)
    frames = _all_frames(t, k)
    y = _digits_arrays()[1]
    tr, te = _split(y, opts)
    info = DatasetInfo("digits-events", "spike", 1, tuple(frames.shape[2:]), 10, t)
    return Dataset(info, Split(frames[tr], y[tr]), Split(frames[te], y[te]))
