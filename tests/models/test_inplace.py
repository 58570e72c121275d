"""In-place activations (relu, leaky relu) change no value and no gradient, first or second order.

The players overwrite each activation's input in place where nothing else reads it (a speed-up of
the training step, bench/README.md). Each player is compared with a copy whose activations are out
of place, on the same weights and inputs: outputs, weight and input gradients, and the weight
gradients of a gradient penalty (the double backward that R1 and WGAN-GP take).
"""

from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch
from torch import nn

from ganforge.models import DISCRIMINATORS, GENERATORS

CASES = [
    ("g", "mlp", {"widths": [16, 16], "activation": "relu"}, (2,)),
    ("g", "mlp", {"widths": [16, 16], "activation": "leaky_relu", "batch_norm": True}, (2,)),
    ("d", "mlp", {"widths": [16, 16], "activation": "leaky_relu"}, (2,)),
    ("d", "mlp", {"widths": [16, 16], "activation": "relu", "minibatch_std": True}, (2,)),
    ("g", "dcgan", {"ngf": 4}, (1, 16, 16)),
    ("g", "dcgan", {"ngf": 4, "fc_hidden": 16}, (1, 16, 16)),
    ("d", "dcgan", {"ndf": 4}, (1, 16, 16)),
    ("d", "dcgan", {"ndf": 4, "batch_norm": True, "fc_hidden": 16}, (1, 16, 16)),
]


def out_of_place(module: nn.Module) -> nn.Module:
    ref = copy.deepcopy(module)
    for m in ref.modules():
        if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
            m.inplace = False
    return ref


def count_inplace(module: nn.Module) -> int:
    return sum(1 for m in module.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU)) and m.inplace)


def run(player: nn.Module, kind: str, shape: tuple[int, ...], reference: bool):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, *((4,) if kind == "g" else shape), generator=gen).requires_grad_(True)
    patch = mock.patch("torch.relu_", torch.relu) if reference else mock.patch("torch.relu_", torch.relu_)
    with patch:
        out = player(x)
        w = torch.randn(out.shape, generator=gen)
        (out * w).sum().backward(retain_graph=True)
        first = [p.grad.clone() for p in player.parameters()] + [x.grad.clone()]
        # gradient penalty: || d out / d x ||^2, differentiated again with respect to the weights
        player.zero_grad()
        (gx,) = torch.autograd.grad((out * w).sum(), x, create_graph=True)
        gx.pow(2).sum().backward()
    second = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in player.parameters()]
    return out.detach(), first, second


@pytest.mark.parametrize(("kind", "name", "params", "shape"), CASES)
def test_in_place_activations_change_no_value_or_gradient(kind, name, params, shape):
    torch.manual_seed(3)
    if kind == "g":
        player = GENERATORS.build(name, params, where="model.generator", latent_dim=4, out_shape=shape, n_classes=0)
    else:
        player = DISCRIMINATORS.build(name, params, where="model.discriminator", in_shape=shape, n_classes=0)
    player.train()
    reference = out_of_place(player)
    if name == "mlp" or kind == "d" or params.get("fc_hidden"):
        assert count_inplace(player) > 0 and count_inplace(reference) == 0  # the comparison is not vacuous
    out, first, second = run(player, kind, shape, reference=False)
    out_ref, first_ref, second_ref = run(reference, kind, shape, reference=True)
    torch.testing.assert_close(out, out_ref, rtol=0, atol=0)
    for a, b in zip(first + second, first_ref + second_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in second)  # the double backward reached the weights


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "silu", "tanh", "gelu"])
def test_in_place_activation_is_the_same_function(name):
    from ganforge.models.layers import activation

    x = torch.randn(64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(activation(name, inplace=True)(x.clone()), activation(name)(x), rtol=0, atol=0)
