"""SNGAN-style ResNet players (Miyato et al. 2018; Gulrajani et al. 2017), with the same
conditioning options as the DCGAN family.

Resolutions follow ``layers.image_plan``: ``R = base * 2**n`` with base 4 or 7. The generator projects
z linearly to a ``base x base`` map, then applies ``n`` upsampling residual blocks
(``layers.ResidualGBlock``), batch norm, ReLU, a 3x3 convolution to the image channels and tanh.
The discriminator applies ``n`` downsampling residual blocks (``layers.ResidualDBlock``, the first one
"optimized") and one block without downsampling, ReLU and a global sum pool, giving the feature
vector ``h`` that the heads read (``layers.DiscriminatorHeads``). Spectral norm is on in D by default.

Widths: G's block ``i`` outputs ``ngf * 2**(n-1-i)`` channels, D's block ``i`` ``ndf * 2**i``, capped at 8x.

Conditioning (``n_classes > 0``): G by class-conditional batch norm (``cbn``, the default, as in the
projection cGAN) or by concatenating a label embedding to z (``concat``); D by ``projection`` (default
via ``auto``), ``concat`` (one-hot label maps at the input) or ``acgan`` (classifier head through
``forward_aux``). InfoGAN: ``info_categorical`` / ``info_continuous`` add the Q head.
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
    NonNegInt,
    ResidualDBlock,
    ResidualGBlock,
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


@GENERATORS.register("resnet")
class ResNetGenerator(nn.Module):
    """G(z, y): linear projection, upsampling residual blocks, BN-ReLU-conv3-tanh."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], n_classes: int = 0,
                 ngf: Width = 64,  # channels of the last block (next to the image)
                 conditioning: Literal["cbn", "concat"] = "cbn",
                 embed_dim: Width = 32,  # label embedding size for concat
                 spectral_norm: bool = False):  # also normalize G's weights (as in BigGAN)
        super().__init__()
        self.latent_dim, self.out_shape, self.n_classes = latent_dim, tuple(out_shape), n_classes
        channels, self.base, n = image_plan(self.out_shape, "resnet generator")
        self.conditioning = conditioning if n_classes else "none"
        widths = [ngf * min(2 ** (n - 1 - i), MAX_WIDTH_FACTOR) for i in range(n)]
        self.embed = nn.Embedding(n_classes, embed_dim) if self.conditioning == "concat" else None
        d_in = latent_dim + (embed_dim if self.embed is not None else 0)
        norm_classes = n_classes if self.conditioning == "cbn" else 0
        self.project = sn(nn.Linear(d_in, widths[0] * self.base**2), spectral_norm)
        ins = [widths[0], *widths[:-1]]
        self.blocks = nn.ModuleList([ResidualGBlock(c_in, c_out, norm_classes, True, spectral_norm)
                                     for c_in, c_out in zip(ins, widths, strict=True)])
        self.norm = ConditionalBatchNorm2d(widths[-1], norm_classes)
        self.to_image = sn(nn.Conv2d(widths[-1], channels, 3, padding=1), spectral_norm)
        nn.init.xavier_uniform_(raw_weight(self.project))
        nn.init.xavier_uniform_(raw_weight(self.to_image))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # z: (N, latent_dim), y: (N,) -> x: (N, C, R, R) in (-1, 1)
        check_latent_input(z, self.latent_dim, "resnet generator")
        if self.conditioning != "none":
            check_labels(y, self.n_classes, z.shape[0], "resnet generator")
        y_norm = y if self.conditioning == "cbn" else None
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        h = self.project(z).view(z.shape[0], -1, self.base, self.base)  # (N, widths[0], base, base)
        for block in self.blocks:
            h = block(h, y_norm)  # doubles the side
        return torch.tanh(self.to_image(torch.relu(self.norm(h, y_norm))))


@DISCRIMINATORS.register("resnet")
class ResNetDiscriminator(nn.Module):
    """D(x, y): residual blocks down to ``base x base``, one more block, ReLU, global sum pool, heads."""

    # the auxiliary heads that given (resolved) parameters add, read by the config check
    auxiliary_heads = staticmethod(auxiliary_heads)

    def __init__(self, in_shape: tuple[int, ...], n_classes: int = 0,
                 ndf: Width = 64,  # channels of the first block
                 conditioning: DConditioning = "auto",
                 spectral_norm: bool = True,
                 info_categorical: list[Annotated[int, Field(ge=2)]] = [],  # noqa: B006  Q head: category counts
                 info_continuous: NonNegInt = 0,  # Q head: number of continuous codes
                 q_hidden: Width = 128):
        super().__init__()
        self.in_shape, self.n_classes = tuple(in_shape), n_classes
        channels, self.base, n = image_plan(self.in_shape, "resnet discriminator")
        self.conditioning = resolve_d_conditioning(conditioning, n_classes, "resnet discriminator")
        widths = [ndf * min(2**i, MAX_WIDTH_FACTOR) for i in range(n)]
        c_in = channels + (n_classes if self.conditioning == "concat" else 0)
        blocks = [ResidualDBlock(c_in, widths[0], True, True, spectral_norm)]
        blocks += [ResidualDBlock(widths[i - 1], widths[i], True, False, spectral_norm) for i in range(1, n)]
        blocks.append(ResidualDBlock(widths[-1], widths[-1], False, False, spectral_norm))
        self.blocks = nn.Sequential(*blocks)
        self.heads = DiscriminatorHeads(widths[-1], n_classes, self.conditioning, info_categorical,
                                        info_continuous, q_hidden, spectral_norm)

    def features(self, x: Tensor, y: Tensor | None) -> Tensor:
        # x: (N, C, R, R), y: (N,) -> h: (N, F)
        check_image_input(x, self.in_shape, "resnet discriminator")
        if self.conditioning in ("concat", "projection"):
            check_labels(y, self.n_classes, x.shape[0], "resnet discriminator")
        if self.conditioning == "concat":
            x = torch.cat([x, label_maps(y, self.n_classes, x.shape[2], x.shape[3], x.dtype)], dim=1)
        return torch.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, C, R, R), y: (N,) -> logits: (N,)
        return self.heads.logits(self.features(x, y), y)

    def forward_aux(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``(logits (N,), aux)``: see ``DiscriminatorHeads.aux``."""
        h = self.features(x, y)
        return self.heads.logits(h, y), self.heads.aux(h)
