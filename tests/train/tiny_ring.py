"""The small ring game the trainer tests share: MLP players 32 wide, a 4-D Gaussian prior, 1 thread."""

from __future__ import annotations

import copy
from typing import Any

TINY_RING: dict[str, Any] = {
    "name": "tiny-ring",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [32, 32]},
              "discriminator": {"name": "mlp", "widths": [32, 32]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 4}},
    "train": {"steps": 60, "batch_size": 32, "log_every": 10, "checkpoint_every": 20, "progress": False,
              "threads": 1, "seed": 3},
}


def tiny_ring(**train: Any) -> dict[str, Any]:
    """A fresh copy of the config, with ``train`` fields replaced."""
    cfg = copy.deepcopy(TINY_RING)
    cfg["train"].update(train)
    return cfg
