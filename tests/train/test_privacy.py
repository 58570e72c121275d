"""DP-SGD on the discriminator (train/privacy.py): the privatized gradient is the clipped per-example
sum plus the Gaussian mechanism's noise, batches are Poisson-sampled, the two accountants agree, the run
stops at the target epsilon, and what DP-SGD cannot take is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ganforge.components import load_config
from ganforge.errors import ConfigError
from ganforge.run import train
from ganforge.tabular.models import TableDiscriminator
from ganforge.train.privacy import epsilon_dp_accounting, epsilon_opacus
from ganforge.train.trainer import Trainer


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"group": rng.choice(["a", "b"], n), "x": rng.normal(0, 1, n).round(3)})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path


def dp_config(csv, *extra: str):
    return load_config("tabular-dp", [f"data.path={csv}", "train.steps=6", "train.batch_size=40",
                                      "train.progress=false", "model.generator.widths=[16]",
                                      "model.discriminator.widths=[16]", "model.discriminator.dropout=0.0",
                                      "game.prior.latent_dim=4", *extra])


@pytest.mark.parametrize("steps,q,sigma", [(100, 0.01, 1.0), (2000, 0.015, 0.9), (500, 0.1, 2.0)])
def test_the_two_accountants_agree(steps, q, sigma):
    a, b = epsilon_opacus(sigma, q, steps, 1e-5), epsilon_dp_accounting(sigma, q, steps, 1e-5)
    assert a > 0 and abs(a - b) < 0.05, (a, b)


def test_privatized_gradient_is_the_clipped_per_example_sum_plus_noise(csv, one_thread):
    sigma, clip = 0.5, 0.01  # a clip small enough that every example's gradient is clipped
    trainer = Trainer(dp_config(csv, f"train.privacy.noise_multiplier={sigma}", f"train.privacy.max_grad_norm={clip}"))
    s = trainer.setup()
    play, game = trainer.play, trainer.experiment.game
    D = s.players["discriminator"]
    opt = s.optimizers["discriminator"]
    B = trainer.cfg.train.batch_size
    seen = {}
    judge = play.calls["discriminator_pass"]

    def spy(real, fake, y):
        seen.update(real=real.detach(), fake=fake.detach())
        return judge(real, fake, y)

    play.calls["discriminator_pass"] = spy
    play.sums = torch.zeros(len(game.scalars))
    loss = game.costs(play, ["discriminator"])["discriminator"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    # per-example gradients of J(D) = mean softplus(-D(real)) + mean softplus(D(fake)), one example at a
    # time, on a copy of D without Opacus's hooks
    plain = TableDiscriminator(D.in_shape, 0, widths=[16], pack=1, dropout=0.0)
    plain.load_state_dict(D.state_dict())
    m = seen["real"].shape[0]

    def each(x, sign, scale):
        rows = []
        for xi in x:
            out = torch.nn.functional.softplus(sign * plain(xi[None])).sum() / scale
            rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, list(plain.parameters()))]))
        return torch.stack(rows)

    want_each = torch.cat([each(seen["real"], -1.0, m), each(seen["fake"], 1.0, B)])
    got_each = torch.cat([p.grad_sample.reshape(m + B, -1) for p in D.parameters()], 1)
    assert torch.allclose(got_each, want_each, atol=1e-7, rtol=1e-4)  # Opacus's hooks: real and fake rows
    norms = want_each.norm(dim=1)
    assert (norms > clip / B).all()
    want = (want_each * (clip / B / norms)[:, None]).sum(0)
    opt.pre_step()
    noise = torch.cat([p.grad.reshape(-1) for p in D.parameters()]) - want
    # the Gaussian mechanism: N(0, (sigma clip / B)^2) per coordinate
    assert noise.std().item() == pytest.approx(sigma * clip / B, rel=0.2)
    assert abs(noise.mean().item()) < 5 * sigma * clip / B / noise.numel() ** 0.5


def test_batches_are_poisson_samples_of_the_rows(csv, one_thread):
    trainer = Trainer(dp_config(csv))
    trainer.setup()
    loader = trainer.play.loader
    assert loader.poisson_rate == pytest.approx(40 / 400)
    sizes = [loader.next()[0].shape[0] for _ in range(400)]
    # Binomial(400, 0.1): mean 40, variance 36
    assert abs(np.mean(sizes) - 40) < 4 * 6 / 20 and 20 < np.var(sizes) < 60


def test_the_run_stops_at_the_target_epsilon_and_records_it(csv, tmp_path, one_thread):
    cfg = dp_config(csv, "train.steps=400", "train.privacy.noise_multiplier=0.7", "train.privacy.epsilon=2.0",
                    "train.log_every=10", "train.checkpoint_every=1000")
    s = train(cfg, tmp_path / "run", progress=False)
    rec = json.loads((tmp_path / "run" / "privacy.json").read_text())
    assert s.step < 400 and rec["discriminator_steps"] == s.step and rec["clean_stop"]
    assert rec["epsilon"] <= 2.0
    more = max(epsilon_opacus(0.7, 0.1, s.step + 1, 1e-5), epsilon_dp_accounting(0.7, 0.1, s.step + 1, 1e-5))
    assert more > 2.0  # one more step would have passed the target
    assert abs(rec["accountants"]["opacus_rdp"] - rec["accountants"]["dp_accounting_rdp"]) < 0.05
    # the report and the model card state it
    from ganforge.report.html import write_report

    write_report(tmp_path / "run")
    card = (tmp_path / "run" / "model_card.md").read_text()
    assert f"epsilon = {rec['epsilon']:.4g} at delta = 1e-05" in card
    assert f"epsilon {rec['epsilon']:.4g}" in (tmp_path / "run" / "report.html").read_text()
    # resuming spends nothing more
    s2 = train(cfg, tmp_path / "run", progress=False)
    assert s2.step == s.step and json.loads((tmp_path / "run" / "privacy.json").read_text())["discriminator_steps"] == s.step


@pytest.mark.parametrize("override,where", [
    ("model.discriminator.pack=2", "model.discriminator"),
    ("game.regularizers=[{name: r1}]", "game.regularizers"),
    ("data.conditional=true", "data.conditional"),
    ("train.update=simultaneous", "train.privacy"),
    ("game.cost.name=relativistic_pairing", "game.cost"),
])
def test_what_dp_sgd_cannot_take_is_refused(csv, override, where, one_thread):
    with pytest.raises(ConfigError) as info:
        Trainer(dp_config(csv, override)).setup()
    assert info.value.path == where
