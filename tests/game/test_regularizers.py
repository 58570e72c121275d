"""Regularizers of D: R1, R2 and the gradient penalty against closed-form input gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.game import REGULARIZERS


def build(name: str, **params):
    return REGULARIZERS.build(name, params, where="game.regularizers.0")


class Linear(nn.Module):
    """D(x) = <w, x> + b over all non-batch dims: its input gradient is w for every x."""

    def __init__(self, w: torch.Tensor, b: float = 0.3):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, y=None):
        self.inputs.append(x.detach().clone())
        return (x * self.w).flatten(1).sum(1) + self.b


class Quadratic(nn.Module):
    """D(x) = sum x^2 over all non-batch dims: its input gradient is 2x."""

    def __init__(self):
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, y=None):
        self.inputs.append(x.detach().clone())
        return x.pow(2).flatten(1).sum(1)


def call(reg, d: nn.Module, real: torch.Tensor, fake: torch.Tensor, seed: int = 0):
    """Call ``penalty`` the way the trainer does: inputs that need a gradient carry one."""
    if reg.needs_real_grad:
        real = real.detach().requires_grad_(True)
    if reg.needs_fake_grad:
        fake = fake.detach().requires_grad_(True)
    d_real, d_fake = d(real), d(fake)
    gen = torch.Generator().manual_seed(seed)
    return reg.penalty(d, real, fake, d_real, d_fake, None, gen)


def data(shape=(5, 2, 3, 3), seed=1):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(*shape, generator=g, dtype=torch.float64)
    fake = torch.randn(*shape, generator=g, dtype=torch.float64) + 2.0
    return real, fake


def test_r1_linear_is_half_gamma_norm_w_squared():
    real, fake = data()
    w = torch.arange(18, dtype=torch.float64).view(2, 3, 3) / 10  # ||w||^2 = sum k^2 / 100
    expected = 0.5 * 4.0 * float((w**2).sum())
    assert expected == pytest.approx(0.5 * 4.0 * 1785 / 100)
    p = call(build("r1", gamma=4.0), Linear(w), real, fake)
    assert p.shape == ()
    assert p.item() == pytest.approx(expected, rel=1e-12)


def test_r1_quadratic_uses_real_examples():
    real, fake = data()
    gamma = 3.0
    # grad = 2x, ||2x||^2 = 4 ||x||^2 over all C, H, W, averaged over the batch
    expected = 0.5 * gamma * (4 * real.flatten(1).pow(2).sum(1)).mean()
    p = call(build("r1", gamma=gamma), Quadratic(), real, fake)
    assert p.item() == pytest.approx(expected.item(), rel=1e-12)
    # an independent reference: the penalty from autograd, example by example
    per_example = []
    for x in real:
        x = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(x.pow(2).sum(), x)
        per_example.append(gx.pow(2).sum())
    assert p.item() == pytest.approx(0.5 * gamma * torch.stack(per_example).mean().item(), rel=1e-12)


def test_r2_quadratic_uses_fake_examples():
    real, fake = data()
    gamma = 0.5
    expected = 0.5 * gamma * (4 * fake.flatten(1).pow(2).sum(1)).mean()
    reg = build("r2", gamma=gamma)
    assert reg.needs_fake_grad and not reg.needs_real_grad
    p = call(reg, Quadratic(), real, fake)
    assert p.item() == pytest.approx(expected.item(), rel=1e-12)
    assert p.item() != pytest.approx((0.5 * gamma * (4 * real.flatten(1).pow(2).sum(1)).mean()).item())


def test_r1_is_differentiable_wrt_discriminator_parameters():
    """The penalty is part of J(D): d R1 / d w = gamma * w for the linear D."""
    real, fake = data()
    w = torch.full((2, 3, 3), 0.5, dtype=torch.float64)
    d = Linear(w)
    p = call(build("r1", gamma=2.0), d, real, fake)
    (gw,) = torch.autograd.grad(p, d.w)
    torch.testing.assert_close(gw, 2.0 * w, rtol=1e-12, atol=0)


def test_gradient_penalty_linear_is_exact_regardless_of_interpolates():
    real, fake = data()
    w = torch.zeros(2, 3, 3, dtype=torch.float64)
    w[0, 0, 0], w[1, 2, 1] = 2.0, (5.0) ** 0.5  # ||w|| = 3 spread over two channels
    for seed in range(3):
        p = call(build("gradient_penalty", weight=10.0), Linear(w), real, fake, seed=seed)
        assert p.item() == pytest.approx(10.0 * (3.0 - 1.0) ** 2, rel=1e-9)
    p = call(build("gradient_penalty", weight=2.0, target=3.0), Linear(w), real, fake)
    assert abs(p.item()) < 1e-9


def test_gradient_penalty_interpolates_per_example():
    real, fake = data(shape=(6, 2, 3, 3))
    d = Quadratic()
    weight = 1.5
    p = call(build("gradient_penalty", weight=weight), d, real, fake, seed=7)
    x_hat = d.inputs[-1]  # the last call of D is on the interpolates
    assert x_hat.shape == real.shape
    eps = []
    for i in range(real.shape[0]):
        # x_hat_i = e real_i + (1 - e) fake_i for one scalar e in [0, 1] over all of C, H, W
        diff = (real[i] - fake[i]).flatten()
        e = float(((x_hat[i] - fake[i]).flatten() @ diff) / (diff @ diff))
        assert 0.0 <= e <= 1.0
        torch.testing.assert_close(x_hat[i], e * real[i] + (1 - e) * fake[i], rtol=0, atol=1e-12)
        eps.append(e)
    assert len({round(e, 6) for e in eps}) == len(eps), f"eps not drawn per example: {eps}"
    # the norm is over all non-batch dims: grad = 2 x_hat, so ||grad_i|| = 2 ||x_hat_i||
    norms = 2 * x_hat.flatten(1).norm(dim=1)
    assert p.item() == pytest.approx(weight * ((norms - 1) ** 2).mean().item(), rel=1e-9)


def test_gradient_penalty_is_deterministic_with_a_seeded_generator():
    real, fake = data(shape=(8, 2, 3, 3))
    reg = build("gradient_penalty")
    d1, d2, d3 = Quadratic(), Quadratic(), Quadratic()
    p1 = call(reg, d1, real, fake, seed=123)
    p2 = call(reg, d2, real, fake, seed=123)
    p3 = call(reg, d3, real, fake, seed=124)
    assert p1.item() == p2.item()
    torch.testing.assert_close(d1.inputs[-1], d2.inputs[-1], rtol=0, atol=0)
    assert not torch.equal(d1.inputs[-1], d3.inputs[-1])
    assert p1.item() != p3.item()


def test_gradient_penalty_does_not_draw_from_the_global_rng():
    real, fake = data()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    call(build("gradient_penalty"), Quadratic(), real, fake, seed=0)
    assert torch.equal(before, torch.get_rng_state())


def test_weight_clip_regularizer_clamps_after_step():
    d = nn.Linear(3, 2)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[0.5, -0.001, -2.0], [0.002, 0.0, 0.02]]))
        d.bias.copy_(torch.tensor([-0.3, 0.004]))
    reg = build("weight_clip", clip=0.01)
    assert reg.penalty(d, *data(), torch.zeros(5), torch.zeros(5), None, None) is None
    reg.after_discriminator_step(d)
    torch.testing.assert_close(d.weight.detach(), torch.tensor([[0.01, -0.001, -0.01], [0.002, 0.0, 0.01]]))
    torch.testing.assert_close(d.bias.detach(), torch.tensor([-0.01, 0.004]))
