"""Infinite, seeded, resumable batches of real examples."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganforge.data.base import Dataset


class BatchLoader:
    """Yields ``(x (B, *shape), y (B,) or None)`` forever, from a distribution or a finite dataset.

    A finite dataset is visited in shuffled epochs (the last partial batch wraps into the next
    epoch, so every batch has exactly B examples). All randomness comes from one torch.Generator
    seeded by ``seed``; ``state_dict`` captures the position exactly, for bit-exact resume.
    ``rank``/``world_size`` give each process of a distributed run its own disjoint shard.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, device: torch.device | str = "cpu",
                 rank: int = 0, world_size: int = 1):
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.rank, self.world_size = rank, world_size
        # A finite dataset is shuffled identically on every rank, then sharded; a distribution is
        # sampled with a different stream on each rank.
        stream = 0 if dataset.is_finite else rank
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + 17 + 7919 * stream)
        self._epoch_state: Tensor | None = None  # generator state before this epoch's permutation
        self._perm: Tensor | None = None
        self._pos = 0

    def _new_epoch(self) -> None:
        self._epoch_state = self.generator.get_state()
        perm = torch.randperm(len(self.dataset), generator=self.generator)
        self._perm = perm[self.rank :: self.world_size]
        self._pos = 0

    def _take(self, n: int) -> Tensor:
        parts = []
        while n > 0:
            if self._perm is None or self._pos >= len(self._perm):
                self._new_epoch()
            assert self._perm is not None
            chunk = self._perm[self._pos : self._pos + n]
            self._pos += len(chunk)
            n -= len(chunk)
            parts.append(chunk)
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def next(self) -> tuple[Tensor, Tensor | None]:
        if self.dataset.is_finite:
            idx = self._take(self.batch_size)
            x = self.dataset.examples[idx]  # type: ignore[index]
            y = None if self.dataset.labels is None else self.dataset.labels[idx]
        else:
            x, y = self.dataset.sample(self.batch_size, self.generator)
        if getattr(self.dataset, "hflip", False):  # random horizontal flips, from the loader's stream
            flip = torch.rand(x.shape[0], generator=self.generator) < 0.5
            x = torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
        x = x.to(self.device, non_blocking=True)
        return x, (None if y is None else y.to(self.device, non_blocking=True))

    def state_dict(self) -> dict[str, Any]:
        if self.dataset.is_finite and self._epoch_state is not None:
            return {"generator": self._epoch_state.clone(), "pos": self._pos, "started": True}
        return {"generator": self.generator.get_state(), "pos": 0, "started": False}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._perm, self._pos = None, 0
        if state.get("started"):
            self._new_epoch()
            self._pos = int(state["pos"])
