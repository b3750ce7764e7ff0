"""The deployment artifact: the integer model that crosses from software to hardware.

An artifact is a directory::

    manifest.json            schema version, network geometry, widths, file hashes
    <layer>.weights.hex      one line per neuron (dense) or output channel (conv): the weight
                             bits as hex (bit i = input i, 1 = +1)
    <layer>.params.csv       per-neuron / per-channel integers (bias,threshold,connected |
                             scale,offset)

Layers are dense LIF layers (``lif``), binary convolutions with a LIF neuron per output
(``conv``), spike pooling (``pool``) and the readout; schema version 1 holds dense networks,
version 2 adds ``conv`` and ``pool`` (the writer writes the lowest version that holds the
network, so a dense artifact is still version 1).

``docs/artifact.md`` specifies the format; ``docs/arithmetic.md`` the integer semantics. The
writer is atomic and locked (one writer per path; a complete temporary directory swapped into
place, so a kill at any instant leaves the old or the new artifact), and the loader validates
every field, size, range and hash within documented limits (regular files only, every read
capped), raising :class:`ArtifactError` that names the file, the field and what was expected.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from sw import fixedpoint as fx
from sw import geometry
from sw.atomic import default_mode
from sw.checks import is_int
from sw.digest import Sha256
from sw.fixedpoint import FixedPoint

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "ArtifactError",
    "ArtifactLockedError",
    "MAX_INPUTS",
    "MAX_NEURONS",
    "MAX_SYNAPSES",
    "MANIFEST_MAX_BYTES",
    "artifact_lock",
    "InputSpec",
    "LIFLayer",
    "ConvLayer",
    "PoolLayer",
    "ReadoutLayer",
    "Artifact",
    "MAX_MAP",
    "write_artifact",
    "load_artifact",
    "manifest_sha256",
    "manifest_digest",
    "weights_to_hex_lines",
    "weights_from_hex_lines",
]

SCHEMA = "bitspike-artifact"
SCHEMA_VERSION = 2
#: Versions the loader reads: 1 (dense layers) and 2 (conv and pool layers too).
SCHEMA_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_LIF_HEADER = "bias,threshold,connected"
_READOUT_HEADER = "scale,offset"

# The loader's limits (docs/artifact.md, "Limits"): every size is checked against them before
# anything is read or allocated, so a hostile manifest cannot ask for terabytes.
MAX_INPUTS = 1 << 16            # N of one layer
MAX_NEURONS = 1 << 16           # M of one layer
MAX_SYNAPSES = 1 << 24          # N·M of one layer (16 Mi weight bits, a 4 MiB hex file)
MAX_MAP = 1 << 20               # C·H·W of a feature map (a conv layer's input or output)
MANIFEST_MAX_BYTES = 1 << 20    # manifest.json, metadata included
MAX_JSON_DEPTH = 32             # nesting of arrays/objects in manifest.json (metadata included)
MAX_INT_DIGITS = 64             # digits of one JSON integer (Python refuses > 4300, slowly)
# Bytes per params.csv cell: a sign, 19 digits (|value| < 2**62) and slack for spaces.
_CELL_MAX_BYTES = 24


class ArtifactError(ValueError):
    """An artifact (or an in-memory layer) breaks the format or the integer semantics.

    Attributes
    ----------
    file : str or None
        The file of the artifact the problem is in (``manifest.json``, ``fc1.params.csv``...).
    field : str or None
        The field, line or column.
    """

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None):
        self.file = file
        self.field = field
        where = ": ".join(p for p in (file, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


def _err(message, file=None, field=None):
    return ArtifactError(message, file=file, field=field)


class ArtifactLockedError(ArtifactError, FileExistsError):
    """Another writer holds the artifact path's lock (:func:`artifact_lock`).

    A :class:`ArtifactError` (a ValueError) and a FileExistsError, so the commands that report
    either one as ``error: ...`` report this one too.
    """


# ----------------------------------------------------------------------------------------------
# In-memory model
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputSpec:
    """What a layer receives per input: spikes (1 bit per time step) or unsigned multi-bit values
    (the first layer only; the same value at every time step, processed bit-serially)."""

    kind: Literal["spike", "multibit"]
    bits: int = 1

    def __post_init__(self):
        if self.kind not in ("spike", "multibit"):
            raise _err(f"must be 'spike' or 'multibit', not {self.kind!r}", field="input.kind")
        if not is_int(self.bits):
            raise _err(f"must be an int, not {self.bits!r}", field="input.bits")
        if self.kind == "spike" and self.bits != 1:
            raise _err(f"must be 1 for spike inputs, not {self.bits}", field="input.bits")
        if self.kind == "multibit" and not 1 <= self.bits <= 16:
            raise _err(f"must be between 1 and 16 for multibit inputs, not {self.bits}",
                       field="input.bits")

    @property
    def max_value(self) -> int:
        return fx.input_max(self.bits)

    def to_json(self) -> dict:
        return {"kind": self.kind, "bits": self.bits}


def _int_array(values, name, dtype=np.int64):
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer)
                                   or np.issubdtype(arr.dtype, np.bool_)):
        raise _err(f"must be an integer array, not dtype {arr.dtype}", field=name)
    return arr.astype(dtype)


def _check_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _err(f"must match {_NAME_RE.pattern} (lower case, digits, '_'), not {name!r}",
                   field="name")


def _check_time(layer):
    """Name, T and the step gains: what every layer kind checks first."""
    _check_name(layer.name)
    v = layer.time_steps
    if not is_int(v) or v < 1:
        raise _err(f"must be a positive int, not {v!r}", field=f"{layer.name}.time_steps")
    if layer.time_steps > 1024:
        raise _err(f"must be <= 1024, not {layer.time_steps}", field=f"{layer.name}.time_steps")


def _check_gain(layer):
    gain = tuple(layer.step_gain)
    if len(gain) != layer.time_steps or any(
            not (is_int(g) or isinstance(g, np.integer)) or g < 1 for g in gain):
        raise _err(f"must be {layer.time_steps} ints >= 1 (one per time step), not {gain!r}",
                   field=f"{layer.name}.step_gain")
    # numpy ints are accepted, and stored as Python ints (exact products in the bounds)
    object.__setattr__(layer, "step_gain", tuple(int(g) for g in gain))


def _check_weights(layer, rows_name):
    """The weight matrix: ``(weight_rows, fan_in)`` bits; stored as uint8."""
    w = np.asarray(layer.weights)
    shape = (layer.weight_rows, layer.fan_in)
    if w.shape != shape:
        raise _err(f"must have shape ({rows_name}={shape[0]}, inputs={shape[1]}), "
                   f"not {w.shape}", field=f"{layer.name}.weights")
    if w.size and not np.isin(w, (0, 1)).all():
        raise _err("must hold bits (1 = weight +1, 0 = weight -1)", field=f"{layer.name}.weights")
    object.__setattr__(layer, "weights", _int_array(layer.weights, f"{layer.name}.weights",
                                                    np.uint8))


def _check_common(layer, rows_name):
    _check_time(layer)
    for fname in ("inputs", "neurons"):
        v = getattr(layer, fname)
        if not is_int(v) or v < 1:
            raise _err(f"must be a positive int, not {v!r}", field=f"{layer.name}.{fname}")
    # the writer refuses what the loader would (docs/artifact.md, "Limits")
    too_big = _size_error(layer.inputs, layer.neurons)
    if too_big:
        raise _err(too_big[1], field=f"{layer.name}.{too_big[0]}")
    _check_gain(layer)
    _check_weights(layer, rows_name)


def _size_error(inputs: int, neurons: int) -> tuple[str, str] | None:
    """``(field, message)`` for a layer size beyond the documented limits, or None."""
    if inputs > MAX_INPUTS:
        return "inputs", f"{inputs} is above the limit MAX_INPUTS = {MAX_INPUTS}"
    if neurons > MAX_NEURONS:
        return "neurons", f"{neurons} is above the limit MAX_NEURONS = {MAX_NEURONS}"
    if inputs * neurons > MAX_SYNAPSES:
        return "neurons", (f"inputs x neurons = {inputs * neurons} is above the limit "
                           f"MAX_SYNAPSES = {MAX_SYNAPSES}")
    return None


def _check_vector(layer, fname, n):
    arr = getattr(layer, fname)
    if arr.shape != (n,):
        raise _err(f"must have shape ({n},), not {arr.shape}", field=f"{layer.name}.{fname}")


class _Synapses:
    """What every weighted layer type derives from its inputs alone (docs/arithmetic.md §2).

    A dense layer's synaptic sum runs over its N inputs and it has one weight row per neuron; a
    conv layer's runs over its ``K·K·C_in`` window and it has one row per output channel.
    :attr:`fan_in` and :attr:`weight_rows` say which, and the bounds ask them.
    """

    @property
    def fan_in(self) -> int:
        """Inputs of one synaptic sum: N for a dense layer (the columns of ``weights``)."""
        return self.inputs

    @property
    def weight_rows(self) -> int:
        """Rows of ``weights`` (and of the params file): one per neuron for a dense layer."""
        return self.neurons

    @property
    def synaptic_bound(self) -> int:
        """Bound on ``|x_j[t]|``, ``N·(2^P − 1)`` with N = :attr:`fan_in`
        (:func:`sw.fixedpoint.synaptic_bound`)."""
        return fx.synaptic_bound(self.fan_in, self.input.bits)

    @property
    def synaptic_width(self) -> int:
        """Signed width of the synaptic sum ``x_j[t]`` (what ``hw/`` calls ``current_width``;
        :func:`sw.fixedpoint.synaptic_width`)."""
        return fx.synaptic_width(self.fan_in, self.input.bits)

    @property
    def rows_per_sample(self) -> int:
        """Rows of input values the layer takes per sample: 1 for multibit input (direct
        encoding: the same values at every time step, so its synaptic sums are computed once
        per sample), T for spike input (one row of spikes per time step). The one statement
        of this rule; everything that lays out, counts or schedules input rows asks it."""
        return 1 if self.input.kind == "multibit" else self.time_steps


class _LIF(_Synapses):
    """The LIF neuron parameters and bounds a dense LIF layer and a conv layer share: one
    ``bias, threshold, connected`` row per weight row (neuron or output channel), the membrane
    format, leak and reset (docs/arithmetic.md §4-§5)."""

    def _check_lif(self):
        for fname in ("bias", "threshold", "connected"):
            object.__setattr__(self, fname, _int_array(getattr(self, fname),
                                                       f"{self.name}.{fname}"))
            _check_vector(self, fname, self.weight_rows)
        if not isinstance(self.membrane, FixedPoint) or not self.membrane.signed:
            raise _err(f"must be a signed FixedPoint, not {self.membrane!r}",
                       field=f"{self.name}.membrane")
        if self.reset not in ("hard", "soft"):
            raise _err(f"must be 'hard' or 'soft', not {self.reset!r}",
                       field=f"{self.name}.reset")
        if self.leak_shift is not None and (
                not is_int(self.leak_shift) or not 1 <= self.leak_shift < self.membrane.width):
            raise _err(f"must be null (no leak) or an int k with 1 <= k < membrane.width = "
                       f"{self.membrane.width}, not {self.leak_shift!r}",
                       field=f"{self.name}.leak_shift")
        if not np.isin(self.connected, (0, 1)).all():
            raise _err("must hold 0 or 1", field=f"{self.name}.connected")
        need = self.required_width
        if need > fx.MAX_WIDTH:
            raise _err(f"the proven membrane bound needs {need} bits, more than the "
                       f"{fx.MAX_WIDTH} the integer model allows", field=f"{self.name}.membrane")
        if self.membrane.width < need:
            raise _err(f"width {self.membrane.width} is below the {need} bits the proven "
                       f"bound {self.membrane_bound} (and the biases/thresholds) need",
                       field=f"{self.name}.membrane.width")

    @property
    def frac_bits(self) -> int:
        return self.membrane.frac

    @property
    def current_bound(self) -> int:
        """``Imax``, the bound on ``|I_j[t]|`` (docs/arithmetic.md §5,
        :func:`sw.fixedpoint.current_bound`, with N = :attr:`fan_in`)."""
        return fx.current_bound(inputs=self.fan_in, input_bits=self.input.bits,
                                frac=self.membrane.frac, step_gain=self.step_gain,
                                bias=self.bias, connected=self.connected)

    @property
    def membrane_bound(self) -> int:
        """``V = T·(Imax + R)``, the proven bound on ``|h|`` and ``|v|`` (docs/arithmetic.md §5,
        :func:`sw.fixedpoint.lif_membrane_bound`)."""
        return fx.lif_membrane_bound(self.current_bound, threshold=self.threshold,
                                     reset=self.reset, time_steps=self.time_steps)

    @property
    def required_width(self) -> int:
        """The smallest membrane width W this layer allows (docs/arithmetic.md §5,
        :func:`sw.fixedpoint.lif_width`): the proven bound, the thresholds and biases fit, and
        ``F < W``, ``k < W``. ``membrane.width`` is at least this; the exporter writes exactly
        this."""
        return fx.lif_width(self.membrane_bound, threshold=self.threshold, bias=self.bias,
                            frac=self.membrane.frac, leak_shift=self.leak_shift)


@dataclass(frozen=True, eq=False)
class LIFLayer(_LIF):
    """A dense binary layer of leaky integrate-and-fire neurons (docs/arithmetic.md §4).

    Per neuron j and time step t::

        I_j[t] = G[t] * (c_j * (x_j[t] << F) + B_j)
        h_j[t] = leak(v_j[t-1]) + I_j[t]
        s_j[t] = h_j[t] >= Θ_j
        v_j[t] = hard: s ? 0 : h        soft: s ? h - Θ_j : h

    Parameters
    ----------
    name : str
        File-safe layer name.
    inputs, neurons : int
        N and M.
    input : InputSpec
        Spikes, or multi-bit values (first layer only).
    time_steps : int
        T, the same for every layer.
    membrane : FixedPoint
        Signed membrane format; ``membrane.frac`` is F, ``membrane.width`` is W, which must be
        at least :attr:`required_width`.
    leak_shift : int or None
        k of the leak ``v - (v >>> k)``; None is no leak (IF neuron).
    reset : {"hard", "soft"}
    step_gain : tuple of int
        G[t] >= 1 (all ones unless an inference-time gate is folded in).
    weights : (M, N) array of {0, 1}
        1 is weight +1, 0 is weight -1.
    bias, threshold : (M,) int arrays
        B_j and Θ_j in membrane units (already scaled by 2**F).
    connected : (M,) array of {0, 1}
        c_j; 0 for a neuron whose folded input scale is zero (constant-current neuron).
    """

    name: str
    inputs: int
    neurons: int
    input: InputSpec
    time_steps: int
    membrane: FixedPoint
    leak_shift: int | None
    reset: Literal["hard", "soft"]
    step_gain: tuple[int, ...]
    weights: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    connected: np.ndarray
    kind: str = field(default="lif", init=False)

    def __post_init__(self):
        _check_common(self, "neurons")
        self._check_lif()


def _check_shape(layer, fname):
    """A ``(C, H, W)`` map shape of positive ints within :data:`MAX_MAP`; stored as a tuple."""
    shape = getattr(layer, fname)
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or not all(is_int(v) or isinstance(v, np.integer)
                                                   for v in shape) or min(shape) < 1:
        raise _err(f"must be 3 positive ints (channels, height, width), not "
                   f"{getattr(layer, fname)!r}", field=f"{layer.name}.{fname}")
    shape = tuple(int(v) for v in shape)
    object.__setattr__(layer, fname, shape)
    size = shape[0] * shape[1] * shape[2]
    if size > MAX_MAP:
        raise _err(f"C·H·W = {size} is above the limit MAX_MAP = {MAX_MAP}",
                   field=f"{layer.name}.{fname}")


def _map_size(shape) -> int:
    return shape[0] * shape[1] * shape[2]


@dataclass(frozen=True, eq=False)
class ConvLayer(_LIF):
    """A binary convolution with a LIF neuron at every output (docs/arithmetic.md §9).

    Output ``(o, y, x)`` is a LIF neuron (the update of :class:`LIFLayer`) with the parameters
    of its channel o; its synaptic sum runs over the ``K·K·C_in`` window at
    ``(y·S − P, x·S − P)``, zero padding outside the map::

        x_o,y,x[t] = Σ_{ky,kx,c} (2·w_o[(ky·K + kx)·C_in + c] − 1) · in[c, y·S−P+ky, x·S−P+kx][t]

    The neurons are numbered in the element order of :mod:`sw.geometry`
    (``(y·W_out + x)·C_out + o``): :attr:`neurons` is ``C_out·H_out·W_out``, a dense layer
    after it takes the map flattened in that order.

    Parameters
    ----------
    name : str
    in_shape : (C_in, H, W)
        The input map.
    channels : int
        C_out, the output channels.
    kernel : int
        K, odd, in :data:`sw.geometry.KERNELS`.
    stride : int
        S, 1 or 2.
    padding : int
        P, 0 <= P < K: zero rows/columns around the input.
    input, time_steps, membrane, leak_shift, reset, step_gain
        As in :class:`LIFLayer`.
    weights : (C_out, K·K·C_in) array of {0, 1}
        One row per output channel, window order (:func:`sw.geometry.window_index`).
    bias, threshold, connected : (C_out,) int arrays
        Per output channel (BatchNorm folds per channel).
    """

    name: str
    in_shape: tuple
    channels: int
    kernel: int
    stride: int
    padding: int
    input: InputSpec
    time_steps: int
    membrane: FixedPoint
    leak_shift: int | None
    reset: Literal["hard", "soft"]
    step_gain: tuple[int, ...]
    weights: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    connected: np.ndarray
    kind: str = field(default="conv", init=False)

    def __post_init__(self):
        _check_time(self)
        _check_shape(self, "in_shape")
        n = self.name
        if not is_int(self.channels) or not 1 <= self.channels <= MAX_NEURONS:
            raise _err(f"must be an int in 1..{MAX_NEURONS}, not {self.channels!r}",
                       field=f"{n}.channels")
        if not is_int(self.kernel) or self.kernel not in geometry.KERNELS:
            raise _err(f"must be one of {', '.join(map(str, geometry.KERNELS))} (odd), not "
                       f"{self.kernel!r}", field=f"{n}.kernel")
        if not is_int(self.stride) or self.stride not in geometry.STRIDES:
            raise _err(f"must be 1 or 2, not {self.stride!r}", field=f"{n}.stride")
        if not is_int(self.padding) or not 0 <= self.padding < self.kernel:
            raise _err(f"must be an int with 0 <= padding < kernel = {self.kernel}, not "
                       f"{self.padding!r}", field=f"{n}.padding")
        c, h, w = self.in_shape
        if min(h, w) + 2 * self.padding < self.kernel:
            raise _err(f"the {h}x{w} input padded by {self.padding} is smaller than the "
                       f"{self.kernel}x{self.kernel} kernel", field=f"{n}.in_shape")
        if self.fan_in > MAX_INPUTS:
            raise _err(f"K·K·C_in = {self.fan_in} is above the limit MAX_INPUTS = "
                       f"{MAX_INPUTS}", field=f"{n}.in_shape")
        if self.fan_in * self.channels > MAX_SYNAPSES:
            raise _err(f"C_out x K·K·C_in = {self.fan_in * self.channels} is above the limit "
                       f"MAX_SYNAPSES = {MAX_SYNAPSES}", field=f"{n}.channels")
        if self.neurons > MAX_MAP:
            raise _err(f"the output map C·H·W = {self.neurons} is above the limit MAX_MAP = "
                       f"{MAX_MAP}", field=f"{n}.channels")
        _check_gain(self)
        _check_weights(self, "channels")
        self._check_lif()

    @property
    def out_shape(self) -> tuple:
        """``(C_out, H_out, W_out)`` (:func:`sw.geometry.conv_output_size`)."""
        _, h, w = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        return (self.channels, geometry.conv_output_size(h, k, s, p),
                geometry.conv_output_size(w, k, s, p))

    @property
    def inputs(self) -> int:
        """Elements of the input map, ``C_in·H·W``."""
        return _map_size(self.in_shape)

    @property
    def neurons(self) -> int:
        """LIF neurons (outputs), ``C_out·H_out·W_out``."""
        return _map_size(self.out_shape)

    @property
    def positions(self) -> int:
        """Output positions ``H_out·W_out``: the windows per time step."""
        return self.out_shape[1] * self.out_shape[2]

    @property
    def fan_in(self) -> int:
        """``K·K·C_in``: the inputs of one synaptic sum (the window)."""
        return self.kernel * self.kernel * self.in_shape[0]

    @property
    def weight_rows(self) -> int:
        """One weight row (and params row) per output channel."""
        return self.channels


@dataclass(frozen=True, eq=False)
class PoolLayer:
    """Spike max pooling over non-overlapping k×k windows: the OR of the window's spikes, at
    every time step (docs/arithmetic.md §9). No weights, parameters or state. Rows and columns
    past the last whole window are dropped (:func:`sw.geometry.pool_output_size`).

    Parameters
    ----------
    name : str
    in_shape : (C, H, W)
    kernel : int
        k, 2 <= k <= min(H, W).
    time_steps : int
    """

    name: str
    in_shape: tuple
    kernel: int
    time_steps: int
    kind: str = field(default="pool", init=False)

    def __post_init__(self):
        _check_time(self)
        _check_shape(self, "in_shape")
        _, h, w = self.in_shape
        if not is_int(self.kernel) or not 2 <= self.kernel <= min(h, w):
            raise _err(f"must be an int with 2 <= kernel <= min(H, W) = {min(h, w)}, not "
                       f"{self.kernel!r}", field=f"{self.name}.kernel")

    @property
    def input(self) -> InputSpec:
        return InputSpec("spike")

    @property
    def out_shape(self) -> tuple:
        c, h, w = self.in_shape
        k = self.kernel
        return (c, geometry.pool_output_size(h, k), geometry.pool_output_size(w, k))

    @property
    def inputs(self) -> int:
        return _map_size(self.in_shape)

    @property
    def neurons(self) -> int:
        """Output elements ``C·H_out·W_out`` (spikes, not neurons: the name is the chain's)."""
        return _map_size(self.out_shape)

    @property
    def rows_per_sample(self) -> int:
        return self.time_steps


@dataclass(frozen=True, eq=False)
class ReadoutLayer(_Synapses):
    """The last layer: no spikes, one integer score per class (docs/arithmetic.md §6)::

        S_j = Σ_t G[t] * x_j[t]
        score_j = A_j * S_j + C_j
        class = argmax_j score_j   (lowest index wins ties)

    Parameters
    ----------
    scale : (M,) int array
        A_j >= 0 (0 for a class whose folded scale is zero).
    offset : (M,) int array
        C_j.
    score : FixedPoint
        Signed integer score format (frac 0); its width must be at least
        :attr:`required_score_width`.
    """

    name: str
    inputs: int
    neurons: int
    input: InputSpec
    time_steps: int
    step_gain: tuple[int, ...]
    weights: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    score: FixedPoint
    kind: str = field(default="readout", init=False)

    def __post_init__(self):
        _check_common(self, "classes")
        for fname in ("scale", "offset"):
            object.__setattr__(self, fname, _int_array(getattr(self, fname),
                                                       f"{self.name}.{fname}"))
            _check_vector(self, fname, self.neurons)
        if (self.scale < 0).any():
            raise _err("must be >= 0 (negative scales are folded into the weights)",
                       field=f"{self.name}.scale")
        if not isinstance(self.score, FixedPoint) or not self.score.signed or self.score.frac:
            raise _err(f"must be a signed FixedPoint with frac 0, not {self.score!r}",
                       field=f"{self.name}.score")
        need = self.required_score_width
        if need > fx.MAX_WIDTH:
            raise _err(f"the proven score bound needs {need} bits, more than {fx.MAX_WIDTH}",
                       field=f"{self.name}.score")
        if self.score.width < need:
            raise _err(f"width {self.score.width} is below the {need} bits the proven score "
                       f"bound {self.score_bound} needs",
                       field=f"{self.name}.score.width")

    @property
    def classes(self) -> int:
        return self.neurons

    @property
    def sum_bound(self) -> int:
        """Bound on ``|S_j| = |Σ_t G[t]·x_j[t]|`` (docs/arithmetic.md §6,
        :func:`sw.fixedpoint.sum_bound`)."""
        return fx.sum_bound(inputs=self.inputs, input_bits=self.input.bits,
                            step_gain=self.step_gain)

    @property
    def sum_width(self) -> int:
        """Signed width of the accumulated input ``S_j``: the signed width of
        :attr:`sum_bound` (docs/arithmetic.md §6)."""
        return fx.signed_width(self.sum_bound)

    @property
    def score_bound(self) -> int:
        """Bound on ``|score_j| = |A_j·S_j + C_j|`` (docs/arithmetic.md §6,
        :func:`sw.fixedpoint.score_bound`)."""
        return fx.score_bound(self.sum_bound, scale=self.scale, offset=self.offset)

    @property
    def required_score_width(self) -> int:
        """The smallest score width this readout allows (docs/arithmetic.md §6,
        :func:`sw.fixedpoint.readout_width`). ``score.width`` is at least this; the exporter
        writes exactly this."""
        return fx.readout_width(self.score_bound)


Layer = LIFLayer | ConvLayer | PoolLayer | ReadoutLayer
_MAP_LAYERS = (ConvLayer, PoolLayer)
_LAYER_TYPES = (LIFLayer, ConvLayer, PoolLayer, ReadoutLayer)


@dataclass(frozen=True, eq=False)
class Artifact:
    """A whole network: conv and pool layers (if any), then dense LIF layers, then one readout.

    The chain (docs/artifact.md): a conv layer takes the network's input map or the map of the
    conv/pool layer before it (``in_shape`` equal to its ``out_shape``); a pool layer follows a
    conv or pool layer; a dense layer (LIF or readout) takes the N outputs of the layer before
    it, a map flattened in the element order of :mod:`sw.geometry`. Only the first layer takes
    multibit input.

    Parameters
    ----------
    layers : tuple of LIFLayer / ConvLayer / PoolLayer / ReadoutLayer
    metadata : dict
        Free-form JSON facts about where the model came from (dataset, accuracies, training
        options). Nothing in the integer semantics depends on it.
    """

    layers: tuple
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise _err("must hold at least one layer (the readout)", field="layers")
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise _err(f"layer names must be unique, got {names}", field="layers")
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            if not isinstance(layer, _LAYER_TYPES):
                raise _err(f"must be LIFLayer, ConvLayer, PoolLayer or ReadoutLayer, not "
                           f"{type(layer).__name__}", field=f"layers[{i}]")
            if last and not isinstance(layer, ReadoutLayer):
                raise _err(f"the last layer must be a readout, not {layer.kind!r}",
                           field=f"{layer.name}.kind")
            if not last and isinstance(layer, ReadoutLayer):
                raise _err("a readout must be the last layer", field=f"{layer.name}.kind")
            if layer.time_steps != layers[0].time_steps:
                raise _err(f"must equal the first layer's time_steps {layers[0].time_steps}, "
                           f"not {layer.time_steps}", field=f"{layer.name}.time_steps")
            if i == 0:
                if isinstance(layer, PoolLayer):
                    raise _err("a pool layer pools the spikes of a conv layer; it cannot be "
                               "the first layer", field=f"{layer.name}.kind")
                continue
            prev = layers[i - 1]
            if isinstance(layer, _MAP_LAYERS):
                if not isinstance(prev, _MAP_LAYERS):
                    raise _err(f"a {layer.kind} layer takes a feature map; it cannot follow the "
                               f"dense layer {prev.name!r}", field=f"{layer.name}.kind")
                if layer.in_shape != prev.out_shape:
                    raise _err(f"must equal the previous layer's out_shape "
                               f"{list(prev.out_shape)}, not {list(layer.in_shape)}",
                               field=f"{layer.name}.in_shape")
            elif layer.inputs != prev.neurons:
                what = "neurons" if not isinstance(prev, _MAP_LAYERS) else (
                    f"outputs C·H·W = {'·'.join(map(str, prev.out_shape))}")
                raise _err(f"must equal the previous layer's {what} {prev.neurons}, "
                           f"not {layer.inputs}", field=f"{layer.name}.inputs")
            if layer.input.kind != "spike":
                raise _err("only the first layer may take multibit inputs",
                           field=f"{layer.name}.input.kind")
        if not isinstance(self.metadata, dict):
            raise _err("must be a JSON object", field="metadata")

    @property
    def input(self) -> InputSpec:
        return self.layers[0].input

    @property
    def inputs(self) -> int:
        """Elements of one input row (a frame): N, or ``C·H·W`` for a conv network."""
        return self.layers[0].inputs

    @property
    def in_shape(self) -> tuple | None:
        """The input map ``(C, H, W)`` of a network whose first layer is a conv, else None."""
        return self.layers[0].in_shape if isinstance(self.layers[0], ConvLayer) else None

    @property
    def classes(self) -> int:
        return self.layers[-1].neurons

    @property
    def time_steps(self) -> int:
        return self.layers[0].time_steps

    @property
    def lif_layers(self) -> tuple:
        """Every layer before the readout (each emits spikes: dense LIF, conv and pool)."""
        return self.layers[:-1]

    @property
    def readout(self) -> ReadoutLayer:
        return self.layers[-1]

    @property
    def is_dense(self) -> bool:
        """True when every layer is a dense LIF layer or the readout (schema version 1)."""
        return all(isinstance(layer, (LIFLayer, ReadoutLayer)) for layer in self.layers)

    @property
    def schema_version(self) -> int:
        """The lowest manifest version that holds this network: 1 when dense, else 2."""
        return 1 if self.is_dense else 2

    @property
    def weighted_layers(self) -> tuple:
        """The layers with weights and parameters (every layer but the pool layers)."""
        return tuple(layer for layer in self.layers if not isinstance(layer, PoolLayer))

    @property
    def rows_per_sample(self) -> int:
        """Rows of input values per sample: the first layer's
        (:attr:`LIFLayer.rows_per_sample`)."""
        return self.layers[0].rows_per_sample

    def input_shape(self, batch: int | None = None) -> tuple:
        """Shape of a batch of inputs the golden model takes: ``(B, N)`` values for multibit
        input, ``(B, T, N)`` spikes otherwise; for a conv network ``(B, C, H, W)`` and
        ``(B, T, C, H, W)`` (the datasets' layout; :meth:`shape_inputs`)."""
        frame = self.in_shape or (self.inputs,)
        core = frame if self.input.kind == "multibit" else (self.time_steps, *frame)
        return core if batch is None else (batch, *core)

    def shape_inputs(self, x: np.ndarray) -> np.ndarray:
        """A batch in a dataset's layout (``(B, C, H, W)`` values or ``(B, T, C, H, W)``
        spikes, :mod:`sw.data`) in the layout :meth:`input_shape` names: unchanged for a conv
        network, flattened per sample (multibit) or per frame (spikes) for a dense one."""
        x = np.asarray(x)
        if self.in_shape is not None:
            return x
        lead = 1 if self.input.kind == "multibit" else 2
        return x.reshape(*x.shape[:lead], -1) if x.ndim > lead else x

    def summary(self) -> str:
        first = self.layers[0]
        parts = ["x".join(map(str, first.in_shape)) if isinstance(first, ConvLayer)
                 else f"{self.inputs}"]
        for layer in self.layers:
            if isinstance(layer, ConvLayer):
                extra = "" if layer.stride == 1 else f"s{layer.stride}"
                extra += "" if layer.padding == layer.kernel // 2 else f"p{layer.padding}"
                parts.append(f"c{layer.channels}k{layer.kernel}{extra}")
            elif isinstance(layer, PoolLayer):
                parts.append(f"p{layer.kernel}")
            else:
                parts.append(f"{layer.neurons}")
        return (f"{'-'.join(parts)} T={self.time_steps} input={self.input.kind}"
                f"{'/' + str(self.input.bits) + 'b' if self.input.kind == 'multibit' else ''}")


# ----------------------------------------------------------------------------------------------
# Data files
# ----------------------------------------------------------------------------------------------

def weights_to_hex_lines(weights: np.ndarray) -> list[str]:
    """Canonical weight file: one line per neuron j, the integer ``Σ_i w_ji << i`` as
    ``ceil(N/4)`` lower-case hex digits (bit i = input i, 1 = weight +1). Padding bits are 0."""
    weights = np.asarray(weights, dtype=np.uint8)
    n = weights.shape[1]
    digits = max(1, fx.ceil_div(n, 4))
    nbytes = fx.ceil_div(n, 8)
    packed = np.packbits(weights, axis=1, bitorder="little")
    return [format(int.from_bytes(row[:nbytes].tobytes(), "little"), f"0{digits}x")
            for row in packed]


def weights_from_hex_lines(lines: list[str], neurons: int, inputs: int,
                           file: str = "weights", rows_name: str = "neuron") -> np.ndarray:
    """Inverse of :func:`weights_to_hex_lines`, validating every line (``rows_name``: what a
    row is, for the messages: a neuron, or a conv layer's output channel)."""
    digits = max(1, fx.ceil_div(inputs, 4))
    if len(lines) != neurons:
        raise _err(f"expected {neurons} lines (one per {rows_name}), found {len(lines)}",
                   file=file)
    out = np.zeros((neurons, inputs), dtype=np.uint8)
    for j, line in enumerate(lines):
        if len(line) != digits or not re.fullmatch(r"[0-9a-fA-F]+", line):
            raise _err(f"expected {digits} hex digits ({inputs} weight bits), found {line!r}",
                       file=file, field=f"line {j + 1}")
        value = int(line, 16)
        if value >> inputs:
            raise _err(f"bits above input {inputs - 1} must be 0, found {line!r}",
                       file=file, field=f"line {j + 1}")
        raw = np.frombuffer(value.to_bytes(fx.ceil_div(inputs, 8) or 1, "little"), np.uint8)
        out[j] = np.unpackbits(raw, bitorder="little")[:inputs]
    return out


def _params_lines(layer) -> list[str]:
    if isinstance(layer, (LIFLayer, ConvLayer)):
        rows = zip(layer.bias, layer.threshold, layer.connected, strict=True)
        return [_LIF_HEADER] + [f"{int(b)},{int(t)},{int(c)}" for b, t, c in rows]
    rows = zip(layer.scale, layer.offset, strict=True)
    return [_READOUT_HEADER] + [f"{int(a)},{int(c)}" for a, c in rows]


def _parse_params(lines, header, rows, file, rows_name="neuron"):
    if not lines or lines[0].strip() != header:
        raise _err(f"expected the header line {header!r}, found "
                   f"{(lines[0] if lines else '')!r}", file=file, field="line 1")
    body = lines[1:]
    if len(body) != rows:
        raise _err(f"expected {rows} rows after the header (one per {rows_name}), found "
                   f"{len(body)}", file=file)
    ncol = header.count(",") + 1
    out = np.zeros((rows, ncol), dtype=np.int64)
    for j, line in enumerate(body):
        cells = line.split(",")
        if len(cells) != ncol:
            raise _err(f"expected {ncol} comma-separated integers ({header}), found {line!r}",
                       file=file, field=f"line {j + 2}")
        for k, cell in enumerate(cells):
            # spaces and tabs around a cell only: str.strip would also take control characters
            # such as \x1f, which int() then refuses with a ValueError
            if not re.fullmatch(r"[ \t]*-?[0-9]+[ \t]*", cell):
                raise _err(f"expected an integer for {header.split(',')[k]!r}, found {cell!r}",
                           file=file, field=f"line {j + 2}")
            value = int(cell.strip(" \t"))
            if abs(value) >= 1 << fx.MAX_WIDTH:
                raise _err(f"{header.split(',')[k]} = {value} is out of range "
                           f"(|value| < 2**{fx.MAX_WIDTH})", file=file, field=f"line {j + 2}")
            out[j, k] = value
    return out


def _layer_files(layer) -> dict:
    return {"weights": f"{layer.name}.weights.hex", "params": f"{layer.name}.params.csv"}


def _layer_json(layer) -> dict:
    obj = {"name": layer.name, "kind": layer.kind}
    if isinstance(layer, PoolLayer):
        obj.update(in_shape=list(layer.in_shape), kernel=layer.kernel,
                   time_steps=layer.time_steps)
        return obj
    if isinstance(layer, ConvLayer):
        obj.update(in_shape=list(layer.in_shape), channels=layer.channels, kernel=layer.kernel,
                   stride=layer.stride, padding=layer.padding)
    else:
        obj.update(inputs=layer.inputs, neurons=layer.neurons)
    obj.update(input=layer.input.to_json(), time_steps=layer.time_steps,
               step_gain=list(layer.step_gain))
    if isinstance(layer, (LIFLayer, ConvLayer)):
        obj.update(membrane=layer.membrane.to_json(), leak_shift=layer.leak_shift,
                   reset=layer.reset)
    else:
        obj.update(score=layer.score.to_json())
    obj["files"] = _layer_files(layer)
    return obj


def manifest_dict(artifact: Artifact, hashes: dict) -> dict:
    return {
        "schema": SCHEMA,
        "schema_version": artifact.schema_version,
        "summary": artifact.summary(),
        "layers": [_layer_json(layer) for layer in artifact.layers],
        "hashes": dict(sorted(hashes.items())),
        "metadata": artifact.metadata,
    }


def _data_files(artifact: Artifact) -> dict:
    """``{file name: text}`` of every data file of ``artifact``."""
    files = {}
    for layer in artifact.weighted_layers:
        names = _layer_files(layer)
        files[names["weights"]] = "\n".join(weights_to_hex_lines(layer.weights)) + "\n"
        files[names["params"]] = "\n".join(_params_lines(layer)) + "\n"
    return files


def _manifest_text(artifact: Artifact, files: dict) -> str:
    hashes = {name: str(Sha256.of_bytes(text.encode("ascii"))) for name, text in files.items()}
    return json.dumps(manifest_dict(artifact, hashes), indent=2) + "\n"


def manifest_digest(artifact: Artifact) -> Sha256:
    """The :class:`~sw.digest.Sha256` of the ``manifest.json`` that :func:`write_artifact`
    writes for ``artifact`` (the same bytes :func:`load_artifact` read, for a loaded artifact):
    the artifact's identity, which the generated hardware and the board carry."""
    return Sha256.of_bytes(_manifest_text(artifact, _data_files(artifact)).encode("utf-8"))


def manifest_sha256(artifact: Artifact) -> str:
    """``"sha256:<hex>"`` of the ``manifest.json`` that :func:`write_artifact` writes for
    ``artifact``: the written form of :func:`manifest_digest`, for the callers that still
    take a string. It names the model exactly: the manifest holds every data file's hash."""
    return str(manifest_digest(artifact))


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextmanager
def artifact_lock(path: str | os.PathLike):
    """Hold the writer's lock of the artifact path ``path``, or fail at once.

    The lock is an ``fcntl.flock`` on ``.<name>.lock`` beside ``path``, taken without waiting:
    a second writer (another process or thread) gets :class:`ArtifactLockedError` before it
    does any work. The kernel drops the lock when its holder dies, so a killed writer never
    blocks the next one. The file is removed on release; a writer that locked a file another
    writer has just removed checks the inode it holds against the path's and tries again.
    A caller with long work before :func:`write_artifact` (an export's search) holds this lock
    around all of it and passes ``locked=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(path)
    for _ in range(10):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, default_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ArtifactLockedError(
                f"another writer holds {lock}; it is writing this artifact now (try again when "
                f"it is done)", file=str(path)) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # locked a file its last holder had already removed
    else:
        raise ArtifactLockedError(f"could not take {lock}: other writers keep replacing it",
                                  file=str(path))
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``):
    at every instant each name holds one of the two. False where the system has no such call
    (another OS, an old C library or a file system without it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _recover(path: Path) -> None:
    """Undo what a killed writer left beside ``path`` (called with the lock held, so nobody
    else is writing): a previous artifact it had moved aside (only the fallback swap does
    that) goes back to ``path`` if ``path`` is missing; every other leftover temporary or
    backup directory is removed."""
    backups = sorted(path.parent.glob(f".{path.name}.old-*"))
    if backups and not path.exists():
        os.rename(backups.pop(0), path)
    for leftover in backups + sorted(path.parent.glob(f".{path.name}.tmp-*")):
        shutil.rmtree(leftover, ignore_errors=True)


def write_artifact(artifact: Artifact, path: str | os.PathLike, *, overwrite: bool = False,
                   locked: bool = False) -> Path:
    """Write ``artifact`` to the directory ``path`` atomically.

    Under :func:`artifact_lock` (taken here unless ``locked`` says the caller holds it),
    everything is written into a temporary sibling directory, which then takes ``path``'s place
    in one step: an overwrite swaps the two directories (``renameat2(RENAME_EXCHANGE)``), so at
    every instant ``path`` holds the old or the new artifact, and a kill at any instant leaves
    one of them. A failure leaves ``path`` as it was (absent, or the previous artifact when
    ``overwrite`` is set). What a killed writer left beside ``path`` is cleaned up by the next
    one (docs/artifact.md, "Writing").

    Raises
    ------
    ArtifactLockedError
        Another writer holds ``path``'s lock (raised before any work).
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if not locked:
        with artifact_lock(path):
            return write_artifact(artifact, path, overwrite=overwrite, locked=True)
    _recover(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        files = _data_files(artifact)
        for name, text in files.items():
            (tmp / name).write_bytes(text.encode("ascii"))
        (tmp / MANIFEST).write_text(_manifest_text(artifact, files))
        tmp.chmod(default_mode(directory=True))
        if not path.exists():
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp)  # it now holds the old artifact
        else:
            # Fallback: two renames, with a moment between them when path is missing; a kill
            # there leaves the old artifact at .<name>.old-*, which the next writer restores
            # and the loader's error names.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rmdir(old)
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)
                raise
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# ----------------------------------------------------------------------------------------------
# Loader
# ----------------------------------------------------------------------------------------------

