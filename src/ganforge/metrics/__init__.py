"""Numbers about samples: pure functions of features or samples, plus streaming accumulators.

- toy.py: exact protocols for toy distributions (modes, high-quality samples, W1, KS, D*)
- fid.py, kid.py, inception_score.py, prdc.py, modes.py, memorization.py: image/feature metrics
  (the feature networks, FID Inception-v3 included, live in ganforge.evaluation.features)
"""

from ganforge.metrics._utils import MeanStd, MetricInputError, SmallSampleWarning
from ganforge.metrics.fid import GaussianStats, fid_from_features, fid_from_stats, frechet_distance
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kid, kid_subset_indices, polynomial_mmd2
from ganforge.metrics.memorization import DistanceSummary, MemorizationReport, memorization
from ganforge.metrics.modes import LabelHistogramMetrics, label_histogram_metrics
from ganforge.metrics.prdc import PRDC, PrecisionRecall, prdc, precision_recall
from ganforge.metrics.toy import ModeReport, mode_metrics

__all__ = [
    "PRDC", "DistanceSummary", "GaussianStats", "LabelHistogramMetrics", "MeanStd", "MemorizationReport",
    "MetricInputError", "ModeReport", "PrecisionRecall", "SmallSampleWarning", "fid_from_features",
    "fid_from_stats", "frechet_distance", "inception_score", "kid", "kid_subset_indices",
    "label_histogram_metrics", "memorization", "mode_metrics", "polynomial_mmd2", "prdc", "precision_recall",
]
