"""Table metrics against SDMetrics 0.32 on the same inputs, and attacks / TSTR on problems with known answers.

The tables mix integer, continuous, categorical, boolean and datetime columns with missing values (NaN,
None, NaT), synthetic values outside the real range, and a column constant in the real table.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ganforge.errors import DataError
from ganforge.tabular import metrics as M
from ganforge.tabular import privacy as P

sdmetrics = pytest.importorskip("sdmetrics")
pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: a contended thread pool only slows them

KINDS = {
    "age": "integer", "income": "continuous", "score": "continuous", "unit": "integer",
    "cat": "categorical", "flag": "boolean", "when": "datetime",
}
SDTYPES = {"integer": "numerical", "continuous": "numerical", "categorical": "categorical",
           "boolean": "boolean", "datetime": "datetime"}
METADATA = {"columns": {c: {"sdtype": SDTYPES[k]} for c, k in KINDS.items()}}
TOL = 1e-9


def make_table(n: int, seed: int, shift: float = 0.0, missing: bool = True) -> pd.DataFrame:
    """Rows driven by one latent x, so that the columns are correlated (seeded)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    table = pd.DataFrame({
        "age": (30 + 10 * x + rng.normal(0, 3, n)).round().astype(int),
        "income": np.exp(10 + 0.5 * x + rng.normal(0, 0.3, n)),
        "score": 2 * x + rng.normal(0, 1, n),
        "unit": np.ones(n, dtype=int),
        "cat": np.where(x + rng.normal(0, 0.5, n) > 0, "a", np.where(rng.random(n) < 0.5, "b", "c")).astype(object),
        "flag": (x + rng.normal(0, 1, n)) > 0.3,
        "when": pd.Timestamp("2020-01-01")
        + pd.to_timedelta(rng.integers(0, 365 * 86400, n) + (x * 86400 * 30).astype(int), unit="s"),
    })
    if missing:
        table.loc[rng.random(n) < 0.1, "income"] = np.nan
        table.loc[rng.random(n) < 0.05, "cat"] = None
        table.loc[rng.random(n) < 0.05, "when"] = pd.NaT
    return table


@pytest.fixture(scope="module")
def tables():
    real = make_table(300, 0)
    synthetic = make_table(240, 1, shift=0.3)
    synthetic.loc[:4, "score"] = 100.0  # far outside the real range: the capped path of the DCR
    synthetic.loc[5:9, "unit"] = 2  # differs from a constant real column
    synthetic.loc[10:12, "cat"] = "d"  # a category the real table lacks
    holdout = make_table(300, 2)
    return real, synthetic, holdout


def _close(ours, theirs, tol=TOL):
    if ours is None:
        return theirs is None or np.isnan(theirs)
    return abs(ours - float(theirs)) <= tol


# ----------------------------------------------------------------------------------------------
# Fidelity
# ----------------------------------------------------------------------------------------------


def test_single_column_metrics_equal_sdmetrics(tables):
    from sdmetrics.single_column import CategoryCoverage, KSComplement, RangeCoverage, TVComplement

    real, synthetic, _ = tables
    for column, kind in KINDS.items():
        r, s = real[column], synthetic[column]
        if kind in M.NUMERICAL_KINDS:
            assert _close(M.ks_complement(r, s), KSComplement.compute(r, s)), column
            assert _close(M.range_coverage(r, s), RangeCoverage.compute(r, s)), column
        else:
            assert _close(M.tv_complement(r, s), TVComplement.compute(r, s)), column
            assert _close(M.category_coverage(r, s), CategoryCoverage.compute(r, s)), column
    assert M.range_coverage(real["unit"], synthetic["unit"]) is None  # constant real column: SDMetrics NaN
    empty = pd.Series([np.nan] * 5)
    assert M.ks_complement(real["score"], empty) is None and np.isnan(KSComplement.compute(real["score"], empty))


def test_quality_report_properties_equal_sdmetrics(tables):
    from sdmetrics.reports.single_table import QualityReport

    real, synthetic, _ = tables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.generate(real, synthetic, METADATA, verbose=False)
    properties = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"], strict=True))
    ours = M.fidelity(real, synthetic, KINDS)
    assert _close(ours["column_shapes"]["score"], properties["Column Shapes"])
    assert _close(ours["column_pair_trends"]["score"], properties["Column Pair Trends"])
    details = report.get_details("Column Shapes")
    for column, score in zip(details["Column"], details["Score"], strict=True):
        assert _close(ours["column_shapes"]["columns"][column]["score"], score), column
    # Which pairs the report counts (its thresholds) is ours too.
    trends = report.get_details("Column Pair Trends")
    counted = trends["Meets Threshold?"].fillna(False).astype(bool) & trends["Score"].notna()
    assert [p["counted"] for p in ours["column_pair_trends"]["pairs"]] == list(counted)
    assert 0 < sum(counted) < len(counted)  # the thresholds matter on these tables


