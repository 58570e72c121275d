"""Start, resume, and load trained players back: the face of a run directory.

The run directory's layout and files belong to ``ganforge.rundir`` (see its docstring); this
module puts a training run together (check the directory, build the experiment, then the
callbacks, then fit) and reads a trained run back, with or without its training data.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.components import Experiment, build_dataset, build_experiment
from ganforge.config import Config
from ganforge.data.base import Dataset
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.rundir import (
    RunDir,
    RunDirError,
    RunLock,
    check_output_path,
    describe_dataset,
    os_error_line,
    recorded_dataset,
)
from ganforge.train import distributed
from ganforge.train.callbacks import Callback, MetricsLog, ProgressBar
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.state import StandingStatistics, TrainState, standing_statistics
from ganforge.train.trainer import Trainer, remove_stale_writes, resolve_device

__all__ = ["LoadedRun", "RunDirError", "TrainedGenerator", "analyze_run", "load_generator", "load_run",
           "prepare_run_dir", "read_run_config", "train"]


def _diff(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [f"{prefix}: {a!r} -> {b!r}"]


def read_run_config(run_dir: str | Path) -> Config:
    """The config recorded in a run directory."""
    return RunDir(run_dir).read_config()


def prepare_run_dir(cfg: Config, out: str | Path) -> bool:
    """Check ``out`` before training; return True when the run resumes from a checkpoint.

    Refused, with nothing changed: an empty ``--out``, a path that cannot be created or written,
    a folder holding files that ganforge did not write (it is neither empty nor a run directory),
    and a run directory holding checkpoints of a different config.
    """
    path = check_output_path(out, "--out", directory=True)
    run = RunDir(path)
    run.lock().check_free()  # another trainer first: it is the reason for whatever else looks odd
    if path.is_dir() and not run.is_run():
        foreign = run.foreign_entries()
        if foreign:
            shown = ", ".join(foreign[:4]) + (f", ... ({len(foreign) - 4} more)" if len(foreign) > 4 else "")
            raise RunDirError(f"--out {out} holds files that ganforge did not write ({shown}); train into a new "
                              "or empty directory (a run directory is recognised by its data.json)")
    found = run.checkpoints()
    if found:
        old = run.read_config()
        if old.trajectory_hash() != cfg.trajectory_hash():
            changes = _diff(old.to_dict(), cfg.to_dict())
            raise RunDirError(f"{out} holds checkpoints of a different config ({'; '.join(changes[:3])}); "
                              "use another --out, or the same config to resume")
        return True
    return False


def check_same_data(run: RunDir, found: dict) -> None:
    """A resumed run must see the data it was trained on. Where the data lives is not part of the
    config's trajectory hash (a moved folder resumes), so its content is compared instead: the
    fingerprint recorded in data.json against that of the data found now (``found``, its
    description; runs without data.json: nothing recorded, nothing compared)."""
    recorded = (run.read_data() or {}).get("fingerprint")
    now = found.get("fingerprint")
    if recorded and now != recorded:
        raise RunDirError(f"{run.path} was trained on other data than {found.get('source') or found.get('dataset')} "
                          f"holds now (data fingerprint {recorded[:16]}... recorded in {run.data_path.name}, "
                          f"{str(now)[:16]}... found); resume with the same data, or train into another --out")


def _warn(line: str) -> None:
    print(f"ganforge: warning: {line}", file=sys.stderr, flush=True)


def train(cfg: Config, out: str | Path | None, callbacks: list[Callback] | None = None,
          progress: bool | None = None) -> TrainState:
    """Train (or resume) the run described by ``cfg`` in ``out``; returns the final state.

    In order: check ``out``; build the experiment; build every callback (the caller's, then the
    run directory's: metrics, snapshots, diagnostics, TensorBoard, periodic evaluation); set the
    trainer up (reading the checkpoint to resume from); then, on rank 0, take the run's lock, move
    an earlier run's results aside on a fresh start, record config.yaml and data.json; then fit.
    """
    info = distributed.from_env(resolve_device(cfg.train.device))  # torchrun's processes, or one
    verbose = cfg.train.progress if progress is None else progress
    run = None
    resuming = False
    if out is not None:
        resuming = prepare_run_dir(cfg, out)
        run = RunDir(check_output_path(out, "--out", directory=True))
    experiment = build_experiment(cfg)
    description = None
    if run is not None:
        description = describe_dataset(experiment.dataset, cfg)  # the data's fingerprint, computed once
        if resuming:
            check_same_data(run, description)
    cbs: list[Callback] = []
    if run is not None:
        cbs.append(MetricsLog(run.path))
    cbs.append(ProgressBar(verbose))
    cbs += list(callbacks or [])
    if run is not None:
        cbs += run_dir_callbacks(cfg, run.path, experiment, cbs, verbose)
    trainer = Trainer(cfg, None if run is None else run.path, cbs, experiment=experiment, dist_info=info,
                      remove_stale_writes=run is None)
    lock: RunLock | None = None
    try:
        try:
            trainer.setup()  # builds and checks everything (and reads the checkpoint) before writing anything
        except CheckpointError as exc:
            raise (exc if run is None else run.damaged_checkpoint_hint(exc, cfg.accepted_hashes())) from None
        if run is not None:
            if info.rank == 0:
                assert description is not None
                lock = _start_run_dir(cfg, run, description)
            distributed.barrier(info)
        return trainer.fit()
    finally:
        if lock is not None:
            lock.release()


def _start_run_dir(cfg: Config, run: RunDir, description: dict) -> RunLock:
    """Rank 0, before the first step: lock the run directory, remove the temp files of checkpoint
    writes cut short by a crash (only now: before the lock they may be another trainer's write in
    progress), set an earlier run's results aside on a fresh start, and record the config and the
    data description."""
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error_line(exc, f"the run directory {run.path}") from None
    lock = run.lock().acquire()
    try:
        if not run.checkpoints():
            moved = run.supersede_results()
            if moved is not None:
                _warn(f"{run.path} held the results of an earlier run without checkpoints; they were moved to "
                      f"{moved} so that this fresh start does not mix with them")
        remove_stale_writes(run.checkpoints_dir)
        run.write_data(description)
        run.write_config(cfg)
    except OSError as exc:
        lock.release()
        raise os_error_line(exc, f"the run directory {run.path}") from None
    except BaseException:
        lock.release()
        raise
    return lock


def run_dir_callbacks(cfg: Config, out: str | Path, experiment: Experiment, given: list[Callback],
                      verbose: bool = False) -> list[Callback]:
    """What every run directory gets besides metrics.jsonl: sample snapshots (every tenth of the
    run; unless the caller passes its own), periodic evaluation (``train.eval_every``), the periodic
    equilibrium analysis (``train.analyze_every``), diagnostics
    (warnings also on stderr when ``verbose``), and TensorBoard events (when tensorboard is installed)."""
    import importlib.util

    from ganforge.diagnostics.callback import DiagnosticsCallback, warn_to_stderr
    from ganforge.train.callbacks import SampleSnapshots

    extra: list[Callback] = []
    if not any(isinstance(cb, SampleSnapshots) for cb in given):
        extra.append(default_snapshots(cfg, out, experiment.dataset))
    if cfg.train.eval_every:
        from ganforge.evaluation import PeriodicEvaluation

        extra.append(PeriodicEvaluation(cfg.train.eval_every, metrics=cfg.train.eval_metrics, run_dir=out))
    if cfg.train.analyze_every:
        from ganforge.diagnostics.equilibrium_callback import PeriodicAnalysis

        extra.append(PeriodicAnalysis(cfg.train.analyze_every, run_dir=out))
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


def open_dataset(run_dir: str | Path, cfg: Config | None = None, real_data: bool = False) -> Dataset:
    """The data a run's players need. Distributions (toy data) are rebuilt from the config (no
    files); a finite dataset is stood in for by data.json's description (shape, classes, value
    range), so a run reads back without its data. ``real_data``: rebuild the dataset itself (eval's
    comparisons); runs written before data.json always rebuild it."""
    run = RunDir(run_dir)
    cfg = cfg or run.read_config()
    desc = run.read_data()
    if desc is not None and desc.get("finite") and not real_data:
        if "table" in desc:  # a table's encoding is recorded too: sampling decodes rows without the file
            from ganforge.tabular.dataset import RecordedTable  # noqa: PLC0415

            return RecordedTable(desc, str(run.data_path))
        return recorded_dataset(desc, str(run.data_path))
    try:
        return build_dataset(cfg)
    except GanforgeError as exc:
        if real_data:
            raise RunDirError(f"{run.path}: this needs the run's training data ({cfg.data.name}), which cannot be "
                              f"read here ({exc}); give the real images another way (e.g. eval --real)") from None
        if desc is None:
            raise RunDirError(f"{run.path} was written before runs recorded their data (no data.json), and its data "
                              f"cannot be read here ({exc})") from None
        raise


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
    def discriminator(self) -> nn.Module | None:
        return self.experiment.discriminator  # None in a game without one (gmmn)


def load_run(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu",
             dataset: Dataset | None = None, real_data: bool = False) -> LoadedRun:
    """Rebuild the players of a run and load the newest checkpoint's weights.

    With ``ema`` (the default) the generator is the EMA copy, when the run kept one. The players are
    built from the run's data description (data.json), so the training data need not be there;
    ``real_data`` rebuilds the dataset itself, and ``dataset`` replaces it (e.g. when its files
    live elsewhere on this machine).
    """
    run = RunDir(run_dir)
    cfg = run.read_config()
    found = run.checkpoints()
    if not found:
        raise RunDirError(f"{run_dir} has no checkpoint yet (train it first)")
    step, path = found[-1]
    try:
        state = load_checkpoint(path, cfg.accepted_hashes())
    except CheckpointError as exc:
        raise run.damaged_checkpoint_hint(exc, cfg.accepted_hashes()) from None
    if dataset is None:
        dataset = open_dataset(run.path, cfg, real_data=real_data)
    exp = build_experiment(cfg, dataset)
    sampler = exp.game.sampler or "generator"  # the player that makes samples (the GAN's generator)
    try:
        weights = state["ema_generator"] if ema and state.get("ema_generator") is not None else state[sampler]
        for name, module in exp.players.items():  # every player of the game (the GAN: G and D)
            module.load_state_dict(weights if name == sampler else state[name])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path} does not fit the players of {run_dir}/config.yaml "
                              f"({str(exc).splitlines()[0][:160]})") from None
    for module in exp.players.values():
        module.to(device).eval()
    if ema and state.get("ema_generator") is not None and state.get("ema_statistics") != "standing":
        # a checkpoint written before issue 11: its EMA copy holds the raw G's batch-norm statistics;
        # measure the EMA weights' own, as the trainer now does before every checkpoint
        standing_statistics(exp.generator, StandingStatistics.for_config(
            cfg, exp.prior, exp.dataset.n_classes, device, getattr(exp.dataset, "label_probs", None)))
    return LoadedRun(cfg, exp, int(state["step"]), path)


class TrainedGenerator(nn.Module):
    """A trained generator with its prior: call it on z (and y), or ``sample(n, seed=...)``."""

    def __init__(self, run: LoadedRun):
        super().__init__()
        data = run.experiment.dataset
        self.generator = run.experiment.generator
        self.prior = run.experiment.prior
        self.n_classes = data.n_classes
        self.sample_shape = tuple(data.shape)  # one sample, e.g. (1, 28, 28)
        self.class_names = getattr(data, "class_names", None)
        self.value_range = data.value_range  # of the training data (images: (-1, 1)); None for toy data
        # the conditions' distribution when sampling without a given class (a table's category
        # frequencies); None: uniform over the classes
        self.label_probs: Tensor | None = getattr(data, "label_probs", None)
        self.dataset = data
        self.config = run.config

    @property
    def latent_dim(self) -> int:
        return self.prior.latent_dim

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.generator(z, y)

    @torch.no_grad()
    def iter_samples(self, n: int, seed: int = 0, y: Tensor | int | None = None, batch_size: int = 4096,
                     truncation: float | None = None):
        """``sample``'s batches, one at a time (``(b, *sample_shape)`` on the CPU): for outputs too
        large to hold in memory at once. The batches concatenate to ``sample(n, ...)`` exactly."""
        g = torch.Generator().manual_seed(seed)
        device = next(self.generator.parameters()).device
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z = self.prior.sample(b, g)
            if truncation is not None:
                z = self.prior.truncate(z, truncation, g)
            labels = None
            if self.n_classes:
                if y is None and self.label_probs is not None:
                    labels = torch.multinomial(self.label_probs, b, replacement=True, generator=g)
                elif y is None:
                    labels = torch.randint(self.n_classes, (b,), generator=g)
                elif isinstance(y, int):
                    labels = torch.full((b,), y, dtype=torch.long)
                else:
                    labels = y[start : start + b]
                labels = labels.to(device)
            # a generator's own noise (a table's Gumbel-softmax draws) comes from the global stream:
            # seeded here per batch, so the same seed gives the same samples, and the caller's stream is kept
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed * 1_000_003 + start)
                x = self.generator(z.to(device), labels)
            yield x.float().cpu()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, y: Tensor | int | None = None, batch_size: int = 4096,
               truncation: float | None = None) -> Tensor:
        """``n`` samples, the same for the same seed; ``y`` a class (int) or labels (n,)."""
        return torch.cat(list(self.iter_samples(n, seed, y, batch_size, truncation)))


def load_generator(run_dir: str | Path, ema: bool = True, device: str | torch.device = "cpu") -> TrainedGenerator:
    """One line to get a trained generator back: ``G = ganforge.load_generator("runs/ring8")``."""
    return TrainedGenerator(load_run(run_dir, ema=ema, device=device)).eval()


def _checkpoint_of_step(run: RunDir, step: int | None) -> tuple[int, Path]:
    found = run.checkpoints()
    if not found:
        raise RunDirError(f"{run.path} has no checkpoint yet (train it first)")
    if step is None:
        return found[-1]
    for s, path in found:
        if s == step:
            return s, path
    kept = ", ".join(str(s) for s, _ in found)
    raise RunDirError(f"{run.path} has no checkpoint of step {step}; its checkpoints are of steps {kept} "
                      "(the newest train.keep_checkpoints are kept)")


def analyze_run(run_dir: str | Path, step: int | None = None, *, batch_size: int | None = None, seed: int = 0,
                path_points: int = 25, write: bool = True, **options) -> dict:
    """``ganforge analyze``: is the checkpoint of ``step`` (default the newest) an equilibrium of the run's
    game? Analyzed on a fixed batch of ``batch_size`` examples (default ``train.batch_size``) drawn with
    ``seed``, with the path angle from the initialization (``path_points`` values of alpha on [0, 1.2]);
    writes ``run_dir/analysis.json`` (``write``) and returns its content. ``options`` go to
    ``diagnostics.equilibrium.analyze_equilibrium`` (method, dense_max, n_eigenvalues, tolerances)."""
    import copy

    from ganforge.diagnostics.equilibrium_run import analyze_game, fixed_batch, json_safe

    run = RunDir(run_dir).require()
    cfg = run.read_config()
    at, path = _checkpoint_of_step(run, step)
    try:
        state = load_checkpoint(path, cfg.accepted_hashes())
    except CheckpointError as exc:
        raise run.damaged_checkpoint_hint(exc, cfg.accepted_hashes()) from None
    exp = build_experiment(cfg, open_dataset(run.path, cfg, real_data=True))  # players at their initialization
    start = {name: copy.deepcopy(m) for name, m in exp.players.items()}
    for name, module in exp.players.items():
        try:
            module.load_state_dict(state[name])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the player {name!r} of {run.path}/config.yaml "
                                  f"({str(exc).splitlines()[0][:160]})") from None
    n = int(batch_size or cfg.train.batch_size)
    batch = fixed_batch(exp.dataset, n, seed, torch.float64)
    result = analyze_game(exp.game, exp.players, exp.prior, batch, seed=seed, start=start, path_points=path_points,
                          **options)
    record = json_safe({"run": str(run.path), "step": at, "checkpoint": path.name, "game": cfg.game.name,
                        "batch": {"size": n, "seed": seed}, **result})
    if write:
        run.write_analysis(record)
    return record