def _get(obj, key, types, file, where, expected):
    if not isinstance(obj, dict) or key not in obj:
        raise _err(f"missing; expected {expected}", file=file, field=f"{where}{key}")
    value = obj[key]
    types = types if isinstance(types, tuple) else (types,)
    # JSON's true/false is a bool and never an int (sw.checks.is_int)
    if not any(is_int(value) if t is int else isinstance(value, t) for t in types):
        raise _err(f"expected {expected}, found {value!r}", file=file, field=f"{where}{key}")
    return value


def _fixed_from_json(obj, file, where):
    if not isinstance(obj, dict):
        raise _err(f"expected an object {{width, frac, signed}}, found {obj!r}", file=file,
                   field=where)
    width = _get(obj, "width", int, file, where + ".", "an int")
    frac = _get(obj, "frac", int, file, where + ".", "an int")
    signed = _get(obj, "signed", bool, file, where + ".", "true or false")
    try:
        return FixedPoint(width=width, frac=frac, signed=signed)
    except (TypeError, ValueError) as exc:
        raise _err(str(exc), file=file, field=where) from None


def _read_regular(path: Path, dir_fd: int, name: str, cap: int, named_by: str) -> bytes:
    """The bytes of ``path / name``, at most ``cap`` of them, from a regular file only.

    O_NONBLOCK makes opening a FIFO return at once (a plain open waits for a writer forever);
    the fstat on the open descriptor then refuses it, a device (``/dev/zero`` reads forever) or
    a directory before a byte is read. A symlink to a regular file is followed: it is the
    target's content that is hashed and checked. Names are opened in the directory ``dir_fd``
    the loader opened once, so every file comes from the same directory even if an overwrite
    swaps another one in at ``path`` meanwhile. The size is checked before reading, and the
    read itself is capped too (the file may grow between the fstat and the read).
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _err(f"missing from {path}{named_by}", file=name) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise _err(f"cannot be opened: {exc}", file=name) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = ("a directory" if stat.S_ISDIR(st.st_mode) else
                    "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                    "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise _err(f"expected a regular file, found {what}", file=name)
        if st.st_size > cap:
            raise _err(f"is {st.st_size} bytes, more than the {cap} its sizes allow", file=name)
        chunks, left = [], cap + 1
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _err(f"cannot be read: {exc}", file=name) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        raise _err(f"is more than the {cap} bytes its sizes allow (it grew while read)",
                   file=name)
    return data


def _json_depth(obj) -> int:
    """How deeply arrays/objects nest in a parsed JSON value (iteratively: no recursion)."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict)
                                                  else value))
    return deepest


