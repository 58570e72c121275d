"""Auxiliary costs: extra terms of the game computed from heads that share D's body.

A discriminator with auxiliary heads implements ``forward_aux(x, y) -> (logits (N,), aux dict)``;
the trainer then calls it instead of ``D(x, y)`` and adds each registered auxiliary cost's terms:

- AC-GAN (Odena et al. 2017): D's classifier head predicts the class of real and fake examples;
  D minimizes the classification cost on both, G on its fakes.
- InfoGAN (Chen et al. 2016): a Q head predicts the latent codes c from G(z, c); G and Q maximize a
  lower bound on the mutual information I(c; G(z, c)).

Auxiliary costs, like the costs of losses.py, are pure functions of outputs; they never call backward.
"""

from __future__ import annotations

from torch import Tensor

from ganforge.game.priors import Prior
from ganforge.registry import Registry


class AuxiliaryCost:
    """Extra terms added to J(D) and J(G)."""

    def discriminator_term(self, aux_real: dict[str, Tensor], aux_fake: dict[str, Tensor], y: Tensor | None,
                           z: Tensor, prior: Prior) -> Tensor | None:
        """Added to J(D); ``z`` is the latent batch that produced the fakes."""
        return None

    def generator_term(self, aux_fake: dict[str, Tensor], y: Tensor | None, z: Tensor, prior: Prior) -> Tensor | None:
        """Added to J(G)."""
        return None


AUXILIARY: Registry[AuxiliaryCost] = Registry("auxiliary cost")
