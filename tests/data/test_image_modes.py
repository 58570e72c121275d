"""Every Pillow mode an image file can open in is decoded to the value its bit depth means, or
refused by name (issue 11, "Silent corruption": a 16-bit PNG among 8-bit ones decoded to a constant).

Expected values are computed here from the raw stored numbers, not with the decoder's helpers:
8-bit v -> v / 127.5 - 1; 16-bit v -> 2 v / 65535 - 1; alpha composited on white,
c * a + (1 - a) with c, a in [0, 1]; CMYK -> (1 - C)(1 - K) per channel; luma 0.299 R + 0.587 G + 0.114 B.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import DATASETS, images
from ganforge.errors import DataError

RNG = np.random.default_rng(11)


def load(name: str, **params):
    return DATASETS.get(name)(**DATASETS.validate(name, params, "data"))


def save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def from_array(a: np.ndarray) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Image.fromarray(a)


def to_unit(ds_examples: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) in [0, 1], float64."""
    return ((ds_examples.double() + 1) / 2).permute(0, 2, 3, 1).numpy()


def test_sixteen_bit_png_among_eight_bit_pngs_keeps_its_values(tmp_path):
    eight = RNG.integers(0, 256, (5, 6), dtype=np.uint8)
    sixteen = RNG.integers(0, 65536, (5, 6)).astype(np.uint16)
    sixteen[0, 0], sixteen[0, 1] = 0, 65535
    save(from_array(eight), tmp_path / "a.png")
    save(from_array(sixteen), tmp_path / "b.png")
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "I;16"
    ds = load("image_folder", path=str(tmp_path))
    assert ds.shape == (1, 5, 6)
    x = ds.examples.double()
    np.testing.assert_allclose(x[0, 0].numpy(), eight / 127.5 - 1, atol=1e-6)
    np.testing.assert_allclose(x[1, 0].numpy(), 2 * sixteen.astype(np.float64) / 65535 - 1, atol=1e-6)
    assert x[1].min() == -1 and x[1].max() == 1  # not the constant image of b6bd8ea


@pytest.mark.parametrize("order", [">u2", "<u2"])
def test_sixteen_bit_big_and_little_endian_tiff(order, tmp_path):
    v = RNG.integers(0, 65536, (4, 4)).astype(order)
    path = save(from_array(v), tmp_path / "x.tif")
    with Image.open(path) as im:
        assert im.mode == ("I;16B" if order == ">u2" else "I;16")
    arr, c = images._decode(path, None, None)
    assert c == 1 and arr.dtype == np.float32
    np.testing.assert_allclose(arr[..., 0], v.astype(np.float64) / 65535, atol=1e-7)


def test_mode_i_is_read_as_sixteen_bit_and_refused_outside(tmp_path):
    v = RNG.integers(0, 65536, (3, 3)).astype(np.int32)
    path = save(from_array(v), tmp_path / "i.tif")
    with Image.open(path) as im:
        assert im.mode == "I"
    arr, _ = images._decode(path, None, None)
    np.testing.assert_allclose(arr[..., 0], v / 65535, atol=1e-7)
    v[1, 1] = 70000
    bad = save(from_array(v), tmp_path / "big.tif")
    with pytest.raises(DataError, match=r"big\.tif: image mode I .*\[\d+, 70000\]"):
        images._decode(bad, None, None)


def test_float_image_in_unit_range_and_refused_outside(tmp_path):
    v = RNG.random((3, 5)).astype(np.float32)
    arr, _ = images._decode(save(from_array(v), tmp_path / "f.tif"), None, None)
    np.testing.assert_array_equal(arr[..., 0], v)
    v[0, 0] = 3.5
    with pytest.raises(DataError, match=r"g\.tif: image mode F .*3\.5"):
        images._decode(save(from_array(v), tmp_path / "g.tif"), None, None)


def test_one_bit_png(tmp_path):
    bits = RNG.random((6, 6)) < 0.5
    save(from_array(bits), tmp_path / "bits.png")
    with Image.open(tmp_path / "bits.png") as im:
        assert im.mode == "1"
    ds = load("image_folder", path=str(tmp_path))
    np.testing.assert_array_equal(ds.examples[0, 0].numpy(), np.where(bits, 1.0, -1.0))


def palette_image(transparent: int | None) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    colours = RNG.integers(0, 256, (4, 3), dtype=np.uint8)
    index = RNG.integers(0, 4, (5, 5), dtype=np.uint8)
    index[0, 0], index[0, 1] = 0, 1
    img = Image.frombytes("P", (5, 5), index.tobytes())
    img.putpalette(colours.flatten().tolist())
    if transparent is not None:
        img.info["transparency"] = transparent
    return img, colours, index


