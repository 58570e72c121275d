"""``report.html``: one self-contained page per run (``write_report``), or one page overlaying several
runs (``write_comparison``).

Self-contained means no network at all: figures are PNGs embedded as ``data:`` URIs, the CSS is
inline, and the only script is a few inline lines that mark ``<body>`` with
``data-images-loaded`` (every image decoded) and ``data-errors`` (script or resource errors), so
a headless browser can check the page. Figures are drawn with matplotlib's Agg backend.

A run's page holds: the health summary (the diagnostics' warnings, recomputed from the files),
cost curves, D(real) / D(fake), gradient norms, the diagnostics timeline, samples over training
(2-D scatter, the 1-D Figure-4 plot, or image grids), the mode histogram of toy mixtures,
eval.json's metrics, the equilibrium analysis (analysis.json, analysis.jsonl: report/equilibrium.py),
and the config.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ganforge.diagnostics.analysis import Diagnosis, analyze  # noqa: E402
from ganforge.diagnostics.engine import as_float  # noqa: E402
from ganforge.diagnostics.events import Event  # noqa: E402
from ganforge.diagnostics.signals import LOG4  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.io import write_text_atomic  # noqa: E402
from ganforge.report.figures import _pick, figure4, scatter_over_training  # noqa: E402
from ganforge.sampling import image_grid  # noqa: E402  (the one image grid; re-exported)

_KIND_COLORS = {"overpowering": "#c0392b", "mode_collapse": "#8e44ad", "missed_modes": "#6c3483",
                "low_quality": "#b9770e", "oscillation": "#d35400", "non_finite": "#2c3e50"}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #222;
       background: #f6f7f9; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.2em 0; } h2 { font-size: 1.2em; border-bottom: 1px solid #ddd;
     padding-bottom: 4px; margin-top: 2em; }
.sub { color: #666; margin-bottom: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
td, th { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 10px; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; border: 1px solid #eee; }
.ok { background: #eafaf1; border-left: 4px solid #27ae60; padding: 8px 12px; }
.event { border-left: 4px solid #c0392b; background: #fdf2f0; padding: 8px 12px; margin: 6px 0; }
.badge { display: inline-block; color: #fff; border-radius: 3px; padding: 1px 7px; font-size: 0.85em;
         margin-right: 6px; }
.evidence { color: #555; font-size: 0.85em; margin-top: 3px; }
.note { color: #777; font-style: italic; }
"""

# Marks <body> for headless checks: all images decoded, and no script or resource error.
_SCRIPT = """
(function () {
  var errors = 0;
  function mark() { if (document.body) { document.body.setAttribute('data-errors', String(errors)); } }
  window.addEventListener('error', function () { errors += 1; mark(); }, true);
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.every(function (im) { return im.complete && im.naturalWidth > 0; });
    document.body.setAttribute('data-image-count', String(imgs.length));
    document.body.setAttribute('data-images-loaded', ok ? 'true' : 'false');
    mark();
  });
})();
"""


# ---------------------------------------------------------------------------------------------
# small helpers


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _fig_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return _png_uri(buf.getvalue())


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_esc(alt)}">'


