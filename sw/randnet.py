"""Random integer networks and inputs for tests and benchmarks.

:func:`random_artifact` draws a valid :class:`~sw.artifact.Artifact` of any shape, reaching the
corner cases the hardware must handle: N not a multiple of SIMD and M not a multiple of PE (odd
sizes), T = 1 and T = 16, hard and soft reset, leak and no leak, negative biases and thresholds,
zero-scale (disconnected) neurons and readout classes, folded step gains, and membrane/score
widths exactly at their proven bound. :func:`random_conv_artifact` draws convolutional networks
(conv and pool layers, then dense layers) with the same parameters. Every draw is a function of
the seed alone.
"""

from __future__ import annotations

import numpy as np

from sw import fixedpoint as fx
from sw import geometry
from sw.artifact import Artifact, ConvLayer, InputSpec, LIFLayer, PoolLayer, ReadoutLayer
from sw.fixedpoint import FixedPoint

__all__ = ["random_artifact", "random_conv_artifact", "random_inputs"]

_UNSET = object()


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class _Draw:
    """The draws every network generator shares: T, the input, F, the step gains and each
    layer's parameters, scaled to the layer's fan-in so that neurons fire, but not always."""

    def __init__(self, rng, *, time_steps, input_kind, input_bits, reset, leak_shift,
                 frac_bits, step_gain, zero_scale, width_slack):
        self.rng = rng
        self.t_steps = time_steps or int(rng.choice([1, 2, 3, 4, 5, 8, 16]))
        kind = input_kind or ("multibit" if rng.random() < 0.6 else "spike")
        bits = 1 if kind == "spike" else (input_bits or int(rng.integers(1, 9)))
        self.spec = InputSpec(kind, bits)
        self.f = int(rng.integers(0, 7)) if frac_bits is None else frac_bits
        self.use_gain = (rng.random() < 0.2) if step_gain is None else step_gain
        self.reset, self.leak_shift = reset, leak_shift
        self.zero_scale, self.width_slack = zero_scale, width_slack

    def gains(self) -> tuple:
        if not self.use_gain:
            return (1,) * self.t_steps
        return tuple(int(g) for g in self.rng.integers(1, 5, size=self.t_steps))

    def typical(self, fan_in: int, spec: InputSpec) -> float:
        """Typical |x << F|: sqrt(fan-in) times the mean input."""
        return max(1.0, np.sqrt(fan_in) * spec.max_value / 2) * (1 << self.f)

    def lif(self, rows: int, fan_in: int, spec: InputSpec, gain: tuple) -> dict:
        """LIF parameters of ``rows`` neurons (or conv channels) of fan-in ``fan_in``: bias,
        threshold, connected, reset, leak and the membrane at the proven bound (+ slack)."""
        rng, f = self.rng, self.f
        typical = self.typical(fan_in, spec)
        bias = np.round(rng.normal(0, typical / 2, size=rows)).astype(np.int64)
        threshold = np.round(rng.uniform(-0.5, 2.0, size=rows) * typical).astype(np.int64)
        connected = (rng.random(rows) >= self.zero_scale).astype(np.uint8)
        rst = self.reset or str(rng.choice(["hard", "soft"]))
        if self.leak_shift is _UNSET:
            k = None if rng.random() < 0.4 else int(rng.integers(1, 5))
        else:
            k = self.leak_shift
        bound = fx.lif_membrane_bound(
            fx.current_bound(inputs=fan_in, input_bits=spec.bits, frac=f, step_gain=gain,
                             bias=bias, connected=connected),
            threshold=threshold, reset=rst, time_steps=self.t_steps)
        # the slack goes on the bound's own width; the format's F < W and k < W stay
        width = max(fx.lif_bound_width(bound, threshold=threshold, bias=bias) + self.width_slack,
                    fx.lif_width(bound, threshold=threshold, bias=bias, frac=f, leak_shift=k))
        return dict(input=spec, time_steps=self.t_steps, leak_shift=k, reset=rst,
                    step_gain=gain, bias=bias, threshold=threshold, connected=connected,
                    membrane=FixedPoint(width, f))

    def readout(self, name: str, n: int, m: int, spec: InputSpec, gain: tuple,
                weights) -> ReadoutLayer:
        rng = self.rng
        typical = self.typical(n, spec)
        scale = rng.integers(0, 256, size=m)
        scale[rng.random(m) < self.zero_scale] = 0
        offset = np.round(rng.normal(0, typical * self.t_steps * 8, size=m)).astype(np.int64)
        score_bound = fx.score_bound(
            fx.sum_bound(inputs=n, input_bits=spec.bits, step_gain=gain), scale=scale,
            offset=offset)
        width = fx.readout_width(score_bound) + self.width_slack
        return ReadoutLayer(name=name, inputs=n, neurons=m, input=spec,
                            time_steps=self.t_steps, step_gain=gain, weights=weights,
                            scale=scale, offset=offset, score=FixedPoint(width))

    def dense(self, li: int, n: int, m: int, spec: InputSpec, last: bool):
        """Dense layer ``li`` (a LIF layer, or the readout when ``last``) of N inputs, M
        neurons."""
        weights = self.rng.integers(0, 2, size=(m, n), dtype=np.uint8)
        gain = self.gains()
        if last:
            return self.readout(f"out{li}", n, m, spec, gain, weights)
        return LIFLayer(name=f"fc{li}", inputs=n, neurons=m, weights=weights,
                        **self.lif(m, n, spec, gain))


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
    draw = _Draw(rng, time_steps=time_steps, input_kind=input_kind, input_bits=input_bits,
                 reset=reset, leak_shift=leak_shift, frac_bits=frac_bits, step_gain=step_gain,
                 zero_scale=zero_scale, width_slack=width_slack)
    layers = []
    spec = draw.spec
    for li in range(len(sizes) - 1):
        layers.append(draw.dense(li, sizes[li], sizes[li + 1], spec, li == len(sizes) - 2))
        spec = InputSpec("spike")
    return Artifact(layers=tuple(layers), metadata={"source": "sw.randnet.random_artifact"})


