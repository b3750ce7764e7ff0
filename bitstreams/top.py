"""Board tops: the accelerator behind a UART host link, with the board's clock and reset.

:class:`LinkTop` is everything that runs in the design's one clock domain: UART receiver and
transmitter, :class:`~bitstreams.link.HostLink`, and ``hw.Accelerator`` (which the link can
reset). It has plain ``uart_rx``/``uart_tx`` ports, so the same logic runs in a cocotb
simulation and on a board. :class:`BoardTop` adds what a board needs around it: the PLL that
makes the clock, the power-on/button reset, the UART pins and the LEDs.
"""

from pathlib import Path

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    DomainRenamer,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from bitstreams import protocol as P
from bitstreams.boards import Board
from bitstreams.link import HostLink, bench_capacity
from bitstreams.pll import ecp5_pll, ice40_pll
from bitstreams.uart import UARTRx, UARTTx, divisor_for
from sw.artifact import manifest_digest
from sw.atomic import atomic_write_json
from sw.checks import check_int, is_real
from sw.fixedpoint import ceil_div

__all__ = ["LinkTop", "BoardTop", "byte_lanes", "write_description", "DEFAULT_TIMEOUT_S"]

#: A frame whose next byte is this late is dropped and answered TIMEOUT.
DEFAULT_TIMEOUT_S = 0.01


def byte_lanes(artifact, folding=None) -> int:
    """Input lanes for a board: hw's default rounded up so that a beat fills whole bytes
    (``lanes * bits`` a multiple of 8), which keeps the UART frames free of padding bits;
    hw's default when that would exceed the inputs."""
    import math

    import hw

    base = hw.make_plan(artifact, folding).lanes
    step = 8 // math.gcd(artifact.input.bits, 8)
    lanes = ceil_div(base, step) * step
    return lanes if lanes <= artifact.inputs else base


