"""The update rules of issue 12 (train/updates.py): unrolled, extragradient, optimistic, consensus and
the Nagarajan-Kolter term, through the real trainer: one step's gradients against hand or dense
computations on the Dirac-GAN, the differentiable optimizer steps against torch's optimizers, exact
resume of every rule (the optimistic rule's own state included), and the bad inputs each refuses.
The rules' long-run behaviour on the closed-form games is tests/game/test_closed_form_games.py."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from tiny_ring import tiny_ring

import ganforge
from ganforge.cli import main
from ganforge.components import build_experiment, config_from_dict
from ganforge.errors import ConfigError
from ganforge.train.callbacks import Callback
from ganforge.train.checkpoint import list_checkpoints, load_checkpoint
from ganforge.train.trainer import Trainer
from ganforge.train.updates import DifferentiableStep

H_G, H_D = 0.1, 0.3


def dirac(update, steps=1, theta=0.8, psi=-0.6, d_optim=None, gamma=None, **train):
    return config_from_dict({
        "name": "dirac", "data": {"name": "dirac"},
        "model": {"generator": {"name": "dirac", "init": theta}, "discriminator": {"name": "linear", "init": psi}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 1}, "cost": {"name": "minimax"},
                 "regularizers": [] if gamma is None else [{"name": "r1", "gamma": gamma}]},
        "optim": {"generator": {"name": "sgd", "lr": H_G},
                  "discriminator": d_optim or {"name": "sgd", "lr": H_D}},
        "train": {"steps": steps, "batch_size": 4, "update": update, "ema_decay": 0.0, "progress": False,
                  "threads": 1, "log_every": 1, "checkpoint_every": 1000, **train},
    })


def theta_psi(state) -> tuple[float, float]:
    return state.players["generator"].theta.item(), state.players["discriminator"].psi.item()


def sig(t):
    return torch.sigmoid(t) if isinstance(t, torch.Tensor) else 1.0 / (1.0 + math.exp(-t))


# -- unrolled ------------------------------------------------------------------------------------------


def test_unrolled_one_step_matches_the_closed_form_for_k_1(one_thread):
    """One training step: D's own SGD step psi1 = psi - h_D theta s(psi theta); then G's gradient through
    one SGD step of D from psi1: u = psi1 - h_D theta s(psi1 theta), J(G) = -softplus(u theta),
    dJ/dtheta = -s(u theta) (u + theta du/dtheta), du/dtheta = -h_D (s(psi1 theta) + theta psi1 s'(psi1 theta))."""
    theta, psi = 0.8, -0.6
    state = Trainer(dirac({"name": "unrolled", "steps": 1}, theta=theta, psi=psi)).fit()
    psi1 = psi - H_D * theta * sig(psi * theta)
    s1 = sig(psi1 * theta)
    u = psi1 - H_D * theta * s1
    du = -H_D * (s1 + theta * psi1 * s1 * (1 - s1))
    grad = -sig(u * theta) * (u + theta * du)
    got = theta_psi(state)
    assert got[0] == pytest.approx(theta - H_G * grad, abs=1e-6)
    assert got[1] == pytest.approx(psi1, abs=1e-6)
    # the lookahead matters: the gradient at psi1 alone (no unrolling) differs by far more than the tolerance
    assert abs((theta - H_G * grad) - (theta + H_G * psi1 * s1)) > 1e-3


def dense_unrolled_theta(theta0, psi0, k, gamma=0.0, adam=None):
    """The same step by a dense float64 computation (torch autograd on the scalar recurrence)."""
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    psi = torch.tensor(psi0, dtype=torch.float64)

    def d_grad(t, p):  # dJ(D)/dpsi = t s(p t) + gamma p
        return t * torch.sigmoid(p * t) + gamma * p

    if adam is None:
        psi1 = psi - H_D * d_grad(theta.detach(), psi)
        u = psi1
        for _ in range(k):
            u = u - H_D * d_grad(theta, u)
    else:  # torch's Adam, then k differentiable Adam steps from its moments and step count
        lr, (b1, b2), eps = adam
        g = d_grad(theta.detach(), psi)
        m, v = (1 - b1) * g, (1 - b2) * g * g
        psi1 = psi - lr / (1 - b1) * m / ((v / (1 - b2)).sqrt() + eps)
        u, t = psi1, 1
        for _ in range(k):
            g = d_grad(theta, u)
            m, v, t = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g, t + 1
            u = u - lr / (1 - b1**t) * m / ((v / (1 - b2**t)).sqrt() + eps)
    cost = -torch.nn.functional.softplus(u * theta)
    (grad,) = torch.autograd.grad(cost, theta)
    return theta0 - H_G * float(grad), float(psi1)


@pytest.mark.parametrize("k,gamma", [(2, None), (3, 0.5)])
def test_unrolled_sgd_step_matches_a_dense_computation(k, gamma, one_thread):
    state = Trainer(dirac({"name": "unrolled", "steps": k}, gamma=gamma)).fit()
    expected = dense_unrolled_theta(0.8, -0.6, k, gamma=gamma or 0.0)
    assert theta_psi(state) == pytest.approx(expected, abs=1e-6)


def test_unrolled_adam_steps_start_from_the_optimizers_moments(one_thread):
    adam = {"name": "adam", "lr": 0.05, "betas": [0.5, 0.9]}
    state = Trainer(dirac({"name": "unrolled", "steps": 3}, d_optim=adam)).fit()
    expected = dense_unrolled_theta(0.8, -0.6, 3, adam=(0.05, (0.5, 0.9), 1e-8))
    assert theta_psi(state) == pytest.approx(expected, abs=1e-6)
    # the optimizer itself took one step only (its own phase): the unrolling did not advance it
    assert int(state.optimizers["discriminator"].state[state.players["discriminator"].psi]["step"]) == 1


@pytest.mark.parametrize("same_batch", [True, False])
def test_unrolled_steps_on_one_batch_or_on_fresh_batches(same_batch, one_thread):
    """With same_batch (Metz et al.'s code), D sees one batch (the same real examples and latents) in
    all k unrolled steps and in G's final cost; without, a fresh batch in each."""
    raw = tiny_ring(steps=1, update={"name": "unrolled", "steps": 3, "same_batch": same_batch})
    trainer = Trainer(config_from_dict(raw))
    state = trainer.setup()
    seen = []
    state.players["discriminator"].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    trainer.fit()
    assert len(seen) == 1 + 3 + 1  # D's own step, 3 unrolled steps, G's cost at the unrolled D
    unrolled = seen[1:]
    same = [torch.equal(unrolled[0], x) for x in unrolled[1:]]
    assert all(same) if same_batch else not any(same)
    assert not torch.equal(seen[0], unrolled[0])  # D's own step drew its own batch


@pytest.mark.parametrize("make,kind", [
    (lambda p: torch.optim.SGD(p, lr=0.1), "sgd"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01), "sgd"),
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True), "sgd"),
    (lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.999), weight_decay=0.1), "adam"),
    (lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1), "adamw"),
])
def test_differentiable_steps_take_the_optimizers_own_steps(make, kind):
    """From any state, k differentiable steps give the parameters the optimizer's own k steps give."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    opt = make([w])
    target = torch.randn(5, dtype=torch.float64)

    def grad_at(x):
        return torch.sin(x) * 3 - target + x**3

    for _ in range(2):  # a state with moments and a step count
        w.grad = grad_at(w.detach())
        opt.step()
    step = DifferentiableStep(opt, [w])
    assert step.kind == kind
    theta = [w.detach().clone()]
    for _ in range(3):
        theta = step(theta, [grad_at(theta[0])])
        w.grad = grad_at(w.detach())
        opt.step()
    torch.testing.assert_close(theta[0], w.detach(), rtol=1e-12, atol=1e-12)


# -- the Nagarajan-Kolter term and the scalars ----------------------------------------------------------


class Scalars(Callback):
    def __init__(self):
        self.rows = []

    def on_log(self, trainer, state, result):
        self.rows.append(dict(result.scalars))


def test_nagarajan_kolter_on_the_dirac_gan_matches_the_closed_form(one_thread):
    """Alternating: D's step, then G's cost -softplus(psi1 theta) + eta (theta s(psi1 theta))^2, whose
    theta-gradient is -psi1 s + 2 eta theta s^2 (1 + theta psi1 (1 - s)); no D scalar counted twice."""
    eta, theta, psi = 0.7, 0.8, -0.6
    plain, nk = Scalars(), Scalars()
    Trainer(dirac("alternating"), callbacks=[plain]).fit()
    state = Trainer(dirac({"name": "alternating", "nagarajan_kolter": eta}), callbacks=[nk]).fit()
    psi1 = psi - H_D * theta * sig(psi * theta)
    s = sig(psi1 * theta)
    grad = -psi1 * s + 2 * eta * theta * s * s * (1 + theta * psi1 * (1 - s))
    assert theta_psi(state) == pytest.approx((theta - H_G * grad, psi1), abs=1e-6)
    for name in ("d_cost", "d_real", "d_fake", "value", "penalty", "g_cost"):
        assert nk.rows[0][name] == plain.rows[0][name], name  # D's phase is the same, counted once
    for rule in ({"name": "simultaneous", "nagarajan_kolter": eta}, {"name": "unrolled", "steps": 2}):
        rows = Scalars()
        Trainer(dirac(rule), callbacks=[rows]).fit()
        assert rows.rows[0]["d_cost"] == pytest.approx(math.log(2) + math.log1p(math.exp(psi * theta)), abs=1e-6)


def test_simultaneous_nagarajan_kolter_on_the_dirac_gan(one_thread):
    eta, theta, psi = 0.7, 0.8, -0.6
    state = Trainer(dirac({"name": "simultaneous", "nagarajan_kolter": eta})).fit()
    s = sig(psi * theta)
    grad = -psi * s + 2 * eta * theta * s * s * (1 + theta * psi * (1 - s))
    assert theta_psi(state) == pytest.approx((theta - H_G * grad, psi - H_D * theta * s), abs=1e-6)


def test_consensus_and_extragradient_one_step_on_the_dirac_gan(one_thread):
    theta, psi, gamma = 0.8, -0.6, 0.9
    # consensus: v = (dJ(G)/dtheta, dJ(D)/dpsi) = (-psi s, theta s); each player's gradient of J_i + gamma/2 |v|^2
    t, p = torch.tensor(theta, dtype=torch.float64, requires_grad=True), torch.tensor(psi, dtype=torch.float64,
                                                                                       requires_grad=True)
    s = torch.sigmoid(p * t)
    sq = (p * s) ** 2 + (t * s) ** 2
    gt, gp = torch.autograd.grad(0.5 * gamma * sq, (t, p))
    s0 = sig(psi * theta)
    expected = (theta - H_G * (-psi * s0 + float(gt)), psi - H_D * (theta * s0 + float(gp)))
    state = Trainer(dirac({"name": "consensus", "weight": gamma})).fit()
    assert theta_psi(state) == pytest.approx(expected, abs=1e-6)
    # extragradient: extrapolate both, take the field there, step from the start
    th, ps = theta + H_G * psi * s0, psi - H_D * theta * s0
    s1 = sig(ps * th)
    state = Trainer(dirac("extragradient")).fit()
    assert theta_psi(state) == pytest.approx((theta + H_G * ps * s1, psi - H_D * th * s1), abs=1e-6)


# -- exact resume ----------------------------------------------------------------------------------------


class StopAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def all_weights(state) -> dict[str, torch.Tensor]:
    out = {f"{n}.{k}": v.clone() for n, m in state.players.items() for k, v in m.state_dict().items()}
    for n, opt in state.optimizers.items():
        for i, st in enumerate(opt.state.values()):
            out.update({f"opt.{n}.{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    return out


def assert_resume_bit_identical(raw, tmp_path, stop_at):
    full = all_weights(ganforge.train(config_from_dict(raw), tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        ganforge.train(config_from_dict(raw), tmp_path / "cut", callbacks=[StopAt(stop_at)])
    resumed = ganforge.train(config_from_dict(raw), tmp_path / "cut")
    assert resumed.step == raw["train"]["steps"]
    got = all_weights(resumed)
    assert full.keys() == got.keys()
    for k in full:
        assert torch.equal(full[k], got[k]), k
    return tmp_path / "cut"


def test_optimistic_resumes_bit_identical_with_its_previous_gradients(tmp_path, one_thread):
    raw = {"name": "bilinear", "data": {"name": "dirac"},
           "game": {"name": "bilinear", "prior": {"name": "gaussian", "latent_dim": 1}},
           "model": {"x": {"name": "dirac", "init": 1.0}, "y": {"name": "dirac", "init": 0.5}},
           "optim": {"x": {"name": "sgd", "lr": 0.1}, "y": {"name": "sgd", "lr": 0.1}},
           "train": {"steps": 30, "batch_size": 1, "update": "optimistic", "ema_decay": 0.0, "progress": False,
                     "threads": 1, "log_every": 5, "checkpoint_every": 10}}
    cut = assert_resume_bit_identical(raw, tmp_path, 25)
    ckpt = load_checkpoint(list_checkpoints(cut / "checkpoints")[-1][1])
    assert set(ckpt["update"]["previous"]) == {"x", "y"}
    # without the previous gradients the resumed run would differ: the state is what makes it exact
    from ganforge.train.updates import Optimistic

    rule = Optimistic()
    rule.load_state_dict({})
    assert rule.state_dict() == {}


@pytest.mark.parametrize("update", ["{name: unrolled, steps: 5}", "extragradient", "optimistic",
                                    "{name: consensus, weight: 10.0}", "{name: alternating, nagarajan_kolter: 0.5}"])
def test_every_new_rule_resumes_bit_identical_on_ring8(update, tmp_path, one_thread):
    """The ring8 recipe (EMA, Adam, linear decay) for 30 steps, crashed after step 25 and resumed from
    the checkpoint of step 20: every weight, EMA weight and optimizer moment as in the uncut run."""
    import yaml

    from ganforge.config import resolve_recipe

    raw = yaml.safe_load(resolve_recipe("ring8").read_text())
    raw["train"].update({"steps": 30, "checkpoint_every": 10, "log_every": 5, "threads": 1, "progress": False,
                         "update": yaml.safe_load(update)})
    assert_resume_bit_identical(raw, tmp_path, 25)


# -- bad input ---------------------------------------------------------------------------------------------


class OnceDifferentiable(torch.autograd.Function):
    """A layer without second derivatives (its backward is marked once-differentiable)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


