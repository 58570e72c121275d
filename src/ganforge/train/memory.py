"""A check before training that the players' training state and the batch fit in memory, with a
clear error when they cannot.

Two stages: ``ganforge.components.check_players_fit`` refuses players whose weights cannot even be
allocated (counted on the meta device, before anything is built); ``check_batch_fits`` here, once the
players are on their device, adds what training allocates next: gradients, two optimizer moments per
parameter (Adam's; fewer for SGD, so this errs on the safe side), the generator's EMA copy, and the
activations of a batch."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.io import available_memory_bytes

# Activations are kept for backward in both players, for real and fake batches, with gradients of
# the same size: a generous multiplier over one forward pass of G and D.
_ACTIVATION_FACTOR = 6


@torch.no_grad()
def activation_numel_per_example(generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                                 n_classes: int, device: torch.device) -> int:
    """Elements of all module outputs in one forward pass of G and D, per example (a small probe)."""
    total = 0

    def hook(_module, _inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for net in (generator, discriminator) for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was = generator.training, discriminator.training
    try:
        generator.eval()
        discriminator.eval()
        n = 4 * getattr(discriminator, "pack", 1)
        y = torch.zeros(n, dtype=torch.long, device=device) if n_classes else None
        x = generator(torch.zeros(n, latent_dim, device=device), y)
        discriminator(x, y)
    finally:
        for h in handles:
            h.remove()
        generator.train(was[0])
        discriminator.train(was[1])
    return total // n


# Per parameter, besides the weights already allocated: its gradient and two optimizer moments.
_STATE_COPIES = 3


def training_state_bytes(generator: nn.Module, discriminator: nn.Module) -> int:
    """Bytes training allocates for the players besides their weights: gradients, optimizer moments,
    and the EMA copy of the generator (parameters and buffers)."""
    def size(ts) -> int:
        return sum(t.numel() * t.element_size() for t in ts)

    params = size(generator.parameters()) + size(discriminator.parameters())
    return _STATE_COPIES * params + size(generator.parameters()) + size(generator.buffers())


def check_batch_fits(batch_size: int, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                     n_classes: int, device: torch.device, bytes_per_element: int = 4) -> int:
    """Raise ConfigError when the players' training state (naming ``model.generator`` /
    ``model.discriminator``) or the batch (naming ``train.batch_size``) cannot fit; return the estimate."""
    gib = 1 << 30
    avail = available_memory_bytes(device)
    state = training_state_bytes(generator, discriminator)
    if state > avail:
        g = sum(p.numel() for p in generator.parameters())
        d = sum(p.numel() for p in discriminator.parameters())
        where = "model.generator" if g >= d else "model.discriminator"
        raise ConfigError(where, f"training the players ({g:,} + {d:,} parameters) needs about {state / gib:.1f} GiB "
                                 f"for gradients, optimizer state and the EMA copy, but {device.type} has "
                                 f"{avail / gib:.1f} GiB available; use narrower players or a smaller latent_dim")
    per_example = activation_numel_per_example(generator, discriminator, latent_dim, n_classes, device)
    need = batch_size * per_example * bytes_per_element * _ACTIVATION_FACTOR
    if need + state > avail:
        raise ConfigError("train.batch_size", f"{batch_size} needs about {need / gib:.1f} GiB for activations "
                                              f"(besides {state / gib:.1f} GiB of the players' training state), "
                                              f"but {device.type} has {avail / gib:.1f} GiB available; use at most "
                                              f"about {max(1, int(batch_size * (avail - state) / need))}")
    return need + state
