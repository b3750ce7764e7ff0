"""Norse 1.1.0 -> NIR -> bitspike (docs/nir.md, "Norse's exporter"): ``nox -s interop`` only.

Binary-weight networks built in Norse (``torch.nn.Linear`` with weights ±c_j, ``LIFBoxCell``
with ``dt·tau_mem_inv = 2^−k``, ``IAFCell``, integer biases and thresholds, hard reset to 0),
exported by Norse's own ``norse.torch.to_nir`` (``norse/torch/utils/export_nir.py``), written
with ``nir.write``, imported by ``bitspike nir import`` (through the checkpoint and
``bitspike export``, and with ``--export``: one artifact): every spike of every layer and
every prediction of the golden model equals Norse's own forward (float64, so its arithmetic
on these dyadic values is exact).

Norse's exporter writes a LIF's ``τ = dt/tau_mem_inv``, ``dt`` times the time constant its
``LIFBoxCell`` integrates with (``1/tau_mem_inv``), and an ``IAFCell`` as ``IF(R = 1)`` while
the cell adds its input unscaled (``v ← v + I``: NIR's Euler step with ``dt·R = 1``). The
import's ``--dt`` undoes it: ``dt²`` (Norse's dt squared) for LIF networks, or, with both
kinds of neuron, a Norse network built with ``dt = 1`` and imported with ``--dt 1``.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
from nir_check import check_golden_matches, import_both_ways

from bitspike import cli
from sw.artifact import load_artifact
from sw.golden import GoldenModel

pytestmark = pytest.mark.interop


@contextlib.contextmanager
def _norse():
    """``norse.torch``, importing it (and calling its NIR functions) without the deprecation
    warnings of the libraries it calls: Norse 1.1.0 scripts functions with
    ``torch.jit.script`` (deprecated by torch 2.13) and calls ``nirtorch.extract_nir_graph``
    (deprecated by nirtorch 2.6); every other warning stays an error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", "nirtorch.extract_nir_graph is being deprecated",
                                DeprecationWarning)
        import norse.torch as norse

        yield norse


def _norse_network(rng, torch, norse, *, dt, cells):
    """A random binary network in Norse, float64: per output neuron weights ±c_j (c_j in 0, 1,
    2, 4), integer biases, integer thresholds (1 .. c_j·sqrt(n)/2); each hidden layer a
    ``LIFBoxCell`` (per-neuron ``tau_mem_inv = 2^−k/dt``, k per layer,
    ``v_leak = v_reset = 0``) or an ``IAFCell``
    (``cells``: "lif", "iaf" or "mixed"); the last layer a spiking cell (prediction: the spike
    counts) or a plain Linear (the summed outputs)."""
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.lif_box import LIFBoxParameters

    f64 = dict(dtype=torch.float64)
    sizes = [int(rng.integers(2, 25)) for _ in range(int(rng.integers(2, 4)))]
    dims = [*sizes, int(rng.integers(2, 8))]
    spiking_out = bool(rng.integers(2))
    mods = []
    for i in range(len(dims) - 1):
        n, m = dims[i], dims[i + 1]
        lin = torch.nn.Linear(n, m).double()
        c = rng.choice([1.0, 2.0, 4.0], size=m)
        c[rng.random(m) < 0.1] = 0  # a neuron without inputs
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(rng.choice([-1.0, 1.0], size=(m, n)) * c[:, None]))
            # (the last layer's small: summed over T, a large bias would decide the class)
            b = 1 if i == len(dims) - 2 else 3
            lin.bias.copy_(torch.tensor(rng.integers(-b, b + 1, size=m).astype(np.float64)))
        mods.append(lin)
        if i == len(dims) - 2 and not spiking_out:
            break
        # thresholds within reach of the currents (about c_j·sqrt(n)), so the cells fire often
        reach = np.maximum(1, np.rint(c * np.sqrt(n) / 2)).astype(np.int64)
        theta = torch.tensor(rng.integers(1, reach + 1).astype(np.float64))
        kind = cells if cells != "mixed" else ("lif", "iaf")[int(rng.integers(2))]
        if kind == "lif":
            k = int(rng.integers(1, 4))
            p = LIFBoxParameters(tau_mem_inv=torch.full((m,), 2.0 ** -k / dt, **f64),
                                 v_leak=torch.zeros(m, **f64), v_th=theta,
                                 v_reset=torch.zeros(m, **f64))
            mods.append(norse.LIFBoxCell(p, dt=dt))
        else:
            mods.append(norse.IAFCell(IAFParameters(v_th=theta, v_reset=torch.zeros(m, **f64)),
                                      dt=dt))
    return norse.SequentialState(*mods), spiking_out


