"""Fixtures shared across the test folders."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny networks: one thread is much faster than a contended pool on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's tensors (as float32, by sorted name): how the legacy fixtures record
    the weights the code before issue 11 reached."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture
def weights_digest():
    return _weights_digest


def _cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``model name`` in /proc/cpuinfo), else what
    ``platform.processor()`` says, else "unknown CPU"."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return " ".join(value.split())
    return platform.processor() or "unknown CPU"


def machine_key() -> str:
    """What a bit-identity reference is valid for: torch's version, the CPU model and the CPU capability
    torch dispatches its kernels for. Float results of the same code differ between CPUs (MKL and
    oneDNN pick other kernels, other summation orders), so digests of trained weights are recorded
    per machine, e.g. ``torch 2.13.0+cpu | AMD EPYC | AVX512``."""
    return f"torch {torch.__version__} | {_cpu_model()} | {torch.backends.cpu.get_cpu_capability()}"


def reference_for_this_machine(doc: dict, what: str, how_to_make: str) -> dict:
    """``doc["machines"][machine_key()]``: the digests recorded on a machine like this one. Where none
    were recorded, the test skips (a digest from another CPU says nothing about the code), naming the
    machines that have references and the command that makes one for this machine."""
    machines = doc.get("machines", {})
    key = machine_key()
    if key not in machines:
        have = "; ".join(repr(k) for k in machines) or "none"
        pytest.skip(f"{what}: no reference for this machine ({key!r}); references exist for {have}; "
                    f"make one with: {how_to_make}")
    return machines[key]


@pytest.fixture
def machine_reference() -> Callable[[dict, str, str], dict]:
    """reference_for_this_machine, as a fixture (a test module's ``from conftest import`` can resolve to
    another folder's conftest.py in the full suite)."""
    return reference_for_this_machine


def record_reference(path: Path, entry: dict, metadata: dict | None = None) -> str:
    """Merge ``entry`` into ``path``'s ``machines`` under this machine's key (other machines' entries
    and the file's metadata stay; ``metadata`` updates the top level) and write the file atomically.
    For the fixture scripts, which run with an old checkout's ganforge on PYTHONPATH. Returns the key."""
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc.update(metadata or {})
    key = machine_key()
    machines = doc.pop("machines", {})  # kept last in the file, after the metadata
    machines[key] = {**machines.get(key, {}), **entry}
    doc["machines"] = machines
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc, indent=1) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return key
