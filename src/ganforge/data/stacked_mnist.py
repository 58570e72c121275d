"""Stacked MNIST: the 1,000-mode benchmark of mode collapse (Metz et al. 2017; VEEGAN; PacGAN).

Registered in ``DATASETS`` as ``stacked_mnist``. Each example is three MNIST digits drawn
independently and uniformly from the chosen split and stacked as the R, G and B channels: shape
``(3, 28, 28)``, values in [-1, 1] as the ``mnist`` dataset gives them. Its *mode* is
``100 * d_R + 10 * d_G + d_B`` (1,000 modes), the digit labels of the three channels.

The players are unconditional: ``n_classes`` is 0 and ``labels`` is None, so G and D never see a
class; the mode of every example is kept in ``targets`` (like ``ImageDataset.targets``) for
evaluation only.

Memory: the split's digits are held once as uint8 ``(n_digits, 28, 28)`` (7.8 MiB for the test
split, 47 MiB for train) with the ``(size, 3)`` int32 indices of each example's digits; batches are
built on the fly (``examples`` is a :class:`StackedExamples` view that indexes like a tensor). The
default ``size`` of 128,000 is PacGAN's training-set size (its ``num_training_sample``) and costs
1.5 MiB of indices, where a float32 copy would take 1.2 GiB.

The stacking is deterministic: ``seed`` seeds a ``torch.Generator`` that draws the ``(size, 3)``
indices uniformly with replacement; the same files, split, size and seed give the same examples.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from ganforge.data import DATASETS
from ganforge.data.base import Dataset
from ganforge.errors import DataError

__all__ = ["N_MODES", "StackedExamples", "StackedMNIST", "mode_of_digits"]

N_MODES = 1000
DEFAULT_SIZE = 128_000  # PacGAN's num_training_sample


def mode_of_digits(digits: Tensor) -> Tensor:
    """``(N, 3)`` digit labels (R, G, B) -> ``(N,)`` modes ``100 * d_R + 10 * d_G + d_B``."""
    d = digits.to(torch.int64)
    return d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]


class StackedExamples:
    """The stacked examples, built on demand from uint8 digits and ``(N, 3)`` indices.

    Indexing with an int, a slice, a list or an int64 tensor gives float32 ``(..., 3, 28, 28)`` in
    [-1, 1] (one example for an int), as indexing an examples tensor would; ``shape`` and ``len``
    are those of the full ``(N, 3, 28, 28)`` set. Nothing of size ``N x 3 x 28 x 28`` is allocated
    unless asked for.
    """

    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self, digits: Tensor, index: Tensor) -> None:
        self.digits = digits  # (n_digits, H, W) uint8
        self.index = index  # (N, 3) int32
        self.shape = torch.Size((int(index.shape[0]), 3, *digits.shape[1:]))

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, key: Any) -> Tensor:
        if isinstance(key, Tensor) and key.dtype == torch.bool:
            raise TypeError("StackedExamples: boolean masks are not supported; index with int64 indices")
        rows = self.index[key].to(torch.int64)  # (..., 3)
        x = self.digits[rows]  # (..., 3, H, W) uint8
        return x.to(torch.float32).div_(127.5).sub_(1.0)

    def dim(self) -> int:
        return 4

    def size(self, d: int | None = None) -> Any:
        return self.shape if d is None else self.shape[d]

    def float(self) -> Tensor:
        return self[:]

    def __repr__(self) -> str:
        return f"StackedExamples(n={len(self)}, shape={tuple(self.shape[1:])})"


class StackedMNIST(Dataset):
    """Three MNIST digits stacked as RGB channels; 1,000 modes; unconditional players.

    Attributes:
        examples: a :class:`StackedExamples` ``(size, 3, 28, 28)`` float32 in [-1, 1], built per batch.
        labels: None (the players are unconditional; ``n_classes == 0``).
        targets: ``(size,)`` int64 modes ``100 d_R + 10 d_G + d_B``, for evaluation only.
        digit_targets: ``(size, 3)`` uint8 digit labels of the R, G, B channels.
        n_modes: 1,000.
        source: the images file the digits were read from (messages only).
    """

    value_range = (-1.0, 1.0)
    n_classes = 0
    labels = None
    hflip = False
    n_modes = N_MODES
    class_names = None

    def __init__(self, digits: Tensor, digit_labels: Tensor, size: int, seed: int, split: str, source: str) -> None:
        if digits.dtype != torch.uint8 or digits.dim() != 3:
            raise DataError(f"{source}: stacked_mnist needs uint8 digits (N, H, W), got {digits.dtype} "
                            f"{tuple(digits.shape)}")
        g = torch.Generator().manual_seed(int(seed))
        index = torch.randint(0, int(digits.shape[0]), (int(size), 3), generator=g).to(torch.int32)
        self._digits = digits.contiguous()
        self._index = index
        self.examples = StackedExamples(self._digits, index)  # type: ignore[assignment]
        self.shape = (3, int(digits.shape[1]), int(digits.shape[2]))
        self.digit_targets = digit_labels.to(torch.uint8)[index.to(torch.int64)]  # (size, 3)
        self.targets = mode_of_digits(self.digit_targets)
        self.size, self.seed, self.split = int(size), int(seed), split
        self.source = source

    def __len__(self) -> int:
        return self.size

    @property
    def kind(self) -> str:
        return "images"

    def params(self) -> dict[str, Any]:
        return {"size": self.size, "seed": self.seed, "split": self.split}

    def fingerprint(self) -> str:
        """SHA-256 of what the players see: the digits' pixels, the stacking indices (together they
        determine every example's bytes), the shape, range and ``n_classes``; nothing of the path.
        Version ``ganforge-stacked-mnist-1``."""
        h = hashlib.sha256(b"ganforge-stacked-mnist-1\0")
        for name, t in (("digits", self._digits), ("index", self._index)):
            h.update(f"{name}:{t.dtype}:{list(t.shape)}\0".encode())
            h.update(t.contiguous().numpy().data)
        head = {"kind": self.kind, "shape": list(self.shape), "n_classes": 0, "value_range": [-1.0, 1.0],
                "hflip": False, "n_modes": N_MODES}
        h.update(json.dumps(head, sort_keys=True).encode())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """``Dataset.describe`` plus ``name`` (``stacked_mnist``), ``n_modes`` (1,000), ``params``
        (size, seed, split) and ``source`` (messages only)."""
        return {**super().describe(), "name": "stacked_mnist", "n_modes": N_MODES, "params": self.params(),
                "source": self.source}

    def __repr__(self) -> str:
        return f"StackedMNIST({self.source!r}, split={self.split!r}, size={self.size}, seed={self.seed})"


@DATASETS.register("stacked_mnist")
def stacked_mnist(path: str,  # the directory holding MNIST's IDX files (never downloaded)
                  split: Literal["train", "test"] = "train",  # train-* (60,000 digits) or t10k-* (10,000)
                  size: Annotated[int, Field(gt=0, le=10_000_000)] = DEFAULT_SIZE,  # stacked examples (PacGAN's 128,000)
                  seed: Annotated[int, Field(ge=0)] = 0,  # seed of the stacking (which digits go in each example)
                  ) -> StackedMNIST:
    """Stacked MNIST from MNIST's IDX files in the directory ``path`` (as the ``mnist`` dataset:
    ``train-*`` or ``t10k-*`` by ``split``; nothing is downloaded): ``size`` examples of three digits
    drawn independently and uniformly from the split (seeded by ``seed``), stacked as R, G, B;
    1,000 modes ``100 d_R + 10 d_G + d_B``, kept for evaluation (the players are unconditional)."""
    from ganforge.data.images import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, mnist_idx_files, read_idx

    images_path, labels_path = mnist_idx_files(path, split)
    images = read_idx(images_path, IDX_IMAGES_MAGIC)  # magic numbers and sizes checked; uint8 (N, H, W)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}")
    if labels.size and int(labels.max()) > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())}; MNIST's labels are digits 0..9")
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: no images")
    digits = torch.from_numpy(np.array(images, dtype=np.uint8))
    targets = torch.from_numpy(labels.astype(np.int64))
    source = str(images_path)
    return StackedMNIST(digits, targets, size, seed, split, source)

