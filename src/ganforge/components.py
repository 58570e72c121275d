"""Builds the parts of an experiment from a validated config, through the registries."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganforge import config as config_schema
from ganforge.config import Config
from ganforge.data import DATASETS, Dataset
from ganforge.errors import ConfigError, GanforgeError
from ganforge.game import AUXILIARY, COSTS, PRIORS, REGULARIZERS, AuxiliaryCost, Cost, Prior, Regularizer
from ganforge.game.games import GAMES, Game, GameParts
from ganforge.io import available_memory_bytes
from ganforge.models import DISCRIMINATORS, GENERATORS

# what a player is built with besides its config parameters (``layout``: a table's encoding, given by
# the data to the players that take it: data_context)
_G_CONTEXT = {"latent_dim": 0, "out_shape": (), "n_classes": 0, "layout": None}
_D_CONTEXT = {"in_shape": (), "n_classes": 0, "layout": None}
# the kinds of players a game may name (Game.player_kinds), each with its registry and build context
_PLAYER_KINDS = {"generator": (GENERATORS, _G_CONTEXT), "discriminator": (DISCRIMINATORS, _D_CONTEXT)}


def validate(cfg: Config) -> None:
    """Check every component name and parameter, then how the game's parts fit together
    (``check_game``); raise ConfigError naming the config path."""
    DATASETS.validate(cfg.data.name, cfg.data.params, "data")
    PRIORS.validate(cfg.game.prior.name, cfg.game.prior.params, "game.prior")
    retired = getattr(COSTS.get(cfg.game.cost.name, "game.cost.name"), "retired_params", {})
    for key in cfg.game.cost.params:
        if key in retired:
            raise ConfigError(f"game.cost.{key}", f"the {cfg.game.cost.name} cost no longer takes {key!r}; "
                                                  f"{retired[key]}")
    COSTS.validate(cfg.game.cost.name, cfg.game.cost.params, "game.cost")
    for i, reg in enumerate(cfg.game.regularizers):
        REGULARIZERS.validate(reg.name, reg.params, f"game.regularizers.{i}")
    for i, aux in enumerate(cfg.game.auxiliary):
        AUXILIARY.validate(aux.name, aux.params, f"game.auxiliary.{i}")
    game = GAMES.get(cfg.game.name, "game.name")
    check_players(cfg, game)
    game.check_config(cfg)
    for player in game.players:
        registry, context = _PLAYER_KINDS[game.player_kinds[player]]
        component = cfg.model.player(player)
        registry.validate(component.name, component.params, f"model.{player}", context)
    from ganforge.train.updates import UPDATE_RULES  # noqa: PLC0415  (machinery beside this module)

    UPDATE_RULES.validate(cfg.train.update.name, cfg.train.update.params, "train.update")
    if "discriminator" in game.players:
        check_game(cfg)


def check_players(cfg: Config, game: type[Game]) -> None:
    """The players named by ``model`` and ``optim`` must be the game's (a section set for a player
    the game does not have would be silently ignored)."""
    allowed = ", ".join(game.players)
    for section in ("model", "optim"):
        named = getattr(cfg, section).players_set()
        fields = type(getattr(cfg, section)).model_fields
        for player in sorted(named - set(game.players)):
            if player in fields and getattr(getattr(cfg, section), player) == fields[player].default:
                continue  # the GAN's default section, as a run's recorded config (``to_dict``) spells it
            raise ConfigError(f"{section}.{player}", f"the {cfg.game.name} game has no player {player!r}; "
                                                     f"its players are {allowed}")
    for player in game.players:
        if game.player_kinds.get(player) not in _PLAYER_KINDS:
            raise ConfigError("game.name", f"the {cfg.game.name} game's player {player!r} is of an unknown kind "
                                           f"{game.player_kinds.get(player)!r}; kinds: {', '.join(_PLAYER_KINDS)}")
        if player not in type(cfg.model).model_fields and player not in (cfg.model.model_extra or {}):
            raise ConfigError(f"model.{player}", f"the {cfg.game.name} game needs the player {player!r}: set "
                                                 f"model.{player}: {{name: ...}}")


def _regularizer_list(cfg: Config, which: str) -> str:
    found = [f"{r.name} (game.regularizers.{i})" for i, r in enumerate(cfg.game.regularizers)
             if getattr(REGULARIZERS.get(r.name), which, False)]
    return ", ".join(found)


def check_game(cfg: Config) -> None:
    """Refuse combinations of valid components that do not make a sound game, naming the config
    paths and the reason. Runs on the config alone, before anything is built:

    - an input-gradient penalty (gradient_penalty, r1, r2) beside weight clipping, or beside batch
      norm in D (Gulrajani et al. 2017, sections 3 and 4);
    - a cost that needs a Lipschitz D (wasserstein) with nothing that constrains D;
    - a discriminator head that no auxiliary cost trains, an auxiliary cost without its head, or
      without the prior it needs (InfoGAN).
    """
    game, d = cfg.game, cfg.model.discriminator
    d_params = DISCRIMINATORS.validate(d.name, d.params, "model.discriminator", _D_CONTEXT)
    if cfg.game.name == "gan":
        if getattr(COSTS.get(game.cost.name), "on_features", False):
            raise ConfigError("game.cost", f"the {game.cost.name} cost compares feature vectors, not D's logits: it "
                                           "plays in the gmmn and mmd_gan games (game.name)")
        if d_params.get("out_features"):
            raise ConfigError("model.discriminator.out_features", "the gan game needs one logit per example; a "
                                                                  "feature output is for the mmd_gan game's critic")
    regs = [(i, r.name, REGULARIZERS.get(r.name)) for i, r in enumerate(game.regularizers)]
    penalties = _regularizer_list(cfg, "input_gradient")
    if penalties:
        for i, name, reg in regs:
            if getattr(reg, "clips_weights", False):
                raise ConfigError(
                    f"game.regularizers.{i}",
                    f"{name} cannot be combined with the input-gradient penalty {penalties}: weight clipping "
                    "bounds D's Lipschitz constant by constraining its weights, which pushes the critic towards "
                    "overly simple functions and works against the penalty that enforces the constraint on the "
                    "gradient itself (Gulrajani et al. 2017, section 3); keep one of them")
        if d_params.get("batch_norm"):
            raise ConfigError(
                "model.discriminator.batch_norm",
                f"batch norm in D cannot be combined with the input-gradient penalty {penalties}: the penalty "
                "constrains the gradient of D's output with respect to each input separately, and batch norm "
                "makes each output depend on the whole batch (Gulrajani et al. 2017, section 4); set "
                "batch_norm: false (spectral_norm: true is compatible), or drop the penalty")
    if getattr(COSTS.get(game.cost.name), "needs_lipschitz", False):
        if not _regularizer_list(cfg, "lipschitz") and not d_params.get("spectral_norm"):
            raise ConfigError(
                "game.cost",
                f"the {game.cost.name} cost needs a Lipschitz critic, and nothing in this config constrains D; "
                "add game.regularizers: [{name: weight_clip, clip: 0.01}] (the original WGAN: what this cost "
                "did by itself before ganforge issue 11) or [{name: gradient_penalty}] (WGAN-GP), or set "
                "spectral_norm: true in model.discriminator")
    # the heads D will have, when its class says (``auxiliary_heads(params)``; a discriminator
    # registered without it is checked when built: forward_aux must exist)
    heads_of = getattr(DISCRIMINATORS.get(d.name), "auxiliary_heads", None)
    heads: dict[str, str] | None = None if heads_of is None else heads_of(d_params)
    read: set[str] = set()
    for i, aux in enumerate(game.auxiliary):
        cls = AUXILIARY.get(aux.name)
        needed = tuple(getattr(cls, "heads", ()))
        read.update(needed)
        missing = [] if heads is None else [h for h in needed if h not in heads]
        if missing:
            hint = getattr(cls, "HINT", "use a discriminator with that head")
            raise ConfigError(f"game.auxiliary.{i}",
                              f"{aux.name} reads the discriminator's {missing[0]!r} head, which model.discriminator "
                              f"({d.name} with these parameters) does not have; {hint}")
        prior = getattr(cls, "required_prior", None)
        if prior is not None and game.prior.name != prior:
            raise ConfigError("game.prior.name", f"the {aux.name} auxiliary cost (game.auxiliary.{i}) needs the "
                                                 f"{prior!r} prior, got {game.prior.name!r}")
        check = getattr(cls, "check_config", None)
        if check is not None:
            check(PRIORS.validate(game.prior.name, game.prior.params, "game.prior"), d_params)
    for head, param in (heads or {}).items():
        if head not in read:
            readers = [n for n in AUXILIARY.names() if head in getattr(AUXILIARY.get(n), "heads", ())]
            fix = f"add game.auxiliary: [{{name: {readers[0]}}}]" if readers else "remove it"
            raise ConfigError(f"model.discriminator.{param}",
                              f"adds the discriminator head {head!r}, which no auxiliary cost trains: the game "
                              f"would be played with a dead head (and DDP would wait for its gradients); {fix}, "
                              f"or remove model.discriminator.{param}")


@dataclass
class Experiment:
    """Everything the game needs, built from a config: the data, the players by name and the game."""

    dataset: Dataset
    prior: Prior
    players: dict[str, nn.Module]
    cost: Cost
    regularizers: list[Regularizer]
    auxiliary: list[AuxiliaryCost]
    game: Game

    @property
    def generator(self) -> nn.Module:
        """The game's sampling player (``Game.sampler``): the GAN's generator."""
        return self.players[self.game.sampler or "generator"]

    @generator.setter
    def generator(self, module: nn.Module) -> None:
        self.players[self.game.sampler or "generator"] = module

    @property
    def discriminator(self) -> nn.Module | None:
        """The GAN's discriminator; None in a game without one."""
        return self.players.get("discriminator")

    @discriminator.setter
    def discriminator(self, module: nn.Module) -> None:
        self.players["discriminator"] = module


def build_dataset(cfg: Config) -> Dataset:
    return DATASETS.build(cfg.data.name, cfg.data.params, where="data")


def build_generator(cfg: Config, dataset_shape: tuple[int, ...], n_classes: int, prior: Prior) -> nn.Module:
    return GENERATORS.build(cfg.model.generator.name, cfg.model.generator.params, where="model.generator",
                            latent_dim=prior.latent_dim, out_shape=tuple(dataset_shape), n_classes=n_classes)


def build_experiment(cfg: Config, dataset: Dataset | None = None) -> Experiment:
    """Build data, prior, players and game. Weights are initialized from ``train.seed``."""
    validate(cfg)  # every name and parameter, before the data is read
    dataset = dataset if dataset is not None else build_dataset(cfg)
    prior = PRIORS.build(cfg.game.prior.name, cfg.game.prior.params, where="game.prior")
    check_players_fit(cfg, dataset, prior)
    cost = COSTS.build(cfg.game.cost.name, cfg.game.cost.params, where="game.cost")
    if callable(getattr(cost, "after_discriminator_step", None)):  # a cost written before issue 11
        raise ConfigError("game.cost", f"{cfg.game.cost.name!r} defines after_discriminator_step, which costs no "
                                       "longer have: a cost is a pure function of D's logits; a projection of D's "
                                       "weights after its step is a regularizer (see weight_clip)")
    regs = [REGULARIZERS.build(r.name, r.params, where=f"game.regularizers.{i}")
            for i, r in enumerate(cfg.game.regularizers)]
    aux = [AUXILIARY.build(a.name, a.params, where=f"game.auxiliary.{i}") for i, a in enumerate(cfg.game.auxiliary)]
    game_cls = GAMES.get(cfg.game.name, "game.name")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)  # the players are built in the game's order from this seed
        players = {name: build_player(cfg, name, game_cls.player_kinds[name], dataset, prior)
                   for name in game_cls.players}
    discriminator = players.get("discriminator")
    pack = getattr(discriminator, "pack", 1)
    if cfg.train.batch_size % pack:
        raise ConfigError("train.batch_size", f"must be divisible by model.discriminator.pack={pack}, "
                                              f"got {cfg.train.batch_size}")
    if aux and not hasattr(discriminator, "forward_aux"):
        raise ConfigError("game.auxiliary", f"needs a discriminator with auxiliary heads (forward_aux); "
                                            f"{cfg.model.discriminator.name!r} has none")
    game = game_cls(GameParts(prior, cost, regs, aux))
    return Experiment(dataset, prior, players, cost, regs, aux, game)


