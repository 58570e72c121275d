"""The closed-form games (Dirac-GAN, bilinear) under every update rule, through the real trainer,
compared with the closed forms: the linear maps of the bilinear game's iterates (float64 players,
compared to 1e-12), the Dirac-GAN's exact recurrences (float32 players, as the GAN game computes)
and its linearization's eigenvalues at the equilibrium.

Notation: h the learning rate (SGD, no momentum), z = (x, y) the bilinear game's players; its field
v(z) = A z with A = [[0, 1], [-1, 0]] (dL_x/dx = y, dL_y/dy = -x), A^2 = -I. The Dirac-GAN with the
minimax cost: J(D) = softplus(psi theta) + log 2, J(G) = -softplus(psi theta); with s = sigmoid(psi theta),
dJ(D)/dpsi = theta s and dJ(G)/dtheta = -psi s. R1 of weight gamma adds gamma/2 psi^2 to J(D).
"""

from __future__ import annotations

import math

import pytest
import torch

import ganforge
from ganforge.components import config_from_dict
from ganforge.train.callbacks import Callback
from ganforge.train.trainer import Trainer

A = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
I2 = torch.eye(2, dtype=torch.float64)


class Record(Callback):
    """Every player's (flattened) parameters after every step, in float64."""

    def __init__(self, names: tuple[str, ...], attrs: tuple[str, ...]):
        self.names, self.attrs, self.rows = names, attrs, []

    def on_fit_start(self, trainer, state):
        self.rows = [self._read(state)]

    def on_step_end(self, trainer, state):
        self.rows.append(self._read(state))

    def _read(self, state):
        return torch.cat([getattr(state.players[n], a).detach().double().reshape(-1).clone()
                          for n, a in zip(self.names, self.attrs, strict=True)])


def bilinear_config(update, lr=0.1, steps=100, x0=1.0, y0=0.5, **train):
    return {
        "name": "bilinear", "data": {"name": "dirac"},
        "game": {"name": "bilinear", "prior": {"name": "gaussian", "latent_dim": 1}},
        "model": {"x": {"name": "dirac", "init": x0, "dtype": "float64"},
                  "y": {"name": "dirac", "init": y0, "dtype": "float64"}},
        "optim": {"x": {"name": "sgd", "lr": lr}, "y": {"name": "sgd", "lr": lr}},
        "train": {"steps": steps, "batch_size": 1, "update": update, "ema_decay": 0.0, "progress": False,
                  "threads": 1, "log_every": 10, "checkpoint_every": 1000, **train},
    }


def play_bilinear(update, **kw) -> torch.Tensor:
    """(steps + 1, 2): (x, y) before the first step and after every step."""
    rec = Record(("x", "y"), ("theta", "theta"))
    Trainer(config_from_dict(bilinear_config(update, **kw)), callbacks=[rec]).fit()
    return torch.stack(rec.rows)


def iterate(m: torch.Tensor, z0: torch.Tensor, steps: int) -> torch.Tensor:
    rows = [z0]
    for _ in range(steps):
        rows.append(m @ rows[-1])
    return torch.stack(rows)


def spectral_radius(m: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(m).abs().max())


Z0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
H = 0.1


# -- the bilinear game ------------------------------------------------------------------------------


def test_bilinear_simultaneous_steps_spiral_out(one_thread):
    m = I2 - H * A  # eigenvalues 1 +- i h, modulus sqrt(1 + h^2)
    got = play_bilinear("simultaneous", steps=200)
    torch.testing.assert_close(got, iterate(m, Z0, 200), rtol=0, atol=1e-12)
    norms = got.norm(dim=1)
    # |(I - hA) z| = sqrt(1 + h^2) |z| exactly for every z (A is a rotation by 90 degrees)
    torch.testing.assert_close(norms[1:] / norms[:-1], torch.full((200,), math.sqrt(1 + H * H),
                               dtype=torch.float64), rtol=1e-12, atol=0)
    assert norms[-1] > 2.6 * norms[0]  # (1.01)^100 = 2.70


