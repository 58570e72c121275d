"""Image datasets: every source loads with the right shape, range and labels; resizing and cropping;
every bad input gives a DataError naming the file (and the index, for arrays)."""

from __future__ import annotations

import gzip
import io
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.components import config_from_dict
from ganforge.data import DATASETS, images
from ganforge.errors import ConfigError, DataError

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def load(name: str, **params):
    """Build a dataset as the registry does, but without its wrapping of errors in ConfigError,
    so that the DataError each source raises is what the test sees."""
    return DATASETS.get(name)(**DATASETS.validate(name, params, "data"))


def png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def grey(value: int, h: int = 6, w: int = 6) -> np.ndarray:
    return np.full((h, w), value, dtype=np.uint8)


def check_range(ds) -> None:
    x = ds.examples
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


# -- image folders -----------------------------------------------------------------------------

def test_image_folder_with_labels_from_subfolders(tmp_path):
    png(tmp_path / "cat" / "a.png", grey(0))
    png(tmp_path / "cat" / "deep" / "b.png", grey(255))  # recursive; the class is the first level
    png(tmp_path / "dog" / "c.jpg", grey(128))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = load("image_folder", path=str(tmp_path), labels_from_subfolders=True, class_conditional=True, hflip=True)
    assert len(ds) == 3 and ds.shape == (1, 6, 6) and ds.n_classes == 2
    assert ds.class_names == ["cat", "dog"]
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 0, 1]
    assert ds.hflip is True and ds.value_range == (-1.0, 1.0)
    check_range(ds)
    assert ds.examples[0].eq(-1).all() and ds.examples[1].eq(1).all()  # 0 -> -1, 255 -> 1
    assert ds.examples[2].mean().item() == pytest.approx(128 / 127.5 - 1, abs=0.02)  # JPEG is lossy
    # labels are kept but not exposed unless class_conditional
    plain = load("image_folder", path=str(tmp_path), labels_from_subfolders=True)
    assert plain.labels is None and plain.n_classes == 0 and plain.targets.tolist() == [0, 0, 1]


def test_centre_crop_and_resize(tmp_path):
    img = np.zeros((6, 20), dtype=np.uint8)
    img[:, 3:17] = 255  # black only at the sides, outside the centred 6x6 square and the filter's reach
    png(tmp_path / "wide.png", img)
    crop = load("image_folder", path=str(tmp_path), resolution=6)
    assert crop.shape == (1, 6, 6) and crop.examples.eq(1).all()
    down = load("image_folder", path=str(tmp_path), resolution=3)
    assert down.shape == (1, 3, 3) and down.examples.eq(1).all()
    up = load("image_folder", path=str(tmp_path), resolution=16)
    assert up.shape == (1, 16, 16) and up.examples.eq(1).all()


def test_channels_conversion(tmp_path):
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    png(tmp_path / "red.png", rgb)
    colour = load("image_folder", path=str(tmp_path))
    assert colour.shape == (3, 4, 4)
    assert colour.examples[0, 0].eq(1).all() and colour.examples[0, 1:].eq(-1).all()
    luma = load("image_folder", path=str(tmp_path), channels=1)
    assert luma.shape == (1, 4, 4)
    assert luma.examples.unique().tolist() == pytest.approx([76 / 127.5 - 1])  # 255 * 0.299
    png(tmp_path / "g" / "grey.png", grey(255, 4, 4))
    both = load("image_folder", path=str(tmp_path / "g"), channels=3)
    assert both.shape == (3, 4, 4) and both.examples.eq(1).all()


def test_image_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"{empty}: no images found"):
        load("image_folder", path=str(empty))
    with pytest.raises(DataError, match="not found"):
        load("image_folder", path=str(tmp_path / "missing"))
    mixed = tmp_path / "mixed"
    png(mixed / "a.png", grey(0, 6, 6))
    png(mixed / "b.png", grey(0, 5, 7))
    with pytest.raises(DataError, match=r"b\.png: image of 7x5 pixels.*data\.resolution"):
        load("image_folder", path=str(mixed))
    assert load("image_folder", path=str(mixed), resolution=4).shape == (1, 4, 4)
    loose = tmp_path / "loose"
    png(loose / "cls" / "a.png", grey(0))
    png(loose / "b.png", grey(0))
    with pytest.raises(DataError, match=r"b\.png: not inside a class subfolder"):
        load("image_folder", path=str(loose), labels_from_subfolders=True)
    with pytest.raises(DataError, match="no labels"):
        load("image_folder", path=str(mixed), resolution=4, class_conditional=True)


