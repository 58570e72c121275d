"""The real-vs-real floor on MNIST in our classifier's feature space, and a run's numbers against it.

The 10,000 MNIST test images are put in a seeded random order and cut into two disjoint halves A and
B (5,000 each). With A as the reference:

- ``floor``: every metric between A and B (real against real): the best a generator can reach with
  these features and 5,000 samples;
- ``floor_fid_by_n``: FID between A and the first n images of B (FID is biased upwards at small n);
- ``degraded``: B made worse in known ways (Gaussian noise; only the digits 0-4, i.e. half the modes
  dropped), to show which metric moves for which failure;
- ``run`` (with ``--run DIR``): the same metrics for 5,000 samples of the run's EMA generator and of
  its raw generator, and ``run_minus_floor`` for FID and KID.

    .venv/bin/python bench/mnist_floor.py [--data-path DIR] [--run runs/mnist-dcgan] [--out bench/out/mnist_floor.json]

Prints one JSON object (and writes it to --out). Needs the MNIST test set (../shared/data/mnist).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganforge.data import DATASETS
from ganforge.evaluation import EvalSettings, GeneratorSource, TensorSource, evaluate_images, load_extractor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist"
METRICS = ["fid", "kid", "is", "prdc", "modes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", default=str(DEFAULT_MNIST))
    parser.add_argument("--run", default=None, help="a run directory of an MNIST (28x28) GAN")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "mnist_floor.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    data = DATASETS.build("mnist", {"path": args.data_path, "split": "test"})
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed))
    half = len(data) // 2
    a, b = order[:half], order[half:]
    real_a = TensorSource(data.examples[a], data.targets[a], name="MNIST test, half A")
    images_b, labels_b = data.examples[b], data.targets[b]
    fx = load_extractor("mnist")
    settings = EvalSettings(seed=args.seed, batch_size=500)

    def measure(fake: TensorSource | GeneratorSource, metrics: list[str] = METRICS) -> dict:
        # all of A is the reference (evaluate_images without --floor), so every number here is comparable
        return evaluate_images(fake, real_a, fx, metrics, settings=settings)["metrics"]

    out: dict = {"data": f"MNIST test set, 2 x {half} images", "features": fx.describe(), "seed": args.seed,
                 "floor": measure(TensorSource(images_b, labels_b, name="MNIST test, half B"))}
    out["floor_fid_by_n"] = {
        str(n): measure(TensorSource(images_b[:n], name=f"B[:{n}]"), ["fid"])["fid"] for n in (500, 1000, 2000, 5000)}
    g = torch.Generator().manual_seed(args.seed + 1)
    noisy = (images_b + 0.3 * torch.randn(images_b.shape, generator=g)).clamp(-1, 1)
    low = labels_b < 5
    out["degraded"] = {
        "gaussian_noise_0.3": measure(TensorSource(noisy, name="B + noise")),
        "digits_0_to_4_only": measure(TensorSource(images_b[low], name="B, digits 0-4")),
    }
    if args.run:
        from ganforge.run import load_run

        out["run"] = {"dir": args.run}
        for which, ema in (("ema", True), ("raw", False)):
            run = load_run(args.run, ema=ema)
            if tuple(run.experiment.dataset.shape) != (1, 28, 28):
                raise SystemExit(f"{args.run}: not an MNIST-sized run ({run.experiment.dataset.shape})")
            out["run"].update(step=run.step, data=run.config.data.model_dump())
            fake = GeneratorSource(run.generator, run.experiment.prior, half, seed=args.seed,
                                   n_classes=run.experiment.dataset.n_classes, name=f"{args.run} ({which})")
            out["run"][which] = measure(fake)
        # KID's unbiased floor can be slightly negative, so the gap is a difference, not a ratio
        out["run_minus_floor"] = {w: {k: out["run"][w][k] - out["floor"][k] for k in ("fid", "kid")}
                                  for w in ("ema", "raw")}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(out, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
