"""Games as first-class objects: which players exist, and each one's cost for a batch.

A game (registered in ``GAMES``, chosen by ``game.name``) names its players (any number: a generator
and a discriminator; one generator alone, as in moment matching; two generators and two
discriminators; an encoder, a classifier and a domain critic) and returns their costs for a batch as
named outputs. It never calls ``backward()`` and owns no optimizer: the trainer's update rule
(train/updates.py, ``train.update``) asks the game for the costs of the players it is about to
step, differentiates each player's cost with respect to that player's own parameters, and steps
that player's optimizer (``optim.<player>``).

What a game is given to play a step is a :class:`Play`: the players (bare, and as the trainer calls
them: DDP wrappers in a distributed run), the data loader, the prior and its random stream, the
autocast context and the running sums of the game's named scalars. Everything a game draws comes from
there, so a run stays reproducible bit for bit across resumes.

Writing a game: subclass :class:`Game`, declare ``players``, ``scalars`` (named running sums, each
added by one player's phase) and the player kinds (which registry builds each player), implement
``costs``, and register it: ``@GAMES.register("my_game")``. The default game is ``gan``
(:class:`GanGame`): one generator, one discriminator, the cost, regularizers and auxiliary terms of
``game.*``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.game.auxiliary import AuxiliaryCost
from ganforge.game.losses import Cost
from ganforge.game.priors import Prior
from ganforge.game.regularizers import Regularizer
from ganforge.registry import Registry


@dataclass
class Play:
    """What a game plays one step with. Built by the trainer once per run (``calls`` are DDP wrappers
    in a distributed run, the bare players otherwise); ``sums`` are the window's running sums of the
    game's ``scalars``, added on the device (no host sync)."""

    players: dict[str, nn.Module]
    calls: dict[str, Callable[..., Any]]
    loader: Any  # ganforge.data.loader.BatchLoader: ``next()`` -> (x, y or None), this process's slice
    prior: Prior
    rng: torch.Generator  # the prior's and the regularizers' stream
    device: torch.device
    batch_size: int  # the global batch
    rank: int = 0
    world_size: int = 1
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    sums: Tensor = field(default_factory=lambda: torch.zeros(0))

    def real(self) -> tuple[Tensor, Tensor | None]:
        """The next batch of real examples (this process's slice) and their labels."""
        return self.loader.next()

    def latent(self) -> Tensor:
        """This process's slice of the global latent batch (every process draws the same batch)."""
        z = self.prior.sample(self.batch_size, self.rng, self.device)
        return z[self.rank :: self.world_size] if self.world_size > 1 else z


@dataclass(frozen=True)
class GameParts:
    """The components of ``game.*`` a game may use: the prior, the cost, D's regularizers and the
    auxiliary (AC-GAN / InfoGAN) terms."""

    prior: Prior
    cost: Cost
    regularizers: Sequence[Regularizer] = ()
    auxiliary: Sequence[AuxiliaryCost] = ()