def build_player(cfg: Config, name: str, kind: str, dataset: Dataset, prior: Prior) -> nn.Module:
    """Player ``name`` of the game, a ``kind`` (generator or discriminator) built from ``model.<name>``."""
    component = cfg.model.player(name)
    registry = GENERATORS if kind == "generator" else DISCRIMINATORS
    extra = data_context(registry.get(component.name, f"model.{name}.name"), dataset)
    if kind == "generator":
        return GENERATORS.build(component.name, component.params, where=f"model.{name}",
                                latent_dim=prior.latent_dim, out_shape=tuple(dataset.shape),
                                n_classes=dataset.n_classes, **extra)
    return DISCRIMINATORS.build(component.name, component.params, where=f"model.{name}",
                                in_shape=tuple(dataset.shape), n_classes=dataset.n_classes, **extra)


def data_context(player_cls: object, dataset: Dataset) -> dict[str, object]:
    """What the data gives its players besides shapes and classes (``Dataset.player_context()``: a
    table's encoding layout), restricted to the parameters the player's class takes."""
    context = getattr(dataset, "player_context", None)
    if context is None:
        return {}
    target = player_cls.__init__ if inspect.isclass(player_cls) else player_cls  # type: ignore[misc]
    params = inspect.signature(target).parameters
    return {k: v for k, v in context().items() if k in params}


