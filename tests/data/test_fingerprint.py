"""Dataset.fingerprint() and Dataset.describe(): what a run records of its data, so that it can be
read back without the data and its data recognised wherever it moved (issue 11, points 3 and 5)."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import DATASETS, Dataset

# Pinned: a run directory records these; a change of the fingerprint rule makes every recorded
# fingerprint disagree with its data, so it must be deliberate (and versioned: "ganforge-data-1").
RING_DEFAULT = "809d9bc100ebff6e4b1b37cc15cdc66ebbed8e4797fd80dac4d5abd2540f6b32"
DIGITS_CONDITIONAL_HFLIP = "d9520e17cb1ca6d852bb3c1ee1407e61d31317348f0bf8a88fe1796e169f51bd"


def load(name: str, **params):
    return DATASETS.get(name)(**DATASETS.validate(name, params, "data"))


def folder(root, pixels: np.ndarray):
    for i, img in enumerate(pixels):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            Image.fromarray(img).save(root / f"c{i % 2}" / f"{i}.png")
    return root


PIXELS = np.random.default_rng(0).integers(0, 256, (6, 5, 5), dtype=np.uint8)


def test_same_images_at_two_paths_same_fingerprint_one_pixel_changed_another(tmp_path):
    a = folder(tmp_path / "a", PIXELS)
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    fa = load("image_folder", path=str(a)).fingerprint()
    assert len(fa) == 64 and int(fa, 16) >= 0
    assert load("image_folder", path=str(b)).fingerprint() == fa
    changed = PIXELS.copy()
    changed[3, 2, 4] ^= 1
    assert load("image_folder", path=str(folder(tmp_path / "c", changed))).fingerprint() != fa
    # the same pixels from an array file, in the folder's order (c0/0, c0/2, c0/4, c1/1, ...): the same
    # examples, so the same fingerprint (the order is part of it: it decides the batches)
    order = [0, 2, 4, 1, 3, 5]
    np.save(tmp_path / "x.npy", PIXELS[order])
    assert load("image_array", path=str(tmp_path / "x.npy"), layout="NHW").fingerprint() == fa
    # what changes what the players see changes it: labels, flips, resolution, subset
    labelled = load("image_folder", path=str(a), labels_from_subfolders=True, class_conditional=True)
    others = [labelled.fingerprint(),
              load("image_folder", path=str(a), hflip=True).fingerprint(),
              load("image_folder", path=str(a), resolution=4).fingerprint(),
              load("image_folder", path=str(a), subset=[1, 6]).fingerprint()]
    assert len({fa, *others}) == 5
    np.save(tmp_path / "shuffled.npy", PIXELS)
    assert load("image_array", path=str(tmp_path / "shuffled.npy"), layout="NHW").fingerprint() != fa
    y = np.array([0, 0, 0, 1, 1, 1], dtype=np.int64)
    np.save(tmp_path / "y.npy", y)
    from_arrays = load("image_array", path=str(tmp_path / "x.npy"), layout="NHW", labels_path=str(tmp_path / "y.npy"),
                       class_conditional=True)
    assert from_arrays.fingerprint() == labelled.fingerprint()
    y[0] = 1
    np.save(tmp_path / "y2.npy", y)
    assert load("image_array", path=str(tmp_path / "x.npy"), layout="NHW", labels_path=str(tmp_path / "y2.npy"),
                class_conditional=True).fingerprint() != labelled.fingerprint()


def test_describe_an_image_folder(tmp_path):
    ds = load("image_folder", path=str(folder(tmp_path / "a", PIXELS)), labels_from_subfolders=True,
              class_conditional=True, hflip=True)
    d = ds.describe()
    assert json.loads(json.dumps(d)) == d
    assert d == {"kind": "images", "shape": [1, 5, 5], "n_classes": 2, "class_names": ["c0", "c1"],
                 "value_range": [-1.0, 1.0], "n_examples": 6, "hflip": True, "fingerprint": ds.fingerprint(),
                 "source": str(tmp_path / "a")}
    plain = load("image_folder", path=str(tmp_path / "a"), labels_from_subfolders=True).describe()
    assert plain["n_classes"] == 0 and plain["class_names"] is None  # labels not exposed to the players


def test_digits_pinned():
    ds = load("digits", class_conditional=True, hflip=True)
    assert ds.fingerprint() == DIGITS_CONDITIONAL_HFLIP
    d = ds.describe()
    assert d["class_names"] == [str(i) for i in range(10)] and d["n_examples"] == 1797 and d["shape"] == [1, 8, 8]


@pytest.mark.parametrize(("name", "params", "other"), [
    ("ring", {}, {"radius": 2.0}),
    ("grid", {"n": 3}, {"n": 4}),
    ("gaussian1d", {"mean": 1.5}, {"mean": 1.25}),
    ("mixture1d", {"means": [0, 3], "stds": [1, 2]}, {"means": [0, 3], "stds": [1, 2], "weights": [1, 3]}),
    ("gaussian_mixture", {"centers": [[0, 1, 2]], "stds": 0.5}, {"centers": [[0, 1, 2]], "stds": 0.25}),
    ("swiss_roll", {}, {"noise": 0.1}),
])
def test_distributions_rebuild_from_their_description(name, params, other):
    ds = DATASETS.build(name, params, where="data")
    d = ds.describe()
    assert json.loads(json.dumps(d)) == d
    assert d["kind"] == "distribution" and d["name"] == name and d["n_examples"] is None
    assert d["shape"] == list(ds.shape) and d["value_range"] is None and d["n_classes"] == 0
    rebuilt = DATASETS.build(d["name"], d["params"], where="data")
    assert rebuilt.fingerprint() == ds.fingerprint() == d["fingerprint"]
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(rebuilt.sample(50, g1)[0], ds.sample(50, g2)[0])
    assert DATASETS.build(name, other, where="data").fingerprint() != ds.fingerprint()
    if getattr(ds, "modes", None) is not None:  # mixtures: the known modes, exactly
        assert torch.equal(torch.tensor(d["mixture"]["modes"], dtype=torch.float64), ds._modes64)
        assert torch.equal(torch.tensor(d["mixture"]["weights"], dtype=torch.float64), ds._weights64)
        assert torch.equal(torch.tensor(d["mixture"]["mode_stds"], dtype=torch.float64), ds._stds64)


def test_ring_pinned_and_large_mixtures_described_by_their_parameters():
    assert DATASETS.build("ring", {}, where="data").fingerprint() == RING_DEFAULT
    big = DATASETS.build("grid", {"n": 100}, where="data").describe()
    assert big["mixture"] is None and big["params"] == {"n": 100, "spacing": 2.0, "std": 0.05}


def test_a_dataset_class_of_ones_own():
    class Arange(Dataset):
        shape = (1,)

        def __init__(self, n: int):
            self.examples = torch.arange(n).float()[:, None]

    a, b = Arange(5), Arange(5)
    assert a.fingerprint() == b.fingerprint() != Arange(6).fingerprint()
    assert a.describe()["kind"] == "finite" and a.describe()["n_examples"] == 5
