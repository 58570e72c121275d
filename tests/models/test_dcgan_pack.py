"""PacGAN packing and minibatch-std in the DCGAN discriminator (used by the stacked-mnist recipe):
packs are strided like the MLP's, stacked along the channels, one logit per pack for each member."""

from __future__ import annotations

import pytest
import torch

from ganforge.models import DISCRIMINATORS

SHAPE = (3, 28, 28)


def make_d(seed: int = 0, n_classes: int = 0, **extra):
    torch.manual_seed(seed)
    return DISCRIMINATORS.build("dcgan", {"ndf": 8, **extra}, where="model.discriminator", in_shape=SHAPE,
                                n_classes=n_classes)


def x_batch(n: int = 12, seed: int = 2) -> torch.Tensor:
    return torch.randn(n, *SHAPE, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


def test_defaults_are_unchanged_and_per_example():
    d = make_d()
    assert d.pack == 1 and not d.batch_coupled
    x = x_batch()
    torch.testing.assert_close(d(x[:5]), d(x)[:5], rtol=0, atol=1e-6)


def test_pack_logits_and_members():
    d = make_d(pack=4)
    assert d.batch_coupled and d.body[0].in_channels == 4 * 3
    x = x_batch(12)
    out = d(x)
    packs = out.view(4, 3)  # pack j holds examples j, j + 3, j + 6, j + 9
    assert torch.equal(packs, packs[:1].expand(4, 3)) and len(set(packs[0].tolist())) == 3
    x2 = x.clone()
    x2[7] += 0.5  # a member of pack 1
    out2 = d(x2).view(4, 3)
    assert torch.equal(out2[:, 0], packs[:, 0]) and torch.equal(out2[:, 2], packs[:, 2])
    assert not torch.equal(out2[:, 1], packs[:, 1])
    # the pack's input: its members' channels side by side, in member order
    pack1 = torch.cat([x[1], x[4], x[7], x[10]])[None]
    torch.testing.assert_close(d.heads.logits(d.body(pack1), None).squeeze(), out[1], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="pack"):
        d(x[:10])


@pytest.mark.parametrize("options", [{"pack": 2}, {"minibatch_std": True}, {"pack": 2, "minibatch_std": True}],
                         ids=["pack", "minibatch_std", "both"])
def test_rank_slices_give_the_global_logits(options):
    d = make_d(spectral_norm=True, **options).eval()
    x = x_batch(32)
    out = d(x)
    for world in (2, 4):
        for rank in range(world):
            torch.testing.assert_close(d(x[rank::world]), out[rank::world], rtol=0, atol=1e-5)


def test_minibatch_std_sees_the_batch():
    d = make_d(minibatch_std=True)
    assert d.batch_coupled
    x = x_batch(8)
    out = d(x)
    x2 = x.clone()
    x2[4] = -x2[4]  # same group as example 0 (groups are strided: 0, 2, 4, 6 with group size 4)
    assert not torch.equal(d(x2)[0], out[0])


def test_pack_refuses_conditional_d():
    with pytest.raises(ValueError, match="pack > 1 is for unconditional D"):
        make_d(pack=2, n_classes=10)
