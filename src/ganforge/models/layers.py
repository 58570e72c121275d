"""Building blocks shared by the architecture families."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

Width = Annotated[int, Field(gt=0)]  # a layer width or channel count in a config
NonNegInt = Annotated[int, Field(ge=0)]
MAX_WIDTH_FACTOR = 8  # conv players: channels grow by doubling up to 8x the base width

Activation = Literal["relu", "leaky_relu", "elu", "silu", "tanh", "gelu"]

ACTIVATIONS: dict[str, type[nn.Module] | object] = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "silu": lambda: nn.SiLU(),
    "tanh": lambda: nn.Tanh(),
    "gelu": lambda: nn.GELU(),
}


INPLACE_ACTIVATIONS: dict[str, type[nn.Module] | object] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
}


def activation(name: str, inplace: bool = False) -> nn.Module:
    """A fresh activation module by name (one of ``Activation``).

    ``inplace`` overwrites its input where the activation allows it (relu, leaky relu): for a layer's
    own output that nothing else reads (after a linear or convolution, whose backward needs its input,
    not its output), it saves a buffer and a memory pass per call (bench/README.md, "Step time").
    Never for a tensor that a skip connection reads again.
    """
    table = INPLACE_ACTIVATIONS if inplace and name in INPLACE_ACTIVATIONS else ACTIVATIONS
    return table[name]()  # type: ignore[operator]


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` with spectral normalization (Miyato et al. 2018) when ``enabled``."""
    return _spectral_norm(module) if enabled else module


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation of the features across groups of the batch as one
    extra feature (Karras et al. 2018), letting D see the diversity of a batch.

    Input ``(N, C, ...)`` -> output ``(N, C + 1, ...)``; N must be divisible by the group size
    (the group shrinks to the largest divisor of N that fits).
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        y = x.reshape(g, n // g, *x.shape[1:])  # (G, N/G, C, ...)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (N/G, C, ...)
        std = std.reshape(n // g, -1).mean(dim=1)  # (N/G,)
        std = std.repeat(g).view(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, std.to(x.dtype)], dim=1)


class LabelEmbedding(nn.Module):
    """Class label -> learned vector, for conditional players."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(n_classes, dim)

    def forward(self, y: Tensor) -> Tensor:
        return self.embed(y)


def check_packed_input(x: Tensor, in_shape: tuple[int, ...], pack: int) -> int:
    """A discriminator's input check: ``x`` of shape (N, *in_shape) with N divisible by ``pack``
    (ValueError naming what was expected); returns N."""
    n = x.shape[0]
    if tuple(x.shape[1:]) != tuple(in_shape):
        raise ValueError(f"discriminator expects x of shape (N, {tuple(in_shape)}), got {tuple(x.shape)}")
    if n % pack:
        raise ValueError(f"PacGAN discriminator with pack={pack} needs a batch divisible by it, got {n}")
    return n


def check_labels(y: Tensor | None, n_classes: int, n: int, who: str) -> None:
    """Shape and range checks at the players' public boundary."""
    if n_classes > 0:
        if y is None:
            raise ValueError(f"{who} is conditional on {n_classes} classes: pass labels y of shape ({n},)")
        if y.shape != (n,):
            raise ValueError(f"{who}: labels must have shape ({n},), got {tuple(y.shape)}")


# -- image players: shared by the convolutional families (dcgan.py, resnet.py) -----------------

# Square resolutions are built as base * 2**n: G starts from a base x base map and doubles n times,
# D halves n times back to base x base. Base 4 gives the powers of two (8, 16, 32, 64, ...); base 7
# gives 14, 28 (MNIST), 56, 112.
IMAGE_BASES = (4, 7)
MAX_RESOLUTION = 256


def image_plan(shape: tuple[int, ...], who: str) -> tuple[int, int, int]:
    """``(channels, base, n_doublings)`` for an image shape ``(C, R, R)``; ValueError naming the
    allowed resolutions when the shape does not fit the plan."""
    allowed = sorted(b * 2**n for b in IMAGE_BASES for n in range(1, 7) if b * 2**n <= MAX_RESOLUTION)
    if len(shape) != 3 or shape[1] != shape[2] or shape[0] < 1:
        raise ValueError(f"{who} needs square images (C, R, R), got shape {tuple(shape)}; "
                         f"set data.resolution to one of {allowed}")
    channels, res = shape[0], shape[1]
    if res not in allowed:
        raise ValueError(f"{who} supports resolutions {allowed}, got {res}; set data.resolution")
    base, n = res, 0
    while base not in IMAGE_BASES:
        base, n = base // 2, n + 1
    return channels, base, n


def check_image_input(x: Tensor, shape: tuple[int, ...], who: str) -> None:
    """Shape check of a discriminator's input at its public boundary."""
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{who} expects x of shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}")


def check_latent_input(z: Tensor, latent_dim: int, who: str) -> None:
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{who} expects z of shape (N, {latent_dim}), got {tuple(z.shape)}")


