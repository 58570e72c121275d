"""The report's sections for a table run, from its eval.json (`ganforge eval RUN [--real test.csv]`):
fidelity (column shapes, pair trends, coverage, with each column's marginals drawn real beside
synthetic, and a map of the pair-trend similarities), utility (TSTR beside the real baseline) and
privacy (distances to the closest record always beside the membership-inference attack's AUC, and
the spent epsilon of a differentially private run)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ganforge.report.html import _esc, _fig_uri, _fmt, _img, _table, plt


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _marginals_figure(marginals: dict[str, Any]) -> str | None:
    columns = list(marginals)
    if not columns:
        return None
    ncol = min(4, len(columns))
    nrow = math.ceil(len(columns) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        m = marginals[column]
        real, fake = np.asarray(m["real"], float), np.asarray(m["synthetic"], float)
        if "labels" in m:
            x = np.arange(len(real))
            ax.bar(x - 0.2, real, 0.4, label="real", color="#4c72b0")
            ax.bar(x + 0.2, fake, 0.4, label="synthetic", color="#dd8452")
            ax.set_xticks(x, [str(v)[:10] for v in m["labels"]], rotation=60, fontsize=6)
        else:
            edges = np.asarray(m["edges"], float)
            ax.stairs(real, edges, label="real", color="#4c72b0", lw=1.5)
            ax.stairs(fake, edges, label="synthetic", color="#dd8452", lw=1.5)
            ax.tick_params(labelsize=6)
        missing = m.get("missing") or [0, 0]
        extra = f" (missing {missing[0]:.1%} / {missing[1]:.1%})" if max(missing) > 0 else ""
        ax.set_title(f"{column}{extra}", fontsize=8)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _fig_uri(fig)


def _pairs_figure(pairs: list[dict[str, Any]], columns: list[str]) -> str | None:
    if not pairs or len(columns) < 2:
        return None
    idx = {c: i for i, c in enumerate(columns)}
    grid = np.full((len(columns), len(columns)), np.nan)
    for p in pairs:
        a, b = p["columns"]
        if a in idx and b in idx and p.get("score") is not None:
            grid[idx[a], idx[b]] = grid[idx[b], idx[a]] = float(p["score"])
    fig, ax = plt.subplots(figsize=(0.42 * len(columns) + 2.5, 0.42 * len(columns) + 1.8))
    im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(columns)), columns, rotation=70, fontsize=7)
    ax.set_yticks(range(len(columns)), columns, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="similarity (1 = the real trend)")
    ax.set_title("Pair trends: correlation / contingency similarity", fontsize=9)
    fig.tight_layout()
    return _fig_uri(fig)


def _dp_line(dp: dict[str, Any]) -> str:
    acc = ", ".join(f"{k} {_fmt(v)}" for k, v in (dp.get("accountants") or {}).items())
    return (f'<p><b>Differentially private: epsilon {_fmt(dp.get("epsilon"))} at delta {_fmt(dp.get("delta"))}</b> '
            f"(target {_fmt(dp.get('target_epsilon'))}; {_esc(acc)}; {dp.get('discriminator_steps')} discriminator "
            f'steps). <span class="note">{_esc(dp.get("not_covered", ""))}</span></p>')


def table_sections(ev: dict[str, Any] | None, run_dir: str, dp: dict[str, Any] | None = None) -> list[str]:
    """HTML parts for a table run's eval.json (a note when there is none) and its privacy.json."""
    if not ev or ev.get("kind") != "table":
        return ["<h2>Fidelity, utility and privacy</h2>", *([_dp_line(dp)] if dp else []),
                f'<p class="note">No table evaluation yet; run <code>ganforge eval {_esc(run_dir)} '
                "--real TEST.csv</code>.</p>"]
    parts = ["<h2>Fidelity</h2>"]
    fid = ev.get("fidelity") or {}
    parts.append(_table([("column shapes (KS / TV complement)", _get(fid, "column_shapes", "score")),
                         ("column pair trends", _get(fid, "column_pair_trends", "score")),
                         ("quality (their mean)", fid.get("quality"))]))
    uri = _marginals_figure(ev.get("marginals") or {})
    if uri:
        parts.append(_img(uri, "marginals, real beside synthetic"))
    uri = _pairs_figure(_get(fid, "column_pair_trends", "pairs") or [], list(ev.get("marginals") or {}))
    if uri:
        parts.append(_img(uri, "pair trends"))
    util = ev.get("utility")
    parts.append("<h2>Utility (train on synthetic, test on real)</h2>")
    if util:
        rows = [("TSTR (mean of the models)", _get(util, "synthetic", "mean")),
                ("real training rows, same models", _get(util, "real", "mean")),
                ("tested on", util.get("test_table"))]
        parts.append(_table(rows))
    else:
        parts.append('<p class="note">No target column (data.target), so no TSTR.</p>')
    parts.append("<h2>Privacy</h2>")
    priv = ev.get("privacy") or {}
    rows: list[tuple[str, Any]] = []
    mia = priv.get("membership_inference")
    rows.append(("membership-inference AUC (0.5: members not told apart)",
                 _get(mia, "auc") if isinstance(mia, dict) else mia))
    for key in ("dcr", "nndr"):
        v = priv.get(key)
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(x, (dict, list)):
                    rows.append((f"{key}: {k}", x))
    dp = ev.get("differential_privacy") or dp
    if dp:
        rows.append(("epsilon spent (delta)", f"{_fmt(dp.get('epsilon'))} ({_fmt(dp.get('delta'))})"))
        rows.append(("accountants", ", ".join(f"{k} {_fmt(v)}" for k, v in (dp.get("accountants") or {}).items())))
    else:
        rows.append(("differential privacy", "none: this run has no formal privacy guarantee"))
    parts.append(_table(rows))
    parts.append(f'<p class="note">{_esc(ev.get("note", ""))}</p>')
    return parts
