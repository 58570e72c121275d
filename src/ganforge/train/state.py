"""Everything that resuming needs: players, EMA generator, optimizers, step, RNG streams."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.config import Config, OptimizerConfig
from ganforge.data.loader import BatchLoader


def _fused_available(params: list[nn.Parameter]) -> bool:
    """PyTorch's fused kernels (one pass over every parameter) run on CUDA and CPU. On CPU they beat
    the foreach implementation, which loops over per-tensor kernels there: ring8's D at 1 thread,
    60 us vs 213 us per Adam step; a 32x32 DCGAN D, 353 us vs 434 us (bench/README.md). (With more
    threads than free cores, every OpenMP region, fused or foreach, collapses alike: 42 ms vs 43 ms
    measured on a loaded 2-core machine; set train.threads.)"""
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cuda", "cpu") for p in params)


def build_optimizer(params: list[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """One optimizer per player, each with its own learning rate (TTUR, Heusel et al. 2017)."""
    # The fused kernels (one pass over all parameters) where PyTorch has them, else foreach.
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    fused = {"fused": True} if _fused_available(params) else {"foreach": True}
    factories = {
        "adam": lambda: torch.optim.Adam(params, betas=cfg.betas, **common, **fused),
        "adamw": lambda: torch.optim.AdamW(params, betas=cfg.betas, **common, **fused),
        "sgd": lambda: torch.optim.SGD(params, momentum=cfg.momentum, **common, **fused),
        "rmsprop": lambda: torch.optim.RMSprop(params, momentum=cfg.momentum, **common, foreach=True),
    }
    return factories[cfg.name]()


def lr_factor(cfg: OptimizerConfig, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at ``step``: warm-up, then the schedule's decay."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    frac = min(1.0, max(0.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)))
    schedules = {
        "constant": lambda: 1.0,
        "linear": lambda: 1.0 - frac,
        "cosine": lambda: 0.5 * (1.0 + math.cos(math.pi * frac)),
    }
    return schedules[cfg.schedule]()


@dataclass
class TrainState:
    """The whole state of a run at a step boundary; ``state_dict`` is what a checkpoint holds."""

    generator: nn.Module
    discriminator: nn.Module
    ema_generator: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loader: BatchLoader
    rng: torch.Generator  # the prior's and the regularizers' random stream
    step: int = 0  # generator steps completed
    lr_scale: float = 1.0  # lowered by the divergence guard
    extra: dict[str, Any] = field(default_factory=dict)  # small JSON-able records (guard events)

    @classmethod
    def create(cls, cfg: Config, generator: nn.Module, discriminator: nn.Module, loader: BatchLoader) -> TrainState:
        ema = None
        if cfg.train.ema_decay > 0:
            ema = copy.deepcopy(generator).eval()
            ema.requires_grad_(False)
        return cls(
            generator=generator,
            discriminator=discriminator,
            ema_generator=ema,
            opt_g=build_optimizer(list(generator.parameters()), cfg.optim.generator),
            opt_d=build_optimizer(list(discriminator.parameters()), cfg.optim.discriminator),
            loader=loader,
            rng=torch.Generator().manual_seed(cfg.train.seed * 7919 + 1),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "lr_scale": self.lr_scale,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema_generator": None if self.ema_generator is None else self.ema_generator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "loader": self.loader.state_dict(),
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "extra": self.extra,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.lr_scale = float(state["lr_scale"])
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.ema_generator is not None and state.get("ema_generator") is not None:
            self.ema_generator.load_state_dict(state["ema_generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.loader.load_state_dict(state["loader"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.extra = dict(state.get("extra") or {})

    @property
    def sampler(self) -> nn.Module:
        """The generator to sample from: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator
