"""The boards bitspike builds for: plain data (platform, clocks, pins used, device capacity,
synthesis and nextpnr options).

:data:`BOARDS` is the registry (name -> :class:`Board`); the tops in :mod:`bitstreams.top`
and the flow in :mod:`bitstreams.flow` (board builds and the core-only target, the
accelerator alone on the board's device) take everything board- and device-specific from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BUILD_ROOT", "Capacity", "Board", "BOARDS", "get_board"]

#: Where the bitstream flow builds: ``BUILD_ROOT / <board>`` (and ``<board>-core`` for the
#: accelerator alone); the host client looks here for a board's description.
BUILD_ROOT = Path("build/bitstreams")


@dataclass(frozen=True)
class Capacity:
    """What a device offers, in the units Yosys and nextpnr count.

    Attributes
    ----------
    device : str
        Part name for messages.
    logic : int
        Logic cells (iCE40: LUT4 + flip-flop pairs) or LUT4s (ECP5).
    ffs : int
        Flip-flops.
    bram : int
        Block RAMs.
    bram_bits : int
        Data bits of one block RAM (iCE40 SB_RAM40_4K: 4096; ECP5 DP16KD: 18432).
    bram_shapes : tuple of (width, depth)
        Aspect ratios one block RAM can take (for the estimate before synthesis).
    dsp : int
        Multiplier blocks.
    cells : dict
        nextpnr's utilisation names of the logic, FF, BRAM and DSP cells.
    spram : int
        Single-port RAMs (iCE40UP5K: 4 SB_SPRAM256KA of 16K x 16 bits; what a memory with
        ``ram_style = "huge"`` maps to).
    """

    device: str
    logic: int
    ffs: int
    bram: int
    bram_bits: int
    bram_shapes: tuple
    dsp: int
    cells: dict
    spram: int = 0


ICE40UP5K = Capacity(
    device="iCE40UP5K", logic=5280, ffs=5280, bram=30, bram_bits=4096,
    bram_shapes=((16, 256), (8, 512), (4, 1024), (2, 2048)), dsp=8,
    cells={"logic": "ICESTORM_LC", "bram": "ICESTORM_RAM", "dsp": "ICESTORM_DSP",
           "spram": "ICESTORM_SPRAM"}, spram=4)

LFE5U85F = Capacity(
    device="LFE5U-85F", logic=83640, ffs=83640, bram=208, bram_bits=18432,
    bram_shapes=((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
    dsp=156,
    cells={"logic": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD",
           "dsp": "MULT18X18D"})


@dataclass(frozen=True)
class Board:
    """A board bitspike can build for.

    Attributes
    ----------
    name : str
        Registry name (``--board``).
    platform : str
        ``"module:Class"`` of its amaranth-boards platform (imported when needed).
    family : {"ice40", "ecp5"}
    capacity : Capacity
    oscillator_hz : float
        The board clock feeding the PLL.
    clock_hz : float
        Default clock of the design (the PLL's target).
    baud : int
        Default UART rate of the host link.
    reset_button : (str, int)
        Resource that returns everything to idle while pressed.
    leds : tuple of (str, int)
        Up to three LEDs: alive (blinks), busy, error.
    budget : int
        Synaptic bits per cycle (``Σ SIMD·PE``) of the default folding
        (``hw.default_folding``): what the device holds beside the host link at the clock.
    synth_opts : str
        Extra options for Yosys' ``synth_<family>``.
    accelerator : dict
        Default ``hw.Accelerator`` options for this board (e.g. ``weight_memory``).
    seeds : int
        Placement attempts by default (the flow tries the next seed while timing fails).
    nextpnr_device : tuple of str
        nextpnr's options naming the device and package (the platform's; the core-only
        target, which runs nextpnr without the platform's scripts, passes them itself).
    bench_bytes : int
        Bytes of the host link's benchmark store (0: none), which holds
        :func:`bitstreams.link.bench_capacity` samples: one single-port memory, the UP5K's
        SPRAM (Yosys ``-spram``; 32 KB is one or two of its four), block RAM on the ECP5.
    bench_ram_style : str or None
        The store's ``ram_style`` (``"huge"``: SPRAM), None for Yosys' choice.
    block_weights : bool
        Weight memories go in block RAM whenever the design's memories then fit the device's
        block RAMs (:func:`bitstreams.fit.choose_weight_memory`), unless an accelerator
        option names ``weight_memory``. On the iCE40, whose logic cells are the scarce
        resource: Yosys' costs (a block RAM 64, logic 1/16 per ROM bit) tie a 64 x 128-bit
        weight ROM between 8 block RAMs and ~512 LUT4s and pick logic; at 64x2,16x1 that
        was 5,295 packed logic cells (over the UP5K's 5,280) against 4,441 in block RAM.
    info_rom_style : str
        The ``rom_style`` of the link's INFO ROM (38 bytes for the digits model): ``"block"``
        on the iCE40, where in logic it is a multiplexer of up to seven LUT levels in front of
        its register (the small board build's critical path at 38.5 MHz) and ~25 logic cells,
        and a block RAM's output is a register; ``"logic"`` on the ECP5, whose LUTs make it
        one level and whose block RAM's clock-to-output (5.8 ns) would not leave room at
        125 MHz for the byte's path to the UART.
    """

    name: str
    platform: str
    family: str
    capacity: Capacity
    oscillator_hz: float
    clock_hz: float
    baud: int
    reset_button: tuple
    leds: tuple
    budget: int = 512
    synth_opts: str = ""
    accelerator: dict = field(default_factory=dict)
    seeds: int = 1
    nextpnr_device: tuple = ()
    bench_bytes: int = 0
    bench_ram_style: str | None = None
    info_rom_style: str = "logic"
    block_weights: bool = False

    def make_platform(self):
        import importlib

        module, _, cls = self.platform.partition(":")
        return getattr(importlib.import_module(module), cls)()


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40", capacity=ICE40UP5K, oscillator_hz=12e6, clock_hz=48e6,
        baud=3_000_000, reset_button=("button", 0),
        leds=(("led_g", 0), ("led_r", 0)), budget=144, synth_opts="-dsp -spram", seeds=4,
        accelerator={"memory_register": False},
        nextpnr_device=("--up5k", "--package", "sg48"), bench_bytes=32768,
        bench_ram_style="huge", info_rom_style="block", block_weights=True),
    "ulx3s-85f": Board(
        name="ulx3s-85f", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
        family="ecp5", capacity=LFE5U85F, oscillator_hz=25e6, clock_hz=125e6,
        baud=3_000_000, reset_button=("button_fire", 0),
        leds=(("led", 0), ("led", 1), ("led", 2)), budget=1024, seeds=3,
        nextpnr_device=("--85k", "--package", "CABGA381"), bench_bytes=16384),
}


def get_board(name: str) -> Board:
    """The board called ``name``; ValueError listing the known ones otherwise."""
    try:
        return BOARDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {name!r}") from None
