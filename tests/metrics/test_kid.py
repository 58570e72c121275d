"""KID: agreement with torchmetrics and with a brute-force numpy unbiased MMD^2, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.metrics._utils import MetricInputError, SmallSampleWarning
from ganforge.metrics.kid import kid, kid_subset_indices, polynomial_mmd2


class _Identity(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2.0 + shift


def _numpy_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b/d + 1)^3, written with explicit loops over pairs."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((np.dot(a, b) / d + 1.0) ** 3)

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def _torchmetrics_kid(real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int, seed: int):
    from torchmetrics.image.kid import KernelInceptionDistance

    metric = KernelInceptionDistance(
        feature=_Identity(real.shape[1]), subsets=subsets, subset_size=subset_size
    )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(seed)  # torchmetrics draws its subsets from the global generator
    mean, std = metric.compute()
    return float(mean), float(std)


def test_polynomial_mmd2_matches_brute_force() -> None:
    x, y = _features(20, 6, seed=0), _features(17, 6, seed=1, shift=0.3)
    assert polynomial_mmd2(x, y) == pytest.approx(_numpy_mmd2(x.numpy(), y.numpy()), rel=1e-10)


def test_kid_subsets_match_brute_force_on_the_same_indices() -> None:
    x, y = _features(40, 5, seed=2), _features(35, 5, seed=3, shift=0.2)
    result = kid(x, y, n_subsets=4, subset_size=12, seed=7)
    subsets = kid_subset_indices(40, 35, 4, 12, torch.Generator().manual_seed(7))
    values = [_numpy_mmd2(x[i].numpy(), y[j].numpy()) for i, j in subsets]
    assert result.mean == pytest.approx(float(np.mean(values)), rel=1e-10)
    assert result.std == pytest.approx(float(np.std(values)), rel=1e-8)
    mean, std = result  # unpacks as a (mean, std) pair
    assert (mean, std) == (result.mean, result.std)


def test_kid_full_set_matches_torchmetrics() -> None:
    x, y = _features(60, 16, seed=4), _features(60, 16, seed=5, shift=0.1)
    ours = kid(x, y, n_subsets=1, subset_size=60)
    theirs_mean, theirs_std = _torchmetrics_kid(x, y, subsets=1, subset_size=60, seed=0)
    assert ours.mean == pytest.approx(theirs_mean, rel=1e-5)
    assert ours.std == 0.0 and theirs_std == 0.0


def test_kid_random_subsets_match_torchmetrics_with_the_same_seed() -> None:
    x, y = _features(80, 8, seed=6), _features(70, 8, seed=7, shift=0.15)
    ours = kid(x, y, n_subsets=5, subset_size=30, seed=123)
    theirs_mean, theirs_std = _torchmetrics_kid(x, y, subsets=5, subset_size=30, seed=123)
    assert ours.mean == pytest.approx(theirs_mean, rel=1e-5)
    assert ours.std == pytest.approx(theirs_std, rel=1e-5)


def test_seeding_is_reproducible() -> None:
    x, y = _features(50, 4, seed=8), _features(50, 4, seed=9)
    assert kid(x, y, 5, 20, seed=1) == kid(x, y, 5, 20, seed=1)
    assert kid(x, y, 5, 20, seed=1) != kid(x, y, 5, 20, seed=2)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert kid(x, y, 5, 20, generator=g1) == kid(x, y, 5, 20, generator=g2)


def test_subset_size_is_clamped_with_a_warning() -> None:
    x, y = _features(30, 4, seed=10), _features(25, 4, seed=11)
    with pytest.warns(SmallSampleWarning, match="25"):
        result = kid(x, y, n_subsets=3, subset_size=1000)
    assert math.isfinite(result.mean) and math.isfinite(result.std)


@pytest.mark.parametrize("n", [2, 10, 50])
def test_small_samples_are_finite(n: int) -> None:
    x, y = _features(n, 8, seed=12), _features(n, 8, seed=13, shift=0.5)
    with pytest.warns(SmallSampleWarning):
        result = kid(x, y, n_subsets=3)
    assert math.isfinite(result.mean) and math.isfinite(result.std) and result.std >= 0


def test_identical_and_degenerate_samples() -> None:
    x = _features(30, 4, seed=14)
    # The cross term keeps the pairs (x_i, x_i), so KID(x, x) is slightly *negative* (unbiased).
    same = kid(x, x, n_subsets=1, subset_size=30).mean
    assert same == pytest.approx(_numpy_mmd2(x.numpy(), x.numpy()), rel=1e-10)
    assert same < 0.0 and abs(same) < kid(x, x + 1.0, n_subsets=1, subset_size=30).mean
    const = torch.full((10, 4), 0.3, dtype=torch.float64)
    assert kid(const, const, n_subsets=2, subset_size=10).mean == pytest.approx(0.0, abs=1e-12)


def test_clear_errors() -> None:
    x = _features(10, 4, seed=15)
    with pytest.raises(ValueError, match="at least 2"):
        kid(x[:1], x)
    with pytest.raises(MetricInputError, match="dimensions"):
        kid(x, x[:, :2])
    with pytest.raises(MetricInputError, match="n_subsets"):
        kid(x, x, n_subsets=0)
