"""Synthetic tables: quality of the `tabular` recipe (the CTGAN game) on UCI Adult and on Bayesian networks
with a known likelihood, beside baselines measured in the same run (issue 13).

    .venv/bin/python bench/table_quality.py adult --seeds 0 1 2 --steps 3000 [--ctgan] > bench/results/table_adult.json
    .venv/bin/python bench/table_quality.py asia alarm child insurance --seeds 0 --steps 3000

Adult (32,561 training rows, 16,281 test rows from ../shared/data/adult): `ganforge train tabular`
on the training rows (target income), as many synthetic rows as training rows, then
ganforge.tabular.metrics.evaluate: column shapes and pair trends against the training rows, TSTR F1
(SDGym 0.2.0's four classifiers, trained on synthetic rows, tested on the test rows) beside the same
classifiers trained on the real training rows, and the privacy figures with the membership-inference
AUC (members: training rows; non-members: test rows). With --ctgan, the `ctgan` package (bench only)
is trained on the same rows for the same CPU time as ours (its epochs are set from a timed first
epoch) and scored the same way.

Bayesian networks (the CTGAN paper's protocol): 10,000 training rows sampled from the network
(seed 0), 10,000 fresh test rows (seed 1); L_syn = mean log-likelihood of the synthetic rows under the
true network, L_test = the network's structure refit on the synthetic rows, scored on the test rows
(SDGym 0.2.0's formula, tabular/bayesnet.py); the Identity row (real training rows in place of the
synthetic ones) is the ceiling. Published figures (SDGym 0.2.0) are printed beside ours.

Every figure is measured here; nothing is tuned on the test rows: the recipe's hyper-parameters are
CTGAN's defaults and the last checkpoint is the one scored.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
                 "income"]
NETWORKS = ("asia", "alarm", "child", "insurance")


def shared_data() -> Path:
    env = os.environ.get("GANFORGE_SHARED_DATA")
    if env:
        return Path(env)
    for p in ROOT.parents:
        if (p / "shared" / "data").is_dir():
            return p / "shared" / "data"
    sys.exit("bench/table_quality.py: ../shared/data (UCI Adult, the BIF networks) not found; set GANFORGE_SHARED_DATA")


def adult_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = shared_data() / "adult"
    kw = dict(header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values=["?"])
    train = pd.read_csv(d / "adult.data.gz", **kw)
    test = pd.read_csv(d / "adult.test.gz", skiprows=1, **kw)
    test["income"] = test["income"].str.rstrip(".")
    return train, test


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ganforge(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"ganforge {' '.join(args)} failed: {done.stderr.strip()[-600:]}")
    return done.stdout


def train_ours(train_csv: Path, run: Path, seed: int, steps: int, threads: int, extra: list[str]) -> dict:
    sets = [f"data.path={train_csv}", f"train.seed={seed}", f"train.steps={steps}", f"train.threads={threads}",
            "train.progress=false", *extra]
    args = ["train", "tabular", "--out", str(run)]
    for s in sets:
        args += ["--set", s]
    cpu0, t0 = children_cpu(), time.perf_counter()
    ganforge(*args)
    return {"cpu_s": round(children_cpu() - cpu0, 1), "wall_s": round(time.perf_counter() - t0, 1)}


def sample_ours(run: Path, n: int, out: Path, seed: int, text: bool = False) -> pd.DataFrame:
    """The run's samples; ``text``: every cell as written (a network's states "TRUE", "None" stay text)."""
    ganforge("sample", str(run), "--n", str(n), "--out", str(out), "--seed", str(seed))
    return pd.read_csv(out, dtype=str, keep_default_na=False) if text else pd.read_csv(out)


def run_ctgan(train: pd.DataFrame, discrete: list[str], cpu_budget: float, seed: int, threads: int,
              epochs: int | None = None) -> tuple[pd.DataFrame, dict]:
    """The ctgan package with the same CPU time as ours: timed fits of 1 and 2 epochs separate its
    data transformer's fit (paid once) from an epoch, and set the epochs (or ``epochs`` given)."""
    import torch
    from ctgan import CTGAN  # bench only

    torch.set_num_threads(threads)
    per_epoch = fixed = float("nan")
    if epochs is None:
        times = []
        for k in (1, 2):
            torch.manual_seed(seed)
            np.random.seed(seed)
            t_cpu = time.process_time()
            CTGAN(epochs=k).fit(train, discrete)
            times.append(time.process_time() - t_cpu)
        per_epoch = max(times[1] - times[0], 1e-3)
        fixed = max(times[0] - per_epoch, 0.0)
        epochs = max(1, int((cpu_budget - fixed) / per_epoch))
    torch.manual_seed(seed)
    np.random.seed(seed)
    t_cpu, t0 = time.process_time(), time.perf_counter()
    model = CTGAN(epochs=epochs)
    model.fit(train, discrete)
    info = {"epochs": epochs, "cpu_s": round(time.process_time() - t_cpu, 1),
            "wall_s": round(time.perf_counter() - t0, 1), "cpu_s_per_epoch": round(per_epoch, 2),
            "cpu_s_transformer": round(fixed, 1)}
    return model.sample(len(train)), info


