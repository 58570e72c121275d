"""``ganforge demo``: the README's main job, on embedded data only (nothing to download).

1. The 1-D Gaussian game of the GAN tutorial's Figure 4: p_data, p_model, D and D* at several
   moments of training, ending with D close to 1/2 where the data is. Its figure is written and
   its path printed as soon as this game is done, before the others start.
2. The 8-mode ring and the 5 x 5 grid: generated samples over training, with the mode metrics;
   each figure is printed when its game is done.

The games' networks are tiny, so each trains on one thread: on a shared or busy CPU a pool of
threads spins against the other processes (the 1-D game ran at 3 steps/s with torch's default 2
threads on a loaded 2-core machine, 54 steps/s with 1; on a quiet one, 1 thread costs ~6 % per
step, bench/README.md). The 1-D game runs ``GAUSSIAN1D_STEPS`` steps instead of the recipe's
8,000 (its learning rates still decay linearly to 0 over the run), so the first figure is on
screen within about a minute even on a busy machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from ganforge.components import build_dataset
from ganforge.config import load_config
from ganforge.evaluation import evaluate_run
from ganforge.io import write_json_atomic
from ganforge.metrics.toy import central_interval
from ganforge.report.figures import figure4, scatter_over_training
from ganforge.run import load_run, train
from ganforge.train.callbacks import SampleSnapshots

GAUSSIAN1D_STEPS = 3000  # see the module docstring; the recipe's 8,000 steps reach W1 0.027 sigma
ONE_THREAD = "train.threads=1"


def run_demo(out: Path, quick: bool = False, echo: Callable[[str], None] = print) -> dict:
    start = time.perf_counter()
    out = Path(out)
    results: dict = {}
    figures: list[Path] = []

    def done(i: int, path: Path) -> None:
        figures.append(path)
        echo(f"[{i}/3] figure ({time.perf_counter() - start:.0f} s since the start): {path}")

    # 1. The 1-D game (Figure 4): its figure first.
    steps = 300 if quick else GAUSSIAN1D_STEPS
    cfg = load_config("gaussian1d", [f"train.steps={steps}", ONE_THREAD, "train.progress=true"])
    data = build_dataset(cfg)
    lo, hi = central_interval(data, 0.9999)
    pad = 0.5 * (hi - lo)
    snaps = SampleSnapshots(out / "gaussian1d", every=max(1, cfg.train.steps // 8), n=4000,
                            grid=(lo - pad, hi + pad, 400))
    echo(f"[1/3] the 1-D Gaussian game ({cfg.train.steps} steps)")
    train(cfg, out / "gaussian1d", callbacks=[snaps])
    done(1, figure4(out / "gaussian1d", data, out / "figure4_gaussian1d.png"))
    results["gaussian1d"] = evaluate_run(load_run(out / "gaussian1d"), n=10000)

    # 2-3. The ring and the grid.
    for i, recipe in enumerate(("ring8", "grid25"), start=2):
        over = (["train.steps=400"] if quick else []) + [ONE_THREAD]
        cfg = load_config(recipe, over)
        echo(f"[{i}/3] {recipe} ({cfg.train.steps} steps)")
        snaps = SampleSnapshots(out / recipe, every=max(1, cfg.train.steps // 5), n=2500)
        train(cfg, out / recipe, callbacks=[snaps])
        done(i, scatter_over_training(out / recipe, build_dataset(cfg), out / f"samples_{recipe}.png"))
        results[recipe] = evaluate_run(load_run(out / recipe))

    write_json_atomic(out / "demo_results.json", results)
    g = results["gaussian1d"]
    echo("")
    echo(f"1-D Gaussian: W1 = {g['w1_over_sigma']:.3f} sigma, mean |D(x) - 1/2| = "
         f"{g.get('d_mean_abs_from_half', float('nan')):.3f} over the data's central 99 %")
    for recipe in ("ring8", "grid25"):
        r = results[recipe]
        echo(f"{recipe}: {r['modes_captured']}/{r['n_modes']} modes, {100 * r['hq_fraction']:.1f} % high-quality "
             f"samples, reverse KL {r['reverse_kl'] if isinstance(r['reverse_kl'], str) else round(r['reverse_kl'], 3)}")
    echo("")
    echo(f"figures ({time.perf_counter() - start:.0f} s in all):")
    for f in figures:
        echo(f"  {f}")
    echo(f"numbers: {out / 'demo_results.json'}")
    echo(json.dumps({"figures": [str(f) for f in figures]}))
    return results
