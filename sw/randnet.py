"""Random integer networks and inputs for tests and benchmarks.

:func:`random_artifact` draws a valid :class:`~sw.artifact.Artifact` of any shape, reaching the
corner cases the hardware must handle: N not a multiple of SIMD and M not a multiple of PE (odd
sizes), T = 1 and T = 16, hard and soft reset, leak and no leak, negative biases and thresholds,
zero-scale (disconnected) neurons and readout classes, folded step gains, and membrane/score
widths exactly at their proven bound. Every draw is a function of the seed alone.
"""

from __future__ import annotations

import numpy as np

from sw import fixedpoint as fx
from sw.artifact import Artifact, InputSpec, LIFLayer, ReadoutLayer
from sw.fixedpoint import FixedPoint

__all__ = ["random_artifact", "random_inputs"]

_UNSET = object()


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_artifact(
    seed,
    *,
    sizes: list[int] | None = None,
    time_steps: int | None = None,
    input_kind: str | None = None,
    input_bits: int | None = None,
    reset: str | None = None,
    leak_shift=_UNSET,
    frac_bits: int | None = None,
    step_gain: bool | None = None,
    zero_scale: float = 0.1,
    width_slack: int = 0,
) -> Artifact:
    """Draw a random network; every argument left out is drawn too.

    Parameters
    ----------
    seed : int or numpy Generator
    sizes : list of int
        ``[N, M1, ..., classes]``; default 1-3 layers of 1..40 neurons.
    time_steps : int
        Default: one of 1, 2, 3, 4, 5, 8, 16.
    input_kind, input_bits : str, int
        First-layer input; default drawn (multibit with 1..8 bits, or spikes).
    reset : {"hard", "soft"}
        Default drawn per layer.
    leak_shift : int or None
        Default drawn per layer (None = no leak, or 1..4).
    frac_bits : int
        Default drawn in 0..6.
    step_gain : bool
        Draw step gains G[t] in 1..4 instead of all ones; default drawn (20 %).
    zero_scale : float
        Fraction of neurons drawn with ``connected = 0`` / classes with ``scale = 0``.
    width_slack : int
        Extra bits over the proven bound (0: widths exactly at the bound).
    """
    rng = _rng(seed)
    if sizes is None:
        depth = int(rng.integers(1, 4))
        sizes = [int(rng.integers(1, 41)) for _ in range(depth + 1)]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least [inputs, classes], not {sizes}")
    t_steps = time_steps or int(rng.choice([1, 2, 3, 4, 5, 8, 16]))
    kind = input_kind or ("multibit" if rng.random() < 0.6 else "spike")
    bits = 1 if kind == "spike" else (input_bits or int(rng.integers(1, 9)))
    f = int(rng.integers(0, 7)) if frac_bits is None else frac_bits
    use_gain = (rng.random() < 0.2) if step_gain is None else step_gain

    def gains():
        if not use_gain:
            return (1,) * t_steps
        return tuple(int(g) for g in rng.integers(1, 5, size=t_steps))

    layers = []
    spec = InputSpec(kind, bits)
    for li in range(len(sizes) - 1):
        n, m = sizes[li], sizes[li + 1]
        weights = rng.integers(0, 2, size=(m, n), dtype=np.uint8)
        # Typical |x|: sqrt(N) * mean input; scale parameters to it so neurons do fire, but not
        # always, and some parameters are negative.
        typical = max(1.0, np.sqrt(n) * spec.max_value / 2) * (1 << f)
        last = li == len(sizes) - 2
        gain = gains()
        if last:
            scale = rng.integers(0, 256, size=m)
            scale[rng.random(m) < zero_scale] = 0
            offset = np.round(rng.normal(0, typical * t_steps * 8, size=m)).astype(np.int64)
            score_bound = fx.score_bound(
                fx.sum_bound(inputs=n, input_bits=spec.bits, step_gain=gain), scale=scale,
                offset=offset)
            width = fx.readout_width(score_bound) + width_slack
            layers.append(ReadoutLayer(name=f"out{li}", inputs=n, neurons=m, input=spec,
                                       time_steps=t_steps, step_gain=gain, weights=weights,
                                       scale=scale, offset=offset, score=FixedPoint(width)))
        else:
            bias = np.round(rng.normal(0, typical / 2, size=m)).astype(np.int64)
            threshold = np.round(rng.uniform(-0.5, 2.0, size=m) * typical).astype(np.int64)
            connected = (rng.random(m) >= zero_scale).astype(np.uint8)
            rst = reset or str(rng.choice(["hard", "soft"]))
            if leak_shift is _UNSET:
                k = None if rng.random() < 0.4 else int(rng.integers(1, 5))
            else:
                k = leak_shift
            common = dict(name=f"fc{li}", inputs=n, neurons=m, input=spec, time_steps=t_steps,
                          leak_shift=k, reset=rst, step_gain=gain, weights=weights, bias=bias,
                          threshold=threshold, connected=connected)
            bound = fx.lif_membrane_bound(
                fx.current_bound(inputs=n, input_bits=spec.bits, frac=f, step_gain=gain,
                                 bias=bias, connected=connected),
                threshold=threshold, reset=rst, time_steps=t_steps)
            # the slack goes on the bound's own width; the format's F < W and k < W stay
            width = max(fx.lif_bound_width(bound, threshold=threshold, bias=bias) + width_slack,
                        fx.lif_width(bound, threshold=threshold, bias=bias, frac=f,
                                     leak_shift=k))
            layers.append(LIFLayer(membrane=FixedPoint(width, f), **common))
        spec = InputSpec("spike")
    return Artifact(layers=tuple(layers), metadata={"source": "sw.randnet.random_artifact"})


def random_inputs(artifact: Artifact, batch: int, seed, *, extremes: float = 0.2) -> np.ndarray:
    """Random valid inputs; a fraction ``extremes`` of samples are all-zero or all-max."""
    rng = _rng(seed)
    shape = artifact.input_shape(batch)
    hi = artifact.input.max_value
    if artifact.input.kind == "spike":
        density = rng.uniform(0.05, 0.95, size=(batch,) + (1,) * (len(shape) - 1))
        x = (rng.random(shape) < density).astype(np.int64)
    else:
        x = rng.integers(0, hi + 1, size=shape, dtype=np.int64)
    for b in range(batch):
        r = rng.random()
        if r < extremes / 2:
            x[b] = 0
        elif r < extremes:
            x[b] = hi
    return x