def check_players_fit(cfg: Config, dataset: Dataset, prior: Prior) -> int:
    """Refuse players whose weights take more than half of the host's available memory, before they
    are allocated: they are first built on the meta device, which allocates nothing. Returns the
    weights' bytes. (Half: sampling needs activations besides the weights, and training about five
    times the weights; the trainer checks that on its device once the players are built.)"""
    game_cls = GAMES.get(cfg.game.name, "game.name")
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            sizes = {f"model.{name}": state_bytes(build_player(cfg, name, game_cls.player_kinds[name], dataset, prior))
                     for name in game_cls.players}
    except GanforgeError:
        raise
    except Exception:  # a player (a plugin's, say) that reads tensor values while it is built: no estimate
        return 0
    need, avail = sum(sizes.values()), available_memory_bytes("cpu")
    if need > avail // 2:
        where = max(sizes, key=sizes.__getitem__)
        gib = 1 << 30
        each = ", ".join(f"{k.removeprefix('model.')} {v / gib:,.1f} GiB" for k, v in sizes.items())
        raise ConfigError(where, f"the players' weights alone need {need / gib:,.1f} GiB ({each}; latent_dim "
                                 f"{prior.latent_dim}), more than half of the host's {avail / gib:.1f} GiB available "
                                 "(training needs about five times the weights); use narrower players or a smaller "
                                 "latent_dim")
    return need


def state_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers (works on the meta device)."""
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def config_from_dict(raw: object, overrides: list[str] | tuple[str, ...] = (), source: str = "") -> Config:
    """The config schema's ``config_from_dict``, then every component checked against its registry."""
    cfg = config_schema.config_from_dict(raw, overrides, source)
    validate(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (a path or a packaged recipe's name), apply overrides, check the components:
    a typo fails here, before any data is read or any file written."""
    cfg = config_schema.load_config(path, overrides)
    validate(cfg)
    return cfg
