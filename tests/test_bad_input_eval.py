"""Bad input to `ganforge eval`: absurd sample counts, a device the machine lacks, an output that
cannot be written, a run whose training data is gone.

As in tests/test_bad_input_corpus.py, each case runs the real command line and must give exactly one
line on stderr that starts with "ganforge: error:" and says what is wrong, exit code 2, no
traceback, and leave every file that was already there byte-identical.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganforge
from ganforge.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny networks, one thread

SMALL = ["train.steps=2", "train.batch_size=8", "train.progress=false", "train.threads=1", "train.log_every=1",
         "train.checkpoint_every=2"]
DCGAN = ["model.generator={name: dcgan, ngf: 4}", "model.discriminator={name: dcgan, ndf: 4}"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("evalworld")
    ganforge.train(ganforge.load_config("ring8", SMALL), w / "toy")
    ganforge.train(ganforge.load_config("digits-dcgan", SMALL + DCGAN), w / "digits")
    images = w / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(images / f"{i:02d}.png")
    ganforge.train(ganforge.load_config("digits-dcgan", SMALL + DCGAN + [
        f"data={{name: image_folder, path: {images}, resolution: 8}}"]), w / "folder")
    shutil.rmtree(images)  # the run stays; its training data is gone
    (w / "afile").write_text("not a directory\n")
    return w


def snapshot(w: Path) -> dict[str, bytes]:
    return {str(p.relative_to(w)): p.read_bytes() for p in sorted(w.rglob("*")) if p.is_file()}


def one_line(w: Path, args: list[str], *expected: str) -> str:
    before = snapshot(w)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    assert "Traceback" not in r.output
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert snapshot(w) == before  # nothing already there changed
    return lines[0]


def test_toy_eval_of_a_billion_samples_is_refused_at_once(world: Path) -> None:
    # before: sampled 10^9 points (8 GB) and more before failing, or was killed for memory
    one_line(world, ["eval", str(world / "toy"), "--n", str(10**9)], "--n 1,000,000,000", "GiB", "default is 2,500")


def test_image_eval_of_a_billion_samples_is_refused_before_sampling(world: Path) -> None:
    line = one_line(world, ["eval", str(world / "digits"), "--n", str(10**9)],
                    "1,000,001,797 images for kid,prdc", "GiB", "--metrics fid alone")
    assert "digits features" in line


def test_eval_on_a_gpu_the_machine_lacks(world: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    one_line(world, ["eval", str(world / "toy"), "--device", "cuda"], "--device cuda", "no CUDA GPU", "--device cpu")
    one_line(world, ["eval", str(world / "digits"), "--device", "cuda:1"], "--device cuda:1")


def test_eval_on_a_device_that_is_not_one(world: Path) -> None:
    one_line(world, ["eval", str(world / "toy"), "--device", "gpu"], "--device 'gpu'", "cpu, cuda, cuda:N")


def test_eval_out_under_a_file(world: Path) -> None:
    one_line(world, ["eval", str(world / "toy"), "--out", str(world / "afile" / "eval.json")],
             "is a file, not a directory", "nothing was written")
    one_line(world, ["eval", str(world / "toy"), "--out", str(world / "afile" / "deeper" / "eval.json")],
             "is a file, not a directory")


def test_eval_out_empty_or_a_directory(world: Path) -> None:
    one_line(world, ["eval", str(world / "toy"), "--out", ""], "--out '': empty path")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_eval_out_in_a_read_only_directory(world: Path) -> None:
    ro = world / "readonly"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o555)
    try:
        one_line(world, ["eval", str(world / "toy"), "--out", str(ro / "eval.json")], "not writable")
    finally:
        ro.chmod(0o755)


def test_eval_out_refused_by_the_file_system_at_write_time(world: Path, monkeypatch) -> None:
    """The write itself fails (a read-only mount, a full disk): one line, the old eval.json untouched."""
    (world / "toy" / "eval.json").write_text('{"old": true}\n')

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    one_line(world, ["eval", str(world / "toy")], "cannot write it (Permission denied)", "nothing was changed")
    assert (world / "toy" / "eval.json").read_text() == '{"old": true}\n'


def test_eval_of_a_run_whose_data_was_deleted(world: Path) -> None:
    line = one_line(world, ["eval", str(world / "folder"), "--n", "16"], "eval compares samples with real images",
                    "image_folder", "--real-path DIR")
    assert str(world / "images") in line


def test_a_run_whose_data_moved_is_evaluated_with_real_path(world: Path, tmp_path: Path) -> None:
    """The option the message names works (the data given elsewhere)."""
    moved = tmp_path / "moved"
    moved.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(moved / f"{i:02d}.png")
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(main, ["eval", str(world / "folder"), "--n", "16", "--metrics", "fid", "--real-path",
                                  str(moved), "--features", f"{__file__}:pixel_features",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file() and "fid" in r.output


def pixel_features():
    """Features = the pixels (an extractor for any 8x8 image)."""
    from ganforge.evaluation import from_callable

    return from_callable(lambda x: x.flatten(1), name="pixels")