def _corrupt_folder(root: Path) -> list[Path]:
    png(root / "0_good.png", grey(10))
    png(root / "3_good.png", grey(20))
    (root / "1_garbage.png").write_bytes(b"this is not an image at all")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(buf, "PNG")
    (root / "2_truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    (root / "2b_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return [root / "1_garbage.png", root / "2_truncated.png", root / "2b_truncated.jpg"]


def test_corrupt_images_raise_or_are_skipped_and_logged(tmp_path, caplog):
    folder = tmp_path / "mixed"
    bad = _corrupt_folder(folder)
    for f in bad:  # each damaged file on its own is named
        solo = tmp_path / f"solo_{f.stem}"
        solo.mkdir()
        (solo / f.name).write_bytes(f.read_bytes())
        with pytest.raises(DataError, match=rf"{solo / f.name}: unreadable or damaged image.*skip_corrupt"):
            load("image_folder", path=str(solo), resolution=6)
    with pytest.raises(DataError, match=r"1_garbage\.png: unreadable"):
        load("image_folder", path=str(folder), resolution=6)
    with caplog.at_level(logging.WARNING, logger="ganforge.data.images"):
        ds = load("image_folder", path=str(folder), resolution=6, skip_corrupt=True)
    assert len(ds) == 2
    assert ((ds.examples[:, 0, 0, 0] + 1) * 127.5).round().tolist() == [10, 20]  # the good ones, in order
    assert sorted(Path(p).name for p in ds.skipped_files) == sorted(f.name for f in bad)
    assert "skipped 3 unreadable image(s)" in caplog.text
    assert all(f.name in caplog.text for f in bad)


def test_all_corrupt_with_skip_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="none of its 1 image files could be read"):
        load("image_folder", path=str(tmp_path), skip_corrupt=True)


# -- array files -------------------------------------------------------------------------------

def test_image_array_layouts_agree(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", nhwc)
    np.save(tmp_path / "nchw.npy", nhwc.transpose(0, 3, 1, 2))
    a = load("image_array", path=str(tmp_path / "nhwc.npy"), layout="NHWC")
    b = load("image_array", path=str(tmp_path / "nchw.npy"), layout="NCHW")
    assert a.shape == (3, 4, 4) and torch.equal(a.examples, b.examples)
    assert torch.equal(a.examples, torch.from_numpy(nhwc).permute(0, 3, 1, 2).float() / 127.5 - 1)
    np.save(tmp_path / "nhw.npy", nhwc[..., 0].astype(np.float32) / 255)
    c = load("image_array", path=str(tmp_path / "nhw.npy"), layout="NHW")
    assert c.shape == (1, 4, 4) and torch.allclose(c.examples[:, 0], a.examples[:, 0], atol=1e-6)


def test_image_array_npz_with_labels_and_value_range(tmp_path):
    x = np.linspace(0, 16, 6 * 8 * 8).reshape(6, 8, 8)
    y = np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "d.npz", pixels=x, target=y)
    ds = load("image_array", path=str(tmp_path / "d.npz"), layout="NHW", images_key="pixels",
              labels_key="target", value_range=[0, 16], class_conditional=True, resolution=16)
    assert ds.shape == (1, 16, 16) and ds.n_classes == 3 and ds.labels.tolist() == y.tolist()
    check_range(ds)
    assert ds.examples.min().item() == pytest.approx(-1, abs=0.01) and ds.examples.max().item() == pytest.approx(1, abs=0.01)
    np.save(tmp_path / "x.npy", (x / 16).astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    ds = load("image_array", path=str(tmp_path / "x.npy"), layout="NHW", labels_path=str(tmp_path / "y.npy"),
              n_classes=5, class_conditional=True)
    assert ds.n_classes == 5 and ds.shape == (1, 8, 8)


def test_subset_and_limit(tmp_path):
    x = np.arange(10, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2)  # image i has value i
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(10) % 3)
    path, lab = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    ds = load("image_array", path=path, layout="NHW", labels_path=lab, subset=[4, 9], limit=3, class_conditional=True)
    assert ((ds.examples[:, 0, 0, 0] + 1) * 127.5).round().tolist() == [4, 5, 6]
    assert ds.labels.tolist() == [1, 2, 0] and ds.n_classes == 3  # classes counted over the whole file
    with pytest.raises(DataError, match=r"subset \[4, 11\).*<= 10"):
        load("image_array", path=path, layout="NHW", subset=[4, 11])
    with pytest.raises(DataError, match="subset"):
        load("image_array", path=path, layout="NHW", subset=[5, 5])


@pytest.mark.parametrize("array,layout,match", [
    (np.zeros((3, 4, 4, 2), np.uint8), "NHWC", r"shape \(3, 4, 4, 2\), expected \(N, H, W, C\) with C = 1 or 3"),
    (np.zeros((3, 4, 4), np.uint8), "NCHW", r"shape \(3, 4, 4\), expected \(N, C, H, W\)"),
    (np.zeros((0, 4, 4), np.uint8), "NHW", "holds no images"),
    (np.zeros((3, 4, 4), np.int32), "NHW", "dtype int32, expected uint8, uint16 or float"),
])
def test_image_array_wrong_shape_or_dtype(tmp_path, array, layout, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=rf"{tmp_path / 'bad.npy'}: .*{match}"):
        load("image_array", path=str(tmp_path / "bad.npy"), layout=layout)


