"""A recipe's training step in fp32 vs bf16 autocast (fp32 master weights), side by side.

    .venv/bin/python bench/step_precision.py [--recipe mnist-dcgan] [--steps 40] [--rounds 3]
                                             [--threads 1] [--set data.path=../shared/data/mnist ...]

Builds one trainer per variant (fp32; bf16; bf16 + channels-last) from the same recipe, seed and
initial weights, and times ``--steps`` full trainer steps of each in interleaved rounds in one
process (round 0 is warm-up); the best round of each is reported with the speed-up over fp32.
MNIST recipes read ``--data-path`` (default ../shared/data/mnist). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganforge.config import load_config
from ganforge.train.trainer import _STATS, Trainer

DEFAULT_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
VARIANTS = {
    "fp32": ["train.precision=fp32", "train.channels_last=false"],
    "bf16": ["train.precision=bf16", "train.channels_last=false"],
    "bf16_channels_last": ["train.precision=bf16", "train.channels_last=true"],
}


def time_steps(trainer: Trainer, s, steps: int, log_every: int) -> float:
    sums = torch.zeros(len(_STATS))
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer._set_lrs(s)
        trainer.train_step(s, sums, want_norms=(s.step + 1) % log_every == 0)
        s.step += 1
    sums.tolist()  # the statistics' one read-back per window
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="mnist-dcgan")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-path", type=Path, default=DEFAULT_MNIST)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = ["train.progress=false", f"train.threads={args.threads}", *args.set]
    if args.recipe.startswith("mnist"):
        base += [f"data.path={args.data_path}", "data.split=test"]
    trainers = {}
    for name, sets in VARIANTS.items():
        cfg = load_config(args.recipe, [*base, *sets])
        tr = Trainer(cfg, None)
        trainers[name] = (tr, tr.setup(), cfg.train.log_every)
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for r in range(args.rounds + 1):
        for name, (tr, s, log_every) in trainers.items():
            t = time_steps(tr, s, args.steps, log_every)
            if r:
                times[name].append(t)
    best = {k: min(v) for k, v in times.items()}
    print(json.dumps({
        "bench": "step_precision", "recipe": args.recipe, "threads": args.threads, "steps_per_round": args.steps,
        "rounds": args.rounds, "overrides": args.set,
        "s_per_step": {k: round(v, 5) for k, v in best.items()},
        "speedup_over_fp32": {k: round(best["fp32"] / v, 3) for k, v in best.items()},
        "all_rounds_s_per_step": {k: [round(x, 5) for x in v] for k, v in times.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
