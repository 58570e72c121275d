"""The FID Inception-v3: standard key names, strict loading from local files, forward shape."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.errors import GanforgeError
from ganforge.evaluation.features.inception import (
    INCEPTION_WEIGHTS_ENV,
    FIDInceptionV3,
    InceptionWeightsError,
    load_inception,
    load_inception_state_dict,
)

# Key names and shapes of the PyTorch port of TF inception-2015-12-05 (torchvision-style names).
_KNOWN_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_2b_3x3.bn.weight": (64,),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    """A state dict with the standard keys (no num_batches_tracked) and random, well-scaled values."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in FIDInceptionV3().state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        shape = value.shape
        if key.endswith("conv.weight") or key == "fc.weight":
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith("bn.weight"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        else:  # bn.bias, running_mean, fc.bias
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


def test_standard_key_names_and_shapes(random_state: dict[str, torch.Tensor]) -> None:
    for key, shape in _KNOWN_SHAPES.items():
        assert tuple(random_state[key].shape) == shape, key
    n_convs = sum(k.endswith(".conv.weight") for k in random_state)
    assert n_convs == 94  # Inception-v3 without the auxiliary head
    assert len(random_state) == 94 * 5 + 2  # conv + 4 BN tensors each, fc weight and bias
    assert not any(k.startswith("AuxLogits") for k in random_state)


def test_fid_pooling_variants() -> None:
    model = FIDInceptionV3()
    assert model.Mixed_7b.pool == "avg" and model.Mixed_7c.pool == "max"
    # TF-style avg pool ignores the zero padding: a constant map stays constant at the border.
    from ganforge.evaluation.features.inception import _avg_pool_tf

    out = _avg_pool_tf(torch.ones(1, 1, 4, 4))
    assert torch.equal(out, torch.ones(1, 1, 4, 4))
    assert not torch.equal(F.avg_pool2d(torch.ones(1, 1, 4, 4), 3, 1, 1), out)


def test_load_strictly_from_safetensors_and_forward(
    random_state: dict[str, torch.Tensor], tmp_path, monkeypatch
) -> None:
    path = tmp_path / "inception.safetensors"
    save_file(random_state, str(path))
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(path))
    model = load_inception()  # from the environment variable
    torch.testing.assert_close(model.fc.weight, random_state["fc.weight"])
    assert not model.training
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features, logits = model.forward_features_and_logits(images)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all() and (features >= 0).all()  # after ReLU + average pool
    torch.testing.assert_close(logits, features @ random_state["fc.weight"].T + random_state["fc.bias"])


def test_load_from_torch_file_with_num_batches_tracked(
    random_state: dict[str, torch.Tensor], tmp_path
) -> None:
    path = tmp_path / "inception.pth"
    full = dict(random_state)
    full["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)
    torch.save(full, path)
    model = load_inception(path)
    torch.testing.assert_close(
        model.Mixed_7c.branch_pool.conv.weight, random_state["Mixed_7c.branch_pool.conv.weight"]
    )


def test_missing_and_extra_keys_are_refused(random_state: dict[str, torch.Tensor], tmp_path) -> None:
    missing = dict(random_state)
    del missing["Mixed_6c.branch7x7_1.bn.running_var"]
    path = tmp_path / "missing.pth"
    torch.save(missing, path)
    with pytest.raises(InceptionWeightsError, match=r"missing key.*Mixed_6c\.branch7x7_1\.bn\.running_var"):
        load_inception(path)

    extra = dict(random_state)
    extra["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    path = tmp_path / "extra.safetensors"
    save_file(extra, str(path))
    with pytest.raises(InceptionWeightsError, match=r"unexpected key.*AuxLogits\.fc\.weight"):
        load_inception(path)

    wrong = dict(random_state)
    wrong["fc.weight"] = torch.zeros(1000, 2048)
    path = tmp_path / "wrong.pth"
    torch.save(wrong, path)
    with pytest.raises(InceptionWeightsError, match=r"fc\.weight \(1000, 2048\)"):
        load_inception(path)


def test_no_weights_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    with pytest.raises(GanforgeError, match=INCEPTION_WEIGHTS_ENV):
        load_inception()
    with pytest.raises(InceptionWeightsError, match="does not exist"):
        load_inception(tmp_path / "nope.pth")
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(tmp_path / "nope.safetensors"))
    with pytest.raises(InceptionWeightsError, match=INCEPTION_WEIGHTS_ENV):
        load_inception_state_dict()
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InceptionWeightsError, match="cannot read"):
        load_inception(bad)
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, nested)
    with pytest.raises(InceptionWeightsError, match="flat state dict"):
        load_inception(nested)


class _Payload:
    """A pickle that would create a file when unpickled (what a hostile .pth can do)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pth"
    torch.save({"fc.weight": torch.zeros(1), "payload": _Payload(str(marker))}, path)
    with pytest.raises(InceptionWeightsError, match="cannot read"):
        load_inception(path)
    assert not marker.exists()  # torch.load(weights_only=True): nothing in the file was executed


def test_the_weights_hash_is_recorded(random_state: dict[str, torch.Tensor], tmp_path) -> None:
    import hashlib

    from ganforge.evaluation.features import REFERENCE_SHA256, load_extractor

    path = tmp_path / "inception.safetensors"
    save_file(random_state, str(path))
    fx = load_extractor("inception", inception_weights=path)
    d = fx.describe()
    assert d["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() != REFERENCE_SHA256
    assert d["weights_file"] == "inception.safetensors" and d["reference_weights"] is False
    from ganforge.evaluation import TensorSource, evaluate_images

    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    report = evaluate_images(TensorSource(x[:4]), TensorSource(x[4:]), fx, ["fid"])
    assert any("not the reference file" in w for w in report["warnings"])
