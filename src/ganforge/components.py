"""Builds the parts of an experiment from a validated config, through the registries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganforge import config as config_schema
from ganforge.config import Config
from ganforge.data import DATASETS, Dataset
from ganforge.errors import ConfigError, GanforgeError
from ganforge.game import AUXILIARY, COSTS, PRIORS, REGULARIZERS, AuxiliaryCost, Cost, Prior, Regularizer
from ganforge.io import available_memory_bytes
from ganforge.models import DISCRIMINATORS, GENERATORS

_G_CONTEXT = {"latent_dim": 0, "out_shape": (), "n_classes": 0}
_D_CONTEXT = {"in_shape": (), "n_classes": 0}


def validate(cfg: Config) -> None:
    """Check every component name and parameter; raise ConfigError naming the config path."""
    DATASETS.validate(cfg.data.name, cfg.data.params, "data")
    PRIORS.validate(cfg.game.prior.name, cfg.game.prior.params, "game.prior")
    COSTS.validate(cfg.game.cost.name, cfg.game.cost.params, "game.cost")
    for i, reg in enumerate(cfg.game.regularizers):
        REGULARIZERS.validate(reg.name, reg.params, f"game.regularizers.{i}")
    for i, aux in enumerate(cfg.game.auxiliary):
        AUXILIARY.validate(aux.name, aux.params, f"game.auxiliary.{i}")
    GENERATORS.validate(cfg.model.generator.name, cfg.model.generator.params, "model.generator", _G_CONTEXT)
    DISCRIMINATORS.validate(cfg.model.discriminator.name, cfg.model.discriminator.params,
                            "model.discriminator", _D_CONTEXT)


@dataclass
class Experiment:
    """Everything the game needs, built from a config."""

    dataset: Dataset
    prior: Prior
    generator: nn.Module
    discriminator: nn.Module
    cost: Cost
    regularizers: list[Regularizer]
    auxiliary: list[AuxiliaryCost]


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
    regs = [REGULARIZERS.build(r.name, r.params, where=f"game.regularizers.{i}")
            for i, r in enumerate(cfg.game.regularizers)]
    aux = [AUXILIARY.build(a.name, a.params, where=f"game.auxiliary.{i}") for i, a in enumerate(cfg.game.auxiliary)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        generator = build_generator(cfg, dataset.shape, dataset.n_classes, prior)
        discriminator = DISCRIMINATORS.build(cfg.model.discriminator.name, cfg.model.discriminator.params,
                                             where="model.discriminator", in_shape=tuple(dataset.shape),
                                             n_classes=dataset.n_classes)
    pack = getattr(discriminator, "pack", 1)
    if cfg.train.batch_size % pack:
        raise ConfigError("train.batch_size", f"must be divisible by model.discriminator.pack={pack}, "
                                              f"got {cfg.train.batch_size}")
    if aux and not hasattr(discriminator, "forward_aux"):
        raise ConfigError("game.auxiliary", f"needs a discriminator with auxiliary heads (forward_aux); "
                                            f"{cfg.model.discriminator.name!r} has none")
    return Experiment(dataset, prior, generator, discriminator, cost, regs, aux)


def check_players_fit(cfg: Config, dataset: Dataset, prior: Prior) -> int:
    """Refuse players whose weights take more than half of the host's available memory, before they
    are allocated: they are first built on the meta device, which allocates nothing. Returns the
    weights' bytes. (Half: sampling needs activations besides the weights, and training about five
    times the weights; the trainer checks that on its device once the players are built.)"""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            generator = build_generator(cfg, dataset.shape, dataset.n_classes, prior)
            discriminator = DISCRIMINATORS.build(cfg.model.discriminator.name, cfg.model.discriminator.params,
                                                 where="model.discriminator", in_shape=tuple(dataset.shape),
                                                 n_classes=dataset.n_classes)
    except GanforgeError:
        raise
    except Exception:  # a player (a plugin's, say) that reads tensor values while it is built: no estimate
        return 0
    sizes = {"model.generator": state_bytes(generator), "model.discriminator": state_bytes(discriminator)}
    need, avail = sum(sizes.values()), available_memory_bytes("cpu")
    if need > avail // 2:
        where = max(sizes, key=sizes.__getitem__)
        gib = 1 << 30
        raise ConfigError(where, f"the players' weights alone need {need / gib:,.1f} GiB (generator "
                                 f"{sizes['model.generator'] / gib:,.1f} GiB with latent_dim {prior.latent_dim}, "
                                 f"discriminator {sizes['model.discriminator'] / gib:,.1f} GiB), more than half of "
                                 f"the host's {avail / gib:.1f} GiB available (training needs about five times "
                                 "the weights); use narrower players or a smaller latent_dim")
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
