"""Is quality unchanged by ganforge's fast step? ring8 trained by a plain hand-written loop.

ganforge's step fuses D's passes over real and fake, reuses the last D step's fakes for the G step
and computes no D weight gradients in the G step. This trains the ring8 recipe (same players,
initial weights, optimizers, learning-rate schedule, batch, steps and EMA) with the textbook loop
instead: separate D passes, BCE with logits, the fakes of the D step reused by the G step (as in
pytorch/examples), full backward through D. Each seed is scored by the same PacGAN/VEEGAN protocol
as bench/toy_quality.py (2,500 samples of the EMA generator), so the two can be compared seed by seed.

    .venv/bin/python bench/ring8_plain_quality.py [--seeds 0-4] [--threads 1] [--jobs 2]

Prints JSON: per seed and the mean of modes, HQ and reverse KL.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from plain_loop import plain_step

from ganforge.components import build_experiment
from ganforge.config import load_config
from ganforge.metrics import mode_metrics


def train_plain(seed: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    cfg = load_config("ring8", [f"train.seed={seed}", f"train.threads={threads}"])
    torch.manual_seed(seed)
    exp = build_experiment(cfg)  # the players' initialization follows the global seed, as in the trainer
    G, D, data, prior = exp.generator, exp.discriminator, exp.dataset, exp.prior
    og, od = cfg.optim.generator, cfg.optim.discriminator
    opt_g = torch.optim.Adam(G.parameters(), lr=og.lr, betas=og.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=od.lr, betas=od.betas)
    steps, batch = cfg.train.steps, cfg.train.batch_size
    decay = lambda step: 1.0 - step / steps  # noqa: E731  the recipe's linear schedule to 0
    sched = [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in (opt_g, opt_d)]
    ema = copy.deepcopy(G).requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        real, _ = data.sample(batch, gen)
        z = prior.sample(batch, gen)
        plain_step(G, D, opt_g, opt_d, real, z, ones, zeros)
        for s in sched:
            s.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), G.parameters(), strict=True):
                pe.lerp_(p, 1.0 - cfg.train.ema_decay)
    wall = time.perf_counter() - t0
    with torch.no_grad():
        x = ema(prior.sample(2500, torch.Generator().manual_seed(0)))
    rep = mode_metrics(x, data.modes, data.mode_stds, data.weights)
    out = {"seed": seed, "modes": int(rep.modes_captured), "hq": float(rep.hq_fraction),
           "reverse_kl": float(rep.reverse_kl), "wall_s": round(wall, 1)}
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    a, _, b = args.seeds.partition("-")
    seeds = list(range(int(a), int(b or a) + 1))
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(train_plain, seeds, [args.threads] * len(seeds)))
    print(json.dumps({
        "bench": "ring8_plain_quality", "seeds": seeds, "per_seed": rows,
        "mean_modes": float(np.mean([r["modes"] for r in rows])),
        "min_modes": min(r["modes"] for r in rows),
        "mean_hq": round(float(np.mean([r["hq"] for r in rows])), 4),
        "mean_reverse_kl": round(float(np.mean([r["reverse_kl"] for r in rows])), 4),
    }, indent=2))


if __name__ == "__main__":
    main()
