"""A table as a data source: rows encoded for the players, drawn by CTGAN's training-by-sampling.

``data: {name: table, path: FILE.csv}`` reads a CSV or Parquet file (tabular/table.py), fits the
reversible encoding (tabular/transformer.py) and holds the encoded rows in memory.

Training-by-sampling (Xu et al. 2019): each row of a batch comes with a *condition*, one category of
one discrete column; the column is drawn uniformly, the category with probability proportional to
log(1 + its frequency), and the real row uniformly among the rows that have that category. The
generator is asked for a row with the same condition and pays a cross-entropy when its row does not
have it (the ``ctgan`` game), so rare categories are seen and learned. When sampling, conditions are
drawn with the categories' own frequencies, which gives back the table's distribution.

A run reads back without its training file: data.json keeps the schema, the encoding's fitted state
and the layout (:class:`RecordedTable`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import Tensor

from ganforge.data import DATASETS
from ganforge.data.base import Dataset
from ganforge.errors import DataError
from ganforge.tabular.layout import TableLayout
from ganforge.tabular.table import TableSchema, read_table
from ganforge.tabular.transformer import TableTransformer

Continuous = Literal["mode_specific", "quantile", "minmax"]


class _Encoded(Dataset):
    """What a table source and its recorded stand-in share: the schema, the encoding, the layout and
    the conditions' sampling probabilities."""

    schema: TableSchema
    transformer: TableTransformer
    layout: TableLayout
    label_probs: Tensor | None = None  # (n_conditions,): conditions drawn with the categories' frequencies

    @property
    def kind(self) -> str:
        return "table"

    def player_context(self) -> dict[str, Any]:
        """What the table's players are built with besides the config: the encoding's layout."""
        return {"layout": self.layout}

    def decode(self, x: Tensor | np.ndarray) -> pd.DataFrame:
        """Encoded rows (N, width) -> a data frame with the table's columns, types and ranges."""
        arr = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float32)
        return self.transformer.inverse_transform(arr)

    def _table_description(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), "transformer": self.transformer.state_dict(),
                "layout": self.layout.to_dict(),
                "condition_probs": None if self.label_probs is None else [float(p) for p in self.label_probs]}


def _condition_probs(layout: TableLayout, counts: np.ndarray, log: bool) -> np.ndarray:
    """P(condition): a discrete column uniformly, then a category by log(1 + count) or by count."""
    probs = np.zeros(layout.n_conditions, dtype=np.float64)
    k = 0
    for c in layout.discrete:
        w = counts[k : k + c.width].astype(np.float64)
        w = np.log1p(w) if log else w
        if w.sum() > 0:
            probs[k : k + c.width] = w / w.sum() / len(layout.discrete)
        k += c.width
    return probs / probs.sum()


