"""Everything that resuming needs: players, EMA generator, optimizers, step, RNG streams."""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganforge.config import Config, OptimizerConfig
from ganforge.data.loader import BatchLoader

# Latents per standing-statistics pass (rounded up to whole training batches): 1024 gives every BN
# channel of an image G at least 1024 x H x W values, far more than the 0.1-std / 1.25x-variance
# accuracy asked of the statistics needs.
STANDING_SAMPLES = 1024


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


def batch_norms(module: nn.Module) -> list[_BatchNorm]:
    """The batch norms of ``module`` that keep running statistics: ``nn.BatchNorm1d/2d/3d`` (also
    inside ConditionalBatchNorm2d), ``nn.SyncBatchNorm`` and CrossProcessBatchNorm (both subclass
    ``_BatchNorm``)."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def copied_buffers(ema: nn.Module, generator: nn.Module) -> Iterator[tuple[Tensor, Tensor]]:
    """(EMA buffer, G buffer) pairs of every buffer except the batch norms' running statistics,
    which the EMA generator measures on its own weights (``standing_statistics``). What remains,
    e.g. spectral norm's power-iteration vectors, follows G."""
    for me, mg in zip(ema.modules(), generator.modules(), strict=True):
        if isinstance(me, _BatchNorm) and me.track_running_stats:
            continue
        yield from zip(me.buffers(recurse=False), mg.buffers(recurse=False), strict=True)


@dataclass(frozen=True)
class StandingStatistics:
    """How the EMA generator's batch-norm statistics are measured: its own forward passes on a
    dedicated latent (and label) stream seeded from ``seed``, the same inputs every time."""

    prior: Any  # ganforge.game.priors.Prior
    n_classes: int
    seed: int
    batch_size: int
    device: torch.device
    n_samples: int = STANDING_SAMPLES
    # the labels' distribution (a table's conditions are drawn with the categories' frequencies when
    # sampling, and so here); None: uniform over the classes
    label_probs: Tensor | None = None

    @classmethod
    def for_config(cls, cfg: Config, prior: Any, n_classes: int, device: torch.device | str = "cpu",
                   label_probs: Tensor | None = None) -> StandingStatistics:
        """What the trainer uses for a run of ``cfg``: a reader of an older checkpoint (whose EMA copy
        holds G's statistics, no ``ema_statistics`` record) gets the same statistics with this."""
        return cls(prior, n_classes, cfg.train.seed * 7919 + 2, cfg.train.batch_size, torch.device(device),
                   label_probs=label_probs)


@torch.no_grad()
def standing_statistics(generator: nn.Module, how: StandingStatistics) -> None:
    """Recompute ``generator``'s batch-norm running statistics from its own activations.

    BigGAN's "standing statistics" (Brock et al. 2019, Sec. 3 and App. C.1): the running means and
    variances are reset and re-estimated as the plain average (momentum 1/(i+1) at pass i) over
    ceil(n_samples / batch_size) batches of the training batch size, with only the batch norms in
    train mode (no dropout draws, no spectral-norm power iteration) and no autocast. Deterministic:
    the latents and labels come from a private generator seeded with ``how.seed``, and every other
    random stream (torch's global CPU and CUDA streams, which a custom layer might draw from) is
    forked and restored, so a run's trajectory does not depend on when this is called. Statistics
    are computed locally in every process (no all-reduce, even for synchronized batch norms): every
    process holds the same weights and draws the same inputs, so they agree without communicating,
    and one process may call this alone."""
    bns = batch_norms(generator)
    if not bns:
        return
    was_training = [(m, m.training) for m in generator.modules()]
    momenta = [m.momentum for m in bns]
    generator.eval()
    for m in bns:
        m.reset_running_stats()
        m.train()
        # the plain, local batch norm (CrossProcessBatchNorm and SyncBatchNorm would all-reduce)
        m.forward = types.MethodType(_BatchNorm.forward, m)  # type: ignore[method-assign]
    device = torch.device(how.device)
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    stream = torch.Generator().manual_seed(how.seed)
    n_batches = max(1, math.ceil(how.n_samples / how.batch_size))
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            for i in range(n_batches):
                for m in bns:
                    # the cumulative average over the passes: what momentum=None does, without the
                    # host read of num_batches_tracked that it costs on every pass
                    m.momentum = 1.0 / (i + 1)
                z = how.prior.sample(how.batch_size, stream, device)  # (batch, latent_dim)
                if not how.n_classes:
                    y = None
                elif how.label_probs is not None:
                    y = torch.multinomial(how.label_probs, how.batch_size, replacement=True, generator=stream).to(device)
                else:
                    y = torch.randint(how.n_classes, (how.batch_size,), generator=stream).to(device)
                generator(z, y)
    finally:
        for m, momentum in zip(bns, momenta, strict=True):
            m.momentum = momentum
            del m.forward
        for m, training in was_training:
            m.training = training