def test_bilinear_alternating_steps_cycle(one_thread):
    # x' = x - h y, y' = y + h x': det 1, trace 2 - h^2, so both eigenvalues lie on the unit circle
    m = torch.tensor([[1.0, -H], [H, 1.0 - H * H]], dtype=torch.float64)
    assert abs(spectral_radius(m) - 1.0) < 1e-12
    got = play_bilinear("alternating", steps=400)
    torch.testing.assert_close(got, iterate(m, Z0, 400), rtol=0, atol=1e-12)
    # it neither converges nor diverges: Q(x, y) = x^2 + y^2 - h x y is conserved exactly
    q = got[:, 0] ** 2 + got[:, 1] ** 2 - H * got[:, 0] * got[:, 1]
    torch.testing.assert_close(q, torch.full_like(q, float(q[0])), rtol=1e-12, atol=0)
    assert got[-63:].norm(dim=1).min() > 0.9 and got.norm(dim=1).max() < 1.2  # a full turn is ~63 steps


def test_bilinear_extragradient_converges(one_thread):
    # z' = z - h A (z - h A z) = ((1 - h^2) I - h A) z: modulus sqrt(1 - h^2 + h^4) < 1
    m = (1 - H * H) * I2 - H * A
    assert spectral_radius(m) == pytest.approx(math.sqrt(1 - H**2 + H**4), abs=1e-12)
    got = play_bilinear("extragradient", steps=300)
    torch.testing.assert_close(got, iterate(m, Z0, 300), rtol=0, atol=1e-12)
    assert got[-1].norm() < 0.25 * got[0].norm()  # (0.99503)^300 = 0.224


def test_bilinear_optimistic_converges(one_thread):
    # z_1 = (I - h A) z_0, then z_{t+1} = z_t - 2 h A z_t + h A z_{t-1}: the companion map of (z_t, z_{t-1})
    top = torch.cat([I2 - 2 * H * A, H * A], dim=1)
    companion = torch.cat([top, torch.cat([I2, torch.zeros(2, 2, dtype=torch.float64)], dim=1)])
    assert spectral_radius(companion) < 0.9951
    z1 = (I2 - H * A) @ Z0
    expected = [Z0, z1]
    state = torch.cat([z1, Z0])
    for _ in range(299):
        state = companion @ state
        expected.append(state[:2])
    got = play_bilinear("optimistic", steps=300)
    torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=1e-12)
    assert got[-1].norm() < 0.3 * got[0].norm()


def test_bilinear_consensus_converges(one_thread):
    # |v|^2 = x^2 + y^2, so each player's gradient gains gamma times itself: z' = ((1 - h gamma) I - h A) z
    gamma = 0.5
    m = (1 - H * gamma) * I2 - H * A
    assert spectral_radius(m) == pytest.approx(math.sqrt((1 - H * gamma) ** 2 + H**2), abs=1e-12)
    got = play_bilinear({"name": "consensus", "weight": gamma}, steps=200)
    torch.testing.assert_close(got, iterate(m, Z0, 200), rtol=0, atol=1e-12)
    assert got[-1].norm() < 1e-3 * got[0].norm()  # (0.9550)^200 = 1e-4


