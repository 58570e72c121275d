"""The checkpoint file format: exact round trips, refusal of anything else, atomic writes."""

from __future__ import annotations

import json
import os
import pathlib
import struct

import pytest
import safetensors.torch
import torch
from torch import nn

from ganforge.errors import CheckpointError
from ganforge.train import checkpoint as ckpt
from ganforge.train.checkpoint import (
    flatten_state,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)


def assert_same(a, b, where="state"):
    """Structural equality: same types (tuple vs list, int vs float), same keys, bit-equal tensors."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.is_floating_point():
            assert torch.equal(a.isnan(), b.isnan()), where
            a, b = a[~a.isnan()], b[~b.isnan()]
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert type(k) is type(next(kk for kk in b if kk == k)), f"{where}: key {k!r}"
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}.{i}")
    else:
        assert a == b, where


def nested_state():
    return {
        "step": 12,
        "lr": 1.5e-4,
        "tiny": 5e-324,
        "neg": -0.0,
        "flag": True,
        "name": "ring8",
        "nothing": None,
        "pair": (1, 2.5, None),
        "nested_tuple": ((0.9, 0.999), [3, (4,)]),
        "by_index": {0: {"m": torch.arange(6, dtype=torch.float32).view(2, 3)}, 7: "x", 10: None},
        "tensors": [
            torch.tensor([1.5, -2.25], dtype=torch.float64),
            torch.tensor([1, 2, 3], dtype=torch.int64),
            torch.tensor([0.1, 65504.0], dtype=torch.float16),
            torch.tensor([3.0, -1e30], dtype=torch.bfloat16),
            torch.tensor([True, False]),
            torch.arange(256, dtype=torch.uint8),
            torch.tensor(7.0),  # 0-d
            torch.zeros(0, 3),  # empty
            torch.tensor([float("nan"), float("inf"), -float("inf")]),
        ],
        "empty_dict": {},
        "empty_list": [],
    }


def test_flatten_unflatten_round_trip_in_memory():
    state = nested_state()
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten_state(state, tensors)
    json.dumps(tree)  # the tree is plain JSON
    assert len(tensors) == 10
    assert_same(unflatten_state(json.loads(json.dumps(tree)), tensors), state)


def test_round_trip_through_a_file(tmp_path):
    state = nested_state()
    path = save_checkpoint(tmp_path / "a.safetensors", state, "abc123")
    assert_same(load_checkpoint(path, "abc123"), state)
    assert_same(load_checkpoint(path), state)


def test_flatten_refuses_unknown_objects():
    with pytest.raises(TypeError, match="opt.x"):
        flatten_state({"opt": {"x": object()}}, {})


def test_assert_same_can_fail():
    with pytest.raises(AssertionError):
        assert_same({"a": torch.tensor([1.0, float("nan")])}, {"a": torch.tensor([2.0, float("nan")])})
    with pytest.raises(AssertionError):
        assert_same((1, 2), [1, 2])
    with pytest.raises(AssertionError):
        assert_same({1: "x"}, {"1": "x"})


@pytest.mark.parametrize("state", [
    {"a.b": torch.tensor([1.0]), "a": {"b": torch.tensor([2.0])}},
    {"x": {1: torch.tensor([1.0]), "1": torch.tensor([2.0])}},
    {"g": [torch.tensor([1.0])], "g.0": torch.tensor([2.0])},
], ids=["dotted-key", "int-and-str-key", "list-and-dotted-key"])
def test_tensor_names_do_not_collide(state, tmp_path):
    """Distinct tensors at paths whose dotted names look alike must all survive a save/load."""
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", state, "h"))
    assert_same(loaded, state)


def _adam_setup(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3)
    return model, opt


def _adam_step(model, opt, seed):
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed))
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()


def test_adam_state_round_trip_gives_bit_identical_next_step(tmp_path):
    model, opt = _adam_setup()
    for s in range(2):
        _adam_step(model, opt, s)
    path = save_checkpoint(tmp_path / "s.safetensors",
                           {"model": model.state_dict(), "opt": opt.state_dict()}, "h")
    loaded = load_checkpoint(path, "h")
    assert_same(loaded["opt"], opt.state_dict())  # int keys, tuple betas, 0-d step tensors
    model2, opt2 = _adam_setup(seed=1)
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["opt"])
    _adam_step(model, opt, 2)
    _adam_step(model2, opt2, 2)
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert_same(opt2.state_dict(), opt.state_dict())


def test_rng_states_round_trip(tmp_path):
    g = torch.Generator().manual_seed(42)
    torch.randn(3, generator=g)
    state = {"cpu": torch.get_rng_state(), "loader": g.get_state()}
    loaded = load_checkpoint(save_checkpoint(tmp_path / "r.safetensors", state, "h"))
    g2 = torch.Generator()
    g2.set_state(loaded["loader"])
    assert torch.equal(torch.randn(5, generator=g), torch.randn(5, generator=g2))


# -- refusals ----------------------------------------------------------------------------------

@pytest.fixture
def good(tmp_path):
    return save_checkpoint(tmp_path / "good.safetensors", nested_state(), "hash1")


def test_truncated_file_is_refused(good, tmp_path):
    data = good.read_bytes()
    for cut in (0, 4, 8, 20, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}.safetensors"
        p.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="nothing was loaded|not a readable"):
            load_checkpoint(p)


def test_random_bytes_are_refused(tmp_path):
    g = torch.Generator().manual_seed(0)
    for i, n in enumerate((3, 64, 5000)):
        p = tmp_path / f"rand{i}.bin"
        p.write_bytes(bytes(torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8).tolist()))
        with pytest.raises(CheckpointError):
            load_checkpoint(p)
    # a plausible header length followed by garbage that is not JSON
    p = tmp_path / "hdr.bin"
    p.write_bytes(struct.pack("<Q", 10) + b"not json!!" + b"\0" * 8)
    with pytest.raises(CheckpointError):
        load_checkpoint(p)


def test_foreign_safetensors_file_is_refused(tmp_path):
    p = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(p))
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        load_checkpoint(p)
    p2 = tmp_path / "foreign_meta.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(p2), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        load_checkpoint(p2)


def test_other_version_and_damaged_tree_are_refused(tmp_path):
    p = tmp_path / "v2.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(p), metadata={
        "format": ckpt.FORMAT, "version": "999", "config_hash": "h", "tree": "{}"})
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(p)
    p = tmp_path / "tree.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(p), metadata={
        "format": ckpt.FORMAT, "version": ckpt.VERSION, "config_hash": "h",
        "tree": json.dumps({"w": {"__tensor__": "missing"}})})
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(p)


class _Payload:
    """Unpickling this object touches ``marker``: proof that the file's code was executed."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_pickle_file_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _Payload(str(marker))}, evil)
    legacy = tmp_path / "evil_legacy.pt"
    torch.save({"model": _Payload(str(marker))}, legacy, _use_new_zipfile_serialization=False)
    assert not marker.exists()
    for p in (evil, legacy):
        with pytest.raises(CheckpointError):
            load_checkpoint(p)
        assert not marker.exists()
    # the files really are harmful when unpickled, so the test above means something
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_wrong_config_hash_is_refused(good):
    with pytest.raises(CheckpointError, match="different config") as info:
        load_checkpoint(good, "hash2")
    assert "hash1" in str(info.value) and "hash2" in str(info.value)
    assert load_checkpoint(good, "hash1")["step"] == 12


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "nope.safetensors")