def label_maps(y: Tensor, n_classes: int, height: int, width: int, dtype: torch.dtype) -> Tensor:
    """One-hot label planes for input concatenation (Mirza & Osindero 2014): ``(N, n_classes, H, W)``."""
    onehot = torch.nn.functional.one_hot(y, n_classes).to(dtype)  # (N, n_classes)
    return onehot[:, :, None, None].expand(-1, -1, height, width)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift depend on the class (de Vries et al. 2017, as used by the
    projection cGAN of Miyato & Koyama 2018): ``out = x_hat * (1 + gamma[y]) + beta[y]``.

    ``gamma`` and ``beta`` are per-class embeddings initialized from N(0, 0.02^2), so that at
    initialization the layer is close to plain batch norm but every label already changes the output.
    With ``n_classes == 0`` it is an ordinary affine ``BatchNorm2d`` and ``y`` is ignored.
    """

    def __init__(self, num_features: int, n_classes: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self.bn = nn.BatchNorm2d(num_features, affine=n_classes == 0)
        if n_classes:
            self.gamma = nn.Embedding(n_classes, num_features)
            self.beta = nn.Embedding(n_classes, num_features)
            nn.init.normal_(self.gamma.weight, 0.0, 0.02)
            nn.init.normal_(self.beta.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, C, H, W), y: (N,) -> (N, C, H, W)
        h = self.bn(x)
        if self.n_classes == 0:
            return h
        assert y is not None
        gamma = self.gamma(y)[:, :, None, None]  # (N, C, 1, 1)
        beta = self.beta(y)[:, :, None, None]
        return h * (1.0 + gamma) + beta


class ResidualGBlock(nn.Module):
    """Generator block of SNGAN (Miyato et al. 2018; Gulrajani et al. 2017):
    ``BN-ReLU-up2-conv3-BN-ReLU-conv3`` plus the shortcut ``up2-conv1`` (identity when shapes match).

    Batch norms are class-conditional when ``n_classes > 0``. Upsampling is nearest-neighbour.
    """

    def __init__(self, in_ch: int, out_ch: int, n_classes: int = 0, upsample: bool = True,
                 spectral_norm: bool = False):
        super().__init__()
        self.upsample = upsample
        self.bn1 = ConditionalBatchNorm2d(in_ch, n_classes)
        self.conv1 = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 3, padding=1), spectral_norm)
        self.bn2 = ConditionalBatchNorm2d(out_ch, n_classes)
        self.conv2 = maybe_spectral_norm(nn.Conv2d(out_ch, out_ch, 3, padding=1), spectral_norm)
        self.shortcut = None
        if in_ch != out_ch or upsample:
            self.shortcut = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 1), spectral_norm)
        _init_residual(self.conv1, self.conv2, self.shortcut)

    def _up(self, x: Tensor) -> Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, in_ch, H, W) -> (N, out_ch, 2H, 2W) (or (H, W) without upsampling)
        h = self.conv1(self._up(torch.relu(self.bn1(x, y))))
        h = self.conv2(torch.relu(self.bn2(h, y)))
        skip = self._up(x)
        if self.shortcut is not None:
            skip = self.shortcut(skip)
        return h + skip


class ResidualDBlock(nn.Module):
    """Discriminator block of SNGAN: ``ReLU-conv3-ReLU-conv3-avgpool2`` plus the shortcut
    ``conv1-avgpool2`` (identity when shapes match and there is no downsampling).

    The ``first`` block sees the image itself: it has no leading ReLU and pools before its shortcut
    convolution (the "optimized" block of Miyato et al. 2018).
    """

    def __init__(self, in_ch: int, out_ch: int, downsample: bool = True, first: bool = False,
                 spectral_norm: bool = True):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 3, padding=1), spectral_norm)
        self.conv2 = maybe_spectral_norm(nn.Conv2d(out_ch, out_ch, 3, padding=1), spectral_norm)
        self.shortcut = None
        if in_ch != out_ch or downsample or first:
            self.shortcut = maybe_spectral_norm(nn.Conv2d(in_ch, out_ch, 1), spectral_norm)
        _init_residual(self.conv1, self.conv2, self.shortcut)

    def _down(self, x: Tensor) -> Tensor:
        return torch.nn.functional.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: Tensor) -> Tensor:
        # x: (N, in_ch, H, W) -> (N, out_ch, H/2, W/2) (or (H, W) without downsampling)
        h = x if self.first else torch.relu(x)
        h = self._down(self.conv2(torch.relu(self.conv1(h))))
        if self.shortcut is None:
            return h + x
        skip = self.shortcut(self._down(x)) if self.first else self._down(self.shortcut(x))
        return h + skip


def raw_weight(module: nn.Module) -> Tensor:
    """The trainable weight of a layer, under its spectral-norm parametrization when it has one."""
    if hasattr(module, "parametrizations"):
        return module.parametrizations.weight.original
    return module.weight


def _init_residual(conv1: nn.Module, conv2: nn.Module, shortcut: nn.Module | None) -> None:
    """Xavier-uniform init as in the SNGAN code: gain sqrt(2) on the residual path, 1 on the shortcut."""
    for m, gain in ((conv1, 2**0.5), (conv2, 2**0.5), (shortcut, 1.0)):
        if m is None:
            continue
        nn.init.xavier_uniform_(raw_weight(m), gain)
        nn.init.zeros_(m.bias)


DConditioning = Literal["auto", "none", "concat", "projection", "acgan"]


def resolve_d_conditioning(conditioning: str, n_classes: int, who: str) -> str:
    """``auto`` -> ``projection`` with labelled data, ``none`` without; a label-using choice
    without labels is an error (ValueError, turned into a ConfigError by the registry)."""
    if conditioning == "auto":
        return "projection" if n_classes else "none"
    if conditioning != "none" and not n_classes:
        raise ValueError(f"{who} conditioning={conditioning!r} needs class labels: "
                         "use a labelled dataset with data.class_conditional: true")
    return conditioning


def auxiliary_heads(params: dict) -> dict[str, str]:
    """The auxiliary heads (``forward_aux`` keys) that a discriminator's resolved parameters add, each
    with the parameter that adds it (for config errors); read before anything is built."""
    heads: dict[str, str] = {}
    if params.get("conditioning") == "acgan":
        heads["class_logits"] = "conditioning"
    if params.get("info_categorical") or params.get("info_continuous"):
        which = "info_categorical" if params.get("info_categorical") else "info_continuous"
        heads.update(dict.fromkeys(("code_logits", "code_mean", "code_logstd"), which))
    return heads


class DiscriminatorHeads(nn.Module):
    """What D computes from its body's feature vector ``h (N, F)``: the logit and auxiliary heads.

    - logit: ``linear(h)``, plus ``<embed(y), h>`` for the projection discriminator
      (Miyato & Koyama 2018) when ``conditioning == "projection"``;
    - ``conditioning == "acgan"``: a classifier head, ``class_logits (N, n_classes)`` (Odena et al. 2017);
      the logit then ignores y;
    - InfoGAN's Q head (Chen et al. 2016) when ``info_categorical`` or ``info_continuous`` are set:
      ``FC(q_hidden)-LReLU-FC`` (``FC-BN-LReLU-FC`` with ``batch_norm``, as in the paper) giving ``code_logits (N, sum(info_categorical))`` (the categorical
      codes' logits, concatenated), ``code_mean`` and ``code_logstd`` ``(N, info_continuous)``.

    With ``out_features`` > 0 the logit's linear map gives that many features instead (``(N, F)``;
    unconditional, no auxiliary heads): the critic's feature output of the mmd_gan game.

    Spectral norm (when enabled) covers the logit's linear map and the projection embedding, the
    parts that define D's value; the auxiliary heads are plain classifiers/regressors.
    """

    def __init__(self, features: int, n_classes: int, conditioning: str, info_categorical: list[int],
                 info_continuous: int, q_hidden: int, spectral_norm: bool, batch_norm: bool = False,
                 out_features: int = 0):
        super().__init__()
        if out_features and (conditioning != "none" or info_categorical or info_continuous):
            raise ValueError("out_features (a feature output) is for an unconditional critic without auxiliary "
                             "heads (the mmd_gan game)")
        self.n_classes, self.conditioning = n_classes, conditioning
        self.info_categorical, self.info_continuous = list(info_categorical), info_continuous
        self.out_features = out_features
        self.linear = maybe_spectral_norm(nn.Linear(features, max(out_features, 1)), spectral_norm)
        self.projection = None
        if conditioning == "projection":
            self.projection = maybe_spectral_norm(nn.Embedding(n_classes, features), spectral_norm)
        self.classifier = nn.Linear(features, n_classes) if conditioning == "acgan" else None
        self.q = None
        n_cat = sum(self.info_categorical)
        if n_cat or info_continuous:
            norm: list[nn.Module] = [nn.BatchNorm1d(q_hidden)] if batch_norm else []  # the paper's Q: FC-BN-lReLU-FC
            self.q = nn.Sequential(nn.Linear(features, q_hidden, bias=not batch_norm), *norm, nn.LeakyReLU(0.2),
                                   nn.Linear(q_hidden, n_cat + 2 * info_continuous))

    @property
    def has_aux(self) -> bool:
        return self.classifier is not None or self.q is not None

    def logits(self, h: Tensor, y: Tensor | None) -> Tensor:
        # h: (N, F), y: (N,) -> (N,) (or (N, out_features))
        if self.out_features:
            return self.linear(h)
        out = self.linear(h).squeeze(1)
        if self.projection is not None:
            assert y is not None
            out = out + (self.projection(y) * h).sum(dim=1)
        return out

    def aux(self, h: Tensor) -> dict[str, Tensor]:
        """The auxiliary heads' outputs by name (empty when D has none)."""
        out: dict[str, Tensor] = {}
        if self.classifier is not None:
            out["class_logits"] = self.classifier(h)  # (N, n_classes)
        if self.q is not None:
            q = self.q(h)  # (N, n_cat + 2 * n_cont)
            n_cat, n_cont = sum(self.info_categorical), self.info_continuous
            out["code_logits"] = q[:, :n_cat]
            out["code_mean"] = q[:, n_cat : n_cat + n_cont]
            out["code_logstd"] = q[:, n_cat + n_cont :]
        return out
