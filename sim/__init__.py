"""cocotb verification of the generated accelerator against the golden model (docs/verification.md).

Modules:

* :mod:`sim.runner`: build and run cocotb testbenches with cocotb's Python runner (Icarus,
  Verilator), failing loudly;
* :mod:`sim.layout`, :mod:`sim.description`: payload layouts and the hardware description,
  read from the generator's JSON;
* :mod:`sim.streams`, :mod:`sim.scoreboard`: stream drivers/monitors with gaps and
  backpressure, and the exact scoreboard (cocotb side and plain Python);
* :mod:`sim.tb_accelerator`: the accelerator's testbench; :mod:`sim.tb_demo` and
  :mod:`sim.demo`: the machinery's own check on a stream FIFO;
* :mod:`sim.accelerator`: generate + simulate from Python; :mod:`sim.cycles`: cycle accounting;
* :mod:`sim.main`: the main job (``python -m sim.main``, ``nox -s simulate``).

Importing this package imports neither cocotb nor amaranth.
"""