def test_image_array_bad_values_name_the_index(tmp_path):
    x = np.full((6, 4, 4), 0.5, dtype=np.float32)
    x[4, 1, 1] = 1.5
    np.save(tmp_path / "range.npy", x)
    with pytest.raises(DataError, match=r"range\.npy: image at index 4 has values in \[0\.5, 1\.5\].*\[0, 1\]"):
        load("image_array", path=str(tmp_path / "range.npy"), layout="NHW")
    x[4, 1, 1] = 0.5
    x[2, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(DataError, match=r"nan\.npy: image at index 2 has NaN"):
        load("image_array", path=str(tmp_path / "nan.npy"), layout="NHW")


@pytest.mark.parametrize("labels,params,match", [
    (np.array([0, 1, np.nan, 1.0]), {}, r"label at index 2 is nan"),
    (np.array([0, 1, 2.5, 1.0]), {}, r"label at index 2 is 2\.5"),
    (np.array([0, 1, 3, 1]), {"n_classes": 3}, r"label at index 2 is 3, expected an integer in \[0, 3\)"),
    (np.array([0, -1, 1, 1]), {}, r"label at index 1 is -1"),
    (np.array([0, 1, 1]), {}, r"3 labels for 4 images"),
    (np.array([[0], [1], [1], [1]]), {}, r"labels have shape \(4, 1\), expected \(4,\)"),
])
def test_bad_labels_name_the_file_and_index(tmp_path, labels, params, match):
    np.save(tmp_path / "x.npy", np.zeros((4, 4, 4), np.uint8))
    np.save(tmp_path / "y.npy", labels)
    with pytest.raises(DataError, match=rf"y\.npy.*{match}"):
        load("image_array", path=str(tmp_path / "x.npy"), layout="NHW", labels_path=str(tmp_path / "y.npy"), **params)


def test_bad_array_files(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"a\.npz: no array 'images'; the archive holds \['x'\]"):
        load("image_array", path=str(tmp_path / "a.npz"), layout="NHW")
    with pytest.raises(DataError, match=r"a\.npz: no array 'y'"):
        load("image_array", path=str(tmp_path / "a.npz"), layout="NHW", images_key="x", labels_key="y")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"junk\.npy: not a readable \.npy"):
        load("image_array", path=str(tmp_path / "junk.npy"), layout="NHW")
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj\.npy: not a readable \.npy"):
        load("image_array", path=str(tmp_path / "obj.npy"), layout="NHW")
    np.save(tmp_path / "full.npy", np.zeros((50, 8, 8), np.uint8))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:1000])
    with pytest.raises(DataError, match=r"cut\.npy: not a readable \.npy"):
        load("image_array", path=str(tmp_path / "cut.npy"), layout="NHW")
    np.savez_compressed(tmp_path / "full.npz", images=np.random.default_rng(0).random((50, 8, 8)))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:2000])
    with pytest.raises(DataError, match=r"cut\.npz: not a readable \.npz"):
        load("image_array", path=str(tmp_path / "cut.npz"), layout="NHW")
    with pytest.raises(DataError, match=r"x\.png: unsupported array file type"):
        load("image_array", path=str(tmp_path / "x.png"), layout="NHW")
    with pytest.raises(DataError, match=r"missing\.npy: array file not found"):
        load("image_array", path=str(tmp_path / "missing.npy"), layout="NHW")


def test_layout_is_required():
    with pytest.raises(ConfigError, match=r"data\.layout: required"):
        config_from_dict({"data": {"name": "image_array", "path": "x.npy"}})


# -- IDX ---------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def write_idx(tmp_path: Path, n: int = 5, gz: bool = True) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).integers(0, 256, (n, 3, 4), dtype=np.uint8)
    y = (np.arange(n) % 4).astype(np.uint8)
    suffix = ".gz" if gz else ""
    xi, yi = tmp_path / f"img-idx3-ubyte{suffix}", tmp_path / f"lab-idx1-ubyte{suffix}"
    write = gzip.compress if gz else (lambda b: b)
    xi.write_bytes(write(idx_bytes(x, 0x803)))
    yi.write_bytes(write(idx_bytes(y, 0x801)))
    return xi, yi, x, y


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    xi, yi, x, y = write_idx(tmp_path, gz=gz)
    ds = load("idx", images=str(xi), labels=str(yi), class_conditional=True)
    assert ds.shape == (1, 3, 4) and ds.n_classes == 4 and ds.labels.tolist() == y.tolist()
    assert torch.equal(ds.examples[:, 0], torch.from_numpy(x).float() / 127.5 - 1)


