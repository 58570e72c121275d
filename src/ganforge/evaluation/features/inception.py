"""The Inception-v3 network of the standard FID protocol, built here, weights from a local file.

Szegedy, Vanhoucke, Ioffe, Shlens & Wojna (2016), "Rethinking the Inception Architecture for
Computer Vision", in the exact variant of the TensorFlow graph ``inception-2015-12-05`` that the
FID paper (Heusel et al. 2017) and the Inception Score (Salimans et al. 2016) use. It differs
from torchvision's Inception-v3 in:

- the average-pool branches of the A, C and first E blocks ignore the zero padding
  (``count_include_pad=False``, like TensorFlow);
- the last block (``Mixed_7c``) pools its pool branch with a 3x3 *max* pool;
- the classifier has 1008 classes (``fc.weight (1008, 2048)``), no auxiliary head;
- inputs in [0, 1] are resized to 299x299 (bilinear) and scaled to [-1, 1].

The module names reproduce the torchvision-style state-dict keys of the widely used PyTorch port
of those weights (``pt_inception-2015-12-05-*.pth``): ``Conv2d_1a_3x3.conv.weight``,
``Conv2d_1a_3x3.bn.running_mean``, ``Mixed_5b.branch1x1.conv.weight``, ..., ``fc.weight``.

Nothing is downloaded: the weights come from a file the user provides (``.safetensors``, or a
torch file holding a plain state dict, read with ``torch.load(weights_only=True)``: no code in the
file is run), given as a path or in the environment variable ``GANFORGE_INCEPTION_WEIGHTS``. Keys
are checked strictly (``*.num_batches_tracked`` buffers may be absent).

The reference file is pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (95,628,359 bytes,
SHA-256 :data:`REFERENCE_SHA256`; torch-fidelity ships the same bytes as
``weights-inception-2015-12-05-6726825d.pth``). TensorFlow's original graph
(``classify_image_graph_def.pb``) and stylegan2-ada's TorchScript ``inception-2015-12-05.pt`` are not
read: one is not a PyTorch file, loading the other runs code. The SHA-256 of the file used is
recorded in every eval.json, with whether it is the reference file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import CheckpointError
from ganforge.evaluation.features.base import file_sha256
from ganforge.io import state_dict_mismatch

__all__ = [
    "INCEPTION_WEIGHTS_ENV",
    "REFERENCE_FILE",
    "REFERENCE_SHA256",
    "FIDInceptionV3",
    "InceptionWeightsError",
    "check_state_dict",
    "load_inception",
    "load_inception_state_dict",
]

#: Environment variable naming the local weights file.
INCEPTION_WEIGHTS_ENV = "GANFORGE_INCEPTION_WEIGHTS"

#: pytorch-fid's port of the FID Inception weights (the file clean-fid's and torch-fidelity's PyTorch
#: FID also use), and its SHA-256 (its name carries the first 8 hex digits, torch.hub's convention).
REFERENCE_FILE = "pt_inception-2015-12-05-6726825d.pth"
REFERENCE_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
REFERENCE_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{REFERENCE_FILE}"
WHERE_TO_GET = (f"the reference file is pytorch-fid's {REFERENCE_FILE} (95,628,359 bytes, SHA-256 "
                f"{REFERENCE_SHA256}), from {REFERENCE_URL}; ganforge never downloads it")

_INPUT_SIZE = 299
_N_CLASSES = 1008
_N_FEATURES = 2048
_OPTIONAL_SUFFIX = ".num_batches_tracked"


class InceptionWeightsError(CheckpointError):
    """The Inception weights file is missing, unreadable, or does not fit the network."""


class _ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int | tuple[int, int], **kwargs: int | tuple[int, int]
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, bias=False, **kwargs)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: Tensor) -> Tensor:
    """3x3 stride-1 average pool that, like TensorFlow, does not count the zero padding."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    """35x35 block (Mixed_5b/5c/5d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _ConvBN(c_in, 64, 1)
        self.branch5x5_1 = _ConvBN(c_in, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([a, b, c, d], dim=1)  # (N, 224 + pool_features, H, W)


class _BlockB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)  # (N, 480 + c_in, H', W')


class _BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _ConvBN(c_in, 192, 1)
        self.branch7x7_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        c = self.branch7x7dbl_3(self.branch7x7dbl_2(c))
        c = self.branch7x7dbl_5(self.branch7x7dbl_4(c))
        d = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([a, b, c, d], dim=1)  # (N, 768, 17, 17)


class _BlockD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(c_in, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(b)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)  # (N, 512 + c_in, 8, 8)


class _BlockE(nn.Module):
    """8x8 block with expanded filter banks (Mixed_7b: avg pool, Mixed_7c: max pool)."""

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = _ConvBN(c_in, 320, 1)
        self.branch3x3_1 = _ConvBN(c_in, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], dim=1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], dim=1)
        if self.pool == "avg":
            p = _avg_pool_tf(x)
        else:
            p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        d = self.branch_pool(p)
        return torch.cat([a, b, c, d], dim=1)  # (N, 2048, 8, 8)


