"""``TensorBoardLogger``: TensorBoard event files beside metrics.jsonl (``tensorboard --logdir runs/``).

Written into ``run_dir/events/`` with ``torch.utils.tensorboard.SummaryWriter``:

- every logging window, each scalar of the window under a group tag (``costs/d_cost``,
  ``discriminator/d_real``, ``gradients/grad_norm_g``, ...; see ``scalar_tag``), with the same
  values as metrics.jsonl;
- whenever a sample snapshot appears in ``run_dir/samples/`` (SampleSnapshots): the generator's
  samples (an image grid for image data, a density image, i.e. a cheap scatter plot, for 2-D data,
  a histogram for 1-D data), and histograms of D's output on those samples and on a fixed batch of
  real examples (probabilities for probabilistic costs, raw outputs otherwise), computed in eval
  mode on the side: no random stream or buffer of the run is touched, so the trajectory is unchanged.

On resume from step k the writer purges events after k (``purge_step``), so TensorBoard shows each
step once. Only rank 0 writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from ganforge.rundir import RunDir
from ganforge.train.callbacks import Callback

SCALAR_GROUPS = {
    "d_cost": "costs", "g_cost": "costs", "penalty": "costs", "value": "costs",
    "d_real": "discriminator", "d_fake": "discriminator",
    "grad_norm_d": "gradients", "grad_norm_g": "gradients",
    "lr_g": "optim", "lr_d": "optim", "lr_scale": "optim",
    "steps_per_sec": "speed",
}


def scatter_image(x: np.ndarray, size: int = 128) -> np.ndarray:
    """2-D samples ``(n, 2)`` as a ``(size, size)`` uint8 density image (dark = many samples), square
    and centred at 0: a scatter plot that costs a histogram instead of a matplotlib figure."""
    lim = float(np.percentile(np.abs(x), 99.5)) * 1.2 or 1.0
    h, _, _ = np.histogram2d(x[:, 1], x[:, 0], bins=size, range=[[-lim, lim], [-lim, lim]])
    h = np.log1p(h[::-1])  # rows from top (+y) to bottom
    top = float(h.max()) or 1.0
    return (255 - np.round(255 * h / top)).astype(np.uint8)


def scalar_tag(name: str) -> str:
    """The TensorBoard tag of a logged scalar: ``costs/d_cost``; names not listed go under ``train/``."""
    return f"{SCALAR_GROUPS.get(name, 'train')}/{name}"


class TensorBoardLogger(Callback):
    """Writes the run's scalars, samples and D-output histograms as TensorBoard events.

    Args:
        run_dir: the run directory; events go to ``run_dir/events/``.
        histograms: log histograms of D's outputs at each snapshot.
        samples: log the samples of each snapshot (samples/step_*.npz).
        n: size of the fixed real batch (and of the fake one, taken from the snapshot) for the histograms.
        seed: seed of the real batch (its own stream; the run's streams are untouched).
    """

    def __init__(self, run_dir: str | Path, histograms: bool = True, samples: bool = True, n: int = 512,
                 seed: int = 4321):
        self.run = RunDir(run_dir)
        self.run_dir = self.run.path
        self.dir = self.run.tensorboard_dir
        self.histograms, self.samples, self.n, self.seed = histograms, samples, n, seed
        self.writer: SummaryWriter | None = None
        self._real: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._last_snapshot = -1

    def on_fit_start(self, trainer, state):
        if trainer.rank != 0:
            return
        self.writer = SummaryWriter(log_dir=str(self.dir), purge_step=state.step + 1 if state.step > 0 else None)
        self._last_snapshot = state.step if state.step > 0 else -1

    def on_log(self, trainer, state, result):
        if self.writer is None:
            return
        for name, value in result.scalars.items():
            self.writer.add_scalar(scalar_tag(name), float(value), result.step)
        if self.histograms or self.samples:
            for st, fake in self._new_snapshots(result.step):
                if self.samples:
                    self._log_samples(fake, st)
                if self.histograms:
                    self._log_histograms(trainer, fake, st)

    def on_fit_end(self, trainer, state):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- snapshots ------------------------------------------------------------------------------------

    def _new_snapshots(self, step: int) -> list[tuple[int, np.ndarray]]:
        """The raw generator's samples of the snapshots taken since the last logging window."""
        out = []
        for st, path in self.run.snapshot_files():
            if self._last_snapshot < st <= step:
                arrays = self.run.read_snapshot(path)
                if arrays is not None and "samples" in arrays:
                    out.append((st, arrays["samples"]))
        self._last_snapshot = max(self._last_snapshot, step)
        return out

    def _log_samples(self, x: np.ndarray, step: int) -> None:
        x = np.asarray(x, dtype=np.float64)
        x = x[np.all(np.isfinite(x.reshape(x.shape[0], -1)), axis=1)]
        if x.shape[0] == 0:
            return
        if x.ndim == 4 and x.shape[1] in (1, 3):
            from ganforge.sampling import image_grid

            self.writer.add_image("samples/generated", image_grid(x[:64], rgb=True), step, dataformats="HWC")
        elif x.ndim == 2 and x.shape[1] == 2:
            self.writer.add_image("samples/generated", scatter_image(x), step, dataformats="HW")
        elif x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1):
            self.writer.add_histogram("samples/generated", x.reshape(-1), step)

    # -- D's outputs ----------------------------------------------------------------------------------

    def _real_batch(self, trainer) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._real is None:
            ds = trainer.experiment.dataset
            g = torch.Generator().manual_seed(self.seed)
            if ds.examples is not None:
                idx = torch.randperm(len(ds), generator=g)[: self.n]
                real, y = ds.examples[idx], (None if ds.labels is None else ds.labels[idx])
            else:
                real, y = ds.sample(self.n, g)
            self._real = (real.to(trainer.device), None if y is None else y.to(trainer.device))
        return self._real

    @torch.no_grad()
    def _log_histograms(self, trainer, fake_samples: np.ndarray, step: int) -> None:
        exp = trainer.experiment
        if exp.dataset.n_classes or exp.discriminator is None:  # a conditional D needs the samples' labels,
            return  # which snapshots lack; a game without a discriminator has no D histograms
        real, _ = self._real_batch(trainer)
        pack = int(getattr(exp.discriminator, "pack", 1))
        n_real, n_fake = real.shape[0] - real.shape[0] % pack, min(self.n, fake_samples.shape[0])
        n_fake -= n_fake % pack
        if n_real == 0 or n_fake == 0:
            return
        fake = torch.as_tensor(fake_samples[:n_fake], dtype=torch.float32, device=trainer.device)
        D = exp.discriminator
        was_training = D.training
        D.eval()  # no dropout draws, no running-stat or spectral-norm updates: the run is untouched
        try:
            d_real, d_fake = D(real[:n_real]).float(), D(fake).float()
        finally:
            D.train(was_training)
        if d_real.dim() != 1:  # a critic's feature vectors (mmd_gan), not a logit per example
            return
        if exp.cost.probabilistic:
            d_real, d_fake = torch.sigmoid(d_real), torch.sigmoid(d_fake)
        for tag, v in (("discriminator/D(x)", d_real), ("discriminator/D(G(z))", d_fake)):
            arr = v.cpu().double().numpy()
            arr = arr[np.isfinite(arr)]
            if arr.size:
                self.writer.add_histogram(tag, arr, step)


__all__ = ["SCALAR_GROUPS", "TensorBoardLogger", "scalar_tag", "scatter_image"]
