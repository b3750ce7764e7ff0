"""NIR interchange without any other library (docs/nir.md): the exact round trip bitspike ->
NIR -> bitspike, the export's float equations against the golden model, and the refusals of
malformed or unrepresentable graphs (one line naming the node, nothing written)."""

from __future__ import annotations

import os

import nir
import numpy as np
import pytest
from nir_check import files, import_both_ways

from bitspike import cli
from sw import geometry
from sw.artifact import Artifact, PoolLayer, load_artifact, write_artifact
from sw.golden import GoldenModel
from sw.nir import (
    DT,
    NIRError,
    _flatten_order,
    _kernel,
    artifact_to_graph,
    graph_to_artifact,
    read_graph,
    read_graph_dict,
    run_graph,
    simulate_graph,
    write_graph,
)
from sw.randnet import random_artifact, random_conv_artifact, random_inputs


def _unit_ok(a) -> bool:
    return all((layer.threshold >= 1).all() for layer in a.lif_layers
               if not isinstance(layer, PoolLayer))


def test_round_trip_is_byte_identical(tmp_path, seed):
    rng = np.random.default_rng(seed)
    for i in range(12):
        a = random_artifact(rng, step_gain=False)
        # metadata as an export writes it: nested, keys not sorted
        a = Artifact(a.layers, metadata={"source": "test", "training": {"width": 64, "agmm": True},
                                         "float_accuracy": 0.5, "data_root": None})
        unit = bool(rng.integers(2)) and _unit_ok(a)
        write_artifact(a, tmp_path / f"a{i}")
        assert cli.main(["nir", "export", str(tmp_path / f"a{i}"), "-o",
                         str(tmp_path / f"m{i}.nir")] + (["--unit-threshold"] if unit else [])) == 0
        import_both_ways(tmp_path / f"m{i}.nir", tmp_path / f"b{i}")
        assert files(tmp_path / f"a{i}") == files(tmp_path / f"b{i}"), (i, a.summary())


def _euler(graph, x, T):
    """The graph's equations under explicit Euler with dt = DT, in float64, written from the
    NIR node definitions (nir/ir/neuron.py LIF, IF; nir/ir/linear.py Affine): per step
    ``v += dt/τ·(v_leak − v + R·I)`` (LIF) or ``v += dt·R·I`` (IF), fire on ``v > v_thr``, set
    ``v = v_reset``. Returns the spikes of every neuron node and the summed output."""
    order = ["input"]
    succ = dict(graph.edges)
    while order[-1] != "output":
        order.append(succ[order[-1]])
    state, spikes, total = {}, {}, 0.0
    for t in range(T):
        h = x if x.ndim == 2 else x[:, t]
        h = h.astype(np.float64)
        for name in order[1:-1]:
            node = graph.nodes[name]
            if isinstance(node, (nir.Affine, nir.Linear)):
                h = h @ node.weight.T + (node.bias if isinstance(node, nir.Affine) else 0)
                continue
            v = state.get(name, np.zeros_like(h))
            if isinstance(node, nir.LIF):
                v = v + DT / node.tau * (node.v_leak - v + node.r * h)
            else:
                v = v + DT * node.r * h
            s = v > node.v_threshold
            state[name] = np.where(s, node.v_reset, v)
            spikes.setdefault(name, []).append(s)
            h = s.astype(np.float64)
        total = total + h
    return {k: np.stack(v, axis=1) for k, v in spikes.items()}, total


def test_export_equations_match_golden_without_leak(seed):
    """No leak, hard reset: the graph's float equations are the integer model exactly."""
    rng = np.random.default_rng(seed)
    for _ in range(6):
        a = random_artifact(rng, step_gain=False, leak_shift=None, reset="hard",
                            time_steps=int(rng.choice([1, 2, 4, 8])))
        x = random_inputs(a, 64, rng)
        res = GoldenModel(a).run(x)
        for unit in (False, True) if _unit_ok(a) else (False,):
            g = artifact_to_graph(a, unit_threshold=unit)
            spikes, total = _euler(g, x, a.time_steps)
            for layer, s in zip(a.lif_layers, res.spikes, strict=True):
                assert np.array_equal(spikes[f"{layer.name}_neuron"], s.astype(bool)), layer.name
            if not unit:
                # the readout's bias is C_j/T: exact in float when T is a power of two
                assert np.array_equal(np.rint(total).astype(np.int64), res.scores)
                # the float reference of --binarize is the same model
                assert np.array_equal(simulate_graph(g, x, a.time_steps), res.predictions)


def test_import_snaps_float32_time_constants():
    """A LIF whose τ and R were computed in float32 (as an exporter computing τ = dt/(1−β)
    does) maps exactly: dt/τ read as 2^−k and (dt/τ)·R as 1."""
    beta = np.float32(0.75)
    tau = np.full(3, np.float32(DT) / (np.float32(1) - beta), dtype=np.float32)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([2])),
        "fc": nir.Affine(weight=np.array([[1., -1], [2, 2], [-3, 3]]), bias=np.array([1., 0, -3])),
        "lif": nir.LIF(tau=tau, r=(tau / np.float32(DT)).astype(np.float32),
                       v_leak=np.zeros(3), v_threshold=np.array([2., 3, 1]),
                       v_reset=np.zeros(3)),
        "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    a, report = graph_to_artifact(g, time_steps=4)
    assert report.exact and a.lif_layers[0].leak_shift == 2
    assert a.lif_layers[0].frac_bits == 2 * 3  # k·(T − 1): the leak's flooring is exact
    assert list(a.lif_layers[0].connected) == [1, 1, 1]