class FIDInceptionV3(nn.Module):
    """Inception-v3 of the FID protocol: images ``(N, 3, H, W)`` in [0, 1] -> pool3 features ``(N, 2048)``.

    Freshly built, the weights are random: use :func:`load_inception` (or ``load_state_dict``
    with a checked state dict) before computing any metric. Always in eval mode (BatchNorm uses
    the stored statistics). ``num_features`` tells torchmetrics-style wrappers the output size.

    Args:
        resize_input: resize to 299x299 with bilinear interpolation (pytorch-fid convention).
        normalize_input: map inputs from [0, 1] to [-1, 1]; switch off if already in [-1, 1].
    """

    num_features = _N_FEATURES
    n_classes = _N_CLASSES
    weights_file: str | None = None  # set by load_inception
    weights_sha256: str | None = None

    def __init__(self, resize_input: bool = True, normalize_input: bool = True) -> None:
        super().__init__()
        self.resize_input = resize_input
        self.normalize_input = normalize_input
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, pool_features=32)
        self.Mixed_5c = _BlockA(256, pool_features=64)
        self.Mixed_5d = _BlockA(288, pool_features=64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, channels_7x7=128)
        self.Mixed_6c = _BlockC(768, channels_7x7=160)
        self.Mixed_6d = _BlockC(768, channels_7x7=160)
        self.Mixed_6e = _BlockC(768, channels_7x7=192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, pool="avg")
        self.Mixed_7c = _BlockE(2048, pool="max")
        self.fc = nn.Linear(_N_FEATURES, _N_CLASSES)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Stay in eval mode: the network is a fixed feature extractor."""
        return super().train(False)

    def _prepare(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 3, H, W) or (N, 1, H, W), got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = x.to(self.fc.weight.dtype)
        if x.shape[1] == 1:  # grey -> RGB
            x = x.expand(-1, 3, -1, -1)
        if self.resize_input and tuple(x.shape[-2:]) != (_INPUT_SIZE, _INPUT_SIZE):
            x = F.interpolate(x, size=(_INPUT_SIZE, _INPUT_SIZE), mode="bilinear", align_corners=False)
        if self.normalize_input:
            x = 2.0 * x - 1.0  # [0, 1] -> [-1, 1]
        return x

    def forward_features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 3, H, W)`` in [0, 1] -> ``(features (N, 2048), logits (N, 1008))``."""
        x = self._prepare(x)  # (N, 3, 299, 299)
        x = self.Conv2d_1a_3x3(x)  # (N, 32, 149, 149)
        x = self.Conv2d_2a_3x3(x)  # (N, 32, 147, 147)
        x = self.Conv2d_2b_3x3(x)  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = self.Conv2d_3b_1x1(x)  # (N, 80, 73, 73)
        x = self.Conv2d_4a_3x3(x)  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        x = self.Mixed_5b(x)  # (N, 256, 35, 35)
        x = self.Mixed_5c(x)  # (N, 288, 35, 35)
        x = self.Mixed_5d(x)  # (N, 288, 35, 35)
        x = self.Mixed_6a(x)  # (N, 768, 17, 17)
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)  # (N, 768, 17, 17)
        x = self.Mixed_7a(x)  # (N, 1280, 8, 8)
        x = self.Mixed_7b(x)  # (N, 2048, 8, 8)
        x = self.Mixed_7c(x)  # (N, 2048, 8, 8)
        features = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)  # (N, 2048)
        return features, self.fc(features)  # (N, 2048), (N, 1008)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> pool3 features ``(N, 2048)``."""
        return self.forward_features_and_logits(x)[0]


