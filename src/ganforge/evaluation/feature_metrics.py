"""Measuring generated images against real ones in a feature space, with the real-vs-real floor.

:func:`evaluate_images` is the one entry point (``ganforge eval``, :class:`PeriodicEvaluation`
and the benchmarks all use it):

1. the real images are put in a seeded random order and cut into two disjoint halves ``A`` and
   ``B``; ``B`` is further cut into ``B1`` (as many images as there are generated samples, at most
   all of ``B``) and the rest;
2. features (and logits, when a metric needs them) of the generated samples and of each part are
   computed in batches, every image first quantized to 8 bits (:mod:`ganforge.evaluation.protocol`); FID only needs the streaming ``GaussianStats``, the other metrics keep the
   feature matrix;
3. every metric compares the generated samples with the *reference*: all the real images, or only
   ``A`` with ``floor=True``, where the same metrics are also computed between ``A`` and ``B1``,
   real against real: the best value reachable with this data, these features and these sample sizes.

Metrics are registered in ``METRICS`` by name (``fid``, ``kid``, ``is``, ``prdc``, ``modes``,
``memorization``); each returns flat, JSON-able numbers. Another metric is added by registering a
subclass of :class:`EvalMetric` (``@METRICS.register("name")``) that says what it needs.

Before any image is read, the memory the chosen metrics will keep (feature matrices, logits) is
estimated and an evaluation that cannot fit is refused with one line (FID alone streams).

The memorization check compares each generated sample's distance to its nearest *training* image
with the same distance for *held-out* real images (in feature space). ``heldout`` should be real
data the generator never saw; without it, ``A`` stands for the training set and ``B`` for the
held-out set. When the generator trained on all the real data that is a weaker test: a generator
that copies its training set then has about half of its samples suspiciously close (copies of
``A``) instead of the 1 % expected, which still shows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from ganforge.evaluation.features.base import RANGE_TOLERANCE, FeatureError, FeatureExtractor, Features
from ganforge.evaluation.protocol import EvalSettings, protocol_record, quantize_8bit
from ganforge.evaluation.sources import ImageSource
from ganforge.io import available_memory_bytes
from ganforge.metrics import (
    fid_from_stats,
    inception_score,
    kid,
    label_histogram_metrics,
    memorization,
    prdc,
)
from ganforge.metrics.fid import GaussianStats
from ganforge.registry import Registry

__all__ = ["METRICS", "EvalMetric", "EvalSettings", "MetricInputs", "check_memory", "check_metrics", "compare",
           "evaluate_images", "merge_features"]


@dataclass
class MetricInputs:
    """What a metric may use; only what some requested metric needs is filled in."""

    real: Features  # the reference set
    fake: Features
    real_labels: Tensor | None  # (n_real,) true labels of the reference set, when known
    train: Features | None  # memorization: the training set stand-in
    heldout: Features | None  # memorization: real images never trained on
    n_classes: int
    settings: EvalSettings


class EvalMetric:
    """A metric of generated vs real features. Subclasses say what they need."""

    needs_features = False  # the (n, d) feature matrices (else the Gaussian statistics suffice)
    needs_logits = False  # the classifier's logits
    on_floor = True  # also computed real vs real with --floor

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        raise NotImplementedError


METRICS: Registry[EvalMetric] = Registry("metric")


def _need(x: Tensor | None, what: str) -> Tensor:
    if x is None:
        raise FeatureError(f"internal: {what} were not computed")
    return x


@METRICS.register("fid")
class FIDMetric(EvalMetric):
    """Fréchet distance of the two feature Gaussians (Heusel et al. 2017)."""

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        return {"fid": fid_from_stats(inp.real.stats, inp.fake.stats)}


@METRICS.register("kid")
class KIDMetric(EvalMetric):
    """Unbiased cubic-kernel MMD^2 over subsets (Bińkowski et al. 2018)."""

    needs_features = True

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        s = inp.settings
        size = max(2, min(s.kid_subset_size, inp.real.n, inp.fake.n))
        r = kid(_need(inp.real.features, "real features"), _need(inp.fake.features, "fake features"),
                n_subsets=s.kid_subsets, subset_size=size, seed=s.seed)
        return {"kid": r.mean, "kid_std": r.std, "kid_subset_size": size}


@METRICS.register("is")
class ISMetric(EvalMetric):
    """Inception Score of the generated samples' logits (Salimans et al. 2016); floor: of real B1."""

    needs_logits = True

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        logits = _need(inp.fake.logits, "logits")
        r = inception_score(logits, splits=max(1, min(inp.settings.is_splits, logits.shape[0])))
        return {"is": r.mean, "is_std": r.std}


