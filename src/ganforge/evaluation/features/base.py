"""What a feature extractor is: images in ganforge's convention in, feature vectors (and logits) out.

Every extractor takes images ``(N, C, H, W)`` as float tensors in [-1, 1] (the range of the
datasets' ``examples`` and of the generators' tanh output), checks them at its boundary (shape,
channels, range, NaN) with one clear :class:`FeatureInputError`, and returns

- ``features (N, num_features)``: the vectors FID, KID, precision/recall, density/coverage and the
  memorization check compare;
- ``logits (N, n_classes)`` or None: class scores for the Inception Score and the mode count.

:meth:`FeatureExtractor.extract` runs the network in batches under ``torch.no_grad`` and feeds
each batch to a :class:`FeatureAccumulator`, so that memory is bounded by the batch size plus
what the chosen metrics keep (a streaming ``GaussianStats`` for FID, the feature matrix only when a
k-NN or kernel metric needs it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.errors import CheckpointError, GanforgeError
from ganforge.metrics.fid import GaussianStats

__all__ = [
    "FeatureAccumulator", "FeatureError", "FeatureExtractor", "FeatureInputError", "FeatureWeightsError",
    "Features", "file_sha256",
]

def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Images may overshoot [-1, 1] by this much (round-off of resizing / rescaling) before being refused.
RANGE_TOLERANCE = 1e-3


class FeatureError(GanforgeError, ValueError):
    """A feature extractor cannot be built or used as asked (unknown name, bad spec)."""


class FeatureInputError(FeatureError):
    """Images of the wrong shape, channels or range for the extractor, or features of the wrong size."""


class FeatureWeightsError(CheckpointError, FeatureError):
    """A classifier weights file is missing, unreadable, foreign, or has missing / extra keys."""


@dataclass
class Features:
    """What an extractor produced for a set of images (all on the CPU).

    Attributes:
        stats: streaming mean / covariance of the features (float64), for FID.
        features: ``(N, d)`` float32 feature matrix, or None when no metric needed it.
        logits: ``(N, n_classes)`` float32, or None (no classifier head, or not needed).
    """

    stats: GaussianStats
    features: Tensor | None
    logits: Tensor | None

    @property
    def n(self) -> int:
        return self.stats.n


class FeatureAccumulator:
    """Collects an extractor's output batch by batch, keeping only what is asked for."""

    def __init__(self, keep_features: bool = True, keep_logits: bool = False) -> None:
        self.keep_features = keep_features
        self.keep_logits = keep_logits
        self.stats = GaussianStats()
        self._features: list[Tensor] = []
        self._logits: list[Tensor] = []

    def update(self, features: Tensor, logits: Tensor | None) -> None:
        f = features.detach().float().cpu()  # (b, d)
        self.stats.update(f)
        if self.keep_features:
            self._features.append(f)
        if self.keep_logits and logits is not None:
            self._logits.append(logits.detach().float().cpu())

    def result(self) -> Features:
        feats = torch.cat(self._features) if self.keep_features and self._features else None
        logits = torch.cat(self._logits) if self.keep_logits and self._logits else None
        return Features(self.stats, feats, logits)


def describe_shape(shape: tuple[int, ...] | None, channels: tuple[int, ...]) -> str:
    if shape is not None:
        return "x".join(str(s) for s in shape)
    return f"{'|'.join(str(c) for c in channels)}xHxW"


class FeatureExtractor(nn.Module):
    """Base class: a frozen network from images in [-1, 1] to features (and logits).

    Subclasses implement :meth:`_forward` on already checked images and set the attributes:

    Attributes:
        name: how the extractor is named in reports (``mnist``, ``inception``, a file path...).
        num_features: dimension of the feature vectors.
        n_classes: number of logits (0: the extractor has no classifier head).
        image_shape: ``(C, H, W)`` it needs, or None when it takes any size (it resizes).
        channels: the channel counts it accepts when ``image_shape`` is None.
    """

    name: str = "extractor"
    num_features: int = 0
    n_classes: int = 0
    image_shape: tuple[int, int, int] | None = None
    channels: tuple[int, ...] = (1, 3)
    weights_file: str | None = None  # where the weights came from (None: a user's module / callable)
    weights_sha256: str | None = None  # SHA-256 of that file, recorded in every eval.json

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "dim": self.num_features, "classes": self.n_classes,
                "input": describe_shape(self.image_shape, self.channels) + " in [-1, 1]",
                "weights_file": self.weights_file,
                "weights_sha256": self.weights_sha256 or "unknown (weights not loaded from a file by ganforge)"}

    def check_images(self, x: Tensor, source: str = "images") -> None:
        """Refuse, with one line, images this extractor cannot take."""
        expected = f"the {self.name} features take {describe_shape(self.image_shape, self.channels)} images"
        if x.dim() != 4:
            raise FeatureInputError(f"{source}: samples of shape {tuple(x.shape[1:])} are not images; {expected}")
        if not x.is_floating_point():
            raise FeatureInputError(f"{source}: images have dtype {x.dtype}; expected floats in [-1, 1]")
        shape = tuple(int(s) for s in x.shape[1:])
        if self.image_shape is not None and shape != self.image_shape:
            raise FeatureInputError(f"{source}: images are {describe_shape(shape, ())}; {expected} "
                                    "(resize them, or choose other --features)")
        if self.image_shape is None and shape[0] not in self.channels:
            raise FeatureInputError(f"{source}: images have {shape[0]} channels; {expected}")
        if x.numel() == 0:
            return
        if not bool(torch.isfinite(x).all()):
            raise FeatureInputError(f"{source}: images contain NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1.0 - RANGE_TOLERANCE or hi > 1.0 + RANGE_TOLERANCE:
            raise FeatureInputError(f"{source}: image values lie in [{lo:.4g}, {hi:.4g}]; the {self.name} features "
                                    "take images in [-1, 1] (ganforge's convention: x / 127.5 - 1 for 8-bit pixels)")

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def forward_features_and_logits(self, x: Tensor, source: str = "images") -> tuple[Tensor, Tensor | None]:
        """``x (N, C, H, W)`` in [-1, 1] -> ``(features (N, d), logits (N, n_classes) or None)``."""
        self.check_images(x, source)
        features, logits = self._forward(x)
        if features.dim() != 2 or features.shape[0] != x.shape[0]:
            raise FeatureInputError(f"the {self.name} features returned shape {tuple(features.shape)} for "
                                    f"{x.shape[0]} images; expected ({x.shape[0]}, d)")
        if self.num_features and features.shape[1] != self.num_features:
            raise FeatureInputError(f"the {self.name} features returned vectors of dimension {features.shape[1]}, "
                                    f"expected {self.num_features}")
        return features, logits

    def forward(self, x: Tensor) -> Tensor:
        """Features only, ``(N, d)`` (what torchmetrics' ``feature=`` argument calls)."""
        return self.forward_features_and_logits(x)[0]

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Always in eval mode: a fixed measuring instrument."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        p = next(iter(self.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    @torch.no_grad()
    def extract(self, batches: Iterable[Tensor], keep_features: bool = True, keep_logits: bool = False,
                source: str = "images") -> Features:
        """Run over ``batches`` of images (each ``(b, C, H, W)`` in [-1, 1]) with bounded memory."""
        acc = FeatureAccumulator(keep_features, keep_logits and self.n_classes > 0)
        device = self.device
        for x in batches:
            f, logits = self.forward_features_and_logits(x.to(device), source)
            if not bool(torch.isfinite(f).all()):
                raise FeatureInputError(f"{source}: the {self.name} features are NaN or infinite for some images")
            acc.update(f, logits)
        return acc.result()
