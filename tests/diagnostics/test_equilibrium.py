"""The equilibrium analysis against closed forms (Dirac-GAN, bilinear and quadratic games) and against a
dense Jacobian and dense Hessians computed independently with torch.func on a small MLP game."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, hessian, jacrev

from ganforge.diagnostics.equilibrium import AnalysisError, analyze_equilibrium, path_angle
from ganforge.errors import GanforgeError

F64 = torch.float64


def f_gan(t: torch.Tensor) -> torch.Tensor:
    """f(t) = −log(1 + exp(−t)) (Mescheder et al. 2018's f for the standard GAN)."""
    return -nn.functional.softplus(-t)


def dirac_gan(theta: float = 0.0, psi: float = 0.0, gamma: float = 0.0, cost: str = "minimax"):
    """p_data = δ0, G = δθ, D(x) = ψx; the discriminator's cost with R1 of weight γ (γ/2·ψ²)."""
    th = torch.tensor([theta], dtype=F64, requires_grad=True)
    ps = torch.tensor([psi], dtype=F64, requires_grad=True)
    x_real = torch.zeros(1, dtype=F64)

    def costs():
        d_fake, d_real = ps * th, ps * x_real  # D(G) = ψθ, D(x_real) = 0
        value = (f_gan(d_fake) + f_gan(-d_real)).sum()  # L(θ, ψ): G minimizes, D maximizes
        g_cost = value if cost == "minimax" else -f_gan(-d_fake).sum()  # non-saturating: −f(−D(G))
        return {"generator": g_cost, "discriminator": -value + gamma / 2 * (ps ** 2).sum()}

    return {"generator": [th], "discriminator": [ps]}, costs


def pairs(result) -> np.ndarray:
    return np.array([complex(r, i) for r, i in result.to_dict()["jacobian_eigenvalues"]])


def same_set(a, b, tol):
    a, b = sorted(np.asarray(a), key=lambda z: (z.real, z.imag)), sorted(np.asarray(b), key=lambda z: (z.real, z.imag))
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# ------------------------------------------------------------------------------------------- Dirac-GAN


@pytest.mark.parametrize("cost", ["minimax", "non_saturating"])
def test_dirac_gan_without_regularization_has_eigenvalues_pm_i_over_2(cost):
    params, costs = dirac_gan(cost=cost)
    r = analyze_equilibrium(params, costs)
    assert same_set(pairs(r), [0.5j, -0.5j], 1e-12)
    assert r.gradient_norm == {"generator": 0.0, "discriminator": 0.0}
    # the players' own Hessians: ψ²·f''(ψθ) = 0 for G, −θ²·f''(ψθ) = 0 for D at (0, 0)
    assert r.hessian_min_eigenvalue == pytest.approx({"generator": 0.0, "discriminator": 0.0}, abs=1e-15)
    assert (r.stationary, r.nash, r.stable, r.kind) == (True, True, "marginal", "local_nash_not_stable")
    assert r.max_rotation == pytest.approx(1.0, abs=1e-12)
    assert "0+0.5i has real part ~0" in r.verdict and "rotational dynamics" in r.verdict
    d = r.to_dict()
    assert d["convention"]["name"] == "dynamics" and "-dxi/dtheta" in d["convention"]["meaning"]
    assert d["method"]["jacobian"] == "dense" and d["sizes"] == {"generator": 1, "discriminator": 1, "total": 2}


@pytest.mark.parametrize("gamma", [0.3, 2.0])
@pytest.mark.parametrize("cost", ["minimax", "non_saturating"])
def test_dirac_gan_with_r1_matches_closed_form(gamma, cost):
    params, costs = dirac_gan(gamma=gamma, cost=cost)
    r = analyze_equilibrium(params, costs)
    root = np.sqrt(complex(gamma ** 2 / 4 - 0.25))
    expected = [-gamma / 2 + root, -gamma / 2 - root]  # Mescheder et al. 2018
    assert same_set(pairs(r), expected, 1e-12)
    assert r.hessian_min_eigenvalue["discriminator"] == pytest.approx(gamma, abs=1e-14)
    assert (r.nash, r.stable, r.kind) == (True, "stable", "local_nash_stable")
    assert complex(*r.to_dict()["least_stable_eigenvalue"]) == pytest.approx(expected[0], abs=1e-12)
    rotating = gamma < 1.0  # complex eigenvalues below γ = 1
    assert ("rotational dynamics" in r.verdict) == rotating
    # the other convention: the eigenvalues of ∂ξ/∂θ, the same numbers negated
    f = analyze_equilibrium(params, costs, convention="field")
    assert same_set(pairs(f), [-z for z in expected], 1e-12)
    assert f.stable == "stable" and f.to_dict()["convention"]["name"] == "field"


def test_dirac_gan_away_from_equilibrium_closed_form():
    """At (θ, ψ) = (1, 0.5): ξ = (ψf'(ψθ), −θf'(ψθ)) for the minimax cost, f'(t) = σ(−t)."""
    params, costs = dirac_gan(theta=1.0, psi=0.5)
    r = analyze_equilibrium(params, costs)
    s = 1 / (1 + math.exp(0.5))  # f'(0.5) = σ(−0.5)
    assert r.gradient_norm["generator"] == pytest.approx(0.5 * s, rel=1e-12)
    assert r.gradient_norm["discriminator"] == pytest.approx(1.0 * s, rel=1e-12)
    assert r.kind == "not_stationary"
    assert r.verdict.startswith(f"not an equilibrium: the generator's gradient norm is {0.5 * s:.3g}")
    # dense check of the analysis's Jacobian: f''(t) = −σ(t)σ(−t)
    fpp = -s * (1 - s)
    th, ps = 1.0, 0.5
    J = np.array([[ps * ps * fpp, s + ps * th * fpp], [-(s + th * ps * fpp), -th * th * fpp]])  # ∂ξ/∂θ
    assert same_set(pairs(r), -np.linalg.eigvals(J), 1e-12)


# ------------------------------------------------------------------------------------- quadratic games


def quadratic_game(a, b, c, d, e=0.0, f=0.0):
    """L_x = a/2·x² + b·xy, L_y = d/2·y² + c·xy (+ e·x, f·y): ∂ξ/∂θ = [[a, b], [c, d]]."""
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    y = torch.zeros(1, dtype=F64, requires_grad=True)

    def costs():
        return {"x": (a / 2 * x ** 2 + b * x * y + e * x).sum(), "y": (d / 2 * y ** 2 + c * x * y + f * y).sum()}

    return {"x": [x], "y": [y]}, costs


def test_bilinear_game_is_a_pure_rotation():
    params, costs = quadratic_game(0.0, 1.0, -1.0, 0.0)  # min_x max_y xy
    r = analyze_equilibrium(params, costs)
    assert same_set(pairs(r), [1j, -1j], 1e-14)
    assert r.stable == "marginal" and r.max_rotation == pytest.approx(1.0)


def test_stable_stationary_point_that_is_not_nash():
    """ξ' = [[−0.1, 2], [−2, 1]]: stable (trace 0.9 > 0, det 3.9 > 0), but x's own Hessian is −0.1."""
    params, costs = quadratic_game(-0.1, 2.0, -2.0, 1.0)
    r = analyze_equilibrium(params, costs)
    w = math.sqrt(3.9 - 0.45 ** 2)
    assert same_set(pairs(r), [-0.45 + 1j * w, -0.45 - 1j * w], 1e-12)
    assert r.hessian_min_eigenvalue == pytest.approx({"x": -0.1, "y": 1.0}, abs=1e-14)
    assert (r.stationary, r.nash, r.stable, r.kind) == (True, False, "stable", "stable_not_nash")
    assert "not a local Nash equilibrium: the x's Hessian has eigenvalue -0.1" in r.verdict


def test_nash_point_where_simultaneous_steps_are_unstable():
    """Both own Hessians = 1 (a differential Nash equilibrium), ∂ξ/∂θ = [[1, 3], [1, 1]]: 1 ± √3."""
    params, costs = quadratic_game(1.0, 3.0, 1.0, 1.0)
    r = analyze_equilibrium(params, costs)
    assert same_set(pairs(r), [-1 - math.sqrt(3), -1 + math.sqrt(3)], 1e-12)
    assert (r.nash, r.stable, r.kind) == (True, "unstable", "local_nash_not_stable")
    assert complex(*r.to_dict()["least_stable_eigenvalue"]) == pytest.approx(math.sqrt(3) - 1, abs=1e-12)
    assert "unstable: eigenvalue 0.7321 has real part > 0" in r.verdict


def test_gradient_tolerance_decides_stationarity():
    params, costs = quadratic_game(1.0, 0.0, 0.0, 1.0, e=1e-3)  # ∇_x L_x = 1e-3 at 0
    assert analyze_equilibrium(params, costs).kind == "not_stationary"
    assert analyze_equilibrium(params, costs, gradient_tol=1e-2).kind == "local_nash_stable"


# -------------------------------------------------------------------------------------- small MLP game


class MLPGame:
    """G: 4 → 16 → 2, D: 2 → 24 → 1 (softplus), non-saturating costs + R1 on real data (γ = 1), a fixed
    batch of 32; 211 parameters. ``costs`` for the analysis; ``xi(flat)`` a functional ξ for torch.func."""

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.G = nn.Sequential(nn.Linear(4, 16), nn.Softplus(), nn.Linear(16, 2)).double()
        self.D = nn.Sequential(nn.Linear(2, 24), nn.Softplus(), nn.Linear(24, 1)).double()
        g = torch.Generator().manual_seed(seed + 1)
        self.z = torch.randn(32, 4, generator=g, dtype=F64)
        self.x = torch.randn(32, 2, generator=g, dtype=F64) * 0.5 + 1.0
        self.g_names = [n for n, _ in self.G.named_parameters()]
        self.d_names = [n for n, _ in self.D.named_parameters()]
        self.g_shapes = [p.shape for p in self.G.parameters()]
        self.d_shapes = [p.shape for p in self.D.parameters()]
        self.n_g = sum(p.numel() for p in self.G.parameters())
        self.n_d = sum(p.numel() for p in self.D.parameters())

    @property
    def params(self):
        return {"generator": list(self.G.parameters()), "discriminator": list(self.D.parameters())}

    def _costs(self, G, D):
        fake = G(self.z)
        x = self.x.clone().requires_grad_(True)
        d_real = D(x)
        (gx,) = torch.autograd.grad(d_real.sum(), x, create_graph=True)
        r1 = 0.5 * (gx ** 2).sum(1).mean()
        g_cost = nn.functional.softplus(-D(fake)).mean()
        d_cost = nn.functional.softplus(-d_real).mean() + nn.functional.softplus(D(fake)).mean() + r1
        return g_cost, d_cost

    def costs(self):
        g, d = self._costs(self.G, self.D)
        return {"generator": g, "discriminator": d}

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in [*self.G.parameters(), *self.D.parameters()]])

    def _unflat(self, v, names, shapes):
        out, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = math.prod(s)
            out[n] = v[i:i + k].reshape(s)
            i += k
        return out

    def _functional_costs(self, vg, vd):
        G = lambda z: functional_call(self.G, self._unflat(vg, self.g_names, self.g_shapes), (z,))  # noqa: E731
        D = lambda x: functional_call(self.D, self._unflat(vd, self.d_names, self.d_shapes), (x,))  # noqa: E731
        fake = G(self.z)
        d_real_fn = lambda x: D(x).sum()  # noqa: E731
        gx = grad(d_real_fn)(self.x)
        r1 = 0.5 * (gx ** 2).sum(1).mean()
        g_cost = nn.functional.softplus(-D(fake)).mean()
        d_cost = nn.functional.softplus(-D(self.x)).mean() + nn.functional.softplus(D(fake)).mean() + r1
        return g_cost, d_cost

    def xi(self, v: torch.Tensor) -> torch.Tensor:
        vg, vd = v[:self.n_g], v[self.n_g:]
        gg = grad(lambda a: self._functional_costs(a, vd)[0])(vg)
        gd = grad(lambda b: self._functional_costs(vg, b)[1])(vd)
        return torch.cat([gg, gd])

    def dense_hessians(self):
        v = self.flat()
        vg, vd = v[:self.n_g], v[self.n_g:]
        hg = hessian(lambda a: self._functional_costs(a, vd)[0])(vg)
        hd = hessian(lambda b: self._functional_costs(vg, b)[1])(vd)
        return hg.numpy(), hd.numpy()


