"""Compare the host link's two CRC gateware implementations on the iCEBreaker's iCE40 UP5K.

    python bench/crc_timing.py [--seeds 1,2,3] [--out build/bench-crc]

Builds the host link alone (UART receiver and transmitter, :class:`bitstreams.link.HostLink`
and a small stand-in accelerator with the digits model's stream widths: 8 beats of 40 bits in,
a 164-bit result out) with ``bitstreams.link.FrameCRC`` as the XOR network derived from the
software step (``xor``) and as ``amaranth.lib.crc`` (``lib``), through the flow's
``synthesize_component`` (the board's Yosys and nextpnr options, same placement seeds, 48 MHz),
and prints nextpnr's Fmax and the logic cells of each. docs/bitstreams.md records the figures
that chose the default. (A whole board top would not do: its critical path is in the
accelerator, so the CRC would not show.)
"""


import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IN_BITS, BEATS, OUT_BITS = 40, 8, 4 + 10 * 16


def link_harness():
    """UART + HostLink + a stand-in accelerator (XOR of the beats), plain pins."""
    from amaranth.hdl import Cat, Module, Signal
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    from bitstreams import protocol as P
    from bitstreams.link import HostLink
    from bitstreams.uart import UARTRx, UARTTx
    from sw.fixedpoint import ceil_div

    class StandIn(wiring.Component):
        i: In(stream.Signature(IN_BITS))
        o: Out(stream.Signature(OUT_BITS))

        def elaborate(self, platform):
            m = Module()
            acc = Signal(IN_BITS)
            count = Signal(range(BEATS))
            m.d.comb += [self.i.ready.eq(~self.o.valid),
                         self.o.payload.eq(Cat(*[acc.rotate_left(k) for k in range(5)]))]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [acc.eq(acc ^ self.i.payload), count.eq(count + 1)]
                with m.If(count == BEATS - 1):
                    m.d.sync += [self.o.valid.eq(1), count.eq(0)]
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += [self.o.valid.eq(0), acc.eq(0)]
            return m

    class Harness(wiring.Component):
        uart_rx: In(1, init=1)
        uart_tx: Out(1, init=1)
        busy: Out(1)
        error: Out(1)

        def elaborate(self, platform):
            m = Module()
            m.submodules.acc = acc = StandIn()
            info = P.DeviceInfo(version=P.PROTOCOL_VERSION, sample_bytes=BEATS * IN_BITS // 8,
                                result_bytes=ceil_div(OUT_BITS, 8), beats=BEATS,
                                beat_bytes=IN_BITS // 8, lanes=8, clock_hz=48_000_000,
                                clocks_per_bit=16, artifact_hash=bytes(8),
                                folding=((64, 1), (8, 1)))
            m.submodules.link = link = HostLink(
                in_signature=acc.i.signature.flip(), out_signature=acc.o.signature,
                beats=BEATS, info=info, timeout_cycles=480_000)
            m.submodules.rx = rx = UARTRx(16)
            m.submodules.tx = tx = UARTTx(16)
            m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx),
                         link.rx_error.eq(rx.framing_error), self.busy.eq(link.busy),
                         self.error.eq(link.error)]
            wiring.connect(m, rx.o, link.rx)
            wiring.connect(m, link.tx, tx.i)
            wiring.connect(m, link.acc_i, acc.i)
            wiring.connect(m, acc.o, link.acc_o)
            return m

    return Harness()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="1,2,3", help="nextpnr placement seeds (default 1,2,3)")
    p.add_argument("--out", default=str(ROOT / "build" / "bench-crc"))
    args = p.parse_args(argv)

    import bitstreams.link as link
    from bitstreams.flow import synthesize_component

    rows = []
    for impl in ("xor", "lib"):
        link.CRC_IMPLEMENTATION = impl
        for seed in [int(s) for s in args.seeds.split(",")]:
            res = synthesize_component("icebreaker", link_harness(), clock_hz=48e6, seed=seed,
                                       out_dir=Path(args.out) / f"{impl}-{seed}")
            u = res["utilization"]
            rows.append({"crc": impl, "seed": seed, "fmax_mhz": res["achieved_mhz"],
                         "logic_cells": u["logic_cells"]["used"], "lut4": u["lut4"]["used"]})
            print(f"{impl:<4} seed {seed}: {res['achieved_mhz']:.2f} MHz, "
                  f"{rows[-1]['logic_cells']} logic cells, {rows[-1]['lut4']} LUT4", flush=True)
    for impl in ("xor", "lib"):
        mine = [r for r in rows if r["crc"] == impl]
        print(f"{impl:<4} mean {sum(r['fmax_mhz'] for r in mine) / len(mine):.2f} MHz, "
              f"min {min(r['fmax_mhz'] for r in mine):.2f} MHz, logic cells "
              f"{sorted({r['logic_cells'] for r in mine})}, LUT4 "
              f"{sorted({r['lut4'] for r in mine})}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "crc_timing.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
