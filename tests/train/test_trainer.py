"""The training loop: determinism, exact resume, n_critic, TTUR schedules, EMA, the divergence guard."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_ring import tiny_ring

import ganforge
from ganforge.errors import DivergenceError
from ganforge.train.callbacks import Callback, read_metrics
from ganforge.train.checkpoint import list_checkpoints, load_checkpoint
from ganforge.train.trainer import Trainer

BASE = tiny_ring()


def cfg_with(*overrides: str) -> ganforge.Config:
    return ganforge.config_from_dict(BASE, list(overrides))


def weights(state) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v.clone() for k, v in state.generator.state_dict().items()}
    out.update({f"D.{k}": v.clone() for k, v in state.discriminator.state_dict().items()})
    if state.ema_generator is not None:
        out.update({f"EMA.{k}": v.clone() for k, v in state.ema_generator.state_dict().items()})
    return out


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def assert_last_checkpoints_bitwise_equal(run_a, run_b, step: int) -> None:
    """Both runs' newest checkpoints are at ``step`` with bit-identical players and EMA generator."""
    a = load_checkpoint(list_checkpoints(run_a / "checkpoints")[-1][1])
    b = load_checkpoint(list_checkpoints(run_b / "checkpoints")[-1][1])
    assert a["step"] == b["step"] == step
    for part in ("generator", "discriminator", "ema_generator"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k}"


