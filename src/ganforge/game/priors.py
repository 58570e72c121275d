"""Latent priors p(z): the noise the generator turns into samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal, NamedTuple

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


class InfoCodes(NamedTuple):
    """The parts of an InfoGAN latent batch."""

    noise: Tensor  # (N, noise_dim), incompressible noise
    categorical: list[Tensor]  # one (N,) int64 tensor of category indices per categorical code
    continuous: Tensor  # (N, n_continuous), each in [-1, 1)


@PRIORS.register("infogan")
class InfoGANPrior(Prior):
    """The structured latent of InfoGAN (Chen et al. 2016): ``z = [noise | codes]``.

    Layout of z: ``noise`` (``noise_dim`` values), then each categorical code as a one-hot block
    (``categorical`` lists the number of categories of each), then ``continuous`` codes. Categorical
    codes are uniform over their categories; continuous codes ~ U(-1, 1); the noise is N(0, I) or
    U(-1, 1). ``latent_dim`` is the total size of z, as for every prior (G's input width); the noise
    takes what the codes leave: ``noise_dim = latent_dim - sum(categorical) - continuous``. The
    paper's MNIST setting: latent_dim 74, categorical [10], continuous 2 (62 noise values).

    The discriminator's Q head must predict the same codes: set ``model.discriminator.info_categorical``
    and ``info_continuous`` to the same values (the ``infogan`` auxiliary cost checks it).
    """

    def __init__(self, latent_dim: Annotated[int, Field(gt=0)] = 74,
                 categorical: list[Annotated[int, Field(ge=2)]] = [],  # noqa: B006  categories per code
                 continuous: Annotated[int, Field(ge=0)] = 0,  # number of continuous codes
                 noise: Literal["gaussian", "uniform"] = "gaussian"):
        n_codes = sum(categorical) + continuous
        if n_codes > latent_dim:
            raise ValueError(f"latent_dim={latent_dim} is smaller than the codes' {n_codes} values "
                             f"(categorical {list(categorical)} one-hot + {continuous} continuous)")
        self.latent_dim, self.categorical, self.continuous = latent_dim, list(categorical), continuous
        self.noise = noise
        self.noise_dim = latent_dim - n_codes

    @property
    def n_categorical_total(self) -> int:
        """Width of the one-hot blocks together (the Q head's ``code_logits``)."""
        return sum(self.categorical)

    def sample(self, n, generator=None, device="cpu"):
        if self.noise == "gaussian":
            noise = torch.randn(n, self.noise_dim, generator=generator)
        else:
            noise = 2.0 * torch.rand(n, self.noise_dim, generator=generator) - 1.0
        cats = [torch.randint(k, (n,), generator=generator) for k in self.categorical]
        cont = 2.0 * torch.rand(n, self.continuous, generator=generator) - 1.0
        return self._join(noise, cats, cont).to(device)  # indices drawn in range: no check, no host read

    def split(self, z: Tensor) -> InfoCodes:
        """``z (N, latent_dim)`` -> its noise, categorical indices and continuous codes."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"infogan prior: z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        cats, start = [], self.noise_dim
        for k in self.categorical:
            cats.append(z[:, start : start + k].argmax(dim=1))
            start += k
        return InfoCodes(z[:, : self.noise_dim], cats, z[:, start:])

    def join(self, noise: Tensor, categorical: Sequence[Tensor], continuous: Tensor) -> Tensor:
        """The inverse of ``split``: ``z (N, latent_dim)`` from noise, category indices and continuous codes."""
        for j, (c, k) in enumerate(zip(categorical, self.categorical, strict=False)):
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= k):  # reads the host: not for the training step
                raise ValueError(f"infogan prior: categorical code {j} has {k} categories (0..{k - 1}), "
                                 f"got {c.tolist() if c.numel() < 8 else 'values outside that range'}")
        return self._join(noise, categorical, continuous)

    def _join(self, noise: Tensor, categorical: Sequence[Tensor], continuous: Tensor) -> Tensor:
        n = noise.shape[0]
        if noise.shape != (n, self.noise_dim) or len(categorical) != len(self.categorical) \
                or continuous.shape != (n, self.continuous):
            raise ValueError(f"infogan prior: expected noise ({n}, {self.noise_dim}), {len(self.categorical)} "
                             f"categorical codes and continuous ({n}, {self.continuous}); got noise "
                             f"{tuple(noise.shape)}, {len(categorical)} categorical, continuous {tuple(continuous.shape)}")
        # one-hot blocks by scatter: F.one_hot checks the indices' range on the host, a read per
        # training step (a device sync wherever z is built on a GPU); join checks, sample needs not
        onehots = [noise.new_zeros(n, k).scatter_(1, c.long().view(n, 1).to(noise.device), 1.0)
                   for c, k in zip(categorical, self.categorical, strict=True)]
        return torch.cat([noise, *onehots, continuous.to(noise.dtype)], dim=1)

    def with_codes(self, z: Tensor, categorical: Mapping[int, int | Tensor] | None = None,
                   continuous: Mapping[int, float | Tensor] | None = None) -> Tensor:
        """A copy of ``z`` with some codes set, for traversals: ``categorical={0: 3}`` sets the first
        categorical code to category 3 in every row; ``continuous={1: torch.linspace(-2, 2, N)}``
        sweeps the second continuous code along the batch. Other parts of z are kept."""
        noise, cats, cont = self.split(z)
        cats, cont = list(cats), cont.clone()
        for j, value in (categorical or {}).items():
            if not -len(self.categorical) <= j < len(self.categorical):
                raise ValueError(f"infogan prior: no categorical code {j}; codes are 0..{len(self.categorical) - 1}")
            cats[j] = torch.as_tensor(value, dtype=torch.long, device=z.device).expand(z.shape[0]).clone()
        for j, value in (continuous or {}).items():
            cont[:, j] = torch.as_tensor(value, dtype=z.dtype, device=z.device)
        return self.join(noise, cats, cont)

    def truncate(self, z, threshold, generator=None):
        """Truncates the Gaussian noise only (as ``GaussianPrior.truncate``); codes are kept."""
        if self.noise != "gaussian" or self.noise_dim == 0:
            return z
        noise, cats, cont = self.split(z)
        noise = GaussianPrior(self.noise_dim).truncate(noise, threshold, generator)
        return self.join(noise, cats, cont)

    def __repr__(self) -> str:
        return (f"InfoGANPrior(latent_dim={self.latent_dim}, noise_dim={self.noise_dim}, "
                f"categorical={self.categorical}, continuous={self.continuous}, noise={self.noise!r})")