def _norse_forward(net, x, T, torch, norse):
    """Norse's own forward over T steps (state carried between steps): every cell's spikes
    ``(B, T, M)`` and the prediction (argmax of the summed last output)."""
    cells = [m for m in net if isinstance(m, (norse.LIFBoxCell, norse.IAFCell))]
    rec = {k: [] for k in range(len(cells))}
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: rec[k].append(
        o[0].detach().numpy().astype(bool))) for k, m in enumerate(cells)]
    xt = torch.as_tensor(x, dtype=torch.float64)
    state, total = None, 0
    try:
        with torch.no_grad():
            for t in range(T):
                out, state = net(xt if x.ndim == 2 else xt[:, t], state)
                total = total + out
    finally:
        for h in hooks:
            h.remove()
    return [np.stack(rec[k], axis=1) for k in range(len(cells))], total.argmax(dim=1).numpy()


def _export(net, n_in, torch, norse, dt, path):
    """Norse's ``to_nir`` with an unbatched sample (a batched one puts the batch in the Input
    type, which nir's type check and bitspike refuse), written with ``nir.write``."""
    import nir

    with contextlib.redirect_stdout(io.StringIO()):
        graph = norse.to_nir(net, torch.zeros(n_in, dtype=torch.float64), dt=dt)
    nir.write(str(path), graph)
    return graph


#: (cells, Norse's dt, the import's --dt that undoes the exporter's τ and R)
WORKAROUNDS = [("lif", 1e-3, 1e-6), ("lif", 1e-2, 1e-4), ("iaf", 1e-3, 1.0),
               ("mixed", 1.0, 1.0)]


@pytest.mark.parametrize("cells, dt, import_dt", WORKAROUNDS,
                         ids=[f"{c}-dt{d:g}" for c, d, _ in WORKAROUNDS])
def test_norse_network_imports_exactly(tmp_path, seed, capsys, cells, dt, import_dt):
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(int(rng.integers(2**31)))
    checked = 0
    with _norse() as norse:
        for i in range(3):
            net, spiking_out = _norse_network(rng, torch, norse, dt=dt, cells=cells)
            n_in = net[0].in_features
            T = int(rng.integers(1, 9))
            multibit = bool(rng.integers(2))
            B = 200
            x = (rng.integers(0, 16, size=(B, n_in)) if multibit
                 else (rng.random((B, T, n_in)) < 0.4).astype(np.int64))
            path = tmp_path / f"norse{i}.nir"
            _export(net, n_in, torch, norse, dt, path)
            options = ["--time-steps", T, "--dt", repr(import_dt)] + (
                ["--input", "multibit", "--input-bits", 4] if multibit else [])
            capsys.readouterr()
            import_both_ways(path, tmp_path / f"a{i}", options)
            out = capsys.readouterr().out
            assert out.count("mapping   exact") == 3, out
            a = load_artifact(tmp_path / f"a{i}")
            ref_spikes, ref_pred = _norse_forward(net, x, T, torch, norse)
            check_golden_matches(a, x, ref_spikes, ref_pred,
                                 f"network {i} ({a.summary()}, spiking out {spiking_out})")
            checked += B
    assert checked >= 200


