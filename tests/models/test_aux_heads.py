"""The heads that the config check expects (each discriminator class's ``auxiliary_heads(params)``)
are the heads D really has."""

from __future__ import annotations

import pytest
import torch

from ganforge.components import _D_CONTEXT
from ganforge.models import DISCRIMINATORS


@pytest.mark.parametrize("name", ["dcgan", "resnet"])
@pytest.mark.parametrize("extra", [{}, {"conditioning": "acgan"}, {"info_categorical": [3], "info_continuous": 2},
                                   {"info_continuous": 1}, {"conditioning": "acgan", "info_categorical": [4]}])
def test_auxiliary_heads_match_forward_aux(name, extra):
    params = {"ndf": 8, **extra}
    resolved = DISCRIMINATORS.validate(name, params, "model.discriminator", _D_CONTEXT)
    torch.manual_seed(0)
    d = DISCRIMINATORS.build(name, params, where="model.discriminator", in_shape=(1, 8, 8), n_classes=5)
    _, aux = d.forward_aux(torch.randn(4, 1, 8, 8), torch.arange(4))
    assert set(aux) == set(DISCRIMINATORS.get(name).auxiliary_heads(resolved))


def test_every_discriminator_says_which_heads_it_has():
    for name in DISCRIMINATORS.names():
        assert callable(getattr(DISCRIMINATORS.get(name), "auxiliary_heads", None)), name
    assert DISCRIMINATORS.get("mlp").auxiliary_heads({"pack": 2}) == {}
