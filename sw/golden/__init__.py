"""The integer golden model: the bit-exact reference the hardware must match.

Implements docs/arithmetic.md with numpy, vectorised over a batch of samples. A dense layer's
synaptic sums are computed with a floating-point matrix product (BLAS), which is exact here
because every partial sum is an integer below the float's 2**24 / 2**53 mantissa limit
(checked per layer); everything after that is integer arithmetic on int16/int32/int64 arrays,
with the proven membrane and score bounds asserted on every step.

A conv layer (and a pool layer) runs in one compiled kernel per layer, :mod:`sw.golden._conv`
(numba, imported the first time a conv or pool layer runs): on spike input the windows are
packed into 64-bit words and every channel's sum is the XNOR/popcount form of
docs/arithmetic.md §2, on multi-bit input (a direct-encoded first layer) a multiply-free sum
of ±values once per sample; the LIF update follows in the same kernel, which returns each
step's h / v range for the bound check and fills the traces of a recorded run. Inside the
model every map is kept flattened in the element order of :mod:`sw.geometry`
(``(y·W + x)·C + c``), so a conv layer's neurons, a pool layer's outputs and the flatten into a
dense layer are all that order; the inputs of a conv network come in the datasets' layout
``(B, C, H, W)`` / ``(B, T, C, H, W)`` (:meth:`sw.artifact.Artifact.input_shape`).

Usage::

    from sw.artifact import load_artifact
    from sw.golden import GoldenModel
    model = GoldenModel(load_artifact("artifacts/digits"))
    result = model.run(x)                 # x: (B, N) ints (multibit) or (B, T, N) spikes
    result.predictions, result.scores     # (B,), (B, classes)
    model.run(x, record=True).layers[0].membrane   # (B, T, M) membrane values

(for a conv layer M = C_out·H_out·W_out, in element order; ``sw.geometry.hwc_to_chw`` of
``trace.reshape(B, T, H_out, W_out, C_out)`` gives channel-first maps.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw import fixedpoint as fx
from sw.artifact import Artifact, ConvLayer, LIFLayer, PoolLayer, ReadoutLayer
from sw.geometry import chw_to_hwc

__all__ = ["GoldenModel", "GoldenResult", "LayerTrace", "run", "BoundViolation"]

_CHUNK = 4096
#: the smallest fan-in (N of a synaptic sum) whose products are packed (``_packing``)
_PACK_FAN_IN = 128
#: elements of the largest per-chunk array (an im2col matrix, a trace) a run allocates
_CHUNK_ELEMENTS = 1 << 24


class BoundViolation(AssertionError):
    """A value left the range the proven bound promised: a bug in the bound or the model."""


@dataclass
class LayerTrace:
    """Per-layer values of a run, shape (B, T, M) unless noted (conv and pool layers: M
    outputs in the element order of :mod:`sw.geometry`).

    Attributes
    ----------
    current : int array
        x_j[t], the synaptic sum (recorded runs only).
    potential : int array or None
        h_j[t], membrane before the spike decision and reset (LIF, recorded runs only).
    membrane : int array or None
        v_j[t], membrane after reset: the state carried to t+1 (LIF, recorded runs only).
    spikes : uint8 array or None
        s_j[t] (LIF and conv layers, always; a pool layer's pooled spikes).
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
        """Output spikes (B, T, M) of every layer before the readout (LIF, conv and pool), in
        the order of :attr:`sw.artifact.Artifact.lif_layers`."""
        return [t.spikes for t in self.layers if t.spikes is not None]


def _matmul_dtype(layer) -> type:
    bound = layer.synaptic_bound
    if bound < 2**24:
        return np.float32
    if bound < 2**53:
        return np.float64
    return np.int64  # exact, slow; no supported layer gets here (inputs <= 16 bits)


def _state_dtype(width: int) -> type:
    """The narrowest numpy integer holding a W-bit register: every value of the LIF update is
    within the proven bound, which fits W bits (docs/arithmetic.md §5), so none wraps."""
    return np.int16 if width <= 16 else np.int32 if width <= 32 else np.int64


def _packing(layer) -> tuple[int, int]:
    """``(B, n)``: pack n rows of inputs into one float32 row ``Σ_i B^i · row_i`` so that one
    product computes the synaptic sums of all n (``r = Σ_i B^i · x_i``); n = 1 is no packing.

    B is a power of two above ``2·|x|max``, so the sums come back exactly, lowest first:
    ``x_0 = r − B·rint(r / B)``, then the same on ``rint(r / B) = Σ_{i≥1} B^(i−1) x_i``. Every
    partial sum of the product is an integer of at most ``N·(2^P − 1)·Σ_i B^i`` in magnitude,
    and n is the largest count that keeps this below 2^24, where float32 is exact."""
    bound = layer.synaptic_bound
    base = 1 << (2 * bound + 1).bit_length()
    n, span = 1, 1 + base
    while bound * span < 2**24 and n < 8:
        n, span = n + 1, span + base ** (n + 1)
    return base, n


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
        self._params = []
        for layer in artifact.layers:
            if isinstance(layer, PoolLayer):
                self._w.append(None)
                self._params.append(None)
                continue
            if isinstance(layer, ConvLayer):
                w, params = _conv_setup(layer)
                self._w.append(w)
                self._params.append(params)
                continue
            dt = _matmul_dtype(layer)
            w = 2 * layer.weights.astype(np.int64) - 1
            self._w.append(w.T.astype(dt).copy())
            self._params.append(_neuron_params(layer))
        per_sample = max(_elements_per_sample(layer) for layer in artifact.layers)
        self._chunk = int(min(_CHUNK, max(1, _CHUNK_ELEMENTS // per_sample)))

    # -- input checks ---------------------------------------------------------------------------
    def check_inputs(self, x) -> np.ndarray:
        """Validate a batch of inputs against the artifact's input spec; return an int array."""
        a = self.artifact
        x = np.asarray(x)
        want = a.input_shape()
        if x.ndim != len(want) + 1 or x.shape[1:] != want:
            frame = "C, H, W" if a.in_shape else "N"
            layout = f"(B, {frame})" if a.input.kind == "multibit" else f"(B, T, {frame})"
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
        chunk = self._chunk
        if len(x) <= chunk:
            return self._run_chunk(x, record)
        # every layer's spikes are written straight into whole-batch arrays, not copied there
        spikes = [None if isinstance(layer, ReadoutLayer) else
                  np.empty((len(x), layer.time_steps, layer.neurons), dtype=np.uint8)
                  for layer in self.artifact.layers]
        parts = [self._run_chunk(x[i:i + chunk], record,
                                 [None if s is None else s[i:i + chunk] for s in spikes])
                 for i in range(0, len(x), chunk)]
        layers = []
        for k, trace in enumerate(parts[0].layers):
            merged = LayerTrace(trace.name, spikes=spikes[k])
            for attr in ("current", "potential", "membrane", "sums"):
                if getattr(trace, attr) is not None:
                    setattr(merged, attr,
                            np.concatenate([getattr(p.layers[k], attr) for p in parts]))
            layers.append(merged)
        return GoldenResult(scores=np.concatenate([p.scores for p in parts]),
                            predictions=np.concatenate([p.predictions for p in parts]),
                            layers=layers)

    def _currents(self, k: int, inp: np.ndarray) -> np.ndarray:
        """Synaptic sums of layer k. ``inp`` is (B, N) (direct input) or (B, T, N), a map in
        element order for a conv layer; the result is (B, M) or (B, T, M), integer-valued, in
        the product's dtype (float32/float64 exact below 2**24/2**53, or int64)."""
        w = self._w[k]
        layer = self.artifact.layers[k]
        lead = inp.shape[:-1]
        flat = inp.reshape(-1, inp.shape[-1])
        rows_in = len(flat)
        # Packing saves product and window work per output (∝ N) and costs a decode per output
        # (a few passes): it pays for wide sums only.
        base, slots = (_packing(layer) if w.dtype == np.float32 and layer.fan_in >= _PACK_FAN_IN
                       else (1, 1))
        slots = min(slots, rows_in)
        if slots > 1:
            # several rows per product row: fewer windows to gather, a smaller product
            part = -(-rows_in // slots)
            packed = np.zeros((part, flat.shape[1]), dtype=np.float32)
            for i in reversed(range(slots)):  # Horner: ((row_n-1)·B + row_n-2)·B + ...
                packed *= np.float32(base)
                chunk = flat[i * part:(i + 1) * part]
                packed[:len(chunk)] += chunk
            flat = packed
        rows = flat.astype(w.dtype, copy=False)
        # one 2-D product (a stacked N-D matmul runs many small ones, several times slower)
        out = (rows @ w).reshape(len(flat), layer.neurons)
        if slots > 1:
            parts = []
            for _ in range(slots - 1):
                high = np.rint(out * np.float32(1 / base))
                out -= high * np.float32(base)
                parts.append(out)
                out = high
            parts.append(out)
            out = np.concatenate(parts)[:rows_in]
        return out.reshape(*lead, layer.neurons)

    def _run_chunk(self, x: np.ndarray, record: bool, spikes=None) -> GoldenResult:
        """One chunk; ``spikes`` (one (B, T, M) uint8 array or None per layer), where given,
        receive the layers' spikes."""
        a = self.artifact
        out = spikes or [None] * len(a.layers)
        t_steps = a.time_steps
        batch = x.shape[0]
        traces = []
        inp = x
        if a.in_shape is not None:
            # channel-first maps -> the element order, flattened per sample or frame
            lead = 1 if a.input.kind == "multibit" else 2
            inp = np.ascontiguousarray(chw_to_hwc(x)).reshape(*x.shape[:lead], a.inputs)
        for k, layer in enumerate(a.layers):
            trace = LayerTrace(layer.name)
            if isinstance(layer, PoolLayer):
                inp = trace.spikes = _pool(layer, inp, out[k])
                traces.append(trace)
                continue
            if isinstance(layer, ConvLayer):
                inp = trace.spikes = self._conv(k, inp, trace, record, out[k])
                traces.append(trace)
                continue
            if isinstance(layer, ReadoutLayer) and not record and inp.ndim == 3:
                scores = self._readout_of_counts(k, layer, inp, trace)
                traces.append(trace)
                continue
            cur = self._currents(k, inp)  # (B, M) direct or (B, T, M)
            direct = cur.ndim == 2
            if record:
                exact = cur.astype(np.int64)
                trace.current = (np.broadcast_to(exact[:, None, :],
                                                 (batch, t_steps, layer.neurons)).copy()
                                 if direct else exact)
            if isinstance(layer, LIFLayer):
                inp = trace.spikes = self._lif(layer, self._params[k], cur, direct, trace, record,
                                               out[k])
            else:
                scores = self._readout(layer, cur, direct, trace)
            traces.append(trace)
        predictions = np.argmax(scores, axis=1).astype(np.int64) if batch else np.zeros(
            0, np.int64)
        return GoldenResult(scores=scores, predictions=predictions, layers=traces)

    def _check(self, values, fmt, what, layer, t):
        if self.check_bounds and values.size:
            self._check_range(int(values.min()), int(values.max()), fmt, what, layer, t)

    @staticmethod
    def _check_range(lo, hi, fmt, what, layer, t):
        if lo < fmt.min or hi > fmt.max:
            raise BoundViolation(
                f"layer {layer.name!r}, time step {t}: {what} {lo}..{hi} leaves the "
                f"proven range {fmt.min}..{fmt.max} ({fmt.width} bits)")

    def _conv(self, k, inp, trace, record, spikes=None):
        """A conv layer: synaptic sums and LIF update in one compiled kernel
        (:mod:`sw.golden._conv`); the traces when recording, the proven width checked on the
        kernel's per-step h / v ranges. Returns the (B, T, M) spikes (into ``spikes`` if
        given)."""
        from sw.golden import _conv as kernel

        layer = self.artifact.layers[k]
        geom, bias, theta, cmask, frac, leak, soft, gains = self._params[k]
        batch, t_steps, m = inp.shape[0], layer.time_steps, layer.neurons
        if spikes is None:
            spikes = np.empty((batch, t_steps, m), dtype=np.uint8)
        shape = (batch, t_steps, m) if record else (0, 0, 0)
        rec = [np.empty(shape, dtype=np.int64) for _ in range(3)]
        stats = np.empty((t_steps, 4), dtype=np.int64)
        stats[:, 0::2], stats[:, 1::2] = kernel.STAT_INIT
        state = [np.empty(m, dtype=bias.dtype) for _ in range(2)]
        if layer.input.kind == "multibit":
            dtype = self._w[k].dtype
            run, cur = kernel.conv_direct, np.empty(m, dtype=dtype)
        else:
            run, dtype, cur = kernel.conv_spikes, np.uint8, np.empty(m, dtype=np.int64)
        inp = np.ascontiguousarray(inp, dtype=dtype)
        args = (geom, self._w[k], bias, theta, cmask, frac, leak, soft, gains, self.check_bounds,
                spikes, record, *rec, stats, cur, *state)
        if run is kernel.conv_direct:
            run(inp, *args)
        else:
            c, _, w = layer.in_shape
            whole = (w * c) % 8 == 0 and inp.size  # map rows of whole 8-byte groups
            bytes8 = inp.view(np.uint64) if whole else np.empty((0, 0, 0), dtype=np.uint64)
            run(inp, bytes8, *args)
        if record:
            trace.current, trace.potential, trace.membrane = rec
        if self.check_bounds and spikes.size:
            for t in range(t_steps):
                self._check_range(int(stats[t, 0]), int(stats[t, 1]), layer.membrane,
                                  "membrane potential h", layer, t)
                if soft:
                    self._check_range(int(stats[t, 2]), int(stats[t, 3]), layer.membrane,
                                      "membrane after soft reset", layer, t)
        return spikes

    def _lif(self, layer, params, cur, direct, trace, record, spikes=None):
        batch = cur.shape[0]
        t_steps, m = layer.time_steps, layer.neurons
        dt = _state_dtype(layer.membrane.width)
        f = layer.membrane.frac
        bias, theta, conn = params
        bias = bias.astype(dt)
        theta = theta.astype(dt)
        k = layer.leak_shift
        # c·(x << F) + B of every step at once, in the state type (exact: |I| <= V fits W)
        drive = cur.astype(dt)
        if f:
            np.left_shift(drive, f, out=drive)
        if not conn.all():
            drive *= conn.astype(dt)
        drive += bias
        v = np.zeros((batch, m), dtype=dt)
        if spikes is None:
            spikes = np.empty((batch, t_steps, m), dtype=np.uint8)  # every step is written
        if record:
            trace.potential = np.zeros((batch, t_steps, m), dtype=np.int64)
            trace.membrane = np.zeros((batch, t_steps, m), dtype=np.int64)
        for t in range(t_steps):
            current = drive if direct else drive[:, t]
            g = layer.step_gain[t]
            if g != 1:
                current = current * dt(g)
            h = fx.leak(v, k, out=np.empty_like(v))
            h += current
            self._check(h, layer.membrane, "membrane potential h", layer, t)
            quiet = np.less(h, theta)  # not s[t]; stored, and the whole array flipped at the end
            spikes[:, t] = quiet
            if record:
                trace.potential[:, t] = h
            # the reset by arithmetic on 0/1 masks (np.putmask / where= run many times slower)
            if layer.reset == "hard":
                np.multiply(h, quiet, out=h)
            else:
                h -= np.multiply(theta, ~quiet)
                self._check(h, layer.membrane, "membrane after soft reset", layer, t)
            v = h
            if record:
                trace.membrane[:, t] = v
        np.bitwise_xor(spikes, 1, out=spikes)
        return spikes

    def _readout_of_counts(self, k, layer: ReadoutLayer, inp, trace):
        """The readout of an unrecorded run on (B, T, N) input: the sums are linear in the
        inputs, ``S_j = Σ_i w_ji · (Σ_t G[t]·s_i[t])``, so the inputs are summed over the steps
        first and one product (not T) gives S; it is exact in the float type because every
        partial sum is bounded by ``sum_bound`` (checked below 2**24 / 2**53)."""
        gain = np.asarray(layer.step_gain, dtype=np.int64)
        bound = layer.sum_bound
        dt = np.float32 if bound < 2**24 else np.float64 if bound < 2**53 else np.int64
        if (gain == 1).all():
            counts = inp.sum(axis=1, dtype=np.int64 if dt == np.int64 else np.int32)
        else:
            counts = np.einsum("btn,t->bn", inp, gain)
        w = self._w[k] if self._w[k].dtype == dt else self._w[k].astype(dt)
        sums = (counts.astype(dt, copy=False) @ w).astype(np.int64)
        trace.sums = sums
        scores = layer.scale * sums + layer.offset
        self._check(scores, layer.score, "score", layer, layer.time_steps - 1)
        return scores

    def _readout(self, layer: ReadoutLayer, cur, direct, trace):
        cur = cur.astype(np.int64)
        gain = np.asarray(layer.step_gain, dtype=np.int64)
        sums = cur * int(gain.sum()) if direct else np.einsum("btm,t->bm", cur, gain)
        trace.sums = sums
        scores = layer.scale * sums + layer.offset
        self._check(scores, layer.score, "score", layer, layer.time_steps - 1)
        return scores


def _neuron_params(layer):
    """``(bias, threshold, connected)`` of a dense LIF layer's neurons; None for the readout."""
    if isinstance(layer, ReadoutLayer):
        return None
    return layer.bias, layer.threshold, layer.connected


def _conv_setup(layer: ConvLayer):
    """A conv layer's weights in the form its kernel takes (:mod:`sw.golden._conv`): the
    channels' bits packed into 64-bit words ``(ceil(N/64), C_out)`` for spike input, the
    weights as sign masks ``(N, C_out)`` (0 for +1, −1 for −1) for multi-bit input, in an
    integer type holding every sum; and its parameters: the geometry
    ``(H, W, C_in, K, S, P, H_out, W_out)``; bias, threshold and −connected (a mask) per
    neuron (each channel's repeated at every output position, channel fastest) in the state
    type; F, the leak shift (−1: none), soft reset, the step gains.

    The state type is the narrowest integer holding the proven bound as well as the membrane
    format (:func:`_state_dtype`), so no value of the update wraps, not even one that leaves
    a too-narrow format (the check then sees it)."""
    if layer.input.kind == "multibit":
        sums = np.int32 if layer.synaptic_bound < 2**31 else np.int64
        w = np.ascontiguousarray(-(1 - layer.weights.astype(sums)).T)
    else:
        w = _pack_weights(layer.weights)
    c, h, wd = layer.in_shape
    _, h_out, w_out = layer.out_shape
    geom = np.array([h, wd, c, layer.kernel, layer.stride, layer.padding, h_out, w_out],
                    dtype=np.int64)
    dtype = _state_dtype(max(layer.membrane.width, layer.required_width))
    cmask = -np.asarray(layer.connected, dtype=np.int64)
    bias, theta, cmask = (np.tile(np.asarray(v, dtype=np.int64), layer.positions).astype(dtype)
                          for v in (layer.bias, layer.threshold, cmask))
    leak = -1 if layer.leak_shift is None else int(layer.leak_shift)
    gains = np.asarray(layer.step_gain, dtype=np.int64)
    return w, (geom, bias, theta, cmask, int(layer.membrane.frac), leak, layer.reset == "soft",
               gains)


def _pack_weights(bits: np.ndarray) -> np.ndarray:
    """``(C_out, N)`` weight bits -> ``(ceil(N / 64), C_out)`` uint64 words: bit i of word j is
    weight ``64·j + i`` (the bit order the conv kernel packs its windows in), channel fastest
    (the kernel's inner loops run over the channels)."""
    c_out, n = bits.shape
    words = -(-n // 64)
    packed = np.zeros((c_out, words * 8), dtype=np.uint8)
    packed[:, :-(-n // 8)] = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    return np.ascontiguousarray(packed.view("<u8").astype(np.uint64).T)


def _elements_per_sample(layer) -> int:
    """The largest array one sample needs in this layer: its input rows, or its trace."""
    return max(layer.time_steps * layer.neurons, layer.rows_per_sample * layer.inputs)


def _pool(layer: PoolLayer, spikes: np.ndarray, out=None) -> np.ndarray:
    """OR over non-overlapping k×k windows: (B, T, H·W·C) -> (B, T, H_out·W_out·C) (into
    ``out`` if given), compiled (:func:`sw.golden._conv.pool`)."""
    from sw.golden import _conv as kernel

    c, _, w = layer.in_shape
    _, h_out, w_out = layer.out_shape
    lead = spikes.shape[:-1]
    flat = np.ascontiguousarray(spikes, dtype=np.uint8).reshape(-1, spikes.shape[-1])
    if out is None:
        out = np.empty((*lead, layer.neurons), dtype=np.uint8)
    kernel.pool(flat, np.array([c, w, layer.kernel, h_out, w_out], dtype=np.int64),
                out.reshape(-1, layer.neurons))
    return out


def run(artifact: Artifact, x, *, record: bool = False) -> GoldenResult:
    """Shorthand for ``GoldenModel(artifact).run(x, record=record)``."""
    return GoldenModel(artifact).run(x, record=record)
