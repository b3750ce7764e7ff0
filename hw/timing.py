"""The timing of the gateware blocks: one formula per block, one range per build option.

Each block's pipeline latency is stated here once, as a function of its parameters, and
nothing here imports Amaranth: the block's ``latency`` property returns the function's value
(:class:`hw.synapse.SynapseArray`, :class:`hw.lif.LIFUnit`, :class:`hw.readout.ReadoutUnit`,
:class:`hw.buffer.SampleBuffer` / :class:`hw.buffer.BufferReader`), and :mod:`hw.plan` (which
the host client and the CLIs import without Amaranth) sums the same functions. A change to a
block's registers is then a change to its function here, and both the block and the plan follow.

The stages add a few registers of their own between the blocks; :func:`lif_stage_latency` and
:func:`readout_stage_latency` are the one statement of how a stage's latency is made of its
blocks' latencies. The stages call them with their blocks' ``latency`` properties, the plan
with the functions below.

The ranges of the build options that several layers check (the plan, the accelerator, the
stages, the buffers) are here too, so every layer accepts the same values.
"""

from __future__ import annotations

from sw import fixedpoint as fx
from sw.artifact import ConvLayer, LIFLayer
from sw.checks import check_int
from sw.folding import LayerFolding

__all__ = ["SLOTS", "POPCOUNT_STAGES", "OUT_DEPTH", "check_slots", "check_popcount_stages",
           "check_out_depth",
           "buffer_read_latency", "weight_read_latency", "conv_address_latency",
           "front_latency", "synapse_latency",
           "has_step_gain", "lif_latency",
           "readout_latency", "PARAMS_READ_LATENCY", "params_read_wait",
           "input_cycles_per_beat", "group_period",
           "lif_stage_latency", "readout_stage_latency", "STAGE_START_LATENCY",
           "output_fifo_latency"]

#: Samples a buffer may hold. A one-slot buffer would work (the producer waits for the
#: consumer to release the slot before it claims it again) but makes its two stages take turns,
#: so the ideal bound would not hold and the buffers are too small for the saving to matter:
#: at least 2. At most 32: the most :func:`hw.plan.buffer_slots` derives is 23 (a period of
#: one cycle with 8 popcount stages), and 16 was too few for some one-cycle networks.
SLOTS = (2, 32)
#: Register stages inside every popcount tree (0: a combinational tree).
POPCOUNT_STAGES = (0, 8)
#: Result credits of the readout: its score registers plus an output FIFO of
#: ``out_depth - 1`` entries. With one credit there is no FIFO: ``o`` carries the score
#: registers themselves, and the next sample starts once the result is taken.
OUT_DEPTH = (1, 64)


def check_slots(name: str, value) -> int:
    """``value`` if it is an int in :data:`SLOTS`; TypeError/ValueError naming ``name``."""
    return check_int(name, value, *SLOTS)


def check_popcount_stages(value) -> int:
    """``value`` if it is an int in :data:`POPCOUNT_STAGES`."""
    return check_int("popcount_stages", value, *POPCOUNT_STAGES)


def check_out_depth(value) -> int:
    """``value`` if it is an int in :data:`OUT_DEPTH`."""
    return check_int("out_depth", value, *OUT_DEPTH)


# -- the blocks ------------------------------------------------------------------------------

def buffer_read_latency(memory_register: bool = True) -> int:
    """:class:`hw.buffer.SampleBuffer`: a read request in cycle c returns its chunk in cycle
    c + 3: the memory's synchronous read port, a register of the whole word (nothing between
    the block RAM's output and a flip-flop: on the ECP5 the DP16KD's clock-to-output alone is
    5.8 ns of an 8 ns cycle at 125 MHz), then a register that also selects the chunk of a
    grouped-layout word; a row-layout word, a whole padded row, is too wide to register: its
    chunk is selected and registered, then delayed a cycle.

    Without ``memory_register`` (the iCE40 at 48 MHz, where a flip-flop fed by a block RAM or
    another flip-flop is a logic cell of its own) c + 2: the read port, then the register that
    selects the chunk (a plain copy of a chunked-layout word)."""
    return 3 if memory_register else 2


def weight_read_latency(memory_register: bool = True) -> int:
    """A stage's weight memory: the read port, then (with ``memory_register``) a register of
    the SIMD·PE-bit word, which then feeds the popcount trees from a flip-flop; without it the
    trees take the read port's data (a block RAM's output, or the register of a ROM in
    logic). The stage delays the word's address so that the word meets the buffer's chunk
    (:func:`front_latency`)."""
    return 2 if memory_register else 1


def conv_address_latency() -> int:
    """A conv stage (:class:`hw.stage.LIFStage` of a :class:`sw.artifact.ConvLayer`) computes
    each operation's input-buffer address and padding flag from its window walk and registers
    them before the buffer read: one cycle, which also delays the release of its input slot."""
    return 1


