"""Precision / recall and density / coverage of generated features, from k-NN manifolds.

- Kynkäänniemi, Karras, Laine, Lehtinen & Aila (2019), "Improved Precision and Recall Metric
  for Assessing Generative Models": the real manifold is the union of balls around each real
  feature with radius the distance to its k-th nearest real neighbour (k = 3 by default);
  **precision** is the fraction of generated samples inside the real manifold, **recall** the
  fraction of real samples inside the generated manifold (built the same way).
- Naeem, Oh, Uh, Choi & Yoo (2020), "Reliable Fidelity and Diversity Metrics for Generative
  Models" (k = 5 by default): **density** = ``1/(k M) sum_j #{i : y_j in B(x_i, r_i)}`` counts
  how many real balls contain each generated sample (can exceed 1); **coverage** = fraction of
  real samples whose ball contains at least one generated sample.

Conventions: balls are closed (``distance <= radius``), so identical sets give precision = recall
= coverage = 1 even when radii are 0; the k-th neighbour excludes the point itself (a duplicate
elsewhere counts at distance 0). Distances are Euclidean, float64, computed in blocks of
``chunk_size x chunk_size`` so memory stays bounded for 10,000 x 10,000 comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.metrics._utils import (
    DEFAULT_CHUNK_SIZE,
    ArrayLike,
    MetricInputError,
    as_features,
    blocks,
    check_chunk_size,
    check_same_dim,
    kth_neighbour_distances,
    pairwise_distances,
)

__all__ = ["PRDC", "PrecisionRecall", "precision_recall", "prdc"]


@dataclass(frozen=True)
class PrecisionRecall:
    """Kynkäänniemi et al. (2019) precision and recall, both in [0, 1]."""

    precision: float
    recall: float


@dataclass(frozen=True)
class PRDC:
    """Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020)."""

    precision: float  # [0, 1] fidelity
    recall: float  # [0, 1] diversity
    density: float  # [0, inf), 1 on average when fake ~ real
    coverage: float  # [0, 1] diversity, robust to outliers


def _counts(real: Tensor, fake: Tensor, k: int, chunk_size: int, pr_k: int | None = None) -> PRDC:
    """One blockwise pass over the ``(m fake, n real)`` distances; precision / recall use the
    balls of ``pr_k`` (default ``k``), density / coverage those of ``k``."""
    n, m = real.shape[0], fake.shape[0]
    pr_k = k if pr_k is None else pr_k
    r_real_dc = kth_neighbour_distances(real, k, chunk_size)  # (n,) density / coverage radii
    r_real = r_real_dc if pr_k == k else kth_neighbour_distances(real, pr_k, chunk_size)  # (n,)
    r_fake = kth_neighbour_distances(fake, pr_k, chunk_size)  # (m,)
    in_real_manifold = torch.zeros(m, dtype=torch.bool, device=real.device)  # precision
    n_real_balls = torch.zeros(m, dtype=torch.int64, device=real.device)  # density
    real_covered = torch.zeros(n, dtype=torch.bool, device=real.device)  # coverage
    in_fake_manifold = torch.zeros(n, dtype=torch.bool, device=real.device)  # recall
    for f0, f1 in blocks(m, chunk_size):
        for r0, r1 in blocks(n, chunk_size):
            d = pairwise_distances(fake[f0:f1], real[r0:r1])  # (f, r)
            inside_real = d <= r_real[r0:r1].unsqueeze(0)  # fake j in the pr_k-ball of real i
            in_real_manifold[f0:f1] |= inside_real.any(dim=1)
            if pr_k != k:
                inside_real = d <= r_real_dc[r0:r1].unsqueeze(0)  # fake j in the k-ball of real i
            n_real_balls[f0:f1] += inside_real.sum(dim=1)
            real_covered[r0:r1] |= inside_real.any(dim=0)
            inside_fake = d <= r_fake[f0:f1].unsqueeze(1)  # real i in ball of fake j
            in_fake_manifold[r0:r1] |= inside_fake.any(dim=0)
    return PRDC(
        precision=float(in_real_manifold.double().mean()),
        recall=float(in_fake_manifold.double().mean()),
        density=float(n_real_balls.double().sum()) / (k * m),
        coverage=float(real_covered.double().mean()),
    )


def _prepare(real: ArrayLike, fake: ArrayLike, k: int, chunk_size: int, fake_k: int | None = None
             ) -> tuple[Tensor, Tensor]:
    check_chunk_size(chunk_size)
    x = as_features(real, "real features", min_samples=k + 1)
    y = as_features(fake, "fake features", min_samples=(k if fake_k is None else fake_k) + 1).to(x.device)
    check_same_dim(x, y, "real features", "fake features")
    return x, y


def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = 3, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake (m, d)`` w.r.t. ``real (n, d)``.

    Raises:
        MetricInputError: a set has ``<= k`` samples, dimensions differ, NaN features.
    """
    x, y = _prepare(real, fake, k, chunk_size)
    c = _counts(x, y, k, chunk_size)
    return PrecisionRecall(precision=c.precision, recall=c.recall)


def prdc(real: ArrayLike, fake: ArrayLike, k: int = 5, *, pr_k: int | None = None,
         chunk_size: int = DEFAULT_CHUNK_SIZE) -> PRDC:
    """Precision, recall, density and coverage in one pass over the distances.

    Args:
        k: neighbours of the density / coverage balls (Naeem et al. 2020 use 5).
        pr_k: neighbours of the precision / recall balls (Kynkäänniemi et al. 2019 use 3);
            default ``k`` (all four with one k, as Naeem et al.'s reference code reports them).

    Raises:
        MetricInputError: a set has ``<= k`` samples, dimensions differ, NaN features.
    """
    pr_k = k if pr_k is None else pr_k
    if not isinstance(pr_k, int) or pr_k < 1:
        raise MetricInputError(f"pr_k must be a positive integer, got {pr_k!r}")
    x, y = _prepare(real, fake, max(k, pr_k), chunk_size, fake_k=pr_k)
    return _counts(x, y, k, chunk_size, pr_k=pr_k)
