"""Precision / recall / density / coverage against a brute-force numpy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.metrics._utils import MetricInputError, kth_neighbour_distances, nearest_neighbour_distances
from ganforge.metrics.prdc import PRDC, PrecisionRecall, prdc, precision_recall


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Kynkäänniemi et al. 2019 / Naeem et al. 2020 from full distance matrices (closed balls)."""

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(x: np.ndarray) -> np.ndarray:
        d = dist(x, x)
        out = []
        for i in range(len(x)):
            others = np.delete(d[i], i)  # exclude the point itself
            out.append(np.sort(others)[k - 1])
        return np.array(out)

    r_real, r_fake = radii(real), radii(fake)
    d_fr = dist(fake, real)  # (m, n)
    inside_real = d_fr <= r_real[None, :]
    inside_fake = d_fr.T <= r_fake[None, :]  # (n, m): real i in ball of fake j
    return {
        "precision": float(np.mean([inside_real[j].any() for j in range(len(fake))])),
        "recall": float(np.mean([inside_fake[i].any() for i in range(len(real))])),
        "density": float(inside_real.sum()) / (k * len(fake)),
        "coverage": float(np.mean([inside_real[:, i].any() for i in range(len(real))])),
    }


def _data(n: int, m: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, d))
    fake = rng.normal(size=(m, d)) * 1.2 + 0.3
    return real, fake


@pytest.mark.parametrize("chunk_size", [7, 2048])
@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_brute_force(k: int, chunk_size: int) -> None:
    real, fake = _data(83, 61, 5, seed=0)
    expected = _brute_force(real, fake, k)
    got = prdc(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk_size=chunk_size)
    assert isinstance(got, PRDC)
    for name, value in expected.items():
        assert getattr(got, name) == pytest.approx(value, abs=1e-9), name


def test_precision_recall_defaults_to_k3() -> None:
    real, fake = _data(50, 70, 4, seed=1)
    expected = _brute_force(real, fake, 3)
    got = precision_recall(real, fake)  # numpy input is accepted too
    assert got == PrecisionRecall(precision=expected["precision"], recall=expected["recall"])


def test_knn_helpers_match_brute_force() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(31, 3)), rng.normal(size=(13, 3))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    expected_k2 = np.sort(d, axis=1)[:, 1]
    got = kth_neighbour_distances(torch.from_numpy(x), 2, chunk_size=4).numpy()
    np.testing.assert_allclose(got, expected_k2, rtol=0, atol=1e-9)
    d_yx = np.sqrt(((y[:, None] - x[None]) ** 2).sum(-1)).min(1)
    got_nn = nearest_neighbour_distances(torch.from_numpy(y), torch.from_numpy(x), chunk_size=5).numpy()
    np.testing.assert_allclose(got_nn, d_yx, rtol=0, atol=1e-9)


def test_identical_sets() -> None:
    real, _ = _data(40, 1, 3, seed=3)
    got = prdc(real, real, k=5)
    assert got.precision == 1.0 and got.recall == 1.0 and got.coverage == 1.0
    assert got.density >= 1.0


def test_degenerate_all_identical_samples() -> None:
    const = np.full((12, 3), 0.5)
    got = prdc(const, const, k=5)
    assert (got.precision, got.recall, got.coverage) == (1.0, 1.0, 1.0)
    assert got.density == pytest.approx(12 / 5)  # every fake lies in all 12 zero-radius balls
    far = prdc(const, const + 1.0, k=5)
    assert (far.precision, far.recall, far.density, far.coverage) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("n", [10, 50])
def test_small_samples_are_finite(n: int) -> None:
    real, fake = _data(n, n, 4, seed=4)
    got = prdc(real, fake)
    for value in (got.precision, got.recall, got.density, got.coverage):
        assert math.isfinite(value) and value >= 0.0


def test_too_few_samples_is_a_clear_error() -> None:
    real, fake = _data(2, 2, 4, seed=5)
    with pytest.raises(ValueError, match="at least 6"):
        prdc(real, fake, k=5)
    with pytest.raises(MetricInputError, match="dimensions"):
        prdc(np.zeros((10, 3)), np.zeros((10, 4)))
