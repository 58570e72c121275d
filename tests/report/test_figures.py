"""Figures of report/figures.py: layout checked on the drawn figure's text boxes (issue 11: Figure 4's
panel titles overlapped its title)."""

from __future__ import annotations

import numpy as np
from test_html_report import SMALL, make_run

from ganforge.data.toy import Gaussian1D
from ganforge.report.figures import figure4


def one_d_run(tmp_path):
    cfg = {"name": "g1d", "data": {"name": "gaussian1d", "mean": 4.0, "std": 0.5}, "model": SMALL,
           "game": {"prior": {"name": "gaussian", "latent_dim": 1}}, "train": {"steps": 300}}
    grid = np.linspace(1.0, 7.0, 200)
    rng = np.random.default_rng(0)
    snaps = {st: {"samples": rng.normal(2 + 2.0 * st / 300, 0.5, size=(2000, 1)).astype(np.float32), "grid": grid,
                  "d_grid": 1 / (1 + np.exp(2 * (grid - 3 - st / 300)))} for st in (0, 100, 200, 300)}
    records = [{"step": s, "d_cost": 1.38, "g_cost": 0.69, "d_real": 0.5, "d_fake": 0.5, "value": -1.38}
               for s in (100, 200, 300)]
    return make_run(tmp_path / "run", cfg, records, snaps)


def test_figure4_title_panel_titles_and_legend_do_not_overlap(tmp_path, monkeypatch):
    import ganforge.report.figures as figures

    drawn = []  # the figure figure4 saves, kept open
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    figure4(one_d_run(tmp_path), Gaussian1D(4.0, 0.5), tmp_path / "fig4.png")
    (fig,) = drawn
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(r)
    panel_titles = [ax.title.get_window_extent(r) for ax in fig.axes]
    assert [ax.get_title() for ax in fig.axes] == ["step 0", "step 100", "step 200", "step 300"]
    assert all(title.y0 >= t.y1 for t in panel_titles), "the title sits above every panel title"
    assert not any(title.overlaps(t) for t in panel_titles)
    # the legend sits outside every panel (it used to hide p_model in the first one)
    (legend,) = fig.legends
    box = legend.get_window_extent(r)
    assert [t.get_text() for t in legend.get_texts()] == ["p_data", "p_model", "D(x)", "D*(x)"]
    assert not any(box.overlaps(ax.get_window_extent(r)) for ax in fig.axes)
    assert all(ax.get_legend() is None for ax in fig.axes)


def test_figure4_writes_a_png(tmp_path):
    out = figure4(one_d_run(tmp_path), Gaussian1D(4.0, 0.5), tmp_path / "fig4.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
