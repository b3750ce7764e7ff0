"""The random network generator: deterministic per seed, and it reaches the corner cases."""

from __future__ import annotations

import numpy as np
import pytest

from sw import fixedpoint as fx
from sw.artifact import ConvLayer, InputSpec, PoolLayer, manifest_sha256
from sw.randnet import random_artifact, random_conv_artifact, random_inputs


def test_same_seed_same_network(seed):
    a, b = random_artifact(seed), random_artifact(seed)
    assert a.summary() == b.summary()
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.weights, lb.weights)
    np.testing.assert_array_equal(random_inputs(a, 5, seed), random_inputs(b, 5, seed))


def test_generator_reaches_every_corner_case():
    seen = set()
    for s in range(400):
        a = random_artifact(s)
        seen.add(("T", a.time_steps))
        seen.add(("input", a.input.kind))
        for layer in a.lif_layers:
            seen.add(("reset", layer.reset))
            seen.add(("leak", layer.leak_shift is None))
            if (layer.bias < 0).any():
                seen.add("negative bias")
            if (layer.threshold < 0).any():
                seen.add("negative threshold")
            if (layer.connected == 0).any():
                seen.add("zero-scale neuron")
            if set(layer.step_gain) != {1}:
                seen.add("step gain")
            if layer.membrane.width == layer.required_width:
                seen.add("width at bound")
        if (a.readout.scale == 0).any():
            seen.add("zero-scale class")
        if a.readout.score.width == a.readout.required_score_width:
            seen.add("score width at bound")
    expected = {("T", 1), ("T", 16), ("input", "spike"), ("input", "multibit"),
                ("reset", "hard"), ("reset", "soft"), ("leak", True), ("leak", False),
                "negative bias", "negative threshold", "zero-scale neuron", "step gain",
                "width at bound", "zero-scale class", "score width at bound"}
    assert expected <= seen, expected - seen


def test_width_slack_adds_bits(seed):
    a = random_artifact(seed, sizes=[9, 5, 3], width_slack=3)
    fc0 = a.layers[0]
    bound_width = fx.lif_bound_width(fc0.membrane_bound, threshold=fc0.threshold, bias=fc0.bias)
    assert fc0.membrane.width >= bound_width + 3
    assert a.readout.score.width == a.readout.required_score_width + 3


def test_conv_same_seed_same_network(seed):
    a, b = random_conv_artifact(seed), random_conv_artifact(seed)
    assert a.summary() == b.summary() and manifest_sha256(a) == manifest_sha256(b)
    np.testing.assert_array_equal(random_inputs(a, 3, seed), random_inputs(b, 3, seed))


def test_conv_generator_reaches_every_corner_case():
    seen = set()
    for s in range(300):
        a = random_conv_artifact(s)
        assert a.schema_version == 2 and isinstance(a.layers[0], ConvLayer)
        c, h, w = a.in_shape
        assert 1 <= c <= 3 and 3 <= h <= 12 and 3 <= w <= 12
        x = random_inputs(a, 2, s)
        assert x.shape == a.input_shape(2) and x.min() >= 0 and x.max() <= a.input.max_value
        seen.add(("input", a.input.kind))
        seen.add(("T", a.time_steps))
        kinds = [layer.kind for layer in a.layers]
        seen.add(("convs", kinds.count("conv")))
        seen.add(("dense", kinds.count("lif")))
        if kinds[-2] in ("conv", "pool"):
            seen.add("map -> readout")
        if "pool,pool" in ",".join(kinds):
            seen.add("pool after pool")
        for layer in a.layers:
            if isinstance(layer, ConvLayer):
                assert 1 <= layer.channels <= 8
                seen.add(("K", layer.kernel))
                seen.add(("S", layer.stride))
                seen.add(("P", "0" if layer.padding == 0 else
                          "K-1" if layer.padding == layer.kernel - 1 else "between"))
                seen.add(("reset", layer.reset))
                seen.add(("leak", layer.leak_shift is None))
                if layer.in_shape[0] not in (1, 2, 4, 8):
                    seen.add("C_in not a power of 2")
                if (layer.connected == 0).any():
                    seen.add("zero-scale channel")
                if set(layer.step_gain) != {1}:
                    seen.add("step gain")
                if layer.membrane.width == layer.required_width:
                    seen.add("conv width at bound")
                if min(layer.out_shape[1:]) == 1:
                    seen.add("1-pixel output")
            if isinstance(layer, PoolLayer):
                seen.add(("pool", layer.kernel))
                if any(n % layer.kernel for n in layer.in_shape[1:]):
                    seen.add("pool drops a remainder")
        if a.readout.score.width == a.readout.required_score_width:
            seen.add("score width at bound")
    expected = {("input", "spike"), ("input", "multibit"), ("T", 1), ("T", 16),
                ("convs", 1), ("convs", 2), ("convs", 3), ("dense", 0), ("dense", 1),
                "map -> readout", "pool after pool", ("K", 1), ("K", 3), ("K", 5), ("K", 7),
                ("S", 1), ("S", 2), ("P", "0"), ("P", "K-1"), ("P", "between"),
                ("reset", "hard"), ("reset", "soft"), ("leak", True), ("leak", False),
                "C_in not a power of 2", "zero-scale channel", "step gain",
                "conv width at bound", "1-pixel output", ("pool", 2), ("pool", 3),
                "pool drops a remainder", "score width at bound"}
    assert expected <= seen, expected - seen


def test_conv_layers_given_are_built_in_order(seed):
    a = random_conv_artifact(seed, in_shape=(3, 9, 7), layers=[
        ("conv", 5, 3, 2, 0), ("pool", 2), ("conv", 2, 1, 1, 0), ("lif", 4), ("readout", 3)],
        time_steps=2, input_kind="multibit", input_bits=4, width_slack=2)
    assert [layer.kind for layer in a.layers] == ["conv", "pool", "conv", "lif", "readout"]
    assert [layer.name for layer in a.layers] == ["conv0", "pool1", "conv2", "fc3", "out4"]
    assert a.layers[0].out_shape == (5, 4, 3) and a.layers[1].out_shape == (5, 2, 1)
    assert a.layers[2].out_shape == (2, 2, 1) and a.layers[3].inputs == 4
    assert a.input == InputSpec("multibit", 4) and a.input_shape(6) == (6, 3, 9, 7)
    conv = a.layers[0]
    assert conv.weights.shape == (5, 27) and conv.bias.shape == (5,)
    bound_width = fx.lif_bound_width(conv.membrane_bound, threshold=conv.threshold,
                                     bias=conv.bias)
    assert conv.membrane.width >= bound_width + 2
    with pytest.raises(ValueError, match=r"layers must end with \('readout', classes\)"):
        random_conv_artifact(seed, in_shape=(1, 4, 4), layers=[("conv", 2, 3, 1, 1)])
    with pytest.raises(ValueError, match=r"unknown layer kind 'dense'"):
        random_conv_artifact(seed, in_shape=(1, 4, 4), layers=[("dense", 2), ("readout", 2)])
