"""Speed of ganforge's table metrics against SDMetrics' QualityReport, on UCI Adult.

"real": adult.data (32,561 rows, ' ?' read as missing); "synthetic": a stand-in generator, every column
resampled independently from the real one (seeded), as many rows; "holdout": adult.test (16,281 rows).

- fidelity: ``ganforge.tabular.metrics.fidelity`` (column shapes, pair trends, coverage) against
  ``sdmetrics.reports.single_table.QualityReport.generate`` (column shapes, pair trends) on the same
  tables, best of --repeats, with both property scores side by side (they must agree);
- the DCR of 500 synthetic rows to the 32,561 real rows, ours against SDMetrics' ``calculate_dcr``
  (time and largest difference);
- the DCR of every synthetic row to the 32,561 real rows (``closest_distances``, k=2: 32,561 x 32,561)
  and its peak resident memory increase;
- ``evaluate`` end to end (fidelity, TSTR on income with the real baseline, DCR / NNDR / DOMIAS / CAP).

    .venv/bin/python bench/table_metrics_speed.py [--data-path DIR] [--threads 1] [--rows N] [--dcr-rows 500]
        [--skip-evaluate]

Prints one JSON object. Skips (prints {"skipped": ...}) when the Adult files are absent.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADULT = Path(os.environ.get("GANFORGE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "adult"
COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
]
KINDS = {c: "integer" for c in ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")}
KINDS.update({c: "categorical" for c in COLUMNS if c not in KINDS})
SDTYPES = {"integer": "numerical", "categorical": "categorical"}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _status_mib(field: str) -> float | None:
    """VmRSS / VmHWM of this process in MiB (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _read(path: Path, skip_first: bool):
    import pandas as pd

    table = pd.read_csv(path, header=None, names=COLUMNS, skipinitialspace=True, na_values="?",
                        skiprows=1 if skip_first else 0)
    table["income"] = table["income"].str.rstrip(".")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", type=Path, default=DEFAULT_ADULT)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=None, help="cut real and synthetic to this many rows")
    parser.add_argument("--dcr-rows", type=int, default=500, help="synthetic rows for the SDMetrics DCR timing")
    parser.add_argument("--repeats", type=int, default=3, help="fidelity timings: best of this many")
    parser.add_argument("--skip-evaluate", action="store_true")
    args = parser.parse_args()
    train_path, test_path = args.data_path / "adult.data.gz", args.data_path / "adult.test.gz"
    if not train_path.exists() or not test_path.exists():
        print(json.dumps({"skipped": f"no Adult files in {args.data_path}"}))
        return

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(ROOT / "src"))
    from ganforge.tabular.metrics import evaluate, fidelity
    from ganforge.tabular.privacy import closest_distances

    real = _read(train_path, skip_first=False)
    holdout = _read(test_path, skip_first=True)
    if args.rows:
        real = real.iloc[: args.rows].reset_index(drop=True)
    rng = np.random.default_rng(0)
    synthetic = real.apply(lambda c: c.iloc[rng.integers(0, len(c), len(c))].reset_index(drop=True))
    out = {"rows": {"real": len(real), "synthetic": len(synthetic), "holdout": len(holdout)},
           "threads": args.threads}

    out["ganforge_fidelity_s"], ours = _best_of(args.repeats, lambda: fidelity(real, synthetic, KINDS))

    from sdmetrics.reports.single_table import QualityReport

    metadata = {"columns": {c: {"sdtype": SDTYPES[k]} for c, k in KINDS.items()}}

    def quality_report():
        report = QualityReport()
        report.generate(real, synthetic, metadata, verbose=False)
        return report

    out["sdmetrics_quality_report_s"], report = _best_of(args.repeats, quality_report)
    out["speedup"] = out["sdmetrics_quality_report_s"] / out["ganforge_fidelity_s"]
    props = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"], strict=True))
    out["column_shapes"] = {"ganforge": ours["column_shapes"]["score"], "sdmetrics": float(props["Column Shapes"])}
    out["column_pair_trends"] = {
        "ganforge": ours["column_pair_trends"]["score"], "sdmetrics": float(props["Column Pair Trends"]),
    }

    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    few = synthetic.iloc[: args.dcr_rows]
    t0 = time.perf_counter()
    ours_few = closest_distances(few, real, KINDS)[:, 0]
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs_few = calculate_dcr(few, real, metadata).to_numpy()
    theirs_s = time.perf_counter() - t0
    out["dcr_vs_sdmetrics"] = {
        "synthetic_rows": len(few), "real_rows": len(real), "ganforge_s": ours_s, "sdmetrics_s": theirs_s,
        "speedup": theirs_s / ours_s, "max_abs_diff": float(np.abs(ours_few - theirs_few).max()),
    }

    rss0 = _status_mib("VmRSS") if _reset_peak() else None
    t0 = time.perf_counter()
    d = closest_distances(synthetic, real, KINDS, k=2)
    out["dcr_k2_s"] = time.perf_counter() - t0
    if rss0 is not None:  # the high-water mark over the call, above the resident size before it
        out["dcr_k2_peak_memory_increase_mib"] = _status_mib("VmHWM") - rss0
    out["dcr_median"] = float(np.median(d[:, 0]))

    if not args.skip_evaluate:
        t0 = time.perf_counter()
        result = evaluate(real, synthetic, KINDS, holdout=holdout, target="income",
                          known=["age", "sex", "race"], sensitive=["income"])
        out["evaluate_s"] = time.perf_counter() - t0
        out["evaluate"] = {
            "tstr_f1": result["utility"]["synthetic"]["mean"], "real_f1": result["utility"]["real"]["mean"],
            "mia_auc": result["privacy"]["membership_inference"]["auc"],
            "distance_attack_auc": result["privacy"]["membership_inference"]["distance_attack_auc"],
            "dcr_ratio": result["privacy"]["dcr"]["ratio"]["value"], "cap": result["privacy"]["cap"]["score"],
        }
    out["peak_rss_mib"] = _rss_mib()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
