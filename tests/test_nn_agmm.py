"""The AGMM gate: shapes, statistics, running values and gradients."""

from __future__ import annotations

import pytest
import torch

from sw.nn import ALPHAS, MOMENTS, STATS, AGMMGate

torch.set_num_threads(1)

SHAPES = [(3, 4, 5), (2, 3, 2, 3, 3), (1, 2, 3)]


def reference(x, alpha, stat, moment, running=None):
    """Y[t] = α[t]·σ(E(X[t]))·X[t] written out per time step and sample."""
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        v = x[t].abs() if moment == "abs" else x[t]
        for b in range(x.shape[1]):
            if stat == "sample":
                e = v[b].mean()
            elif running is not None:
                e = running[t]
            else:
                e = v.mean()
            out[t, b] = alpha[t] * torch.sigmoid(e) * x[t, b]
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("stat", STATS)
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("alpha", ALPHAS)
def test_gate_forward_and_gradients(shape, stat, moment, alpha, seed):
    gen = torch.Generator().manual_seed(seed)
    t_steps = shape[0]
    gate = AGMMGate(t_steps, stat=stat, moment=moment, alpha=alpha, alpha_init=1.5).double()
    with torch.no_grad():
        if alpha == "learned":
            gate.alpha.copy_(torch.rand(t_steps, generator=gen, dtype=torch.float64) + 0.5)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) + 0.3
    # |x| has a kink at 0, and gradcheck's finite differences step 1e-6 to either side: keep
    # every element 1e-3 away from it (a draw within 1e-6 of 0 failed at seed 2034846639).
    x = torch.where(x.abs() < 1e-3, torch.copysign(torch.full_like(x, 1e-3), x), x)
    y = gate(x)
    assert y.shape == x.shape
    factor = gate.factor(x)
    if stat == "sample":
        assert factor.shape == (t_steps, shape[1]) + (1,) * (len(shape) - 2)
    else:
        assert factor.shape == (t_steps, 1) + (1,) * (len(shape) - 2)
    assert torch.allclose(y, reference(x, gate.alpha.detach(), stat, moment), rtol=1e-12,
                          atol=1e-14)
    # gradients (input through E too, and α when learned) against finite differences
    inputs = (x.clone().requires_grad_(True),)

    def fn(inp):
        return gate(inp)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)
    if alpha == "learned":
        xg = x.clone()
        gate.zero_grad()
        gate(xg).sum().backward()
        v = xg.abs() if moment == "abs" else xg
        for t in range(t_steps):
            if stat == "sample":
                e = v[t].reshape(shape[1], -1).mean(1)
                want = (torch.sigmoid(e) * xg[t].reshape(shape[1], -1).sum(1)).sum()
            else:
                want = torch.sigmoid(v[t].mean()) * xg[t].sum()
            assert torch.allclose(gate.alpha.grad[t], want, rtol=1e-10)
    else:
        assert not any(p.requires_grad for p in gate.parameters())


def test_gate_shrinks_gradients_by_its_factor():
    """With a constant-statistics gate (eval, batch stat) the gradient is scaled by α σ(E)."""
    gate = AGMMGate(3, stat="batch").double()
    with torch.no_grad():
        gate.running_stat.copy_(torch.tensor([0.0, 1.0, -2.0]))
        gate.alpha.copy_(torch.tensor([1.0, 0.5, 2.0]))
    gate.eval()
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    gate(x).backward(torch.ones_like(x))
    g = gate.inference_gain()
    assert torch.allclose(x.grad, g.view(3, 1, 1).expand_as(x))
    assert torch.all(g < gate.alpha.detach())  # σ < 1: the gate shrinks


def test_batch_gate_running_statistics_and_inference_gain(seed):
    gen = torch.Generator().manual_seed(seed)
    gate = AGMMGate(2, stat="batch", momentum=0.5).double()
    x = torch.randn(2, 8, 3, generator=gen, dtype=torch.float64) + 1
    gate.train()
    gate(x)
    assert torch.allclose(gate.running_stat, 0.5 * x.reshape(2, -1).mean(1))
    gate.eval()
    y = gate(x)
    g = gate.inference_gain()
    assert g.shape == (2,)
    assert torch.equal(y, g.view(2, 1, 1) * x)
    assert torch.allclose(y, reference(x, gate.alpha.detach(), "batch", "mean",
                                       running=gate.running_stat))


def test_sample_gate_is_data_dependent():
    gate = AGMMGate(2, stat="sample")
    assert gate.data_dependent and gate.inference_gain() is None
    assert not AGMMGate(2, stat="batch").data_dependent


def test_gate_errors():
    with pytest.raises(ValueError, match=r"time_steps must be >= 1, not 0"):
        AGMMGate(0)
    with pytest.raises(TypeError, match=r"time_steps must be an int, not 2.0"):
        AGMMGate(2.0)
    with pytest.raises(ValueError, match=r"stat must be one of \('sample', 'batch'\), not 'x'"):
        AGMMGate(2, stat="x")
    with pytest.raises(ValueError, match=r"moment must be one of \('mean', 'abs'\), not 'var'"):
        AGMMGate(2, moment="var")
    with pytest.raises(ValueError, match=r"alpha must be one of \('learned', 'fixed'\), not 1"):
        AGMMGate(2, alpha=1)
    with pytest.raises(ValueError, match=r"alpha_init must be positive and finite, not 0"):
        AGMMGate(2, alpha_init=0)
    # a bool is no number (sw.checks): True was a momentum of 1 before
    with pytest.raises(ValueError, match=r"momentum must be in \(0, 1\], not True"):
        AGMMGate(2, momentum=True)
    with pytest.raises(TypeError, match=r"time_steps must be an int, not True"):
        AGMMGate(True)
    with pytest.raises(ValueError, match=r"x must have layout \[T=2, B, \.\.\.\], not shape "
                                         r"\(3, 4\)"):
        AGMMGate(2)(torch.zeros(3, 4))
