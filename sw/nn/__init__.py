"""PyTorch building blocks of binary spiking networks.

* :mod:`sw.nn.binary` -- ``BinaryLinear``/``BinaryConv2d``: sign() forward, clipped STE backward.
* :mod:`sw.nn.lif` -- ``LIF``: multi-step neuron whose leak, threshold and reset the integer
  model represents exactly (docs/arithmetic.md §4).
* :mod:`sw.nn.surrogate` -- spike surrogates by name (triangle, sigmoid, arctan).
* :mod:`sw.nn.agmm` -- ``AGMMGate``, the Adaptive Gradient Modulation Mechanism (docs/agmm.md).
* :mod:`sw.nn.block` -- ``SynapseBlock``: synapse -> BatchNorm -> gate.
"""

from sw.nn.agmm import ALPHAS, MOMENTS, STATS, AGMMGate
from sw.nn.binary import SCALES, BinaryConv2d, BinaryLinear, binarize
from sw.nn.block import SynapseBlock
from sw.nn.lif import LIF, RESETS
from sw.nn.surrogate import SURROGATES, Arctan, Sigmoid, Surrogate, Triangle, get_surrogate

__all__ = [
    "AGMMGate", "STATS", "MOMENTS", "ALPHAS",
    "BinaryLinear", "BinaryConv2d", "binarize", "SCALES",
    "SynapseBlock",
    "LIF", "RESETS",
    "Surrogate", "Triangle", "Sigmoid", "Arctan", "SURROGATES", "get_surrogate",
]
