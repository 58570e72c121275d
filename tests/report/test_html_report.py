"""report.html: self-contained (no network asset), every image a PNG data URI, the run's story told."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import config_from_dict
from ganforge.data.toy import Ring
from ganforge.evaluation import evaluate_run
from ganforge.io import write_json_atomic
from ganforge.report.html import image_grid, write_comparison, write_report
from ganforge.run import load_run, train

RING8 = {"name": "ring", "n_modes": 8, "radius": 2.0, "std": 0.05}
SMALL = {"generator": {"name": "mlp", "widths": [32]}, "discriminator": {"name": "mlp", "widths": [32]}}


def make_run(run_dir: Path, cfg: dict, records: list[dict], snapshots: dict[int, dict[str, np.ndarray]]) -> Path:
    """A run directory written by hand (no training): config.yaml, metrics.jsonl, samples/."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config_from_dict(cfg).to_yaml())
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "samples").mkdir(exist_ok=True)
    for step, arrays in snapshots.items():
        np.savez(run_dir / "samples" / f"step_{step:08d}.npz", **arrays)
    return run_dir


def overpowered_stream(n: int = 40) -> list[dict]:
    out = []
    for i in range(1, n + 1):
        d_fake = 0.4 if i < 10 else 0.001
        d_real = 0.6 if i < 10 else 0.999
        d_cost = -(math.log(d_real) + math.log(1 - d_fake))
        out.append({"step": 100 * i, "d_cost": d_cost, "g_cost": math.log(1 - d_fake), "penalty": 0.0,
                    "d_real": d_real, "d_fake": d_fake, "value": -d_cost, "grad_norm_d": 1.0,
                    "grad_norm_g": 1.0 if i < 10 else 0.001, "lr_g": 1e-3, "lr_d": 1e-3})
    return out


def two_modes(n: int = 1000, seed: int = 0) -> np.ndarray:
    ring = Ring(**{k: v for k, v in RING8.items() if k != "name"})
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 2, (n,), generator=g) * 4
    return (ring.modes[idx] + 0.05 * torch.randn(n, 2, generator=g)).numpy()


def check_self_contained(page: str) -> list[Image.Image]:
    """No network reference at all; every <img> is a PNG data URI that decodes; returns the images."""
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"url\(", page)  # no CSS-loaded assets either
    srcs = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(srcs) == page.count("<img"), "every <img> has a src"
    images = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG"
        img.verify()
        images.append(Image.open(io.BytesIO(data)))
    return images


@pytest.fixture(scope="module")
def overpowered(tmp_path_factory) -> Path:
    cfg = {"name": "overpowered", "data": RING8, "model": SMALL, "game": {"cost": {"name": "minimax"}},
           "train": {"steps": 4000, "log_every": 100}}
    snaps = {st: {"samples": two_modes(seed=st), "ema_samples": two_modes(seed=st + 1)}
             for st in range(0, 4001, 400)}
    return make_run(tmp_path_factory.mktemp("runs") / "overpowered", cfg, overpowered_stream(), snaps)


def test_report_of_a_troubled_run(overpowered):
    path = write_report(overpowered)
    assert path == overpowered / "report.html"
    page = path.read_text()
    images = check_self_contained(page)
    # costs, D outputs, gradient norms, timeline, samples over training, mode histogram
    assert len(images) == 6
    assert all(im.size[0] > 300 and im.size[1] > 150 for im in images)
    assert "D overpowering G since step 1,000" in page
    assert "Mode collapse since step 400" in page and "cover 2 of 8 modes" in page
    assert "Mode histogram" in page and "Diagnostics timeline" in page
    assert "cost:\n    name: minimax" in page  # the config, as YAML
    assert "No eval.json" in page
    assert 'data-images-loaded' in page  # the inline check for headless browsers


def test_report_of_a_trained_toy_run_with_eval(tmp_path):
    cfg = config_from_dict({"name": "ring-small", "data": RING8, "model": SMALL,
                            "train": {"steps": 40, "batch_size": 64, "log_every": 10, "threads": 1,
                                      "progress": False}})
    train(cfg, tmp_path)
    write_json_atomic(tmp_path / "eval.json", evaluate_run(load_run(tmp_path), n=300))
    page = write_report(tmp_path).read_text()
    check_self_contained(page)
    assert "Metrics (eval.json)" in page and "<th>modes_captured</th>" in page and "reverse_kl" in page
    # 40 steps do not find the ring: the report says so (issue 11: it was green)
    assert "No warnings" not in page and 'class="ok"' not in page
    assert ">low_quality</span>" in page and "Low-quality fit since step 32" in page
    assert "eval.json (step 40)" in page  # the mode histogram comes from eval.json


def test_report_of_a_one_d_run_has_the_figure_4_plot(tmp_path):
    cfg = {"name": "g1d", "data": {"name": "gaussian1d", "mean": 4.0, "std": 0.5}, "model": SMALL,
           "game": {"prior": {"name": "gaussian", "latent_dim": 1}}, "train": {"steps": 300}}
    grid = np.linspace(1.0, 7.0, 50)
    rng = np.random.default_rng(0)
    snaps = {st: {"samples": rng.normal(4.0 * st / 300, 0.5, size=(400, 1)).astype(np.float32), "grid": grid,
                  "d_grid": 1 / (1 + np.exp(grid - 4.0 * st / 300))} for st in (0, 100, 200, 300)}
    records = [{"step": s, "d_cost": 1.38, "g_cost": 0.69, "d_real": 0.5, "d_fake": 0.5, "value": -1.38}
               for s in (100, 200, 300)]
    page = write_report(make_run(tmp_path, cfg, records, snaps)).read_text()
    check_self_contained(page)
    assert "Figure 4" in page and "Mode histogram" not in page


