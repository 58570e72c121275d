"""Toy distributions with known densities: the lab bench for GAN dynamics and mode collapse.

Every class here is a *distribution* (``sample(n, generator)``), registered in ``DATASETS``:

========================  ==================================================================
``gaussian1d``            N(mean, std^2) on the line
``mixture1d``             a weighted mixture of 1-D Gaussians (exact ``log_prob`` / ``cdf``)
``ring``                  ``n_modes`` isotropic Gaussians evenly spaced on a circle (2-D)
``grid``                  ``n x n`` isotropic Gaussians on a square grid centred at 0 (2-D)
``gaussian_mixture``      any d-dimensional mixture of isotropic Gaussians
``swiss_roll``            a noisy 2-D spiral (no modes)
``dirac``                 a point mass at ``at`` on the line (the Dirac-GAN's data; no modes)
========================  ==================================================================

Mixtures of Gaussians expose ``modes (K, d)``, ``mode_stds (K,)`` and ``weights (K,)`` (float32,
weights summing to 1) for the mode-coverage metrics in ``ganforge.metrics.toy``; the others set
these to None. 1-D mixtures also give the exact ``log_prob`` and ``cdf``.

Randomness comes only from the ``torch.Generator`` passed to ``sample``: the same generator state
gives the same samples, and the global RNG is never touched. Constructors only store and check
their parameters.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from ganforge.data import DATASETS
from ganforge.data.base import DESCRIBE_MAX_MODES, Dataset, memory_problem

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _f64(values: object) -> Tensor:
    """Python numbers to a float64 tensor (exact: no float32 rounding of user parameters)."""
    return torch.tensor(values, dtype=torch.float64)


def _check_modes_fit(what: str, param: str, k: int, d: int) -> None:
    """Refuse, before allocating, a mixture whose ``k`` modes in ``d`` dimensions would not fit in
    memory: centres, standard deviations and weights in float64 and float32, and the temporaries
    that build them (about ``36 d + 24`` bytes a mode)."""
    problem = memory_problem(k * (36 * d + 24), "their centres, scales and weights")
    if problem is not None:
        raise ValueError(f"{what} gives {k:,} modes: {problem}; lower {param}")


def _check_positive(name: str, values: Tensor) -> None:
    if not bool(torch.all(torch.isfinite(values))) or not bool(torch.all(values > 0)):
        raise ValueError(f"{name} must all be finite and > 0, got {values.tolist()}")


class GaussianMixture(Dataset):
    """A mixture of K isotropic Gaussians in d dimensions: sum_k w_k N(mu_k, sigma_k^2 I).

    Subclasses describe their components by calling ``_set_components`` in ``__init__``.

    Attributes:
        modes: component means, ``(K, d)`` float32.
        mode_stds: per-component isotropic standard deviation, ``(K,)`` float32.
        weights: mixture weights, ``(K,)`` float32, summing to 1.
    """

    modes: Tensor | None = None
    mode_stds: Tensor | None = None
    weights: Tensor | None = None

    def _set_components(self, centers: Tensor, stds: Tensor, weights: Tensor | None = None) -> None:
        centers = torch.as_tensor(centers, dtype=torch.float64)
        if centers.ndim != 2 or centers.shape[0] == 0 or centers.shape[1] == 0:
            raise ValueError(f"mixture centres must be a non-empty (K, d) array, got shape {tuple(centers.shape)}")
        if not bool(torch.all(torch.isfinite(centers))):
            raise ValueError("mixture centres must be finite")
        k, d = centers.shape
        stds = torch.as_tensor(stds, dtype=torch.float64).reshape(-1)
        if stds.numel() == 1 and k > 1:
            stds = stds.expand(k).clone()
        if stds.numel() != k:
            raise ValueError(f"got {stds.numel()} stds for {k} mixture components; lengths must match")
        _check_positive("stds", stds)
        if weights is None:
            w = torch.full((k,), 1.0 / k, dtype=torch.float64)
        else:
            w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
            if w.numel() != k:
                raise ValueError(f"got {w.numel()} weights for {k} mixture components; lengths must match")
            _check_positive("weights", w)
            w = w / w.sum()
        self._modes64, self._stds64, self._weights64 = centers, stds, w
        self.modes = centers.float()
        self.mode_stds = stds.float()
        self.weights = w.float()
        self.shape = (d,)

    @property
    def n_modes(self) -> int:
        return int(self._modes64.shape[0])

    def describe(self) -> dict[str, Any]:
        """``Dataset.describe`` plus ``mixture``: the modes, their standard deviations and weights
        (float64 values as lists) when there are at most ``DESCRIBE_MAX_MODES``, else None."""
        out = super().describe()
        out["mixture"] = None if self.n_modes > DESCRIBE_MAX_MODES else {
            "modes": self._modes64.tolist(), "mode_stds": self._stds64.tolist(), "weights": self._weights64.tolist()}
        return out

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Draw ``n`` points: component ``k ~ Categorical(weights)``, then ``mu_k + sigma_k * eps``."""
        d = self._modes64.shape[1]
        if n <= 0:
            return torch.zeros(0, d), None
        idx = torch.multinomial(self._weights64, n, replacement=True, generator=generator)
        eps = torch.randn(n, d, generator=generator, dtype=torch.float64)
        x = self._modes64[idx] + self._stds64[idx, None] * eps
        return x.float(), None

    def true_samples(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Same as ``sample``: exact draws from the data distribution (for reference metrics)."""
        return self.sample(n, generator)


class Mixture1D(GaussianMixture):
    """A 1-D Gaussian mixture with its exact density and cumulative distribution function.

    ``x`` may be a tensor (the result keeps its floating dtype) or numbers / numpy arrays (float64).
    """

    @staticmethod
    def _as_points(x: Tensor | np.ndarray | float) -> Tensor:
        t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim > 1:
            raise ValueError(f"1-D density expects x of shape (n,) or (n, 1), got {tuple(t.shape)}")
        return t

    @staticmethod
    def _out_dtype(t: Tensor) -> torch.dtype:
        return t.dtype if t.is_floating_point() else torch.float64

    def log_prob(self, x: Tensor | np.ndarray | float) -> Tensor:
        """log p(x) = logsumexp_k [log w_k + log N(x; mu_k, sigma_k^2)], shape ``(n,)``."""
        t = self._as_points(x)
        x64 = t.to(torch.float64)[..., None]
        mu, s = self._modes64[:, 0], self._stds64
        comp = -0.5 * ((x64 - mu) / s) ** 2 - torch.log(s) - _LOG_SQRT_2PI + torch.log(self._weights64)
        return torch.logsumexp(comp, dim=-1).to(self._out_dtype(t))

    def prob(self, x: Tensor | np.ndarray | float) -> Tensor:
        """The density p(x), shape ``(n,)``."""
        return self.log_prob(x).exp()

    def cdf(self, x: Tensor | np.ndarray | float) -> Tensor:
        """F(x) = sum_k w_k Phi((x - mu_k) / sigma_k), shape ``(n,)``."""
        t = self._as_points(x)
        x64 = t.to(torch.float64)[..., None]
        z = (x64 - self._modes64[:, 0]) / self._stds64
        return (torch.special.ndtr(z) * self._weights64).sum(-1).clamp(0.0, 1.0).to(self._out_dtype(t))


@DATASETS.register("gaussian1d")
class Gaussian1D(Mixture1D):
    """One Gaussian on the line, N(mean, std^2) (the 1-D example of the GAN paper's Figure 1)."""

    def __init__(self, mean: float = 0.0, std: PositiveFloat = 1.0):
        self.mean = float(mean)
        self.std = float(std)
        self._set_components(_f64([[self.mean]]), _f64([self.std]))

    def params(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}


@DATASETS.register("mixture1d")
class Mixture1DDataset(Mixture1D):
    """A weighted mixture of 1-D Gaussians ``sum_k w_k N(means[k], stds[k]^2)``.

    ``weights`` None means equal weights; given weights are normalized to sum to 1.
    """

    def __init__(
        self,
        means: list[float] = [-2.0, 2.0],  # noqa: B006  (never mutated)
        stds: list[PositiveFloat] = [0.5, 0.5],  # noqa: B006
        weights: list[PositiveFloat] | None = None,
    ):
        self.means = [float(m) for m in means]
        self.stds = [float(s) for s in stds]
        self.weights_param = None if weights is None else [float(w) for w in weights]
        if len(self.means) == 0:
            raise ValueError("mixture1d needs at least one component (means is empty)")
        if len(self.stds) != len(self.means):
            raise ValueError(f"mixture1d: means has {len(self.means)} entries but stds has {len(self.stds)}")
        if self.weights_param is not None and len(self.weights_param) != len(self.means):
            raise ValueError(
                f"mixture1d: means has {len(self.means)} entries but weights has {len(self.weights_param)}"
            )
        w = None if self.weights_param is None else _f64(self.weights_param)
        self._set_components(_f64(self.means)[:, None], _f64(self.stds), w)

    def params(self) -> dict[str, Any]:
        return {"means": self.means, "stds": self.stds, "weights": self.weights_param}


@DATASETS.register("ring")
class Ring(GaussianMixture):
    """``n_modes`` equal-weight isotropic Gaussians with centres ``radius * (cos a_k, sin a_k)``,
    ``a_k = 2 pi k / n_modes`` (the 8-Gaussian ring of the unrolled-GAN / PacGAN experiments)."""

    def __init__(self, n_modes: PositiveInt = 8, radius: PositiveFloat = 1.0, std: PositiveFloat = 0.01):
        self.n_modes_param = int(n_modes)
        self.radius = float(radius)
        self.std = float(std)
        if self.n_modes_param < 1:
            raise ValueError(f"ring: n_modes must be >= 1, got {n_modes}")
        _check_modes_fit(f"ring n_modes = {self.n_modes_param}", "n_modes", self.n_modes_param, 2)
        angles = 2.0 * math.pi * torch.arange(self.n_modes_param, dtype=torch.float64) / self.n_modes_param
        centers = self.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        self._set_components(centers, _f64([self.std]))

    def params(self) -> dict[str, Any]:
        return {"n_modes": self.n_modes_param, "radius": self.radius, "std": self.std}


@DATASETS.register("grid")
class Grid(GaussianMixture):
    """``n x n`` equal-weight isotropic Gaussians on a square grid centred at the origin.

    Coordinates are ``spacing * (i - (n - 1) / 2)`` for ``i = 0..n-1`` on each axis; the default
    gives the 25 centres {-4, -2, 0, 2, 4}^2 of the PacGAN / VEEGAN 2-D grid.
    """

    def __init__(self, n: PositiveInt = 5, spacing: PositiveFloat = 2.0, std: PositiveFloat = 0.05):
        self.n = int(n)
        self.spacing = float(spacing)
        self.std = float(std)
        if self.n < 1:
            raise ValueError(f"grid: n must be >= 1, got {n}")
        _check_modes_fit(f"grid n = {self.n} (n x n)", "n", self.n * self.n, 2)
        axis = self.spacing * (torch.arange(self.n, dtype=torch.float64) - (self.n - 1) / 2.0)
        gx, gy = torch.meshgrid(axis, axis, indexing="ij")
        self._set_components(torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), _f64([self.std]))

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "spacing": self.spacing, "std": self.std}


