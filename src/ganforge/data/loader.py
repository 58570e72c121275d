"""Infinite, seeded, resumable batches of real examples."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganforge.data.base import Dataset


class BatchLoader:
    """Yields ``(x (b, *shape), y (b,) or None)`` forever, from a distribution or a finite dataset.

    ``batch_size`` is the *global* batch. Every process of a distributed run walks the same global
    stream (same generator, same state) and keeps its slice ``[rank::world_size]`` of each global
    batch, so that the union over ranks is exactly the batch a single process would see: a run on N
    processes follows the 1-process trajectory, and a checkpoint resumes on any number of processes.

    A finite dataset is visited in shuffled epochs (the last partial batch wraps into the next
    epoch, so every batch has exactly ``batch_size`` examples). All randomness (permutations,
    distribution draws, horizontal flips) comes from one torch.Generator seeded by ``seed``, in the
    order it is used.

    ``state_dict`` captures the position exactly: for a finite dataset, the generator's state before
    this epoch's permutation (to rebuild the permutation), the position in it, and the generator's
    state *now* (``generator_now``: the draws made since the permutation, e.g. the flips, are
    included); a restored loader continues with exactly the batches the original would have given.
    A state dict without ``generator_now`` (written before issue 11) is restored as that code did:
    the stream continues from just after the permutation, which is exact without ``hflip``.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, device: torch.device | str = "cpu",
                 rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"the global batch size {batch_size} must be divisible by the {world_size} processes")
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + 17)
        self._epoch_state: Tensor | None = None  # generator state before this epoch's permutation
        self._perm: Tensor | None = None
        self._pos = 0
        # Poisson sampling (differential privacy): each example joins a batch independently with this
        # probability, so batches vary in size around batch_size; None: shuffled epochs
        self.poisson_rate: float | None = None

    def _new_epoch(self) -> None:
        self._epoch_state = self.generator.get_state()
        self._perm = torch.randperm(len(self.dataset), generator=self.generator)
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
        r, w = self.rank, self.world_size
        if self.poisson_rate is not None:
            n = len(self.dataset)
            idx = (torch.rand(n, generator=self.generator) < self.poisson_rate).nonzero().squeeze(1)
            x = self.dataset.examples[idx]  # type: ignore[index]
            y = None if self.dataset.labels is None else self.dataset.labels[idx]
        elif self.dataset.is_finite and not self.dataset.draws_own_batches:
            idx = self._take(self.batch_size)[r::w]
            x = self.dataset.examples[idx]  # type: ignore[index]
            y = None if self.dataset.labels is None else self.dataset.labels[idx]
        else:
            x, y = self.dataset.sample(self.batch_size, self.generator)
            x, y = x[r::w], (None if y is None else y[r::w])
        if getattr(self.dataset, "hflip", False):  # random horizontal flips, drawn for the global batch
            drawn = x.shape[0] if self.poisson_rate is not None else self.batch_size
            flip = (torch.rand(drawn, generator=self.generator) < 0.5)[r::w]
            x = torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
        x = x.to(self.device, non_blocking=True)
        return x, (None if y is None else y.to(self.device, non_blocking=True))

    def state_dict(self) -> dict[str, Any]:
        if self.dataset.is_finite and self._epoch_state is not None and self.poisson_rate is None:
            return {"generator": self._epoch_state.clone(), "pos": self._pos, "started": True,
                    "generator_now": self.generator.get_state()}
        return {"generator": self.generator.get_state(), "pos": 0, "started": False}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self._perm, self._epoch_state, self._pos = None, None, 0
        if state.get("started"):
            self._new_epoch()  # the same permutation, from the state saved before it
            self._pos = int(state["pos"])
            if state.get("generator_now") is not None:  # absent in loader states written before issue 11
                self.generator.set_state(state["generator_now"])