def _series(records: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(int(r["step"]), as_float(r[key])) for r in records if key in r and "step" in r]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(pts, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------------
# one run


class _Run:
    """What the report needs from a run directory, read once."""

    def __init__(self, run_dir: str | Path):
        from ganforge.rundir import RunDir

        self.run = RunDir(run_dir)
        self.dir = self.run.path
        self.config = self.run.read_config()
        self.name = self.config.name
        self.label = self.name  # the name in legends (made unique by write_comparison)
        self.metrics = self.run.read_metrics()
        self.eval = _read_json(self.run.eval_path)
        try:
            from ganforge.components import build_dataset

            # a table is not re-read (its figures come from eval.json); toy data gives the true modes
            self.dataset: Any = None if self.config.data.name == "table" else build_dataset(self.config)
        except GanforgeError:  # the data moved: the report goes on without data-based figures
            self.dataset = None
        self.diagnosis: Diagnosis = analyze(self.dir, dataset=self.dataset)

    @property
    def probabilistic(self) -> bool:
        return self.diagnosis.probabilistic

    @property
    def last_step(self) -> int:
        return int(self.metrics[-1]["step"]) if self.metrics else 0


def _curves_figure(runs: Sequence[_Run], keys: Sequence[tuple[str, str]], title: str, ylabel: str,
                   logy: bool = False, hlines: Sequence[tuple[float, str]] = ()) -> str | None:
    fig, ax = plt.subplots(figsize=(9, 3.4))
    drawn = 0
    for run in runs:
        for key, label in keys:
            x, y = _series(run.metrics, key)
            if x.size == 0:
                continue
            if logy:
                y = np.where(y > 0, y, np.nan)
            name = label if len(runs) == 1 else f"{run.label}: {label}"
            ax.plot(x, y, lw=1.4, label=name, marker="o" if x.size < 30 else None, ms=3)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    for y, label in hlines:
        ax.axhline(y, color="grey", ls=":", lw=1, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel("generator step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _fig_uri(fig)


def _timeline_figure(run: _Run) -> str | None:
    d = run.diagnosis
    if not d.scalars and not d.samples:
        return None
    fig, axes = plt.subplots(3, 1, figsize=(9, 6.2), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1.2]})
    ax = axes[0]
    if run.probabilistic:
        x, y = _series(d.scalars, "eq_gap")
        ax.plot(x, y, color="tab:blue", lw=1.3, label="max |D - 1/2| (0 at equilibrium)")
        x, y = _series(d.scalars, "value_gap")
        ax.plot(x, y, color="tab:green", lw=1.3, label="value + log 4 (0 at equilibrium)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title("Equilibrium")
    else:
        x, y = _series(run.metrics, "value")
        ax.plot(x, y, color="tab:green", lw=1.3, label="value (-J(D))")
        ax.set_title("The game's value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")

    ax = axes[1]
    drew = False
    for key, label, color in (("diversity_ratio", "sample diversity / real data's", "tab:purple"),
                              ("duplicate_rate", "near-duplicate share", "tab:red")):
        x, y = _series(d.samples, key)
        if x.size:
            ax.plot(x, y, marker="o", ms=3, lw=1.2, color=color, label=label)
            drew = True
    x, y = _series(d.samples, "modes_captured")
    _, k = _series(d.samples, "n_modes")
    if x.size:
        ax.plot(x, y / np.maximum(k, 1), marker="s", ms=3, lw=1.2, color="tab:olive", label="modes covered (share)")
        drew = True
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.set_title("Samples (from snapshots)" if drew else "Samples: no snapshots")
    ax.grid(alpha=0.3)
    if drew:
        ax.legend(fontsize=8, loc="upper right")

    ax = axes[2]
    kinds = sorted({e.kind for e in d.events}) or ["(none)"]
    for i, kind in enumerate(kinds):
        for e in d.events:
            if e.kind == kind:
                width = max(e.end_step - e.start_step, max(1, run.last_step // 200))
                ax.barh(i, width, left=e.start_step, height=0.6, color=_KIND_COLORS.get(kind, "grey"))
    ax.set_yticks(range(len(kinds)))
    ax.set_yticklabels(kinds, fontsize=8)
    ax.set_ylim(-0.7, len(kinds) - 0.3)
    ax.set_title("Warnings" if d.events else "Warnings: none")
    ax.set_xlabel("generator step")
    ax.set_xlim(0, max(1, run.last_step))
    fig.tight_layout()
    return _fig_uri(fig)


def _snapshots(run: _Run) -> list[tuple[int, dict[str, np.ndarray]]]:
    return run.run.read_snapshots()


def _samples_figure(run: _Run, snaps: list[tuple[int, dict[str, np.ndarray]]]) -> tuple[str | None, str]:
    """The samples-over-training figure and a caption; (None, why) when there is nothing to draw."""
    if not snaps:
        return None, "No sample snapshots in samples/."
    x0 = snaps[-1][1].get("ema_samples", snaps[-1][1]["samples"])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fig.png"
        try:
            if x0.ndim == 2 and x0.shape[1] == 2 and run.dataset is not None:
                scatter_over_training(run.dir, run.dataset, out)
                return _png_uri(out.read_bytes()), "Generated samples (blue) and the data's modes (red x)."
            if x0.ndim == 2 and x0.shape[1] == 1 and run.dataset is not None and hasattr(run.dataset, "prob") \
                    and any("d_grid" in a for _, a in snaps):
                figure4(run.dir, run.dataset, out)
                return (_png_uri(out.read_bytes()),
                        "The GAN tutorial's Figure 4: p_data (black), p_model (green), D (blue dashed), D* (grey).")
        except (ValueError, KeyError) as exc:
            return None, f"Samples could not be drawn: {exc}"
    if x0.ndim == 4 and x0.shape[1] in (1, 3):
        chosen = _pick(snaps, 5)
        fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.5))
        for ax, (step, arr) in zip(np.atleast_1d(axes), chosen, strict=True):
            imgs = arr.get("ema_samples", arr["samples"])[:16]
            ax.imshow(image_grid(imgs, nrow=4, rgb=True))
            ax.set_title(f"step {step}")
            ax.axis("off")
        return _fig_uri(fig), "Generated images from a fixed latent batch over training."
    if x0.ndim == 2 and x0.shape[1] == 1:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        for step, arr in _pick(snaps, 5):
            ax.hist(arr.get("ema_samples", arr["samples"]).reshape(-1), bins=60, histtype="step", density=True,
                    label=f"step {step}")
        ax.legend(fontsize=8)
        return _fig_uri(fig), "Histogram of generated samples over training."
    return None, f"No figure for samples of shape {tuple(x0.shape[1:])}."


def _mode_histogram(run: _Run, snaps: list[tuple[int, dict[str, np.ndarray]]]) -> tuple[str, str] | None:
    """The mode histogram of a toy mixture (from eval.json, else the last snapshot) and its source."""
    ds = run.dataset
    if ds is None or getattr(ds, "modes", None) is None or len(ds.shape) != 1 or ds.shape[0] < 2:
        return None
    counts, where, n = None, "", 0
    if run.eval and isinstance(run.eval.get("mode_counts"), list):
        counts, where = np.asarray(run.eval["mode_counts"], dtype=float), f"eval.json (step {run.eval.get('step')})"
        n = int(run.eval.get("n") or counts.sum())
    elif snaps:
        from ganforge.diagnostics.signals import SampleReference, mode_coverage

        step, arr = snaps[-1]
        x = arr.get("ema_samples", arr["samples"])
        if x.ndim != 2 or tuple(x.shape[1:]) != tuple(ds.shape):
            return None
        ref = SampleReference.from_examples(np.zeros((2, ds.shape[0])), modes=ds.modes, mode_stds=ds.mode_stds,
                                            weights=ds.weights)
        counts, where = np.asarray(mode_coverage(x, ref).counts, dtype=float), f"snapshot at step {step}"
        n = int(x.shape[0])
    if counts is None or counts.size != int(ds.modes.shape[0]):
        return None
    w = ds.weights.double().numpy()
    expected = w / w.sum() * n
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(np.arange(counts.size), counts, color="tab:blue", label="high-quality samples per mode")
    ax.step(np.arange(counts.size + 1) - 0.5, np.append(expected, expected[-1]), where="post", color="tab:red",
            lw=1.2, label="expected from the true weights")
    ax.set_xlabel("mode")
    ax.set_ylabel("samples")
    ax.set_title(f"Mode histogram ({where})")
    ax.legend(fontsize=8)
    return _fig_uri(fig), where


def _fmt_evidence(v: Any) -> str:
    """An evidence value; a list of records (e.g. a fit's snapshots) as ``a 1, b 2 | a 3, b 4``."""
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return " | ".join(", ".join(f"{k} {_fmt(y)}" for k, y in x.items()) for x in v)
    return _fmt(v)


def _events_html(events: list[Event]) -> str:
    if not events:
        return '<div class="ok">No warnings: no sign of D overpowering G, mode collapse, missed modes, ' \
               'samples off the modes, oscillation or non-finite values.</div>'
    out = []
    for e in events:
        color = _KIND_COLORS.get(e.kind, "grey")
        steps = f"steps {e.start_step:,}–{e.end_step:,}" + (" (still at the end)" if e.ongoing else "")
        ev = "; ".join(f"{k}: {_fmt_evidence(v)}" for k, v in e.evidence.items()
                       if not isinstance(v, dict) and v != [] and k != "mode_counts")
        out.append(f'<div class="event" style="border-left-color:{color}"><span class="badge" '
                   f'style="background:{color}">{_esc(e.kind)}</span><b>{_esc(steps)}</b><br>{_esc(e.message)}'
                   f'<div class="evidence">{_esc(ev)}</div></div>')
    return "\n".join(out)


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td class=\"num\">{_esc(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_esc(title)}</title>\n'
            f"<style>{_CSS}</style>\n<script>{_SCRIPT}</script>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
            "</body>\n</html>\n")


def _equilibrium_line(run: _Run) -> str:
    if not run.metrics or not run.probabilistic:
        return ""
    last = run.metrics[-1]
    r, f, v = (as_float(last.get(k)) for k in ("d_real", "d_fake", "value"))
    return (f"<p>At the last logged step ({run.last_step:,}): D(real) = {_fmt(r)}, D(fake) = {_fmt(f)} "
            f"(both 1/2 at equilibrium); the game's value = {_fmt(v)} against −log 4 = {-LOG4:.4f}.</p>")


def _players_line(cfg: Any) -> str:
    """The players' architectures: "G mlp, D mlp" in a GAN, each player by name in another game."""
    from ganforge.game.games import GAMES  # noqa: PLC0415

    players = GAMES.get(cfg.game.name).players if cfg.game.name in GAMES else ("generator", "discriminator")
    if tuple(players) == ("generator", "discriminator"):
        return f"G {_esc(cfg.model.generator.name)}, D {_esc(cfg.model.discriminator.name)}"
    return f"game {_esc(cfg.game.name)}: " + ", ".join(f"{_esc(p)} {_esc(cfg.model.player(p).name)}" for p in players)


def render_report(run_dir: str | Path) -> str:
    """The HTML of a run's report (see the module docstring)."""
    run = _Run(run_dir)
    cfg = run.config
    snaps = _snapshots(run)
    parts = [f"<h1>{_esc(run.name)}</h1>",
             f'<div class="sub">{_esc(run.dir)} · data {_esc(cfg.data.name)} · cost {_esc(cfg.game.cost.name)} · '
             f"{_players_line(cfg)} · "
             f"{run.last_step:,} of {cfg.train.steps:,} steps logged</div>"]

    parts += ["<h2>Health</h2>", _events_html(run.diagnosis.events), _equilibrium_line(run)]
    if not run.metrics:
        parts.append('<p class="note">No metrics.jsonl records yet.</p>')

    parts.append("<h2>Costs</h2>")
    hl = [(-LOG4, "-log 4")] if run.probabilistic else []
    for uri in (_curves_figure([run], [("d_cost", "J(D)"), ("g_cost", "J(G)"), ("value", "value -J(D)")],
                               "Costs per logging window", "cost", hlines=hl),):
        if uri:
            parts.append(_img(uri, "cost curves"))
    if any("d_real" in m or "d_fake" in m for m in run.metrics) or not run.metrics:  # a game with a D's logits
        parts.append("<h2>The discriminator</h2>")
        uri = _curves_figure([run], [("d_real", "D(real)"), ("d_fake", "D(fake)")],
                             "D(real) and D(fake)" + (" (probabilities)" if run.probabilistic else " (raw outputs)"),
                             "D", hlines=[(0.5, "1/2")] if run.probabilistic else [])
        if uri:
            parts.append(_img(uri, "D(real) and D(fake)"))
    elif any("mmd2" in m for m in run.metrics):  # mmd_gan's critic
        parts.append("<h2>The critic</h2>")
        uri = _curves_figure([run], [("mmd2", "MMD²_u of the critic's features")],
                             "MMD² of the critic's features (critic phase)", "MMD²")
        if uri:
            parts.append(_img(uri, "MMD squared"))
    else:
        parts.append("<h2>Gradients</h2>")
    uri = _curves_figure([run], [("grad_norm_d", "|grad D|"), ("grad_norm_g", "|grad G|")],
                         "Gradient norms (last step of each window)", "norm", logy=True)
    if uri:
        parts.append(_img(uri, "gradient norms"))

    parts.append("<h2>Diagnostics timeline</h2>")
    uri = _timeline_figure(run)
    parts.append(_img(uri, "diagnostics timeline") if uri else '<p class="note">No diagnostics yet.</p>')

    if cfg.data.name == "table":  # fidelity, utility and privacy instead of samples and raw metrics
        from ganforge.report.table import table_sections  # noqa: PLC0415

        parts += table_sections(run.eval, str(run.dir), _read_json(run.run.privacy_path))
        from ganforge.report.equilibrium import equilibrium_section  # noqa: PLC0415

        parts += equilibrium_section(run)
        parts += ["<h2>Config</h2>", f"<pre>{_esc(cfg.to_yaml())}</pre>"]
        return _page(f"ganforge report: {run.name}", "\n".join(p for p in parts if p))
    parts.append("<h2>Samples over training</h2>")
    uri, caption = _samples_figure(run, snaps)
    parts.append((_img(uri, "samples over training") if uri else "") + f'<p class="note">{_esc(caption)}</p>')
    hist = _mode_histogram(run, snaps)
    if hist:
        parts += ["<h2>Mode histogram</h2>", _img(hist[0], "mode histogram"),
                  f'<p class="note">High-quality samples (within 3 std of a mode) per mode, from {_esc(hist[1])}; '
                  "the red line is what the true weights would give.</p>"]

    parts.append("<h2>Metrics (eval.json)</h2>")
    if run.eval:
        parts.append(_table([(k, v) for k, v in run.eval.items()]))
    else:
        parts.append(f'<p class="note">No eval.json; run <code>ganforge eval {_esc(run.dir)}</code>.</p>')
    from ganforge.report.equilibrium import equilibrium_section  # noqa: PLC0415  (it draws with this module's helpers)

    parts += equilibrium_section(run)
    parts += ["<h2>Config</h2>", f"<pre>{_esc(cfg.to_yaml())}</pre>"]
    return _page(f"ganforge report: {run.name}", "\n".join(p for p in parts if p))


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's self-contained report (default ``run_dir/report.html``, atomically); return its path."""
    from ganforge.report.model_card import render_model_card  # noqa: PLC0415
    from ganforge.rundir import RunDir

    run = RunDir(run_dir)
    path = Path(out) if out is not None else run.report_path
    write_text_atomic(path, render_report(run_dir))
    write_text_atomic(run.model_card_path if out is None else path.with_name(path.stem + ".model_card.md"),
                      render_model_card(run_dir))
    return path


# ---------------------------------------------------------------------------------------------
# several runs


_COMPARED = (("d_cost", "J(D), the discriminator's cost"), ("g_cost", "J(G), the generator's cost"),
             ("d_real", "D(real)"), ("d_fake", "D(fake)"), ("value", "The game's value -J(D)"),
             ("grad_norm_g", "|grad G|"))


def _units(run: _Run) -> str:
    """What a run's D output means: ``probability`` for costs whose sigmoid(D) is one (their costs
    are then in nats), else the cost's name (a raw score, in that cost's own units)."""
    return "probability" if run.probabilistic else run.config.game.cost.name


def comparison_panels(runs: Sequence[_Run], key: str, title: str) -> list[dict[str, Any]]:
    """What one comparison figure is given: one panel per unit (``_units``) for D's outputs and the
    costs, so a hinge run's raw D score never shares an axis with probabilities; one panel for the
    gradient norm. Each panel: ``units``, ``title``, ``ylabel``, ``hlines`` and ``lines`` as
    ``(run label, steps, values)``; panels without data are left out."""
    grouped = not key.startswith("grad_norm")
    groups: dict[str, list[_Run]] = {}
    for r in runs:
        groups.setdefault(_units(r) if grouped else "", []).append(r)
    panels = []
    for units, members in groups.items():
        lines = [(r.label, x, y) for r in members for x, y in [_series(r.metrics, key)] if x.size]
        if not lines:
            continue
        prob = units == "probability"
        if not grouped:
            ylabel, hlines, where = "norm", [], ""
        elif key in ("d_real", "d_fake"):
            ylabel = f"{title}, a probability" if prob else f"{title}, raw score of the {units} D"
            hlines = [(0.5, "1/2")] if prob else []
            where = "costs whose D is a probability" if prob else f"{units} cost: D's raw score, not a probability"
        else:
            ylabel = "nats" if prob else f"{units} cost units"
            hlines = [(-LOG4, "-log 4")] if prob and key == "value" else []
            where = "costs whose D is a probability" if prob else f"{units} cost"
        panels.append({"units": units, "title": f"{title} ({where})" if len(groups) > 1 else title,
                       "ylabel": ylabel, "hlines": hlines, "lines": lines})
    return panels


def _panels_figure(panels: list[dict[str, Any]], logy: bool = False) -> str | None:
    """The panels of ``comparison_panels`` stacked in one figure, each with its own y axis."""
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.4 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        for label, x, y in panel["lines"]:
            if logy:
                y = np.where(y > 0, y, np.nan)
            ax.plot(x, y, lw=1.4, label=label, marker="o" if x.size < 30 else None, ms=3)
        for y0, label in panel["hlines"]:
            ax.axhline(y0, color="grey", ls=":", lw=1, label=label)
        if logy:
            ax.set_yscale("log")
        ax.set_title(panel["title"])
        ax.set_xlabel("generator step")
        ax.set_ylabel(panel["ylabel"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _fig_uri(fig)


def render_comparison(run_dirs: Sequence[str | Path]) -> str:
    """The HTML of a page overlaying several runs' curves, with a table of their numbers."""
    if not run_dirs:
        raise GanforgeError("compare needs at least one run directory")
    runs = [_Run(d) for d in run_dirs]
    if len({r.name for r in runs}) < len(runs):  # same config name: tell the runs apart by directory
        for r in runs:
            r.label = str(r.dir)
    parts = ["<h1>Comparison of runs</h1>", f'<div class="sub">{len(runs)} runs: '
             + ", ".join(_esc(r.dir) for r in runs) + "</div>"]

    eval_keys = sorted({k for r in runs if r.eval for k, v in r.eval.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "n", "seed")})
    head = ["run", "data", "cost", "steps", "D output", "D(real)", "D(fake)", "value", "warnings"] + eval_keys
    rows = []
    for r in runs:
        last = r.metrics[-1] if r.metrics else {}
        kinds: dict[str, int] = {}
        for e in r.diagnosis.events:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        warn = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "none"
        cells = [r.label, r.config.data.name, r.config.game.cost.name, r.last_step,
                 "probability" if r.probabilistic else "raw score", as_float(last.get("d_real")), as_float(last.get("d_fake")), as_float(last.get("value")), warn]
        cells += [(r.eval or {}).get(k, "") for k in eval_keys]
        rows.append("<tr>" + "".join(f"<td>{_esc(_fmt(c))}</td>" for c in cells) + "</tr>")
    parts += ["<h2>Summary</h2>", "<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
              + "".join(rows) + "</table>"]

    parts.append("<h2>Curves</h2>")
    if len({_units(r) for r in runs}) > 1:
        parts.append('<p class="note">The runs\' D outputs are in different units (a probability for costs '
                     "built on one, a raw score otherwise), so each unit gets its own panel.</p>")
    for key, title in _COMPARED:
        uri = _panels_figure(comparison_panels(runs, key, title), logy=key.startswith("grad_norm"))
        if uri:
            parts.append(_img(uri, title))
    parts.append("<h2>Warnings</h2>")
    for r in runs:
        parts += [f'<h3>{_esc(r.label)} <span class="note">({_esc(r.dir)})</span></h3>', _events_html(r.diagnosis.events)]
    return _page("ganforge comparison", "\n".join(parts))


def write_comparison(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write one self-contained page overlaying several runs (atomically); return its path."""
    path = Path(out)
    write_text_atomic(path, render_comparison(run_dirs))
    return path


__all__ = ["comparison_panels", "image_grid", "render_comparison", "render_report", "write_comparison", "write_report"]
