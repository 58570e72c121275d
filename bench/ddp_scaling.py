"""Distributed data-parallel training on this machine: samples/s of 2 processes (torchrun, gloo)
against 1 process with the same thread budget, and how far the two trajectories drift apart.

    .venv/bin/python bench/ddp_scaling.py [--recipes mnist-dcgan ring8] [--steps 300] [--threads 2]
                                          [--data-path ../shared/data/mnist]

For each recipe, with the same config and global batch (train.batch_size):

- 1 process with ``--threads`` threads, and ``--threads`` processes with 1 thread each;
- samples/s = global batch x steps/s over the log windows after the first (warm-up) one, read
  from each run's metrics.jsonl;
- the largest absolute difference between the two runs' weights after ``--equiv-steps`` steps
  (fp32, ``train.sync_batch_norm: true`` so that batch norm sees the global batch; the equivalence
  tests in tests/train/test_distributed.py assert < 1e-5 after 20 steps). The timed runs keep the
  recipe's default (each process normalizes with its own slice). As a control, the same run on 1
  process at 1 vs 2 threads, which differ only in the order of floating-point reductions: Adam
  turns gradient components at rounding level into steps of size lr (m / sqrt(v) is about +-1), so
  convolutional players drift apart by ~lr within a few steps either way.

Recipes that need MNIST are skipped when ``--data-path`` is absent. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ganforge.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def torchrun(nproc: int, recipe: str, out: Path, sets: list[str]) -> float:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ganforge", "train", recipe, "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"torchrun failed ({recipe}, {nproc} processes):\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0


def samples_per_sec(out: Path, batch: int) -> float:
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines() if s.strip()]
    rows = [r for r in rows if r.get("steps_per_sec")]
    prev, total, steps = rows[0]["step"], 0.0, 0
    for r in rows[1:]:  # the first window holds the warm-up
        total += (r["step"] - prev) / r["steps_per_sec"]
        steps += r["step"] - prev
        prev = r["step"]
    return batch * steps / total


def max_weight_diff(a: Path, b: Path) -> float:
    from ganforge.train.checkpoint import list_checkpoints, load_checkpoint

    sa = load_checkpoint(list_checkpoints(a / "checkpoints")[-1][1])
    sb = load_checkpoint(list_checkpoints(b / "checkpoints")[-1][1])
    assert sa["step"] == sb["step"]
    return max(float((sa[p][k].double() - sb[p][k].double()).abs().max())
               for p in ("generator", "discriminator") for k in sa[p])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["mnist-dcgan", "ring8"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--equiv-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="the thread budget shared by the processes")
    ap.add_argument("--data-path", type=Path, default=DEFAULT_MNIST)
    args = ap.parse_args()
    results = []
    for recipe in args.recipes:
        base = ["train.progress=false", "train.ema_decay=0", "train.eval_every=0"]
        if recipe.startswith("mnist"):
            if not args.data_path.exists():
                results.append({"recipe": recipe, "skipped": f"no MNIST at {args.data_path}"})
                continue
            base += [f"data.path={args.data_path}", "data.split=test"]
        batch = load_config(recipe, [s for s in base if s.startswith("data.")]).train.batch_size
        log_every = max(args.steps // 6, 1)
        row: dict = {"recipe": recipe, "global_batch": batch, "steps": args.steps, "thread_budget": args.threads}
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            timing = [*base, f"train.steps={args.steps}", f"train.log_every={log_every}",
                      f"train.checkpoint_every={args.steps}"]
            wall1 = torchrun(1, recipe, t / "one", [*timing, f"train.threads={args.threads}"])
            wall2 = torchrun(args.threads, recipe, t / "two", [*timing, "train.threads=1"])
            s1, s2 = samples_per_sec(t / "one", batch), samples_per_sec(t / "two", batch)
            row.update({"one_process_samples_per_sec": round(s1, 1), "n_processes": args.threads,
                        "n_process_samples_per_sec": round(s2, 1), "speedup": round(s2 / s1, 3),
                        "wall_s_one": round(wall1, 1), "wall_s_n": round(wall2, 1)})
            equiv = [*base, f"train.steps={args.equiv_steps}", f"train.checkpoint_every={args.equiv_steps}",
                     f"train.log_every={args.equiv_steps}", "train.threads=1", "train.sync_batch_norm=true"]
            torchrun(1, recipe, t / "eq1", equiv)
            torchrun(args.threads, recipe, t / "eq2", equiv)
            # the control: 1 process at 2 threads, which changes only the order of floating-point
            # reductions inside the kernels; how far that alone moves the weights is the noise floor
            torchrun(1, recipe, t / "eq1b", [*equiv[:-2], "train.threads=2", equiv[-1]])
            row["equivalence_steps"] = args.equiv_steps
            row["equivalence_max_abs_weight_diff"] = max_weight_diff(t / "eq1", t / "eq2")
            row["control_1proc_1thread_vs_2threads_max_abs_weight_diff"] = max_weight_diff(t / "eq1", t / "eq1b")
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"bench": "ddp_scaling", "backend": "gloo", "results": results}, indent=2))


if __name__ == "__main__":
    main()
