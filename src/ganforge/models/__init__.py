"""The players. Architectures are registered by name in ``GENERATORS`` and ``DISCRIMINATORS``.

Contracts (see docs/architecture.md):

- a generator is built as ``GENERATORS.build(name, params, latent_dim=..., out_shape=..., n_classes=...)``
  and called ``G(z, y=None) -> x`` with ``z: (N, latent_dim)`` and ``x: (N, *out_shape)``;
- a discriminator is built as ``DISCRIMINATORS.build(name, params, in_shape=..., n_classes=...)`` and
  called ``D(x, y=None) -> logits`` of shape ``(N,)``: raw logits, never a sigmoid inside D.
- a discriminator whose output for one example depends on the others in the batch (batch norm,
  minibatch standard deviation, packing) sets ``batch_coupled = True``; the trainer then never mixes
  real and fake examples in one forward pass.
- a packed discriminator (PacGAN) has a ``pack`` attribute and returns each pack's logit for each
  member; pack ``j`` of a batch of N holds the examples ``j, j + N/pack, ...`` (strided), which the
  regularizers rely on to take input-gradient penalties per pack (game/regularizers.py).
- a discriminator class says which auxiliary heads (``forward_aux`` keys) given parameters add,
  ``auxiliary_heads(params) -> {head: parameter}``, so the config can be checked against the
  auxiliary costs before anything is built (components.check_game).
"""

from torch import nn

from ganforge.registry import Registry

GENERATORS: Registry[nn.Module] = Registry("generator")
DISCRIMINATORS: Registry[nn.Module] = Registry("discriminator")

from ganforge.models import dcgan, dirac, mlp, resnet  # noqa: E402,F401  (registers the players)
from ganforge.tabular import models as _table_players  # noqa: E402,F401  (registers the table's players)

__all__ = ["DISCRIMINATORS", "GENERATORS"]
