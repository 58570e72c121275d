"""The training loop: n_critic discriminator steps, one generator step, the EMA update.

This file is the only place that calls ``backward()`` and steps optimizers. Statistics are
accumulated on the device and read every ``train.log_every`` steps (no per-step host sync).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.components import Experiment, build_experiment
from ganforge.config import Config
from ganforge.data.loader import BatchLoader
from ganforge.errors import CheckpointError, ConfigError, DivergenceError, TrainingStopped
from ganforge.rundir import RunDir
from ganforge.train.callbacks import Callback
from ganforge.train.checkpoint import checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint
from ganforge.train.distributed import (
    DiscriminatorPass,
    DistInfo,
    all_reduce_max_,
    all_reduce_mean_,
    barrier,
    convert_sync_batch_norm,
    wrap,
)
from ganforge.train.memory import check_batch_fits
from ganforge.train.state import TrainState, copied_buffers, lr_factor

# Running sums kept on the device between log steps, in this order. ``penalty`` is the regularizers'
# sum; ``aux_d`` and ``aux_g`` are the auxiliary costs' (AC-GAN, InfoGAN) terms in D's and G's losses.
# g_cost and aux_g (slots 1 and 2) are added by the G step, the others by every D step.
_STATS = ("d_cost", "g_cost", "aux_g", "penalty", "aux_d", "d_real", "d_fake", "value")


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


def _takes_shard(regularizer: object) -> bool:
    """Whether ``regularizer.penalty`` accepts the ``shard`` argument (added in issue 11)."""
    params = inspect.signature(regularizer.penalty).parameters.values()  # type: ignore[attr-defined]
    return any(p.name == "shard" or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


def remove_stale_writes(checkpoint_dir: Path) -> None:
    """Remove the temp files of checkpoint writes cut short by a crash."""
    if checkpoint_dir.is_dir():
        for stale in checkpoint_dir.glob(".step_*.tmp"):
            stale.unlink(missing_ok=True)


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


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
        self._ema_pairs: tuple[tuple[int, int], list[Tensor], list[Tensor], list[tuple[Tensor, Tensor]]] | None = None
        self._good_state: dict | None = None
        self._resumed = False
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, object] = {}

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
        if cfg.train.update == "simultaneous" and self.dist.enabled:
            raise ConfigError("train.update", "simultaneous updates take gradients with torch.autograd.grad, "
                                              "which DDP does not reduce; use alternating for distributed runs")
        if cfg.train.batch_size % self.world_size:
            raise ConfigError("train.batch_size", f"the global batch {cfg.train.batch_size} must be divisible by "
                                                  f"the {self.world_size} processes")
        exp = self.experiment = self.experiment or build_experiment(cfg)
        exp.generator.to(self.device)
        exp.discriminator.to(self.device)
        if cfg.train.channels_last:
            exp.generator.to(memory_format=torch.channels_last)
            exp.discriminator.to(memory_format=torch.channels_last)
        check_batch_fits(cfg.train.batch_size, exp.generator, exp.discriminator, exp.prior.latent_dim,
                         exp.dataset.n_classes, self.device)
        loader = BatchLoader(exp.dataset, cfg.train.batch_size, cfg.train.seed, self.device,
                             self.rank, self.world_size)
        torch.manual_seed(cfg.train.seed)  # dropout and other uses of the global stream
        if cfg.train.sync_batch_norm and self.dist.enabled:
            exp.generator = convert_sync_batch_norm(exp.generator, self.device)
            exp.discriminator = convert_sync_batch_norm(exp.discriminator, self.device)
        self.state = TrainState.create(cfg, exp.generator, exp.discriminator, loader, prior=exp.prior,
                                       n_classes=exp.dataset.n_classes, device=self.device)
        self._resume()
        # What the training step calls: DDP wrappers when distributed (gradients averaged across
        # processes). The G step calls the bare D, whose weights get no gradient there, so DDP never
        # waits for D gradients that do not come (no find_unused_parameters needed).
        self._g_forward = wrap(exp.generator, self.dist, self.device)
        self._d_pass = wrap(DiscriminatorPass(exp.discriminator, bool(exp.auxiliary)), self.dist, self.device)
        # ``shard`` for regularizers that take it; one written before it was added gets the old arguments
        self._shards = [((self.rank, self.world_size),) if _takes_shard(r) else () for r in exp.regularizers]
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
        for opt, ocfg in ((s.opt_g, self.cfg.optim.generator), (s.opt_d, self.cfg.optim.discriminator)):
            lr = ocfg.lr * s.lr_scale * lr_factor(ocfg, s.step, self.cfg.train.steps)
            for group in opt.param_groups:
                group["lr"] = lr

    def _discriminator_loss(self, s: TrainState, real: Tensor, fake: Tensor, y: Tensor | None, z: Tensor,
                            sums: Tensor) -> Tensor:
        exp = self.experiment
        assert exp is not None
        regs = exp.regularizers
        if any(r.needs_real_grad for r in regs):
            real = real.detach().requires_grad_(True)
        if any(r.needs_fake_grad for r in regs) and not fake.requires_grad:
            fake = fake.detach().requires_grad_(True)
        with self._autocast():  # one pass over real and fake when D allows it (see DiscriminatorPass)
            d_real, d_fake, aux_real, aux_fake = self._d_pass(real, fake, y)
        d_cost = exp.cost.discriminator_cost(d_real, d_fake)
        penalty = torch.zeros((), device=d_cost.device)
        for reg, shard in zip(regs, self._shards, strict=True):
            p = reg.penalty(exp.discriminator, real, fake, d_real, d_fake, y, s.rng, *shard)
            if p is not None:
                penalty = penalty + p
        aux_d: Tensor | None = None
        for aux in exp.auxiliary:
            t = aux.discriminator_term(aux_real, aux_fake, y, z, exp.prior)
            if t is not None:
                aux_d = t if aux_d is None else aux_d + t
        with torch.no_grad():
            if exp.cost.probabilistic:
                pr, pf = torch.sigmoid(d_real).mean(), torch.sigmoid(d_fake).mean()
            else:
                pr, pf = d_real.mean(), d_fake.mean()
            c = d_cost.detach()
            # one in-place add for the window's running sums (g_cost and aux_g are added by the G step)
            zero = torch.zeros_like(c)
            a = zero if aux_d is None else aux_d.detach()
            sums += torch.stack([c, zero, zero, penalty.detach(), a, pr, pf, -c])
        self._last_outputs = (d_real, d_fake, aux_fake)
        return d_cost + penalty if aux_d is None else d_cost + penalty + aux_d

    def _generator_aux(self, aux_fake: dict[str, Tensor], y: Tensor | None, z: Tensor) -> Tensor | None:
        """The auxiliary costs' terms in G's loss, or None when there are none."""
        exp = self.experiment
        assert exp is not None
        total: Tensor | None = None
        for aux in exp.auxiliary:
            t = aux.generator_term(aux_fake, y, z, exp.prior)
            if t is not None:
                total = t if total is None else total + t
        return total

    def _player_params(self, which: str) -> list[torch.nn.Parameter]:
        """All of a player's parameters, listed once. Whether each is trainable is read at every use:
        a callback may freeze or unfreeze some during the run."""
        found = self._params.get(which)
        if found is None:
            assert self.experiment is not None
            module = self.experiment.generator if which == "g" else self.experiment.discriminator
            found = self._params[which] = list(module.parameters())
        return found

    def _trainable(self, which: str) -> list[torch.nn.Parameter]:
        return [p for p in self._player_params(which) if p.requires_grad]

    @staticmethod
    def _clear_grads(params: list[torch.nn.Parameter]) -> None:
        """``zero_grad(set_to_none=True)`` without the optimizer's per-call hooks and profiling
        wrapper, which cost about 50 us a call on ring8 (bench/README.md)."""
        for p in params:
            p.grad = None

    def _after_d_step(self) -> None:
        exp = self.experiment
        assert exp is not None
        for reg in exp.regularizers:
            reg.after_discriminator_step(exp.discriminator)

    def train_step(self, s: TrainState, sums: Tensor, want_norms: bool) -> dict[str, Tensor]:
        """One generator step, preceded by n_critic discriminator steps. Returns gradient norms."""
        exp = self.experiment
        assert exp is not None and self.device is not None
        G, D, cost = exp.generator, exp.discriminator, exp.cost
        norms: dict[str, Tensor] = {}
        simultaneous = self.cfg.train.update == "simultaneous"
        n_d_only = self.cfg.train.n_critic - (1 if simultaneous else 0)

        fake_for_g = None
        for i in range(n_d_only):
            real, y = s.loader.next()
            z = self._latent(s)
            reuse = not simultaneous and i == n_d_only - 1
            # The last D step's fakes are kept with their graph and reused by the G step (against
            # the updated D), which saves one generator forward pass per step.
            with torch.set_grad_enabled(reuse), self._autocast():
                fake = self._g_forward(z, y)
            if reuse:
                fake_for_g = (fake, real, y, z)
            loss_d = self._discriminator_loss(s, real, fake.detach().float(), y, z, sums)
            self._clear_grads(self._player_params("d"))
            loss_d.backward()
            if want_norms:
                norms["grad_norm_d"] = grad_norm(D)
            s.opt_d.step()
            self._after_d_step()

        if simultaneous:
            # Both players' gradients are taken at the same point (theta_D, theta_G), then both step.
            # (Alternating: n_critic >= 1, so the last D step has left its fakes in fake_for_g.)
            real, y = s.loader.next()
            z = self._latent(s)
            with self._autocast():
                fake = self._g_forward(z, y).float()
            loss_d = self._discriminator_loss(s, real, fake, y, z, sums)
            d_real, d_fake, aux_fake = self._last_outputs
            cost_g = cost.generator_cost(d_fake, d_real if cost.generator_needs_real else None)
            aux_g = self._generator_aux(aux_fake, y, z)
            loss_g = cost_g if aux_g is None else cost_g + aux_g
            d_params, g_params = self._trainable("d"), self._trainable("g")
            grads_d = torch.autograd.grad(loss_d, d_params, retain_graph=True)
            grads_g = torch.autograd.grad(loss_g, g_params)
            for p, g in zip(d_params, grads_d, strict=True):
                p.grad = g
            for p, g in zip(g_params, grads_g, strict=True):
                p.grad = g
            if want_norms:
                norms["grad_norm_d"], norms["grad_norm_g"] = grad_norm(D), grad_norm(G)
            s.opt_d.step()
            s.opt_g.step()
            self._after_d_step()
        else:
            d_params = self._trainable("d")  # exactly these are frozen for the G step, then restored
            for p in d_params:  # no gradients for D's weights in the G step
                p.requires_grad_(False)
            assert fake_for_g is not None
            fake, real, y, z = fake_for_g
            try:
                with self._autocast():
                    if exp.auxiliary:
                        d_fake, aux_fake = D.forward_aux(fake, y)
                    else:
                        d_fake, aux_fake = D(fake, y), {}
                    d_fake = d_fake.float()
                    d_real = None
                    if cost.generator_needs_real:
                        with torch.no_grad():
                            d_real = D(real, y).float()
                cost_g = cost.generator_cost(d_fake, d_real)
                aux_g = self._generator_aux(aux_fake, y, z)
                loss_g = cost_g if aux_g is None else cost_g + aux_g
                self._clear_grads(self._player_params("g"))
                loss_g.backward()
            finally:
                for p in d_params:
                    p.requires_grad_(True)
            if want_norms:
                norms["grad_norm_g"] = grad_norm(G)
            s.opt_g.step()
        if aux_g is None:
            sums[1] += cost_g.detach()
        else:
            sums[1:3] += torch.stack([cost_g.detach(), aux_g.detach()])
        self._update_ema(s)
        return norms

    def _latent(self, s: TrainState) -> Tensor:
        """This process's slice of the global latent batch (every process draws the same batch)."""
        assert self.experiment is not None
        z = self.experiment.prior.sample(self.cfg.train.batch_size, s.rng, self.device)
        return z[self.rank :: self.world_size] if self.dist.enabled else z

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
        params = [p for m in (s.generator, s.discriminator) for p in m.parameters()]
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(params))).all())

    def _divergence(self, s: TrainState, scalars: dict[str, float] | None) -> str | None:
        """Why the run has diverged, or None when it is healthy."""
        if scalars is not None:
            limit = self.cfg.train.guard.cost_limit
            for name in ("d_cost", "g_cost", "penalty", "aux_d", "aux_g"):
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
        sums = torch.zeros(len(_STATS), device=self.device)
        n_d = n_g = 0
        t0 = time.perf_counter()
        while s.step < cfg.steps:
            self._set_lrs(s)
            want_norms = (s.step + 1) % cfg.log_every == 0
            norms = self.train_step(s, sums, want_norms)
            s.step += 1
            n_g += 1
            n_d += cfg.n_critic
            for cb in self.callbacks:
                cb.on_step_end(self, s)
            at_checkpoint = s.step % cfg.checkpoint_every == 0 or s.step == cfg.steps
            scalars: dict[str, float] | None = None
            if want_norms or s.step == cfg.steps:
                values = all_reduce_mean_(sums.clone(), self.dist).tolist()  # the one host sync of the window
                scalars = {}
                for name, v in zip(_STATS, values, strict=True):
                    scalars[name] = v / (n_g if name in ("g_cost", "aux_g") else max(n_d, 1))
                for k, v in norms.items():
                    scalars[k] = float(v)
                scalars["lr_g"] = s.opt_g.param_groups[0]["lr"]
                scalars["lr_d"] = s.opt_d.param_groups[0]["lr"]
                elapsed = time.perf_counter() - t0
                scalars["steps_per_sec"] = n_g / elapsed if elapsed > 0 else 0.0
                sums.zero_()
                n_d = n_g = 0
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
        s.refresh_ema_statistics()  # the final EMA generator is ready to sample from
        for cb in self.callbacks:
            cb.on_fit_end(self, s)
        return s
