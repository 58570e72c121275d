"""The GAN game itself: priors p(z), the players' costs, and regularizers of the discriminator."""

from ganforge.game.losses import COSTS, Cost
from ganforge.game.priors import PRIORS, Prior
from ganforge.game.regularizers import REGULARIZERS, Regularizer

__all__ = ["COSTS", "PRIORS", "REGULARIZERS", "Cost", "Prior", "Regularizer"]
