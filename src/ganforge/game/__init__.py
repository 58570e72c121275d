"""The game: priors p(z), the players' costs, regularizers of the discriminator, and the games
(games.py; the moment-matching games and the mmd cost in mmd.py, registered on import)."""

from ganforge.game import mmd  # noqa: F401  (registers the mmd cost and the gmmn and mmd_gan games)
from ganforge.game.auxiliary import AUXILIARY, AuxiliaryCost
from ganforge.game.losses import COSTS, Cost
from ganforge.game.priors import PRIORS, Prior
from ganforge.game.regularizers import REGULARIZERS, Regularizer

__all__ = ["AUXILIARY", "AuxiliaryCost", "COSTS", "PRIORS", "REGULARIZERS", "Cost", "Prior", "Regularizer"]

from ganforge.game import closed_form  # noqa: E402,F401  (registers the bilinear game)
from ganforge.tabular import game as _table_game  # noqa: E402,F401  (registers the ctgan game)
