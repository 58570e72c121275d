"""The GAN game itself: priors p(z), the players' costs, and regularizers of the discriminator."""

from ganforge.game.auxiliary import AUXILIARY, AuxiliaryCost
from ganforge.game.losses import COSTS, Cost
from ganforge.game.priors import PRIORS, Prior
from ganforge.game.regularizers import REGULARIZERS, Regularizer
from ganforge.game import mmd  # noqa: E402,F401,I001  (registers the mmd cost and the gmmn and mmd_gan games)

__all__ = ["AUXILIARY", "AuxiliaryCost", "COSTS", "PRIORS", "REGULARIZERS", "Cost", "Prior", "Regularizer"]