@DATASETS.register("table")
class TableDataset(_Encoded):
    """A CSV or Parquet file (or a data frame, from Python) as training data for a table's players.

    Args:
        path: the file (.csv, .csv.gz, .parquet); a header row names the columns.
        kinds: column types that override the inferred ones (continuous, integer, categorical,
            boolean, datetime).
        id_columns: columns left out of the model (row ids).
        target: a label column (kept in the table; the utility metrics predict it).
        continuous: the encoding of numerical columns: CTGAN's mode-specific normalization (a
            Bayesian Gaussian mixture per column), a normal quantile transform, or min-max.
        max_modes: the mixture's most components per column.
        conditional: CTGAN's conditional vector and training-by-sampling (needs a discrete column).
        seed: the encoding's seed (the mixtures, the sampled modes).
        max_columns: wider tables are refused before they are parsed (``data.max_columns``).
    """

    def __init__(self,
                 path: str,  # the CSV or Parquet file (a header row names the columns)
                 kinds: dict[str, str] = {},  # noqa: B006  column -> continuous|integer|categorical|boolean|datetime, over the inferred
                 id_columns: list[str] = [],  # noqa: B006  columns left out of the model (row ids)
                 target: str | None = None,  # a label column (kept; eval's TSTR predicts it)
                 continuous: Continuous = "mode_specific",  # numerical columns: CTGAN's mixtures, quantile or minmax
                 max_modes: Annotated[int, Field(gt=0, le=100)] = 10,  # most mixture components per column
                 # a value holding at least this share of a numeric column is a mode of its own, decoded exactly
                 point_mass: Annotated[float, Field(ge=0, le=1)] = 0.0,
                 conditional: bool = True,  # CTGAN's conditional vector and training-by-sampling
                 seed: int = 0,  # the encoding's seed (mixtures, sampled modes)
                 max_columns: Annotated[int, Field(gt=0)] = 1000,  # wider tables are refused before parsing
                 # CSV cells that mean "missing" (None: empty, NA, N/A, NaN, nan, NULL, null, None; [] for a
                 # table whose categories include such words, as the "None" state of a Bayesian network)
                 missing_values: list[str] | None = None,
                 ):
        self.path, self.kinds, self.id_columns, self.target = path, dict(kinds), list(id_columns), target
        self.continuous, self.max_modes, self.conditional, self.seed = continuous, max_modes, conditional, seed
        self.point_mass = point_mass
        self.max_columns, self.missing_values = max_columns, missing_values
        markers = {} if missing_values is None else {"missing_values": tuple(missing_values)}
        table, self.schema = read_table(path, kinds=self.kinds or None, id_columns=tuple(self.id_columns),
                                        target=target, max_columns=max_columns, where="data.path", **markers)
        self.frame = table
        self.transformer = TableTransformer(self.schema, continuous=continuous, max_modes=max_modes,
                                            seed=seed, point_mass=point_mass).fit(table)
        self.layout = TableLayout(self.transformer.output_width, tuple(self.transformer.spans),
                                  tuple(self.transformer.discrete))
        self.examples = torch.from_numpy(np.ascontiguousarray(self.transformer.transform(table), dtype=np.float32))
        self.shape = (self.layout.width,)
        self._conditioned = bool(conditional and self.layout.discrete)
        self.n_classes = self.layout.n_conditions if self._conditioned else 0
        if self._conditioned:
            self._index_conditions()

    # -- training-by-sampling ------------------------------------------------------------------------

    @property
    def draws_own_batches(self) -> bool:  # type: ignore[override]
        return self._conditioned

    def _index_conditions(self) -> None:
        assert self.examples is not None
        x = self.examples.numpy()
        cats = []  # (N,) the global condition index of each row, per discrete column
        k = 0
        for c in self.layout.discrete:
            cats.append(k + x[:, c.start : c.start + c.width].argmax(axis=1))
            k += c.width
        cond = np.concatenate(cats)  # (N * n_discrete,)
        rows = np.tile(np.arange(len(x)), len(self.layout.discrete))
        order = np.argsort(cond, kind="stable")
        counts = np.bincount(cond, minlength=self.layout.n_conditions)
        self._rows = torch.from_numpy(rows[order].astype(np.int64))  # rows grouped by condition
        self._offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))
        self._counts = torch.from_numpy(counts.astype(np.int64))
        self._train_probs = torch.from_numpy(_condition_probs(self.layout, counts, log=True))
        self.label_probs = torch.from_numpy(_condition_probs(self.layout, counts, log=False))

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``n`` (row, condition) pairs by training-by-sampling, from ``generator`` alone."""
        if not self._conditioned:
            raise DataError("data: an unconditional table is visited in shuffled epochs, not sampled")
        cond = torch.multinomial(self._train_probs, n, replacement=True, generator=generator)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        pick = self._offsets[cond] + (u * self._counts[cond]).long().clamp_max(self._counts[cond] - 1)
        assert self.examples is not None
        return self.examples[self._rows[pick]], cond

    # -- what a run records ----------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {"path": self.path, "kinds": self.kinds, "id_columns": self.id_columns, "target": self.target,
                "continuous": self.continuous, "max_modes": self.max_modes, "point_mass": self.point_mass,
                "conditional": self.conditional,
                "seed": self.seed, "max_columns": self.max_columns, "missing_values": self.missing_values}

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["n_rows"] = len(self)
        out["table"] = self._table_description()
        return out


class RecordedTable(_Encoded):
    """A table run's data as data.json describes it: the encoding and the conditions, no rows."""

    def __init__(self, desc: dict[str, Any], source: str):
        t = desc.get("table")
        if not isinstance(t, dict):
            raise DataError(f"{source}: no table description")
        self.schema = TableSchema.from_dict(t.get("schema"))
        self.transformer = TableTransformer.from_state_dict(self.schema, t.get("transformer"))
        self.layout = TableLayout.from_dict(t.get("layout"), source)
        self.shape = tuple(int(s) for s in desc["shape"])
        self.n_classes = int(desc.get("n_classes") or 0)
        probs = t.get("condition_probs")
        if self.n_classes:
            if not isinstance(probs, list) or len(probs) != self.n_classes or \
                    not all(isinstance(p, (int, float)) and math.isfinite(p) and p >= 0 for p in probs):
                raise DataError(f"{source}: condition_probs must be {self.n_classes} non-negative numbers")
            self.label_probs = torch.tensor(probs, dtype=torch.float64)
        self.recorded_fingerprint = desc.get("fingerprint")
        self.source = source

    def fingerprint(self) -> str:
        return str(self.recorded_fingerprint)

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        raise DataError(f"{self.source}: the run's table is described, not loaded (rebuild it to compare with it)")
