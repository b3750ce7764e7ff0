"""Folding (SIMD x PE per layer) and the block-RAM word layout of a layer's weights.

Folding is a build option of the hardware, not part of the model. This module holds the ONE pair
of functions that put a layer's weight bits into the words of its weight memory and take them
out again (:func:`pack_weights` / :func:`unpack_weights`); the BRAM writer, the hardware
generator and the tests all call them. ``docs/artifact.md`` documents the layout with a worked
example.

Layout, for a layer with N inputs, M neurons, folding (S = simd, P = pe)::

    (a conv layer: N = K·K·C_in, the window, and M = C_out, its output channels: one weight
    row per channel, bits in window order, sw.geometry; pool layers have no weights and no
    folding, so a network's folding lists its weighted layers only)


    SF = ceil(N / S)        synapse folds (words per neuron group)
    NF = ceil(M / P)        neuron folds (neuron groups)
    depth = NF * SF         words; word width = P * S bits
    address(nf, sf) = nf * SF + sf
    bit p * S + s of word (nf, sf) = weight bit of neuron nf * P + p, input sf * S + s
    (bits beyond N or M are 0)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sw.atomic import atomic_write_text
from sw.checks import check_int
from sw.fixedpoint import ceil_div

__all__ = [
    "LayerFolding",
    "Folding",
    "pack_weights",
    "unpack_weights",
    "words_to_hex_lines",
    "hex_lines_to_words",
    "write_bram_files",
]


@dataclass(frozen=True)
class LayerFolding:
    """SIMD input bits x PE neurons processed per cycle by one layer.

    Parameters
    ----------
    simd : int
        Inputs per cycle (1..N).
    pe : int
        Neurons per cycle (1..M).
    """

    simd: int
    pe: int

    def __post_init__(self):
        for name in ("simd", "pe"):
            check_int(name, getattr(self, name), 1)

    def check(self, layer) -> None:
        """Raise ValueError unless this folding suits ``layer`` (simd <= N, pe <= M; for a
        conv layer N is its window K·K·C_in and M its output channels)."""
        if self.simd > layer.fan_in:
            raise ValueError(f"layer {layer.name!r}: simd {self.simd} exceeds its "
                             f"{layer.fan_in} inputs")
        if self.pe > layer.weight_rows:
            what = "neurons" if layer.weight_rows == layer.neurons else "output channels"
            raise ValueError(f"layer {layer.name!r}: pe {self.pe} exceeds its "
                             f"{layer.weight_rows} {what}")

    def synapse_folds(self, layer) -> int:
        return ceil_div(layer.fan_in, self.simd)

    def neuron_folds(self, layer) -> int:
        return ceil_div(layer.weight_rows, self.pe)

    def depth(self, layer) -> int:
        """Words in the layer's weight memory."""
        return self.synapse_folds(layer) * self.neuron_folds(layer)

    @property
    def word_width(self) -> int:
        return self.simd * self.pe

    def cycles_per_step(self, layer) -> int:
        """Ideal cycles for one pass over the layer's weights: ``ceil(N/S) * ceil(M/P)``."""
        return self.depth(layer)

    def __str__(self):
        return f"{self.simd}x{self.pe}"


@dataclass(frozen=True)
class Folding:
    """Per-layer folding of a whole network, in layer order (its weighted layers:
    :attr:`sw.artifact.Artifact.weighted_layers`, every layer but the pools)."""

    layers: tuple[LayerFolding, ...]

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        for f in self.layers:
            if not isinstance(f, LayerFolding):
                raise TypeError(f"layers must hold LayerFolding, not {f!r}")

    def check(self, artifact) -> None:
        layers = artifact.weighted_layers
        if len(self.layers) != len(layers):
            raise ValueError(f"folding gives {len(self.layers)} layers, the artifact has "
                             f"{len(layers)}{' with weights' if not artifact.is_dense else ''}")
        for f, layer in zip(self.layers, layers, strict=True):
            f.check(layer)

    def __str__(self):
        return ",".join(str(f) for f in self.layers)

    def to_json(self) -> list:
        return [{"simd": f.simd, "pe": f.pe} for f in self.layers]

    @classmethod
    def parse(cls, text: str, artifact=None) -> Folding:
        """Parse ``"SxP,SxP,..."`` (one per layer). A single ``"SxP"`` applies to every layer,
        each value clamped to the layer's size. Checked against ``artifact`` when given."""
        items = [t.strip() for t in str(text).split(",") if t.strip()]
        parsed = []
        for item in items:
            m = re.fullmatch(r"(\d+)\s*[xX]\s*(\d+)", item)
            if not m:
                raise ValueError(f"folding {item!r} is not of the form SIMDxPE (e.g. 64x8)")
            parsed.append(LayerFolding(int(m.group(1)), int(m.group(2))))
        if not parsed:
            raise ValueError(f"folding {text!r} is empty; expected SIMDxPE per layer")
        if artifact is not None:
            layers = artifact.weighted_layers
            if len(parsed) == 1 and len(layers) > 1:
                f = parsed[0]
                parsed = [LayerFolding(min(f.simd, layer.fan_in), min(f.pe, layer.weight_rows))
                          for layer in layers]
            folding = cls(tuple(parsed))
            folding.check(artifact)
            return folding
        return cls(tuple(parsed))

    @classmethod
    def from_lists(cls, simd: Sequence[int], pe: Sequence[int], artifact) -> Folding:
        """Build from per-layer lists; a list of one value applies to every layer (clamped)."""
        n = len(artifact.weighted_layers)

        def expand(values, name):
            values = list(values)
            if len(values) == 1:
                return values * n
            if len(values) != n:
                raise ValueError(f"--{name} gives {len(values)} values; the artifact has {n} "
                                 f"layers (give one value, or one per layer)")
            return values

        s_all, p_all = expand(simd, "simd"), expand(pe, "pe")
        clamp = len(simd) == 1 or len(pe) == 1
        layers = []
        for s, p, layer in zip(s_all, p_all, artifact.weighted_layers, strict=True):
            if clamp:
                s = min(s, layer.fan_in) if len(simd) == 1 else s
                p = min(p, layer.weight_rows) if len(pe) == 1 else p
            layers.append(LayerFolding(int(s), int(p)))
        folding = cls(tuple(layers))
        folding.check(artifact)
        return folding


