"""Bad input around the run directory and output paths (issue 11's new-user findings).

As in test_bad_input_corpus.py: each case runs the real command line and must give exactly one line
on stderr that starts with "ganforge: error:" and says what is wrong, exit code 2, no traceback, and
leave every file that was already there byte-identical.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_bad_input_corpus import TINY  # the corpus's tiny ring run

import ganforge
from ganforge.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
DIGITS = {**TINY, "name": "digits-tiny", "data": {"name": "digits"},
          "model": {"generator": {"name": "dcgan", "ngf": 4}, "discriminator": {"name": "dcgan", "ndf": 4}},
          "game": {"prior": {"name": "gaussian", "latent_dim": 4}}}
USER_CONFIG = "# my own notes: do not lose them\n" + yaml.safe_dump(TINY)
READ_ONLY = Path("/sys/ganforge-test-run")  # a location that even root cannot create files in


def _read_only_available() -> bool:
    try:
        READ_ONLY.mkdir()
    except OSError:
        return True
    READ_ONLY.rmdir()
    return False


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("world")
    (w / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    ganforge.train(ganforge.config_from_dict(TINY), w / "run")
    ganforge.train(ganforge.config_from_dict(DIGITS), w / "digits")
    (w / "mine").mkdir()
    (w / "mine" / "config.yaml").write_text(USER_CONFIG)
    (w / "notes").mkdir()
    (w / "notes" / "notes.txt").write_text("my notes\n")
    (w / "afile").write_text("a file, not a directory\n")
    shutil.copytree(w / "run", w / "run_fifo")
    os.mkfifo(w / "run_fifo" / "checkpoints" / "step_99999999.safetensors")
    return w


def snapshot(w: Path) -> dict[str, bytes]:
    return {str(p.relative_to(w)): p.read_bytes() for p in sorted(w.rglob("*")) if p.is_file()}


F = "afile"  # under a file: <world>/afile/x
CASES = {
    # --out of train
    "train --out . over the user's config.yaml": (lambda w: ["train", "config.yaml", "--out", "."], "mine",
                                                  "did not write"),
    "train into a folder of other files": (lambda w: ["train", str(w / "tiny.yaml"), "--out", str(w / "notes")], None,
                                           "notes.txt"),
    "train --out empty": (lambda w: ["train", str(w / "tiny.yaml"), "--out", ""], None, "--out is empty"),
    "train --out under a file": (lambda w: ["train", str(w / "tiny.yaml"), "--out", str(w / F / "run")], None,
                                 "is a file"),
    "train --out is a file": (lambda w: ["train", str(w / "tiny.yaml"), "--out", str(w / F)], None,
                              "not a directory"),
    # --out of the other commands
    "sample --out under a file": (lambda w: ["sample", str(w / "run"), "--out", str(w / F / "s.npy")], None,
                                  "is a file"),
    "sample --out empty": (lambda w: ["sample", str(w / "run"), "--out", ""], None, "--out is empty"),
    "report --out under a file": (lambda w: ["report", str(w / "run"), "--out", str(w / F / "r.html")], None,
                                  "is a file"),
    "interpolate --out under a file": (lambda w: ["interpolate", str(w / "digits"), "--out", str(w / F / "i.png")],
                                       None, "is a file"),
    "traverse --out under a file": (lambda w: ["traverse", str(w / "digits"), "--out", str(w / F / "t")], None,
                                    "is a file"),
    "eval --out under a file": (lambda w: ["eval", str(w / "run"), "--n", "50", "--out", str(w / F / "e.json")], None,
                                "afile"),
    # sample arguments
    "sample --truncation nan": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.npy"), "--truncation",
                                           "nan"], None, "--truncation nan"),
    "sample --truncation inf": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.npy"), "--truncation",
                                           "inf"], None, "finite"),
    "sample --truncation 0": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.npy"), "--truncation", "0"],
                              None, "> 0"),
    "sample --n 10^12 to .npz (memory)": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.npz"), "--n",
                                                     str(10**12)], None, "memory"),
    "sample --n 10^12 to .npy (disk)": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.npy"), "--n",
                                                   str(10**12)], None, "disk"),
    "sample --n 10^9 png grid (memory)": (lambda w: ["sample", str(w / "digits"), "--out", str(w / "g.png"), "--n",
                                                     str(10**9)], None, "memory"),
    # checkpoints
    "sample with a FIFO as newest checkpoint": (lambda w: ["sample", str(w / "run_fifo"), "--out",
                                                           str(w / "s.npy")], None, "not a regular file"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(world, name, monkeypatch):
    args, cwd, expected = CASES[name]
    if cwd is not None:
        monkeypatch.chdir(world / cwd)
    before = snapshot(world)
    r = CliRunner().invoke(main, args(world))
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    assert expected in lines[0], lines[0]
    assert "Traceback" not in r.output
    assert snapshot(world) == before
    assert not (world / "new").exists()


def test_user_config_survives_train_out_dot(world, monkeypatch):
    """Fails on b6bd8ea: config.yaml was replaced by the resolved config (the user's comments lost)."""
    monkeypatch.chdir(world / "mine")
    r = CliRunner().invoke(main, ["train", "config.yaml", "--out", "."])
    assert r.exit_code == 2
    assert (world / "mine" / "config.yaml").read_text() == USER_CONFIG
    assert sorted(p.name for p in (world / "mine").iterdir()) == ["config.yaml"]


@pytest.mark.parametrize("command", ["train", "sample", "report", "eval"])
def test_read_only_out(world, command):
    if not _read_only_available():
        pytest.skip(f"{READ_ONLY.parent} is writable here")
    args = {"train": ["train", str(world / "tiny.yaml"), "--out", str(READ_ONLY)],
            "sample": ["sample", str(world / "run"), "--out", str(READ_ONLY / "s.npy")],
            "report": ["report", str(world / "run"), "--out", str(READ_ONLY / "r.html")],
            "eval": ["eval", str(world / "run"), "--n", "50", "--out", str(READ_ONLY / "e.json")]}[command]
    before = snapshot(world)
    r = CliRunner().invoke(main, args)
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    assert "ganforge-test-run" in lines[0] or "/sys" in lines[0], lines[0]
    assert snapshot(world) == before


def test_resume_with_a_fifo_as_newest_checkpoint_does_not_hang(world, tmp_path):
    """Fails on b6bd8ea: reading the FIFO blocked forever (here: the 120 s timeout)."""
    run = tmp_path / "run"
    shutil.copytree(world / "run", run, ignore=shutil.ignore_patterns("step_99999999.safetensors"))
    os.mkfifo(run / "checkpoints" / "step_00000099.safetensors")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    r = subprocess.run([sys.executable, "-m", "ganforge", "train", str(world / "tiny.yaml"), "--out", str(run)],
                       capture_output=True, text=True, timeout=120, env=env)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and "not a regular file" in lines[0], r.stderr


def test_npy_samples_are_streamed_and_equal_the_in_memory_ones(world, tmp_path):
    """Batches across the 4096 boundary, written one by one, equal sample(n) exactly."""
    import numpy as np
    import torch

    r = CliRunner().invoke(main, ["sample", str(world / "run"), "--n", "5000", "--seed", "7",
                                  "--out", str(tmp_path / "s.npy")])
    assert r.exit_code == 0, r.output
    got = np.load(tmp_path / "s.npy", allow_pickle=False)
    want = ganforge.load_generator(world / "run").sample(5000, seed=7)
    assert got.dtype == np.float32 and got.shape == (5000, 2)
    assert torch.equal(torch.from_numpy(got), want)