class StopAt(Callback):
    """Simulates a crash: raises after a given step."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def test_same_seed_same_run_and_other_seed_other_run(tmp_path):
    a = weights(ganforge.train(cfg_with(), tmp_path / "a"))
    b = weights(ganforge.train(cfg_with(), tmp_path / "b"))
    c = weights(ganforge.train(cfg_with("train.seed=4"), tmp_path / "c"))
    assert_bitwise_equal(a, b)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("overrides", [(), ("train.update=simultaneous",), ("model.discriminator.pack=4",
                                       "game.regularizers=[{name: r1, gamma: 1.0}]", "train.n_critic=2")])
def test_interrupted_and_resumed_run_ends_bit_identical(tmp_path, overrides):
    full = weights(ganforge.train(cfg_with(*overrides), tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        ganforge.train(cfg_with(*overrides), tmp_path / "cut", callbacks=[StopAt(47)])
    assert list_checkpoints(tmp_path / "cut" / "checkpoints")[-1][0] == 40
    resumed = ganforge.train(cfg_with(*overrides), tmp_path / "cut")
    assert resumed.step == 60
    assert_bitwise_equal(full, weights(resumed))
    # the metrics log reads as if the run had never stopped
    steps = [r["step"] for r in read_metrics(tmp_path / "cut" / "metrics.jsonl")]
    assert steps == [10, 20, 30, 40, 50, 60]


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    """A real kill -9 of the CLI process mid-run, twice, then the same command to the end."""
    cfg_file = tmp_path / "tiny.yaml"
    import yaml

    raw = {**BASE, "train": {**BASE["train"], "steps": 400, "checkpoint_every": 25}}
    cfg_file.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "ganforge", "train", str(cfg_file), "--out"]
    subprocess.run(cmd + [str(tmp_path / "full")], check=True, capture_output=True)
    env = dict(os.environ)
    for delay in (2.5, 3.2):
        p = subprocess.Popen(cmd + [str(tmp_path / "cut")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
    for _, path in list_checkpoints(tmp_path / "cut" / "checkpoints"):
        load_checkpoint(path)  # never unreadable
    subprocess.run(cmd + [str(tmp_path / "cut")], check=True, capture_output=True)
    assert_last_checkpoints_bitwise_equal(tmp_path / "full", tmp_path / "cut", 400)


def test_n_critic_discriminator_steps_per_generator_step(tmp_path):
    s = ganforge.train(cfg_with("train.n_critic=3", "train.steps=7"), None)
    d_steps = {int(v["step"]) for v in s.opt_d.state_dict()["state"].values()}
    g_steps = {int(v["step"]) for v in s.opt_g.state_dict()["state"].values()}
    assert d_steps == {21} and g_steps == {7}


def test_ttur_learning_rates_and_linear_schedule(tmp_path):
    ganforge.train(cfg_with("optim.generator.lr=1e-4", "optim.discriminator.lr=4e-4",
                            "optim.discriminator.schedule=linear"), tmp_path)
    recs = read_metrics(tmp_path / "metrics.jsonl")
    assert all(r["lr_g"] == pytest.approx(1e-4) for r in recs)
    # linear decay: lr_d at step s (set before the step's update) is 4e-4 * (1 - (s-1)/60)
    for r in recs:
        assert r["lr_d"] == pytest.approx(4e-4 * (1 - (r["step"] - 1) / 60))


def test_ema_generator_is_an_exponential_average(tmp_path):
    s = ganforge.train(cfg_with("train.ema_decay=0.9", "train.ema_rampup=0", "train.steps=1"), None)
    # one step from the initial weights w0, without the ramp-up: ema = w0 + (1 - 0.9) * (w1 - w0)
    init = ganforge.components.build_experiment(cfg_with()).generator
    for p0, p1, pe in zip(init.parameters(), s.generator.parameters(), s.ema_generator.parameters(), strict=True):
        torch.testing.assert_close(pe, p0 + 0.1 * (p1 - p0), rtol=0, atol=1e-6)


def test_logged_scalars_are_probabilities_for_probabilistic_costs(tmp_path):
    ganforge.train(cfg_with(), tmp_path)
    for r in read_metrics(tmp_path / "metrics.jsonl"):
        assert 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1
        assert r["value"] == pytest.approx(-r["d_cost"])
        assert r["grad_norm_d"] > 0 and r["grad_norm_g"] > 0


class InjectNaN(Callback):
    def __init__(self, step: int, always: bool = False):
        self.step, self.always, self.done = step, always, False

    def on_step_end(self, trainer, state):
        if (state.step == self.step and not self.done) or (self.always and state.step >= self.step):
            self.done = True
            with torch.no_grad():
                next(state.generator.parameters()).fill_(math.nan)


def test_nan_at_step_k_rolls_back_lowers_lr_and_finishes(tmp_path):
    s = ganforge.train(cfg_with(), tmp_path, callbacks=[InjectNaN(33)])
    assert s.step == 60
    assert all(torch.isfinite(p).all() for p in s.generator.parameters())
    (event,) = s.extra["guard_events"]
    assert event["detected_at"] == 40 and event["rolled_back_to"] == 20 and event["lr_scale"] == 0.5
    recs = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in recs if "event" in r] == [20]
    assert recs[-1]["lr_g"] == pytest.approx(2e-4 * 0.5)


def test_divergence_guard_gives_up_after_max_retries(tmp_path):
    with pytest.raises(DivergenceError, match="did not recover after 2 rollbacks"):
        ganforge.train(cfg_with("train.guard.max_retries=2"), tmp_path, callbacks=[InjectNaN(5, always=True)])


def test_guard_without_run_directory_rolls_back_in_memory():
    s = ganforge.train(cfg_with(), None, callbacks=[InjectNaN(25)])
    assert s.step == 60 and s.extra["guard_events"][0]["rolled_back_to"] == 20


def test_resume_refuses_a_different_config_and_changes_nothing(tmp_path):
    ganforge.train(cfg_with(), tmp_path)
    before = {p: p.read_bytes() for p in Path(tmp_path).rglob("*") if p.is_file()}
    from ganforge.run import RunDirError

    with pytest.raises(RunDirError, match="train.seed"):
        ganforge.train(cfg_with("train.seed=9"), tmp_path)
    after = {p: p.read_bytes() for p in Path(tmp_path).rglob("*") if p.is_file()}
    assert before == after


def test_more_steps_extends_a_finished_run(tmp_path):
    ganforge.train(cfg_with("train.steps=40"), tmp_path / "a")
    extended = weights(ganforge.train(cfg_with(), tmp_path / "a"))
    straight = weights(ganforge.train(cfg_with(), tmp_path / "b"))
    assert_bitwise_equal(extended, straight)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_writes_a_checkpoint_of_the_step_reached_then_resume_is_bit_identical(tmp_path, sig):
    """A scheduler's pre-emption notice (SIGTERM) or Ctrl-C loses nothing: the run stops at the end
    of its step with a checkpoint of that step, exits 128 + signal, and resumes to the same weights."""
    import yaml

    cfg_file = tmp_path / "tiny.yaml"
    raw = {**BASE, "train": {**BASE["train"], "steps": 3000, "checkpoint_every": 1000, "log_every": 100}}
    cfg_file.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "ganforge", "train", str(cfg_file), "--out"]
    subprocess.run(cmd + [str(tmp_path / "full")], check=True, capture_output=True)
    p = subprocess.Popen(cmd + [str(tmp_path / "cut")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.05)  # training has begun: at least two log lines
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err
    assert f"stopped by {signal.Signals(sig).name} at step" in err and "checkpoint written" in err
    stopped_at = int(err.split(" at step ")[1].split(";")[0])
    ckpts = list_checkpoints(tmp_path / "cut" / "checkpoints")
    assert ckpts[-1][0] == stopped_at and 200 <= stopped_at < 3000  # the step reached, not the last regular one
    subprocess.run(cmd + [str(tmp_path / "cut")], check=True, capture_output=True)
    assert_last_checkpoints_bitwise_equal(tmp_path / "full", tmp_path / "cut", 3000)


class SignalAt(Callback):
    """Sends a real signal to this process at the end of a given step."""

    def __init__(self, step: int, sig: int):
        self.step, self.sig = step, sig

    def on_step_end(self, trainer, state):
        if state.step == self.step:
            os.kill(os.getpid(), self.sig)


def test_signal_in_process_checkpoints_that_exact_step_and_restores_the_handlers(tmp_path):
    from ganforge.errors import TrainingStopped

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped, match="stopped by SIGTERM at step 33; checkpoint written"):
        ganforge.train(cfg_with(), tmp_path / "cut", callbacks=[SignalAt(33, signal.SIGTERM)])
    assert [k for k, _ in list_checkpoints(tmp_path / "cut" / "checkpoints")][-2:] == [20, 33]
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back
    resumed = ganforge.train(cfg_with(), tmp_path / "cut")
    full = ganforge.train(cfg_with(), tmp_path / "full")
    assert resumed.step == 60
    assert_bitwise_equal(weights(full), weights(resumed))


def test_without_a_run_directory_ctrl_c_keeps_its_usual_meaning():
    # nothing to save: SIGINT raises KeyboardInterrupt at once, as in any Python program. Python's
    # own handler is put in place first: a process started in the background (`cmd &`) inherits
    # SIGINT ignored, and Python then installs none
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            ganforge.train(cfg_with(), None, callbacks=[SignalAt(5, signal.SIGINT)])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # left as it was found
    finally:
        signal.signal(signal.SIGINT, previous)


class Unfreeze(Callback):
    """Unfreezes D's head bias after a step, and records every gradient that reaches it."""

    def __init__(self, step: int):
        self.step, self.arrivals, self.grads_at_step_end = step, [], []

    def on_step_end(self, trainer, state):
        bias = state.discriminator.head.bias
        if state.step == self.step:
            bias.requires_grad_(True)
            bias.register_hook(lambda g: self.arrivals.append((state.step, g.clone())))
        elif state.step > self.step:
            self.grads_at_step_end.append((state.step, bias.grad.clone()))


