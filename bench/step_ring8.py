"""Training-step time on ring8: ganforge's trainer vs a plain hand-written PyTorch loop.

Both train the same players (built from the same recipe, same initial weights) on the same batch
size; the plain loop does what a typical hand-written GAN loop does: separate D passes on real and
fake, BCE-with-logits costs, `.item()` on both costs every step. The two are timed side by side,
interleaved in rounds, in one process, with the same thread count.

    .venv/bin/python bench/step_ring8.py [--steps 1000] [--rounds 3] [--threads 2] [--recipe ring8]

Prints JSON: seconds per step of each, and the ratio ganforge / plain (lower is better).

It also times the *floor*: the forward and backward passes of ganforge's step and nothing else
(no data draw, optimizer, cost statistics or EMA; G's forward once, D over real and fake in one
pass, D frozen in the G step). These are the same PyTorch kernels the plain loop calls, minus its
two redundant matrix products, so floor / plain bounds from below what any training loop built on
PyTorch's kernels can reach against the plain loop on this machine; the floor with the two fused
Adam steps added bounds any such loop that also steps torch.optim's optimizers.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from plain_loop import plain_step

from ganforge.components import build_experiment
from ganforge.config import load_config
from ganforge.train.trainer import _STATS, Trainer


def plain_loop(G, D, dataset, latent_dim, batch, steps, lr_g, lr_d, betas, seed=0):
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
    gen = torch.Generator().manual_seed(seed)
    ones = torch.ones(batch)
    zeros = torch.zeros(batch)
    t0 = time.perf_counter()
    for _ in range(steps):
        real, _ = dataset.sample(batch, gen)
        z = torch.randn(batch, latent_dim, generator=gen)
        loss_d, loss_g = plain_step(G, D, opt_g, opt_d, real, z, ones, zeros)
        loss_d.item(), loss_g.item()
    return (time.perf_counter() - t0) / steps


def ganforge_loop(cfg, steps, compile_players=False):
    trainer = Trainer(cfg, None)
    s = trainer.setup()
    if compile_players:  # torch.compile of both players (inductor, dynamic=False); measured, not shipped
        trainer.experiment.generator.compile(dynamic=False)
        trainer.experiment.discriminator.compile(dynamic=False)
    sums = torch.zeros(len(_STATS))
    # a fresh trainer each round: 3 untimed steps first (for compiled players, the compilation for
    # every grad mode and batch size they meet); the caller's round 0 warms up everything else
    for _ in range(3):
        trainer._set_lrs(s)
        trainer.train_step(s, sums, want_norms=False)
        s.step += 1
    t0 = time.perf_counter()
    for i in range(steps):
        trainer._set_lrs(s)
        trainer.train_step(s, sums, want_norms=(i + 1) % cfg.train.log_every == 0)
        s.step += 1
    sums.tolist()
    return (time.perf_counter() - t0) / steps


def floor_loop(G, D, dataset, latent_dim, batch, steps, optimizers=False, seed=0):
    """The passes that ganforge's alternating step cannot skip, on pre-drawn batches; with
    ``optimizers``, also the two fused Adam steps (gradients cleared by hand, no other work)."""
    gen = torch.Generator().manual_seed(seed)
    batches = [(dataset.sample(batch, gen)[0], torch.randn(batch, latent_dim, generator=gen)) for _ in range(steps)]
    d_params, g_params = list(D.parameters()), list(G.parameters())
    opt_d = torch.optim.Adam(d_params, lr=1e-4, betas=(0.5, 0.999), fused=True) if optimizers else None
    opt_g = torch.optim.Adam(g_params, lr=1e-4, betas=(0.5, 0.999), fused=True) if optimizers else None
    t0 = time.perf_counter()
    for real, z in batches:
        fake = G(z)
        out = D(torch.cat([real, fake.detach()]))
        for p in d_params:
            p.grad = None
        out.mean().backward()
        if opt_d is not None:
            opt_d.step()
        for p in d_params:
            p.requires_grad_(False)
        for p in g_params:
            p.grad = None
        D(fake).mean().backward()
        for p in d_params:
            p.requires_grad_(True)
        if opt_g is not None:
            opt_g.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="ring8")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="torch.compile both players on ganforge's side")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides for ganforge's side, e.g. train.precision=bf16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.recipe, ["train.progress=false", f"train.threads={args.threads}", *args.set])
    exp = build_experiment(cfg)
    G0, D0 = copy.deepcopy(exp.generator), copy.deepcopy(exp.discriminator)
    plain, ours, floor, floor_opt = [], [], [], []
    for r in range(args.rounds + 1):  # round 0 is warm-up
        p = plain_loop(copy.deepcopy(G0), copy.deepcopy(D0), exp.dataset, exp.prior.latent_dim,
                       cfg.train.batch_size, args.steps, cfg.optim.generator.lr, cfg.optim.discriminator.lr,
                       cfg.optim.generator.betas)
        o = ganforge_loop(cfg, args.steps, args.compile)
        f = floor_loop(copy.deepcopy(G0), copy.deepcopy(D0), exp.dataset, exp.prior.latent_dim,
                       cfg.train.batch_size, args.steps)
        fo = floor_loop(copy.deepcopy(G0), copy.deepcopy(D0), exp.dataset, exp.prior.latent_dim,
                        cfg.train.batch_size, args.steps, optimizers=True)
        if r:
            plain.append(p)
            ours.append(o)
            floor.append(f)
            floor_opt.append(fo)
    p, o, f, fo = min(plain), min(ours), min(floor), min(floor_opt)
    print(json.dumps({
        "bench": "step_ring8", "recipe": args.recipe, "threads": args.threads, "batch_size": cfg.train.batch_size,
        "n_critic": cfg.train.n_critic, "overrides": args.set, "compiled": args.compile, "steps_per_round": args.steps, "rounds": args.rounds,
        "plain_s_per_step": round(p, 6), "ganforge_s_per_step": round(o, 6), "ratio_ganforge_over_plain": round(o / p, 3),
        "floor_s_per_step": round(f, 6), "ratio_floor_over_plain": round(f / p, 3),
        "floor_with_fused_adam_s_per_step": round(fo, 6), "ratio_floor_with_fused_adam_over_plain": round(fo / p, 3),
        "note": "ganforge step includes n_critic D steps, EMA and the recipe's options (pack, penalties)",
    }, indent=2))


if __name__ == "__main__":
    main()
