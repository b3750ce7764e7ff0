"""Event streams and their binning into spike frames.

An event is ``(x, y, p, t)``: column ``x`` and row ``y`` on the sensor (row 0 at the top),
polarity ``p`` (0 OFF, 1 ON) and a timestamp ``t`` in microseconds. :func:`bin_events` turns the
events of one sample into ``(T, 2, H/k, W/k)`` binary frames:

* channel = polarity (channel 0 OFF, channel 1 ON);
* a frame pixel is 1 when at least one event fell into it (binary, not a count);
* time bins: by default T equal bins over ``[t_start, t_end)``, the event with time ``t``
  going to bin ``((t - t_start) * T) // (t_end - t_start)`` (exact integer arithmetic); with
  ``bin_us``, bin ``(t - t_start) // bin_us``, events from ``T * bin_us`` on dropped;
* spatial downsampling by ``k``: sensor pixel ``(y, x)`` lands in frame pixel
  ``(y // k, x // k)`` (OR pooling).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Events", "bin_events", "frame_count"]


class Events(NamedTuple):
    """The events of one recording, as four equally long integer arrays."""

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    t: np.ndarray

    def __len__(self):
        return len(self.t)

    def select(self, mask) -> Events:
        return Events(self.x[mask], self.y[mask], self.p[mask], self.t[mask])


def frame_count(time_steps: int, channels: int, height: int, width: int, k: int) -> tuple:
    """The shape ``(T, C, H/k, W/k)`` of one binned sample."""
    return (time_steps, channels, height // k, width // k)


def bin_events(events: Events, *, time_steps: int, height: int, width: int, downsample: int = 1,
               t_start: int | None = None, t_end: int | None = None,
               bin_us: int | None = None) -> np.ndarray:
    """Bin one sample's events into ``(T, 2, height/k, width/k)`` uint8 frames of 0/1.

    Parameters
    ----------
    events : Events
        Coordinates must lie on the ``height x width`` sensor (the readers check it).
    time_steps : int
        T.
    height, width : int
        Sensor size.
    downsample : int
        OR-pooling factor k; must divide ``height`` and ``width``.
    t_start, t_end : int, optional
        The sample's time window ``[t_start, t_end)`` in microseconds; events outside it are
        dropped. Default: from the first event to the last one (``t_end = max(t) + 1``).
    bin_us : int, optional
        Fixed bin width in microseconds instead of T equal bins.
    """
    k = downsample
    frames = np.zeros(frame_count(time_steps, 2, height, width, k), dtype=np.uint8)
    if len(events) == 0:
        return frames
    t = events.t.astype(np.int64, copy=False)
    start = int(t.min()) if t_start is None else int(t_start)
    end = int(t.max()) + 1 if t_end is None else int(t_end)
    if end <= start:
        return frames
    keep = (t >= start) & (t < end)
    if bin_us is None:
        b = ((t - start) * time_steps) // (end - start)
    else:
        b = (t - start) // bin_us
        keep &= b < time_steps
    if not keep.all():
        b, events = b[keep], events.select(keep)
    y, x = events.y.astype(np.intp, copy=False), events.x.astype(np.intp, copy=False)
    if k > 1:
        y, x = y // k, x // k
    frames[b, events.p.astype(np.intp, copy=False), y, x] = 1
    return frames
