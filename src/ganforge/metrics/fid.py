"""Fréchet Inception Distance (FID) on features.

Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two Time-Scale
Update Rule Converge to a Local Nash Equilibrium": fit a Gaussian to the (Inception pool3,
2048-d) features of the real and of the generated images and report the Fréchet (2-Wasserstein)
distance between the two Gaussians,

    FID = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)).

Everything is computed in float64. The trace of the matrix square root is taken from the
eigenvalues of the symmetric PSD matrix ``S1^(1/2) S2 S1^(1/2)`` (which has the same eigenvalues
as ``S1 S2``) with ``eigh``; round-off negatives are clamped to 0, so the result is never NaN or
complex, and the final value is clamped to ``>= 0``.

:class:`GaussianStats` accumulates mean and covariance batch by batch (Chan et al.'s pairwise
update of the mean and of the centred sum of outer products), so 10,000 x 2048 features never
need to be held at once, and per-worker statistics can be merged.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ganforge.metrics._utils import (
    ArrayLike,
    MetricInputError,
    SmallSampleWarning,
    as_features,
    as_float64,
    check_same_dim,
)

__all__ = ["GaussianStats", "fid_from_features", "fid_from_stats", "frechet_distance"]


def _sqrt_psd(s: Tensor) -> Tensor:
    """Symmetric square root of a symmetric PSD matrix ``(d, d)`` (negative eigenvalues -> 0)."""
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0.0).sqrt()) @ v.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)`` (Heusel et al. 2017).

    Args:
        mu1, mu2: means ``(d,)``.
        sigma1, sigma2: covariance matrices ``(d, d)``, symmetric PSD (symmetrised here).

    Returns:
        The squared Fréchet distance as a Python float, ``>= 0`` and never NaN.
    """
    m1 = as_float64(mu1, "mu1", ndim=1).cpu()
    m2 = as_float64(mu2, "mu2", ndim=1).cpu()
    s1 = as_float64(sigma1, "sigma1", ndim=2).cpu()
    s2 = as_float64(sigma2, "sigma2", ndim=2).cpu()
    d = m1.shape[0]
    if m2.shape[0] != d:
        raise MetricInputError(f"mu2 has dimension {m2.shape[0]}, mu1 has {d}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise MetricInputError(f"{name} must have shape ({d}, {d}), got {tuple(s.shape)}")
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)

    # Tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), a symmetric PSD matrix.
    r1 = _sqrt_psd(s1)  # (d, d)
    m = r1 @ s2 @ r1  # (d, d)
    m = 0.5 * (m + m.T)
    tr_covmean = torch.linalg.eigvalsh(m).clamp_min(0.0).sqrt().sum()

    diff = m1 - m2
    value = diff.dot(diff) + torch.trace(s1) + torch.trace(s2) - 2.0 * tr_covmean
    return max(float(value), 0.0)