@METRICS.register("prdc")
class PRDCMetric(EvalMetric):
    """Precision / recall at k = 3 (Kynkäänniemi et al. 2019), density / coverage at k = 5 (Naeem et al. 2020)."""

    needs_features = True

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        r = prdc(_need(inp.real.features, "real features"), _need(inp.fake.features, "fake features"),
                 k=inp.settings.dc_k, pr_k=inp.settings.pr_k)
        return {"precision": r.precision, "recall": r.recall, "density": r.density, "coverage": r.coverage}


@METRICS.register("modes")
class ModesMetric(EvalMetric):
    """Classes the classifier finds among the samples, and KL(sample labels || real labels).

    ``modes_covered`` counts a class when it gets at least a tenth of its uniform share of the samples
    (``0.1 / n_classes``), so that a few misclassified samples do not make a dropped mode look covered;
    ``modes_hit`` is the stacked-MNIST convention (at least one sample). The reference histogram is
    the real images' labels when known, else the classifier's predictions on them.
    """

    needs_logits = True

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        fake = _need(inp.fake.logits, "logits")
        if inp.real_labels is not None:
            reference: Tensor = inp.real_labels
        else:
            reference = _need(inp.real.logits, "real logits").argmax(dim=1)
        r = label_histogram_metrics(fake, reference, inp.n_classes, min_fraction=0.1 / inp.n_classes)
        return {"modes_covered": r.modes_covered, "modes_hit": int((r.counts >= 1).sum()),
                "modes_total": r.n_classes, "label_kl": r.kl}


@METRICS.register("memorization")
class MemorizationMetric(EvalMetric):
    """Nearest-training-image distances of samples vs of held-out real images (feature space)."""

    needs_features = True
    on_floor = False

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        train = _need(None if inp.train is None else inp.train.features, "training features")
        heldout = _need(None if inp.heldout is None else inp.heldout.features, "held-out features")
        r = memorization(_need(inp.fake.features, "fake features"), train, heldout)
        return {"memorization_fraction_suspicious": r.fraction_suspicious,
                "memorization_ks_statistic": r.ks_statistic, "memorization_ks_pvalue": r.ks_pvalue,
                "memorization_threshold": r.threshold,
                "memorization_generated_q01": r.generated.q01, "memorization_generated_median": r.generated.q50,
                "memorization_heldout_q01": r.heldout.q01, "memorization_heldout_median": r.heldout.q50}


def check_metrics(names: Sequence[str], extractor: FeatureExtractor | None = None) -> list[EvalMetric]:
    """The metric objects for ``names``; unknown names, or logits the extractor lacks, are refused."""
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise FeatureError(f"--metrics: no metric named; valid: {', '.join(METRICS.names())}")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise FeatureError(f"--metrics: unknown metric(s) {', '.join(unknown)}; valid: {', '.join(METRICS.names())}")
    metrics = [METRICS.get(n)() for n in dict.fromkeys(names)]
    if extractor is not None and not extractor.n_classes:
        needing = [n for n, m in zip(dict.fromkeys(names), metrics, strict=True) if m.needs_logits]
        if needing:
            raise FeatureError(f"--metrics {','.join(needing)} need class logits, and the {extractor.name} features "
                               "have none; use a classifier (digits, mnist, inception) or drop them")
    return metrics


def merge_features(parts: Sequence[Features]) -> Features:
    """The features of the union of disjoint parts (in order)."""
    stats = GaussianStats()
    for p in parts:
        stats = stats.merge(p.stats)
    feats = [p.features for p in parts if p.features is not None and p.features.shape[0]]
    logits = [p.logits for p in parts if p.logits is not None and p.logits.shape[0]]
    return Features(stats, torch.cat(feats) if feats else None, torch.cat(logits) if logits else None)


