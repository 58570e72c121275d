"""The players of a table (CTGAN, Xu et al. 2019): a residual generator whose output heads follow the
table's encoding, and a packed critic, both conditioned on CTGAN's conditional vector.

The encoding (tabular/transformer.py) lays a row out as spans: a ``tanh`` span per continuous value
and a ``softmax`` span per one-hot block (a mode of a continuous column, the categories of a discrete
column, present/missing). The generator's last linear layer gives logits for every span; values go
through tanh, one-hot blocks through Gumbel-softmax (Jang et al. 2017), which keeps the generator
differentiable while its output stays close to one-hot, as real rows are.

The condition is CTGAN's: the index of one category among all categories of all discrete columns
(``y`` in 0..n_classes-1); both players see it as a one-hot vector concatenated to their input.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.models.layers import Width, check_labels, check_packed_input
from ganforge.tabular.layout import TableLayout


@GENERATORS.register("table")
class TableGenerator(nn.Module):
    """G(z, y): a residual MLP (CTGAN's: each block concatenates ReLU(BN(Linear(h))) to h) with one head
    per span of the table's encoding.

    ``layout`` comes from the data (the table's encoding), never from the config. ``tau`` is the
    Gumbel-softmax temperature (CTGAN: 0.2). ``condition_logits`` holds, after each call, the logits
    of every discrete column's block (N, n_classes): the ctgan game's cross-entropy reads it.

    ``stochastic``: the Gumbel noise (which also samples the categories when sampling) comes from the
    global random stream, which the trainer checkpoints and ``TrainedGenerator`` seeds per batch.
    """

    stochastic = True

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], n_classes: int = 0,
                 widths: list[Width] = [256, 256],  # noqa: B006  residual blocks' widths (CTGAN: 256, 256)
                 tau: Annotated[float, Field(gt=0)] = 0.2,  # Gumbel-softmax temperature (CTGAN: 0.2)
                 layout: TableLayout | None = None):
        super().__init__()
        if layout is None:
            raise ValueError("the table generator needs a table's encoding: use it with data.name: table")
        if math.prod(out_shape) != layout.width:
            raise ValueError(f"the table generator's output width {math.prod(out_shape)} is not the encoding's "
                             f"{layout.width}")
        self.latent_dim, self.out_shape, self.n_classes, self.tau = latent_dim, tuple(out_shape), n_classes, tau
        self.layout = layout
        d = latent_dim + n_classes
        blocks = []
        for w in widths:
            blocks.append(nn.Sequential(nn.Linear(d, w), nn.BatchNorm1d(w), nn.ReLU()))
            d += w
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(d, layout.width)
        tanh = [i for s in layout.spans if s.kind == "tanh" for i in range(s.start, s.start + s.width)]
        self.register_buffer("_tanh_index", torch.tensor(tanh, dtype=torch.long), persistent=False)
        # softmax spans grouped by width: one Gumbel-softmax call per width over (N, k, width) blocks
        groups: dict[int, list[int]] = {}
        for s in layout.spans:
            if s.kind == "softmax":
                groups.setdefault(s.width, []).append(s.start)
        self._softmax_groups = [(w, torch.tensor([[st + j for j in range(w)] for st in starts], dtype=torch.long))
                                for w, starts in sorted(groups.items())]
        cond = [i for c in layout.discrete for i in range(c.start, c.start + c.width)]
        self.register_buffer("_condition_index", torch.tensor(cond, dtype=torch.long), persistent=False)
        self.condition_logits: Tensor | None = None

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        # z: (N, latent_dim), y: (N,) condition indices -> x: (N, width), the encoded row
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        h = z
        if self.n_classes:
            check_labels(y, self.n_classes, z.shape[0], "generator")
            h = torch.cat([z, F.one_hot(y, self.n_classes).to(z.dtype)], dim=1)
        for block in self.blocks:
            h = torch.cat([h, block(h)], dim=1)
        logits = self.head(h)  # (N, width)
        out = torch.empty_like(logits)
        if self._tanh_index.numel():
            out[:, self._tanh_index] = torch.tanh(logits[:, self._tanh_index])
        for _w, index in self._softmax_groups:
            index = index.to(logits.device)
            out[:, index] = F.gumbel_softmax(logits[:, index], tau=self.tau, hard=False, dim=-1)
        self.condition_logits = logits[:, self._condition_index] if self.n_classes else None
        return out


@DISCRIMINATORS.register("table")
class TableDiscriminator(nn.Module):
    """D(x, y): CTGAN's critic, Linear -> LeakyReLU(0.2) -> Dropout per layer, on ``pack`` rows at a time
    (PacGAN; CTGAN packs 10) with each row's condition one-hot concatenated to it.

    Packs are strided, as every packed discriminator here: pack ``j`` of a batch of N holds the rows
    ``j, j + N/pack, ...`` (models/__init__.py)."""

    @staticmethod
    def auxiliary_heads(params: dict) -> dict[str, str]:
        return {}

    def __init__(self, in_shape: tuple[int, ...], n_classes: int = 0,
                 widths: list[Width] = [256, 256],  # noqa: B006  hidden layers' widths (CTGAN: 256, 256)
                 pack: Annotated[int, Field(gt=0)] = 10,  # rows judged together (PacGAN; CTGAN: 10)
                 dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5,  # after each hidden layer (CTGAN: 0.5)
                 ):
        super().__init__()
        self.in_shape, self.n_classes, self.pack = tuple(in_shape), n_classes, pack
        self.batch_coupled = pack > 1
        d = (math.prod(self.in_shape) + n_classes) * pack
        layers: list[nn.Module] = []
        for w in widths:
            layers += [nn.Linear(d, w), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            d = w
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        # x: (N, width), y: (N,) -> logits: (N,), each row gets its pack's logit
        n = check_packed_input(x, self.in_shape, self.pack)
        h = x.reshape(n, -1)
        if self.n_classes:
            check_labels(y, self.n_classes, n, "discriminator")
            h = torch.cat([h, F.one_hot(y, self.n_classes).to(h.dtype)], dim=1)
        if self.pack > 1:  # (N, f) -> (N/pack, pack * f); row j = rows j, j + N/pack, ...
            h = h.reshape(self.pack, n // self.pack, -1).transpose(0, 1).reshape(n // self.pack, -1)
        out = self.net(h).squeeze(1)  # (N/pack,)
        return out.repeat(self.pack) if self.pack > 1 else out
