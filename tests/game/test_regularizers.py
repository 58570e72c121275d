"""Regularizers of D: R1, R2 and the gradient penalty against closed-form input gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.game import REGULARIZERS
from ganforge.game.regularizers import Regularizer


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


# -- packed discriminators (PacGAN): penalties per pack --------------------------------------------

def linear_packed_d(pack: int, seed: int = 3):
    """The MLP D with no hidden layer: D(pack X) = <w, X> + b over the pack's concatenated inputs,
    whose gradient with respect to the whole pack is w, exactly."""
    from ganforge.models import DISCRIMINATORS

    torch.manual_seed(seed)
    d = DISCRIMINATORS.build("mlp", {"widths": [], "pack": pack}, where="model.discriminator", in_shape=(3,),
                             n_classes=0).double()
    return d, d.head.weight.detach().flatten()  # w: (3 * pack,)


@pytest.mark.parametrize("pack", [1, 4])
def test_r1_and_r2_on_a_packed_linear_d_are_half_gamma_norm_w_squared(pack):
    # the packed D is a function of the pack's input X in R^(3 pack); R1 = gamma/2 ||dD/dX||^2 = gamma/2 ||w||^2
    # (before issue 11 it was pack times that: the pack's logit, repeated for each member, was summed)
    d, w = linear_packed_d(pack)
    real, fake = data(shape=(8, 3))
    for name in ("r1", "r2"):
        p = call(build(name, gamma=4.0), d, real, fake)
        assert p.item() == pytest.approx(0.5 * 4.0 * float(w @ w), rel=1e-12), name


@pytest.mark.parametrize("pack", [1, 4])
def test_gradient_penalty_on_a_packed_linear_d_targets_the_pack_gradient_norm(pack):
    d, w = linear_packed_d(pack)
    real, fake = data(shape=(8, 3))
    norm = float(w.norm())
    p = call(build("gradient_penalty", weight=10.0), d, real, fake)
    assert p.item() == pytest.approx(10.0 * (norm - 1.0) ** 2, rel=1e-9)
    p = call(build("gradient_penalty", weight=2.0, target=norm), d, real, fake)
    assert abs(p.item()) < 1e-9


def test_gradient_penalty_interpolates_whole_packs():
    """One eps per pack: each pack's interpolate lies on the line between its real and fake pack."""
    d, _ = linear_packed_d(4)
    seen = []
    forward = d.forward
    d.forward = lambda x, y=None: (seen.append(x.detach().clone()), forward(x, y))[1]
    real, fake = data(shape=(8, 3))
    call(build("gradient_penalty"), d, real, fake, seed=5)
    x_hat = seen[-1]
    eps = ((x_hat - fake) / (real - fake))[:, 0]  # (8,)
    torch.testing.assert_close((x_hat - fake) / (real - fake), eps[:, None].expand(8, 3))
    packs = eps.view(4, 2)  # packs[k, j]: member k of pack j (examples j, j + 2, j + 4, j + 6)
    torch.testing.assert_close(packs, packs[:1].expand(4, 2))
    assert packs[0, 0] != packs[0, 1]
    # the draws: 2 packs, one U(0, 1) each, from the given stream
    torch.testing.assert_close(packs[0], torch.rand(2, generator=torch.Generator().manual_seed(5)).double())


def test_pack_penalty_is_the_penalty_of_the_packed_input():
    """An independent reference for a non-linear packed D: R1 per pack equals R1 of the same D
    written as an ordinary D of the packs' concatenated inputs."""
    from ganforge.models import DISCRIMINATORS

    torch.manual_seed(0)
    packed = DISCRIMINATORS.build("mlp", {"widths": [16, 16], "pack": 2}, where="d", in_shape=(3,), n_classes=0).double()
    real, fake = data(shape=(8, 3))
    p = call(build("r1", gamma=2.0), packed, real, fake)
    x = real.view(2, 4, 3).transpose(0, 1).reshape(4, 6)  # packs j = (example j, example j + 4)
    plain = nn.Sequential(packed.body, packed.head)
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(plain(x).sum(), x)
    assert p.item() == pytest.approx(0.5 * 2.0 * g.pow(2).sum(1).mean().item(), rel=1e-10)


# -- distributed runs: draws for the global batch ---------------------------------------------------

def test_gradient_penalty_draws_for_the_global_batch_and_keeps_the_rank_slice():
    """On W processes each rank draws the global batch's eps and keeps [rank::W], as the latents and
    real batches do: the ranks' interpolates are the 1-process interpolates' slices, and every rank's
    stream ends where the 1-process stream does (before issue 11 it drew only its local count, so the
    stream, and every later latent batch, drifted)."""
    real, fake = data(shape=(8, 2, 3, 3))
    reg = build("gradient_penalty")
    one, gen = Quadratic(), torch.Generator().manual_seed(11)
    reg.penalty(one, real, fake, one(real), one(fake), None, gen)
    after_one = torch.rand(3, generator=gen)
    for world in (2, 4):
        for rank in range(world):
            d, gen = Quadratic(), torch.Generator().manual_seed(11)
            r, f = real[rank::world], fake[rank::world]
            reg.penalty(d, r, f, d(r), d(f), None, gen, (rank, world))
            torch.testing.assert_close(d.inputs[-1], one.inputs[-1][rank::world], rtol=0, atol=0)
            torch.testing.assert_close(torch.rand(3, generator=gen), after_one, rtol=0, atol=0)


def test_regularizer_flags():
    flags = {name: (type(build(name)).input_gradient, type(build(name)).lipschitz) for name in REGULARIZERS.names()}
    assert flags == {"gradient_penalty": (True, True), "r1": (True, False), "r2": (True, False),
                     "weight_clip": (False, True)}


def test_a_regularizer_written_before_shard_still_trains_and_a_cost_with_a_projection_is_refused(one_thread):
    """Python components written to the interface before issue 11: a regularizer whose penalty takes
    no ``shard`` gets the old arguments; a cost with ``after_discriminator_step`` (no longer called)
    is refused by name instead of being silently ignored."""
    import ganforge
    from ganforge.errors import ConfigError
    from ganforge.game import COSTS, REGULARIZERS
    from ganforge.game.losses import NonSaturating

    seen = []

    class OldStyle(Regularizer):
        def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator):
            seen.append(real.shape[0])
            return d_real.pow(2).mean() * 0.0

    class Projecting(NonSaturating):
        def after_discriminator_step(self, discriminator):
            pass

    REGULARIZERS.register("test_old_style")(OldStyle)
    COSTS.register("test_projecting")(Projecting)
    try:
        raw = {"data": {"name": "ring"}, "game": {"prior": {"name": "gaussian", "latent_dim": 2},
                                                   "regularizers": [{"name": "test_old_style"}]},
               "model": {"generator": {"name": "mlp", "widths": [8]}, "discriminator": {"name": "mlp", "widths": [8]}},
               "train": {"steps": 2, "batch_size": 8, "progress": False}}
        ganforge.train(ganforge.config_from_dict(raw), None)
        assert seen == [8, 8]
        raw["game"]["regularizers"] = []
        raw["game"]["cost"] = {"name": "test_projecting"}
        with pytest.raises(ConfigError, match="after_discriminator_step"):
            ganforge.train(ganforge.config_from_dict(raw), None)
    finally:
        REGULARIZERS._entries.pop("test_old_style", None)
        COSTS._entries.pop("test_projecting", None)
