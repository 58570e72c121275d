"""Classifier-based mode counting and label-histogram KL.

The protocol of the mode-collapse literature (e.g. Metz, Poole, Pfau & Sohl-Dickstein 2017,
"Unrolled Generative Adversarial Networks"; Srivastava, Valkov, Russell, Gutmann & Sutton 2017,
"VEEGAN"; stacked MNIST with 1000 modes): a pretrained classifier labels every generated sample;

- **modes covered** = number of classes that receive at least one generated sample and at least
  ``min_fraction`` of all generated samples (``min_fraction=0`` -> "at least one sample", the
  stacked-MNIST convention; e.g. ``0.1 / n_classes`` ignores classes hit only by stray samples);
- **KL(fake || real)** between the predicted-label histogram of the generated samples and the
  label histogram of the data (or given class weights).

The KL is exact by default: classes with zero generated mass contribute 0, and generated mass on a
class with zero data mass gives ``inf`` (never NaN). With ``eps > 0`` both histograms are
smoothed as ``(h + eps) / (1 + n_classes * eps)`` first, which keeps the KL finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics._utils import ArrayLike, MetricInputError

__all__ = ["LabelHistogramMetrics", "label_histogram_metrics"]


@dataclass(frozen=True)
class LabelHistogramMetrics:
    """Mode count and label-histogram KL of generated samples.

    Attributes:
        modes_covered: classes receiving >= 1 sample and >= ``min_fraction`` of the samples.
        n_classes: number of classes.
        kl: KL(fake histogram || real histogram) in nats; ``inf`` when generated samples fall in
            a class absent from the data (and ``eps == 0``); never NaN.
        histogram: ``(n_classes,)`` fraction of generated samples per predicted class.
        reference_histogram: ``(n_classes,)`` class fractions of the data / the given weights.
        counts: ``(n_classes,)`` number of generated samples per predicted class.
    """

    modes_covered: int
    n_classes: int
    kl: float
    histogram: np.ndarray = field(repr=False, compare=False)
    reference_histogram: np.ndarray = field(repr=False, compare=False)
    counts: np.ndarray = field(repr=False, compare=False)


def _labels(x: ArrayLike, n_classes: int, name: str) -> Tensor:
    """Integer labels ``(N,)`` from labels ``(N,)`` or scores/logits ``(N, n_classes)`` (argmax)."""
    t = torch.as_tensor(x).detach().cpu()
    if t.dim() == 2:
        if t.shape[1] != n_classes:
            raise MetricInputError(f"{name} scores have {t.shape[1]} columns, expected n_classes={n_classes}")
        if t.is_floating_point() and bool(torch.isnan(t).any()):
            raise MetricInputError(f"{name} scores contain NaN")
        return t.argmax(dim=1)
    if t.dim() != 1:
        raise MetricInputError(
            f"{name} must be labels (N,) or scores (N, n_classes), got shape {tuple(t.shape)}"
        )
    if t.is_floating_point() or t.dtype == torch.bool:
        raise MetricInputError(f"{name} labels (N,) must be integers, got {t.dtype}")
    t = t.to(torch.int64)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise MetricInputError(
            f"{name} labels must lie in [0, {n_classes}), got [{int(t.min())}, {int(t.max())}]"
        )
    return t


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Exact KL(p || q) in nats: 0 log 0 = 0, p > 0 with q = 0 -> inf."""
    support = p > 0
    if bool(np.any(q[support] <= 0)):
        return math.inf
    value = float(np.sum(p[support] * (np.log(p[support]) - np.log(q[support]))))
    return max(value, 0.0)


def label_histogram_metrics(
    fake: ArrayLike,
    reference: ArrayLike,
    n_classes: int,
    min_fraction: float = 0.0,
    *,
    eps: float = 0.0,
) -> LabelHistogramMetrics:
    """Modes covered and KL(fake label histogram || data label histogram).

    Args:
        fake: classifier output on generated samples, logits / probabilities ``(N, n_classes)``
            (argmax is taken) or predicted integer labels ``(N,)``.
        reference: the data's labels: integer labels ``(M,)``, scores ``(M, n_classes)``, or
            *floating-point* class weights ``(n_classes,)`` (non-negative, normalised here).
            A 1-D integer tensor is always read as labels, a 1-D float tensor as weights.
        n_classes: number of classes.
        min_fraction: a class is covered when it gets >= 1 sample and >= this fraction of the
            generated samples (0 -> at least one sample).
        eps: additive smoothing of both histograms before the KL (0 -> exact, possibly inf).

    Raises:
        MetricInputError: no generated samples, labels out of range, bad weights.
    """
    if not isinstance(n_classes, int) or n_classes < 1:
        raise MetricInputError(f"n_classes must be a positive integer, got {n_classes!r}")
    if not 0.0 <= min_fraction <= 1.0:
        raise MetricInputError(f"min_fraction must lie in [0, 1], got {min_fraction}")
    if not eps >= 0.0 or math.isinf(eps):
        raise MetricInputError(f"eps must be a finite number >= 0, got {eps}")

    fake_labels = _labels(fake, n_classes, "fake")
    n = int(fake_labels.numel())
    if n == 0:
        raise MetricInputError("no generated samples")
    counts = torch.bincount(fake_labels, minlength=n_classes).numpy().astype(np.int64)  # (C,)
    hist = counts.astype(np.float64) / n

    ref = torch.as_tensor(reference).detach().cpu()
    if ref.dim() == 1 and ref.is_floating_point():
        if ref.numel() != n_classes:
            raise MetricInputError(
                f"class weights have {ref.numel()} entries, expected n_classes={n_classes}"
            )
        w = ref.to(torch.float64).numpy()
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise MetricInputError("class weights must be finite, non-negative and not all 0")
        ref_hist = w / w.sum()
    else:
        ref_labels = _labels(ref, n_classes, "reference")
        if ref_labels.numel() == 0:
            raise MetricInputError("no reference labels")
        ref_counts = torch.bincount(ref_labels, minlength=n_classes).numpy().astype(np.float64)
        ref_hist = ref_counts / ref_counts.sum()

    covered = (counts >= 1) & (hist >= min_fraction)
    if eps > 0:
        p = (hist + eps) / (1.0 + n_classes * eps)
        q = (ref_hist + eps) / (1.0 + n_classes * eps)
    else:
        p, q = hist, ref_hist
    return LabelHistogramMetrics(
        modes_covered=int(covered.sum()),
        n_classes=n_classes,
        kl=_kl(p, q),
        histogram=hist,
        reference_histogram=ref_hist,
        counts=counts,
    )
