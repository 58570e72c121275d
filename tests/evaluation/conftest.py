"""Feature tests run single-threaded: the networks are tiny, and on a shared machine torch's
thread pool spends far longer waiting at barriers than computing (20-40x slower under load)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_threaded(one_thread):
    yield
