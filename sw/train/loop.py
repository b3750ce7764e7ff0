"""The training loop: single process or DistributedDataParallel under ``torchrun``.

Run directory layout (the same with one or many processes; only rank 0 writes)::

    <run>/config.json       the TrainConfig
    <run>/checkpoint.pt     latest state (atomic: written to a temporary file, then renamed)
    <run>/metrics.jsonl     one JSON object per finished epoch
    <run>/summary.json      final figures (written when the run completes)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from sw.atomic import atomic_path, atomic_write_json, atomic_write_text
from sw.train.config import DEFAULT_THREADS, TrainConfig
from sw.train.metrics import FlipCounter, SpikeMonitor

__all__ = [
    "torch_threads", "train", "evaluate", "load_checkpoint", "build_from_checkpoint",
    "load_data", "state_digest", "resolve_device", "resolve_amp", "CHECKPOINT", "CheckpointError",
]

CHECKPOINT = "checkpoint.pt"
FORMAT = "bitspike-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing or is not a bitspike training checkpoint."""


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """"auto": CUDA (``cuda:<local rank>``) when available, else CPU."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {spec!r}"
                         ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but CUDA is not available here")
    return dev


#: the models whose training "--amp auto" runs under bf16 autocast on CUDA (the large ones; the
#: small deployable models train in float32 everywhere, so a GPU run matches a CPU run's numerics)
AMP_AUTO_MODELS = ("resnet18",)


def resolve_amp(mode: str, device: torch.device, model: str = "resnet18") -> bool:
    """Whether the training forward pass runs under bf16 autocast: "on"; "auto" on CUDA for the
    models of :data:`AMP_AUTO_MODELS`; never on CPU ("on" there is an error)."""
    if mode == "on" and device.type != "cuda":
        raise ValueError(f"--amp on needs a CUDA device (bf16 autocast is used on CUDA only), "
                         f"but this run is on {device}; use --amp auto or --amp off")
    return mode == "on" or (mode == "auto" and device.type == "cuda"
                            and model in AMP_AUTO_MODELS)


def load_data(config: TrainConfig):
    """The dataset of a config, from ``sw.data``."""
    from sw.data import load_dataset

    return load_dataset(config.dataset, root=config.root, time_steps=config.time_steps,
                        seed=config.data_seed, downsample=config.downsample, bits=config.bits,
                        bin_us=config.bin_us, limit=config.limit)


def state_digest(model) -> str:
    """SHA-256 over every parameter and buffer of ``model`` (name order)."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Dist:
    """Process-group facts; a single process when WORLD_SIZE is unset or 1."""

    def __init__(self, device_spec: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        self.device = resolve_device(device_spec, self.local_rank)
        self._owns_group = False
        if self.enabled:
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                if self.device.type == "cuda":
                    torch.cuda.set_device(self.device)
                dist.init_process_group(backend=backend)
                self._owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def sync_buffers(self, model):
        """Rank 0's BatchNorm/gate running statistics everywhere (they drift per rank)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for b in model.buffers():
            dist.broadcast(b, 0)

    def gather_str(self, text: str) -> list[str]:
        if not self.enabled:
            return [text]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, text)
        return out

    def close(self):
        if self._owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------

def load_checkpoint(path, *, nir: bool = False) -> dict:
    """Read a checkpoint (a file, or a run directory holding ``checkpoint.pt``).

    ``nir``: also accept the checkpoint ``bitspike nir import`` writes (format
    :data:`sw.nir_checkpoint.FORMAT`, read by :func:`sw.nir_checkpoint.from_file`),
    for the commands that fold one (``bitspike export``, ``bitspike nir export``); everywhere
    else it is refused, saying so."""
    from sw import nir_checkpoint

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (expected a file written by "
                              f"'bitspike train', or its run directory)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc})") from None
    if isinstance(ckpt, dict) and ckpt.get("format") == nir_checkpoint.FORMAT:
        if not nir:
            raise CheckpointError(f"{path}: a NIR import checkpoint (written by 'bitspike nir "
                                  f"import'), not a training run; 'bitspike export' folds it "
                                  f"into an artifact")
        ckpt["path"] = str(path)
        try:
            return nir_checkpoint.from_file(ckpt, path)
        except nir_checkpoint.CheckpointError as exc:
            raise CheckpointError(str(exc)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a bitspike training checkpoint (format "
                              f"{ckpt.get('format') if isinstance(ckpt, dict) else None!r}, "
                              f"expected {FORMAT!r})")
    if ckpt.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}; this "
                              f"bitspike reads version {FORMAT_VERSION}")
    ckpt["path"] = str(path)
    return ckpt


def _info_from_json(obj):
    from sw.data import DatasetInfo

    obj = dict(obj)
    obj["shape"] = tuple(obj["shape"])
    return DatasetInfo(**obj)


def build_from_checkpoint(ckpt: dict):
    """``(model, config, dataset info)`` with the checkpoint's weights, in eval mode."""
    from sw.models import build_model

    config = TrainConfig.from_json(ckpt["config"])
    info = _info_from_json(ckpt["dataset"])
    model = build_model(config.model, info, **config.model_options())
    if ckpt.get("gates_removed"):
        model.remove_gates(fold=False)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, config, info


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model, x, y, *, batch_size: int = 1024, device=None) -> dict:
    """Accuracy, loss, firing rates and predictions of ``model`` (eval mode) on a split.

    ``x`` and ``y`` are numpy arrays or tensors in the dataset's layout.
    """
    device = device or next(model.parameters()).device
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    was_training = model.training
    model.eval()
    preds, loss = [], 0.0
    try:
        with SpikeMonitor(model, model.layer_names) as mon:
            for i in range(0, len(y), batch_size):
                xb = x[i:i + batch_size].to(device)
                yb = y[i:i + batch_size].to(device)
                logits = model(xb)
                loss += float(F.cross_entropy(logits, yb, reduction="sum"))
                preds.append(logits.argmax(1).cpu())
    finally:
        model.train(was_training)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    n = max(1, len(y))
    return {"accuracy": float((pred == y.cpu()).float().sum()) / n, "loss": loss / n,
            "firing_rate": mon.rates(), "predictions": pred.numpy()}


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def _param_groups(model, weight_decay):
    binary = {id(s.weight) for s in model.binary_synapses().values()}
    latent = [p for p in model.parameters() if id(p) in binary]
    other = [p for p in model.parameters() if id(p) not in binary]
    return [{"params": latent, "weight_decay": 0.0},
            {"params": other, "weight_decay": weight_decay}]


