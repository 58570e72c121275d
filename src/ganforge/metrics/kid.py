"""Kernel Inception Distance (KID) on features.

Bińkowski, Sutherland, Arbel & Gretton (2018), "Demystifying MMD GANs": the squared maximum mean
discrepancy between real and generated features under the cubic polynomial kernel

    k(x, y) = (x . y / d + 1) ** 3,

estimated without bias (the within-set sums leave out the diagonal ``k(x_i, x_i)``), averaged
over ``n_subsets`` random subsets of ``subset_size`` samples of each set (default 100 subsets of
1000, as in the reference implementation). Unlike FID the estimator is unbiased, so small
samples give noisy but not systematically shifted values; it can be slightly negative.

All kernel sums are computed in float64.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ganforge.metrics._utils import (
    ArrayLike,
    MeanStd,
    MetricInputError,
    SmallSampleWarning,
    as_features,
    check_same_dim,
)

__all__ = ["kid", "kid_subset_indices", "polynomial_mmd2"]


def _poly_kernel(a: Tensor, b: Tensor, degree: int, gamma: float, coef: float) -> Tensor:
    """``(a @ b.T * gamma + coef) ** degree``: ``(len(a), len(b))``."""
    return (a @ b.T * gamma + coef) ** degree


def _mmd2(x: Tensor, y: Tensor, degree: int, gamma: float, coef: float) -> float:
    m, n = x.shape[0], y.shape[0]
    k_xx = _poly_kernel(x, x, degree, gamma, coef)  # (m, m)
    k_yy = _poly_kernel(y, y, degree, gamma, coef)  # (n, n)
    k_xy = _poly_kernel(x, y, degree, gamma, coef)  # (m, n)
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    value = sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.sum() / (m * n)
    return float(value)


def polynomial_mmd2(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> float:
    """Unbiased MMD^2 between ``real (m, d)`` and ``fake (n, d)`` with a polynomial kernel.

    ``k(x, y) = (gamma * x . y + coef) ** degree`` with ``gamma = 1 / d`` by default
    (Bińkowski et al. 2018). The estimator is

        sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
        - 2 sum_{i, j} k(x_i, y_j) / (m n).

    Raises:
        MetricInputError: fewer than 2 samples in a set, or different dimensions.
    """
    x = as_features(real, "real features", min_samples=2)
    y = as_features(fake, "fake features", min_samples=2).to(x.device)
    check_same_dim(x, y, "real features", "fake features")
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)
    return _mmd2(x, y, degree, g, coef)


def kid_subset_indices(
    n_real: int, n_fake: int, n_subsets: int, subset_size: int, generator: torch.Generator
) -> list[tuple[Tensor, Tensor]]:
    """The subsets :func:`kid` draws: for each subset, in this order,
    ``torch.randperm(n_real, generator=generator)[:subset_size]`` then the same for ``n_fake``.

    (This is also the order in which torchmetrics draws them from the global generator.)
    """
    out = []
    for _ in range(n_subsets):
        idx_real = torch.randperm(n_real, generator=generator)[:subset_size]
        idx_fake = torch.randperm(n_fake, generator=generator)[:subset_size]
        out.append((idx_real, idx_fake))
    return out


def kid(
    real: ArrayLike,
    fake: ArrayLike,
    n_subsets: int = 100,
    subset_size: int = 1000,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> MeanStd:
    """Kernel Inception Distance (Bińkowski et al. 2018) between ``real (n, d)`` and ``fake (m, d)``.

    Args:
        real, fake: feature matrices.
        n_subsets: number of random subsets the MMD^2 is averaged over.
        subset_size: samples of each set per subset; clamped (with a :class:`SmallSampleWarning`)
            to the size of the smaller set.
        seed: seeds a fresh CPU generator for the subsets (ignored when ``generator`` is given).
        generator: a ``torch.Generator`` to draw the subsets from (see :func:`kid_subset_indices`).
        degree, gamma, coef: the polynomial kernel; ``gamma=None`` means ``1 / d``.

    Returns:
        ``MeanStd(mean, std)``: mean and population standard deviation of MMD^2 over the subsets.

    Raises:
        MetricInputError: fewer than 2 samples in a set, bad ``n_subsets`` / ``subset_size``.
    """
    x = as_features(real, "real features", min_samples=2)
    y = as_features(fake, "fake features", min_samples=2).to(x.device)
    check_same_dim(x, y, "real features", "fake features")
    if not isinstance(n_subsets, int) or n_subsets < 1:
        raise MetricInputError(f"n_subsets must be a positive integer, got {n_subsets!r}")
    if not isinstance(subset_size, int) or subset_size < 2:
        raise MetricInputError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    n_min = min(x.shape[0], y.shape[0])
    if subset_size > n_min:
        warnings.warn(
            f"KID: subset_size={subset_size} is larger than the {n_min} samples available; "
            f"using subsets of {n_min}",
            SmallSampleWarning,
            stacklevel=2,
        )
        subset_size = n_min
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    g = 1.0 / x.shape[1] if gamma is None else float(gamma)

    scores = []
    for idx_real, idx_fake in kid_subset_indices(x.shape[0], y.shape[0], n_subsets, subset_size, generator):
        scores.append(_mmd2(x[idx_real.to(x.device)], y[idx_fake.to(x.device)], degree, g, coef))
    values = torch.tensor(scores, dtype=torch.float64)
    return MeanStd(float(values.mean()), float(values.std(unbiased=False)))
