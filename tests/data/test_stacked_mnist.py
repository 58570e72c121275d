"""Stacked MNIST: three digits of the split as R, G, B; modes 100 d_R + 10 d_G + d_B; unconditional
players; deterministic, memory-light stacking; the recipe trains and samples 3x28x28 images."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganforge.data import DATASETS
from ganforge.data.loader import BatchLoader
from ganforge.data.stacked_mnist import StackedExamples, StackedMNIST, mode_of_digits
from ganforge.errors import ConfigError, DataError

# ../shared/data/mnist beside the checkout (or a worktree's checkout), when present
MNIST_DIR = next((p / "shared" / "data" / "mnist" for p in Path(__file__).resolve().parents
                  if (p / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()), Path("/nonexistent"))
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def fake_mnist(root: Path, n: int = 20, prefix: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """IDX files of ``n`` 28x28 'digits': image i is filled with the value 10 * i + 5 (so each pixel
    names its image), label i % 10."""
    root.mkdir(parents=True, exist_ok=True)
    x = np.repeat((10 * np.arange(n) + 5).astype(np.uint8), 28 * 28).reshape(n, 28, 28)
    y = (np.arange(n) % 10).astype(np.uint8)
    (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x, 0x803)))
    (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(y, 0x801)))
    return x, y


def build(root: Path, **params) -> StackedMNIST:
    ds = DATASETS.build("stacked_mnist", {"path": str(root), "split": "test", **params})
    assert isinstance(ds, StackedMNIST)
    return ds


def test_examples_are_the_stacked_digits_and_their_modes(tmp_path):
    x, y = fake_mnist(tmp_path, n=20)
    ds = build(tmp_path, size=500, seed=3)
    assert len(ds) == 500 and ds.shape == (3, 28, 28) and ds.examples.shape == (500, 3, 28, 28)
    assert ds.n_classes == 0 and ds.labels is None and ds.value_range == (-1.0, 1.0)
    batch = ds.examples[torch.arange(500)]
    assert batch.dtype == torch.float32 and batch.shape == (500, 3, 28, 28)
    # every pixel of channel c is 10 * i + 5 for the digit image i stacked there: recover i
    which = torch.round(((batch[:, :, 0, 0] + 1.0) * 127.5 - 5) / 10).to(torch.int64)  # (500, 3)
    assert torch.equal(batch, (torch.from_numpy(x).float() / 127.5 - 1.0)[which])
    digits = torch.from_numpy(y.astype(np.int64))[which]
    assert torch.equal(ds.digit_targets.long(), digits)
    assert torch.equal(ds.targets, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    assert int(ds.targets.min()) >= 0 and int(ds.targets.max()) < 1000
    # int, slice and list indexing agree with the tensor indexing
    assert torch.equal(ds.examples[7], batch[7])
    assert torch.equal(ds.examples[10:13], batch[10:13])
    assert torch.equal(ds.examples[[4, 2]], batch[[4, 2]])


def test_mode_of_digits():
    assert mode_of_digits(torch.tensor([[1, 2, 3], [9, 0, 9], [0, 0, 0]])).tolist() == [123, 909, 0]


def test_digits_are_drawn_uniformly_and_independently(tmp_path):
    fake_mnist(tmp_path, n=10)  # image i has label i: the mode histogram is the stacking's histogram
    size = 200_000
    ds = build(tmp_path, size=size, seed=0)
    per_channel = torch.stack([torch.bincount(ds.digit_targets[:, c].long(), minlength=10) for c in range(3)])
    sd = (size * 0.1 * 0.9) ** 0.5
    assert (per_channel - size / 10).abs().max() < 5 * sd  # each channel uniform over the 10 images
    counts = torch.bincount(ds.targets, minlength=1000).double()  # 1,000 modes, 200 expected each
    chi2 = float(((counts - size / 1000) ** 2 / (size / 1000)).sum())
    assert 999 - 5 * (2 * 999) ** 0.5 < chi2 < 999 + 5 * (2 * 999) ** 0.5  # chi-square with 999 dof
    assert int((counts > 0).sum()) == 1000


def test_stacking_is_deterministic_and_the_fingerprint_ignores_the_path(tmp_path):
    fake_mnist(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a, b = build(tmp_path / "a", size=300, seed=1), build(tmp_path / "b", size=300, seed=1)
    assert torch.equal(a._index, b._index) and a.fingerprint() == b.fingerprint()
    c = build(tmp_path / "a", size=300, seed=2)
    assert not torch.equal(a._index, c._index) and a.fingerprint() != c.fingerprint()
    assert build(tmp_path / "a", size=301, seed=1).fingerprint() != a.fingerprint()
    d = a.describe()
    assert d["shape"] == [3, 28, 28] and d["n_classes"] == 0 and d["n_examples"] == 300
    assert d["n_modes"] == 1000 and d["params"] == {"size": 300, "seed": 1, "split": "test"}
    assert d["fingerprint"] == a.fingerprint() and d["kind"] == "images"


def test_one_changed_pixel_changes_the_fingerprint(tmp_path):
    x, y = fake_mnist(tmp_path / "a")
    x2 = x.copy()
    x2[3, 10, 10] += 1
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x2, 0x803)))
    shutil.copy(tmp_path / "a" / "t10k-labels-idx1-ubyte.gz", tmp_path / "b")
    assert build(tmp_path / "a", size=50).fingerprint() != build(tmp_path / "b", size=50).fingerprint()


def test_memory_light(tmp_path):
    fake_mnist(tmp_path, n=20)
    ds = build(tmp_path, size=1_000_000)
    assert isinstance(ds.examples, StackedExamples) and not isinstance(ds.examples, torch.Tensor)
    assert ds._digits.dtype == torch.uint8 and ds._index.dtype == torch.int32
    held = ds._digits.numel() + ds._index.numel() * 4 + ds.targets.numel() * 8 + ds.digit_targets.numel()
    assert held < 40 * 2**20  # vs 9.4 GB for a float32 copy of a million 3x28x28 examples


def test_loader_gives_unlabelled_float_batches_and_resumes(tmp_path):
    fake_mnist(tmp_path)
    ds = build(tmp_path, size=100)
    loader = BatchLoader(ds, 32, seed=0)
    x, y = loader.next()
    assert x.shape == (32, 3, 28, 28) and x.dtype == torch.float32 and y is None
    state = loader.state_dict()
    want = [loader.next()[0] for _ in range(5)]  # crosses an epoch (100 examples)
    again = BatchLoader(ds, 32, seed=0)
    again.load_state_dict(state)
    assert all(torch.equal(a, again.next()[0]) for a in want)


def test_bad_input(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        build(tmp_path / "missing")
    fake_mnist(tmp_path)  # t10k only
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\[\.gz\]: not found for split 'train'.*data\.split=test"):
        DATASETS.build("stacked_mnist", {"path": str(tmp_path)})
    with pytest.raises(ConfigError, match="size"):
        build(tmp_path, size=0)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes((np.arange(20) % 11).astype(np.uint8), 0x801)))
    with pytest.raises(DataError, match="label 10; MNIST's labels are digits 0..9"):
        build(tmp_path)


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST test set not at ../shared/data/mnist")
def test_real_mnist_stacking_matches_the_mnist_dataset():
    ds = build(MNIST_DIR, size=1000, seed=0)
    mnist = DATASETS.build("mnist", {"path": str(MNIST_DIR), "split": "test"})
    idx = ds._index.to(torch.int64)
    assert torch.equal(ds.examples[torch.arange(1000)], mnist.examples[:, 0][idx])
    assert torch.equal(ds.digit_targets.long(), mnist.targets[idx])


def test_recipe_trains_and_samples_three_channel_images(tmp_path, one_thread):
    from ganforge.cli import main

    fake_mnist(tmp_path / "mnist", n=20)
    run = tmp_path / "run"
    args = ["train", "stacked-mnist", "--out", str(run), "--set", f"data.path={tmp_path / 'mnist'}",
            "--set", "data.split=test", "--set", "data.size=256", "--set", "train.steps=2",
            "--set", "train.batch_size=8", "--set", "train.progress=false", "--set", "train.checkpoint_every=2"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = tmp_path / "s.npy"
    result = CliRunner().invoke(main, ["sample", str(run), "--n", "5", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    samples = np.load(out)
    assert samples.shape == (5, 3, 28, 28) and np.all(np.abs(samples) <= 1.0)
    # ganforge eval: the stacked_mnist features by default, the 1,000-mode count on request
    result = CliRunner().invoke(main, ["eval", str(run), "--metrics", "stacked_modes,modes", "--n", "40",
                                       "--n-real", "60", "--out", str(tmp_path / "eval.json")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    m = report["metrics"]
    assert report["features"]["name"] == "stacked_mnist" and report["features"]["classes"] == 1000
    assert 1 <= m["stacked_modes"] <= 40 and m["stacked_modes"] == m["modes_hit"] and m["stacked_n"] == 40
    assert m["stacked_modes_total"] == 1000 and m["stacked_kl"] >= math.log(1000 / 40) - 1e-9


def test_recipe_asks_for_the_data_path():
    from ganforge.components import load_config

    with pytest.raises(ConfigError, match=r"data\.path: required by dataset 'stacked_mnist'"):
        load_config("stacked-mnist")
    cfg = load_config("stacked-mnist", ["data.path=/nowhere"])
    assert cfg.data.name == "stacked_mnist" and cfg.model.discriminator.params.get("pack", 1) >= 1
