"""FID: agreement with torchmetrics and a scipy.linalg.sqrtm formula, streaming stats, edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from ganforge.metrics._utils import MetricInputError, SmallSampleWarning
from ganforge.metrics.fid import GaussianStats, fid_from_features, fid_from_stats, frechet_distance


class _Identity(nn.Module):
    """A torchmetrics "feature extractor" that returns its input: the metric sees our features."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + shift


def _torchmetrics_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Identity(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def _scipy_fid(real: np.ndarray, fake: np.ndarray) -> float:
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_fid_matches_torchmetrics_and_scipy(shift: float) -> None:
    real = _features(300, 24, seed=0)
    fake = _features(250, 24, seed=1, shift=shift) * 1.3
    ours = fid_from_features(real, fake)
    assert ours == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-5)
    assert ours == pytest.approx(_scipy_fid(real.numpy(), fake.numpy()), rel=1e-5)


def test_streaming_stats_equal_one_shot_and_merge() -> None:
    x = _features(301, 16, seed=2, shift=1000.0)  # a large mean tests the centred accumulation
    ref_mean = x.mean(0)
    ref_cov = torch.from_numpy(np.cov(x.numpy(), rowvar=False))
    stats = GaussianStats()
    for batch in x.split(37):
        stats.update(batch)
    assert stats.n == 301
    torch.testing.assert_close(stats.mean, ref_mean, rtol=0, atol=1e-9)
    torch.testing.assert_close(stats.cov, ref_cov, rtol=1e-10, atol=1e-10)
    merged = GaussianStats.from_features(x[:100]).merge(GaussianStats.from_features(x[100:]))
    torch.testing.assert_close(merged.cov, ref_cov, rtol=1e-10, atol=1e-10)
    restored = GaussianStats.from_state_dict(stats.state_dict())
    torch.testing.assert_close(restored.cov, stats.cov)
    # Streaming FID equals one-shot FID.
    y = _features(200, 16, seed=3, shift=1000.5)
    streamed = fid_from_stats(stats, GaussianStats().update(y[:50]).update(y[50:]))
    assert streamed == pytest.approx(fid_from_features(x, y), rel=1e-9)


def test_identical_sets_give_zero() -> None:
    x = _features(100, 8, seed=4)
    value = fid_from_features(x, x)
    assert 0.0 <= value < 1e-9


def test_frechet_distance_of_gaussians_closed_form() -> None:
    # Diagonal covariances: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)
    b = torch.tensor([4.0, 1.0, 0.0], dtype=torch.float64)
    mu1 = torch.zeros(3, dtype=torch.float64)
    mu2 = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    expected = 9.0 + ((a.sqrt() - b.sqrt()) ** 2).sum().item()
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n", [2, 10, 50])
def test_small_samples_are_finite_non_negative_and_warn(n: int) -> None:
    d = 64  # > n: rank-deficient covariances
    with pytest.warns(SmallSampleWarning):
        value = fid_from_features(_features(n, d, seed=5), _features(n, d, seed=6))
    assert math.isfinite(value) and value >= 0.0


def test_rank_deficient_close_to_torchmetrics() -> None:
    real, fake = _features(40, 64, seed=7), _features(40, 64, seed=8)
    with pytest.warns(SmallSampleWarning):
        ours = fid_from_features(real, fake)
    assert ours == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-5)


def test_degenerate_identical_samples() -> None:
    const = torch.full((20, 4), 0.7, dtype=torch.float64)
    assert fid_from_features(const, const) == 0.0
    other = torch.full((20, 4), 1.7, dtype=torch.float64)
    assert fid_from_features(const, other) == pytest.approx(4.0, rel=1e-12)
    # Nearly identical PSD matrices: round-off would make the naive formula negative.
    s = torch.ones(5, 5, dtype=torch.float64) * 1e6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_distance(torch.zeros(5), s, torch.zeros(5), s)
    assert value >= 0.0 and math.isfinite(value)


def test_clear_errors() -> None:
    x = _features(10, 4, seed=9)
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(x[:1], x)
    with pytest.raises(MetricInputError, match="dimensions"):
        fid_from_features(x, x[:, :3])
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(MetricInputError, match="NaN"):
        fid_from_features(bad, x)
    with pytest.raises(MetricInputError):
        GaussianStats().cov  # noqa: B018
