"""Update rules and costs side by side on the toy recipes (issue 12's comparison table).

    .venv/bin/python bench/update_table.py --recipes ring8 grid25 --seeds 0-2 --jobs 2 \
        [--variants alternating unrolled ...] [--out bench/out/table] > bench/results/update_table.json

Each variant is the recipe with a few overrides (the update rule, or the cost and its regularizers);
everything else (players, optimizers, steps, seeds) is the recipe's. Each seed is a full
`ganforge train` then `ganforge eval` (2,500 samples, the PacGAN/VEEGAN protocol of toy_quality.py).
A run that stops with a divergence error (after the guard's rollbacks) counts as diverged, with
its error line. Prints one JSON object: per variant and recipe, modes, HQ, reverse KL, wall time
and the number of diverged runs, with the core bars (ring8 8/8 and >= 95 % HQ, grid25 25/25 and
>= 93.6 %).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from toy_quality import BARS, parse_seeds  # noqa: E402

VARIANTS: dict[str, list[str]] = {
    "alternating": [],
    "simultaneous": ["train.update=simultaneous"],
    "unrolled-5": ["train.update={name: unrolled, steps: 5}"],
    "extragradient": ["train.update=extragradient"],
    "optimistic": ["train.update=optimistic"],
    "consensus-10": ["train.update={name: consensus, weight: 10.0}"],
    "nagarajan-kolter-0.5": ["train.update={name: alternating, nagarajan_kolter: 0.5}"],
    "rpgan-r1-r2": ["game.cost.name=relativistic_pairing",
                    "game.regularizers=[{name: r1, gamma: 0.1}, {name: r2, gamma: 0.1}]"],
    "rpgan-r1": ["game.cost.name=relativistic_pairing", "game.regularizers=[{name: r1, gamma: 0.1}]"],
}


def one(recipe: str, variant: str, seed: int, out: Path, threads: int) -> dict:
    run = out / f"{recipe}_{variant}_seed{seed}"
    cmd = [sys.executable, "-m", "ganforge", "train", recipe, "--out", str(run), "--set", f"train.seed={seed}",
           "--set", "train.progress=false", "--set", f"train.threads={threads}"]
    for e in VARIANTS[variant]:
        cmd += ["--set", e]
    subprocess.run(["rm", "-rf", str(run)], check=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = round(time.perf_counter() - t0, 1)
    rep: dict = {"recipe": recipe, "variant": variant, "seed": seed, "wall_s": wall}
    if done.returncode != 0:
        rep["diverged"] = "diverged" in done.stderr
        rep["error"] = done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else f"rc {done.returncode}"
        print(json.dumps(rep), file=sys.stderr, flush=True)
        return rep
    ev = subprocess.run([sys.executable, "-m", "ganforge", "eval", str(run), "--n", "2500"], check=True,
                        capture_output=True, text=True)
    e = json.loads(ev.stdout)
    rep.update({"diverged": False, "modes": e["modes_captured"], "hq": e["hq_fraction"], "kl": e["reverse_kl"]})
    print(json.dumps(rep), file=sys.stderr, flush=True)
    return rep


def summarize(reps: list[dict], recipe: str) -> dict:
    ok = [r for r in reps if not r.get("error")]
    bar = BARS[recipe]
    out: dict = {"runs": len(reps), "diverged": sum(bool(r.get("diverged")) for r in reps),
                 "failed": sum(bool(r.get("error")) for r in reps), "max_wall_s": max(r["wall_s"] for r in reps)}
    if ok:
        out.update({"modes": [r["modes"] for r in ok], "min_modes": min(r["modes"] for r in ok),
                    "mean_hq": round(sum(r["hq"] for r in ok) / len(ok), 4),
                    "mean_kl": round(sum(float(r["kl"]) for r in ok) / len(ok), 4)})
        out["core_quality"] = (len(ok) == len(reps) and out["min_modes"] >= bar["modes"]
                               and out["mean_hq"] >= bar["hq"])
    else:
        out["core_quality"] = False
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=["ring8", "grid25"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", default="0-2")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (threads per run = 2 // jobs)")
    ap.add_argument("--threads", type=int, default=0, help="threads per run (default 2 // jobs)")
    ap.add_argument("--out", default="bench/out/table")
    args = ap.parse_args()
    seeds = parse_seeds(args.seeds)
    threads = args.threads or max(1, 2 // args.jobs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(r, v, s) for r in args.recipes for v in args.variants for s in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        reps = list(pool.map(lambda t: one(*t, out, threads), tasks))
    table = {r: {v: summarize([x for x in reps if x["recipe"] == r and x["variant"] == v], r)
                 for v in args.variants} for r in args.recipes}
    print(json.dumps({"bench": "update_table", "seeds": seeds, "jobs": args.jobs, "threads_per_run": threads,
                      "variants": {v: VARIANTS[v] for v in args.variants}, "bars": {r: BARS[r] for r in args.recipes},
                      "table": table, "per_run": reps}, indent=1))


if __name__ == "__main__":
    main()