def test_report_of_image_samples_draws_grids(tmp_path):
    cfg = {"name": "pixels", "data": RING8, "model": SMALL, "train": {"steps": 20}}
    rng = np.random.default_rng(0)
    snaps = {st: {"samples": rng.uniform(-1, 1, size=(16, 1, 8, 8)).astype(np.float32)} for st in (0, 10, 20)}
    records = [{"step": s, "d_cost": 1.3, "g_cost": 0.7, "d_real": 0.55, "d_fake": 0.45, "value": -1.3}
               for s in (10, 20)]
    page = write_report(make_run(tmp_path, cfg, records, snaps), tmp_path / "elsewhere.html").read_text()
    check_self_contained(page)
    assert "Generated images from a fixed latent batch" in page


def test_comparison_overlays_runs(overpowered, tmp_path):
    other = make_run(tmp_path / "calm", {"name": "calm", "data": RING8, "model": SMALL, "train": {"steps": 4000}},
                     [dict(r, d_real=0.55, d_fake=0.45, grad_norm_g=1.0) for r in overpowered_stream()], {})
    out = write_comparison([overpowered, other], tmp_path / "compare.html")
    page = out.read_text()
    images = check_self_contained(page)
    assert len(images) == 6  # J(D), J(G), D(real), D(fake), value, |grad G|
    assert "<td>overpowered</td>" in page and "<td>calm</td>" in page
    assert "overpowering x1" in page


def test_image_grid_layout_and_range():
    x = np.stack([np.full((1, 4, 4), v) for v in (-1.0, -0.5, 0.0, 0.5, 1.0)])
    g = image_grid(x, nrow=4, pad=2, rgb=True)  # the one image grid (ganforge.sampling), RGB for matplotlib
    assert g.shape == (2 * 6 + 2, 4 * 6 + 2, 3) and g.dtype == np.uint8
    assert g[2, 2, 0] == 0 and g[2 + 6, 2 + 0, 0] == 255  # -1 -> black, 1 (5th image, 2nd row) -> white
    assert g[2, 2 + 12, 0] == 128  # 0 -> mid grey
    with pytest.raises(ValueError, match="expects"):
        image_grid(np.zeros((4, 2)))


def test_comparison_gives_a_hinge_run_its_own_axis(overpowered, tmp_path, monkeypatch):
    """issue 11: compare drew a hinge run's raw D score on the probability axis of the other runs."""
    from ganforge.report import html as report_html

    hinge_records = [dict(r, d_real=1.5 + 0.001 * r["step"], d_fake=-1.2, value=0.4) for r in overpowered_stream()]
    hinge = make_run(tmp_path / "hinge", {"name": "hinge", "data": RING8, "model": SMALL,
                                          "game": {"cost": {"name": "hinge"}}, "train": {"steps": 4000}},
                     hinge_records, {})
    figures = []
    monkeypatch.setattr(report_html, "_fig_uri", lambda fig: figures.append(fig) or "data:image/png;base64,")
    page = report_html.render_comparison([overpowered, hinge])
    assert "each unit gets its own panel" in page
    assert "<td>probability</td>" in page and "<td>raw score</td>" in page
    by_title = {fig.axes[0].get_title().split(" (")[0]: fig for fig in figures}
    d_real = by_title["D(real)"]
    prob_ax, raw_ax = d_real.axes
    assert prob_ax.get_ylabel() == "D(real), a probability"
    assert raw_ax.get_ylabel() == "D(real), raw score of the hinge D"
    assert "not a probability" in raw_ax.get_title()

    def data_lines(ax):
        return {ln.get_label(): ln.get_ydata() for ln in ax.get_lines() if ln.get_label() not in ("1/2", "-log 4")}

    prob_lines, raw_lines = data_lines(prob_ax), data_lines(raw_ax)
    assert list(prob_lines) == ["overpowered"] and list(raw_lines) == ["hinge"]
    np.testing.assert_allclose(raw_lines["hinge"], [r["d_real"] for r in hinge_records])
    np.testing.assert_allclose(prob_lines["overpowered"], [r["d_real"] for r in overpowered_stream()])
    assert any(ln.get_label() == "1/2" for ln in prob_ax.get_lines())  # equilibrium only where D is a probability
    assert not any(ln.get_label() == "1/2" for ln in raw_ax.get_lines())
    # the value: -log 4 only on the probability panel; |grad G| stays one panel (a norm in every run)
    value = by_title["The game's value -J(D)"]
    assert [ax.get_ylabel() for ax in value.axes] == ["nats", "hinge cost units"]
    assert len(by_title["|grad G|"].axes) == 1
    # the pure description agrees
    runs = [report_html._Run(overpowered), report_html._Run(hinge)]
    panels = report_html.comparison_panels(runs, "d_fake", "D(fake)")
    assert [(p["units"], [ln[0] for ln in p["lines"]]) for p in panels] == [("probability", ["overpowered"]),
                                                                         ("hinge", ["hinge"])]
    # runs in the same units share one panel, with no unit note
    assert len(report_html.comparison_panels(runs[:1] * 2, "d_real", "D(real)")) == 1
