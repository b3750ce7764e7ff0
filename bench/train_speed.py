"""Time one training step of the same binary spiking networks in bitspike and in snnTorch.

Two networks (``--model mlp``, ``conv`` or ``both``, the default). The conv network is the
``conv`` preset (digits 8x8, binary 3x3 convs 32 and 64 channels with padding 1, BatchNorm2d,
LIF, a 2x2 spike max-pool, a binary dense readout; T = 4, direct encoding): bitspike runs the
conv of all T steps of a layer as one batch, snnTorch its ``Leaky`` neurons in a time loop over
the same modules. The MLP is the default digits model: 64-128-10, every synapse binary
(sign forward, clipped STE), BatchNorm after each synapse, LIF with leak 1 - 2^-2, threshold 1,
hard reset, T = 4, direct encoding, readout = sum over time; batch 128, Adam. A step is
forward, loss, backward and optimizer step. Both sides use the same synapse and BatchNorm
modules, so the difference is the neuron and the time loop:

* ``bitspike``          sw.models.SpikingMLP (layer-1 current computed once per sample);
* ``bitspike + AGMM``   the same with the AGMM gate (the default training setting);
* ``snnTorch``          snn.Leaky neurons in a time loop over the same layer-1 current;
* ``snnTorch, per-step`` the tutorial style: layer 1 recomputed at every time step.

The implementations are timed in interleaved rounds (so a change of machine load hits all of
them alike); the table gives the median time per step and the ratio to ``bitspike``.

snnTorch is needed (``nox -s bench`` installs snntorch==1.0.0 in the bench environment only):

    nox -s bench                         # or: python bench/train_speed.py --rounds 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


CONV_CHANNELS = (32, 64, "M")


def build_conv(name, info, t_steps, snn, surrogate):
    import torch
    from torch import nn

    from sw.models import build_model
    from sw.nn import BinaryConv2d, BinaryLinear

    if name.startswith("bitspike"):
        agmm = dict(stat="batch") if "AGMM" in name else None
        return build_model("vgg", info, time_steps=t_steps, channels=CONV_CHANNELS,
                           leak_shift=2, reset="hard", agmm=agmm)
    per_step = "per-step" in name
    c1, c2 = CONV_CHANNELS[0], CONV_CHANNELS[1]
    _, h, w = info.shape

    class SnnTorchConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = BinaryConv2d(info.shape[0], c1, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(c1)
            self.lif1 = snn.Leaky(beta=0.75, threshold=1.0, reset_mechanism="zero",
                                  spike_grad=surrogate.triangular())
            self.conv2 = BinaryConv2d(c1, c2, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(c2)
            self.lif2 = snn.Leaky(beta=0.75, threshold=1.0, reset_mechanism="zero",
                                  spike_grad=surrogate.triangular())
            self.pool = nn.MaxPool2d(2)
            self.fc = BinaryLinear(c2 * (h // 2) * (w // 2), info.classes)
            self.bn3 = nn.BatchNorm1d(info.classes)

        def forward(self, x):
            x = x.float() * 2.0 ** -info.input_bits
            mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
            cur1 = None if per_step else self.bn1(self.conv1(x))
            out = 0
            for _ in range(t_steps):
                c = self.bn1(self.conv1(x)) if per_step else cur1
                spk1, mem1 = self.lif1(c, mem1)
                spk2, mem2 = self.lif2(self.bn2(self.conv2(spk1)), mem2)
                out = out + self.bn3(self.fc(self.pool(spk2).flatten(1)))
            return out

    torch.manual_seed(0)
    return SnnTorchConv()


def build(name, info, t_steps, snn, surrogate):
    import torch
    from torch import nn

    from sw.models import build_model
    from sw.nn import BinaryLinear

    if name.startswith("bitspike"):
        agmm = dict(stat="batch") if "AGMM" in name else None
        return build_model("mlp", info, time_steps=t_steps, hidden=(128,), leak_shift=2,
                           reset="hard", agmm=agmm)

    per_step = "per-step" in name

    class SnnTorchMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = BinaryLinear(info.features, 128)
            self.bn1 = nn.BatchNorm1d(128)
            self.lif1 = snn.Leaky(beta=0.75, threshold=1.0, reset_mechanism="zero",
                                  spike_grad=surrogate.triangular())
            self.fc2 = BinaryLinear(128, info.classes)
            self.bn2 = nn.BatchNorm1d(info.classes)

        def forward(self, x):
            x = x.flatten(1).float() * 2.0 ** -info.input_bits
            mem = self.lif1.reset_mem()
            cur1 = None if per_step else self.bn1(self.fc1(x))
            out = 0
            for _ in range(t_steps):
                c = self.bn1(self.fc1(x)) if per_step else cur1
                spk, mem = self.lif1(c, mem)
                out = out + self.bn2(self.fc2(spk))
            return out

    torch.manual_seed(0)
    return SnnTorchMLP()


def main(argv=None):
    p = argparse.ArgumentParser(description="training-step time: bitspike vs snnTorch")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=40, help="timed steps per implementation")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", choices=["mlp", "conv", "both"], default="both",
                   help="which network to time (default both)")
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    try:
        import snntorch as snn
        from snntorch import surrogate
    except ImportError:
        print("error: snnTorch is not installed here; run `nox -s bench`, whose environment "
              "installs snntorch==1.0.0", file=sys.stderr)
        return 2

    from sw.data import load_dataset

    torch.set_num_threads(args.threads)
    data = load_dataset("digits")
    x = torch.as_tensor(data.train.x[:args.batch])
    y = torch.as_tensor(data.train.y[:args.batch])
    kinds = ["mlp", "conv"] if args.model == "both" else [args.model]
    for i, kind in enumerate(kinds):
        if i:
            print()
        time_network(kind, data.info, x, y, args, torch, F, snn, surrogate)
    return 0


def time_network(kind, info, x, y, args, torch, F, snn, surrogate):
    names = ["bitspike", "bitspike + AGMM", "snnTorch", "snnTorch, per-step"]
    builder = build if kind == "mlp" else build_conv
    models = {n: builder(n, info, args.time_steps, snn, surrogate) for n in names}
    opts = {n: torch.optim.Adam(m.parameters(), lr=1e-3) for n, m in models.items()}

    def step(n):
        m, o = models[n], opts[n]
        o.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()

    for _ in range(args.warmup):
        for n in names:
            step(n)
    times = {n: [] for n in names}
    for _ in range(args.rounds):
        for n in names:
            t0 = time.perf_counter()
            step(n)
            times[n].append(time.perf_counter() - t0)
    base = statistics.median(times["bitspike"])
    shape = (f"MLP {info.features}-128-{info.classes}" if kind == "mlp" else
             f"conv {'x'.join(map(str, info.shape))}-{','.join(map(str, CONV_CHANNELS))}-"
             f"{info.classes}")
    print(f"one training step: {shape}, T={args.time_steps}, "
          f"batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}, "
          f"snntorch {snn.__version__}; median of {args.rounds} interleaved rounds")
    print(f"{'implementation':<20} {'ms/step':>9} {'IQR ms':>15} {'ratio':>7}")
    for n in names:
        ts = sorted(times[n])
        med = statistics.median(ts)
        q1, q3 = ts[len(ts) // 4], ts[(3 * len(ts)) // 4]
        print(f"{n:<20} {1e3 * med:>9.2f} {1e3 * q1:>7.2f}-{1e3 * q3:<7.2f} "
              f"{med / base:>7.2f}")
    print(f"snnTorch / bitspike: {statistics.median(times['snnTorch']) / base:.2f}x "
          f"(same graph), {statistics.median(times['snnTorch, per-step']) / base:.2f}x "
          f"(tutorial-style per-step loop)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
