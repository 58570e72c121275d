"""Fidelity and utility of a synthetic table, and ``evaluate`` (which adds privacy, from privacy.py).

Every function takes ``real`` and ``synthetic`` data frames and ``kinds``, a mapping of each compared
column to one of ``"continuous"``, ``"integer"``, ``"categorical"``, ``"boolean"``, ``"datetime"``
(columns absent from ``kinds`` are ignored). Continuous, integer and datetime columns are numerical in
SDMetrics' sense; datetimes are compared as int64 nanoseconds (the column must have a datetime64 dtype).

Fidelity reproduces SDMetrics 0.32 on the same inputs, computed here (SDMetrics is a test reference
only). Read from its source:

- column shapes: ``KSComplement`` (1 - the two-sample Kolmogorov-Smirnov D of the non-missing values,
  floats rounded to 14 decimals) for numerical columns, ``TVComplement`` (1 - total variation distance of
  the non-missing category frequencies; a category only the synthetic table has adds 1e-6 to the real
  counts) for categorical / boolean ones; the score is their mean, the QualityReport's "Column Shapes".
- column pair trends, as ``QualityReport`` computes "Column Pair Trends": Pearson ``CorrelationSimilarity``
  (1 - |r_real - r_syn| / 2, rows with a missing value dropped; a column constant in either table
  gives no score) for two numerical columns; ``ContingencySimilarity`` (1 - total variation distance of
  the joint frequencies, a missing value being a category) for the rest. In a mixed pair the numerical
  column is binned by ``np.digitize`` on ``np.histogram_bin_edges(values, 10)`` of the same table (each
  table with its own edges, as the report does; a missing value lands in the last bin). The property
  averages only the pairs whose real data clear the report's thresholds: |r_real| > 0.5, or Cramer's V
  (no continuity correction) > 0.3. Unlike the report we never subsample (it draws 50,000 rows at
  random above that size), and a pandas "category" column is compared by its values.
- coverage: ``RangeCoverage`` and ``CategoryCoverage`` per column.

Utility is train-synthetic-test-real (TSTR) with SDGym 0.2.0's models and feature preprocessing.

Scores are plain floats; a score that is undefined (an empty column, a constant one) is ``None``, so
every result is JSON as it is.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ganforge.errors import DataError

__all__ = [
    "KINDS", "category_coverage", "column_pair_trends", "column_shapes", "coverage", "evaluate", "fidelity",
    "ks_complement", "range_coverage", "tstr", "tv_complement",
]

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")
NUMERICAL_KINDS = frozenset({"continuous", "integer", "datetime"})
DISCRETE_KINDS = frozenset({"categorical", "boolean"})

#: SDMetrics rounds floats to this many decimals before the KS test (sys.float_info.dig - 1).
_KS_DECIMALS = 14
#: QualityReport 0.32's defaults (sdmetrics.reports.utils): pairs below them do not count.
CORRELATION_THRESHOLD = 0.5
ASSOCIATION_THRESHOLD = 0.3
_PAIR_BINS = 10


# ----------------------------------------------------------------------------------------------
# Columns
# ----------------------------------------------------------------------------------------------


def check_kinds(kinds: Mapping[str, str], **tables: pd.DataFrame | None) -> None:
    """Raise DataError unless every kind is known and every kinded column is in every given table."""
    if not kinds:
        raise DataError("kinds: empty; map at least one column to one of " + ", ".join(KINDS))
    for column, kind in kinds.items():
        if kind not in KINDS:
            raise DataError(f"kinds[{column!r}]: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
    for name, table in tables.items():
        if table is None:
            continue
        if not isinstance(table, pd.DataFrame):
            raise DataError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
        missing = [c for c in kinds if c not in table.columns]
        if missing:
            raise DataError(f"{name}: column(s) {missing} of kinds are missing; it has {list(table.columns)}")
        for column, kind in kinds.items():
            dtype = table[column].dtype
            if kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(dtype):
                raise DataError(
                    f"{name}[{column!r}]: kind 'datetime' needs a datetime64 dtype, got {dtype}; "
                    "convert it with pandas.to_datetime first"
                )
            if kind in ("continuous", "integer") and not pd.api.types.is_numeric_dtype(dtype):
                raise DataError(f"{name}[{column!r}]: kind {kind!r} needs a numeric dtype, got {dtype}")


def datetime_ns(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 nanoseconds since the epoch, missing mask) of a datetime64 column (tz-aware: in UTC)."""
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    missing = series.isna().to_numpy()
    ns = series.astype("datetime64[ns]").to_numpy().view("int64").copy()
    return ns, missing


