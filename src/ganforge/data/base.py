"""What every data source is: tensors of real examples, never file handles.

Two kinds of source share one interface:

- a *distribution* (toy data) draws fresh examples with ``sample(n, generator)``;
- a *finite dataset* (images, arrays) holds ``examples`` (and optional ``labels``) in memory.

``data.loader.BatchLoader`` turns either into an infinite, seeded, resumable stream of batches.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Dataset:
    """Base class of real-data sources.

    Attributes:
        shape: shape of one example, e.g. ``(2,)`` for 2-D toy data or ``(1, 28, 28)`` for MNIST.
        n_classes: number of class labels (0 when the data is unlabelled).
        value_range: the range examples are scaled to (images: (-1, 1)); None for toy data.
    """

    shape: tuple[int, ...] = ()
    n_classes: int = 0
    value_range: tuple[float, float] | None = None

    # -- finite datasets set these -------------------------------------------------------------
    examples: Tensor | None = None  # (N, *shape), float32
    labels: Tensor | None = None  # (N,), int64

    def __len__(self) -> int:
        return 0 if self.examples is None else int(self.examples.shape[0])

    @property
    def is_finite(self) -> bool:
        return self.examples is not None

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Draw ``n`` fresh examples (distributions only): ``x (n, *shape)``, ``y (n,)`` or None."""
        raise NotImplementedError(f"{type(self).__name__} is a finite dataset; use BatchLoader")
