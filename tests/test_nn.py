"""Binary synapses (sign forward, clipped STE backward) and the surrogate contract."""

from __future__ import annotations

import pytest
import torch

from sw.nn import SURROGATES, BinaryConv2d, BinaryLinear, binarize, get_surrogate

torch.set_num_threads(1)


# -- surrogates: one contract test over every registered surrogate ------------------------------

@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("alpha", [None, 0.5, 3.0])
def test_surrogate_contract(name, alpha, seed):
    gen = torch.Generator().manual_seed(seed)
    sur = get_surrogate(name, alpha)
    x = torch.randn(2000, generator=gen, dtype=torch.float64) * 2
    x[:5] = torch.tensor([0.0, -0.0, 1e-300, -1e-300, 2.0])
    x.requires_grad_(True)
    s = sur(x)
    # forward is the exact step h >= θ  <=>  x >= 0
    assert torch.equal(s.detach(), (x.detach() >= 0).to(s.dtype))
    # backward is the derivative of the primitive, checked by a central finite difference
    s.backward(torch.ones_like(s))
    eps = 1e-6
    xd = x.detach()
    fd = (sur.primitive(xd + eps) - sur.primitive(xd - eps)) / (2 * eps)
    # the triangle's primitive has kinks at 0 and ±1/α, where a finite difference straddles them
    if name == "triangle":
        a = sur.alpha
        kinks = (xd.abs() - 1 / a).abs() < 1e-5
        kinks |= xd.abs() < 1e-5
        fd, grad = fd[~kinks], x.grad[~kinks]
    else:
        grad = x.grad
    assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-6)
    # the primitive goes from 0 to 1: the surrogate has unit area, like the step
    big = torch.tensor([-1e3, 1e3], dtype=torch.float64)
    assert torch.allclose(sur.primitive(big), torch.tensor([0.0, 1.0], dtype=torch.float64),
                          atol=1e-3)


def test_surrogate_errors():
    with pytest.raises(ValueError, match=r"surrogate must be one of triangle, sigmoid, arctan, "
                                         r"not 'relu'"):
        get_surrogate("relu")
    with pytest.raises(TypeError, match=r"surrogate must be a str, not 3"):
        get_surrogate(3)
    with pytest.raises(ValueError, match=r"alpha must be a positive finite number, not -1"):
        get_surrogate("triangle", -1)
    with pytest.raises(TypeError, match=r"alpha must be a number, not 'x'"):
        get_surrogate("sigmoid", "x")


# -- binarisation and the straight-through estimator --------------------------------------------

def test_binarize_forward_and_clipped_ste(seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(500, generator=gen) * 1.5
    w[:4] = torch.tensor([0.0, 1.0, -1.0, 1.0000001])
    w.requires_grad_(True)
    b = binarize(w)
    expect = torch.where(w.detach() >= 0, 1.0, -1.0)
    assert torch.equal(b.detach(), expect)
    assert b.detach()[0] == 1  # sign(0) = +1, the artifact's weight bit 1
    up = torch.randn(500, generator=gen)
    b.backward(up)
    inside = w.detach().abs() <= 1
    assert torch.equal(w.grad, torch.where(inside, up, torch.zeros_like(up)))
    assert w.grad[1] == up[1] and w.grad[2] == up[2]  # |w| = 1 passes
    assert w.grad[3] == 0                              # just outside is cut


@pytest.mark.parametrize("scale", [None, "mean", "learned"])
def test_binary_linear(scale, seed):
    gen = torch.Generator().manual_seed(seed)
    layer = BinaryLinear(7, 5, scale=scale).double()
    x = torch.randn(3, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    sign = torch.where(layer.weight.detach() >= 0, 1.0, -1.0).double()
    expect = x.detach() @ sign.T
    if scale == "mean":
        expect = expect * layer.weight.detach().abs().mean(1)
    elif scale == "learned":
        with torch.no_grad():
            layer.scale.copy_(torch.linspace(0.5, 2, 5))
        y = layer(x)
        expect = expect * torch.linspace(0.5, 2, 5, dtype=torch.float64)
    assert torch.allclose(y.detach(), expect, rtol=0, atol=1e-12)
    # the latent weight gets the STE gradient of the binary product
    up = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    y.backward(up)
    s = layer.channel_scale()
    s = torch.ones(5, dtype=torch.float64) if s is None else s.detach().double()
    grad_binary = (up * s).T @ x.detach()
    mask = (layer.weight.detach().abs() <= 1).double()
    assert torch.allclose(layer.weight.grad, grad_binary * mask, rtol=1e-12, atol=1e-12)
    assert torch.allclose(x.grad, (up * s) @ sign, rtol=1e-12, atol=1e-12)


def test_binary_conv(seed):
    gen = torch.Generator().manual_seed(seed)
    conv = BinaryConv2d(2, 3, 3, padding=1).double()
    x = torch.randn(2, 2, 5, 5, generator=gen, dtype=torch.float64)
    sign = torch.where(conv.weight.detach() >= 0, 1.0, -1.0).double()
    expect = torch.nn.functional.conv2d(x, sign, padding=1)
    assert torch.equal(conv(x).detach(), expect)


def test_binary_layer_errors():
    with pytest.raises(ValueError, match=r"in_features must be >= 1, not 0"):
        BinaryLinear(0, 3)
    with pytest.raises(TypeError, match=r"out_features must be an int, not 2.0"):
        BinaryLinear(3, 2.0)
    with pytest.raises(ValueError, match=r"scale must be one of \(None, 'mean', 'learned'\), "
                                         r"not 'max'"):
        BinaryLinear(3, 2, scale="max")
    with pytest.raises(ValueError, match=r"kernel_size must be >= 1, not 0"):
        BinaryConv2d(1, 1, 0)