def numeric_values(series: pd.Series, kind: str) -> np.ndarray:
    """A numerical column as float64 with NaN for missing values (datetimes: nanoseconds)."""
    if kind == "datetime":
        ns, missing = datetime_ns(series)
        out = ns.astype(np.float64)
        out[missing] = np.nan
        return out
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _score(value: float) -> float | None:
    """A JSON-able score: None for NaN (undefined)."""
    value = float(value)
    return None if np.isnan(value) else value


def _mean(scores: Sequence[float | None]) -> float | None:
    kept = [s for s in scores if s is not None]
    return float(np.mean(kept)) if kept else None


# ----------------------------------------------------------------------------------------------
# Single columns
# ----------------------------------------------------------------------------------------------


def _ks_values(series: pd.Series) -> np.ndarray:
    """The values SDMetrics' KSComplement compares: non-missing, datetimes as int64, floats rounded."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        ns, missing = datetime_ns(series)
        return ns[~missing]
    values = series.dropna()
    if pd.api.types.is_float_dtype(values.dtype):
        values = values.round(_KS_DECIMALS)
    return values.to_numpy(dtype=np.float64)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov D: sup |F_a - F_b| over the pooled values (scipy's ks_2samp)."""
    a, b = np.sort(a), np.sort(b)
    pooled = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, pooled, side="right") / len(a)
    cdf_b = np.searchsorted(b, pooled, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def ks_complement(real: pd.Series, synthetic: pd.Series) -> float | None:
    """1 - KS D of two numerical (or datetime) columns; None if either has no value (SDMetrics: NaN)."""
    a, b = _ks_values(real), _ks_values(synthetic)
    if len(a) == 0 or len(b) == 0:
        return None
    return 1.0 - ks_statistic(a, b)


def _observed_counts(series: pd.Series) -> pd.Series:
    counts = series.dropna().value_counts()
    return counts[counts > 0]  # a "category" dtype lists unused categories with 0


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float | None:
    """1 - total variation distance of two discrete columns' frequencies (missing values dropped).

    As SDMetrics: a category only the synthetic column has gets a count of 1e-6 in the real column
    (which also enters the real total). None if either column has no value.
    """
    real_counts, syn_counts = _observed_counts(real), _observed_counts(synthetic)
    if real_counts.sum() == 0 or syn_counts.sum() == 0:
        return None
    only_syn = syn_counts.index.difference(real_counts.index, sort=False)
    expected = pd.concat([real_counts.astype(np.float64), pd.Series(1e-6, index=only_syn)])
    observed = syn_counts.reindex(expected.index, fill_value=0) / syn_counts.sum()
    expected = expected / expected.sum()
    return float(1.0 - 0.5 * np.abs(observed.to_numpy() - expected.to_numpy()).sum())


def range_coverage(real: pd.Series, synthetic: pd.Series) -> float | None:
    """How much of the real column's [min, max] the synthetic [min, max] covers (SDMetrics' RangeCoverage).

    None when the real column is constant or either column has no value.
    """
    if pd.api.types.is_datetime64_any_dtype(real.dtype):
        (r, r_missing), (s, s_missing) = datetime_ns(real), datetime_ns(synthetic)
        r, s = r[~r_missing], s[~s_missing]
    else:
        r = real.dropna().to_numpy()
        s = synthetic.dropna().to_numpy()
    if len(r) == 0 or len(s) == 0:
        return None
    min_r, max_r, min_s, max_s = r.min(), r.max(), s.min(), s.max()
    if min_r == max_r:
        return None
    width = max_r - min_r
    below = max((min_s - min_r) / width, 0.0)
    above = max((max_r - max_s) / width, 0.0)
    return float(max(1.0 - (below + above), 0.0))


def category_coverage(real: pd.Series, synthetic: pd.Series) -> float | None:
    """The fraction of the real column's categories that the synthetic column has (missing ignored)."""
    real_values = set(real.dropna().value_counts().index)  # SDMetrics' sets, unused categories included
    syn_values = set(synthetic.dropna().value_counts().index)
    if not real_values:
        return None
    return len(syn_values & real_values) / len(real_values)


def _per_column(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str],
                numerical: tuple[str, Any], discrete: tuple[str, Any]) -> dict[str, Any]:
    """A single-column metric per column (``numerical`` or ``discrete``: its name and function, by the
    column's kind) and their mean."""
    check_kinds(kinds, real=real, synthetic=synthetic)
    columns = {}
    for column, kind in kinds.items():
        name, metric = numerical if kind in NUMERICAL_KINDS else discrete
        columns[column] = {"metric": name, "score": metric(real[column], synthetic[column])}
    return {"score": _mean([c["score"] for c in columns.values()]), "columns": columns}


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, Any]:
    """Per-column KS / TV complement and their mean, QualityReport's "Column Shapes"."""
    return _per_column(real, synthetic, kinds, ("KSComplement", ks_complement), ("TVComplement", tv_complement))


