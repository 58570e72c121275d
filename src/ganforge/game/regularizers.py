"""Regularizers of the discriminator, usable with any cost.

Each adds a penalty to J(D) (and may project D's weights after its step). They receive D itself
and its inputs, since penalties on D's input gradient need them; they never call backward.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from ganforge.game.losses import clip_weights_
from ganforge.registry import Registry


class Regularizer:
    """A penalty on the discriminator.

    Attributes:
        needs_real_grad: the penalty needs d(D(x))/dx on real x; the trainer then passes ``real``
            with ``requires_grad`` set and the logits ``d_real`` computed from it, so no extra pass.
        needs_fake_grad: the same for fake examples.
    """

    needs_real_grad: bool = False
    needs_fake_grad: bool = False

    def penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor, d_real: Tensor,
                d_fake: Tensor, y: Tensor | None, generator: torch.Generator | None) -> Tensor | None:
        """The penalty added to J(D) (a scalar), or None if this regularizer adds none."""
        return None

    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        """A projection applied to D after its optimizer step."""


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def input_gradient_sq_norm(outputs: Tensor, inputs: Tensor) -> Tensor:
    """||dD(x)/dx||^2 per example, the norm over all non-batch dimensions: ``(N,)``."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.reshape(grad.shape[0], -1).pow(2).sum(dim=1)


@REGULARIZERS.register("gradient_penalty")
class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): weight * E (||grad D(x_hat)|| - target)^2 on interpolates
    x_hat = eps x + (1 - eps) G(z), with eps ~ U(0, 1) drawn per example."""

    def __init__(self, weight: Annotated[float, Field(ge=0)] = 10.0, target: Annotated[float, Field(ge=0)] = 1.0):
        self.weight, self.target = weight, target

    def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator):
        n = min(real.shape[0], fake.shape[0])
        real, fake = real[:n].detach(), fake[:n].detach()
        eps = torch.rand(n, generator=generator).to(real.device, real.dtype)
        eps = eps.view(n, *([1] * (real.dim() - 1)))
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        out = discriminator(x_hat, None if y is None else y[:n])
        norm = (input_gradient_sq_norm(out, x_hat) + 1e-12).sqrt()
        return self.weight * (norm - self.target).pow(2).mean()

    def __repr__(self) -> str:
        return f"GradientPenalty(weight={self.weight}, target={self.target})"


@REGULARIZERS.register("r1")
class R1(Regularizer):
    """R1 (Mescheder et al. 2018): gamma/2 * E ||grad D(x)||^2 on real data."""

    needs_real_grad = True

    def __init__(self, gamma: Annotated[float, Field(ge=0)] = 10.0):
        self.gamma = gamma

    def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator):
        return 0.5 * self.gamma * input_gradient_sq_norm(d_real, real).mean()

    def __repr__(self) -> str:
        return f"R1(gamma={self.gamma})"


@REGULARIZERS.register("r2")
class R2(Regularizer):
    """R2 (Mescheder et al. 2018): gamma/2 * E ||grad D(G(z))||^2 on fake data."""

    needs_fake_grad = True

    def __init__(self, gamma: Annotated[float, Field(ge=0)] = 10.0):
        self.gamma = gamma

    def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator):
        return 0.5 * self.gamma * input_gradient_sq_norm(d_fake, fake).mean()

    def __repr__(self) -> str:
        return f"R2(gamma={self.gamma})"


@REGULARIZERS.register("weight_clip")
class WeightClip(Regularizer):
    """Clamp D's weights to [-clip, clip] after every D step (WGAN's original constraint)."""

    def __init__(self, clip: Annotated[float, Field(gt=0)] = 0.01):
        self.clip = clip

    def after_discriminator_step(self, discriminator):
        clip_weights_(discriminator, self.clip)

    def __repr__(self) -> str:
        return f"WeightClip(clip={self.clip})"
