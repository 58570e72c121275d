"""Using a trained image generator: PNG grids, sample folders, .npz, --class, interpolation, traversals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.sampling import image_grid, slerp

SMALL = ["train.steps=4", "train.batch_size=16", "train.progress=false", "train.threads=1",
         "train.checkpoint_every=4", "train.log_every=2", "model.generator.ngf=8", "model.discriminator.ndf=8"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    ganforge.train(ganforge.load_config("digits-dcgan", SMALL), out)
    return out


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cgan"
    ganforge.train(ganforge.load_config("digits-dcgan", SMALL + ["data.class_conditional=true"]), out)
    return out


def test_png_grid_has_the_right_size(digits_run, tmp_path):
    r = cli("sample", digits_run, "--n", 16, "--out", tmp_path / "g.png", "--seed", 3)
    assert r.exit_code == 0, r.output
    img = Image.open(tmp_path / "g.png")
    # 4 x 4 digits of 8 px with 2 px padding, upscaled 8x
    assert img.size == ((4 * 10 + 2) * 8, (4 * 10 + 2) * 8)


def test_same_seed_same_images_and_npz_holds_samples(digits_run, tmp_path):
    for name in ("a", "b"):
        assert cli("sample", digits_run, "--n", 10, "--out", tmp_path / f"{name}.npz", "--seed", 1).exit_code == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["samples"].shape == (10, 1, 8, 8) and np.array_equal(a["samples"], b["samples"])
    assert a["samples"].min() >= -1 and a["samples"].max() <= 1


def test_folder_of_pngs(digits_run, tmp_path):
    r = cli("sample", digits_run, "--n", 5, "--out", str(tmp_path / "imgs") + "/")
    assert r.exit_code == 0, r.output
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 5 and Image.open(files[0]).size == (8, 8)


def test_class_conditional_rows_and_class_option(cgan_run, tmp_path):
    r = cli("sample", cgan_run, "--n", 20, "--out", tmp_path / "rows.png")
    assert r.exit_code == 0 and json.loads(r.output)["shape"] == [20, 1, 8, 8]  # 2 per class, a row per class
    r = cli("sample", cgan_run, "--n", 6, "--out", tmp_path / "k.npz", "--class", 7)
    assert r.exit_code == 0 and set(np.load(tmp_path / "k.npz")["labels"].tolist()) == {7}
    r = cli("sample", cgan_run, "--n", 6, "--out", tmp_path / "k.npz", "--class", 10)
    assert r.exit_code == 2 and "0..9" in r.output


def test_bad_sample_arguments(digits_run, tmp_path):
    assert cli("sample", digits_run, "--n", 4, "--out", tmp_path / "x.jpg").exit_code == 2
    r = cli("sample", digits_run, "--n", 4, "--out", tmp_path / "x.npz", "--class", 1)
    assert r.exit_code == 2 and "not conditional" in r.output


def test_interpolation_grid(digits_run, tmp_path):
    r = cli("interpolate", digits_run, "--out", tmp_path / "i.png", "--steps", 5, "--paths", 3)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "i.png").size == ((5 * 10 + 2) * 8, (3 * 10 + 2) * 8)


def test_slerp_keeps_norm_for_equal_norm_endpoints():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)
    path = slerp(z0, z1, torch.linspace(0, 1, 7))
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=2), z0.norm(dim=1).expand(7, 4))


def test_image_grid_layout():
    x = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 1.0, 0.0)])
    g = image_grid(x, nrow=2, pad=1)
    assert g.shape == (2 * 3 + 1, 2 * 3 + 1, 1)
    assert g[1, 1, 0] == 0 and g[1, 4, 0] == 255 and g[4, 1, 0] == 128


def test_infogan_traversal_varies_only_the_code(tmp_path):
    over = SMALL + ["game.prior={name: infogan, latent_dim: 16, categorical: [3], continuous: 1}",
                    "model.discriminator.info_categorical=[3]", "model.discriminator.info_continuous=1",
                    "game.auxiliary=[{name: infogan}]"]
    ganforge.train(ganforge.load_config("digits-dcgan", over), tmp_path / "info")
    r = cli("traverse", tmp_path / "info", "--out", tmp_path / "t", "--steps", 4, "--rows", 2)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["traversal_categorical0.png",
                                                                  "traversal_continuous0.png"]
    G = ganforge.load_generator(tmp_path / "info")
    z = G.prior.sample(2, torch.Generator().manual_seed(0)).repeat_interleave(3, dim=0)
    z2 = G.prior.with_codes(z, categorical={0: torch.arange(3).repeat(2)})
    parts, parts2 = G.prior.split(z), G.prior.split(z2)
    assert torch.equal(parts.noise, parts2.noise) and torch.equal(parts.continuous, parts2.continuous)
    assert parts2.categorical[0].tolist() == [0, 1, 2, 0, 1, 2]
    r = cli("traverse", tmp_path / "info", "--out", tmp_path / "t2")
    assert r.exit_code == 0