def _draw_conv_layers(rng, in_shape, max_channels, max_kernel, pool_runs=True) -> list:
    """A random conv/pool stack (1-3 conv layers, a pool after some where the map allows, two
    in a row sometimes unless not ``pool_runs``), then 0-1 dense LIF layers and the readout,
    as :func:`random_conv_artifact`'s ``layers``."""
    spec = []
    _, h, w = in_shape
    for _ in range(int(rng.integers(1, 4))):
        small = min(h, w)
        # every K has a valid padding (small + 2P >= K for P = K - 1); K <= small + 2 keeps
        # the windows mostly on the map, and the padded map from growing layer after layer
        kernels = [k for k in geometry.KERNELS if k <= max_kernel and k <= small + 2]
        k = int(rng.choice(kernels))
        p_min = max(0, -(-(k - small) // 2))
        p = int(rng.integers(p_min, k))
        s = int(rng.choice(geometry.STRIDES))
        c = int(rng.integers(1, max_channels + 1))
        spec.append(("conv", c, k, s, p))
        h = geometry.conv_output_size(h, k, s, p)
        w = geometry.conv_output_size(w, k, s, p)
        while min(h, w) >= 2 and rng.random() < 0.35:
            pk = int(rng.integers(2, min(3, h, w) + 1))
            spec.append(("pool", pk))
            h, w = geometry.pool_output_size(h, pk), geometry.pool_output_size(w, pk)
            if not pool_runs:
                break
    if rng.random() < 0.5:
        spec.append(("lif", int(rng.integers(1, 17))))
    spec.append(("readout", int(rng.integers(1, 11))))
    return spec


def random_conv_artifact(
    seed,
    *,
    in_shape: tuple | None = None,
    layers: list | None = None,
    time_steps: int | None = None,
    input_kind: str | None = None,
    input_bits: int | None = None,
    reset: str | None = None,
    leak_shift=_UNSET,
    frac_bits: int | None = None,
    step_gain: bool | None = None,
    zero_scale: float = 0.1,
    width_slack: int = 0,
    max_channels: int = 8,
    max_kernel: int = 7,
    pool_runs: bool = True,
) -> Artifact:
    """Draw a random convolutional network; every argument left out is drawn too.

    Parameters
    ----------
    seed : int or numpy Generator
    in_shape : (C, H, W)
        The input map; default 1-3 channels of 3..12 × 3..12 pixels.
    layers : list of tuples
        The layers after the input, in order: ``("conv", C_out, K, S, P)``, ``("pool", k)``,
        ``("lif", M)`` (dense) and last ``("readout", classes)``; the shapes follow. Default:
        1-3 conv layers (K in 1, 3, 5, 7 up to ``max_kernel``, stride 1 or 2, padding
        0..K−1, 1..``max_channels`` channels), each followed by a k×k pool (k = 2, 3) where the
        map allows (sometimes two), then 0-1 dense LIF layers of 1..16 neurons and a readout of
        1..10 classes.
    time_steps, input_kind, input_bits, reset, leak_shift, frac_bits, step_gain, zero_scale,
    width_slack
        As in :func:`random_artifact` (per-channel parameters for a conv layer; widths exactly
        at the proven bound with N = K·K·C_in unless ``width_slack``).
    max_channels, max_kernel : int
        Limits of the drawn conv layers (not of ``layers``).
    pool_runs : bool
        Whether the drawn layers may put two pools in a row (the hardware fuses one pool into
        the conv stage before it, so its regressions draw without).
    """
    rng = _rng(seed)
    if in_shape is None:
        in_shape = (int(rng.integers(1, 4)), int(rng.integers(3, 13)), int(rng.integers(3, 13)))
    in_shape = tuple(int(v) for v in in_shape)
    if layers is None:
        layers = _draw_conv_layers(rng, in_shape, max_channels, max_kernel, pool_runs)
    if not layers or layers[-1][0] != "readout":
        raise ValueError(f"layers must end with ('readout', classes), not {layers}")
    draw = _Draw(rng, time_steps=time_steps, input_kind=input_kind, input_bits=input_bits,
                 reset=reset, leak_shift=leak_shift, frac_bits=frac_bits, step_gain=step_gain,
                 zero_scale=zero_scale, width_slack=width_slack)
    out, spec, shape = [], draw.spec, in_shape
    for li, (kind, *args) in enumerate(layers):
        if kind == "conv":
            c_out, k, s, p = args
            fan_in = k * k * shape[0]
            weights = rng.integers(0, 2, size=(c_out, fan_in), dtype=np.uint8)
            layer = ConvLayer(name=f"conv{li}", in_shape=shape, channels=c_out, kernel=k,
                              stride=s, padding=p, weights=weights,
                              **draw.lif(c_out, fan_in, spec, draw.gains()))
            shape = layer.out_shape
        elif kind == "pool":
            layer = PoolLayer(name=f"pool{li}", in_shape=shape, kernel=args[0],
                              time_steps=draw.t_steps)
            shape = layer.out_shape
        elif kind in ("lif", "readout"):
            n = out[-1].neurons if out else shape[0] * shape[1] * shape[2]
            layer = draw.dense(li, n, args[0], spec, kind == "readout")
            shape = None
        else:
            raise ValueError(f"unknown layer kind {kind!r} in {layers}")
        out.append(layer)
        spec = InputSpec("spike")
    return Artifact(layers=tuple(out), metadata={"source": "sw.randnet.random_conv_artifact"})


def random_inputs(artifact: Artifact, batch: int, seed, *, extremes: float = 0.2) -> np.ndarray:
    """Random valid inputs of shape ``artifact.input_shape(batch)`` (``(B, N)`` / ``(B, T, N)``,
    or ``(B, C, H, W)`` / ``(B, T, C, H, W)`` for a conv network); a fraction ``extremes`` of
    samples are all-zero or all-max."""
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
