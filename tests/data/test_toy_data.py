"""Toy distributions: parameters, closed-form moments, exact densities, determinism, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from scipy.integrate import trapezoid

from ganforge.data import DATASETS, toy
from ganforge.errors import ConfigError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def build(name: str, **params):
    return DATASETS.build(name, params, where="data")


ALL = {
    "gaussian1d": {},
    "mixture1d": {},
    "ring": {},
    "grid": {},
    "swiss_roll": {},
    "gaussian_mixture": {"centers": [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]},
}


def test_all_names_registered():
    assert set(ALL) <= set(DATASETS.names())


@pytest.mark.parametrize("name", sorted(ALL))
def test_sample_shape_dtype_and_determinism(name):
    ds = build(name, **ALL[name])
    x, y = ds.sample(300, gen(7))
    assert y is None
    assert x.dtype == torch.float32 and tuple(x.shape) == (300, *ds.shape)
    assert torch.isfinite(x).all()
    x2, _ = ds.sample(300, gen(7))
    x3, _ = ds.sample(300, gen(8))
    assert torch.equal(x, x2)
    assert not torch.equal(x, x3)
    xt, _ = ds.true_samples(300, gen(7))
    assert torch.equal(x, xt)


@pytest.mark.parametrize("name", sorted(ALL))
def test_sample_uses_only_the_given_generator(name):
    ds = build(name, **ALL[name])
    torch.manual_seed(123)
    state = torch.get_rng_state()
    g = gen(1)
    ds.sample(50, g)
    assert torch.equal(torch.get_rng_state(), state)
    # the generator advanced: the next draw differs from the first
    assert not torch.equal(ds.sample(50, g)[0], ds.sample(50, gen(1))[0])


@pytest.mark.parametrize("name", sorted(ALL))
def test_mode_attributes(name):
    ds = build(name, **ALL[name])
    if name == "swiss_roll":
        assert ds.modes is None and ds.mode_stds is None and ds.weights is None
        return
    k = ds.modes.shape[0]
    assert tuple(ds.modes.shape) == (k, ds.shape[0])
    assert tuple(ds.mode_stds.shape) == (k,) and tuple(ds.weights.shape) == (k,)
    assert float(ds.weights.sum()) == pytest.approx(1.0, abs=1e-6)
    assert (ds.mode_stds > 0).all()


def test_gaussian1d_moments():
    ds = build("gaussian1d", mean=4.0, std=0.5)
    assert ds.shape == (1,)
    x, _ = ds.sample(40_000, gen(0))
    # sd of the sample mean = 0.5/200 = 0.0025; of the sample std ~ 0.5/sqrt(80000) = 0.0018
    assert float(x.mean()) == pytest.approx(4.0, abs=0.01)
    assert float(x.std()) == pytest.approx(0.5, abs=0.008)
    default = build("gaussian1d")
    assert (default.mean, default.std) == (0.0, 1.0)


def test_gaussian1d_log_prob_and_cdf_match_scipy():
    ds = build("gaussian1d", mean=-1.5, std=2.0)
    x = torch.linspace(-12, 10, 501, dtype=torch.float64)
    ref = st.norm(-1.5, 2.0)
    np.testing.assert_allclose(ds.log_prob(x).numpy(), ref.logpdf(x.numpy()), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ds.cdf(x).numpy(), ref.cdf(x.numpy()), rtol=1e-12, atol=1e-14)
    # (n, 1) input gives the same (n,) result
    assert torch.equal(ds.log_prob(x[:, None]), ds.log_prob(x))
    assert ds.log_prob(x).shape == (501,)


def test_mixture1d_density_integrates_to_one_and_matches_cdf():
    ds = build("mixture1d", means=[-3.0, 0.5, 4.0], stds=[0.3, 1.0, 0.7], weights=[1.0, 2.0, 1.0])
    grid = torch.linspace(-12, 14, 200_001, dtype=torch.float64)
    p = ds.prob(grid).numpy()
    assert trapezoid(p, grid.numpy()) == pytest.approx(1.0, abs=1e-9)
    # closed form of the mixture density
    ref = 0.25 * st.norm.pdf(grid, -3, 0.3) + 0.5 * st.norm.pdf(grid, 0.5, 1.0) + 0.25 * st.norm.pdf(grid, 4, 0.7)
    np.testing.assert_allclose(p, ref, rtol=1e-10, atol=1e-300)
    # the cdf is the integral of the density
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(grid.numpy()))])
    np.testing.assert_allclose(ds.cdf(grid).numpy(), cum, atol=1e-8)
    assert float(ds.cdf(torch.tensor([-1e6]))[0]) == 0.0 and float(ds.cdf(torch.tensor([1e6]))[0]) == 1.0


def test_mixture1d_default_and_weights():
    ds = build("mixture1d")
    assert ds.modes[:, 0].tolist() == [-2.0, 2.0]
    assert ds.mode_stds.tolist() == [0.5, 0.5]
    assert ds.weights.tolist() == [0.5, 0.5]
    w = build("mixture1d", means=[-5.0, 5.0], stds=[0.5, 0.5], weights=[3.0, 1.0])
    assert w.weights.tolist() == [0.75, 0.25]
    x, _ = w.sample(20_000, gen(3))
    frac = float((x[:, 0] < 0).float().mean())
    assert frac == pytest.approx(0.75, abs=4 * math.sqrt(0.75 * 0.25 / 20_000))
    # closed-form mixture moments: mean = sum w m = -2.5; var = sum w (s^2 + m^2) - mean^2 = 19
    assert float(x.double().mean()) == pytest.approx(-2.5, abs=0.15)
    assert float(x.double().var()) == pytest.approx(19.0, rel=0.03)


def test_ring_centres_on_radius_and_samples_near_them():
    ds = build("ring", n_modes=6, radius=2.0, std=0.02)
    assert ds.shape == (2,)
    assert ds.n_modes == 6
    expected = [(2 * math.cos(2 * math.pi * k / 6), 2 * math.sin(2 * math.pi * k / 6)) for k in range(6)]
    np.testing.assert_allclose(ds.modes.numpy(), np.array(expected), atol=1e-6)
    np.testing.assert_allclose(ds.modes.norm(dim=1).numpy(), 2.0, atol=1e-6)
    assert torch.allclose(ds.weights, torch.full((6,), 1 / 6))
    x, _ = ds.sample(6000, gen(0))
    r = x.double().norm(dim=1)
    assert float(r.mean()) == pytest.approx(2.0, abs=0.005)
    # per-coordinate offset from the nearest centre has std 0.02
    nearest = torch.cdist(x, ds.modes).argmin(1)
    off = x - ds.modes[nearest]
    assert float(off.std()) == pytest.approx(0.02, rel=0.03)
    counts = torch.bincount(nearest, minlength=6).double() / 6000
    assert float((counts - 1 / 6).abs().max()) < 4 * math.sqrt((1 / 6) * (5 / 6) / 6000)


def test_ring_default():
    ds = build("ring")
    assert ds.modes.shape == (8, 2)
    assert float(ds.mode_stds[0]) == pytest.approx(0.01)
    np.testing.assert_allclose(ds.modes[0].numpy(), [1.0, 0.0], atol=1e-7)


def test_grid_default_centres_exact():
    ds = build("grid")
    got = {tuple(row) for row in ds.modes.tolist()}
    assert got == set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    assert ds.modes.shape == (25, 2)
    assert torch.allclose(ds.mode_stds, torch.full((25,), 0.05))
    x, _ = ds.sample(25_000, gen(0))
    assert float(x.double().mean(0).abs().max()) < 0.1  # sd ~ sqrt(8)/158 = 0.018
    assert float(x.double().var(0).mean()) == pytest.approx(8.0 + 0.05**2, rel=0.04)  # var of {-4..4}=8


def test_grid_even_n_is_centred():
    ds = build("grid", n=2, spacing=1.0)
    assert {tuple(r) for r in ds.modes.tolist()} == set(itertools.product([-0.5, 0.5], repeat=2))


def test_gaussian_mixture_general():
    ds = build("gaussian_mixture", centers=[[0, 0, 0], [10, 0, 0]], stds=[0.1, 1.0], weights=[1, 3])
    assert ds.shape == (3,)
    assert ds.weights.tolist() == [0.25, 0.75]
    x, _ = ds.sample(20_000, gen(0))
    first = x[:, 0] < 5
    assert float(first.float().mean()) == pytest.approx(0.25, abs=0.013)
    assert float(x[first].std()) == pytest.approx(0.1, rel=0.03)
    assert float((x[~first] - torch.tensor([10.0, 0, 0])).std()) == pytest.approx(1.0, rel=0.03)
    scalar = build("gaussian_mixture", centers=[[1.0], [2.0]], stds=0.3)
    assert scalar.mode_stds.tolist() == pytest.approx([0.3, 0.3])


def test_swiss_roll_range_and_noise():
    x, _ = build("swiss_roll", noise=0.0).sample(5000, gen(0))
    r = x.double().norm(dim=1)
    # noiseless roll: radius = t / (4.5 pi) with t in [1.5 pi, 4.5 pi]
    assert float(r.min()) >= 1 / 3 - 1e-5 and float(r.max()) <= 1.0 + 1e-5
    assert float(r.mean()) == pytest.approx(2 / 3, abs=0.02)  # t uniform: mean radius 2/3
    xs, _ = build("swiss_roll", noise=0.0, scale=3.0).sample(5000, gen(0))
    assert torch.allclose(xs, 3 * x, atol=1e-5)
    xn, _ = build("swiss_roll", noise=0.1).sample(5000, gen(0))
    # same generator state -> same t and same eps, so the difference is exactly noise * eps
    assert float((xn - x).double().std()) == pytest.approx(0.1, rel=0.03)


# -- validation ---------------------------------------------------------------------------------


def test_invalid_param_names_the_config_path():
    with pytest.raises(ConfigError, match=r"data\.n_modes"):
        DATASETS.build("ring", {"n_modes": 0}, where="data")
    with pytest.raises(ConfigError, match=r"data\.std"):
        DATASETS.build("gaussian1d", {"std": -1.0}, where="data")
    with pytest.raises(ConfigError, match=r"data\.noise"):
        DATASETS.build("swiss_roll", {"noise": -0.1}, where="data")
    with pytest.raises(ConfigError, match="allowed keys"):
        DATASETS.build("grid", {"sigma": 0.1}, where="data")
    with pytest.raises(ConfigError, match=r"data\.centers"):
        DATASETS.build("gaussian_mixture", {}, where="data")


def test_mismatched_lengths_raise_clear_errors():
    with pytest.raises(ValueError, match="means has 2 entries but stds has 3"):
        toy.Mixture1DDataset(means=[0.0, 1.0], stds=[1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="weights"):
        DATASETS.build("mixture1d", {"weights": [1.0]}, where="data")
    with pytest.raises(ConfigError, match="same, non-zero length"):
        DATASETS.build("gaussian_mixture", {"centers": [[0.0, 1.0], [2.0]]}, where="data")
    with pytest.raises(ConfigError, match="2 centers but 3 stds"):
        DATASETS.build("gaussian_mixture", {"centers": [[0.0], [1.0]], "stds": [1, 1, 1]}, where="data")
    with pytest.raises(ConfigError, match="empty"):
        DATASETS.build("gaussian_mixture", {"centers": []}, where="data")
    with pytest.raises(ValueError, match="stds"):
        toy.Mixture1DDataset(means=[0.0], stds=[0.0])
