"""What every data source is: tensors of real examples, never file handles.

Two kinds of source share one interface:

- a *distribution* (toy data) draws fresh examples with ``sample(n, generator)``;
- a *finite dataset* (images, arrays) holds ``examples`` (and optional ``labels``) in memory.

``data.loader.BatchLoader`` turns either into an infinite, seeded, resumable stream of batches.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

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
    hflip: bool = False  # random horizontal flips of training batches (applied by the loader)
    # a finite dataset that draws its own batches with ``sample(n, generator)`` instead of shuffled
    # epochs (a table's training-by-sampling)
    draws_own_batches: bool = False

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

    # -- what a run records about its data -------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"distribution"`` (draws fresh examples) or ``"finite"`` (holds ``examples``); image
        datasets say ``"images"``."""
        return "finite" if self.is_finite else "distribution"

    @property
    def registered_name(self) -> str | None:
        """The name this class is registered under in ``DATASETS`` (toy distributions), else None."""
        return getattr(type(self), "registered_name", None)

    def params(self) -> dict[str, Any]:
        """The constructor parameters that rebuild this dataset with ``DATASETS.build(name, params)``
        (distributions override it; the default: the instance's public attributes that are plain
        JSON values)."""
        return {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_") and _is_json(v)}

    def fingerprint(self) -> str:
        """SHA-256 (hex) of what the players see, and nothing of where it was read from:

        - a finite dataset: the examples tensor's bytes (after every preprocessing step that changes
          values: resolution, channels, scaling, subset, limit), the labels' bytes (or their
          absence), ``n_classes``, the shape, and whether batches are flipped (``hflip``);
        - a distribution: its registered name (else its class name) and ``params()``.

        The same data read from two paths gives the same fingerprint; one changed pixel, label or
        parameter gives another. Version ``ganforge-data-1``."""
        h = hashlib.sha256(b"ganforge-data-1\0")
        head = {"kind": self.kind, "shape": list(self.shape), "n_classes": int(self.n_classes),
                "value_range": None if self.value_range is None else [float(v) for v in self.value_range],
                "hflip": bool(self.hflip)}
        if self.is_finite:
            assert self.examples is not None
            for name, t in (("examples", self.examples), ("labels", self.labels)):
                if t is None:
                    h.update(f"{name}:none\0".encode())
                    continue
                t = t.detach().to("cpu").contiguous()
                h.update(f"{name}:{t.dtype}:{list(t.shape)}\0".encode())
                h.update(t.numpy().data if t.numel() else b"")
        else:
            head["name"] = self.registered_name or f"{type(self).__module__}.{type(self).__qualname__}"
            head["params"] = self.params()
        h.update(json.dumps(head, sort_keys=True, default=repr).encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """What a run needs to know of its data without the data (JSON-able): ``kind``, ``shape``,
        ``n_classes``, ``class_names`` (when the players are conditional and the names are known,
        else None), ``value_range`` (None for toy data), ``n_examples`` (None for a distribution),
        ``hflip``, ``fingerprint``; for a distribution also ``name`` and ``params`` (rebuild it with
        ``DATASETS.build(name, params)``), and ``mixture`` (``modes``, ``mode_stds``, ``weights``
        as lists) for a Gaussian mixture of at most ``DESCRIBE_MAX_MODES`` modes."""
        names = getattr(self, "class_names", None)
        out: dict[str, Any] = {
            "kind": self.kind,
            "shape": [int(d) for d in self.shape],
            "n_classes": int(self.n_classes),
            "class_names": [str(c) for c in names] if names and self.n_classes else None,
            "value_range": None if self.value_range is None else [float(v) for v in self.value_range],
            "n_examples": len(self) if self.is_finite else None,
            "hflip": bool(self.hflip),
            "fingerprint": self.fingerprint(),
        }
        if not self.is_finite:
            out["name"] = self.registered_name
            out["params"] = self.params()
        return out


DESCRIBE_MAX_MODES = 4096  # describe() lists a mixture's modes up to this many


def _is_json(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (list, tuple)):
        return all(_is_json(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json(x) for k, x in v.items())
    return False
