"""Tables in: CSV / Parquet files and data frames, the type of each column, and the table's schema.

``read_table(source)`` returns the table as a *canonical* data frame plus its ``TableSchema``. The
canonical frame is what every later step works on (the transformer encodes it, and its
``inverse_transform`` gives frames of the same columns, dtypes and category sets), so a round trip is
checked against it, not against the raw file.

Column kinds (``KINDS``) and how they are inferred (``kinds`` overrides any of them):

==============  ======================================================================================
``boolean``     a bool / nullable boolean dtype, or text that is only ``true`` / ``false`` (any case).
                Integers 0/1 and ``yes``/``no`` are *not* inferred as boolean (declare them with
                ``kinds``: forced booleans accept true/false, t/f, yes/no, y/n and 1/0).
                Categories are always ``("False", "True")``.
``integer``     an integer dtype, a float dtype whose values are all integral, or text that is all
                numbers with integral values (text gives int64, or Int64 with missing values).
``continuous``  any other numeric dtype, or text that is all numbers (text gives float64).
``datetime``    a datetime64 dtype, or text that parses entirely with *one* of ``DATETIME_FORMATS``
                (ISO 8601 dates and datetimes; never pandas' per-element guessing). Other formats are
                given per column with ``datetime_formats``. Values are held as int64 nanoseconds.
``categorical`` everything else: text, pandas ``category``, mixed objects. Numbers stay numbers unless
                ``kinds`` says ``categorical`` (then the categories are the numbers written as text,
                and the column keeps its numeric dtype).
==============  ======================================================================================

Categories are stored as strings **sorted by value** (Python string order): two tables with the same
category set get the same schema whatever their frequencies.

Missing values: in files, the text cells equal to one of ``missing_values`` (``MISSING_MARKERS`` by
default: empty, NA, N/A, NaN, nan, NULL, null, None; UCI files also need ``"?"``); in data frames,
pandas' own missing values (NaN, None, NA, NaT). A column that is entirely missing is refused.
With ``strip_spaces`` (the default) text cells lose their leading and trailing whitespace first
(UCI Adult writes ``", State-gov"``).

Checking a second table against a schema (``TableSchema.check_frame``, or ``read_table(...,
schema=...)`` for a file, which names file lines): the same columns (id columns are dropped), each
value convertible to its column's kind, every category in the schema's set (a category seen only in
the test file is refused, naming column, row and value), and no missing value in a column that had
none (the encoding has no place for it). Values **outside the schema's [minimum, maximum] are
allowed**: a held-out table may exceed the training range; ``TableSchema.out_of_range`` counts them
and ``check_frame`` logs the counts. The transformer clips them into its encoding.

Every bad input raises ``ganforge.errors.DataError`` with one line naming the file (``line N`` for a
CSV: the 1-based line in the file; ``row N`` for Parquet files and frames: the 1-based data row) or
the column, and what is allowed. Files too large for memory are refused before they are read
(``ganforge.data.base.check_memory``): a CSV by its (uncompressed) size and the cells per byte of its
first MiB, a Parquet file by its metadata.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import logging
import math
import re
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from ganforge.data.base import check_memory
from ganforge.errors import DataError

logger = logging.getLogger(__name__)

Kind = Literal["continuous", "integer", "categorical", "boolean", "datetime"]
KINDS: tuple[str, ...] = get_args(Kind)
NUMERIC_KINDS = ("continuous", "integer", "datetime")  # encoded as numbers (tanh spans)
DISCRETE_KINDS = ("categorical", "boolean")  # encoded as one-hot blocks

MISSING_MARKERS: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "NULL", "null", "None")
# Text datetimes: the first format that parses *every* value of a column wins (strict, no guessing).
DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y/%m/%d",
)
BOOLEAN_TRUE = ("true", "t", "yes", "y", "1")  # forced booleans (kinds); inference takes true/false only
BOOLEAN_FALSE = ("false", "f", "no", "n", "0")
BOOLEAN_CATEGORIES = ("False", "True")
SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
FILE_FORMATS = ("csv", "parquet")
MAX_DECIMALS = 10  # continuous: decimals up to this many are detected (and rounded to on output)
MAX_EXACT_INTEGER = 2**53  # integers beyond this are not exact in float64
# Datetime granularities tried, coarsest first (ns): day, hour, minute, second, ms, us, ns.
DATETIME_STEPS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)

CSV_HEAD_BYTES = 1 << 20  # the header must fit here; cells per byte are estimated from it
# Peak memory of reading a CSV: 3 x its text (bytes, Arrow strings, decompression) plus this much per
# cell (a Python str in an object column, twice while the canonical frame is built). UCI Adult's 32,561
# x 15 table: estimated 59 MB; Python-traced peak 55 MB, Arrow's buffers on top.
CSV_BYTES_PER_CELL = 96
PARQUET_BYTES_PER_TEXT_CELL = 96
INFER_PROBE = 256  # inference tries a kind on a column's first values before all of them
DECODE_CHUNK = 1 << 24  # UTF-8 is checked in chunks of this many bytes (no whole-file copy)

_ALLOWED_DTYPE = re.compile(
    r"(u?int(8|16|32|64)|U?Int(8|16|32|64)|float(16|32|64)|Float(32|64)|bool|boolean|object|string"
    r"|category|datetime64\[(s|ms|us|ns)(, [A-Za-z0-9_+\-/:]+)?\])")
_NULLABLE_INT = {f"{p}int{b}": f"{p.upper()}Int{b}" for p in ("", "u") for b in (8, 16, 32, 64)}
_DATE_PREFIX = re.compile(r"\d{4}[-/]\d{2}[-/]\d{2}")


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One modelled column.

    Attributes:
        name: the column's name.
        kind: one of ``KINDS``.
        categories: categorical / boolean: the category set as strings, sorted by value (boolean:
            ``("False", "True")``); None for other kinds.
        minimum, maximum: numeric kinds: the smallest and largest value seen (datetime: int64
            nanoseconds since the epoch, UTC for tz-aware columns); None for discrete kinds.
        has_missing: whether the column had missing values (the encoding gives them a place).
        datetime_format: the strptime format text datetimes were read with (None: not text).
        dtype: the pandas dtype the column is restored to (``str(series.dtype)``).
        decimals: continuous: the fewest decimals that write every value exactly (output is rounded to
            it); None when more than ``MAX_DECIMALS`` or another kind.
        step: datetime: the coarsest granularity (ns) of ``DATETIME_STEPS`` that divides every value
            (output is rounded to it); None for other kinds.
    """

    name: str
    kind: Kind
    categories: tuple[str, ...] | None = None
    minimum: float | int | None = None
    maximum: float | int | None = None
    has_missing: bool = False
    datetime_format: str | None = None
    dtype: str = "object"
    decimals: int | None = None
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["categories"] = None if self.categories is None else list(self.categories)
        return d


