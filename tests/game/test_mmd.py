"""The MMD (game/mmd.py): kernels and the unbiased estimator against a direct double loop and a numpy
reference, unbiasedness against the closed form for two Gaussians, the ``mmd`` cost, config checks."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import ganforge
from ganforge.errors import ConfigError
from ganforge.game import COSTS
from ganforge.game.mmd import gaussian_kernel, mmd2_unbiased, rational_quadratic_kernel, witness

BANDWIDTHS = [0.5, 1.0, 3.0]
ALPHAS = [0.2, 0.5, 1.0, 2.0, 5.0]


def k_gauss(a: np.ndarray, b: np.ndarray) -> float:
    d2 = float(np.sum((a - b) ** 2))
    return sum(math.exp(-d2 / (2 * s * s)) for s in BANDWIDTHS)


def k_rq(a: np.ndarray, b: np.ndarray) -> float:
    d2 = float(np.sum((a - b) ** 2))
    return sum((1 + d2 / (2 * al)) ** (-al) for al in ALPHAS)


def mmd2_loop(x: np.ndarray, y: np.ndarray, k) -> float:
    """Gretton et al. 2012, Lemma 6, term by term."""
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def gauss(x, y):
    return gaussian_kernel(x, y, BANDWIDTHS)


def rq(x, y):
    return rational_quadratic_kernel(x, y, ALPHAS)


@pytest.mark.parametrize(("kernel", "ref"), [(gauss, k_gauss), (rq, k_rq)])
def test_unbiased_estimator_matches_the_double_loop(kernel, ref):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(1.0, 2.0, size=(9, 3))
    got = mmd2_unbiased(torch.tensor(x), torch.tensor(y), kernel).item()
    assert got == pytest.approx(mmd2_loop(x, y, ref), abs=1e-12)
    # symmetric in its arguments, and exactly 0 in expectation terms only: a sample against itself
    # gives a negative value (the off-diagonal means lack the k(x, x) terms of the cross term)
    assert mmd2_unbiased(torch.tensor(y), torch.tensor(x), kernel).item() == pytest.approx(got, abs=1e-12)
    assert mmd2_unbiased(torch.tensor(x), torch.tensor(x), kernel).item() < 0


def test_kernels_match_numpy_elementwise():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    for kernel, ref in ((gauss, k_gauss), (rq, k_rq)):
        got = kernel(torch.tensor(x), torch.tensor(y)).numpy()
        want = np.array([[ref(a, b) for b in y] for a in x])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    # at distance 0 each term is 1: the kernel's value is the number of bandwidths / alphas
    same = torch.tensor(x)
    torch.testing.assert_close(gauss(same, same).diagonal(), torch.full((4,), 3.0, dtype=torch.float64))
    torch.testing.assert_close(rq(same, same).diagonal(), torch.full((4,), 5.0, dtype=torch.float64))


def gaussian_pair_mmd2(delta: float, s: float, d: int, sigmas: list[float]) -> float:
    """MMD^2 between N(mu1, s^2 I_d) and N(mu2, s^2 I_d), |mu1 - mu2| = delta, Gaussian kernel summed
    over ``sigmas``: E k(X, Y) = (sigma^2 / (sigma^2 + 2 s^2))^(d/2) exp(-delta^2 / (2 (sigma^2 + 2 s^2)))."""
    total = 0.0
    for sg in sigmas:
        c = (sg * sg / (sg * sg + 2 * s * s)) ** (d / 2)
        total += 2 * c * (1 - math.exp(-delta * delta / (2 * (sg * sg + 2 * s * s))))
    return total


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_unbiased_on_two_gaussians_against_the_closed_form(delta):
    """The mean of MMD^2_u over many small batches matches the closed form (unbiased), where the
    biased V-statistic (diagonals kept) is off by far more than the standard error."""
    d, s, m, reps = 2, 1.0, 10, 4000
    g = torch.Generator().manual_seed(7)
    mu = torch.zeros(d, dtype=torch.float64)
    mu[0] = delta
    x = torch.randn(reps, m, d, generator=g, dtype=torch.float64) * s
    y = torch.randn(reps, m, d, generator=g, dtype=torch.float64) * s + mu
    est = torch.stack([mmd2_unbiased(x[r], y[r], gauss) for r in range(reps)])
    biased = torch.stack([gauss(x[r], x[r]).mean() + gauss(y[r], y[r]).mean() - 2 * gauss(x[r], y[r]).mean()
                          for r in range(reps)])
    truth = gaussian_pair_mmd2(delta, s, d, BANDWIDTHS)
    se = est.std().item() / math.sqrt(reps)
    assert abs(est.mean().item() - truth) < 4 * se
    assert abs(biased.mean().item() - truth) > 20 * se


def test_mmd_is_differentiable_with_the_double_loop_gradient():
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda yy: mmd2_unbiased(x, yy, rq), (y,))
    assert torch.autograd.gradcheck(lambda yy: mmd2_unbiased(x, yy, gauss), (y,))
    # two identical points of one sample (distance 0) still have a finite gradient
    y2 = torch.cat([y[:1], y[:1], y[1:]]).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(mmd2_unbiased(x, y2, gauss), y2)
    assert torch.isfinite(grad).all()


def test_witness_is_the_mean_kernel_difference():
    rng = np.random.default_rng(4)
    r, f, q = rng.normal(size=(4, 2)), rng.normal(size=(3, 2)), rng.normal(size=(2, 2))
    got = witness(torch.tensor(q), torch.tensor(r), torch.tensor(f), gauss).numpy()
    want = [np.mean([k_gauss(a, b) for b in r]) - np.mean([k_gauss(a, b) for b in f]) for a in q]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


# -- the cost -------------------------------------------------------------------------------------

def test_mmd_cost_flattens_examples_and_plays_zero_sum():
    cost = COSTS.build("mmd", {"kernel": "rational_quadratic", "alphas": ALPHAS}, where="game.cost")
    assert cost.on_features and cost.generator_needs_real and not cost.probabilistic
    assert not hasattr(cost, "after_discriminator_step")
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(6, 1, 2, 2)), rng.normal(0.5, 1.0, size=(5, 1, 2, 2))
    want = mmd2_loop(real.reshape(6, -1), fake.reshape(5, -1), k_rq)
    jg = cost.generator_cost(torch.tensor(fake), torch.tensor(real))
    jd = cost.discriminator_cost(torch.tensor(real), torch.tensor(fake))
    assert jg.item() == pytest.approx(want, abs=1e-12)  # float64 stays float64
    assert jd.item() == pytest.approx(-jg.item(), abs=1e-15)
    with pytest.raises(ValueError, match="real ones"):
        cost.generator_cost(torch.tensor(fake))
    gaussian = COSTS.build("mmd", {"bandwidths": BANDWIDTHS}, where="game.cost")
    assert gaussian.generator_cost(torch.tensor(fake), torch.tensor(real)).item() == pytest.approx(
        mmd2_loop(real.reshape(6, -1), fake.reshape(5, -1), k_gauss), abs=1e-12)


def test_mmd_cost_refuses_bad_parameters():
    with pytest.raises(ConfigError, match="game.cost"):
        COSTS.build("mmd", {"kernel": "laplace"}, where="game.cost")
    with pytest.raises(ConfigError, match="bandwidths"):
        COSTS.build("mmd", {"bandwidths": []}, where="game.cost")
    with pytest.raises(ConfigError, match="game.cost"):
        COSTS.build("mmd", {"bandwidths": [1.0, -2.0]}, where="game.cost")


RING = {"name": "r", "data": {"name": "ring"},
        "model": {"generator": {"name": "mlp", "widths": [8]}},
        "game": {"name": "gmmn", "prior": {"name": "gaussian", "latent_dim": 2}, "cost": {"name": "mmd"}},
        "train": {"steps": 2, "batch_size": 8, "progress": False}}


def with_(path: str, value) -> dict:
    raw = copy.deepcopy(RING)
    node = raw
    *head, last = path.split(".")
    for key in head:
        node = node.setdefault(key, {})
    node[last] = value
    return raw


@pytest.mark.parametrize(("raw", "where", "words"), [
    (with_("game.cost", {"name": "non_saturating"}), "game.cost", "feature vectors"),
    (with_("game.regularizers", [{"name": "r1"}]), "game.regularizers", "no discriminator"),
    (with_("model.discriminator", {"name": "mlp", "widths": [8]}), "model.discriminator", "no player"),
    (with_("optim.discriminator", {"lr": 0.1}), "optim.discriminator", "no player"),
    (with_("game.name", "mmd_gan"), "model.discriminator.out_features", "out_features"),
    ({**with_("game.name", "gan"), "model": {"generator": {"name": "mlp"}, "discriminator": {"name": "mlp"}}},
     "game.cost", "gmmn and mmd_gan"),
    ({**with_("game.name", "gan"), "game": {"name": "gan", "cost": {"name": "hinge"}},
      "model": {"generator": {"name": "mlp"}, "discriminator": {"name": "mlp", "out_features": 4}}},
     "model.discriminator.out_features", "one logit"),
])
def test_configs_that_do_not_fit_the_moment_matching_games_are_refused(raw, where, words):
    with pytest.raises(ConfigError, match=words) as info:
        ganforge.config_from_dict(raw)
    assert info.value.path == where


# -- the critic's feature output (model.discriminator.out_features) --------------------------------

def test_discriminators_with_out_features_give_feature_vectors_and_default_to_a_logit():
    from ganforge.models import DISCRIMINATORS

    torch.manual_seed(0)
    x = torch.randn(6, 1, 28, 28)
    for name, params in (("dcgan", {"ndf": 8}), ("mlp", {"widths": [16]})):
        logit = DISCRIMINATORS.build(name, params, where="model.discriminator", in_shape=(1, 28, 28), n_classes=0)
        feats = DISCRIMINATORS.build(name, {**params, "out_features": 5}, where="model.discriminator",
                                     in_shape=(1, 28, 28), n_classes=0)
        assert logit(x).shape == (6,) and feats(x).shape == (6, 5)
        # the body is the same: only the last linear map's width differs
        assert sum(p.numel() for p in feats.parameters()) - sum(p.numel() for p in logit.parameters()) == 4 * (
            logit.heads.linear.in_features + 1 if name == "dcgan" else logit.head.in_features + 1)
        with pytest.raises(ConfigError, match="unconditional"):
            DISCRIMINATORS.build(name, {**params, "out_features": 5}, where="model.discriminator",
                                 in_shape=(1, 28, 28), n_classes=10)
    packed = DISCRIMINATORS.build("mlp", {"widths": [16], "pack": 2, "out_features": 3}, where="model.discriminator",
                                  in_shape=(1, 28, 28), n_classes=0)
    out = packed(x)
    assert out.shape == (6, 3) and torch.equal(out[0], out[3])  # example i gets pack i mod (N / pack)'s features
