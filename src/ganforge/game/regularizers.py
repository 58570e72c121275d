"""Regularizers of the discriminator, usable with any cost.

Each adds a penalty to J(D) (and may project D's weights after its step). They receive D itself
and its inputs, since penalties on D's input gradient need them; they never call backward.

Two rules keep them honest:

- Distributed runs: a regularizer that draws random numbers draws them for the *global* batch from
  the shared stream and keeps this process's slice ``[rank::world_size]`` (``shard``), as the latents
  and the real batches do, so that every process consumes the same draws and N processes follow the
  1-process trajectory.
- Packed discriminators (PacGAN): D judges packs, so input-gradient penalties are taken per pack:
  the norm of the gradient of one pack's logit with respect to the whole pack's input (the
  concatenation of its members), as for any D of that input. Pack ``j`` of a batch of N holds the
  examples ``j, j + N/pack, j + 2 N/pack, ...`` (the layout of models/mlp.py, strided as minibatch-std
  groups are, which is what makes a rank's slice pack the same way as the global batch).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from ganforge.registry import Registry

Shard = tuple[int, int]  # (rank, world_size) of this process
ONE_PROCESS: Shard = (0, 1)


class Regularizer:
    """A penalty on the discriminator.

    Attributes:
        needs_real_grad: the penalty needs d(D(x))/dx on real x; the trainer then passes ``real``
            with ``requires_grad`` set and the logits ``d_real`` computed from it, so no extra pass.
        needs_fake_grad: the same for fake examples.
        input_gradient: the penalty is on D's gradient with respect to each input (pack), which
            batch norm in D couples across the batch and weight clipping interferes with; such
            combinations are refused (components.check_game).
        lipschitz: it keeps D Lipschitz, as the Wasserstein cost requires.
        clips_weights: it clamps D's weights (refused beside an input-gradient penalty).
    """

    needs_real_grad: bool = False
    needs_fake_grad: bool = False
    input_gradient: bool = False
    lipschitz: bool = False
    clips_weights: bool = False

    def penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor, d_real: Tensor,
                d_fake: Tensor, y: Tensor | None, generator: torch.Generator | None,
                shard: Shard = ONE_PROCESS) -> Tensor | None:
        """The penalty added to J(D) (a scalar), or None if this regularizer adds none.

        ``real``, ``fake``, ``d_real``, ``d_fake`` and ``y`` are this process's slice of the global
        batch; ``shard = (rank, world_size)`` says which (see the module docstring)."""
        return None

    def after_discriminator_step(self, discriminator: nn.Module) -> None:
        """A projection applied to D after its optimizer step."""


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def pack_size(discriminator: nn.Module) -> int:
    """How many examples D judges jointly (PacGAN's pack; 1 for an ordinary D)."""
    return int(getattr(discriminator, "pack", 1))


def uniform_slice(n: int, generator: torch.Generator | None, shard: Shard) -> Tensor:
    """``n`` draws from U(0, 1): this process's slice ``[rank::world_size]`` of ``n * world_size``
    draws for the global batch, so every process advances ``generator`` by the same amount."""
    rank, world_size = shard
    u = torch.rand(n * world_size, generator=generator)
    return u[rank::world_size] if world_size > 1 else u


def input_gradient_sq_norm(outputs: Tensor, inputs: Tensor, pack: int = 1) -> Tensor:
    """||dD/dx||^2 per example, the norm over all non-batch dimensions: ``(N,)``.

    With ``pack > 1``, ``outputs`` holds each pack's logit once per member; the result is then per
    pack, ``(N / pack,)``: the squared norm of the gradient of the pack's logit with respect to all
    of its members' inputs (the sum of the members' squared norms)."""
    total = outputs.sum() if pack == 1 else outputs.sum() / pack  # each pack's logit counted once
    (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
    sq = grad.reshape(grad.shape[0], -1).pow(2).sum(dim=1)  # (N,)
    if pack > 1:
        sq = sq.view(pack, -1).sum(dim=0)  # (N / pack,): pack j holds examples j, j + N/pack, ...
    return sq


@REGULARIZERS.register("gradient_penalty")
class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): weight * E (||grad D(x_hat)|| - target)^2 on interpolates
    x_hat = eps x + (1 - eps) G(z), with eps ~ U(0, 1) drawn per example (per pack for a packed D,
    whose inputs are packs: the interpolate then lies on the line between a real and a fake pack)."""

    input_gradient = True
    lipschitz = True

    def __init__(self, weight: Annotated[float, Field(ge=0)] = 10.0, target: Annotated[float, Field(ge=0)] = 1.0):
        self.weight, self.target = weight, target

    def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator, shard=ONE_PROCESS):
        pack = pack_size(discriminator)
        n = min(real.shape[0], fake.shape[0])
        n -= n % pack
        real, fake = real[:n].detach(), fake[:n].detach()
        eps = uniform_slice(n // pack, generator, shard).to(real.device, real.dtype)  # one per pack
        if pack > 1:
            eps = eps.repeat(pack)  # example i belongs to pack i mod (n / pack)
        eps = eps.view(n, *([1] * (real.dim() - 1)))
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        out = discriminator(x_hat, None if y is None else y[:n])
        norm = (input_gradient_sq_norm(out, x_hat, pack) + 1e-12).sqrt()
        return self.weight * (norm - self.target).pow(2).mean()

    def __repr__(self) -> str:
        return f"GradientPenalty(weight={self.weight}, target={self.target})"


@REGULARIZERS.register("r1")
class R1(Regularizer):
    """R1 (Mescheder et al. 2018): gamma/2 * E ||grad D(x)||^2 on real data (per pack when packed)."""

    needs_real_grad = True
    input_gradient = True

    def __init__(self, gamma: Annotated[float, Field(ge=0)] = 10.0):
        self.gamma = gamma

    def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator, shard=ONE_PROCESS):
        return 0.5 * self.gamma * input_gradient_sq_norm(d_real, real, pack_size(discriminator)).mean()

    def __repr__(self) -> str:
        return f"R1(gamma={self.gamma})"


@REGULARIZERS.register("r2")
class R2(Regularizer):
    """R2 (Mescheder et al. 2018): gamma/2 * E ||grad D(G(z))||^2 on fake data (per pack when packed)."""

    needs_fake_grad = True
    input_gradient = True

    def __init__(self, gamma: Annotated[float, Field(ge=0)] = 10.0):
        self.gamma = gamma

    def penalty(self, discriminator, real, fake, d_real, d_fake, y, generator, shard=ONE_PROCESS):
        return 0.5 * self.gamma * input_gradient_sq_norm(d_fake, fake, pack_size(discriminator)).mean()

    def __repr__(self) -> str:
        return f"R2(gamma={self.gamma})"


def clip_weights_(module: nn.Module, clip: float) -> None:
    """Clamp every parameter of ``module`` to [-clip, clip] in place (WGAN's Lipschitz constraint)."""
    with torch.no_grad():
        params = [p for p in module.parameters()]
        if params:
            torch._foreach_clamp_min_(params, -clip)
            torch._foreach_clamp_max_(params, clip)


@REGULARIZERS.register("weight_clip")
class WeightClip(Regularizer):
    """Clamp D's weights to [-clip, clip] after every D step: the original WGAN's Lipschitz constraint
    (Arjovsky et al. 2017, clip 0.01), the one place ganforge clips weights. Refused beside an
    input-gradient penalty (components.check_game)."""

    lipschitz = True
    clips_weights = True

    def __init__(self, clip: Annotated[float, Field(gt=0)] = 0.01):
        self.clip = clip

    def after_discriminator_step(self, discriminator):
        clip_weights_(discriminator, self.clip)

    def __repr__(self) -> str:
        return f"WeightClip(clip={self.clip})"