@dataclasses.dataclass(frozen=True)
class TableSchema:
    """The modelled columns of a table (in order), the id columns left out, and the target column."""

    columns: tuple[ColumnSpec, ...]
    id_columns: tuple[str, ...] = ()
    target: str | None = None

    FORMAT = "ganforge-table-schema"
    VERSION = 1

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DataError(f"table schema: duplicate column names {dup}")
        if not names:
            raise DataError("table schema: no modelled columns")
        both = sorted(set(names) & set(self.id_columns))
        if both:
            raise DataError(f"table schema: {both} are both id columns and modelled columns")
        if self.target is not None and self.target not in names:
            raise DataError(f"table schema: target {self.target!r} is not a modelled column; "
                            f"columns: {_few(names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def kinds(self) -> dict[str, str]:
        """Column name -> kind, in column order."""
        return {c.name: c.kind for c in self.columns}

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r} in the schema; columns: {_few(list(self.names))}")

    # -- JSON -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"format", "version", "columns": [...], "id_columns": [...], "target"}``."""
        return {"format": self.FORMAT, "version": self.VERSION,
                "columns": [c.to_dict() for c in self.columns],
                "id_columns": list(self.id_columns), "target": self.target}

    @classmethod
    def from_dict(cls, d: Any, where: str = "table schema") -> TableSchema:
        """The schema ``to_dict`` wrote; anything malformed raises DataError naming the field."""
        v = _Validator(where)
        v.keys(d, "", {"format", "version", "columns", "id_columns", "target"})
        if d["format"] != cls.FORMAT:
            v.fail("format", f"{d['format']!r} is not {cls.FORMAT!r}")
        if d["version"] != cls.VERSION or isinstance(d["version"], bool):
            v.fail("version", f"{d['version']!r} is not {cls.VERSION} (the only version this code reads)")
        cols = v.list_of(d["columns"], "columns", dict)
        ids = tuple(v.list_of(d["id_columns"], "id_columns", str))
        target = d["target"]
        if target is not None and not isinstance(target, str):
            v.fail("target", f"{target!r} is not a string or null")
        specs = tuple(_column_from_dict(c, f"columns[{i}]", v) for i, c in enumerate(cols))
        try:
            return cls(specs, ids, target)
        except DataError as e:
            raise DataError(f"{where}: {str(e).removeprefix('table schema: ')}") from None

    # -- second tables --------------------------------------------------------------------------

    def check_frame(self, frame: pd.DataFrame, where: str = "table") -> pd.DataFrame:
        """``frame`` as a canonical frame of this schema (columns in schema order, the schema's
        dtypes), ready to encode. Id columns are dropped; a missing or extra column, a value not of its
        column's kind, a category not in the schema, or a missing value in a column that had none
        raises DataError naming column, row (1-based) and value. Out-of-range values are allowed and
        logged (see ``out_of_range``)."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
        _check_names(list(frame.columns), where)
        return _conform(frame, self, where, _row_locator)

    def out_of_range(self, frame: pd.DataFrame) -> dict[str, int]:
        """Per numeric column of a canonical frame, how many values lie outside [minimum, maximum]
        (columns with none are left out)."""
        out = {}
        for spec in self.columns:
            if spec.kind not in NUMERIC_KINDS or spec.name not in frame.columns:
                continue
            values, missing = column_values(spec, frame[spec.name], "table")
            v = values[~missing]
            n = int(np.count_nonzero((v < spec.minimum) | (v > spec.maximum)))
            if n:
                out[spec.name] = n
        return out


# -- reading ---------------------------------------------------------------------------------------


def read_table(source: str | Path | pd.DataFrame, *, kinds: Mapping[str, str] | None = None,
               id_columns: Sequence[str] = (), target: str | None = None, max_columns: int = 1000,
               where: str = "data.path", names: Sequence[str] | None = None,
               missing_values: Sequence[str] = MISSING_MARKERS, strip_spaces: bool = True,
               datetime_formats: Mapping[str, str] | None = None,
               schema: TableSchema | None = None,
               file_format: Literal["csv", "parquet"] | None = None) -> tuple[pd.DataFrame, TableSchema]:
    """Read a table and infer (or apply) its schema.

    Args:
        source: a ``.csv``, ``.csv.gz``, ``.parquet`` or ``.pq`` file (a header line unless ``names``),
            or a pandas DataFrame.
        kinds: column -> kind, overriding inference for those columns.
        id_columns: columns left out of modelling (they must exist; they are not in the result).
        target: the column a downstream classifier predicts (must be a modelled column).
        max_columns: tables with more columns are refused before they are parsed.
        where: what to call a DataFrame source in messages (files are named by their path).
        names: the column names of a CSV file that has no header line.
        missing_values: CSV text cells that mean "missing" (frames use pandas' missing values).
        strip_spaces: strip whitespace around CSV text cells.
        datetime_formats: column -> strptime format, for text datetimes outside ``DATETIME_FORMATS``
            (the column becomes datetime).
        schema: read a second table with this schema (e.g. the test file of a training table): no
            inference, values checked as ``TableSchema.check_frame`` does, errors name file lines.
            ``kinds``, ``id_columns``, ``target`` and ``datetime_formats`` must then be left out.
        file_format: ``"csv"`` or ``"parquet"`` for a file whose name does not end in a known suffix
            (e.g. UCI's ``adult.data.gz``). CSV files starting with the gzip magic bytes are decompressed.

    Returns:
        ``(frame, schema)``: the canonical frame (modelled columns only, in file order) and its schema.
    """
    if max_columns < 1:
        raise DataError(f"{where}: max_columns must be at least 1, got {max_columns}")
    if isinstance(missing_values, str) or not all(isinstance(m, str) for m in missing_values):
        raise DataError(f"{where}: missing_values must be a list of strings, got {missing_values!r}")
    if isinstance(id_columns, str):
        raise DataError(f"{where}: id_columns must be a list of column names, got the string {id_columns!r}")
    if schema is not None and (kinds or id_columns or target is not None or datetime_formats):
        raise DataError(f"{where}: give either schema or kinds / id_columns / target / datetime_formats")
    if isinstance(source, pd.DataFrame):
        label, locate = where, _row_locator
        raw = _frame_columns(source, where, max_columns)
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser().absolute()
        label = str(path)
        kind = _file_kind(path, file_format)
        if kind == "csv":
            raw, locate = _read_csv(path, names, missing_values, strip_spaces, max_columns)
        else:
            if names is not None:
                raise DataError(f"{path}: names is for CSV files without a header; Parquet files name "
                                "their columns")
            raw, locate = _read_parquet(path, max_columns), _row_locator
    else:
        raise DataError(f"{where}: expected a file path or a pandas DataFrame, got {type(source).__name__}")

    if schema is not None:
        return _conform(pd.DataFrame(raw, copy=False), schema, label, locate), schema

    columns = list(raw)
    kinds = dict(kinds or {})
    datetime_formats = dict(datetime_formats or {})
    for what, named in (("kinds", kinds), ("id_columns", id_columns), ("datetime_formats", datetime_formats)):
        unknown = [c for c in named if c not in raw]
        if unknown:
            raise DataError(f"{label}: {what} names column(s) {_few(unknown)} that the table does not have; "
                            f"columns: {_few(columns)}")
    for col, k in kinds.items():
        if k not in KINDS:
            raise DataError(f"{label}: kinds[{col!r}] = {k!r} is not a kind; allowed: {', '.join(KINDS)}")
        if col in id_columns:
            raise DataError(f"{label}: column {col!r} is an id column and cannot have a kind")
    for col, fmt in datetime_formats.items():
        if kinds.get(col, "datetime") != "datetime":
            raise DataError(f"{label}: datetime_formats names column {col!r} whose kind is {kinds[col]!r}")
        if not isinstance(fmt, str) or "%" not in fmt:
            raise DataError(f"{label}: datetime_formats[{col!r}] = {fmt!r} is not a strptime format")
        kinds[col] = "datetime"
    modelled = [c for c in columns if c not in set(id_columns)]
    if not modelled:
        raise DataError(f"{label}: every column is an id column; nothing is left to model")
    if target is not None and target not in modelled:
        why = "an id column" if target in id_columns else "not a column of the table"
        raise DataError(f"{label}: target {target!r} is {why}; columns: {_few(modelled)}")

    specs, out = [], {}
    for col in modelled:
        series = raw[col]
        if not series.notna().any():
            raise DataError(f"{label}: column {col!r} is entirely missing (all {len(series):,} rows); "
                            "drop it or list it in id_columns")
        norm = _normalize(series)
        kind, parsed, fmt = (kinds[col], None, datetime_formats.get(col)) if col in kinds else _infer_kind(norm)
        values, missing, fmt = _parse(norm, kind, fmt, label, col, locate, parsed)
        spec = _spec_of(col, kind, values, missing, fmt, _canonical_dtype(series, kind, missing))
        specs.append(spec)
        out[col] = restore_column(spec, values, missing, index=series.index)
    return pd.DataFrame(out), TableSchema(tuple(specs), tuple(id_columns), target)


def column_values(spec: ColumnSpec, series: pd.Series, where: str = "table",
                  locate: Callable[[int], str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A column as ``(values, missing)`` numpy arrays in its kind's native form: float64 for
    continuous / integer, int64 nanoseconds for datetime, bool for boolean, object (str) for
    categorical; ``missing`` is a bool mask (values under it are arbitrary). Raises DataError on a
    value that is not of the column's kind."""
    values, missing, _ = _parse(_normalize(series), spec.kind, spec.datetime_format, where, spec.name,
                                locate or _row_locator)
    return values, missing


def restore_column(spec: ColumnSpec, values: np.ndarray, missing: np.ndarray | None = None,
                   index: pd.Index | None = None) -> pd.Series:
    """The column of dtype ``spec.dtype`` holding native ``values`` (see ``column_values``) with
    missing values where ``missing`` is set (NaN, NA, NaT or None as the dtype holds them)."""
    n = len(values)
    missing = np.zeros(n, bool) if missing is None else np.asarray(missing, bool)
    has_missing = bool(missing.any())
    dtype = spec.dtype
    if spec.kind in ("continuous", "integer"):
        v = np.asarray(values, np.float64)
        if dtype.startswith(("int", "uint", "Int", "UInt")):
            ints = np.where(missing, 0, v).astype(np.int64)
            if dtype[0] in "IU":
                arr: Any = pd.arrays.IntegerArray(ints.astype(dtype.lower()), missing.copy())
            elif has_missing:
                raise DataError(f"column {spec.name!r}: missing values cannot be held by dtype {dtype}")
            else:
                arr = ints.astype(dtype)
        elif dtype.startswith("Float"):
            arr = pd.arrays.FloatingArray(np.where(missing, 0.0, v).astype(dtype.lower()), missing.copy())
        else:
            arr = np.where(missing, np.nan, v).astype(dtype)
    elif spec.kind == "boolean":
        b = np.asarray(values, bool)
        if dtype == "boolean":
            arr = pd.arrays.BooleanArray(b.copy(), missing.copy())
        elif has_missing:
            raise DataError(f"column {spec.name!r}: missing values cannot be held by dtype {dtype}")
        else:
            arr = b.astype(bool)
    elif spec.kind == "datetime":
        ns = np.where(missing, np.iinfo(np.int64).min, np.asarray(values, np.int64))  # int64 min is NaT
        s = pd.Series(ns.view("datetime64[ns]"), index=index, name=spec.name)
        tz = _tz_of(dtype)
        if tz is not None:
            s = s.dt.tz_localize("UTC").dt.tz_convert(tz)
        return s.astype(dtype) if str(s.dtype) != dtype else s
    else:  # categorical: text back to the column's dtype
        text = np.asarray(values, object)
        if dtype == "object":
            arr = np.where(missing, np.nan, text).astype(object)
        elif dtype == "string":
            arr = pd.array(np.where(missing, None, text), dtype="string")
        elif dtype == "category":
            arr = pd.Categorical(np.where(missing, None, text), categories=list(spec.categories or ()))
        elif dtype in ("bool", "boolean"):
            b = np.where(missing, "False", text) == "True"
            arr = pd.arrays.BooleanArray(b, missing.copy()) if dtype == "boolean" else b
        else:  # a numeric dtype (a number column declared categorical)
            num = np.where(missing, "0", text).astype(np.float64)
            return restore_column(dataclasses.replace(spec, kind="continuous"), num, missing, index)
    return pd.Series(arr, index=index, name=spec.name)


# -- files -----------------------------------------------------------------------------------------


def _file_kind(path: Path, file_format: str | None) -> str:
    name = path.name.lower()
    suffix = ".csv.gz" if name.endswith(".csv.gz") else path.suffix.lower()
    if file_format is not None and file_format not in FILE_FORMATS:
        raise DataError(f"{path}: file_format {file_format!r} is not one of {', '.join(FILE_FORMATS)}")
    if file_format is None and suffix not in SUFFIXES:
        raise DataError(f"{path}: unknown file type {suffix or '(no suffix)'!r}; allowed: {', '.join(SUFFIXES)} "
                        "(or give file_format)")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    return file_format or SUFFIXES[suffix]


def _gzip_size(path: Path) -> int:
    """The uncompressed size of a gzip file from its trailer (ISIZE, the size mod 2**32), lifted to
    at least the compressed size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(size - 4, 0))
        isize = struct.unpack("<I", f.read(4).rjust(4, b"\0"))[0]
    while isize * 1.001 + 64 < size:  # deflate never grows data this much: the size wrapped past 4 GiB
        isize += 1 << 32
    return isize


def _read_csv(path: Path, names: Sequence[str] | None, missing_values: Sequence[str], strip_spaces: bool,
              max_columns: int) -> tuple[dict[str, pd.Series], Callable[[int], str]]:
    """The CSV file's columns as object Series of text (None where missing) and a row -> "line N"
    locator; refuses oversized, non-UTF-8, ragged and empty files."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if path.name.lower().endswith(".gz") and not gz:
        raise DataError(f"{path}: not a gzip file (a .gz file must be gzip-compressed)")
    raw_size = _gzip_size(path) if gz else path.stat().st_size
    head = _read_head(path, gz)
    cells_per_byte = (head.count(b",") + head.count(b"\n") + 1) / max(len(head), 1)
    need = int(raw_size * 3 + raw_size * cells_per_byte * CSV_BYTES_PER_CELL)
    check_memory(need, str(path), f"its {raw_size:,} bytes of text (about {raw_size * cells_per_byte:,.0f} "
                 "cells) would", "read a subset of its rows or columns, or convert it to Parquet")
    try:
        data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read the file ({e})") from None
    start = 3 if data.startswith(codecs.BOM_UTF8) else 0
    _check_utf8(data, start, path, " of the decompressed text" if gz else "")
    view = memoryview(data)[start:]
    if not bytes(view[:CSV_HEAD_BYTES]).strip():
        raise DataError(f"{path}: the file is empty (no header and no rows)")

    first = _first_record(bytes(view[:CSV_HEAD_BYTES]), len(view) > CSV_HEAD_BYTES, path)
    if names is None:
        header = [h.strip() if strip_spaces else h for h in first]
    else:
        header = [str(n) for n in names]
        if len(first) != len(header):
            raise DataError(f"{path}: line 1 has {len(first)} fields but names gives {len(header)} columns")
    if len(header) > max_columns:
        raise DataError(f"{path}: {len(header):,} columns, more than max_columns={max_columns:,}; "
                        "select the columns to model first (or raise max_columns)")
    _check_names(header, str(path))
    first_data_record = 1 if names is None else 0  # the header is record 0

    def locate(row: int) -> str:
        return f"line {_line_of_record(view, row + first_data_record)}"

    bad: list[Any] = []

    def on_invalid(row: Any) -> str:
        bad.append(row)
        return "error"

    text_type = pa.string()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(view),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=0 if names is not None else 1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, text_type),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                 null_values=[]))
    except pa.ArrowInvalid as e:
        if bad or "Expected" in str(e):
            rec, n_fields = _first_ragged_record(view, len(header), names is None)
            if rec < 0 and bad:  # the csv module read it otherwise: say what Arrow saw
                raise DataError(f"{path}: a row has {bad[0].actual_columns} fields, expected {len(header)}: "
                                f"{bad[0].text[:80]!r}") from None
            raise DataError(f"{path}: line {rec} has {n_fields} fields, expected {len(header)} "
                            f"(as {'the header' if names is None else 'names'} gives)") from None
        raise DataError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows (a header line only); a table needs at least one row")
    import pyarrow.compute as pc

    markers = pa.array(sorted(set(missing_values)), pa.string())
    out = {}
    for name, col in zip(header, table.columns, strict=True):
        if strip_spaces:
            col = pc.utf8_trim_whitespace(col)
        col = pc.if_else(pc.is_in(col, value_set=markers), pa.scalar(None, pa.string()), col)
        out[name] = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    del table
    return out, locate