def _optimizer(config, model, lr):
    groups = _param_groups(model, config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=config.momentum)


def _lr_at(config, base, step, total):
    if config.schedule == "constant" or total <= 0:
        return base
    return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def _gate_log(model) -> tuple[dict, dict]:
    alpha, gain = {}, {}
    for name, block in zip(model.layer_names, model.blocks, strict=True):
        if block.gate is None:
            continue
        alpha[name] = [round(float(a), 5) for a in block.gate.alpha.detach().cpu()]
        g = block.gate.inference_gain()
        g = block.gate.running_gain if g is None else g
        gain[name] = [round(float(v), 5) for v in g.detach().cpu()]
    return alpha, gain


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63)


@contextmanager
def torch_threads(threads: int | None = DEFAULT_THREADS) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(threads)`` (None or 0: torch's own count),
    restoring the old count after."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train(config: TrainConfig | None = None, out_dir=None, *, resume: bool = False,
          overwrite: bool = False, progress: bool = True, data=None,
          stop_after: int | None = None) -> Path:
    """Train a model and return its run directory.

    Parameters
    ----------
    config : TrainConfig
        Ignored (may be None) when resuming: the checkpoint's config is used.
    out_dir : path
        Run directory; default ``runs/<dataset>-<model>-<profile>-T<T>-s<seed>``.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` (same results as an uninterrupted run).
    overwrite : bool
        Start afresh even if ``out_dir`` holds a checkpoint.
    progress : bool
        Progress bar and final table on stdout (rank 0 only).
    data : sw.data.Dataset, optional
        Already loaded dataset (else loaded from the config).
    stop_after : int, optional
        Stop after this many epochs in this call (the run stays resumable; no summary yet).
    """
    if not resume and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(config).__name__}")
    if out_dir is None:
        if config is None:
            raise ValueError("out_dir is needed to resume")
        out_dir = Path("runs") / (f"{config.dataset}-{config.model}-{config.profile}-"
                                  f"T{config.time_steps}-s{config.seed}")
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT
    ckpt = None
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        config = TrainConfig.from_json(ckpt["config"])
    elif ckpt_path.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a run ({CHECKPOINT}); resume it "
                              f"(--resume) or start over (--force)")

    dist = _Dist(config.device)
    try:
        return _train(config, out_dir, ckpt, dist, progress and dist.main, data, stop_after)
    finally:
        dist.close()