@pytest.fixture(scope="module")
def mlp_game():
    torch.set_num_threads(1)
    game = MLPGame()
    J = jacrev(game.xi)(game.flat()).numpy()  # (n, n) = ∂ξ/∂θ, independently of the analysis
    return game, J


def test_mlp_game_iterative_within_1e4_of_dense_jacobian(mlp_game, one_thread):
    game, J = mlp_game
    n = game.n_g + game.n_d
    assert n == 211
    dense = -np.linalg.eigvals(J)  # dynamics convention
    r = analyze_equilibrium(game.params, game.costs, method="iterative", n_eigenvalues=6)
    assert r.method["jacobian"] == "arnoldi" and r.method["hessian"] == {"generator": "lanczos",
                                                                            "discriminator": "lanczos"}
    got = pairs(r)
    assert len(got) >= 6
    for z in got:  # every computed eigenvalue is one of the dense spectrum's
        assert np.min(np.abs(dense - z)) <= 1e-4, z
    lm = complex(*r.to_dict()["largest_modulus_eigenvalue"])
    assert abs(lm) == pytest.approx(np.max(np.abs(dense)), abs=1e-4)
    least = complex(*r.to_dict()["least_stable_eigenvalue"])
    assert least.real == pytest.approx(np.max(dense.real), abs=1e-4)
    # the gradients, against the functional field
    xi = game.xi(game.flat()).numpy()
    assert r.gradient_norm["generator"] == pytest.approx(np.linalg.norm(xi[:game.n_g]), rel=1e-10)
    assert r.gradient_norm["discriminator"] == pytest.approx(np.linalg.norm(xi[game.n_g:]), rel=1e-10)
    assert r.kind == "not_stationary"


