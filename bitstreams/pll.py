"""PLL settings for the boards' clocks (iCE40 SB_PLL40, ECP5 EHXPLLL), computed in Python.

The searches follow the limits in the vendors' data sheets (the same ones the IceStorm
``icepll`` and Trellis ``ecppll`` tools use); :func:`ice40_pll` and :func:`ecp5_pll` return
the divider settings and the frequency they actually give, which the board top uses as its
clock constraint and reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sw.checks import is_real

__all__ = ["ICE40PLL", "ECP5PLL", "ice40_pll", "ecp5_pll"]


def _check_freqs(f_in, f_out):
    for name, value in (("f_in", f_in), ("f_out", f_out)):
        if not is_real(value):
            raise TypeError(f"{name} must be a number (Hz), not {value!r}")
        if not value > 0:
            raise ValueError(f"{name} must be > 0 Hz, not {value!r}")


@dataclass(frozen=True)
class ICE40PLL:
    """SB_PLL40 settings in SIMPLE feedback mode:
    ``f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)``."""

    f_in: float
    divr: int
    divf: int
    divq: int

    @property
    def f_pfd(self) -> float:
        return self.f_in / (self.divr + 1)

    @property
    def f_vco(self) -> float:
        return self.f_pfd * (self.divf + 1)

    @property
    def f_out(self) -> float:
        return self.f_vco / (1 << self.divq)

    @property
    def filter_range(self) -> int:
        """The loop filter setting for the PFD frequency (SB_PLL40 FILTER_RANGE)."""
        pfd = self.f_pfd / 1e6
        for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
            if pfd < limit:
                return value
        return 6

    def params(self) -> dict:
        """Instance parameters (``p_...``) for SB_PLL40_PAD / SB_PLL40_CORE."""
        return {"FEEDBACK_PATH": "SIMPLE", "DIVR": self.divr, "DIVF": self.divf,
                "DIVQ": self.divq, "FILTER_RANGE": self.filter_range}


def ice40_pll(f_in: float, f_out: float) -> ICE40PLL:
    """The SB_PLL40 setting whose output is closest to ``f_out`` (ties: the lower VCO).

    Limits: PFD 10..133 MHz, VCO 533..1066 MHz, output 16..275 MHz, DIVR 0..15, DIVF 0..127,
    DIVQ 1..6.

    Raises
    ------
    ValueError
        No setting reaches the output range.
    """
    _check_freqs(f_in, f_out)
    if not 16e6 <= f_out <= 275e6:
        raise ValueError(f"f_out must be between 16 and 275 MHz for an iCE40 PLL, not "
                         f"{f_out / 1e6:g} MHz")
    best = None
    for divr in range(16):
        pfd = f_in / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divq in range(1, 7):
            for divf in range(128):
                vco = pfd * (divf + 1)
                if not 533e6 <= vco <= 1066e6:
                    continue
                cand = ICE40PLL(f_in, divr, divf, divq)
                key = (abs(cand.f_out - f_out), cand.f_vco)
                if best is None or key < best[0]:
                    best = (key, cand)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting turns {f_in / 1e6:g} MHz into "
                         f"{f_out / 1e6:g} MHz")
    return best[1]


@dataclass(frozen=True)
class ECP5PLL:
    """EHXPLLL settings with CLKOP fed back:
    ``f_out = f_in * CLKFB_DIV / CLKI_DIV``, VCO ``= f_out * CLKOP_DIV``."""

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_pfd(self) -> float:
        return self.f_in / self.clki_div

    @property
    def f_out(self) -> float:
        return self.f_pfd * self.clkfb_div

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div

    def params(self) -> dict:
        """Instance parameters (``p_...``) for EHXPLLL (output CLKOP, 0° phase: CPHASE is
        CLKOP_DIV - 1 as in Lattice's reference settings)."""
        return {"PLLRST_ENA": "DISABLED", "INTFB_WAKE": "DISABLED",
                "STDBY_ENABLE": "DISABLED", "DPHASE_SOURCE": "DISABLED",
                "OUTDIVIDER_MUXA": "DIVA", "CLKOP_ENABLE": "ENABLED",
                "CLKI_DIV": self.clki_div, "CLKFB_DIV": self.clkfb_div,
                "CLKOP_DIV": self.clkop_div, "CLKOP_CPHASE": self.clkop_div - 1,
                "CLKOP_FPHASE": 0, "FEEDBK_PATH": "CLKOP"}

    def attrs(self) -> dict:
        """Attributes nextpnr reads (frequencies in MHz, loop filter defaults)."""
        return {"FREQUENCY_PIN_CLKI": f"{self.f_in / 1e6:.6g}",
                "FREQUENCY_PIN_CLKOP": f"{self.f_out / 1e6:.6g}",
                "ICP_CURRENT": "12", "LPF_RESISTOR": "8", "MFG_ENABLE_FILTEROPAMP": "1",
                "MFG_GMCREF_SEL": "2"}


def ecp5_pll(f_in: float, f_out: float) -> ECP5PLL:
    """The EHXPLLL setting whose CLKOP is closest to ``f_out`` (ties: the VCO nearest 600 MHz).

    Limits: input 8..400 MHz, PFD 3.125..400 MHz, VCO 400..800 MHz, output 3.125..400 MHz,
    CLKI_DIV 1..128, CLKFB_DIV 1..80, CLKOP_DIV 1..128.
    """
    _check_freqs(f_in, f_out)
    if not 3.125e6 <= f_out <= 400e6:
        raise ValueError(f"f_out must be between 3.125 and 400 MHz for an ECP5 PLL, not "
                         f"{f_out / 1e6:g} MHz")
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            if not 3.125e6 <= out <= 400e6:
                continue
            lo, hi = max(1, math.ceil(400e6 / out)), min(128, math.floor(800e6 / out))
            if lo > hi:
                continue
            clkop = min(max(round(600e6 / out), lo), hi)
            cand = ECP5PLL(f_in, clki, clkfb, clkop)
            key = (abs(out - f_out), abs(cand.f_vco - 600e6))
            if best is None or key < best[0]:
                best = (key, cand)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting turns {f_in / 1e6:g} MHz into "
                         f"{f_out / 1e6:g} MHz")
    return best[1]
