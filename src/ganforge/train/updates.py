"""Update rules: how the players of a game take their gradient steps (``train.update``).

An update rule asks the game (game/games.py) for the costs of the players it is about to step, on a
batch the game draws, differentiates each player's cost with respect to that player's own parameters
only, and steps that player's optimizer. It is usable with any game; the rules that differentiate
twice (consensus, unrolled, the Nagarajan-Kolter term) need players whose layers have second
derivatives.

Registered rules (``train.update: {name: ..., <params>}``; a bare name is accepted):

- ``alternating`` (the default): the game's phases in turn, e.g. n_critic D steps, then a G step
  against the updated D (Goodfellow et al. 2014, Algorithm 1).
- ``simultaneous``: every player's gradient taken at the same point, then every player steps.

A rule sees the trainer through :class:`Steps`: the players' trainable parameters, their optimizers,
gradient clearing and norms. Rules with their own state (optimistic steps keep the previous
gradient) return it from ``state_dict`` so that a checkpoint resumes them exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ganforge.game.games import Game, Play
from ganforge.registry import Registry


def grad_norm_of(params: list[torch.nn.Parameter]) -> Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


@dataclass
class Steps:
    """The trainer's side of a step, as an update rule uses it.

    ``params(player)`` lists the player's parameters that are trainable now (a callback may freeze
    some); ``optimizers`` step them; ``n_critic`` is ``train.n_critic``; ``want_norms`` asks for
    the gradient norms of this step (``grad_norm_<short name>``), put in ``norms``."""

    game: Game
    play: Play
    params: Callable[[str], list[torch.nn.Parameter]]
    all_params: Callable[[str], list[torch.nn.Parameter]]
    optimizers: dict[str, torch.optim.Optimizer]
    n_critic: int
    want_norms: bool
    norms: dict[str, Tensor]

    def clear_grads(self, player: str) -> None:
        """``zero_grad(set_to_none=True)`` without the optimizer's per-call hooks and profiling
        wrapper, which cost about 50 us a call on ring8 (bench/README.md)."""
        for p in self.all_params(player):
            p.grad = None

    def backward(self, player: str, loss: Tensor) -> None:
        """The gradient of ``loss`` with respect to ``player``'s parameters, in their ``.grad``."""
        self.clear_grads(player)
        loss.backward()

    def set_grads(self, player: str, params: list[torch.nn.Parameter], grads: tuple[Tensor | None, ...]) -> None:
        for p, g in zip(params, grads, strict=True):
            p.grad = g

    def record_norm(self, player: str) -> None:
        if self.want_norms:
            self.norms[f"grad_norm_{self.game.short(player)}"] = grad_norm_of(self.all_params(player))

    def step(self, player: str) -> None:
        """Step ``player``'s optimizer on the gradients in ``.grad``, then the game's projection."""
        self.optimizers[player].step()
        self.game.after_step(self.play, player)


class UpdateRule:
    """How the players take their steps. Attributes:

    distributed: works under DDP (rules that take gradients with ``torch.autograd.grad`` bypass
        DDP's reduction, so they refuse distributed runs).
    second_order: differentiates twice (the players need second derivatives).
    """

    distributed: bool = True
    second_order: bool = False

    def step(self, steps: Steps) -> None:
        """One training step of every player."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


UPDATE_RULES: Registry[UpdateRule] = Registry("update rule")


@UPDATE_RULES.register("alternating")
class Alternating(UpdateRule):
    """The game's phases in turn (the GAN: ``n_critic`` D steps, then a G step against the updated D;
    Goodfellow et al. 2014, Algorithm 1). Each phase draws its own batch, except that the last step
    of a phase may hand what it computed to the next (the GAN's G step reuses the last D step's
    fakes)."""

    def step(self, steps: Steps) -> None:
        game, play = steps.game, steps.play
        schedule = game.schedule(steps.n_critic)
        for k, (player, repeats) in enumerate(schedule):
            for i in range(repeats):
                keep = i == repeats - 1 and k + 1 < len(schedule)
                loss = game.costs(play, (player,), keep=keep)[player]
                steps.backward(player, loss)
                steps.record_norm(player)
                steps.step(player)


def joint_gradients(steps: Steps, players: tuple[str, ...], losses: dict[str, Tensor]
                    ) -> dict[str, tuple[list[torch.nn.Parameter], tuple[Tensor | None, ...]]]:
    """Each player's gradient of its own cost at the same point (``torch.autograd.grad``)."""
    out = {}
    for i, player in enumerate(players):
        params = steps.params(player)
        grads = torch.autograd.grad(losses[player], params, retain_graph=i + 1 < len(players),
                                    allow_unused=True)
        out[player] = (params, grads)
    return out


@UPDATE_RULES.register("simultaneous")
class Simultaneous(UpdateRule):
    """Every player steps on gradients taken at the same point. A player with several steps in the
    game's schedule (the GAN's critic with ``n_critic`` > 1) takes the extra ones alone first."""

    distributed = False

    def step(self, steps: Steps) -> None:
        game, play = steps.game, steps.play
        schedule = game.schedule(steps.n_critic)
        for player, repeats in schedule:
            for _ in range(repeats - 1):
                loss = game.costs(play, (player,))[player]
                steps.backward(player, loss)
                steps.record_norm(player)
                steps.step(player)
        players = tuple(p for p, _ in schedule)
        losses = game.costs(play, players)
        grads = joint_gradients(steps, players, losses)
        for player in players:
            steps.set_grads(player, *grads[player])
            steps.record_norm(player)
        for player in players:
            steps.optimizers[player].step()
        for player in players:
            game.after_step(play, player)
