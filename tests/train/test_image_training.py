"""Tiny end-to-end image GANs on scikit-learn's 8x8 digits: unconditional DCGAN, projection cGAN,
AC-GAN and InfoGAN each train a few steps, log finite numbers, and reload as a generator whose
images have the data's shape and lie in [-1, 1]."""

from __future__ import annotations

import math

import pytest
import torch

import ganforge
from ganforge.train.callbacks import read_metrics

STEPS = 30


def base_config(**sections) -> dict:
    """A DCGAN on 8x8 digits, small and quick; ``sections`` replace whole top-level sections."""
    cfg = {
        "name": "digits-test",
        "data": {"name": "digits", "resolution": 8},
        "model": {"generator": {"name": "dcgan", "ngf": 16}, "discriminator": {"name": "dcgan", "ndf": 16}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 16}},
        "optim": {"generator": {"lr": 1e-3}, "discriminator": {"lr": 1e-3}},
        "train": {"steps": STEPS, "batch_size": 16, "threads": 1, "device": "cpu", "log_every": 10,
                  "checkpoint_every": STEPS, "progress": False, "ema_decay": 0.9, "seed": 3},
    }
    return {**cfg, **sections}


VARIANTS = {
    "unconditional": base_config(),
    "projection": base_config(
        data={"name": "digits", "resolution": 8, "class_conditional": True},
        model={"generator": {"name": "dcgan", "ngf": 16, "conditioning": "cbn"},
               "discriminator": {"name": "dcgan", "ndf": 16, "conditioning": "projection"}}),
    "acgan": base_config(
        data={"name": "digits", "resolution": 8, "class_conditional": True},
        model={"generator": {"name": "dcgan", "ngf": 16},
               "discriminator": {"name": "dcgan", "ndf": 16, "conditioning": "acgan"}},
        game={"prior": {"name": "gaussian", "latent_dim": 16}, "auxiliary": [{"name": "ac_gan"}]}),
    "infogan": base_config(
        model={"generator": {"name": "dcgan", "ngf": 16},
               "discriminator": {"name": "dcgan", "ndf": 16, "info_categorical": [10], "info_continuous": 2}},
        game={"prior": {"name": "infogan", "latent_dim": 20, "categorical": [10], "continuous": 2},
              "auxiliary": [{"name": "infogan"}]}),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_tiny_image_gan_trains_and_reloads(variant, tmp_path):
    cfg = ganforge.config_from_dict(VARIANTS[variant])
    state = ganforge.train(cfg, tmp_path, progress=False)
    assert state.step == STEPS
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [10, 20, 30]
    for r in records:
        for key in ("d_cost", "g_cost", "penalty", "d_real", "d_fake"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (key, r)
    if variant in ("acgan", "infogan"):
        assert all(r["penalty"] == 0 and r["aux_d"] > 0 for r in records)  # the auxiliary terms, logged apart
        # the classifier / Q head learns: its cost starts near chance (ln 10 per cross-entropy) and drops
        assert records[-1]["aux_d"] < records[0]["aux_d"] - 0.02
    else:
        assert all(r["penalty"] == 0 and r["aux_d"] == 0 for r in records)

    G = ganforge.load_generator(tmp_path)
    x = G.sample(12, seed=0)
    assert x.shape == (12, 1, 8, 8)
    assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, G.sample(12, seed=0))
    if variant in ("projection", "acgan"):
        assert G.n_classes == 10
        x3 = G.sample(12, seed=0, y=3)
        assert x3.shape == (12, 1, 8, 8) and not torch.equal(x3, G.sample(12, seed=0, y=4))
