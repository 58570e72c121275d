"""Memorisation check: are generated samples closer to the training set than new real data is?

For every generated sample, the distance to its nearest training example; the same for held-out
real examples (never trained on). A generator that copies training data produces distances
well below the held-out ones. The comparison follows the nearest-neighbour tests used in the
memorisation literature (e.g. Webster, Rabin, Simon & Jurie 2019, "Detecting Overfitting of Deep
Generative Networks via Latent Recovery"; Meehan, Chaudhuri & Dasgupta 2020, "A Non-Parametric
Test to Detect Data-Copying in Generative Models"):

- quantiles (1 %, 5 %, 50 %) of both distance distributions;
- the fraction of generated samples *strictly* closer to the training set than the 1 % quantile
  of the held-out distances ("suspiciously close"; about 0.01 when nothing is memorised);
- the two-sample Kolmogorov-Smirnov statistic between the two distributions (scipy).

Distances are Euclidean in whatever space the inputs live in (pixels or features), float64,
computed in ``chunk_size x chunk_size`` blocks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ganforge.metrics._utils import (
    DEFAULT_CHUNK_SIZE,
    ArrayLike,
    SmallSampleWarning,
    as_features,
    check_chunk_size,
    check_same_dim,
    nearest_neighbour_distances,
)

__all__ = ["DistanceSummary", "MemorizationReport", "memorization"]

#: Held-out sets smaller than this make the 1 % quantile rest on fewer than one sample.
_MIN_HELDOUT_FOR_Q01 = 100


@dataclass(frozen=True)
class DistanceSummary:
    """Quantiles of a nearest-neighbour distance distribution."""

    q01: float
    q05: float
    q50: float
    mean: float
    min: float

    @classmethod
    def of(cls, d: np.ndarray) -> DistanceSummary:
        q01, q05, q50 = np.quantile(d, [0.01, 0.05, 0.5])
        return cls(q01=float(q01), q05=float(q05), q50=float(q50), mean=float(d.mean()), min=float(d.min()))


@dataclass(frozen=True)
class MemorizationReport:
    """Nearest-training-example distances of generated vs held-out real samples.

    Attributes:
        generated: summary of the generated samples' distances to the training set.
        heldout: summary of the held-out samples' distances to the training set.
        threshold: the 1 % quantile of the held-out distances.
        fraction_suspicious: fraction of generated samples with distance < ``threshold``.
        ks_statistic, ks_pvalue: two-sample Kolmogorov-Smirnov test of the two distributions.
        generated_distances: ``(m,)`` the raw distances of the generated samples.
        heldout_distances: ``(h,)`` the raw distances of the held-out samples.
    """

    generated: DistanceSummary
    heldout: DistanceSummary
    threshold: float
    fraction_suspicious: float
    ks_statistic: float
    ks_pvalue: float
    generated_distances: np.ndarray = field(repr=False, compare=False)
    heldout_distances: np.ndarray = field(repr=False, compare=False)


def memorization(
    generated: ArrayLike,
    train: ArrayLike,
    heldout: ArrayLike,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> MemorizationReport:
    """Compare the nearest-training-example distances of ``generated (m, d)`` and ``heldout (h, d)``.

    Samples of any shape are flattened to vectors. Warns :class:`SmallSampleWarning` when the
    held-out set has fewer than 100 samples (the 1 % quantile is then an extrapolation).

    Raises:
        MetricInputError: an empty set, different dimensions, NaN values.
    """
    check_chunk_size(chunk_size)
    sets = []
    for name, x in (("generated", generated), ("train", train), ("heldout", heldout)):
        t = as_features(_flatten(x), f"{name} samples")
        sets.append(t)
    g, tr, h = sets
    tr = tr.to(g.device)
    h = h.to(g.device)
    check_same_dim(g, tr, "generated samples", "train samples")
    check_same_dim(h, tr, "heldout samples", "train samples")
    if h.shape[0] < _MIN_HELDOUT_FOR_Q01:
        warnings.warn(
            f"memorization: only {h.shape[0]} held-out samples; the 1% quantile threshold is unreliable "
            f"below {_MIN_HELDOUT_FOR_Q01}",
            SmallSampleWarning,
            stacklevel=2,
        )
    d_gen = nearest_neighbour_distances(g, tr, chunk_size).cpu().numpy()  # (m,)
    d_held = nearest_neighbour_distances(h, tr, chunk_size).cpu().numpy()  # (h,)
    held = DistanceSummary.of(d_held)
    ks = stats.ks_2samp(d_gen, d_held)
    return MemorizationReport(
        generated=DistanceSummary.of(d_gen),
        heldout=held,
        threshold=held.q01,
        fraction_suspicious=float(np.mean(d_gen < held.q01)),
        ks_statistic=float(ks.statistic),
        ks_pvalue=float(ks.pvalue),
        generated_distances=d_gen,
        heldout_distances=d_held,
    )


def _flatten(x: ArrayLike) -> ArrayLike:
    """``(n, *shape)`` -> ``(n, prod(shape))``; a 2-D input is returned as is."""
    shape = tuple(x.shape)
    if len(shape) > 2:
        return x.reshape(shape[0], -1)
    return x
