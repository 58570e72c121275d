"""Signals of the game as pure functions: equilibrium, periodicity, diversity, duplicates, modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from ganforge.data.toy import Ring
from ganforge.diagnostics.signals import (
    LOG4,
    SampleReference,
    equilibrium_gap,
    pairwise_summary,
    periodicity,
    sample_signals,
    value_gap,
)


def test_equilibrium_closed_forms():
    # At D = 1/2 everywhere: V = log(1/2) + log(1/2) = -log 4, so both gaps are 0.
    assert equilibrium_gap(0.5, 0.5) == 0.0
    assert value_gap(2 * math.log(0.5)) == pytest.approx(0.0, abs=1e-15)
    assert equilibrium_gap(0.9, 0.2) == pytest.approx(0.4)
    # D wins outright: V -> 0, the gap -> log 4.
    assert value_gap(0.0) == pytest.approx(LOG4)


@pytest.mark.parametrize("period", [2, 5, 7, 8, 12])
def test_periodicity_finds_the_period_of_a_noisy_sinusoid(period):
    rng = np.random.default_rng(period)
    t = np.arange(64)
    x = 1.0 + 0.01 * t + 0.5 * np.sin(2 * np.pi * t / period + 0.7) + 0.1 * rng.normal(size=64)
    p = periodicity(x)
    assert p is not None
    assert p.period == period  # 7 does not divide 64: the autocorrelation resolves it between bins
    assert p.power > 0.6 and p.acf > 0.8 and p.acf2 > 0.6
    assert p.amplitude == pytest.approx(0.5 / math.sqrt(2), rel=0.2)


def test_periodicity_of_noise_and_drift_is_weak():
    rng = np.random.default_rng(0)
    white = periodicity(rng.normal(size=64))
    assert white is not None and white.power < 0.4
    # A slow drift (one bump over the window) is not an oscillation: fewer than 3 cycles are ignored.
    t = np.arange(64)
    drift = periodicity(np.exp(-t / 10.0) + np.sin(np.pi * t / 64))
    assert drift is None or drift.power < 0.5
    assert periodicity(np.ones(64)) is None
    assert periodicity([1.0, 2.0, 3.0]) is None
    assert periodicity(np.r_[np.ones(30), np.nan, np.ones(30)]) is None


@pytest.mark.parametrize("dim", [2, 40])  # both code paths: coordinate differences and the Gram matrix
def test_pairwise_summary_matches_brute_force(dim):
    x = np.random.default_rng(1).normal(size=(50, dim))
    mean, nn = pairwise_summary(x)
    d = cdist(x, x)
    assert mean == pytest.approx(d.sum() / (50 * 49), rel=1e-9)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(nn, d.min(axis=1), rtol=1e-6, atol=1e-9)


def test_diversity_and_duplicates_against_real_data():
    ring = Ring(n_modes=8, radius=2.0, std=0.05)
    ref = SampleReference.from_dataset(ring, n=500, seed=0)
    assert ref.is_mixture and ref.shape == (2,)
    same = sample_signals(ring.sample(500, torch.Generator().manual_seed(9))[0], ref)
    assert same["diversity_ratio"] == pytest.approx(1.0, abs=0.05)
    assert same["duplicate_rate"] < 0.05
    assert same["modes_captured"] == 8 and same["hq_fraction"] > 0.95
    # Collapsed onto one point: no diversity, every sample has an exact duplicate.
    point = np.tile(np.array([[2.0, 0.0]]), (500, 1))
    one = sample_signals(point, ref)
    assert one["diversity_ratio"] == 0.0 and one["duplicate_rate"] == 1.0
    assert one["modes_captured"] == 1 and one["covered"] == [0]


def test_two_of_eight_modes_are_counted():
    ring = Ring(n_modes=8, radius=2.0, std=0.05)
    ref = SampleReference.from_dataset(ring, n=500)
    g = torch.Generator().manual_seed(3)
    x = ring.modes[torch.randint(0, 2, (1000,), generator=g) * 4] + 0.05 * torch.randn(1000, 2, generator=g)
    sig = sample_signals(x, ref)
    assert sig["covered"] == [0, 4] and sig["modes_captured"] == 2
    assert sig["mode_counts"][1] == 0
    assert sig["diversity_ratio"] > 0.5  # opposite modes: diversity alone would not see this collapse


def test_non_finite_samples_are_counted_and_skipped():
    ring = Ring(n_modes=8, radius=2.0, std=0.05)
    ref = SampleReference.from_dataset(ring, n=100)
    x = ring.sample(100, torch.Generator().manual_seed(0))[0].numpy()
    x[:10] = np.nan
    sig = sample_signals(x, ref)
    assert sig["non_finite_samples"] == 10 and sig["n_samples"] == 100
    assert math.isfinite(sig["diversity_ratio"])