def test_foreign_if_and_linear_graph_imports_exactly(seed):
    """A graph from elsewhere with IF neurons (R·dt = 1/2: a dyadic input scale), a bias-free
    Linear, per-row scales ±c_j and a spiking last layer: the golden model's spikes and
    predictions equal the graph's Euler equations."""
    rng = np.random.default_rng(seed)
    n, m, k, T = int(rng.integers(2, 20)), int(rng.integers(1, 12)), int(rng.integers(2, 6)), 6
    c1 = rng.choice([1.0, 2.0, 4.0], size=m)
    c2 = rng.choice([0.5, 1.0, 2.0], size=k)
    g = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([n])),
        "fc": nir.Affine(weight=rng.choice([-1.0, 1.0], size=(m, n)) * c1[:, None],
                         bias=rng.integers(-4, 5, size=m).astype(np.float64)),
        "if1": nir.IF(r=np.full(m, 0.5 / DT), v_threshold=rng.integers(0, 6, size=m) + 0.5,
                      v_reset=np.zeros(m)),
        "lin": nir.Linear(weight=rng.choice([-1.0, 1.0], size=(k, m)) * c2[:, None]),
        "if2": nir.IF(r=np.full(k, 1 / DT), v_threshold=rng.integers(0, 4, size=k).astype(float),
                      v_reset=np.zeros(k)),
        "output": nir.Output(output_type=np.array([k]))},
        edges=[("input", "fc"), ("fc", "if1"), ("if1", "lin"), ("lin", "if2"),
               ("if2", "output")])
    a, report = graph_to_artifact(g, time_steps=T)
    assert report.exact, report.notes
    x = (rng.random((200, T, n)) < 0.5).astype(np.int64)
    res = GoldenModel(a).run(x)
    spikes, _ = _euler(g, x, T)
    assert np.array_equal(res.spikes[0].astype(bool), spikes["if1"])
    assert np.array_equal(res.spikes[1].astype(bool), spikes["if2"])
    counts = spikes["if2"].sum(axis=1)
    assert np.array_equal(res.predictions, counts.argmax(axis=1))


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

def _graph(**over):
    nodes = {
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Affine(weight=np.array([[1., -1, 1], [-2, 2, 2]]), bias=np.array([0., 1])),
        "lif": nir.LIF(tau=np.full(2, 2 * DT), r=np.full(2, 2.0), v_leak=np.zeros(2),
                       v_threshold=np.array([1., 2]), v_reset=np.zeros(2)),
        "out": nir.Affine(weight=np.array([[1., 1], [-1, 1]]), bias=np.zeros(2)),
        "output": nir.Output(output_type=np.array([2])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "out"), ("out", "output")]
    nodes.update(over.pop("nodes", {}))
    edges = over.pop("edges", edges)
    g = nir.NIRGraph.__new__(nir.NIRGraph)  # no type inference: malformed graphs too
    g.nodes, g.edges, g.metadata = nodes, edges, {}
    g.input_type, g.output_type = {"input": np.array([3])}, {"output": np.array([2])}
    return g


def _bad_lif(**kw):
    lif = nir.LIF(tau=np.full(2, 2 * DT), r=np.full(2, 2.0), v_leak=np.zeros(2),
                  v_threshold=np.array([1., 2]), v_reset=np.zeros(2))
    for k, v in kw.items():
        setattr(lif, k, v)
    return lif


REFUSALS = [
    ("edge to nowhere", dict(edges=[("input", "fc"), ("fc", "lif"), ("lif", "ghost"),
                                    ("out", "output")]), "ghost", "does not exist"),
    ("missing output", dict(edges=[("input", "fc"), ("fc", "lif"), ("lif", "out")]),
     "out", "outgoing edges"),
    ("cycle", dict(edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc"), ("lif", "out"),
                          ("out", "output")]), "fc", "cycle"),
    ("loop back", dict(edges=[("input", "fc"), ("fc", "lif"), ("lif", "out"),
                              ("out", "fc")]), "fc", "cycle"),
    ("wrong shape", dict(nodes={"out": nir.Affine(weight=np.ones((2, 5)), bias=np.zeros(2))}),
     "out", "takes 5 inputs"),
    ("NaN weight", dict(nodes={"fc": nir.Affine(weight=np.array([[1., np.nan, 1], [1, 1, 1]]),
                                               bias=np.zeros(2))}), "fc", "NaN"),
    ("NaN threshold", dict(nodes={"lif": _bad_lif(v_threshold=np.array([np.nan, 1.]))}),
     "lif", "NaN"),
    ("v_leak", dict(nodes={"lif": _bad_lif(v_leak=np.array([0., 0.5]))}), "lif", "v_leak"),
    ("v_reset", dict(nodes={"lif": _bad_lif(v_reset=np.array([0.25, 0.]))}), "lif",
     "v_reset"),
    ("leak not 2^-k", dict(nodes={"lif": _bad_lif(tau=np.full(2, 3 * DT))}), "lif",
     "not 1 - 2^-k"),
    ("float weights", dict(nodes={"fc": nir.Affine(weight=np.array([[1., -0.5, 1], [2, 2, 2]]),
                                                   bias=np.zeros(2))}), "fc", "not ±c"),
    ("CubaLIF", dict(nodes={"lif": nir.CubaLIF(
        tau_syn=np.full(2, 2 * DT), tau_mem=np.full(2, 2 * DT), r=np.full(2, 2.0),
        v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.zeros(2))}),
     "lif", "synaptic current"),
    ("Delay", dict(nodes={"lif": nir.Delay(delay=np.ones(2))}), "lif", "delays"),
    ("pooling", dict(nodes={"lif": nir.SumPool2d(kernel_size=np.array([2, 2]),
                                                 stride=np.array([2, 2]),
                                                 padding=np.array([0, 0]))}),
     "lif", "pooling"),
]


