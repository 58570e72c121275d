"""Shared helpers of the evaluation metrics: input checks, warnings and chunked distances.

Every metric takes *features* (``(n, d)`` arrays or tensors), never images; these helpers turn
them into float64 tensors, refuse empty / non-finite input with one clear error, and compute
nearest-neighbour distances block by block so that 10,000 x 10,000 distance matrices are never
held at once (memory is bounded by ``chunk_size ** 2`` float64 values).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import GanforgeError

#: Default block size of the chunked distance computations: a block holds ``chunk_size ** 2``
#: float64 distances (2048 -> 32 MiB).
DEFAULT_CHUNK_SIZE = 2048

ArrayLike = Tensor | np.ndarray


class SmallSampleWarning(UserWarning):
    """The sample is too small for the estimate to be reliable (still computed, never NaN).

    Raised e.g. when FID gets fewer samples than feature dimensions (rank-deficient covariance),
    or when KID must shrink its subsets to the number of samples available.
    """


class MetricInputError(GanforgeError, ValueError):
    """The features or labels given to a metric cannot give a meaningful value (too few, NaN...)."""


class MeanStd(NamedTuple):
    """A score averaged over subsets or splits: ``mean, std = kid(...)`` unpacks it.

    ``std`` is the population standard deviation (ddof=0) over the subsets / splits.
    """

    mean: float
    std: float


def as_float64(x: ArrayLike, name: str, ndim: int | None = 2) -> Tensor:
    """Return ``x`` as a float64 tensor (same device, MPS moved to CPU) after checking it.

    Raises:
        MetricInputError: wrong number of dimensions, or NaN / infinite values.
    """
    t = torch.as_tensor(x)
    if t.device.type == "mps":  # MPS has no float64
        t = t.cpu()
    t = t.detach().to(torch.float64)
    if ndim is not None and t.dim() != ndim:
        raise MetricInputError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise MetricInputError(f"{name} contains NaN or infinite values")
    return t


def as_features(x: ArrayLike, name: str, min_samples: int = 1) -> Tensor:
    """Check a feature matrix ``(n, d)`` and return it as float64; ``n >= min_samples``."""
    t = as_float64(x, name, ndim=2)
    if t.shape[1] < 1:
        raise MetricInputError(f"{name} has no feature dimension (shape {tuple(t.shape)})")
    if t.shape[0] < min_samples:
        raise MetricInputError(f"{name} has {t.shape[0]} sample(s); at least {min_samples} are needed")
    return t


def check_same_dim(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Raise when two feature matrices disagree on the feature dimension."""
    if a.shape[1] != b.shape[1]:
        raise MetricInputError(
            f"{name_a} and {name_b} have different feature dimensions: {a.shape[1]} vs {b.shape[1]}"
        )


def check_chunk_size(chunk_size: int) -> int:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise MetricInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return chunk_size


def blocks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` pairs covering ``range(n)`` in blocks of at most ``size``."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def pairwise_distances(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances ``(len(a), len(b))`` between two float64 blocks (never negative)."""
    return torch.cdist(a, b).clamp_min_(0.0)


def kth_neighbour_distances(x: Tensor, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    """Distance of every row of ``x (n, d)`` to its k-th nearest *other* row: ``(n,)``.

    The point itself is excluded (an exact duplicate elsewhere still counts, at distance 0).
    Computed block by block, keeping the k smallest distances of each row seen so far.

    Raises:
        MetricInputError: ``k < 1`` or fewer than ``k + 1`` rows.
    """
    n = x.shape[0]
    if not isinstance(k, int) or k < 1:
        raise MetricInputError(f"k must be a positive integer, got {k!r}")
    if n < k + 1:
        raise MetricInputError(f"the k-th nearest neighbour (k={k}) needs at least {k + 1} samples, got {n}")
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for r0, r1 in blocks(n, chunk_size):
        best = torch.empty(r1 - r0, 0, dtype=x.dtype, device=x.device)  # (r, <=k), ascending
        rows = torch.arange(r0, r1, device=x.device)
        for c0, c1 in blocks(n, chunk_size):
            d = pairwise_distances(x[r0:r1], x[c0:c1])  # (r, c)
            # Exclude each point itself: entries (i, i) that fall in this block.
            own = (rows >= c0) & (rows < c1)
            if bool(own.any()):
                d[own.nonzero().squeeze(1), rows[own] - c0] = math.inf
            cand = torch.cat([best, d], dim=1)
            best = torch.topk(cand, min(k, cand.shape[1]), dim=1, largest=False, sorted=True).values
        out[r0:r1] = best[:, k - 1]
    return out


def nearest_neighbour_distances(
    query: Tensor, reference: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Tensor:
    """Distance of every row of ``query (m, d)`` to its nearest row of ``reference (n, d)``: ``(m,)``."""
    m, n = query.shape[0], reference.shape[0]
    out = torch.full((m,), math.inf, dtype=query.dtype, device=query.device)
    for r0, r1 in blocks(m, chunk_size):
        for c0, c1 in blocks(n, chunk_size):
            d = pairwise_distances(query[r0:r1], reference[c0:c1])  # (r, c)
            out[r0:r1] = torch.minimum(out[r0:r1], d.min(dim=1).values)
    return out
