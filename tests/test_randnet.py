"""The random network generator: deterministic per seed, and it reaches the corner cases."""

from __future__ import annotations

import numpy as np

from sw import fixedpoint as fx
from sw.randnet import random_artifact, random_inputs


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
