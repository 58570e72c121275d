"""Evaluation: the one home of measured quality (``ganforge eval`` and periodic evaluation).

- protocol.py: ``EvalSettings`` (the protocol: 8-bit quantization of generated images, k = 3 for
  precision / recall, k = 5 for density / coverage, KID subsets, IS splits, seed) and the
  ``protocol`` block recorded in every eval.json
- feature_metrics.py: the ``METRICS`` registry (fid, kid, is, prdc, modes, memorization; register
  more with ``@METRICS.register("name")``) and ``evaluate_images`` (metrics with the real-vs-real floor)
- sources.py: images to measure, read batch by batch (generators, datasets, folders, arrays)
- features/: the feature extractors (FID Inception-v3, our digits / mnist CNNs, user modules)
- callback.py: ``PeriodicEvaluation``, the same protocol during training, into metrics.jsonl
- targets.py: ``ganforge eval TARGET`` (toy runs with their exact protocols, image runs, sample files)

The metric formulas themselves are pure functions of arrays in ``ganforge.metrics``.

    from ganforge.evaluation import load_extractor, evaluate_images, TensorSource, ArraySource
    fx = load_extractor("mnist")
    report = evaluate_images(ArraySource("samples.npy"), TensorSource(real_images), fx,
                             ["fid", "kid", "prdc"], floor=True)
"""

from ganforge.evaluation import stacked_modes  # noqa: E402,F401  (registers the stacked_mnist features and metric)
from ganforge.evaluation.callback import PeriodicEvaluation
from ganforge.evaluation.feature_metrics import METRICS, EvalMetric, evaluate_images
from ganforge.evaluation.features import (
    CLASSIFIER_ARCHITECTURES,
    EXTRACTORS,
    ClassifierFeatures,
    FeatureError,
    FeatureExtractor,
    FeatureInputError,
    Features,
    FeatureWeightsError,
    InceptionFeatures,
    SmallCNN,
    asset_path,
    default_features,
    from_callable,
    load_classifier,
    load_extractor,
    save_classifier,
)
from ganforge.evaluation.protocol import EvalSettings, quantize_8bit
from ganforge.evaluation.sources import (
    ArraySource,
    FolderSource,
    GeneratorSource,
    ImageSource,
    TensorSource,
    open_samples,
)
from ganforge.evaluation.targets import (
    DEFAULT_IMAGE_METRICS,
    EvalError,
    EvalRequest,
    default_output,
    evaluate_run,
    evaluate_target,
)

__all__ = [
    "CLASSIFIER_ARCHITECTURES", "DEFAULT_IMAGE_METRICS", "EXTRACTORS", "METRICS", "ArraySource", "ClassifierFeatures",
    "EvalError", "EvalMetric", "EvalRequest", "EvalSettings", "FeatureError", "FeatureExtractor", "FeatureInputError",
    "FeatureWeightsError", "Features", "FolderSource", "GeneratorSource", "ImageSource", "InceptionFeatures",
    "PeriodicEvaluation", "SmallCNN", "TensorSource", "asset_path", "default_features", "default_output",
    "evaluate_images", "evaluate_run", "evaluate_target", "from_callable", "load_classifier", "load_extractor",
    "open_samples", "quantize_8bit", "save_classifier",
]
