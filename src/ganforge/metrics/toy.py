"""Metrics for toy distributions with known densities: mode coverage, 1-D distances, optimal D.

Mode coverage (the PacGAN / VEEGAN protocol for the 2-D ring and grid):

1. draw 2,500 generated samples;
2. register every sample to its nearest mode (Euclidean distance to the mixture centres);
3. a sample is *high quality* (HQ) if that distance is at most ``hq_threshold`` (3) times the
   mode's standard deviation;
4. a mode is *captured* if it receives at least ``min_count`` HQ samples (default 1; PacGAN's
   stricter variant counts a mode as lost when it gets fewer than 20 of 2,500 HQ samples —
   pass ``min_count=20`` for that);
5. ``reverse_kl`` = KL(p_hist || p_true), where p_hist is the normalized histogram of the HQ
   samples over modes and p_true the mixture weights (0 log 0 = 0, so missed modes add nothing;
   it is ``inf`` when no sample is HQ).

Note that even exact samples are not all HQ: for an isotropic Gaussian in d dimensions the radius
over sigma is chi-distributed, so the HQ fraction of true data is ``P(chi_d <= 3)`` — 0.9973 in
1-D but ``1 - exp(-4.5) = 0.98889`` in 2-D.

1-D metrics compare samples to an exact cdf: ``wasserstein1`` (W1 = integral of |F_n - F|),
``ks_statistic`` (the exact one-sample Kolmogorov–Smirnov statistic), and the optimal
discriminator ``D*(x) = p_data / (p_data + p_model)`` of Goodfellow et al. (2014).

Every function accepts numpy arrays or torch tensors and computes in float64 numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.stats import wasserstein_distance

ArrayLike = Any  # numpy array, torch tensor or nested sequence of numbers


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _np1d(x: ArrayLike, name: str = "samples") -> np.ndarray:
    a = _np(x)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must have shape (n,) or (n, 1), got {a.shape}")
    return a


def _call(fn: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    """Evaluate a numpy- or torch-based function on a float64 array and return float64 numpy."""
    return _np(fn(x)).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# mode coverage


@dataclass(frozen=True)
class ModeReport:
    """Mode coverage of a set of samples (see the module docstring for the protocol).

    Attributes:
        modes_captured: number of modes with at least ``min_count`` high-quality samples.
        n_modes: number of modes K.
        hq_fraction: fraction of all samples that are high quality.
        reverse_kl: KL(HQ mode histogram || true weights); ``inf`` when no sample is HQ.
        counts: number of HQ samples registered to each mode.
        n_samples: number of samples evaluated.
        hq_threshold: the HQ radius, in units of the mode's std.
        min_count: HQ samples a mode needs to count as captured.
    """

    modes_captured: int
    n_modes: int
    hq_fraction: float
    reverse_kl: float
    counts: tuple[int, ...]
    n_samples: int
    hq_threshold: float
    min_count: int


def mode_metrics(
    samples: ArrayLike,
    modes: ArrayLike,
    mode_stds: ArrayLike,
    weights: ArrayLike,
    hq_threshold: float = 3.0,
    min_count: int | None = None,
) -> ModeReport:
    """Mode coverage of ``samples (n, d)`` against a mixture with ``modes (K, d)``.

    ``mode_stds (K,)`` are isotropic stds, ``weights (K,)`` the true mode weights (normalized
    here). ``min_count`` None means 1. Non-finite samples are never high quality.
    """
    x, mu = _np(samples), _np(modes)
    if x.ndim == 1:
        x = x[:, None]
    if mu.ndim == 1:
        mu = mu[:, None]
    s, w = _np(mode_stds).reshape(-1), _np(weights).reshape(-1)
    n, k = x.shape[0], mu.shape[0]
    if x.ndim != 2 or mu.ndim != 2 or x.shape[1] != mu.shape[1]:
        raise ValueError(f"samples {x.shape} and modes {mu.shape} must be (n, d) and (K, d)")
    if k == 0 or s.shape != (k,) or w.shape != (k,):
        raise ValueError(f"need K >= 1 modes with K stds and K weights, got {mu.shape}, {s.shape}, {w.shape}")
    if n == 0:
        raise ValueError("mode_metrics needs at least one sample")
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be non-negative with a positive sum")
    w = w / w.sum()
    min_count = 1 if min_count is None else int(min_count)

    nearest = np.empty(n, dtype=np.int64)
    dist = np.empty(n)
    for start in range(0, n, 8192):  # chunks keep the (chunk, K, d) difference array small
        diff = x[start:start + 8192, None, :] - mu[None, :, :]
        d2 = np.einsum("nkd,nkd->nk", diff, diff)
        d2 = np.where(np.isnan(d2), np.inf, d2)
        idx = np.argmin(d2, axis=1)
        nearest[start:start + 8192] = idx
        dist[start:start + 8192] = np.sqrt(d2[np.arange(len(idx)), idx])
    hq = dist <= hq_threshold * s[nearest]
    counts = np.bincount(nearest[hq], minlength=k)
    n_hq = int(counts.sum())
    if n_hq == 0:
        kl = math.inf
    else:
        p = counts / n_hq
        nz = p > 0
        with np.errstate(divide="ignore"):
            kl = float(np.sum(p[nz] * (np.log(p[nz]) - np.log(w[nz]))))
    return ModeReport(
        modes_captured=int(np.sum(counts >= min_count)),
        n_modes=k,
        hq_fraction=n_hq / n,
        reverse_kl=kl,
        counts=tuple(int(c) for c in counts),
        n_samples=n,
        hq_threshold=float(hq_threshold),
        min_count=min_count,
    )


# --------------------------------------------------------------------------------------------
# 1-D distances to an exact distribution


def _bracket(cdf: Callable[[np.ndarray], Any], p: float) -> tuple[float, float]:
    """Find lo < hi with F(lo) < p < F(hi) by doubling outward from [-1, 1]."""
    lo, hi = -1.0, 1.0
    for _ in range(1100):
        f = _call(cdf, np.array([lo, hi]))
        if f[0] < p < f[1]:
            return lo, hi
        if not f[0] < p:
            lo *= 2.0
        if not p < f[1]:
            hi *= 2.0
        if not (math.isfinite(lo) and math.isfinite(hi)):
            break
    raise ValueError(f"cdf never crosses {p}: is it a cumulative distribution function?")


def _quantiles(cdf: Callable[[np.ndarray], Any], q: np.ndarray, iters: int = 80) -> np.ndarray:
    """Vectorized bisection for F^{-1}(q), q strictly inside (0, 1)."""
    lo_b, _ = _bracket(cdf, float(q.min()))
    _, hi_b = _bracket(cdf, float(q.max()))
    lo, hi = np.full(q.shape, lo_b), np.full(q.shape, hi_b)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = _call(cdf, mid) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _abs_linear_integral(c: np.ndarray, fa: np.ndarray, fb: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Integral over intervals of width h of |c - F| with F linear from fa to fb (exact)."""
    ga, gb = c - fa, c - fb
    crossing = ga * gb < 0
    denom = np.where(crossing, np.abs(ga - gb), 1.0)
    cross_val = h * (ga**2 + gb**2) / (2.0 * denom)
    return np.where(crossing, cross_val, h * 0.5 * np.abs(ga + gb))


