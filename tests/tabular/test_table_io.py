"""Reading tables: type inference, canonical frames, schemas, and every refused input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tabular_shared import ADULT_NAMES, shared_data

import ganforge.data.base as data_base
from ganforge.errors import DataError
from ganforge.tabular.table import (
    BOOLEAN_CATEGORIES,
    MISSING_MARKERS,
    TableSchema,
    column_values,
    read_table,
    restore_column,
)


def _adult_dir():
    return shared_data("adult", "adult.data.gz")


ADULT = _adult_dir()


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# -- inference -------------------------------------------------------------------------------------


def test_kinds_inferred_from_a_frame():
    frame = pd.DataFrame({
        "cont": [0.5, 1.25, -3.0, 2.0],
        "int": np.array([1, 2, 3, 4], dtype=np.int32),
        "float_int": [1.0, 2.0, np.nan, 4.0],
        "flag": [True, False, True, True],
        "zero_one": [0, 1, 1, 0],
        "text_bool": ["true", "False", "TRUE", "false"],
        "yes_no": ["yes", "no", "yes", "no"],
        "date": ["2020-01-01", "2020-02-29", "2021-12-31", None],
        "stamp": pd.to_datetime(["2020-01-01 10:00", "2020-01-02 11:30", "2020-01-03 00:00", "2020-01-04 00:00"]),
        "cat": ["b", "a", "b", None],
        "num_text": ["1", "-2", "3", "40"],
        "pcat": pd.Categorical(["x", "y", "x", "x"]),
    })
    df, schema = read_table(frame)
    assert schema.kinds == {
        "cont": "continuous", "int": "integer", "float_int": "integer", "flag": "boolean", "zero_one": "integer",
        "text_bool": "boolean", "yes_no": "categorical", "date": "datetime", "stamp": "datetime",
        "cat": "categorical", "num_text": "integer", "pcat": "categorical"}
    c = {s.name: s for s in schema.columns}
    assert (c["cont"].minimum, c["cont"].maximum, c["cont"].decimals) == (-3.0, 2.0, 2)
    assert c["int"].dtype == "int32" and df["int"].dtype == np.int32
    assert c["float_int"].has_missing and c["float_int"].dtype == "float64"
    assert c["flag"].categories == BOOLEAN_CATEGORIES == ("False", "True")
    assert df["text_bool"].tolist() == [True, False, True, False] and df["text_bool"].dtype == bool
    assert c["yes_no"].categories == ("no", "yes")
    assert c["date"].datetime_format == "%Y-%m-%d" and c["date"].step == 86_400 * 10**9 and c["date"].has_missing
    assert df["date"].iloc[1] == pd.Timestamp("2020-02-29") and pd.isna(df["date"].iloc[3])
    assert c["date"].minimum == pd.Timestamp("2020-01-01").value and c["date"].maximum == pd.Timestamp("2021-12-31").value
    assert c["stamp"].step == 60 * 10**9 and c["stamp"].datetime_format is None
    assert c["cat"].categories == ("a", "b") and c["cat"].has_missing
    assert df["num_text"].tolist() == [1, -2, 3, 40] and df["num_text"].dtype == np.int64
    assert c["pcat"].dtype == "category" and c["pcat"].categories == ("x", "y")
    assert list(df.columns) == list(frame.columns)


def test_csv_text_is_typed_and_missing_markers_apply(tmp_path):
    path = _write(tmp_path / "t.csv",
                  "id,x,n,when,flag,city\n"
                  "1, 0.125,3,2021-03-04 05:06:07,true,Paris\n"
                  "2,NA,4,2021-03-05 00:00:00,false,\"Rio, RJ\"\n"
                  "3,2.5,,2021-03-06 23:59:59,TRUE,Oslo\n")
    df, schema = read_table(path, id_columns=["id"], target="city")
    assert schema.id_columns == ("id",) and schema.target == "city"
    assert list(df.columns) == ["x", "n", "when", "flag", "city"]
    assert schema.kinds == {"x": "continuous", "n": "integer", "when": "datetime", "flag": "boolean",
                            "city": "categorical"}
    assert df["x"].tolist()[0] == 0.125 and np.isnan(df["x"].iloc[1]) and schema.column("x").decimals == 3
    assert str(df["n"].dtype) == "Int64" and df["n"].isna().tolist() == [False, False, True]
    assert schema.column("when").datetime_format == "%Y-%m-%d %H:%M:%S"
    assert df["when"].iloc[2] == pd.Timestamp("2021-03-06 23:59:59")
    assert df["city"].tolist() == ["Paris", "Rio, RJ", "Oslo"]
    assert schema.column("city").categories == ("Oslo", "Paris", "Rio, RJ")


def test_gzip_and_parquet_give_the_same_table_as_csv(tmp_path):
    text = "a,b,c\n1,x,0.5\n2,y,1.5\n3,x,\n"
    csv_df, csv_schema = read_table(_write(tmp_path / "t.csv", text))
    gz_df, gz_schema = read_table(_write(tmp_path / "t.csv.gz", gzip.compress(text.encode())))
    pd.testing.assert_frame_equal(gz_df, csv_df)
    assert gz_schema == csv_schema
    pq.write_table(pa.Table.from_pandas(csv_df, preserve_index=False), tmp_path / "t.parquet")
    pq_df, pq_schema = read_table(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pq_df, csv_df)
    assert pq_schema == csv_schema


def test_parquet_nullable_integers_and_dates(tmp_path):
    import datetime

    table = pa.table({"n": pa.array([1, None, 3], pa.int64()), "d": pa.array(
        [datetime.date(2020, 1, 1), datetime.date(2020, 1, 2), None], pa.date32())})
    pq.write_table(table, tmp_path / "t.pq")
    df, schema = read_table(tmp_path / "t.pq")
    assert schema.kinds == {"n": "integer", "d": "datetime"}
    assert str(df["n"].dtype) == "Int64" and df["n"].isna().tolist() == [False, True, False]
    assert df["d"].iloc[1] == pd.Timestamp("2020-01-02") and schema.column("d").step == 86_400 * 10**9


def test_kinds_and_datetime_formats_override_inference(tmp_path):
    path = _write(tmp_path / "t.csv", "zip,answer,day,v\n10,yes,03/04/2020,1\n2,no,31/12/2021,2\n1,Y,01/01/2020,3\n")
    df, schema = read_table(path, kinds={"zip": "categorical", "answer": "boolean", "v": "continuous"},
                            datetime_formats={"day": "%d/%m/%Y"})
    assert schema.kinds == {"zip": "categorical", "answer": "boolean", "day": "datetime", "v": "continuous"}
    assert schema.column("zip").categories == ("1", "10", "2")  # sorted as text
    assert df["answer"].tolist() == [True, False, True]
    assert df["day"].tolist() == [pd.Timestamp("2020-04-03"), pd.Timestamp("2021-12-31"), pd.Timestamp("2020-01-01")]
    assert df["v"].dtype == np.float64
    # a numeric frame column declared categorical keeps its dtype and restores its numbers
    frame, fschema = read_table(pd.DataFrame({"code": [7, 12, 7]}), kinds={"code": "categorical"})
    spec = fschema.column("code")
    assert spec.categories == ("12", "7") and spec.dtype == "int64"
    values, missing = column_values(spec, frame["code"])
    pd.testing.assert_series_equal(restore_column(spec, values, missing), frame["code"])


def test_zero_one_integers_become_boolean_only_when_declared():
    df, schema = read_table(pd.DataFrame({"z": [0, 1, 1]}))
    assert schema.kinds == {"z": "integer"}
    df, schema = read_table(pd.DataFrame({"z": [0, 1, 1]}), kinds={"z": "boolean"})
    assert df["z"].tolist() == [False, True, True]
    with pytest.raises(DataError, match=r"column 'z', row 2: 2.0 is not a boolean"):
        read_table(pd.DataFrame({"z": [0, 2, 1]}), kinds={"z": "boolean"})


# -- schema JSON -----------------------------------------------------------------------------------


def _schema() -> TableSchema:
    frame = pd.DataFrame({"a": [1.5, 2.25], "b": ["x", None], "c": [True, False],
                          "d": pd.to_datetime(["2020-01-01", "2020-01-02"]).tz_localize("UTC"), "e": [1, 2]})
    return read_table(frame, id_columns=["e"], target="b")[1]


def test_schema_json_round_trip():
    schema = _schema()
    d = json.loads(json.dumps(schema.to_dict()))
    assert TableSchema.from_dict(d) == schema
    assert schema.column("d").dtype == "datetime64[ns, UTC]"
    assert d["id_columns"] == ["e"] and d["target"] == "b"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("target"), r"missing key\(s\) \['target'\]"),
    (lambda d: d.update(extra=1), r"unexpected key\(s\) \['extra'\]"),
    (lambda d: d.update(format="pickle"), r"format: 'pickle' is not 'ganforge-table-schema'"),
    (lambda d: d.update(version=2), r"version: 2 is not 1"),
    (lambda d: d["columns"][0].update(kind="float"), r"columns\[0\].kind: 'float' is not one of"),
    (lambda d: d["columns"][1].update(categories=["y", "x"]), r"columns\[1\].categories: .*sorted"),
    (lambda d: d["columns"][2].update(categories=["no", "yes"]), r"boolean column's categories"),
    (lambda d: d["columns"][0].update(minimum=5.0), r"columns\[0\]: a continuous column needs minimum <= maximum"),
    (lambda d: d["columns"][0].update(maximum=float("nan")), r"columns\[0\].maximum: expected a finite number"),
    (lambda d: d["columns"][0].update(dtype="object; import os"), r"columns\[0\].dtype: .* is not a dtype"),
    (lambda d: d["columns"][3].update(minimum=1.5), r"columns\[3\].minimum: expected an integer"),
    (lambda d: d["columns"][3].update(step=7), r"columns\[3\].step"),
    (lambda d: d.update(target="nope"), r"target 'nope' is not a modelled column"),
    (lambda d: d.update(id_columns=["a"]), r"both id columns and modelled columns"),
    (lambda d: d["columns"].append(dict(d["columns"][0])), r"duplicate column names \['a'\]"),
    (lambda d: d.update(columns="a,b"), r"columns: expected a list"),
])
def test_schema_from_dict_refuses_malformed(edit, message):
    d = json.loads(json.dumps(_schema().to_dict()))
    edit(d)
    with pytest.raises(DataError, match=message):
        TableSchema.from_dict(d)


def test_schema_from_dict_refuses_non_objects():
    with pytest.raises(DataError, match="expected an object, got list"):
        TableSchema.from_dict([])


# -- a second table against a schema ---------------------------------------------------------------


def test_category_seen_only_in_the_test_file_is_refused_with_its_line(tmp_path):
    _, schema = read_table(_write(tmp_path / "train.csv", "color,size\nred,1\nblue,2\nred,3\n"))
    test = _write(tmp_path / "test.csv", "color,size\nred,5\n\"blue\",1\ngreen,2\nmauve,2\n")
    with pytest.raises(DataError) as e:
        read_table(test, schema=schema)
    msg = str(e.value)
    assert msg.startswith(str(test)) and "column 'color', line 4: category 'green' is not in the schema" in msg
    assert "2 such values" in msg and "'blue', 'red'" in msg
    with pytest.raises(DataError, match=r"^test: column 'color', row 3: category 'green'"):
        schema.check_frame(pd.DataFrame({"color": ["red", "blue", "green"], "size": [1, 2, 3]}), "test")


def test_check_frame_converts_checks_columns_and_allows_out_of_range(caplog):
    frame, schema = read_table(pd.DataFrame({"k": ["a", "b"], "v": [1, 5], "when": ["2020-01-01", "2020-01-03"],
                                             "row_id": [10, 11]}), id_columns=["row_id"])
    other = pd.DataFrame({"row_id": [1, 2, 3], "v": ["3", "9", "-1"], "k": ["b", "b", "a"],
                          "when": ["2020-01-02", "2019-12-31", "2020-01-01"]})
    with caplog.at_level("WARNING"):
        checked = schema.check_frame(other, "test")
    assert list(checked.columns) == ["k", "v", "when"] and checked["v"].tolist() == [3, 9, -1]
    assert checked["v"].dtype == np.int64 and checked["when"].iloc[1] == pd.Timestamp("2019-12-31")
    assert schema.out_of_range(checked) == {"v": 2, "when": 1}
    assert "v: 2" in caplog.text
    with pytest.raises(DataError, match=r"test: missing column\(s\) when; column\(s\) x not in the schema"):
        schema.check_frame(other.drop(columns="when").assign(x=1), "test")
    with pytest.raises(DataError, match=r"column 'v', row 2: a missing value, but the schema's column has none"):
        schema.check_frame(other.assign(v=[1, None, 2]), "test")
    with pytest.raises(DataError, match=r"column 'v', row 3: '2.5x' is not a number"):
        schema.check_frame(other.assign(v=["1", "2", "2.5x"]), "test")
    with pytest.raises(DataError, match=r"column 'v', row 1: 1.5 is not an integer"):
        schema.check_frame(other.assign(v=[1.5, 2, 2]), "test")


# -- refused inputs ---------------------------------------------------------------------------------


def test_ragged_rows_name_the_line(tmp_path):
    long = _write(tmp_path / "long.csv", "a,b,c\n1,2,3\n4,5,6,7\n")
    with pytest.raises(DataError, match=rf"^{long}: line 3 has 4 fields, expected 3"):
        read_table(long)
    # a quoted newline and a blank line before the short row: the line is the file's, not the record's
    short = _write(tmp_path / "short.csv", "a,b\n\"x\ny\",1\n\n2\n")
    with pytest.raises(DataError, match=rf"^{short}: line 5 has 1 fields, expected 2"):
        read_table(short)
    noheader = _write(tmp_path / "n.csv", "1,2\n3\n")
    with pytest.raises(DataError, match=r"line 2 has 1 fields, expected 2 \(as names gives\)"):
        read_table(noheader, names=["a", "b"])


def test_column_entirely_missing(tmp_path):
    path = _write(tmp_path / "t.csv", "a,b\n1,\n2,NA\n")
    with pytest.raises(DataError, match=rf"^{path}: column 'b' is entirely missing \(all 2 rows\)"):
        read_table(path)


def test_forced_datetime_in_unknown_format_names_line_and_value(tmp_path):
    path = _write(tmp_path / "t.csv", "d,v\n2020-01-01,1\n05/03/2020,2\n")
    with pytest.raises(DataError, match=rf"^{path}: column 'd', line 3: '05/03/2020' is not a datetime in one format"):
        read_table(path, kinds={"d": "datetime"})
    df, schema = read_table(path)  # not forced: the column is categorical
    assert schema.kinds["d"] == "categorical"
    with pytest.raises(DataError, match=r"line 2: '2020-01-01' does not match the datetime format '%d/%m/%Y'"):
        read_table(path, datetime_formats={"d": "%d/%m/%Y"})


@pytest.mark.parametrize("name, content, message", [
    ("header.csv", "a,b\n", "no data rows"),
    ("empty.csv", "", "the file is empty"),
    ("blank.csv", "\n\n  \n", "the file is empty"),
])
def test_files_without_rows(tmp_path, name, content, message):
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError, match=rf"^{path}: {message}"):
        read_table(path)


def test_parquet_and_frame_without_rows(tmp_path):
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"e.parquet: no data rows"):
        read_table(tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"^data.path: no rows"):
        read_table(pd.DataFrame({"a": []}))


def test_too_many_columns_is_refused_before_parsing(tmp_path):
    n = 10_000
    path = _write(tmp_path / "wide.csv", ",".join(f"c{i}" for i in range(n)) + "\n" + ",".join(["1"] * n) + "\n")
    with pytest.raises(DataError, match=rf"^{path}: 10,000 columns, more than max_columns=1,000"):
        read_table(path)
    with pytest.raises(DataError, match=r"1,200 columns, more than max_columns=1,000"):
        read_table(pd.DataFrame(np.zeros((2, 1200)), columns=[f"c{i}" for i in range(1200)]))


def test_non_utf8_names_byte_offset_and_line(tmp_path):
    data = b"a,b\n1,x\n2,\xe9t\xe9\n"
    path = _write(tmp_path / "latin1.csv", data)
    at = data.index(b"\xe9")
    with pytest.raises(DataError, match=rf"^{path}: not UTF-8 text: byte 0xe9 at byte offset {at} \(line 3\)"):
        read_table(path)


def test_utf8_bom_is_skipped(tmp_path):
    df, schema = read_table(_write(tmp_path / "bom.csv", b"\xef\xbb\xbfname,v\n\xc3\xa9t\xc3\xa9,1\n"))
    assert list(df.columns) == ["name", "v"] and df["name"].iloc[0] == "\u00e9t\u00e9"


@pytest.mark.parametrize("column, values", [
    ("tags", pa.array([[1], [2, 3]], pa.list_(pa.int64()))),
    ("point", pa.array([{"x": 1}, {"x": 2}], pa.struct([("x", pa.int64())]))),
    ("attrs", pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64()))),
])
def test_parquet_nested_columns_are_named(tmp_path, column, values):
    pq.write_table(pa.table({"a": [1, 2], column: values}), tmp_path / "n.parquet")
    with pytest.raises(DataError, match=rf"n.parquet: column '{column}' has the nested type"):
        read_table(tmp_path / "n.parquet")


def test_unknown_suffix_missing_file_and_wrong_source(tmp_path):
    with pytest.raises(DataError, match=r"t.xlsx: unknown file type '.xlsx'; allowed: .csv, .csv.gz, .parquet, .pq"):
        read_table(tmp_path / "t.xlsx")
    with pytest.raises(DataError, match=r"nope.csv: no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"not a gzip file"):
        read_table(_write(tmp_path / "fake.csv.gz", "a,b\n1,2\n"))
    with pytest.raises(DataError, match=r"expected a file path or a pandas DataFrame, got list"):
        read_table([[1, 2]])


def test_kinds_naming_unknown_columns_or_kinds(tmp_path):
    path = _write(tmp_path / "t.csv", "a,b\n1,x\n2,y\n")
    with pytest.raises(DataError, match=r"kinds names column\(s\) zz that the table does not have; columns: a, b"):
        read_table(path, kinds={"zz": "integer"})
    with pytest.raises(DataError, match=r"kinds\['a'\] = 'float' is not a kind; allowed: continuous, integer"):
        read_table(path, kinds={"a": "float"})
    with pytest.raises(DataError, match=r"column 'b', line 2: 'x' is not a number"):
        read_table(path, kinds={"b": "integer"})
    with pytest.raises(DataError, match=r"id_columns names column\(s\) q"):
        read_table(path, id_columns=["q"])
    with pytest.raises(DataError, match=r"target 'a' is an id column"):
        read_table(path, id_columns=["a"], target="a")
    with pytest.raises(DataError, match=r"target 'c' is not a column of the table"):
        read_table(path, target="c")


def test_duplicate_and_empty_header_names(tmp_path):
    with pytest.raises(DataError, match=r"duplicate column names a"):
        read_table(_write(tmp_path / "d.csv", "a,b,a\n1,2,3\n"))
    with pytest.raises(DataError, match=r"column 1 has an empty name"):
        read_table(_write(tmp_path / "e.csv", ",b\n0,2\n"))


def test_table_too_large_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = _write(tmp_path / "t.csv", "a,b\n" + "1,2\n" * 5000)
    pq.write_table(pa.table({"a": np.arange(5000), "s": ["x"] * 5000}), tmp_path / "t.parquet")
    monkeypatch.setattr(data_base, "available_memory_bytes", lambda device="cpu": 100_000)
    with pytest.raises(DataError, match=rf"^{path}: its 20,004 bytes of text .* would need .* GiB, more than 50%"):
        read_table(path)
    with pytest.raises(DataError, match=r"t.parquet: its 5,000 rows x 2 columns would need"):
        read_table(tmp_path / "t.parquet")


def test_non_finite_and_huge_integers(tmp_path):
    with pytest.raises(DataError, match=r"column 'x', line 3: inf is not a finite number"):
        read_table(_write(tmp_path / "i.csv", "x\n1.5\ninf\n"))
    with pytest.raises(DataError, match=r"column 'x', row 1: .* beyond \+-2\*\*53"):
        read_table(pd.DataFrame({"x": [2**60, 1]}))


# -- UCI Adult ---------------------------------------------------------------------------------------


@pytest.mark.skipif(ADULT is None, reason="UCI Adult not at ../shared/data/adult (nor GANFORGE_SHARED_DATA)")
def test_adult_reads_with_the_right_kinds():
    assert ADULT is not None
    df, schema = read_table(ADULT / "adult.data.gz", file_format="csv", names=ADULT_NAMES,
                            missing_values=(*MISSING_MARKERS, "?"), target="income")
    assert len(df) == 32_561 and list(df.columns) == ADULT_NAMES
    integers = {"age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"}
    assert schema.kinds == {c: "integer" if c in integers else "categorical" for c in ADULT_NAMES}
    assert {c.name for c in schema.columns if c.has_missing} == {"workclass", "occupation", "native-country"}
    assert schema.column("income").categories == ("<=50K", ">50K")
    assert len(schema.column("workclass").categories) == 8 and "?" not in schema.column("workclass").categories
    assert (schema.column("age").minimum, schema.column("age").maximum) == (17.0, 90.0)
    assert df["workclass"].isna().sum() == 1836 and df["age"].dtype == np.int64
    assert (df["income"] == ">50K").sum() == 7841  # the UCI description: 24% of 32,561
