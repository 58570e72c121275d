"""Feature extractors and feature-space evaluation of generated images.

- base.py: ``FeatureExtractor`` (images in [-1, 1] -> features, logits), batched extraction
- extractors.py: the ``EXTRACTORS`` registry (``inception``, ``digits``, ``mnist``) and ``load_extractor``
  (a name, a ``.safetensors`` classifier of ours, ``MODULE:FACTORY``, or any callable via ``from_callable``)
- classifier.py: our small CNN classifiers and their safetensors files
- training.py: reproducible training of those classifiers (``ganforge features train``)
- sources.py: images to measure, read batch by batch (generators, datasets, folders, arrays)
- evaluate.py: the ``METRICS`` registry and ``evaluate_images`` (metrics with the real-vs-real floor)
- callback.py: ``PeriodicEvaluation``, metrics during training into metrics.jsonl

    from ganforge.features import load_extractor, evaluate_images, TensorSource, ArraySource
    fx = load_extractor("mnist")
    report = evaluate_images(ArraySource("samples.npy"), TensorSource(real_images), fx,
                             ["fid", "kid", "prdc"], floor=True)
"""

from ganforge.features.base import (
    FeatureError,
    FeatureExtractor,
    FeatureInputError,
    Features,
    FeatureWeightsError,
)
from ganforge.features.callback import PeriodicEvaluation
from ganforge.features.classifier import (
    CLASSIFIER_ARCHITECTURES,
    ClassifierFeatures,
    SmallCNN,
    load_classifier,
    save_classifier,
)
from ganforge.features.evaluate import METRICS, EvalSettings, evaluate_images
from ganforge.features.extractors import (
    EXTRACTORS,
    InceptionFeatures,
    asset_path,
    default_features,
    from_callable,
    load_extractor,
)
from ganforge.features.sources import (
    ArraySource,
    FolderSource,
    GeneratorSource,
    ImageSource,
    TensorSource,
    open_samples,
)

__all__ = [
    "CLASSIFIER_ARCHITECTURES", "EXTRACTORS", "METRICS", "ArraySource", "ClassifierFeatures", "EvalSettings",
    "FeatureError", "FeatureExtractor", "FeatureInputError", "FeatureWeightsError", "Features", "FolderSource",
    "GeneratorSource", "ImageSource", "InceptionFeatures", "PeriodicEvaluation", "SmallCNN", "TensorSource",
    "asset_path", "default_features", "evaluate_images", "from_callable", "load_classifier", "load_extractor",
    "open_samples", "save_classifier",
]