def wasserstein1(
    samples: ArrayLike,
    reference: Callable[[np.ndarray], Any] | ArrayLike,
    grid_points: int = 4096,
) -> float:
    """W1 distance between the empirical distribution of 1-D ``samples`` and a reference.

    ``reference`` is either a cdf (a vectorized callable, e.g. ``dataset.cdf``) or a second set
    of samples (then the exact empirical-vs-empirical W1 is returned). With a cdf,
    ``W1 = integral |F_n(x) - F(x)| dx``: F_n is constant between order statistics, and the
    integral is taken over a grid made of the samples, ``grid_points`` evenly spaced points and
    ``grid_points`` quantiles of F (covering F in [1e-12, 1 - 1e-12]); on each cell
    ``|c - F|`` is integrated with Simpson's rule, or, where F crosses the level c, with F linear
    on each half cell. Beyond that grid F is 0 or 1 to 1e-12. Typical absolute error: < 1e-8.
    """
    x = np.sort(_np1d(samples))
    if x.size == 0:
        raise ValueError("wasserstein1 needs at least one sample")
    if not np.all(np.isfinite(x)):
        return math.inf
    if not callable(reference):
        return float(wasserstein_distance(x, _np1d(reference, "reference samples")))
    eps = 1e-12
    a, b = _quantiles(reference, np.array([eps, 1.0 - eps]))
    q = _quantiles(reference, (np.arange(grid_points) + 0.5) / grid_points)
    grid = np.unique(np.concatenate([x, q, np.linspace(a, b, grid_points)]))
    h = np.diff(grid)
    fa = np.clip(_call(reference, grid), 0.0, 1.0)
    fm = np.clip(_call(reference, grid[:-1] + 0.5 * h), 0.0, 1.0)
    fa, fb = fa[:-1], fa[1:]
    c = np.searchsorted(x, grid[:-1], side="right") / x.size  # F_n on [grid[j], grid[j+1])
    # cells where c - F keeps one sign: Simpson's rule; cells where F crosses c: F linear on halves
    crossing = ((c - fa) * (c - fb) < 0) | ((c - fa) * (c - fm) < 0)
    simpson = np.abs(c - (fa + 4.0 * fm + fb) / 6.0) * h
    halves = _abs_linear_integral(c, fa, fm, h / 2) + _abs_linear_integral(c, fm, fb, h / 2)
    return float(np.sum(np.where(crossing, halves, simpson)))


