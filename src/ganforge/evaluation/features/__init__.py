"""Feature extractors: frozen networks from images in [-1, 1] to feature vectors (and logits).

- base.py: ``FeatureExtractor`` (the contract, batched extraction with bounded memory)
- extractors.py: the ``EXTRACTORS`` registry (``inception``, ``digits``, ``mnist``) and ``load_extractor``
- inception.py: the FID Inception-v3, weights from a local file only
- classifier.py: our small CNN classifiers and their safetensors files
- training.py: reproducible training of those classifiers (``ganforge features train``)
"""

from ganforge.evaluation.features.base import (
    FeatureError,
    FeatureExtractor,
    FeatureInputError,
    Features,
    FeatureWeightsError,
    file_sha256,
)
from ganforge.evaluation.features.classifier import (
    CLASSIFIER_ARCHITECTURES,
    ClassifierFeatures,
    SmallCNN,
    load_classifier,
    save_classifier,
)
from ganforge.evaluation.features.extractors import (
    EXTRACTORS,
    InceptionFeatures,
    asset_path,
    default_features,
    from_callable,
    load_extractor,
)
from ganforge.evaluation.features.inception import (
    INCEPTION_WEIGHTS_ENV,
    REFERENCE_FILE,
    REFERENCE_SHA256,
    FIDInceptionV3,
    InceptionWeightsError,
    load_inception,
)

__all__ = [
    "CLASSIFIER_ARCHITECTURES", "EXTRACTORS", "INCEPTION_WEIGHTS_ENV", "REFERENCE_FILE", "REFERENCE_SHA256",
    "ClassifierFeatures", "FIDInceptionV3", "FeatureError", "FeatureExtractor", "FeatureInputError",
    "FeatureWeightsError", "Features", "InceptionFeatures", "InceptionWeightsError", "SmallCNN", "asset_path",
    "default_features", "file_sha256", "from_callable", "load_classifier", "load_extractor", "load_inception",
    "save_classifier",
]
