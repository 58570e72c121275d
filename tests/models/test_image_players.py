"""Image players (DCGAN and SNGAN-style ResNet): resolutions, conditioning, auxiliary heads, and the
InfoGAN prior's code layout. The registry-wide contract (determinism, save/load, one training step)
is in test_contract.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.game import PRIORS
from ganforge.game.priors import InfoGANPrior
from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.models.layers import ConditionalBatchNorm2d, image_plan, label_maps

FAMILIES = ("dcgan", "resnet")
LATENT = 6


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_g(name: str, shape=(1, 8, 8), n_classes: int = 0, seed: int = 0, **params) -> nn.Module:
    torch.manual_seed(seed)
    return GENERATORS.build(name, {"ngf": 4, **params}, where="model.generator", latent_dim=LATENT,
                            out_shape=shape, n_classes=n_classes)


def make_d(name: str, shape=(1, 8, 8), n_classes: int = 0, seed: int = 0, **params) -> nn.Module:
    torch.manual_seed(seed)
    return DISCRIMINATORS.build(name, {"ndf": 4, **params}, where="model.discriminator", in_shape=shape,
                                n_classes=n_classes)


def images(n: int, shape=(1, 8, 8), seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *shape, generator=gen(seed)) * 2 - 1


def labels(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


# -- resolutions -------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("res,channels", [(8, 1), (16, 3), (28, 1), (32, 3), (64, 3)])
def test_shapes_at_each_resolution(family, res, channels):
    shape = (channels, res, res)
    g = make_g(family, shape).eval()
    d = make_d(family, shape).eval()
    z = torch.randn(3, LATENT, generator=gen(0))
    x = g(z)
    assert x.shape == (3, *shape)
    out = d(x)
    assert out.shape == (3,) and torch.isfinite(out).all()
    logits, aux = d.forward_aux(x)
    assert torch.equal(logits, out) and aux == {}


def test_resolution_plan():
    assert image_plan((1, 28, 28), "G") == (1, 7, 2)  # 7x7 projection, two doublings (MNIST)
    assert image_plan((3, 64, 64), "G") == (3, 4, 4)
    assert image_plan((1, 8, 8), "G") == (1, 4, 1)
    # the DCGAN generator starts from the base map and the discriminator ends on it
    g, d = make_g("dcgan", (1, 28, 28)), make_d("dcgan", (1, 28, 28))
    assert g.project.out_features == 8 * 7 * 7  # ngf * 2 channels at 7x7
    assert d.heads.linear.in_features == 8 * 7 * 7  # ndf * 2 channels at 7x7


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 24, 24), (1, 16, 32), (2,), (1, 4, 4), (3, 512, 512)])
def test_unsupported_shapes_are_config_errors(family, shape):
    with pytest.raises(ConfigError, match=r"model\.generator.*(resolution|square)"):
        make_g(family, shape)
    with pytest.raises(ConfigError, match=r"model\.discriminator.*(resolution|square)"):
        make_d(family, shape)


@pytest.mark.parametrize("family", FAMILIES)
def test_generator_output_is_tanh_bounded(family):
    g = make_g(family).train()
    with torch.no_grad():  # blow up the last layer: only tanh can keep the images in [-1, 1]
        for p in g.to_image.parameters():
            p.mul_(1000.0)
    x = g(torch.randn(16, LATENT, generator=gen(3)))
    assert x.abs().max().item() <= 1.0
    assert x.abs().max().item() > 0.999


@pytest.mark.parametrize("family", FAMILIES)
def test_discriminator_is_per_example_and_checks_its_input(family):
    d = make_d(family).eval()
    assert not getattr(d, "batch_coupled", False)
    x = images(4)
    assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        d(images(4, (3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        make_g(family)(torch.randn(2, LATENT + 1))


def test_dcgan_batch_norm_discriminator_is_batch_coupled():
    d = make_d("dcgan", (1, 16, 16), batch_norm=True).train()
    assert d.batch_coupled is True
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    x = images(4, (1, 16, 16))
    x2 = x.clone()
    x2[1:] += 1.0
    assert abs(d(x)[0].item() - d(x2)[0].item()) > 1e-6  # the other examples change example 0's logit


def test_resnet_discriminator_is_spectrally_normalized():
    d = make_d("resnet", (1, 16, 16)).train()
    x = images(8, (1, 16, 16))
    for _ in range(20):
        d(x)  # power iterations
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert convs
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().reshape(m.weight.shape[0], -1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02)


# -- conditioning ------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("conditioning", ["concat", "cbn"])
def test_conditional_generator_output_depends_on_label(family, conditioning):
    g = make_g(family, (1, 16, 16), n_classes=3, conditioning=conditioning).eval()
    z = torch.randn(4, LATENT, generator=gen(0)).repeat(3, 1)
    x = g(z, labels(*[0] * 4, *[1] * 4, *[2] * 4)).view(3, 4, -1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert (x[a] - x[b]).abs().sum(1).min().item() > 1e-4
    with pytest.raises(ValueError, match="label"):
        g(z)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_conditional_discriminator_output_depends_on_label(family, conditioning):
    d = make_d(family, (1, 16, 16), n_classes=3, conditioning=conditioning).eval()
    x = images(4, (1, 16, 16)).repeat(3, 1, 1, 1)
    out = d(x, labels(*[0] * 4, *[1] * 4, *[2] * 4)).view(3, 4)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert (out[a] - out[b]).abs().min().item() > 1e-5
    with pytest.raises(ValueError, match="label"):
        d(x)


@pytest.mark.parametrize("family", FAMILIES)
def test_auto_conditioning_is_projection_with_labels_and_none_without(family):
    assert make_d(family, n_classes=3).conditioning == "projection"
    assert make_d(family).conditioning == "none"
    with pytest.raises(ConfigError, match=r"model\.discriminator.*class_conditional"):
        make_d(family, conditioning="projection")
    with pytest.raises(ConfigError, match=r"model\.discriminator.*class_conditional"):
        make_d(family, conditioning="acgan")


def test_projection_discriminator_matches_a_hand_computation():
    """DCGAN D at 8x8 with ndf=2: h = flatten(lrelu(conv(x))); logit = w.h + b + <E[y], h>."""
    d = make_d("dcgan", (1, 8, 8), n_classes=3, ndf=2, conditioning="projection")
    with torch.no_grad():  # a non-degenerate embedding (the DCGAN init leaves it N(0, 1) already)
        d.heads.projection.weight.copy_(torch.randn(3, 2 * 4 * 4, generator=gen(5)))
    x, y = images(5), labels(0, 1, 2, 1, 0)
    conv = d.body[0]
    h = F.leaky_relu(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1), 0.2).flatten(1)  # (5, 32)
    w, b = d.heads.linear.weight[0], d.heads.linear.bias[0]
    embed = d.heads.projection.weight
    expected = torch.stack([h[i] @ w + b + embed[y[i]] @ h[i] for i in range(5)])
    assert torch.allclose(d(x, y), expected, atol=1e-6)
    # the unconditional part alone is the linear head
    assert torch.allclose(d(x, y) - (embed[y] * h).sum(1), h @ w + b, atol=1e-6)


def test_concat_discriminator_sees_one_hot_label_maps():
    maps = label_maps(labels(2, 0), 3, 4, 5, torch.float32)
    assert maps.shape == (2, 3, 4, 5)
    assert torch.equal(maps[:, :, 1, 2], torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    d = make_d("dcgan", n_classes=3, conditioning="concat")
    assert d.body[0].in_channels == 1 + 3


def test_conditional_batch_norm():
    x = torch.randn(6, 4, 3, 3, generator=gen(0))
    plain = ConditionalBatchNorm2d(4, 0).train()
    assert torch.allclose(plain(x), F.batch_norm(x, None, None, training=True), atol=1e-5)
    cbn = ConditionalBatchNorm2d(4, 3).train()
    y = labels(0, 1, 2, 0, 1, 2)
    x_hat = F.batch_norm(x, None, None, training=True)
    gamma, beta = cbn.gamma.weight[y][:, :, None, None], cbn.beta.weight[y][:, :, None, None]
    assert torch.allclose(cbn(x, y), x_hat * (1 + gamma) + beta, atol=1e-5)


# -- auxiliary heads ---------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_acgan_head(family):
    d = make_d(family, (1, 16, 16), n_classes=5, conditioning="acgan").eval()
    x = images(4, (1, 16, 16))
    logits, aux = d.forward_aux(x, labels(0, 1, 2, 3))
    assert logits.shape == (4,) and set(aux) == {"class_logits"}
    assert aux["class_logits"].shape == (4, 5)
    # the adversarial logit of AC-GAN ignores the label; forward needs none
    assert torch.equal(d(x), logits)
    assert torch.equal(d.forward_aux(x, labels(4, 4, 4, 4))[0], logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_infogan_q_head(family):
    d = make_d(family, (1, 16, 16), info_categorical=[10, 3], info_continuous=2).eval()
    x = images(4, (1, 16, 16))
    logits, aux = d.forward_aux(x)
    assert set(aux) == {"code_logits", "code_mean", "code_logstd"}
    assert aux["code_logits"].shape == (4, 13)
    assert aux["code_mean"].shape == (4, 2) and aux["code_logstd"].shape == (4, 2)
    assert torch.equal(d(x), logits)
    # the Q head reads D's body: its gradient reaches the body's first layer
    aux["code_mean"].sum().backward()
    first = next(p for p in d.parameters() if p.dim() == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_dcgan_infogan_paper_layout_fc_hidden_and_q_batch_norm():
    # Chen et al. 2016, appendix C.1: G: FC 1024-BN-ReLU before the projection; D: FC 1024-BN-lReLU
    # after the convolutions; Q: FC-BN-lReLU-FC on D's features
    g = make_g("dcgan", (1, 28, 28), fc_hidden=24)
    assert isinstance(g.hidden[0], nn.Linear) and g.hidden[0].in_features == LATENT
    assert g.hidden[0].out_features == 24 and g.project.in_features == 24
    assert g(torch.randn(3, LATENT, generator=gen(0))).shape == (3, 1, 28, 28)
    d = make_d("dcgan", (1, 28, 28), batch_norm=True, fc_hidden=24, info_categorical=[10], info_continuous=2)
    fc = [m for m in d.body if isinstance(m, nn.Linear)]
    assert len(fc) == 1 and fc[0].out_features == 24 and isinstance(d.body[-2], nn.BatchNorm1d)
    assert isinstance(d.heads.q[1], nn.BatchNorm1d) and d.heads.q[0].in_features == 24
    logits, aux = d.forward_aux(images(5, (1, 28, 28)))
    assert logits.shape == (5,) and aux["code_logits"].shape == (5, 10)
    # without batch norm the Q head keeps its plain FC-lReLU-FC layout
    plain = make_d("dcgan", (1, 28, 28), fc_hidden=24, info_categorical=[10])
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())


# -- the InfoGAN prior -------------------------------------------------------------------------

def infogan_prior(**params) -> InfoGANPrior:
    return PRIORS.build("infogan", {"latent_dim": 20, "categorical": [10, 3], "continuous": 2, **params},
                        where="game.prior")


def test_infogan_prior_layout_and_sampling():
    prior = infogan_prior()
    assert prior.latent_dim == 20 and prior.noise_dim == 5 and prior.n_categorical_total == 13
    z = prior.sample(4000, gen(0))
    assert z.shape == (4000, 20)
    assert torch.equal(z, prior.sample(4000, gen(0)))
    onehot_a, onehot_b, cont = z[:, 5:15], z[:, 15:18], z[:, 18:]
    for block, k in ((onehot_a, 10), (onehot_b, 3)):
        assert torch.equal(block.sum(1), torch.ones(4000))
        assert set(block.unique().tolist()) == {0.0, 1.0}
        counts = block.sum(0)
        assert counts.min() > 4000 / k * 0.8  # every category drawn, roughly uniformly
    assert cont.min() >= -1 and cont.max() < 1 and cont.min() < -0.99 and cont.max() > 0.99
    assert abs(z[:, :5].std().item() - 1) < 0.05  # Gaussian noise
    zu = infogan_prior(noise="uniform").sample(1000, gen(1))
    assert zu[:, :5].min() >= -1 and zu[:, :5].max() < 1


def test_infogan_prior_split_and_join_are_exact_inverses():
    prior = infogan_prior()
    z = prior.sample(7, gen(2))
    noise, cats, cont = prior.split(z)
    assert noise.shape == (7, 5) and cont.shape == (7, 2)
    assert [c.shape for c in cats] == [(7,), (7,)] and cats[0].dtype == torch.long
    assert torch.equal(prior.join(noise, cats, cont), z)
    assert torch.equal(cats[0], z[:, 5:15].argmax(1)) and torch.equal(cats[1], z[:, 15:18].argmax(1))
    with pytest.raises(ValueError, match="20"):
        prior.split(z[:, :-1])


def test_infogan_prior_with_codes_for_traversals():
    prior = infogan_prior()
    z = prior.sample(5, gen(3))
    sweep = torch.linspace(-2, 2, 5)
    z2 = prior.with_codes(z, categorical={1: 2}, continuous={0: sweep})
    noise, cats, cont = prior.split(z2)
    assert torch.equal(noise, z[:, :5])
    assert torch.equal(cats[1], torch.full((5,), 2))
    assert torch.equal(cats[0], prior.split(z).categorical[0])
    assert torch.equal(cont[:, 0], sweep) and torch.equal(cont[:, 1], z[:, 19])
    assert torch.equal(z, prior.sample(5, gen(3)))  # the input is not modified


def test_infogan_prior_truncation_keeps_the_codes():
    prior = infogan_prior()
    z = prior.sample(200, gen(4))
    zt = prior.truncate(z, 0.5, gen(5))
    assert zt[:, :5].abs().max() <= 0.5
    assert torch.equal(zt[:, 5:], z[:, 5:])


def test_infogan_prior_needs_room_for_its_codes():
    with pytest.raises(ConfigError, match=r"game\.prior.*latent_dim=10.*13"):
        PRIORS.build("infogan", {"latent_dim": 10, "categorical": [10], "continuous": 3}, where="game.prior")
    with pytest.raises(ConfigError, match=r"game\.prior\.categorical"):
        PRIORS.build("infogan", {"latent_dim": 10, "categorical": [1]}, where="game.prior")


def test_infogan_prior_refuses_a_category_out_of_range():
    prior = infogan_prior()
    z = prior.sample(4, gen(3))
    k = prior.categorical[1]
    with pytest.raises(ValueError, match=f"categorical code 1 has {k} categories"):
        prior.with_codes(z, categorical={1: k})
    with pytest.raises(ValueError, match="no categorical code 7"):
        prior.with_codes(z, categorical={7: 0})
    onehot = prior.join(*prior.split(z))  # join is split's inverse, one-hot blocks included
    assert torch.equal(onehot, z)