def coverage(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, Any]:
    """Per-column RangeCoverage (numerical) / CategoryCoverage (discrete) and their mean."""
    return _per_column(real, synthetic, kinds, ("RangeCoverage", range_coverage),
                       ("CategoryCoverage", category_coverage))


# ----------------------------------------------------------------------------------------------
# Column pairs
# ----------------------------------------------------------------------------------------------


def _report_numeric(series: pd.Series, kind: str) -> np.ndarray:
    """A numerical column as the QualityReport holds it: datetimes as int64 ns (float with NaN if any
    is missing), numbers in their own dtype (nullable ones as float with NaN)."""
    if kind == "datetime":
        ns, missing = datetime_ns(series)
        if missing.any():
            out = ns.astype(np.float64)
            out[missing] = np.nan
            return out
        return ns
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _bin_codes(values: np.ndarray) -> np.ndarray:
    """10 equal-width bins of the table's own non-missing values; NaN lands past the last edge."""
    present = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    return np.digitize(values, bins=np.histogram_bin_edges(present, bins=_PAIR_BINS))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r (float64 inputs) of the rows where both are present; NaN for fewer than 2 rows or a
    constant input."""
    missing = np.isnan(x) | np.isnan(y)
    if missing.any():
        x, y = x[~missing], y[~missing]
    if len(x) < 2:
        return np.nan
    xm, ym = x - x.mean(), y - y.mean()
    nx, ny = np.linalg.norm(xm), np.linalg.norm(ym)
    if nx == 0 or ny == 0:
        return np.nan
    return float(np.clip(np.dot(xm / nx, ym / ny), -1.0, 1.0))


def _n_unique(values: np.ndarray) -> int:
    values = values[~pd.isna(values)]
    return len(pd.unique(values))


def _cramers_v(codes_a: np.ndarray, codes_b: np.ndarray) -> float:
    """Cramer's V of the observed contingency table (no continuity correction), as scipy's association."""
    na, nb = int(codes_a.max()) + 1, int(codes_b.max()) + 1
    observed = np.bincount(codes_a * nb + codes_b, minlength=na * nb).reshape(na, nb)
    observed = observed[observed.sum(axis=1) > 0][:, observed.sum(axis=0) > 0]  # the values seen
    if min(observed.shape) < 2:
        return np.nan
    n = observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / n / (min(observed.shape) - 1)))


def _joint_codes(real: np.ndarray | pd.Series, synthetic: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Shared integer codes of a column in two tables; a missing value is a code of its own."""
    both = pd.concat([pd.Series(np.asarray(real, dtype=object)), pd.Series(np.asarray(synthetic, dtype=object))])
    codes, _ = pd.factorize(both, use_na_sentinel=False)
    return codes[: len(real)], codes[len(real):]


