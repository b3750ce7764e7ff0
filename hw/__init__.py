"""The Amaranth streaming accelerator of a bitspike artifact, and its Verilog generator.

``Accelerator(artifact, folding)`` is a ``wiring.Component`` with an input stream ``i`` and an
output stream ``o`` (docs/hardware.md); ``generate(artifact, folding, out_dir)`` writes its
Verilog, ``$readmemh`` files and JSON description (``from hw.generate import generate``:
``hw.generate`` is the module).

The names below are imported on first use, so the Amaranth-free modules of this package
(:mod:`hw.plan`, the build arithmetic) import without Amaranth; the gateware modules import it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Accelerator": "hw.accelerator", "InputAdapter": "hw.accelerator",
    "input_layout": "hw.accelerator", "output_layout": "hw.accelerator",
    "SampleBuffer": "hw.buffer",
    "DESCRIPTION_FILE": "hw.interface", "describe": "hw.generate",
    "LIFUnit": "hw.lif",
    "DEFAULT_BUDGET": "hw.plan", "Plan": "hw.plan", "default_folding": "hw.plan",
    "default_lanes": "hw.plan", "make_plan": "hw.plan",
    "ReadoutUnit": "hw.readout", "Sequencer": "hw.sequencer",
    "LIFStage": "hw.stage", "ReadoutStage": "hw.stage", "SynapseArray": "hw.synapse",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'hw' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
