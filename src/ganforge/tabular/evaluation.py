"""`ganforge eval RUN` for a table run: fidelity, utility and privacy of its synthetic rows, in eval.json.

The synthetic rows (``n``, by default as many as the training rows; ``seed``) are compared with the
run's own training rows (re-read from ``data.path``: fidelity, and the members of the privacy attacks)
and, with ``real`` (``--real test.csv``: real rows the generator never saw, read against the run's
schema, so a category the training table did not have is refused), with held-out rows: TSTR is tested
on them beside the same classifiers trained on the real training rows, and they are the non-members
of the membership-inference attack and the reference of the DCR ratio. Without held-out rows there is
no attack and no real baseline, and eval.json says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

NOTE = ("Distances to the closest record are not a privacy guarantee: tables that pass them can still be "
        "open to membership inference (see the attack's AUC beside them); only differential privacy bounds "
        "what any attack can learn.")


def marginals(real: Any, synthetic: Any, kinds: dict[str, str], bins: int = 20, top: int = 12) -> dict[str, Any]:
    """Each column's distribution in the real and the synthetic rows, for the report's plots: the ``top``
    most frequent real categories (the rest pooled as "other"), or ``bins`` histogram bins over the real
    range; missing cells as their own share."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    out: dict[str, Any] = {}
    for column, kind in kinds.items():
        r, f = real[column], synthetic[column]
        entry: dict[str, Any] = {"kind": kind, "missing": [float(r.isna().mean()), float(f.isna().mean())]}
        if kind in ("categorical", "boolean"):
            rs, fs = r.dropna().astype(str), f.dropna().astype(str)
            labels = list(rs.value_counts().index[:top])
            rc, fc = rs.value_counts(normalize=True), fs.value_counts(normalize=True)
            entry["labels"] = labels + (["other"] if rs.nunique() > top else [])
            entry["real"] = [float(rc.get(v, 0.0)) for v in labels]
            entry["synthetic"] = [float(fc.get(v, 0.0)) for v in labels]
            if rs.nunique() > top:
                entry["real"].append(float(1 - sum(entry["real"])))
                entry["synthetic"].append(float(max(0.0, 1 - sum(entry["synthetic"]))))
        else:
            to_num = (lambda s: pd.to_datetime(s).astype("int64")) if kind == "datetime" else \
                (lambda s: pd.to_numeric(s, errors="coerce"))
            rv, fv = to_num(r.dropna()).to_numpy(float), to_num(f.dropna()).to_numpy(float)
            lo, hi = (float(rv.min()), float(rv.max())) if len(rv) else (0.0, 1.0)
            edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
            entry["edges"] = edges.tolist()
            entry["real"] = (np.histogram(rv, edges)[0] / max(len(rv), 1)).tolist()
            entry["synthetic"] = (np.histogram(np.clip(fv, lo, hi), edges)[0] / max(len(fv), 1)).tolist()
        out[column] = entry
    return out


def is_table_run(target: str | Path) -> bool:
    """Whether ``target`` is a run directory whose data is a table (its data.json says so)."""
    import json  # noqa: PLC0415

    from ganforge.rundir import RunDir  # noqa: PLC0415

    path = RunDir(target).data_path
    try:
        return path.is_file() and "table" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def evaluate_table_run(run_dir: str | Path, real: str | None = None, n: int | None = None, seed: int = 0,
                       out: str | Path | None = None) -> dict[str, Any]:
    """Measure a table run (see the module's docstring); write and return the record."""
    from ganforge.evaluation.protocol import ganforge_version  # noqa: PLC0415
    from ganforge.io import write_json_atomic  # noqa: PLC0415
    from ganforge.run import load_generator  # noqa: PLC0415
    from ganforge.rundir import RunDir  # noqa: PLC0415
    from ganforge.tabular.metrics import evaluate  # noqa: PLC0415
    from ganforge.tabular.sampling import sample_table  # noqa: PLC0415
    from ganforge.tabular.table import read_table  # noqa: PLC0415

    run = RunDir(run_dir).require()
    cfg = run.read_config()
    G = load_generator(run.path)
    schema = G.dataset.schema
    p = cfg.data.params
    try:
        markers = {} if p.get("missing_values") is None else {"missing_values": tuple(p["missing_values"])}
        training, _ = read_table(p["path"], kinds=p.get("kinds") or None, id_columns=tuple(p.get("id_columns") or ()),
                                 target=p.get("target"), where="data.path", **markers)
    except GanforgeError as exc:
        raise GanforgeError(f"{run.path}: eval compares with the run's training rows, which cannot be read here "
                            f"({exc})") from None
    holdout = None
    if real is not None:
        holdout, _ = read_table(real, schema=schema, where="--real", **markers)
    n = n or len(training)
    synthetic = sample_table(G, n, seed=seed)
    result = evaluate(training, synthetic, schema.kinds, holdout=holdout, target=schema.target, seed=seed)
    record: dict[str, Any] = {
        "kind": "table", "run": str(run.path), "ganforge": ganforge_version(),
        "protocol": {"n_synthetic": n, "n_training": len(training),
                     "n_holdout": None if holdout is None else len(holdout), "holdout": real, "seed": seed,
                     "target": schema.target},
        **result,
        "marginals": marginals(training, synthetic, schema.kinds),
        "note": NOTE,
    }
    accounting = run.privacy_path
    if accounting.is_file():
        import json  # noqa: PLC0415

        record["differential_privacy"] = json.loads(accounting.read_text())
    write_json_atomic(Path(out) if out is not None else run.eval_path, record)
    return record
