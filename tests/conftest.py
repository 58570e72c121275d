"""Fixtures shared across the test folders."""

from __future__ import annotations

import hashlib

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
