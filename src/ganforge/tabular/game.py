"""The CTGAN game (Xu et al. 2019): the GAN game with a conditional generator trained by sampling.

Each batch comes with conditions (one category of one discrete column per row, drawn by the table
dataset's training-by-sampling); the generator makes rows for them and the discriminator judges
(row, condition) pairs, with the cost, regularizers and update rule of the config (the ``tabular``
recipe: WGAN-GP with PacGAN packs of 10, as CTGAN). What the GAN game lacks is the generator's
cross-entropy: for each row, the logits of the conditioned column's block against the condition's
category, so that the generator makes the rows it is asked for. It is counted in ``aux_g``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.game.games import GAMES, GanGame, Play


@GAMES.register("ctgan")
class ConditionalTableGame(GanGame):
    """The GAN game plus the conditional generator's cross-entropy (CTGAN's ``cond_loss``)."""

    def __init__(self, parts: Any):
        super().__init__(parts)
        self._mask: Tensor | None = None  # (n_conditions, n_conditions): the conditions of each one's column

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        if cfg.data.name != "table":
            raise ConfigError("game.name", f"the ctgan game plays on a table (data.name: table), not "
                                           f"{cfg.data.name!r}")

    def _column_mask(self, play: Play) -> Tensor:
        if self._mask is None:
            layout = play.players["generator"].layout
            col = torch.repeat_interleave(torch.arange(len(layout.discrete)),
                                          torch.tensor([c.width for c in layout.discrete]))
            self._mask = (col[:, None] == col[None, :]).to(play.device)
        return self._mask

    def generator_extra(self, play: Play, y: Tensor | None) -> Tensor | None:
        logits = getattr(play.players["generator"], "condition_logits", None)
        if y is None or logits is None:
            return None
        # the softmax over the conditioned column's block only: other columns' logits are masked out
        logits = logits.float().masked_fill(~self._column_mask(play)[y], float("-inf"))
        return F.cross_entropy(logits, y)
