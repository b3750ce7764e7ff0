"""``bitspike train`` and ``bitspike plot``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sw.options import (
    MAX_TIME_STEPS,
    add_dataset_options,
    check_output_dir,
    int_in,
    positive_int,
)
from sw.train.config import (
    AMPS,
    DEFAULT_LR,
    DEFAULT_THREADS,
    DEPLOYS,
    GENERIC_DEFAULTS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)

_D = TrainConfig()


def _leak(text):
    if text in ("none", "None", ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int k (leak 1 - 2^-k) or 'none', "
                                         f"not {text!r}") from None


def _onoff(text):
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be 'on' or 'off', not {text!r}")


def _sizes(value) -> str:
    return ",".join(map(str, value))


def _model_help() -> str:
    """``--model``'s help: the models, then each preset with the defaults it sets."""
    from sw.models import PRESETS

    def options(p):
        return ", ".join(f"--{k} {_sizes(v) if isinstance(v, tuple) else v}"
                         for k, v in p.defaults.items())

    presets = "; ".join(f"{name}: {p.summary} ({options(p)})" for name, p in PRESETS.items())
    return ("mlp (dense), vgg (3x3 conv blocks, --channels); both deployable with --profile "
            f"hardware; resnet18 (the paper's Bi-Real-style spiking ResNet-18, --width; training "
            f"only). Presets, a vgg with tuned defaults that explicit options override: "
            f"{presets} (default mlp)")