def front_latency(layer, memory_register: bool = True) -> int:
    """Cycles from a stage's issue of an operation to its arrival at the synapse array: the
    buffer read (:func:`buffer_read_latency`), after the address register of a conv stage
    (:func:`conv_address_latency`)."""
    extra = conv_address_latency() if isinstance(layer, ConvLayer) else 0
    return buffer_read_latency(memory_register) + extra


def synapse_latency(popcount_stages: int) -> int:
    """:class:`hw.synapse.SynapseArray`: from an operation with ``last`` to its sums, the
    popcount registers, the accumulate register and the ``2A - C`` register."""
    return popcount_stages + 2


def has_step_gain(step_gain) -> bool:
    """Whether a block multiplies by its step gains: only when some G[t] differs from 1."""
    return any(g != 1 for g in step_gain)


def lif_latency(step_gain) -> int:
    """:class:`hw.lif.LIFUnit`: drive, gain (only with :func:`has_step_gain`), addends,
    membrane loop."""
    return 4 if has_step_gain(step_gain) else 3


def readout_latency(pe: int) -> int:
    """:class:`hw.readout.ReadoutUnit`: from the operation completing the last group to the
    result, gain, sum, A·S, +C, ``ceil_log2(pe)`` argmax tree levels and the running argmax
    (two cycles: its comparison, then the best's update)."""
    return 6 + fx.ceil_log2(pe)


#: A LIF stage registers the synapse array's sums for one cycle while its parameter ROM is read
#: for their group.
PARAMS_READ_LATENCY = 1


#: A stage starts a sample in the cycle after its input slot is committed (the sequencer
#: registers the start), and issues its first operation in the cycle after that.
STAGE_START_LATENCY = 1


def output_fifo_latency(out_depth: int) -> int:
    """:class:`hw.stage.ReadoutStage`'s output FIFO (``SyncFIFOBuffered`` of ``out_depth - 1``
    entries): cycles from a result entering it to ``o.valid``, 0 for one entry (its output
    register is the whole FIFO), 1 for more (the memory's read, then the output register).
    0 without a FIFO (one credit), whose registered ``o.valid`` keeps the same timing."""
    return 0 if check_out_depth(out_depth) <= 2 else 1


def input_cycles_per_beat(bits: int) -> int:
    """:class:`hw.accelerator.InputAdapter`: a beat is written one bit-plane per cycle."""
    return bits


# -- the stages ------------------------------------------------------------------------------

def _replays(layer) -> bool:
    """A multi-bit-input LIF or conv layer computes a group's sums once and replays them T
    times."""
    return isinstance(layer, (LIFLayer, ConvLayer)) and layer.input.kind == "multibit"


def _operations_per_group(layer, folding: LayerFolding) -> int:
    """Operations a stage's sequencer issues per neuron group: (time steps: T for spike input,
    1 for multi-bit input) x bit-planes x synapse folds."""
    return layer.rows_per_sample * layer.input.bits * folding.synapse_folds(layer)


def group_period(layer, folding: LayerFolding) -> int:
    """Cycles a stage spends on one neuron group: its operations, one per cycle; a replaying
    LIF layer needs at least T (the LIF unit takes one time step per cycle)."""
    ops = _operations_per_group(layer, folding)
    return max(ops, layer.time_steps) if _replays(layer) else ops


def lif_stage_latency(layer: LIFLayer, folding: LayerFolding, *, front: int, synapse: int,
                      lif: int, memory_register: bool = True) -> int:
    """Cycles from a LIF stage's last issue cycle of a sample (its last operation, or the end
    of its last group's period) to the commit of the sample's spikes.

    ``front`` (the input buffer's read latency; the stage delays its weight word to match),
    ``synapse`` and ``lif`` are the blocks' latencies;
    between them the stage adds :data:`PARAMS_READ_LATENCY`, and a replaying layer the T-step
    replay of its last group, which starts after the group's sums and is counted from the end
    of the group's period (the period idles ``period - operations`` cycles when the replay is
    the longer part). Without ``memory_register`` a replaying layer holds only the sums (taken
    from the array's output) and reads the parameters from the ROM's port during the replay
    (its address, the group of the array's output, holds for the group's period, at least T
    cycles): the replay starts in the cycle after the sums, with no wait for the read.
    """
    latency = front + synapse + params_read_wait(layer, memory_register) + lif
    if not _replays(layer):
        return latency
    idle = group_period(layer, folding) - _operations_per_group(layer, folding)
    return latency + layer.time_steps - idle


def params_read_wait(layer, memory_register: bool = True) -> int:
    """Cycles a LIF stage holds the synapse array's sums in a register while its parameter ROM
    is read for their group (:data:`PARAMS_READ_LATENCY`); none for a replaying layer without
    ``memory_register``, which replays from the array's output and reads the parameters from
    the ROM's port during the replay."""
    return 0 if _replays(layer) and not memory_register else PARAMS_READ_LATENCY


def readout_stage_latency(*, front: int, synapse: int, readout: int) -> int:
    """Cycles from the readout stage's last operation of a sample to its result leaving the
    readout unit (the sums go straight from the synapse array into the unit)."""
    return front + synapse + readout