def test_idx_errors(tmp_path):
    xi, yi, x, y = write_idx(tmp_path, gz=False)
    with pytest.raises(DataError, match=rf"{yi}: magic number 0x00000801, expected 0x00000803"):
        load("idx", images=str(yi))
    with pytest.raises(DataError, match=rf"{xi}: magic number 0x00000803, expected 0x00000801"):
        load("idx", images=str(xi), labels=str(xi))
    raw = xi.read_bytes()
    (tmp_path / "short").write_bytes(raw[:-7])
    with pytest.raises(DataError, match=r"short: 69 bytes, expected 76 for dimensions \[5, 3, 4\] \(the file truncated\)"):
        load("idx", images=str(tmp_path / "short"))
    (tmp_path / "long").write_bytes(raw + b"\0")
    with pytest.raises(DataError, match=r"long: .*extra bytes"):
        load("idx", images=str(tmp_path / "long"))
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(DataError, match=r"tiny: 2 bytes, too short"):
        load("idx", images=str(tmp_path / "tiny"))
    (tmp_path / "few").write_bytes(idx_bytes(y[:3], 0x801))
    with pytest.raises(DataError, match=r"few: 3 labels for 5 images"):
        load("idx", images=str(xi), labels=str(tmp_path / "few"))
    (tmp_path / "bad.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(DataError, match=r"bad\.gz: damaged gzip file"):
        load("idx", images=str(tmp_path / "bad.gz"))


def test_mnist_directory_errors(tmp_path):
    xi, yi, _, _ = write_idx(tmp_path, n=5)
    xi.rename(tmp_path / "t10k-images-idx3-ubyte.gz")
    yi.rename(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\[\.gz\]: not found.*set data\.split=test"):
        load("mnist", path=str(tmp_path))
    assert len(load("mnist", path=str(tmp_path), split="test")) == 5
    with pytest.raises(DataError, match="not a directory"):
        load("mnist", path=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"data\.path: required by dataset 'mnist'"):
        config_from_dict({"data": {"name": "mnist"}})


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="shared MNIST test files absent")
def test_real_mnist_test_set():
    ds = load("mnist", path=str(MNIST), split="test", class_conditional=True)
    assert ds.examples.shape == (10_000, 1, 28, 28) and ds.n_classes == 10
    check_range(ds)
    assert ds.examples.min() == -1 and ds.examples.max() == 1
    hist = torch.bincount(ds.labels, minlength=10)
    assert hist.sum().item() == 10_000 and hist.min().item() > 800  # every digit present
    held_out = load("mnist", path=str(MNIST), split="test", subset=[8000, 10000], class_conditional=True)
    assert len(held_out) == 2000 and torch.equal(held_out.examples, ds.examples[8000:])
    assert torch.equal(held_out.labels, ds.labels[8000:])
    same = load("idx", images=str(MNIST / "t10k-images-idx3-ubyte.gz"), limit=10)
    assert torch.equal(same.examples, ds.examples[:10])


# -- built-in sets -----------------------------------------------------------------------------

def test_digits():
    ds = load("digits", class_conditional=True)
    assert ds.examples.shape == (1797, 1, 8, 8) and ds.n_classes == 10
    assert ds.examples.min() == -1 and ds.examples.max() == 1  # 0..16 -> -1..1
    assert torch.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert load("digits", resolution=16, channels=3).shape == (3, 16, 16)


def test_faces():
    ds = load("faces")
    assert ds.examples.shape == (100, 1, 25, 25) and ds.labels is None and ds.n_classes == 0
    check_range(ds)
    assert load("faces", resolution=32, limit=4).examples.shape == (4, 1, 32, 32)


# -- memory and config -------------------------------------------------------------------------

def test_too_large_for_memory_is_refused(monkeypatch):
    monkeypatch.setattr(images, "available_memory_bytes", lambda: 1_000_000)
    with pytest.raises(DataError, match=r"1797 images of 1x16x16 need .*streaming from disk is not supported"):
        load("digits", resolution=16)
    assert len(load("digits", limit=100)) == 100  # 100 * 64 * 4 bytes fit


def test_common_options_are_validated_by_the_config():
    with pytest.raises(ConfigError, match=r"data\.resolution"):
        config_from_dict({"data": {"name": "digits", "resolution": 0}})
    with pytest.raises(ConfigError, match=r"data\.channels"):
        config_from_dict({"data": {"name": "digits", "channels": 2}})
    with pytest.raises(ConfigError, match=r"data\.colour: unknown key.*class_conditional.*hflip.*resolution"):
        config_from_dict({"data": {"name": "digits", "colour": True}})
    cfg = config_from_dict({"data": {"name": "mnist", "path": "x", "subset": [0, 8000]}})
    assert cfg.data.params["subset"] == [0, 8000]
