"""The players' costs, as pure functions of the discriminator's logits.

Every formulation is registered in ``COSTS`` and gives, from D's raw logits on real and fake
examples, the discriminator's cost J(D) and the generator's cost J(G). Nothing here calls
``backward``, touches an optimizer or changes D's weights: the trainer does, and constraints on D
(weight clipping, penalties) are regularizers (regularizers.py; docs/architecture.md).

Notation: ``d_real = D(x)`` and ``d_fake = D(G(z))`` are logits of shape (N,); the probability that
D assigns to "real" is sigmoid(logit). log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from ganforge.registry import Registry

LOG4 = math.log(4.0)


class Cost:
    """One formulation of the game.

    Attributes:
        probabilistic: D's sigmoid(logit) is a probability of "real" (so D = 1/2 at equilibrium).
        generator_needs_real: J(G) depends on D's logits for real examples (relativistic costs).
        needs_lipschitz: the cost is only meaningful for a Lipschitz D (the Wasserstein critic); the
            config must then constrain D (components.check_game).
    """

    probabilistic: bool = False
    generator_needs_real: bool = False
    needs_lipschitz: bool = False

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """J(D) from logits ``d_real (N,)`` and ``d_fake (M,)``; a scalar."""
        raise NotImplementedError

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        """J(G) from logits ``d_fake (M,)`` (and ``d_real (N,)`` for relativistic costs)."""
        raise NotImplementedError

    def value(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        """The value of the game V(D, G) that D maximizes: minus J(D)."""
        return -self.discriminator_cost(d_real, d_fake)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


COSTS: Registry[Cost] = Registry("cost")


def _bce_discriminator(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # -E[log D(x)] - E[log(1 - D(G(z)))]
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


@COSTS.register("minimax")
class Minimax(Cost):
    """M-GAN (Goodfellow et al. 2014): J(D) = -E log D(x) - E log(1 - D(G(z))), J(G) = -J(D).

    Only the fake term of -J(D) depends on G, so J(G) = E log(1 - D(G(z))) when ``d_real`` is not
    given. At D = 1/2 everywhere the game's value V = -J(D) is -log 4.
    """

    probabilistic = True

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return _bce_discriminator(d_real, d_fake)

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        cost = -F.softplus(d_fake).mean()
        if d_real is not None:
            cost = cost - F.softplus(-d_real).mean()
        return cost


@COSTS.register("non_saturating")
class NonSaturating(Cost):
    """NS-GAN: D's cost as in the minimax game; G maximizes log D(G(z)) instead, J(G) = -E log D(G(z)).

    Its gradient stays large when D confidently rejects the fakes (the minimax G cost saturates).
    """

    probabilistic = True

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return _bce_discriminator(d_real, d_fake)

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        return F.softplus(-d_fake).mean()


@COSTS.register("wasserstein")
class Wasserstein(Cost):
    """WGAN critic (Arjovsky et al. 2017): J(D) = E D(G(z)) - E D(x), J(G) = -E D(G(z)).

    The critic must be kept (approximately) 1-Lipschitz, which this cost does not do itself: name the
    constraint in the config, ``weight_clip`` (the original WGAN, clip 0.01), ``gradient_penalty``
    (WGAN-GP) or a spectrally normalized D. A config without one is refused (``needs_lipschitz``).
    Before issue 11 this cost clipped D's weights at 0.01 by itself, even beside a gradient penalty.
    """

    needs_lipschitz = True
    # parameters this cost had before issue 11, and what replaces them (named in the config error)
    retired_params = {"weight_clip": "clipping is the weight_clip regularizer now: remove game.cost.weight_clip "
                                     "and add game.regularizers: [{name: weight_clip, clip: <value>}] (the original "
                                     "WGAN), or nothing beside a gradient penalty or spectral norm"}

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return d_fake.mean() - d_real.mean()

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        return -d_fake.mean()


@COSTS.register("hinge")
class Hinge(Cost):
    """Hinge cost (Lim & Ye 2017; SNGAN, BigGAN): J(D) = E relu(1 - D(x)) + E relu(1 + D(G(z))),
    J(G) = -E D(G(z))."""

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        return -d_fake.mean()


@COSTS.register("least_squares")
class LeastSquares(Cost):
    """LSGAN (Mao et al. 2017): J(D) = 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2,
    J(G) = 1/2 E (D(G(z)) - c)^2, on D's raw output. Defaults a=0, b=1, c=1."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        self.a, self.b, self.c = a, b, c

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return 0.5 * ((d_real - self.b) ** 2).mean() + 0.5 * ((d_fake - self.a) ** 2).mean()

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        return 0.5 * ((d_fake - self.c) ** 2).mean()

    def __repr__(self) -> str:
        return f"LeastSquares(a={self.a}, b={self.b}, c={self.c})"


@COSTS.register("relativistic_average")
class RelativisticAverage(Cost):
    """RaGAN (Jolicoeur-Martineau 2018): D judges whether real data looks more real than the
    average fake, and vice versa. With C(x) the logit:
    J(D) = -E log sigmoid(C(x) - E C(G(z))) - E log(1 - sigmoid(C(G(z)) - E C(x))),
    J(G) = the same with real and fake swapped."""

    generator_needs_real = True

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return (F.softplus(-(d_real - d_fake.mean())).mean()
                + F.softplus(d_fake - d_real.mean()).mean())

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        if d_real is None:
            raise ValueError("the relativistic average cost needs D's logits on real examples for G")
        return (F.softplus(-(d_fake - d_real.mean())).mean()
                + F.softplus(d_real - d_fake.mean()).mean())


@COSTS.register("relativistic_pairing")
class RelativisticPairing(Cost):
    """RpGAN (Jolicoeur-Martineau 2019; the cost of R3GAN, Huang et al. 2024): D judges each real
    example against the fake of the same index. With C the logit and (x_i, G(z_i)) paired:
    J(D) = E_i softplus(-(C(x_i) - C(G(z_i)))) = -E_i log sigmoid(C(x_i) - C(G(z_i))),
    J(G) = E_i softplus(-(C(G(z_i)) - C(x_i))).

    As in R3GAN's reference code (``softplus(D(G(z)) - D(x))`` for D, ``softplus(D(x) - D(G(z)))``
    for G). Pairs are formed by position, so ``d_real`` and ``d_fake`` must have the same length
    and order (the GAN game keeps both: one fused pass over [real; fake], and in the G phase D on
    the same real batch as the fakes). At C(x_i) = C(G(z_i)) both costs are log 2 and each logit's
    gradient is ±1/(2N). R3GAN pairs it with R1 + R2 (``game.regularizers: [{name: r1}, {name: r2}]``),
    with which it converges locally (their Theorem; R1 alone can diverge)."""

    generator_needs_real = True
    paired = True  # real and fake batches of one size, pair i = (x_i, G(z_i))

    @staticmethod
    def _paired(d_real: Tensor, d_fake: Tensor) -> None:
        if d_real.shape != d_fake.shape:
            raise ValueError(f"the relativistic pairing cost pairs real and fake examples by index: D's logits "
                             f"must have the same shape, got {tuple(d_real.shape)} and {tuple(d_fake.shape)}")

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        self._paired(d_real, d_fake)
        return F.softplus(d_fake - d_real).mean()

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        if d_real is None:
            raise ValueError("the relativistic pairing cost needs D's logits on real examples for G")
        self._paired(d_real, d_fake)
        return F.softplus(d_real - d_fake).mean()
