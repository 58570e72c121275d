"""The registry of feature extractors, and how a ``--features`` spec becomes one.

Registered in ``EXTRACTORS``:

=============  =====================================================================================
``inception``  the FID Inception-v3 (``inception.py``): 2048-d pool3 features, 1008 logits;
               weights from ``weights=FILE`` (``--inception-weights``) or ``$GANFORGE_INCEPTION_WEIGHTS``;
               any image size (resized to 299x299), 1 or 3 channels
``digits``     our CNN trained on scikit-learn's 8x8 digits (shipped in ``ganforge/assets``): 64-d, 10 logits
``mnist``      our CNN trained on 8,000 MNIST test images (shipped): 1x28x28, 128-d, 10 logits
=============  =====================================================================================

:func:`load_extractor` also takes, instead of a name:

- a path to a ``.safetensors`` classifier file of ours (``ganforge features train``), whose metadata
  names its architecture; the network is rebuilt from that name, nothing in the file is executed;
- ``MODULE:FACTORY`` or ``FILE.py:FACTORY``: a Python function or class, imported from an importable
  module or a ``.py`` file, called with no arguments, returning a ``FeatureExtractor``, a torch
  module or any callable from images to features ``(N, d)`` or to ``(features, logits)``;
- in the library API, any ``FeatureExtractor``, torch module or callable itself (see
  :func:`from_callable` for how to declare its input size, range and logits).

Pickled modules and TorchScript files are refused on purpose: loading them runs code from the file.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.evaluation.features.base import (
    FeatureError,
    FeatureExtractor,
    FeatureInputError,
    FeatureWeightsError,
)
from ganforge.evaluation.features.classifier import ClassifierFeatures, load_classifier
from ganforge.evaluation.features.inception import (
    REFERENCE_SHA256,
    FIDInceptionV3,
    InceptionWeightsError,
    load_inception,
)
from ganforge.registry import Registry

__all__ = [
    "ASSET_FILES", "EXTRACTORS", "CallableFeatures", "InceptionFeatures", "asset_path", "default_features",
    "from_callable", "load_extractor",
]

#: Feature extractors by name; each entry is a factory ``(**params) -> FeatureExtractor``.
EXTRACTORS: Registry[FeatureExtractor] = Registry("feature extractor")

#: The classifier files shipped in ``ganforge/assets``, by extractor name.
ASSET_FILES = {"digits": "digits-cnn.safetensors", "mnist": "mnist-cnn.safetensors"}


class InceptionFeatures(FeatureExtractor):
    """The FID Inception-v3 on ganforge images: [-1, 1] is mapped to the [0, 1] it expects."""

    name = "inception"
    image_shape = None
    channels = (1, 3)

    def __init__(self, net: FIDInceptionV3) -> None:
        super().__init__()
        self.net = net
        self.num_features = net.num_features
        self.n_classes = net.n_classes
        self.weights_file, self.weights_sha256 = net.weights_file, net.weights_sha256

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out["reference_weights"] = self.weights_sha256 == REFERENCE_SHA256  # pytorch-fid's file, bit for bit
        return out

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.net.forward_features_and_logits((x + 1.0) * 0.5)  # (N, 2048), (N, 1008)


class CallableFeatures(FeatureExtractor):
    """Any callable from images to features, with its input contract declared (see :func:`from_callable`)."""

    def __init__(self, fn: Callable[[Tensor], Any], name: str, num_features: int | None,
                 n_classes: int, image_shape: tuple[int, int, int] | None, channels: tuple[int, ...],
                 value_range: tuple[float, float]) -> None:
        super().__init__()
        self.fn = fn  # a torch module is registered as a submodule, so .to(device) moves it
        self.name = name
        self.num_features = int(num_features or 0)
        self.n_classes = n_classes
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)  # type: ignore[assignment]
        self.channels = tuple(channels)
        lo, hi = value_range
        if not hi > lo:
            raise FeatureError(f"value_range must be (low, high) with high > low, got {value_range}")
        self.value_range = (float(lo), float(hi))
        self.eval()  # a torch module is put in eval mode: dropout / batch statistics off while measuring

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        lo, hi = self.value_range
        if (lo, hi) != (-1.0, 1.0):
            x = (x + 1.0) * (0.5 * (hi - lo)) + lo  # [-1, 1] -> [lo, hi]
        out = self.fn(x)
        logits = None
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise FeatureInputError(f"the {self.name} features returned {len(out)} values; expected features "
                                        "or (features, logits)")
            out, logits = out
        if not isinstance(out, Tensor):
            raise FeatureInputError(f"the {self.name} features returned {type(out).__name__}, expected a tensor")
        f = out.flatten(1) if out.dim() > 2 else out
        if not self.num_features and f.dim() == 2:
            self.num_features = int(f.shape[1])  # fixed by the first batch; later batches must agree
        if logits is not None:
            if self.n_classes and tuple(logits.shape) != (x.shape[0], self.n_classes):
                raise FeatureInputError(f"the {self.name} features returned logits of shape {tuple(logits.shape)}, "
                                        f"expected ({x.shape[0]}, {self.n_classes})")
            self.n_classes = self.n_classes or int(logits.shape[1])
        return f, logits


def from_callable(fn: Callable[[Tensor], Any], *, name: str | None = None, num_features: int | None = None,
                  n_classes: int = 0, image_shape: tuple[int, int, int] | None = None,
                  channels: tuple[int, ...] = (1, 3), value_range: tuple[float, float] = (-1.0, 1.0)
                  ) -> FeatureExtractor:
    """Wrap a torch module or function as a feature extractor.

    Args:
        fn: ``fn(x)`` with ``x (N, C, H, W)`` returns features ``(N, d)`` (more dimensions are
            flattened) or ``(features, logits (N, n_classes))``. Called under ``torch.no_grad``.
        name: for reports and messages (default: the callable's name).
        num_features: the feature dimension, checked on every batch (default: set by the first batch).
        n_classes: the number of logits it returns (0: none; IS and modes then refuse to run).
        image_shape: the ``(C, H, W)`` it needs, or None for any size with ``channels`` channels.
        value_range: the range ``fn`` wants its inputs in; ganforge's images in [-1, 1] are mapped to it.

    A torch module is put in eval mode (and moved with the extractor by ``.to(device)``).
    """
    if isinstance(fn, FeatureExtractor):
        return fn
    if not callable(fn):
        raise FeatureError(f"a feature extractor must be callable, got {type(fn).__name__}")
    label = name or getattr(fn, "__name__", None) or type(fn).__name__
    return CallableFeatures(fn, label, num_features, n_classes, image_shape, channels, value_range)


def asset_path(filename: str) -> Path:
    """Path of a file shipped in ``ganforge/assets``."""
    return Path(str(importlib.resources.files("ganforge") / "assets" / filename))


def _shipped(name: str) -> ClassifierFeatures:
    p = asset_path(ASSET_FILES[name])
    if not p.is_file():
        raise FeatureWeightsError(f"the packaged {name} classifier {p} is missing from this installation; "
                                  f"reinstall ganforge, or train one (ganforge features train {name} --out FILE) "
                                  "and pass --features FILE")
    return load_classifier(p, name=name)


@EXTRACTORS.register("inception")
def inception(weights: str | None = None) -> FeatureExtractor:
    """The FID Inception-v3; ``weights`` None reads ``$GANFORGE_INCEPTION_WEIGHTS``."""
    try:
        return InceptionFeatures(load_inception(weights))
    except InceptionWeightsError as exc:
        if weights is None:
            raise InceptionWeightsError(f"{exc} (on the command line: --inception-weights FILE)") from None
        raise


@EXTRACTORS.register("digits")
def digits() -> FeatureExtractor:
    """Our CNN for scikit-learn's 8x8 digits (1x8x8 images)."""
    return _shipped("digits")


@EXTRACTORS.register("mnist")
def mnist() -> FeatureExtractor:
    """Our CNN for MNIST (1x28x28 images)."""
    return _shipped("mnist")


def default_features(dataset_name: str | None) -> str:
    """The extractor a dataset is measured with by default: its own classifier, else Inception."""
    if dataset_name == "stacked_mnist":  # the MNIST CNN on each channel (evaluation/stacked_modes.py)
        return "stacked_mnist"
    return dataset_name if dataset_name in ASSET_FILES else "inception"


def _import_factory(spec: str) -> Any:
    """``MODULE:ATTR`` or ``FILE.py:ATTR`` -> the attribute (imports user code, on request)."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        raise FeatureError(f"--features {spec!r}: expected MODULE:FACTORY or FILE.py:FACTORY")
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser()
            if not path.is_file():
                raise FeatureError(f"--features {spec!r}: {path} not found")
            mod_name = f"_ganforge_user_features_{abs(hash(str(path.resolve())))}"
            loader_spec = importlib.util.spec_from_file_location(mod_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise FeatureError(f"--features {spec!r}: cannot import {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[mod_name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except FeatureError:
        raise
    except Exception as exc:
        raise FeatureError(f"--features {spec!r}: importing {target} failed ({type(exc).__name__}: {exc})") from None
    if not hasattr(module, attr):
        raise FeatureError(f"--features {spec!r}: {target} has no attribute {attr!r}")
    return getattr(module, attr)


def _from_factory(spec: str) -> FeatureExtractor:
    obj = _import_factory(spec)
    if isinstance(obj, (FeatureExtractor, nn.Module)):
        made = obj
    elif callable(obj):
        try:
            made = obj()
        except Exception as exc:
            raise FeatureError(f"--features {spec!r}: calling {obj.__name__ if hasattr(obj, '__name__') else obj}() "
                               f"failed ({type(exc).__name__}: {exc})") from None
    else:
        raise FeatureError(f"--features {spec!r} is a {type(obj).__name__}, not a factory or module")
    return from_callable(made, name=spec)


def load_extractor(spec: str | os.PathLike[str] | Callable[[Tensor], Any] | FeatureExtractor, *,
                   inception_weights: str | os.PathLike[str] | None = None,
                   device: torch.device | str = "cpu") -> FeatureExtractor:
    """Turn a ``--features`` spec (or a module / callable) into a :class:`FeatureExtractor` on ``device``.

    Raises:
        FeatureError: unknown name, unreadable file, refused file type, failing factory.
        FeatureWeightsError / InceptionWeightsError: weights missing, foreign or with wrong keys.
    """
    # Building a network draws its initial weights from the global RNG before the file's weights
    # replace them; fork it, so that loading an extractor mid-training leaves the trajectory unchanged.
    with torch.random.fork_rng(devices=[]):
        return _load_extractor(spec, inception_weights, device)


def _load_extractor(spec: str | os.PathLike[str] | Callable[[Tensor], Any] | FeatureExtractor,
                    inception_weights: str | os.PathLike[str] | None, device: torch.device | str
                    ) -> FeatureExtractor:
    if isinstance(spec, FeatureExtractor):
        return spec.to(device)
    if callable(spec) and not isinstance(spec, (str, os.PathLike)):
        return from_callable(spec).to(device)
    text = os.fspath(spec)
    if text in EXTRACTORS:
        params = {"weights": None if inception_weights is None else os.fspath(inception_weights)} \
            if text == "inception" else {}
        return EXTRACTORS.build(text, params, where="--features").to(device)
    path = Path(text).expanduser()
    if path.suffix == ".safetensors":
        return load_classifier(path).to(device)
    if path.suffix in (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".jit", ".torchscript"):
        raise FeatureError(f"--features {text}: {path.suffix} files are refused (pickles and TorchScript run code "
                           "when loaded); use a .safetensors classifier of ours, or MODULE:FACTORY for your own "
                           "network")
    if ":" in text:
        return _from_factory(text).to(device)
    raise FeatureError(f"--features {text!r}: not a feature extractor; valid: {', '.join(EXTRACTORS.names())}, "
                       "a .safetensors classifier file, or MODULE:FACTORY / FILE.py:FACTORY")