def ks_statistic(samples: ArrayLike, cdf: Callable[[np.ndarray], Any]) -> float:
    """Exact one-sample Kolmogorov–Smirnov statistic ``sup_x |F_n(x) - F(x)|``."""
    x = np.sort(_np1d(samples))
    n = x.size
    if n == 0:
        raise ValueError("ks_statistic needs at least one sample")
    f = _call(cdf, x)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))


def central_interval(source: Any, mass: float = 0.99) -> tuple[float, float]:
    """The central ``mass`` interval ``(F^{-1}((1-mass)/2), F^{-1}((1+mass)/2))`` of a 1-D law.

    ``source`` is a cdf (callable), an object with a ``cdf`` method (a 1-D toy dataset), whose
    quantiles are found with ``scipy.optimize.brentq``; or an array of samples (empirical quantiles).
    """
    if not 0.0 < mass < 1.0:
        raise ValueError(f"mass must be in (0, 1), got {mass}")
    lo_q, hi_q = (1.0 - mass) / 2.0, (1.0 + mass) / 2.0
    cdf = source.cdf if hasattr(source, "cdf") and callable(source.cdf) else source
    if not callable(cdf):
        x = _np1d(source)
        return float(np.quantile(x, lo_q)), float(np.quantile(x, hi_q))

    def quantile(p: float) -> float:
        lo, hi = _bracket(cdf, p)
        return float(brentq(lambda t: float(_call(cdf, np.array([t]))[0]) - p, lo, hi, xtol=1e-12, rtol=1e-12))

    return quantile(lo_q), quantile(hi_q)


# --------------------------------------------------------------------------------------------
# the optimal discriminator


def _densities(p: Callable[[np.ndarray], Any] | ArrayLike, grid: np.ndarray, name: str) -> np.ndarray:
    values = _call(p, grid) if callable(p) else _np(p).reshape(-1)
    if values.shape != grid.shape:
        raise ValueError(f"{name} has {values.size} values for a grid of {grid.size} points")
    if np.any(values < 0) or np.any(np.isnan(values)):
        raise ValueError(f"{name} densities must be non-negative numbers")
    return values


def optimal_discriminator(
    x_grid: ArrayLike,
    p_data: Callable[[np.ndarray], Any] | ArrayLike,
    p_model: Callable[[np.ndarray], Any] | ArrayLike,
) -> np.ndarray:
    """``D*(x) = p_data(x) / (p_data(x) + p_model(x))`` on ``x_grid (n,)``.

    Each density is a callable (evaluated on the grid) or an array of densities on the grid.
    Where both densities are 0 the ratio is 0/0; D* is then defined as 1/2 (the discriminator
    cannot tell the two apart there).
    """
    grid = _np1d(x_grid, "x_grid")
    pd, pm = _densities(p_data, grid, "p_data"), _densities(p_model, grid, "p_model")
    total = pd + pm
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, pd / safe, 0.5)


def estimate_density_1d(samples: ArrayLike, x_grid: ArrayLike, bandwidth: float | None = None) -> np.ndarray:
    """Gaussian kernel density estimate of the samples' density on ``x_grid``.

    ``bandwidth`` is the kernel's standard deviation; None uses Scott's rule
    ``std * n^(-1/5)`` (as ``scipy.stats.gaussian_kde``). If the samples are all equal (a fully
    collapsed generator) Scott's rule gives 0; the bandwidth is then the grid spacing (or 1e-3).
    """
    x, grid = _np1d(samples), _np1d(x_grid, "x_grid")
    if x.size == 0:
        raise ValueError("estimate_density_1d needs at least one sample")
    if bandwidth is None:
        h = float(np.std(x, ddof=1)) * x.size ** (-0.2) if x.size > 1 else 0.0
        if not h > 0:
            h = float(np.min(np.diff(np.unique(grid)))) if np.unique(grid).size > 1 else 1e-3
    else:
        h = float(bandwidth)
        if not h > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    out = np.zeros(grid.shape)
    for start in range(0, x.size, 2048):
        z = (grid[:, None] - x[None, start:start + 2048]) / h
        out += np.exp(-0.5 * z**2).sum(axis=1)
    return out / (x.size * h * math.sqrt(2.0 * math.pi))


def discriminator_gap(d_values: ArrayLike, d_star: ArrayLike) -> float:
    """Mean absolute gap ``mean |D(x) - D*(x)|`` over grid points (same shapes, e.g. (n,) or (n, 1))."""
    d, ds = _np(d_values).reshape(-1), _np(d_star).reshape(-1)
    if d.shape != ds.shape or d.size == 0:
        raise ValueError(f"d_values and d_star must be non-empty with equal sizes, got {d.size} and {ds.size}")
    return float(np.mean(np.abs(d - ds)))


__all__ = [
    "ModeReport",
    "mode_metrics",
    "wasserstein1",
    "ks_statistic",
    "central_interval",
    "optimal_discriminator",
    "estimate_density_1d",
    "discriminator_gap",
]
