"""Games other than the GAN through the whole trainer: GMMN (one player), MMD-GAN (a critic with a
feature output), and a game with three players registered through the public API. Exact resume,
update rules, the run directory, sampling, the report and the diagnostics."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import Tensor

import ganforge
from ganforge.game.games import GAMES, Game, Play
from ganforge.game.mmd import gaussian_kernel, mmd2_unbiased
from ganforge.train.callbacks import Callback, read_metrics
from ganforge.train.checkpoint import list_checkpoints, load_checkpoint

GMMN = {
    "name": "tiny-gmmn",
    "data": {"name": "ring", "n_modes": 8, "radius": 1.0, "std": 0.05},
    "model": {"generator": {"name": "mlp", "widths": [32, 32]}},
    "game": {"name": "gmmn", "prior": {"name": "gaussian", "latent_dim": 4},
             "cost": {"name": "mmd", "bandwidths": [0.1, 0.5, 2.0]}},
    "optim": {"generator": {"lr": 1e-3}},
    "train": {"steps": 60, "batch_size": 32, "log_every": 10, "checkpoint_every": 20, "progress": False,
              "threads": 1, "seed": 3},
}

MMD_GAN = copy.deepcopy(GMMN)
MMD_GAN["name"] = "tiny-mmd-gan"
MMD_GAN["model"]["discriminator"] = {"name": "mlp", "widths": [32, 32], "out_features": 8}
MMD_GAN["game"]["name"] = "mmd_gan"
MMD_GAN["game"]["regularizers"] = [{"name": "weight_clip", "clip": 0.05}]


def cfg_of(raw: dict, *overrides: str) -> ganforge.Config:
    return ganforge.config_from_dict(copy.deepcopy(raw), list(overrides))


def weights(state) -> dict[str, Tensor]:
    out = {f"{name}.{k}": v.clone() for name, m in state.players.items() for k, v in m.state_dict().items()}
    if state.ema_generator is not None:
        out.update({f"EMA.{k}": v.clone() for k, v in state.ema_generator.state_dict().items()})
    return out


def assert_bitwise_equal(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


class StopAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def interrupted_equals_uninterrupted(tmp_path, cfg: ganforge.Config) -> dict[str, Tensor]:
    full = weights(ganforge.train(cfg, tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        ganforge.train(cfg, tmp_path / "cut", callbacks=[StopAt(27)])
    assert list_checkpoints(tmp_path / "cut" / "checkpoints")[-1][0] == 20
    resumed = ganforge.train(cfg, tmp_path / "cut")
    assert resumed.step == cfg.train.steps
    assert_bitwise_equal(full, weights(resumed))
    assert [r["step"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")] == list(range(10, 61, 10))
    return full


# -- GMMN: one player ------------------------------------------------------------------------------

@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_gmmn_resumes_bit_identical(tmp_path, update, one_thread):
    full = interrupted_equals_uninterrupted(tmp_path, cfg_of(GMMN, f"train.update={update}"))
    assert not any(k.startswith("discriminator.") for k in full)
    state = load_checkpoint(list_checkpoints(tmp_path / "full" / "checkpoints")[-1][1])
    assert "discriminator" not in state and "generator" in state


def test_gmmn_simultaneous_is_plain_gradient_descent_like_alternating(tmp_path, one_thread):
    """With one player both rules take the same gradient step on the same batch: identical weights."""
    a = weights(ganforge.train(cfg_of(GMMN, "train.update=alternating"), None))
    b = weights(ganforge.train(cfg_of(GMMN, "train.update=simultaneous"), None))
    assert_bitwise_equal(a, b)


def test_gmmn_step_is_gradient_descent_on_mmd(one_thread):
    """One SGD step of the game moves G by -lr * grad MMD^2_u(real batch, G(z)) on the batch it drew."""
    from ganforge.train.trainer import Trainer

    cfg = cfg_of(GMMN, "optim.generator.name=sgd", "optim.generator.lr=0.5", "train.ema_decay=0.0")
    trainer = Trainer(cfg)
    s = trainer.setup()
    G = s.generator
    before = [p.detach().clone() for p in G.parameters()]
    loader_state, rng_state = copy.deepcopy(trainer.play.loader.state_dict()), s.rng.get_state()
    real, _ = trainer.play.real()
    z = trainer.play.latent()
    loss = mmd2_unbiased(real.flatten(1), G(z).flatten(1), lambda x, y: gaussian_kernel(x, y, [0.1, 0.5, 2.0]))
    grads = torch.autograd.grad(loss, list(G.parameters()))
    trainer.play.loader.load_state_dict(loader_state)
    s.rng.set_state(rng_state)
    trainer.train_step(s, torch.zeros(1), want_norms=False)
    for p, p0, g in zip(G.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p.detach(), p0 - 0.5 * g, rtol=0, atol=1e-6)


def test_gmmn_learns_the_ring(one_thread):
    """Moment matching alone moves the samples onto the ring (median radius 1)."""
    state = ganforge.train(cfg_of(GMMN, "train.steps=400", "optim.generator.lr=3e-3"), None)
    with torch.no_grad():
        z = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
        radius = state.ema_generator(z).norm(dim=1)
    assert abs(radius.median().item() - 1.0) < 0.1


def test_gmmn_run_directory_sample_report_diagnose_eval(tmp_path, one_thread):
    """The whole CLI on a one-player run: no discriminator anywhere, and no D numbers invented."""
    ganforge.train(cfg_of(GMMN), tmp_path / "run")
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert set(records[-1]) >= {"step", "g_cost", "grad_norm_g", "lr_g"}
    assert not any(k.startswith(("d_", "lr_d", "grad_norm_d")) for r in records for k in r)
    for line in (tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert "d_real" not in rec and "d_fake" not in rec
    py = [sys.executable, "-m", "ganforge"]

    def run(*args):
        return subprocess.run(py + list(args), capture_output=True, text=True, check=True)

    run("sample", str(tmp_path / "run"), "--n", "16", "--out", str(tmp_path / "s.npy"))
    assert np.load(tmp_path / "s.npy").shape == (16, 2)
    run("report", str(tmp_path / "run"))
    html = (tmp_path / "run" / "report.html").read_text()
    assert "game gmmn: generator mlp" in html and "The discriminator" not in html
    run("diagnose", str(tmp_path / "run"))
    out = json.loads(run("eval", str(tmp_path / "run")).stdout)
    assert "d_gap_to_optimal" not in json.dumps(out)


# -- MMD-GAN: a critic with a feature output ------------------------------------------------------------

@pytest.mark.parametrize("overrides", [(), ("train.update=simultaneous",),
                                       ("game.regularizers=[{name: gradient_penalty, weight: 1.0}]", "train.n_critic=2")])
def test_mmd_gan_resumes_bit_identical(tmp_path, overrides, one_thread):
    full = interrupted_equals_uninterrupted(tmp_path, cfg_of(MMD_GAN, *overrides))
    critic = {k: v for k, v in full.items() if k.startswith("discriminator.")}
    assert critic["discriminator.head.weight"].shape == (8, 32)  # the feature output
    if not overrides or "simultaneous" in overrides[0]:  # weight clipping after every critic step
        assert max(v.abs().max().item() for v in critic.values()) <= 0.05 + 1e-7
    records = read_metrics(tmp_path / "full" / "metrics.jsonl")
    for r in records:  # the critic's cost is -MMD^2 (its penalty logged apart, as in the GAN)
        assert r["d_cost"] == pytest.approx(-r["mmd2"], abs=1e-6)
        assert (r["penalty"] > 0) == bool(overrides[1:])


def test_mmd_gan_penalty_is_the_witness_gradient_penalty(one_thread):
    """With gradient_penalty the critic's penalty is computed on the MMD witness f(x) =
    mean_j k(h(x), h(x_j)) - mean_j k(h(x), h(G(z_j))): it is zero exactly when f is flat, so with a
    critic that ignores its input (all weights 0 but a bias) the penalty is weight * E (0 - 1)^2."""
    from ganforge.train.trainer import Trainer

    cfg = cfg_of(MMD_GAN, "game.regularizers=[{name: gradient_penalty, weight: 2.5}]")
    trainer = Trainer(cfg)
    s = trainer.setup()
    with torch.no_grad():
        for p in s.discriminator.parameters():
            p.zero_()
    sums = torch.zeros(len(trainer.experiment.game.scalars))
    trainer.play.sums = sums
    trainer.experiment.game.costs(trainer.play, ("discriminator",))
    assert sums[2].item() == pytest.approx(2.5, abs=1e-5)  # penalty (the norm carries a 1e-12 floor)
    assert sums[3].item() == pytest.approx(0.0, abs=1e-6)  # every feature equal: MMD^2_u = 0


# -- a game with three players, through the public API ---------------------------------------------

class TwoGenerators(Game):
    """A toy mixture game: two generators, each making half of the fakes, against one discriminator
    (the non-saturating costs of ``game.cost``)."""

    players = ("discriminator", "generator", "painter")
    player_kinds = {"generator": "generator", "painter": "generator", "discriminator": "discriminator"}
    short_names = {"generator": "g", "painter": "p", "discriminator": "d"}
    scalars = ("d_cost", "g_cost", "p_cost")
    scalar_players = ("discriminator", "generator", "painter")
    guarded = scalars

    def _fakes(self, play: Play, n: int) -> tuple[Tensor, Tensor]:
        z = play.latent()
        return play.calls["generator"](z[: n // 2]), play.calls["painter"](z[n // 2 :])

    def costs(self, play: Play, players: Sequence[str], keep: bool = False) -> dict[str, Tensor]:
        real, _ = play.real()
        g, p = self._fakes(play, real.shape[0])
        D, cost = play.calls["discriminator"], self.parts.cost
        out: dict[str, Tensor] = {}
        if "discriminator" in players:
            out["discriminator"] = cost.discriminator_cost(D(real), D(torch.cat([g, p]).detach()))
            play.sums[0] += out["discriminator"].detach()
        if "generator" in players:
            out["generator"] = cost.generator_cost(D(g))
            play.sums[1] += out["generator"].detach()
        if "painter" in players:
            out["painter"] = cost.generator_cost(D(p))
            play.sums[2] += out["painter"].detach()
        return out


THREE = {
    "name": "three",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [16]}, "discriminator": {"name": "mlp", "widths": [16]},
              "painter": {"name": "mlp", "widths": [24]}},
    "game": {"name": "test_two_generators", "prior": {"name": "gaussian", "latent_dim": 4}},
    "optim": {"painter": {"lr": 5e-4}},
    "train": {"steps": 60, "batch_size": 32, "log_every": 10, "checkpoint_every": 20, "progress": False,
              "threads": 1, "seed": 3},
}


@pytest.fixture
def three_player_game():
    GAMES.register("test_two_generators")(TwoGenerators)
    yield
    GAMES._entries.pop("test_two_generators")  # leave the registry as the package has it


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_a_registered_three_player_game_trains_and_resumes_bit_identical(tmp_path, update, three_player_game,
                                                                         one_thread):
    cfg = cfg_of(THREE, f"train.update={update}")
    full = interrupted_equals_uninterrupted(tmp_path, cfg)
    assert full["painter.net.0.weight"].shape == (24, 4)  # built from model.painter
    state = load_checkpoint(list_checkpoints(tmp_path / "full" / "checkpoints")[-1][1])
    assert {"generator", "painter", "discriminator"} <= set(state)
    records = read_metrics(tmp_path / "full" / "metrics.jsonl")
    assert records[-1]["lr_p"] == pytest.approx(5e-4) and records[-1]["lr_g"] == pytest.approx(2e-4)
    assert {"d_cost", "g_cost", "p_cost"} <= set(records[-1])
    # every player moved from its initialization
    from ganforge.components import build_experiment

    initial = build_experiment(cfg).players
    for name, module in initial.items():
        for k, v in module.state_dict().items():
            assert not torch.equal(v, full[f"{name}.{k}"]), f"{name}.{k} never moved"


# -- the gmmn-mnist recipe -------------------------------------------------------------------------

def test_gmmn_mnist_recipe_loads_asks_for_data_and_builds_one_player():
    from ganforge.components import build_experiment, load_config
    from ganforge.data.images import ImageDataset, ImageOptions
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.path: required by dataset 'mnist'"):
        load_config("gmmn-mnist")
    cfg = load_config("gmmn-mnist", ["data.path=/nowhere/mnist"])
    assert cfg.name == "gmmn-mnist" and cfg.game.name == "gmmn" and cfg.game.cost.name == "mmd"
    stub = ImageDataset(torch.zeros(4, 1, 28, 28), torch.arange(4), 10, ImageOptions(), "stub")
    exp = build_experiment(cfg, dataset=stub)
    assert set(exp.players) == {"generator"} and exp.discriminator is None
    with torch.no_grad():
        x = exp.generator.eval()(exp.prior.sample(2, torch.Generator().manual_seed(0)))
    assert x.shape == (2, 1, 28, 28) and x.abs().max() <= 1.0
