"""Synthetic tables from Python in three lines, as SDV's synthesizers:

    from ganforge.tabular import TableSynthesizer
    synth = TableSynthesizer(out="runs/adult", steps=3000).fit(frame)   # a data frame or a CSV / Parquet path
    fake = synth.sample(1000, seed=0)                                    # a data frame, the same for a seed
    women = synth.sample(100, condition={"sex": "Female"})              # only rows with that value

Underneath it is ``ganforge train tabular`` into a run directory (config.yaml, checkpoints, data.json,
metrics, report), so everything the command line does works on it, and ``TableSynthesizer.load(dir)``
reads it back. A data frame given to ``fit`` is written into the run directory
(``training_table.parquet``) so that the run can be resumed and evaluated: the run directory then
holds the training rows, and is as private as they are.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from ganforge.errors import GanforgeError


class TableSynthesizer:
    """Fit a table, sample a table.

    Args:
        out: the run directory (a new temporary one when None).
        recipe: a packaged recipe or a YAML file (default ``tabular``: the CTGAN game).
        steps: training steps (the recipe's when None).
        seed: ``train.seed``.
        kinds: column types that override the inferred ones (``{"age": "integer", ...}``).
        target: a label column (kept; the utility metrics predict it).
        id_columns: columns left out of the model.
        overrides: further ``key=value`` config overrides (``["train.batch_size=1000"]``).
        progress: show the progress bar.
    """

    def __init__(self, out: str | Path | None = None, recipe: str = "tabular", steps: int | None = None,
                 seed: int = 0, kinds: dict[str, str] | None = None, target: str | None = None,
                 id_columns: list[str] | None = None, overrides: list[str] | tuple[str, ...] = (),
                 progress: bool = False):
        self.out, self.recipe, self.steps, self.seed = out, recipe, steps, seed
        self.kinds, self.target, self.id_columns = kinds, target, id_columns
        self.overrides, self.progress = list(overrides), progress
        self.run_dir_: Path | None = None
        self.generator_: Any = None

    def _config(self, path: Path) -> Any:
        from ganforge.components import load_config  # noqa: PLC0415

        sets = [f"data.path={path}", f"train.seed={self.seed}", f"train.progress={str(self.progress).lower()}"]
        if self.steps is not None:
            sets.append(f"train.steps={self.steps}")
        if self.kinds:
            sets.append("data.kinds={" + ", ".join(f"{k!r}: {v}" for k, v in self.kinds.items()) + "}")
        if self.target is not None:
            sets.append(f"data.target={self.target!r}")
        if self.id_columns:
            sets.append("data.id_columns=[" + ", ".join(repr(c) for c in self.id_columns) + "]")
        return load_config(self.recipe, sets + self.overrides)

    def fit(self, data: pd.DataFrame | str | Path) -> TableSynthesizer:
        """Train on ``data`` (a data frame, or a CSV / Parquet file); returns self."""
        from ganforge.io import atomic_open  # noqa: PLC0415
        from ganforge.run import load_generator, train  # noqa: PLC0415
        from ganforge.rundir import RunDir  # noqa: PLC0415

        out = Path(self.out) if self.out is not None else Path(tempfile.mkdtemp(prefix="ganforge-table-"))
        if isinstance(data, pd.DataFrame):
            if data.empty:
                raise GanforgeError("fit: the data frame has 0 rows")
            path = RunDir(out).training_table_path
            with atomic_open(path, "wb") as f:
                data.to_parquet(f, index=False)
        else:
            path = Path(data).expanduser().resolve()
        cfg = self._config(path)
        train(cfg, out)
        self.run_dir_ = out
        self.generator_ = load_generator(out)
        return self

    @classmethod
    def load(cls, run_dir: str | Path) -> TableSynthesizer:
        """A synthesizer trained before, read back from its run directory (the training file is not needed)."""
        from ganforge.run import load_generator  # noqa: PLC0415
        from ganforge.tabular.sampling import is_table_generator  # noqa: PLC0415

        G = load_generator(run_dir)
        if not is_table_generator(G):
            raise GanforgeError(f"{run_dir}: not a table run (its data is not a table)")
        synth = cls(out=run_dir)
        synth.run_dir_, synth.generator_ = Path(run_dir), G
        return synth

    def sample(self, n: int, seed: int = 0, condition: dict[str, Any] | None = None) -> pd.DataFrame:
        """``n`` synthetic rows (the same rows for the same seed); ``condition={"column": value}``: only
        rows with that value in that discrete column."""
        from ganforge.tabular.sampling import sample_table  # noqa: PLC0415

        if self.generator_ is None:
            raise GanforgeError("sample: fit the synthesizer first (or TableSynthesizer.load a run)")
        cond = None
        if condition:
            if len(condition) != 1:
                raise GanforgeError(f"condition: one column at a time (CTGAN's conditional vector), got "
                                    f"{len(condition)}: {', '.join(map(str, condition))}")
            cond = next(iter(condition.items()))
        return sample_table(self.generator_, n, seed=seed, condition=cond)
