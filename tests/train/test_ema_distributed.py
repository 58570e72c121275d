"""The EMA generator's standing statistics in a 2-process run with synchronized batch norm: measured
locally in each process (no all-reduce, so no process waits on another), they equal one process's."""

from __future__ import annotations

import subprocess
import sys

import yaml

from ganforge.train.checkpoint import list_checkpoints, load_checkpoint

BN_CFG = {
    "name": "ddp-bn-ema",
    "data": {"name": "digits", "resolution": 8},
    "model": {"generator": {"name": "dcgan", "ngf": 8}, "discriminator": {"name": "dcgan", "ndf": 8}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 8}},
    "train": {"steps": 20, "batch_size": 16, "log_every": 10, "checkpoint_every": 10, "progress": False,
              "threads": 1, "seed": 1, "ema_decay": 0.99},
}
TOL = 1e-5  # as tests/train/test_distributed.py: 1 vs 2 processes differ in summation order only


def torchrun(n: int, cfg_path, out, *sets: str) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "ganforge", "train", str(cfg_path), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]


def test_two_processes_with_sync_batch_norm_have_the_one_process_ema_statistics(tmp_path):
    cfg = tmp_path / "bn.yaml"
    cfg.write_text(yaml.safe_dump(BN_CFG))
    torchrun(1, cfg, tmp_path / "one")
    torchrun(2, cfg, tmp_path / "two", "train.sync_batch_norm=true")
    one, two = (load_checkpoint(list_checkpoints(tmp_path / d / "checkpoints")[-1][1]) for d in ("one", "two"))
    assert one["step"] == two["step"] == 20
    assert one["ema_statistics"] == two["ema_statistics"] == "standing"
    running = [k for k in one["ema_generator"] if k.endswith(("running_mean", "running_var"))]
    assert running
    for k in one["ema_generator"]:
        diff = (one["ema_generator"][k].double() - two["ema_generator"][k].double()).abs().max().item()
        assert diff < TOL, (k, diff)
    # and they are the EMA copy's own, not the raw generator's
    assert all(not (one["ema_generator"][k] - one["generator"][k]).abs().max().item() < TOL for k in running)
