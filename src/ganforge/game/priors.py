"""Latent priors p(z): the noise the generator turns into samples."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from ganforge.registry import Registry


class Prior:
    """A distribution over the generator's input.

    Attributes:
        latent_dim: the size of z, the vector G receives.
        spherical: the prior is rotation invariant (interpolate along great circles).
    """

    latent_dim: int
    spherical: bool = False

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> Tensor:
        """``z (n, latent_dim)``, drawn with ``generator`` (on CPU, then moved, for reproducibility)."""
        raise NotImplementedError

    def truncate(self, z: Tensor, threshold: float, generator: torch.Generator | None = None) -> Tensor:
        """The truncation trick: redraw coordinates whose magnitude exceeds ``threshold``."""
        return z


PRIORS: Registry[Prior] = Registry("prior")


@PRIORS.register("gaussian")
class GaussianPrior(Prior):
    """z ~ N(0, I) in ``latent_dim`` dimensions."""

    spherical = True

    def __init__(self, latent_dim: Annotated[int, Field(gt=0)] = 64):
        self.latent_dim = latent_dim

    def sample(self, n, generator=None, device="cpu"):
        return torch.randn(n, self.latent_dim, generator=generator).to(device)

    def truncate(self, z, threshold, generator=None):
        z = z.clone()
        for _ in range(100):
            bad = z.abs() > threshold
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=generator).to(z.device)
        return z.clamp(-threshold, threshold)

    def __repr__(self) -> str:
        return f"GaussianPrior(latent_dim={self.latent_dim})"


@PRIORS.register("uniform")
class UniformPrior(Prior):
    """z ~ U(low, high)^latent_dim."""

    def __init__(self, latent_dim: Annotated[int, Field(gt=0)] = 64, low: float = -1.0, high: float = 1.0):
        if not high > low:
            raise ValueError(f"uniform prior needs high > low, got low={low}, high={high}")
        self.latent_dim, self.low, self.high = latent_dim, low, high

    def sample(self, n, generator=None, device="cpu"):
        u = torch.rand(n, self.latent_dim, generator=generator)
        return (self.low + (self.high - self.low) * u).to(device)

    def __repr__(self) -> str:
        return f"UniformPrior(latent_dim={self.latent_dim}, low={self.low}, high={self.high})"
