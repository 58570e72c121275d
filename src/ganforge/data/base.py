"""What every data source is: tensors of real examples, never file handles.

Two kinds of source share one interface:

- a *distribution* (toy data) draws fresh examples with ``sample(n, generator)``;
- a *finite dataset* (images, arrays) holds ``examples`` (and optional ``labels``) in memory.

``data.loader.BatchLoader`` turns either into an infinite, seeded, resumable stream of batches.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganforge.errors import DataError
from ganforge.io import available_memory_bytes

MEMORY_FRACTION = 0.5  # data held in memory may use at most this share of the available memory
GIB = 1 << 30


def memory_problem(need: int, what: str, avail: int | None = None) -> str | None:
    """None when ``need`` bytes fit in ``MEMORY_FRACTION`` of the available memory (``avail``, by
    default measured now), else the end of an error message: ``"<what> need X GiB, more than 50%
    of the Y GiB available"``."""
    avail = available_memory_bytes() if avail is None else avail
    if need <= MEMORY_FRACTION * avail:
        return None
    return (f"{what} need {need / GIB:,.1f} GiB, more than {MEMORY_FRACTION:.0%} of the "
            f"{avail / GIB:,.1f} GiB available")


def check_memory(need: int, where: str, what: str, hint: str, avail: int | None = None) -> None:
    """Raise DataError ``"<where>: <what> need X GiB, more than 50% of the Y GiB available; <hint>"``
    when ``need`` bytes do not fit, before anything is allocated."""
    problem = memory_problem(need, what, avail)
    if problem is not None:
        raise DataError(f"{where}: {problem}; {hint}")


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
