"""Fixtures shared across the test folders."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny networks: one thread is much faster than a contended pool on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