def _resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """The weights file: ``path``, else ``$GANFORGE_INCEPTION_WEIGHTS``; it must exist."""
    source = "the path argument"
    if path is None:
        env = os.environ.get(INCEPTION_WEIGHTS_ENV, "").strip()
        if not env:
            raise InceptionWeightsError(
                "no Inception weights given: the inception features need the FID Inception-v3 weights "
                f"(the PyTorch port of TensorFlow's inception-2015-12-05; {WHERE_TO_GET}). "
                "Put the file (or the same state dict as .safetensors) on this machine and pass its path, "
                f"or set {INCEPTION_WEIGHTS_ENV}=/path/to/{REFERENCE_FILE}"
            )
        path, source = env, f"${INCEPTION_WEIGHTS_ENV}"
    p = Path(path).expanduser()
    if not p.is_file():
        raise InceptionWeightsError(
            f"Inception weights file {str(p)!r} (from {source}) does not exist; "
            f"put the FID Inception-v3 state dict (.pth or .safetensors) there ({WHERE_TO_GET})"
        )
    return p


def load_inception_state_dict(path: str | os.PathLike[str] | None = None) -> dict[str, Tensor]:
    """Read a state dict from a local ``.safetensors`` or torch file (``weights_only=True``).

    ``path=None`` reads the path from ``$GANFORGE_INCEPTION_WEIGHTS``.

    Raises:
        InceptionWeightsError: no path, no file, unreadable file, or not a flat tensor dict.
    """
    return _read_state_dict(_resolve_path(path))


def _read_state_dict(p: Path) -> dict[str, Tensor]:
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unreadable / unsafe pickle / damaged file
        raise InceptionWeightsError(
            f"cannot read Inception weights {str(p)!r}: {type(e).__name__}: {e}"
        ) from e
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise InceptionWeightsError(
            f"Inception weights {str(p)!r} must hold a flat state dict (name -> tensor), got {type(state).__name__}"
        )
    return dict(state)


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Strict check of keys and shapes (``*.num_batches_tracked`` may be missing).

    Raises:
        InceptionWeightsError: naming a few missing / unexpected / mis-shaped keys.
    """
    problems = state_dict_mismatch(model.state_dict(), state, _OPTIONAL_SUFFIX)
    if problems:
        raise InceptionWeightsError(
            f"{source} does not match the FID Inception-v3 network: " + "; ".join(problems)
        )


def load_inception(
    path: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    resize_input: bool = True,
    normalize_input: bool = True,
) -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` and load weights from ``path`` (or ``$GANFORGE_INCEPTION_WEIGHTS``).

    Raises:
        InceptionWeightsError: no weights file, unreadable file, or keys / shapes that do not match.
    """
    p = _resolve_path(path)
    state = _read_state_dict(p)
    model = FIDInceptionV3(resize_input=resize_input, normalize_input=normalize_input)
    check_state_dict(model, state, source=f"Inception weights {str(p)!r}")
    model.load_state_dict(state, strict=False)  # keys checked above; num_batches_tracked may be absent
    model.weights_file = p.name
    model.weights_sha256 = file_sha256(p)
    return model.to(device).eval()
