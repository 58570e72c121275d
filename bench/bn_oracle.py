"""Bayesian-network oracles: the CTGAN paper's L_syn / L_test on asia, alarm, child and insurance.

    .venv/bin/python bench/bn_oracle.py [--networks asia,alarm,child,insurance] [--bn-dir DIR]
        [--synthetic NAME=FILE.csv ...] [--write-train DIR]

For each network: 10,000 training rows forward-sampled with seed 0 and 10,000 test rows with seed 1
(``--rows``). The real-data ("Identity") row scores the training rows as if they were synthetic:
``bayesian_likelihood(train, test, network)``, SDGym 0.2.0's computation (ganforge.tabular.bayesnet).
``--synthetic alarm=runs/alarm/samples.csv`` scores a synthesizer's rows instead (read with pandas as
strings), beside the Identity row of the same run and the published figures; ``--write-train DIR`` writes
DIR/{name}_train.csv and DIR/{name}_test.csv for a trainer. Prints JSON.

The networks are read from ../shared/data/bn (GANFORGE_SHARED_DATA/bn, or the first shared/data/bn above
this file), or from --bn-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from ganforge.errors import DataError, GanforgeError
from ganforge.io import write_text_atomic
from ganforge.tabular.bayesnet import BayesianNetwork, bayesian_likelihood

NETWORKS = ("asia", "alarm", "child", "insurance")

# Published (L_syn, L_test), natural log per row, higher is better. Source: SDGym 0.2.0's results file,
# github.com/sdv-dev/SDGym results/0.2.0.csv (columns {net}/syn_likelihood, {net}/test_likelihood), the
# benchmark of Xu et al. 2019, "Modeling Tabular Data using Conditional GAN" (NeurIPS), whose appendix
# table of Bayesian-network simulated data these rows are. The paper's own table could not be read here;
# the SDGym file is the source of these numbers.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "identity": {"asia": (-2.23, -2.24), "alarm": (-10.3, -10.3), "child": (-12.0, -12.0), "insurance": (-12.8, -12.9)},
    "tvae": {"asia": (-2.31, -2.27), "alarm": (-11.2, -10.7), "child": (-12.3, -12.3), "insurance": (-14.7, -14.2)},
    "ctgan": {"asia": (-2.56, -2.31), "alarm": (-14.2, -12.6), "child": (-13.4, -12.7), "insurance": (-16.5, -14.8)},
}


def shared_bn_dir() -> Path | None:
    env = os.environ.get("GANFORGE_SHARED_DATA")
    candidates = [Path(env) / "bn"] if env else []
    candidates += [p / "shared" / "data" / "bn" for p in Path(__file__).resolve().parents]
    return next((c for c in candidates if c.is_dir()), None)


def parse_synthetic(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or name not in NETWORKS or not file:
            raise SystemExit(f"bn_oracle: --synthetic {item!r}; give NAME=FILE.csv with NAME one of {', '.join(NETWORKS)}")
        out[name] = Path(file)
    return out


def rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated subset of " + ", ".join(NETWORKS))
    ap.add_argument("--bn-dir", type=Path, default=None, help="folder holding {name}.bif.gz (default: shared/data/bn)")
    ap.add_argument("--rows", type=int, default=10_000, help="training rows (seed 0) and test rows (seed 1)")
    ap.add_argument("--synthetic", action="append", default=[], metavar="NAME=FILE.csv",
                    help="score these synthetic rows (a CSV with one column per variable) instead of the training rows")
    ap.add_argument("--write-train", type=Path, default=None, metavar="DIR",
                    help="write DIR/{name}_train.csv and DIR/{name}_test.csv")
    args = ap.parse_args()

    names = [n for n in args.networks.split(",") if n]
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        raise SystemExit(f"bn_oracle: unknown network {unknown[0]!r}; choose from {', '.join(NETWORKS)}")
    synthetic = parse_synthetic(args.synthetic)
    if synthetic:
        names = [n for n in names if n in synthetic]
    bn_dir = args.bn_dir or shared_bn_dir()
    if bn_dir is None:
        raise SystemExit("bn_oracle: no shared/data/bn folder found; give --bn-dir or set GANFORGE_SHARED_DATA")

    report: dict = {
        "protocol": {"train_rows": args.rows, "train_seed": 0, "test_rows": args.rows, "test_seed": 1,
                     "metric": "SDGym 0.2.0 _evaluate_bayesian_likelihood: mean log(P + 1e-8), natural log",
                     "bn_dir": str(bn_dir)},
        "networks": {},
    }
    for name in names:
        t0 = time.perf_counter()
        network = BayesianNetwork.from_bif(bn_dir / f"{name}.bif.gz")
        train = network.sample(args.rows, seed=0)
        test = network.sample(args.rows, seed=1)
        identity = bayesian_likelihood(train, test, network)
        entry: dict = {
            "variables": len(network.variables),
            "edges": sum(len(v.parents) for v in network.variables),
            "identity": rounded(identity),
            "published": {k: {"l_syn": v[name][0], "l_test": v[name][1]} for k, v in PUBLISHED.items()},
        }
        if args.write_train is not None:
            for part, frame in (("train", train), ("test", test)):
                path = args.write_train / f"{name}_{part}.csv"
                write_text_atomic(path, frame.to_csv(index=False))
                entry[f"{part}_csv"] = str(path)
        if name in synthetic:
            rows = pd.read_csv(synthetic[name], dtype=str)
            try:
                scores = bayesian_likelihood(rows, test, network)
            except DataError as e:
                raise DataError(f"{synthetic[name]}: {e}") from None
            entry["synthetic"] = {"file": str(synthetic[name]), "rows": len(rows), **rounded(scores),
                                  "l_syn_minus_identity": round(scores["l_syn"] - identity["l_syn"], 4),
                                  "l_test_minus_identity": round(scores["l_test"] - identity["l_test"], 4)}
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        report["networks"][name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    try:
        main()
    except (GanforgeError, OSError) as e:
        print(f"bn_oracle: error: {e}", file=sys.stderr)
        sys.exit(2)
