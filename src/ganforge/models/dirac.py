"""The players of the closed-form games: a generator that is its parameter, a linear discriminator.

The Dirac-GAN (Mescheder et al. 2018, "Which training methods for GANs do actually converge?",
section 2.2): the data is a point mass at 0 (``data: {name: dirac}``), the generator G = delta_theta
puts all its mass on its one parameter theta (``model.generator: {name: dirac}``), and the
discriminator is linear, D(x) = psi x (``model.discriminator: {name: linear}``). With the minimax
cost the game's value is f(psi theta) + f(0), f(t) = -log(1 + exp(-t)), and its Jacobian at the
equilibrium (0, 0) has the eigenvalues +-f'(0) i = +-i/2: plain gradient steps do not converge.
The same ``dirac`` generator gives the scalar players of the bilinear game (game/closed_form.py).

``dtype: float64`` keeps the parameter (and the optimizer's state) in double precision, so the
closed-form tests compare whole trajectories to 1e-12 where the game computes in the parameter's
dtype (the bilinear game; the GAN game casts D's logits and the fakes to float32).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.models.layers import check_labels

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _initial(shape: tuple[int, ...], init: float | None, dtype: str) -> nn.Parameter:
    """``init`` in every entry, or (``init`` None) N(0, 1) draws from torch's stream, which the
    trainer seeds with ``train.seed`` before building the players."""
    if init is None:
        return nn.Parameter(torch.randn(shape, dtype=torch.float64).to(_DTYPES[dtype]))
    if not math.isfinite(init):
        raise ValueError(f"init must be finite, got {init}")
    return nn.Parameter(torch.full(shape, float(init), dtype=_DTYPES[dtype]))


@GENERATORS.register("dirac")
class DiracGenerator(nn.Module):
    """G = delta_theta: every latent is mapped to the parameter theta, of the data's shape. A conditional
    generator (``n_classes > 0``) has one theta per class, G(z, y) = theta_y. The latent is read only
    for the batch size and checked for its shape."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], n_classes: int = 0,
                 init: float | None = None,  # every entry of theta; None: N(0, 1) draws (seeded)
                 dtype: Literal["float32", "float64"] = "float32"):  # of theta and its optimizer state
        super().__init__()
        self.latent_dim, self.out_shape, self.n_classes = latent_dim, tuple(out_shape), n_classes
        self.theta = _initial((max(n_classes, 1), *self.out_shape) if n_classes else self.out_shape, init, dtype)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # z: (N, latent_dim), y: (N,) -> x: (N, *out_shape), row i theta (theta_{y_i} when conditional)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if self.n_classes:
            check_labels(y, self.n_classes, z.shape[0], "generator")
            return self.theta[y]
        # a copy, not an expanded view: a view of theta would require grad even under torch.no_grad
        return self.theta.unsqueeze(0).repeat(z.shape[0], *([1] * len(self.out_shape)))


@DISCRIMINATORS.register("linear")
class LinearDiscriminator(nn.Module):
    """D(x) = psi . x, a linear function without bias (psi of the example's size). Its input gradient
    is psi for every x, so R1 of weight gamma adds gamma/2 |psi|^2 to its cost. A conditional
    discriminator (``n_classes > 0``) has one psi per class, D(x, y) = psi_y . x."""

    @staticmethod
    def auxiliary_heads(params: dict) -> dict[str, str]:
        """No auxiliary heads, whatever the parameters."""
        return {}

    def __init__(self, in_shape: tuple[int, ...], n_classes: int = 0,
                 init: float | None = None,  # every entry of psi; None: N(0, 1) draws (seeded)
                 dtype: Literal["float32", "float64"] = "float32"):  # of psi and its optimizer state
        super().__init__()
        self.in_shape, self.n_classes = tuple(in_shape), n_classes
        size = math.prod(self.in_shape)
        self.psi = _initial((n_classes, size) if n_classes else (size,), init, dtype)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, *in_shape), y: (N,) -> logits: (N,)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"discriminator expects x of shape (N, {self.in_shape}), got {tuple(x.shape)}")
        flat = x.reshape(x.shape[0], -1).to(self.psi.dtype)  # (N, size)
        if self.n_classes:
            check_labels(y, self.n_classes, x.shape[0], "discriminator")
            return (flat * self.psi[y]).sum(dim=1)
        return flat @ self.psi
