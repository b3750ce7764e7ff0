"""NIR interchange against snnTorch 1.0.0 and Norse 1.1.0 themselves (docs/nir.md): ``nox -s
interop`` only.

* snnTorch -> NIR -> bitspike: binary-weight snnTorch networks (β = 1 − 2^−k, integer currents
  and thresholds, hard reset, float64 so snnTorch's arithmetic is exact) exported by snnTorch's
  ``export_to_nir``, imported by ``bitspike nir import``: every spike and prediction of the
  golden model equals snnTorch's forward.
* bitspike -> NIR -> snnTorch: the digits model exported by ``bitspike nir export
  --unit-threshold``, imported by snnTorch's ``import_from_nir``: the disagreement the mapping
  calls approximate (snnTorch's float leak has no floor), measured and bounded; and what
  snnTorch's importer cannot take (per-neuron thresholds, IF neurons) is refused by it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import warnings

import numpy as np
import pytest
from nir_check import check_golden_matches, files, import_both_ways

from bitspike import cli
from sw.artifact import Artifact, load_artifact
from sw.golden import GoldenModel
from sw.nir import artifact_to_graph, write_graph
from sw.randnet import random_artifact

pytestmark = pytest.mark.interop


def _leaky(snn, torch, m, k, theta, output=False):
    return snn.Leaky(beta=torch.full((m,), 1 - 2.0 ** -k), threshold=torch.as_tensor(theta),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False,
                     output=output)


def _snntorch_network(rng, torch, snn):
    """A random binary network in snnTorch: per output neuron weights ±c_j (c_j in 0, 1, 2, 4),
    integer biases and thresholds, per-neuron β = 1 − 2^−k (k per layer); the last layer is
    either spiking (prediction: the spike counts) or a plain Linear (the summed outputs)."""
    sizes = [int(rng.integers(2, 25)) for _ in range(int(rng.integers(2, 4)))]
    classes = int(rng.integers(2, 8))
    spiking_out = bool(rng.integers(2))
    mods = []
    dims = [*sizes, classes]
    for i in range(len(dims) - 1):
        n, m = dims[i], dims[i + 1]
        lin = torch.nn.Linear(n, m).double()
        # c_j a power of two: b_j/c_j and θ_j/c_j are dyadic, so the mapping is exact
        c = rng.choice([1.0, 2.0, 4.0], size=m)
        c[rng.random(m) < 0.1] = 0  # a neuron without inputs
        signs = rng.choice([-1.0, 1.0], size=(m, n))
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(signs * c[:, None]))
            lin.bias.copy_(torch.tensor(rng.integers(-3, 4, size=m).astype(np.float64)))
        mods.append(lin)
        last = i == len(dims) - 2
        if not last or spiking_out:
            theta = rng.integers(1, 9, size=m).astype(np.float32)
            mods.append(_leaky(snn, torch, m, int(rng.integers(1, 4)), theta, output=last))
    return torch.nn.Sequential(*mods), spiking_out


def _snntorch_run(net, x, T, torch, snn):
    """snnTorch's forward over T steps: every Leaky's spikes (B, T, M) and the prediction."""
    leaky = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    for m in leaky:
        m.reset_mem()
    spikes = {id(m): [] for m in leaky}
    total = 0
    with torch.no_grad():
        for t in range(T):
            h = torch.as_tensor(x if x.ndim == 2 else x[:, t], dtype=torch.float64)
            for mod in net:
                h = mod(h)
                if isinstance(h, tuple):
                    h = h[0]
                if isinstance(mod, snn.Leaky):
                    spikes[id(mod)].append(h.numpy().astype(bool))
                    h = h.to(torch.float64)  # snnTorch's spikes are float32 (exact 0/1)
            total = total + h
    return [np.stack(spikes[id(m)], axis=1) for m in leaky], total.argmax(dim=1).numpy()


def test_snntorch_network_imports_exactly(tmp_path, seed, capsys):
    import nir
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    rng = np.random.default_rng(seed)
    torch.manual_seed(int(rng.integers(2**31)))
    checked = 0
    for i in range(4):
        net, spiking_out = _snntorch_network(rng, torch, snn)
        n_in = net[0].in_features
        T = int(rng.integers(1, 9))
        multibit = bool(rng.integers(2))
        B = 200
        if multibit:
            x = rng.integers(0, 16, size=(B, n_in))
        else:
            x = (rng.random((B, T, n_in)) < 0.4).astype(np.int64)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # snnTorch 1.0.0's export_to_nir calls the nirtorch 2.6 API it deprecates
            warnings.filterwarnings("ignore", "nirtorch.extract_nir_graph is being deprecated",
                                    DeprecationWarning)
            # nirtorch traces in float32: export a float32 copy (the integers are exact in it)
            graph = export_to_nir(copy.deepcopy(net).float(), torch.zeros(1, n_in),
                                  ignore_dims=[0])
        path = tmp_path / f"snn{i}.nir"
        nir.write(str(path), graph)
        options = ["--time-steps", T] + (["--input", "multibit", "--input-bits", 4]
                                         if multibit else [])
        capsys.readouterr()
        # the checkpoint (folded by bitspike export) and --export: one artifact
        import_both_ways(path, tmp_path / f"a{i}", options)
        out = capsys.readouterr().out
        assert out.count("mapping   exact") == 3, out
        a = load_artifact(tmp_path / f"a{i}")
        ref_spikes, ref_pred = _snntorch_run(net, x, T, torch, snn)
        check_golden_matches(a, x, ref_spikes, ref_pred,
                             f"network {i} ({a.summary()}, spiking out {spiking_out})")
        checked += B
    assert checked >= 200


def _snntorch_import(graph):
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):
        return import_from_nir(graph)


def _imported_run(net, x, T):
    """Run an ``import_from_nir`` module: the spikes of every Leaky (hooks) and the
    prediction (argmax of the summed output)."""
    import snntorch as snn
    import torch

    leaky = [m for m in net.modules() if isinstance(m, snn.Leaky)]
    rec = {k: [] for k in range(len(leaky))}
    for k, m in enumerate(leaky):
        m.reset_mem()
        m.register_forward_hook(lambda mod, i, o, k=k: rec[k].append(
            (o[0] if isinstance(o, tuple) else o).detach().numpy().astype(bool)))
    total = 0
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        for t in range(T):
            out = net(xt if x.ndim == 2 else xt[:, t])
            total = total + (out[0] if isinstance(out, tuple) else out)
    return [np.stack(rec[k], axis=1) for k in range(len(leaky))], total.argmax(dim=1).numpy()


def test_digits_model_through_snntorch(tmp_path):
    """bitspike's digits model -> ``bitspike nir export --unit-threshold`` -> snnTorch: the
    leak is approximate (snnTorch's float β·v has no floor); docs/nir.md quotes the figures
    this test prints and bounds."""
    import nir

    from sw.cli_artifact import dataset_inputs
    from sw.default_model import ensure_exported, ensure_trained

    ckpt = ensure_trained(tmp_path / "run")
    ensure_exported(ckpt, tmp_path / "digits")
    path = tmp_path / "digits.nir"
    assert cli.main(["nir", "export", str(tmp_path / "digits"), "-o", str(path),
                     "--unit-threshold"]) == 0
    # the round trip of a trained model (its metadata too) is byte-identical
    assert cli.main(["nir", "export", str(tmp_path / "digits"), "-o", str(tmp_path / "p.nir")]) == 0
    import_both_ways(tmp_path / "p.nir", tmp_path / "back")
    assert files(tmp_path / "digits") == files(tmp_path / "back")
    a = load_artifact(tmp_path / "digits")
    x, y = dataset_inputs(a, "digits", "test")
    net = _snntorch_import(nir.read(str(path)))
    spikes, pred = _imported_run(net, x, a.time_steps)
    res = GoldenModel(a).run(x)
    rates = [float(np.mean(s != g.astype(bool))) for s, g in zip(spikes, res.spikes,
                                                                  strict=True)]
    pred_rate = float(np.mean(pred != res.predictions))
    print(f"digits via snnTorch: {len(y)} samples, hidden spike disagreement "
          f"{[f'{100 * r:.3f} %' for r in rates]}, prediction disagreement "
          f"{100 * pred_rate:.2f} %, accuracy snnTorch {100 * np.mean(pred == y):.2f} % "
          f"golden {100 * np.mean(res.predictions == y):.2f} %")
    assert all(r < 0.005 for r in rates) and pred_rate < 0.01


def _positive_thresholds(a):
    """``a`` with every threshold at least 1 (what ``--unit-threshold`` needs); hard reset, so
    the widths stay valid."""
    layers = [dataclasses.replace(layer, threshold=np.maximum(layer.threshold, 1))
              if layer in a.lif_layers else layer for layer in a.layers]
    return Artifact(tuple(layers), metadata=a.metadata)


def test_random_leaky_networks_through_snntorch(tmp_path, seed):
    """Random hard-reset leaky artifacts through snnTorch (``--unit-threshold``): the leak is
    approximate (no floor in snnTorch), the disagreement small; docs/nir.md quotes it."""
    import nir

    rng = np.random.default_rng(seed)
    total = wrong = 0
    for _ in range(6):
        sizes = [int(rng.integers(2, 30)) for _ in range(int(rng.integers(3, 5)))]
        a = _positive_thresholds(random_artifact(
            rng, sizes=sizes, step_gain=False, reset="hard",
            leak_shift=int(rng.integers(1, 4)), time_steps=4))
        x = np.asarray(rng.integers(0, a.input.max_value + 1, size=(200, *a.input_shape())))
        g = artifact_to_graph(a, unit_threshold=True)
        write_graph(g, tmp_path / "r.nir")
        spikes, _ = _imported_run(_snntorch_import(nir.read(str(tmp_path / "r.nir"))), x,
                                  a.time_steps)
        res = GoldenModel(a).run(x)
        for s, ref in zip(spikes, res.spikes, strict=True):
            total += s.size
            wrong += int(np.sum(s != ref.astype(bool)))
    print(f"random leaky networks via snnTorch: spike disagreement {wrong} / {total}")
    # measured 0.05 % .. 2.1 % over 9 fresh seeds (docs/nir.md); the bound leaves room
    assert total > 0 and wrong / total < 0.1


def test_snntorch_refuses_what_its_importer_cannot_take():
    """Per-neuron thresholds (bitspike's default export) and IF neurons: snnTorch's
    import_from_nir asserts (one threshold per layer; r == 1 for IF)."""
    a = random_artifact(7, sizes=[6, 5, 3], step_gain=False, leak_shift=2, reset="hard",
                        time_steps=2)
    while np.unique(a.lif_layers[0].threshold).size < 2:
        a = random_artifact(int(a.lif_layers[0].bias.sum()) & 0xFFFF, sizes=[6, 5, 3],
                            step_gain=False, leak_shift=2, reset="hard", time_steps=2)
    with pytest.raises(AssertionError, match="same for all neurons"):
        _snntorch_import(artifact_to_graph(a))
    b = _positive_thresholds(random_artifact(8, sizes=[6, 5, 3], step_gain=False,
                                             leak_shift=None, reset="hard", time_steps=2))
    with pytest.raises(AssertionError, match="r != 1"):
        _snntorch_import(artifact_to_graph(b, unit_threshold=True))


# ---------------------------------------------------------------------------------------------
# Norse 1.1.0 (norse/torch/utils/import_nir.py, from_nir): LIF as LIFBoxCell
# (v += dt/τ·(v_leak − v + I), R ignored), IF as IAFCell (v += I, dt and R ignored)
# ---------------------------------------------------------------------------------------------

def _norse_run(a, x):
    """``bitspike nir export`` -> Norse's ``from_nir(dt=1e-4)`` -> its forward (float32):
    the spikes of every neuron node and the prediction."""
    import torch

    from sw.nir import DT

    with warnings.catch_warnings():
        # Norse 1.1.0 scripts functions with torch.jit.script, which torch 2.13 deprecates
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        # and calls nirtorch.load, which nirtorch 2.6 deprecates
        warnings.filterwarnings("ignore", "nirtorch.load is being deprecated", DeprecationWarning)
        import norse.torch as norse
        from norse.torch.module.lif_box import LIFBoxCell
        from norse.torch.utils.import_nir import from_nir

        net = from_nir(artifact_to_graph(a), dt=DT, ignore_warnings=True)
    cells = [m for m in net.modules() if isinstance(m, (LIFBoxCell, norse.IAFCell))]
    rec = {k: [] for k in range(len(cells))}
    for k, m in enumerate(cells):
        m.register_forward_hook(lambda mod, i, o, k=k: rec[k].append(
            o[0].detach().numpy().astype(bool)))
    xt = torch.as_tensor(x, dtype=torch.float32)
    state, total = None, 0
    with torch.no_grad():
        for t in range(a.time_steps):
            out, state = net(xt if x.ndim == 2 else xt[:, t], state)
            total = total + out
    return [np.stack(rec[k], axis=1) for k in range(len(cells))], total.argmax(dim=1).numpy()


def test_if_networks_through_norse_are_exact(seed):
    """No leak, hard reset: NIR IF with R = 1/dt; Norse's IAFCell adds the current per step, so
    every spike and prediction equals the golden model (float32 is exact: widths <= 24 bits,
    T a power of two so the readout bias C/T is too)."""
    from sw.randnet import random_inputs

    rng = np.random.default_rng(seed)
    checked = 0
    while checked < 6:
        sizes = [int(rng.integers(2, 30)) for _ in range(int(rng.integers(3, 5)))]
        a = random_artifact(rng, sizes=sizes, step_gain=False, reset="hard", leak_shift=None,
                            time_steps=int(rng.choice([1, 2, 4, 8])))
        if max(layer.membrane.width for layer in a.lif_layers) > 24 or a.readout.score.width > 24:
            continue
        x = random_inputs(a, 200, rng)
        spikes, pred = _norse_run(a, x)
        res = GoldenModel(a).run(x)
        for s, g in zip(spikes, res.spikes, strict=True):
            assert np.array_equal(s, g.astype(bool)), a.summary()
        assert np.array_equal(pred, res.predictions), a.summary()
        checked += 1


def test_digits_model_through_norse(tmp_path):
    """The digits model (k = 2) through Norse: approximate (no floor in the float leak);
    docs/nir.md quotes the figures."""
    from sw.cli_artifact import dataset_inputs
    from sw.default_model import ensure_exported, ensure_trained

    ensure_exported(ensure_trained(tmp_path / "run"), tmp_path / "digits")
    a = load_artifact(tmp_path / "digits")
    x, y = dataset_inputs(a, "digits", "test")
    spikes, pred = _norse_run(a, x)
    res = GoldenModel(a).run(x)
    rates = [float(np.mean(s != g.astype(bool))) for s, g in zip(spikes, res.spikes,
                                                                  strict=True)]
    pred_rate = float(np.mean(pred != res.predictions))
    print(f"digits via Norse: hidden spike disagreement {[f'{100 * r:.3f} %' for r in rates]}, "
          f"prediction disagreement {100 * pred_rate:.2f} %")
    assert all(r < 0.005 for r in rates) and pred_rate < 0.01
