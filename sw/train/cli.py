"""``bitspike train`` and ``bitspike plot``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sw.train.config import (
    DEFAULT_LR,
    DEFAULT_THREADS,
    DEPLOYS,
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
        p.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                       help=f"torch CPU threads (default {DEFAULT_THREADS}: the small models run "
                            "fastest on one thread, several slow down badly on a busy machine, "
                            "and on one the trained weights do not depend on the core count)")
        p.add_argument("--quiet", action="store_true", help="no progress bar or table")
        g = p.add_argument_group("data")
        g.add_argument("--dataset", default=_D.dataset,
                       help=f"one of {', '.join(sorted(DATASETS))} (default {_D.dataset})")
        g.add_argument("--root", default=None, help="dataset root for file-based datasets")
        g.add_argument("--data-seed", type=int, default=_D.data_seed,
                       help="seed of the train/test split (default 0)")
        g = p.add_argument_group("model")
        g.add_argument("--model", choices=list(MODELS), default=_D.model)
        g.add_argument("--profile", choices=list(PROFILES), default=_D.profile,
                       help="hardware: every layer binary (deployable); paper: full-precision "
                            "first and last layer")
        g.add_argument("--hidden", default=",".join(map(str, _D.hidden)),
                       help="MLP hidden sizes, comma-separated (default 128)")
        g.add_argument("--channels", default=",".join(map(str, _D.channels)),
                       help="VGG channels, 'M' = 2x2 max-pool (default 16,M,32,M)")
        g.add_argument("-T", "--time-steps", type=int, default=_D.time_steps)
        g.add_argument("--threshold", type=float, default=_D.threshold)
        g.add_argument("--leak-shift", type=_leak, default=_D.leak_shift,
                       help="k of the leak factor 1 - 2^-k, or 'none' (default 2)")
        g.add_argument("--reset", choices=["hard", "soft"], default=_D.reset)
        g.add_argument("--surrogate", choices=list(SURROGATES), default=_D.surrogate)
        g.add_argument("--surrogate-alpha", type=float, default=None)
        g.add_argument("--detach-reset", action="store_true")
        g.add_argument("--weight-scale", choices=["none", "mean", "learned"], default="none")
        g = p.add_argument_group("AGMM gate (docs/agmm.md)")
        g.add_argument("--agmm", type=_onoff, default=_D.agmm, metavar="on|off",
                       help="gate after every block (default on)")
        g.add_argument("--agmm-stat", choices=list(STATS), default=_D.agmm_stat,
                       help="E per sample, or over the batch with running statistics "
                            f"(default {_D.agmm_stat})")
        g.add_argument("--agmm-moment", choices=list(MOMENTS), default=_D.agmm_moment)
        g.add_argument("--agmm-alpha", choices=list(ALPHAS), default=_D.agmm_alpha)
        g.add_argument("--agmm-alpha-init", type=float, default=_D.agmm_alpha_init)
        g.add_argument("--agmm-deploy", choices=list(DEPLOYS), default=_D.agmm_deploy,
                       help="keep the gate at inference (folded into step gains) or remove it "
                            "with a gate-free fine-tune")
        g.add_argument("--finetune-epochs", type=int, default=_D.finetune_epochs)
        g.add_argument("--finetune-lr-factor", type=float, default=_D.finetune_lr_factor)
        g = p.add_argument_group("optimisation")
        g.add_argument("--epochs", type=int, default=_D.epochs)
        g.add_argument("--batch-size", type=int, default=_D.batch_size)
        g.add_argument("--optimizer", choices=list(OPTIMIZERS), default=_D.optimizer)
        g.add_argument("--lr", type=float, default=None,
                       help=f"learning rate (default {DEFAULT_LR})")
        g.add_argument("--momentum", type=float, default=_D.momentum)
        g.add_argument("--weight-decay", type=float, default=_D.weight_decay)
        g.add_argument("--schedule", choices=list(SCHEDULES), default=_D.schedule)
        g.add_argument("--seed", type=int, default=_D.seed)
        g.add_argument("--device", default=_D.device, help="auto (CUDA when present), cpu, cuda")

    @staticmethod
    def config_from_args(args) -> TrainConfig:
        return TrainConfig(
            dataset=args.dataset, root=args.root, data_seed=args.data_seed, model=args.model,
            hidden=args.hidden, channels=args.channels, profile=args.profile,
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
            seed=args.seed, device=args.device)

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
        p.add_argument("--labels", default=None, help="comma-separated legend labels")

    @staticmethod
    def run(args):
        from sw.train.plots import PlotError, plot_runs

        labels = args.labels.split(",") if args.labels else None
        try:
            files = plot_runs(args.runs, args.out, labels=labels)
        except PlotError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for f in files:
            print(Path(f))
        return 0