def summary(ev: dict) -> dict:
    fid, util, priv = ev["fidelity"], ev.get("utility") or {}, ev.get("privacy") or {}
    out = {"column_shapes": fid.get("column_shapes", {}).get("score"),
           "column_pair_trends": fid.get("column_pair_trends", {}).get("score")}
    if util:
        out["tstr_f1"] = (util.get("synthetic") or {}).get("mean")
        out["real_f1"] = (util.get("real") or {}).get("mean")
    for key in ("membership_inference", "dcr"):
        if key in priv:
            out[key] = priv[key]
    return out


def bench_adult(args: argparse.Namespace, work: Path) -> dict:
    from ganforge.tabular.metrics import evaluate

    train, test = adult_frames()
    train_csv = work / "adult_train.csv"
    train.to_csv(train_csv, index=False)
    kinds = None
    runs = []
    if args.ctgan_budget:  # the ctgan package alone, given the CPU seconds one of our runs took
        kinds = {c: ("categorical" if train[c].dtype == object else "integer") for c in train.columns}
        real_train, real_test = conform(train, kinds), conform(test, kinds)
        for seed in args.seeds:
            discrete = [c for c, k in kinds.items() if k == "categorical"]
            fake, info = run_ctgan(train, discrete, args.ctgan_budget, seed, args.threads, args.ctgan_epochs)
            ev_c = evaluate(real_train, conform(fake, kinds), kinds, holdout=real_test, target="income", seed=seed)
            row = {"seed": seed, "ctgan": {**info, **summary(ev_c), "evaluation": ev_c}}
            print(json.dumps({"seed": seed, "ctgan": {k: v for k, v in row["ctgan"].items() if k != "evaluation"}}),
                  file=sys.stderr, flush=True)
            runs.append(row)
        return {"dataset": "adult", "ctgan_budget_cpu_s": args.ctgan_budget, "runs": runs}
    for seed in args.seeds:
        run = work / f"adult_seed{seed}"
        cost = train_ours(train_csv, run, seed, args.steps, args.threads, ["data.target=income", *args.set])
        synth = sample_ours(run, len(train), work / f"adult_seed{seed}.csv", seed)
        if kinds is None:
            kinds = json.loads((run / "data.json").read_text())["table"]["schema"]
            kinds = {c["name"]: c["kind"] for c in kinds["columns"]}
        real_train, real_test = conform(train, kinds), conform(test, kinds)
        ev = evaluate(real_train, conform(synth, kinds), kinds, holdout=real_test, target="income", seed=seed)
        row = {"seed": seed, "steps": args.steps, **cost, **summary(ev), "evaluation": ev}
        if args.ctgan:
            discrete = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
            fake, info = run_ctgan(train, discrete, cost["cpu_s"], seed, args.threads)
            ev_c = evaluate(real_train, conform(fake, kinds), kinds, holdout=real_test, target="income", seed=seed)
            row["ctgan"] = {**info, **summary(ev_c), "evaluation": ev_c}
        print(json.dumps({k: v for k, v in row.items() if k != "evaluation"}), file=sys.stderr, flush=True)
        runs.append(row)
    return {"dataset": "adult", "bars": {"tstr_f1": 0.63, "column_shapes": 0.85, "column_pair_trends": 0.85},
            "published": {"real": 0.669, "TVAE": 0.626, "CTGAN": 0.601}, "runs": runs,
            "mean": {k: float(np.mean([r[k] for r in runs if r.get(k) is not None]))
                     for k in ("tstr_f1", "real_f1", "column_shapes", "column_pair_trends") if runs}}


