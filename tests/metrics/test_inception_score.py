"""Inception Score: agreement with torchmetrics and a direct numpy formula, stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.metrics._utils import MetricInputError
from ganforge.metrics.inception_score import inception_score


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _logits(n: int, c: int, seed: int, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64) * scale


def _numpy_is(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """Salimans et al. (2016) reference formula on probabilities, parts i*N//splits."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(p)
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part) - np.log(py))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def test_matches_numpy_reference() -> None:
    logits = _logits(103, 12, seed=0)  # 103 is not a multiple of 10: uneven parts
    ours = inception_score(logits, splits=10)
    mean, std = _numpy_is(logits.numpy(), 10)
    assert ours.mean == pytest.approx(mean, rel=1e-10)
    assert ours.std == pytest.approx(std, rel=1e-8)


def test_matches_torchmetrics() -> None:
    from torchmetrics.image.inception import InceptionScore

    logits = _logits(200, 20, seed=1)
    metric = InceptionScore(feature=_Identity(), splits=10)
    metric.update(logits)
    torch.manual_seed(5)
    perm = torch.randperm(200)  # torchmetrics shuffles the rows with the global generator first
    torch.manual_seed(5)
    theirs_mean, theirs_std = (float(v) for v in metric.compute())
    ours = inception_score(logits[perm], splits=10)
    assert ours.mean == pytest.approx(theirs_mean, rel=1e-5)
    # torchmetrics reports the sample std (ddof=1), we the population std (ddof=0) of the parts.
    assert ours.std * math.sqrt(10 / 9) == pytest.approx(theirs_std, rel=1e-5)


def test_bounds_and_extremes() -> None:
    # Identical predictions: IS = 1. One confident class per sample, all classes equally: IS = C.
    assert inception_score(torch.zeros(50, 7), splits=5).mean == pytest.approx(1.0, abs=1e-12)
    confident = torch.full((60, 6), -1e4, dtype=torch.float64)
    confident[torch.arange(60), torch.arange(60) % 6] = 1e4
    result = inception_score(confident, splits=2)
    assert result.mean == pytest.approx(6.0, rel=1e-12) and result.std == pytest.approx(0.0, abs=1e-12)
    # -inf logits (classes of probability 0) and huge logits stay finite.
    masked = _logits(40, 5, seed=2)
    masked[:, 0] = -math.inf
    assert math.isfinite(inception_score(masked, splits=4).mean)
    assert math.isfinite(inception_score(_logits(40, 5, seed=3, scale=1e6), splits=4).mean)


@pytest.mark.parametrize("n", [2, 10, 50])
def test_small_samples(n: int) -> None:
    result = inception_score(_logits(n, 10, seed=4), splits=min(n, 10))
    assert math.isfinite(result.mean) and result.mean >= 1.0 and result.std >= 0.0


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        inception_score(_logits(5, 3, seed=5), splits=10)
    bad = _logits(20, 3, seed=6)
    bad[0, 0] = math.nan
    with pytest.raises(MetricInputError, match="NaN"):
        inception_score(bad, splits=2)
    with pytest.raises(MetricInputError, match="shape"):
        inception_score(torch.zeros(10), splits=2)
