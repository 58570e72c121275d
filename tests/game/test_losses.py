"""The players' costs: closed-form values, gradients (saturation), the optimal discriminator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.game import COSTS
from ganforge.game.losses import LOG4

D_REAL = [0.5, 2.0, -1.0, 0.0]
D_FAKE = [-2.0, 0.3, 1.0]  # a different batch size on purpose


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


# Hand-written numpy references of (J(D), J(G)) for each registered cost, with its parameters.
# A newly registered cost fails ``test_every_cost_has_a_reference`` until it gets one here.
def _ref_minimax(r, f, p):
    jd = softplus(-r).mean() + softplus(f).mean()
    return jd, -softplus(f).mean()


def _ref_non_saturating(r, f, p):
    return softplus(-r).mean() + softplus(f).mean(), softplus(-f).mean()


def _ref_wasserstein(r, f, p):
    return f.mean() - r.mean(), -f.mean()


def _ref_hinge(r, f, p):
    return relu(1 - r).mean() + relu(1 + f).mean(), -f.mean()


def _ref_least_squares(r, f, p):
    a, b, c = p.get("a", 0.0), p.get("b", 1.0), p.get("c", 1.0)
    return 0.5 * ((r - b) ** 2).mean() + 0.5 * ((f - a) ** 2).mean(), 0.5 * ((f - c) ** 2).mean()


def _ref_relativistic_average(r, f, p):
    jd = softplus(-(r - f.mean())).mean() + softplus(f - r.mean()).mean()
    jg = softplus(-(f - r.mean())).mean() + softplus(r - f.mean()).mean()
    return jd, jg


def _ref_relativistic_pairing(r, f, p):
    return softplus(-(r - f)).mean(), softplus(-(f - r)).mean()


REFERENCES = {
    "minimax": (_ref_minimax, [{}]),
    "non_saturating": (_ref_non_saturating, [{}]),
    "wasserstein": (_ref_wasserstein, [{}]),
    "hinge": (_ref_hinge, [{}]),
    "least_squares": (_ref_least_squares, [{}, {"a": -1.0, "b": 1.0, "c": 0.0}]),
    "relativistic_average": (_ref_relativistic_average, [{}]),
    "relativistic_pairing": (_ref_relativistic_pairing, [{}]),
}
# the costs of D's logits; the mmd cost compares vectors (N, F) and is tested in tests/game/test_mmd.py
LOGIT_COSTS = [n for n in COSTS.names() if not getattr(COSTS.get(n), "on_features", False)]


def batches(name: str) -> tuple[list[float], list[float]]:
    """(D_REAL, D_FAKE); a cost that pairs real and fake by index gets batches of one size."""
    paired = getattr(COSTS.get(name), "paired", False)
    return (D_REAL[: len(D_FAKE)] if paired else D_REAL), D_FAKE


def build(name: str, **params):
    return COSTS.build(name, params, where="game.cost")


@pytest.mark.parametrize("name", LOGIT_COSTS)
def test_every_cost_has_a_reference(name):
    assert name in REFERENCES, f"cost {name!r} is registered but has no closed-form reference in this test"


@pytest.mark.parametrize("name", LOGIT_COSTS)
def test_costs_match_numpy_reference(name):
    if name not in REFERENCES:
        pytest.fail(f"no reference for cost {name!r}")
    ref, param_sets = REFERENCES[name]
    real, fake = batches(name)
    r, f = np.array(real), np.array(fake)
    for params in param_sets:
        cost = build(name, **params)
        jd_ref, jg_ref = ref(r, f, params)
        jd = cost.discriminator_cost(t(real), t(fake))
        jg = cost.generator_cost(t(fake), t(real))
        assert jd.shape == () and jg.shape == ()
        assert jd.item() == pytest.approx(jd_ref, abs=1e-12), params
        if name != "minimax":  # minimax J(G) with d_real is -J(D); checked below
            assert jg.item() == pytest.approx(jg_ref, abs=1e-12), params
        if not cost.generator_needs_real:
            assert cost.generator_cost(t(fake)).item() == pytest.approx(jg_ref, abs=1e-12), params
        assert cost.value(t(real), t(fake)).item() == pytest.approx(-jd_ref, abs=1e-12)


@pytest.mark.parametrize("name", LOGIT_COSTS)
def test_costs_are_means_over_the_batch(name):
    """Duplicating or permuting both batches leaves every cost unchanged (per-example averages)."""
    cost = build(name)
    real, fake = batches(name)
    r, f = t(real), t(fake)
    if getattr(cost, "paired", False):  # pairs stay pairs: the same permutation of both
        r2, f2 = torch.cat([r.flip(0), r]), torch.cat([f.flip(0), f])
    else:
        r2, f2 = torch.cat([r.flip(0), r]), torch.cat([f, f.flip(0)])
    assert cost.discriminator_cost(r2, f2).item() == pytest.approx(cost.discriminator_cost(r, f).item(), abs=1e-12)
    assert cost.generator_cost(f2, r2).item() == pytest.approx(cost.generator_cost(f, r).item(), abs=1e-12)


@pytest.mark.parametrize("name", LOGIT_COSTS)
def test_generator_cost_rewards_fakes_that_look_real(name):
    """At d_fake = -1 (fakes judged fake), raising d_fake lowers J(G) for every formulation."""
    cost = build(name)
    d_fake = torch.full((3,), -1.0, dtype=torch.float64, requires_grad=True)
    d_real = torch.full((len(batches(name)[0]),), 1.0, dtype=torch.float64)
    (grad,) = torch.autograd.grad(cost.generator_cost(d_fake, d_real), d_fake)
    assert torch.all(grad < -1e-3), grad


@pytest.mark.parametrize("name", LOGIT_COSTS)
def test_generator_needs_real_is_declared_truthfully(name):
    cost = build(name)
    real, fake = batches(name)
    f, r1, r2 = t(fake), t(real), t(real) + 3.0
    if cost.generator_needs_real:
        with pytest.raises(ValueError):
            cost.generator_cost(f)
        assert cost.generator_cost(f, r1).item() != pytest.approx(cost.generator_cost(f, r2).item())
    else:
        # the gradient that G receives (through d_fake) does not depend on d_real
        d_fake = t(D_FAKE).requires_grad_(True)
        (g0,) = torch.autograd.grad(cost.generator_cost(d_fake), d_fake)
        (g1,) = torch.autograd.grad(cost.generator_cost(d_fake, r2), d_fake)
        torch.testing.assert_close(g0, g1, rtol=0, atol=1e-15)


# -- minimax and non-saturating at D = 1/2 -------------------------------------------------------

@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_discriminator_cost_at_half_is_two_log_two(name):
    cost = build(name)
    zeros_r, zeros_f = torch.zeros(5, dtype=torch.float64), torch.zeros(7, dtype=torch.float64)
    assert cost.probabilistic
    assert cost.discriminator_cost(zeros_r, zeros_f).item() == pytest.approx(2 * math.log(2), abs=1e-12)
    assert cost.value(zeros_r, zeros_f).item() == pytest.approx(-math.log(4), abs=1e-12)
    assert LOG4 == pytest.approx(math.log(4), abs=1e-15)


def test_non_saturating_generator_cost_at_half_is_log_two():
    cost = build("non_saturating")
    assert cost.generator_cost(torch.zeros(6, dtype=torch.float64)).item() == pytest.approx(math.log(2), abs=1e-12)
    # -log D(G(z)) at D(G(z)) = 0.9 and 0.2
    d = torch.tensor([0.9, 0.2], dtype=torch.float64)
    logits = torch.log(d / (1 - d))
    assert cost.generator_cost(logits).item() == pytest.approx(-(math.log(0.9) + math.log(0.2)) / 2, abs=1e-12)


def test_minimax_generator_cost_is_minus_discriminator_cost():
    cost = build("minimax")
    r, f = t(D_REAL), t(D_FAKE)
    assert cost.generator_cost(f, r).item() == pytest.approx(-cost.discriminator_cost(r, f).item(), abs=1e-12)
    # without d_real: E log(1 - D(G(z))); at D(G(z)) = 1/2 that is -log 2
    assert cost.generator_cost(torch.zeros(4, dtype=torch.float64)).item() == pytest.approx(-math.log(2), abs=1e-12)
    d = torch.tensor([0.25], dtype=torch.float64)
    assert cost.generator_cost(torch.log(d / (1 - d))).item() == pytest.approx(math.log(0.75), abs=1e-12)


def test_hand_computed_numbers():
    """A few values worked out on paper, independent of the numpy references above."""
    r, f = t([0.5, 2.0, -1.0]), t([-2.0, 0.3, 1.0])
    # hinge: relu(1-r) = [0.5, 0, 2], relu(1+f) = [0, 1.3, 2]
    assert build("hinge").discriminator_cost(r, f).item() == pytest.approx(2.5 / 3 + 3.3 / 3, abs=1e-12)
    assert build("hinge").generator_cost(f).item() == pytest.approx(0.7 / 3, abs=1e-12)
    # wasserstein: mean f - mean r = -0.7/3 - 1.5/3
    assert build("wasserstein").discriminator_cost(r, f).item() == pytest.approx(-2.2 / 3, abs=1e-12)
    # least squares a=-1, b=1, c=0: 1/2 mean([0.25, 1, 4]) + 1/2 mean([1, 1.69, 4]); J(G)=1/2 mean(f^2)
    ls = build("least_squares", a=-1.0, b=1.0, c=0.0)
    assert ls.discriminator_cost(r, f).item() == pytest.approx(0.5 * 5.25 / 3 + 0.5 * 6.69 / 3, abs=1e-12)
    assert ls.generator_cost(f).item() == pytest.approx(0.5 * (4 + 0.09 + 1) / 3, abs=1e-12)
    # relativistic average at equal logits everywhere: both costs are 2 log 2
    ra = build("relativistic_average")
    c = torch.full((4,), 1.7, dtype=torch.float64)
    assert ra.discriminator_cost(c, c).item() == pytest.approx(2 * math.log(2), abs=1e-12)
    assert ra.generator_cost(c, c).item() == pytest.approx(2 * math.log(2), abs=1e-12)


# -- saturation --------------------------------------------------------------------------------

def test_minimax_generator_gradient_saturates_and_non_saturating_does_not():
    """When D confidently rejects the fakes (logit -> -inf, D(G(z)) -> 0), the minimax J(G) has a
    vanishing gradient (-sigmoid(l)/N) while the NS J(G) keeps one near -1/N."""
    n = 4
    for logit in (-5.0, -10.0, -20.0):
        grads = {}
        for name in ("minimax", "non_saturating"):
            d_fake = torch.full((n,), logit, dtype=torch.float64, requires_grad=True)
            (grads[name],) = torch.autograd.grad(build(name).generator_cost(d_fake), d_fake)
        s = 1.0 / (1.0 + math.exp(-logit))
        torch.testing.assert_close(grads["minimax"], torch.full((n,), -s / n, dtype=torch.float64),
                                   rtol=1e-9, atol=0)
        torch.testing.assert_close(grads["non_saturating"], torch.full((n,), -(1 - s) / n, dtype=torch.float64),
                                   rtol=1e-9, atol=0)
        assert grads["minimax"].abs().max() < 1e-2 / n
        assert grads["non_saturating"].abs().min() > 0.99 / n
    # at logit -20 the ratio of the two gradients is e^-20 / (1 - e^-20) ~ 2e-9
    assert float(grads["minimax"][0] / grads["non_saturating"][0]) == pytest.approx(math.exp(-20), rel=1e-6)


# -- the optimal discriminator ------------------------------------------------------------------

def _optimal_logits(cost, p_data: torch.Tensor, p_model: torch.Tensor, steps: int = 600,
                    lr: float = 0.5) -> torch.Tensor:
    """Minimize sum_x [p_data(x) J_real(l(x)) + p_model(x) J_fake(l(x))] over one free logit per x.

    J(D) is a mean of per-example terms, so the real term at x is J(D)(d_real=l(x), d_fake=0) minus a
    constant, and likewise for the fake term: the cost's own function gives the per-point objective.
    """
    logits = torch.zeros_like(p_data, requires_grad=True)
    zero = torch.zeros(1, dtype=p_data.dtype)

    def per_point(lv: torch.Tensor) -> torch.Tensor:
        real_term = torch.func.vmap(lambda a: cost.discriminator_cost(a[None], zero))(lv)
        fake_term = torch.func.vmap(lambda a: cost.discriminator_cost(zero, a[None]))(lv)
        return (p_data * real_term + p_model * fake_term).sum()

    opt = torch.optim.Adam([logits], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        per_point(logits).backward()
        opt.step()
        sched.step()
    return logits.detach()


def _densities():
    x = np.linspace(-2.0, 3.0, 101)
    p_data = torch.tensor(stats.norm(0.0, 1.0).pdf(x))
    p_model = torch.tensor(stats.norm(1.0, 0.5).pdf(x))
    return p_data, p_model


@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_optimal_discriminator_is_density_ratio(name):
    """For fixed G, D*(x) = p_data(x) / (p_data(x) + p_model(x)) (Goodfellow et al. 2014, Prop. 1)."""
    p_data, p_model = _densities()
    logits = _optimal_logits(build(name), p_data, p_model)
    d_star = p_data / (p_data + p_model)
    assert (d_star - torch.sigmoid(logits)).abs().max().item() < 1e-3
    # where the optimum is not saturated, the logit itself is log(p_data / p_model)
    inner = (d_star > 0.01) & (d_star < 0.99)
    torch.testing.assert_close(logits[inner], torch.log(p_data / p_model)[inner], rtol=0, atol=1e-3)


def test_optimal_least_squares_discriminator():
    """LSGAN: D*(x) = (b p_data + a p_model) / (p_data + p_model) (Mao et al. 2017, Prop. 1)."""
    a, b = -1.0, 1.0
    p_data, p_model = _densities()
    logits = _optimal_logits(build("least_squares", a=a, b=b, c=0.0), p_data, p_model)
    d_star = (b * p_data + a * p_model) / (p_data + p_model)
    assert (d_star - logits).abs().max().item() < 1e-3


# -- costs are pure functions of logits ------------------------------------------------------------

@pytest.mark.parametrize("name", LOGIT_COSTS)
def test_costs_never_touch_the_discriminator(name):
    """Weight clipping lives only in the weight_clip regularizer: no cost has a hook on D's weights
    (before issue 11 ``wasserstein`` clipped D at 0.01 after every step, even beside a gradient penalty)."""
    cost = build(name)
    assert not hasattr(cost, "after_discriminator_step")
    assert not any(callable(getattr(cost, a)) and a not in ("discriminator_cost", "generator_cost", "value")
                   for a in dir(cost) if not a.startswith("_"))


def test_wasserstein_takes_no_weight_clip_and_asks_for_a_lipschitz_critic():
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="game.cost.weight_clip"):
        build("wasserstein", weight_clip=0.01)
    assert build("wasserstein").needs_lipschitz
    assert not any(build(n).needs_lipschitz for n in COSTS.names() if n != "wasserstein")
