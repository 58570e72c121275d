"""The contract every registered generator and discriminator must keep, plus MLP-specific options.

The suite is parametrized over the registries, so a new architecture is covered the moment it is
registered: shapes, raw logits, determinism, save/load round trip, one training step, conditioning.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganforge.game import COSTS
from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.train.checkpoint import load_checkpoint, save_checkpoint

LATENT = 8
N = 8


def small_params(name: str, kind: str = "g") -> dict:
    """Small sizes so that the suite stays fast; {} uses the architecture's defaults.
    ``kind`` is "g" or "d": a generator and a discriminator of one family may name widths differently."""
    small = {
        ("g", "mlp"): {"widths": [32, 32]}, ("d", "mlp"): {"widths": [32, 32]},
        ("g", "dcgan"): {"ngf": 8},
        # spectral norm: the paper's N(0, 0.02) init makes a plain DCGAN D's logits tiny (~1e-3) at init,
        # too small for the raw-logit check below; the plain variant is covered in test_image_players.py
        ("d", "dcgan"): {"ndf": 8, "spectral_norm": True},
        ("g", "resnet"): {"ngf": 8}, ("d", "resnet"): {"ndf": 8},
        # packs of 1 and no dropout: the batch sizes below are not multiples of 10, and the suite compares outputs
        ("g", "table"): {"widths": [16, 16]}, ("d", "table"): {"widths": [16], "pack": 1, "dropout": 0.0},
    }
    return small.get((kind, name), {})


def table_layout():
    """A table's encoding: a continuous column (value + 2 modes) and a categorical one (3 categories)."""
    from ganforge.tabular.layout import TableLayout
    from ganforge.tabular.transformer import DiscreteColumn, Span

    spans = (Span("x", "tanh", 0, 1, "value"), Span("x", "softmax", 1, 2, "mode"),
             Span("g", "softmax", 3, 3, "category"))
    return TableLayout(6, spans, (DiscreteColumn("g", 3, 3, ("a", "b", "c"), (5, 3, 2)),))


def shape_for(name: str) -> tuple[int, ...]:
    """Toy 2-D points for the MLP, encoded rows for the table's players, small images for every other
    (convolutional) architecture."""
    return (2,) if name == "mlp" else (6,) if name == "table" else (1, 16, 16)


def context_for(name: str, kind: str) -> dict:
    """What the data gives a player besides shapes (a table's layout, to its generator)."""
    return {"layout": table_layout()} if name == "table" and kind == "g" else {}


def run(m: nn.Module, *args):
    """Call a player; one that declares its own noise (``stochastic``: a table's Gumbel-softmax draws
    from the global stream) is called with that stream seeded, so its outputs are comparable."""
    if getattr(m, "stochastic", False):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(123)
            return m(*args)
    return m(*args)


def make_g(name: str, seed: int = 0, n_classes: int = 0, **extra) -> nn.Module:
    torch.manual_seed(seed)
    return GENERATORS.build(name, {**small_params(name, "g"), **extra}, where="model.generator",
                            latent_dim=LATENT, out_shape=shape_for(name), n_classes=n_classes, **context_for(name, "g"))


def make_d(name: str, seed: int = 0, n_classes: int = 0, **extra) -> nn.Module:
    torch.manual_seed(seed)
    return DISCRIMINATORS.build(name, {**small_params(name, "d"), **extra}, where="model.discriminator",
                                in_shape=shape_for(name), n_classes=n_classes, **context_for(name, "d"))


def z_batch(n: int = N, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, LATENT, generator=torch.Generator().manual_seed(seed))