@DATASETS.register("gaussian_mixture")
class GaussianMixtureDataset(GaussianMixture):
    """A general d-dimensional mixture of isotropic Gaussians ``sum_k w_k N(centers[k], stds[k]^2 I)``.

    ``stds`` is one value for all components or one per component; ``weights`` None means equal.
    """

    def __init__(
        self,
        centers: list[list[float]],
        stds: list[PositiveFloat] | PositiveFloat = 0.05,
        weights: list[PositiveFloat] | None = None,
    ):
        self.centers = [[float(v) for v in c] for c in centers]
        self.stds = [float(s) for s in stds] if isinstance(stds, (list, tuple)) else float(stds)
        self.weights_param = None if weights is None else [float(w) for w in weights]
        if len(self.centers) == 0:
            raise ValueError("gaussian_mixture: centers is empty; give at least one centre")
        dims = {len(c) for c in self.centers}
        if len(dims) != 1 or 0 in dims:
            raise ValueError(
                f"gaussian_mixture: every centre must have the same, non-zero length; got lengths {sorted(dims)}"
            )
        k = len(self.centers)
        if isinstance(self.stds, list) and len(self.stds) != k:
            raise ValueError(f"gaussian_mixture: {k} centers but {len(self.stds)} stds")
        if self.weights_param is not None and len(self.weights_param) != k:
            raise ValueError(f"gaussian_mixture: {k} centers but {len(self.weights_param)} weights")
        w = None if self.weights_param is None else _f64(self.weights_param)
        s = _f64(self.stds if isinstance(self.stds, list) else [self.stds])
        self._set_components(_f64(self.centers), s, w)

    def params(self) -> dict[str, Any]:
        return {"centers": self.centers, "stds": self.stds, "weights": self.weights_param}