class LinkTop(wiring.Component):
    """UART + host link + accelerator, in one clock domain.

    Timing
    ------
    The host link's (:class:`~bitstreams.link.HostLink`): every request is answered; RESULT
    frames leave in the order the samples arrived. Reset of the domain returns the UART, the
    link and the accelerator to idle.

    Parameters
    ----------
    artifact : sw.artifact.Artifact
    folding : sw.folding.Folding or None
        The accelerator's folding (hw's default when None).
    clock_hz : float
        Frequency the design runs at (for the UART divisor, the frame timeout, INFO).
    baud : float
        UART rate.
    timeout_s : float
        Frame timeout (a frame whose next byte is this late is dropped and answered TIMEOUT).
    accelerator_options : dict
        Further ``hw.Accelerator`` options (``popcount_stages``...); ``lanes`` defaults to
        :func:`byte_lanes` (beats in whole bytes).
    bench_bytes : int
        Bytes of the on-chip benchmark store (0: no benchmark mode); it holds
        :func:`bitstreams.link.bench_capacity` samples.
    bench_ram_style : str or None
        The store's ``ram_style`` (``"huge"``: the iCE40UP5K's SPRAM).
    info_rom_style : str or None
        The INFO ROM's ``rom_style`` (:class:`bitstreams.link.FrameSerializer`).

    Members
    -------
    uart_rx : In(1)
        Serial line from the host (idle high).
    uart_tx : Out(1)
        Serial line to the host.
    busy, error : Out(1)
        Samples in flight; an error answer was queued (one-cycle pulse).
    """

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    busy: Out(1)
    error: Out(1)

    def __init__(self, artifact, folding=None, *, clock_hz: float, baud: float = 3_000_000,
                 timeout_s: float = DEFAULT_TIMEOUT_S, accelerator_options: dict | None = None,
                 bench_bytes: int = 0, bench_ram_style: str | None = None,
                 info_rom_style: str | None = None):
        import hw

        for name, value in (("clock_hz", clock_hz), ("baud", baud), ("timeout_s", timeout_s)):
            if not is_real(value):
                raise TypeError(f"{name} must be a number, not {value!r}")
            if not value > 0:
                raise ValueError(f"{name} must be > 0, not {value!r}")
        check_int("bench_bytes", bench_bytes, 0)
        self.divisor = divisor_for(clock_hz, baud)
        self.clock_hz = clock_hz
        self.baud = baud
        options = dict(accelerator_options or {})
        options.setdefault("lanes", byte_lanes(artifact, folding))
        self.artifact = artifact
        self.accelerator = hw.Accelerator(artifact, folding, **options)
        acc = self.accelerator
        in_sig = acc.signature.members["i"].signature.flip()
        out_sig = acc.signature.members["o"].signature
        in_width = len(acc.i.payload.as_value())
        out_width = len(acc.o.payload.as_value())
        beats = acc.beats_per_sample
        beat_bytes = ceil_div(in_width, 8)
        self.info = P.DeviceInfo(
            version=P.PROTOCOL_VERSION, sample_bytes=beats * beat_bytes,
            result_bytes=ceil_div(out_width, 8), beats=beats, beat_bytes=beat_bytes,
            lanes=acc.lanes, clock_hz=int(round(clock_hz)), clocks_per_bit=self.divisor,
            artifact_hash=manifest_digest(artifact).prefix(8),
            folding=tuple((f.simd, f.pe) for f in acc.folding.layers),
            bench_capacity=bench_capacity(bench_bytes, beats * beat_bytes))
        timeout = max(16, int(round(timeout_s * clock_hz)))
        self.link = HostLink(in_signature=in_sig, out_signature=out_sig, beats=beats,
                             info=self.info, timeout_cycles=timeout,
                             bench_ram_style=bench_ram_style,
                             info_rom_style=info_rom_style)
        super().__init__()

    @property
    def folding(self):
        return self.accelerator.folding

    def description(self) -> dict:
        """The accelerator's description (``hw.describe``, as ``hw.generate`` writes it):
        what the host client packs samples and unpacks results with."""
        from hw.generate import describe

        return describe(self.accelerator, manifest_hash=manifest_digest(self.artifact))

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UARTRx(self.divisor)
        m.submodules.uart_tx = tx = UARTTx(self.divisor)
        m.submodules.link = link = self.link
        # The accelerator's reset, the domain's or the link's RESET, comes from one flip-flop:
        # a reset through a LUT into every register of the accelerator limits the clock. It
        # follows the domain's reset one cycle late (the link feeds no beat that early) and
        # pulses in the same cycle as ``link.acc_reset``.
        acc_rst = Signal(init=1)
        m.d.sync += acc_rst.eq(link.acc_reset_next)
        m.domains.acc = cd_acc = ClockDomain("acc", local=True)
        m.d.comb += [cd_acc.clk.eq(ClockSignal("sync")), cd_acc.rst.eq(acc_rst)]
        m.submodules.accelerator = acc = DomainRenamer("acc")(self.accelerator)
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx),
                     link.rx_error.eq(rx.framing_error),
                     self.busy.eq(link.busy), self.error.eq(link.error)]
        wiring.connect(m, rx.o, link.rx)
        wiring.connect(m, link.tx, tx.i)
        wiring.connect(m, link.acc_i, acc.i)
        wiring.connect(m, acc.o, link.acc_o)
        return m


def write_description(top: LinkTop, out_dir) -> Path:
    """Write ``top``'s accelerator description into ``out_dir`` (``accelerator.json``, the
    file ``bitspike run --build`` reads); returns its path."""
    from hw.generate import DESCRIPTION_FILE

    path = Path(out_dir) / DESCRIPTION_FILE
    atomic_write_json(path, top.description())
    return path


