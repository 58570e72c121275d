"""Crash safety: runs killed with SIGKILL at random moments, then resumed with the same command.

    .venv/bin/python bench/crash_safety.py [--trials 20] [--seed 0] [--out bench/out/crash]

A reference run trains uninterrupted. Each trial starts the same `ganforge train` command, kills it
with SIGKILL after a random delay (uniform over the run's duration, so kills land during steps,
during checkpoint writes and during start-up), checks that every checkpoint left behind loads,
then reruns the command to the end and compares the final weights (generator, discriminator, EMA)
with the reference, bit for bit. Checkpoints are written every 10 steps to make kills during writes
frequent. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from ganforge.errors import CheckpointError
from ganforge.train.checkpoint import list_checkpoints, load_checkpoint

CFG = {
    "name": "crash-ring",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [64, 64]}, "discriminator": {"name": "mlp", "widths": [64, 64]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}},
    "train": {"steps": 1500, "batch_size": 128, "log_every": 50, "checkpoint_every": 10, "keep_checkpoints": 3,
              "progress": False, "threads": 1, "seed": 0},
}


def final(out: Path) -> dict:
    return load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])


def same(a: dict, b: dict) -> bool:
    return a["step"] == b["step"] and all(
        torch.equal(a[p][k], b[p][k]) for p in ("generator", "discriminator", "ema_generator") for k in a[p])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/crash")
    args = ap.parse_args()
    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    cfg = root / "crash.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    cmd = [sys.executable, "-m", "ganforge", "train", str(cfg), "--out"]
    t0 = time.perf_counter()
    subprocess.run(cmd + [str(root / "reference")], check=True, capture_output=True)
    duration = time.perf_counter() - t0
    ref = final(root / "reference")
    rng = random.Random(args.seed)
    trials = []
    i = 0
    # keep going until `trials` runs were really killed mid-run (a kill after the run ended counts not)
    while sum(t["killed_while_running"] for t in trials) < args.trials and i < 3 * args.trials:
        out = root / f"trial{i:02d}"
        i += 1
        delay = rng.uniform(0.5, 0.85 * duration)  # the reference duration includes start-up
        p = subprocess.Popen(cmd + [str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        killed = p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = list_checkpoints(out / "checkpoints")
        unreadable = []
        for _, path in left:
            try:
                load_checkpoint(path)
            except CheckpointError as exc:
                unreadable.append(f"{path.name}: {exc}")
        stray = [q.name for q in (out / "checkpoints").glob("*.tmp")] if (out / "checkpoints").exists() else []
        r = subprocess.run(cmd + [str(out)], capture_output=True, text=True)
        ok = r.returncode == 0 and same(ref, final(out))
        trials.append({"trial": i - 1, "kill_after_s": round(delay, 2), "killed_while_running": killed,
                       "last_checkpoint_step": left[-1][0] if left else None, "unreadable": unreadable,
                       "stray_temp_files": stray, "resumed_ok": r.returncode == 0, "bit_identical": ok})
        print(json.dumps(trials[-1]), file=sys.stderr, flush=True)
    print(json.dumps({
        "bench": "crash_safety", "trials": len(trials),
        "all_bit_identical": all(t["bit_identical"] for t in trials), "reference_duration_s": round(duration, 1),
        "killed_while_running": sum(t["killed_while_running"] for t in trials),
        "bit_identical": sum(t["bit_identical"] for t in trials),
        "unreadable_checkpoints": sum(len(t["unreadable"]) for t in trials),
        "per_trial": trials,
    }, indent=2))


if __name__ == "__main__":
    main()