# Checkpoint keys of the GAN's optimizers, as written before issue 12; another player's is ``opt_<name>``.
_OPTIMIZER_KEYS = {"generator": "opt_g", "discriminator": "opt_d"}


def optimizer_key(player: str) -> str:
    return _OPTIMIZER_KEYS.get(player, f"opt_{player}")


@dataclass
class TrainState:
    """The whole state of a run at a step boundary; ``state_dict`` is what a checkpoint holds.

    ``players`` and ``optimizers`` are the game's, by player name (``generator`` and ``discriminator``
    in a GAN: also readable as ``generator``, ``discriminator``, ``opt_g`` and ``opt_d``). The EMA
    averages the game's sampling player (the generator): its weights are updated by the trainer every
    step (``ema_weights``, no statistics); reading ``ema_generator`` (or ``sampler``, or ``state_dict``)
    first gives it batch-norm statistics of its own weights when they are stale
    (``refresh_ema_statistics``). ``update_rule`` is the update rule, whose own state (if any) the
    checkpoint holds too."""

    players: dict[str, nn.Module]
    ema_weights: nn.Module | None  # the EMA copy as the trainer updates it; read it as ``ema_generator``
    optimizers: dict[str, torch.optim.Optimizer]
    loader: BatchLoader
    rng: torch.Generator  # the prior's and the regularizers' random stream
    step: int = 0  # training steps completed (the generator's steps in a GAN)
    lr_scale: float = 1.0  # lowered by the divergence guard
    extra: dict[str, Any] = field(default_factory=dict)  # small JSON-able records (guard events)
    standing: StandingStatistics | None = None  # how the EMA copy's BN statistics are measured
    ema_statistics_stale: bool = True  # the EMA weights changed since their BN statistics were measured
    cuda_rng: list[Tensor] | None = None  # CUDA states read from a checkpoint on a machine without CUDA
    sampler_name: str | None = "generator"  # the player the EMA averages and samples come from
    update_rule: Any = None  # ganforge.train.updates.UpdateRule (state_dict / load_state_dict)

    @classmethod
    def create(cls, cfg: Config, players: dict[str, nn.Module], loader: BatchLoader, prior: Any = None,
               n_classes: int = 0, device: torch.device | str = "cpu", sampler: str | None = "generator",
               update_rule: Any = None, label_probs: Tensor | None = None) -> TrainState:
        """``prior``, ``n_classes`` and ``device`` are what the EMA generator's standing statistics
        draw with; without a prior, its batch norms keep G's statistics as copied at creation."""
        ema = None
        if cfg.train.ema_decay > 0 and sampler is not None:
            ema = copy.deepcopy(players[sampler]).eval()
            ema.requires_grad_(False)
        standing = None if prior is None else StandingStatistics.for_config(cfg, prior, n_classes, device,
                                                                             label_probs)
        return cls(
            players=dict(players),
            ema_weights=ema,
            optimizers={name: build_optimizer(list(m.parameters()), cfg.optim.player(name))
                        for name, m in players.items()},
            loader=loader,
            rng=torch.Generator().manual_seed(cfg.train.seed * 7919 + 1),
            standing=standing,
            sampler_name=sampler,
            update_rule=update_rule,
        )

    @property
    def generator(self) -> nn.Module:
        return self.players[self.sampler_name or "generator"]

    @property
    def discriminator(self) -> nn.Module | None:
        return self.players.get("discriminator")

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.optimizers["generator"]

    @property
    def opt_d(self) -> torch.optim.Optimizer:
        return self.optimizers["discriminator"]

    def refresh_ema_statistics(self, force: bool = False) -> None:
        """Measure the EMA generator's batch-norm statistics on its own weights (standing statistics),
        unless they were already measured for these weights. Changes no random stream of the run."""
        if self.ema_weights is None or self.standing is None or not (self.ema_statistics_stale or force):
            return
        standing_statistics(self.ema_weights, self.standing)
        self.ema_statistics_stale = False

    @property
    def ema_generator(self) -> nn.Module | None:
        """The EMA generator, with batch-norm statistics of its own weights: ready to sample from."""
        self.refresh_ema_statistics()
        return self.ema_weights

    def state_dict(self) -> dict[str, Any]:
        ema = self.ema_generator  # statistics refreshed first: the checkpoint holds standing statistics
        state: dict[str, Any] = {"step": self.step, "lr_scale": self.lr_scale}
        for name, module in self.players.items():
            state[name] = module.state_dict()
        state["ema_generator"] = None if ema is None else ema.state_dict()
        for name, opt in self.optimizers.items():
            state[optimizer_key(name)] = opt.state_dict()
        state.update({"loader": self.loader.state_dict(), "rng": self.rng.get_state(),
                      "torch_rng": torch.get_rng_state(), "extra": self.extra})
        rule_state = {} if self.update_rule is None else self.update_rule.state_dict()
        if rule_state:
            state["update"] = rule_state
        if ema is not None and self.standing is not None:
            state["ema_statistics"] = "standing"  # checkpoints before issue 11 hold G's statistics
        cuda = cuda_rng_states()
        if cuda is None:
            cuda = self.cuda_rng  # no CUDA in use here: write back what was read, if anything
        if cuda is not None:
            state["cuda_rng"] = cuda
            device = self.training_device()
            if device.type == "cuda":
                state["cuda_rng_device"] = device.index if device.index is not None else torch.cuda.current_device()
        return state

    def training_device(self) -> torch.device:
        params = (p for m in self.players.values() for p in m.parameters())
        return next(params, torch.zeros(())).device

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.lr_scale = float(state["lr_scale"])
        for name, module in self.players.items():
            module.load_state_dict(state[name])
        if self.ema_weights is not None and state.get("ema_generator") is not None:
            self.ema_weights.load_state_dict(state["ema_generator"])
        self.ema_statistics_stale = state.get("ema_statistics") != "standing" or state.get("ema_generator") is None
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[optimizer_key(name)])
        if self.update_rule is not None:
            self.update_rule.load_state_dict(state.get("update") or {})
        self.loader.load_state_dict(state["loader"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        device = self.training_device()
        own = None
        if device.type == "cuda":
            own = device.index if device.index is not None else torch.cuda.current_device()
        self.cuda_rng = set_cuda_rng_states(state.get("cuda_rng"), state.get("cuda_rng_device"), own)
        self.extra = dict(state.get("extra") or {})

    @property
    def sampler(self) -> nn.Module:
        """The generator to sample from: the EMA copy when there is one."""
        ema = self.ema_generator
        return ema if ema is not None else self.generator


def cuda_rng_states() -> list[Tensor] | None:
    """The random state of every CUDA device, or None when CUDA is absent or not yet in use (then
    nothing has drawn from those streams, and ``torch.manual_seed`` alone determines them)."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    return [s.clone() for s in torch.cuda.get_rng_state_all()]


def set_cuda_rng_states(states: list[Tensor] | None, saved_device: int | None = None,
                        own_device: int | None = None) -> list[Tensor] | None:
    """Restore CUDA random states read from a checkpoint. Returns the states to keep for the next
    checkpoint when this machine cannot take them (no CUDA: a CPU run does not draw from them, but
    a later resume on a GPU machine should find them), else None. With fewer devices than states,
    the first devices get theirs.

    ``saved_device`` is the device the writer trained on, ``own_device`` this process's. Only rank 0
    writes, and in a distributed run every process draws alike from its own device's stream (seeded
    alike, the same ops on slices of equal size), so this process's device takes the state of the
    writer's device: rank k's stream continues as rank 0's did, not from rank 0's untouched copy of
    device k's."""
    if not states:
        return None
    if not torch.cuda.is_available():
        return [s.clone() for s in states]
    n = min(len(states), torch.cuda.device_count())
    for i in range(n):
        source = saved_device if i == own_device and saved_device is not None and saved_device < len(states) else i
        torch.cuda.set_rng_state(states[source].to(torch.uint8).cpu(), i)
    return None
    if not torch.cuda.is_available():
        return [s.clone() for s in states]
    n = min(len(states), torch.cuda.device_count())
    for i in range(n):
        torch.cuda.set_rng_state(states[i].to(torch.uint8).cpu(), i)
    return None
