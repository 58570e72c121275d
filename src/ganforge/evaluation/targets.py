"""Measured quality of a trained run (``ganforge eval``).

For toy distributions, whose density and modes are known, the numbers are exact protocols:

- 2-D mixtures (ring, grid, ...): the PacGAN/VEEGAN protocol on ``n`` samples (default 2,500):
  modes captured, fraction of high-quality samples (within 3 std of the nearest mode), and the
  reverse KL of the mode histogram against the true weights.
- 1-D distributions: Wasserstein-1 distance and KS statistic to the true distribution, and the
  discriminator against the optimal D* = p_data / (p_data + p_model) on a grid over the data's
  central 99 % (p_model estimated from samples by a Gaussian KDE).

For images (image runs, or any folder / ``.npy`` / ``.npz`` of samples) the numbers are measured
in a feature space (``ganforge.evaluation.features``) with the protocol of
``ganforge.evaluation.protocol``: FID, KID, IS, precision/recall, density/coverage, the
classifier's mode count and the memorization check, each optionally with its real-vs-real floor
(:func:`evaluate_target`, behind ``ganforge eval``). Every report has a ``protocol`` block.

This module does not open run directories itself: the caller passes the two functions that read
a run's config and load its players (``ganforge.run``'s), so evaluation never imports upward.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ganforge.errors import DataError, GanforgeError
from ganforge.evaluation.protocol import ganforge_version
from ganforge.io import available_memory_bytes, write_json_atomic
from ganforge.metrics.toy import (
    central_interval,
    discriminator_gap,
    estimate_density_1d,
    ks_statistic,
    mode_metrics,
    optimal_discriminator,
    wasserstein1,
)
from ganforge.rundir import RunDir

if TYPE_CHECKING:
    from ganforge.config import Config
    from ganforge.data import Dataset
    from ganforge.evaluation.sources import ImageSource
    from ganforge.run import LoadedRun

    ReadConfig = Callable[[Path], Config]
    LoadRun = Callable[..., LoadedRun]  # (run_dir, device=..., dataset=...) -> LoadedRun


def data_std_1d(dataset: Any) -> float:
    """Standard deviation of a 1-D Gaussian mixture, from its components."""
    w, m, s = (dataset.weights.double(), dataset.modes.double().reshape(-1), dataset.mode_stds.double())
    mean = (w * m).sum()
    return float(((w * (s**2 + m**2)).sum() - mean**2).sqrt())


@torch.no_grad()
def discriminator_on_grid(run: LoadedRun, grid: np.ndarray) -> np.ndarray:
    """D's probability of "real" on a 1-D grid (sigmoid of the logit)."""
    x = torch.as_tensor(grid, dtype=torch.float32).reshape(-1, 1)
    return torch.sigmoid(run.discriminator(x)).double().numpy()


def one_d_report(run: LoadedRun, samples: np.ndarray, grid_points: int = 512) -> dict[str, float]:
    dataset = run.experiment.dataset
    x = samples.reshape(-1)
    sigma = data_std_1d(dataset)
    lo, hi = central_interval(dataset, 0.99)
    grid = np.linspace(lo, hi, grid_points)
    p_data = dataset.prob(torch.as_tensor(grid)).double().numpy()
    p_model = estimate_density_1d(x, grid)
    d_star = optimal_discriminator(grid, p_data, p_model)
    out = {
        "w1": wasserstein1(x, lambda t: dataset.cdf(torch.as_tensor(t)).double().numpy()),
        "ks": ks_statistic(x, lambda t: dataset.cdf(torch.as_tensor(t)).double().numpy()),
        "data_std": sigma,
    }
    out["w1_over_sigma"] = out["w1"] / sigma
    if run.experiment.cost.probabilistic:
        d = discriminator_on_grid(run, grid)
        out["d_gap_to_optimal"] = discriminator_gap(d, d_star)
        out["d_mean_abs_from_half"] = float(np.mean(np.abs(d - 0.5)))
    return out


#: Samples per batch of the toy protocol (the batch size of ``TrainedGenerator.sample``: same seed,
#: same samples as ``ganforge sample``).
TOY_BATCH = 4096