def _contingency_similarity(ra: np.ndarray, rb: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> float:
    """1 - total variation distance between the joint frequencies of two coded columns."""
    nb = int(max(rb.max(initial=0), sb.max(initial=0))) + 1
    na = int(max(ra.max(initial=0), sa.max(initial=0))) + 1
    real_freq = np.bincount(ra * nb + rb, minlength=na * nb) / len(ra)
    syn_freq = np.bincount(sa * nb + sb, minlength=na * nb) / len(sa)
    return float(1.0 - 0.5 * np.abs(real_freq - syn_freq).sum())


def column_pair_trends(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    correlation_threshold: float = CORRELATION_THRESHOLD,
    association_threshold: float = ASSOCIATION_THRESHOLD,
) -> dict[str, Any]:
    """Correlation / contingency similarity of every column pair, and the QualityReport's property.

    Each pair has its similarity ``score`` (whatever the thresholds), the real data's ``real_correlation``
    (numerical pairs) or ``real_association`` (Cramer's V, the others) and ``counted``: whether it
    clears the threshold and so enters ``score`` (the QualityReport's "Column Pair Trends"; thresholds
    of 0 count every pair). ``score_all_pairs`` is the mean over every pair that has a score.
    """
    check_kinds(kinds, real=real, synthetic=synthetic)
    if len(real) == 0 or len(synthetic) == 0:
        raise DataError(f"column pair trends: empty table (real {len(real)} rows, synthetic {len(synthetic)})")
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    constant: dict[str, bool] = {}
    # Integer codes per column, shared by the two tables: a discrete column's values (missing: a value),
    # a numerical column's bin numbers (bin k of the real table and bin k of the synthetic one are the
    # same cell whatever their edges: the report groups by value).
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for column, kind in kinds.items():
        if kind in NUMERICAL_KINDS:
            r, s = _report_numeric(real[column], kind), _report_numeric(synthetic[column], kind)
            numeric[column] = (r.astype(np.float64), s.astype(np.float64))
            constant[column] = _n_unique(r) == 1 or _n_unique(s) == 1
            codes[column] = (_bin_codes(r), _bin_codes(s))
        else:
            codes[column] = _joint_codes(real[column], synthetic[column])

    pairs = []
    for a, b in itertools.combinations(list(kinds), 2):
        if a in numeric and b in numeric:
            (ra, sa), (rb, sb) = numeric[a], numeric[b]
            r_real = np.nan if constant[a] or constant[b] else _pearson(ra, rb)
            r_syn = np.nan if constant[a] or constant[b] else _pearson(sa, sb)
            score = 1.0 - abs(r_real - r_syn) / 2.0
            counted = not np.isnan(score) and (correlation_threshold <= 0 or abs(r_real) > correlation_threshold)
            pairs.append({
                "columns": [a, b], "metric": "CorrelationSimilarity", "score": _score(score),
                "real_correlation": _score(r_real), "synthetic_correlation": _score(r_syn), "counted": counted,
            })
            continue
        (ra, sa), (rb, sb) = codes[a], codes[b]
        score = _contingency_similarity(ra, rb, sa, sb)
        association = _cramers_v(ra, rb) if association_threshold > 0 else np.nan
        counted = association_threshold <= 0 or (not np.isnan(association) and association > association_threshold)
        pairs.append({
            "columns": [a, b], "metric": "ContingencySimilarity", "score": _score(score),
            "real_association": _score(association), "counted": bool(counted),
        })
    return {
        "score": _mean([p["score"] for p in pairs if p["counted"]]),
        "score_all_pairs": _mean([p["score"] for p in pairs]),
        "correlation_threshold": float(correlation_threshold),
        "association_threshold": float(association_threshold),
        "pairs": pairs,
    }


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, Any]:
    """Column shapes, column pair trends and coverage; ``quality`` is their (shapes, trends) mean."""
    shapes = column_shapes(real, synthetic, kinds)
    trends = column_pair_trends(real, synthetic, kinds)
    return {
        "quality": _mean([shapes["score"], trends["score"]]),
        "column_shapes": shapes,
        "column_pair_trends": trends,
        "coverage": coverage(real, synthetic, kinds),
    }


# ----------------------------------------------------------------------------------------------
# Utility: train on synthetic, test on real (TSTR)
# ----------------------------------------------------------------------------------------------

# The model set, its hyper-parameters and the feature preprocessing are SDGym 0.2.0's
# (sdv-dev/SDGym, sdgym/evaluate.py: _MODELS and FeatureMaker, the evaluator before 0.3.0 moved to
# SDMetrics; read at commits 3cb13bd3 and 0821fd1f, identical there), the protocol of the CTGAN paper
# (Xu et al. 2019): binary: DecisionTree(max_depth=15, class_weight='balanced'), AdaBoost(), Logistic-
# Regression(lbfgs, class_weight='balanced', max_iter=50), MLP((50,), max_iter=50), scored by F1;
# multiclass: DecisionTree(max_depth=30, balanced), MLP((100,), max_iter=50), macro F1; regression:
# LinearRegression, MLPRegressor((100,), max_iter=50), R^2 of log(clip(y, 1, 20000)).
# Ours adds random_state=seed (SDGym left them unseeded), drops LogisticRegression's n_jobs=2 (no
# effect on its result), and gets today's scikit-learn AdaBoost (SAMME; SDGym's default was SAMME.R).
_SDGYM_SAMPLE = 50_000


