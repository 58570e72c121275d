"""The training loop: the update rule's step of every player of the game, the EMA update.

The trainer keeps what is generic (the loop, one optimizer per player, the EMA, checkpoints and exact
resume, signals, the divergence guard, DDP, named scalars); the game (game/games.py) gives each
player's cost for a batch, and the update rule (train/updates.py) decides how the players step. This
file and the update rules are the only places that call ``backward()`` and step optimizers.
Statistics are accumulated on the device and read every ``train.log_every`` steps (no per-step host
sync).
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.components import Experiment, build_experiment
from ganforge.config import Config
from ganforge.data.loader import BatchLoader
from ganforge.errors import CheckpointError, ConfigError, DivergenceError, TrainingStopped
from ganforge.game.games import GAN_SCALARS, Play
from ganforge.rundir import RunDir
from ganforge.train.callbacks import Callback
from ganforge.train.checkpoint import checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint
from ganforge.train.distributed import (
    DistInfo,
    all_reduce_max_,
    all_reduce_mean_,
    barrier,
    convert_sync_batch_norm,
    wrap,
)
from ganforge.train.memory import check_batch_fits
from ganforge.train.state import TrainState, copied_buffers, lr_factor
from ganforge.train.updates import UPDATE_RULES, Steps, UpdateRule, grad_norm_of

_STATS = GAN_SCALARS  # the GAN game's running sums (kept here for the benches written before issue 12)


@dataclass(frozen=True)
class StepResult:
    """Scalars of one logging window, as floats (means over the window's steps)."""

    step: int
    scalars: dict[str, float]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError("train.device", f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", f"{name!r} asked for, but no CUDA device is available")
    return device


def remove_stale_writes(checkpoint_dir: Path) -> None:
    """Remove the temp files of checkpoint writes cut short by a crash."""
    if checkpoint_dir.is_dir():
        for stale in checkpoint_dir.glob(".step_*.tmp"):
            stale.unlink(missing_ok=True)


def grad_norm(module: nn.Module) -> Tensor:
    return grad_norm_of(list(module.parameters()))


class Trainer:
    """Plays the game described by a config, writing into ``run_dir`` (rank 0 only).

    ``fit()`` resumes from the newest checkpoint in ``run_dir`` when there is one, and returns the
    final TrainState. Given the same config, seed, machine and thread count, an interrupted and
    resumed run ends with the same weights, bit for bit, as an uninterrupted one.

    SIGTERM (a scheduler's pre-emption notice) and SIGINT (Ctrl-C) stop training at the end of the
    current step, write a checkpoint of that step and raise TrainingStopped, so nothing is lost; a
    second SIGINT interrupts at once: it goes to the handler that was in place before training (the
    CLI's exits with one line and code 130), or raises KeyboardInterrupt. Checkpoints are written
    atomically, so a write cut short leaves the previous file. Distributed runs agree on the stop
    at the next log window.

    The EMA generator (``train.ema_decay``, with ``train.ema_rampup``) averages G's weights every
    step; its batch-norm statistics are measured on its own weights whenever it is read (standing
    statistics, see TrainState), so every checkpoint, snapshot and evaluation samples with them.
    """

    def __init__(self, cfg: Config, run_dir: str | Path | None = None, callbacks: list[Callback] | None = None,
                 experiment: Experiment | None = None, dist_info: DistInfo | None = None,
                 remove_stale_writes: bool = True):
        self.cfg = cfg
        # Temp files of checkpoint writes cut short by a crash are removed at set-up; run.train removes
        # them itself once it holds the run's lock (another trainer's write in progress looks the same).
        self.remove_stale_writes = remove_stale_writes
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.callbacks = list(callbacks or [])
        self.experiment = experiment
        self.dist = dist_info or DistInfo()
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.device: torch.device | None = None
        self.state: TrainState | None = None
        self._params: dict[str, list[torch.nn.Parameter]] = {}
        self.update_rule: UpdateRule | None = None
        self.play: Play | None = None
        self._ema_pairs: tuple[tuple[int, int], list[Tensor], list[Tensor], list[tuple[Tensor, Tensor]]] | None = None
        self._good_state: dict | None = None
        self._resumed = False
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, object] = {}
        self.privacy: Any = None  # train/privacy.DifferentialPrivacy when train.privacy is set

    # -- stopping on a signal --------------------------------------------------------------------

    def _on_signal(self, signum: int, frame) -> None:
        if self._stop_signal is not None and signum == signal.SIGINT:
            # a second Ctrl-C: stop now, as the caller's own handler would (the CLI's exits at once
            # with one line), or as Python would
            previous = self._previous_handlers.get(signal.SIGINT)
            if callable(previous) and previous is not signal.default_int_handler:
                previous(signum, frame)
                return
            raise KeyboardInterrupt
        self._stop_signal = signum

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """Route SIGTERM and SIGINT to a flag checked between steps (main thread only; without a run
        directory there is nothing to save, and the signals keep their usual meaning)."""
        if self.checkpoint_dir is None or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self._previous_handlers = previous
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._previous_handlers = {}

    def _stop_requested(self, at_log_window: bool) -> bool:
        if not self.dist.enabled:
            return self._stop_signal is not None
        if not at_log_window:
            return False
        flag = torch.tensor([float(self._stop_signal is not None)], device=self.device)
        return bool(all_reduce_mean_(flag, self.dist).item() > 0)  # every rank stops at the same step

    def _stop(self, s: TrainState, at_checkpoint: bool) -> None:
        """Write a checkpoint of the step reached (unless just written, or the state diverged) and raise."""
        signum = self._stop_signal if self._stop_signal is not None else signal.SIGTERM
        saved = at_checkpoint
        if not saved and (not self.cfg.train.guard.enabled or self._divergence(s, None) is None):
            self.save(s)
            saved = True
        raise TrainingStopped(signum, s.step, saved)

    # -- set-up ----------------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.run_dir is None else RunDir(self.run_dir).checkpoints_dir

    def setup(self) -> TrainState:
        cfg = self.cfg
        if cfg.train.threads is not None:
            torch.set_num_threads(cfg.train.threads)
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        rule = self.update_rule = UPDATE_RULES.build(cfg.train.update.name, cfg.train.update.params,
                                                      where="train.update")
        if self.dist.enabled and not rule.distributed:
            raise ConfigError("train.update", f"the {cfg.train.update.name} update takes gradients with "
                                              "torch.autograd.grad, which DDP does not reduce; use alternating "
                                              "for distributed runs")
        if cfg.train.batch_size % self.world_size:
            raise ConfigError("train.batch_size", f"the global batch {cfg.train.batch_size} must be divisible by "
                                                  f"the {self.world_size} processes")
        exp = self.experiment = self.experiment or build_experiment(cfg)
        game = exp.game
        check = getattr(rule, "check", None)
        if check is not None:
            check(game, exp.players, cfg)  # a rule refuses a game it cannot play (ConfigError)
        for module in exp.players.values():
            module.to(self.device)
            if cfg.train.channels_last:
                module.to(memory_format=torch.channels_last)
        if exp.discriminator is not None:
            check_batch_fits(cfg.train.batch_size, exp.generator, exp.discriminator, exp.prior.latent_dim,
                             exp.dataset.n_classes, self.device)
        loader = BatchLoader(exp.dataset, cfg.train.batch_size, cfg.train.seed, self.device,
                             self.rank, self.world_size)
        torch.manual_seed(cfg.train.seed)  # dropout and other uses of the global stream
        if cfg.train.sync_batch_norm and self.dist.enabled:
            for name in list(exp.players):
                exp.players[name] = convert_sync_batch_norm(exp.players[name], self.device)
        self.state = TrainState.create(cfg, exp.players, loader, prior=exp.prior, n_classes=exp.dataset.n_classes,
                                       device=self.device, sampler=game.sampler, update_rule=rule,
                                       label_probs=getattr(exp.dataset, "label_probs", None))
        if cfg.train.privacy is not None:  # DP-SGD on D: per-example hooks, the DP optimizer, Poisson batches
            from ganforge.train.privacy import DifferentialPrivacy, check_privacy  # noqa: PLC0415

            check_privacy(cfg, exp, rule, self.world_size)
            self.privacy = DifferentialPrivacy(cfg, exp, self.state, loader, self.run_dir if self.rank == 0 else None)
        self._resume()
        if self.privacy is not None and self._resumed:  # a fresh start spends from 0 (old results move aside)
            self.privacy.resume()
        # What the game calls: DDP wrappers when distributed (gradients averaged across processes).
        calls = {name: wrap(m, self.dist, self.device) for name, m in game.call_modules(exp.players).items()}
        self.play = Play(players=exp.players, calls=calls, loader=loader, prior=exp.prior, rng=self.state.rng,
                         device=self.device, batch_size=cfg.train.batch_size, rank=self.rank,
                         world_size=self.world_size, autocast=self._autocast)
        return self.state

    def _resume(self) -> None:
        assert self.state is not None
        if self.checkpoint_dir is None:
            return
        found = list_checkpoints(self.checkpoint_dir)
        barrier(self.dist)  # every process has looked before rank 0 may write anything
        self._agree_on_resume(found[-1][0] if found else -1)
        if self.rank == 0 and self.remove_stale_writes:
            remove_stale_writes(self.checkpoint_dir)
        if not found:
            return
        self._resumed = True
        step, path = found[-1]
        state = load_checkpoint(path, self.cfg.accepted_hashes())
        try:
            self.state.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path} does not fit this config's players ({str(exc).splitlines()[0][:160]})") from None
        for cb in self.callbacks:
            cb.on_resume(self, self.state.step)

    def _agree_on_resume(self, newest: int) -> None:
        """Every process must resume from the same checkpoint. A node that cannot see the run
        directory (no shared storage) would otherwise start afresh beside the others: DDP would
        copy rank 0's weights to it, but not its optimizer state, step or random streams."""
        if not self.dist.enabled:
            return
        both = all_reduce_max_(torch.tensor([newest, -newest], dtype=torch.int64, device=self.device), self.dist)
        high, low = int(both[0].item()), -int(both[1].item())
        if high != low:
            def seen(step: int) -> str:
                return "no checkpoint" if step < 0 else f"a checkpoint of step {step}"
            raise CheckpointError(
                f"the processes disagree on where to resume in {self.checkpoint_dir}: this one (rank {self.rank}) "
                f"sees {seen(newest)}, and between them they see {seen(low)} to {seen(high)}; every node "
                "must see the same run directory (put --out on storage that all nodes share)")

    # -- one step of the game ----------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        assert self.device is not None
        if self.cfg.train.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _set_lrs(self, s: TrainState) -> None:
        for name, opt in s.optimizers.items():
            ocfg = self.cfg.optim.player(name)
            lr = ocfg.lr * s.lr_scale * lr_factor(ocfg, s.step, self.cfg.train.steps)
            for group in opt.param_groups:
                group["lr"] = lr

    def _player_params(self, which: str) -> list[torch.nn.Parameter]:
        """All of a player's parameters, listed once. Whether each is trainable is read at every use:
        a callback may freeze or unfreeze some during the run."""
        found = self._params.get(which)
        if found is None:
            assert self.state is not None
            found = self._params[which] = list(self.state.players[which].parameters())
        return found

    def _trainable(self, which: str) -> list[torch.nn.Parameter]:
        return [p for p in self._player_params(which) if p.requires_grad]

    def train_step(self, s: TrainState, sums: Tensor, want_norms: bool) -> dict[str, Tensor]:
        """One training step of every player, as the update rule plays it (the GAN, alternating:
        n_critic discriminator steps, then one generator step). Returns gradient norms."""
        assert self.experiment is not None and self.play is not None and self.update_rule is not None
        self.play.sums = sums
        norms: dict[str, Tensor] = {}
        steps = Steps(game=self.experiment.game, play=self.play, params=self._trainable,
                      all_params=self._player_params, optimizers=s.optimizers, n_critic=self.cfg.train.n_critic,
                      want_norms=want_norms, norms=norms)
        self.update_rule.step(steps)
        self._update_ema(s)
        return norms

    def ema_decay_at(self, step: int) -> float:
        """The EMA's decay for the update after generator step ``step`` (0-based): ``train.ema_decay``,
        with its half-life capped at ``train.ema_rampup`` times the steps averaged so far.

        StyleGAN2-ADA's EMA ramp-up (Karras et al. 2020, training/training_loop.py: ``ema_nimg =
        min(ema_nimg, cur_nimg * ema_rampup)``, ``ema_beta = 0.5 ** (batch / ema_nimg)``), counted
        in generator steps instead of images: with t updates done, this one included, the decay is
        ``min(ema_decay, 0.5 ** (1 / (ema_rampup * t)))``. Early in a run the EMA thus averages
        about the last ``ema_rampup`` fraction of training instead of mostly the random
        initialization (0.999 without it would keep 95 % of the initial weights after 50 steps:
        grey samples); past ``t = log(0.5) / log(ema_decay) / ema_rampup`` steps (13,863 for 0.999
        and 0.05) it is the plain ``ema_decay``. ``ema_rampup = 0`` turns the ramp off."""
        cfg = self.cfg.train
        t = step + 1 - cfg.ema_start  # updates of the average, this one included
        decay = cfg.ema_decay
        if cfg.ema_rampup > 0:
            decay = min(decay, 0.5 ** (1.0 / (cfg.ema_rampup * t)))
        return decay

    @torch.no_grad()
    def _update_ema(self, s: TrainState) -> None:
        """Average G's weights into the EMA copy. Its non-BN buffers follow G; its batch-norm
        statistics are measured on its own weights when it is read (TrainState.ema_generator)."""
        ema = s.ema_weights
        if ema is None:
            return
        key = (id(ema), id(s.generator))
        if self._ema_pairs is None or self._ema_pairs[0] != key:  # listed once per pair of modules
            self._ema_pairs = (key, list(ema.parameters()), list(s.generator.parameters()),
                               list(copied_buffers(ema, s.generator)))
        _, ema_p, g_p, buffers = self._ema_pairs
        if s.step < self.cfg.train.ema_start:
            torch._foreach_copy_(ema_p, g_p)
        else:
            torch._foreach_lerp_(ema_p, g_p, 1.0 - self.ema_decay_at(s.step))
        for be, bg in buffers:
            be.copy_(bg)
        s.ema_statistics_stale = True

    # -- the loop --------------------------------------------------------------------------------

    def save(self, s: TrainState) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        if self.rank != 0:
            barrier(self.dist)  # the others wait until rank 0 has written it
            return None
        path = save_checkpoint(checkpoint_path(self.checkpoint_dir, s.step), s.state_dict(),
                               self.cfg.trajectory_hash())
        for _, old in list_checkpoints(self.checkpoint_dir)[: -self.cfg.train.keep_checkpoints]:
            old.unlink(missing_ok=True)
        barrier(self.dist)
        return path

    def _weights_finite(self, s: TrainState) -> bool:
        params = [p for m in s.players.values() for p in m.parameters()]
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(params))).all())

    def _divergence(self, s: TrainState, scalars: dict[str, float] | None) -> str | None:
        """Why the run has diverged, or None when it is healthy."""
        if scalars is not None:
            limit = self.cfg.train.guard.cost_limit
            assert self.experiment is not None
            for name in self.experiment.game.guarded:
                v = scalars.get(name, 0.0)
                if not math.isfinite(v):
                    return f"{name} is {v}"
                if abs(v) > limit:
                    return f"|{name}| = {abs(v):.3g} exceeds train.guard.cost_limit = {limit:g}"
        if not self._weights_finite(s):
            return "a weight is NaN or Inf"
        return None

    def _remember_good(self, s: TrainState) -> None:
        """Keep the rollback target when there is no run directory to hold checkpoints."""
        if self.checkpoint_dir is None and self.cfg.train.guard.enabled:
            self._good_state = copy.deepcopy(s.state_dict())

    def _rollback(self, s: TrainState, reason: str) -> None:
        guard = self.cfg.train.guard
        events = list(s.extra.get("guard_events", []))
        detected = s.step
        if len(events) >= guard.max_retries:
            raise DivergenceError(
                f"training diverged at step {detected} ({reason}) and did not recover after {len(events)} "
                f"rollbacks with learning rates lowered to x{s.lr_scale:g}; try a lower learning rate, "
                "a gradient penalty or R1, or the non-saturating cost")
        found = [] if self.checkpoint_dir is None else list_checkpoints(self.checkpoint_dir)
        state = load_checkpoint(found[-1][1], self.cfg.accepted_hashes()) if found else self._good_state
        if state is None:
            raise DivergenceError(f"training diverged at step {detected} ({reason}) with no checkpoint to roll back to")
        s.load_state_dict(state)
        s.lr_scale *= guard.lr_factor
        event = {"detected_at": detected, "rolled_back_to": s.step, "reason": reason, "lr_scale": s.lr_scale}
        s.extra["guard_events"] = events + [event]
        for cb in self.callbacks:
            cb.on_rollback(self, s, event)

    def fit(self) -> TrainState:
        self._stop_signal = None
        with self._stop_on_signals():
            return self._fit()

    def _fit(self) -> TrainState:
        s = self.state or self.setup()
        cfg = self.cfg.train
        self._good_state = None
        if cfg.guard.enabled and s.step == 0 and self._divergence(s, None) is None:
            if self.checkpoint_dir is not None and not self._resumed:
                self.save(s)  # a rollback target before the first regular checkpoint
            self._remember_good(s)
        for cb in self.callbacks:
            cb.on_fit_start(self, s)
        game = self.experiment.game
        sums = torch.zeros(len(game.scalars), device=self.device)
        # each scalar is averaged over the steps of the player whose phase adds it
        per_step = dict(game.schedule(cfg.n_critic))
        counts = {name: 0 for name in per_step}
        n_g = 0
        t0 = time.perf_counter()
        privacy = self.privacy
        while s.step < cfg.steps:
            if privacy is not None and not privacy.can_step():
                break  # the target epsilon is reached: the run ends here, with a checkpoint
            self._set_lrs(s)
            want_norms = (s.step + 1) % cfg.log_every == 0
            norms = self.train_step(s, sums, want_norms)
            s.step += 1
            if privacy is not None:
                privacy.took_step()
            n_g += 1
            for name, k in per_step.items():
                counts[name] += k
            for cb in self.callbacks:
                cb.on_step_end(self, s)
            at_checkpoint = s.step % cfg.checkpoint_every == 0 or s.step == cfg.steps
            scalars: dict[str, float] | None = None
            if want_norms or s.step == cfg.steps:
                values = all_reduce_mean_(sums.clone(), self.dist).tolist()  # the one host sync of the window
                scalars = {}
                for name, player, v in zip(game.scalars, game.scalar_players, values, strict=True):
                    scalars[name] = v / max(counts[player], 1)
                for k, v in norms.items():
                    scalars[k] = float(v)
                for name, opt in s.optimizers.items():
                    scalars[f"lr_{game.short(name)}"] = opt.param_groups[0]["lr"]
                elapsed = time.perf_counter() - t0
                scalars["steps_per_sec"] = n_g / elapsed if elapsed > 0 else 0.0
                if privacy is not None:
                    scalars["epsilon"] = max(privacy.ledger.epsilon().values())
                    privacy.write(margin_steps=cfg.log_every * cfg.n_critic)
                sums.zero_()
                n_g = 0
                counts = dict.fromkeys(counts, 0)
                t0 = time.perf_counter()
            if cfg.guard.enabled and (scalars is not None or at_checkpoint):
                reason = self._divergence(s, scalars)
                if reason is not None:
                    self._rollback(s, reason)
                    continue
            if scalars is not None:
                result = StepResult(s.step, scalars)
                for cb in self.callbacks:
                    cb.on_log(self, s, result)
            if at_checkpoint:
                self.save(s)
                self._remember_good(s)
                for cb in self.callbacks:
                    cb.on_checkpoint(self, s)
            if s.step < cfg.steps and self._stop_requested(scalars is not None):
                self._stop(s, at_checkpoint)
        if privacy is not None:
            if privacy.stop_reason is not None and s.step % cfg.checkpoint_every:
                self.save(s)  # the step the budget allowed
            privacy.write(margin_steps=0, clean=True)
        s.refresh_ema_statistics()  # the final EMA generator is ready to sample from
        for cb in self.callbacks:
            cb.on_fit_end(self, s)
        return s