class WithOnceDifferentiable(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.scale = torch.nn.Linear(inner.in_shape[0], inner.in_shape[0])

    def forward(self, x, y=None):
        return self.inner(OnceDifferentiable.apply(self.scale(x)), y)


def ring_config(update, **model_d):
    raw = tiny_ring(steps=2, update=update)
    raw["model"]["discriminator"].update(model_d)
    return config_from_dict(raw)


@pytest.mark.parametrize("update", [{"name": "unrolled", "steps": 2}, {"name": "consensus", "weight": 1.0},
                                    {"name": "alternating", "nagarajan_kolter": 0.5},
                                    {"name": "optimistic", "nagarajan_kolter": 0.5}])
def test_second_order_rules_refuse_a_layer_without_second_derivatives(update, one_thread):
    cfg = ring_config(update)
    exp = build_experiment(cfg)
    exp.players["discriminator"] = WithOnceDifferentiable(exp.players["discriminator"])
    with pytest.raises(ConfigError) as err:
        Trainer(cfg, experiment=exp).setup()
    msg = str(err.value)
    assert err.value.path == "train.update" and "\n" not in msg
    assert "model.discriminator" in msg and "second derivatives" in msg and "mlp, dcgan" in msg
    # first-order rules take it
    exp = build_experiment(ring_config("extragradient"))
    exp.players["discriminator"] = WithOnceDifferentiable(exp.players["discriminator"])
    Trainer(ring_config("extragradient"), experiment=exp).setup()


def test_the_probe_changes_nothing_of_the_run(one_thread):
    """The set-up check of second derivatives draws from no stream of the run and changes no weight,
    buffer (spectral norm's vectors), gradient or train/eval mode."""
    from ganforge.train.updates import check_second_derivatives

    cfg = ring_config("consensus", spectral_norm=True, dropout=0.5)
    exp = build_experiment(cfg)
    modules = exp.players
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in modules.items()}
    modes = {n: [x.training for x in m.modules()] for n, m in modules.items()}
    rng = torch.get_rng_state()
    check_second_derivatives(exp.game, modules, cfg, exp.game.players, "consensus")
    assert torch.equal(rng, torch.get_rng_state())
    for n, m in modules.items():
        assert [x.training for x in m.modules()] == modes[n]
        assert all(p.grad is None for p in m.parameters())
        for k, v in m.state_dict().items():
            assert torch.equal(before[n][k], v), f"{n}.{k}"


