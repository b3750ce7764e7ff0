"""NIR interchange: a bitspike artifact (dense or conv) to and from a NIR graph (docs/nir.md).

    from sw.nir import artifact_to_graph, graph_to_artifact
    graph = artifact_to_graph(load_artifact("artifacts/digits"))
    artifact, report = graph_to_artifact(graph, time_steps=8)

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) is imported lazily: the base
package does not need it (``pip install bitspike[interop]``).

The mapping (docs/nir.md) uses the discretisation ``dt`` = :data:`DT` (1e-4, the one snnTorch
hard-codes) and explicit Euler: NIR's ``τ·dv/dt = (v_leak − v) + R·I`` becomes
``v ← (1 − dt/τ)·v + (dt/τ)·R·I``. A bitspike LIF layer with leak shift k is a NIR ``Affine``
(weights ±1 times ``c_j·2^k``, bias ``B_j·2^(k−F)``: the membrane in units of ``2^−F``, the
current times ``τ/dt``) followed by a ``LIF`` with ``τ = dt·2^k`` and ``R = 1`` (so
``dt/τ = 2^−k`` and ``(dt/τ)·R·I`` is the integer model's current),
``v_leak = 0``, ``v_reset = 0`` and ``v_threshold = (Θ_j − ½)·2^−F`` (bitspike fires on
``h ≥ Θ``, NIR on ``v > v_threshold``; for an integer membrane the two agree). A layer without
leak is a NIR ``IF`` with ``R = 1/dt``. The readout is an ``Affine`` with weights ±``A_j`` and
bias ``C_j/T`` (the class score is the output summed over the T steps). Every scalar is stored
per neuron, as NIR requires, and every node's ``metadata`` holds bitspike's integers, so a graph
this module wrote comes back byte-identical.

A conv layer is a ``Conv2d`` (the ±1 kernel times the folded scale of each output channel)
and a ``LIF``/``IF`` over its whole output map, every parameter expanded from its channel; a
spike OR pool is a ``SumPool2d`` (or ``AvgPool2d``) followed by a ``LIF`` with
``v_threshold = 0``, which on binary spikes fires exactly when its window holds one; a dense
layer after a map gets a ``Flatten`` and its weight columns permuted from bitspike's element
order to NIR's channel-major flatten (every order asked of :mod:`sw.geometry`).

A graph from another library is mapped with the same equations, backwards: weights must be
``±c_j`` per output neuron (or conv channel), ``v_leak = 0``, ``v_reset = 0`` (hard reset),
``1 − dt/τ = 1 − 2^−k`` with one k per layer, conv parameters the same at every position of a
channel, a pool followed by a threshold that makes it an OR. Anything else is refused with
:class:`NIRError`, naming the node.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DT", "NIRError", "ImportReport", "GraphRun", "artifact_to_graph",
           "graph_to_artifact", "write_graph", "read_graph", "read_graph_dict",
           "graph_from_dict", "run_graph", "simulate_graph"]

#: The time step of the discretisation (snnTorch's ``export_to_nir`` hard-codes 1e-4).
DT = 1e-4
#: The tag in the graph's metadata of a graph bitspike wrote.
FORMAT = "bitspike-nir"
FORMAT_VERSION = 1
#: The largest fractional bits an import tries before it gives up on an exact mapping.
MAX_FRAC = 40
#: Relative tolerance when reading ``dt/τ`` as ``2^−k`` (a float32 exporter's round-off).
LEAK_RTOL = 1e-6
#: The pooling nodes an export may write for a spike OR pool (each followed by a LIF with
#: ``v_threshold = 0``); SumPool2d is Norse's, AvgPool2d snnTorch's.
POOL_NODES = ("sum", "avg")
#: τ of the OR node after a pool, in units of dt (dt/τ = 1: the membrane holds no memory; with
#: ``v_threshold = 0`` any τ > 0 gives the OR, docs/nir.md).
OR_TAU = 1.0


class NIRError(ValueError):
    """A NIR graph (or an artifact for export) that the mapping cannot represent.

    ``node`` names the NIR node (or the artifact layer); the message says why.
    """

    def __init__(self, message: str, node: str | None = None):
        self.node = node
        super().__init__(f"node {node!r}: {message}" if node is not None else message)


def _nir():
    try:
        import nir
    except ImportError:
        raise NIRError("the NIR commands need the 'nir' package: "
                       "pip install 'bitspike[interop]'") from None
    return nir


# ----------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------

def _signs(bits: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(bits) == 1, 1.0, -1.0)


def _ints(a) -> list[int]:
    return [int(v) for v in np.asarray(a).ravel()]


def _hex(layer) -> str:
    """The weight bits as the artifact's hex lines (JSON): the rows of a neuron without inputs
    (``connected = 0``, readout ``scale = 0``) are zero in the float weights."""
    from sw.artifact import weights_to_hex_lines

    return json.dumps(weights_to_hex_lines(layer.weights))


def _meta_bits(meta, name, bits, c):
    """The weight bits recorded in the metadata, checked against the signs of the rows with
    a non-zero scale; they give the bits of the zero rows."""
    from sw.artifact import ArtifactError, weights_from_hex_lines

    try:
        lines = json.loads(_meta_str(meta, "bitspike_weights", name))
        recorded = weights_from_hex_lines(lines, bits.shape[0], bits.shape[1])
    except (ValueError, TypeError, ArtifactError):
        raise NIRError("bitspike metadata bitspike_weights is not the layer's weight bits",
                       node=name) from None
    live = c != 0
    if not np.array_equal(recorded[live], bits[live]):
        raise NIRError("the node's weights disagree with the bitspike weight bits recorded in "
                       "its metadata (edited after export?)", node=name)
    return recorded.astype(np.uint8)


def artifact_to_graph(artifact, *, dt: float = DT, unit_threshold: bool = False,
                      pool: str = "sum"):
    """The NIR graph of an artifact (docs/nir.md, "Export").

    A dense LIF layer is an ``Affine`` and a ``LIF``/``IF``; a conv layer a ``Conv2d`` (its
    ±1 kernel, :func:`_kernel`, times the folded scale per output channel) and a
    ``LIF``/``IF`` over its whole ``(C_out, H_out, W_out)`` output, every parameter expanded
    from its channel; a spike pool a ``SumPool2d`` (``pool="avg"``: ``AvgPool2d``, which
    snnTorch's importer takes) of k×k windows at stride k followed by a ``LIF`` with
    ``v_threshold = 0`` (:data:`OR_TAU` = dt, ``R = 1``, ``v_reset = 0``): on binary
    spikes it fires exactly when a window holds a spike, the OR; a dense layer after a map
    gets a ``Flatten`` and its weight columns permuted from bitspike's element order to the
    channel-major order NIR's (PyTorch's) flatten gives (:func:`_flatten_order`).

    ``unit_threshold``: scale each neuron's membrane by ``1/(Θ_j − ½)`` so that every
    threshold is 1 (weights ``±c_j·2^F/(Θ_j − ½)``, bias ``B_j/(Θ_j − ½)``), for a consumer
    that takes one threshold per layer (snnTorch's ``import_from_nir``); every ``Θ_j`` must be
    at least 1.
    """
    from sw.artifact import ConvLayer, LIFLayer, PoolLayer

    nir = _nir()
    if pool not in POOL_NODES:
        raise NIRError(f"pool must be one of {', '.join(POOL_NODES)}, not {pool!r}")
    T = artifact.time_steps
    shape = tuple(artifact.in_shape) if artifact.in_shape is not None else None
    nodes = {"input": nir.Input(input_type=np.array(shape or [artifact.inputs]))}
    edges = []
    prev = "input"

    def add(name, node):
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    for layer in artifact.layers:
        if isinstance(layer, PoolLayer):
            k = layer.kernel
            cls = nir.SumPool2d if pool == "sum" else nir.AvgPool2d
            node = cls(kernel_size=np.array([k, k]), stride=np.array([k, k]),
                       padding=np.array([0, 0]))
            node.metadata = {"bitspike_layer": layer.name, "bitspike_kind": "pool"}
            add(layer.name, node)
            out = layer.out_shape
            neuron = nir.LIF(tau=np.full(out, dt * OR_TAU), r=np.ones(out),
                             v_leak=np.zeros(out), v_threshold=np.zeros(out),
                             v_reset=np.zeros(out))
            neuron.metadata = {"bitspike_layer": layer.name, "bitspike_kind": "pool_or"}
            add(f"{layer.name}_or", neuron)
            shape = out
            continue
        if any(g != 1 for g in layer.step_gain):
            raise NIRError(f"step gains {list(layer.step_gain)} vary over time, which a NIR "
                           f"graph cannot express", node=layer.name)
        signs = _signs(layer.weights)
        conv = isinstance(layer, ConvLayer)
        if not conv and shape is not None:
            # NIR (like PyTorch) flattens channel-major; bitspike's dense inputs are the map in
            # its element order: column j of the NIR weights is bitspike input order[j]
            fl = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            add(f"{layer.name}_flatten", fl)
            signs = signs[:, _flatten_order(shape)]
            shape = None
        if isinstance(layer, (LIFLayer, ConvLayer)):
            F = layer.membrane.frac
            if unit_threshold and (layer.threshold < 1).any():
                j = int(np.flatnonzero(layer.threshold < 1)[0])
                raise NIRError(f"{'channel' if conv else 'neuron'} {j} has threshold "
                               f"{int(layer.threshold[j])} < 1, which cannot be scaled to 1 "
                               f"(export without --unit-threshold)", node=layer.name)
            weight, bias, thr = _lif_floats(layer.connected, layer.bias, layer.threshold, F,
                                            unit_threshold)
            # LIF: R = 1 and the current times τ/dt = 2^k, so (dt/τ)·R·I is the integer
            # model's current (Norse's importer ignores R; snnTorch's folds R·dt/τ into θ)
            gain = 1.0 if layer.leak_shift is None else 2.0 ** layer.leak_shift
            scale = weight * gain
            meta = {"bitspike_layer": layer.name, "bitspike_kind": layer.kind,
                    "bitspike_weights": _hex(layer),
                    "bitspike_bias": json.dumps(_ints(layer.bias)),
                    "bitspike_connected": json.dumps(_ints(layer.connected))}
            if conv:
                _, h, w = layer.in_shape
                kern = _kernel(signs, layer.kernel, layer.in_shape[0])
                syn = nir.Conv2d(input_shape=(h, w), weight=kern * scale[:, None, None, None],
                                 stride=(layer.stride, layer.stride),
                                 padding=(layer.padding, layer.padding), dilation=(1, 1),
                                 groups=1, bias=bias * gain)
                out = layer.out_shape
            else:
                syn = nir.Affine(weight=signs * scale[:, None], bias=bias * gain)
                out = (layer.neurons,)
            syn.metadata = meta
            thr = _expand(thr, out)
            if layer.leak_shift is None:
                neuron = nir.IF(r=np.full(out, 1.0 / dt), v_threshold=thr,
                                v_reset=np.zeros(out))
            else:
                k = layer.leak_shift
                neuron = nir.LIF(tau=np.full(out, dt * 2.0 ** k), r=np.ones(out),
                                 v_leak=np.zeros(out), v_threshold=thr, v_reset=np.zeros(out))
            neuron.metadata = {"bitspike_layer": layer.name,
                               "bitspike_threshold": json.dumps(_ints(layer.threshold)),
                               "bitspike_reset": layer.reset,
                               "bitspike_leak_shift": -1 if layer.leak_shift is None
                               else int(layer.leak_shift),
                               "bitspike_frac": int(F),
                               "bitspike_unit_threshold": int(unit_threshold),
                               "bitspike_width": int(layer.membrane.width)}
            add(layer.name, syn)
            add(f"{layer.name}_neuron", neuron)
            shape = out if conv else None
        else:
            weight = signs * layer.scale[:, None].astype(np.float64)
            bias = layer.offset.astype(np.float64) / T
            aff = nir.Affine(weight=weight, bias=bias)
            aff.metadata = {"bitspike_layer": layer.name, "bitspike_kind": "readout",
                            "bitspike_weights": _hex(layer),
                            "bitspike_scale": json.dumps(_ints(layer.scale)),
                            "bitspike_offset": json.dumps(_ints(layer.offset)),
                            "bitspike_score_width": int(layer.score.width)}
            add(layer.name, aff)
    nodes["output"] = nir.Output(output_type=np.array([artifact.classes]))
    edges.append((prev, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    graph.metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "dt": float(dt),
                      "time_steps": int(T), "input_kind": artifact.input.kind,
                      "input_bits": int(artifact.input.bits),
                      "artifact_metadata": json.dumps(artifact.metadata)}
    return graph


def _kernel(rows: np.ndarray, kernel: int, channels: int) -> np.ndarray:
    """A conv layer's weight rows ``(C_out, K·K·C_in)`` (window order) as a kernel
    ``(C_out, C_in, K, K)`` (NIR's and PyTorch's layout): tap ``(c, ky, kx)`` is row bit
    :func:`sw.geometry.window_index`; the inverse of :func:`sw.geometry.conv_weight_rows`."""
    from sw import geometry

    c, ky, kx = np.indices((channels, kernel, kernel))
    return np.asarray(rows)[:, geometry.window_index(ky, kx, c, kernel, channels)]


def _flatten_order(shape) -> np.ndarray:
    """``order[j]``: the element-order index (:func:`sw.geometry.map_index`) of element j of a
    ``(C, H, W)`` map flattened channel-major (``c·H·W + y·W + x``, NIR's ``Flatten`` and
    PyTorch's); the inverse of ``sw.export.element_order_permutation`` (which needs torch)."""
    from sw import geometry

    channels, _, width = shape
    c, y, x = np.indices(tuple(shape))
    return geometry.map_index(y, x, c, width, channels).ravel()


def _expand(per_channel: np.ndarray, shape: tuple) -> np.ndarray:
    """Per-channel (or per-neuron) values as a float array of the node's full output shape
    (NIR stores every neuron parameter per neuron)."""
    v = np.asarray(per_channel, dtype=np.float64)
    return np.broadcast_to(v.reshape(-1, *[1] * (len(shape) - 1)), shape).copy()


def _lif_floats(connected, bias, threshold, frac, unit_threshold):
    """Per neuron (weight scale, bias, threshold) of the float membrane: ``h·2^−F``, or
    ``h/(Θ − ½)`` when ``unit_threshold`` (then every threshold is 1)."""
    theta = np.asarray(threshold, dtype=np.float64) - 0.5
    c = np.asarray(connected, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if unit_threshold:
        return c * 2.0 ** frac / theta, b / theta, np.ones_like(theta)
    unit = 2.0 ** -frac
    return c, b * unit, theta * unit


def write_graph(graph, path) -> Path:
    """``nir.write`` through a temporary sibling, renamed into place (nothing half-written)."""
    from sw.atomic import atomic_path

    nir = _nir()
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(str(tmp), graph)
    return Path(path)


def read_graph(path):
    """``nir.read``, any failure of the file itself as a :class:`NIRError` naming it."""
    return graph_from_dict(read_graph_dict(path), path)


def read_graph_dict(path) -> dict:
    """The graph in a NIR file as nir's plain dict (``nir.serialization.hdf2dict`` of its
    ``node`` group: numpy arrays, scalars and strings), what ``nir.read`` builds the graph from;
    a file that is missing or not HDF5 as a :class:`NIRError` naming it."""
    _nir()
    path = Path(path)
    if not path.is_file():
        raise NIRError(f"{path}: no such file")
    try:
        import h5py
        from nir.serialization import hdf2dict

        with h5py.File(path, "r") as f:
            return hdf2dict(f["node"])
    except Exception as exc:  # h5py raises many types on a malformed file
        raise NIRError(f"{path}: not a readable NIR file ({_first_line(exc)})") from None


def graph_from_dict(data: dict, source):
    """The graph of :func:`read_graph_dict`'s dict, built as ``nir.read`` builds it (without
    its type check: the mapping checks every shape itself and names the node); a failure as a
    :class:`NIRError` naming ``source`` (the file) and the first node nir cannot build."""
    nir = _nir()
    try:
        if "type_check" in data:
            raise ValueError("the graph holds a 'type_check' key, which nir.read refuses")
        # a deep copy: nir's from_dict rewrites the node dicts it is given
        return nir.dict2NIRNode({**copy.deepcopy(data), "type_check": False})
    except Exception as exc:  # nir raises many types on a malformed graph
        raise NIRError(f"{source}: not a readable NIR file ({_first_line(exc)})",
                       node=_unbuildable_node(data)) from None


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"


def _unbuildable_node(data) -> str | None:
    """The first top-level node of a graph dict that nir cannot build on its own (a Conv2d
    whose weight is not 4-d makes ``nir.read`` fail inside the node's constructor), or None."""
    nir = _nir()
    nodes = data.get("nodes") if isinstance(data, dict) else None
    for name, node in (nodes.items() if isinstance(nodes, dict) else ()):
        try:
            nir.dict2NIRNode(copy.deepcopy(node))
        except Exception:
            return str(name)
    return None


# ----------------------------------------------------------------------------------------------
# Import
# ----------------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    """What an import did: ``exact`` is True when the artifact computes exactly the graph's
    equations under the Euler discretisation of docs/nir.md; ``notes`` say where it does not."""

    exact: bool = True
    from_bitspike: bool = False
    frac_bits: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def approximate(self, note: str) -> None:
        self.exact = False
        self.notes.append(note)

    def lines(self) -> list[str]:
        """The report as the commands print it (``nir import``, ``export`` of its checkpoint)."""
        return [f"  mapping   {'exact' if self.exact else 'APPROXIMATE'}"
                f" (fractional bits per layer: {self.frac_bits})",
                *(f"  note      {note}" for note in self.notes)]


def _array(node, name, attr, shape=None):
    value = getattr(node, attr, None)
    if value is None:
        raise NIRError(f"has no {attr}", node=name)
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise NIRError(f"{attr} holds NaN or infinite values", node=name)
    if shape is not None:
        if arr.ndim == 0:
            arr = np.full(shape, float(arr))
        if arr.shape != shape:
            raise NIRError(f"{attr} has shape {arr.shape}, expected {shape}", node=name)
    return arr


def _chain(graph) -> list[str]:
    """The node names from the Input to the Output of a graph that is one chain, else refused."""
    nir = _nir()
    nodes = graph.nodes
    if not isinstance(nodes, dict) or not nodes:
        raise NIRError("the graph has no nodes")
    for a, b in graph.edges:
        for end in (a, b):
            if end not in nodes:
                raise NIRError(f"an edge ({a!r} -> {b!r}) leads to a node that does not exist",
                               node=end)
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    cyclic = _on_cycle(succ)
    if cyclic is not None:
        raise NIRError("the graph has a cycle (recurrent connections are not supported)",
                       node=cyclic)
    for kind in (nir.Input, nir.Output):
        found = sorted(n for n, v in nodes.items() if isinstance(v, kind))
        if len(found) != 1:
            raise NIRError(f"the graph must have one {kind.__name__} node, it has "
                           f"{len(found)} ({', '.join(found)}): a node without "
                           f"{'incoming' if kind is nir.Input else 'outgoing'} edges reads as "
                           f"one", node=found[-1] if found else None)
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    order = [inputs[0]]
    seen = {inputs[0]}
    while order[-1] != outputs[0]:
        here = order[-1]
        if len(succ[here]) != 1:
            raise NIRError(f"has {len(succ[here])} outgoing edges; only a chain of layers "
                           f"(one edge out of every node) is supported", node=here)
        nxt = succ[here][0]
        if nxt in seen:
            raise NIRError("the graph has a cycle (recurrent connections are not supported)",
                           node=nxt)
        if len(pred[nxt]) != 1:
            raise NIRError(f"has {len(pred[nxt])} incoming edges; only a chain of layers is "
                           f"supported", node=nxt)
        order.append(nxt)
        seen.add(nxt)
    if succ[outputs[0]]:
        raise NIRError("the Output node has outgoing edges", node=outputs[0])
    rest = sorted(set(nodes) - seen)
    if rest:
        raise NIRError("is not on the path from the Input to the Output", node=rest[0])
    return order


def _on_cycle(succ: dict) -> str | None:
    """A node on a directed cycle of the graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in sorted(succ):
        if state.get(start):
            continue
        stack = [(start, iter(succ[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return nxt
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return None


_REFUSED = {
    "CubaLIF": "a CubaLIF has a synaptic current (a second state per neuron), which a "
               "bitspike neuron does not have",
    "Delay": "delays are not supported",
    "Conv1d": "1-d convolutions are not supported (bitspike convolutions are 2-d)",
    "LI": "a leaky integrator without spikes is only supported as the readout",
    "I": "an integrator without spikes is only supported as the readout",
    "Integrator": "an integrator without spikes is only supported as the readout",
    "CuBaLI": "a CuBaLI has a synaptic current, which a bitspike neuron does not have",
    "NIRGraph": "nested subgraphs (e.g. recurrent layers) are not supported",
    "Scale": "a separate Scale node is not supported (fold it into the weights)",
    "Threshold": "a separate Threshold node is only supported after a pooling node (the OR)",
}


def _dyadic_bits(values: np.ndarray, limit: int = MAX_FRAC) -> int | None:
    """The smallest f <= limit with every ``values·2^f`` an integer, or None."""
    for f in range(limit + 1):
        scaled = values * 2.0 ** f
        if np.all(scaled == np.round(scaled)) and np.all(np.abs(scaled) < 2.0 ** 53):
            return f
    return None


def _weights(node, name, n_in, binarize=None, order=None):
    """(bits, c, bias) of an Affine/Linear whose rows are ±c_j; refused otherwise, unless
    ``binarize`` (an :class:`ImportReport`) is given: then a row that is not ±c_j becomes
    ``sign(w_ji)·mean_i |w_ji|`` (the scale that minimises the squared error), noted there.
    ``order``: the Affine follows a ``Flatten`` of a map, NIR column j is bitspike input
    ``order[j]`` (:func:`_flatten_order`)."""
    nir = _nir()
    w = _array(node, name, "weight")
    if w.ndim != 2:
        raise NIRError(f"weight has shape {w.shape}, expected (outputs, inputs)", node=name)
    if w.shape[1] != n_in:
        raise NIRError(f"weight takes {w.shape[1]} inputs, the layer before gives {n_in}",
                       node=name)
    m = w.shape[0]
    bias = _array(node, name, "bias", (m,)) if isinstance(node, nir.Affine) else np.zeros(m)
    if order is not None:
        ours = np.empty_like(w)
        ours[:, order] = w
        w = ours
    bits, c = _binary_rows(w, name, "output", binarize)
    return bits, c, bias


def _binary_rows(w, name, what, binarize):
    """(bits, c) of weight rows that are ±c_j (see :func:`_weights`)."""
    m = w.shape[0]
    c = np.abs(w).max(axis=1)
    bad = np.flatnonzero((np.abs(w) != c[:, None]).any(axis=1))
    if bad.size and binarize is None:
        j = int(bad[0])
        raise NIRError(f"weights of {what} {j} are not ±c (binary) but take "
                       f"{np.unique(np.abs(w[j])).size} magnitudes; bitspike layers have binary "
                       f"weights (--binarize binarizes them, approximately)", node=name)
    if bad.size:
        c = c.copy()
        c[bad] = np.abs(w[bad]).mean(axis=1)
        binarize.approximate(f"{name}: {bad.size} of {m} rows binarized to ±mean|w|")
    bits = (w > 0).astype(np.uint8)
    bits[c == 0] = 1
    return bits, c


def _pair(node, name, attr, default=None):
    """An int or an (h, w) pair of a Conv2d/pool node as a 2-tuple of ints."""
    value = getattr(node, attr, default)
    if value is None:
        raise NIRError(f"has no {attr}", node=name)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size not in (1, 2) or not (
            np.isfinite(arr).all() and np.all(arr == np.round(arr))):
        raise NIRError(f"{attr} must be an int or a pair of ints, not {value!r}", node=name)
    v = [int(x) for x in np.broadcast_to(arr.ravel(), (2,))]
    return v[0], v[1]


def _conv(node, name, shape, binarize):
    """(geometry kwargs, bits, c, bias) of a Conv2d the artifact can hold, else refused:
    square odd kernel in :data:`sw.geometry.KERNELS`, the same stride and padding in both
    directions (stride in :data:`sw.geometry.STRIDES`), no dilation, one group, weights ±c_o
    per output channel."""
    from sw import geometry

    w = _array(node, name, "weight")
    c_in, h, wd = shape
    if w.ndim != 4:
        raise NIRError(f"weight has shape {w.shape}, expected (C_out, C_in, K, K)", node=name)
    c_out, wc, kh, kw = w.shape
    if kh != kw:
        raise NIRError(f"the kernel is {kh}x{kw}; bitspike conv kernels are square", node=name)
    if kh not in geometry.KERNELS:
        raise NIRError(f"kernel size {kh}: bitspike conv kernels are "
                       f"{', '.join(map(str, geometry.KERNELS))}", node=name)
    if wc != c_in:
        raise NIRError(f"weight takes {wc} input channels, the layer before gives {c_in}",
                       node=name)
    groups = getattr(node, "groups", 1)
    if groups is None or int(np.asarray(groups)) != 1:
        raise NIRError(f"groups = {groups!r}; only groups = 1 is supported", node=name)
    if _pair(node, name, "dilation", 1) != (1, 1):
        raise NIRError(f"dilation {_pair(node, name, 'dilation', 1)} is not supported (only 1)",
                       node=name)
    sy, sx = _pair(node, name, "stride", 1)
    if sy != sx or sy not in geometry.STRIDES:
        raise NIRError(f"stride ({sy}, {sx}): bitspike conv strides are the same in both "
                       f"directions and one of {', '.join(map(str, geometry.STRIDES))}",
                       node=name)
    padding = getattr(node, "padding", 0)
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SU":
        padding = str(padding.item() if padding.ndim == 0 else padding)
        padding = padding.decode() if isinstance(padding, bytes) else padding
    if isinstance(padding, str):
        if padding == "valid":
            py = px = 0
        elif padding == "same" and sy == 1:
            py = px = (kh - 1) // 2
        else:
            raise NIRError(f"padding {padding!r} with stride {sy} is not supported", node=name)
    else:
        py, px = _pair(node, name, "padding", 0)
    if py != px or not 0 <= py < kh:
        raise NIRError(f"padding ({py}, {px}): bitspike pads the same in both directions, "
                       f"0 <= padding < kernel = {kh}", node=name)
    declared = getattr(node, "input_shape", None)
    if declared is not None and tuple(int(v) for v in np.asarray(declared).ravel()) != (h, wd):
        raise NIRError(f"input_shape {tuple(int(v) for v in np.asarray(declared).ravel())} "
                       f"is not the {h}x{wd} map the layer before gives", node=name)
    bias = _array(node, name, "bias", (c_out,))
    bits, c = _binary_rows(geometry.conv_weight_rows(w), name, "output channel", binarize)
    return dict(in_shape=shape, channels=c_out, kernel=kh, stride=sy, padding=py), bits, c, bias


def _pool(node, name, shape, unit_name, unit, dt):
    """The kernel k of a pooling node followed by the neuron node ``unit`` that together are a
    spike OR pool over k×k windows at stride k, else refused (docs/nir.md, "Pooling")."""
    nir = _nir()
    ky, kx = _pair(node, name, "kernel_size")
    if ky != kx:
        raise NIRError(f"kernel_size ({ky}, {kx}) is not square; a bitspike pool is k x k",
                       node=name)
    stride = getattr(node, "stride", None)
    if stride is not None and _pair(node, name, "stride") != (ky, kx):
        raise NIRError(f"stride {_pair(node, name, 'stride')} differs from the kernel "
                       f"({ky}, {kx}): bitspike pools non-overlapping windows", node=name)
    if getattr(node, "padding", None) is not None and _pair(node, name, "padding") != (0, 0):
        raise NIRError(f"padding {_pair(node, name, 'padding')} is not supported (only 0)",
                       node=name)
    k = ky
    if not 2 <= k <= min(shape[1], shape[2]):
        raise NIRError(f"kernel_size {k}: a bitspike pool has 2 <= k <= min(H, W) = "
                       f"{min(shape[1], shape[2])}", node=name)
    from sw import geometry

    out = (shape[0], geometry.pool_output_size(shape[1], k),
           geometry.pool_output_size(shape[2], k))
    # the smallest non-zero pooled value of binary spikes: 1 (sum) or 1/k² (average)
    smallest = 1.0 if isinstance(node, nir.SumPool2d) else 1.0 / (k * k)
    if unit is None:
        raise NIRError(f"a {type(node).__name__} must be followed by a threshold (a LIF, IF or "
                       f"Threshold node with v_threshold in [0, its smallest non-zero input)) "
                       f"to be a bitspike spike OR pool", node=name)
    _or_unit(unit, unit_name, out, smallest, dt)
    return k


def _or_unit(node, name, shape, smallest, dt):
    """Refuse a neuron node after a pool unless it fires exactly when its input is non-zero:
    ``v_leak = 0``, ``v_reset = 0`` (so the membrane is 0 at every step's start: a spike-free
    window leaves it 0), ``R > 0`` and ``0 <= v_threshold < g·smallest`` with g the input gain
    ``(dt/τ)·R`` (IF: ``dt·R``)."""
    nir = _nir()

    def full(attr):
        return _full(node, name, attr, shape)

    thr = full("threshold") if isinstance(node, nir.Threshold) else full("v_threshold")
    if isinstance(node, nir.Threshold):
        gain = np.ones(shape)
    else:
        if getattr(node, "v_reset", None) is not None and np.any(full("v_reset") != 0):
            raise NIRError("v_reset is not 0: after a pool the node must reset to 0 to be an "
                           "OR of spikes", node=name)
        r = full("r")
        if np.any(r <= 0):
            raise NIRError("r must be positive for the node after a pool to be an OR of "
                           "spikes", node=name)
        if isinstance(node, nir.IF):
            gain = dt * r
        else:
            if np.any(full("v_leak") != 0):
                raise NIRError("v_leak is not 0: after a pool the node must rest at 0 to be an "
                               "OR of spikes", node=name)
            tau = full("tau")
            if np.any(tau <= 0):
                raise NIRError("tau must be positive", node=name)
            gain = dt / tau * r
    bound = gain * smallest
    if np.any(thr < 0) or np.any(thr >= bound):
        raise NIRError(f"v_threshold {float(thr.min()):g} .. {float(thr.max()):g} does not make "
                       f"the pool an OR of spikes: it must be >= 0 and below the input of one "
                       f"spike ({float(bound.min()):g})", node=name)



def _full(node, name, attr, shape):
    """A neuron parameter broadcast to the node's full output ``shape`` (NIR stores one value
    per neuron; a scalar or a per-channel ``(C, 1, 1)`` array is accepted too)."""
    arr = _array(node, name, attr)
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        raise NIRError(f"{attr} has shape {arr.shape}, expected {tuple(shape)}",
                       node=name) from None


def _param(node, name, attr, shape):
    """A neuron parameter per neuron of a dense layer (``shape = (M,)``) or per channel of a
    conv layer (``shape = (C, H, W)``: one value per channel, refused if it varies over the
    channel's positions: bitspike conv parameters are per channel)."""
    if len(shape) == 1:
        return _array(node, name, attr, tuple(shape))
    arr = _full(node, name, attr, shape).reshape(shape[0], -1)
    bad = np.flatnonzero((arr != arr[:, :1]).any(axis=1))
    if bad.size:
        raise NIRError(f"{attr} varies over the positions of channel {int(bad[0])}; a bitspike "
                       f"conv layer has one value per channel", node=name)
    return np.ascontiguousarray(arr[:, 0])


def _leak(node, name, shape, dt):
    """(k or None, input scale (dt/τ)·R, v_threshold) per neuron (dense, ``shape = (M,)``) or
    per channel (conv, ``shape = (C, H, W)``) of a LIF/IF node, refusing what bitspike neurons
    cannot do."""
    nir = _nir()
    m = shape[0]
    v_thr = _param(node, name, "v_threshold", shape)
    v_reset = _param(node, name, "v_reset", shape) if getattr(node, "v_reset", None) \
        is not None else np.zeros(m)
    if np.any(v_reset != 0):
        raise NIRError("v_reset is not 0: a bitspike hard reset sets the membrane to 0",
                       node=name)
    r = _param(node, name, "r", shape)
    if isinstance(node, nir.IF):
        return None, _snap(r * dt), v_thr
    v_leak = _param(node, name, "v_leak", shape)
    if np.any(v_leak != 0):
        raise NIRError("v_leak is not 0: a bitspike neuron leaks towards 0", node=name)
    tau = _param(node, name, "tau", shape)
    if np.any(tau <= 0):
        raise NIRError("tau must be positive", node=name)
    ratio = dt / tau
    k = np.round(-np.log2(ratio))
    if np.any(k < 1) or np.any(np.abs(ratio * 2.0 ** k - 1) > LEAK_RTOL):
        raise NIRError(f"the discretised leak 1 - dt/tau (dt = {dt:g}) is not 1 - 2^-k for an "
                       f"integer k >= 1 (tau = {tau.min():g} .. {tau.max():g})", node=name)
    if np.unique(k).size != 1:
        raise NIRError(f"neurons leak with different shifts k = {sorted(set(_ints(k)))}; a "
                       f"bitspike layer has one", node=name)
    k = int(k[0])
    return k, _snap(2.0 ** -k * r), v_thr


def _snap(x: np.ndarray) -> np.ndarray:
    """Values within :data:`LEAK_RTOL` of a power of two taken as that power: an exporter that
    computes ``τ = dt/(1 − β)`` and ``R = τ/dt`` in float32 (snnTorch's ``export_to_nir``)
    leaves ``(dt/τ)·R`` a few ulps from 1."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2.0 ** np.round(np.log2(np.where(x > 0, x, 1.0)))
        near = (x > 0) & (np.abs(x / p - 1) <= LEAK_RTOL)
    return np.where(near, p, x)


def _meta(node) -> dict:
    meta = getattr(node, "metadata", None)
    return meta if isinstance(meta, dict) else {}


def _meta_ints(meta, key, name, n):
    try:
        values = json.loads(meta[key])
    except (KeyError, TypeError, ValueError):
        raise NIRError(f"bitspike metadata {key} is missing or not JSON", node=name) from None
    if not isinstance(values, list) or len(values) != n or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise NIRError(f"bitspike metadata {key} must be {n} ints", node=name)
    return np.array(values, dtype=np.int64)


def _meta_int(meta, key, name):
    value = meta.get(key)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (np.integer,)):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NIRError(f"bitspike metadata {key} must be an int, not {value!r}", node=name)
    return value


def _meta_str(meta, key, name):
    value = meta.get(key)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
        value = value.decode() if isinstance(value, bytes) else value
    if not isinstance(value, str):
        raise NIRError(f"bitspike metadata {key} must be a string", node=name)
    return value


def _layer_name(name: str, used: set) -> str:
    import re

    base = re.sub(r"[^a-z0-9_]", "_", name.lower())[:28] or "layer"
    if not base[0].isalpha():
        base = "l" + base[:27]
    out, i = base, 1
    while out in used:
        out = f"{base[:26]}_{i}"
        i += 1
    used.add(out)
    return out


def graph_to_artifact(graph, *, time_steps: int | None = None, input_kind: str | None = None,
                      input_bits: int | None = None, dt: float | None = None,
                      binarize: bool = False):
    """An artifact computing the graph (docs/nir.md, "Import"; conv, pool and flatten in
    "Conv, spike OR pool, flatten"), and an
    :class:`ImportReport`. ``time_steps``, ``input_kind``, ``input_bits`` and ``dt`` default to
    what a bitspike-written graph records (T must be given for any other graph: NIR does not
    store it). ``binarize``: weights that are not ±c_j per row are binarized (the report says
    the mapping is approximate) instead of refused. Raises :class:`NIRError`."""
    from sw.artifact import (
        Artifact,
        ArtifactError,
        ConvLayer,
        InputSpec,
        LIFLayer,
        PoolLayer,
        ReadoutLayer,
    )
    from sw.fixedpoint import FixedPoint

    nir = _nir()
    imported = (nir.Affine, nir.Linear, nir.LIF, nir.IF, nir.Conv2d, nir.SumPool2d,
                 nir.AvgPool2d, nir.Flatten, nir.Threshold)
    neurons_kinds = (nir.LIF, nir.IF, nir.Threshold)
    gmeta = _meta(graph)
    ours = _meta_str(gmeta, "format", "graph") == FORMAT if "format" in gmeta else False
    report = ImportReport(from_bitspike=ours)
    if ours:
        T = time_steps or _meta_int(gmeta, "time_steps", "graph")
        input_kind = input_kind or _meta_str(gmeta, "input_kind", "graph")
        input_bits = input_bits or _meta_int(gmeta, "input_bits", "graph")
        dt = dt or float(np.asarray(gmeta.get("dt", DT)))
        try:
            art_meta = json.loads(_meta_str(gmeta, "artifact_metadata", "graph"))
        except ValueError:
            raise NIRError("bitspike metadata artifact_metadata is not JSON",
                           node="graph") from None
    else:
        if time_steps is None:
            raise NIRError("a NIR graph does not record the number of time steps: give it "
                           "(--time-steps T)")
        T = time_steps
        input_kind = input_kind or "spike"
        input_bits = input_bits or (1 if input_kind == "spike" else 8)
        dt = dt or DT
        art_meta = {"source": "nir"}
    try:
        spec = InputSpec(input_kind, input_bits)
    except ArtifactError as exc:
        raise NIRError(f"input: {exc}") from None
    if not isinstance(T, int) or not 1 <= T <= 1024:
        raise NIRError(f"time steps must be an int in 1..1024, not {T!r}")

    order = _chain(graph)
    nodes = graph.nodes
    inp = nodes[order[0]]
    in_shape = [int(v) for v in np.asarray(next(iter(inp.input_type.values()))
                                           if isinstance(inp.input_type, dict)
                                           else inp.input_type).ravel()]
    if len(in_shape) not in (1, 3) or min(in_shape, default=0) < 1:
        raise NIRError(f"input shape {in_shape}: only flat (N,) inputs and (C, H, W) maps are "
                       f"imported", node=order[0])
    body = order[1:-1]
    for name in body:
        kind = type(nodes[name]).__name__
        if kind in _REFUSED and not (kind == "Threshold" and _after_pool(nodes, body, name)):
            raise NIRError(_REFUSED[kind], node=name)
        if not isinstance(nodes[name], imported):
            raise NIRError(f"{kind} nodes are not supported", node=name)
    if not body:
        raise NIRError("the graph has no layers between its Input and Output")
    used: set = set()
    layers = []
    ones = (1,) * T
    # the data between nodes: a (C, H, W) map, or (N,) values with ``order`` set when they
    # are a map flattened by NIR (channel-major)
    shape = tuple(in_shape)
    flat_order = None
    i = 0
    while i < len(body):
        name = body[i]
        node = nodes[name]
        nxt = body[i + 1] if i + 1 < len(body) else None
        unit = nxt if nxt is not None and isinstance(nodes[nxt], neurons_kinds) else None
        spike_in = InputSpec("spike") if layers else spec
        meta = _meta(node)
        if isinstance(node, (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten)) \
                and len(shape) != 3:
            raise NIRError(f"a {type(node).__name__} takes a (C, H, W) feature map, the layer "
                           f"before gives {shape}", node=name)
        if isinstance(node, nir.Flatten):
            start, end = getattr(node, "start_dim", 0), getattr(node, "end_dim", -1)
            if int(np.asarray(start)) != 0 or int(np.asarray(end)) not in (-1, 2):
                raise NIRError(f"start_dim {start}, end_dim {end}: only a Flatten of the whole "
                               f"(C, H, W) map (0, -1) is supported", node=name)
            # after the input map the artifact is dense: its inputs are the sample flattened
            # channel-major, as NIR's Flatten does; after a conv or pool, bitspike's element order
            flat_order = _flatten_order(shape) if layers else None
            shape = (shape[0] * shape[1] * shape[2],)
            i += 1
            continue
        lname = _layer_name(_meta_str(meta, "bitspike_layer", name)
                            if ours and "bitspike_layer" in meta else name, used)
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            if not layers:
                raise NIRError("a pool takes the spikes of a conv layer; it cannot be the first "
                               "layer", node=name)
            k = _pool(node, name, shape, unit, nodes[unit] if unit else None, dt)
            layer = _build(PoolLayer, lname, name, in_shape=shape, kernel=k, time_steps=T)
            layers.append(layer)
            shape = layer.out_shape
            i += 2
            continue
        if isinstance(node, nir.Conv2d):
            if unit is None:
                raise NIRError("a Conv2d must be followed by a LIF or IF node (bitspike conv "
                               "layers spike)", node=name)
            geo, bits, c, bias = _conv(node, name, shape, report if binarize else None)
            out = _conv_out(geo, name)
            kw = _lif_fields(lname, name, unit, nodes[unit], meta, _meta(nodes[unit]), bits, c,
                             bias, out, dt, T, ours, report)
            layer = _build(ConvLayer, lname, name, input=spike_in, time_steps=T,
                           step_gain=ones, **geo, **kw)
            layers.append(layer)
            shape = layer.out_shape
            i += 2
            continue
        if isinstance(node, neurons_kinds):
            raise NIRError("a neuron layer must follow an Affine, Linear or Conv2d node (or a "
                           "pool)", node=name)
        # Affine / Linear
        if len(shape) != 1:
            raise NIRError(f"a dense node after a {shape} feature map needs a Flatten before it",
                           node=name)
        n_in = shape[0]
        bits, c, bias = _weights(node, name, n_in, report if binarize else None, flat_order)
        m = bits.shape[0]
        flat_order = None
        if unit is not None:
            kw = _lif_fields(lname, name, unit, nodes[unit], meta, _meta(nodes[unit]), bits, c,
                             bias, (m,), dt, T, ours, report)
            layers.append(_build(LIFLayer, lname, name, inputs=n_in, neurons=m, input=spike_in,
                                 time_steps=T, step_gain=ones, **kw))
            i += 2
            if i == len(body):
                # the graph's output is the last layer's spikes: a readout that counts them
                # (+1 on the diagonal, -1 elsewhere: score_j = 2·count_j − Σ counts, the same
                # argmax and ties as the spike counts)
                eye = np.eye(m, dtype=np.uint8)
                ro = ReadoutLayer(name=_layer_name("count", used), inputs=m, neurons=m,
                                  input=InputSpec("spike"), time_steps=T, step_gain=ones,
                                  weights=eye, scale=np.ones(m, np.int64),
                                  offset=np.zeros(m, np.int64), score=FixedPoint(62, 0))
                layers.append(ReadoutLayer(**{**_fields(ro), "score": FixedPoint(
                    ro.required_score_width, 0)}))
                report.notes.append(f"the graph ends with spiking neurons ({unit!r}): "
                                    f"the readout counts their spikes")
        else:
            if nxt is not None and isinstance(nodes[nxt], (nir.SumPool2d, nir.AvgPool2d,
                                                            nir.Conv2d, nir.Flatten)):
                what = "pooling node" if not isinstance(nodes[nxt], (nir.Conv2d, nir.Flatten)) \
                    else "node"
                raise NIRError(f"a {what} ({type(nodes[nxt]).__name__}) takes the (C, H, W) "
                               f"spikes of a conv layer; the dense node {name!r} before it "
                               f"gives {m} values", node=nxt)
            if i != len(body) - 1:
                raise NIRError("two weight layers follow each other without neurons between "
                               "them", node=name)
            layers.append(_readout(lname, name, meta, bits, c, bias, n_in, m, spike_in,
                                   T, ours, report))
            i += 1
        shape = (m,)
    if len(shape) != 1:
        raise NIRError(f"the graph ends with a {shape} feature map; bitspike's readout is dense "
                       f"(add a Flatten and an Affine)", node=body[-1])
    out = nodes[order[-1]]
    out_shape = [int(v) for v in np.asarray(next(iter(out.output_type.values()))
                                            if isinstance(out.output_type, dict)
                                            else out.output_type).ravel()]
    if out_shape and out_shape != [shape[0]]:
        raise NIRError(f"output shape {out_shape}, the last layer gives {shape[0]}",
                       node=order[-1])
    try:
        artifact = Artifact(tuple(layers), metadata=art_meta)
    except ArtifactError as exc:
        raise NIRError(f"the mapped network is not a valid artifact: {exc}") from None
    return artifact, report


def _after_pool(nodes, body, name) -> bool:
    nir = _nir()
    i = body.index(name)
    return i > 0 and isinstance(nodes[body[i - 1]], (nir.SumPool2d, nir.AvgPool2d))


def _conv_out(geo, name):
    """The output map of a conv layer's geometry (:func:`sw.geometry.conv_output_size`),
    refused when the padded input is smaller than the kernel."""
    from sw import geometry

    c, h, w = geo["in_shape"]
    k, s, p = geo["kernel"], geo["stride"], geo["padding"]
    ho, wo = (geometry.conv_output_size(v, k, s, p) for v in (h, w))
    if min(ho, wo) < 1:
        raise NIRError(f"the {h}x{w} map padded by {p} is smaller than the {k}x{k} kernel",
                       node=name)
    return (geo["channels"], ho, wo)


def _build(cls, lname, node, **kw):
    """``cls(name=lname, **kw)``, an artifact error as a :class:`NIRError` naming ``node``;
    a LIF or conv layer at exactly the membrane width its bound needs unless the metadata
    gave one (refused beyond 62 bits)."""
    from sw import fixedpoint as fx
    from sw.artifact import ArtifactError, ConvLayer, LIFLayer
    from sw.fixedpoint import FixedPoint

    try:
        if cls in (LIFLayer, ConvLayer):
            frac = kw.pop("frac")
            width = kw.pop("width", None)
            if width is None:
                width = cls(name=lname, membrane=FixedPoint(fx.MAX_WIDTH, frac),
                            **kw).required_width
            return cls(name=lname, membrane=FixedPoint(width, frac), **kw)
        return cls(name=lname, **kw)
    except ArtifactError as exc:
        raise NIRError(str(exc), node=node) from None


def _lif_fields(lname, syn_name, neuron_name, neuron, smeta, nmeta, bits, c, bias, shape, dt,
                T, ours, report):
    """The LIF fields (weights, bias, threshold, connected, leak, reset, F and the width when
    recorded) of a dense or conv layer: from bitspike's metadata, checked against the floats,
    or mapped from the floats (per neuron, or per channel of a ``(C, H, W)`` output)."""
    k, in_scale, v_thr = _leak(neuron, neuron_name, shape, dt)
    if ours:
        kw = _lif_from_meta(syn_name, neuron_name, smeta, nmeta, bits, c, bias, k, in_scale,
                            v_thr, shape[0])
    else:
        kw = _lif_from_floats(syn_name, neuron_name, bits, c, bias, k, in_scale, v_thr, T,
                              report)
    report.frac_bits.append(kw["frac"])
    return kw


def _fields(layer) -> dict:
    import dataclasses

    return {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if f.init}


def _lif_from_meta(aff_name, neuron_name, ameta, nmeta, bits, c, bias, k, in_scale, v_thr,
                   m):
    """A layer bitspike wrote: its integers from the metadata, checked against the floats."""
    bits = _meta_bits(ameta, aff_name, bits, c)
    B = _meta_ints(ameta, "bitspike_bias", aff_name, m)
    conn = _meta_ints(ameta, "bitspike_connected", aff_name, m)
    theta = _meta_ints(nmeta, "bitspike_threshold", neuron_name, m)
    F = _meta_int(nmeta, "bitspike_frac", neuron_name)
    W = _meta_int(nmeta, "bitspike_width", neuron_name)
    reset = _meta_str(nmeta, "bitspike_reset", neuron_name)
    mk = _meta_int(nmeta, "bitspike_leak_shift", neuron_name)
    if (None if mk == -1 else mk) != k:
        raise NIRError(f"bitspike metadata leak shift {mk} disagrees with the node's tau",
                       node=neuron_name)
    unit_thr = _meta_int(nmeta, "bitspike_unit_threshold", neuron_name)
    if not 0 <= F <= 61 or unit_thr not in (0, 1) or (unit_thr and (theta < 1).any()):
        raise NIRError("bitspike metadata bitspike_frac or bitspike_unit_threshold out of "
                       "range", node=neuron_name)
    wc, wb, wt = _lif_floats(conn, B, theta, F, bool(unit_thr))
    gain = 1.0 if k is None else 2.0 ** k
    if not (np.array_equal(c, np.abs(wc) * gain) and np.array_equal(bias, wb * gain)
            and np.array_equal(v_thr, wt) and np.all(in_scale == 1.0 / gain)):
        raise NIRError("the node's parameters disagree with the bitspike integers recorded in "
                       "its metadata (edited after export?)", node=aff_name)
    return dict(frac=F, width=W, leak_shift=k, reset=reset, weights=bits, bias=B,
                threshold=theta, connected=conn)


def _lif_from_floats(aff_name, neuron_name, bits, c, bias, k, in_scale, v_thr, T, report):
    """A layer of another library: membrane unit ``e_j = c_j·(dt/τ)·R`` per neuron (or conv
    channel; the layer's largest for one without inputs), F chosen so the integer model is the
    float model times ``2^F/e_j`` exactly whenever the floats allow it."""
    from sw.fixedpoint import round_half_up

    e = c * in_scale
    conn = (e != 0).astype(np.int64)
    ref = float(np.abs(e).max()) if np.any(e != 0) else 1.0
    unit = np.where(e != 0, np.abs(e), ref)
    if np.any(e < 0):
        raise NIRError("a negative input scale r·dt/tau", node=neuron_name)
    rel_b = bias * in_scale / unit  # the bias enters with the input: (dt/τ)·R·(c·x + b)
    fb = _dyadic_bits(rel_b)
    lk = 0 if k is None else k
    exact = fb is not None
    if exact:
        F = fb + lk * (T - 1)
    else:
        F = min(MAX_FRAC, 16 + lk * (T - 1))
        report.approximate(f"{aff_name}: bias/scale is not a dyadic fraction; biases rounded "
                           f"to {F} fractional bits")
    if F > 61:
        F = 61
        report.approximate(f"{neuron_name}: exact leak needs more than 61 fractional bits")
    scaled_b = rel_b * 2.0 ** F
    if exact and np.all(scaled_b == np.round(scaled_b)):
        B = np.round(scaled_b).astype(np.int64)
    else:
        B = np.asarray(round_half_up(scaled_b), dtype=np.int64)
    # fire on v > θ: an integer h fires when h >= floor(θ·2^F/e) + 1
    theta = np.floor(v_thr / unit * 2.0 ** F).astype(np.int64) + 1
    return dict(frac=F, leak_shift=k, reset="hard", weights=bits, bias=B, threshold=theta,
                connected=conn)


def _readout(lname, aff_name, ameta, bits, c, bias, n_in, m, spec, T, ours, report):
    from sw import fixedpoint as fx
    from sw.artifact import ArtifactError, ReadoutLayer
    from sw.fixedpoint import FixedPoint, round_half_up

    if ours:
        A = _meta_ints(ameta, "bitspike_scale", aff_name, m)
        C = _meta_ints(ameta, "bitspike_offset", aff_name, m)
        W = _meta_int(ameta, "bitspike_score_width", aff_name)
        bits = _meta_bits(ameta, aff_name, bits, c)
        if not (np.array_equal(c, A.astype(np.float64))
                and np.array_equal(bias, C.astype(np.float64) / T)):
            raise NIRError("the node's parameters disagree with the bitspike integers recorded "
                           "in its metadata (edited after export?)", node=aff_name)
    else:
        cmax = float(c.max()) if np.any(c) else 1.0
        vals = np.concatenate([c / cmax, T * bias / cmax])
        q = _dyadic_bits(vals, 30)
        if q is None:
            q = 16
            report.approximate(f"{aff_name}: readout scales/offsets rounded to {q} bits")
        A = np.asarray(round_half_up(c / cmax * 2.0 ** q), dtype=np.int64)
        C = np.asarray(round_half_up(T * bias / cmax * 2.0 ** q), dtype=np.int64)
        W = None
    kw = dict(name=lname, inputs=n_in, neurons=m, input=spec, time_steps=T,
              step_gain=(1,) * T, weights=bits, scale=A, offset=C)
    try:
        if W is None:
            W = ReadoutLayer(**kw, score=FixedPoint(fx.MAX_WIDTH, 0)).required_score_width
        return ReadoutLayer(**kw, score=FixedPoint(W, 0))
    except ArtifactError as exc:
        raise NIRError(str(exc), node=aff_name) from None



@dataclass
class GraphRun:
    """What :func:`run_graph` computed: ``spikes[name]`` the spikes ``(B, T, *shape)`` of
    every neuron node (NIR's layout: maps channel-major), ``total`` the output summed over the
    steps ``(B, classes)``."""

    spikes: dict
    total: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """argmax of :attr:`total` (lowest index on ties)."""
        return np.argmax(self.total, axis=1)


def run_graph(graph, x: np.ndarray, time_steps: int, *, dt: float = DT) -> GraphRun:
    """A chain graph (Input, Affine/Linear, Conv2d, SumPool2d/AvgPool2d, Flatten, LIF/IF,
    Threshold, Output) under the Euler discretisation of docs/nir.md, in float64, written from
    the NIR node definitions: per step ``v += dt/τ·(v_leak − v + R·I)`` (LIF) or
    ``v += dt·R·I`` (IF), fire on ``v > v_threshold``, ``v = v_reset``; Conv2d, pooling and
    Flatten as PyTorch computes them on ``(C, H, W)`` maps. ``x``: values given at every step
    (``(B, *input)``), or spikes ``(B, T, *input)``. The float reference ``--binarize`` compares
    the binarized network against."""
    nir = _nir()
    order = _chain(graph)
    inp = graph.nodes[order[0]]
    rank = np.asarray(next(iter(inp.input_type.values())) if isinstance(inp.input_type, dict)
                      else inp.input_type).size
    state: dict = {}
    spikes: dict = {}
    total = 0.0
    x = np.asarray(x, dtype=np.float64)
    for t in range(time_steps):
        h = x if x.ndim == rank + 1 else x[:, t]
        for name in order[1:-1]:
            node = graph.nodes[name]
            if isinstance(node, (nir.Affine, nir.Linear)):
                h = h @ np.asarray(node.weight, dtype=np.float64).T
                if isinstance(node, nir.Affine):
                    h = h + np.asarray(node.bias, dtype=np.float64)
                continue
            if isinstance(node, nir.Conv2d):
                h = _float_conv(h, node, name)
                continue
            if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
                ky, kx = _pair(node, name, "kernel_size")
                sy, sx = _pair(node, name, "stride")
                if (sy, sx) != (ky, kx) or _pair(node, name, "padding") != (0, 0):
                    raise NIRError("only non-overlapping pools without padding are simulated",
                                   node=name)
                b, c, hh, ww = h.shape
                hh, ww = hh // ky, ww // kx
                h = h[:, :, :hh * ky, :ww * kx].reshape(b, c, hh, ky, ww, kx).sum(axis=(3, 5))
                if isinstance(node, nir.AvgPool2d):
                    h = h / (ky * kx)
                continue
            if isinstance(node, nir.Flatten):
                h = h.reshape(h.shape[0], -1)
                continue
            if isinstance(node, nir.Threshold):
                s = h > np.asarray(node.threshold, dtype=np.float64)
            else:
                v = state.get(name, np.zeros_like(h))
                if isinstance(node, nir.LIF):
                    v = v + dt / node.tau * (node.v_leak - v + node.r * h)
                elif isinstance(node, nir.IF):
                    v = v + dt * node.r * h
                else:
                    raise NIRError(f"{type(node).__name__} nodes are not simulated", node=name)
                s = v > node.v_threshold
                reset = node.v_reset if node.v_reset is not None else 0.0
                state[name] = np.where(s, reset, v)
            spikes.setdefault(name, []).append(s)
            h = s.astype(np.float64)
        total = total + h
    return GraphRun({k: np.stack(v, axis=1) for k, v in spikes.items()},
                    np.asarray(total, dtype=np.float64))


def _float_conv(h: np.ndarray, node, name) -> np.ndarray:
    """PyTorch's ``conv2d`` of a ``(B, C, H, W)`` batch in float64 (cross-correlation, zero
    padding), groups 1, no dilation."""
    w = np.asarray(node.weight, dtype=np.float64)
    k = w.shape[-1]
    s, _ = _pair(node, name, "stride", 1)
    padding = node.padding
    if isinstance(padding, str):
        p = 0 if padding == "valid" else (k - 1) // 2
    else:
        p, _ = _pair(node, name, "padding", 0)
    hp = np.pad(h, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(hp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return np.einsum("bcyxij,ocij->boyx", win, w) + np.asarray(
        node.bias, dtype=np.float64)[None, :, None, None]


def simulate_graph(graph, x: np.ndarray, time_steps: int, *, dt: float = DT) -> np.ndarray:
    """The predictions of :func:`run_graph`: the argmax of the output summed over the steps
    (lowest index on ties)."""
    return run_graph(graph, x, time_steps, dt=dt).predictions