def _read_head(path: Path, gz: bool) -> bytes:
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            return f.read(CSV_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read the file ({e})") from None


def _check_utf8(data: bytes, start: int, path: Path, of: str) -> None:
    """Refuse bytes that are not UTF-8, naming the byte offset and line; checks in chunks (cut at
    character boundaries) so the file is never copied whole."""
    view, n, pos = memoryview(data), len(data), start
    while pos < n:
        end = min(n, pos + DECODE_CHUNK)
        while end < n and (data[end] & 0xC0) == 0x80:  # never cut inside a character
            end -= 1
        try:
            codecs.utf_8_decode(view[pos:end], "strict", True)
        except UnicodeDecodeError as e:
            at = pos + e.start
            line = data.count(b"\n", 0, at) + 1
            raise DataError(f"{path}: not UTF-8 text: byte 0x{data[at]:02x} at byte offset {at:,}{of} "
                            f"(line {line}); save the file as UTF-8") from None
        pos = end


def _first_record(head: bytes, truncated: bool, path: Path) -> list[str]:
    text = codecs.utf_8_decode(head, "ignore", True)[0]
    if truncated and "\n" not in text:
        raise DataError(f"{path}: the first line is longer than {CSV_HEAD_BYTES:,} bytes: far too many columns")
    return next(csv.reader(io.StringIO(text)), [])


def _records(view: memoryview) -> Any:
    """(first line, fields) of each non-blank CSV record of the file (the slow, exact scan used only
    to name a line in an error message)."""
    reader = csv.reader(io.StringIO(codecs.utf_8_decode(view, "replace", True)[0]))
    end = 0
    for fields in reader:
        first, end = end + 1, reader.line_num
        if fields:
            yield first, fields


def _line_of_record(view: memoryview, record: int) -> int:
    """The 1-based file line where non-blank record ``record`` (0-based, header included) starts."""
    for i, (line, _) in enumerate(_records(view)):
        if i == record:
            return line
    return -1


def _first_ragged_record(view: memoryview, expected: int, has_header: bool) -> tuple[int, int]:
    for i, (line, fields) in enumerate(_records(view)):
        if (i > 0 or not has_header) and len(fields) != expected:
            return line, len(fields)
    return -1, -1


def _read_parquet(path: Path, max_columns: int) -> dict[str, pd.Series]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
    schema, meta = pf.schema_arrow, pf.metadata
    if len(schema.names) > max_columns:
        raise DataError(f"{path}: {len(schema.names):,} columns, more than max_columns={max_columns:,}; "
                        "select the columns to model first (or raise max_columns)")
    _check_names(list(schema.names), str(path))
    for field in schema:
        if pa.types.is_nested(field.type):
            raise DataError(f"{path}: column {field.name!r} has the nested type {field.type}; only flat "
                            "columns (numbers, text, booleans, timestamps) can be modelled")
    if meta.num_rows == 0:
        raise DataError(f"{path}: no data rows; a table needs at least one row")
    data_bytes = sum(meta.row_group(g).column(c).total_uncompressed_size
                     for g in range(meta.num_row_groups) for c in range(meta.num_columns))
    n_text = sum(1 for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                 or pa.types.is_dictionary(f.type))
    need = int(2 * data_bytes + meta.num_rows * n_text * PARQUET_BYTES_PER_TEXT_CELL)
    check_memory(need, str(path), f"its {meta.num_rows:,} rows x {len(schema.names)} columns would",
                 "read a subset of its rows or columns first")
    try:
        table = pf.read()
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"{path}: cannot read the Parquet data ({str(e).splitlines()[0]})") from None
    # integers with nulls become nullable integers (not float64); dates become datetime64
    frame = table.to_pandas(date_as_object=False, types_mapper=lambda t: pd.api.types.pandas_dtype(
        _NULLABLE_INT[str(t)]) if str(t) in _NULLABLE_INT else None)
    del table
    out = {}
    for name in schema.names:
        s = frame[name]
        if str(s.dtype) in _NULLABLE_INT.values() and not s.isna().any():
            s = s.astype(str(s.dtype).lower())
        out[name] = s.reset_index(drop=True)
    return out


