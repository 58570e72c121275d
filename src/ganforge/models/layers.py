"""Building blocks shared by the architecture families."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

Activation = Literal["relu", "leaky_relu", "elu", "silu", "tanh", "gelu"]

ACTIVATIONS: dict[str, type[nn.Module] | object] = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "silu": lambda: nn.SiLU(),
    "tanh": lambda: nn.Tanh(),
    "gelu": lambda: nn.GELU(),
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of ``Activation``)."""
    return ACTIVATIONS[name]()  # type: ignore[operator]


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` with spectral normalization (Miyato et al. 2018) when ``enabled``."""
    return _spectral_norm(module) if enabled else module


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation of the features across groups of the batch as one
    extra feature (Karras et al. 2018), letting D see the diversity of a batch.

    Input ``(N, C, ...)`` -> output ``(N, C + 1, ...)``; N must be divisible by the group size
    (the group shrinks to the largest divisor of N that fits).
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        y = x.reshape(g, n // g, *x.shape[1:])  # (G, N/G, C, ...)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (N/G, C, ...)
        std = std.reshape(n // g, -1).mean(dim=1)  # (N/G,)
        std = std.repeat(g).view(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, std.to(x.dtype)], dim=1)


class LabelEmbedding(nn.Module):
    """Class label -> learned vector, for conditional players."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(n_classes, dim)

    def forward(self, y: Tensor) -> Tensor:
        return self.embed(y)


def check_labels(y: Tensor | None, n_classes: int, n: int, who: str) -> None:
    """Shape and range checks at the players' public boundary."""
    if n_classes > 0:
        if y is None:
            raise ValueError(f"{who} is conditional on {n_classes} classes: pass labels y of shape ({n},)")
        if y.shape != (n,):
            raise ValueError(f"{who}: labels must have shape ({n},), got {tuple(y.shape)}")