def _models(task: str, seed: int) -> list[Any]:
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.tree import DecisionTreeClassifier

    if task == "binary_classification":
        return [
            DecisionTreeClassifier(max_depth=15, class_weight="balanced", random_state=seed),
            AdaBoostClassifier(random_state=seed),
            LogisticRegression(solver="lbfgs", class_weight="balanced", max_iter=50, random_state=seed),
            MLPClassifier(hidden_layer_sizes=(50,), max_iter=50, random_state=seed),
        ]
    if task == "multiclass_classification":
        return [
            DecisionTreeClassifier(max_depth=30, class_weight="balanced", random_state=seed),
            MLPClassifier(hidden_layer_sizes=(100,), max_iter=50, random_state=seed),
        ]
    return [LinearRegression(), MLPRegressor(hidden_layer_sizes=(100,), max_iter=50, random_state=seed)]


def _jsonable(value: Any) -> Any:
    """A category value as JSON: bools, ints, floats and strings as they are, anything else as str."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value if isinstance(value, str) else str(value)


def _category_codes(train: pd.Series, test: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train codes, test codes, values) of a discrete column, shared; a missing value is a value."""
    both = pd.concat([test.astype(object), train.astype(object)], ignore_index=True)
    codes, uniques = pd.factorize(both, use_na_sentinel=False)
    return codes[len(test):], codes[: len(test)], np.asarray(uniques, dtype=object)


def _features(train: pd.DataFrame, test: pd.DataFrame, columns: list[str], kinds: Mapping[str, str]):
    """SDGym 0.2.0's FeatureMaker on two tables; the real (test) table gives the columns' min / max.

    Numbers: log(max(x, 0.01)) when min >= 0 and max >= 1000, else 5 (x - min) / (max - min); discrete
    columns of 2 values: a 0/1 code, of more: one-hot over the training table's values (others: zeros).
    Not in SDGym, which had neither: datetimes always take the linear rule, and a missing number is the
    test median plus a 0/1 "missing" feature.
    """
    train_parts, test_parts = [], []
    for column in columns:
        kind = kinds[column]
        if kind in NUMERICAL_KINDS:
            tr, te = numeric_values(train[column], kind), numeric_values(test[column], kind)
            present = te[~np.isnan(te)]
            cmin, cmax = (present.min(), present.max()) if len(present) else (0.0, 1.0)
            if kind != "datetime" and cmin >= 0 and cmax >= 1e3:
                tr, te = np.log(np.maximum(tr, 1e-2)), np.log(np.maximum(te, 1e-2))
            else:
                width = (cmax - cmin) or 1.0
                tr, te = (tr - cmin) / width * 5, (te - cmin) / width * 5
            missing_tr, missing_te = np.isnan(tr), np.isnan(te)
            if missing_tr.any() or missing_te.any():
                fill = np.nanmedian(te) if not missing_te.all() else 0.0
                tr, te = np.where(missing_tr, fill, tr), np.where(missing_te, fill, te)
                train_parts.append(missing_tr.astype(np.float64)[:, None])
                test_parts.append(missing_te.astype(np.float64)[:, None])
            train_parts.append(tr[:, None])
            test_parts.append(te[:, None])
        else:
            tr, te, values = _category_codes(train[column], test[column])
            if len(values) <= 2:
                train_parts.append(tr.astype(np.float64)[:, None])
                test_parts.append(te.astype(np.float64)[:, None])
            else:
                seen = np.unique(tr)
                train_parts.append((tr[:, None] == seen[None, :]).astype(np.float64))
                test_parts.append((te[:, None] == seen[None, :]).astype(np.float64))
    return np.hstack(train_parts), np.hstack(test_parts)