@DATASETS.register("swiss_roll")
class SwissRoll(Dataset):
    """A noisy 2-D spiral (sklearn's ``make_swiss_roll`` projected to its (x, z) plane).

    ``t = 1.5 pi (1 + 2 u)`` with ``u ~ U(0, 1)``; a point is
    ``scale * (t cos t, t sin t) / (4.5 pi) + noise * N(0, I)``, so with ``scale = 1`` the
    noiseless roll lies in the unit disk. Not a Gaussian mixture: ``modes`` etc. are None.
    """

    modes: Tensor | None = None
    mode_stds: Tensor | None = None
    weights: Tensor | None = None

    def __init__(self, noise: NonNegFloat = 0.05, scale: PositiveFloat = 1.0):
        self.noise = float(noise)
        self.scale = float(scale)
        if self.noise < 0 or self.scale <= 0:
            raise ValueError(f"swiss_roll: need noise >= 0 and scale > 0, got noise={noise}, scale={scale}")
        self.shape = (2,)

    def params(self) -> dict[str, Any]:
        return {"noise": self.noise, "scale": self.scale}

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Draw ``n`` points of the roll."""
        if n <= 0:
            return torch.zeros(0, 2), None
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        t = 1.5 * math.pi * (1.0 + 2.0 * u)
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) * (self.scale / (4.5 * math.pi))
        return (x + self.noise * eps).float(), None

    def true_samples(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Same as ``sample``: exact draws from the data distribution."""
        return self.sample(n, generator)


@DATASETS.register("dirac")
class Dirac(Dataset):
    """The point mass p_data = delta_at on the line, shape (1,): the data of the Dirac-GAN
    (Mescheder et al. 2018; models/dirac.py), whose equilibrium is G = delta_at. Every draw is ``at``;
    the generator passed to ``sample`` is not advanced. Not a mixture: ``modes`` etc. are None."""

    modes: Tensor | None = None
    mode_stds: Tensor | None = None
    weights: Tensor | None = None

    def __init__(self, at: float = 0.0):
        if not math.isfinite(at):
            raise ValueError(f"dirac: at must be finite, got {at}")
        self.at = float(at)
        self.shape = (1,)

    def params(self) -> dict[str, Any]:
        return {"at": self.at}

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``n`` copies of ``at``: ``(n, 1)``."""
        return torch.full((max(n, 0), 1), self.at), None

    def true_samples(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """Same as ``sample``: exact draws from the data distribution."""
        return self.sample(n, generator)


__all__ = [
    "GaussianMixture",
    "Mixture1D",
    "Gaussian1D",
    "Mixture1DDataset",
    "Ring",
    "Grid",
    "GaussianMixtureDataset",
    "SwissRoll",
    "Dirac",
]
