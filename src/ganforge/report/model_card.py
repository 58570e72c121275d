"""The model card of a run (model_card.md, written with the report): what was trained on what, how,
with what privacy, and how well it measured, in a page a reviewer reads before a generator or its
samples leave the team (Mitchell et al. 2019, "Model Cards for Model Reporting")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _num(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "n/a"


def render_model_card(run_dir: str | Path) -> str:
    """The card's markdown, from the run directory's config, data description, metrics, eval.json and
    privacy.json."""
    from ganforge.rundir import RunDir  # noqa: PLC0415

    run = RunDir(run_dir)
    cfg = run.read_config()
    data = run.read_data() or {}
    metrics = run.read_metrics()
    step = int(metrics[-1]["step"]) if metrics else 0
    ev = _read(run.eval_path)
    dp = _read(run.privacy_path)
    m = cfg.model
    lines = [f"# Model card: {cfg.name}", "",
             f"Run directory `{run.path}`; {step:,} of {cfg.train.steps:,} steps logged.", "",
             "## Data", ""]
    table = data.get("table")
    if table:
        cols = table.get("schema", {}).get("columns", [])
        lines += [f"A table of {data.get('n_rows', 'n/a'):,} rows and {len(cols)} modelled columns "
                  f"(fingerprint `{str(data.get('fingerprint'))[:16]}`):", "",
                  ", ".join(f"{c.get('name')} ({c.get('kind')})" for c in cols), ""]
        target = table.get("schema", {}).get("target")
        if target:
            lines += [f"Target column: {target}.", ""]
    else:
        lines += [f"{cfg.data.name}: {data.get('kind', 'n/a')}, shape {data.get('shape')}, "
                  f"{data.get('n_examples') or 'drawn fresh'} examples, fingerprint "
                  f"`{str(data.get('fingerprint'))[:16]}`.", ""]
    lines += ["## Model", "",
              f"- game `{cfg.game.name}`, cost `{cfg.game.cost.name}`, regularizers "
              f"{', '.join(r.name for r in cfg.game.regularizers) or 'none'}, update `{cfg.train.update.name}`",
              f"- generator `{m.generator.name}`, discriminator `{m.discriminator.name}`, prior "
              f"`{cfg.game.prior.name}`", f"- batch {cfg.train.batch_size}, seed {cfg.train.seed}, EMA "
              f"{cfg.train.ema_decay}", "", "## Privacy", ""]
    if dp:
        acc = ", ".join(f"{k} {_num(v)}" for k, v in (dp.get("accountants") or {}).items())
        lines += [f"**Differentially private: epsilon = {_num(dp.get('epsilon'))} at delta = {_num(dp.get('delta'))}** "
                  f"(target {_num(dp.get('target_epsilon'))}; accountants: {acc}), by {dp.get('mechanism')}: noise "
                  f"multiplier {_num(dp.get('noise_multiplier'))}, sampling rate {_num(dp.get('sample_rate'))}, "
                  f"{dp.get('discriminator_steps')} discriminator steps.", "", f"Not covered: {dp.get('not_covered')}.", ""]
    else:
        lines += ["**No differential privacy.** The generator was trained on the data without a formal guarantee: it "
                  "can reproduce training records. Distances to the closest record do not show privacy; see the "
                  "membership-inference attack's AUC below.", ""]
    lines += ["## Evaluation", ""]
    if ev and ev.get("kind") == "table":
        fid, util, priv = ev.get("fidelity") or {}, ev.get("utility") or {}, ev.get("privacy") or {}
        mia = priv.get("membership_inference") or {}
        lines += [f"- column shapes {_num((fid.get('column_shapes') or {}).get('score'))}, column pair trends "
                  f"{_num((fid.get('column_pair_trends') or {}).get('score'))}",
                  f"- TSTR {_num((util.get('synthetic') or {}).get('mean'))} (the same models on the real training "
                  f"rows: {_num((util.get('real') or {}).get('mean'))})" if util else "- TSTR: no target column",
                  f"- membership-inference AUC {_num(mia.get('auc'))} (0.5: members not told apart), DCR ratio to "
                  f"held-out rows {_num(((priv.get('dcr') or {}).get('ratio') or {}).get('value'))}", ""]
    elif ev:
        shown = {k: v for k, v in ev.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        lines += [", ".join(f"{k} {_num(v)}" for k, v in list(shown.items())[:12]) or "see eval.json", ""]
    else:
        lines += [f"Not evaluated yet: `ganforge eval {run.path}`.", ""]
    lines += ["## Use", "",
              "Samples come from `ganforge sample` (the same seed gives the same samples). Figures above are "
              "measured on this run; none is a guarantee for other data."]
    return "\n".join(lines) + "\n"