def test_mlp_game_hessian_extremes_match_dense_hessians(mlp_game, one_thread):
    game, J = mlp_game
    hg, hd = game.dense_hessians()
    r = analyze_equilibrium(game.params, game.costs, method="iterative", n_eigenvalues=2)
    for name, H in (("generator", hg), ("discriminator", hd)):
        eig = np.linalg.eigvalsh(H)
        assert r.hessian_min_eigenvalue[name] == pytest.approx(eig[0], abs=1e-6 * max(1, abs(eig[-1])))
        assert r.hessian_max_eigenvalue[name] == pytest.approx(eig[-1], abs=1e-6 * max(1, abs(eig[-1])))
    # the diagonal blocks of the game Jacobian are the players' Hessians
    assert np.allclose(J[:game.n_g, :game.n_g], hg, atol=1e-10)


def test_mlp_game_dense_method_matches_torch_func(mlp_game, one_thread):
    game, J = mlp_game
    r = analyze_equilibrium(game.params, game.costs, method="dense")
    assert r.method["jacobian"] == "dense"
    assert same_set(pairs(r), -np.linalg.eigvals(J), 1e-8)


def test_dense_check_too_large_is_one_line_error(mlp_game):
    game, _ = mlp_game
    with pytest.raises(GanforgeError) as info:
        analyze_equilibrium(game.params, game.costs, method="dense", dense_max=100)
    msg = str(info.value)
    assert isinstance(info.value, AnalysisError) and "\n" not in msg
    assert "211 parameters" in msg and "at most 100" in msg


