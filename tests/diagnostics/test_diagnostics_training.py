"""Diagnostics on real (short) trainings: planted failures are flagged, a healthy ring is not, and
the files written during training equal ``diagnose(run_dir)`` and survive a crash and resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.components import build_experiment
from ganforge.config import config_from_dict
from ganforge.diagnostics import diagnose, read_events
from ganforge.diagnostics.callback import DiagnosticsCallback
from ganforge.diagnostics.events import read_jsonl
from ganforge.io import write_text_atomic
from ganforge.run import train
from ganforge.train.callbacks import Callback, MetricsLog, SampleSnapshots, read_metrics
from ganforge.train.trainer import Trainer

RING8 = {"name": "ring", "n_modes": 8, "radius": 2.0, "std": 0.05}

# A far too strong D: minimax cost (G's gradient saturates), D 10x G's learning rate, 5 D steps per
# G step, D much wider than G.
STRONG_D = {
    "name": "strong-d",
    "data": RING8,
    "model": {"generator": {"name": "mlp", "widths": [32, 32]}, "discriminator": {"name": "mlp", "widths": [128, 128]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}, "cost": {"name": "minimax"}},
    "optim": {"generator": {"lr": 1e-4}, "discriminator": {"lr": 1e-3}},
    "train": {"steps": 100, "batch_size": 128, "n_critic": 5, "log_every": 10, "checkpoint_every": 30,
              "ema_decay": 0.0, "threads": 1, "progress": False, "seed": 0},
}

# A healthy ring8-like run: NS cost, equal players and learning rates; covers most modes in 800 steps.
HEALTHY = {
    "name": "ring8-short",
    "data": RING8,
    "model": {"generator": {"name": "mlp", "widths": [128, 128]},
              "discriminator": {"name": "mlp", "widths": [128, 128]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}, "cost": {"name": "non_saturating"}},
    "optim": {"generator": {"lr": 1e-3}, "discriminator": {"lr": 1e-3}},
    "train": {"steps": 800, "batch_size": 128, "log_every": 10, "checkpoint_every": 1000, "ema_decay": 0.0,
              "threads": 1, "progress": False, "seed": 0},
}


class _Crash(Exception):
    pass


class CrashAt(Callback):
    """Kills training right after step ``at`` (a simulated crash)."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, trainer, state):
        if state.step == self.at:
            raise _Crash(f"simulated crash at step {self.at}")


@pytest.fixture(scope="module")
def strong_runs(tmp_path_factory):
    """The strong-D run twice: uninterrupted, and crashed at step 75 then resumed (checkpoint at 60)."""
    cfg = config_from_dict(STRONG_D)
    whole = tmp_path_factory.mktemp("whole")
    train(cfg, whole)
    resumed = tmp_path_factory.mktemp("resumed")
    with pytest.raises(_Crash):
        train(cfg, resumed, callbacks=[CrashAt(75)])
    assert max(r["step"] for r in read_jsonl(resumed / "diagnostics.jsonl")) == 70
    train(cfg, resumed)
    return whole, resumed


def test_a_far_too_strong_discriminator_is_flagged_overpowering(strong_runs):
    whole, _ = strong_runs
    events = diagnose(whole)
    over = [e for e in events if e.kind == "overpowering"]
    assert len(over) == 1
    e = over[0]
    assert e.start_step <= 30 and e.end_step == 100 and e.ongoing
    assert e.evidence["d_fake"] < 0.01 and e.evidence["d_real"] > 0.99
    assert e.evidence["grad_g_drop"] >= 10
    assert "D overpowering G since step" in e.message and "non-saturating cost" in e.message
    # The events written during training are the ones recomputed from the files.
    assert read_events(whole) == events
    signals = read_jsonl(whole / "diagnostics.jsonl")
    assert [r["step"] for r in signals if r["source"] == "scalars"] == list(range(10, 101, 10))
    assert all("overpowering" in r["active"] for r in signals if r["source"] == "scalars" and r["step"] >= 40)


def test_crash_and_resume_leave_the_same_diagnostics(strong_runs):
    whole, resumed = strong_runs
    def game(run):  # the metrics without the wall-clock speed
        return [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in read_metrics(run / "metrics.jsonl")]

    assert game(resumed) == game(whole)
    for name in ("diagnostics.jsonl", "events.jsonl"):
        assert read_jsonl(resumed / name) == read_jsonl(whole / name), name
    assert read_events(resumed) == diagnose(resumed) == diagnose(whole)


def test_a_healthy_ring_run_raises_no_warning(tmp_path):
    train(config_from_dict(HEALTHY), tmp_path)
    assert diagnose(tmp_path) == []
    assert read_events(tmp_path) == []
    samples = [r for r in read_jsonl(tmp_path / "diagnostics.jsonl") if r["source"] == "samples"]
    assert [r["step"] for r in samples] == list(range(0, 801, 80))
    assert samples[-1]["modes_captured"] >= 4  # it does learn the ring: the silence is earned
    assert 0.7 < samples[-1]["diversity_ratio"] < 1.3


class TwoModes(nn.Module):
    """A generator forced onto 2 of the 8 ring modes: the sign of z_0 picks the mode."""

    def __init__(self, modes: torch.Tensor):
        super().__init__()
        self.register_buffer("modes", modes.clone())  # (2, 2)
        self.spread = nn.Parameter(torch.tensor(0.02))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # z: (N, 3) -> x: (N, 2)
        return self.modes[(z[:, 0] > 0).long()] + self.spread * z[:, 1:3]


def test_a_generator_on_two_of_eight_modes_is_flagged_collapsed(tmp_path):
    cfg = config_from_dict({**HEALTHY, "game": {"prior": {"name": "gaussian", "latent_dim": 3}},
                            "train": {**HEALTHY["train"], "steps": 60}})
    exp = build_experiment(cfg)
    exp.generator = TwoModes(exp.dataset.modes[[1, 5]])
    write_text_atomic(tmp_path / "config.yaml", cfg.to_yaml())
    said: list[str] = []
    callbacks = [MetricsLog(tmp_path), SampleSnapshots(tmp_path, every=10, n=1000),
                 DiagnosticsCallback(tmp_path, echo=said.append)]
    Trainer(cfg, tmp_path, callbacks, experiment=exp).fit()
    # told once, live, when confirmed (the second snapshot after the warm-up)
    assert len(said) == 1 and said[0].startswith("ganforge: warning: [mode_collapse] steps 10-20: Mode collapse")
    events = read_events(tmp_path)
    assert [e.kind for e in events] == ["mode_collapse"]
    e = events[0]
    assert e.evidence["modes_captured"] == 2 and e.evidence["n_modes"] == 8
    assert [i for i, c in enumerate(e.evidence["mode_counts"]) if c] == [1, 5]
    assert e.start_step == 10 and e.end_step == 60  # judged from the first snapshot after the warm-up
    assert "samples cover 2 of 8 modes" in e.message
    assert diagnose(tmp_path) == events
