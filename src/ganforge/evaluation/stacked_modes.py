"""Stacked MNIST in ``ganforge eval``: the per-channel MNIST classifier and the 1,000-mode count.

- Feature extractor ``stacked_mnist`` (in ``EXTRACTORS``; the default features of the
  ``stacked_mnist`` dataset): the shipped MNIST CNN reads each channel of a ``3x28x28`` image as a
  digit. Features: the three channels' 128-d features side by side (384-d); logits: the 1,000 mode
  scores ``log p_R(i) + log p_G(j) + log p_B(k)`` for mode ``100 i + 10 j + k``, whose argmax is
  exactly ``100 c_R + 10 c_G + c_B`` with ``c`` each channel's predicted digit.
- Metric ``stacked_modes`` (in ``METRICS``): the VEEGAN / PacGAN protocol on the samples' modes:
  ``stacked_modes`` = modes with at least one sample (of 1,000) and ``stacked_kl`` = KL(sample mode
  histogram || uniform over 1,000) (``ganforge.metrics.stacked_modes``). The protocol draws 26,000
  samples: ``ganforge eval RUN --metrics stacked_modes --n 26000``. With ``--floor`` the same numbers
  are given for real stacked examples (what a perfect generator scores with this classifier).

The ``modes`` metric also works with these features (``modes_hit`` is the same count;
``label_kl`` is against the real examples' mode histogram rather than the uniform one).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganforge.evaluation.feature_metrics import METRICS, EvalMetric, MetricInputs
from ganforge.evaluation.features.base import FeatureError, FeatureExtractor
from ganforge.evaluation.features.classifier import ClassifierFeatures
from ganforge.evaluation.features.extractors import EXTRACTORS, _shipped
from ganforge.evaluation.protocol import quantize_8bit
from ganforge.metrics.stacked_modes import STACKED_MODES, stacked_modes

__all__ = ["StackedMNISTFeatures", "StackedModesMetric", "channel_digits"]


class StackedMNISTFeatures(FeatureExtractor):
    """An MNIST classifier applied to each channel of ``(N, 3, 28, 28)`` images (see the module)."""

    channels = (3,)

    def __init__(self, digit: ClassifierFeatures) -> None:
        super().__init__()
        if digit.image_shape is None or digit.image_shape[0] != 1 or digit.n_classes != 10:
            raise FeatureError(f"stacked_mnist features need a 1-channel 10-class digit classifier, got {digit.name} "
                               f"({digit.image_shape}, {digit.n_classes} classes)")
        self.digit = digit
        self.name = "stacked_mnist"
        self.num_features = 3 * digit.num_features
        self.n_classes = STACKED_MODES
        self.image_shape = (3, *digit.image_shape[1:])  # type: ignore[assignment]
        self.weights_file, self.weights_sha256 = digit.weights_file, digit.weights_sha256

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "per_channel": f"{self.digit.name} classifier on each of R, G, B; "
                                                     "mode = 100 c_R + 10 c_G + c_B"}

    def channel_outputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 3, H, W)`` -> per-channel features ``(N, 3, d)`` and digit log-probabilities ``(N, 3, 10)``."""
        n = x.shape[0]
        f, logits = self.digit._forward(x.reshape(n * 3, 1, *x.shape[2:]))
        assert logits is not None
        return f.reshape(n, 3, -1), torch.log_softmax(logits.float(), dim=1).reshape(n, 3, 10)

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        f, lp = self.channel_outputs(x)
        joint = lp[:, 0, :, None, None] + lp[:, 1, None, :, None] + lp[:, 2, None, None, :]  # (N, 10, 10, 10)
        return f.reshape(x.shape[0], -1), joint.reshape(x.shape[0], STACKED_MODES)


@EXTRACTORS.register("stacked_mnist")
def stacked_mnist() -> FeatureExtractor:
    """Our MNIST CNN on each channel of 3x28x28 stacked-MNIST images (1,000 mode logits)."""
    return StackedMNISTFeatures(_shipped("mnist"))


@torch.no_grad()
def channel_digits(extractor: StackedMNISTFeatures, images: Tensor, batch_size: int = 500,
                   quantize: bool = True) -> Tensor:
    """The digit the classifier reads in each channel: ``(N, 3, 28, 28)`` in [-1, 1] -> ``(N, 3)`` int64;
    with ``quantize`` the images are first rounded to 8 bits, as ``ganforge eval`` does."""
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size]
        extractor.check_images(x, "stacked images")
        if quantize:
            x = quantize_8bit(x)
        out.append(extractor.channel_outputs(x.to(extractor.device))[1].argmax(dim=2).cpu())
    return torch.cat(out) if out else torch.zeros(0, 3, dtype=torch.int64)


@METRICS.register("stacked_modes")
class StackedModesMetric(EvalMetric):
    """Stacked MNIST: modes with >= 1 sample (of 1,000) and KL(mode histogram || uniform)."""

    needs_logits = True

    def __call__(self, inp: MetricInputs) -> dict[str, float]:
        if inp.n_classes != STACKED_MODES or inp.fake.logits is None:
            raise FeatureError(f"--metrics stacked_modes needs the 1,000 mode logits of the stacked_mnist features "
                               f"(--features stacked_mnist), got {inp.n_classes} classes")
        r = stacked_modes(inp.fake.logits.argmax(dim=1))
        return {"stacked_modes": r.modes, "stacked_kl": r.kl, "stacked_modes_total": r.n_modes,
                "stacked_n": r.n_samples}