@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_a_parameter_unfrozen_mid_run_gets_one_fresh_gradient_per_step(update):
    """Trainable is read at every step: once unfrozen, D's parameter gets its D-cost gradient once a
    step (nothing from G's cost, nothing accumulated from earlier steps)."""
    from ganforge.components import build_experiment

    cfg = cfg_with(f"train.update={update}", "train.steps=8")
    exp = build_experiment(cfg)
    exp.discriminator.head.bias.requires_grad_(False)
    cb = Unfreeze(2)
    Trainer(cfg, None, callbacks=[cb], experiment=exp).fit()
    steps = [s for s, _ in cb.arrivals]
    assert steps == [2, 3, 4, 5, 6, 7]  # one arrival in each of steps 3..8 (recorded at the step before)
    for (s_in, g), (s_end, kept) in zip(cb.arrivals, cb.grads_at_step_end, strict=True):
        assert s_end == s_in + 1 and torch.equal(kept, g)  # the gradient left is that step's own, not a sum


ACGAN_DIGITS = ["data={name: digits, class_conditional: true}",
                "model.generator={name: dcgan, ngf: 8, conditioning: cbn}",
                "model.discriminator={name: dcgan, ndf: 8, conditioning: acgan}",
                "game.auxiliary=[{name: ac_gan}]", "train.batch_size=16"]
INFOGAN_DIGITS = ["data={name: digits}", "model.generator={name: dcgan, ngf: 8}",
                  "model.discriminator={name: dcgan, ndf: 8, info_categorical: [10], info_continuous: 2}",
                  "game.prior={name: infogan, latent_dim: 16, categorical: [10], continuous: 2}",
                  "game.auxiliary=[{name: infogan}]", "train.batch_size=16"]


@pytest.mark.parametrize("overrides", [ACGAN_DIGITS, INFOGAN_DIGITS], ids=["acgan", "infogan"])
def test_penalty_counts_only_regularizers_and_auxiliary_terms_are_logged_apart(tmp_path, overrides, one_thread):
    # fails on b6bd8ea: `penalty` also summed the AC-GAN / InfoGAN terms, and there was no aux_d / aux_g
    cfg = cfg_with(*overrides, "train.steps=20", "train.log_every=10")
    ganforge.train(cfg, tmp_path / "run")
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "d_cost" in r]
    assert [r["step"] for r in records] == [10, 20]
    for r in records:
        assert r["penalty"] == 0.0
        assert r["aux_d"] > 0.0 and r["aux_g"] > 0.0  # cross-entropy / mutual-information terms
    # with a regularizer, penalty is its value alone: R1 = gamma/2 E|grad D(x)|^2 >= 0, aux_d unchanged in kind
    ganforge.train(cfg_with(*overrides, "train.steps=10", "train.log_every=10", "game.regularizers=[{name: r1}]"),
                   tmp_path / "r1")
    (r,) = [r for r in read_metrics(tmp_path / "r1" / "metrics.jsonl") if "d_cost" in r]
    assert r["penalty"] > 0.0 and r["aux_d"] > 0.0