def test_every_pair_score_equals_sdmetrics(tables):
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.reports.single_table import QualityReport

    real, synthetic, _ = tables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.real_correlation_threshold = report.real_association_threshold = 0
        report.generate(real, synthetic, METADATA, verbose=False)
        details = report.get_details("Column Pair Trends")
        ours = M.column_pair_trends(real, synthetic, KINDS, correlation_threshold=0, association_threshold=0)
        assert _close(ours["score"], report.get_properties()["Score"][1])
        assert len(ours["pairs"]) == len(details) == 21
        for pair, (a, b, score) in zip(ours["pairs"], details[["Column 1", "Column 2", "Score"]].to_numpy(),
                                       strict=True):
            assert pair["columns"] == [a, b]
            assert _close(pair["score"], score), (a, b)
            if KINDS[a] in M.DISCRETE_KINDS and KINDS[b] in M.DISCRETE_KINDS:
                assert _close(pair["score"], ContingencySimilarity.compute(real[[a, b]], synthetic[[a, b]]))
            if pair["metric"] == "CorrelationSimilarity" and pair["score"] is not None and "when" not in (a, b):
                assert _close(pair["score"], CorrelationSimilarity.compute(real[[a, b]], synthetic[[a, b]]))
    # The constant column gives no correlation score, as SDMetrics' ConstantInputError does.
    assert all(p["score"] is None for p in ours["pairs"] if "unit" in p["columns"] and p["metric"] == "CorrelationSimilarity")


# ----------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------


