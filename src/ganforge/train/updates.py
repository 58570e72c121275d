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
- ``unrolled`` (Metz et al. 2017, ``steps`` k): a player with an adversary (the GAN's generator)
  steps on its cost through k differentiable steps of its adversary.
- ``extragradient`` (Korpelevich 1976; Gidel et al. 2019): every player extrapolates with its
  optimizer, takes its gradient there, and steps from the original point.
- ``optimistic`` (Daskalakis et al. 2018): every player's optimizer is fed 2 g_t - g_{t-1}.
- ``consensus`` (Mescheder et al. 2017, ``weight`` gamma): each player's gradient of
  L_i + gamma/2 |v|^2, v the game's simultaneous-gradient field.

``alternating``, ``simultaneous``, ``extragradient`` and ``optimistic`` take ``nagarajan_kolter``
(eta, default 0): the Nagarajan-Kolter term eta |d L_a / d theta_a|^2 added to the cost of each player
that has an adversary a (Nagarajan & Kolter 2017, on the GAN: the generator's cost gets eta times
the squared norm of the discriminator's gradient).

A rule sees the trainer through :class:`Steps`: the players' trainable parameters, their optimizers,
gradient clearing and norms. Rules with their own state (optimistic steps keep the previous
gradient) return it from ``state_dict`` so that a checkpoint resumes them exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganforge.errors import ConfigError
from ganforge.game.games import Game, Play
from ganforge.registry import Registry

if TYPE_CHECKING:
    from ganforge.config import Config

NonNegFloat = Annotated[float, Field(ge=0)]


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
        opt = self.optimizers[player]
        if getattr(opt, "per_example", False):  # DP-SGD (train/privacy.py): per-example gradients too
            opt.zero_grad(set_to_none=True)
            return
        for p in self.all_params(player):
            p.grad = None

    def backward(self, player: str, loss: Tensor) -> None:
        """The gradient of ``loss`` with respect to ``player``'s parameters, in their ``.grad``."""
        self.clear_grads(player)
        # a DP player's per-example hooks (train/privacy.py) stay quiet in the other players' backward
        quiet = [opt.hooks for name, opt in self.optimizers.items()
                 if name != player and getattr(opt, "per_example", False)]
        if not quiet:
            loss.backward()
            return
        for hooks in quiet:
            hooks.disable_hooks()
        try:
            loss.backward()
        finally:
            for hooks in quiet:
                hooks.enable_hooks()

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


class WithNagarajanKolter(UpdateRule):
    """A rule that may add the Nagarajan-Kolter term (``nagarajan_kolter`` = eta > 0: eta |d L_a / d theta_a|^2,
    the adversary's cost gradient, added to the cost of each player with an adversary a), which
    differentiates twice."""

    name = ""  # the rule's registered name, for messages

    def __init__(self, nagarajan_kolter: NonNegFloat = 0.0):  # eta: the Nagarajan-Kolter term's weight
        self.nagarajan_kolter = float(nagarajan_kolter)
        self.second_order = self.nagarajan_kolter > 0.0

    def check(self, game: Game, players: dict[str, nn.Module], cfg: Config) -> None:
        if self.nagarajan_kolter > 0.0:
            check_nagarajan_kolter(game, players, cfg, self.name)


@UPDATE_RULES.register("alternating")
class Alternating(WithNagarajanKolter):
    """The game's phases in turn (the GAN: ``n_critic`` D steps, then a G step against the updated D;
    Goodfellow et al. 2014, Algorithm 1). Each phase draws its own batch, except that the last step
    of a phase may hand what it computed to the next (the GAN's G step reuses the last D step's
    fakes).

    With ``nagarajan_kolter`` = eta > 0, a player with an adversary (the GAN's generator) steps on
    its cost plus eta |d L_a / d theta_a|^2, its adversary's cost gradient taken on the same batch
    (the game's joint costs, which draw that batch: the GAN's generator then does not reuse the last
    D step's fakes)."""

    name = "alternating"

    def __init__(self, nagarajan_kolter: NonNegFloat = 0.0):  # eta: the Nagarajan-Kolter term's weight
        super().__init__(nagarajan_kolter)
        self.distributed = self.nagarajan_kolter == 0.0

    def step(self, steps: Steps) -> None:
        if self.nagarajan_kolter > 0.0:
            self._step_nagarajan_kolter(steps)
            return
        game, play = steps.game, steps.play
        schedule = game.schedule(steps.n_critic)
        for k, (player, repeats) in enumerate(schedule):
            for i in range(repeats):
                keep = i == repeats - 1 and k + 1 < len(schedule)
                loss = game.costs(play, (player,), keep=keep)[player]
                steps.backward(player, loss)
                steps.record_norm(player)
                steps.step(player)

    def _step_nagarajan_kolter(self, steps: Steps) -> None:
        game, play = steps.game, steps.play
        schedule = game.schedule(steps.n_critic)
        for k, (player, repeats) in enumerate(schedule):
            adversary = game.adversaries.get(player)
            for i in range(repeats):
                if adversary is None:
                    following = schedule[k + 1][0] if k + 1 < len(schedule) else None
                    keep = i == repeats - 1 and following is not None and following not in game.adversaries
                    loss = game.costs(play, (player,), keep=keep)[player]
                    steps.backward(player, loss)
                else:
                    before = play.sums.clone()
                    losses = game.costs(play, (player, adversary))
                    keep_scalars_of(game, play, (player,), before)  # the adversary's were added by its phase
                    loss = losses[player] + self.nagarajan_kolter * adversary_gradient_sq(steps, adversary,
                                                                                          losses[adversary])
                    params = steps.params(player)
                    steps.clear_grads(player)
                    steps.set_grads(player, params, torch.autograd.grad(loss, params, allow_unused=True))
                steps.record_norm(player)
                steps.step(player)

    def __repr__(self) -> str:
        return f"Alternating(nagarajan_kolter={self.nagarajan_kolter})" if self.nagarajan_kolter else "Alternating()"


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
class Simultaneous(WithNagarajanKolter):
    """Every player steps on gradients taken at the same point. A player with several steps in the
    game's schedule (the GAN's critic with ``n_critic`` > 1) takes the extra ones alone first.
    ``nagarajan_kolter`` = eta > 0 adds eta |d L_a / d theta_a|^2 (at the same point) to the cost of
    each player with an adversary a."""

    distributed = False
    name = "simultaneous"

    def __repr__(self) -> str:
        return f"Simultaneous(nagarajan_kolter={self.nagarajan_kolter})" if self.nagarajan_kolter else "Simultaneous()"

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
        if self.nagarajan_kolter > 0.0:
            losses = add_nagarajan_kolter(steps, players, losses, self.nagarajan_kolter)
        grads = joint_gradients(steps, players, losses)
        for player in players:
            steps.set_grads(player, *grads[player])
            steps.record_norm(player)
        for player in players:
            steps.optimizers[player].step()
        for player in players:
            game.after_step(play, player)


# -- what the rules below share ---------------------------------------------------------------------


def keep_scalars_of(game: Game, play: Play, players: Sequence[str], before: Tensor) -> None:
    """Undo what a joint cost call added to the window's sums for scalars not owned by ``players``
    (``Game.scalar_players``): a rule that asks for an adversary's cost only to differentiate it
    (Nagarajan-Kolter, unrolling) must not count that adversary's scalars twice. On the device."""
    others = [i for i, owner in enumerate(game.scalar_players) if owner not in players]
    if others:
        idx = torch.tensor(others, device=play.sums.device)
        play.sums.index_copy_(0, idx, before.index_select(0, idx))


def adversary_gradient_sq(steps: Steps, adversary: str, loss: Tensor) -> Tensor:
    """|d loss / d theta_adversary|^2 with its graph (differentiable in every player's parameters)."""
    params = steps.params(adversary)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    terms = [g.pow(2).sum() for g in grads if g is not None]
    return torch.stack(terms).sum() if terms else loss.new_zeros(())


def add_nagarajan_kolter(steps: Steps, players: Sequence[str], losses: dict[str, Tensor], eta: float
                         ) -> dict[str, Tensor]:
    """The costs with eta |d L_a / d theta_a|^2 added to each player's whose adversary a is among them
    (Nagarajan & Kolter 2017: the generator's cost plus eta |grad_D V|^2, on the same batch)."""
    out = dict(losses)
    for player in players:
        adversary = steps.game.adversaries.get(player)
        if adversary is not None and adversary in losses:
            out[player] = losses[player] + eta * adversary_gradient_sq(steps, adversary, losses[adversary])
    return out


def simultaneous_groups(game: Game, n_critic: int) -> list[tuple[str, ...]]:
    """The groups of players that step together in one training step of a simultaneous-style rule:
    a player with several steps in the game's schedule takes the extra ones alone first (as in
    ``simultaneous``), then every player steps at one point."""
    schedule = game.schedule(n_critic)
    groups: list[tuple[str, ...]] = []
    for player, repeats in schedule:
        groups += [(player,)] * (repeats - 1)
    groups.append(tuple(p for p, _ in schedule))
    return groups


def _gradients(steps: Steps, players: tuple[str, ...], eta: float
               ) -> dict[str, tuple[list[torch.nn.Parameter], tuple[Tensor | None, ...]]]:
    """Each player's gradient of its own cost (plus the Nagarajan-Kolter term) at the current point,
    on one batch the game draws."""
    losses = steps.game.costs(steps.play, players)
    if eta > 0.0:
        losses = add_nagarajan_kolter(steps, players, losses, eta)
    return joint_gradients(steps, players, losses)


def _step_together(steps: Steps, players: tuple[str, ...],
                   grads: dict[str, tuple[list[torch.nn.Parameter], tuple[Tensor | None, ...]]]) -> None:
    """Every player of ``players`` steps its optimizer on ``grads``, then the game's projections."""
    for player in players:
        steps.clear_grads(player)
        steps.set_grads(player, *grads[player])
        steps.record_norm(player)
    for player in players:
        steps.optimizers[player].step()
    for player in players:
        steps.game.after_step(steps.play, player)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def check_second_derivatives(game: Game, players: dict[str, nn.Module], cfg: Config, which: Iterable[str],
                             rule: str) -> None:
    """Refuse (ConfigError on ``train.update``) a player of ``which`` through whose layers autograd
    cannot differentiate twice (a layer marked once-differentiable, one without a double backward):
    a double backward of a small probe, |d (sum out^2) / d(theta, x)|^2, on a batch of 2 (of packs),
    through every node of its graph. (Autograd would not raise in the rules themselves: their
    ``autograd.grad`` prunes a once-differentiable layer's error node and drops its terms.) Nothing of the run
    changes: the players are probed in eval mode, their buffers restored and the random streams
    forked (the probe draws its latents from its own seeded stream)."""
    prior = game.parts.prior
    probe = torch.Generator().manual_seed(0)
    n_generated = next((players[p] for p in game.players if game.player_kinds.get(p) == "generator"), None)
    for name in dict.fromkeys(which):
        module = players[name]
        kind = game.player_kinds.get(name)
        n = 2 * int(getattr(module, "pack", 1))
        y = torch.zeros(n, dtype=torch.long) if getattr(module, "n_classes", 0) else None
        training = [(m, m.training) for m in module.modules()]
        buffers = [b.detach().clone() for b in module.buffers()]
        grads_before = [p.grad for p in module.parameters()]
        try:
            with torch.random.fork_rng(devices=[]), torch.enable_grad():
                module.eval()
                z = prior.sample(n, probe, torch.device("cpu"))
                inputs: list[Tensor] = []
                if kind == "generator":
                    out = module(z, y)
                else:
                    if n_generated is None:
                        continue
                    with torch.no_grad():
                        x = n_generated(z, y if getattr(n_generated, "n_classes", 0) else None)
                    x = x.detach().float().requires_grad_(True)
                    inputs = [x]
                    out = module(x, y)
                params = [p for p in module.parameters() if p.requires_grad] + inputs
                total = out.float().pow(2).sum()
                grads = torch.autograd.grad(total, params, create_graph=True, allow_unused=True)
                sq = [g.pow(2).sum() for g in grads if g is not None and g.requires_grad]
                if sq:
                    # backward() runs every node of the graph: a once-differentiable layer's error node,
                    # which autograd.grad(inputs=...) would prune and so silently miss its terms, raises
                    torch.stack(sq).sum().backward()
        except RuntimeError as exc:
            raise ConfigError(
                "train.update",
                f"the {rule} update differentiates twice, and model.{name} ({cfg.model.player(name).name}) has "
                f"a layer without second derivatives ({_first_line(exc)}); use players whose layers all have "
                "them (the built-in mlp, dcgan, resnet, dirac and linear players do), or the alternating, "
                "simultaneous, extragradient or optimistic update without nagarajan_kolter") from None
        finally:
            for m, mode in training:
                m.training = mode
            with torch.no_grad():
                for b, saved in zip(module.buffers(), buffers, strict=True):
                    b.copy_(saved)
            for p, g in zip(module.parameters(), grads_before, strict=True):
                p.grad = g


def check_nagarajan_kolter(game: Game, players: dict[str, nn.Module], cfg: Config, rule: str) -> None:
    """The Nagarajan-Kolter term needs an adversary, and second derivatives of both players."""
    if not game.adversaries:
        raise ConfigError("train.update.nagarajan_kolter",
                          f"the {cfg.game.name} game has no player with an adversary, whose gradient the "
                          "Nagarajan-Kolter term penalizes; set nagarajan_kolter: 0 (or leave it out)")
    which = [p for pair in game.adversaries.items() for p in pair]
    check_second_derivatives(game, players, cfg, which, f"{rule} (nagarajan_kolter > 0)")


# -- extragradient, optimistic, consensus ---------------------------------------------------------


@UPDATE_RULES.register("extragradient")
class Extragradient(WithNagarajanKolter):
    """Extragradient steps (Korpelevich 1976; for GANs, Gidel et al. 2019, "A variational inequality
    perspective on generative adversarial networks", Algorithm 1 with each player's optimizer).

    Every player takes its gradient at the current point theta and steps its optimizer from there to
    the extrapolated point theta'; the players take their gradients at theta' (on a new batch, as
    the stochastic version does); the parameters are restored to theta, and every player steps its
    optimizer from theta on the gradients of theta'. The optimizer's state is updated at both steps:
    with Adam this is Extra-Adam (Gidel et al., Algorithm 4: the moments see both gradients); with
    plain SGD, theta <- theta - h g(theta - h g(theta)). The game's projections (weight clipping)
    follow both steps. Buffers (batch-norm statistics, spectral norm's vectors) follow both passes.
    A player with several steps in the schedule takes the extra ones alone first, each one an
    extragradient step of that player alone."""

    distributed = False
    name = "extragradient"

    def step(self, steps: Steps) -> None:
        for group in simultaneous_groups(steps.game, steps.n_critic):
            self._step(steps, group)

    def _step(self, steps: Steps, players: tuple[str, ...]) -> None:
        game, play = steps.game, steps.play
        params = {p: steps.params(p) for p in players}
        with torch.no_grad():
            origin = {p: [t.detach().clone() for t in params[p]] for p in players}
        before = play.sums.clone()
        grads = _gradients(steps, players, self.nagarajan_kolter)
        play.sums.copy_(before)  # the window's scalars are those of the gradients that step (at theta')
        for player in players:  # the extrapolation
            steps.clear_grads(player)
            steps.set_grads(player, *grads[player])
            steps.optimizers[player].step()
            game.after_step(play, player)
        grads = _gradients(steps, players, self.nagarajan_kolter)
        with torch.no_grad():
            for player in players:
                torch._foreach_copy_(params[player], origin[player])
        _step_together(steps, players, grads)

    def __repr__(self) -> str:
        return f"Extragradient(nagarajan_kolter={self.nagarajan_kolter})"


@UPDATE_RULES.register("optimistic")
class Optimistic(WithNagarajanKolter):
    """Optimistic mirror descent (Daskalakis et al. 2018, "Training GANs with optimism"): every player
    takes its gradient g_t at the current point (all at one point, as ``simultaneous``) and its
    optimizer is fed 2 g_t - g_{t-1}, g_{t-1} its gradient of the previous step (with SGD, OMD:
    theta <- theta - 2h g_t + h g_{t-1}; with Adam, the optimistic Adam of the paper's appendix up to
    the moments seeing the extrapolated gradient). The first step has no g_{t-1} and feeds g_0.

    The previous gradients are this rule's state: a checkpoint holds them (key ``update``), so a
    resumed run continues bit for bit. A player with several steps in the schedule takes the extra
    ones alone first (optimistic too, on its own previous gradient)."""

    distributed = False
    name = "optimistic"

    def __init__(self, nagarajan_kolter: NonNegFloat = 0.0):  # eta: the Nagarajan-Kolter term's weight
        super().__init__(nagarajan_kolter)
        self._previous: dict[str, list[Tensor | None]] = {}

    def step(self, steps: Steps) -> None:
        for group in simultaneous_groups(steps.game, steps.n_critic):
            self._step(steps, group)

    def _step(self, steps: Steps, players: tuple[str, ...]) -> None:
        grads = _gradients(steps, players, self.nagarajan_kolter)
        fed = {}
        for player in players:
            params, now = grads[player]
            previous = self._previous.get(player)
            if previous is None or len(previous) != len(now):  # the first step (or the trainable set changed)
                previous = [None] * len(now)
            mixed = tuple(g if g is None or p is None else 2.0 * g - p.to(g) for g, p in zip(now, previous, strict=True))
            self._previous[player] = [None if g is None else g.detach() for g in now]
            fed[player] = (params, mixed)
        _step_together(steps, players, fed)

    def state_dict(self) -> dict[str, Any]:
        if not self._previous:
            return {}
        return {"previous": {player: [g for g in grads] for player, grads in self._previous.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._previous = {player: list(grads) for player, grads in (state.get("previous") or {}).items()}

    def __repr__(self) -> str:
        return f"Optimistic(nagarajan_kolter={self.nagarajan_kolter})"


@UPDATE_RULES.register("consensus")
class Consensus(UpdateRule):
    """Consensus optimization (Mescheder, Nowozin & Geiger 2017, "The numerics of GANs"): with v the
    game's simultaneous-gradient field (every player's gradient of its own cost, concatenated), each
    player steps on its gradient of L_i + weight/2 |v|^2, the second term by double backward. The
    regularizer pulls every player towards points where the field vanishes; on the bilinear game
    it turns the rotation (eigenvalues +-i) into a contraction (eigenvalues -weight +- i).
    A player with several steps in the schedule takes the extra ones alone first (with its own
    gradient as v)."""

    distributed = False
    second_order = True

    def __init__(self, weight: NonNegFloat = 10.0):  # gamma of gamma/2 |v|^2 (Mescheder et al. 2017 use 10)
        self.weight = float(weight)

    def check(self, game: Game, players: dict[str, nn.Module], cfg: Config) -> None:
        check_second_derivatives(game, players, cfg, game.players, "consensus")

    def step(self, steps: Steps) -> None:
        for group in simultaneous_groups(steps.game, steps.n_critic):
            self._step(steps, group)

    def _step(self, steps: Steps, players: tuple[str, ...]) -> None:
        losses = steps.game.costs(steps.play, players)
        params = {p: steps.params(p) for p in players}
        field = {p: torch.autograd.grad(losses[p], params[p], create_graph=True, allow_unused=True)
                 for p in players}
        flat = [t for p in players for t in params[p]]
        squares = [g.pow(2).sum() for p in players for g in field[p] if g is not None]
        extra: tuple[Tensor | None, ...] = (None,) * len(flat)
        if squares and self.weight > 0.0:
            sq = torch.stack(squares).sum()
            if sq.requires_grad:
                extra = torch.autograd.grad(0.5 * self.weight * sq, flat, allow_unused=True)
        grads, i = {}, 0
        for p in players:
            out = []
            for g in field[p]:
                e = extra[i]
                i += 1
                if g is None:
                    out.append(e)
                else:
                    out.append(g.detach() if e is None else g.detach() + e)
            grads[p] = (params[p], tuple(out))
        _step_together(steps, players, grads)

    def __repr__(self) -> str:
        return f"Consensus(weight={self.weight})"


# -- unrolled -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def substituted(module: nn.Module, tensors: dict[str, Tensor]) -> Iterator[None]:
    """Within the block, ``module``'s parameters named in ``tensors`` (names of ``named_parameters``)
    are those tensors, so that any call of the module (the game's, a regularizer's) is a function of
    them: functional reparametrization, as ``torch.func.functional_call`` does for one call."""
    saved: list[tuple[nn.Module, str, Any]] = []
    try:
        for name, tensor in tensors.items():
            path, _, attr = name.rpartition(".")
            owner = module.get_submodule(path) if path else module
            saved.append((owner, attr, owner._parameters[attr]))
            owner._parameters[attr] = tensor  # type: ignore[assignment]  # read by Module.__getattr__
        yield
    finally:
        for owner, attr, original in reversed(saved):
            owner._parameters[attr] = original


class DifferentiableStep:
    """One step of a player's optimizer as a differentiable function of the parameters and the
    gradient, from the optimizer's current state (not changed): SGD (momentum, dampening, Nesterov,
    weight decay) and Adam / AdamW (the moments and the step count the optimizer holds now).
    sqrt(v) is taken as sqrt(max(v, 1e-30)): the same value where it matters (1e-15 against Adam's
    eps), and no infinite derivative where v = 0."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]):
        if len(optimizer.param_groups) != 1:
            raise ValueError("differentiable steps need an optimizer with one parameter group")
        self.group = optimizer.param_groups[0]
        self.kind = ("adamw" if isinstance(optimizer, torch.optim.AdamW) else
                     "adam" if isinstance(optimizer, torch.optim.Adam) else
                     "sgd" if isinstance(optimizer, torch.optim.SGD) else None)
        if self.kind is None:
            raise ValueError(f"no differentiable step of {type(optimizer).__name__}")
        state = [optimizer.state.get(p, {}) for p in params]

        def held(s: dict, key: str) -> Tensor | None:  # the optimizer's tensor, never written here
            t = s.get(key)
            return None if t is None else t.detach()

        if self.kind == "sgd":
            self.buffers: list[Tensor | None] = [held(s, "momentum_buffer") for s in state]
        else:
            self.m: list[Tensor | None] = [held(s, "exp_avg") for s in state]
            self.v: list[Tensor | None] = [held(s, "exp_avg_sq") for s in state]
            self.t: list[float] = [float(s["step"]) if "step" in s else 0.0 for s in state]

    def __call__(self, theta: list[Tensor], grads: Sequence[Tensor | None]) -> list[Tensor]:
        group = self.group
        lr, wd = float(group["lr"]), float(group.get("weight_decay", 0.0))
        out = []
        for i, (p, g) in enumerate(zip(theta, grads, strict=True)):
            if g is None:  # no gradient: the optimizer would skip the parameter
                out.append(p)
                continue
            if self.kind == "sgd":
                if wd:
                    g = g + wd * p
                momentum = float(group.get("momentum", 0.0))
                if momentum:
                    buf = self.buffers[i]
                    buf = g if buf is None else momentum * buf + (1.0 - float(group.get("dampening", 0.0))) * g
                    self.buffers[i] = buf
                    g = g + momentum * buf if group.get("nesterov", False) else buf
                out.append(p - lr * g)
                continue
            beta1, beta2 = group["betas"]
            eps = float(group["eps"])
            if self.kind == "adamw":
                p = p * (1.0 - lr * wd)
            elif wd:
                g = g + wd * p
            m, v = self.m[i], self.v[i]
            m = (1.0 - beta1) * g if m is None else beta1 * m + (1.0 - beta1) * g
            v = (1.0 - beta2) * g * g if v is None else beta2 * v + (1.0 - beta2) * g * g
            self.t[i] += 1.0
            t = self.t[i]
            bias1, bias2 = 1.0 - beta1 ** t, 1.0 - beta2 ** t
            denom = v.clamp_min(1e-30).sqrt() / math.sqrt(bias2) + eps
            out.append(p - (lr / bias1) * m / denom)
            self.m[i], self.v[i] = m, v
        return out


@UPDATE_RULES.register("unrolled")
class Unrolled(UpdateRule):
    """Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017). The game's phases in turn, as
    ``alternating``; a player with an adversary (``Game.adversaries``: the GAN's generator, whose
    adversary is the discriminator) steps on its cost at theta_a^k, the adversary's parameters after
    k = ``steps`` differentiable steps of the adversary on its own cost from where it is now:
    theta_a^{j+1} = theta_a^j - step(d L_a(theta, theta_a^j) / d theta_a^j), each on a batch the game
    draws (with ``same_batch``, the default, as Metz et al.'s code does: all k steps and the final
    cost on one batch, the same real examples and the same latent draws), with the graph kept
    (create_graph), so that the gradient flows through the unrolled steps
    back to the player (the term of Metz et al.'s equation 12 that makes the player anticipate its
    adversary's response). The adversary's step is its own optimizer's, made differentiable
    (``DifferentiableStep``): SGD from its momentum buffer, or Adam / AdamW from the moments and step
    count the optimizer holds now (Metz et al. unroll Adam); the optimizer itself is not advanced.
    The adversary then takes its normal steps in its own phase (the GAN's next discriminator
    phase). The adversary's buffers are restored after the unrolling, and the scalars of the window
    are those of the player's final cost and of the adversary's own phase.

    Refused (at set-up): a game without adversaries; a batch-coupled adversary (batch norm,
    minibatch standard deviation, packing: the unrolled steps' gradients would mix the examples);
    an adversary optimizer other than sgd, adam or adamw; players without second derivatives."""

    distributed = False
    second_order = True

    def __init__(self, steps: Annotated[int, Field(gt=0)] = 5,  # k, the adversary steps unrolled (Metz et al.: 5 to 10)
                 same_batch: bool = True):  # every unrolled step and the final cost on one batch (Metz et al.)
        self.steps = int(steps)
        self.same_batch = bool(same_batch)

    def check(self, game: Game, players: dict[str, nn.Module], cfg: Config) -> None:
        if not game.adversaries:
            raise ConfigError("train.update", f"unrolled looks through the steps of a player's adversary, and the "
                                              f"{cfg.game.name} game has no player with one; use alternating, "
                                              "simultaneous, extragradient, optimistic or consensus")
        for adversary in game.adversaries.values():
            module = players[adversary]
            coupled = bool(getattr(module, "batch_coupled", False)) or any(
                isinstance(m, _BatchNorm) for m in module.modules())
            if coupled:
                raise ConfigError("train.update", f"unrolled cannot unroll model.{adversary}: it is batch-coupled "
                                                  "(batch norm, minibatch std or packing), so the unrolled steps' "
                                                  "gradients would mix the batch's examples; use a "
                                                  f"{adversary} without them, or another update rule")
            name = cfg.optim.player(adversary).name
            if name not in ("sgd", "adam", "adamw"):
                raise ConfigError(f"optim.{adversary}.name", f"unrolled makes the steps of optim.{adversary} "
                                                             f"differentiable, which it can for sgd, adam and adamw, "
                                                             f"not {name}")
        which = [p for pair in game.adversaries.items() for p in pair]
        check_second_derivatives(game, players, cfg, which, "unrolled")

    def step(self, steps: Steps) -> None:
        game, play = steps.game, steps.play
        for player, repeats in game.schedule(steps.n_critic):
            adversary = game.adversaries.get(player)
            for _ in range(repeats):
                if adversary is None:
                    loss = game.costs(play, (player,))[player]
                    steps.backward(player, loss)
                else:
                    params = steps.params(player)
                    grads = self.unrolled_gradient(steps, player, adversary, params)
                    steps.clear_grads(player)
                    steps.set_grads(player, params, grads)
                steps.record_norm(player)
                steps.step(player)

    def unrolled_gradient(self, steps: Steps, player: str, adversary: str, params: list[nn.Parameter]
                          ) -> tuple[Tensor | None, ...]:
        """``player``'s gradient of its cost at its adversary's unrolled parameters."""
        game, play = steps.game, steps.play
        module = play.players[adversary]
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        names = [n for n, _ in named]
        step = DifferentiableStep(steps.optimizers[adversary], [p for _, p in named])
        theta = [p.detach().requires_grad_(True) for _, p in named]
        buffers = [b.detach().clone() for b in module.buffers()]
        before = play.sums.clone()
        replay, rng_state = play, None
        if self.same_batch:  # one real batch, and the same latents (the same draws) in every call
            replay = dataclasses.replace(play, loader=_OneBatch(play.real()))
            rng_state = play.rng.get_state()
        try:
            for _ in range(self.steps):
                if rng_state is not None:
                    play.rng.set_state(rng_state)
                with substituted(module, dict(zip(names, theta, strict=True))):
                    loss = game.costs(replay, (player, adversary))[adversary]
                g = torch.autograd.grad(loss, theta, create_graph=True, allow_unused=True)
                theta = step(theta, g)
            play.sums.copy_(before)
            if rng_state is not None:
                play.rng.set_state(rng_state)
            with substituted(module, dict(zip(names, theta, strict=True))):
                loss = game.costs(replay, (player, adversary))[player]
            keep_scalars_of(game, play, (player,), before)
            return torch.autograd.grad(loss, params, allow_unused=True)
        finally:
            with torch.no_grad():
                for b, saved in zip(module.buffers(), buffers, strict=True):
                    b.copy_(saved)

    def __repr__(self) -> str:
        return f"Unrolled(steps={self.steps}, same_batch={self.same_batch})"


class _OneBatch:
    """A loader that gives one batch, again and again (the unrolled steps' replay)."""

    def __init__(self, batch: tuple[Tensor, Tensor | None]):
        self.batch = batch

    def next(self) -> tuple[Tensor, Tensor | None]:
        return self.batch