class BoardTop(wiring.Component):
    """A :class:`LinkTop` on a board: PLL clock, reset, UART pins, LEDs.

    The board oscillator feeds a PLL (iCE40: SB_PLL40_PAD, ECP5: EHXPLLL) set by
    :mod:`bitstreams.pll` for ``clock_hz``; the design's ``sync`` domain runs on its output.
    Reset is held until the PLL locks, then for ``por_s`` more (iCE40 block RAMs read as zero
    for a few microseconds after configuration), and again whenever the board's reset button
    is pressed, so everything returns to idle.

    LEDs: the first blinks (about once a second) while the clock runs, the second shows samples in
    flight, the third (or, with two LEDs, the second) lights for a moment after each error
    answer.

    Parameters
    ----------
    board : Board
    artifact, folding, baud, timeout_s, accelerator_options
        As :class:`LinkTop`.
    clock_hz : float or None
        Requested clock (the board's default when None); :attr:`clock_hz` is what the PLL
        gives.
    por_s : float
        Reset time after the PLL locks.
    bench_bytes : int or None
        The benchmark store's bytes (None: the board's :attr:`Board.bench_bytes`).
    """

    def __init__(self, board: Board, artifact, folding=None, *, clock_hz: float | None = None,
                 baud: float | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 accelerator_options: dict | None = None, por_s: float = 20e-6,
                 bench_bytes: int | None = None):
        if not isinstance(board, Board):
            raise TypeError(f"board must be a Board, not {board!r}")
        requested = board.clock_hz if clock_hz is None else clock_hz
        if board.family == "ice40":
            self.pll = ice40_pll(board.oscillator_hz, requested)
        elif board.family == "ecp5":
            self.pll = ecp5_pll(board.oscillator_hz, requested)
        else:
            raise ValueError(f"board.family must be 'ice40' or 'ecp5', not {board.family!r}")
        self.board = board
        self.requested_hz = requested
        self.clock_hz = self.pll.f_out
        self.por_cycles = max(16, int(por_s * self.clock_hz))
        self.core = LinkTop(artifact, folding, clock_hz=self.clock_hz,
                            baud=board.baud if baud is None else baud, timeout_s=timeout_s,
                            accelerator_options=accelerator_options,
                            bench_bytes=board.bench_bytes if bench_bytes is None
                            else bench_bytes, bench_ram_style=board.bench_ram_style,
                            info_rom_style=board.info_rom_style)
        super().__init__({})

    def _clock(self, m, platform):
        """The PLL; returns (output clock, lock)."""
        clk_out, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        osc = platform.request(platform.default_clk, dir="-")
        params = {f"p_{k}": v for k, v in self.pll.params().items()}
        if self.board.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", i_PACKAGEPIN=osc.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk_out, o_LOCK=lock, **params)
        else:
            m.submodules.osc_buf = buf = io.Buffer("i", osc)
            attrs = {f"a_{k}": v for k, v in self.pll.attrs().items()}
            m.submodules.pll = Instance(
                "EHXPLLL", i_CLKI=buf.i, i_CLKFB=clk_out, o_CLKOP=clk_out, o_LOCK=lock,
                i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1,
                i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                **params, **attrs)
        return clk_out, lock

    def elaborate(self, platform):
        m = Module()
        clk, lock = self._clock(m, platform)
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        # nextpnr derives the PLL output's constraint from the oscillator's and the PLL setting.
        m.d.comb += [cd_sync.clk.eq(clk), ClockSignal("por").eq(clk)]

        # Reset: until the PLL locks and por_cycles after, and while the button is pressed.
        button = platform.request(*self.board.reset_button, dir="-")
        m.submodules.button_buf = button_buf = io.Buffer("i", button)
        arm = Signal()
        m.submodules.arm_sync = FFSynchronizer(lock & ~button_buf.i, arm, o_domain="por")
        por = Signal(range(self.por_cycles + 1))
        held = Signal(init=1)  # registered: the reset fans out to every flip-flop
        with m.If(~arm):
            m.d.por += por.eq(0)
        with m.Elif(por != self.por_cycles):
            m.d.por += por.eq(por + 1)
        m.d.por += held.eq(por != self.por_cycles)
        m.d.comb += ResetSignal("sync").eq(held)

        m.submodules.core = core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [core.uart_rx.eq(rx_buf.i), tx_buf.o.eq(core.uart_tx)]

        # LEDs: alive (blinks), busy, error (lit for ~2**21 cycles after each error). Plain
        # up-counters: they map onto carry chains and stay off the critical path.
        blink = Signal(max(1, int(self.clock_hz / 3).bit_length()))
        m.d.sync += blink.eq(blink + 1)
        alive = blink[-1]
        stretch = Signal(22, init=1 << 21)
        lit = ~stretch[-1]
        with m.If(core.error):
            m.d.sync += stretch.eq(0)
        with m.Elif(lit):
            m.d.sync += stretch.eq(stretch + 1)
        roles = [alive, core.busy, lit]
        if len(self.board.leds) == 2:
            roles = [alive, lit]
        for (name, number), value in zip(self.board.leds, roles, strict=False):
            led = platform.request(name, number, dir="-")
            buf = io.Buffer("o", led)
            m.submodules[f"led_{name}_{number}"] = buf
            m.d.comb += buf.o.eq(value)
        return m
