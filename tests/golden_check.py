"""The one comparison of the golden model with the plain reference (tests/reference.py), used
by the dense and the conv tests alike."""

from __future__ import annotations

import numpy as np
from reference import reference_run

from sw.golden import GoldenModel


def assert_matches_reference(artifact, x):
    """Run ``x`` through the golden model (recording) and check every value the reference
    computes, sample by sample: synaptic sums, h, v and spikes of every conv and LIF layer, the
    spikes of every pool layer, the readout's sums, the scores and the prediction. Returns the
    golden result. Trace arrays are (B, T, M), M = the layer's neurons in element order."""
    res = GoldenModel(artifact).run(x, record=True)
    batch, t_steps = len(x), artifact.time_steps
    assert res.scores.shape == (batch, artifact.classes)
    for b in range(batch):
        layers, scores, best = reference_run(artifact, x[b])
        for li, (ref, trace) in enumerate(zip(layers, res.layers, strict=True)):
            layer = artifact.layers[li]
            where = f"sample {b}, layer {li} ({trace.name}, {layer.kind})"
            assert trace.name == layer.name
            if layer.kind == "pool":
                assert trace.spikes.shape == (batch, t_steps, layer.neurons), where
                np.testing.assert_array_equal(trace.spikes[b], np.array(ref["s"]),
                                              err_msg=f"{where}: pooled spikes")
                continue
            assert trace.current.shape == (batch, t_steps, layer.neurons), where
            np.testing.assert_array_equal(trace.current[b], np.array(ref["x"]),
                                          err_msg=f"{where}: synaptic sums")
            if "h" in ref:
                np.testing.assert_array_equal(trace.potential[b], np.array(ref["h"]),
                                              err_msg=f"{where}: potential h")
                np.testing.assert_array_equal(trace.membrane[b], np.array(ref["v"]),
                                              err_msg=f"{where}: membrane v")
                np.testing.assert_array_equal(trace.spikes[b], np.array(ref["s"]),
                                              err_msg=f"{where}: spikes")
            else:
                np.testing.assert_array_equal(trace.sums[b], np.array(ref["sums"]),
                                              err_msg=f"{where}: readout sums")
        np.testing.assert_array_equal(res.scores[b], np.array(scores), err_msg=f"sample {b}")
        assert res.predictions[b] == best, f"sample {b}: prediction"
    return res
