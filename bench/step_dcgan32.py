"""DCGAN at 32x32 (ngf = ndf = 64, batch 64): ganforge's step vs a plain hand-written fp32 loop.

The plain loop is what pytorch/examples' dcgan does: separate D passes on real and fake, BCE with
logits, `.item()` on both costs every step, fp32. ganforge runs the same players (same initial
weights) through its trainer, in fp32 and with bf16 autocast (fp32 master weights), optionally
channels-last. Rounds are interleaved in one process; the best round of each is reported.
FLOPs per step are counted with torch.utils.flop_counter on one plain step.

    .venv/bin/python bench/step_dcgan32.py [--steps 6] [--rounds 3] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import plain_loop
import torch
from torch.utils.flop_counter import FlopCounterMode

from ganforge.config import config_from_dict
from ganforge.data.base import Dataset
from ganforge.train.trainer import _STATS, Trainer


class RandomImages(Dataset):
    """Fixed random 3x32x32 images in [-1, 1] (speed does not depend on content)."""

    def __init__(self, n: int = 4096):
        self.shape = (3, 32, 32)
        self.examples = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


def config(precision: str, channels_last: bool, device: str, threads: int):
    return config_from_dict({
        "name": "dcgan32",
        "model": {"generator": {"name": "dcgan", "ngf": 64}, "discriminator": {"name": "dcgan", "ndf": 64}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 100}, "cost": {"name": "non_saturating"}},
        "train": {"batch_size": 64, "progress": False, "threads": threads, "precision": precision,
                  "channels_last": channels_last, "device": device, "ema_decay": 0.999, "log_every": 1000},
    })


def plain_step(G, D, opt_g, opt_d, real, z):
    b = real.shape[0]
    ones, zeros = torch.ones(b, device=real.device), torch.zeros(b, device=real.device)
    loss_d, loss_g = plain_loop.plain_step(G, D, opt_g, opt_d, real, z, ones, zeros)
    return loss_d.item(), loss_g.item()


def time_plain(G0, D0, data, steps, device):
    G, D = copy.deepcopy(G0).to(device), copy.deepcopy(D0).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    batches = [(data.examples[torch.randint(len(data), (64,), generator=gen)].to(device),
                torch.randn(64, 100, generator=gen).to(device)) for _ in range(steps + 1)]
    plain_step(G, D, opt_g, opt_d, *batches[0])  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for real, z in batches[1:]:
        plain_step(G, D, opt_g, opt_d, real, z)
    _sync(device)
    return (time.perf_counter() - t0) / steps


def time_ganforge(cfg, G0, D0, data, steps, compile_players=False):
    from ganforge.components import build_experiment

    exp = build_experiment(cfg, dataset=data)
    exp.generator.load_state_dict(G0.state_dict())
    exp.discriminator.load_state_dict(D0.state_dict())
    tr = Trainer(cfg, None, experiment=exp)
    s = tr.setup()
    if compile_players:  # torch.compile (inductor, dynamic=False): measured, not shipped
        exp.generator.compile(dynamic=False)
        exp.discriminator.compile(dynamic=False)
    sums = torch.zeros(len(_STATS), device=tr.device)
    for _ in range(3 if compile_players else 1):  # warm-up (and compilation, excluded)
        tr.train_step(s, sums, False)
    _sync(tr.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step(s, sums, False)
    sums.tolist()
    _sync(tr.device)
    return (time.perf_counter() - t0) / steps


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def count_flops(G0, D0, data) -> int:
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with FlopCounterMode(display=False) as fc:
        plain_step(G, D, opt_g, opt_d, data.examples[:64], torch.randn(64, 100))
    return fc.get_total_flops()


def matmul_peak(dtype, device, n=2048, reps=10) -> float:
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="add torch.compile variants of ganforge's step")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = RandomImages()
    from ganforge.components import build_experiment

    exp = build_experiment(config("fp32", False, args.device, args.threads), dataset=data)
    G0, D0 = exp.generator, exp.discriminator
    flops = count_flops(G0, D0, data)
    variants = {"ganforge_fp32": ("fp32", False), "ganforge_bf16": ("bf16", False),
                "ganforge_bf16_channels_last": ("bf16", True)}
    if args.compile:
        variants.update({"ganforge_fp32_compiled": ("fp32", False), "ganforge_bf16_channels_last_compiled": ("bf16", True)})
    times: dict[str, list[float]] = {"plain_fp32": [], **{k: [] for k in variants}}
    for _ in range(args.rounds):
        times["plain_fp32"].append(time_plain(G0, D0, data, args.steps, args.device))
        for name, (prec, cl) in variants.items():
            times[name].append(time_ganforge(config(prec, cl, args.device, args.threads), G0, D0, data, args.steps,
                                             compile_players=name.endswith("_compiled")))
    best = {k: min(v) for k, v in times.items()}
    peak32 = matmul_peak(torch.float32, args.device)
    peak16 = matmul_peak(torch.bfloat16, args.device)
    out = {
        "bench": "step_dcgan32", "device": args.device, "threads": args.threads, "batch_size": 64,
        "steps_per_round": args.steps, "rounds": args.rounds, "flops_per_step": flops,
        "s_per_step": {k: round(v, 4) for k, v in best.items()},
        "speedup_vs_plain": {k: round(best["plain_fp32"] / v, 3) for k, v in best.items()},
        "achieved_gflops": {k: round(flops / v / 1e9, 1) for k, v in best.items()},
        "matmul_peak_gflops": {"fp32": round(peak32 / 1e9, 1), "bf16": round(peak16 / 1e9, 1)},
        "bf16_limit_speedup": round(best["plain_fp32"] / (flops / peak16), 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
