"""Binary synapses: real-valued latent weights, binarised by sign() in the forward pass.

``sign(w)`` maps ``w >= 0`` to +1 and ``w < 0`` to -1 (the artifact stores weight bit 1 for +1,
so a zero latent weight is +1 there too). The backward pass is the clipped straight-through
estimator: the gradient of the binary weight passes to the latent weight where ``|w| <= 1`` and
is zero outside.

An optional per-output-channel scale multiplies the binary product: ``"mean"`` is the mean
absolute latent weight of the channel (XNOR-Net), ``"learned"`` a trained parameter. Either folds
into the per-neuron scale ``a_j`` at export.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sw.checks import check_int

__all__ = ["binarize", "BinaryLinear", "BinaryConv2d", "SCALES"]

#: per-output-channel scale choices
SCALES = (None, "mean", "learned")


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, grad_output):
        (w,) = ctx.saved_tensors
        return grad_output * (w.abs() <= 1).to(grad_output.dtype)


def binarize(w: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``w >= 0``, ``-1`` elsewhere; clipped straight-through gradient."""
    return _SignSTE.apply(w)


class _BinaryMixin:
    def _init_binary(self, scale):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
        self.scale_mode = scale
        if scale == "learned":
            self.scale = nn.Parameter(torch.ones(self.weight.shape[0]))
        else:
            self.register_parameter("scale", None)

    def binary_weight(self) -> torch.Tensor:
        """The ±1 weights the forward pass uses (with the STE attached)."""
        return binarize(self.weight)

    def channel_scale(self) -> torch.Tensor | None:
        """Per-output-channel scale (shape ``[out]``) or None."""
        if self.scale_mode == "mean":
            return self.weight.detach().abs().flatten(1).mean(1)
        if self.scale_mode == "learned":
            return self.scale
        return None

    def _apply_scale(self, y, channel_dim):
        s = self.channel_scale()
        if s is None:
            return y
        shape = [1] * y.dim()
        shape[channel_dim] = -1
        return y * s.view(shape)


class BinaryLinear(_BinaryMixin, nn.Module):
    """Dense layer with ±1 weights and no bias (BatchNorm after it supplies the shift).

    Parameters
    ----------
    in_features, out_features : int
    scale : {None, "mean", "learned"}
        Optional per-output-channel scale.
    """

    def __init__(self, in_features: int, out_features: int, *, scale: str | None = None):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            check_int(name, v, 1)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        bound = 1 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        self._init_binary(scale)

    def forward(self, x):
        return self._apply_scale(F.linear(x, self.binary_weight()), -1)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, scale={self.scale_mode}"


class BinaryConv2d(_BinaryMixin, nn.Module):
    """2-D convolution with ±1 weights and no bias.

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
    stride, padding : int
    scale : {None, "mean", "learned"}
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 stride: int = 1, padding: int = 1, scale: str | None = None):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride)):
            check_int(name, v, 1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                               kernel_size))
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        self._init_binary(scale)

    def forward(self, x):
        y = F.conv2d(x, self.binary_weight(), stride=self.stride, padding=self.padding)
        return self._apply_scale(y, 1)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, scale={self.scale_mode}")