class Game:
    """A game: named players and each one's cost for a batch.

    Class attributes:
        players: the players' names, in the order the update rules step them.
        player_kinds: for each player, the registry kind that builds it from ``model.<player>``
            (``generator`` or ``discriminator``); a game with other kinds of players says which.
        short_names: short names in scalar names (``lr_g``, ``grad_norm_d``); the player's name otherwise.
        sampler: the player that makes samples (``ganforge sample``), averaged by the EMA; None for
            a game without one.
        adversaries: for a player, the opponent whose steps the unrolled rule looks through and whose
            gradient the Nagarajan-Kolter term penalizes (the GAN: the generator's is the discriminator).
        scalars: the names of the running sums the game adds in ``Play.sums``; ``scalar_players``
            says whose phase adds each (the trainer averages each over the steps of that player).
        guarded: the scalars the divergence guard watches (NaN/Inf or above ``train.guard.cost_limit``).
    """

    players: tuple[str, ...] = ()
    player_kinds: dict[str, str] = {}
    short_names: dict[str, str] = {}
    sampler: str | None = "generator"
    adversaries: dict[str, str] = {}
    scalars: tuple[str, ...] = ()
    scalar_players: tuple[str, ...] = ()
    guarded: tuple[str, ...] = ()

    def __init__(self, parts: GameParts):
        self.parts = parts

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Refuse a config (``ganforge.config.Config``) whose game section does not fit this game
        (raise ConfigError naming the path); called by ``components.validate``."""

    def short(self, player: str) -> str:
        return self.short_names.get(player, player)

    def schedule(self, n_critic: int) -> tuple[tuple[str, int], ...]:
        """The alternating order: (player, steps) phases of one training step. ``n_critic`` is
        ``train.n_critic`` (the critic's steps per generator step in a GAN)."""
        return tuple((p, 1) for p in self.players)

    def call_modules(self, players: dict[str, nn.Module]) -> dict[str, nn.Module]:
        """The modules the trainer calls through (wrapped with DDP when distributed), by name."""
        return dict(players)

    def costs(self, play: Play, players: Sequence[str], keep: bool = False) -> dict[str, Tensor]:
        """The costs of ``players`` on one batch drawn from ``play``, as scalars by player.

        Costs asked together are computed on the same batch and may share one graph (the
        simultaneous rule differentiates each with respect to its own player's parameters). With
        ``keep``, the game may keep what it computed for the next call, which then is the next
        phase's (the GAN keeps its fakes, with their graph, for the generator's step)."""
        raise NotImplementedError

    def after_step(self, play: Play, player: str) -> None:
        """Called after ``player``'s optimizer step (a projection of its weights, say)."""

    def differentiable(self, play: Play) -> str | None:
        """Why this game's costs cannot be differentiated twice (a non-differentiable layer), or None."""
        return None


GAMES: Registry[Game] = Registry("game")


def full_precision(t: Tensor) -> Tensor:
    """``t`` in float32 when autocast made it bf16 or fp16; float32 and float64 stay as they are (the
    equilibrium analysis differentiates the costs in float64)."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


class DiscriminatorPass(nn.Module):
    """D on real and fake in one module call, so that DDP sees one forward per backward even when
    D runs twice (a batch-coupled D never mixes real and fake in one pass)."""

    def __init__(self, discriminator: nn.Module, use_aux: bool):
        super().__init__()
        self.discriminator, self.use_aux = discriminator, use_aux

    def _run(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        if self.use_aux:
            logits, aux = self.discriminator.forward_aux(x, y)
            return full_precision(logits), aux
        return full_precision(self.discriminator(x, y)), {}

    def forward(self, real: Tensor, fake: Tensor, y: Tensor | None
                ) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        # real: (n, ...), fake: (m, ...) -> d_real (n,), d_fake (m,), aux dicts
        D = self.discriminator
        # one pass also when the sizes differ (Poisson-sampled real batches of DP-SGD, whose per-example
        # gradients must come from one pass: train/privacy.py); labels are shared only at equal sizes
        if getattr(D, "batch_coupled", False) or (y is not None and real.shape[0] != fake.shape[0]):
            (d_real, aux_r), (d_fake, aux_f) = self._run(real, y), self._run(fake, y)
            return d_real, d_fake, aux_r, aux_f
        n = real.shape[0]
        logits, aux = self._run(torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
        return logits[:n], logits[n:], {k: v[:n] for k, v in aux.items()}, {k: v[n:] for k, v in aux.items()}


def _takes_shard(regularizer: object) -> bool:
    """Whether ``regularizer.penalty`` accepts the ``shard`` argument (added in issue 11)."""
    params = inspect.signature(regularizer.penalty).parameters.values()  # type: ignore[attr-defined]
    return any(p.name == "shard" or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


# The GAN's running sums, in this order. ``penalty`` is the regularizers' sum; ``aux_d`` and ``aux_g``
# the auxiliary costs' (AC-GAN, InfoGAN) terms in D's and G's costs. g_cost and aux_g (slots 1 and 2)
# are added by the generator's phase, the others by every discriminator phase.
GAN_SCALARS = ("d_cost", "g_cost", "aux_g", "penalty", "aux_d", "d_real", "d_fake", "value")


@GAMES.register("gan")
class GanGame(Game):
    """The GAN (Goodfellow et al. 2014): G(z) against D(x), with the cost, regularizers and auxiliary
    terms of ``game.*``.

    The discriminator's phase draws real examples and latents, makes fakes and returns J(D) (plus the
    regularizers' penalties and the auxiliary terms); the generator's returns J(G) (plus its
    auxiliary terms). What keeps the step fast, as measured in bench/README.md:

    - D judges real and fake in one pass when it allows it (``DiscriminatorPass``);
    - with ``keep``, the last D phase's fakes are made with their graph and reused by the G phase
      (against the updated D), which saves one generator forward pass per step;
    - in the G phase D's weights are frozen while its graph is built, so no gradient is computed for
      them (a frozen weight is read at forward time; the trainer's backward comes after);
    - the scalars are added to the window's sums in one op, on the device.
    """

    players = ("generator", "discriminator")
    player_kinds = {"generator": "generator", "discriminator": "discriminator"}
    short_names = {"generator": "g", "discriminator": "d"}
    adversaries = {"generator": "discriminator"}
    scalars = GAN_SCALARS
    scalar_players = ("discriminator", "generator", "generator", "discriminator", "discriminator",
                      "discriminator", "discriminator", "discriminator")
    guarded = ("d_cost", "g_cost", "penalty", "aux_d", "aux_g")

    def __init__(self, parts: GameParts):
        super().__init__(parts)
        self._kept: tuple[Tensor, Tensor, Tensor | None, Tensor] | None = None
        self._shards: list[tuple[Any, ...]] | None = None
        self._last_outputs: tuple[Tensor, Tensor, dict[str, Tensor]] | None = None

    def schedule(self, n_critic: int) -> tuple[tuple[str, int], ...]:
        return (("discriminator", n_critic), ("generator", 1))

    def call_modules(self, players: dict[str, nn.Module]) -> dict[str, nn.Module]:
        # D on real and fake in one module call, so that DDP sees one forward per backward. The G
        # phase calls the bare D, whose weights get no gradient there, so DDP never waits for D
        # gradients that do not come (no find_unused_parameters needed).
        return {"generator": players["generator"],
                "discriminator_pass": DiscriminatorPass(players["discriminator"], bool(self.parts.auxiliary))}

    def costs(self, play: Play, players: Sequence[str], keep: bool = False) -> dict[str, Tensor]:
        wanted = set(players)
        if wanted == {"discriminator"}:
            return {"discriminator": self._discriminator_phase(play, keep)}
        if wanted == {"generator"}:
            return {"generator": self._generator_phase(play)}
        if wanted == {"generator", "discriminator"}:
            return self._both(play)
        raise ValueError(f"the gan game has the players generator and discriminator, not {sorted(wanted)}")

    # -- the discriminator -----------------------------------------------------------------------

    def _regularizer_shards(self, play: Play) -> list[tuple[Any, ...]]:
        if self._shards is None:  # ``shard`` for regularizers that take it; older ones get the old arguments
            self._shards = [((play.rank, play.world_size),) if _takes_shard(r) else ()
                            for r in self.parts.regularizers]
        return self._shards

    def _discriminator_cost(self, play: Play, real: Tensor, fake: Tensor, y: Tensor | None, z: Tensor) -> Tensor:
        parts = self.parts
        regs = parts.regularizers
        D = play.players["discriminator"]
        if any(r.needs_real_grad for r in regs):
            real = real.detach().requires_grad_(True)
        if any(r.needs_fake_grad for r in regs) and not fake.requires_grad:
            fake = fake.detach().requires_grad_(True)
        with play.autocast():  # one pass over real and fake when D allows it (see DiscriminatorPass)
            d_real, d_fake, aux_real, aux_fake = play.calls["discriminator_pass"](real, fake, y)
        d_cost = parts.cost.discriminator_cost(d_real, d_fake)
        penalty = torch.zeros((), device=d_cost.device)
        for reg, shard in zip(regs, self._regularizer_shards(play), strict=True):
            p = reg.penalty(D, real, fake, d_real, d_fake, y, play.rng, *shard)
            if p is not None:
                penalty = penalty + p
        aux_d: Tensor | None = None
        for aux in parts.auxiliary:
            t = aux.discriminator_term(aux_real, aux_fake, y, z, parts.prior)
            if t is not None:
                aux_d = t if aux_d is None else aux_d + t
        with torch.no_grad():
            if parts.cost.probabilistic:
                pr, pf = torch.sigmoid(d_real).mean(), torch.sigmoid(d_fake).mean()
            else:
                pr, pf = d_real.mean(), d_fake.mean()
            c = d_cost.detach()
            # one in-place add for the window's running sums (g_cost and aux_g are added by the G phase)
            zero = torch.zeros_like(c)
            a = zero if aux_d is None else aux_d.detach()
            play.sums += torch.stack([c, zero, zero, penalty.detach(), a, pr, pf, -c])
        self._last_outputs = (d_real, d_fake, aux_fake)
        return d_cost + penalty if aux_d is None else d_cost + penalty + aux_d

    def _discriminator_phase(self, play: Play, keep: bool) -> Tensor:
        real, y = play.real()
        z = play.latent()
        # With ``keep``, the fakes are made with their graph and kept for the G phase.
        with torch.set_grad_enabled(keep), play.autocast():
            fake = play.calls["generator"](z, y)
        self._kept = (fake, real, y, z) if keep else None
        return self._discriminator_cost(play, real, full_precision(fake.detach()), y, z)

    # -- the generator ---------------------------------------------------------------------------

    def _generator_aux(self, aux_fake: dict[str, Tensor], y: Tensor | None, z: Tensor) -> Tensor | None:
        total: Tensor | None = None
        for aux in self.parts.auxiliary:
            t = aux.generator_term(aux_fake, y, z, self.parts.prior)
            if t is not None:
                total = t if total is None else total + t
        return total

    def _generator_terms(self, play: Play, aux_fake: dict[str, Tensor], y: Tensor | None, z: Tensor) -> Tensor | None:
        """G's terms besides its cost (counted in ``aux_g``): the auxiliary costs', and what a game
        built on this one adds (``generator_extra``) for the fakes just made."""
        aux_g = self._generator_aux(aux_fake, y, z)
        extra = self.generator_extra(play, y)
        if extra is None:
            return aux_g
        return extra if aux_g is None else aux_g + extra

    def generator_extra(self, play: Play, y: Tensor | None) -> Tensor | None:
        """A term added to G's cost for the last fakes it made (none in the GAN)."""
        return None

    def _add_generator_sums(self, play: Play, cost_g: Tensor, aux_g: Tensor | None) -> None:
        if aux_g is None:
            play.sums[1] += cost_g.detach()
        else:
            play.sums[1:3] += torch.stack([cost_g.detach(), aux_g.detach()])

    def _generator_phase(self, play: Play) -> Tensor:
        parts, cost = self.parts, self.parts.cost
        D = play.players["discriminator"]
        if self._kept is not None:
            fake, real, y, z = self._kept
            self._kept = None
        else:
            real, y = play.real()
            z = play.latent()
            with play.autocast():
                fake = play.calls["generator"](z, y)
        d_params = [p for p in D.parameters() if p.requires_grad]  # exactly these are frozen, then restored
        for p in d_params:  # no gradients for D's weights in the G phase
            p.requires_grad_(False)
        try:
            with play.autocast():
                if parts.auxiliary:
                    d_fake, aux_fake = D.forward_aux(fake, y)
                else:
                    d_fake, aux_fake = D(fake, y), {}
                d_fake = full_precision(d_fake)
                d_real = None
                if cost.generator_needs_real:
                    with torch.no_grad():
                        d_real = full_precision(D(real, y))
        finally:
            for p in d_params:
                p.requires_grad_(True)
        cost_g = cost.generator_cost(d_fake, d_real)
        aux_g = self._generator_terms(play, aux_fake, y, z)
        self._add_generator_sums(play, cost_g, aux_g)
        return cost_g if aux_g is None else cost_g + aux_g

    # -- both at one point -------------------------------------------------------------------------

    def _both(self, play: Play) -> dict[str, Tensor]:
        """J(D) and J(G) on one batch and one pass of D (the simultaneous rule's point)."""
        real, y = play.real()
        z = play.latent()
        with play.autocast():
            fake = full_precision(play.calls["generator"](z, y))
        loss_d = self._discriminator_cost(play, real, fake, y, z)
        assert self._last_outputs is not None
        d_real, d_fake, aux_fake = self._last_outputs
        cost = self.parts.cost
        cost_g = cost.generator_cost(d_fake, d_real if cost.generator_needs_real else None)
        aux_g = self._generator_terms(play, aux_fake, y, z)
        self._add_generator_sums(play, cost_g, aux_g)
        return {"discriminator": loss_d, "generator": cost_g if aux_g is None else cost_g + aux_g}

    def after_step(self, play: Play, player: str) -> None:
        if player == "discriminator":
            for reg in self.parts.regularizers:
                reg.after_discriminator_step(play.players["discriminator"])