def _train(config, out_dir, ckpt, dist, progress, data, stop_after=None):
    from sw.models import build_model

    device = dist.device
    # bf16 autocast around the forward pass and loss; the models keep gates, LIF state and
    # spikes float32 (SynapseBlock casts its output back), and evaluation runs in float32
    autocast = ((lambda: torch.autocast(device.type, dtype=torch.bfloat16))
                if resolve_amp(config.amp, device, config.model) else nullcontext)
    data = data if data is not None else load_data(config)
    info = data.info
    xtr = torch.as_tensor(data.train.x)
    ytr = torch.as_tensor(data.train.y)
    xte, yte = data.test.x, data.test.y

    torch.manual_seed(config.seed)
    model = build_model(config.model, info, **config.model_options())
    history: list[dict] = []
    start_epoch, gates_removed = 0, False
    if ckpt is not None:
        if ckpt.get("gates_removed"):
            model.remove_gates(fold=False)
            gates_removed = True
        model.load_state_dict(ckpt["model"])
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"])
    model.to(device)

    def phase_of(epoch):
        return "train" if epoch < config.epochs else "finetune"

    def make_opt():
        base = config.learning_rate
        if gates_removed:
            base *= config.finetune_lr_factor
        return _optimizer(config, model, base), base

    opt, base_lr = make_opt()
    if ckpt is not None and ckpt.get("optimizer") is not None:
        opt.load_state_dict(ckpt["optimizer"])

    n = len(ytr)
    batch = config.batch_size
    steps_per_epoch = math.ceil(n / batch)
    net = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "config.json", config.to_json())

    flips = FlipCounter(model.binary_synapses())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.total_epochs, initial=start_epoch, unit="epoch",
                   desc=f"train {config.dataset}/{config.model}", dynamic_ncols=True)
    t_start = time.perf_counter() - (history[-1]["time_s"] if history else 0.0)

    end_epoch = config.total_epochs
    if stop_after is not None:
        end_epoch = min(end_epoch, start_epoch + stop_after)
    for epoch in range(start_epoch, end_epoch):
        phase = phase_of(epoch)
        if phase == "finetune" and not gates_removed:
            model.remove_gates(fold=True)
            gates_removed = True
            if dist.enabled:
                net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
            opt, base_lr = make_opt()
        phase_start = 0 if phase == "train" else config.epochs
        phase_epochs = config.epochs if phase == "train" else config.finetune_epochs
        total_steps = phase_epochs * steps_per_epoch

        t0 = time.perf_counter()
        model.train()
        flips.reset()
        gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))
        perm = torch.randperm(n, generator=gen)
        loss_sum = correct = count = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            if len(idx) < 2 * dist.world:
                continue  # BatchNorm needs two samples per process
            local = idx[dist.rank::dist.world]
            xb, yb = xtr[local].to(device), ytr[local].to(device)
            lr = _lr_at(config, base_lr, (epoch - phase_start) * steps_per_epoch + s,
                        total_steps)
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast():
                logits = net(xb)
                loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            flips.before()
            opt.step()
            flips.after()
            loss_sum += float(loss.detach()) * len(local)
            correct += float((logits.detach().argmax(1) == yb).sum())
            count += len(local)
        loss_sum, correct, count = dist.sum([loss_sum, correct, count])
        dist.sync_buffers(model)
        ev = evaluate(model, xte, yte, device=device)
        flip = flips.rates()
        alpha, gain = _gate_log(model)
        elapsed = time.perf_counter() - t_start
        row = {
            "epoch": epoch + 1,
            "phase": phase,
            "lr": opt.param_groups[0]["lr"],
            "loss": loss_sum / max(count, 1),
            "train_accuracy": correct / max(count, 1),
            "test_accuracy": ev["accuracy"],
            "test_loss": ev["loss"],
            "flip_rate": flip,
            "flip_rate_mean": (sum(flip.values()) / len(flip)) if flip else 0.0,
            "firing_rate": ev["firing_rate"],
            "firing_rate_mean": (sum(ev["firing_rate"].values()) / len(ev["firing_rate"])
                                 if ev["firing_rate"] else 0.0),
            "alpha": alpha,
            "gate_gain": gain,
            "epoch_time_s": time.perf_counter() - t0,
            "time_s": elapsed,
        }
        history.append(row)
        if dist.main:
            state = {
                "format": FORMAT, "version": FORMAT_VERSION,
                "config": config.to_json(), "dataset": _info_json(info),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(), "epoch": epoch + 1,
                "gates_removed": gates_removed, "history": history,
                "torch_version": str(torch.__version__), "world_size": dist.world,
            }
            with atomic_path(out_dir / CHECKPOINT) as tmp:
                torch.save(state, tmp)
            atomic_write_text(out_dir / "metrics.jsonl",
                               "".join(json.dumps(r) + "\n" for r in history))
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.3f}", train=f"{row['train_accuracy']:.3f}",
                            test=f"{row['test_accuracy']:.3f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    if end_epoch < config.total_epochs:
        return out_dir

    digests = dist.gather_str(state_digest(model))
    if dist.main:
        last = history[-1] if history else {}
        summary = {
            "epochs": len(history),
            "test_accuracy": last.get("test_accuracy"),
            "train_accuracy": last.get("train_accuracy"),
            "best_test_accuracy": max((r["test_accuracy"] for r in history), default=None),
            "flip_rate_mean": (sum(r["flip_rate_mean"] for r in history) / len(history)
                               if history else None),
            "firing_rate": last.get("firing_rate"),
            "time_s": last.get("time_s"),
            "world_size": dist.world,
            "device": str(device),
            "rank_digests": digests,
            "ranks_agree": len(set(digests)) == 1,
        }
        atomic_write_json(out_dir / "summary.json", summary)
        if progress:
            _print_table(config, history, out_dir)
    return out_dir


def _info_json(info) -> dict:
    obj = asdict(info)
    obj["shape"] = list(info.shape)
    return obj


def _print_table(config, history, out_dir):
    if not history:
        print(f"{out_dir}: no epochs run")
        return
    last = history[-1]
    gate = "off" if not config.agmm else f"{config.agmm_stat}/{config.agmm_deploy}"
    rows = [
        ("run", str(out_dir)),
        ("model", f"{config.model} {config.profile} T={config.time_steps} agmm={gate}"),
        ("epochs", f"{len(history)} ({last['time_s']:.1f} s)"),
        ("train accuracy", f"{100 * last['train_accuracy']:.2f} %"),
        ("test accuracy", f"{100 * last['test_accuracy']:.2f} % (best "
                          f"{100 * max(r['test_accuracy'] for r in history):.2f} %)"),
        ("sign flips/step", f"{100 * history[0]['flip_rate_mean']:.3f} % (epoch 1), "
                            f"{100 * sum(r['flip_rate_mean'] for r in history) / len(history):.3f}"
                            f" % (mean)"),
        ("firing rate", ", ".join(f"{k} {100 * v:.1f} %" for k, v in last["firing_rate"].items())
         or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
