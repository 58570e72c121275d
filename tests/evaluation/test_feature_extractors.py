"""Feature extractors: the shipped classifiers, strict weight files, input checks, user callables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ganforge.errors import CheckpointError, GanforgeError
from ganforge.evaluation import (
    EXTRACTORS,
    FeatureError,
    FeatureInputError,
    FeatureWeightsError,
    SmallCNN,
    asset_path,
    from_callable,
    load_classifier,
    load_extractor,
    save_classifier,
)
from ganforge.evaluation.features.extractors import ASSET_FILES, InceptionFeatures
from ganforge.evaluation.features.inception import INCEPTION_WEIGHTS_ENV, FIDInceptionV3
from ganforge.evaluation.features.training import CLASSIFIER_RECIPES, accuracy, load_split
from ganforge.metrics.fid import GaussianStats

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()


def test_registry_names_and_unknown_name() -> None:
    assert EXTRACTORS.names() == ["digits", "inception", "mnist", "stacked_mnist"]
    with pytest.raises(FeatureError, match="valid: digits, inception, mnist, stacked_mnist"):
        load_extractor("resnet")


@pytest.mark.parametrize("name", sorted(ASSET_FILES))
def test_shipped_classifier_files_are_small_and_documented(name: str) -> None:
    p = asset_path(ASSET_FILES[name])
    assert p.is_file() and p.stat().st_size < 1_000_000
    readme = (p.parent / "README.md").read_text()
    assert ASSET_FILES[name] in readme and f"ganforge features train {name}" in readme
    record = load_classifier(p).training_record
    assert record["seed"] == 0 and record["recipe"] == name
    assert f"{record['heldout_accuracy']:.2%}".replace("%", " %") in readme


def _heldout_accuracy(name: str, data_path: str | None) -> tuple[float, float, int]:
    fx = load_extractor(name)
    recipe = CLASSIFIER_RECIPES.get(name)(data_path)
    x, y = load_split(recipe, "heldout")
    return accuracy(fx.model, x, y), fx.training_record["heldout_accuracy"], int(y.shape[0])


def test_shipped_digits_classifier_reaches_its_recorded_accuracy() -> None:
    measured, recorded, n = _heldout_accuracy("digits", None)
    assert abs(measured - recorded) <= 1.0 / n  # at most one image differs (other thread counts)
    assert measured >= 0.95


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST test set not at ../shared/data/mnist")
def test_shipped_mnist_classifier_reaches_its_recorded_accuracy() -> None:
    measured, recorded, n = _heldout_accuracy("mnist", str(MNIST_DIR))
    assert abs(measured - recorded) <= 1.0 / n
    assert measured >= 0.98


def test_shipped_classifier_shapes() -> None:
    digits, mnist = load_extractor("digits"), load_extractor("mnist")
    assert digits.describe() == {"name": "digits", "dim": 64, "classes": 10, "input": "1x8x8 in [-1, 1]",
                                 "weights_file": ASSET_FILES["digits"],
                                 "weights_sha256": hashlib.sha256(asset_path(ASSET_FILES["digits"]).read_bytes()
                                                                  ).hexdigest()}
    f, logits = mnist.forward_features_and_logits(torch.zeros(3, 1, 28, 28))
    assert f.shape == (3, 128) and logits is not None and logits.shape == (3, 10)
    assert not any(p.requires_grad for p in mnist.parameters())


@pytest.mark.parametrize("images, message", [
    (torch.zeros(2, 1, 28, 28), "1x28x28; the digits features take 1x8x8"),
    (torch.zeros(2, 3, 8, 8), "3x8x8; the digits features take 1x8x8"),
    (torch.full((2, 1, 8, 8), 255.0), r"values lie in \[255, 255\].*\[-1, 1\]"),
    (torch.full((2, 1, 8, 8), float("nan")), "NaN"),
    (torch.zeros(2, 64), "not images"),
])
def test_images_of_the_wrong_size_or_range_are_refused(images: torch.Tensor, message: str) -> None:
    with pytest.raises(FeatureInputError, match=message):
        load_extractor("digits").forward_features_and_logits(images)


def _small_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_classifier(SmallCNN(image_size=8, widths=(4,), hidden=6), tmp_path / "c.safetensors", name="mine")


def test_own_classifier_file_round_trip(tmp_path: Path) -> None:
    path = _small_file(tmp_path)
    fx = load_extractor(str(path))
    assert fx.name == "mine" and fx.num_features == 6 and fx.image_shape == (1, 8, 8)
    again = load_extractor(path)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    assert torch.equal(fx(x), again(x))


@pytest.mark.parametrize("damage", ["missing", "extra", "shape"])
def test_weights_file_with_missing_or_extra_keys_is_refused(tmp_path: Path, damage: str) -> None:
    path = _small_file(tmp_path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(path))
    if damage == "missing":
        del state["head.bias"]
    elif damage == "extra":
        state["head.scale"] = torch.ones(1)
    else:
        state["fc.weight"] = torch.zeros(6, 5)
    save_file(state, str(path), metadata=meta)
    expected = {"missing": "1 missing key.*head.bias", "extra": "1 unexpected key.*head.scale",
                "shape": "wrong shape: fc.weight"}[damage]
    with pytest.raises(FeatureWeightsError, match=expected):
        load_extractor(str(path))


def test_foreign_or_unsafe_files_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(FeatureWeightsError, match="not a ganforge classifier file"):
        load_extractor(str(foreign))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 40)
    with pytest.raises(FeatureWeightsError, match="not a readable safetensors file"):
        load_extractor(str(garbage))
    with pytest.raises(FeatureError, match="pickles and TorchScript"):
        load_extractor(str(tmp_path / "model.pt"))
    assert issubclass(FeatureWeightsError, CheckpointError)


def test_inception_without_weights_says_where_to_put_them(monkeypatch) -> None:
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    with pytest.raises(GanforgeError, match=f"{INCEPTION_WEIGHTS_ENV}.*--inception-weights FILE") as info:
        load_extractor("inception")
    # names the reference file, its size and checksum (the first 8 hex digits are in its name)
    text = str(info.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in text and "95,628,359 bytes" in text
    assert "SHA-256 6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in text


def test_inception_features_map_images_to_zero_one() -> None:
    seen = {}

    class Stub(FIDInceptionV3):
        def __init__(self) -> None:
            torch.nn.Module.__init__(self)
            self.resize_input = self.normalize_input = True

        def forward_features_and_logits(self, x):  # type: ignore[override]
            seen["x"] = x
            return torch.zeros(x.shape[0], 2048), torch.zeros(x.shape[0], 1008)

    fx = InceptionFeatures(Stub())
    fx.forward_features_and_logits(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3))
    assert seen["x"].flatten().tolist() == [0.0, 0.5, 1.0]
    assert fx.describe()["input"] == "1|3xHxW in [-1, 1]"


def test_user_callable_contract() -> None:
    fx = from_callable(lambda x: x.flatten(1)[:, :5], name="first5", num_features=5)
    assert fx(torch.zeros(2, 1, 4, 4)).shape == (2, 5)
    wrong = from_callable(lambda x: x.flatten(1)[:, :3], name="three", num_features=5)
    with pytest.raises(FeatureInputError, match="dimension 3, expected 5"):
        wrong(torch.zeros(2, 1, 4, 4))
    seen = {}

    def in_unit_range(x):
        seen["range"] = (float(x.min()), float(x.max()))
        return x.flatten(1), torch.zeros(x.shape[0], 4)

    fx = from_callable(in_unit_range, value_range=(0.0, 1.0))
    f, logits = fx.forward_features_and_logits(torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2))
    assert seen["range"] == (0.0, 1.0) and fx.n_classes == 4 and logits.shape == (1, 4)


def test_module_factory_from_a_python_file(tmp_path: Path) -> None:
    (tmp_path / "my_features.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return x.mean(dim=(2, 3))\n"
        "def build():\n"
        "    return Net()\n")
    fx = load_extractor(f"{tmp_path / 'my_features.py'}:build")
    assert fx(torch.zeros(3, 1, 8, 8)).shape == (3, 1)
    with pytest.raises(FeatureError, match="has no attribute 'nope'"):
        load_extractor(f"{tmp_path / 'my_features.py'}:nope")


def test_batched_extraction_equals_one_pass() -> None:
    fx = load_extractor("digits")
    x = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    batched = fx.extract(x.split(7), keep_logits=True)
    with torch.no_grad():
        f, logits = fx.forward_features_and_logits(x)
    assert torch.allclose(batched.features, f, atol=1e-5) and torch.allclose(batched.logits, logits, atol=1e-5)
    whole = GaussianStats.from_features(batched.features.double())  # streaming == one shot, same numbers
    assert batched.stats.n == 50
    assert torch.allclose(batched.stats.mean, whole.mean, rtol=1e-12, atol=1e-12)
    assert torch.allclose(batched.stats.cov, whole.cov, rtol=1e-10, atol=1e-10)


def test_training_record_is_json(tmp_path: Path) -> None:
    fx = load_extractor("digits")
    assert json.loads(fx.metadata["training"])["heldout_split"] == [1437, 1797]