@pytest.mark.parametrize("model_d,what", [({"pack": 2}, "batch-coupled"), ({"minibatch_std": True}, "batch-coupled")])
def test_unrolled_refuses_a_batch_coupled_discriminator(model_d, what, one_thread):
    with pytest.raises(ConfigError) as err:
        Trainer(ring_config({"name": "unrolled", "steps": 2}, **model_d)).setup()
    assert err.value.path == "train.update" and what in str(err.value) and "model.discriminator" in str(err.value)


def test_unrolled_refuses_a_game_without_adversaries_and_an_optimizer_it_cannot_unroll(one_thread):
    cfg = ring_config({"name": "unrolled", "steps": 2})
    exp = build_experiment(cfg)
    exp.game.adversaries = {}
    with pytest.raises(ConfigError, match="no player with one") as err:
        Trainer(cfg, experiment=exp).setup()
    assert err.value.path == "train.update"
    raw = tiny_ring(steps=2, update={"name": "unrolled", "steps": 2})
    raw["optim"] = {"discriminator": {"name": "rmsprop"}}
    with pytest.raises(ConfigError, match="sgd, adam and adamw") as err:
        Trainer(config_from_dict(raw)).setup()
    assert err.value.path == "optim.discriminator.name"


def test_nagarajan_kolter_refuses_a_game_without_adversaries(one_thread):
    cfg = ring_config({"name": "simultaneous", "nagarajan_kolter": 1.0})
    exp = build_experiment(cfg)
    exp.game.adversaries = {}
    with pytest.raises(ConfigError, match="no player with an adversary") as err:
        Trainer(cfg, experiment=exp).setup()
    assert err.value.path == "train.update.nagarajan_kolter"


