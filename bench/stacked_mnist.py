"""Stacked MNIST (1,000 modes): train the ``stacked-mnist`` recipe for some seeds, count the modes of
the final EMA generator; prints JSON.

    python bench/stacked_mnist.py --seeds 0 1 2 [--steps N] [--data-path ../shared/data/mnist]
                                  [--split test] [--threads 1] [--parallel 2] [--out DIR]
                                  [--json bench/results/stacked_mnist.json] [--set KEY=VALUE ...]
    python bench/stacked_mnist.py --eval-only RUN_DIR [RUN_DIR ...]   # measure existing runs
    python bench/stacked_mnist.py --floor-only                        # real stacked examples

Protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): 26,000 samples of the final EMA
generator (``ganforge sample``'s seeded draws, seed 0); the shipped MNIST classifier reads each
channel; mode = 100 c_R + 10 c_G + c_B; ``modes`` = modes with at least one sample, ``kl`` =
KL(sample mode histogram || uniform over 1,000), in nats. The bar (issue 12): ``modes >= 990`` and
``kl <= 0.05`` in every seed, each run at most 45 CPU minutes (user + system time of the training
process, measured with ``os.wait4``; evaluation not included). The same count on 26,000 real
stacked examples (``floor``) shows what a perfect generator scores with this classifier.

Seeds run ``--parallel`` at a time (each with ``train.threads=--threads``); ``--set`` passes
overrides to every run. Nothing here picks a checkpoint: the final one is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ganforge.data import DATASETS  # noqa: E402
from ganforge.evaluation import load_extractor  # noqa: E402
from ganforge.evaluation.stacked_modes import channel_digits  # noqa: E402
from ganforge.io import write_json_atomic  # noqa: E402
from ganforge.metrics.stacked_modes import stacked_modes, uniform_kl_expected  # noqa: E402
from ganforge.run import TrainedGenerator, load_run  # noqa: E402

N_SAMPLES = 26_000
BAR_MODES, BAR_KL, BAR_CPU_MIN = 990, 0.05, 45.0


def default_mnist() -> Path:
    for p in Path(__file__).resolve().parents:
        if (p / "shared" / "data" / "mnist").is_dir():
            return p / "shared" / "data" / "mnist"
    return REPO.parent / "shared" / "data" / "mnist"


def measure(images: torch.Tensor) -> dict:
    fx = load_extractor("stacked_mnist")
    digits = channel_digits(fx, images.clamp(-1.0, 1.0))
    r = stacked_modes(digits)
    return {"modes": r.modes, "kl": round(r.kl, 5), "n": r.n_samples,
            "digit_shares": [" ".join(f"{float(v):.3f}" for v in torch.bincount(digits[:, c], minlength=10) / len(digits))
                             for c in range(3)]}


def evaluate_run(run_dir: Path, n: int = N_SAMPLES) -> dict:
    run = load_run(run_dir)
    samples = TrainedGenerator(run).eval().sample(n, seed=0)
    if tuple(samples.shape[1:]) != (3, 28, 28):
        raise SystemExit(f"{run_dir}: samples of shape {tuple(samples.shape[1:])}, expected 3x28x28")
    return {"run": str(run_dir), "step": run.step, **measure(samples)}


def floor(data_path: Path, split: str, n: int = N_SAMPLES) -> dict:
    ds = DATASETS.build("stacked_mnist", {"path": str(data_path), "split": split, "size": n, "seed": 12345})
    out = measure(ds.examples[torch.arange(n)])
    true = stacked_modes(ds.targets)
    return {**out, "true_labels": {"modes": true.modes, "kl": round(true.kl, 5)},
            "uniform_expected_kl": round(uniform_kl_expected(n), 5)}


def verdict(r: dict) -> dict:
    ok = r["modes"] >= BAR_MODES and r["kl"] <= BAR_KL and r.get("cpu_min", 0.0) <= BAR_CPU_MIN
    return {**r, "pass": ok}


def train_seeds(args: argparse.Namespace, on_result=None) -> list[dict]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pending = list(args.seeds)
    running: dict[int, tuple[int, subprocess.Popen, float, Path]] = {}
    results: list[dict] = []
    while pending or running:
        while pending and len(running) < args.parallel:
            seed = pending.pop(0)
            run_dir = out / f"seed{seed}"
            cmd = [sys.executable, "-m", "ganforge", "train", args.recipe, "--out", str(run_dir),
                   "--set", f"data.path={args.data_path}", "--set", f"data.split={args.split}",
                   "--set", f"train.seed={seed}", "--set", f"train.threads={args.threads}",
                   "--set", "train.progress=false"]
            if args.steps:
                cmd += ["--set", f"train.steps={args.steps}"]
            for kv in args.set:
                cmd += ["--set", kv]
            log = open(out / f"seed{seed}.log", "a")  # noqa: SIM115  (closed with the process)
            env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            running[proc.pid] = (seed, proc, time.time(), run_dir)
            print(f"seed {seed}: started ({' '.join(cmd)})", file=sys.stderr)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        seed, proc, t0, run_dir = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - t0
        cpu = usage.ru_utime + usage.ru_stime
        r = {"seed": seed, "exit_code": proc.returncode, "cpu_s": round(cpu, 1), "cpu_min": round(cpu / 60, 2),
             "wall_s": round(wall, 1)}
        if proc.returncode == 0:
            r.update(evaluate_run(run_dir))
            r = verdict(r)
        else:
            r["pass"] = False
        print(json.dumps(r), file=sys.stderr)
        results.append(r)
        if on_result is not None:  # the JSON so far, so that finished seeds are on disk before the rest
            on_result(sorted(results, key=lambda r: r["seed"]))
    return sorted(results, key=lambda r: r["seed"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="stacked-mnist")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="train.steps (default: the recipe's)")
    ap.add_argument("--data-path", type=Path, default=default_mnist())
    ap.add_argument("--split", default="test", choices=["train", "test"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/stacked_mnist_bench")
    ap.add_argument("--json", default=None, help="also write the JSON here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--eval-only", nargs="+", type=Path, default=None, metavar="RUN_DIR")
    ap.add_argument("--floor-only", action="store_true")
    ap.add_argument("--no-floor", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report: dict = {"bench": "stacked_mnist", "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                    "protocol": f"{N_SAMPLES:,} samples of the final EMA generator (seed 0); the shipped MNIST "
                                "classifier on each channel; modes with >= 1 sample; KL(samples || uniform 1,000)",
                    "bar": {"modes": BAR_MODES, "kl": BAR_KL, "cpu_min": BAR_CPU_MIN}}
    if args.eval_only:
        report["runs"] = [evaluate_run(p) for p in args.eval_only]
    elif not args.floor_only:
        report.update({"recipe": args.recipe, "steps": args.steps, "overrides": args.set, "threads": args.threads,
                       "parallel": args.parallel, "data": f"{args.data_path} ({args.split})"})
        def partial(runs: list[dict]) -> None:
            if args.json:
                write_json_atomic(args.json, {**report, "runs": runs, "finished": f"{len(runs)} of {len(args.seeds)}"})

        report["runs"] = train_seeds(args, partial)
        report["pass"] = all(r["pass"] for r in report["runs"])
        report["misses"] = {f"seed{r['seed']}": {"modes_short": max(0, BAR_MODES - r.get("modes", 0)),
                                                  "kl_over": round(max(0.0, r.get("kl", 1e9) - BAR_KL), 5),
                                                  "cpu_min_over": round(max(0.0, r["cpu_min"] - BAR_CPU_MIN), 2)}
                            for r in report["runs"] if not r["pass"]}
    if not args.no_floor and (args.floor_only or not args.eval_only):
        report["floor"] = floor(args.data_path, args.split)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        write_json_atomic(args.json, report)


if __name__ == "__main__":
    main()
