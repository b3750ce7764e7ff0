"""The float LIF neuron equals the integer rules of docs/arithmetic.md §4 where float is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sw import fixedpoint as fx
from sw.nn import LIF

torch.set_num_threads(1)


def integer_lif(current, theta, leak_shift, reset):
    """docs/arithmetic.md §4 as a plain loop: current (T, B, M) int, theta (M,) int."""
    t_steps = current.shape[0]
    v = np.zeros(current.shape[1:], dtype=np.int64)
    spikes, hs, vs = [], [], []
    for t in range(t_steps):
        h = fx.leak(v, leak_shift) + current[t]
        s = h >= theta
        v = np.where(s, 0, h) if reset == "hard" else np.where(s, h - theta, h)
        spikes.append(s.astype(np.uint8))
        hs.append(h)
        vs.append(v)
    return np.stack(spikes), np.stack(hs), np.stack(vs)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("leak_shift", [None, 1, 2, 3])
@pytest.mark.parametrize("t_steps", [1, 4, 9])
def test_lif_equals_integer_rules(reset, leak_shift, t_steps, seed):
    rng = np.random.default_rng(seed)
    theta = int(rng.integers(1, 40))
    unit = 1
    if leak_shift is not None:
        # every membrane value stays a multiple of 2**(k*(T-t)), so no shift drops a bit
        unit = 1 << (leak_shift * t_steps)
    current = rng.integers(-30, 60, size=(t_steps, 16, 11)) * unit
    theta_int = theta * unit
    want_s, want_h, want_v = integer_lif(current, theta_int, leak_shift, reset)

    lif = LIF(threshold=float(theta_int), leak_shift=leak_shift, reset=reset).double()
    s, h, v = lif.trace(torch.tensor(current, dtype=torch.float64))
    assert np.array_equal(s.numpy().astype(np.uint8), want_s)
    assert np.array_equal(h.numpy().astype(np.int64), want_h)
    assert np.array_equal(v.numpy().astype(np.int64), want_v)
    assert np.array_equal(h.numpy(), want_h.astype(np.float64))  # exactly integral
    assert torch.equal(lif(torch.tensor(current, dtype=torch.float64)), s)


def test_lif_fires_on_equality():
    lif = LIF(threshold=2.0, reset="hard")
    s, h, v = lif.trace(torch.tensor([[2.0], [1.0], [1.0]]))
    assert s.flatten().tolist() == [1.0, 0.0, 1.0]
    assert v.flatten().tolist() == [0.0, 1.0, 0.0]


def test_lif_gradient_flows_and_detach_reset(seed):
    gen = torch.Generator().manual_seed(seed)
    cur = (torch.rand(4, 8, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    lif = LIF(threshold=1.0, leak_shift=2).double()
    lif(cur).sum().backward()
    assert cur.grad.abs().sum() > 0
    g1 = cur.grad.clone()
    cur.grad = None
    LIF(threshold=1.0, leak_shift=2, detach_reset=True).double()(cur).sum().backward()
    assert cur.grad.abs().sum() > 0
    # the last time step's current only affects its own spike: the same with or without
    assert torch.equal(g1[-1], cur.grad[-1])


def test_lif_state_dict_holds_threshold_and_decay():
    lif = LIF(threshold=1.5, leak_shift=3)
    sd = lif.state_dict()
    assert float(sd["threshold"]) == 1.5 and float(sd["decay"]) == 1 - 2 ** -3


def test_lif_errors():
    with pytest.raises(ValueError, match=r"threshold must be positive and finite, not 0"):
        LIF(threshold=0)
    with pytest.raises(TypeError, match=r"threshold must be a number, not '1'"):
        LIF(threshold="1")
    with pytest.raises(ValueError, match=r"leak_shift must be between 1 and 30, not 0"):
        LIF(leak_shift=0)
    with pytest.raises(TypeError, match=r"leak_shift must be an int or None, not 0.5"):
        LIF(leak_shift=0.5)
    with pytest.raises(ValueError, match=r"reset must be 'hard' or 'soft', not 'zero'"):
        LIF(reset="zero")
    with pytest.raises(ValueError, match=r"surrogate must be one of triangle, sigmoid, arctan, "
                                         r"not 'step'"):
        LIF(surrogate="step")
    with pytest.raises(ValueError, match=r"current must have layout \[T, B, \.\.\.\], not "
                                         r"shape \(3,\)"):
        LIF()(torch.zeros(3))
