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


def is_table_run(target: str | Path) -> bool:
    """Whether ``target`` is a run directory whose data is a table (its data.json says so)."""
    import json  # noqa: PLC0415

    path = Path(target) / "data.json"
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
        training, _ = read_table(p["path"], kinds=p.get("kinds") or None, id_columns=tuple(p.get("id_columns") or ()),
                                 target=p.get("target"), where="data.path")
    except GanforgeError as exc:
        raise GanforgeError(f"{run.path}: eval compares with the run's training rows, which cannot be read here "
                            f"({exc})") from None
    holdout = None
    if real is not None:
        holdout, _ = read_table(real, schema=schema, where="--real")
    n = n or len(training)
    synthetic = sample_table(G, n, seed=seed)
    result = evaluate(training, synthetic, schema.kinds, holdout=holdout, target=schema.target, seed=seed)
    record: dict[str, Any] = {
        "kind": "table", "run": str(run.path), "ganforge": ganforge_version(),
        "protocol": {"n_synthetic": n, "n_training": len(training),
                     "n_holdout": None if holdout is None else len(holdout), "holdout": real, "seed": seed,
                     "target": schema.target},
        **result,
        "note": NOTE,
    }
    accounting = run.path / "privacy.json"
    if accounting.is_file():
        import json  # noqa: PLC0415

        record["differential_privacy"] = json.loads(accounting.read_text())
    write_json_atomic(Path(out) if out is not None else run.path / "eval.json", record)
    return record
