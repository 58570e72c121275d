"""DCGAN players (Radford et al. 2016), unconditional, class-conditional, AC-GAN and InfoGAN.

Resolutions: square images of side ``R = base * 2**n`` with ``base`` 4 or 7 (8, 14, 16, 28, 32, 56,
64, ... up to 256; see ``layers.image_plan``). The generator projects z with one linear layer to a
``base x base`` map (4x4 for powers of two, 7x7 for MNIST's 28x28), then doubles the side ``n`` times
with stride-2 transposed convolutions (kernel 4); the discriminator mirrors it with stride-2
convolutions down to ``base x base`` and a linear map of the flattened features to the logit. The
linear projection (instead of the paper's 1x1 -> 4x4 transposed convolution, which it equals) is what
lets one design serve both bases.

Widths: the map at doubling ``i`` has ``ngf * 2**(n-1-i)`` channels in G (``ndf * 2**i`` in D), capped
at 8x, so the layer next to the image has ``ngf`` (``ndf``) channels, as in the paper.

Conditioning (``n_classes > 0``, i.e. ``data.class_conditional: true``):

- G: ``concat`` appends a learned label embedding to z (Mirza & Osindero 2014); ``cbn`` makes every
  batch norm class-conditional (de Vries et al. 2017; Miyato & Koyama 2018).
- D: ``concat`` appends one-hot label maps to the image; ``projection`` adds ``<embed(y), h>`` to
  the logit (Miyato & Koyama 2018); ``acgan`` adds a classifier head read through ``forward_aux``
  (Odena et al. 2017); ``auto`` (default) is ``projection`` with labels and ``none`` without.
- InfoGAN (Chen et al. 2016): ``info_categorical`` / ``info_continuous`` add a Q head on D's body,
  read through ``forward_aux``; they must match the ``infogan`` prior's ``categorical`` / ``continuous``.

``fc_hidden`` adds the fully connected hidden layer of the InfoGAN paper's MNIST networks (Chen et
al. 2016, appendix C.1): in G, ``z -> FC(fc_hidden) -> BN -> ReLU`` before the projection; in D,
``features -> FC(fc_hidden) [-> BN] -> leaky ReLU`` after the convolutions, so the logit and the
auxiliary heads read a ``fc_hidden``-wide feature vector.

G ends with tanh, so its images lie in (-1, 1) like the datasets'. D returns raw logits.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.models.layers import (
    MAX_WIDTH_FACTOR,
    ConditionalBatchNorm2d,
    DConditioning,
    DiscriminatorHeads,
    MinibatchStd,
    NonNegInt,
    Width,
    auxiliary_heads,
    check_image_input,
    check_labels,
    check_latent_input,
    image_plan,
    label_maps,
    raw_weight,
    resolve_d_conditioning,
)
from ganforge.models.layers import maybe_spectral_norm as sn


def _init_dcgan(module: nn.Module) -> None:
    """The paper's initialization: weights from N(0, 0.02^2); batch-norm scales from N(1, 0.02^2)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(raw_weight(m), 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
    """G(z, y): linear projection to ``base x base``, then transposed convolutions, batch norm and
    ReLU, and tanh at the output. ``conditioning`` (concat | cbn) is used only when ``n_classes > 0``."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], n_classes: int = 0,
                 ngf: Width = 64,  # channels of the last hidden layer (next to the image)
                 conditioning: Literal["concat", "cbn"] = "concat",
                 embed_dim: Width = 32,  # label embedding size for concat
                 fc_hidden: NonNegInt = 0):  # InfoGAN paper: a 1024-wide FC layer before the projection
        super().__init__()
        self.latent_dim, self.out_shape, self.n_classes = latent_dim, tuple(out_shape), n_classes
        channels, self.base, n = image_plan(self.out_shape, "dcgan generator")
        self.conditioning = conditioning if n_classes else "none"
        widths = [ngf * min(2 ** (n - 1 - i), MAX_WIDTH_FACTOR) for i in range(n)]  # per doubling
        self.embed = nn.Embedding(n_classes, embed_dim) if self.conditioning == "concat" else None
        d_in = latent_dim + (embed_dim if self.embed is not None else 0)
        norm_classes = n_classes if self.conditioning == "cbn" else 0
        self.hidden = None
        if fc_hidden:
            self.hidden = nn.Sequential(nn.Linear(d_in, fc_hidden, bias=False), nn.BatchNorm1d(fc_hidden), nn.ReLU(inplace=True))
            d_in = fc_hidden
        self.project = nn.Linear(d_in, widths[0] * self.base**2, bias=False)
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(w, norm_classes) for w in widths])
        self.ups = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False) for i in range(n - 1)])
        self.to_image = nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1)
        _init_dcgan(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # z: (N, latent_dim), y: (N,) -> x: (N, C, R, R) in (-1, 1)
        check_latent_input(z, self.latent_dim, "dcgan generator")
        if self.conditioning != "none":
            check_labels(y, self.n_classes, z.shape[0], "dcgan generator")
        y_norm = y if self.conditioning == "cbn" else None
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        if self.hidden is not None:
            z = self.hidden(z)
        h = self.project(z).view(z.shape[0], -1, self.base, self.base)  # (N, widths[0], base, base)
        # ReLU in place on each (conditional) batch norm's output, which its backward does not read
        h = torch.relu_(self.norms[0](h, y_norm))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            h = torch.relu_(norm(up(h), y_norm))  # doubles the side
        return torch.tanh(self.to_image(h))


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
    """D(x, y): stride-2 convolutions with leaky ReLU (0.2) down to ``base x base``, then a linear
    map of the flattened features to the logit (raw, no sigmoid).

    ``batch_norm`` adds the paper's batch norm after every convolution but the first; it couples the
    examples of a batch (``batch_coupled``), so it is off by default (gradient penalties and mixed
    real/fake passes assume a per-example D). ``spectral_norm`` normalizes every weight instead.
    ``out_features`` > 0 makes the last linear map give that many features per example, ``(N, F)``,
    instead of one logit: the critic of the mmd_gan game (unconditional only; 0, the default, is a logit).
    ``minibatch_std`` appends the batch's feature spread (Karras et al. 2018) as one more map after
    the last convolution; ``pack`` > 1 makes D judge ``pack`` examples jointly, stacked along the
    channels (PacGAN, Lin et al. 2018), pack ``j`` holding examples ``j, j + N/pack, ...`` (as the
    MLP's), its logit returned for each member. Both couple the batch (``batch_coupled``).
    """

    # the auxiliary heads that given (resolved) parameters add, read by the config check
    auxiliary_heads = staticmethod(auxiliary_heads)

    def __init__(self, in_shape: tuple[int, ...], n_classes: int = 0,
                 ndf: Width = 64,  # channels of the first layer (next to the image)
                 conditioning: DConditioning = "auto",
                 batch_norm: bool = False, spectral_norm: bool = False,
                 info_categorical: list[Annotated[int, Field(ge=2)]] = [],  # noqa: B006  Q head: category counts
                 info_continuous: NonNegInt = 0,  # Q head: number of continuous codes
                 q_hidden: Width = 128,
                 fc_hidden: NonNegInt = 0,  # InfoGAN paper: a 1024-wide FC layer after the convolutions
                 out_features: NonNegInt = 0,  # > 0: a feature vector per example instead of a logit (mmd_gan)
                 minibatch_std: bool = False,  # the batch's feature spread as one more map before the head
                 pack: Annotated[int, Field(gt=0)] = 1,  # PacGAN: D judges `pack` examples jointly
                 ):
        super().__init__()
        self.in_shape, self.n_classes, self.pack = tuple(in_shape), n_classes, pack
        channels, self.base, n = image_plan(self.in_shape, "dcgan discriminator")
        self.conditioning = resolve_d_conditioning(conditioning, n_classes, "dcgan discriminator")
        if pack > 1 and (n_classes or info_categorical or info_continuous):
            raise ValueError("dcgan discriminator: pack > 1 is for unconditional D without auxiliary heads")
        self.batch_coupled = batch_norm or minibatch_std or pack > 1
        widths = [ndf * min(2**i, MAX_WIDTH_FACTOR) for i in range(n)]
        c_in = channels * pack + (n_classes if self.conditioning == "concat" else 0)
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            layers.append(sn(nn.Conv2d(c_in, w, 4, 2, 1, bias=not (batch_norm and i > 0)), spectral_norm))
            if batch_norm and i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = w
        if minibatch_std:
            layers.append(MinibatchStd())
        layers.append(nn.Flatten())
        features = (widths[-1] + int(minibatch_std)) * self.base**2
        if fc_hidden:
            layers.append(sn(nn.Linear(features, fc_hidden, bias=not batch_norm), spectral_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fc_hidden))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            features = fc_hidden
        self.body = nn.Sequential(*layers)
        self.heads = DiscriminatorHeads(features, n_classes, self.conditioning,
                                        info_categorical, info_continuous, q_hidden, spectral_norm, batch_norm,
                                        out_features)
        _init_dcgan(self)

    def features(self, x: Tensor, y: Tensor | None) -> Tensor:
        # x: (N, C, R, R), y: (N,) -> h: (N, F)
        check_image_input(x, self.in_shape, "dcgan discriminator")
        if self.conditioning in ("concat", "projection"):
            check_labels(y, self.n_classes, x.shape[0], "dcgan discriminator")
        if self.conditioning == "concat":
            x = torch.cat([x, label_maps(y, self.n_classes, x.shape[2], x.shape[3], x.dtype)], dim=1)
        if self.pack > 1:  # (N, C, R, R) -> (N/pack, pack*C, R, R); pack j = examples j, j + N/pack, ...
            n = x.shape[0]
            if n % self.pack:
                raise ValueError(f"PacGAN discriminator with pack={self.pack} needs a batch divisible by it, got {n}")
            x = x.reshape(self.pack, n // self.pack, *x.shape[1:]).transpose(0, 1).reshape(
                n // self.pack, self.pack * x.shape[1], *x.shape[2:])
        return self.body(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, C, R, R), y: (N,) -> logits: (N,) (features (N, out_features) with out_features;
        # with pack: example i gets pack i mod N/pack's output)
        out = self.heads.logits(self.features(x, y), y)
        return out.repeat((self.pack,) + (1,) * (out.dim() - 1)) if self.pack > 1 else out

    def forward_aux(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``(logits (N,), aux)`` with ``class_logits`` (acgan) and ``code_logits`` / ``code_mean`` /
        ``code_logstd`` (InfoGAN Q head) computed from the same body features."""
        h = self.features(x, y)
        out = self.heads.logits(h, y)
        return (out.repeat(self.pack) if self.pack > 1 else out), self.heads.aux(h)
