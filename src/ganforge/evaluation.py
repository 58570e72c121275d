"""Measured quality of a trained run (``ganforge eval``).

For toy distributions, whose density and modes are known, the numbers are exact protocols:

- 2-D mixtures (ring, grid, ...): the PacGAN/VEEGAN protocol on ``n`` samples (default 2,500):
  modes captured, fraction of high-quality samples (within 3 std of the nearest mode), and the
  reverse KL of the mode histogram against the true weights.
- 1-D distributions: Wasserstein-1 distance and KS statistic to the true distribution, and the
  discriminator against the optimal D* = p_data / (p_data + p_model) on a grid over the data's
  central 99 % (p_model estimated from samples by a Gaussian KDE).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ganforge.metrics.toy import (
    central_interval,
    discriminator_gap,
    estimate_density_1d,
    ks_statistic,
    mode_metrics,
    optimal_discriminator,
    wasserstein1,
)
from ganforge.run import LoadedRun, TrainedGenerator


def data_std_1d(dataset: Any) -> float:
    """Standard deviation of a 1-D Gaussian mixture, from its components."""
    w, m, s = (dataset.weights.double(), dataset.modes.double().reshape(-1), dataset.mode_stds.double())
    mean = (w * m).sum()
    return float(((w * (s**2 + m**2)).sum() - mean**2).sqrt())


@torch.no_grad()
def discriminator_on_grid(run: LoadedRun, grid: np.ndarray) -> np.ndarray:
    """D's probability of "real" on a 1-D grid (sigmoid of the logit)."""
    x = torch.as_tensor(grid, dtype=torch.float32).reshape(-1, 1)
    return torch.sigmoid(run.discriminator(x)).double().numpy()


def one_d_report(run: LoadedRun, samples: np.ndarray, grid_points: int = 512) -> dict[str, float]:
    dataset = run.experiment.dataset
    x = samples.reshape(-1)
    sigma = data_std_1d(dataset)
    lo, hi = central_interval(dataset, 0.99)
    grid = np.linspace(lo, hi, grid_points)
    p_data = dataset.prob(torch.as_tensor(grid)).double().numpy()
    p_model = estimate_density_1d(x, grid)
    d_star = optimal_discriminator(grid, p_data, p_model)
    out = {
        "w1": wasserstein1(x, lambda t: dataset.cdf(torch.as_tensor(t)).double().numpy()),
        "ks": ks_statistic(x, lambda t: dataset.cdf(torch.as_tensor(t)).double().numpy()),
        "data_std": sigma,
    }
    out["w1_over_sigma"] = out["w1"] / sigma
    if run.experiment.cost.probabilistic:
        d = discriminator_on_grid(run, grid)
        out["d_gap_to_optimal"] = discriminator_gap(d, d_star)
        out["d_mean_abs_from_half"] = float(np.mean(np.abs(d - 0.5)))
    return out


def evaluate_run(run: LoadedRun, n: int = 2500, seed: int = 0) -> dict[str, Any]:
    """The measured quality of a trained run, as a JSON-able dict."""
    dataset = run.experiment.dataset
    samples = TrainedGenerator(run).sample(n, seed=seed).numpy()
    report: dict[str, Any] = {"run": str(run.path.parent.parent), "step": run.step, "n": n, "seed": seed,
                              "dataset": run.config.data.name}
    if not np.all(np.isfinite(samples)):
        report["non_finite_samples"] = int((~np.isfinite(samples)).any(axis=tuple(range(1, samples.ndim))).sum())
    modes = getattr(dataset, "modes", None)
    if len(dataset.shape) == 1 and dataset.shape[0] == 1 and hasattr(dataset, "cdf"):
        report.update(one_d_report(run, samples))
    if modes is not None and dataset.shape[0] >= 2:
        r = mode_metrics(samples, modes, dataset.mode_stds, dataset.weights)
        report.update({"modes_captured": r.modes_captured, "n_modes": r.n_modes,
                       "hq_fraction": r.hq_fraction, "reverse_kl": r.reverse_kl,
                       "mode_counts": list(r.counts)})
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in report.items()}
