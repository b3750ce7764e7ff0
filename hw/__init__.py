"""The Amaranth streaming accelerator of a bitspike artifact, and its Verilog generator.

``Accelerator(artifact, folding)`` is a ``wiring.Component`` with an input stream ``i`` and an
output stream ``o`` (docs/hardware.md); ``generate(artifact, folding, out_dir)`` writes its
Verilog, ``$readmemh`` files and JSON description. Amaranth is imported here, so import ``hw``
only where the hardware is needed.
"""

from hw.accelerator import Accelerator, InputAdapter, input_layout, output_layout
from hw.buffer import SampleBuffer
from hw.generate import DESCRIPTION_FILE, describe, generate
from hw.lif import LIFUnit
from hw.plan import DEFAULT_BUDGET, Plan, default_folding, default_lanes, make_plan
from hw.readout import ReadoutUnit
from hw.sequencer import Sequencer
from hw.stage import LIFStage, ReadoutStage
from hw.synapse import SynapseArray

__all__ = [
    "Accelerator", "InputAdapter", "input_layout", "output_layout", "SampleBuffer",
    "DESCRIPTION_FILE", "describe", "generate", "LIFUnit", "DEFAULT_BUDGET", "Plan",
    "default_folding", "default_lanes", "make_plan", "ReadoutUnit", "Sequencer", "LIFStage",
    "ReadoutStage", "SynapseArray",
]
