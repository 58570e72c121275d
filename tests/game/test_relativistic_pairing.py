"""The relativistic pairing cost (RpGAN; R3GAN's cost): closed forms, pairing by index in the GAN
game, and the Dirac-GAN with R1 + R2 (its Jacobian at the equilibrium, convergence of gradient steps)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import ganforge
from ganforge.game import COSTS, REGULARIZERS
from ganforge.train.callbacks import Callback
from ganforge.train.trainer import Trainer

TINY_RING = {  # as tests/train/tiny_ring.py
    "name": "tiny-ring",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [32, 32]},
              "discriminator": {"name": "mlp", "widths": [32, 32]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 4}},
    "train": {"steps": 60, "batch_size": 32, "log_every": 10, "checkpoint_every": 20, "progress": False,
              "threads": 1, "seed": 3},
}


def tiny_ring(**train):
    cfg = copy.deepcopy(TINY_RING)
    cfg["train"].update(train)
    return cfg


def rp():
    return COSTS.build("relativistic_pairing", {}, where="game.cost")


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_costs_are_softplus_of_paired_differences():
    r, f = [0.5, 2.0, -1.0], [-2.0, 0.3, 1.0]
    cost = rp()
    jd = np.mean(np.logaddexp(0.0, -(np.array(r) - np.array(f))))
    jg = np.mean(np.logaddexp(0.0, -(np.array(f) - np.array(r))))
    assert cost.discriminator_cost(t(r), t(f)).item() == pytest.approx(jd, abs=1e-14)
    assert cost.generator_cost(t(f), t(r)).item() == pytest.approx(jg, abs=1e-14)
    # pairs by index: permuting the fakes alone changes the cost (unlike the relativistic average)
    assert cost.discriminator_cost(t(r), t(f[::-1])).item() != pytest.approx(jd, abs=1e-3)


def test_at_equal_logits_costs_are_log_two_and_gradients_half_over_n():
    n = 5
    cost = rp()
    d = torch.linspace(-2, 2, n, dtype=torch.float64)
    d_real, d_fake = d.clone().requires_grad_(True), d.clone().requires_grad_(True)
    jd = cost.discriminator_cost(d_real, d_fake)
    assert jd.item() == pytest.approx(math.log(2.0), abs=1e-15)
    g_real, g_fake = torch.autograd.grad(jd, (d_real, d_fake))
    torch.testing.assert_close(g_real, torch.full((n,), -0.5 / n, dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(g_fake, torch.full((n,), 0.5 / n, dtype=torch.float64), rtol=0, atol=1e-15)
    d_fake2 = d.clone().requires_grad_(True)
    jg = cost.generator_cost(d_fake2, d)
    assert jg.item() == pytest.approx(math.log(2.0), abs=1e-15)
    (g,) = torch.autograd.grad(jg, d_fake2)
    torch.testing.assert_close(g, torch.full((n,), -0.5 / n, dtype=torch.float64), rtol=0, atol=1e-15)


def test_unpaired_batches_are_refused():
    with pytest.raises(ValueError, match="pairs real and fake"):
        rp().discriminator_cost(t([0.0, 1.0]), t([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="real examples"):
        rp().generator_cost(t([0.0, 1.0]))


# -- the GAN game keeps the pairs ----------------------------------------------------------------

def test_gan_game_pairs_real_and_fake_by_index(one_thread):
    """J(D) of the fused real+fake pass and J(G) on the kept fakes equal the paired formula on D's
    separate outputs for the same real and fake batches, in the same order."""
    cfg = ganforge.config_from_dict(tiny_ring(), ["game.cost.name=relativistic_pairing"])
    trainer = Trainer(cfg)
    trainer.setup()
    play, game, D = trainer.play, trainer.experiment.game, trainer.experiment.discriminator
    with torch.no_grad():  # a sharper D than at initialization: logits that differ from example to example
        for p in D.parameters():
            p.mul_(4.0)
    play.sums = torch.zeros(len(game.scalars))
    jd = game.costs(play, ("discriminator",), keep=True)["discriminator"]
    fake, real, y, _ = game._kept
    with torch.no_grad():
        expect_d = torch.nn.functional.softplus(D(fake.detach()) - D(real)).mean()
        expect_g = torch.nn.functional.softplus(D(real) - D(fake.detach())).mean()
        shuffled = torch.nn.functional.softplus(D(fake.detach()).flip(0) - D(real)).mean()
    assert jd.item() == pytest.approx(expect_d.item(), abs=1e-5)
    assert abs(shuffled.item() - expect_d.item()) > 1e-2  # the check can tell the order apart
    jg = game.costs(play, ("generator",))["generator"]
    assert jg.item() == pytest.approx(expect_g.item(), abs=1e-5)


# -- the Dirac-GAN (Mescheder et al. 2018) with RpGAN + R1 + R2 ------------------------------------
# p_data = delta_0, G = delta_theta, D(x) = psi x. J(D) = softplus(psi theta), J(G) = softplus(-psi theta);
# R1 + R2 add gamma/2 psi^2 each. The simultaneous-gradient field v = (dJ(G)/dtheta, dJ(D)/dpsi) has,
# at the equilibrium (0, 0), the Jacobian [[0, -1/2], [1/2, 2 gamma]] (without R1 + R2: eigenvalues
# +-i/2, a rotation that gradient steps spiral out of).

def dirac_field(theta: torch.Tensor, psi: torch.Tensor, gamma: float, n: int = 4) -> torch.Tensor:
    """v(theta, psi) computed by the registered cost and regularizers on a batch of n examples."""
    cost = rp()
    regs = [REGULARIZERS.build(name, {"gamma": gamma}, where="game.regularizers") for name in ("r1", "r2")] if gamma else []

    def D(x, y=None):
        return (psi * x).reshape(-1)

    real = torch.zeros(n, 1, dtype=torch.float64, requires_grad=True)
    fake = theta * torch.ones(n, 1, dtype=torch.float64)  # R2 differentiates D with respect to it
    d_real, d_fake = D(real), D(fake)
    jd = cost.discriminator_cost(d_real, d_fake)
    for reg in regs:
        jd = jd + reg.penalty(D, real, fake, d_real, d_fake, None, None)
    jg = cost.generator_cost(D(fake), D(real).detach())
    (g_theta,) = torch.autograd.grad(jg, theta, create_graph=True)
    (g_psi,) = torch.autograd.grad(jd, psi, create_graph=True)
    return torch.stack([g_theta, g_psi])


@pytest.mark.parametrize("gamma", [0.0, 0.3, 2.0])
def test_dirac_gan_jacobian_at_equilibrium_matches_closed_form(gamma):
    theta = torch.zeros((), dtype=torch.float64, requires_grad=True)
    psi = torch.zeros((), dtype=torch.float64, requires_grad=True)
    v = dirac_field(theta, psi, gamma)
    assert torch.all(v.abs() < 1e-15)  # (0, 0) is a stationary point
    rows = [torch.stack(torch.autograd.grad(v[i], (theta, psi), retain_graph=True)) for i in range(2)]
    jac = torch.stack(rows).detach()
    expect = torch.tensor([[0.0, -0.5], [0.5, 2 * gamma]], dtype=torch.float64)
    torch.testing.assert_close(jac, expect, rtol=0, atol=1e-14)
    eig = torch.linalg.eigvals(jac)
    disc = complex(gamma**2 - 0.25) ** 0.5  # eigenvalues gamma +- sqrt(gamma^2 - 1/4) of the descent field
    expect_eig = sorted([gamma + disc, gamma - disc], key=lambda c: (c.real, c.imag))
    got = sorted(eig.tolist(), key=lambda c: (c.real, c.imag))
    for a, b in zip(got, expect_eig, strict=True):
        assert abs(a - b) < 1e-12


def simultaneous_norms(gamma: float, steps: int, start: float, lr: float = 0.1) -> list[float]:
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    psi = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    norms = []
    for _ in range(steps):
        v = dirac_field(theta, psi, gamma).detach()
        with torch.no_grad():
            theta -= lr * v[0]
            psi -= lr * v[1]
        norms.append(math.hypot(theta.item(), psi.item()))
    return norms


def test_dirac_gan_rpgan_with_r1_r2_converges_at_the_closed_form_rate_and_without_spirals_out():
    """Simultaneous gradient steps of size h multiply the distance to the equilibrium, asymptotically,
    by the largest |1 - h lambda| over the Jacobian's eigenvalues lambda: with R1 + R2 (gamma = 1),
    lambda = 1 +- sqrt(3)/2, a contraction by 1 - h (1 - sqrt(3)/2) per step; without them
    lambda = +-i/2, an expansion by sqrt(1 + h^2/4) per step (the spiral)."""
    h = 0.1
    norms = simultaneous_norms(1.0, 1500, 1.0, h)
    assert norms[-1] < 1e-8
    rate = (norms[-1] / norms[-201]) ** (1 / 200)
    assert rate == pytest.approx(1 - h * (1 - math.sqrt(3) / 2), abs=1e-6)
    norms = simultaneous_norms(0.0, 400, 1e-3, h)
    rate = (norms[-1] / norms[-201]) ** (1 / 200)
    assert norms[-1] > norms[0]
    assert rate == pytest.approx(math.sqrt(1 + h * h / 4), abs=1e-6)


def test_ring8_rpgan_with_r1_r2_trains_towards_indistinguishable_pairs(one_thread):
    """A short ring run with RpGAN + R1 + R2 ends near the equilibrium's closed form: both paired
    costs at log 2 (D cannot tell a real example from its paired fake), and G's samples on the ring
    (median radius 1)."""
    raw = tiny_ring(steps=300, log_every=50, checkpoint_every=300, batch_size=64)
    raw["data"] = {"name": "ring", "n_modes": 8, "radius": 1.0, "std": 0.05}
    raw["game"]["cost"] = {"name": "relativistic_pairing"}
    raw["game"]["regularizers"] = [{"name": "r1", "gamma": 1.0}, {"name": "r2", "gamma": 1.0}]
    raw["optim"] = {"generator": {"lr": 1e-3}, "discriminator": {"lr": 1e-3}}
    cfg = ganforge.config_from_dict(raw)
    logged = []

    class Log(Callback):
        def on_log(self, trainer, state, result):
            logged.append(result.scalars)

    state = Trainer(cfg, callbacks=[Log()]).fit()
    last = logged[-1]
    assert abs(last["d_cost"] - math.log(2.0)) < 0.05, last
    assert abs(last["g_cost"] - math.log(2.0)) < 0.05, last
    with torch.no_grad():
        z = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
        radius = state.generator(z).norm(dim=1)
    assert abs(radius.median().item() - 1.0) < 0.1