def test_palette_png_without_transparency(tmp_path):
    img, colours, index = palette_image(None)
    save(img, tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P" and "transparency" not in im.info
    ds = load("image_folder", path=str(tmp_path))
    assert ds.shape == (3, 5, 5)
    np.testing.assert_allclose(to_unit(ds.examples)[0], colours[index] / 255.0, atol=1e-6)


def test_palette_png_with_a_transparent_entry_is_composited_on_white(tmp_path):
    img, colours, index = palette_image(1)
    save(img, tmp_path / "p.png", transparency=1)
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P" and im.info.get("transparency") == 1
    ds = load("image_folder", path=str(tmp_path))
    want = np.where((index == 1)[..., None], 1.0, colours[index] / 255.0)
    np.testing.assert_allclose(to_unit(ds.examples)[0], want, atol=1e-6)


def test_rgba_and_la_are_composited_on_white(tmp_path):
    rgba = RNG.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
    la = RNG.integers(0, 256, (4, 5, 2), dtype=np.uint8)
    save(from_array(rgba), tmp_path / "rgba" / "a.png")
    save(Image.frombytes("LA", (5, 4), la.tobytes()), tmp_path / "la" / "a.png")
    with Image.open(tmp_path / "la" / "a.png") as im:
        assert im.mode == "LA"
    a = rgba[..., 3:] / 255.0
    want_rgba = rgba[..., :3] / 255.0 * a + (1 - a)
    ds = load("image_folder", path=str(tmp_path / "rgba"))
    assert ds.shape == (3, 4, 5)
    np.testing.assert_allclose(to_unit(ds.examples)[0], want_rgba, atol=1e-6)
    assert np.allclose(to_unit(ds.examples)[0, 0, 0], 1.0)  # fully transparent -> white
    a = la[..., 1:] / 255.0
    ds = load("image_folder", path=str(tmp_path / "la"))
    assert ds.shape == (1, 4, 5)
    np.testing.assert_allclose(to_unit(ds.examples)[0], la[..., :1] / 255.0 * a + (1 - a), atol=1e-6)
    # channels: 1 of an RGBA image is the luma of the composited colours
    ds = load("image_folder", path=str(tmp_path / "rgba"), channels=1)
    np.testing.assert_allclose(to_unit(ds.examples)[0, ..., 0], want_rgba @ np.array([0.299, 0.587, 0.114]),
                               atol=1e-6)


def test_cmyk(tmp_path):
    cmyk = RNG.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    img = Image.frombytes("CMYK", (4, 3), cmyk.tobytes())
    arr, c = images._decode(save(img, tmp_path / "c.tif"), None, None)
    assert c == 3 and arr.dtype == np.uint8
    k = cmyk[..., 3:].astype(np.float64)
    want = (255 - cmyk[..., :3]) * (255 - k) / 255
    assert np.abs(arr - want).max() <= 0.5 + 1e-9
    # a CMYK JPEG in an image folder (lossy: compared loosely)
    save(img, tmp_path / "jpeg" / "c.jpg", quality=100)
    with Image.open(tmp_path / "jpeg" / "c.jpg") as im:
        assert im.mode == "CMYK"
    ds = load("image_folder", path=str(tmp_path / "jpeg"))
    assert ds.shape == (3, 3, 4)
    assert np.abs(to_unit(ds.examples)[0] * 255 - want).max() < 12


def test_sixteen_bit_with_channels_and_resolution(tmp_path):
    v = RNG.integers(0, 65536, (8, 6)).astype(np.uint16)
    save(from_array(v), tmp_path / "a.png")
    ds = load("image_folder", path=str(tmp_path), channels=3, resolution=4)
    assert ds.shape == (3, 4, 4)
    f = from_array((v / 65535).astype(np.float32))
    want = np.clip(np.asarray(f.resize((4, 4), Image.Resampling.BICUBIC, box=(0, 1, 6, 7))), 0, 1)
    for ch in range(3):
        np.testing.assert_allclose(to_unit(ds.examples)[0, ..., ch], want, atol=1e-6)


def test_unsupported_mode_is_refused_by_name(tmp_path):
    lab = Image.new("LAB", (3, 3))
    path = save(lab, tmp_path / "folder" / "lab.png", format="TIFF")  # a TIFF under a .png name
    with pytest.raises(DataError, match=r"lab\.png: image mode LAB \(CIE L\*a\*b\*\) is not supported"):
        load("image_folder", path=str(tmp_path / "folder"))
    with pytest.raises(DataError, match=r"hsv: image mode HSV"):
        images.image_pixels(Image.new("HSV", (2, 2)), "hsv")
    # with skip_corrupt the file is skipped like an unreadable one
    save(from_array(np.zeros((3, 3), np.uint8)), tmp_path / "folder" / "ok.png")
    ds = load("image_folder", path=str(tmp_path / "folder"), skip_corrupt=True)
    assert len(ds) == 1 and ds.skipped_files == (str(path),)


def test_opaque_rgba_reads_exactly_as_rgb(tmp_path):
    """Composite on white changes nothing where alpha is 255 everywhere: an opaque RGBA folder gives
    the same examples as the RGB one, bit for bit, resized or not (the 8-bit path of b6bd8ea)."""
    rgb = RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    save(from_array(rgb), tmp_path / "rgb" / "a.png")
    save(from_array(np.concatenate([rgb, np.full((9, 7, 1), 255, np.uint8)], -1)), tmp_path / "rgba" / "a.png")
    for kw in ({}, {"resolution": 4}, {"channels": 1, "resolution": 5}):
        a = load("image_folder", path=str(tmp_path / "rgb"), **kw).examples
        b = load("image_folder", path=str(tmp_path / "rgba"), **kw).examples
        assert torch.equal(a, b), kw


def test_uint16_arrays(tmp_path):
    v = RNG.integers(0, 65536, (3, 4, 5)).astype(np.uint16)
    np.save(tmp_path / "x.npy", v)
    ds = load("image_array", path=str(tmp_path / "x.npy"), layout="NHW")
    np.testing.assert_allclose(ds.examples[:, 0].double().numpy(), 2 * v.astype(np.float64) / 65535 - 1, atol=1e-6)
    with pytest.raises(DataError, match="uint16 ones as 0..65535"):
        load("image_array", path=str(tmp_path / "x.npy"), layout="NHW", value_range=[0, 1000])