@pytest.mark.parametrize("eta", [0.25, 1.0])
def test_bilinear_nagarajan_kolter_term(eta, one_thread):
    # L_x + eta |dL_y/dy|^2 = x y + eta x^2: x's gradient is y + 2 eta x
    sim = torch.tensor([[1 - 2 * H * eta, -H], [H, 1.0]], dtype=torch.float64)
    got = play_bilinear({"name": "simultaneous", "nagarajan_kolter": eta}, steps=100)
    torch.testing.assert_close(got, iterate(sim, Z0, 100), rtol=0, atol=1e-12)
    # alternating: x' = x - h (y + 2 eta x), then y' = y + h x'
    alt = torch.tensor([[1 - 2 * H * eta, -H], [H * (1 - 2 * H * eta), 1 - H * H]], dtype=torch.float64)
    got = play_bilinear({"name": "alternating", "nagarajan_kolter": eta}, steps=100)
    torch.testing.assert_close(got, iterate(alt, Z0, 100), rtol=0, atol=1e-12)
    assert spectral_radius(alt) < 1.0 and got[-1].norm() < 0.5 * got[0].norm()
    # extragradient and optimistic take the term at every gradient: the field is B z, B = [[2 eta, 1], [-1, 0]]
    b = torch.tensor([[2 * eta, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    got = play_bilinear({"name": "extragradient", "nagarajan_kolter": eta}, steps=100)
    torch.testing.assert_close(got, iterate(I2 - H * b + H * H * b @ b, Z0, 100), rtol=0, atol=1e-12)
    got = play_bilinear({"name": "optimistic", "nagarajan_kolter": eta}, steps=100)
    expected, prev = [Z0, (I2 - H * b) @ Z0], Z0
    for _ in range(99):
        nxt = expected[-1] - 2 * H * b @ expected[-1] + H * b @ prev
        prev = expected[-1]
        expected.append(nxt)
    torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_bilinear_unrolled_sgd_steps(k, one_thread):
    # y's k SGD steps of lr h on L_y = -x y: y_k = y + k h x, so L_x(x, y_k) = x y + k h x^2 and x's
    # gradient through the unrolling is y + 2 k h x; x steps, then y (the alternating schedule)
    a = 2 * k * H
    m = torch.tensor([[1 - H * a, -H], [H * (1 - H * a), 1 - H * H]], dtype=torch.float64)
    got = play_bilinear({"name": "unrolled", "steps": k}, steps=100)
    torch.testing.assert_close(got, iterate(m, Z0, 100), rtol=0, atol=1e-12)
    assert spectral_radius(m) < 1.0


# -- the Dirac-GAN -----------------------------------------------------------------------------------


def dirac_config(update, lr=H, steps=100, theta=1.0, psi=1.0, gamma=None, **train):
    raw = {
        "name": "dirac", "data": {"name": "dirac"},
        "model": {"generator": {"name": "dirac", "init": theta}, "discriminator": {"name": "linear", "init": psi}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 1}, "cost": {"name": "minimax"},
                 "regularizers": [] if gamma is None else [{"name": "r1", "gamma": gamma}]},
        "optim": {"generator": {"name": "sgd", "lr": lr}, "discriminator": {"name": "sgd", "lr": lr}},
        "train": {"steps": steps, "batch_size": 4, "update": update, "ema_decay": 0.0, "progress": False,
                  "threads": 1, "log_every": 10, "checkpoint_every": 1000, **train},
    }
    return raw


def play_dirac(update, **kw) -> torch.Tensor:
    """(steps + 1, 2): (theta, psi) before the first step and after every step."""
    rec = Record(("generator", "discriminator"), ("theta", "psi"))
    Trainer(config_from_dict(dirac_config(update, **kw)), callbacks=[rec]).fit()
    return torch.stack(rec.rows)


def sig(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def dirac_reference(update: str, steps: int, theta: float, psi: float, h: float = H, gamma: float = 0.0):
    """The exact recurrence of plain SGD steps on the Dirac-GAN (minimax cost, R1 of weight gamma), float64."""
    rows = [(theta, psi)]
    for _ in range(steps):
        if update == "simultaneous":
            s = sig(psi * theta)
            theta, psi = theta + h * psi * s, psi - h * (theta * s + gamma * psi)
        else:  # alternating: D first, then G against the updated D
            psi = psi - h * (theta * sig(psi * theta) + gamma * psi)
            theta = theta + h * psi * sig(psi * theta)
        rows.append((theta, psi))
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("gamma", [0.0, 0.6])
def test_dirac_gan_jacobian_at_the_equilibrium_has_eigenvalues_plus_minus_i_over_2(gamma):
    """The simultaneous-gradient field of the game the trainer plays, differentiated at (0, 0) by autograd
    through the real players, cost and R1, against the closed form [[0, 1/2], [-1/2, -gamma]], whose
    eigenvalues are -gamma/2 +- sqrt(gamma^2/4 - 1/4) (+-i/2 without R1)."""
    from ganforge.components import build_experiment

    exp = build_experiment(config_from_dict(dirac_config("simultaneous", theta=0.0, psi=0.0, gamma=gamma or None)))
    G, D = exp.players["generator"], exp.players["discriminator"]
    cost, real = exp.cost, torch.zeros(4, 1, requires_grad=True)

    def field(params):
        theta, psi = params[0:1], params[1:2]
        with torch.nn.utils.stateless._reparametrize_module(G, {"theta": theta}), \
                torch.nn.utils.stateless._reparametrize_module(D, {"psi": psi}):
            fake = G(torch.zeros(4, 1))
            d_real, d_fake = D(real), D(fake)
            j_d = cost.discriminator_cost(d_real, d_fake)
            if gamma:
                j_d = j_d + exp.regularizers[0].penalty(D, real, fake, d_real, d_fake, None, None)
            j_g = cost.generator_cost(D(fake))
            (g_theta,) = torch.autograd.grad(j_g, theta, create_graph=True)
            (g_psi,) = torch.autograd.grad(j_d, psi, create_graph=True)
        return -torch.cat([g_theta, g_psi])

    jac = torch.autograd.functional.jacobian(field, torch.zeros(2))
    torch.testing.assert_close(jac, torch.tensor([[0.0, 0.5], [-0.5, -gamma]]), rtol=0, atol=1e-7)
    eig = torch.linalg.eigvals(jac.double())
    disc = complex(gamma**2 / 4 - 0.25) ** 0.5
    expected = sorted([-gamma / 2 + disc, -gamma / 2 - disc], key=lambda c: c.imag)
    got = sorted([complex(e) for e in eig], key=lambda c: c.imag)
    for a, b in zip(got, expected, strict=True):
        assert abs(a - b) < 1e-7


def test_dirac_gan_simultaneous_steps_spiral_out_at_the_closed_form_rate(one_thread):
    # (theta', psi') = (theta + h psi s, psi - h theta s): |z'|^2 = |z|^2 (1 + h^2 s^2) exactly, and
    # near the equilibrium s = sigmoid(psi theta) -> 1/2: the rate sqrt(1 + h^2/4) of the eigenvalues 1 +- i h/2
    got = play_dirac("simultaneous", steps=300, theta=1e-3, psi=1e-3)
    norms = got.norm(dim=1)
    s = torch.sigmoid(got[:-1, 0] * got[:-1, 1])
    torch.testing.assert_close(norms[1:] / norms[:-1], torch.sqrt(1 + H * H * s * s), rtol=1e-6, atol=0)
    torch.testing.assert_close(norms[1:] / norms[:-1], torch.full((300,), math.sqrt(1 + H * H / 4),
                               dtype=torch.float64), rtol=1e-6, atol=0)
    ref = dirac_reference("simultaneous", 300, 1e-3, 1e-3)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-9)
    # and from far out, the exact nonlinear relation still holds step by step
    got = play_dirac("simultaneous", steps=100)
    norms, s = got.norm(dim=1), torch.sigmoid(got[:-1, 0] * got[:-1, 1])
    torch.testing.assert_close(norms[1:] / norms[:-1], torch.sqrt(1 + H * H * s * s), rtol=1e-6, atol=0)
    assert norms[-1] > norms[0] * 1.1


def test_dirac_gan_alternating_steps_cycle(one_thread):
    got = play_dirac("alternating", steps=1000)
    # float32 players: the rounding of 1000 steps shifts the phase of the cycle by a few 1e-5
    torch.testing.assert_close(got, dirac_reference("alternating", 1000, 1.0, 1.0), rtol=0, atol=5e-5)
    norms = got.norm(dim=1)
    # bounded and not converging: every turn (~126 steps near the equilibrium) comes back to the same radius
    assert norms.max() < 1.05 * norms[0] and norms[-200:].min() > 0.9 * norms[0]
    # near the equilibrium the linearized map M (D first, then G) has det 1 and |trace| < 2: a cycle
    small = play_dirac("alternating", steps=300, theta=1e-3, psi=1e-3)
    m = torch.tensor([[1 - H * H / 4, H / 2], [-H / 2, 1.0]], dtype=torch.float64)  # (theta, psi), D first
    assert abs(spectral_radius(m) - 1.0) < 1e-12
    # to 5e-6 of the radius 1.4e-3: sigmoid's curvature at psi theta ~ 1e-6, and float32 rounding
    torch.testing.assert_close(small, iterate(m, small[0], 300), rtol=0, atol=7e-9)


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_dirac_gan_with_r1_converges_at_the_rate_of_its_eigenvalues(update, one_thread):
    gamma = 2.0  # eigenvalues -gamma/2 +- sqrt(gamma^2/4 - 1/4) = -1 +- sqrt(3)/2, both real
    lam = -gamma / 2 + math.sqrt(gamma**2 / 4 - 0.25)
    got = play_dirac(update, steps=400, theta=1e-2, psi=1e-2, gamma=gamma)
    torch.testing.assert_close(got, dirac_reference(update, 400, 1e-2, 1e-2, gamma=gamma), rtol=1e-4, atol=1e-12)
    norms = got.norm(dim=1)
    assert norms[-1] < 0.01 * norms[0]  # (1 + h lambda)^400 = 0.0046
    if update == "simultaneous":
        # the slowest mode of I + h J decays as 1 + h lambda
        rate = (norms[301:] / norms[300:-1])
        torch.testing.assert_close(rate, torch.full_like(rate, 1 + H * lam), rtol=1e-6, atol=0)
    else:
        # D first, then G: (theta, psi) -> M (theta, psi), M = [[1 - h^2 (1/4), h/2 (1 - h gamma)], [-h/2, 1 - h gamma]]
        m = torch.tensor([[1 - H * H / 4, H / 2 * (1 - H * gamma)], [-H / 2, 1 - H * gamma]], dtype=torch.float64)
        rate = norms[301:] / norms[300:-1]
        torch.testing.assert_close(rate, torch.full_like(rate, spectral_radius(m)), rtol=1e-6, atol=0)


def test_dirac_gan_recipe_converges_to_the_equilibrium(tmp_path, one_thread):
    """The packaged recipe (alternating SGD steps, R1 gamma = 1) against its exact recurrence, and its
    run directory resumes: a checkpoint at step 250 of 500."""
    cfg = ganforge.load_config("dirac-gan", ["train.threads=1", "train.progress=false"])
    state = ganforge.train(cfg, tmp_path / "run")
    ref = dirac_reference("alternating", 500, 1.0, 1.0, h=0.1, gamma=1.0)[-1]
    got = torch.tensor([state.players["generator"].theta.item(), state.players["discriminator"].psi.item()],
                       dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-9)
    assert got.abs().max() < 1e-6  # (0, 0): the equilibrium
    without_r1 = ganforge.train(ganforge.load_config("dirac-gan", ["train.threads=1", "train.progress=false",
                                                                     "game.regularizers=[]"]), tmp_path / "cycle")
    assert abs(without_r1.players["discriminator"].psi.item()) + abs(without_r1.players["generator"].theta.item()) > 0.5
