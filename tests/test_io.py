"""Atomic writes: the file appears whole or not at all, with the permissions a plain open() gives."""

from __future__ import annotations

import os
import stat

import pytest

from ganforge.io import atomic_open, write_text_atomic


def test_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
        os.umask(0o077)
        write_text_atomic(tmp_path / "b.txt", "x")
        assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_replacing_a_file_keeps_its_mode(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("old")
    p.chmod(0o640)
    write_text_atomic(p, "new")
    assert p.read_text() == "new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    p = tmp_path / "d.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(p, "w") as f:
        f.write("half")
        raise RuntimeError("disk gone")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["d.txt"]
