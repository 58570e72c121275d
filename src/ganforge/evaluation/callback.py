"""Periodic evaluation during training: metrics of the EMA generator, logged into metrics.jsonl.

Every ``every`` steps (and at the last step), rank 0 draws ``n`` samples from the EMA generator
(the raw one when the run keeps no EMA) with a fixed seed, measures them against the run's real
images with the chosen metrics, and appends one line to ``run_dir/metrics.jsonl``::

    {"step": 2000, "eval/fid": 3.21, "eval/kid": 0.0012, ...}

The real images' features are computed once, at the first evaluation, and kept. Sampling uses its
own ``torch.Generator`` and the generator runs in eval mode under ``no_grad``, so evaluating does
not change the training trajectory. Records past a resume / rollback step are dropped by
``MetricsLog`` like every other record.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.evaluation.feature_metrics import check_metrics, evaluate_images
from ganforge.evaluation.features.base import FeatureError, FeatureExtractor, Features
from ganforge.evaluation.features.extractors import default_features, load_extractor
from ganforge.evaluation.protocol import EvalSettings
from ganforge.evaluation.sources import GeneratorSource, TensorSource
from ganforge.rundir import RunDir
from ganforge.train.callbacks import Callback

if TYPE_CHECKING:
    from ganforge.train.state import TrainState
    from ganforge.train.trainer import Trainer

__all__ = ["PeriodicEvaluation"]


class PeriodicEvaluation(Callback):
    """Computes ``metrics`` on ``n`` EMA-generator samples every ``every`` steps (rank 0 only).

    Args:
        every: evaluate when ``step % every == 0`` and at the last step.
        n: generated samples per evaluation.
        metrics: names from ``ganforge.evaluation.METRICS`` (default FID only: cheap and streaming).
        features: a ``--features`` spec or extractor; None: the dataset's own classifier
            (digits, mnist), else Inception (whose weights must then be available).
        run_dir: where metrics.jsonl lives (default: the trainer's run directory).
        seed: seed of the latents (the same samples' latents at every evaluation).
        n_real: at most this many real images (default: all).
        inception_weights: weights file for ``features="inception"``.
        settings: the protocol (default: ``EvalSettings(seed=seed)``, the protocol of ``ganforge eval``:
            generated images quantized to 8 bits, precision / recall at k = 3, density / coverage at k = 5).
        write: where each record goes (e.g. the run directory's metrics appender); default: appended
            to ``run_dir/metrics.jsonl``.

    ``protocol`` holds the protocol block of the last evaluation (the same as eval.json's).
    """

    def __init__(self, every: int, n: int = 2000, metrics: Sequence[str] = ("fid",),
                 features: str | FeatureExtractor | None = None, run_dir: str | Path | None = None,
                 seed: int = 0, n_real: int | None = None, inception_weights: str | os.PathLike[str] | None = None,
                 settings: EvalSettings | None = None, write: Callable[[dict[str, Any]], None] | None = None
                 ) -> None:
        if not isinstance(every, int) or every < 1:
            raise FeatureError(f"PeriodicEvaluation: every must be a positive integer, got {every!r}")
        if n < 2:
            raise FeatureError(f"PeriodicEvaluation: n must be >= 2, got {n}")
        self.every, self.n, self.metrics = every, n, tuple(metrics)
        self.features, self.run_dir, self.seed, self.n_real = features, run_dir, seed, n_real
        self.inception_weights = inception_weights
        self.settings = settings or EvalSettings(seed=seed)
        self._extractor: FeatureExtractor | None = None
        self._real_features: dict[str, Features] = {}
        self.history: list[dict[str, Any]] = []
        self.write = write
        self.protocol: dict[str, Any] | None = None

    def _run(self, trainer: Trainer) -> RunDir | None:
        root = self.run_dir if self.run_dir is not None else trainer.run_dir
        return None if root is None else RunDir(root)

    def on_fit_start(self, trainer: Trainer, state: TrainState) -> None:
        if trainer.rank != 0:
            return
        check_metrics(self.metrics)  # fail before training, not at the first evaluation
        dataset = trainer.experiment.dataset if trainer.experiment is not None else None
        if dataset is None or dataset.examples is None or len(dataset.shape) != 3:
            raise FeatureError("periodic evaluation (train.eval_every) needs an image dataset; toy runs are "
                               "measured with `ganforge eval` after training")

    def _setup(self, trainer: Trainer) -> FeatureExtractor:
        if self._extractor is None:
            exp = trainer.experiment
            assert exp is not None
            spec = self.features if self.features is not None else default_features(trainer.cfg.data.name)
            self._extractor = load_extractor(spec, inception_weights=self.inception_weights,
                                             device=trainer.device or "cpu")
            check_metrics(self.metrics, self._extractor)
        return self._extractor

    def evaluate(self, trainer: Trainer, state: TrainState) -> dict[str, Any]:
        """The record of one evaluation (also appended to metrics.jsonl by ``on_step_end``)."""
        exp = trainer.experiment
        assert exp is not None and exp.dataset.examples is not None
        extractor = self._setup(trainer)
        t0 = time.perf_counter()
        dataset = exp.dataset
        real = TensorSource(dataset.examples, getattr(dataset, "targets", None), name=trainer.cfg.data.name)
        fake = GeneratorSource(state.sampler, exp.prior, self.n, seed=self.seed, n_classes=dataset.n_classes,
                               device=trainer.device)
        report = evaluate_images(fake, real, extractor, self.metrics, n_real=self.n_real, settings=self.settings,
                                 real_features=self._real_features)
        self.protocol = report["protocol"]
        record: dict[str, Any] = {"step": state.step}
        record.update({f"eval/{k}": v for k, v in report["metrics"].items()})
        record["eval/seconds"] = round(time.perf_counter() - t0, 3)
        return record

    def on_step_end(self, trainer: Trainer, state: TrainState) -> None:
        if trainer.rank != 0:
            return
        if state.step % self.every and state.step != trainer.cfg.train.steps:
            return
        record = self.evaluate(trainer, state)
        self.history.append(record)
        if self.write is not None:
            self.write(record)
            return
        run = self._run(trainer)
        if run is not None:
            run.append_metrics(record)