def test_cli_refuses_unrolling_a_packed_discriminator_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "ring8", "--out", str(tmp_path / "run"), "--set",
                                       "train.update={name: unrolled, steps: 5}", "--set",
                                       "model.discriminator.pack=2"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganforge: error: config train.update:")
    assert "batch-coupled" in lines[0]


@pytest.mark.parametrize("params,where", [({"name": "unrolled", "steps": 0}, "train.update.steps"),
                                          ({"name": "consensus", "weight": -1}, "train.update.weight"),
                                          ({"name": "optimistic", "nagarajan_kolter": -0.1},
                                           "train.update.nagarajan_kolter"),
                                          ({"name": "extragradient", "weight": 1}, "train.update.weight")])
def test_rule_parameters_are_validated(params, where):
    with pytest.raises(ConfigError) as err:
        config_from_dict(tiny_ring(update=params))
    assert err.value.path == where


def test_rules_that_take_autograd_grad_refuse_distributed_runs_and_say_when_they_differentiate_twice():
    from ganforge.train.updates import UPDATE_RULES

    expected = {  # (params) -> (distributed, second_order)
        ("alternating", ()): (True, False), ("alternating", (("nagarajan_kolter", 0.5),)): (False, True),
        ("simultaneous", ()): (False, False), ("simultaneous", (("nagarajan_kolter", 0.5),)): (False, True),
        ("unrolled", ()): (False, True), ("extragradient", ()): (False, False), ("optimistic", ()): (False, False),
        ("extragradient", (("nagarajan_kolter", 0.5),)): (False, True), ("consensus", ()): (False, True),
    }
    for (name, params), (distributed, second_order) in expected.items():
        rule = UPDATE_RULES.build(name, dict(params), where="train.update")
        assert (rule.distributed, rule.second_order) == (distributed, second_order), name
