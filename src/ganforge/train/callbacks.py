"""What happens around training steps: the metrics log, the progress bar, sample snapshots.

Callbacks are objects handed to the Trainer; they hold their own state (no module globals) and
only rank 0 writes files, through ``ganforge.rundir`` (the owner of the run directory's layout).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.rundir import RunDir

if TYPE_CHECKING:
    from ganforge.train.state import TrainState
    from ganforge.train.trainer import StepResult, Trainer


class Callback:
    """Hooks of the training loop; every method is optional."""

    def on_fit_start(self, trainer: Trainer, state: TrainState) -> None: ...
    def on_resume(self, trainer: Trainer, step: int) -> None: ...
    def on_step_end(self, trainer: Trainer, state: TrainState) -> None: ...
    def on_log(self, trainer: Trainer, state: TrainState, result: StepResult) -> None: ...
    def on_checkpoint(self, trainer: Trainer, state: TrainState) -> None: ...
    def on_rollback(self, trainer: Trainer, state: TrainState, event: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Trainer, state: TrainState) -> None: ...


def _json_safe(v: float) -> Any:
    return v if math.isfinite(v) else str(v)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (``path``: the file or its run directory). Kept for
    callers written before ``ganforge.rundir``; new code calls ``RunDir(run_dir).read_metrics()``."""
    p = Path(path)
    return RunDir(p if p.is_dir() else p.parent).read_metrics()


class MetricsLog(Callback):
    """Appends one JSON object per logged step to ``run_dir/metrics.jsonl``.

    On resume from step k, records after k (written before the crash, and about to be written
    again) are dropped, so the file reads as if the run had never stopped.
    """

    def __init__(self, run_dir: str | Path):
        self.run = RunDir(run_dir)
        self.path = self.run.metrics_path

    def on_fit_start(self, trainer, state):
        if trainer.rank == 0:
            self.run.truncate_metrics(state.step)

    def on_rollback(self, trainer, state, event):
        """The divergence guard rolled back: drop records past the rollback, then note the event."""
        if trainer.rank != 0:
            return
        self.run.truncate_metrics(state.step)
        self.run.append_metrics({"step": state.step, "event": "divergence_rollback", **event})

    def on_log(self, trainer, state, result):
        if trainer.rank != 0:
            return
        self.run.append_metrics({"step": result.step, **{k: _json_safe(v) for k, v in result.scalars.items()}})


_BAR_SCALARS = (("d_cost", "J(D)"), ("g_cost", "J(G)"), ("d_real", "D(x)"), ("d_fake", "D(G(z))"), ("mmd2", "MMD2"))


class ProgressBar(Callback):
    """A tqdm bar with the live numbers of the game (costs, D(x), D(G(z)))."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def on_fit_start(self, trainer, state):
        if not self.enabled or trainer.rank != 0:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.cfg.train.steps, initial=state.step, desc=trainer.cfg.name,
                        unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)

    def on_step_end(self, trainer, state):
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, trainer, state, result):
        if self.bar is not None:
            sc = result.scalars  # the numbers this game has (a game without D has no D(x))
            self.bar.set_postfix({label: f"{sc[k]:.3f}" for k, label in _BAR_SCALARS if k in sc})

    def on_fit_end(self, trainer, state):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class SampleSnapshots(Callback):
    """Saves samples from a fixed latent batch every ``every`` steps to ``run_dir/samples/``.

    For 1-D data it also saves D's output on a fixed grid, so that the game can be drawn as in
    Figure 4 of the GAN tutorial (p_data, p_model, D and D* at several moments of training).
    Files are ``step_XXXXXXXX.npz`` (numpy, no pickle), written atomically.
    """

    def __init__(self, run_dir: str | Path, every: int, n: int = 1000, seed: int = 12345,
                 grid: tuple[float, float, int] | None = None):
        self.run = RunDir(run_dir)
        self.dir = self.run.samples_dir
        self.every, self.n, self.seed, self.grid = every, n, seed, grid
        self._z = None
        self._y = None

    def _snapshot(self, trainer, state) -> None:
        import torch

        if trainer.rank != 0:
            return
        exp = trainer.experiment
        if self._z is None:
            g = torch.Generator().manual_seed(self.seed)
            self._z = exp.prior.sample(self.n, g, trainer.device)
            k = exp.dataset.n_classes
            # conditional players: a fixed, balanced label batch (class i at rows i, i+k, ...)
            self._y = (torch.arange(self.n, device=trainer.device) % k) if k else None
        arrays = {}
        with torch.no_grad():
            was_training = exp.generator.training
            exp.generator.eval()
            arrays["samples"] = exp.generator(self._z, self._y).float().cpu().numpy()
            exp.generator.train(was_training)
            if state.ema_generator is not None:
                arrays["ema_samples"] = state.ema_generator(self._z, self._y).float().cpu().numpy()
            if self._y is not None:
                arrays["labels"] = self._y.cpu().numpy()
            if self.grid is not None and exp.discriminator is not None:
                lo, hi, k = self.grid
                xs = torch.linspace(lo, hi, k, device=trainer.device).reshape(-1, 1)
                arrays["grid"] = xs.cpu().numpy().reshape(-1)
                was_training = exp.discriminator.training
                exp.discriminator.eval()  # no dropout draws, no spectral-norm power iteration
                d_grid = exp.discriminator(xs).float()
                if d_grid.dim() == 1:  # a logit per point (not a critic's feature vectors)
                    arrays["d_grid"] = torch.sigmoid(d_grid).cpu().numpy()
                exp.discriminator.train(was_training)
        self.run.write_snapshot(state.step, arrays)

    def on_fit_start(self, trainer, state):
        if state.step == 0:
            self._snapshot(trainer, state)

    def on_step_end(self, trainer, state):
        if state.step % self.every == 0:
            self._snapshot(trainer, state)


def read_snapshots(run_dir: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(step, arrays) of every snapshot of a run, in step order; loaded without pickle. Kept for
    callers written before ``ganforge.rundir``; new code calls ``RunDir(run_dir).read_snapshots()``."""
    return RunDir(run_dir).read_snapshots()