@pytest.mark.parametrize("import_dt", [None, "1e-3"], ids=["default-dt", "norse-dt"])
def test_norse_lif_graph_without_the_workaround_is_refused(tmp_path, seed, capsys, import_dt):
    """A LIFBoxCell network (Norse's dt = 1e-3) imported with the default --dt (1e-4) or with
    Norse's own dt: the graph's dt/τ (0.1·2^−k, or 2^−k/dt) is not 2^−k, so the import refuses
    it, naming the LIF node and the leak, and writes nothing."""
    import torch

    rng = np.random.default_rng(seed)
    with _norse() as norse:
        net, _ = _norse_network(rng, torch, norse, dt=1e-3, cells="lif")
        _export(net, net[0].in_features, torch, norse, 1e-3, tmp_path / "g.nir")
    for out in (["-o", str(tmp_path / "a"), "--export"], ["-o", str(tmp_path / "m.pt")]):
        capsys.readouterr()
        args = ["nir", "import", str(tmp_path / "g.nir"), *out, "--time-steps", "4"]
        assert cli.main(args + (["--dt", import_dt] if import_dt else [])) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: node '1': ") \
            and "leak 1 - dt/tau" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nir"]


def test_norse_iaf_graph_without_the_workaround_is_silently_different(tmp_path, seed):
    """An IAFCell network imported with the default --dt: Norse's IF(R = 1) reads as
    ``v ← v + dt·I``, a valid graph whose thresholds are 10^4 times the cell's; the import
    cannot tell, so the artifact differs from Norse's forward (why --dt 1 is needed)."""
    import torch

    rng = np.random.default_rng(seed)
    with _norse() as norse:
        ref = [np.zeros(0, bool)]
        while not any(r.any() for r in ref):  # a network whose cells fire (almost any)
            net, _ = _norse_network(rng, torch, norse, dt=1e-3, cells="iaf")
            n_in = net[0].in_features
            x = (rng.random((200, 4, n_in)) < 0.5).astype(np.int64)
            ref, _ = _norse_forward(net, x, 4, torch, norse)
        _export(net, n_in, torch, norse, 1e-3, tmp_path / "g.nir")
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["nir", "import", str(tmp_path / "g.nir"), "-o", str(tmp_path / "a"),
                         "--time-steps", "4", "--export"]) == 0
    res = GoldenModel(load_artifact(tmp_path / "a")).run(x)
    assert not any(s.any() for s in res.spikes)  # thresholds out of reach: it never fires


@pytest.mark.parametrize("cell", ["LIFCell", "LIBoxCell"])
def test_norse_cells_bitspike_cannot_hold_are_refused(tmp_path, capsys, cell):
    """Norse's ``LIFCell`` exports as a ``CubaLIF`` (a synaptic current: a second state), its
    ``LIBoxCell`` as an ``LI`` (no spikes); the import refuses either, naming the node, and
    writes nothing."""
    import torch

    with _norse() as norse:
        m = 4
        f64 = dict(dtype=torch.float64)
        if cell == "LIFCell":
            from norse.torch.functional.lif import LIFParameters

            unit = norse.LIFCell(LIFParameters(tau_syn_inv=torch.full((m,), 1e3, **f64),
                                               tau_mem_inv=torch.full((m,), 500.0, **f64),
                                               v_leak=torch.zeros(m, **f64),
                                               v_th=torch.ones(m, **f64),
                                               v_reset=torch.zeros(m, **f64)))
            reason = "synaptic current"
        else:
            from norse.torch.functional.leaky_integrator_box import LIBoxParameters

            unit = norse.LIBoxCell(LIBoxParameters(tau_mem_inv=torch.full((m,), 500.0, **f64),
                                                   v_leak=torch.zeros(m, **f64)))
            reason = "leaky integrator"
        net = norse.SequentialState(torch.nn.Linear(3, m).double(), unit,
                                    torch.nn.Linear(m, 2).double())
        _export(net, 3, torch, norse, 1e-3, tmp_path / "g.nir")
    for out in (["-o", str(tmp_path / "a"), "--export"], ["-o", str(tmp_path / "m.pt")]):
        capsys.readouterr()
        assert cli.main(["nir", "import", str(tmp_path / "g.nir"), *out, "--time-steps", "4",
                         "--dt", "1e-6"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: node '1': ") and reason in err, \
            err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nir"]
