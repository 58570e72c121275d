"""Classifier-based mode count and label-histogram KL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.metrics._utils import MetricInputError
from ganforge.metrics.modes import LabelHistogramMetrics, label_histogram_metrics


def test_counts_histogram_and_exact_kl_from_labels() -> None:
    fake = torch.tensor([0, 0, 1, 2, 2, 2, 2, 2])  # predicted labels
    real = torch.tensor([0, 1, 2, 3] * 5)  # uniform over 4 classes
    out = label_histogram_metrics(fake, real, n_classes=4)
    assert isinstance(out, LabelHistogramMetrics)
    np.testing.assert_array_equal(out.counts, [2, 1, 5, 0])
    np.testing.assert_allclose(out.histogram, [0.25, 0.125, 0.625, 0.0])
    np.testing.assert_allclose(out.reference_histogram, [0.25] * 4)
    p = np.array([0.25, 0.125, 0.625])
    assert out.kl == pytest.approx(float(np.sum(p * np.log(p / 0.25))), rel=1e-12)
    assert out.modes_covered == 3
    # min_fraction: class 1 (1/8 of the samples) is no longer counted at 0.2.
    assert label_histogram_metrics(fake, real, 4, min_fraction=0.2).modes_covered == 2


def test_logits_and_class_weights() -> None:
    logits = torch.full((6, 3), -5.0)
    logits[torch.arange(6), torch.tensor([0, 0, 0, 1, 1, 2])] = 5.0
    weights = torch.tensor([3.0, 2.0, 1.0])  # float 1-D -> class weights, normalised
    out = label_histogram_metrics(logits, weights, n_classes=3)
    np.testing.assert_allclose(out.histogram, [0.5, 1 / 3, 1 / 6])
    np.testing.assert_allclose(out.reference_histogram, [0.5, 1 / 3, 1 / 6])
    assert out.kl == pytest.approx(0.0, abs=1e-15) and out.modes_covered == 3


def test_kl_infinite_when_fake_hits_a_class_absent_from_data_never_nan() -> None:
    fake = torch.tensor([0, 1, 1])
    weights = torch.tensor([1.0, 0.0, 1.0])
    out = label_histogram_metrics(fake, weights, n_classes=3)
    assert out.kl == math.inf
    smoothed = label_histogram_metrics(fake, weights, n_classes=3, eps=1e-6)
    assert math.isfinite(smoothed.kl) and smoothed.kl > 0
    # Mode collapse onto one class: finite KL = log(n_classes) for uniform data.
    collapsed = label_histogram_metrics(torch.zeros(10, dtype=torch.long), torch.arange(10), n_classes=10)
    assert collapsed.kl == pytest.approx(math.log(10)) and collapsed.modes_covered == 1


def test_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        label_histogram_metrics(torch.tensor([0, 3]), torch.tensor([0, 1]), n_classes=3)
    with pytest.raises(MetricInputError, match="columns"):
        label_histogram_metrics(torch.zeros(4, 5), torch.tensor([0, 1]), n_classes=3)
    with pytest.raises(MetricInputError, match="no generated"):
        label_histogram_metrics(torch.zeros(0, dtype=torch.long), torch.tensor([0]), n_classes=3)
    with pytest.raises(MetricInputError, match="weights"):
        label_histogram_metrics(torch.tensor([0]), torch.tensor([0.0, 0.0, 0.0]), n_classes=3)
    with pytest.raises(MetricInputError, match="integers"):
        label_histogram_metrics(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), n_classes=3)
