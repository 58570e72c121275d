"""Multilayer perceptron players, for toy distributions and tabular data."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.models.layers import (
    Activation,
    LabelEmbedding,
    MinibatchStd,
    NonNegInt,
    Width,
    activation,
    check_labels,
    check_packed_input,
)
from ganforge.models.layers import maybe_spectral_norm as sn


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
    """G(z): latent vector -> example, through fully connected layers.

    A conditional generator (``n_classes > 0``) concatenates a learned label embedding to z.
    """

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], n_classes: int = 0,
                 widths: list[Width] = [256, 256, 256],  # noqa: B006  (validated copy from config)
                 activation: Activation = "relu", batch_norm: bool = False,
                 output: Annotated[str, Field(pattern="^(linear|tanh)$")] = "linear",
                 embed_dim: Annotated[int, Field(gt=0)] = 16):
        super().__init__()
        self.latent_dim, self.out_shape, self.n_classes = latent_dim, tuple(out_shape), n_classes
        self.embed = LabelEmbedding(n_classes, embed_dim) if n_classes else None
        layers: list[nn.Module] = []
        d_in = latent_dim + (embed_dim if n_classes else 0)
        for w in widths:
            layers.append(nn.Linear(d_in, w))
            if batch_norm:
                layers.append(nn.BatchNorm1d(w))
            layers.append(_act(activation))
            d_in = w
        layers.append(nn.Linear(d_in, math.prod(self.out_shape)))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # z: (N, latent_dim), y: (N,) -> x: (N, *out_shape)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if self.embed is not None:
            check_labels(y, self.n_classes, z.shape[0], "generator")
            z = torch.cat([z, self.embed(y)], dim=1)
        return self.net(z).view(z.shape[0], *self.out_shape)


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
    """D(x): example -> logit, through fully connected layers.

    Options against mode collapse: ``minibatch_std`` appends the batch's feature spread before the
    last layer; ``pack`` > 1 makes D judge ``pack`` examples jointly (PacGAN, Lin et al. 2018): the
    logit of each pack is returned for each of its members, so costs keep their per-example form.
    Pack ``j`` of a batch of N holds the examples ``j, j + N/pack, j + 2 N/pack, ...`` (strided, as
    minibatch-std groups are): a process's slice ``[rank::world_size]`` of the global batch then
    forms exactly the global batch's packs, so N processes follow the 1-process trajectory; packs of
    consecutive examples would differ between 1 and N processes.
    A conditional discriminator (``n_classes > 0``) uses a projection head (Miyato & Koyama 2018).
    ``out_features`` > 0 makes the last layer give that many features per example, ``(N, F)``, instead
    of one logit: the critic of the mmd_gan game (unconditional only; 0, the default, is a logit).
    """

    @staticmethod
    def auxiliary_heads(params: dict) -> dict[str, str]:
        """No auxiliary heads (no ``forward_aux``), whatever the parameters."""
        return {}

    def __init__(self, in_shape: tuple[int, ...], n_classes: int = 0,
                 widths: list[Width] = [256, 256, 256],  # noqa: B006
                 activation: Activation = "leaky_relu", spectral_norm: bool = False,
                 minibatch_std: bool = False, pack: Annotated[int, Field(gt=0)] = 1,
                 dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0,
                 out_features: NonNegInt = 0):  # > 0: a feature vector per example (mmd_gan)
        super().__init__()
        if out_features and n_classes:
            raise ValueError("out_features (a feature output) is for an unconditional critic; the conditional "
                             "discriminator's projection head needs one logit per example")
        self.in_shape, self.n_classes, self.pack = tuple(in_shape), n_classes, pack
        self.out_features = out_features
        self.batch_coupled = minibatch_std or pack > 1
        d_in = math.prod(self.in_shape) * pack
        body: list[nn.Module] = []
        for w in widths:
            body += [sn(nn.Linear(d_in, w), spectral_norm), _act(activation)]
            if dropout:
                body.append(nn.Dropout(dropout))
            d_in = w
        self.body = nn.Sequential(*body)
        self.minibatch_std = MinibatchStd() if minibatch_std else None
        self.head = sn(nn.Linear(d_in + int(minibatch_std), max(out_features, 1)), spectral_norm)
        self.projection = sn(nn.Embedding(n_classes, d_in + int(minibatch_std)), spectral_norm) if n_classes else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, *in_shape), y: (N,) -> logits: (N,) (features (N, out_features) with out_features)
        n = check_packed_input(x, self.in_shape, self.pack)
        if self.pack > 1:  # (N, ...) -> (N/pack, pack * features); row j = examples j, j + N/pack, ...
            x = x.reshape(self.pack, n // self.pack, -1).transpose(0, 1)
        h = self.body(x.reshape(n // self.pack, -1))  # (N/pack, width)
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        out = self.head(h)  # (N/pack, max(out_features, 1))
        if self.out_features:
            return out.repeat(self.pack, 1) if self.pack > 1 else out
        out = out.squeeze(1)  # (N/pack,)
        if self.projection is not None:
            check_labels(y, self.n_classes, n, "discriminator")
            y_pack = y[: n // self.pack]  # members of a pack share the first member's label
            out = out + (self.projection(y_pack) * h).sum(dim=1)
        if self.pack > 1:
            out = out.repeat(self.pack)  # example i gets the logit of pack i mod (N/pack)
        return out


def _act(name: str) -> nn.Module:
    # in place: each activation follows a linear layer or a batch norm, neither of whose backward
    # reads its output
    return activation(name, inplace=True)
