"""Small CNN classifiers of our own, and their safetensors files.

A classifier file is a plain safetensors file: the state dict, plus string metadata that names
the architecture and its parameters, so that it can be rebuilt without running any code from the
file (no pickle, no TorchScript):

    format                "ganforge.feature_classifier/1"
    architecture          a name registered in ``CLASSIFIER_ARCHITECTURES`` (e.g. "small_cnn")
    architecture_config   JSON of the constructor's parameters
    name                  what the features are called in reports (e.g. "mnist")
    training              JSON: how the file was made (command, seed, split, held-out accuracy, ...)

Keys are checked strictly when loading: a missing, extra or mis-shaped tensor is refused with a
:class:`FeatureWeightsError` naming a few of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.evaluation.features.base import FeatureExtractor, FeatureWeightsError, file_sha256
from ganforge.io import state_dict_mismatch
from ganforge.registry import Registry

__all__ = [
    "CLASSIFIER_ARCHITECTURES", "CLASSIFIER_FORMAT", "ClassifierFeatures", "SmallCNN", "load_classifier",
    "read_classifier_metadata", "save_classifier",
]

CLASSIFIER_FORMAT = "ganforge.feature_classifier/1"

#: Architectures a classifier file may name in its metadata.
CLASSIFIER_ARCHITECTURES: Registry[nn.Module] = Registry("classifier architecture")

PositiveInt = Annotated[int, Field(gt=0)]


@CLASSIFIER_ARCHITECTURES.register("small_cnn")
class SmallCNN(nn.Module):
    """``len(widths)`` blocks of [3x3 conv (padding 1) -> ReLU -> 2x2 max pool], a hidden layer, a head.

    The penultimate layer (after its ReLU) gives the features; the head gives the logits.
    MNIST (28x28, widths 32-64-64): 28 -> 14 -> 7 -> 3, 576 -> 128 -> 10, 131k parameters.

    Args:
        image_size: side of the square input images.
        channels: input channels.
        widths: output channels of the conv blocks.
        hidden: dimension of the penultimate layer (= of the features).
        n_classes: number of classes.
    """

    def __init__(self, image_size: PositiveInt, channels: PositiveInt = 1,
                 widths: tuple[PositiveInt, ...] = (32, 64, 64), hidden: PositiveInt = 128,
                 n_classes: PositiveInt = 10) -> None:
        super().__init__()
        side = image_size
        for _ in widths:
            side //= 2
        if side < 1:
            raise ValueError(f"{len(widths)} pooling blocks shrink {image_size}x{image_size} images to nothing")
        self.image_size, self.channels = image_size, channels
        self.hidden, self.n_classes = hidden, n_classes
        self.widths = tuple(widths)
        c_in = channels
        convs = []
        for w in widths:
            convs.append(nn.Conv2d(c_in, w, 3, padding=1))
            c_in = w
        self.convs = nn.ModuleList(convs)
        self.fc = nn.Linear(c_in * side * side, hidden)
        self.head = nn.Linear(hidden, n_classes)

    def config(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "channels": self.channels, "widths": list(self.widths),
                "hidden": self.hidden, "n_classes": self.n_classes}

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # x: (N, channels, image_size, image_size) in [-1, 1]
        h = x
        for conv in self.convs:
            h = F.max_pool2d(F.relu(conv(h)), 2)  # (N, w, side/2, side/2)
        f = F.relu(self.fc(h.flatten(1)))  # (N, hidden)
        return f, self.head(f)  # (N, hidden), (N, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, n_classes)``."""
        return self.features_and_logits(x)[1]


class ClassifierFeatures(FeatureExtractor):
    """A classifier of ours as a feature extractor: penultimate layer -> features, head -> logits."""

    def __init__(self, model: SmallCNN, name: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.metadata = dict(metadata or {})
        self.num_features = model.hidden
        self.n_classes = model.n_classes
        self.image_shape = (model.channels, model.image_size, model.image_size)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.model.features_and_logits(x.to(self.model.fc.weight.dtype))

    @property
    def training_record(self) -> dict[str, Any]:
        """How the weights were made (from the file's metadata), or {}."""
        try:
            return dict(json.loads(self.metadata.get("training", "{}")))
        except (ValueError, TypeError):
            return {}


def save_classifier(model: SmallCNN, path: str | os.PathLike[str], name: str,
                    training: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a ganforge classifier file (atomically)."""
    from safetensors.torch import save

    from ganforge.io import write_bytes_atomic

    arch = getattr(type(model), "registered_name", None)
    if arch is None or arch not in CLASSIFIER_ARCHITECTURES:
        raise FeatureWeightsError(f"{type(model).__name__} is not a registered classifier architecture")
    metadata = {"format": CLASSIFIER_FORMAT, "architecture": arch, "architecture_config": json.dumps(model.config()),
                "name": name, "training": json.dumps(dict(training or {}), sort_keys=True)}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes_atomic(path, save(state, metadata=metadata))
    return Path(path)


def read_classifier_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata of a safetensors file (no tensors are read)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise FeatureWeightsError(f"{p}: classifier file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # damaged header, not safetensors
        raise FeatureWeightsError(f"{p}: not a readable safetensors file ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def check_keys(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Refuse missing, unexpected or mis-shaped tensors, naming a few."""
    problems = state_dict_mismatch(model.state_dict(), state)
    if problems:
        raise FeatureWeightsError(f"{source} does not fit its architecture: " + "; ".join(problems))


def load_classifier(path: str | os.PathLike[str], name: str | None = None,
                    device: torch.device | str = "cpu") -> ClassifierFeatures:
    """Rebuild a classifier file's network from its metadata and load its weights (strictly).

    Raises:
        FeatureWeightsError: no file, not safetensors, not a ganforge classifier, unknown
            architecture, bad parameters, missing / extra / mis-shaped keys.
    """
    from safetensors.torch import load_file

    p = Path(path)
    meta = read_classifier_metadata(p)
    if meta.get("format") != CLASSIFIER_FORMAT:
        raise FeatureWeightsError(
            f"{p}: not a ganforge classifier file (its metadata has no format={CLASSIFIER_FORMAT!r}); "
            "for the FID Inception weights use --features inception --inception-weights FILE")
    arch = meta.get("architecture", "")
    if arch not in CLASSIFIER_ARCHITECTURES:
        raise FeatureWeightsError(f"{p}: unknown classifier architecture {arch!r}; known: "
                                  f"{', '.join(CLASSIFIER_ARCHITECTURES.names())}")
    try:
        params = json.loads(meta.get("architecture_config", "{}"))
        if not isinstance(params, dict):
            raise ValueError("not a JSON object")
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the global RNG alone
            model = CLASSIFIER_ARCHITECTURES.build(arch, params, where="architecture_config")
    except (ValueError, ConfigError) as exc:
        raise FeatureWeightsError(f"{p}: bad architecture_config in its metadata ({exc})") from None
    try:
        state = load_file(str(p), device="cpu")
    except Exception as exc:
        raise FeatureWeightsError(f"{p}: cannot read its tensors ({type(exc).__name__}: {exc})") from None
    check_keys(model, state, str(p))
    model.load_state_dict(state)
    fx = ClassifierFeatures(model, name or meta.get("name") or p.stem, meta)
    fx.weights_file, fx.weights_sha256 = p.name, file_sha256(p)
    return fx.to(device)