def compare(metrics: Sequence[EvalMetric], inp: MetricInputs) -> dict[str, float]:
    """Run ``metrics`` on ``inp``; returns their numbers in one flat dict."""
    out: dict[str, float] = {}
    for m in metrics:
        out.update(m(inp))
    return out


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _quantized(batches: Iterator[Tensor]) -> Iterator[Tensor]:
    for x in batches:
        # NaN / out-of-range images go on as they are, for the extractor to refuse with its own message
        ok = x.numel() > 0 and bool(torch.isfinite(x).all()) and float(x.min()) >= -1.0 - RANGE_TOLERANCE \
            and float(x.max()) <= 1.0 + RANGE_TOLERANCE
        yield quantize_8bit(x) if ok else x


def _extract(extractor: FeatureExtractor, source: ImageSource, settings: EvalSettings, keep_features: bool,
             keep_logits: bool, quantize: bool = False) -> Features:
    batches = source.batches(settings.batch_size)
    return extractor.extract(_quantized(batches) if quantize else batches, keep_features=keep_features,
                             keep_logits=keep_logits, source=source.name)


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def check_memory(n_images: int, extractor: FeatureExtractor, metrics: Sequence[EvalMetric], names: Sequence[str],
                 what: str, available: int | None = None) -> None:
    """Refuse, before reading any image, an evaluation whose kept features / logits cannot fit.

    FID keeps only the streaming mean and covariance (``d + d^2`` float64 per set); a metric that
    needs the feature matrix keeps ``n x d`` float32, the logits ``n x n_classes`` float32; the
    k-NN and kernel metrics then work in blocks. Features of unknown size (a callable whose size
    is fixed by its first batch) count as 2,048.
    """
    dim = extractor.num_features or 2048
    per_image = 0
    if any(m.needs_features for m in metrics):
        per_image += 4 * dim
    if any(m.needs_logits for m in metrics):
        per_image += 4 * max(extractor.n_classes, 1)
    need = n_images * per_image + 4 * 8 * (dim + dim * dim)  # kept matrices + a few Gaussian statistics
    free = available_memory_bytes(extractor.device) if available is None else available
    if need > 0.8 * free:
        keeping = [n for n, m in zip(names, metrics, strict=True) if m.needs_features or m.needs_logits]
        raise FeatureError(f"{what}: keeping the {extractor.name} features of {n_images:,} images for "
                           f"{','.join(keeping)} needs about {_gib(need)}, and {_gib(free)} of memory is free; "
                           "use fewer samples (--n; 10,000 is the usual size) or --metrics fid alone (it streams)")


