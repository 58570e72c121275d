"""Image-quality bars of issue 3, measured with the shipped MNIST classifier; prints JSON.

    python bench/image_quality.py RUN_DIR [--n-per-class 1000] [--n 10000] [--seed 0]
                                  [--time-log FILE] [--out bench/out/image_quality_<run>.json]

Runs on scikit-learn's 8x8 digits (digits-dcgan) are classified by the shipped digits classifier
instead, and their FID is taken against the 1,797 digits. What is measured depends on the run (read from its config.yaml):

- conditional (data.class_conditional): ``n_per_class`` samples asked for each class k from the EMA
  generator, classified by ``load_extractor("mnist")``; per-class and overall accuracy of
  "asked for k, classified as k" (bar >= 97 %).
- InfoGAN (game.prior.name == infogan): ``n_per_class`` samples per value of the first categorical
  code (the rest of z drawn from the prior), classified; code values matched to classes with the
  Hungarian algorithm on the confusion matrix; fraction landing in the matched class (bar >= 85 %).
- otherwise (unconditional): class histogram of ``n`` samples (bar: all 10 digits, none below 5 %).

When the MNIST test set is at ``--data-path`` (default ../shared/data/mnist): FID of the pooled
samples against all 10,000 test images, and for conditional runs the intra-class FID (class-k
samples against the real class-k images; Miyato & Koyama 2018), which catches a generator that
draws one easily classified image per class: accuracy alone would not. For scale, the same
numbers for real images at the same sample sizes: one half of the real images against the other
(``*_floor``); the run is measured against the first half with as many samples as the second.

Always: the run's steps and wall time (sum of 100 / steps_per_sec over metrics.jsonl's log lines,
and the span from config.yaml's to the newest checkpoint's modification time), plus user/system CPU
time and wall time from a ``/usr/bin/time -v`` log if ``--time-log`` is given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ganforge.evaluation import load_extractor
from ganforge.run import TrainedGenerator, load_run, read_run_config
from ganforge.train.checkpoint import list_checkpoints

COND_BAR = 0.97
INFO_BAR = 0.85
HIST_MIN = 0.05


DEFAULT_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
FEATURES: list[tuple[np.ndarray, np.ndarray]] = []  # (features, asked-for class or -1) of every sample classified
CONFIDENCE: list[np.ndarray] = []  # max softmax probability of every sample classified (a sanity check:
# a histogram or an accuracy over images the classifier is unsure about means little)


@torch.no_grad()
def classify(fx, x: torch.Tensor, batch: int = 1000, asked: int = -1) -> np.ndarray:
    preds = []
    for i in range(0, x.shape[0], batch):
        xb = x[i: i + batch].clamp(-1.0, 1.0)  # tanh output; clamp only guards round-off
        feats, logits = fx.forward_features_and_logits(xb, "generated")
        FEATURES.append((feats.double().cpu().numpy(), np.full(xb.shape[0], asked)))
        p = logits.float().softmax(dim=1)
        CONFIDENCE.append(p.max(dim=1).values.cpu().numpy())
        preds.append(p.argmax(dim=1).cpu().numpy())
    return np.concatenate(preds)


def confidence_summary() -> dict:
    c = np.concatenate(CONFIDENCE)
    return {"mean_max_prob": round(float(c.mean()), 4), "frac_max_prob_ge_0.9": round(float((c >= 0.9).mean()), 4)}


def conditional(G, fx, n_per_class: int, seed: int) -> dict:
    k = G.n_classes
    conf = np.zeros((k, k), dtype=np.int64)
    per_class = {}
    for c in range(k):
        x = G.sample(n_per_class, seed=seed + c, y=c)
        pred = classify(fx, x, asked=c)
        conf[c] = np.bincount(pred, minlength=k)[:k]
        per_class[str(c)] = conf[c, c] / n_per_class
    overall = float(np.trace(conf) / conf.sum())
    worst = min(per_class, key=per_class.get)
    return {"kind": "conditional", "n_per_class": n_per_class, "accuracy": overall,
            "per_class_accuracy": {c: round(float(a), 4) for c, a in per_class.items()},
            "worst_class": int(worst), "worst_accuracy": float(per_class[worst]),
            "confusion": conf.tolist(), "bar": COND_BAR,
            "passes_overall": overall >= COND_BAR,
            "passes_every_class": all(a >= COND_BAR for a in per_class.values())}


def unconditional(G, fx, n: int, seed: int) -> dict:
    pred = classify(fx, G.sample(n, seed=seed))
    hist = np.bincount(pred, minlength=10) / n
    return {"kind": "unconditional", "n": n,
            "histogram": {str(c): round(float(h), 4) for c, h in enumerate(hist)},
            "min_class": int(hist.argmin()), "min_fraction": float(hist.min()),
            "max_class": int(hist.argmax()), "max_fraction": float(hist.max()),
            "digits_present": int((hist > 0).sum()), "bar_min_fraction": HIST_MIN,
            "passes": bool((hist > 0).all() and hist.min() >= HIST_MIN)}


@torch.no_grad()
def infogan(G, fx, n_per_class: int, seed: int) -> dict:
    from scipy.optimize import linear_sum_assignment

    prior = G.prior
    k = prior.categorical[0]
    device = next(G.generator.parameters()).device
    conf = np.zeros((k, 10), dtype=np.int64)  # code value x predicted class
    for v in range(k):
        g = torch.Generator().manual_seed(seed + v)
        z = prior.with_codes(prior.sample(n_per_class, g), categorical={0: v})
        x = G(z.to(device)).float().cpu()
        conf[v] = np.bincount(classify(fx, x), minlength=10)[:10]
    rows, cols = linear_sum_assignment(-conf)  # maximise matched counts
    matched = {int(r): int(c) for r, c in zip(rows, cols, strict=False)}
    frac = float(conf[rows, cols].sum() / conf.sum())
    per_code = {str(r): round(float(conf[r, c] / conf[r].sum()), 4) for r, c in matched.items()}
    return {"kind": "infogan", "n_per_code": n_per_class, "code_to_class": {str(r): c for r, c in matched.items()},
            "matched_fraction": frac, "per_code_purity": per_code, "confusion": conf.tolist(),
            "distinct_argmax_classes": len({int(np.argmax(r)) for r in conf}),  # digits that are some code's majority
            "bar": INFO_BAR, "passes": frac >= INFO_BAR}


@torch.no_grad()
def fid_against_real(fx, data, conditional_run: bool, seed: int) -> dict:
    """Pooled FID and, for conditional runs, intra-class FID, each beside its real-vs-real floor at
    the same sample sizes (FID's bias depends on n): the real images are split into halves A and B
    (a seeded permutation); the run's number is FID(A, n_B fakes), the floor is FID(A, B)."""
    from ganforge.metrics.fid import fid_from_features

    real, labels = [], data.targets.numpy()
    for i in range(0, len(data), 1000):
        real.append(fx.forward_features_and_logits(data.examples[i: i + 1000], "real")[0].double().cpu().numpy())
    real_f = np.concatenate(real)
    fake_f = np.concatenate([f for f, _ in FEATURES])
    asked = np.concatenate([a for _, a in FEATURES])
    rng = np.random.default_rng(seed)

    def pair(r: np.ndarray, f: np.ndarray) -> tuple[float, float, int]:
        order = rng.permutation(len(r))
        a, b = r[order[: len(r) // 2]], r[order[len(r) // 2:]]
        n = min(len(b), len(f))
        f = f[rng.permutation(len(f))[:n]]  # fakes come ordered by class: draw n at random
        return fid_from_features(a, f), fid_from_features(a, b[:n]), n

    fid, floor, n = pair(real_f, fake_f)
    out = {"fid": round(fid, 3), "fid_floor": round(floor, 3), "fid_n": n}
    if conditional_run:
        intra, intra_floor = {}, {}
        for c in range(10):
            f_c, fl_c, _ = pair(real_f[labels == c], fake_f[asked == c])
            intra[str(c)], intra_floor[str(c)] = round(f_c, 3), round(fl_c, 3)
        out["intra_fid"] = intra
        out["intra_fid_mean"] = round(float(np.mean(list(intra.values()))), 3)
        out["intra_fid_floor"] = intra_floor
        out["intra_fid_floor_mean"] = round(float(np.mean(list(intra_floor.values()))), 3)
    return out


def run_times(run_dir: Path, time_log: Path | None) -> dict:
    out: dict = {}
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines() if s.strip()]
    steps = [r for r in lines if "steps_per_sec" in r and r.get("steps_per_sec")]
    if lines:
        out["last_step"] = max(int(r.get("step", 0)) for r in lines)
    if steps:
        prev, total = 0, 0.0
        for r in steps:
            total += (r["step"] - prev) / r["steps_per_sec"]
            prev = r["step"]
        out["train_seconds_from_metrics"] = round(total, 1)
        out["steps_per_sec_mean"] = round(prev / total, 3)
    ck = list_checkpoints(run_dir / "checkpoints")
    if ck:
        out["checkpoint_step"] = int(ck[-1][0])
        out["wall_seconds_from_files"] = round(ck[-1][1].stat().st_mtime - (run_dir / "config.yaml").stat().st_mtime, 1)
    if time_log is not None and time_log.exists():
        text = time_log.read_text()
        user = re.search(r"User time \(seconds\): ([\d.]+)", text)
        sys_ = re.search(r"System time \(seconds\): ([\d.]+)", text)
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
        if user and sys_:
            out["cpu_seconds"] = round(float(user.group(1)) + float(sys_.group(1)), 1)
        if wall:
            parts = [float(p) for p in wall.group(1).split(":")]
            secs = 0.0
            for p in parts:
                secs = secs * 60 + p
            out["wall_seconds_process"] = round(secs, 1)
    return out


def use_raw_statistics(run) -> None:
    """Before issue 11 the EMA copy sampled with the raw generator's batch-norm running statistics:
    copy them from the checkpoint into the loaded EMA generator (the same weights, the old statistics),
    so that one trained run measures both sides of the fix."""
    from ganforge.train.checkpoint import load_checkpoint

    raw = load_checkpoint(run.path, run.config.accepted_hashes())["generator"]
    own = run.experiment.generator.state_dict()
    keys = [k for k in own if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    run.experiment.generator.load_state_dict({**own, **{k: raw[k] for k in keys}})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--n-per-class", type=int, default=1000)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-path", type=Path, default=DEFAULT_MNIST,
                    help="MNIST IDX files for FID / intra-class FID (skipped when absent)")
    ap.add_argument("--raw", action="store_true", help="the raw generator instead of the EMA copy (diagnosis)")
    ap.add_argument("--ema-statistics", choices=("own", "raw"), default="own",
                    help="own: the EMA generator's standing batch-norm statistics (since issue 11); raw: the raw "
                         "generator's running statistics copied in, as every EMA sample was drawn before issue 11")
    ap.add_argument("--time-log", type=Path, default=None, help="a /usr/bin/time -v log of the training")
    ap.add_argument("--out", type=Path, default=None, help="default: bench/out/image_quality_<run>.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    t0 = time.perf_counter()
    cfg = read_run_config(run_dir)
    run = load_run(run_dir, ema=not args.raw)  # the EMA generator (default) when the run kept one
    if args.ema_statistics == "raw" and not args.raw:
        use_raw_statistics(run)
    G = TrainedGenerator(run).eval()
    G.step = run.step
    d = cfg.to_dict()
    digits = d["data"]["name"] == "digits"  # scikit-learn's 8x8 digits: the shipped digits classifier
    fx = load_extractor("digits" if digits else "mnist")
    prior = d["game"]["prior"]["name"]
    if prior == "infogan":
        res = infogan(G, fx, args.n_per_class, args.seed)
    elif G.n_classes:
        res = conditional(G, fx, args.n_per_class, args.seed)
    else:
        res = unconditional(G, fx, args.n, args.seed)
    from ganforge.data import DATASETS

    if digits:
        res.update(fid_against_real(fx, DATASETS.build("digits", {"resolution": 8}), False, args.seed))
    elif (args.data_path / "t10k-images-idx3-ubyte.gz").exists():
        real = DATASETS.build("mnist", {"path": str(args.data_path), "split": "test"})
        res.update(fid_against_real(fx, real, res["kind"] == "conditional", args.seed))
    result = {"run": str(run_dir), "recipe": d.get("name"), "step": G.step, "generator": "raw" if args.raw else "ema",
              "ema_statistics": None if args.raw else args.ema_statistics,
              **res, "classifier_confidence": confidence_summary(), "times": run_times(run_dir, args.time_log),
              "classifier": ("digits (shipped, held-out accuracy 96.11 %)" if digits
                             else "mnist (shipped, held-out accuracy 99.45 %)")}
    result["measure_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=2)
    out = args.out or Path("bench/out") / f"image_quality_{run_dir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
