"""Run directories: start, resume, and load trained players back.

A run directory is the only output of training and the only input of sample / eval / report:

    config.yaml  metrics.jsonl  checkpoints/  samples/  events/  eval.json  report.html
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from ganforge.components import Experiment, build_experiment, config_from_dict
from ganforge.config import Config
from ganforge.data.base import Dataset
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.io import write_text_atomic
from ganforge.train import distributed
from ganforge.train.callbacks import Callback, MetricsLog, ProgressBar
from ganforge.train.checkpoint import list_checkpoints, load_checkpoint
from ganforge.train.state import TrainState
from ganforge.train.trainer import Trainer, resolve_device


class RunDirError(GanforgeError):
    """The run directory holds something this command must not touch."""


def _diff(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [f"{prefix}: {a!r} -> {b!r}"]


def read_run_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise RunDirError(f"{run_dir} is not a ganforge run directory (no config.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RunDirError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return config_from_dict(raw, source=str(path))


def prepare_run_dir(cfg: Config, out: str | Path) -> bool:
    """Check ``out`` before training; return True when the run resumes from a checkpoint.

    A directory holding checkpoints of a different config is refused (nothing is changed).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} exists and is not a directory")
    found = list_checkpoints(out / "checkpoints")
    if found:
        old = read_run_config(out)
        if old.trajectory_hash() != cfg.trajectory_hash():
            changes = _diff(old.to_dict(), cfg.to_dict())
            raise RunDirError(f"{out} holds checkpoints of a different config ({'; '.join(changes[:3])}); "
                              "use another --out, or the same config to resume")
        return True
    return False


def train(cfg: Config, out: str | Path | None, callbacks: list[Callback] | None = None,
          progress: bool | None = None) -> TrainState:
    """Train (or resume) the run described by ``cfg`` in ``out``; returns the final state."""
    info = distributed.from_env(resolve_device(cfg.train.device))  # torchrun's processes, or one
    cbs: list[Callback] = []
    if out is not None:
        prepare_run_dir(cfg, out)
        cbs.append(MetricsLog(out))
    cbs.append(ProgressBar(cfg.train.progress if progress is None else progress))
    cbs += list(callbacks or [])
    trainer = Trainer(cfg, out, cbs, dist_info=info)
    trainer.setup()  # builds and checks everything (and reads the checkpoint) before writing anything
    if out is not None:
        if info.rank == 0:
            Path(out).mkdir(parents=True, exist_ok=True)
            write_text_atomic(Path(out) / "config.yaml", cfg.to_yaml())
        distributed.barrier(info)
        assert trainer.experiment is not None
        trainer.callbacks += run_dir_callbacks(cfg, out, trainer.experiment, cbs,
                                               cfg.train.progress if progress is None else progress)
    return trainer.fit()


def run_dir_callbacks(cfg: Config, out: str | Path, experiment: Experiment, given: list[Callback],
                      verbose: bool = False) -> list[Callback]:
    """What every run directory gets besides metrics.jsonl: sample snapshots (every tenth of the
    run; unless the caller passes its own), diagnostics (warnings also on stderr when ``verbose``),
    and TensorBoard events (when tensorboard is installed)."""
    import importlib.util

    from ganforge.diagnostics.callback import DiagnosticsCallback, warn_to_stderr
    from ganforge.train.callbacks import SampleSnapshots

    extra: list[Callback] = []
    if not any(isinstance(cb, SampleSnapshots) for cb in given):
        extra.append(default_snapshots(cfg, out, experiment.dataset))
    if cfg.train.eval_every:
        from ganforge.evaluation import PeriodicEvaluation

        extra.append(PeriodicEvaluation(cfg.train.eval_every, metrics=cfg.train.eval_metrics, run_dir=out))
    if not any(isinstance(cb, DiagnosticsCallback) for cb in given):
        extra.append(DiagnosticsCallback(out, echo=warn_to_stderr if verbose else None))
    if importlib.util.find_spec("tensorboard") is not None:
        from ganforge.train.tensorboard import TensorBoardLogger

        if not any(isinstance(cb, TensorBoardLogger) for cb in given):
            extra.append(TensorBoardLogger(out))
    return extra


