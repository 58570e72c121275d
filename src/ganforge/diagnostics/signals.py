"""Signals about the game, as pure functions of logged scalars and of sample arrays.

- equilibrium: at the equilibrium of a probabilistic game D outputs 1/2 on real and fake alike,
  and the value V = -J(D) = E log D(x) + E log(1 - D(G(z))) equals -log 4 (Goodfellow et al. 2014).
- periodicity: the dominant period of a detrended series (periodogram peak, confirmed by the
  autocorrelation at that lag), for oscillating costs.
- diversity: mean pairwise distance of samples against real data's, and the share of samples with
  a near-duplicate (nearest neighbour much closer than real data's typical neighbour).
- mode coverage: the PacGAN/VEEGAN mode histogram of ``metrics.toy.mode_metrics``.

Everything is numpy float64; nothing here touches a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ganforge.metrics.toy import ModeReport

LOG4 = math.log(4.0)


def equilibrium_gap(d_real: float, d_fake: float) -> float:
    """How far D is from answering 1/2: ``max(|D(x) - 1/2|, |D(G(z)) - 1/2|)`` (0 at equilibrium)."""
    return max(abs(d_real - 0.5), abs(d_fake - 0.5))


def value_gap(value: float) -> float:
    """The game's value against its equilibrium: ``V - (-log 4)`` (0 at equilibrium, up to log 4 when
    D wins outright, since V <= 0)."""
    return value + LOG4


# ---------------------------------------------------------------------------------------------
# periodicity


@dataclass(frozen=True)
class Periodicity:
    """The dominant oscillation of a series.

    Attributes:
        period: length of one cycle, in observations (log windows).
        power: share of the detrended variance in the peak frequency and its two neighbours.
        acf: autocorrelation of the detrended series at the lag ``period``.
        acf2: autocorrelation at twice that lag (a second cycle), nan when the series is too short.
        amplitude: standard deviation of the detrended series.
        n: number of observations analysed.
    """

    period: float
    power: float
    acf: float
    acf2: float
    amplitude: float
    n: int


def _autocorrelation(r: np.ndarray, lag: int) -> float:
    """Unbiased autocorrelation of a zero-mean series at ``lag`` (normalized by the variance)."""
    n = r.size
    var = float(np.mean(r * r))
    if lag >= n or var == 0.0:
        return 0.0
    return float(np.mean(r[: n - lag] * r[lag:]) / var)


def periodicity(series: Any, min_cycles: float = 3.0) -> Periodicity | None:
    """The dominant period of ``series (n,)`` after removing a linear trend, or None.

    Only periods that fit at least ``min_cycles`` times into the series are considered, so a slow
    drift is never mistaken for an oscillation. The period is the lag, within 25 % of the
    periodogram peak's, where the autocorrelation is largest (this resolves periods that fall
    between frequency bins). Returns None for short, constant or non-finite series.
    """
    x = np.asarray(series, dtype=np.float64).reshape(-1)
    n = x.size
    if n < 8 or not np.all(np.isfinite(x)):
        return None
    t = np.arange(n, dtype=np.float64)
    slope, intercept = np.polyfit(t, x, 1)
    r = x - (slope * t + intercept)
    amplitude = float(r.std())
    if not amplitude > 1e-12 * max(1.0, float(np.abs(x).max())):
        return None
    spec = np.abs(np.fft.rfft(r)) ** 2
    spec[0] = 0.0
    total = float(spec.sum())
    k_min = max(1, math.ceil(min_cycles))
    if spec.size <= k_min or total <= 0.0:
        return None
    k = k_min + int(np.argmax(spec[k_min:]))
    power = float(spec[max(1, k - 1): k + 2].sum() / total)
    guess = n / k
    lo = max(2, math.floor(0.75 * guess))
    hi = min(max(lo, math.ceil(1.25 * guess)), int(n // min_cycles) if n // min_cycles >= 2 else 2)
    lags = list(range(lo, max(lo, hi) + 1))
    acfs = [_autocorrelation(r, lag) for lag in lags]
    best = int(np.argmax(acfs))
    lag = lags[best]
    acf2 = _autocorrelation(r, 2 * lag) if 2 * lag <= n - 4 else math.nan
    return Periodicity(period=float(lag), power=power, acf=float(acfs[best]), acf2=acf2, amplitude=amplitude, n=n)


# ---------------------------------------------------------------------------------------------
# sample diversity


def _flat(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(a.shape[0], -1) if a.ndim != 2 else a


def _maybe_np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _squared_distances(x: np.ndarray) -> np.ndarray:
    sq = np.einsum("nd,nd->n", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


def pairwise_summary(x: Any) -> tuple[float, np.ndarray]:
    """Mean pairwise Euclidean distance of ``x (n, ...)`` and each example's nearest-neighbour
    distance ``(n,)``; examples are flattened, n >= 2."""
    a = _flat(x)
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 examples for pairwise distances, got {a.shape[0]}")
    if a.shape[1] <= 16:  # low dimension: coordinate differences (exact, and faster than a Gram matrix)
        d2 = np.zeros((a.shape[0], a.shape[0]))
        for j in range(a.shape[1]):
            diff = a[:, j, None] - a[None, :, j]
            d2 += diff * diff
        d = np.sqrt(d2)
    else:
        d = np.sqrt(_squared_distances(a))
    n = a.shape[0]
    mean = float(d.sum() / (n * (n - 1)))
    np.fill_diagonal(d, np.inf)
    return mean, d.min(axis=1)


@dataclass(frozen=True)
class SampleReference:
    """What real data looks like, for judging samples.

    Attributes:
        mean_distance: mean pairwise distance of ``n`` real examples.
        nn_median: median nearest-neighbour distance among them.
        duplicate_radius: distance under which two samples count as near-duplicates.
        duplicate_rate: share of the real examples with a neighbour within that radius.
        shape: shape of one example.
        modes, mode_stds, weights: the mixture's components for toy mixtures, else None.
    """

    mean_distance: float
    nn_median: float
    duplicate_radius: float
    duplicate_rate: float
    shape: tuple[int, ...]
    modes: np.ndarray | None = None
    mode_stds: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def is_mixture(self) -> bool:
        return self.modes is not None

    @classmethod
    def from_examples(cls, real: Any, duplicate_radius: float = 0.1, modes: Any = None, mode_stds: Any = None,
                      weights: Any = None) -> SampleReference:
        a = _flat(real)
        mean, nn = pairwise_summary(a)
        nn_median = float(np.median(nn))
        radius = duplicate_radius * nn_median
        return cls(mean_distance=mean, nn_median=nn_median, duplicate_radius=radius,
                   duplicate_rate=float(np.mean(nn <= radius)), shape=tuple(int(s) for s in real.shape[1:]),
                   modes=_maybe_np(modes), mode_stds=_maybe_np(mode_stds), weights=_maybe_np(weights))

    @classmethod
    def from_dataset(cls, dataset: Any, n: int = 500, seed: int = 0,
                     duplicate_radius: float = 0.1) -> SampleReference:
        """Draw ``n`` real examples (a fresh seeded stream; the training streams are not touched)."""
        g = torch.Generator().manual_seed(seed)
        if getattr(dataset, "examples", None) is not None:
            idx = torch.randperm(len(dataset), generator=g)[:n]
            real = dataset.examples[idx]
        else:
            real, _ = dataset.sample(n, g)
        modes = getattr(dataset, "modes", None)
        return cls.from_examples(real, duplicate_radius, modes,
                                 None if modes is None else dataset.mode_stds,
                                 None if modes is None else dataset.weights)


def sample_signals(samples: Any, ref: SampleReference, max_samples: int = 500,
                   min_mode_share: float = 0.1) -> dict[str, Any]:
    """Diversity (and, for toy mixtures, mode coverage) of ``samples (n, ...)`` against ``ref``.

    Returns JSON-able numbers: ``diversity_ratio`` (mean pairwise distance / real data's),
    ``duplicate_rate`` (share of samples with a near-duplicate) beside real data's, both on the
    first ``max_samples`` finite samples (use as many as the reference's real examples: fewer
    samples have farther neighbours, so the duplicate rate is then conservative); and for
    mixtures ``modes_captured``, ``n_modes``, ``hq_fraction``, ``reverse_kl``, ``mode_counts``,
    ``covered`` (indices of the covered modes), on all finite samples. Non-finite samples give
    ``non_finite_samples``.
    """
    a = _flat(samples)
    finite = np.all(np.isfinite(a), axis=1)
    out: dict[str, Any] = {"n_samples": int(a.shape[0])}
    if not finite.all():
        out["non_finite_samples"] = int((~finite).sum())
    a = a[finite]
    d = a[:max_samples]  # diversity on as many samples as the reference has real examples
    if d.shape[0] >= 2:
        mean, nn = pairwise_summary(d)
        out["diversity_ratio"] = mean / ref.mean_distance if ref.mean_distance > 0 else math.nan
        out["duplicate_rate"] = float(np.mean(nn <= ref.duplicate_radius))
        out["real_duplicate_rate"] = ref.duplicate_rate
    if ref.is_mixture and a.shape[0] >= 1:
        report = mode_coverage(a, ref, min_mode_share)
        out.update({"modes_captured": report.modes_captured, "n_modes": report.n_modes,
                    "hq_fraction": report.hq_fraction, "reverse_kl": report.reverse_kl,
                    "mode_counts": list(report.counts),
                    "covered": [i for i, c in enumerate(report.counts) if c >= report.min_count]})
    return out


def mode_coverage(samples: Any, ref: SampleReference, min_mode_share: float = 0.1) -> ModeReport:
    """The mode histogram of a toy mixture; a mode is covered when it receives at least
    ``min_mode_share`` of the samples its weight would give it (at least one)."""
    from ganforge.metrics.toy import mode_metrics  # imports scipy.stats: only toy mixtures pay for it

    assert ref.modes is not None and ref.mode_stds is not None and ref.weights is not None
    a = _flat(samples)
    w = ref.weights / ref.weights.sum()
    min_count = max(1, int(round(min_mode_share * a.shape[0] * float(w.min()))))
    return mode_metrics(a, ref.modes, ref.mode_stds, ref.weights, min_count=min_count)


def missed_modes(counts: Any, weights: Any, share: float = 0.1, p: float = 0.01) -> list[int]:
    """Modes that the high-quality samples avoid beyond chance.

    With ``n_hq = sum(counts)`` high-quality samples, a fit that covers every mode in proportion to
    its weight gives mode k a Poisson(``lam_k = n_hq w_k``) count. Mode k is missed when its count is
    below ``share * lam_k`` and a count that low has probability under ``p / K`` (Bonferroni over
    the K modes, so a perfect fit has a missed mode in at most a fraction ``p`` of snapshots). Few
    high-quality samples give no missed mode: they cannot tell a missed mode from chance.
    """
    from scipy.stats import poisson

    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if c.size == 0 or c.shape != w.shape or not w.sum() > 0:
        return []
    lam = c.sum() * w / w.sum()
    low = (c < share * lam) & (poisson.cdf(c, lam) < p / c.size)
    return [int(i) for i in np.flatnonzero(low)]


def real_hq_fraction(dim: int, hq_threshold: float = 3.0) -> float:
    """Share of exact samples of an isotropic Gaussian mode within ``hq_threshold`` std of its centre:
    ``P(chi_dim <= hq_threshold)`` (0.9973 in 1-D, 0.9889 in 2-D)."""
    from scipy.stats import chi

    return float(chi.cdf(hq_threshold, dim))


__all__ = ["LOG4", "Periodicity", "SampleReference", "equilibrium_gap", "missed_modes", "mode_coverage",
           "pairwise_summary", "periodicity", "real_hq_fraction", "sample_signals", "value_gap"]
