"""A check before training that the batch fits in memory, with a clear error when it cannot."""

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


def check_batch_fits(batch_size: int, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                     n_classes: int, device: torch.device, bytes_per_element: int = 4) -> int:
    """Raise ConfigError naming ``train.batch_size`` when the batch cannot fit; return the estimate."""
    per_example = activation_numel_per_example(generator, discriminator, latent_dim, n_classes, device)
    need = batch_size * per_example * bytes_per_element * _ACTIVATION_FACTOR
    avail = available_memory_bytes(device)
    if need > avail:
        gib = 1 << 30
        raise ConfigError("train.batch_size", f"{batch_size} needs about {need / gib:.1f} GiB for activations, "
                                              f"but {device.type} has {avail / gib:.1f} GiB available; "
                                              f"use at most about {max(1, int(batch_size * avail / need))}")
    return need