def _frame_columns(frame: pd.DataFrame, where: str, max_columns: int) -> dict[str, pd.Series]:
    if frame.shape[1] > max_columns:
        raise DataError(f"{where}: {frame.shape[1]:,} columns, more than max_columns={max_columns:,}")
    _check_names(list(frame.columns), where)
    if len(frame) == 0:
        raise DataError(f"{where}: no rows; a table needs at least one row")
    return {c: frame[c].reset_index(drop=True) for c in frame.columns}


def _check_names(names: list[Any], where: str) -> None:
    for i, n in enumerate(names):
        if not isinstance(n, str):
            raise DataError(f"{where}: column {i + 1} is named {n!r}, not a string; name the columns")
        if not n.strip():
            raise DataError(f"{where}: column {i + 1} has an empty name; name it or remove it")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{where}: duplicate column names {_few(dup)}; column names must be unique")


def _row_locator(row: int) -> str:
    return f"row {row + 1}"


# -- inference and parsing -------------------------------------------------------------------------


_TEXT_TYPES = ("string", "empty")  # pandas.api.types.infer_dtype of a column of text
_NUMBER_TYPES = ("integer", "floating", "mixed-integer-float", "decimal")


def _normalize(series: pd.Series) -> pd.Series:
    """A column in one of the forms the parser knows: text (object dtype of str, None missing), or a
    typed dtype (numeric, bool / boolean, datetime64). Categories become text; object columns of
    Python bools, numbers or datetimes become typed; any other objects become text (``str``)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or isinstance(dtype, pd.StringDtype):
        present = series.notna()
        return series.astype(object).where(present, None).map(
            lambda x: x if x is None or isinstance(x, str) else str(x))
    if not pd.api.types.is_object_dtype(dtype):
        return series
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in _TEXT_TYPES:
        return series.where(series.notna(), None)
    if inferred == "boolean":
        return series.astype("boolean")
    if inferred in _NUMBER_TYPES:
        return pd.to_numeric(series)
    if inferred in ("datetime", "datetime64", "date"):
        return pd.to_datetime(series)
    return series.map(lambda x: None if pd.isna(x) else str(x)).astype(object)


def _is_text(series: pd.Series) -> bool:
    """Whether a normalized column holds text."""
    return pd.api.types.is_object_dtype(series.dtype)


def _infer_kind(series: pd.Series) -> tuple[str, pd.Series | None, str | None]:
    """The kind of a normalized column (see the module's table), with what inference already parsed
    of a text column (its present values as numbers or datetimes, and the datetime format) so that
    ``_parse`` need not parse them again."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", None, None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", None, None
    if pd.api.types.is_numeric_dtype(dtype):
        return _numeric_kind(series), None, None
    text = series[series.notna()]
    head = text.iloc[:INFER_PROBE]  # a cheap first look: most text columns fail on their first values
    if head.str.lower().isin(("true", "false")).all() and text.str.lower().isin(("true", "false")).all():
        return "boolean", None, None
    if pd.to_numeric(head, errors="coerce").notna().all():
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().all():
            return _numeric_kind(numbers), numbers, None
    if _DATE_PREFIX.match(text.iloc[0]):
        found = _datetime_parse(text)
        if found is not None:
            return "datetime", found[1], found[0]
    return "categorical", None, None


def _numeric_kind(numbers: pd.Series) -> str:
    if pd.api.types.is_integer_dtype(numbers.dtype):
        return "integer"
    v = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    v = v[~np.isnan(v)]
    return "integer" if np.isfinite(v).all() and np.array_equal(v, np.floor(v)) else "continuous"


def _datetime_parse(text: pd.Series) -> tuple[str, pd.Series] | None:
    """The first of ``DATETIME_FORMATS`` that parses every value of ``text`` (all present) and the
    parsed values, else None. Formats that fail on the first values are not tried on the rest."""
    head = text.iloc[:INFER_PROBE]
    for fmt in DATETIME_FORMATS:
        if pd.to_datetime(head, format=fmt, errors="coerce").notna().all():
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
            if parsed.notna().all():
                return fmt, parsed
    return None


def _parse(series: pd.Series, kind: str, fmt: str | None, where: str, name: str, locate: Callable[[int], str],
           parsed: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(values, missing, datetime_format)`` of a normalized column read as ``kind`` (native forms as
    in ``column_values``); DataError naming the first value that is not of that kind. ``parsed``:
    the present values of a text column already parsed by ``_infer_kind`` for this kind."""
    missing = series.isna().to_numpy(dtype=bool)
    present = ~missing
    dtype = series.dtype
    text = _is_text(series)
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)

    def fail(i: int, what: str) -> DataError:
        return DataError(f"{where}: column {name!r}, {locate(int(i))}: {what}")

    def refuse(allowed: str) -> DataError:
        return DataError(f"{where}: column {name!r} of dtype {dtype} cannot be {kind}; {allowed}")

    if kind in ("continuous", "integer"):
        if text and parsed is not None:
            v = np.zeros(len(series))
            v[present] = parsed.to_numpy(np.float64)
        elif text:
            v = pd.to_numeric(series.where(present, "0"), errors="coerce").to_numpy(np.float64)
            bad = np.flatnonzero(present & np.isnan(v))
            if bad.size:
                raise fail(bad[0], f"{series.iloc[bad[0]]!r} is not a number (allowed in a {kind} column)")
        elif numeric:
            v = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            raise refuse("numbers or text of numbers can")
        v = np.where(present, v, 0.0)
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise fail(bad[0], f"{float(v[bad[0]])} is not a finite number")
        if kind == "integer":
            bad = np.flatnonzero(v != np.floor(v))
            if bad.size:
                raise fail(bad[0], f"{float(v[bad[0]])!r} is not an integer (allowed in an integer column)")
            bad = np.flatnonzero(np.abs(v) > MAX_EXACT_INTEGER)
            if bad.size:
                raise fail(bad[0], f"{v[bad[0]]:.0f} is beyond +-2**53, which cannot be modelled exactly; "
                           "declare the column categorical or an id column")
        return v, missing, None

    if kind == "boolean":
        if text:
            low = series.where(present, "false").str.lower()
            is_true, is_false = low.isin(BOOLEAN_TRUE).to_numpy(), low.isin(BOOLEAN_FALSE).to_numpy()
            bad = np.flatnonzero(~(is_true | is_false))
            if bad.size:
                raise fail(bad[0], f"{series.iloc[bad[0]]!r} is not a boolean; allowed: "
                           f"{'/'.join(BOOLEAN_TRUE)} and {'/'.join(BOOLEAN_FALSE)} (any case)")
            return is_true, missing, None
        if pd.api.types.is_bool_dtype(dtype):
            return series.to_numpy(dtype=bool, na_value=False), missing, None
        if numeric:
            v = np.where(present, series.to_numpy(dtype=np.float64, na_value=0.0), 0.0)
            bad = np.flatnonzero((v != 0) & (v != 1))
            if bad.size:
                raise fail(bad[0], f"{float(v[bad[0]])!r} is not a boolean; numbers must be 0 or 1")
            return v == 1, missing, None
        raise refuse("booleans, 0/1 or text of booleans can")

    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(dtype):
            s = series
            if getattr(dtype, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            ns = s.to_numpy(dtype="datetime64[ns]").view(np.int64)
            return np.where(present, ns, 0), missing, None
        if not text:
            raise refuse("datetime64 values or text dates can")
        if parsed is not None and fmt is not None:
            ns = np.zeros(len(series), np.int64)
            ns[present] = parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)
            return ns, missing, fmt
        if fmt is None:
            found = _datetime_parse(series[present])
            fmt = None if found is None else found[0]
            if fmt is None:
                best = max(DATETIME_FORMATS, key=lambda f: int(pd.to_datetime(
                    series[present], format=f, errors="coerce").notna().sum()))
                parsed = pd.to_datetime(series.where(present, None), format=best, errors="coerce")
                bad = np.flatnonzero(present & parsed.isna().to_numpy())
                raise fail(bad[0], f"{series.iloc[bad[0]]!r} is not a datetime in one format of "
                           f"{', '.join(DATETIME_FORMATS)} (a column must use one); "
                           "give its format with datetime_formats")
        parsed = pd.to_datetime(series.where(present, None), format=fmt, errors="coerce")
        bad = np.flatnonzero(present & parsed.isna().to_numpy())
        if bad.size:
            raise fail(bad[0], f"{series.iloc[bad[0]]!r} does not match the datetime format {fmt!r}")
        ns = parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)
        return np.where(present, ns, 0), missing, fmt

    # categorical: the values as text
    if text:
        values = series.to_numpy(dtype=object, copy=True)
    elif pd.api.types.is_bool_dtype(dtype):
        values = np.where(series.to_numpy(dtype=bool, na_value=False), "True", "False").astype(object)
    elif pd.api.types.is_integer_dtype(dtype):
        values = np.array([str(x) for x in series.to_numpy(dtype=np.int64, na_value=0)], object)
    elif numeric:
        values = np.array([repr(float(x)) for x in series.to_numpy(dtype=np.float64, na_value=0.0)], object)
    else:
        raise refuse("text, numbers or booleans can")
    values[missing] = None
    return values, missing, None


def _canonical_dtype(series: pd.Series, kind: str, missing: np.ndarray) -> str:
    """The dtype a column of ``kind`` keeps: the input's when it holds that kind naturally, else the
    standard one (float64; int64 / Int64; bool / boolean; datetime64[ns]; object)."""
    dtype = series.dtype
    has_missing = bool(missing.any())
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if kind == "continuous":
        return str(dtype) if pd.api.types.is_float_dtype(dtype) else "float64"
    if kind == "integer":
        if numeric and not (has_missing and str(dtype).startswith(("int", "uint"))):
            return str(dtype)
        return "Int64" if has_missing else "int64"
    if kind == "boolean":
        return "boolean" if has_missing else "bool"
    if kind == "datetime":
        return str(dtype) if pd.api.types.is_datetime64_any_dtype(dtype) else "datetime64[ns]"
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return "category" if isinstance(dtype, pd.CategoricalDtype) else "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean" if has_missing else "bool"
    if numeric:
        if has_missing and pd.api.types.is_integer_dtype(dtype) and str(dtype)[0] in "iu":
            return "Int64"
        return str(dtype)
    return "object"


def _spec_of(name: str, kind: str, values: np.ndarray, missing: np.ndarray, fmt: str | None,
             dtype: str) -> ColumnSpec:
    present = values[~missing]
    spec: dict[str, Any] = {"name": name, "kind": kind, "has_missing": bool(missing.any()), "dtype": dtype,
                            "datetime_format": fmt}
    if kind == "categorical":
        spec["categories"] = tuple(sorted({str(v) for v in present}))
    elif kind == "boolean":
        spec["categories"] = BOOLEAN_CATEGORIES
    elif kind == "datetime":
        spec["minimum"], spec["maximum"] = int(present.min()), int(present.max())
        spec["step"] = next(s for s in DATETIME_STEPS if not np.any(present % s))
    else:
        spec["minimum"], spec["maximum"] = float(present.min()), float(present.max())
        if kind == "continuous":
            spec["decimals"] = _decimals(present, dtype)
    return ColumnSpec(**spec)


def _decimals(values: np.ndarray, dtype: str) -> int | None:
    """The fewest decimals d <= MAX_DECIMALS with round(x, d) == x for every value (in the column's
    float precision), else None."""
    narrow = np.float32 if dtype.lower() == "float32" else np.float16 if dtype == "float16" else None
    for d in range(MAX_DECIMALS + 1):
        r = np.round(values, d)
        if narrow is not None:
            r = r.astype(narrow).astype(np.float64)
        if np.array_equal(r, values):
            return d
    return None


def _tz_of(dtype: str) -> str | None:
    m = re.fullmatch(r"datetime64\[\w+, (.+)\]", dtype)
    return m.group(1) if m else None


# -- conforming a second table to a schema ---------------------------------------------------------


def _conform(frame: pd.DataFrame, schema: TableSchema, where: str, locate: Callable[[int], str]) -> pd.DataFrame:
    cols = [c for c in frame.columns if c not in set(schema.id_columns)]
    missing_cols = [c for c in schema.names if c not in cols]
    extra = [c for c in cols if c not in schema.names]
    if missing_cols or extra:
        parts = ([f"missing column(s) {_few(missing_cols)}"] if missing_cols else []) + (
            [f"column(s) {_few(extra)} not in the schema"] if extra else [])
        raise DataError(f"{where}: {'; '.join(parts)}; the schema has {_few(list(schema.names))}")
    if len(frame) == 0:
        raise DataError(f"{where}: no rows; a table needs at least one row")
    out = {}
    for spec in schema.columns:
        series = frame[spec.name].reset_index(drop=True)
        values, missing, _ = _parse(_normalize(series), spec.kind, spec.datetime_format, where, spec.name,
                                    locate)
        if missing.any() and not spec.has_missing:
            i = int(np.flatnonzero(missing)[0])
            raise DataError(f"{where}: column {spec.name!r}, {locate(i)}: a missing value, but the schema's "
                            f"column has none ({int(missing.sum()):,} missing in all)")
        if spec.kind == "categorical":
            cats = pd.Index(spec.categories or ())
            unseen = np.flatnonzero(~missing & (cats.get_indexer(values.astype(object)) < 0))
            if unseen.size:
                i = int(unseen[0])
                raise DataError(f"{where}: column {spec.name!r}, {locate(i)}: category {values[i]!r} is not in "
                                f"the schema (seen only in this table; {unseen.size:,} such values); allowed: "
                                f"{_few([repr(c) for c in cats])}")
        out[spec.name] = restore_column(spec, values, missing)
    result = pd.DataFrame(out)
    far = schema.out_of_range(result)
    if far:
        logger.warning("%s: values outside the schema's range (allowed; clipped by the encoding): %s", where,
                       ", ".join(f"{k}: {v:,}" for k, v in far.items()))
    return result


# -- schema validation -----------------------------------------------------------------------------


class _Validator:
    """Strict checks of JSON-loaded dictionaries, raising one-line DataErrors naming the field."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, what: str) -> None:
        raise DataError(f"{self.where}: {field}: {what}" if field else f"{self.where}: {what}")

    def keys(self, d: Any, field: str, keys: set[str]) -> None:
        if not isinstance(d, dict):
            self.fail(field, f"expected an object, got {type(d).__name__}")
        missing, extra = sorted(keys - set(d)), sorted(set(d) - keys)
        if missing:
            self.fail(field, f"missing key(s) {missing}")
        if extra:
            self.fail(field, f"unexpected key(s) {extra}")

    def list_of(self, x: Any, field: str, typ: type) -> list[Any]:
        if not isinstance(x, list):
            self.fail(field, f"expected a list, got {type(x).__name__}")
        for i, e in enumerate(x):
            if not isinstance(e, typ) or (typ is not bool and isinstance(e, bool)):
                self.fail(f"{field}[{i}]", f"expected {typ.__name__}, got {e!r}")
        return x

    def number(self, x: Any, field: str, integer: bool = False, none: bool = True) -> Any:
        if x is None and none:
            return None
        ok = isinstance(x, int) if integer else isinstance(x, (int, float))
        if not ok or isinstance(x, bool) or (isinstance(x, float) and not math.isfinite(x)):
            self.fail(field, f"expected {'an integer' if integer else 'a finite number'}"
                      f"{' or null' if none else ''}, got {x!r}")
        return x


def _column_from_dict(d: Any, field: str, v: _Validator) -> ColumnSpec:
    keys = {f.name for f in dataclasses.fields(ColumnSpec)}
    v.keys(d, field, keys)
    name, kind = d["name"], d["kind"]
    if not isinstance(name, str) or not name.strip():
        v.fail(f"{field}.name", f"expected a non-empty string, got {name!r}")
    if kind not in KINDS:
        v.fail(f"{field}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(d["has_missing"], bool):
        v.fail(f"{field}.has_missing", f"expected true or false, got {d['has_missing']!r}")
    dtype = d["dtype"]
    if not isinstance(dtype, str) or not _ALLOWED_DTYPE.fullmatch(dtype):
        v.fail(f"{field}.dtype", f"{dtype!r} is not a dtype a table column can be restored to")
    cats = d["categories"]
    lo = v.number(d["minimum"], f"{field}.minimum", integer=kind == "datetime")
    hi = v.number(d["maximum"], f"{field}.maximum", integer=kind == "datetime")
    decimals = v.number(d["decimals"], f"{field}.decimals", integer=True)
    step = v.number(d["step"], f"{field}.step", integer=True)
    fmt = d["datetime_format"]
    if fmt is not None and (kind != "datetime" or not isinstance(fmt, str) or "%" not in fmt):
        v.fail(f"{field}.datetime_format", f"{fmt!r} is not a strptime format of a datetime column")
    if kind in DISCRETE_KINDS:
        cats = v.list_of(cats, f"{field}.categories", str)
        if not cats or len(set(cats)) != len(cats) or cats != sorted(cats):
            v.fail(f"{field}.categories", "expected a non-empty list of unique strings in sorted order")
        if kind == "boolean" and tuple(cats) != BOOLEAN_CATEGORIES:
            v.fail(f"{field}.categories", f"a boolean column's categories are {list(BOOLEAN_CATEGORIES)}")
        if any(x is not None for x in (lo, hi, decimals, step)):
            v.fail(field, f"a {kind} column has no minimum, maximum, decimals or step")
        cats = tuple(cats)
    else:
        if cats is not None:
            v.fail(f"{field}.categories", f"a {kind} column has no categories")
        if lo is None or hi is None or lo > hi:
            v.fail(field, f"a {kind} column needs minimum <= maximum, got {lo!r} and {hi!r}")
        if decimals is not None and (kind != "continuous" or not 0 <= decimals <= MAX_DECIMALS):
            v.fail(f"{field}.decimals", f"only a continuous column has decimals, 0..{MAX_DECIMALS}")
        if (step is None) != (kind != "datetime") or (step is not None and step not in DATETIME_STEPS):
            v.fail(f"{field}.step", f"a datetime column has a step among {list(DATETIME_STEPS)}, others none")
    return ColumnSpec(name=name, kind=kind, categories=cats, minimum=lo, maximum=hi, has_missing=d["has_missing"],
                      datetime_format=fmt, dtype=dtype, decimals=decimals, step=step)


def _few(items: Sequence[Any], n: int = 8) -> str:
    items = [str(x) for x in items]
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")
