"""Data that cannot fit is refused at once, before anything is allocated or decompressed, with one
message naming the parameter or file and the memory it needs against what is free (issue 11);
data paths expand ``~`` and show the absolute path they were resolved to."""

from __future__ import annotations

import gzip
import io
import os
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ganforge.data import DATASETS, base, images
from ganforge.errors import ConfigError, DataError

GIB = 1 << 30


@pytest.fixture
def sixteen_gib(monkeypatch):
    """The machine has 16 GiB free (so 8 GiB may hold data)."""
    monkeypatch.setattr(base, "available_memory_bytes", lambda: 16 * GIB, raising=False)
    monkeypatch.setattr(images, "available_memory_bytes", lambda: 16 * GIB)


def load(name: str, **params):
    return DATASETS.get(name)(**DATASETS.validate(name, params, "data"))


@pytest.mark.parametrize(("name", "params", "modes"), [
    ("grid", {"n": 100_000}, "10,000,000,000 modes"),
    ("ring", {"n_modes": 10**9}, "1,000,000,000 modes"),
])
def test_toy_mixture_with_too_many_modes_is_refused_before_allocating(name, params, modes, sixteen_gib):
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        DATASETS.build(name, params, where="data")
    assert time.perf_counter() - start < 1.0
    msg = str(info.value)
    assert msg.startswith("config data: ") and modes in msg
    key, value = next(iter(params.items()))
    assert f"{key} = {value}" in msg
    need = (10**10 if name == "grid" else 10**9) * (36 * 2 + 24) / GIB
    assert f"need {need:,.1f} GiB, more than 50% of the 16.0 GiB available" in msg


def test_toy_mixtures_that_fit_still_build(sixteen_gib):
    assert DATASETS.build("grid", {"n": 300}, where="data").n_modes == 90_000
    assert DATASETS.build("ring", {"n_modes": 100_000}, where="data").n_modes == 100_000


def npz_claiming(path: Path, shape: tuple[int, ...], key: str = "images", dtype: str = "|u1",
                 extra: dict[str, np.ndarray] | None = None) -> Path:
    """An .npz archive whose member ``key``.npy has a valid header claiming ``shape`` but a few bytes
    of data (what a 12 GB archive looks like before its members are decompressed)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{key}.npy", header.getvalue() + bytes(64))
        for k, v in (extra or {}).items():
            buf = io.BytesIO()
            np.save(buf, v)
            z.writestr(f"{k}.npy", buf.getvalue())
    return path


def test_npz_whose_member_inflates_to_12_gb_is_refused_from_its_header(tmp_path, sixteen_gib):
    p = npz_claiming(tmp_path / "big.npz", (12_000, 1_000, 1_000))
    assert p.stat().st_size < 1_000
    with pytest.raises(DataError) as info:
        load("image_array", path=str(p), layout="NHW")
    assert str(info.value).startswith(
        f"{p}[images]: its array of shape (12000, 1000, 1000) and dtype uint8 would, decompressed, need 11.2 GiB, "
        "more than 50% of the 16.0 GiB available; ")
    # the labels member is checked too
    q = npz_claiming(tmp_path / "labels.npz", (10**10,), key="labels", dtype="<i8",
                     extra={"images": np.zeros((4, 8, 8), np.uint8)})
    with pytest.raises(DataError, match=r"labels\.npz\[labels\]: its array of shape \(10000000000,\) and dtype "
                                         r"int64 would, decompressed, need 74\.5 GiB"):
        load("image_array", path=str(q), layout="NHW", labels_key="labels")
    # an archive that fits still loads
    ok = tmp_path / "ok.npz"
    np.savez_compressed(ok, images=np.arange(4 * 64, dtype=np.uint8).reshape(4, 8, 8))
    assert load("image_array", path=str(ok), layout="NHW").shape == (1, 8, 8)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_header_claiming_a_huge_size_is_refused_before_reading(gz, tmp_path, sixteen_gib):
    raw = struct.pack(">IIII", 0x00000803, 10**6, 10**4, 10**4) + bytes(100)
    p = tmp_path / ("huge.gz" if gz else "huge")
    p.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError) as info:
        load("idx", images=str(p))
    assert str(info.value).startswith(
        f"{p}: the 100,000,000,000,000 bytes of dimensions [1000000, 10000, 10000] in its header would need "
        "93,132.3 GiB, more than 50% of the 16.0 GiB available")


def test_gzip_idx_is_checked_as_a_stream(tmp_path):
    """A gzipped IDX file with more data than its header says is refused without decompressing it all."""
    raw = struct.pack(">IIII", 0x00000803, 2, 3, 4) + bytes(24) + bytes(10_000)
    p = tmp_path / "long.gz"
    p.write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match=r"long\.gz: more than 40 bytes once decompressed, expected 40 for dimensions "
                                        r"\[2, 3, 4\] \(the file has extra bytes\)"):
        load("idx", images=str(p))


def test_data_paths_expand_home_and_show_where_they_looked(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "imgs").mkdir(parents=True)
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(home / "imgs" / "a.png")
    monkeypatch.setenv("HOME", str(home))
    ds = load("image_folder", path="~/imgs")
    assert len(ds) == 1 and ds.source == str(home / "imgs")
    np.save(home / "x.npy", np.zeros((2, 4, 4), np.uint8))
    assert load("image_array", path="~/x.npy", layout="NHW").source == str(home / "x.npy")
    # relative paths: resolved against the current directory, and the message says where
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cases = [
        ("image_folder", {"path": "photos"}, f"{work / 'photos'}: image folder not found"),
        ("image_array", {"path": "arr.npy", "layout": "NHW"}, f"{work / 'arr.npy'}: array file not found"),
        ("image_array", {"path": str(home / "x.npy"), "layout": "NHW", "labels_path": "y.npy"},
         f"{work / 'y.npy'}: labels file not found"),
        ("idx", {"images": "imgs-idx3-ubyte"}, f"{work / 'imgs-idx3-ubyte'}: IDX file not found"),
        ("mnist", {"path": "mnist"}, f"{work / 'mnist'}: not a directory"),
        ("mnist", {"path": "~/nope"}, f"{home / 'nope'}: not a directory"),
    ]
    for name, params, message in cases:
        with pytest.raises(DataError) as info:
            load(name, **params)
        assert str(info.value).startswith(message), (name, str(info.value))
        assert os.path.isabs(str(info.value).split(":")[0])
