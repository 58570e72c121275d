"""Bad tables through the command line (issue 13's list): one line on stderr naming the file, row or
column and what is allowed, exit code 2, no traceback, and nothing already written changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ganforge.cli import main

SMALL = ["--set", "train.steps=4", "--set", "train.batch_size=20", "--set", "train.progress=false",
         "--set", "model.generator.widths=[8]", "--set", "model.discriminator.widths=[8]",
         "--set", "game.prior.latent_dim=4", "--set", "train.threads=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"g": rng.choice(["a", "b"], 60), "x": rng.normal(size=60).round(2)})
    good.to_csv(w / "good.csv", index=False)
    r = CliRunner().invoke(main, ["train", "tabular", "--out", str(w / "run"), "--set",
                                  f"data.path={w / 'good.csv'}", *SMALL])
    assert r.exit_code == 0, r.output
    (w / "ragged.csv").write_text("g,x\na,1.0\nb,2.0,7\na,3.0\n")
    (w / "all_missing.csv").write_text("g,x,empty\n" + "".join(f"a,{i}.5,\n" for i in range(30)))
    pd.DataFrame({"g": ["a", "c"], "x": [0.1, 0.2]}).to_csv(w / "new_category.csv", index=False)
    (w / "dates.csv").write_text("g,when\n" + "".join(f"a,{d}\n" for d in ["03|04|2020"] * 30))
    (w / "zero_rows.csv").write_text("g,x\n")
    (w / "wide.csv").write_text(",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join(["1"] * 10_000) + "\n")
    (w / "latin1.csv").write_bytes("g,x\ncaf\xe9,1.0\n".encode("latin-1"))
    pq.write_table(pa.table({"g": ["a", "b"], "nested": [[1, 2], [3]]}), w / "nested.parquet")
    (w / "table.txt").write_text("g,x\na,1\n")
    return w


def train(w: Path, data: str, *extra: str) -> list[str]:
    return ["train", "tabular", "--out", str(w / "new"), "--set", f"data.path={w / data}", *SMALL, *extra]


CASES = {
    "ragged row": (lambda w: train(w, "ragged.csv"), ["ragged.csv", "line 3"]),
    "all-missing column": (lambda w: train(w, "all_missing.csv"), ["all_missing.csv", "empty"]),
    "category seen only in the test file": (
        lambda w: ["eval", str(w / "run"), "--real", str(w / "new_category.csv")], ["new_category.csv", "'c'"]),
    "datetime in an unknown format": (lambda w: train(w, "dates.csv", "--set", "data.kinds={when: datetime}"),
                                      ["dates.csv", "when"]),
    "file of 0 rows": (lambda w: train(w, "zero_rows.csv"), ["zero_rows.csv", "no data rows"]),
    "10,000 columns": (lambda w: train(w, "wide.csv"), ["wide.csv", "10,000 columns", "max_columns"]),
    "non-UTF-8 text": (lambda w: train(w, "latin1.csv"), ["latin1.csv", "UTF-8"]),
    "nested Parquet": (lambda w: train(w, "nested.parquet"), ["nested.parquet", "nested"]),
    "unknown table suffix": (lambda w: train(w, "table.txt"), ["table.txt"]),
    "kinds naming no column": (lambda w: train(w, "good.csv", "--set", "data.kinds={nope: integer}"), ["nope"]),
    "unknown kind": (lambda w: train(w, "good.csv", "--set", "data.kinds={x: money}"), ["money"]),
    "target naming no column": (lambda w: train(w, "good.csv", "--set", "data.target=income"), ["income"]),
    "condition on a continuous column": (
        lambda w: ["sample", str(w / "run"), "--n", "5", "--out", str(w / "new.csv"), "--condition", "x=1"],
        ["not a discrete column"]),
    "condition value not a category": (
        lambda w: ["sample", str(w / "run"), "--n", "5", "--out", str(w / "new.csv"), "--condition", "g=zz"],
        ["allowed: a, b"]),
    "condition without =": (
        lambda w: ["sample", str(w / "run"), "--n", "5", "--out", str(w / "new.csv"), "--condition", "g"],
        ["COLUMN=VALUE"]),
    "image output for a table": (
        lambda w: ["sample", str(w / "run"), "--n", "5", "--out", str(w / "new.png")], [".csv or .parquet"]),
    "privacy with packing": (
        lambda w: train(w, "good.csv", "--set", "train.privacy={epsilon: 1.0}"),
        ["model.discriminator", "differential privacy"]),
    "privacy with a gradient penalty": (
        lambda w: ["train", "tabular-dp", "--out", str(w / "new"), "--set", f"data.path={w / 'good.csv'}", *SMALL,
                   "--set", "game.regularizers=[{name: gradient_penalty}]"], ["game.regularizers"]),
}


def snapshot(w: Path) -> dict[str, bytes]:
    return {str(p.relative_to(w)): p.read_bytes() for p in sorted(w.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_table_input(world, name):
    args, expected = CASES[name]
    before = snapshot(world)
    try:
        r = CliRunner().invoke(main, args(world))
    finally:
        shutil.rmtree(world / "new", ignore_errors=True)
        (world / "new.csv").unlink(missing_ok=True)
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    for piece in expected:
        assert piece in lines[0], lines[0]
    assert snapshot(world) == before