def default_snapshots(cfg: Config, out: str | Path, dataset) -> Callback:
    """Snapshots every ``train.steps // 10`` steps, about 1 MB of samples each (1,000 samples of toy
    data, 318 MNIST digits, 64 images of 64 x 64 x 3); for 1-D distributions with a cdf, also D on
    a grid, for the Figure-4 plot."""
    import math

    from ganforge.train.callbacks import SampleSnapshots

    n = max(64, min(1000, 250_000 // max(1, math.prod(dataset.shape))))
    grid = None
    if tuple(dataset.shape) == (1,) and callable(getattr(dataset, "cdf", None)):
        from ganforge.metrics.toy import central_interval

        lo, hi = central_interval(dataset, 0.9999)
        pad = 0.5 * (hi - lo)
        grid = (lo - pad, hi + pad, 400)
    return SampleSnapshots(out, every=max(1, cfg.train.steps // 10), n=n, grid=grid)


@dataclass
class LoadedRun:
    """A trained run read back from its directory."""

    config: Config
    experiment: Experiment
    step: int
    path: Path

    @property
    def generator(self) -> nn.Module:
        return self.experiment.generator

    @property
    def discriminator(self) -> nn.Module:
        return self.experiment.discriminator


def load_run(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu",
             dataset: Dataset | None = None) -> LoadedRun:
    """Rebuild the players of a run and load the newest checkpoint's weights.

    With ``ema`` (the default) the generator is the EMA copy, when the run kept one. ``dataset``
    replaces the run's own data source (e.g. when its files live elsewhere on this machine).
    """
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise RunDirError(f"{run_dir} has no checkpoint yet (train it first)")
    step, path = found[-1]
    state = load_checkpoint(path, cfg.accepted_hashes())
    exp = build_experiment(cfg, dataset)
    weights = state["ema_generator"] if ema and state.get("ema_generator") is not None else state["generator"]
    try:
        exp.generator.load_state_dict(weights)
        exp.discriminator.load_state_dict(state["discriminator"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path} does not fit the players of {run_dir}/config.yaml "
                              f"({str(exc).splitlines()[0][:160]})") from None
    exp.generator.to(device).eval()
    exp.discriminator.to(device).eval()
    return LoadedRun(cfg, exp, int(state["step"]), path)


class TrainedGenerator(nn.Module):
    """A trained generator with its prior: call it on z (and y), or ``sample(n, seed=...)``."""

    def __init__(self, run: LoadedRun):
        super().__init__()
        self.generator = run.experiment.generator
        self.prior = run.experiment.prior
        self.n_classes = run.experiment.dataset.n_classes
        self.sample_shape = tuple(run.experiment.dataset.shape)  # one sample, e.g. (1, 28, 28)
        self.config = run.config

    @property
    def latent_dim(self) -> int:
        return self.prior.latent_dim

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.generator(z, y)

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, y: Tensor | int | None = None, batch_size: int = 4096,
               truncation: float | None = None) -> Tensor:
        """``n`` samples, the same for the same seed; ``y`` a class (int) or labels (n,)."""
        g = torch.Generator().manual_seed(seed)
        device = next(self.generator.parameters()).device
        out = []
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z = self.prior.sample(b, g)
            if truncation is not None:
                z = self.prior.truncate(z, truncation, g)
            labels = None
            if self.n_classes:
                if y is None:
                    labels = torch.randint(self.n_classes, (b,), generator=g)
                elif isinstance(y, int):
                    labels = torch.full((b,), y, dtype=torch.long)
                else:
                    labels = y[start : start + b]
                labels = labels.to(device)
            out.append(self.generator(z.to(device), labels).float().cpu())
        return torch.cat(out)


def load_generator(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu") -> TrainedGenerator:
    """One line to get a trained generator back: ``G = ganforge.load_generator("runs/ring8")``."""
    return TrainedGenerator(load_run(run_dir, ema=ema, device=device)).eval()