def test_players_must_match_their_costs():
    params, costs = quadratic_game(1.0, 0.0, 0.0, 1.0)
    with pytest.raises(AnalysisError, match="each player needs exactly one cost"):
        analyze_equilibrium({"x": params["x"]}, costs)


# ------------------------------------------------------------------------------------------ path angle


def test_path_angle_through_the_equilibrium_of_the_bilinear_game_is_zero():
    """min_x max_y xy: ξ = (y, −x) is orthogonal to every line through the origin."""
    params, costs = quadratic_game(0.0, 1.0, -1.0, 0.0)
    start = {"x": [torch.tensor([1.5], dtype=F64)], "y": [torch.tensor([-0.7], dtype=F64)]}
    end = {"x": [torch.zeros(1, dtype=F64)], "y": [torch.zeros(1, dtype=F64)]}
    alphas = [-0.1, 0.0, 0.3, 0.9, 1.1]
    pa = path_angle(start, end, params, costs, alphas)
    assert pa.cosine == pytest.approx([0.0] * 5, abs=1e-15)
    r = math.hypot(1.5, 0.7)
    assert pa.field_norm == pytest.approx([abs(1 - a) * r for a in alphas], rel=1e-12)
    assert params["x"][0].item() == 0.0 and params["y"][0].item() == 0.0  # restored


def test_path_angle_off_the_equilibrium_closed_form():
    """Bilinear game from (1, 0) to (0, 1): θ_α = (1 − α, α), ξ = (α, α − 1), d = (−1, 1):
    cos = −1 / (√2·sqrt(α² + (1 − α)²))."""
    params, costs = quadratic_game(0.0, 1.0, -1.0, 0.0)
    params["x"][0].data.fill_(0.25)
    start = {"x": [torch.tensor([1.0], dtype=F64)], "y": [torch.tensor([0.0], dtype=F64)]}
    end = {"x": [torch.tensor([0.0], dtype=F64)], "y": [torch.tensor([1.0], dtype=F64)]}
    alphas = list(np.linspace(-0.5, 1.5, 9))
    pa = path_angle(start, end, params, costs, alphas)
    assert pa.cosine == pytest.approx([-1 / (math.sqrt(2) * math.hypot(a, 1 - a)) for a in alphas], rel=1e-12)
    assert pa.dot == pytest.approx([-1 / math.sqrt(2)] * 9, rel=1e-12)
    assert params["x"][0].item() == 0.25