def _parse_json_int(text: str) -> int:
    # Called by the JSON parser for every integer literal: a bounded length instead of
    # Python's 4300-digit ValueError (or minutes of work on a long literal below it).
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _err(f"an integer of {len(text.lstrip('-'))} digits, more than the "
                   f"{MAX_INT_DIGITS} allowed, found {text[:20]}...", file=MANIFEST)
    return int(text)


def _unique_keys(pairs):
    # A duplicated key would silently keep the last value: refuse it instead.
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _err(f"the key {key!r} appears twice in one object", file=MANIFEST)
        obj[key] = value
    return obj


def _parse_manifest(data: bytes):
    deep = f"nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        obj = json.loads(data.decode("utf-8"), parse_int=_parse_json_int,
                         object_pairs_hook=_unique_keys)
    except ArtifactError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _err(f"is not valid JSON: {exc}", file=MANIFEST) from None
    except RecursionError:
        # CPython's parser checks its recursion depth per level and raises this cleanly
        raise _err(f"is not valid JSON: {deep}", file=MANIFEST) from None
    if _json_depth(obj) > MAX_JSON_DEPTH:
        raise _err(f"is not valid JSON: {deep}", file=MANIFEST)
    return obj


def _leftover_note(path: Path) -> str:
    """Where an interrupted overwrite left the previous artifact, for the error message."""
    backups = sorted(path.parent.glob(f".{path.name}.old-*")) if path.parent.is_dir() else []
    if not backups:
        return ""
    return (f"; an interrupted overwrite left the previous artifact at {backups[0]}, which the "
            f"next write_artifact to this path restores")


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Load and validate an artifact directory.

    Only regular files are read, each at most the size the manifest's sizes imply (the manifest
    itself at most :data:`MANIFEST_MAX_BYTES`), and every size is checked against the limits
    (:data:`MAX_INPUTS`, :data:`MAX_NEURONS`, :data:`MAX_SYNAPSES`) before anything is read or
    allocated (docs/artifact.md, "Limits").

    Raises
    ------
    ArtifactError
        For a missing directory or file, a file that is not a regular file or larger than its
        sizes allow, malformed or too deeply nested JSON, an unknown schema version, a missing
        or mistyped field, a hash mismatch, a data file of the wrong size or format, or a value
        outside the range the integer semantics allow. The message names the file and field.
    """
    path = Path(path)
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (OSError, ValueError):
        raise _err(f"no artifact directory at {path} (expected a directory holding "
                   f"{MANIFEST}){_leftover_note(path)}", file=str(path)) from None
    try:
        return _load(path, dir_fd)
    finally:
        os.close(dir_fd)


def _shape_json(obj, file, where) -> tuple:
    """``in_shape``: a list of 3 positive ints whose product is within :data:`MAX_MAP`
    (checked before anything is allocated)."""
    shape = _get(obj, "in_shape", list, file, where, "a list [channels, height, width]")
    if len(shape) != 3 or not all(is_int(v) and v >= 1 for v in shape):
        raise _err(f"expected 3 positive ints [channels, height, width], found {shape!r}",
                   file=file, field=where + "in_shape")
    if _map_size(shape) > MAX_MAP:
        raise _err(f"C·H·W = {_map_size(shape)} is above the limit MAX_MAP = {MAX_MAP}",
                   file=file, field=where + "in_shape")
    return tuple(shape)


def _load(path: Path, dir_fd: int) -> Artifact:
    mf = MANIFEST
    manifest = _parse_manifest(_read_regular(path, dir_fd, MANIFEST, MANIFEST_MAX_BYTES, ""))
    if not isinstance(manifest, dict):
        raise _err("expected a JSON object at the top level", file=mf)
    schema = manifest.get("schema")
    if schema != SCHEMA:
        raise _err(f"expected {SCHEMA!r}, found {schema!r}", file=mf, field="schema")
    version = manifest.get("schema_version")
    # 1.0 == True == 1 in Python: the version must be the int itself
    if not is_int(version) or version not in SCHEMA_VERSIONS:
        raise _err(f"unknown schema version {version!r}; this bitspike reads versions "
                   f"{', '.join(map(str, SCHEMA_VERSIONS))}", file=mf, field="schema_version")
    kinds = ("lif", "readout") if version == 1 else ("lif", "conv", "pool", "readout")
    hashes = _get(manifest, "hashes", dict, mf, "", "an object {file: 'sha256:...'}")
    layers_json = _get(manifest, "layers", list, mf, "", "a list of layers")
    metadata = manifest.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _err(f"expected an object, found {metadata!r}", file=mf, field="metadata")

    def read_data(name, field, cap):
        if (not isinstance(name, str) or not name or "/" in name or "\\" in name
                or "\0" in name or name.startswith(".") or name == MANIFEST):
            raise _err(f"expected a plain file name, found {name!r}", file=mf, field=field)
        if name not in hashes:
            raise _err(f"no hash for {name!r}", file=mf, field="hashes")
        try:
            recorded = Sha256.parse(hashes[name])
        except ValueError:
            raise _err(f"expected 'sha256:<64 lower-case hex digits>', found {hashes[name]!r}",
                       file=mf, field=f"hashes.{name}") from None
        data = _read_regular(path, dir_fd, name, cap, f" (named by {field})")
        actual = Sha256.of_bytes(data)
        if actual != recorded:
            raise _err(f"content hash {actual} does not match manifest.json's "
                       f"{recorded} (the file was changed or truncated)", file=name)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise _err("expected ASCII text", file=name) from None
        return text.splitlines()

    layers = []
    for i, obj in enumerate(layers_json):
        w = f"layers[{i}]."
        name = _get(obj, "name", str, mf, w, "a layer name")
        w = f"layers[{i}] ({name})."
        expected_kind = " or ".join(f"'{k}'" for k in kinds)
        kind = _get(obj, "kind", str, mf, w, expected_kind)
        if kind not in kinds:
            later = (f" (schema_version 1 holds dense layers only; '{kind}' layers need "
                     f"schema_version 2)" if kind in ("conv", "pool") else "")
            raise _err(f"expected {expected_kind}, found {kind!r}{later}", file=mf,
                       field=w + "kind")
        t = _get(obj, "time_steps", int, mf, w, "a positive int")
        try:
            if kind == "pool":
                layers.append(PoolLayer(name=name, in_shape=_shape_json(obj, mf, w), kernel=_get(
                    obj, "kernel", int, mf, w, "an int"), time_steps=t))
                continue
        except ArtifactError as exc:
            if exc.file is not None:
                raise
            raise _err(str(exc), file=mf) from None
        gain = _get(obj, "step_gain", list, mf, w, "a list of T ints >= 1")
        inp = _get(obj, "input", dict, mf, w, "an object {kind, bits}")
        files = _get(obj, "files", dict, mf, w, "an object {weights, params}")
        try:
            spec = InputSpec(kind=_get(inp, "kind", str, mf, w + "input.", "'spike'/'multibit'"),
                             bits=_get(inp, "bits", int, mf, w + "input.", "an int"))
        except ArtifactError as exc:
            raise _err(str(exc), file=mf, field=w + "input") from None
        for key in ("weights", "params"):
            _get(files, key, str, mf, w + "files.", "a file name")
        geometry_args = {}
        if kind == "conv":
            in_shape = _shape_json(obj, mf, w)
            geometry_args = {key: _get(obj, key, int, mf, w, "an int")
                             for key in ("channels", "kernel", "stride", "padding")}
            channels, kernel = geometry_args["channels"], geometry_args["kernel"]
            # the geometry decides the data files' sizes: checked before they are read
            if channels < 1:
                raise _err(f"must be >= 1, found {channels}", file=mf, field=w + "channels")
            if kernel not in geometry.KERNELS:
                raise _err(f"must be one of {', '.join(map(str, geometry.KERNELS))} (odd), not "
                           f"{kernel}", file=mf, field=w + "kernel")
            geometry_args["in_shape"] = in_shape
            rows, cols = channels, kernel * kernel * in_shape[0]
            too_big = _size_error(cols, rows)
            if too_big:
                raise _err(f"{too_big[1]} (K·K·C_in inputs x channels)", file=mf,
                           field=w + ("in_shape" if too_big[0] == "inputs" else "channels"))
        else:
            inputs = _get(obj, "inputs", int, mf, w, "a positive int")
            neurons = _get(obj, "neurons", int, mf, w, "a positive int")
            if inputs < 1 or neurons < 1:
                raise _err(f"inputs and neurons must be >= 1, found {inputs} and {neurons}",
                           file=mf, field=w[:-1])
            # before a byte of the data files is read or an array allocated
            too_big = _size_error(inputs, neurons)
            if too_big:
                raise _err(too_big[1], file=mf, field=w + too_big[0])
            rows, cols = neurons, inputs
            geometry_args = {"inputs": inputs, "neurons": neurons}
        # The data files' sizes follow from the rows and columns: ceil(cols/4) hex digits per
        # line, a few bounded integers per params row; each line may end in CRLF (2 bytes).
        digits = max(1, fx.ceil_div(cols, 4))
        ncol = 2 if kind == "readout" else 3
        wlines = read_data(files["weights"], w + "files.weights", rows * (digits + 2))
        row = "output channel" if kind == "conv" else "neuron"
        weights = weights_from_hex_lines(wlines, rows, cols, file=files["weights"],
                                         rows_name=row)
        plines = read_data(files["params"], w + "files.params",
                           len(_LIF_HEADER) + 2 + rows * (ncol * _CELL_MAX_BYTES + 2))
        try:
            if kind in ("lif", "conv"):
                membrane = _fixed_from_json(obj.get("membrane"), mf, w + "membrane")
                if "leak_shift" not in obj:
                    raise _err("missing; expected null or an int", file=mf,
                               field=w + "leak_shift")
                leak_shift = obj["leak_shift"]
                reset = _get(obj, "reset", str, mf, w, "'hard' or 'soft'")
                params = _parse_params(plines, _LIF_HEADER, rows, files["params"], row)
                cls = LIFLayer if kind == "lif" else ConvLayer
                layers.append(cls(
                    name=name, input=spec, time_steps=t, membrane=membrane,
                    leak_shift=leak_shift, reset=reset, step_gain=gain, weights=weights,
                    bias=params[:, 0], threshold=params[:, 1], connected=params[:, 2],
                    **geometry_args))
            else:
                score = _fixed_from_json(obj.get("score"), mf, w + "score")
                params = _parse_params(plines, _READOUT_HEADER, rows, files["params"])
                layers.append(ReadoutLayer(
                    name=name, input=spec, time_steps=t, step_gain=gain, weights=weights,
                    scale=params[:, 0], offset=params[:, 1], score=score, **geometry_args))
        except ArtifactError as exc:
            if exc.file is not None:
                raise
            # Semantic checks of a layer concern both its manifest entry and its params file.
            raise _err(f"{exc} (checked against {files['params']})", file=mf) from None
    try:
        return Artifact(layers=tuple(layers), metadata=metadata)
    except ArtifactError as exc:
        raise _err(str(exc), file=mf) from None