def conform(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """A frame with the columns of ``kinds`` and comparable dtypes (categories as strings)."""
    out = frame[list(kinds)].copy()
    for c, k in kinds.items():
        if k in ("categorical", "boolean"):
            out[c] = out[c].astype("string").astype(object).where(out[c].notna(), None)
        elif k in ("continuous", "integer"):
            out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def bench_network(name: str, args: argparse.Namespace, work: Path) -> dict:
    from ganforge.tabular.bayesnet import BayesianNetwork, bayesian_likelihood

    net = BayesianNetwork.from_bif(shared_data() / "bn" / f"{name}.bif.gz")
    train, test = net.sample(10_000, seed=0), net.sample(10_000, seed=1)
    train_csv = work / f"{name}_train.csv"
    train.astype(str).to_csv(train_csv, index=False)
    categorical = "{" + ", ".join(f"{c!r}: categorical" for c in train.columns) + "}"
    identity = bayesian_likelihood(train, test, net)
    runs = []
    for seed in args.seeds:
        run = work / f"{name}_seed{seed}"
        cost = train_ours(train_csv, run, seed, args.steps, args.threads,
                          [f"data.kinds={categorical}", "data.missing_values=[]", *args.set])
        synth = sample_ours(run, len(train), work / f"{name}_seed{seed}.csv", seed, text=True)
        lik = bayesian_likelihood(synth, test, net)
        row = {"seed": seed, "steps": args.steps, **cost, **{k: round(float(v), 4) for k, v in lik.items()}}
        print(json.dumps({"network": name, **row}), file=sys.stderr, flush=True)
        runs.append(row)
    from bn_oracle import PUBLISHED  # noqa: PLC0415  (the published rows, with their source)

    ident = {k: round(float(v), 4) for k, v in identity.items()}
    published = {who: {"l_syn": v[name][0], "l_test": v[name][1]} for who, v in PUBLISHED.items()}
    for r in runs:
        r["gap_to_identity"] = {k: round(ident[k] - r[k], 4) for k in ("l_syn", "l_test")}
        r["within_0.3"] = all(g <= 0.3 for g in r["gap_to_identity"].values())
        r["beats_published_ctgan"] = all(r[k] > published["ctgan"][k] for k in ("l_syn", "l_test"))
    return {"dataset": name, "identity": ident, "published": published, "runs": runs,
            "bar": "within 0.3 nats of identity on both, and above CTGAN's published figures"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("datasets", nargs="+", choices=["adult", *NETWORKS])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="a further config override for our runs")
    ap.add_argument("--ctgan", action="store_true", help="also the ctgan package, same CPU time (Adult)")
    ap.add_argument("--ctgan-budget", type=float, default=0.0,
                    help="Adult: only the ctgan package, given this many CPU seconds (one of our runs' cpu_s)")
    ap.add_argument("--ctgan-epochs", type=int, default=None, help="the ctgan package's epochs, instead of timing them")
    ap.add_argument("--work", default=None, help="folder for runs and files [a temporary one]")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    work = Path(args.work or tempfile.mkdtemp(prefix="table_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.datasets:
        results.append(bench_adult(args, work) if name == "adult" else bench_network(name, args, work))
    print(json.dumps({"bench": "table_quality", "command": " ".join(sys.argv[1:]), "results": results}, indent=1))


if __name__ == "__main__":
    main()