def test_path_angle_of_a_damped_rotation_switches_sign():
    """L_x = a/2·x² + xy, L_y = a/2·y² − xy: ξ = [[a, 1], [−1, a]]θ; on a line to the origin
    cos = −sign(1 − α)·a / sqrt(1 + a²)."""
    a = 0.2
    params, costs = quadratic_game(a, 1.0, -1.0, a)
    start = {"x": [torch.tensor([0.3], dtype=F64)], "y": [torch.tensor([2.0], dtype=F64)]}
    end = {"x": [torch.zeros(1, dtype=F64)], "y": [torch.zeros(1, dtype=F64)]}
    alphas = [-0.2, 0.5, 0.99, 1.01, 1.3]
    pa = path_angle(start, end, params, costs, alphas)
    c = a / math.sqrt(1 + a * a)
    assert pa.cosine == pytest.approx([-c, -c, -c, c, c], rel=1e-12)
    assert math.isnan(path_angle(start, end, params, costs, [1.0]).cosine[0])  # ξ = 0 at the end
    assert path_angle(start, end, params, costs, [1.0]).to_dict()["cosine"] == [None]


def test_path_angle_refuses_mismatched_points():
    params, costs = quadratic_game(0.0, 1.0, -1.0, 0.0)
    p = {"x": [torch.zeros(2, dtype=F64)], "y": [torch.zeros(1, dtype=F64)]}
    with pytest.raises(AnalysisError, match="shapes"):
        path_angle(p, p, params, costs)
    same = {"x": [torch.zeros(1, dtype=F64)], "y": [torch.zeros(1, dtype=F64)]}
    with pytest.raises(AnalysisError, match="same point"):
        path_angle(same, same, params, costs)


class _OnceDifferentiable(torch.autograd.Function):
    """x ↦ x², whose backward cannot itself be differentiated."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_a_layer_without_second_derivatives_is_one_line_error():
    x = torch.ones(3, dtype=F64, requires_grad=True)
    y = torch.ones(2, dtype=F64, requires_grad=True)

    def costs():
        return {"x": _OnceDifferentiable.apply(x).sum() * y.sum(), "y": -(x.sum() * y.sum())}

    with pytest.raises(AnalysisError) as info:
        analyze_equilibrium({"x": [x], "y": [y]}, costs)
    msg = str(info.value)
    assert "\n" not in msg and "cannot be differentiated twice" in msg and "second derivatives" in msg


def test_iterative_equals_dense_on_small_random_games():
    """Arnoldi / Lanczos against the dense path at the smallest sizes ARPACK takes (4 to 8 parameters a
    player), on non-quadratic random games."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        n1, n2 = (int(v) for v in rng.integers(4, 9, size=2))
        A = torch.tensor(rng.normal(size=(n1 + n2, n1 + n2)))
        x = torch.tensor(rng.normal(size=n1), requires_grad=True)
        y = torch.tensor(rng.normal(size=n2), requires_grad=True)

        def costs(A=A, x=x, y=y):
            v = torch.cat([x, y])
            return {"x": 0.5 * v @ (A @ v) + (x ** 3).sum() / 3, "y": 0.5 * v @ (A.T @ v) - (y ** 4).sum() / 4}

        params = {"x": [x], "y": [y]}
        d = analyze_equilibrium(params, costs, method="dense")
        it = analyze_equilibrium(params, costs, method="iterative", n_eigenvalues=3)
        assert it.method["jacobian"] == "arnoldi" and d.method["jacobian"] == "dense"
        dense = np.array(d.jacobian_eigenvalues)
        assert all(np.min(np.abs(dense - z)) < 1e-9 for z in it.jacobian_eigenvalues)
        assert it.least_stable_eigenvalue.real == pytest.approx(d.least_stable_eigenvalue.real, abs=1e-9)
        assert abs(it.largest_modulus_eigenvalue) == pytest.approx(abs(d.largest_modulus_eigenvalue), abs=1e-9)
        for k in ("x", "y"):
            assert it.hessian_min_eigenvalue[k] == pytest.approx(d.hessian_min_eigenvalue[k], abs=1e-9)
            assert it.hessian_max_eigenvalue[k] == pytest.approx(d.hessian_max_eigenvalue[k], abs=1e-9)
