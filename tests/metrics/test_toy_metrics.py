"""Toy metrics against closed forms and scipy: mode coverage, W1, KS, optimal discriminator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from ganforge.data import toy
from ganforge.metrics.toy import (
    ModeReport,
    central_interval,
    discriminator_gap,
    estimate_density_1d,
    ks_statistic,
    mode_metrics,
    optimal_discriminator,
    wasserstein1,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ring_report(x: torch.Tensor | np.ndarray, ring: toy.Ring, **kw) -> ModeReport:
    return mode_metrics(x, ring.modes, ring.mode_stds, ring.weights, **kw)


# -- mode coverage ------------------------------------------------------------------------------


def test_true_ring_samples_cover_all_modes():
    ring = toy.Ring()
    x, _ = ring.sample(2500, gen(0))
    rep = ring_report(x, ring)
    assert rep.n_samples == 2500 and rep.n_modes == 8
    assert rep.modes_captured == 8
    # 2-D isotropic Gaussian: r / sigma ~ chi_2, P(r <= 3 sigma) = 1 - exp(-9/2)
    p_hq = 1 - math.exp(-4.5)
    assert p_hq == pytest.approx(0.98889, abs=1e-5)
    assert rep.hq_fraction == pytest.approx(p_hq, abs=4 * math.sqrt(p_hq * (1 - p_hq) / 2500))
    assert sum(rep.counts) == round(rep.hq_fraction * 2500)
    # E[KL(empirical || truth)] ~ (K - 1) / (2 N) = 0.0014
    assert 0 <= rep.reverse_kl < 0.01


def test_true_1d_samples_hq_fraction_is_three_sigma_mass():
    ds = toy.Mixture1DDataset(means=[-5.0, 5.0], stds=[0.5, 0.5])
    x, _ = ds.sample(20_000, gen(1))
    rep = mode_metrics(x, ds.modes, ds.mode_stds, ds.weights)
    p = st.chi(1).cdf(3.0)  # = 0.9973
    assert rep.hq_fraction == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 20_000))
    assert rep.modes_captured == 2


def test_two_of_eight_modes_gives_log4():
    ring = toy.Ring()
    x = ring.modes[[1, 5]].repeat(100, 1)  # exactly on modes 1 and 5, 100 each
    rep = ring_report(x, ring)
    assert rep.modes_captured == 2
    assert rep.hq_fraction == 1.0
    assert rep.counts == (0, 100, 0, 0, 0, 100, 0, 0)
    # KL(p || q), p = 1/2 on two modes, q = 1/8: 2 * 0.5 * log(0.5 / 0.125) = log 4
    assert rep.reverse_kl == pytest.approx(math.log(4), abs=1e-12)


def test_unbalanced_histogram_closed_form_and_weights():
    modes = np.array([[0.0], [10.0]])
    x = np.concatenate([np.zeros(30), np.full(10, 10.0)])[:, None]
    rep = mode_metrics(x, modes, [1.0, 1.0], [0.5, 0.5])
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert rep.reverse_kl == pytest.approx(expected, abs=1e-12)
    # matching the true weights gives zero (weights are normalized)
    assert mode_metrics(x, modes, [1.0, 1.0], [3.0, 1.0]).reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_far_samples_are_not_hq_and_kl_is_inf():
    ring = toy.Ring()
    x = torch.full((50, 2), 10.0)
    rep = ring_report(x, ring)
    assert rep.hq_fraction == 0.0 and rep.modes_captured == 0
    assert rep.reverse_kl == math.inf
    assert rep.counts == (0,) * 8


def test_hq_threshold_and_min_count():
    modes = np.array([[0.0, 0.0], [10.0, 0.0]])
    stds = np.array([1.0, 2.0])
    # distances 2.9 and 3.1 from mode 0 (std 1); 5.9 and 6.1 from mode 1 (std 2)
    x = np.array([[2.9, 0.0], [0.0, 3.1], [10.0, 5.9], [10.0, -6.1]])
    rep = mode_metrics(x, modes, stds, [0.5, 0.5])
    assert rep.counts == (1, 1) and rep.hq_fraction == 0.5
    assert mode_metrics(x, modes, stds, [0.5, 0.5], hq_threshold=1.0).counts == (0, 0)
    x2 = np.concatenate([np.zeros((25, 2)), np.tile([[10.0, 0.0]], (5, 1))])
    assert mode_metrics(x2, modes, stds, [0.5, 0.5], min_count=20).modes_captured == 1
    assert mode_metrics(x2, modes, stds, [0.5, 0.5]).min_count == 1


def test_nan_samples_are_never_hq():
    modes = np.array([[0.0, 0.0]])
    x = np.array([[np.nan, 0.0], [0.0, 0.0]])
    rep = mode_metrics(x, modes, [1.0], [1.0])
    assert rep.counts == (1,) and rep.hq_fraction == 0.5 and rep.reverse_kl == 0.0


def test_mode_metrics_rejects_bad_shapes():
    with pytest.raises(ValueError):
        mode_metrics(np.zeros((5, 3)), np.zeros((2, 2)), [1.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError):
        mode_metrics(np.zeros((5, 2)), np.zeros((2, 2)), [1.0], [0.5, 0.5])


# -- 1-D distances ------------------------------------------------------------------------------


def test_w1_single_point_closed_form():
    # W1(delta_a, N(0, s^2)) = E|X - a| = s sqrt(2/pi) exp(-a^2 / 2 s^2) + a (2 Phi(a/s) - 1)
    for a, s in [(0.0, 1.0), (1.3, 1.0), (-2.0, 0.3), (25.0, 2.0)]:
        exact = s * math.sqrt(2 / math.pi) * math.exp(-(a**2) / (2 * s**2)) + a * (2 * st.norm.cdf(a / s) - 1)
        assert wasserstein1([a], toy.Gaussian1D(0.0, s).cdf) == pytest.approx(exact, abs=1e-9)


def test_w1_two_points_closed_form():
    # samples {-1, 1} vs N(0,1): 2 * int_{-inf}^{-1} Phi + 2 * int_0^1 (Phi - 1/2), int^a Phi = a Phi(a) + phi(a)
    exact = 2 * (-st.norm.cdf(-1) + st.norm.pdf(1)) + 2 * (st.norm.cdf(1) + st.norm.pdf(1) - st.norm.pdf(0) - 0.5)
    assert wasserstein1(np.array([1.0, -1.0]), st.norm.cdf) == pytest.approx(exact, abs=1e-9)


def test_w1_shift_of_gaussian():
    x, _ = toy.Gaussian1D(0.0, 1.0).sample(20_000, gen(0))
    for mu in (0.5, -2.0, 3.0):
        # W1(N(0,1), N(mu,1)) = |mu|; empirical W1 adds O(1/sqrt(n)) noise
        assert wasserstein1(x, toy.Gaussian1D(mu, 1.0).cdf) == pytest.approx(abs(mu), abs=0.03)
    assert wasserstein1(x, toy.Gaussian1D(0.0, 1.0).cdf) < 0.03


def test_w1_agrees_with_scipy_on_a_huge_true_sample():
    ds = toy.Mixture1DDataset(means=[-2.0, 1.0], stds=[0.5, 1.0], weights=[1.0, 2.0])
    x = np.random.default_rng(0).normal(0.3, 1.5, size=3000)
    ref, _ = ds.sample(1_000_000, gen(5))
    w_cdf = wasserstein1(x, ds.cdf)
    w_scipy = st.wasserstein_distance(x, ref[:, 0].double().numpy())
    assert w_cdf == pytest.approx(w_scipy, abs=0.005)
    # a second set of samples as reference: empirical-vs-empirical W1
    assert wasserstein1(x, ref[:10_000]) == pytest.approx(st.wasserstein_distance(x, ref[:10_000, 0]), abs=1e-12)


def test_ks_matches_scipy_exactly():
    ds = toy.Mixture1DDataset()
    x, _ = ds.sample(777, gen(2))
    ours = ks_statistic(x, ds.cdf)
    theirs = st.kstest(x[:, 0].double().numpy(), lambda v: ds.cdf(v).numpy()).statistic
    assert ours == pytest.approx(theirs, abs=1e-12)
    y = np.random.default_rng(1).normal(0.2, 1.1, size=500)
    assert ks_statistic(torch.from_numpy(y), st.norm.cdf) == pytest.approx(st.kstest(y, "norm").statistic, abs=1e-12)
    # a single sample at the median: sup |F_n - F| = 1/2
    assert ks_statistic([0.0], st.norm.cdf) == pytest.approx(0.5, abs=1e-15)


def test_central_interval():
    lo, hi = central_interval(toy.Gaussian1D(1.0, 2.0))
    assert lo == pytest.approx(st.norm.ppf(0.005, 1.0, 2.0), abs=1e-9)
    assert hi == pytest.approx(st.norm.ppf(0.995, 1.0, 2.0), abs=1e-9)
    ds = toy.Mixture1DDataset(means=[-2.0, 3.0], stds=[0.5, 1.0], weights=[1.0, 3.0])
    lo, hi = central_interval(ds, mass=0.9)
    assert float(ds.cdf([lo])[0]) == pytest.approx(0.05, abs=1e-10)
    assert float(ds.cdf([hi])[0]) == pytest.approx(0.95, abs=1e-10)
    assert central_interval(st.norm.cdf) == pytest.approx((-2.5758293035489, 2.5758293035489), abs=1e-9)
    samples = np.arange(1001.0)
    assert central_interval(samples, mass=0.5) == (250.0, 750.0)
    with pytest.raises(ValueError):
        central_interval(st.norm.cdf, mass=1.0)


# -- optimal discriminator ---------------------------------------------------------------------


def test_optimal_discriminator_closed_form():
    grid = np.linspace(-6, 6, 1001)
    pd, pm = st.norm(1.0, 1.0).pdf, st.norm(-1.0, 1.0).pdf
    d = optimal_discriminator(grid, pd, pm)
    # equal-variance Gaussians: D*(x) = sigmoid(log pd - log pm) = sigmoid(2x)
    np.testing.assert_allclose(d, 1 / (1 + np.exp(-2 * grid)), rtol=1e-12)
    assert d[500] == pytest.approx(0.5, abs=1e-15)  # x = 0, where the densities coincide
    # arrays of densities work too, and identical densities give 1/2 everywhere
    np.testing.assert_allclose(optimal_discriminator(grid, pd(grid), pd(grid)), 0.5)


def test_optimal_discriminator_zero_over_zero_is_half():
    grid = np.array([0.0, 1.0, 2.0])
    d = optimal_discriminator(grid, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 2.0]))
    assert d.tolist() == [0.5, 1.0, 0.0]
    with pytest.raises(ValueError):
        optimal_discriminator(grid, np.array([-1.0, 0.0, 0.0]), np.zeros(3))


def test_kde_matches_scipy_and_truth():
    x = np.random.default_rng(0).normal(size=4000)
    grid = np.linspace(-4, 4, 201)
    ours = estimate_density_1d(x, grid)
    np.testing.assert_allclose(ours, st.gaussian_kde(x)(grid), rtol=1e-9, atol=1e-14)
    assert np.max(np.abs(ours - st.norm.pdf(grid))) < 0.03
    fixed = estimate_density_1d(torch.tensor([0.0]), grid, bandwidth=0.5)
    np.testing.assert_allclose(fixed, st.norm.pdf(grid, 0, 0.5), rtol=1e-12)
    collapsed = estimate_density_1d(np.zeros(10), grid)  # all equal: falls back to grid spacing
    assert np.all(np.isfinite(collapsed)) and np.argmax(collapsed) == 100


def test_discriminator_gap():
    assert discriminator_gap([0.5, 0.7, 0.1], np.array([0.5, 0.5, 0.5])) == pytest.approx(0.2)
    assert discriminator_gap(torch.full((4, 1), 0.5), np.full(4, 0.5)) == 0.0
    with pytest.raises(ValueError):
        discriminator_gap([0.5], [0.5, 0.5])
