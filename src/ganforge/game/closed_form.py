"""Games with closed forms: the lab bench of the update rules (train/updates.py).

- The Dirac-GAN (Mescheder et al. 2018) is the ``gan`` game itself, played on ``data: {name: dirac}``
  by the players of models/dirac.py (G = delta_theta, D(x) = psi x); recipe ``dirac-gan``.
- The bilinear game min_x max_y x.y (``game.name: bilinear``), registered here: two players ``x``
  and ``y``, each a vector of the data's shape built as a generator from ``model.x`` and
  ``model.y`` (the ``dirac`` generator: its parameter is the player), with the costs
  L_x = x.y and L_y = -x.y. Its simultaneous-gradient field is v(x, y) = (y, -x), a rotation:
  its Jacobian has the eigenvalues +-i, simultaneous gradient steps spiral out, alternating ones
  cycle, and extragradient, optimistic and consensus steps converge to the equilibrium (0, 0)
  (tests/game/test_closed_form_games.py compares every rule with its linear map).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ganforge.game.games import GAMES, Game, Play


@GAMES.register("bilinear")
class BilinearGame(Game):
    """min_x max_y x.y: L_x = x.y, L_y = -x.y. Needs ``model.x`` and ``model.y`` (e.g.
    ``{name: dirac, init: 1.0}``) and any data, whose shape is the players' (``dirac``: scalars).
    The player ``y`` is ``x``'s adversary (the unrolled rule looks through ``y``'s steps; the
    Nagarajan-Kolter term adds eta |dL_y/dy|^2 = eta |x|^2 to ``x``'s cost). The scalar ``value``
    is x.y, added by ``x``'s phase."""

    players = ("x", "y")
    player_kinds = {"x": "generator", "y": "generator"}
    sampler = "x"
    adversaries = {"x": "y"}
    scalars = ("value",)
    scalar_players = ("x",)
    guarded = ("value",)

    def costs(self, play: Play, players: Sequence[str], keep: bool = False) -> dict[str, Tensor]:
        wanted = set(players)
        if not wanted or not wanted <= set(self.players):
            raise ValueError(f"the bilinear game has the players x and y, not {sorted(wanted)}")
        z = torch.zeros(1, play.prior.latent_dim, device=play.device)  # the dirac players ignore z
        x, y = play.calls["x"](z)[0], play.calls["y"](z)[0]  # (*shape,) each
        value = (x * y).sum()
        if "x" in wanted:
            play.sums += value.detach().float().reshape(1)
        out = {}
        if "x" in wanted:
            out["x"] = value
        if "y" in wanted:
            out["y"] = -value
        return out
