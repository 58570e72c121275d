"""The report's "Is this an equilibrium?" section: the periodic analyses of training
(analysis.jsonl, ``train.analyze_every``) drawn over the steps, and the last ``ganforge analyze``
(analysis.json) with its verdict and path angle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganforge.report.html import _esc, _fig_uri, _fmt, _img, _table, plt


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _over_training(records: list[dict[str, Any]]) -> str | None:
    """Four panels over the steps: gradient norms, each player's smallest own-Hessian eigenvalue, the
    game Jacobian's least stable real part (and largest modulus), the rotation."""
    records = [r for r in records if "step" in r and isinstance(r.get("gradient_norm"), dict)]
    if not records:
        return None
    steps = np.array([int(r["step"]) for r in records])
    players = list(records[-1].get("players") or records[-1]["gradient_norm"])
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.4), sharex=True)
    (a0, a1), (a2, a3) = axes
    for p in players:
        g = np.array([_num(r["gradient_norm"].get(p)) for r in records])
        a0.plot(steps, np.where(g > 0, g, np.nan), marker="o", ms=3, lw=1.3, label=p)
        h = np.array([_num(r.get("hessian_min_eigenvalue", {}).get(p)) for r in records])
        a1.plot(steps, h, marker="o", ms=3, lw=1.3, label=p)
    a0.set_yscale("log")
    a0.set_title("|gradient of each player's own cost|", fontsize=10)
    a1.axhline(0.0, color="grey", ls=":", lw=1)
    a1.set_title("smallest eigenvalue of each player's own Hessian (PSD: >= 0)", fontsize=10)
    conv = records[-1].get("convention", "dynamics")
    least = np.array([_num((r.get("least_stable_eigenvalue") or [None])[0]) for r in records])
    big = np.array([np.hypot(*[_num(x) for x in (r.get("largest_modulus_eigenvalue") or [None, None])])
                    for r in records])
    a2.plot(steps, least, marker="o", ms=3, lw=1.3, label="least stable eigenvalue: real part")
    a2.plot(steps, big, marker="o", ms=3, lw=1.3, label="largest modulus")
    a2.axhline(0.0, color="grey", ls=":", lw=1)
    a2.set_title(f"game Jacobian ({conv}; stable: every real part {'< 0' if conv == 'dynamics' else '> 0'})",
                 fontsize=10)
    rot = np.array([_num(r.get("max_rotation")) for r in records])
    a3.plot(steps, rot, marker="o", ms=3, lw=1.3, color="#8e44ad")
    a3.set_ylim(-0.05, 1.05)
    a3.set_title("rotation: largest |Im λ| / |λ| of the computed eigenvalues", fontsize=10)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    for ax in (a2, a3):
        ax.set_xlabel("step")
    a0.legend(fontsize=8)
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.tight_layout()
    return _fig_uri(fig)


def _path_angle_figure(pa: dict[str, Any]) -> str | None:
    alphas = np.array([_num(a) for a in pa.get("alphas", [])])
    cos = np.array([_num(c) for c in pa.get("cosine", [])])
    norm = np.array([_num(c) for c in pa.get("field_norm", [])])
    if alphas.size == 0 or alphas.size != cos.size:
        return None
    fig, (a0, a1) = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True)
    a0.plot(alphas, cos, color="#c0392b", marker="o", ms=3)
    a0.axhline(0.0, color="grey", ls=":", lw=1)
    a0.set_ylabel("cosine")
    a0.set_title("path angle (Berard et al. 2020): the vector field along the line\nfrom the initialization "
                 "(alpha 0) to the checkpoint (alpha 1)", fontsize=10)
    a1.plot(alphas, np.where(norm > 0, norm, np.nan), marker="o", ms=3)
    a1.set_yscale("log")
    a1.set_ylabel("|vector field|")
    a1.set_xlabel("alpha")
    for ax in (a0, a1):
        ax.axvline(1.0, color="black", ls="--", lw=0.8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _fig_uri(fig)


def equilibrium_section(run: Any) -> list[str]:
    """The section's HTML parts for a ``report.html._Run`` (empty when the run has no analysis)."""
    records = run.run.read_analysis_log()
    last = run.run.read_analysis()
    if not records and not last:
        return []
    parts = ["<h2>Is this an equilibrium?</h2>"]
    if last:
        parts.append(f"<p><b>Step {_esc(_fmt(last.get('step')))}</b> (<code>ganforge analyze</code>, "
                     f"analysis.json): {_esc(last.get('verdict', ''))}</p>")
        rows: list[tuple[str, Any]] = []
        for p in last.get("players", []):
            rows.append((f"{p}: |gradient|", last.get("gradient_norm", {}).get(p)))
            rows.append((f"{p}: own Hessian eigenvalues [min, max]",
                         [last.get("hessian_min_eigenvalue", {}).get(p), last.get("hessian_max_eigenvalue", {}).get(p)]))
        rows += [("game Jacobian: least stable eigenvalue [re, im]", last.get("least_stable_eigenvalue")),
                 ("game Jacobian: largest modulus eigenvalue [re, im]", last.get("largest_modulus_eigenvalue")),
                 ("convention", (last.get("convention") or {}).get("meaning")),
                 ("method", (last.get("method") or {}).get("jacobian"))]
        parts.append(_table(rows))
        uri = _path_angle_figure(last.get("path_angle") or {})
        if uri:
            parts.append(_img(uri, "path angle"))
    if records:
        uri = _over_training(records)
        if uri:
            parts.append(_img(uri, "equilibrium analysis over training"))
        parts.append(f'<p class="note">{len(records)} analyses during training (train.analyze_every), each on the '
                     f"same fixed batch; the last: {_esc(records[-1].get('verdict', ''))}</p>")
    return parts
