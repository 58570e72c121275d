"""The evaluation protocol: how images become numbers, written down once and recorded in every report.

The defaults follow the reference implementations, so that ganforge's numbers are comparable with
published ones (given the same feature network and sample sizes):

- **8-bit quantization** of every image before the feature network (``quantize=True``), as
  pytorch-fid (which reads PNG files), clean-fid and stylegan2-ada-pytorch
  (``(x * 127.5 + 128).clamp(0, 255).to(torch.uint8)``) do for generated images: a generated
  image is measured as the 8-bit picture a user would save and look at. Real images go through the
  same function: for images read from 8-bit files it is the identity (no second, different
  rounding; see :func:`quantize_8bit`), and real data that is not 8-bit (scikit-learn's 17-level
  digits) lands on the same grid as the samples, as it would once saved as PNG.
- **precision / recall with k = 3** (Kynkäänniemi et al. 2019) and **density / coverage with k = 5**
  (Naeem et al. 2020), each the paper's own choice.
- KID: 100 subsets of at most 1,000 (Bińkowski et al. 2018); IS: 10 splits (Salimans et al. 2016).

:func:`protocol_record` is the ``protocol`` block of every ``eval.json``: feature network and the
SHA-256 of its weights, sample sizes, the reference images and how they were split, quantization,
each k, the seed and the ganforge version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["QUANTIZATION", "EvalSettings", "ganforge_version", "protocol_record", "quantize_8bit"]

#: How generated images are quantized, in words (recorded in eval.json).
QUANTIZATION = "floor(x * 127.5 + 128) clamped to 0..255, then / 127.5 - 1 (stylegan2-ada's uint8 conversion)"


@dataclass(frozen=True)
class EvalSettings:
    """Parameters of the protocol (defaults: the reference implementations')."""

    kid_subsets: int = 100  # Bińkowski et al. 2018
    kid_subset_size: int = 1000  # clamped to the smaller set
    pr_k: int = 3  # precision / recall: Kynkäänniemi et al. 2019
    dc_k: int = 5  # density / coverage: Naeem et al. 2020
    is_splits: int = 10  # Salimans et al. 2016; clamped to the number of samples
    batch_size: int = 250  # images per forward pass of the extractor
    seed: int = 0  # the real data's random order (halves) and KID's subsets
    quantize: bool = True  # images to 8 bits before the feature network (pytorch-fid, clean-fid, stylegan2-ada)


def quantize_8bit(x: Tensor) -> Tensor:
    """Images in [-1, 1] -> the nearest 8-bit levels, back in [-1, 1] (same shape, float32).

    ``u = floor(x * 127.5 + 128)`` clamped to 0..255 is stylegan2-ada's conversion to uint8 (round
    half up of ``(x + 1) * 127.5``); the result is ``u / 127.5 - 1``. Images that came from 8-bit
    files (``u / 127.5 - 1``) are returned unchanged: the float error of ``u / 127.5 - 1`` is far
    below the half step, so the floor lands on ``u`` again.
    """
    u = torch.floor(x.float() * 127.5 + 128.0).clamp_(0.0, 255.0)  # (N, C, H, W) integers 0..255
    return u / 127.5 - 1.0


def ganforge_version() -> str:
    """The version of the ganforge that runs (its ``__version__``; the installed metadata otherwise)."""
    import sys
    from importlib.metadata import PackageNotFoundError, version

    running = getattr(sys.modules.get("ganforge"), "__version__", None)  # the parent package: already imported
    if running:
        return str(running)
    try:
        return version("ganforge")
    except PackageNotFoundError:
        return "unknown"


def protocol_record(settings: EvalSettings, *, features: dict[str, Any], n_fake: int, n_real: int,
                    n_reference: int, reference: str, split: str, metrics: list[str]) -> dict[str, Any]:
    """The ``protocol`` block of eval.json: everything needed to reproduce or compare the numbers."""
    out: dict[str, Any] = {
        "ganforge_version": ganforge_version(),
        "feature_network": features,
        "n_fake": n_fake,
        "n_real": n_real,
        "n_reference": n_reference,
        "reference": reference,
        "reference_split": split,
        "quantize": settings.quantize,
        "quantization": (f"generated and real images: {QUANTIZATION}; the identity on images read from 8-bit files"
                         if settings.quantize else "none: images fed to the feature network as floats"),
        "seed": settings.seed,
        "batch_size": settings.batch_size,
    }
    if "prdc" in metrics:
        out["precision_recall_k"] = settings.pr_k
        out["density_coverage_k"] = settings.dc_k
    if "kid" in metrics:
        out["kid_subsets"] = settings.kid_subsets
        out["kid_subset_size_max"] = settings.kid_subset_size
    if "is" in metrics:
        out["is_splits"] = settings.is_splits
    return out
