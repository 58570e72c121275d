"""TensorBoard events beside metrics.jsonl: read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganforge.config import config_from_dict
from ganforge.run import train
from ganforge.train.callbacks import Callback, read_metrics
from ganforge.train.tensorboard import SCALAR_GROUPS, scalar_tag, scatter_image

CFG = {
    "name": "tb",
    "data": {"name": "ring", "n_modes": 8, "radius": 2.0, "std": 0.05},
    "model": {"generator": {"name": "mlp", "widths": [32]}, "discriminator": {"name": "mlp", "widths": [32]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}},
    "train": {"steps": 60, "batch_size": 64, "log_every": 10, "checkpoint_every": 20, "threads": 1,
              "progress": False, "seed": 3},
}


class _Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, trainer, state):
        if state.step == self.at:
            raise _Crash


def read_events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "events"), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def assert_scalars_equal_metrics(run_dir) -> None:
    acc = read_events(run_dir)
    records = read_metrics(run_dir / "metrics.jsonl")
    assert records
    for name in records[0]:
        if name == "step":
            continue
        events = acc.Scalars(scalar_tag(name))
        assert [e.step for e in events] == [r["step"] for r in records], name  # each step once, in order
        # TensorBoard stores float32: equal to the logged float64 up to float32 rounding
        np.testing.assert_allclose([e.value for e in events], [float(r[name]) for r in records],
                                   rtol=1e-6, atol=1e-30, err_msg=name)


def test_scalars_histograms_and_samples_match_the_run(tmp_path):
    train(config_from_dict(CFG), tmp_path)
    assert list((tmp_path / "events").glob("events.out.tfevents.*"))
    assert_scalars_equal_metrics(tmp_path)
    acc = read_events(tmp_path)
    tags = acc.Tags()
    assert "costs/d_cost" in tags["scalars"] and "discriminator/d_fake" in tags["scalars"]
    # D's outputs at every snapshot (every train.steps // 10 = 6 steps, reported at the next log step)
    for tag in ("discriminator/D(x)", "discriminator/D(G(z))"):
        hist = acc.Histograms(tag)
        assert [h.step for h in hist] == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54, 60]
        v = hist[-1].histogram_value
        assert v.num == 512 and 0.0 <= v.min <= v.max <= 1.0  # probabilities of the NS cost
    images = acc.Images("samples/generated")
    assert len(images) == 11 and (images[0].width, images[0].height) == (128, 128)


def test_resume_purges_the_steps_written_after_the_checkpoint(tmp_path):
    cfg = config_from_dict(CFG)
    with pytest.raises(_Crash):
        train(cfg, tmp_path, callbacks=[CrashAt(35)])  # logged 10..30; checkpoint at 20
    train(cfg, tmp_path)  # resumes from 20: steps 30.. are written again
    assert len(list((tmp_path / "events").glob("events.out.tfevents.*"))) == 2
    assert_scalars_equal_metrics(tmp_path)


def test_tags_and_scatter_image():
    assert scalar_tag("d_cost") == "costs/d_cost" and scalar_tag("grad_norm_g") == "gradients/grad_norm_g"
    assert scalar_tag("something_new") == "train/something_new"
    assert set(SCALAR_GROUPS) >= {"d_cost", "g_cost", "d_real", "d_fake", "value", "grad_norm_d", "grad_norm_g"}
    img = scatter_image(np.array([[1.0, 1.0]] * 10 + [[-1.0, -1.0]]), size=8)
    assert img.shape == (8, 8) and img.dtype == np.uint8
    # range +-1.2 in 8 bins: (1, 1) falls in the top-right pixel, (-1, -1) in the bottom-left one
    assert img[0, 7] == 0 and 0 < img[7, 0] < 255 and img[7, 7] == 255 and img[0, 0] == 255