@pytest.mark.parametrize("case, over, node, reason", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_malformed_or_unrepresentable_graph_is_refused(tmp_path, capsys, case, over, node,
                                                       reason):
    g = _graph(**over)
    with pytest.raises(NIRError) as info:
        graph_to_artifact(g, time_steps=4)
    assert info.value.node == node and reason in str(info.value), str(info.value)
    # through the command (nir.read gives a dangling node an Input or Output of its own: the
    # refusal names that node, so only "a node" is asked for here)
    _refused_by_the_command(tmp_path, capsys, g, 4)


def _refused_by_the_command(tmp_path, capsys, g, time_steps, node=None):
    """``bitspike nir import`` of graph ``g`` (when nir can write it): exit 2, one error line
    naming the node (``node``, or any), nothing written beside the file."""
    path = tmp_path / "g.nir"
    try:
        nir.write(str(path), g)
    except Exception:
        return  # nir cannot even write this graph; the mapping's refusal is checked by the caller
    for out in (["-o", str(tmp_path / "art"), "--export"], ["-o", str(tmp_path / "m.pt")]):
        capsys.readouterr()
        assert cli.main(["nir", "import", str(path), *out, "--time-steps", str(time_steps)]) == 2
        err = capsys.readouterr().err
        named = "node '" if node is None else f"node '{node}'"
        assert err.count("\n") == 1 and err.startswith("error: ") and named in err, err
        assert os.listdir(tmp_path) == ["g.nir"], out


def test_truncated_file_and_missing_time_steps_are_refused(tmp_path, capsys):
    path = tmp_path / "g.nir"
    nir.write(str(path), _graph())
    data = path.read_bytes()
    (tmp_path / "cut.nir").write_bytes(data[:len(data) // 2])
    for export in ([], ["--export"]):
        assert cli.main(["nir", "import", str(tmp_path / "cut.nir"), "-o", str(tmp_path / "a"),
                         "--time-steps", "4", *export]) == 2
        assert "not a readable NIR file" in capsys.readouterr().err
        assert cli.main(["nir", "import", str(path), "-o", str(tmp_path / "a"), *export]) == 2
        assert "--time-steps" in capsys.readouterr().err
        assert not (tmp_path / "a").exists()
    assert cli.main(["nir", "import", str(path), "-o", str(tmp_path / "a"),
                     "--time-steps", "4", "--export"]) == 0
    assert load_artifact(tmp_path / "a").summary() == "3-2-2 T=4 input=spike"


def test_edited_bitspike_graph_is_refused(tmp_path):
    a = random_artifact(5, sizes=[6, 4, 3], step_gain=False)
    g = artifact_to_graph(a)
    name = a.lif_layers[0].name
    g.nodes[name].bias = g.nodes[name].bias + 2.0 ** -30
    with pytest.raises(NIRError, match="disagree with the bitspike integers") as info:
        graph_to_artifact(g)
    assert info.value.node == name


def test_export_refuses_what_nir_cannot_hold(tmp_path, capsys):
    a = random_artifact(3, sizes=[5, 4, 2], step_gain=True, time_steps=4)
    while all(g == 1 for layer in a.layers for g in layer.step_gain):
        a = random_artifact(int(a.layers[0].bias.sum()) & 0xFFFF, sizes=[5, 4, 2],
                            step_gain=True, time_steps=4)
    write_artifact(a, tmp_path / "a")
    assert cli.main(["nir", "export", str(tmp_path / "a"), "-o", str(tmp_path / "m.nir")]) == 2
    err = capsys.readouterr().err
    assert "step gains" in err and err.count("\n") == 1
    assert not (tmp_path / "m.nir").exists() and os.listdir(tmp_path) == ["a"]


def test_read_graph_names_a_missing_file(tmp_path):
    with pytest.raises(NIRError, match="no such file"):
        read_graph(tmp_path / "none.nir")
    write_graph(_graph(), tmp_path / "ok.nir")
    assert sorted(os.listdir(tmp_path)) == ["ok.nir"]


def test_export_says_soft_reset_is_not_portable(tmp_path, capsys):
    a = random_artifact(11, sizes=[6, 4, 3], step_gain=False, reset="soft")
    write_artifact(a, tmp_path / "a")
    assert cli.main(["nir", "export", str(tmp_path / "a"), "-o", str(tmp_path / "m.nir")]) == 0
    out = capsys.readouterr().out
    assert f"soft reset in {a.lif_layers[0].name}: NIR cannot express it" in out
    g = read_graph(tmp_path / "m.nir")
    assert np.all(g.nodes[f"{a.lif_layers[0].name}_neuron"].v_reset == 0)


def test_binarize_reports_the_accuracy_change_and_never_claims_exactness(tmp_path, capsys,
                                                                           seed):
    """A float-weight graph: refused without --binarize; with it, binarized, and the float
    graph's and the artifact's accuracies on the named dataset printed (the artifact's is the
    golden model's)."""
    from sw.cli_artifact import dataset_inputs

    rng = np.random.default_rng(seed)
    a = random_artifact(rng, sizes=[64, 16, 10], input_kind="multibit", input_bits=5,
                        time_steps=4, step_gain=False, leak_shift=1, reset="hard")
    g = artifact_to_graph(a)
    g.metadata = {}  # a graph from elsewhere
    for name in (layer.name for layer in a.layers):
        w = g.nodes[name].weight
        g.nodes[name].weight = w * rng.uniform(0.5, 1.5, size=w.shape)
    path = tmp_path / "float.nir"
    write_graph(g, path)
    base = ["nir", "import", str(path), "-o", str(tmp_path / "b"), "--time-steps", "4",
            "--input", "multibit", "--input-bits", "5", "--export"]
    assert cli.main(base) == 2
    assert "--binarize" in capsys.readouterr().err
    assert cli.main(base + ["--binarize"]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    assert cli.main(base + ["--binarize", "--dataset", "digits", "--limit", "120"]) == 0
    out = capsys.readouterr().out
    assert "mapping   APPROXIMATE" in out and "binarized to ±mean|w|" in out, out
    b = load_artifact(tmp_path / "b")
    x, y = dataset_inputs(b, "digits", "test")
    acc = np.mean(GoldenModel(b).run(x[:120]).predictions == y[:120])
    assert f"bitspike artifact {100 * acc:.2f} %" in out and "(120 samples)" in out, out
    # the checkpoint records --binarize: it folds into the same binarized artifact
    assert cli.main(base[:-1] + ["-o", str(tmp_path / "b.pt"), "--binarize", "--dataset",
                                 "digits", "--limit", "120"]) == 0
    assert "mapping   APPROXIMATE" in capsys.readouterr().out
    assert cli.main(["export", str(tmp_path / "b.pt"), "-o", str(tmp_path / "c")]) == 0
    assert "mapping   APPROXIMATE" in capsys.readouterr().out
    assert files(tmp_path / "b") == files(tmp_path / "c")


# ---------------------------------------------------------------------------------------------
# Conv, spike OR pool and flatten
# ---------------------------------------------------------------------------------------------

#: the digits conv preset's shapes (sw.models.PRESETS["conv"]: 1x8x8 5-bit input, 32, 64, M)
DIGITS_CONV = dict(in_shape=(1, 8, 8), layers=[("conv", 32, 3, 1, 1), ("conv", 64, 3, 1, 1),
                                               ("pool", 2), ("readout", 10)],
                   input_kind="multibit", input_bits=5, time_steps=4, leak_shift=2,
                   reset="hard")


def _map_spikes(run, name):
    """A neuron node's spikes (B, T, C, H, W) in the artifact's element order (B, T, C·H·W)."""
    s = run.spikes[name]
    return geometry.chw_to_hwc(s).reshape(*s.shape[:2], -1) if s.ndim == 5 else s


def _neuron_name(layer):
    return f"{layer.name}_or" if isinstance(layer, PoolLayer) else f"{layer.name}_neuron"


def test_conv_round_trip_is_byte_identical(tmp_path, seed):
    rng = np.random.default_rng(seed)
    cases = [random_conv_artifact(rng, step_gain=False) for _ in range(10)]
    cases.append(random_conv_artifact(rng, step_gain=False, **DIGITS_CONV))
    for i, a in enumerate(cases):
        a = Artifact(a.layers, metadata={"source": "test", "training": {"channels": [32, "M"]}})
        unit = bool(rng.integers(2)) and _unit_ok(a)
        pool = str(rng.choice(["sum", "avg"]))
        write_artifact(a, tmp_path / f"a{i}")
        assert cli.main(["nir", "export", str(tmp_path / f"a{i}"), "-o",
                         str(tmp_path / f"m{i}.nir"), "--pool", pool]
                        + (["--unit-threshold"] if unit else [])) == 0
        import_both_ways(tmp_path / f"m{i}.nir", tmp_path / f"b{i}")
        assert files(tmp_path / f"a{i}") == files(tmp_path / f"b{i}"), (i, a.summary())


def test_conv_export_equations_match_golden_without_leak(seed):
    """No leak, hard reset: the conv graph's float equations (Conv2d, SumPool2d or AvgPool2d
    + the OR node, Flatten with the permuted columns) are the integer model exactly, spike for
    spike in every layer, and the summed readout is the score."""
    rng = np.random.default_rng(seed)
    compared = 0
    for _ in range(8):
        a = random_conv_artifact(rng, step_gain=False, leak_shift=None, reset="hard",
                                 time_steps=int(rng.choice([1, 2, 4, 8])))
        x = random_inputs(a, 48, rng)
        res = GoldenModel(a).run(x)
        for pool in ("sum", "avg"):
            run = run_graph(artifact_to_graph(a, pool=pool), x, a.time_steps)
            for layer, s in zip(a.lif_layers, res.spikes, strict=True):
                got = _map_spikes(run, _neuron_name(layer))
                assert np.array_equal(got, s.astype(bool)), (layer.name, pool, a.summary())
            assert np.array_equal(np.rint(run.total).astype(np.int64), res.scores), a.summary()
            assert np.array_equal(run.predictions, res.predictions)
            compared += x.shape[0]
    assert compared == 8 * 2 * 48


def test_kernel_and_flatten_orders_are_the_geometry_rules():
    """The kernel layout is the inverse of sw.geometry.conv_weight_rows, and the flatten order
    is docs/arithmetic.md §9's worked example: in a 2x2x3 map (C = 2, H = 2, W = 3) element
    (c=1, y=0, x=2) is bitspike index 5 and PyTorch index 8; (c=0, y=1, x=0) is 6 and 3."""
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 2, size=(4, 3 * 3 * 5))
    assert np.array_equal(geometry.conv_weight_rows(_kernel(rows, 3, 5)), rows)
    order = _flatten_order((2, 2, 3))
    assert order[8] == 5 and order[3] == 6 and sorted(order) == list(range(12))
    # the exporter's permutation (sw.export, derived from sw.geometry.chw_to_hwc) is its inverse
    from sw.export import element_order_permutation

    for shape in [(2, 2, 3), (3, 5, 4), (1, 7, 2)]:
        order = _flatten_order(shape)
        assert np.array_equal(order[element_order_permutation(shape)], np.arange(order.size))


def _foreign_conv_graph(rng, pool_node="sum", unit="if"):
    """A conv graph from elsewhere (no bitspike metadata): Conv2d (±c per channel, c a power of
    two, per-channel parameters given as (C, 1, 1) arrays), a pool and its threshold, a second
    conv, Flatten, Affine + IF, Linear."""
    c1, c2, m, k = 3, 2, 5, 4
    s1 = rng.choice([1.0, 2.0], size=c1)
    s2 = rng.choice([1.0, 4.0], size=c2)
    conv1 = nir.Conv2d(input_shape=(6, 6), weight=rng.choice([-1.0, 1], size=(c1, 2, 3, 3))
                       * s1[:, None, None, None], stride=1, padding=1, dilation=1, groups=1,
                       bias=rng.integers(-2, 3, size=c1).astype(float))
    if1 = nir.IF(r=np.full((c1, 1, 1), 1 / DT),
                 v_threshold=rng.integers(0, 5, size=(c1, 1, 1)) + 0.5,
                 v_reset=np.zeros((c1, 1, 1)))
    cls = nir.SumPool2d if pool_node == "sum" else nir.AvgPool2d
    pool = cls(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    small = 1.0 if pool_node == "sum" else 0.25
    if unit == "if":
        orn = nir.IF(r=np.full((c1, 3, 3), 1 / DT), v_threshold=np.full((c1, 3, 3), small / 2),
                     v_reset=np.zeros((c1, 3, 3)))
    elif unit == "lif":
        orn = nir.LIF(tau=np.full((c1, 3, 3), 4 * DT), r=np.full((c1, 3, 3), 4.0),
                      v_leak=np.zeros((c1, 3, 3)), v_threshold=np.zeros((c1, 3, 3)),
                      v_reset=np.zeros((c1, 3, 3)))
    else:
        orn = nir.Threshold(threshold=np.full((c1, 3, 3), small * 0.9))
    conv2 = nir.Conv2d(input_shape=(3, 3), weight=rng.choice([-1.0, 1], size=(c2, c1, 3, 3))
                       * s2[:, None, None, None], stride=2, padding=1, dilation=1, groups=1,
                       bias=np.zeros(c2))
    lif2 = nir.LIF(tau=np.full((c2, 2, 2), 2 * DT), r=np.full((c2, 2, 2), 2.0),
                   v_leak=np.zeros((c2, 2, 2)),
                   v_threshold=np.repeat(rng.integers(1, 4, size=c2).astype(float),
                                         4).reshape(c2, 2, 2),
                   v_reset=np.zeros((c2, 2, 2)))
    nodes = {"input": nir.Input(input_type=np.array([2, 6, 6])), "conv1": conv1, "if1": if1,
             "pool": pool, "or": orn, "conv2": conv2, "lif2": lif2,
             "flat": nir.Flatten(input_type={"input": np.array([c2, 2, 2])}, start_dim=0,
                                 end_dim=-1),
             "fc": nir.Affine(weight=rng.choice([-1.0, 1], size=(m, c2 * 4)),
                              bias=rng.integers(-1, 2, size=m).astype(float)),
             "if3": nir.IF(r=np.full(m, 1 / DT), v_threshold=np.full(m, 0.5),
                           v_reset=np.zeros(m)),
             "lin": nir.Linear(weight=rng.choice([-2.0, 2], size=(k, m))),
             "output": nir.Output(output_type=np.array([k]))}
    names = list(nodes)
    g = nir.NIRGraph.__new__(nir.NIRGraph)
    g.nodes, g.edges, g.metadata = nodes, list(zip(names, names[1:], strict=False)), {}
    g.input_type, g.output_type = {"input": np.array([2, 6, 6])}, {"output": np.array([k])}
    return g


@pytest.mark.parametrize("pool_node, unit", [("sum", "if"), ("avg", "lif"),
                                              ("sum", "threshold")])
def test_foreign_conv_graph_imports_exactly(seed, pool_node, unit):
    rng = np.random.default_rng(seed)
    g = _foreign_conv_graph(rng, pool_node, unit)
    T = 5
    a, report = graph_to_artifact(g, time_steps=T)
    assert report.exact, report.notes
    assert a.summary() == "2x6x6-c3k3-p2-c2k3s2-5-4 T=5 input=spike", a.summary()
    x = (rng.random((200, T, 2, 6, 6)) < 0.3).astype(np.int64)
    res = GoldenModel(a).run(x)
    run = run_graph(g, x, T)
    for layer, name, s in zip(a.lif_layers, ["if1", "or", "lif2", "if3"], res.spikes,
                              strict=True):
        assert np.array_equal(_map_spikes(run, name), s.astype(bool)), (layer.name, seed)
    assert np.array_equal(res.predictions, run.predictions), seed


def _conv_graph(**over):
    """A small valid conv graph (input 1x4x4, conv 2ch k3 p1, IF, SumPool2d 2 + OR, Flatten,
    Affine) with nodes replaced by ``over``."""
    nodes = {
        "input": nir.Input(input_type=np.array([1, 4, 4])),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1,
                           padding=1, dilation=1, groups=1, bias=np.zeros(2)),
        "if": nir.IF(r=np.full((2, 4, 4), 1 / DT), v_threshold=np.full((2, 4, 4), 0.5),
                     v_reset=np.zeros((2, 4, 4))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "or": nir.IF(r=np.full((2, 2, 2), 1 / DT), v_threshold=np.zeros((2, 2, 2)),
                     v_reset=np.zeros((2, 2, 2))),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0,
                            end_dim=-1),
        "fc": nir.Affine(weight=np.ones((3, 8)), bias=np.zeros(3)),
        "output": nir.Output(output_type=np.array([3])),
    }
    for name, node in over.items():
        if node is None:
            del nodes[name]
        else:
            nodes[name] = node
    names = list(nodes)
    g = nir.NIRGraph.__new__(nir.NIRGraph)
    g.nodes, g.edges, g.metadata = nodes, list(zip(names, names[1:], strict=False)), {}
    g.input_type, g.output_type = {"input": np.array([1, 4, 4])}, {"output": np.array([3])}
    return g


def _conv(**kw):
    """The graph's conv node with fields replaced after construction (past nir's own
    normalisation and shape inference: a malformed file holds anything)."""
    node = nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1, padding=1,
                      dilation=1, groups=1, bias=np.zeros(2))
    for k, v in kw.items():
        setattr(node, k, v)
    return node


def _sumpool(k=(2, 2), stride=(2, 2), padding=(0, 0)):
    return nir.SumPool2d(kernel_size=np.array(k), stride=np.array(stride),
                         padding=np.array(padding))


def _or_if(thr=0.0, **kw):
    node = nir.IF(r=np.full((2, 2, 2), 1 / DT), v_threshold=np.full((2, 2, 2), thr),
                  v_reset=np.zeros((2, 2, 2)))
    for k, v in kw.items():
        setattr(node, k, v)
    return node


CONV_REFUSALS = [
    ("non-square kernel", dict(conv=_conv(weight=np.ones((2, 1, 3, 5)))), "conv", "square"),
    ("even kernel", dict(conv=_conv(weight=np.ones((2, 1, 2, 2)))), "conv", "kernel size 2"),
    ("kernel rank", dict(conv=_conv(weight=np.ones((2, 9)))), "conv", "(C_out, C_in, K, K)"),
    ("input channels", dict(conv=_conv(weight=np.ones((2, 3, 3, 3)))), "conv",
     "3 input channels"),
    ("stride 3", dict(conv=_conv(stride=(3, 3))), "conv", "stride (3, 3)"),
    ("uneven stride", dict(conv=_conv(stride=(1, 2))), "conv", "stride (1, 2)"),
    ("uneven padding", dict(conv=_conv(padding=(1, 0))), "conv", "padding (1, 0)"),
    ("padding >= kernel", dict(conv=_conv(padding=(3, 3))), "conv", "padding (3, 3)"),
    ("dilation", dict(conv=_conv(dilation=(2, 2))), "conv", "dilation"),
    ("groups", dict(conv=_conv(weight=np.ones((2, 1, 3, 3)), groups=2)), "conv", "groups"),
    ("float conv weights", dict(conv=_conv(weight=np.arange(18.).reshape(2, 1, 3, 3))),
     "conv", "not ±c"),
    ("NaN conv weight", dict(conv=_conv(weight=np.full((2, 1, 3, 3), np.nan))), "conv", "NaN"),
    ("NaN conv bias", dict(conv=_conv(bias=np.array([0.0, np.inf]))), "conv", "NaN"),
    ("conv without neurons", dict(**{"if": None}), "conv", "followed by a LIF or IF"),
    ("threshold varies in a channel", dict(**{"if": nir.IF(
        r=np.full((2, 4, 4), 1 / DT), v_threshold=np.arange(32.).reshape(2, 4, 4),
        v_reset=np.zeros((2, 4, 4)))}), "if", "varies over the positions of channel 0"),
    ("neuron shape", dict(**{"if": nir.IF(r=np.full((2, 3, 3), 1 / DT),
                                          v_threshold=np.full((2, 3, 3), 0.5),
                                          v_reset=np.zeros((2, 3, 3)))}), "if", "shape"),
    ("NaN map threshold", dict(**{"if": nir.IF(
        r=np.full((2, 4, 4), 1 / DT), v_threshold=np.full((2, 4, 4), np.nan),
        v_reset=np.zeros((2, 4, 4)))}), "if", "NaN"),
    ("non-square pool", dict(pool=_sumpool(k=(2, 1), stride=(2, 1))), "pool", "not square"),
    ("overlapping pool", dict(pool=_sumpool(stride=(1, 1))), "pool", "non-overlapping"),
    ("padded pool", dict(pool=_sumpool(padding=(1, 1))), "pool", "padding"),
    ("pool too big", dict(pool=_sumpool(k=(5, 5), stride=(5, 5))), "pool", "kernel_size 5"),
    ("sum pool without threshold", dict(**{"or": None}), "pool", "followed by a threshold"),
    ("OR threshold too high", dict(**{"or": _or_if(1.0)}), "or", "OR of spikes"),
    ("OR threshold negative", dict(**{"or": _or_if(-0.5)}), "or", "OR of spikes"),
    ("OR reset", dict(**{"or": _or_if(v_reset=np.ones((2, 2, 2)))}), "or", "v_reset"),
    ("avg pool threshold", dict(pool=nir.AvgPool2d(kernel_size=np.array([2, 2]),
                                                   stride=np.array([2, 2]),
                                                   padding=np.array([0, 0])),
                                **{"or": _or_if(0.3 * DT * 1e4)}), "or", "OR of spikes"),
    ("partial flatten", dict(flat=nir.Flatten(input_type={"input": np.array([2, 2, 2])},
                                              start_dim=1, end_dim=-1)), "flat", "start_dim 1"),
    ("dense after map", dict(flat=None), "fc", "needs a Flatten"),
    ("ends with a map", dict(flat=None, fc=None), "or", "ends with a (2, 2, 2) feature map"),
    ("Threshold after conv", dict(**{"if": nir.Threshold(threshold=np.zeros((2, 4, 4)))}),
     "if", "only supported after a pooling node"),
]


@pytest.mark.parametrize("case, over, node, reason", CONV_REFUSALS,
                         ids=[r[0] for r in CONV_REFUSALS])
def test_malformed_conv_graph_is_refused(tmp_path, capsys, case, over, node, reason):
    assert graph_to_artifact(_conv_graph(), time_steps=3)[0].summary() == \
        "1x4x4-c2k3-p2-3 T=3 input=spike"
    g = _conv_graph(**over)
    with pytest.raises(NIRError) as info:
        graph_to_artifact(g, time_steps=3)
    assert info.value.node == node and reason in str(info.value), str(info.value)
    _refused_by_the_command(tmp_path, capsys, g, 3, node)


def test_binarize_a_float_conv_graph_reports_the_accuracy_change(tmp_path, capsys, seed):
    """A conv graph with float kernels (the digits conv shapes, smaller): refused without
    --binarize, binarized with it; the float graph's accuracy is run_graph's (Conv2d, pool,
    Flatten in float64) and the artifact's the golden model's."""
    from sw.cli_artifact import dataset_inputs

    rng = np.random.default_rng(seed)
    a = random_conv_artifact(rng, in_shape=(1, 8, 8), layers=[
        ("conv", 4, 3, 1, 1), ("pool", 2), ("readout", 10)], input_kind="multibit",
        input_bits=5, time_steps=4, step_gain=False, leak_shift=1, reset="hard")
    g = artifact_to_graph(a)
    g.metadata = {}
    w = g.nodes["conv0"].weight
    g.nodes["conv0"].weight = w * rng.uniform(0.5, 1.5, size=w.shape)
    write_graph(g, tmp_path / "f.nir")
    base = ["nir", "import", str(tmp_path / "f.nir"), "-o", str(tmp_path / "b"),
            "--time-steps", "4", "--input", "multibit", "--input-bits", "5", "--export"]
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert "node 'conv0'" in err and "--binarize" in err, err
    assert cli.main(base + ["--binarize", "--dataset", "digits", "--limit", "80"]) == 0
    out = capsys.readouterr().out
    assert "mapping   APPROXIMATE" in out and "conv0: " in out, out
    b = load_artifact(tmp_path / "b")
    assert b.summary() == "1x8x8-c4k3-p2-10 T=4 input=multibit/5b"
    x, y = dataset_inputs(b, "digits", "test")
    acc = np.mean(GoldenModel(b).run(x[:80]).predictions == y[:80])
    fl = np.mean(simulate_graph(g, x[:80], 4) == y[:80])
    assert f"float graph {100 * fl:.2f} %, bitspike artifact {100 * acc:.2f} %" in out, out


def test_flatten_of_the_input_map_gives_a_dense_artifact(seed):
    """Input (C, H, W) -> Flatten -> Affine: a dense artifact whose inputs are the sample
    flattened channel-major (Artifact.shape_inputs, as NIR's Flatten), no permutation."""
    rng = np.random.default_rng(seed)
    m, k, T = 5, 3, 4
    g = nir.NIRGraph.__new__(nir.NIRGraph)
    g.nodes = {"input": nir.Input(input_type=np.array([2, 2, 3])),
               "flat": nir.Flatten(input_type={"input": np.array([2, 2, 3])}, start_dim=0,
                                   end_dim=-1),
               "fc": nir.Affine(weight=rng.choice([-1.0, 1], size=(m, 12)),
                                bias=rng.integers(-1, 2, size=m).astype(float)),
               "if": nir.IF(r=np.full(m, 1 / DT), v_threshold=np.full(m, 0.5),
                            v_reset=np.zeros(m)),
               "out": nir.Affine(weight=rng.choice([-1.0, 1], size=(k, m)), bias=np.zeros(k)),
               "output": nir.Output(output_type=np.array([k]))}
    names = list(g.nodes)
    g.edges, g.metadata = list(zip(names, names[1:], strict=False)), {}
    a, report = graph_to_artifact(g, time_steps=T)
    assert report.exact and a.is_dense and a.summary() == "12-5-3 T=4 input=spike"
    x = (rng.random((200, T, 2, 2, 3)) < 0.5).astype(np.int64)
    res = GoldenModel(a).run(a.shape_inputs(x))
    run = run_graph(g, x, T)
    assert np.array_equal(res.spikes[0].astype(bool), run.spikes["if"]), seed
    assert np.array_equal(np.rint(run.total).astype(np.int64), res.scores), seed


# ---------------------------------------------------------------------------------------------
# The import's checkpoint (sw.nir_checkpoint), which bitspike export folds
# ---------------------------------------------------------------------------------------------

def _same_value(a, b, where="graph"):
    """``a`` and ``b`` equal, with the same types and dtypes, all the way down."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same_value(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    else:
        assert a == b, where


def test_checkpoint_gives_back_the_graph_exactly(tmp_path, seed):
    """The file's graph dict (nir.read's input) comes back from the checkpoint file with every
    value, type and dtype: float32 and float64 arrays, numpy scalars, the edges' strings."""
    import torch

    from sw.nir_checkpoint import decode, encode

    rng = np.random.default_rng(seed)
    g = _foreign_conv_graph(rng, "avg", "threshold")
    g.nodes["conv1"].weight = g.nodes["conv1"].weight.astype(np.float32)
    g.metadata = {"dt": np.float64(DT), "name": "x", "steps": np.int32(3)}
    write_graph(g, tmp_path / "g.nir")
    data = read_graph_dict(tmp_path / "g.nir")
    torch.save(encode(data), tmp_path / "g.pt")
    back = decode(torch.load(tmp_path / "g.pt", weights_only=True))
    _same_value(data, back)
    assert back["nodes"]["conv1"]["weight"].dtype == np.float32
    assert isinstance(back["metadata"]["steps"], np.int32)


def test_foreign_graph_checkpoint_folds_into_the_import_artifact(tmp_path, seed):
    """Graphs from elsewhere with the mapping's options given (time steps, input kind and bits,
    dt): the checkpoint folds into the artifact ``--export`` writes, and that is the mapping of
    the graph ``nir.read`` gives (:func:`graph_to_artifact`)."""
    rng = np.random.default_rng(seed)
    pool, unit = [("sum", "if"), ("avg", "lif"), ("sum", "threshold")][int(rng.integers(3))]
    cases = [(_foreign_conv_graph(rng, pool, unit), ["--time-steps", int(rng.integers(1, 9))],
              dict()),
             (_graph(), ["--time-steps", 4, "--input", "multibit", "--input-bits", 3,
                         "--dt", DT], dict(input_kind="multibit", input_bits=3, dt=DT))]
    for i, (g, options, kw) in enumerate(cases):
        write_graph(g, tmp_path / f"g{i}.nir")
        out = import_both_ways(tmp_path / f"g{i}.nir", tmp_path / f"a{i}", options)
        a, _ = graph_to_artifact(read_graph(tmp_path / f"g{i}.nir"),
                                 time_steps=int(options[1]), **kw)
        write_artifact(a, tmp_path / f"direct{i}")
        assert files(out) == files(tmp_path / f"direct{i}"), (i, a.summary())
    # and bitspike nir export of the checkpoint is the export of its artifact
    assert cli.main(["nir", "export", str(tmp_path / "a0.pt"), "-o", str(tmp_path / "c.nir")]) == 0
    assert cli.main(["nir", "export", str(tmp_path / "a0"), "-o", str(tmp_path / "d.nir")]) == 0
    _same_value(read_graph_dict(tmp_path / "c.nir"), read_graph_dict(tmp_path / "d.nir"))


def _refused(capsys, args, *words):
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and all(w in err for w in words), \
        err
    return err


def test_checkpoint_refusals(tmp_path, capsys):
    """Each refusal is one line, exit 2, and writes nothing: an output that is a directory or
    exists, options of a training export, a checkpoint with a bad field or version, one whose
    graph no longer maps (naming the node); the readers of a training run refuse it."""
    import torch

    from sw.train.loop import CheckpointError, load_checkpoint

    write_graph(_graph(), tmp_path / "g.nir")
    graph = str(tmp_path / "g.nir")
    ckpt = tmp_path / "m.pt"
    (tmp_path / "d").mkdir()
    _refused(capsys, ["nir", "import", graph, "-o", str(tmp_path / "d"), "--time-steps", "4"],
             "is a directory", "--export")
    assert cli.main(["nir", "import", graph, "-o", str(ckpt), "--time-steps", "4"]) == 0
    before = ckpt.read_bytes()
    _refused(capsys, ["nir", "import", graph, "-o", str(ckpt), "--time-steps", "2"], "exists",
             "--force")
    assert ckpt.read_bytes() == before
    for option, value in (("--frac-bits", "3"), ("--scale-bits", "4"), ("--root", "x")):
        _refused(capsys, ["export", str(ckpt), "-o", str(tmp_path / "a"), option, value],
                 option, "NIR import checkpoint")
    with pytest.raises(CheckpointError, match="a NIR import checkpoint .* 'bitspike export' "
                                              "folds it"):
        load_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    for field, edit, words in (
            ("import.time_steps", lambda s: s["import"].update(time_steps="4"),
             ("field 'import.time_steps'", "'4'")),
            ("import.dt", lambda s: s["import"].update(dt=-1.0), ("field 'import.dt'",)),
            ("import", lambda s: s["import"].pop("binarize"), ("field 'import'",)),
            ("version", lambda s: s.update(version=2), ("version 2",)),
            ("weight", lambda s: s["graph"]["nodes"]["fc"].update(
                weight=torch.tensor([[1., -0.5, 1], [2, 2, 2]], dtype=torch.float64)),
             ("node 'fc'", "not ±c"))):
        bad = {**state, "import": dict(state["import"]),
               "graph": {**state["graph"], "nodes": {**state["graph"]["nodes"],
                                                     "fc": dict(state["graph"]["nodes"]["fc"])}}}
        edit(bad)
        torch.save(bad, tmp_path / "bad.pt")
        err = _refused(capsys, ["export", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "a")],
                       *words)
        assert field.split(".")[-1] in err, (field, err)
        _refused(capsys, ["nir", "export", str(tmp_path / "bad.pt"), "-o",
                          str(tmp_path / "b.nir")], *words)
    assert sorted(os.listdir(tmp_path)) == ["bad.pt", "d", "g.nir", "m.pt"]


def test_a_node_nir_cannot_build_is_named(tmp_path, capsys, seed):
    """A file whose LIF has parameters of different shapes: nir's own constructor fails
    (``nir.read`` would raise); the refusal names that node (both outputs), and nothing is
    written."""
    import h5py

    write_graph(_foreign_conv_graph(np.random.default_rng(seed)), tmp_path / "g.nir")
    with h5py.File(tmp_path / "g.nir", "r+") as f:
        del f["node/nodes/lif2/r"]
        f["node/nodes/lif2/r"] = np.ones(3)
    for out in (["-o", str(tmp_path / "a"), "--export"], ["-o", str(tmp_path / "m.pt")]):
        _refused(capsys, ["nir", "import", str(tmp_path / "g.nir"), *out, "--time-steps", "2"],
                 "node 'lif2'", "not a readable NIR file")
    assert os.listdir(tmp_path) == ["g.nir"]
