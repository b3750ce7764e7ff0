"""bitspike: binary spiking neural networks from PyTorch training to FPGA bitstreams.

The command-line entry point is :mod:`bitspike.cli`; the code lives in the packages ``sw``
(training, integer model, artifact), ``hw`` (Amaranth accelerator), ``sim`` (cocotb testbenches)
and ``bitstreams`` (board tops and Yosys/nextpnr flows).
"""

__version__ = "0.1.0"
