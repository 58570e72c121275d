"""``ganforge demo``: the README's main job, on embedded data only (nothing to download).

1. The 1-D Gaussian game of the GAN tutorial's Figure 4: p_data, p_model, D and D* at several
   moments of training, ending with D close to 1/2 everywhere.
2. The 8-mode ring and the 5 x 5 grid: generated samples over training, with the mode metrics.
"""

from __future__ import annotations

import json
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


def run_demo(out: Path, quick: bool = False, echo: Callable[[str], None] = print) -> dict:
    out = Path(out)
    results: dict = {}
    figures: list[Path] = []

    # 1. The 1-D game (Figure 4).
    steps = 300 if quick else None
    over = [f"train.steps={steps}"] if steps else []
    cfg = load_config("gaussian1d", over + ["train.progress=true"])
    data = build_dataset(cfg)
    lo, hi = central_interval(data, 0.9999)
    pad = 0.5 * (hi - lo)
    snaps = SampleSnapshots(out / "gaussian1d", every=max(1, cfg.train.steps // 8), n=4000,
                            grid=(lo - pad, hi + pad, 400))
    echo(f"[1/3] the 1-D Gaussian game ({cfg.train.steps} steps)")
    train(cfg, out / "gaussian1d", callbacks=[snaps])
    results["gaussian1d"] = evaluate_run(load_run(out / "gaussian1d"), n=10000)
    figures.append(figure4(out / "gaussian1d", data, out / "figure4_gaussian1d.png"))

    # 2-3. The ring and the grid.
    for i, recipe in enumerate(("ring8", "grid25"), start=2):
        over = ["train.steps=400"] if quick else []
        cfg = load_config(recipe, over)
        echo(f"[{i}/3] {recipe} ({cfg.train.steps} steps)")
        snaps = SampleSnapshots(out / recipe, every=max(1, cfg.train.steps // 5), n=2500)
        train(cfg, out / recipe, callbacks=[snaps])
        results[recipe] = evaluate_run(load_run(out / recipe))
        figures.append(scatter_over_training(out / recipe, build_dataset(cfg), out / f"samples_{recipe}.png"))

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
    echo("figures:")
    for f in figures:
        echo(f"  {f}")
    echo(f"numbers: {out / 'demo_results.json'}")
    echo(json.dumps({"figures": [str(f) for f in figures]}))
    return results
