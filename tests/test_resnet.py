"""The resnet18 preset (sw.resnet): shapes, gradients, gates, autocast, and training through the
real CLI on tiny CIFAR-10 files in the real binary format, in one process and under torchrun;
export refuses the checkpoint with one line naming what the artifact cannot hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sw.data import DatasetInfo
from sw.models import MODELS, _SpikingNet, build_model
from sw.nn import LIF, BinaryConv2d
from sw.resnet import SpikingResNet18
from sw.train import state_digest

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
CIFAR = DatasetInfo("cifar10", "multibit", 8, (3, 32, 32), 10)
AGMM = dict(stat="batch", moment="mean", alpha="learned", alpha_init=1.0)
BINARY_NAMES = [f"layer{s}.{b}.conv{c}" for s in range(1, 5) for b in range(2) for c in (1, 2)]


def small(info=CIFAR, **kw):
    return build_model("resnet18", info, **{"time_steps": 2, "width": 8, "agmm": AGMM, **kw})


def test_registered_and_cifar_shapes():
    assert MODELS["resnet18"] is SpikingResNet18
    torch.manual_seed(0)
    model = small()
    assert model.layer_names == ["stem", *BINARY_NAMES, "fc"]
    assert len(model.blocks) == 18 and len(model.neurons) == 17 and len(model.shortcuts) == 16
    stem, fc = model.blocks[0].synapse, model.blocks[-1].synapse
    assert type(stem) is nn.Conv2d and stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert model.stem_pool is None
    assert type(fc) is nn.Linear and (fc.in_features, fc.out_features) == (64, 10)
    # stage widths 8-16-32-64; the first conv of stages 2-4 halves the map and has the
    # avg-pool + 1x1 conv + BN shortcut, every other shortcut is the identity
    convs = [model.blocks[k].synapse for k in range(1, 17)]
    assert [c.out_channels for c in convs] == [8] * 4 + [16] * 4 + [32] * 4 + [64] * 4
    assert [c.stride for c in convs] == [1, 1, 1, 1] + [2, 1, 1, 1] * 3
    down = [k for k, s in enumerate(model.shortcuts) if not isinstance(s, nn.Identity)]
    assert down == [4, 8, 12]
    assert [type(m) for m in model.shortcuts[4]] == [nn.AvgPool2d, nn.Conv2d, nn.BatchNorm2d]
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    shapes = {}

    def record(k):
        def hook(module, inputs, output):
            shapes[k] = tuple(output.shape)
        return hook

    hooks = [n.register_forward_hook(record(k)) for k, n in enumerate(model.neurons)]
    logits = model(x)
    for h in hooks:
        h.remove()
    assert logits.shape == (3, 10) and logits.dtype == torch.float32
    assert bool(torch.isfinite(logits).all())
    assert shapes[0] == (2, 3, 8, 32, 32)  # [T, B, C, H, W] after the stem
    assert shapes[16] == (2, 3, 64, 4, 4)  # 32 -> 16 -> 8 -> 4 over stages 2-4
    model.eval()
    assert model(x).shape == (3, 10)


def test_imagenet_stem_and_spike_input():
    torch.manual_seed(1)
    info = DatasetInfo("imagenet-like", "multibit", 8, (3, 64, 64), 100)
    model = small(info)
    stem = model.blocks[0].synapse
    assert stem.kernel_size == (7, 7) and stem.stride == (2, 2)
    assert isinstance(model.stem_pool, nn.MaxPool2d)
    assert model(torch.randint(0, 256, (2, 3, 64, 64))).shape == (2, 100)
    # odd map sizes: the stride-2 conv and the ceil-mode avg-pool shortcut agree (7 -> 4)
    odd = DatasetInfo("odd", "multibit", 8, (3, 28, 28), 10)
    assert small(odd)(torch.randint(0, 256, (2, 3, 28, 28))).shape == (2, 10)
    # spike input [B, T, C, H, W] (N-MNIST-sized event frames)
    events = DatasetInfo("events", "spike", 1, (2, 34, 34), 10, time_steps=2)
    model = small(events)
    spikes = (torch.rand(3, 2, 2, 34, 34) < 0.2).float()
    assert model(spikes).shape == (3, 10)
    with pytest.raises(ValueError, match=r"layout \[B, T=2"):
        model(spikes[:, :1])


@pytest.mark.parametrize("profile", ["hardware", "paper"])
def test_gates_binary_convs_and_gradients(profile):
    torch.manual_seed(2)
    model = small(profile=profile)
    binary = model.binary_synapses()
    assert list(binary) == BINARY_NAMES
    assert all(type(s) is BinaryConv2d for s in binary.values())
    # the stem and FC are full precision whatever the profile; a gate after every binary conv
    assert type(model.blocks[0].synapse) is nn.Conv2d and model.blocks[0].gate is None
    assert model.blocks[-1].gate is None
    assert len(model.gates) == len(binary) == 16
    assert all(model.blocks[k].gate is not None for k in range(1, 17))
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(4) % 10
    nn.functional.cross_entropy(model(x), y).backward()
    for name, syn in binary.items():
        assert syn.weight.grad is not None and float(syn.weight.grad.abs().sum()) > 0, name
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    assert float(model.gates[0].alpha.grad.abs().sum()) > 0
    assert small(agmm=None).gates == []


def test_trainer_interface_is_the_base_models():
    """The ResNet inherits the trainer's interface from the base of every model (no copy):
    the options checks, prepare, binary_synapses, gates and remove_gates."""
    from sw.spiking_net import SpikingNet

    assert issubclass(SpikingResNet18, SpikingNet) and _SpikingNet is SpikingNet
    for name in ("prepare", "binary_synapses", "gates", "remove_gates", "_gate"):
        assert name not in vars(SpikingResNet18), name
    with pytest.raises(ValueError, match=r"profile must be one of \('hardware', 'paper'\)"):
        small(profile="fpga")
    with pytest.raises(ValueError, match=r"width must be"):
        small(width=0)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(3)
    a = small()
    assert torch.equal(a.prepare(x), x.float() * a.input_scale)
    assert len(a.binary_synapses()) == len(a.gates) == 16
    a(x)  # one training-mode pass moves the gates' running statistics
    norms = [block.norm.weight.detach().clone() for block in a.blocks if block.gate is not None]
    folded = a.remove_gates(fold=True)
    assert len(folded) == 16 and all(g > 0 for g in folded)
    after = [block.norm.weight for block in a.blocks[1:17]]
    for before, now, g in zip(norms, after, folded, strict=True):
        assert torch.allclose(now, before * g)
    assert a.gates == [] and a.agmm_options is None and a(x).shape == (4, 10)


def test_autocast_keeps_spikes_and_membranes_float32():
    """Under bf16 autocast (the CPU kind here) convs run in bf16, but every LIF neuron gets a
    float32 current and the logits are float32."""
    torch.manual_seed(4)
    model = small()
    seen, convs = [], []

    def lif_hook(module, inputs, output):
        seen.append((inputs[0].dtype, output.dtype))

    def conv_hook(module, inputs, output):
        convs.append(output.dtype)

    for n in model.neurons:
        n.register_forward_hook(lif_hook)
    model.blocks[1].synapse.register_forward_hook(conv_hook)
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    assert convs == [torch.bfloat16]
    assert len(seen) == 17 and set(seen) == {(torch.float32, torch.float32)}
    assert logits.dtype == torch.float32 and bool(torch.isfinite(logits).all())
    assert all(isinstance(n, LIF) for n in model.neurons)


# --- training through the CLI on CIFAR-10 binary batches --------------------------------------

def _write_cifar_bin(folder: Path, rng, per_batch: int = 3, test: int = 4):
    """data_batch_1..5.bin and test_batch.bin: records of 1 label byte + 3072 pixel bytes
    (1024 red, 1024 green, 1024 blue, each row-major), as the original binary version."""
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test if name == "test_batch" else per_batch
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n)
        records = [bytes([int(lab)]) + img.reshape(3, -1).tobytes()
                   for lab, img in zip(labels, images, strict=True)]
        (folder / f"{name}.bin").write_bytes(b"".join(records))


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    _write_cifar_bin(root / "cifar-10-batches-bin", np.random.default_rng(12))
    return root


def _train_args(root, out, *extra):
    return ["-m", "bitspike", "train", "-o", str(out), "--dataset", "cifar10", "--root",
            str(root), "--limit", "8", "--model", "resnet18", "--width", "8", "-T", "2",
            "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--quiet", *extra]


def _run(args, env=None, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


def _digest(run):
    from sw.train import build_from_checkpoint, load_checkpoint

    model, config, _ = build_from_checkpoint(load_checkpoint(run))
    return model, config, state_digest(model)


def test_cli_trains_then_export_refuses(cifar_root, tmp_path):
    run = tmp_path / "run"
    # -W error: the training run itself raises no warning either
    proc = _run(["-W", "error", *_train_args(cifar_root, run, "--finetune-epochs", "1")])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["train", "finetune"]
    assert list(rows[0]["flip_rate"]) == BINARY_NAMES
    assert 0 < rows[0]["flip_rate_mean"] < 1  # Adam's first steps flip binary weights
    assert list(rows[0]["firing_rate"]) == ["stem", *BINARY_NAMES]
    assert list(rows[0]["alpha"]) == BINARY_NAMES and rows[1]["alpha"] == {}
    assert all(np.isfinite(r["loss"]) for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["world_size"] == 1
    model, config, digest = _digest(run)
    assert isinstance(model, SpikingResNet18) and model.width == 8 and model.gates == []
    assert (config.model, config.amp, config.limit) == ("resnet18", "auto", 8)
    assert digest == summary["rank_digests"][0]

    art = tmp_path / "art"
    proc = _run(["-m", "bitspike", "export", str(run), "-o", str(art)])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: SpikingResNet18 is a training-only model; the "
                               "deployment artifact ")
    for part in ("full-precision stem conv 'stem'", "full-precision last FC 'fc'",
                 "real-valued shortcuts", "average pooling"):
        assert part in lines[0], part
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not art.exists()


def test_amp_on_needs_cuda(tmp_path):
    proc = _run(["-m", "bitspike", "train", "-o", str(tmp_path / "x"), "--device", "cpu",
                 "--amp", "on", "--epochs", "1", "--quiet"])
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --amp on needs a CUDA device"), proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x").exists()


def test_torchrun_two_cpu_processes(cifar_root, tmp_path):
    import torch.distributed as dist

    assert dist.is_available() and dist.is_gloo_available(), "this torch build has no gloo"
    run = tmp_path / "ddp"
    proc = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 *_train_args(cifar_root, run, "--agmm-deploy", "keep")],
                env={"PYTHONWARNINGS": "ignore"}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_agree"]
    digests = summary["rank_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], digests
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and list(rows[0]["alpha"]) == BINARY_NAMES
    model, _, digest = _digest(run)
    assert len(model.gates) == 16 and digest == digests[0]


def test_amp_auto_is_for_resnet18_on_cuda_only():
    import torch

    from sw.train.loop import resolve_amp

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_amp("auto", cuda, "resnet18") is True
    for model in ("mlp", "vgg", "conv", "conv-events"):
        assert resolve_amp("auto", cuda, model) is False
        assert resolve_amp("on", cuda, model) is True
    assert resolve_amp("auto", cpu, "resnet18") is False
    assert resolve_amp("off", cuda, "resnet18") is False
