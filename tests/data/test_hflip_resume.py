"""A run with ``hflip: true`` stopped at several steps and resumed ends bit-identical to the
uninterrupted run (issue 11, point 2): the loader's state includes the flip draws of the epoch."""

from __future__ import annotations

import pytest
import torch

import ganforge
from ganforge.train.callbacks import Callback
from ganforge.train.checkpoint import list_checkpoints

STEPS = 12


def config(limit: int | None) -> ganforge.Config:
    data = {"name": "digits", "resolution": 8, "hflip": True}
    if limit is not None:
        data["limit"] = limit  # 40 examples, batch 16: epochs end inside batches 3, 5, 8, 10
    return ganforge.config_from_dict({
        "name": "digits-hflip",
        "data": data,
        "model": {"generator": {"name": "dcgan", "ngf": 8}, "discriminator": {"name": "dcgan", "ndf": 8}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 8}},
        "train": {"steps": STEPS, "batch_size": 16, "threads": 1, "device": "cpu", "log_every": 4,
                  "checkpoint_every": 2, "progress": False, "ema_decay": 0.9, "seed": 5},
    })


class StopAt(Callback):
    """Simulates a crash after a given step (the run keeps only its earlier checkpoints)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def weights(state) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v.clone() for k, v in state.generator.state_dict().items()}
    out.update({f"D.{k}": v.clone() for k, v in state.discriminator.state_dict().items()})
    out.update({f"EMA.{k}": v.clone() for k, v in state.ema_generator.state_dict().items()})
    return out


@pytest.mark.parametrize("limit", [40, None])
def test_hflip_run_stopped_at_several_steps_resumes_bit_identical(limit, tmp_path, one_thread):
    full = weights(ganforge.train(config(limit), tmp_path / "full", progress=False))
    cut = tmp_path / "cut"
    for stop in (3, 6, 9):  # crashes in steps 3, 6, 9: resumes from checkpoints 2, 4 and 8
        with pytest.raises(KeyboardInterrupt):
            ganforge.train(config(limit), cut, callbacks=[StopAt(stop)], progress=False)
        assert list_checkpoints(cut / "checkpoints")[-1][0] == (stop - 1) - (stop - 1) % 2
    resumed = ganforge.train(config(limit), cut, progress=False)
    assert resumed.step == STEPS
    got = weights(resumed)
    assert got.keys() == full.keys()
    for k in full:
        assert torch.equal(got[k], full[k]), f"{k} differs after resume"
