"""`ganforge features train`: reproducible to the bit, recorded in the file, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from ganforge.cli import main
from ganforge.evaluation import load_classifier


def _train(out: Path, seed: int) -> dict:
    r = CliRunner().invoke(main, ["features", "train", "digits", "--out", str(out), "--seed", str(seed),
                                  "--epochs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_same_seed_gives_bit_identical_weights(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.safetensors"
    ra, rb = _train(a, 3), _train(b, 3)
    _train(c, 4)
    wa, wb, wc = load_file(str(a)), load_file(str(b)), load_file(str(c))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ma, mb = load_classifier(a).training_record, load_classifier(b).training_record
    assert ma.pop("command").replace("a.safetensors", "b.safetensors") == mb.pop("command") and ma == mb
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert ra["heldout_accuracy"] == rb["heldout_accuracy"] and 0.1 < ra["heldout_accuracy"] <= 1.0
    record = load_classifier(a).training_record
    assert record["seed"] == 3 and record["epochs"] == 1 and record["threads"] == 1
    assert record["command"] == "ganforge features train digits --out a.safetensors --seed 3 --epochs 1"


def test_training_restores_threads_and_determinism_flags(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    _train(tmp_path / "x.safetensors", 0)
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


def test_bad_arguments_are_one_line_exit_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["features", "train", "mnist", "--out", str(tmp_path / "m.safetensors")])
    assert r.exit_code == 2 and "--data-path" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["features", "train", "mnist", "--out", str(tmp_path / "m.safetensors"),
                                  "--data-path", str(tmp_path)])
    assert r.exit_code == 2 and "not found" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["features", "train", "digits", "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and ".safetensors" in r.output
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "m.pt").exists()


def test_features_list() -> None:
    """Every registered extractor, by name: the classifiers, Inception, and stacked_mnist (the MNIST CNN
    on each of stacked MNIST's three channels, registered in ganforge.evaluation.stacked_modes)."""
    r = CliRunner().invoke(main, ["features", "list"])
    assert r.exit_code == 0, r.output
    assert [line.split()[0] for line in r.output.splitlines()] == ["digits", "inception", "mnist", "stacked_mnist"]
