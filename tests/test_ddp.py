"""Two CPU processes under torchrun (gloo): same results layout, both ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_ddp_two_processes_on_digits(tmp_path):
    import torch.distributed as dist

    assert dist.is_available() and dist.is_gloo_available(), "this torch build has no gloo"
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "bitspike", "train", "-o", str(run), "--epochs", "1", "--hidden", "32",
           "--quiet", "--device", "cpu", "--agmm-deploy", "keep"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl", "summary.json"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["rank_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], digests
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["test_accuracy"] > 0.3
    # the checkpoint holds the weights both ranks agreed on
    from sw.train import build_from_checkpoint, load_checkpoint, state_digest

    model, _, _ = build_from_checkpoint(load_checkpoint(run))
    assert state_digest(model) == digests[0]
