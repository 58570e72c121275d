"""report.html in a real browser: headless Chromium (Debian's ``chromium`` package) renders it.

Checks: a screenshot that is not blank; in the DOM after load, every image decoded
(``data-images-loaded``, set by the report's inline script), no script or resource error
(``data-errors``), and no console message. Skipped when Chromium is not installed
(``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.config import config_from_dict
from ganforge.report.html import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-dev-shm-usage", "--window-size=1200,3000"]


def chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp)}  # the profile and caches stay in the test's directory
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report with warnings, curves, a timeline, 2-D samples and a mode histogram (no training)."""
    run = tmp_path_factory.mktemp("browser") / "run"
    run.mkdir()
    cfg = {"name": "browser-check", "data": {"name": "ring", "n_modes": 8, "radius": 2.0, "std": 0.05},
           "game": {"cost": {"name": "minimax"}}, "train": {"steps": 2000}}
    (run / "config.yaml").write_text(config_from_dict(cfg).to_yaml())
    recs = []
    for i in range(1, 21):
        d_real, d_fake = (0.6, 0.4) if i < 8 else (0.999, 0.001)
        d_cost = -(math.log(d_real) + math.log(1 - d_fake))
        recs.append({"step": 100 * i, "d_cost": d_cost, "g_cost": math.log(1 - d_fake), "value": -d_cost,
                     "d_real": d_real, "d_fake": d_fake, "grad_norm_d": 1.0, "grad_norm_g": 1.0 if i < 8 else 1e-3})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "samples").mkdir()
    rng = np.random.default_rng(0)
    angles = 2 * np.pi * np.array([0, 4]) / 8
    for st in range(0, 2001, 400):
        centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1)[rng.integers(0, 2, 1000)]
        np.savez(run / "samples" / f"step_{st:08d}.npz", samples=centres + 0.05 * rng.normal(size=(1000, 2)))
    return write_report(run)


def test_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    r = chromium([f"--screenshot={shot}", report.as_uri()], tmp_path)
    assert shot.exists(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 3000)
    px = np.asarray(img)
    assert (px < 235).any(axis=2).mean() > 0.03  # text, axes and curves, not an empty white page
    assert len(np.unique(px.reshape(-1, 3)[::5], axis=0)) > 100  # figures in colour, not one flat tone


def test_every_image_loads_and_nothing_errs(report, tmp_path):
    r = chromium(["--dump-dom", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
                  report.as_uri()], tmp_path)
    body = re.search(r"<body[^>]*>", r.stdout)
    assert body is not None, r.stderr[-2000:]
    attrs = dict(re.findall(r'(data-[\w-]+)="([^"]*)"', body.group(0)))
    n_images = report.read_text().count("<img")
    assert n_images >= 5
    assert attrs.get("data-image-count") == str(n_images)
    assert attrs.get("data-images-loaded") == "true"
    assert attrs.get("data-errors") == "0"
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
