"""`ganforge eval` on image runs, sample arrays and folders: JSON out, --floor, and bad input
(one line, exit code 2)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

import ganforge
from ganforge.cli import main
from ganforge.evaluation import SmallCNN, asset_path, save_classifier
from ganforge.evaluation.features.inception import INCEPTION_WEIGHTS_ENV

ALL = "fid,kid,is,prdc,modes,memorization"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny networks, one thread


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "digits"
    ganforge.train(ganforge.load_config("digits-dcgan", [
        "train.steps=4", "train.batch_size=16", "train.progress=false", "train.threads=1",
        "model.generator.ngf=8", "model.discriminator.ndf=8"]), out)
    return out


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


def ok_json(*args: str) -> dict:
    r = run_cli(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def one_line_error(*args: str) -> str:
    r = run_cli(*args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    return r.output


def _finite(values: dict) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values())


def test_eval_image_run_all_metrics_with_floor(digits_run: Path) -> None:
    printed = ok_json("eval", str(digits_run), "--metrics", ALL, "--n", "200", "--floor")
    assert printed == json.loads((digits_run / "eval.json").read_text())
    assert printed["step"] == 4 and printed["n"] == 200 and printed["dataset"] == "digits"
    assert printed["features"]["name"] == "digits"  # the dataset's own classifier by default
    m, floor = printed["metrics"], printed["floor"]
    for key in ("fid", "kid", "is", "precision", "recall", "density", "coverage", "modes_covered", "label_kl",
                "memorization_fraction_suspicious"):
        assert key in m
    assert set(floor) == {k for k in m if not k.startswith("memorization")}
    assert _finite(floor) and _finite(m)
    assert 0 <= floor["fid"] < m["fid"]  # 4 steps of training are far from the data
    assert floor["precision"] > 0.9 and floor["modes_covered"] == 10
    assert printed["real"]["n"] == 1797 and printed["real"]["n_reference"] == 899


def test_eval_image_run_default_metrics_and_reproducible(digits_run: Path, tmp_path: Path) -> None:
    a = ok_json("eval", str(digits_run), "--n", "100", "--out", str(tmp_path / "a.json"))
    b = ok_json("eval", str(digits_run), "--n", "100", "--out", str(tmp_path / "b.json"))
    assert a == b and a["metric_names"] == ["fid", "kid", "prdc"] and "floor" not in a
    c = ok_json("eval", str(digits_run), "--n", "100", "--seed", "1", "--out", str(tmp_path / "c.json"))
    assert c["metrics"]["fid"] != a["metrics"]["fid"]


def test_eval_npy_and_folder_of_samples(digits_run: Path, tmp_path: Path) -> None:
    npy = tmp_path / "s.npy"
    assert run_cli("sample", str(digits_run), "--n", "120", "--out", str(npy)).exit_code == 0
    from_npy = ok_json("eval", str(npy), "--real", "digits", "--metrics", "fid,kid,is,prdc,modes", "--floor")
    assert json.loads((tmp_path / "s.eval.json").read_text()) == from_npy
    assert from_npy["samples"]["n"] == 120 and _finite(from_npy["metrics"]) and _finite(from_npy["floor"])
    # the same images as uint8 PNGs and as a uint8 array give the same numbers
    images = np.round((np.load(npy)[:, 0] + 1) * 127.5).astype(np.uint8)
    np.save(tmp_path / "u8.npy", images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    from PIL import Image

    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    from_png = ok_json("eval", str(folder), "--real", "digits", "--metrics", "fid,prdc")
    from_u8 = ok_json("eval", str(tmp_path / "u8.npy"), "--real", "digits", "--metrics", "fid,prdc")
    assert (folder / "eval.json").exists()
    assert from_png["metrics"] == pytest.approx(from_u8["metrics"], rel=1e-9)
    # the protocol quantizes the float samples to 8 bits, as saving them as PNG does: the same numbers
    from_floats = ok_json("eval", str(npy), "--real", "digits", "--metrics", "fid,prdc",
                          "--out", str(tmp_path / "floats.json"))
    assert from_png["metrics"] == pytest.approx(from_floats["metrics"], rel=1e-9)
    # a real array given by path works too
    real = tmp_path / "real.npy"
    np.save(real, images[:60])
    out = ok_json("eval", str(tmp_path / "u8.npy"), "--real", str(real), "--features", "digits", "--metrics", "fid")
    assert out["real"]["n"] == 60


def test_eval_json_records_the_protocol(digits_run: Path, tmp_path: Path) -> None:
    out = ok_json("eval", str(digits_run), "--n", "100", "--metrics", "fid,kid,prdc", "--seed", "3",
                  "--out", str(tmp_path / "e.json"))
    p = out["protocol"]
    assert set(p) == {"ganforge_version", "feature_network", "n_fake", "n_real", "n_reference", "reference",
                      "reference_split", "quantize", "quantization", "seed", "batch_size", "precision_recall_k",
                      "density_coverage_k", "kid_subsets", "kid_subset_size_max"}
    assert p["ganforge_version"] == ganforge.__version__
    fn = p["feature_network"]
    assert fn["name"] == "digits" and fn["weights_file"] == "digits-cnn.safetensors"
    assert fn["weights_sha256"] == hashlib.sha256(asset_path("digits-cnn.safetensors").read_bytes()).hexdigest()
    assert (p["n_fake"], p["n_real"], p["n_reference"]) == (100, 1797, 1797)
    assert p["reference"] == "digits (the run's data)" and "seed 3" in p["reference_split"]
    assert (p["quantize"], p["precision_recall_k"], p["density_coverage_k"], p["seed"]) == (True, 3, 5, 3)
    raw = ok_json("eval", str(digits_run), "--n", "100", "--metrics", "fid,kid,prdc", "--seed", "3", "--no-quantize",
                  "--out", str(tmp_path / "raw.json"))
    assert raw["protocol"]["quantize"] is False and raw["metrics"]["fid"] != out["metrics"]["fid"]
    toy = tmp_path / "ring"
    ganforge.train(ganforge.load_config("ring8", ["train.steps=2", "train.batch_size=8", "train.progress=false"]), toy)
    tp = ok_json("eval", str(toy), "--n", "100", "--seed", "2")["protocol"]
    assert (tp["n_fake"], tp["seed"], tp["ganforge_version"]) == (100, 2, ganforge.__version__) and "PacGAN" in tp["modes"]


def test_toy_eval_samples_what_ganforge_sample_draws(tmp_path: Path) -> None:
    from ganforge.evaluation.targets import sample_run

    out = tmp_path / "ring"
    ganforge.train(ganforge.load_config("ring8", ["train.steps=2", "train.batch_size=8", "train.progress=false"]), out)
    run = ganforge.load_run(out)
    assert torch.equal(sample_run(run, 5000, seed=4), ganforge.load_generator(out).sample(5000, seed=4))


def test_toy_runs_keep_their_protocol_and_refuse_feature_options(tmp_path: Path) -> None:
    out = tmp_path / "ring"
    ganforge.train(ganforge.load_config("ring8", ["train.steps=2", "train.batch_size=8", "train.progress=false"]),
                   out)
    printed = ok_json("eval", str(out), "--n", "200")
    assert printed["n_modes"] == 8 and "metrics" not in printed
    assert "toy run" in one_line_error("eval", str(out), "--metrics", "fid")


def _damaged_classifier(tmp_path: Path, damage: str) -> Path:
    path = save_classifier(SmallCNN(image_size=8, widths=(4,), hidden=6), tmp_path / f"{damage}.safetensors", "x")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    if damage == "missing":
        state.pop("fc.bias")
    else:
        state["extra.weight"] = torch.zeros(2)
    save_file(state, str(path), metadata=meta)
    return path


def test_bad_input_is_one_line_and_exit_2(digits_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no sample images found" in one_line_error("eval", str(empty), "--real", "digits")
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((10, 1, 28, 28), dtype=np.float32))
    assert "1x28x28; the digits features take 1x8x8" in one_line_error("eval", str(big), "--real", "digits")
    pixels = tmp_path / "pixels.npy"
    np.save(pixels, np.full((10, 8, 8), 200.0, dtype=np.float32))
    assert "[-1, 1]" in one_line_error("eval", str(pixels), "--real", "digits")
    for damage, text in (("missing", "missing key(s): fc.bias"), ("extra", "unexpected key(s): extra.weight")):
        path = _damaged_classifier(tmp_path, damage)
        assert text in one_line_error("eval", str(digits_run), "--n", "20", "--features", str(path))
    (tmp_path / "dims.py").write_text(
        "from ganforge.evaluation import from_callable\n"
        "def build():\n"
        "    return from_callable(lambda x: x.flatten(1)[:, :5], num_features=7)\n")
    assert "dimension 5, expected 7" in one_line_error(
        "eval", str(digits_run), "--n", "20", "--features", f"{tmp_path / 'dims.py'}:build")
    assert "unknown metric(s) fjd" in one_line_error("eval", str(digits_run), "--metrics", "fid,fjd")
    assert "--inception-weights" in one_line_error("eval", str(digits_run), "--n", "20", "--features", "inception")
    bad_weights = tmp_path / "inception.safetensors"
    save_file({"fc.weight": torch.zeros(1008, 2048)}, str(bad_weights))
    assert "missing key(s)" in one_line_error("eval", str(digits_run), "--n", "20", "--features", "inception",
                                              "--inception-weights", str(bad_weights))
    assert "need --real" in one_line_error("eval", str(big))
    assert "not found" in one_line_error("eval", str(tmp_path / "nowhere"))
    assert "1x8x8; the mnist features take 1x28x28" in one_line_error(
        "eval", str(digits_run), "--n", "20", "--features", "mnist")


def test_explicit_heldout_and_real_subsample(digits_run: Path, tmp_path: Path) -> None:
    held = tmp_path / "held.npy"
    np.save(held, np.zeros((150, 1, 8, 8), dtype=np.uint8))
    out = ok_json("eval", str(digits_run), "--n", "100", "--metrics", "memorization", "--heldout", str(held),
                  "--n-real", "500")
    assert out["real"]["n"] == 500 and out["real"]["memorization_heldout"] == f"{held} (150)"
    assert 0 <= out["metrics"]["memorization_fraction_suspicious"] <= 1


MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(), reason="no MNIST test set")
def test_eval_samples_against_mnist_with_dataset_parameters(tmp_path: Path) -> None:
    from ganforge.data import DATASETS

    images = DATASETS.build("mnist", {"path": str(MNIST_DIR), "split": "test", "subset": [0, 300]}).examples
    np.save(tmp_path / "m.npy", images.numpy())
    out = ok_json("eval", str(tmp_path / "m.npy"), "--real", "mnist", "--real-path", str(MNIST_DIR),
                  "--real-set", "split=test", "--n-real", "1000", "--metrics", "fid,modes", "--floor")
    assert out["features"]["name"] == "mnist" and out["real"]["n"] == 1000
    assert out["metrics"]["modes_covered"] == 10 and out["floor"]["modes_covered"] == 10
