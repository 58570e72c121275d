"""The per-machine bit-identity references (tests/conftest.py): the entry of this machine, or a skip
that names the machines that have one and the command that makes one here. The helpers are reached
through the fixture's module (tests/conftest.py), not ``import conftest``, which can resolve to another
folder's conftest.py in the full suite."""

from __future__ import annotations

import json

import pytest
import torch


def test_the_key_names_torch_the_cpu_and_its_capability(machine_reference):
    key = machine_reference.__globals__["machine_key"]()
    parts = key.split(" | ")
    assert len(parts) == 3 and parts[0] == f"torch {torch.__version__}" and parts[1]
    assert parts[2] == torch.backends.cpu.get_cpu_capability()


def test_this_machines_entry_is_returned(machine_reference):
    key = machine_reference.__globals__["machine_key"]()
    doc = {"commit": "abc", "machines": {"another CPU": {"x": "1"}, key: {"x": "2"}}}
    assert machine_reference(doc, "digests", "make it") == {"x": "2"}


def test_without_an_entry_it_skips_naming_the_machines_and_the_command(machine_reference):
    doc = {"machines": {"another CPU": {"x": "1"}, "a third": {"x": "3"}}}
    with pytest.raises(pytest.skip.Exception) as info:
        machine_reference(doc, "recipe digests", "python make.py")
    message = str(info.value)
    assert "\n" not in message and message.startswith("recipe digests: no reference for this machine")
    assert "'another CPU'; 'a third'" in message and message.endswith("make one with: python make.py")


def test_recording_merges_this_machines_entry_and_keeps_the_others(machine_reference, tmp_path):
    record_reference = machine_reference.__globals__["record_reference"]
    path = tmp_path / "expected.json"
    path.write_text(json.dumps({"steps": 8, "machines": {"another CPU": {"g": "1"}}}))
    key = record_reference(path, {"g": "2"})
    key = record_reference(path, {"d": "3"}, metadata={"commit": "abc"})
    assert json.loads(path.read_text()) == {"steps": 8, "commit": "abc",
                                            "machines": {"another CPU": {"g": "1"}, key: {"g": "2", "d": "3"}}}
    assert [p.name for p in tmp_path.iterdir()] == ["expected.json"]  # no temporary file left
