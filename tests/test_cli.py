"""End-to-end tests of the command line: train, sample, eval, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ganforge.cli import main

TINY = {
    "name": "tiny",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [16]}, "discriminator": {"name": "mlp", "widths": [16]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}},
    "train": {"steps": 20, "batch_size": 16, "log_every": 10, "checkpoint_every": 10, "progress": False,
              "threads": 1},
}


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


@pytest.fixture
def trained(tmp_path, tiny_yaml) -> Path:
    out = tmp_path / "run"
    r = run_cli("train", str(tiny_yaml), "--out", str(out))
    assert r.exit_code == 0, r.output
    return out


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_train_writes_the_run_directory(trained):
    assert (trained / "config.yaml").exists()
    assert [json.loads(x)["step"] for x in (trained / "metrics.jsonl").read_text().splitlines()] == [10, 20]
    assert sorted(p.name for p in (trained / "checkpoints").iterdir())[-1] == "step_00000020.safetensors"


def test_set_overrides_reach_the_run(tmp_path, tiny_yaml):
    out = tmp_path / "o"
    r = run_cli("train", str(tiny_yaml), "--out", str(out), "--set", "train.steps=10", "--set", "train.seed=5",
                "--set", "train.batch_size=8")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["train"]["steps"], cfg["train"]["seed"], cfg["train"]["batch_size"]) == (10, 5, 8)


def test_sample_same_seed_same_samples(trained, tmp_path):
    a, b, c = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    for f, seed in ((a, 1), (b, 1), (c, 2)):
        assert run_cli("sample", str(trained), "--n", "50", "--out", str(f), "--seed", str(seed)).exit_code == 0
    xa, xb, xc = np.load(a), np.load(b), np.load(c)
    assert xa.shape == (50, 2) and np.array_equal(xa, xb) and not np.array_equal(xa, xc)


def test_eval_prints_json_and_writes_eval_json(trained):
    r = run_cli("eval", str(trained), "--n", "500")
    assert r.exit_code == 0
    printed = json.loads(r.output)
    written = json.loads((trained / "eval.json").read_text())
    assert printed == written
    assert printed["n_modes"] == 8 and 0 <= printed["modes_captured"] <= 8 and 0 <= printed["hq_fraction"] <= 1
    assert sum(printed["mode_counts"]) == round(printed["hq_fraction"] * 500)


BAD_CONFIGS = [
    ("game.cost.name=wgan", "game.cost.name", "valid names:"),
    ("model.generator.name=transformer", "model.generator.name", "valid names:"),
    ("model.generator.widht=3", "model.generator.widht", "allowed keys:"),
    ("train.stepz=3", "train.stepz", "allowed:"),
    ("train.steps=many", "train.steps", "integer"),
    ("optim.generator.lr=-0.1", "optim.generator.lr", "greater than 0"),
    ("train.n_critic=0", "train.n_critic", "greater than 0"),
    ("game.prior.latent_dim=0", "game.prior.latent_dim", "greater than 0"),
    ("train.batch_size=4000000000", "train.batch_size", "GiB"),
    ("train.update=sometimes", "train.update", "alternating"),
    ("model.discriminator.pack=3", "train.batch_size", "divisible"),
    ("train.device=tpu", "train.device", "unknown device"),
]


@pytest.mark.parametrize("override,path,allowed", BAD_CONFIGS, ids=[b[1] + ":" + b[0] for b in BAD_CONFIGS])
def test_bad_config_one_line_exit_2_nothing_written(tmp_path, tiny_yaml, override, path, allowed):
    out = tmp_path / "fresh"
    r = CliRunner().invoke(main, ["train", str(tiny_yaml), "--out", str(out), "--set", override])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error: ")
    assert path in lines[0] and allowed in lines[0]
    assert "Traceback" not in r.output
    assert not out.exists()


def test_bad_yaml_file_names_the_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("train:\n  steps: [1,\n")
    r = CliRunner().invoke(main, ["train", str(p), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "broken.yaml" in r.output and "line" in r.output
    assert not (tmp_path / "x").exists()


def test_missing_config_lists_recipes(tmp_path):
    r = CliRunner().invoke(main, ["train", "nope", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "ring8" in r.output


def test_different_config_in_run_dir_is_refused_unchanged(trained, tiny_yaml):
    before = snapshot(trained)
    r = CliRunner().invoke(main, ["train", str(tiny_yaml), "--out", str(trained), "--set", "train.seed=1"])
    assert r.exit_code == 2 and "different config" in r.output and "train.seed: 0 -> 1" in r.output
    assert snapshot(trained) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "pickle"])
def test_damaged_or_foreign_checkpoint_is_refused_unchanged(trained, tiny_yaml, tmp_path, damage):
    ckpt = sorted((trained / "checkpoints").iterdir())[-1]
    marker = tmp_path / "pwned"
    if damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif damage == "garbage":
        ckpt.write_bytes(b"\x00\x01garbage" * 50)
    elif damage == "foreign":
        import safetensors.torch
        import torch

        ckpt.write_bytes(safetensors.torch.save({"w": torch.zeros(3)}))
    else:
        code = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"
        subprocess.run([sys.executable, "-c", (
            "import pickle, sys\n"
            "class Evil:\n"
            f"    def __reduce__(self): return (exec, ({code!r},))\n"
            f"open({str(ckpt)!r}, 'wb').write(pickle.dumps(Evil()))\n")], check=True)
    before = snapshot(trained)
    for args in (["train", str(tiny_yaml), "--out", str(trained), "--set", "train.steps=30"],
                 ["sample", str(trained), "--n", "5", "--out", str(tmp_path / "s.npy")],
                 ["eval", str(trained)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert "checkpoint" in r.output and len(r.output.strip().splitlines()) == 1
    assert snapshot(trained) == before
    assert not marker.exists()


def test_sample_bad_arguments(trained, tmp_path):
    r = CliRunner().invoke(main, ["sample", str(trained), "--n", "5", "--out", str(tmp_path / "s.txt")])
    assert r.exit_code == 2 and ".npy" in r.output
    r = CliRunner().invoke(main, ["sample", str(tmp_path / "nowhere"), "--n", "5", "--out", str(tmp_path / "s.npy")])
    assert r.exit_code == 2 and "not a ganforge run directory" in r.output
    r = CliRunner().invoke(main, ["sample", str(trained), "--n", "0", "--out", str(tmp_path / "s.npy")])
    assert r.exit_code == 2


def test_real_process_prints_one_line_and_no_traceback(tmp_path, tiny_yaml):
    p = subprocess.run([sys.executable, "-m", "ganforge", "train", str(tiny_yaml), "--out", str(tmp_path / "r"),
                        "--set", "game.cost.name=nope"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "game.cost.name" in p.stderr and "non_saturating" in p.stderr
