"""A deliberately simple reference of docs/arithmetic.md: per neuron, per time step, plain ints.

Written from the document, not from the golden model: popcounts of bit-planes for the synaptic
sum, Python's ``>>`` (an arithmetic shift on ints) for the leak, no numpy arithmetic. Slow, and
meant to be.
"""

from __future__ import annotations


def popcount(bits) -> int:
    return sum(1 for b in bits if b)


def synaptic_sum(weight_bits, input_bits) -> int:
    """``2 * popcount(s AND w) - popcount(s)`` for one bit-plane (§2)."""
    both = [s and w for s, w in zip(input_bits, weight_bits, strict=True)]
    return 2 * popcount(both) - popcount(input_bits)


def multibit_sum(weight_bits, values, bits) -> int:
    """Bit-serial: ``Σ_b 2^b * (2 * popcount(p^b AND w) - popcount(p^b))`` (§2)."""
    total = 0
    for b in range(bits):
        plane = [(int(v) >> b) & 1 for v in values]
        total += (1 << b) * synaptic_sum(weight_bits, plane)
    return total


def leak(v: int, k) -> int:
    return v if k is None else v - (v >> k)


def reference_run(artifact, sample):
    """Run one sample. Returns (per-layer list of dicts with h, v, s, x lists [t][j]), scores."""
    t_steps = artifact.time_steps
    layers_out = []
    if artifact.input.kind == "multibit":
        values = [int(p) for p in sample]
        frames = None
    else:
        frames = [[int(s) for s in frame] for frame in sample]
    for li, layer in enumerate(artifact.layers):
        w = [[int(b) for b in row] for row in layer.weights]
        xs = []
        for t in range(t_steps):
            row = []
            for j in range(layer.neurons):
                if li == 0 and frames is None:
                    row.append(multibit_sum(w[j], values, layer.input.bits))
                else:
                    row.append(synaptic_sum(w[j], frames[t]))
            xs.append(row)
        if layer.kind == "lif":
            f = layer.membrane.frac
            v = [0] * layer.neurons
            hs, vs, ss = [], [], []
            for t in range(t_steps):
                g = layer.step_gain[t]
                h_row, v_row, s_row = [], [], []
                for j in range(layer.neurons):
                    current = g * (int(layer.connected[j]) * (xs[t][j] << f) + int(layer.bias[j]))
                    h = leak(v[j], layer.leak_shift) + current
                    s = 1 if h >= int(layer.threshold[j]) else 0
                    if layer.reset == "hard":
                        v[j] = 0 if s else h
                    else:
                        v[j] = h - int(layer.threshold[j]) if s else h
                    h_row.append(h)
                    v_row.append(v[j])
                    s_row.append(s)
                hs.append(h_row)
                vs.append(v_row)
                ss.append(s_row)
            layers_out.append({"x": xs, "h": hs, "v": vs, "s": ss})
            frames = ss
        else:
            sums = [sum(layer.step_gain[t] * xs[t][j] for t in range(t_steps))
                    for j in range(layer.neurons)]
            scores = [int(layer.scale[j]) * sums[j] + int(layer.offset[j])
                      for j in range(layer.neurons)]
            best = 0
            for j in range(1, layer.neurons):
                if scores[j] > scores[best]:
                    best = j
            layers_out.append({"x": xs, "sums": sums})
            return layers_out, scores, best
    raise AssertionError("an artifact always ends with a readout")
