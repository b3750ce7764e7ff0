"""A deliberately simple reference of docs/arithmetic.md: per neuron, per time step, plain ints.

Written from the document, not from the golden model: popcounts of bit-planes for the synaptic
sum, Python's ``>>`` (an arithmetic shift on ints) for the leak, no numpy arithmetic. Slow, and
meant to be.

Convolution (the rules of ``sw/geometry.py``, docs/arithmetic.md §9), written out here with
their own index arithmetic rather than taken from ``sw.geometry``:

* every map travels between layers as one flat list per time step in the **element order**,
  pixel-major and channel-minor: element ``(c, y, x)`` of a ``(C, H, W)`` map is at
  ``(y·W + x)·C + c``; a dense layer after a conv or pool layer takes that list as its N inputs;
* output ``(o, y, x)`` of a conv layer is the LIF neuron ``j = (y·W_out + x)·C_out + o`` with
  the parameters of channel o; its window holds, at ``(ky·K + kx)·C_in + c``, the input pixel
  ``(y·S − P + ky, x·S − P + kx)`` of channel c, or 0 (zero padding) where that is off the map;
* ``H_out = (H + 2P − K) // S + 1``; a k×k pool has ``H_out = H // k`` and its output is the OR
  of the k·k spikes of its window (the last ``H mod k`` rows and columns are not read).
"""

from __future__ import annotations

#: The input value of a padded position (zero padding). A test of the tests changes it.
PADDING_VALUE = 0


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


def flatten_map(m, channels, height, width) -> list:
    """A ``[c][y][x]`` map (the datasets' channel-first layout) as one list in element order."""
    flat = [0] * (channels * height * width)
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                flat[(y * width + x) * channels + c] = int(m[c][y][x])
    return flat


def conv_out_size(size, kernel, stride, padding) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def window_values(layer, inp, y, x) -> list:
    """The ``K·K·C_in`` inputs of output position (y, x), in weight-row order; off the map an
    input is :data:`PADDING_VALUE` (0)."""
    c_in, h, w = layer.in_shape
    k, s, p = layer.kernel, layer.stride, layer.padding
    window = [None] * (k * k * c_in)
    for ky in range(k):
        for kx in range(k):
            iy = y * s - p + ky
            ix = x * s - p + kx
            inside = 0 <= iy < h and 0 <= ix < w
            for c in range(c_in):
                value = inp[(iy * w + ix) * c_in + c] if inside else PADDING_VALUE
                window[(ky * k + kx) * c_in + c] = value
    return window


def conv_sums(layer, weights, inp, bits) -> list:
    """Synaptic sums of a conv layer over one input list (spikes, or values when ``bits``),
    one per neuron in element order."""
    c_in, h, w = layer.in_shape
    c_out = layer.channels
    h_out = conv_out_size(h, layer.kernel, layer.stride, layer.padding)
    w_out = conv_out_size(w, layer.kernel, layer.stride, layer.padding)
    row = [None] * (c_out * h_out * w_out)
    for y in range(h_out):
        for x in range(w_out):
            window = window_values(layer, inp, y, x)
            for o in range(c_out):
                if bits is None:
                    total = synaptic_sum(weights[o], window)
                else:
                    total = multibit_sum(weights[o], window, bits)
                row[(y * w_out + x) * c_out + o] = total
    return row


def dense_sums(layer, weights, inp, bits) -> list:
    if bits is None:
        return [synaptic_sum(weights[j], inp) for j in range(layer.neurons)]
    return [multibit_sum(weights[j], inp, bits) for j in range(layer.neurons)]


def pool_spikes(layer, inp) -> list:
    """OR over each non-overlapping k×k window, per channel, in element order."""
    c, h, w = layer.in_shape
    k = layer.kernel
    h_out, w_out = h // k, w // k
    out = [None] * (c * h_out * w_out)
    for ch in range(c):
        for y in range(h_out):
            for x in range(w_out):
                fired = 0
                for dy in range(k):
                    for dx in range(k):
                        if inp[((y * k + dy) * w + (x * k + dx)) * c + ch]:
                            fired = 1
                out[(y * w_out + x) * c + ch] = fired
    return out


def lif_run(layer, xs, channels=None) -> dict:
    """The LIF update (§4) of every neuron j with the parameters of its row: row j for a dense
    layer; for a conv layer (``channels`` = C_out) the neuron's output channel, ``j mod C_out``
    in the element order."""
    t_steps = layer.time_steps
    m = len(xs[0])
    f = layer.membrane.frac
    v = [0] * m
    hs, vs, ss = [], [], []
    for t in range(t_steps):
        g = layer.step_gain[t]
        h_row, v_row, s_row = [], [], []
        for j in range(m):
            r = j if channels is None else j % channels
            theta = int(layer.threshold[r])
            current = g * (int(layer.connected[r]) * (xs[t][j] << f) + int(layer.bias[r]))
            h = leak(v[j], layer.leak_shift) + current
            s = 1 if h >= theta else 0
            if layer.reset == "hard":
                v[j] = 0 if s else h
            else:
                v[j] = h - theta if s else h
            h_row.append(h)
            v_row.append(v[j])
            s_row.append(s)
        hs.append(h_row)
        vs.append(v_row)
        ss.append(s_row)
    return {"x": xs, "h": hs, "v": vs, "s": ss}


def reference_run(artifact, sample):
    """Run one sample: ``(N,)`` values or ``(T, N)`` spikes for a dense network, ``(C, H, W)``
    values or ``(T, C, H, W)`` spikes when the first layer is a conv.

    Returns (per-layer list of dicts, scores, predicted class). A LIF or conv layer's dict holds
    x, h, v, s as lists [t][j], j in element order for a conv layer; a pool layer's holds s
    only; the readout's x and its sums."""
    t_steps = artifact.time_steps
    first = artifact.layers[0]
    multibit = artifact.input.kind == "multibit"
    if first.kind == "conv":
        shape = first.in_shape
        if multibit:
            values = flatten_map(sample, *shape)
        else:
            frames = [flatten_map(sample[t], *shape) for t in range(t_steps)]
    elif multibit:
        values = [int(p) for p in sample]
    else:
        frames = [[int(s) for s in frame] for frame in sample]
    layers_out = []
    for li, layer in enumerate(artifact.layers):
        if layer.kind == "pool":
            ss = [pool_spikes(layer, frames[t]) for t in range(t_steps)]
            layers_out.append({"s": ss})
            frames = ss
            continue
        w = [[int(b) for b in row] for row in layer.weights]
        sums = conv_sums if layer.kind == "conv" else dense_sums
        if li == 0 and multibit:
            once = sums(layer, w, values, layer.input.bits)  # direct encoding: once per sample
            xs = [list(once) for _ in range(t_steps)]
        else:
            xs = [sums(layer, w, frames[t], None) for t in range(t_steps)]
        if layer.kind in ("lif", "conv"):
            out = lif_run(layer, xs, layer.channels if layer.kind == "conv" else None)
            layers_out.append(out)
            frames = out["s"]
        else:
            totals = [sum(layer.step_gain[t] * xs[t][j] for t in range(t_steps))
                      for j in range(layer.neurons)]
            scores = [int(layer.scale[j]) * totals[j] + int(layer.offset[j])
                      for j in range(layer.neurons)]
            best = 0
            for j in range(1, layer.neurons):
                if scores[j] > scores[best]:
                    best = j
            layers_out.append({"x": xs, "sums": totals})
            return layers_out, scores, best
    raise AssertionError("an artifact always ends with a readout")
