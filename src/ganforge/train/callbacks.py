"""What happens around training steps: the metrics log, the progress bar, run files.

Callbacks are objects handed to the Trainer; they hold their own state (no module globals) and
only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.io import read_jsonl, write_text_atomic

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
    """The records of a metrics.jsonl file; a torn last line (a kill mid-write) is ignored."""
    return read_jsonl(path)


class MetricsLog(Callback):
    """Appends one JSON object per logged step to ``run_dir/metrics.jsonl``.

    On resume from step k, records after k (written before the crash, and about to be written
    again) are dropped, so the file reads as if the run had never stopped.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "metrics.jsonl"

    def on_fit_start(self, trainer, state):
        if trainer.rank == 0:
            self._truncate_after(state.step)

    def _truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_rollback(self, trainer, state, event):
        """The divergence guard rolled back: drop records past the rollback, then note the event."""
        if trainer.rank != 0:
            return
        self._truncate_after(state.step)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.step, "event": "divergence_rollback", **event}) + "\n")

    def on_log(self, trainer, state, result):
        if trainer.rank != 0:
            return
        record = {"step": result.step, **{k: _json_safe(v) for k, v in result.scalars.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


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
            sc = result.scalars
            self.bar.set_postfix({"J(D)": f"{sc['d_cost']:.3f}", "J(G)": f"{sc['g_cost']:.3f}",
                                  "D(x)": f"{sc['d_real']:.3f}", "D(G(z))": f"{sc['d_fake']:.3f}"})

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
        self.dir = Path(run_dir) / "samples"
        self.every, self.n, self.seed, self.grid = every, n, seed, grid
        self._z = None
        self._y = None

    def _snapshot(self, trainer, state) -> None:
        import numpy as np
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
            if self.grid is not None:
                lo, hi, k = self.grid
                xs = torch.linspace(lo, hi, k, device=trainer.device).reshape(-1, 1)
                arrays["grid"] = xs.cpu().numpy().reshape(-1)
                was_training = exp.discriminator.training
                exp.discriminator.eval()  # no dropout draws, no spectral-norm power iteration
                arrays["d_grid"] = torch.sigmoid(exp.discriminator(xs).float()).cpu().numpy()
                exp.discriminator.train(was_training)
        from ganforge.io import atomic_open

        with atomic_open(self.dir / f"step_{state.step:08d}.npz", "wb") as f:
            np.savez(f, **arrays)

    def on_fit_start(self, trainer, state):
        if state.step == 0:
            self._snapshot(trainer, state)

    def on_step_end(self, trainer, state):
        if state.step % self.every == 0:
            self._snapshot(trainer, state)


def read_snapshots(run_dir: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(step, arrays) of every snapshot of a run, in step order; loaded without pickle."""
    import numpy as np

    out = []
    for p in sorted((Path(run_dir) / "samples").glob("step_*.npz")):
        with np.load(p, allow_pickle=False) as data:
            out.append((int(p.stem.split("_")[1]), {k: data[k] for k in data.files}))
    return out