def pack_weights(weights: np.ndarray, simd: int, pe: int) -> list[int]:
    """Pack an (M, N) bit matrix into the folded word layout (see the module docstring).

    Returns the memory contents as Python ints, in address order.
    """
    w = np.asarray(weights, dtype=np.uint8)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D (neurons, inputs) array, not shape {w.shape}")
    m, n = w.shape
    sf, nf = ceil_div(n, simd), ceil_div(m, pe)
    padded = np.zeros((nf * pe, sf * simd), dtype=np.uint8)
    padded[:m, :n] = w
    # (nf, p, sf, s) -> (nf, sf, p, s): word (nf, sf), bit p*S + s
    blocks = padded.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
    packed = np.packbits(blocks, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_weights(words: Sequence[int], simd: int, pe: int, neurons: int,
                   inputs: int) -> np.ndarray:
    """Inverse of :func:`pack_weights`: the (M, N) bit matrix from the memory words."""
    sf, nf = ceil_div(inputs, simd), ceil_div(neurons, pe)
    if len(words) != sf * nf:
        raise ValueError(f"expected {sf * nf} words for {neurons}x{inputs} at folding "
                         f"{simd}x{pe}, got {len(words)}")
    width = simd * pe
    nbytes = ceil_div(width, 8)
    raw = np.frombuffer(b"".join(int(x).to_bytes(nbytes, "little") for x in words), np.uint8)
    bits = np.unpackbits(raw.reshape(len(words), nbytes), axis=1, bitorder="little")[:, :width]
    blocks = bits.reshape(nf, sf, pe, simd).transpose(0, 2, 1, 3).reshape(nf * pe, sf * simd)
    return np.ascontiguousarray(blocks[:neurons, :inputs])


def words_to_hex_lines(words: Sequence[int], width: int) -> list[str]:
    """``$readmemh`` lines: one word per line, ``ceil(width/4)`` hex digits, address order."""
    digits = max(1, ceil_div(width, 4))
    out = []
    for a, word in enumerate(words):
        word = int(word)
        if word < 0 or word >> width:
            raise ValueError(f"word {a} = {word:#x} does not fit {width} bits")
        out.append(format(word, f"0{digits}x"))
    return out


def hex_lines_to_words(lines: Sequence[str], width: int, file: str = "memory") -> list[int]:
    """Parse ``$readmemh`` lines written by :func:`words_to_hex_lines` (no comments/addresses)."""
    digits = max(1, ceil_div(width, 4))
    words = []
    for a, line in enumerate(lines):
        line = line.strip()
        if len(line) != digits or not re.fullmatch(r"[0-9a-fA-F]+", line):
            raise ValueError(f"{file}: line {a + 1}: expected {digits} hex digits, "
                             f"found {line!r}")
        value = int(line, 16)
        if value >> width:
            raise ValueError(f"{file}: line {a + 1}: {line!r} does not fit {width} bits")
        words.append(value)
    return words


def write_bram_files(artifact, folding: Folding, out_dir: str | os.PathLike) -> list[Path]:
    """Write each layer's weights, packed for ``folding``, as ``<layer>.weights.<S>x<P>.mem``
    (``$readmemh`` format, one word per line). Each file is written atomically."""
    folding.check(artifact)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for layer, f in zip(artifact.weighted_layers, folding.layers, strict=True):
        words = pack_weights(layer.weights, f.simd, f.pe)
        path = out / f"{layer.name}.weights.{f}.mem"
        atomic_write_text(path, "\n".join(words_to_hex_lines(words, f.word_width)) + "\n")
        paths.append(path)
    return paths
