"""Feature tests run single-threaded: the networks are tiny, and on a shared machine torch's
thread pool spends far longer waiting at barriers than computing (20-40x slower under load)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
