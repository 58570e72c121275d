"""The plain hand-written GAN step that the benches compare ganforge against (pytorch/examples'
DCGAN loop): separate D passes on real and fake, BCE with logits, the D step's fakes reused by the
G step, full backward through D, non-saturating G cost."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def plain_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               real: Tensor, z: Tensor, ones: Tensor, zeros: Tensor) -> tuple[Tensor, Tensor]:
    """One D step then one G step; returns both costs (not synchronised: the caller decides)."""
    fake = G(z)
    loss_d = (F.binary_cross_entropy_with_logits(D(real), ones)
              + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g
