"""AGMM study: does the gate reduce weight sign flips, speed up convergence, raise accuracy or
lower the firing rate? And which inference-time form of the gate deploys best?

Part ``flips`` trains AGMM on vs off with otherwise identical hyperparameters, over seeds, both
profiles (hardware, paper), datasets (digits, digits-events) and optimizers (Adam; SGD with
momentum and a cosine schedule, the paper's), and prints per setting: final test accuracy
(mean ± std over seeds), epochs to reach 90 % test accuracy, sign flips per optimizer step in
epoch 1 and averaged over training, and the final hidden firing rate.

Part ``deploy`` trains the default hardware MLP on digits with each way of deploying the gate
(none, kept as per-time-step step gains, removed by a gate-free fine-tune; batch or per-sample
statistics), exports every run to the integer model and prints float and integer accuracy.

    python bench/agmm_study.py                     # both parts (~15-25 min on 2 cores)
    python bench/agmm_study.py --part flips --seeds 3 --workers 2
    python bench/agmm_study.py --part deploy

Each part's table is printed and written (Markdown) into ``--out`` (default bench/results/):
``agmm_study_flips.md`` and ``agmm_study_deploy.md``, with the per-run figures beside them as
JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sw.atomic import atomic_write_text  # noqa: E402

# One thread per worker: these models are tiny, and threads fight over a shared machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

STUDY_HIDDEN = (128, 128)  # two hidden layers: the paper profile keeps a binary middle layer
OPTIMIZERS = {
    "adam": dict(optimizer="adam", lr=1e-2),
    "sgd": dict(optimizer="sgd", lr=0.1, momentum=0.9),
}


def _run(job):
    """Worker: train one configuration (and export it for the deploy part)."""
    import torch

    torch.set_num_threads(1)
    from sw.train import TrainConfig, train

    cfg = TrainConfig.from_json(job["config"])
    with tempfile.TemporaryDirectory(prefix="agmm-study-") as tmp:
        t0 = time.perf_counter()
        run = train(cfg, Path(tmp) / "run", progress=False)
        history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        out = {"job": job, "history": history, "train_s": time.perf_counter() - t0}
        if job.get("export"):
            from sw.export import ExportError, export

            out["export"] = {}
            for label, opts in job["export"].items():
                try:
                    _, rep = export(run, None, **opts)
                    out["export"][label] = {
                        "float": rep.float_accuracy, "integer": rep.integer_accuracy,
                        "agreement": rep.prediction_agreement, "spikes": rep.spike_agreement,
                        "frac_bits": rep.frac_bits, "widths": rep.widths}
                except ExportError as exc:
                    out["export"][label] = {"refused": str(exc),
                                            "float": history[-1]["test_accuracy"]}
    return out


def _slim(result):
    """Per-run figures for the JSON record (the full per-epoch history stays out)."""
    h = result["history"]
    job = {k: v for k, v in result["job"].items() if k not in ("config", "export")}
    out = {"job": job, "train_s": round(result["train_s"], 1),
           "test_accuracy": [round(r["test_accuracy"], 5) for r in h],
           "flip_rate_mean": [round(r["flip_rate_mean"], 6) for r in h],
           "firing_rate_mean": [round(r["firing_rate_mean"], 5) for r in h]}
    if "export" in result:
        out["export"] = result["export"]
    return out


def _pool_map(jobs, workers):
    from tqdm import tqdm

    results = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool, tqdm(total=len(jobs), unit="run") as bar:
        for res in pool.imap_unordered(_run, jobs):
            results.append(res)
            bar.update(1)
    return results


def _ms(values, scale=100.0, digits=2):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _epochs_to(history, target):
    for row in history:
        if row["test_accuracy"] >= target:
            return row["epoch"]
    return None


# ----------------------------------------------------------------------------------------------

def flips_jobs(args):
    from sw.train import TrainConfig

    jobs = []
    for dataset in args.datasets:
        epochs = args.epochs_events if "events" in dataset else args.epochs
        for profile in ("hardware", "paper"):
            for opt in args.optimizers:
                for agmm in (False, True):
                    for seed in range(args.seeds):
                        # the gate stays for the whole run: this part studies training
                        cfg = TrainConfig(dataset=dataset, profile=profile, hidden=STUDY_HIDDEN,
                                          agmm=agmm, agmm_deploy="keep", epochs=epochs,
                                          seed=seed, **OPTIMIZERS[opt])
                        jobs.append({"part": "flips", "dataset": dataset, "profile": profile,
                                     "optimizer": opt, "agmm": agmm, "seed": seed,
                                     "config": cfg.to_json()})
    return jobs


def flips_table(results):
    groups = {}
    for r in results:
        j = r["job"]
        groups.setdefault((j["dataset"], j["profile"], j["optimizer"], j["agmm"]), []).append(r)
    lines = ["| dataset | profile | optimizer | AGMM | test acc. (%) | epochs to 90 % | "
             "flips/step epoch 1 (%) | flips/step mean (%) | firing rate (%) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3])):
        runs = groups[key]
        acc = [r["history"][-1]["test_accuracy"] for r in runs]
        e90 = [_epochs_to(r["history"], 0.90) for r in runs]
        reached = [e for e in e90 if e is not None]
        e90s = (f"{statistics.fmean(reached):.1f}" + ("" if len(reached) == len(e90)
                                                      else f" ({len(reached)}/{len(e90)} runs)")
                if reached else "never")
        f1 = [r["history"][0]["flip_rate_mean"] for r in runs]
        fm = [statistics.fmean(h["flip_rate_mean"] for h in r["history"]) for r in runs]
        fr = [r["history"][-1]["firing_rate_mean"] for r in runs]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {'on' if key[3] else 'off'} | "
                     f"{_ms(acc)} | {e90s} | {_ms(f1, digits=3)} | {_ms(fm, digits=3)} | "
                     f"{_ms(fr, digits=1)} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------

VARIANTS = {
    "off": dict(agmm=False),
    "batch, mean, α learned": dict(agmm_stat="batch", agmm_moment="mean", agmm_alpha="learned"),
    "batch, abs, α learned": dict(agmm_stat="batch", agmm_moment="abs", agmm_alpha="learned"),
    "batch, mean, α fixed": dict(agmm_stat="batch", agmm_moment="mean", agmm_alpha="fixed"),
    "sample, mean, α learned": dict(agmm_stat="sample", agmm_moment="mean",
                                    agmm_alpha="learned"),
    "sample, abs, α learned": dict(agmm_stat="sample", agmm_moment="abs", agmm_alpha="learned"),
}


def variants_jobs(args):
    from sw.train import TrainConfig

    jobs = []
    for opt in args.optimizers:
        for label, opts in VARIANTS.items():
            for seed in range(args.seeds):
                cfg = TrainConfig(epochs=args.epochs, seed=seed, agmm_deploy="keep",
                                  **opts, **OPTIMIZERS[opt])
                jobs.append({"part": "variants", "variant": label, "optimizer": opt,
                             "seed": seed, "config": cfg.to_json()})
    return jobs


def variants_table(results):
    groups = {}
    for r in results:
        j = r["job"]
        groups.setdefault((j["optimizer"], j["variant"]), []).append(r)
    order = list(VARIANTS)
    lines = ["| optimizer | gate variant | test acc. (%) | epochs to 90 % | "
             "flips/step epoch 1 (%) | flips/step mean (%) | firing rate (%) |",
             "|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0], order.index(k[1]))):
        runs = groups[key]
        e90 = [_epochs_to(r["history"], 0.90) for r in runs]
        reached = [e for e in e90 if e is not None]
        e90s = f"{statistics.fmean(reached):.1f}" if reached else "never"
        acc = [r["history"][-1]["test_accuracy"] for r in runs]
        f1 = [r["history"][0]["flip_rate_mean"] for r in runs]
        fm = [statistics.fmean(h["flip_rate_mean"] for h in r["history"]) for r in runs]
        fr = [r["history"][-1]["firing_rate_mean"] for r in runs]
        lines.append(f"| {key[0]} | {key[1]} | {_ms(acc)} | {e90s} | {_ms(f1, digits=3)} | "
                     f"{_ms(fm, digits=3)} | {_ms(fr, digits=1)} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------

DEPLOY_OPTIONS = {
    "no gate": dict(agmm=False),
    "batch stat, kept (G[t])": dict(agmm=True, agmm_stat="batch", agmm_deploy="keep"),
    "batch stat, fine-tuned away": dict(agmm=True, agmm_stat="batch", agmm_deploy="finetune"),
    "per-sample stat, kept": dict(agmm=True, agmm_stat="sample", agmm_deploy="keep"),
    "per-sample stat, fine-tuned away": dict(agmm=True, agmm_stat="sample",
                                             agmm_deploy="finetune"),
}


def deploy_jobs(args):
    from sw.train import TrainConfig

    jobs = []
    for label, opts in DEPLOY_OPTIONS.items():
        opts = dict(opts)
        epochs = args.epochs
        if opts.get("agmm_deploy") == "finetune":
            opts["finetune_epochs"] = args.finetune_epochs
            epochs = args.epochs - args.finetune_epochs  # same number of epochs in all
        export = {"Qg=4": {"gain_bits": 4}}
        if opts.get("agmm_deploy") == "keep" and opts.get("agmm_stat") == "batch":
            export = {"Qg=4": {"gain_bits": 4}, "Qg=8": {"gain_bits": 8}}
        for seed in range(args.seeds):
            cfg = TrainConfig(epochs=epochs, seed=seed, **opts)
            jobs.append({"part": "deploy", "option": label, "seed": seed,
                         "config": cfg.to_json(), "export": export})
    return jobs


def deploy_table(results):
    rows = {}
    for r in results:
        for exp_label, e in r["export"].items():
            rows.setdefault((r["job"]["option"], exp_label), []).append(e)
    order = list(DEPLOY_OPTIONS)
    lines = ["| gate at inference | export | float acc. (%) | integer acc. (%) | "
             "prediction agreement (%) | hidden-spike agreement (%) | F | widths |",
             "|---|---|---|---|---|---|---|---|"]
    for key in sorted(rows, key=lambda k: (order.index(k[0]), k[1])):
        es = rows[key]
        if any("refused" in e for e in es):
            lines.append(f"| {key[0]} | refused | {_ms([e['float'] for e in es])} | — | — | — | "
                         f"— | — |")
            continue
        widths = sorted({"/".join(str(v) for v in e["widths"].values()) for e in es})
        lines.append(f"| {key[0]} | {key[1] if 'kept (G' in key[0] else '—'} | "
                     f"{_ms([e['float'] for e in es])} | {_ms([e['integer'] for e in es])} | "
                     f"{_ms([e['agreement'] for e in es])} | "
                     f"{_ms([e['spikes'] for e in es], digits=3)} | "
                     f"{','.join(sorted({str(e['frac_bits']) for e in es}))} | "
                     f"{', '.join(widths)} |")
    refusals = {r["job"]["option"]: e["refused"] for r in results
                for e in r["export"].values() if "refused" in e}
    notes = [f"\n{k}: export refused: {v}" for k, v in refusals.items()]
    return "\n".join(lines) + "".join(notes[:1])


# ----------------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["flips", "variants", "deploy", "all"], default="all")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=60, help="digits epochs (default 60)")
    p.add_argument("--epochs-events", type=int, default=30,
                   help="digits-events epochs (default 30)")
    p.add_argument("--finetune-epochs", type=int, default=10,
                   help="gate-free fine-tune epochs, part of --epochs (default 10)")
    p.add_argument("--datasets", default="digits,digits-events")
    p.add_argument("--optimizers", default="adam,sgd")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"),
                   help="directory for the tables (default bench/results)")
    args = p.parse_args(argv)
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.optimizers = [o for o in args.optimizers.split(",") if o]
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            p.error(f"--optimizers: unknown {o!r} (known: {', '.join(OPTIMIZERS)})")
    if args.seeds < 1:
        p.error("--seeds must be >= 1")

    t0 = time.perf_counter()
    cmd = ("python bench/agmm_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
           ).strip()
    out = Path(args.out)
    parts = []
    if args.part in ("flips", "all"):
        parts.append(("flips", flips_jobs(args), flips_table,
                      f"AGMM on vs off ({args.seeds} seeds; MLP hidden "
                      f"{','.join(map(str, STUDY_HIDDEN))}, T=4; digits {args.epochs} epochs, "
                      f"digits-events {args.epochs_events} epochs)"))
    if args.part in ("variants", "all"):
        parts.append(("variants", variants_jobs(args), variants_table,
                      f"AGMM variants ({args.seeds} seeds; default hardware MLP 64-128-10 on "
                      f"digits, T=4, {args.epochs} epochs, gate kept for the whole run)"))
    if args.part in ("deploy", "all"):
        parts.append(("deploy", deploy_jobs(args), deploy_table,
                      f"Deploying the gate ({args.seeds} seeds; default hardware MLP 64-128-10 "
                      f"on digits, T=4, {args.epochs} epochs in all, fine-tunes "
                      f"{args.finetune_epochs} of them)"))
    for name, jobs, table_fn, title in parts:
        t_part = time.perf_counter()
        res = _pool_map(jobs, args.workers)
        table = table_fn(res)
        print(table, flush=True)
        minutes = (time.perf_counter() - t_part) / 60
        text = (f"# {title}\n\nCommand: `{cmd}`\n\n{table}\n\n"
                f"Time: {minutes:.1f} min with {args.workers} worker processes.\n")
        atomic_write_text(out / f"agmm_study_{name}.md", text)
        atomic_write_text(out / f"agmm_study_{name}.json",
                      json.dumps([_slim(r) for r in res]) + "\n")
        print(f"written {out / f'agmm_study_{name}.md'} ({minutes:.1f} min)")
    print(f"total {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
