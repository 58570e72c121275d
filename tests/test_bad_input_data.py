"""Bad data inputs (issue 11): data that cannot fit, images in modes that cannot be read, data paths
relative or under ``~``. Same rules as tests/test_bad_input_corpus.py: the real command line gives
exactly one line on stderr starting "ganforge: error:", exit code 2, no traceback, and leaves every
file already there byte-identical. Free memory is fixed at 16 GiB, so 8 GiB may hold data."""

from __future__ import annotations

import gzip
import io
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image
from test_bad_input_corpus import IMG, TINY, snapshot

import ganforge
from ganforge.cli import main
from ganforge.data import base, images

GIB = 1 << 30


def _npz_claiming(path: Path, shape: tuple[int, ...]) -> None:
    """A 1 kB .npz whose images.npy header claims ``shape`` (uint8): what a 12 GB archive looks like."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", header.getvalue() + bytes(64))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("world")
    (w / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    ganforge.train(ganforge.config_from_dict(TINY), w / "run")
    _npz_claiming(w / "inflates.npz", (12_000, 1_000, 1_000))
    (w / "idx").mkdir()
    head = struct.pack(">IIII", 0x00000803, 10**6, 10**4, 10**4)
    (w / "idx" / "huge-images.gz").write_bytes(gzip.compress(head + bytes(1000)))
    (w / "idx" / "huge-images").write_bytes(head + bytes(1000))
    (w / "lab").mkdir()
    Image.new("L", (8, 8)).save(w / "lab" / "a.png")
    Image.new("LAB", (8, 8)).save(w / "lab" / "b.png", format="TIFF")  # opens as LAB whatever its name
    (w / "float").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Image.fromarray(np.full((8, 8), 7.5, np.float32)).save(w / "float" / "f.png", format="TIFF")
    (w / "cwd").mkdir()
    return w


@pytest.fixture
def sixteen_gib(monkeypatch):
    monkeypatch.setattr(base, "available_memory_bytes", lambda: 16 * GIB, raising=False)
    monkeypatch.setattr(images, "available_memory_bytes", lambda: 16 * GIB)


def T(w: Path, *extra: str) -> list[str]:
    return ["train", str(w / "tiny.yaml"), "--out", str(w / "new"), *extra]


CASES = {
    "grid n 100000": (lambda w: T(w, "--set", "data={name: grid, n: 100000}"),
                      ["data", "grid n = 100000", "10,000,000,000 modes", "GiB", "16.0 GiB available"]),
    "ring n_modes 10^9": (lambda w: T(w, "--set", "data={name: ring, n_modes: 1000000000}"),
                          ["data", "ring n_modes = 1000000000", "1,000,000,000 modes", "16.0 GiB available"]),
    "npz inflating to 12 GB": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'inflates.npz'}, "
                                                        "layout: NHW}", *IMG),
                               [f"{Path('inflates.npz')}[images]", "(12000, 1000, 1000)", "11.2 GiB",
                                "16.0 GiB available"]),
    "idx gz claiming 10^14 bytes": (lambda w: T(w, "--set", f"data={{name: idx, images: "
                                                             f"{w / 'idx' / 'huge-images.gz'}}}", *IMG),
                                    ["huge-images.gz", "[1000000, 10000, 10000]", "93,132.3 GiB", "16.0 GiB available"]),
    "idx claiming 10^14 bytes": (lambda w: T(w, "--set", f"data={{name: idx, images: {w / 'idx' / 'huge-images'}}}",
                                             *IMG),
                                 ["huge-images:", "93,132.3 GiB", "16.0 GiB available"]),
    "image in LAB mode": (lambda w: T(w, "--set", f"data={{name: image_folder, path: {w / 'lab'}}}", *IMG),
                          [str(Path("lab") / "b.png"), "image mode LAB", "not supported"]),
    "float image outside [0, 1]": (lambda w: T(w, "--set", f"data={{name: image_folder, path: {w / 'float'}}}", *IMG),
                                   ["f.png", "image mode F", "7.5"]),
    "relative data path": (lambda w: T(w, "--set", "data={name: image_folder, path: photos}", *IMG),
                           ["{cwd}/photos: image folder not found"]),
    "relative npy path": (lambda w: T(w, "--set", "data={name: image_array, path: sub/x.npy, layout: NHW}", *IMG),
                          ["{cwd}/sub/x.npy: array file not found"]),
    "home data path": (lambda w: T(w, "--set", "data={name: mnist, path: ~/mnist-files}", *IMG),
                       ["{home}/mnist-files: not a directory"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_data_input(world, name, sixteen_gib, monkeypatch):
    home = world / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(world / "cwd")
    args, expected = CASES[name]
    before = snapshot(world)
    r = CliRunner().invoke(main, args(world))
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    for part in expected:
        assert part.format(cwd=world / "cwd", home=home) in lines[0], lines[0]
    assert "Traceback" not in r.output
    assert snapshot(world) == before