def evaluate_images(fake: ImageSource, real: ImageSource, extractor: FeatureExtractor, metrics: Sequence[str], *,
                    floor: bool = False, heldout: ImageSource | None = None, n_real: int | None = None,
                    settings: EvalSettings | None = None, real_features: dict[str, Features] | None = None
                    ) -> dict[str, Any]:
    """Measure ``fake`` against ``real`` in ``extractor``'s feature space.

    Args:
        fake: the generated samples.
        real: the real images (all are used, in a seeded random order, unless ``n_real``).
        extractor: the feature space.
        metrics: names registered in ``METRICS``.
        floor: measure against half ``A`` of the real images, and the same metrics between ``A``
            and ``B1`` (real vs real) under ``"floor"``.
        heldout: real images never trained on, for ``memorization`` (default: ``B``).
        n_real: use at most this many real images.
        real_features: a dict the caller keeps between calls to reuse the real images' features
            (periodic evaluation); filled on the first call.

    Returns:
        A JSON-able dict: ``metrics``, ``floor`` (with ``floor``), sizes, settings and ``warnings``.
    """
    settings = settings or EvalSettings()
    chosen = check_metrics(metrics, extractor)
    names = list(dict.fromkeys(n.strip() for n in metrics if n.strip()))
    n_real_used = len(real) if n_real is None else min(len(real), n_real)
    check_memory(len(fake) + n_real_used + (len(heldout) if heldout is not None else 0), extractor, chosen, names,
                 f"{fake.name}")
    keep_features = any(m.needs_features for m in chosen)
    keep_logits = any(m.needs_logits for m in chosen)
    wants_memorization = any(isinstance(m, MemorizationMetric) for m in chosen)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        if extractor.describe().get("reference_weights") is False:
            warnings.warn(f"the {extractor.name} weights ({extractor.weights_file}, SHA-256 {extractor.weights_sha256}) "
                          "are not the reference file (pytorch-fid's pt_inception-2015-12-05-6726825d.pth): the "
                          "numbers are not comparable with published ones", UserWarning, stacklevel=2)
        # -- the real images: seeded order, halves A | B1 | B2 ----------------------------------------
        m = len(real)
        if n_real is not None:
            m = min(m, n_real)
        if m < 4:
            raise FeatureError(f"{real.name}: {m} real image(s); at least 4 are needed (2 per half)")
        n_fake = len(fake)
        if n_fake < 2:
            raise FeatureError(f"{fake.name}: {n_fake} sample(s); at least 2 are needed")
        order = torch.randperm(len(real), generator=torch.Generator().manual_seed(settings.seed))[:m]
        half = (m + 1) // 2
        b1 = min(n_fake, m - half)
        parts = {"A": order[:half], "B1": order[half:half + b1], "B2": order[half + b1:]}
        cache = real_features if real_features is not None else {}
        for key, idx in parts.items():
            if key not in cache:
                cache[key] = _extract(extractor, real.subset(idx, f"{real.name}"), settings, keep_features,
                                      keep_logits, quantize=settings.quantize
                                      ) if idx.numel() else None  # type: ignore[assignment]
        part_features = {k: v for k, v in cache.items() if v is not None}
        labels = real.labels
        fake_features = _extract(extractor, fake, settings, keep_features, keep_logits, quantize=settings.quantize)
        held_features = None
        if wants_memorization and heldout is not None:
            held_features = _extract(extractor, heldout, settings, True, False, quantize=settings.quantize)

        def labels_of(keys: Sequence[str]) -> Tensor | None:
            if labels is None:
                return None
            y = torch.cat([labels[parts[k]] for k in keys]).to(torch.int64)
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= extractor.n_classes):
                return None  # not the classifier's classes: use its predictions instead
            return y

        ref_keys = ["A"] if floor else [k for k in ("A", "B1", "B2") if k in part_features]
        reference = merge_features([part_features[k] for k in ref_keys])
        b_keys = [k for k in ("B1", "B2") if k in part_features]
        train, held = reference, held_features
        if wants_memorization and held_features is None:
            train, held = part_features["A"], merge_features([part_features[k] for k in b_keys])
        inputs = MetricInputs(reference, fake_features, labels_of(ref_keys), train, held, extractor.n_classes,
                              settings)
        values = compare(chosen, inputs)
        report: dict[str, Any] = {
            "metrics": values,
            "samples": {"source": fake.name, "n": n_fake},
            "real": {"source": real.name, "n": m, "n_reference": reference.n,
                     **({"n_floor_samples": b1} if floor else {})},
            "features": extractor.describe(),
            "settings": asdict(settings),
        }
        split = (f"{m} real images in a seeded random order (seed {settings.seed}); "
                 + (f"reference: half A ({reference.n}), floor: A vs B1 ({b1})" if floor
                    else f"reference: all {reference.n}"))
        report["protocol"] = protocol_record(settings, features=extractor.describe(), n_fake=n_fake, n_real=m,
                                             n_reference=reference.n, reference=real.name, split=split,
                                             metrics=names)
        if wants_memorization:
            report["real"]["memorization_train"] = train.n
            report["real"]["memorization_heldout"] = (
                f"{heldout.name} ({held_features.n})" if held_features is not None and heldout is not None
                else f"the other half of the real images ({held.n if held is not None else 0}); pass held-out "
                     "data the generator never saw for a stronger test")
        if floor:
            on_floor = [mm for mm in chosen if mm.on_floor]
            if "B1" not in part_features:
                raise FeatureError(f"{real.name}: too few real images for --floor")
            floor_inputs = MetricInputs(part_features["A"], part_features["B1"], labels_of(["A"]), None, None,
                                        extractor.n_classes, settings)
            report["floor"] = compare(on_floor, floor_inputs)
        report["metric_names"] = names
    for w in records:
        text = f"{w.category.__name__}: {w.message}"
        if text not in caught:
            caught.append(text)
    report["warnings"] = caught
    order = ["metric_names", "metrics", "floor", "samples", "real", "features", "settings", "protocol", "warnings"]
    out = {k: report[k] for k in order if k in report}
    for key in ("metrics", "floor"):
        if key in out:
            out[key] = {k: _json_number(v) for k, v in out[key].items()}
    return out