# -- atomic writes -----------------------------------------------------------------------------

def _fail_fsync(fd):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("how", ["fsync", "write"])
def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, how):
    path = tmp_path / "ckpt" / "latest.safetensors"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)}, "h")
    before = path.read_bytes()
    if how == "fsync":
        monkeypatch.setattr(os, "fsync", _fail_fsync)
    else:
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()
                return False

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                raise OSError(28, "No space left on device")

            def __getattr__(self, name):
                return getattr(self.f, name)

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))
    with pytest.raises(CheckpointError, match="No space left on device") as info:
        save_checkpoint(path, {"step": 2, "w": torch.zeros(1000)}, "h")
    assert "unchanged" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["latest.safetensors"]
    assert load_checkpoint(path, "h")["step"] == 1


def test_list_checkpoints(tmp_path):
    for step in (30, 5, 120):
        save_checkpoint(ckpt.checkpoint_path(tmp_path, step), {"step": step}, "h")
    (tmp_path / "step_1.safetensors").write_bytes(b"")  # too few digits: not ours
    (tmp_path / "notes.txt").write_text("x")
    found = list_checkpoints(tmp_path)
    assert [s for s, _ in found] == [5, 30, 120]
    assert [p.name for _, p in found] == ["step_00000005.safetensors", "step_00000030.safetensors",
                                          "step_00000120.safetensors"]
    assert list_checkpoints(tmp_path / "missing") == []