def check_toy_memory(n: int, sample_dim: int, available: int | None = None) -> None:
    """Refuse a toy evaluation whose ``n`` samples (and their per-sample work) cannot fit in memory."""
    need = n * (12 * sample_dim + 64)  # float32 samples, batches + concatenation, float64 copies and sorts
    free = available_memory_bytes("cpu") if available is None else available
    if need > 0.8 * free:
        raise EvalError(f"--n {n:,}: the toy protocol holds all samples, about {need / 2**30:.3g} GiB, and "
                        f"{free / 2**30:.3g} GiB of memory is free; use fewer samples (the default is {DEFAULT_TOY_N:,})")


def sample_run(run: LoadedRun, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples of the run's (EMA) generator, the same as ``ganforge sample --seed`` draws."""
    from ganforge.evaluation.sources import GeneratorSource

    src = GeneratorSource(run.generator, run.experiment.prior, n, seed=seed, n_classes=run.experiment.dataset.n_classes)
    return torch.cat(list(src.batches(TOY_BATCH)))


def evaluate_run(run: LoadedRun, n: int = 2500, seed: int = 0) -> dict[str, Any]:
    """The measured quality of a trained toy run, as a JSON-able dict (with its ``protocol``)."""
    dataset = run.experiment.dataset
    check_toy_memory(n, math.prod(dataset.shape))
    samples = sample_run(run, n, seed=seed).numpy()
    report: dict[str, Any] = {"run": str(run.path.parent.parent), "step": run.step, "n": n, "seed": seed,
                              "dataset": run.config.data.name}
    if not np.all(np.isfinite(samples)):
        report["non_finite_samples"] = int((~np.isfinite(samples)).any(axis=tuple(range(1, samples.ndim))).sum())
    modes = getattr(dataset, "modes", None)
    if len(dataset.shape) == 1 and dataset.shape[0] == 1 and hasattr(dataset, "cdf"):
        report.update(one_d_report(run, samples))
    if modes is not None and dataset.shape[0] >= 2:
        r = mode_metrics(samples, modes, dataset.mode_stds, dataset.weights)
        report.update({"modes_captured": r.modes_captured, "n_modes": r.n_modes,
                       "hq_fraction": r.hq_fraction, "reverse_kl": r.reverse_kl,
                       "mode_counts": list(r.counts)})
    out = {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in report.items()}
    out["protocol"] = {
        "ganforge_version": ganforge_version(), "kind": "toy (known density and modes)", "n_fake": n, "seed": seed,
        "generator": "EMA copy (when the run kept one)",
        "modes": "PacGAN / VEEGAN: a sample belongs to its nearest mode within 3 std (high quality)"
                 if modes is not None and dataset.shape[0] >= 2 else None,
        "one_d": "W1 and KS against the true cdf; D against D* = p_data / (p_data + p_model) on the central 99 %, "
                 "p_model by a Gaussian KDE" if "w1" in out else None,
    }
    out["protocol"] = {k: v for k, v in out["protocol"].items() if v is not None}
    return out


# -- images: runs, sample folders and arrays ------------------------------------------------------

#: Generated samples per evaluation of an image run when ``--n`` is not given (FID is biased by the
#: sample size; 10,000 is the usual minimum for comparable numbers).
DEFAULT_IMAGE_N = 10_000
DEFAULT_TOY_N = 2_500
DEFAULT_IMAGE_METRICS = ("fid", "kid", "prdc")


class EvalError(GanforgeError, ValueError):
    """``ganforge eval`` was asked for something it cannot measure."""


def check_device(spec: str) -> torch.device:
    """``--device``: a device this machine has (``cpu``, ``cuda``, ``cuda:N``), else one line."""
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise EvalError(f"--device {spec!r}: not a device; allowed: cpu, cuda, cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EvalError(f"--device {spec}: this machine has no CUDA GPU that torch can use "
                            "(torch.cuda.is_available() is False); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EvalError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                            f"numbered 0..{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise EvalError(f"--device {spec}: ganforge eval runs on cpu or cuda[:N]")
    return device


def check_output(path: str | Path) -> Path:
    """Refuse, before any work, an output file that cannot be written (no file there is touched)."""
    p = Path(path)
    if str(path).strip() == "":
        raise EvalError("--out '': empty path; give a JSON file name")
    if p.is_dir():
        raise EvalError(f"--out {p}: is a directory; give a JSON file name")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EvalError(f"--out {p}: {parent} is a file, not a directory; nothing was written")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise EvalError(f"--out {p}: the directory {parent} is not writable; nothing was written "
                        "(choose another --out)")
    return p


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write the eval JSON atomically; an OS refusal becomes one line (an old file stays as it was)."""
    p = check_output(path)
    try:
        write_json_atomic(p, report)
    except OSError as exc:
        raise EvalError(f"--out {p}: cannot write it ({exc.strerror or type(exc).__name__}); "
                        "nothing was changed there") from None
    return p


@dataclass(frozen=True)
class EvalRequest:
    """What ``ganforge eval`` was asked; None means "the default for this kind of target"."""

    metrics: tuple[str, ...] | None = None
    n: int | None = None
    seed: int = 0
    features: str | None = None
    floor: bool = False
    real: str | None = None  # a dataset name, or a folder / .npy / .npz of real images
    real_params: dict[str, Any] = field(default_factory=dict)  # dataset parameters (--real-path, --real-set)
    heldout: str | None = None  # like ``real``: images never trained on (memorization)
    heldout_params: dict[str, Any] = field(default_factory=dict)  # on top of the real data's, same dataset
    n_real: int | None = None
    inception_weights: str | None = None
    batch_size: int = 250
    device: str = "cpu"
    quantize: bool = True  # images to 8 bits before the feature network (the reference protocol)

    @property
    def asks_for_features(self) -> bool:
        return bool(self.metrics is not None or self.features or self.floor or self.real or self.real_params
                    or self.heldout)


def _is_image_dataset(dataset: Any) -> bool:
    return getattr(dataset, "examples", None) is not None and len(getattr(dataset, "shape", ())) == 3


def build_image_dataset(name: str, params: dict[str, Any], what: str) -> Dataset:
    from ganforge.data import DATASETS

    dataset = DATASETS.build(name, params, where=what)
    if not _is_image_dataset(dataset):
        raise EvalError(f"{what} {name!r} is not an image dataset (its examples have shape {tuple(dataset.shape)})")
    return dataset


def open_images(spec: str, params: dict[str, Any], what: str) -> tuple[ImageSource, str | None]:
    """A dataset name (with ``params``), or a folder / .npy / .npz of images -> (source, dataset name)."""
    from ganforge.data import DATASETS
    from ganforge.evaluation.sources import TensorSource, open_samples

    if spec in DATASETS:
        dataset = build_image_dataset(spec, params, what)
        return TensorSource(dataset.examples, getattr(dataset, "targets", None), name=spec), spec
    if params:
        raise EvalError(f"{what} {spec}: --real-path / --real-set set parameters of a dataset, and {spec!r} is not "
                        f"one (datasets: {', '.join(DATASETS.names())})")
    p = Path(spec)
    if not p.exists():
        raise EvalError(f"{what} {spec!r}: neither a dataset ({', '.join(DATASETS.names())}) nor an existing "
                        "folder / .npy / .npz of images")
    return open_samples(p), None


def default_output(target: Path) -> Path:
    """Where ``ganforge eval TARGET`` writes its JSON: TARGET/eval.json for directories,
    ``NAME.eval.json`` beside an array file."""
    return RunDir(target).eval_path if target.is_dir() else target.with_name(target.stem + ".eval.json")


def _run_data(cfg: Config, path: Path, req: EvalRequest, needed: bool) -> Dataset | None:
    """The run's own data (with --real-path / --real-set on top), or None when it cannot be read and
    is not ``needed`` (other real images were given); when needed, one line saying how to give it."""
    from ganforge.data import DATASETS

    params = {**cfg.data.params, **req.real_params}
    try:
        return DATASETS.build(cfg.data.name, params, where="data")
    except DataError as exc:
        if not needed:
            return None
        where = f" at {params['path']}" if "path" in params else ""
        raise EvalError(f"{path}: eval compares samples with real images, and the run's training data ({cfg.data.name}{where}) "
                        f"cannot be read ({str(exc).splitlines()[0]}); give it with --real-path DIR (or other real "
                        "images with --real DATASET|FOLDER|FILE)") from None


def evaluate_target(target: str | Path, req: EvalRequest, *, read_config: ReadConfig | None = None,
                    load_run: LoadRun | None = None) -> dict[str, Any]:
    """``ganforge eval TARGET``: a run directory (toy or image), a folder of sample images, or a
    ``.npy`` / ``.npz`` array of samples. Returns the JSON-able report.

    ``read_config(run_dir)`` and ``load_run(run_dir, device=..., dataset=...)`` open run
    directories (``ganforge.run``'s functions; needed only when TARGET is one).
    """
    from ganforge.evaluation.feature_metrics import evaluate_images
    from ganforge.evaluation.features.extractors import default_features, load_extractor
    from ganforge.evaluation.protocol import EvalSettings
    from ganforge.evaluation.sources import GeneratorSource, TensorSource, open_samples

    path = Path(target)
    if not path.exists():
        raise EvalError(f"{path}: not found; expected a run directory, a folder of sample images, or a .npy / .npz "
                        "array of samples")
    check_device(req.device)
    settings = EvalSettings(batch_size=req.batch_size, seed=req.seed, quantize=req.quantize)
    head: dict[str, Any]
    if path.is_dir() and RunDir(path).config_path.exists():
        if read_config is None or load_run is None:
            raise EvalError(f"{path}: is a run directory; evaluate_target needs read_config and load_run to open it")
        cfg = read_config(path)
        data = _run_data(cfg, path, req, needed=req.real is None)
        run = load_run(path, device=req.device, dataset=data)
        if len(run.experiment.dataset.shape) != 3:  # the players' data, even when only described (no examples)
            if req.asks_for_features:
                raise EvalError(f"{path}: a toy run is measured with its exact protocol (modes, W1, D*); --metrics, "
                                "--features, --floor and --real apply to image runs and to sample files")
            return evaluate_run(run, n=req.n or DEFAULT_TOY_N, seed=req.seed)
        n = req.n or DEFAULT_IMAGE_N
        fake: ImageSource = GeneratorSource(run.generator, run.experiment.prior, n, seed=req.seed,
                                            n_classes=run.experiment.dataset.n_classes, device=req.device,
                                            name=f"{path} (EMA generator, step {run.step})")
        if req.real is None:  # the run's own data (built with --real-path / --real-set when given)
            assert data is not None
            real: ImageSource = TensorSource(data.examples, getattr(data, "targets", None),
                                             name=f"{cfg.data.name} (the run's data)")
            real_name: str | None = cfg.data.name
            real_spec, base_params = cfg.data.name, {**cfg.data.params, **req.real_params}
        else:
            real, real_name = open_images(req.real, req.real_params, "--real")
            real_spec, base_params = req.real, req.real_params
        head = {"run": str(path), "step": run.step, "dataset": cfg.data.name, "n": n, "seed": req.seed}
    else:
        fake = open_samples(path)
        if req.real is None:
            raise EvalError(f"{path}: samples outside a run directory need --real: a dataset name (digits, or mnist "
                            "with --real-path DIR) or a folder / .npy / .npz of real images")
        if req.n is not None and req.n < len(fake):
            fake = fake.subset(torch.arange(req.n))
        real, real_name = open_images(req.real, req.real_params, "--real")
        real_spec, base_params = req.real, req.real_params
        head = {"samples": str(path), "n": len(fake), "seed": req.seed}
    heldout = None
    if req.heldout is not None:
        # a dataset named like the real one inherits its parameters (e.g. mnist's path), then --heldout-set
        inherited = base_params if req.heldout == real_spec else {}
        heldout, _ = open_images(req.heldout, {**inherited, **req.heldout_params}, "--heldout")
    features = req.features or default_features(real_name)
    extractor = load_extractor(features, inception_weights=req.inception_weights, device=req.device)
    metrics = req.metrics if req.metrics is not None else DEFAULT_IMAGE_METRICS
    report = evaluate_images(fake, real, extractor, metrics, floor=req.floor, heldout=heldout, n_real=req.n_real,
                             settings=settings)
    return {**head, **report}