def x_batch(name: str, n: int = N, seed: int = 2, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(n, *shape_for(name), generator=torch.Generator().manual_seed(seed))


def params_of(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


G_NAMES = GENERATORS.names()
D_NAMES = DISCRIMINATORS.names()


# -- shapes and logits -------------------------------------------------------------------------

@pytest.mark.parametrize("name", G_NAMES)
def test_generator_output_shape(name):
    g = make_g(name)
    for n in (1, 5):
        x = g.eval()(z_batch(n))
        assert x.shape == (n, *shape_for(name))
        assert torch.isfinite(x).all()
    with pytest.raises(ValueError):
        g(torch.randn(3, LATENT + 1))


@pytest.mark.parametrize("name", D_NAMES)
def test_discriminator_returns_raw_logits_of_shape_n(name):
    d = make_d(name)
    out = d(x_batch(name))
    assert out.shape == (N,)
    # raw logits, not probabilities: large inputs push them well outside [0, 1]
    big = d(x_batch(name, scale=100.0))
    assert big.shape == (N,)
    assert ((big < 0) | (big > 1)).any(), big
    assert big.abs().max().item() > 1.0
    with pytest.raises(ValueError):
        d(torch.randn(N, *shape_for(name), 1))


# -- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,name", [("g", n) for n in G_NAMES] + [("d", n) for n in D_NAMES])
def test_same_seed_same_init_and_outputs(kind, name):
    make = make_g if kind == "g" else make_d
    a, b, c = make(name, seed=5), make(name, seed=5), make(name, seed=6)
    pa, pb, pc = params_of(a), params_of(b), params_of(c)
    assert pa.keys() == pb.keys()
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert any(not torch.equal(pa[k], pc[k]) for k in pa if pa[k].is_floating_point())
    inp = z_batch() if kind == "g" else x_batch(name)
    a.eval(), b.eval()
    assert torch.equal(run(a, inp), run(b, inp))
    assert torch.equal(run(a, inp), run(a, inp))  # no hidden randomness in eval mode (declared noise is seeded)


# -- save / load -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,name", [("g", n) for n in G_NAMES] + [("d", n) for n in D_NAMES])
def test_checkpoint_round_trip_reproduces_outputs(kind, name, tmp_path):
    make = make_g if kind == "g" else make_d
    inp = z_batch() if kind == "g" else x_batch(name)
    src = make(name, seed=1)
    src.train()
    src(inp)  # touch running statistics / power-iteration buffers where the model has them
    src.eval()
    expected = run(src, inp)
    path = save_checkpoint(tmp_path / "m.safetensors", {"model": src.state_dict()}, "h")
    dst = make(name, seed=2).eval()
    assert not torch.equal(run(dst, inp), expected)
    dst.load_state_dict(load_checkpoint(path, "h")["model"])
    assert torch.equal(run(dst, inp), expected)


def test_spectral_norm_discriminator_round_trip(tmp_path):
    src = make_d("mlp", seed=1, spectral_norm=True).train()
    x = x_batch("mlp")
    for _ in range(3):
        src(x)
    src.eval()
    expected = src(x)
    path = save_checkpoint(tmp_path / "d.safetensors", {"d": src.state_dict()}, "h")
    dst = make_d("mlp", seed=2, spectral_norm=True)
    dst.load_state_dict(load_checkpoint(path)["d"])
    assert torch.equal(dst.eval()(x), expected)


# -- one training step -------------------------------------------------------------------------

@pytest.mark.parametrize("name", D_NAMES)
def test_one_discriminator_step(name):
    d = make_d(name)
    cost = COSTS.build("non_saturating", {})
    real, fake = x_batch(name, seed=3), x_batch(name, seed=4) + 1.0
    before = params_of(d)
    opt = torch.optim.SGD(d.parameters(), lr=1e-2)
    loss0 = cost.discriminator_cost(d(real), d(fake))
    opt.zero_grad()
    loss0.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.parameters())
    opt.step()
    after = params_of(d)
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert changed
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    with torch.no_grad():
        loss1 = cost.discriminator_cost(d(real), d(fake))
    assert loss1.item() < loss0.item()  # a small gradient step lowers J(D)


@pytest.mark.parametrize("name", G_NAMES)
def test_one_generator_step(name):
    g = make_g(name)
    # a fixed critic independent of the architectures under test: D(x) = <w, x>
    w = torch.randn(math.prod(shape_for(name)), generator=torch.Generator().manual_seed(9))
    d = nn.Sequential(nn.Flatten(), nn.Linear(w.numel(), 1, bias=False), nn.Flatten(0))
    with torch.no_grad():
        d[1].weight.copy_(w[None])
    d.requires_grad_(False)
    cost = COSTS.build("non_saturating", {})
    z = z_batch()
    opt = torch.optim.SGD(g.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in g.parameters()]
    loss0 = cost.generator_cost(d(g(z)))
    opt.zero_grad()
    loss0.backward()
    opt.step()
    assert all(p.grad is None for p in d.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())
    moved = [not torch.equal(b, p.detach()) for b, p in zip(before, g.parameters(), strict=True)]
    assert any(moved)
    assert all(torch.isfinite(p).all() for p in g.parameters())
    with torch.no_grad():
        assert cost.generator_cost(d(g(z))).item() < loss0.item()


# -- conditional players -----------------------------------------------------------------------

@pytest.mark.parametrize("name", G_NAMES)
def test_conditional_generator(name):
    g = make_g(name, n_classes=3).eval()
    z = z_batch()
    with pytest.raises(ValueError, match="label"):
        g(z)
    with pytest.raises(ValueError):
        g(z, torch.zeros(N - 1, dtype=torch.long))
    x0 = run(g, z, torch.zeros(N, dtype=torch.long))
    x1 = run(g, z, torch.ones(N, dtype=torch.long))
    assert x0.shape == (N, *shape_for(name))
    assert (x0 - x1).flatten(1).abs().sum(1).min().item() > 1e-6  # every example depends on its label
    # the label of one example does not change the others (unless the model is batch coupled)
    y = torch.zeros(N, dtype=torch.long)
    y[0] = 2
    x2 = run(g, z, y)
    assert torch.equal(x2[1:], x0[1:]) and not torch.equal(x2[0], x0[0])


@pytest.mark.parametrize("name", D_NAMES)
def test_conditional_discriminator(name):
    d = make_d(name, n_classes=3)
    x = x_batch(name)
    with pytest.raises(ValueError, match="label"):
        d(x)
    out0 = d(x, torch.zeros(N, dtype=torch.long))
    out2 = d(x, torch.full((N,), 2, dtype=torch.long))
    assert out0.shape == (N,)
    assert (out0 - out2).abs().min().item() > 1e-6


# -- MLP discriminator options -----------------------------------------------------------------

def test_plain_discriminator_is_per_example():
    d = make_d("mlp")
    assert not getattr(d, "batch_coupled", False)
    x = x_batch("mlp")
    x2 = x.clone()
    x2[1:] = x_batch("mlp", n=N - 1, seed=11) * 5
    out, out2 = d(x), d(x2)
    assert out[0].item() == pytest.approx(out2[0].item(), abs=1e-6)
    assert torch.allclose(d(x[:1]), out[:1], atol=1e-6)


def test_minibatch_std_couples_the_batch():
    d = make_d("mlp", minibatch_std=True)
    assert d.batch_coupled is True
    x = x_batch("mlp")
    x2 = x.clone()
    x2[1:] = x_batch("mlp", n=N - 1, seed=11) * 5
    out, out2 = d(x), d(x2)
    assert out.shape == (N,)
    assert abs(out[0].item() - out2[0].item()) > 1e-4


def test_pacgan_discriminator():
    d = make_d("mlp", pack=4)
    assert d.batch_coupled is True
    x = x_batch("mlp", n=12)
    out = d(x)
    assert out.shape == (12,)
    packs = out.view(4, 3)  # pack j holds examples j, j + 3, j + 6, j + 9
    assert torch.equal(packs, packs[:1].expand(4, 3))  # one logit per pack, for each member
    assert len(set(packs[0].tolist())) == 3
    # a pack's logit depends on all its members and only on them
    x2 = x.clone()
    x2[7] += 1.0  # a member of pack 1
    out2 = d(x2).view(4, 3)
    assert torch.equal(out2[:, 0], packs[:, 0]) and torch.equal(out2[:, 2], packs[:, 2])
    assert not torch.equal(out2[:, 1], packs[:, 1])
    # the pack's input is its members' features side by side, in member order
    feats = x.flatten(1)
    pack1 = torch.cat([feats[1], feats[4], feats[7], feats[10]])
    torch.testing.assert_close(d.head(d.body(pack1[None])).squeeze(), out[1], rtol=0, atol=1e-6)
    for n in (6, 13):
        with pytest.raises(ValueError, match="pack"):
            d(x_batch("mlp", n=n))


@pytest.mark.parametrize("options", [{"pack": 4}, {"minibatch_std": True}, {"pack": 2, "minibatch_std": True}],
                         ids=["pack", "minibatch_std", "both"])
def test_coupled_discriminator_on_a_rank_slice_equals_the_global_batch(options):
    """Each of W processes takes the slice [rank::W] of the global batch (data/loader.py). PacGAN packs
    and minibatch-std groups are strided, so a slice forms exactly the global batch's packs and
    groups: D's logits on the slices are the global logits' slices, and N processes can follow the
    1-process trajectory."""
    d = make_d("mlp", **options)
    x = x_batch("mlp", n=32)
    out = d(x)
    for world in (2, 4):
        for rank in range(world):
            torch.testing.assert_close(d(x[rank::world]), out[rank::world], rtol=0, atol=1e-6)


def test_pacgan_conditional_discriminator():
    d = make_d("mlp", pack=2, n_classes=3)
    x = x_batch("mlp")
    out = d(x, torch.zeros(N, dtype=torch.long))
    assert out.shape == (N,) and torch.equal(out[: N // 2], out[N // 2 :])
    # members share the label of the pack's first member (examples 0 .. N/2 - 1)
    y = torch.arange(N) % 3
    y2 = y.clone()
    y2[N // 2 :] = (y2[N // 2 :] + 1) % 3  # change only the second members' labels
    torch.testing.assert_close(d(x, y), d(x, y2), rtol=0, atol=0)


def test_spectral_norm_bounds_the_largest_singular_value():
    d = make_d("mlp", spectral_norm=True, widths=[16, 16]).train()
    x = x_batch("mlp", n=16)
    for _ in range(30):
        d(x)
    linears = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3
    for m in linears:
        sigma = torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=1e-2)
    # without spectral norm the default init is not normalized
    plain = make_d("mlp", widths=[16, 16])
    sig = [torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() for m in plain.modules()
           if isinstance(m, nn.Linear)]
    assert max(abs(s - 1) for s in sig) > 0.05
