"""Where the project's shared data lives, for the table tests (../shared/data beside the checkout, or
GANFORGE_SHARED_DATA): None when absent, so that the tests that need it skip cleanly."""

from __future__ import annotations

import os
from pathlib import Path

ADULT_NAMES = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
               "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
               "income"]


def shared_data(sub: str, marker: str = "") -> Path | None:
    """``shared/data/<sub>`` (holding ``marker`` when given), found from GANFORGE_SHARED_DATA or by
    walking up from this file."""
    env = os.environ.get("GANFORGE_SHARED_DATA")
    candidates = ([Path(env) / sub] if env else []) + [p / "shared" / "data" / sub for p in Path(__file__).resolve().parents]
    return next((c for c in candidates if (c / marker).exists() if marker or c.is_dir()), None)
