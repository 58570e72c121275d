"""Device choice, and training on a GPU where one is present.

The device tests run everywhere (CUDA's presence is simulated); the GPU tests skip cleanly without
CUDA, so the suite never needs a GPU but exercises one when the machine has it.
"""

from __future__ import annotations

import pytest
import torch
from tiny_ring import tiny_ring

import ganforge
from ganforge.errors import ConfigError
from ganforge.run import load_run
from ganforge.train.callbacks import Callback
from ganforge.train.trainer import Trainer, resolve_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

RING = tiny_ring(steps=1, batch_size=64, log_every=1, ema_decay=0.0)


def test_auto_picks_cuda_when_present_and_cpu_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")  # overridable
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_asking_for_cuda_without_it_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device is available") as info:
        resolve_device("cuda")
    assert "train.device" in str(info.value)
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("quantum")


class Scalars(Callback):
    def __init__(self):
        self.logged: list[dict[str, float]] = []

    def on_log(self, trainer, state, result):
        self.logged.append(result.scalars)


def first_step_scalars(device: str, *overrides: str) -> dict[str, float]:
    rec = Scalars()
    Trainer(ganforge.config_from_dict(RING, [f"train.device={device}", *overrides]), None, callbacks=[rec]).fit()
    return rec.logged[0]


@needs_cuda
def test_first_step_on_cuda_matches_cpu():
    """Same weights and batch (drawn on the CPU, then moved): the costs and both players' gradient
    norms of the first step agree to float32 rounding."""
    cpu, gpu = first_step_scalars("cpu"), first_step_scalars("cuda")
    for name in ("d_cost", "g_cost", "grad_norm_d", "grad_norm_g", "d_real", "d_fake"):
        assert gpu[name] == pytest.approx(cpu[name], rel=1e-4), name


def bf16_run_moved_to_cpu(tmp_path, device: str) -> None:
    """Train a small DCGAN on ``device`` in bf16 + channels-last, then open it and continue it on the CPU."""
    from ganforge.run import train

    cfg = ganforge.config_from_dict({
        "name": "tiny-dcgan", "data": {"name": "digits"},
        "model": {"generator": {"name": "dcgan", "ngf": 8}, "discriminator": {"name": "dcgan", "ndf": 8}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 8}},
        "train": {"steps": 20, "batch_size": 16, "log_every": 10, "checkpoint_every": 10, "progress": False,
                  "threads": 1, "device": device, "precision": "bf16", "channels_last": True},
    })
    state = train(cfg, tmp_path / "run")
    params = list(state.generator.parameters()) + list(state.discriminator.parameters())
    assert all(p.device.type == torch.device(device).type for p in params)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in params)  # fp32 master weights
    run = load_run(tmp_path / "run", device="cpu")  # the checkpoint opens on a CPU-only machine
    x = run.generator(torch.randn(4, 8))
    assert x.device.type == "cpu" and x.shape == (4, 1, 8, 8) and torch.isfinite(x).all()
    more = ganforge.config_from_dict(cfg.to_dict(), ["train.device=cpu", "train.steps=30"])
    rec = Scalars()
    resumed = train(more, tmp_path / "run", callbacks=[rec])  # continues from step 20, on the CPU
    assert resumed.step == 30 and [r["steps_per_sec"] > 0 for r in rec.logged] == [True]
    assert next(resumed.generator.parameters()).device.type == "cpu"


def test_bf16_run_opens_and_continues_on_cpu(tmp_path):
    bf16_run_moved_to_cpu(tmp_path, "cpu")


@needs_cuda
def test_trains_on_cuda_in_bf16_with_fp32_master_weights_and_continues_on_cpu(tmp_path):
    bf16_run_moved_to_cpu(tmp_path, "cuda")


def test_a_run_resumes_with_another_device_or_thread_count(tmp_path, one_thread):  # threads restored after
    """Moving a run (to a CPU from a preempted GPU job, to another thread count) continues it from
    its checkpoint instead of refusing it as a different config."""
    from ganforge.run import train

    cfg = ganforge.config_from_dict(RING, ["train.steps=20", "train.checkpoint_every=10", "train.threads=1",
                                           "train.device=auto"])
    train(cfg, tmp_path / "run")
    moved = ganforge.config_from_dict(RING, ["train.steps=30", "train.checkpoint_every=10", "train.threads=2",
                                             "train.device=cpu"])
    rec = Scalars()
    state = train(moved, tmp_path / "run", callbacks=[rec])
    assert state.step == 30 and len(rec.logged) == 10  # steps 21-30 only: it resumed at step 20
    assert "device: cpu" in (tmp_path / "run" / "config.yaml").read_text()


def test_a_checkpoint_hashed_by_the_earlier_rule_still_loads_and_resumes(tmp_path, monkeypatch):
    """Runs written before device and threads were freed hashed them as set (here threads=1): they
    still open, and resume with their own settings."""
    from ganforge import config as config_module
    from ganforge.run import train

    cfg = ganforge.config_from_dict(RING, ["train.steps=20", "train.checkpoint_every=10"])
    with monkeypatch.context() as m:
        m.setattr(config_module, "EXECUTION_FIELDS", {})  # the earlier rule
        train(cfg, tmp_path / "run")
    assert cfg.trajectory_hash() != cfg.trajectory_hash(execution_free=False)  # the rules do differ here
    assert load_run(tmp_path / "run").step == 20
    more = ganforge.config_from_dict(RING, ["train.steps=30", "train.checkpoint_every=10"])
    assert train(more, tmp_path / "run").step == 30
