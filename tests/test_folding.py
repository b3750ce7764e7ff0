"""The folded weight-memory layout: round trip, the documented example, parsing, BRAM files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sw.folding import (
    Folding,
    LayerFolding,
    hex_lines_to_words,
    pack_weights,
    unpack_weights,
    words_to_hex_lines,
    write_bram_files,
)
from sw.randnet import random_artifact


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 40), n=st.integers(1, 70), data=st.data())
def test_pack_unpack_round_trip(m, n, data):
    simd = data.draw(st.integers(1, n))
    pe = data.draw(st.integers(1, m))
    seed = data.draw(st.integers(0, 2**32 - 1))
    w = np.random.default_rng(seed).integers(0, 2, size=(m, n), dtype=np.uint8)
    words = pack_weights(w, simd, pe)
    assert len(words) == -(-n // simd) * -(-m // pe)
    assert all(0 <= x < 1 << (simd * pe) for x in words)
    np.testing.assert_array_equal(unpack_weights(words, simd, pe, m, n), w)
    # every bit lands where the documented formula says
    sf = -(-n // simd)
    for j in range(m):
        for i in range(n):
            nf, p, sfi, s = j // pe, j % pe, i // simd, i % simd
            assert (words[nf * sf + sfi] >> (p * simd + s)) & 1 == w[j, i]


def test_documented_example():
    """docs/artifact.md: N=5, M=3, SIMD 2 x PE 2 -> 9 7 4 3 0 0."""
    w = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 0, 0, 0]], dtype=np.uint8)
    assert pack_weights(w, 2, 2) == [0x9, 0x7, 0x4, 0x3, 0x0, 0x0]
    assert words_to_hex_lines(pack_weights(w, 2, 2), 4) == ["9", "7", "4", "3", "0", "0"]


def test_hex_lines_round_trip_and_errors():
    assert hex_lines_to_words(words_to_hex_lines([0, 5, 255], 9), 9) == [0, 5, 255]
    assert words_to_hex_lines([0x1ff], 9) == ["1ff"]
    with pytest.raises(ValueError, match=r"word 0 = 0x200 does not fit 9 bits"):
        words_to_hex_lines([0x200], 9)
    with pytest.raises(ValueError, match=r"mem: line 2: expected 3 hex digits, found '1f'"):
        hex_lines_to_words(["000", "1f"], 9, file="mem")
    with pytest.raises(ValueError, match=r"line 1: '3ff' does not fit 9 bits"):
        hex_lines_to_words(["3ff"], 9)


def test_unpack_checks_the_word_count():
    with pytest.raises(ValueError, match=r"expected 6 words for 3x5 at folding 2x2, got 5"):
        unpack_weights([0] * 5, 2, 2, 3, 5)


def test_layer_folding_validation_and_facts():
    with pytest.raises(TypeError, match=r"simd must be an int, not '4'"):
        LayerFolding("4", 1)
    with pytest.raises(ValueError, match=r"pe must be >= 1, not 0"):
        LayerFolding(4, 0)
    a = random_artifact(1, sizes=[10, 7, 3])
    f = LayerFolding(4, 3)
    assert (f.synapse_folds(a.layers[0]), f.neuron_folds(a.layers[0])) == (3, 3)
    assert f.depth(a.layers[0]) == f.cycles_per_step(a.layers[0]) == 9
    assert f.word_width == 12 and str(f) == "4x3"
    with pytest.raises(ValueError, match=r"layer 'fc0': simd 11 exceeds its 10 inputs"):
        LayerFolding(11, 1).check(a.layers[0])
    with pytest.raises(ValueError, match=r"layer 'out1': pe 4 exceeds its 3 neurons"):
        LayerFolding(1, 4).check(a.layers[1])


def test_folding_parse():
    a = random_artifact(2, sizes=[10, 7, 3])
    assert str(Folding.parse("4x3, 7x1", a)) == "4x3,7x1"
    assert str(Folding.parse("64x8", a)) == "10x7,7x3"  # one value: clamped per layer
    with pytest.raises(ValueError, match=r"folding '4-3' is not of the form SIMDxPE"):
        Folding.parse("4x3,4-3", a)
    with pytest.raises(ValueError, match=r"folding gives 3 layers, the artifact has 2"):
        Folding.parse("1x1,1x1,1x1", a)
    with pytest.raises(ValueError, match=r"simd 11 exceeds"):
        Folding.parse("11x1,1x1", a)
    assert str(Folding.from_lists([4], [2, 1], a)) == "4x2,4x1"
    with pytest.raises(ValueError, match=r"--pe gives 3 values; the artifact has 2 layers"):
        Folding.from_lists([4], [1, 1, 1], a)


def test_write_bram_files(tmp_path, seed):
    a = random_artifact(seed, sizes=[13, 9, 4])
    folding = Folding.parse("5x2,4x3", a)
    paths = write_bram_files(a, folding, tmp_path)
    assert [p.name for p in paths] == ["fc0.weights.5x2.mem", "out1.weights.4x3.mem"]
    for layer, f, path in zip(a.layers, folding.layers, paths, strict=True):
        words = hex_lines_to_words(path.read_text().splitlines(), f.word_width)
        np.testing.assert_array_equal(
            unpack_weights(words, f.simd, f.pe, layer.neurons, layer.inputs), layer.weights)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
