"""Speed and memory of ganforge's evaluation against torchmetrics, on the same features and inputs.

10,000 "real" 28x28 images (the MNIST test set, or random images when it is absent) against 10,000
"fake" ones (the real images shuffled, shifted by one pixel and with Gaussian noise), features from
our MNIST classifier (128-d), features included in every timing:

- ganforge FID + KID + precision/recall/density/coverage: one ``evaluate_images`` call (the features
  of each image are computed once and shared by all metrics);
- ganforge FID + KID only;
- torchmetrics ``FrechetInceptionDistance`` + ``KernelInceptionDistance`` with ``feature=`` the same
  extractor module, fed the same batches (each metric runs the extractor itself: that is how the
  two are used together).

Each variant runs in its own subprocess so that its peak memory (``ru_maxrss``) is its own; the
increase over the baseline (data and model loaded, nothing computed) and the tracemalloc peak of the
Python side are reported too. KID uses 100 subsets of 1,000 on both sides; torchmetrics draws its
subsets from the global generator, seeded so that both see the same subsets, and the real images
are given in the order ganforge uses, so the values agree as well.

    .venv/bin/python bench/eval_speed.py [--data-path DIR] [--threads 1] [--out bench/out/eval_speed.json]

Prints one JSON object (and writes it to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist"
VARIANTS = ("ganforge_fid_kid_prdc", "ganforge_fid_kid", "torchmetrics_fid_kid")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _data(data_path: Path, n: int, seed: int):
    import torch

    from ganforge.data import DATASETS

    if (data_path / "t10k-images-idx3-ubyte.gz").is_file() or (data_path / "t10k-images-idx3-ubyte").is_file():
        real = DATASETS.build("mnist", {"path": str(data_path), "split": "test"}).examples[:n]
        source = f"MNIST test set ({data_path})"
    else:
        g = torch.Generator().manual_seed(seed)
        real = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
        source = "random images (MNIST not found)"
    g = torch.Generator().manual_seed(seed + 1)
    fake = real[torch.randperm(real.shape[0], generator=g)]
    fake = torch.roll(fake, shifts=1, dims=3)  # one pixel to the right
    fake = (fake + 0.2 * torch.randn(fake.shape, generator=g)).clamp(-1.0, 1.0)
    # on the 8-bit grid, as the protocol feeds images to the features: torchmetrics sees the same pixels
    from ganforge.evaluation import quantize_8bit

    return quantize_8bit(real), quantize_8bit(fake), source


def child(variant: str, args: argparse.Namespace) -> dict:
    import torch

    from ganforge.evaluation import EvalSettings, TensorSource, evaluate_images, load_extractor

    torch.set_num_threads(args.threads)
    real, fake, source = _data(Path(args.data_path), args.n, args.seed)
    fx = load_extractor("mnist")
    settings = EvalSettings(batch_size=args.batch_size, seed=args.seed)
    baseline = _rss_mib()
    tracemalloc.start()
    t0 = time.perf_counter()
    out: dict = {"variant": variant, "data": source, "threads": args.threads}
    if variant.startswith("ganforge"):
        metrics = ["fid", "kid", "prdc"] if variant == "ganforge_fid_kid_prdc" else ["fid", "kid"]
        report = evaluate_images(TensorSource(fake, name="fake"), TensorSource(real, name="real"), fx, metrics,
                                 settings=settings)
        out["values"] = report["metrics"]
        out["warnings"] = report["warnings"]
    else:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        order = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(args.seed))
        real_ordered = real[order]  # ganforge's order of the real images (same KID subsets)
        fid = FrechetInceptionDistance(feature=fx)
        kid = KernelInceptionDistance(feature=fx, subsets=100, subset_size=1000)
        with torch.no_grad():
            for batch in real_ordered.split(args.batch_size):
                fid.update(batch, real=True)
                kid.update(batch, real=True)
            for batch in fake.split(args.batch_size):
                fid.update(batch, real=False)
                kid.update(batch, real=False)
            fid_value = float(fid.compute())
            torch.manual_seed(args.seed)
            kid_mean, kid_std = kid.compute()
        out["values"] = {"fid": fid_value, "kid": float(kid_mean), "kid_std": float(kid_std)}
    out["seconds"] = round(time.perf_counter() - t0, 3)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out["peak_rss_mib"] = round(_rss_mib(), 1)
    out["baseline_rss_mib"] = round(baseline, 1)
    out["peak_rss_increase_mib"] = round(_rss_mib() - baseline, 1)
    out["tracemalloc_peak_mib"] = round(py_peak / 2**20, 2)
    if variant == "ganforge_fid_kid_prdc":
        out["breakdown_seconds"] = _breakdown(fx, real, fake, settings)
    return out


def _breakdown(fx, real, fake, settings) -> dict:
    """Where ganforge's time goes (features, then each metric on the computed features)."""
    from ganforge.metrics import fid_from_stats, kid, prdc

    t = time.perf_counter()
    rf = fx.extract(real.split(settings.batch_size))
    ff = fx.extract(fake.split(settings.batch_size))
    times = {"features_20000_images": time.perf_counter() - t}
    t = time.perf_counter()
    fid_from_stats(rf.stats, ff.stats)
    times["fid"] = time.perf_counter() - t
    t = time.perf_counter()
    kid(rf.features, ff.features, n_subsets=100, subset_size=1000, seed=settings.seed)
    times["kid"] = time.perf_counter() - t
    t = time.perf_counter()
    prdc(rf.features, ff.features, k=settings.dc_k, pr_k=settings.pr_k)
    times["prdc"] = time.perf_counter() - t
    return {k: round(v, 3) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", default=str(DEFAULT_MNIST))
    parser.add_argument("--n", type=int, default=10_000, help="real and fake images each")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "eval_speed.json"))
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: one child run
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(child(args.variant, args)))
        return
    results = {}
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", variant, "--data-path", args.data_path, "--n", str(args.n),
               "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        if done.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{done.stderr}")
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    ours, theirs = results["ganforge_fid_kid"], results["torchmetrics_fid_kid"]
    summary = {
        "n_real": args.n, "n_fake": args.n, "features": "mnist classifier (128-d)", "threads": args.threads,
        "data": ours["data"],
        "seconds": {k: v["seconds"] for k, v in results.items()},
        "speedup_ganforge_over_torchmetrics_fid_kid": round(theirs["seconds"] / ours["seconds"], 2),
        "ratio_ganforge_all_over_torchmetrics_fid_kid": round(
            results["ganforge_fid_kid_prdc"]["seconds"] / theirs["seconds"], 2),
        "peak_rss_mib": {k: v["peak_rss_mib"] for k, v in results.items()},
        "peak_rss_increase_mib": {k: v["peak_rss_increase_mib"] for k, v in results.items()},
        "tracemalloc_peak_mib": {k: v["tracemalloc_peak_mib"] for k, v in results.items()},
        "values": {k: v["values"] for k, v in results.items()},
        "fid_relative_difference": abs(ours["values"]["fid"] - theirs["values"]["fid"]) / theirs["values"]["fid"],
        "kid_relative_difference": abs(ours["values"]["kid"] - theirs["values"]["kid"]) / abs(theirs["values"]["kid"]),
        "ganforge_breakdown_seconds": results["ganforge_fid_kid_prdc"]["breakdown_seconds"],
        "machine": {"cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0]},
    }
    text = json.dumps(summary, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