def tstr(
    train: pd.DataFrame, test: pd.DataFrame, target: str, kinds: Mapping[str, str], seed: int = 0,
) -> dict[str, Any]:
    """Train SDGym 0.2.0's models on ``train`` (synthetic, or real for the baseline), score on ``test``.

    The task follows the target's kind: categorical / boolean targets are binary (2 classes in the test
    table; the positive class is the rarer one there, ties to the later in sorted order) or multiclass
    (macro F1); continuous / integer targets are regression (R^2 of log(clip(y, 1, 20000)), SDGym's).
    Rows without a target are dropped; each table is shuffled (seeded) and cut at 50,000 rows, as in
    SDGym; in a binary task, training rows of any other class are dropped. Deterministic given ``seed``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, f1_score, r2_score

    check_kinds(kinds, train=train, test=test)
    if target not in kinds:
        raise DataError(f"tstr: target {target!r} is not among the kinds' columns {list(kinds)}")
    kind = kinds[target]
    if kind == "datetime":
        raise DataError(f"tstr: target {target!r} is a datetime; allowed: categorical, boolean, continuous, integer")
    rng = np.random.default_rng(seed)
    train = train[train[target].notna()]
    test = test[test[target].notna()]
    train = train.iloc[rng.permutation(len(train))[:_SDGYM_SAMPLE]]
    test = test.iloc[rng.permutation(len(test))[:_SDGYM_SAMPLE]]
    features = [c for c in kinds if c != target]
    if not features:
        raise DataError("tstr: no feature column besides the target")

    positive = None
    if kind in DISCRETE_KINDS:
        y_train, y_test, values = _category_codes(train[target], test[target])
        classes, counts = np.unique(y_test, return_counts=True)
        if len(classes) < 2:
            raise DataError(f"tstr: target {target!r} has {len(classes)} class(es) in the test table; need 2+")
        if len(classes) == 2:
            task, metric = "binary_classification", "f1"
            # The rarer class is the positive one (a tie: the later in sorted order of str(value)).
            positive = max(classes, key=lambda c: (-counts[classes == c][0], str(values[c])))
            keep = np.isin(y_train, classes)
            train, y_train = train[keep], (y_train[keep] == positive).astype(int)
            y_test = (y_test == positive).astype(int)
        else:
            task, metric = "multiclass_classification", "macro_f1"
    else:
        task, metric = "regression", "r2"
        y_train = np.log(np.clip(numeric_values(train[target], kind), 1, 20000))
        y_test = np.log(np.clip(numeric_values(test[target], kind), 1, 20000))
    if len(train) == 0 or len(test) == 0:
        raise DataError(f"tstr: no usable rows (train {len(train)}, test {len(test)}) for target {target!r}")
    x_train, x_test = _features(train, test, features, kinds)

    scores, accuracies = {}, {}
    for model in _models(task, seed):
        name = type(model).__name__
        if task != "regression" and len(np.unique(y_train)) == 1:  # SDGym: predict the only class
            pred = np.full(len(y_test), y_train[0])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x_train, y_train)
            pred = model.predict(x_test)
        if task == "regression":
            scores[name] = float(r2_score(y_test, pred))
            continue
        accuracies[name] = float(accuracy_score(y_test, pred))
        average = "binary" if task == "binary_classification" else "macro"
        scores[name] = float(f1_score(y_test, pred, average=average, zero_division=0))
    out = {
        "task": task, "metric": metric, "models": scores, "mean": float(np.mean(list(scores.values()))),
        "train_rows": len(train), "test_rows": len(test),
    }
    if accuracies:
        out["accuracy"] = accuracies
    if positive is not None:
        out["positive_class"] = _jsonable(values[positive])
    return out


# ----------------------------------------------------------------------------------------------
# Everything
# ----------------------------------------------------------------------------------------------


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    holdout: pd.DataFrame | None = None,
    target: str | None = None,
    seed: int = 0,
    known: Sequence[str] | None = None,
    sensitive: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Fidelity, utility and privacy of ``synthetic`` against ``real`` (the generator's training table).

    ``holdout``: real rows the generator never saw; it is the test table of TSTR and of the real
    baseline (models trained on ``real``), the non-members of the membership-inference attack and
    the reference of the DCR ratio. Without it, TSTR tests on ``real``, there is no real baseline and
    no attack. ``target``: the column TSTR predicts (no utility section without it). ``known`` /
    ``sensitive``: the columns of the CategoricalCAP attribute-inference attack (skipped without them).
    """
    from ganforge.tabular.privacy import privacy  # privacy.py imports this module's column helpers

    check_kinds(kinds, real=real, synthetic=synthetic, holdout=holdout)
    utility = None
    if target is not None:
        test = holdout if holdout is not None else real
        utility = {
            "test_table": "holdout" if holdout is not None else "real",
            "synthetic": tstr(synthetic, test, target, kinds, seed),
            "real": tstr(real, holdout, target, kinds, seed) if holdout is not None else None,
        }
    return {
        "fidelity": fidelity(real, synthetic, kinds),
        "utility": utility,
        "privacy": privacy(real, synthetic, kinds, holdout=holdout, known=known, sensitive=sensitive, seed=seed),
    }