class GaussianStats:
    """Streaming mean and covariance of features, accumulated in float64.

    Keeps the count ``n``, the running mean ``(d,)`` and the centred sum of outer products
    ``M2 = sum_i (x_i - mean)(x_i - mean)^T`` ``(d, d)``; each batch is folded in with the
    pairwise update of Chan, Golub & LeVeque (1979), which does not lose precision when the
    features have a large mean (unlike ``sum(x x^T) - n mean mean^T``).

    Example:
        >>> stats = GaussianStats()
        >>> for batch in feature_batches:  # each (b, 2048)
        ...     stats.update(batch)
        >>> stats.mean.shape, stats.cov.shape
    """

    def __init__(self, dim: int | None = None, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.dim = dim
        self.n = 0
        self._mean: Tensor | None = None  # (d,)
        self._m2: Tensor | None = None  # (d, d)
        if dim is not None:
            self._mean = torch.zeros(dim, dtype=torch.float64, device=self.device)
            self._m2 = torch.zeros(dim, dim, dtype=torch.float64, device=self.device)

    @classmethod
    def from_features(cls, features: ArrayLike) -> GaussianStats:
        """Statistics of a whole feature matrix ``(n, d)`` at once."""
        return cls().update(features)

    def _fold(self, n_b: int, mean_b: Tensor, m2_b: Tensor) -> None:
        if self.n == 0 or self._mean is None or self._m2 is None:
            self.n, self._mean, self._m2 = n_b, mean_b.clone(), m2_b.clone()
            return
        n = self.n + n_b
        delta = mean_b - self._mean  # (d,)
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + torch.outer(delta, delta) * (self.n * n_b / n)
        self.n = n

    def update(self, features: ArrayLike) -> GaussianStats:
        """Add a batch of features ``(b, d)`` (a single ``(d,)`` vector is one sample); returns self."""
        x = torch.as_tensor(features)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        x = as_features(x, "features", min_samples=0).to(self.device)  # (b, d)
        if self.dim is None:
            self.dim = int(x.shape[1])
        elif x.shape[1] != self.dim:
            raise MetricInputError(f"features have dimension {x.shape[1]}, expected {self.dim}")
        if x.shape[0] == 0:
            return self
        mean_b = x.mean(dim=0)  # (d,)
        xc = x - mean_b  # (b, d)
        self._fold(int(x.shape[0]), mean_b, xc.T @ xc)
        return self

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Return new statistics of the union of both samples (neither input is changed)."""
        if self.dim is not None and other.dim is not None and self.dim != other.dim:
            raise MetricInputError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        out = GaussianStats(device=self.device)
        out.dim = self.dim if self.dim is not None else other.dim
        for part in (self, other):
            if part.n > 0 and part._mean is not None and part._m2 is not None:
                out._fold(part.n, part._mean.to(self.device), part._m2.to(self.device))
        return out

    def _require(self, min_n: int) -> tuple[Tensor, Tensor]:
        if self.n < min_n or self._mean is None or self._m2 is None:
            raise MetricInputError(f"Gaussian statistics need at least {min_n} sample(s), got {self.n}")
        return self._mean, self._m2

    @property
    def mean(self) -> Tensor:
        """Mean ``(d,)`` in float64."""
        return self._require(1)[0].clone()

    @property
    def cov(self) -> Tensor:
        """Unbiased covariance ``(d, d)`` (divided by ``n - 1``) in float64; needs ``n >= 2``."""
        return self._require(2)[1] / (self.n - 1)

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors to save (e.g. with safetensors) and restore with :meth:`from_state_dict`."""
        mean, m2 = self._require(1)
        return {"n": torch.tensor(self.n, dtype=torch.int64), "mean": mean.cpu(), "m2": m2.cpu()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor], device: torch.device | str = "cpu") -> GaussianStats:
        """Inverse of :meth:`state_dict`."""
        missing = {"n", "mean", "m2"} - set(state)
        if missing:
            raise MetricInputError(f"Gaussian statistics state lacks {sorted(missing)}")
        mean = as_float64(state["mean"], "mean", ndim=1)
        m2 = as_float64(state["m2"], "m2", ndim=2)
        d = int(mean.shape[0])
        if tuple(m2.shape) != (d, d):
            raise MetricInputError(f"m2 must have shape ({d}, {d}), got {tuple(m2.shape)}")
        out = cls(device=device)
        out.dim = d
        out.n = int(state["n"])
        out._mean = mean.to(out.device)
        out._m2 = m2.to(out.device)
        return out


def _check_for_fid(stats: GaussianStats, name: str) -> None:
    if stats.n < 2:
        raise MetricInputError(f"FID needs at least 2 {name} samples to estimate a covariance, got {stats.n}")
    if stats.dim is not None and stats.n < stats.dim:
        warnings.warn(
            f"FID: {stats.n} {name} samples < {stats.dim} feature dimensions; the covariance is "
            "rank-deficient and FID is strongly biased (use at least as many samples as dimensions, "
            "10,000+ for comparable numbers)",
            SmallSampleWarning,
            stacklevel=3,
        )


def fid_from_stats(real: GaussianStats, fake: GaussianStats) -> float:
    """FID between two accumulated feature statistics (Heusel et al. 2017).

    Warns :class:`SmallSampleWarning` when a set has fewer samples than dimensions.

    Raises:
        MetricInputError: fewer than 2 samples in a set, or different feature dimensions.
    """
    _check_for_fid(real, "real")
    _check_for_fid(fake, "fake")
    if real.dim != fake.dim:
        raise MetricInputError(f"real and fake features have different dimensions: {real.dim} vs {fake.dim}")
    return frechet_distance(real.mean, real.cov, fake.mean, fake.cov)


def fid_from_features(real: ArrayLike, fake: ArrayLike) -> float:
    """FID between real features ``(n, d)`` and generated features ``(m, d)`` (Heusel et al. 2017).

    Raises:
        MetricInputError: (a ``ValueError``) fewer than 2 samples in a set, or different dimensions.
    """
    r = as_features(real, "real features")
    f = as_features(fake, "fake features")
    check_same_dim(r, f, "real features", "fake features")
    return fid_from_stats(GaussianStats.from_features(r), GaussianStats.from_features(f))