class Train:
    """Train a BSNN; writes a run directory (docs/training.md)."""

    @staticmethod
    def configure(p):
        from sw.data import DATASETS
        from sw.models import MODELS, PROFILES
        from sw.nn import ALPHAS, MOMENTS, STATS, SURROGATES

        p.add_argument("-o", "--out", default=None,
                       help="run directory (default runs/<dataset>-<model>-<profile>-T<T>-s<seed>)")
        p.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint (its saved options)")
        p.add_argument("--force", action="store_true", help="start over in an existing --out")
        p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                       help=f"torch CPU threads (default {DEFAULT_THREADS}: the small models run "
                            "fastest on one thread, several slow down badly on a busy machine, "
                            "and on one the trained weights do not depend on the core count)")
        p.add_argument("--quiet", action="store_true", help="no progress bar or table")
        g = p.add_argument_group("data")
        # --dataset, --channels, --epochs default to None: the model preset's value, else
        # GENERIC_DEFAULTS (TrainConfig resolves them; an explicit option always wins)
        g.add_argument("--dataset", default=None,
                       help=f"one of {', '.join(sorted(DATASETS))} (default "
                            f"{GENERIC_DEFAULTS['dataset']}, or the --model preset's)")
        g.add_argument("--root", default=None,
                       help="dataset root for file-based datasets (default: none; needed by "
                            "them, see bitspike datasets --layout)")
        g.add_argument("--data-seed", type=int_in(0, 2**32 - 1), default=_D.data_seed,
                       help="seed of the train/test split and the --limit subset (default 0)")
        add_dataset_options(g)
        g = p.add_argument_group("model")
        g.add_argument("--model", choices=list(MODELS), default=_D.model, help=_model_help())
        g.add_argument("--profile", choices=list(PROFILES), default=_D.profile,
                       help="hardware: every layer binary (deployable); paper: full-precision "
                            "first and last layer")
        g.add_argument("--hidden", default=",".join(map(str, _D.hidden)),
                       help="MLP hidden sizes, comma-separated (default 128)")
        g.add_argument("--channels", default=None,
                       help=f"VGG channels, 'M' = 2x2 max-pool (default "
                            f"{_sizes(GENERIC_DEFAULTS['channels'])}, or the --model preset's)")
        g.add_argument("--width", type=int_in(1, 4096), default=_D.width,
                       help="resnet18 first-stage channels; stages 1, 2, 4, 8 times it "
                            f"(default {_D.width})")
        g.add_argument("-T", "--time-steps", type=int_in(1, MAX_TIME_STEPS),
                       default=_D.time_steps, help=f"time steps per sample, 1..{MAX_TIME_STEPS}")
        g.add_argument("--threshold", type=float, default=_D.threshold,
                       help="LIF firing threshold")
        g.add_argument("--leak-shift", type=_leak, default=_D.leak_shift,
                       help="k of the leak factor 1 - 2^-k, or 'none' (default 2)")
        g.add_argument("--reset", choices=["hard", "soft"], default=_D.reset,
                       help="after a spike: to 0 (hard) or minus the threshold (soft)")
        g.add_argument("--surrogate", choices=list(SURROGATES), default=_D.surrogate,
                       help="surrogate gradient of the spike")
        g.add_argument("--surrogate-alpha", type=float, default=None,
                       help="sharpness of the surrogate (default: the surrogate's own, 1 for "
                            "triangle)")
        g.add_argument("--detach-reset", action="store_true",
                       help="no gradient through the reset")
        g.add_argument("--weight-scale", choices=["none", "mean", "learned"], default="none",
                       help="per-output-channel scale of the binary weights")
        g = p.add_argument_group("AGMM gate (docs/agmm.md)")
        g.add_argument("--agmm", type=_onoff, default=_D.agmm, metavar="on|off",
                       help="gate after every block (default on)")
        g.add_argument("--agmm-stat", choices=list(STATS), default=_D.agmm_stat,
                       help="E per sample, or over the batch with running statistics "
                            f"(default {_D.agmm_stat})")
        g.add_argument("--agmm-moment", choices=list(MOMENTS), default=_D.agmm_moment,
                       help="the moment E of the gate's input that it normalises by")
        g.add_argument("--agmm-alpha", choices=list(ALPHAS), default=_D.agmm_alpha,
                       help="the gate's per-time-step factor alpha: learned or fixed")
        g.add_argument("--agmm-alpha-init", type=float, default=_D.agmm_alpha_init,
                       help="initial alpha")
        g.add_argument("--agmm-deploy", choices=list(DEPLOYS), default=_D.agmm_deploy,
                       help="keep the gate at inference (folded into step gains) or remove it "
                            "with a gate-free fine-tune")
        g.add_argument("--finetune-epochs", type=int_in(0), default=_D.finetune_epochs,
                       help="gate-free epochs after --epochs (--agmm-deploy finetune)")
        g.add_argument("--finetune-lr-factor", type=float, default=_D.finetune_lr_factor,
                       help="fine-tune learning rate = lr times this")
        g = p.add_argument_group("optimisation")
        g.add_argument("--epochs", type=int_in(0), default=None,
                       help=f"training epochs, before the fine-tune (default "
                            f"{GENERIC_DEFAULTS['epochs']}, or the --model preset's)")
        g.add_argument("--batch-size", type=int_in(2), default=_D.batch_size,
                       help="global batch (split across torchrun processes)")
        g.add_argument("--optimizer", choices=list(OPTIMIZERS), default=_D.optimizer,
                       help="optimiser of every parameter")
        g.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: "
                            + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
        g.add_argument("--momentum", type=float, default=_D.momentum,
                       help="SGD momentum (Adam ignores it)")
        g.add_argument("--weight-decay", type=float, default=_D.weight_decay,
                       help="weight decay of the full-precision parameters (never the latent "
                            "binary weights)")
        g.add_argument("--schedule", choices=list(SCHEDULES), default=_D.schedule,
                       help="learning rate: cosine decay per step to 0, or constant")
        g.add_argument("--seed", type=int_in(0, 2**63 - 1), default=_D.seed,
                       help="initialisation and batch order")
        g.add_argument("--device", default=_D.device, help="auto (CUDA when present), cpu, cuda")
        g.add_argument("--amp", choices=list(AMPS), default=_D.amp,
                       help="bf16 autocast of the training forward pass: auto (default) = on "
                            "CUDA for resnet18 only, on (needs CUDA), off; spikes and LIF state "
                            "stay float32")

    @staticmethod
    def config_from_args(args) -> TrainConfig:
        return TrainConfig(
            dataset=args.dataset, root=args.root, data_seed=args.data_seed,
            downsample=args.downsample, bits=args.bits, bin_us=args.bin_us, limit=args.limit,
            model=args.model,
            hidden=args.hidden, channels=args.channels, width=args.width, profile=args.profile,
            time_steps=args.time_steps, threshold=args.threshold, leak_shift=args.leak_shift,
            reset=args.reset, surrogate=args.surrogate, surrogate_alpha=args.surrogate_alpha,
            detach_reset=args.detach_reset,
            weight_scale=None if args.weight_scale == "none" else args.weight_scale,
            agmm=args.agmm, agmm_stat=args.agmm_stat, agmm_moment=args.agmm_moment,
            agmm_alpha=args.agmm_alpha, agmm_alpha_init=args.agmm_alpha_init,
            agmm_deploy=args.agmm_deploy, finetune_epochs=args.finetune_epochs,
            finetune_lr_factor=args.finetune_lr_factor, epochs=args.epochs,
            batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
            momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
            seed=args.seed, device=args.device, amp=args.amp)

    @staticmethod
    def run(args):
        from sw.data import DatasetError
        from sw.train.loop import CheckpointError, torch_threads, train

        try:
            if args.resume:
                if not args.out:
                    print("error: --resume needs --out RUN_DIR", file=sys.stderr)
                    return 2
                with torch_threads(args.threads):
                    train(None, args.out, resume=True, progress=not args.quiet)
            else:
                config = Train.config_from_args(args)
                # refused now, not after the data are loaded and the first epoch trained
                check_output_dir(args.out or "runs")
                with torch_threads(args.threads):
                    train(config, args.out, overwrite=args.force, progress=not args.quiet)
        except (TypeError, ValueError, FileExistsError, DatasetError, CheckpointError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0


class Plot:
    """PNG plots comparing runs: accuracy, sign-flip rate and firing rate per epoch."""

    @staticmethod
    def configure(p):
        p.add_argument("runs", nargs="+", help="run directories (holding metrics.jsonl)")
        p.add_argument("-o", "--out", required=True, help="directory for the PNG files")
        p.add_argument("--labels", default=None,
                       help="comma-separated legend labels (default: the run directories)")

    @staticmethod
    def run(args):
        from sw.train.plots import PlotError, plot_runs

        labels = args.labels.split(",") if args.labels else None
        check_output_dir(args.out)
        try:
            files = plot_runs(args.runs, args.out, labels=labels)
        except PlotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for f in files:
            print(Path(f))
        return 0