def _brute_dcr_matrix(data: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """SDMetrics' DCR distance written out for every pair (n x m), from its definition."""
    parts = []
    for column, kind in KINDS.items():
        if kind in M.NUMERICAL_KINDS:
            a, b = M.numeric_values(data[column], kind), M.numeric_values(reference[column], kind)
            width = np.nanmax(b) - np.nanmin(b)
            diff = np.abs(a[:, None] - b[None, :])
            d = (diff > 0).astype(float) if width == 0 else np.minimum(diff / width, 1.0)
            a_nan, b_nan = np.isnan(a)[:, None], np.isnan(b)[None, :]
            parts.append(np.where(a_nan | b_nan, (a_nan ^ b_nan).astype(float), d))
        else:
            a, b = data[column].to_numpy(dtype=object), reference[column].to_numpy(dtype=object)
            same = (a[:, None] == b[None, :]) | (pd.isna(a)[:, None] & pd.isna(b)[None, :])
            parts.append((~same).astype(float))
    return np.mean(parts, axis=0)


def test_dcr_equals_sdmetrics_and_the_definition(tables, monkeypatch):
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    real, synthetic, _ = tables
    ours = P.dcr(synthetic, real, KINDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = calculate_dcr(synthetic, real, METADATA).to_numpy()
    assert np.abs(ours - theirs).max() <= TOL
    # Two nearest, with blocks small enough that rows and reference rows are both cut in pieces.
    monkeypatch.setattr(P, "_BLOCK_ELEMENTS", 1000)
    two = P.closest_distances(synthetic, real, KINDS, k=2)
    expected = np.sort(_brute_dcr_matrix(synthetic, real), axis=1)[:, :2]
    assert np.abs(two - expected).max() <= TOL


def test_dcr_protection_scores_equal_sdmetrics(tables):
    from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection

    real, synthetic, holdout = tables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = DCROverfittingProtection.compute_breakdown(
            real_training_data=real, synthetic_data=synthetic, real_validation_data=holdout,
            metadata=METADATA, table_name=None,
        )
    ours = P.dcr_overfitting_protection(real, synthetic, holdout, KINDS)
    assert _close(ours["score"], theirs["score"])
    assert _close(ours["closer_to_training"], theirs["synthetic_data_percentages"]["closer_to_training"])
    # The random baseline draws the same values as SDMetrics' with its seed when nothing is missing.
    real0, synthetic0 = make_table(200, 3, missing=False), make_table(150, 4, missing=False)
    DCRBaselineProtection._seed = 11
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = DCRBaselineProtection.compute_breakdown(
                real_data=real0, synthetic_data=synthetic0, metadata=METADATA, table_name=None,
            )
    finally:
        DCRBaselineProtection._seed = None
    ours = P.dcr_baseline_protection(real0, synthetic0, KINDS, seed=11)
    assert _close(ours["score"], theirs["score"])
    assert _close(ours["median_dcr_random"], theirs["median_DCR_to_real_data"]["random_data_baseline"])


def test_categorical_cap_equals_sdmetrics(tables):
    from sdmetrics.single_table import CategoricalCAP

    real, synthetic, _ = tables
    for known, sensitive in ((["cat"], ["flag"]), (["cat", "flag"], ["age"]), (["flag"], ["cat"])):
        metadata = {"columns": {c: {"sdtype": "categorical"} for c in known + sensitive}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = CategoricalCAP.compute(real[known + sensitive], synthetic[known + sensitive],
                                            metadata=metadata, key_fields=known, sensitive_fields=sensitive)
        assert _close(P.categorical_cap(real, synthetic, known, sensitive), theirs), (known, sensitive)


# ----------------------------------------------------------------------------------------------
# Membership inference
# ----------------------------------------------------------------------------------------------


def test_membership_inference_sees_a_copier_and_not_an_independent_generator():
    train, holdout = make_table(300, 10), make_table(300, 11)
    copier = train.sample(1200, replace=True, random_state=0)  # every synthetic row is a training row
    copied = P.membership_inference(train, holdout, copier, KINDS, seed=0)
    assert copied["auc"] > 0.95 and copied["distance_attack_auc"] > 0.95
    assert copied["members"] == copied["non_members"] == 300
    independent = P.membership_inference(train, holdout, make_table(1200, 12), KINDS, seed=0)
    assert abs(independent["auc"] - 0.5) < 0.08
    assert abs(independent["distance_attack_auc"] - 0.5) < 0.08
    # The table itself, each row once: the distance attack is certain (distance 0 to every member).
    assert P.membership_inference(train, holdout, train, KINDS, seed=0)["distance_attack_auc"] == 1.0
    assert P.membership_inference(train, holdout, copier, KINDS, seed=0) == copied  # seeded


# ----------------------------------------------------------------------------------------------
# Utility
# ----------------------------------------------------------------------------------------------


def _separable(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(["u", "v", "w"], n).astype(object)
    label = np.where(x1 + 0.5 * (c == "u") > 0.2, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "c": c, "label": label})


def test_tstr_separable_problem_and_permuted_labels():
    kinds = {"x1": "continuous", "x2": "continuous", "c": "categorical", "label": "categorical"}
    train, test = _separable(400, 0), _separable(400, 1)
    result = M.tstr(train, test, "label", kinds, seed=0)
    assert result["task"] == "binary_classification" and result["metric"] == "f1"
    assert list(result["models"]) == ["DecisionTreeClassifier", "AdaBoostClassifier", "LogisticRegression",
                                      "MLPClassifier"]
    assert result["models"]["DecisionTreeClassifier"] > 0.97 and result["models"]["AdaBoostClassifier"] > 0.97
    assert result["mean"] > 0.9
    assert M.tstr(train, test, "label", kinds, seed=0) == result  # deterministic given the seed
    permuted = train.assign(label=np.random.default_rng(0).permutation(train["label"].to_numpy()))
    chance = M.tstr(permuted, test, "label", kinds, seed=0)
    assert abs(np.mean(list(chance["accuracy"].values())) - 0.5) < 0.15
    assert chance["mean"] < 0.6


# ----------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------


def test_evaluate_is_json_and_puts_the_attack_beside_every_distance(tables):
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    real, synthetic, holdout = tables
    out = M.evaluate(real, synthetic, KINDS, holdout=holdout, target="flag", known=["cat"], sensitive=["flag"])
    json.dumps(out, allow_nan=False)
    assert set(out) == {"fidelity", "utility", "privacy"}
    assert out["utility"]["synthetic"]["task"] == "binary_classification"
    assert out["utility"]["real"]["positive_class"] in (True, False)
    privacy = out["privacy"]
    auc = privacy["membership_inference"]["auc"]
    assert 0 <= auc <= 1 and "private" in privacy["note"] and "AUC" in privacy["note"]
    dcr = privacy["dcr"]
    for block in (dcr, dcr["baseline_protection"], dcr["overfitting_protection"], dcr["ratio"], privacy["nndr"]):
        assert block["mia_auc"] == auc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_train = calculate_dcr(synthetic, real, METADATA).to_numpy()
        to_holdout = calculate_dcr(synthetic, holdout, METADATA).to_numpy()
    assert _close(dcr["to_training"]["median"], np.median(to_train))
    assert _close(dcr["ratio"]["value"], np.median(to_train) / np.median(to_holdout))  # same sizes: no cut
    two = np.sort(_brute_dcr_matrix(synthetic, real), axis=1)[:, :2]
    assert _close(privacy["nndr"]["median"], np.median(two[:, 0] / two[:, 1]))
    without = P.privacy(real, synthetic, KINDS)
    assert without["membership_inference"]["auc"] is None and without["dcr"]["mia_auc"] is None
    assert without["dcr"]["ratio"] is None


def test_bad_kinds_are_one_clear_error(tables):
    real, synthetic, _ = tables
    with pytest.raises(DataError, match="unknown kind 'text'"):
        M.column_shapes(real, synthetic, {"cat": "text"})
    with pytest.raises(DataError, match="missing"):
        M.column_shapes(real, synthetic.drop(columns="cat"), KINDS)
    with pytest.raises(DataError, match="datetime64"):
        M.column_shapes(real.assign(when=real["when"].astype(str)), synthetic, KINDS)
