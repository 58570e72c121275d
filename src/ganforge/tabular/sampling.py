"""Synthetic rows from a trained table run: a data frame, or a CSV / Parquet file written atomically.

Unconditional rows draw their conditions with the categories' own frequencies (CTGAN's sampling).
A condition ``column == value`` asks the conditional generator for such rows and keeps the rows that
have it (rejection), so every returned row satisfies it; when too few do after ``max_tries`` times
the rows asked for, the call fails rather than return fewer rows or rows that do not satisfy it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ganforge.errors import GanforgeError
from ganforge.io import atomic_open

TABLE_SUFFIXES = (".csv", ".parquet")


def is_table_generator(G: Any) -> bool:
    """Whether a TrainedGenerator makes table rows (its data decodes encoded rows)."""
    return callable(getattr(getattr(G, "dataset", None), "decode", None))


def parse_condition(text: str) -> tuple[str, str]:
    """``"COLUMN=VALUE"`` -> (column, value)."""
    if "=" not in text:
        raise GanforgeError(f"--condition {text!r}: must look like COLUMN=VALUE (e.g. sex=Female)")
    column, value = text.split("=", 1)
    return column.strip(), value.strip()


def sample_table(G: Any, n: int, seed: int = 0, condition: tuple[str, Any] | None = None,
                 max_tries: int = 100, batch_size: int = 4096) -> pd.DataFrame:
    """``n`` synthetic rows as a data frame (the same rows for the same seed); with ``condition``
    (column, value), only rows where column == value."""
    if n < 1:
        raise GanforgeError(f"--n {n}: must be at least 1")
    data = G.dataset
    if condition is None:
        return data.decode(G.sample(n, seed=seed, batch_size=batch_size)).reset_index(drop=True)
    column, value = condition
    if not G.n_classes:
        raise GanforgeError("a condition was given, but this table generator is not conditional "
                            "(it was trained with data.conditional: false or without discrete columns)")
    y = data.layout.condition(column, value)
    kept: list[pd.DataFrame] = []
    have, drawn, round_ = 0, 0, 0
    want = str(value)
    while have < n:
        if drawn >= max_tries * n:
            raise GanforgeError(f"condition {column}={value!r}: only {have} of {drawn} generated rows had it "
                                f"(fewer than the {n} asked for after {max_tries}x as many tries)")
        m = max(n - have, 256)
        rows = data.decode(G.sample(m, seed=seed * 1_000_003 + round_, y=y, batch_size=batch_size))
        ok = rows[rows[column].astype(str) == want]
        kept.append(ok)
        have += len(ok)
        drawn += m
        round_ += 1
    return pd.concat(kept).iloc[:n].reset_index(drop=True)


def write_table(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write ``frame`` to ``out`` (.csv or .parquet), atomically: a failed write leaves no file and
    an existing one as it was."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise GanforgeError(f"--out {out}: unsupported output {suffix or '(no suffix)'} for a table; allowed: "
                            f"{', '.join(TABLE_SUFFIXES)}")
    with atomic_open(path, "wb") as f:
        if suffix == ".csv":
            frame.to_csv(f, index=False)
        else:
            frame.to_parquet(f, index=False)
    return path


@torch.no_grad()
def write_table_samples(G: Any, n: int, out: str | Path, seed: int = 0,
                        condition: tuple[str, Any] | None = None) -> dict[str, Any]:
    """``ganforge sample`` for a table run: ``n`` rows into ``out``; returns what was written."""
    suffix = Path(out).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise GanforgeError(f"--out {out}: a table run writes rows to {' or '.join(TABLE_SUFFIXES)}, not "
                            f"{suffix or '(no suffix)'}")
    width = math.prod(G.sample_shape)
    if n * width * 8 > 8 << 30:
        raise GanforgeError(f"--n {n}: {n:,} rows of {width} encoded values need over 8 GiB at once; ask for fewer")
    frame = sample_table(G, n, seed=seed, condition=condition)
    write_table(frame, out)
    return {"out": str(out), "n": int(len(frame)), "columns": list(frame.columns), "seed": seed,
            **({"condition": f"{condition[0]}={condition[1]}"} if condition else {})}
