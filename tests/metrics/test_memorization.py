"""Nearest-training-example distances of generated vs held-out samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.metrics._utils import MetricInputError, SmallSampleWarning
from ganforge.metrics.memorization import MemorizationReport, memorization


def _nn_brute_force(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.array([np.sqrt(((reference - q) ** 2).sum(1)).min() for q in query])


def test_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    train, heldout = rng.normal(size=(150, 6)), rng.normal(size=(120, 6))
    generated = rng.normal(size=(90, 6)) * 0.9
    out = memorization(generated, train, heldout, chunk_size=16)
    assert isinstance(out, MemorizationReport)
    d_gen, d_held = _nn_brute_force(generated, train), _nn_brute_force(heldout, train)
    np.testing.assert_allclose(out.generated_distances, d_gen, rtol=0, atol=1e-9)
    np.testing.assert_allclose(out.heldout_distances, d_held, rtol=0, atol=1e-9)
    q = np.quantile(d_held, [0.01, 0.05, 0.5])
    assert (out.heldout.q01, out.heldout.q05, out.heldout.q50) == pytest.approx(tuple(q), abs=1e-9)
    assert out.generated.q50 == pytest.approx(np.median(d_gen), abs=1e-9)
    assert out.threshold == pytest.approx(q[0], abs=1e-12)
    assert out.fraction_suspicious == pytest.approx(np.mean(d_gen < q[0]), abs=1e-12)
    assert out.ks_statistic == pytest.approx(stats.ks_2samp(d_gen, d_held).statistic, abs=1e-12)


def test_copied_training_data_is_flagged() -> None:
    g = torch.Generator().manual_seed(1)
    train = torch.randn(200, 8, generator=g)
    heldout = torch.randn(120, 8, generator=g)
    copies = train[:100] + 1e-4 * torch.randn(100, 8, generator=g)
    out = memorization(copies, train, heldout)
    assert out.fraction_suspicious == 1.0
    assert out.ks_statistic == 1.0 and out.ks_pvalue < 1e-6
    fresh = memorization(torch.randn(100, 8, generator=g), train, heldout)
    assert fresh.fraction_suspicious < 0.1 and fresh.ks_statistic < 0.3


def test_images_are_flattened_and_small_heldout_warns() -> None:
    g = torch.Generator().manual_seed(2)
    train, held, gen = (torch.rand(n, 1, 4, 4, generator=g) for n in (30, 10, 2))
    with pytest.warns(SmallSampleWarning, match="held-out"):
        out = memorization(gen, train, held)
    assert np.all(np.isfinite(out.generated_distances)) and out.generated.min >= 0.0


def test_degenerate_identical_samples() -> None:
    const = torch.full((20, 3), 0.25)
    with pytest.warns(SmallSampleWarning):
        out = memorization(const[:5], const, const)
    assert out.generated.q50 == 0.0 and out.fraction_suspicious == 0.0 and out.ks_statistic == 0.0


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        memorization(torch.zeros(0, 3), torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(MetricInputError, match="dimensions"):
        memorization(torch.zeros(2, 3), torch.zeros(5, 4), torch.zeros(5, 4))
