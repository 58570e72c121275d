"""No host synchronisation inside a log window: the training step never reads a tensor's value on
the host (``.item()``, ``float(t)``, ``bool(t)``, data-dependent shapes), so a GPU never waits on
the CPU between log steps. Statistics are summed on the device and read once per window.

Every op is watched through a dispatch mode (which sees CPU and CUDA alike), so this runs anywhere.
"""

from __future__ import annotations

import collections

import pytest
import torch
from tiny_ring import tiny_ring
from torch.utils._python_dispatch import TorchDispatchMode

import ganforge
from ganforge.run import train
from ganforge.train.callbacks import Callback
from ganforge.train.trainer import Trainer

# the ops behind a host read of a value (.item(), float(), bool(), torch.equal) or a shape that
# depends on values; copies from a device to the CPU (.cpu(), .tolist(), .numpy() of device tensors)
# are caught separately, where a GPU is present
HOST_READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default,
              torch.ops.aten.masked_select.default, torch.ops.aten.unique_dim.default,
              torch.ops.aten._unique2.default, torch.ops.aten.equal.default, torch.ops.aten.is_nonzero.default}
COPIES = {torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default}


def is_host_read(func, args, out) -> bool:
    if func in HOST_READS:
        return True
    if func in COPIES:  # a device tensor copied into host memory
        src = args[1] if func is torch.ops.aten.copy_.default else args[0]
        dst = args[0] if func is torch.ops.aten.copy_.default else out
        return (isinstance(src, torch.Tensor) and isinstance(dst, torch.Tensor)
                and src.device.type != "cpu" and dst.device.type == "cpu")
    return False


BASE = tiny_ring(steps=40)


class StepCounter(Callback):
    def __init__(self):
        self.step = 0

    def on_step_end(self, trainer, state):
        self.step = state.step


class HostReads(TorchDispatchMode):
    """Counts host reads inside the training step, and between steps by the step last completed."""

    def __init__(self, counter: StepCounter):
        super().__init__()
        self.counter = counter
        self.in_step = False
        self.inside_step = 0
        self.between: collections.Counter[int] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if is_host_read(func, args, out):
            if self.in_step:
                self.inside_step += 1
            else:
                self.between[self.counter.step] += 1
        return out


ACGAN_DIGITS = ["data={name: digits, class_conditional: true}",
                "model.generator={name: dcgan, ngf: 8, conditioning: cbn}",
                "model.discriminator={name: dcgan, ndf: 8, conditioning: acgan, spectral_norm: true}",
                "game.auxiliary=[{name: ac_gan}]", "train.batch_size=16"]
INFOGAN_DIGITS = ["data={name: digits}", "model.generator={name: dcgan, ngf: 8}",
                  "model.discriminator={name: dcgan, ndf: 8, batch_norm: true, info_categorical: [10], "
                  "info_continuous: 2}",
                  "game.prior={name: infogan, latent_dim: 16, categorical: [10], continuous: 2}",
                  "game.auxiliary=[{name: infogan}]", "train.batch_size=16"]


@pytest.mark.parametrize("overrides", [
    [],
    ["optim.generator.schedule=cosine", "optim.discriminator.warmup_steps=5"],
    ["game.regularizers=[{name: r1}]"],
    ["game.cost.name=wasserstein", "game.regularizers=[{name: gradient_penalty}]", "train.n_critic=3"],
    ["model.discriminator.pack=2"],
    ["train.update=simultaneous"],
    ["train.precision=bf16"],
    ACGAN_DIGITS,
    INFOGAN_DIGITS,
], ids=["default", "cosine-warmup", "r1", "wgan-gp", "pack", "simultaneous", "bf16", "acgan", "infogan"])
def test_no_host_read_in_the_step_nor_between_log_steps(tmp_path, monkeypatch, overrides):
    counter = StepCounter()
    mode = HostReads(counter)
    step = Trainer.train_step

    def watched_step(self, *args, **kwargs):
        mode.in_step = True
        try:
            return step(self, *args, **kwargs)
        finally:
            mode.in_step = False

    monkeypatch.setattr(Trainer, "train_step", watched_step)
    cfg = ganforge.config_from_dict(BASE, overrides)
    with mode:  # the run directory's callbacks too: snapshots, diagnostics, events
        train(cfg, tmp_path / "run", callbacks=[counter])
    assert counter.step == 40
    assert mode.inside_step == 0, f"{mode.inside_step} host reads inside training steps"
    outside = {step: n for step, n in mode.between.items() if step % 10}
    assert outside == {}, f"host reads between steps inside log windows (step: count): {outside}"
    assert all(mode.between[s] > 0 for s in (10, 20, 30, 40))  # the window's one read is seen: the probe works
