"""The integer golden model: the bit-exact reference the hardware must match.

Implements docs/arithmetic.md with numpy, vectorised over a batch of samples. The synaptic sums
are computed with a floating-point matrix product (BLAS), which is exact here because every
partial sum is an integer below the float's 2**24 / 2**53 mantissa limit (checked per layer);
everything after that is integer arithmetic on int32/int64 arrays, with the proven membrane and
score bounds asserted on every step.

Usage::

    from sw.artifact import load_artifact
    from sw.golden import GoldenModel
    model = GoldenModel(load_artifact("artifacts/digits"))
    result = model.run(x)                 # x: (B, N) ints (multibit) or (B, T, N) spikes
    result.predictions, result.scores     # (B,), (B, classes)
    model.run(x, record=True).layers[0].membrane   # (B, T, M) membrane values
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw import fixedpoint as fx
from sw.artifact import Artifact, LIFLayer, ReadoutLayer

__all__ = ["GoldenModel", "GoldenResult", "LayerTrace", "run", "BoundViolation"]

_CHUNK = 4096


class BoundViolation(AssertionError):
    """A value left the range the proven bound promised: a bug in the bound or the model."""


@dataclass
class LayerTrace:
    """Per-layer values of a run, shape (B, T, M) unless noted.

    Attributes
    ----------
    current : int array
        x_j[t], the synaptic sum (recorded runs only).
    potential : int array or None
        h_j[t], membrane before the spike decision and reset (LIF, recorded runs only).
    membrane : int array or None
        v_j[t], membrane after reset: the state carried to t+1 (LIF, recorded runs only).
    spikes : uint8 array or None
        s_j[t] (LIF layers, always).
    sums : int array or None
        (B, M) S_j = Σ_t G[t] x_j[t] (readout only).
    """

    name: str
    current: np.ndarray | None = None
    potential: np.ndarray | None = None
    membrane: np.ndarray | None = None
    spikes: np.ndarray | None = None
    sums: np.ndarray | None = None


@dataclass
class GoldenResult:
    """Result of :meth:`GoldenModel.run`.

    Attributes
    ----------
    scores : (B, classes) int64
    predictions : (B,) int64, argmax of scores, lowest index on ties
    layers : list of LayerTrace, one per layer
    """

    scores: np.ndarray
    predictions: np.ndarray
    layers: list

    @property
    def spikes(self) -> list:
        """Output spikes (B, T, M) of every LIF layer."""
        return [t.spikes for t in self.layers if t.spikes is not None]


def _matmul_dtype(layer) -> type:
    bound = layer.synaptic_bound
    if bound < 2**24:
        return np.float32
    if bound < 2**53:
        return np.float64
    return np.int64  # exact, slow; no supported layer gets here (inputs <= 16 bits)


def _state_dtype(width: int) -> type:
    return np.int32 if width <= 32 else np.int64


class GoldenModel:
    """Runs an :class:`~sw.artifact.Artifact` on batches of integer inputs.

    Parameters
    ----------
    artifact : Artifact
    check_bounds : bool
        Assert after every step that membranes and scores stay within the proven widths
        (default True; the check costs a few percent).
    """

    def __init__(self, artifact: Artifact, *, check_bounds: bool = True):
        if not isinstance(artifact, Artifact):
            raise TypeError(f"artifact must be an Artifact, not {type(artifact).__name__}")
        self.artifact = artifact
        self.check_bounds = check_bounds
        self._w = []
        for layer in artifact.layers:
            dt = _matmul_dtype(layer)
            self._w.append((2 * layer.weights.astype(np.int64) - 1).T.astype(dt).copy())

    # -- input checks ---------------------------------------------------------------------------
    def check_inputs(self, x) -> np.ndarray:
        """Validate a batch of inputs against the artifact's input spec; return an int array."""
        a = self.artifact
        x = np.asarray(x)
        want = a.input_shape()
        if x.ndim != len(want) + 1 or x.shape[1:] != want:
            layout = "(B, N)" if a.input.kind == "multibit" else "(B, T, N)"
            raise ValueError(f"inputs must have shape {layout} = (B, {', '.join(map(str, want))})"
                             f" for this artifact, not {x.shape}")
        integral = np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_
        if x.size and not integral and not np.array_equal(x, np.floor(x)):
            raise ValueError(f"inputs must be integers, got dtype {x.dtype} with fractions")
        if x.size and (x.min() < 0 or x.max() > a.input.max_value):
            raise ValueError(f"inputs must be in 0..{a.input.max_value} ({a.input.kind}, "
                             f"{a.input.bits} bit), found {x.min()}..{x.max()}")
        if not np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.int64)
        return x

    # -- run ------------------------------------------------------------------------------------
    def run(self, x, *, record: bool = False) -> GoldenResult:
        """Run a batch.

        Parameters
        ----------
        x : array
            ``(B, N)`` values in ``0..2**bits-1`` for a multibit input layer, or ``(B, T, N)``
            spikes in {0, 1} for a spike input layer.
        record : bool
            Also return x, h and v of every layer (memory: B*T*M per layer and value).
        """
        x = self.check_inputs(x)
        if len(x) <= _CHUNK:
            return self._run_chunk(x, record)
        parts = [self._run_chunk(x[i:i + _CHUNK], record) for i in range(0, len(x), _CHUNK)]
        layers = []
        for k, trace in enumerate(parts[0].layers):
            merged = LayerTrace(trace.name)
            for attr in ("current", "potential", "membrane", "spikes", "sums"):
                if getattr(trace, attr) is not None:
                    setattr(merged, attr,
                            np.concatenate([getattr(p.layers[k], attr) for p in parts]))
            layers.append(merged)
        return GoldenResult(scores=np.concatenate([p.scores for p in parts]),
                            predictions=np.concatenate([p.predictions for p in parts]),
                            layers=layers)

    def _currents(self, k: int, inp: np.ndarray) -> np.ndarray:
        """Synaptic sums of layer k. ``inp`` is (B, N) (direct input) or (B, T, N)."""
        w = self._w[k]
        out = inp.astype(w.dtype) @ w
        return out.astype(np.int64) if out.dtype != np.int64 else out

    def _run_chunk(self, x: np.ndarray, record: bool) -> GoldenResult:
        a = self.artifact
        t_steps = a.time_steps
        batch = x.shape[0]
        traces = []
        inp = x
        for k, layer in enumerate(a.layers):
            cur = self._currents(k, inp)  # (B, M) direct or (B, T, M)
            direct = cur.ndim == 2
            trace = LayerTrace(layer.name)
            if record:
                trace.current = (np.broadcast_to(cur[:, None, :], (batch, t_steps, layer.neurons))
                                 .copy() if direct else cur)
            if isinstance(layer, LIFLayer):
                spikes = self._lif(layer, cur, direct, trace, record)
                trace.spikes = spikes
                inp = spikes
            else:
                scores = self._readout(layer, cur, direct, trace)
            traces.append(trace)
        predictions = np.argmax(scores, axis=1).astype(np.int64) if batch else np.zeros(
            0, np.int64)
        return GoldenResult(scores=scores, predictions=predictions, layers=traces)

    def _check(self, values, fmt, what, layer, t):
        if self.check_bounds and values.size:
            lo, hi = int(values.min()), int(values.max())
            if lo < fmt.min or hi > fmt.max:
                raise BoundViolation(
                    f"layer {layer.name!r}, time step {t}: {what} {lo}..{hi} leaves the "
                    f"proven range {fmt.min}..{fmt.max} ({fmt.width} bits)")

    def _lif(self, layer: LIFLayer, cur, direct, trace, record):
        batch = cur.shape[0]
        t_steps, m = layer.time_steps, layer.neurons
        dt = _state_dtype(layer.membrane.width)
        f = layer.membrane.frac
        bias = layer.bias.astype(dt)
        theta = layer.threshold.astype(dt)
        conn = layer.connected.astype(bool)
        base = None
        if direct:
            base = np.where(conn, cur.astype(dt) << f, 0) + bias  # c*(x<<F) + B, once
        v = np.zeros((batch, m), dtype=dt)
        spikes = np.zeros((batch, t_steps, m), dtype=np.uint8)
        if record:
            trace.potential = np.zeros((batch, t_steps, m), dtype=np.int64)
            trace.membrane = np.zeros((batch, t_steps, m), dtype=np.int64)
        for t in range(t_steps):
            drive = base if direct else np.where(conn, cur[:, t].astype(dt) << f, 0) + bias
            g = layer.step_gain[t]
            current = drive if g == 1 else drive * dt(g)
            h = fx.leak(v, layer.leak_shift) + current
            self._check(h, layer.membrane, "membrane potential h", layer, t)
            s = h >= theta
            if layer.reset == "hard":
                v = np.where(s, dt(0), h)
            else:
                v = np.where(s, h - theta, h)
                self._check(v, layer.membrane, "membrane after soft reset", layer, t)
            spikes[:, t] = s
            if record:
                trace.potential[:, t] = h
                trace.membrane[:, t] = v
        return spikes

    def _readout(self, layer: ReadoutLayer, cur, direct, trace):
        gain = np.asarray(layer.step_gain, dtype=np.int64)
        sums = cur * int(gain.sum()) if direct else np.einsum("btm,t->bm", cur, gain)
        trace.sums = sums
        scores = layer.scale * sums + layer.offset
        self._check(scores, layer.score, "score", layer, layer.time_steps - 1)
        return scores


def run(artifact: Artifact, x, *, record: bool = False) -> GoldenResult:
    """Shorthand for ``GoldenModel(artifact).run(x, record=record)``."""
    return GoldenModel(artifact).run(x, record=record)
