"""Latent priors: shapes, moments, determinism, truncation, validation."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.game import PRIORS


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def build(name: str, **params):
    return PRIORS.build(name, params, where="game.prior")


@pytest.mark.parametrize("name", PRIORS.names())
def test_shape_dtype_and_determinism(name):
    prior = build(name, latent_dim=5)
    assert prior.latent_dim == 5
    z = prior.sample(7, gen(3))
    assert z.shape == (7, 5) and z.dtype == torch.float32
    assert torch.equal(z, prior.sample(7, gen(3)))
    assert not torch.equal(z, prior.sample(7, gen(4)))
    # the global RNG is not used when a generator is given
    torch.manual_seed(0)
    state = torch.get_rng_state()
    prior.sample(3, gen(0))
    assert torch.equal(state, torch.get_rng_state())


def test_gaussian_moments():
    z = build("gaussian", latent_dim=4).sample(200_000, gen(0)).double()
    # standard errors: mean 1/sqrt(n) ~ 0.0022, variance sqrt(2/n) ~ 0.0032
    assert z.mean(0).abs().max().item() < 0.012
    assert (z.var(0) - 1).abs().max().item() < 0.02
    cov = torch.cov(z.T)
    assert (cov - torch.diag(torch.diag(cov))).abs().max().item() < 0.012
    # fourth moment of N(0, 1) is 3
    assert (z.pow(4).mean(0) - 3).abs().max().item() < 0.1


def test_uniform_moments_and_support():
    low, high = -2.0, 3.0
    z = build("uniform", latent_dim=3, low=low, high=high).sample(200_000, gen(1)).double()
    assert z.min().item() >= low and z.max().item() < high
    assert (z.mean(0) - 0.5).abs().max().item() < 0.02  # (low+high)/2; se ~ 0.0032
    assert (z.var(0) - (high - low) ** 2 / 12).abs().max().item() < 0.03  # 25/12; se ~ 0.004
    # the default support is [-1, 1)
    z = build("uniform", latent_dim=2).sample(10_000, gen(2))
    assert z.min().item() >= -1 and z.max().item() < 1 and z.min().item() < -0.99 and z.max().item() > 0.99


def test_gaussian_truncation_bounds_and_distribution():
    prior = build("gaussian", latent_dim=8)
    z = prior.sample(20_000, gen(0))
    zt = prior.truncate(z, 0.5, gen(1))
    assert zt.shape == z.shape
    assert zt.abs().max().item() <= 0.5
    # coordinates already inside the bound are kept as they are
    inside = z.abs() <= 0.5
    assert torch.equal(zt[inside], z[inside])
    # redrawn coordinates follow N(0,1) restricted to [-t, t]: variance of the truncated normal
    t = 0.5
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(t / math.sqrt(2)))
    var = 1 - 2 * t * phi / (2 * cdf - 1)
    assert zt.double().var().item() == pytest.approx(var, abs=0.003)
    assert zt.double().mean().abs().item() < 0.005
    # redrawing (not clamping): very few values sit on the bound
    assert (zt.abs() == 0.5).float().mean().item() < 1e-3
    # deterministic with a generator, and the input is not modified
    z_copy = z.clone()
    assert torch.equal(prior.truncate(z, 0.5, gen(1)), zt)
    assert torch.equal(z, z_copy)


@pytest.mark.parametrize("name", PRIORS.names())
def test_invalid_latent_dim_is_a_config_error(name):
    with pytest.raises(ConfigError, match=r"game\.prior\.latent_dim") as info:
        PRIORS.build(name, {"latent_dim": 0}, where="game.prior")
    assert info.value.path == "game.prior.latent_dim"
    assert "greater than 0" in str(info.value)


def test_uniform_needs_high_above_low():
    with pytest.raises(ConfigError, match=r"game\.prior.*high > low"):
        PRIORS.build("uniform", {"low": 1.0, "high": 1.0}, where="game.prior")


def test_unknown_prior_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        PRIORS.build("cauchy", {}, where="game.prior")
    msg = str(info.value)
    assert "game.prior.name" in msg and all(n in msg for n in PRIORS.names())
