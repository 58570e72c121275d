"""The table transformer: exact round trips, the mixture's modes, closed forms, scikit-learn as the
reference of the quantile encoding, and a strict JSON state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from tabular_shared import ADULT_NAMES, shared_data

from ganforge.errors import ConfigError, DataError
from ganforge.tabular.table import MISSING_MARKERS, read_table
from ganforge.tabular.transformer import (
    ALPHA_CLIP,
    MISSING_LABEL,
    Z_MAX,
    DiscreteColumn,
    Span,
    TableTransformer,
)

METHODS = ("mode_specific", "quantile", "minmax")
def _adult_dir():
    return shared_data("adult", "adult.data.gz")


def _mixed(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """One column of each kind, some with missing cells, as ``read_table`` returns them."""
    rng = np.random.default_rng(seed)
    cont = np.where(rng.random(n) < 0.5, rng.normal(-5, 1, n), rng.normal(5, 2, n))
    cont_missing = np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(0, 1, n))
    ints = rng.integers(0, 100, n)
    ints_missing = pd.array(rng.integers(-20, 20, n), dtype="Int64")
    ints_missing[rng.random(n) < 0.15] = pd.NA
    days = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D")
    stamps = pd.Timestamp("2021-06-01") + pd.to_timedelta(rng.integers(0, 86_400 * 30, n), unit="s")
    stamps = stamps.where(rng.random(n) > 0.1)
    cats = np.array(["red", "green", "blue", "a,b"], dtype=object)[rng.integers(0, 4, n)]
    cats_missing = np.where(rng.random(n) < 0.2, None, cats)
    flags = pd.array(rng.random(n) < 0.3, dtype="boolean")
    flags[rng.random(n) < 0.1] = pd.NA
    frame = pd.DataFrame({"cont": cont, "cont_missing": cont_missing, "ints": ints, "ints_missing": ints_missing,
                          "days": days, "stamps": stamps, "cats": cats_missing, "flag": flags,
                          "plain_bool": rng.random(n) < 0.5, "const": np.full(n, 7)})
    return read_table(frame)[0]


@pytest.fixture(scope="module")
def mixed():
    df, schema = read_table(_mixed())
    return df, schema


@pytest.fixture(scope="module")
def fitted(mixed):
    """One transformer per method, fit once on the mixed table (the mixture fits are the slow part)."""
    df, schema = mixed
    return {method: TableTransformer(schema, continuous=method).fit(df) for method in METHODS}


EXACT = ["ints", "ints_missing", "days", "stamps", "cats", "flag", "plain_bool", "const"]


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_exact_for_discrete_integer_datetime_and_close_for_continuous(mixed, fitted, method):
    df, schema = mixed
    tr = fitted[method]
    x = tr.transform(df)
    assert x.dtype == np.float32 and x.shape == (len(df), tr.output_width)
    back = tr.inverse_transform(x)
    assert list(back.columns) == list(df.columns) and (back.dtypes == df.dtypes).all()
    pd.testing.assert_frame_equal(back[EXACT], df[EXACT])
    for col in ("cont", "cont_missing"):
        missing = df[col].isna().to_numpy()
        np.testing.assert_array_equal(back[col].isna().to_numpy(), missing)  # the same cells
        err = np.abs(back[col].to_numpy() - df[col].to_numpy())[~missing]
        scale = df[col].std()
        if method == "mode_specific":  # only values clipped at alpha = +-0.99 may move (none here)
            assert np.all(err <= 1e-5 * scale), err.max() / scale
        else:  # float32 rounding of the value; quantile: also the interpolation between quantiles
            assert np.all(err <= 1e-4 * scale), err.max() / scale


def test_layout_spans_and_discrete_blocks(mixed, fitted):
    df, schema = mixed
    tr = fitted["mode_specific"]
    spans = tr.spans
    assert [s.start for s in spans] == list(np.cumsum([0] + [s.width for s in spans])[:-1])
    assert sum(s.width for s in spans) == tr.output_width
    by_col = {c: [(s.kind, s.role) for s in spans if s.column == c] for c in df.columns}
    assert by_col["cont"] == [("tanh", "value"), ("softmax", "mode")]
    assert by_col["cont_missing"] == [("tanh", "value"), ("softmax", "mode"), ("softmax", "missing")]
    assert by_col["cats"] == [("softmax", "category")]
    assert by_col["const"] == [("tanh", "value"), ("softmax", "mode")]
    assert [s.width for s in spans if s.column == "const"] == [1, 1]  # a constant column has one mode
    cats = next(d for d in tr.discrete if d.column == "cats")
    assert cats.categories == ("a,b", "blue", "green", "red", MISSING_LABEL) and cats.has_missing
    counts = df["cats"].value_counts()
    assert cats.frequencies == (*[int(counts[c]) for c in cats.categories[:-1]], int(df["cats"].isna().sum()))
    flag = next(d for d in tr.discrete if d.column == "flag")
    assert flag.categories == ("False", "True", MISSING_LABEL)
    assert flag.frequencies == (int((df["flag"] == False).sum()), int((df["flag"] == True).sum()),  # noqa: E712
                                int(df["flag"].isna().sum()))
    x = tr.transform(df)
    span = next(s for s in spans if s.column == "cats")
    assert span.start == cats.start and span.width == cats.width
    np.testing.assert_array_equal(x[:, cats.start:cats.start + cats.width].sum(axis=0), cats.frequencies)
    miss = next(s for s in spans if s.column == "cont_missing" and s.role == "missing")
    np.testing.assert_array_equal(x[:, miss.start + 1], df["cont_missing"].isna().to_numpy())
    assert isinstance(spans[0], Span) and isinstance(tr.discrete[0], DiscreteColumn)


def _three_gaussians(seed: int = 3):
    rng = np.random.default_rng(seed)
    means, stds, weights = np.array([-10.0, 0.0, 10.0]), np.array([1.0, 0.5, 1.5]), np.array([0.2, 0.3, 0.5])
    label = rng.choice(3, size=3000, p=weights)
    return rng.normal(means[label], stds[label]), label, means, stds, weights


def test_converged_mixture_finds_three_well_separated_modes_and_assigns_each_value_to_its_own():
    x, label, truth_means, truth_stds, truth_weights = _three_gaussians()
    df, schema = read_table(pd.DataFrame({"x": x}))
    tr = TableTransformer(schema, max_modes=10, seed=0, gmm_max_iter=1000).fit(df)
    modes = tr.modes("x")
    assert len(modes["means"]) == 3
    np.testing.assert_allclose(modes["means"], truth_means, atol=0.15)
    # the variational posterior widens each mode by its Wishart prior (the whole column's covariance,
    # plus the shrinkage of its mean to the column's mean, over n_k): up to +20% here, never narrower
    ratio = np.asarray(modes["stds"]) / truth_stds
    assert np.all((ratio > 0.97) & (ratio < 1.25)), ratio
    np.testing.assert_allclose(modes["weights"], truth_weights, atol=0.03)
    enc = tr.transform(df)
    k = enc[:, 1:4].argmax(axis=1)
    assert (k == label).mean() > 0.999  # the posterior is ~one-hot: the sampled mode is the true one
    # the value span is alpha = (x - mu_k) / (4 sigma_k), clipped to 0.99
    mu, sd = np.asarray(modes["means"])[k], np.asarray(modes["stds"])[k]
    np.testing.assert_allclose(enc[:, 0], np.clip((x - mu) / (4 * sd), -ALPHA_CLIP, ALPHA_CLIP), atol=1e-6)


def test_ctgans_100_iterations_split_a_wide_mode_but_cover_the_three():
    """CTGAN's setting stops before convergence: the widest Gaussian is kept as two components, whose
    weights add up to its own; every kept mean lies within one sigma of a true mean."""
    x, _, truth_means, truth_stds, truth_weights = _three_gaussians()
    df, schema = read_table(pd.DataFrame({"x": x}))
    modes = TableTransformer(schema, seed=0).fit(df).modes("x")
    means, weights = np.asarray(modes["means"]), np.asarray(modes["weights"])
    nearest = np.abs(means[:, None] - truth_means[None, :]).argmin(axis=1)
    assert len(means) > 3 and set(nearest) == {0, 1, 2}
    assert np.all(np.abs(means - truth_means[nearest]) < truth_stds[nearest])
    np.testing.assert_allclose(np.bincount(nearest, weights, minlength=3), truth_weights, atol=0.03)


def test_mode_sampling_follows_the_posterior_and_is_seeded():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 1, 1500), rng.normal(2.0, 1, 1500)])  # overlapping modes
    df, schema = read_table(pd.DataFrame({"x": x}))
    tr = TableTransformer(schema, max_modes=2, weight_threshold=0.0, seed=0).fit(df)
    modes = tr.modes("x")
    enc = tr.transform(df)
    np.testing.assert_array_equal(enc, tr.transform(df))  # deterministic for a seed
    # the posterior by hand (Gaussian densities times weights): sampled mode frequencies match it
    dens = np.asarray(modes["weights"]) * norm.pdf(x[:, None], np.asarray(modes["means"]), np.asarray(modes["stds"]))
    post = dens / dens.sum(axis=1, keepdims=True)
    picked = enc[:, 1:3]
    for lo, hi in [(-1.0, 0.5), (0.5, 1.5), (1.5, 3.0)]:
        rows = (x > lo) & (x < hi)
        assert abs(picked[rows, 0].mean() - post[rows, 0].mean()) < 4 * np.sqrt(0.25 / rows.sum())
    other = TableTransformer(schema, max_modes=2, weight_threshold=0.0, seed=1).fit(df).transform(df)
    assert not np.array_equal(other[:, 1:3], picked)  # another seed samples other modes


def test_the_clip_loses_only_the_extreme_tail():
    """alpha is clipped at 0.99: a value more than 3.96 sigma_k from its sampled mode comes back at
    mu_k +- 3.96 sigma_k; every other value comes back to float32 precision. The expected number of
    clipped values follows from the fitted modes (posterior mass beyond the clip); five outliers far
    beyond any kept mode are always clipped."""
    rng = np.random.default_rng(11)
    outliers = 3 + 2 * np.array([8.0, 9.0, 10.0, -8.0, -9.0])  # weight 0.001 < 0.005: no mode of their own
    x = np.concatenate([rng.normal(3.0, 2.0, 5000), outliers])
    df, schema = read_table(pd.DataFrame({"x": x}))
    tr = TableTransformer(schema, seed=0).fit(df)
    enc = tr.transform(df)
    back = tr.inverse_transform(enc)["x"].to_numpy()
    modes = tr.modes("x")
    means, stds, weights = (np.asarray(modes[k]) for k in ("means", "stds", "weights"))
    k = enc[:, 1:].argmax(axis=1)
    mu, sd = means[k], stds[k]
    clipped = np.abs(enc[:, 0]) >= np.float32(ALPHA_CLIP)
    np.testing.assert_array_equal(clipped, np.abs(x - mu) / (4 * sd) >= ALPHA_CLIP)
    assert clipped[-5:].all()
    post = weights * norm.pdf(x[:, None], means, stds)
    post /= post.sum(axis=1, keepdims=True)
    expected = (post * (np.abs(x[:, None] - means) / (4 * stds) >= ALPHA_CLIP))[:-5].sum()
    assert clipped[:-5].sum() <= expected + 4 * np.sqrt(expected) + 1, (clipped[:-5].sum(), expected)
    np.testing.assert_allclose(back[~clipped], x[~clipped], atol=1e-5 * 2.0)
    np.testing.assert_allclose(back[clipped], (mu + np.sign(x - mu) * ALPHA_CLIP * 4 * sd)[clipped], rtol=1e-5)


def test_quantile_encoding_matches_scikit_learn():
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.lognormal(0, 1, 3000), "ties": rng.poisson(3, 3000)})  # repeated quantiles
    df, schema = read_table(frame)
    tr = TableTransformer(schema, continuous="quantile").fit(df)
    ref = QuantileTransformer(n_quantiles=1000, output_distribution="normal", subsample=None).fit_transform(
        frame.to_numpy(np.float64))
    enc = tr.transform(df)
    starts = [s.start for s in tr.spans]
    np.testing.assert_allclose(enc[:, starts], ref / Z_MAX, atol=2e-6)


def test_minmax_encoding_is_the_closed_form():
    x = np.array([2.0, -1.0, 0.5, 7.0, 3.25])
    df, schema = read_table(pd.DataFrame({"x": x}))
    enc = TableTransformer(schema, continuous="minmax").fit(df).transform(df)
    np.testing.assert_allclose(enc[:, 0], 2 * (x + 1) / 8 - 1, atol=1e-7)


def test_decoding_any_generator_output_stays_in_the_schema(mixed, fitted):
    df, schema = mixed
    tr = fitted["mode_specific"]
    rng = np.random.default_rng(0)
    fake = rng.normal(0, 3, (500, tr.output_width))
    for s in tr.spans:
        if s.kind == "tanh":
            fake[:, s.start] = np.tanh(fake[:, s.start])
    out = tr.inverse_transform(fake)
    assert (out.dtypes == df.dtypes).all()
    for spec in schema.columns:
        col = out[spec.name]
        present = col.dropna()
        if spec.kind in ("continuous", "integer"):
            assert present.min() >= spec.minimum and present.max() <= spec.maximum
        if spec.kind == "integer":
            assert (present == np.round(present.astype(float))).all()
        if spec.kind == "datetime":
            ns = present.astype("int64")
            assert ns.min() >= spec.minimum and ns.max() <= spec.maximum and (ns % spec.step == 0).all()
        if spec.kind == "categorical":
            assert set(present) <= set(spec.categories)
        if not spec.has_missing:
            assert col.notna().all()
    assert out["cats"].isna().any() and out["cont_missing"].isna().any()  # missing cells are produced


def test_out_of_range_values_are_encoded_and_decoded_clipped(mixed, fitted):
    df, schema = mixed
    tr = fitted["minmax"]
    far = df.head(3).copy()
    far["ints"] = [1000, -1000, 50]
    back = tr.inverse_transform(tr.transform(far))
    assert back["ints"].tolist() == [schema.column("ints").maximum, schema.column("ints").minimum, 50]


def test_transform_refuses_an_unseen_category(mixed, fitted):
    df, schema = mixed
    tr = fitted["mode_specific"]
    bad = df.head(5).copy()
    bad.loc[3, "cats"] = "purple"
    with pytest.raises(DataError, match=r"^holdout: column 'cats', row 4: category 'purple' is not in the schema"):
        tr.transform(bad, "holdout")


def test_state_dict_json_round_trip_gives_identical_encodings(mixed, fitted):
    df, schema = mixed
    for method in METHODS:
        tr = fitted[method]
        state = json.loads(json.dumps(tr.state_dict()))
        again = TableTransformer.from_state_dict(schema, state)
        assert again.spans == tr.spans and again.discrete == tr.discrete
        x = tr.transform(df)
        np.testing.assert_array_equal(again.transform(df), x)
        pd.testing.assert_frame_equal(again.inverse_transform(x), tr.inverse_transform(x))


def _state(mixed, fitted):
    return mixed[1], json.loads(json.dumps(fitted["mode_specific"].state_dict()))


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("columns"), r"missing key\(s\) \['columns'\]"),
    (lambda s: s.update(format="pickle"), r"format 'pickle' version 1 is not"),
    (lambda s: s["columns"][0]["encoder"].update(stds=[-1.0] * len(s["columns"][0]["encoder"]["stds"])),
     r"columns\[0\].encoder: stds and weights must be positive"),
    (lambda s: s["columns"][0]["encoder"]["means"].pop(), r"columns\[0\].encoder: means, stds and weights"),
    (lambda s: s["columns"][0]["encoder"].update(method="quantile"), r"encoder.method must be 'mode_specific'"),
    (lambda s: s["columns"][1].update(impute=None), r"columns\[1\]: impute must be a finite number"),
    (lambda s: s["columns"][0].update(scale="1"), r"columns\[0\]: scale must be a finite number"),
    (lambda s: s["columns"][4].update(center=1.5), r"columns\[4\]: center must be an integer"),
    (lambda s: s["columns"][6].update(frequencies=[1, 2]), r"columns\[6\]: frequencies must be 5 non-negative"),
    (lambda s: s["columns"].reverse(), r"columns\[0\]: expected the state of column 'cont'"),
    (lambda s: s["schema"]["columns"][6].update(categories=["blue", "red"]), r"another table schema \(column 'cats'"),
])
def test_load_state_dict_refuses_malformed(mixed, fitted, edit, message):
    schema, state = _state(mixed, fitted)
    edit(state)
    with pytest.raises(DataError, match=message):
        TableTransformer(schema).load_state_dict(state)


def test_load_state_dict_refuses_other_settings_and_unfitted_use(mixed, fitted):
    schema, state = _state(mixed, fitted)
    with pytest.raises(DataError, match=r"seed is 0 but this transformer has 3"):
        TableTransformer(schema, seed=3).load_state_dict(state)
    with pytest.raises(DataError, match=r"transformer state: continuous: 'spline' is not one of"):
        TableTransformer.from_state_dict(schema, {**state, "continuous": "spline"})
    with pytest.raises(ConfigError, match=r"max_modes: must be a positive integer"):
        TableTransformer(schema, max_modes=0)
    with pytest.raises(DataError, match=r"gmm_max_iter is 100 but this transformer has 500"):
        TableTransformer(schema, gmm_max_iter=500).load_state_dict(state)
    with pytest.raises(RuntimeError, match=r"not fitted"):
        TableTransformer(schema).transform(mixed[0])
    tr = TableTransformer(schema).load_state_dict(state)
    with pytest.raises(DataError, match=r"expected an array of shape \(n, \d+\), got \(2, 3\)"):
        tr.inverse_transform(np.zeros((2, 3)))
    bad = np.zeros((2, tr.output_width))
    bad[1, 0] = np.nan
    with pytest.raises(DataError, match=r"row 1, column 0 is nan"):
        tr.inverse_transform(bad)


@pytest.mark.skipif(_adult_dir() is None, reason="UCI Adult not at ../shared/data/adult (nor GANFORGE_SHARED_DATA)")
def test_adult_subsample_round_trip_loses_only_clipped_tails():
    adult = _adult_dir()
    assert adult is not None
    df, schema = read_table(adult / "adult.data.gz", file_format="csv", names=ADULT_NAMES,
                            missing_values=(*MISSING_MARKERS, "?"))
    df = df.sample(n=2000, random_state=0).reset_index(drop=True)
    tr = TableTransformer(schema, seed=0).fit(df)
    enc = tr.transform(df)
    back = tr.inverse_transform(enc)
    discrete = [c.name for c in schema.columns if c.kind == "categorical"]
    pd.testing.assert_frame_equal(back[discrete], df[discrete])
    value_span = {s.column: s.start for s in tr.spans if s.role == "value"}
    for col, start in value_span.items():
        wrong = (back[col] != df[col]).to_numpy()
        # the only loss: values beyond 3.96 sigma of their sampled mode (heavy tails: capital-gain)
        assert np.all(np.abs(enc[wrong, start]) >= np.float32(ALPHA_CLIP)), col
        assert wrong.mean() < 0.02, (col, wrong.mean())


def test_point_masses_are_modes_of_their_own_decoded_exactly():
    """A value holding >= point_mass of a column (a zero-inflated column, like Adult's capital-gain) is a
    mode of width zero: whatever the value span says, that mode decodes to the value itself."""
    rng = np.random.default_rng(0)
    n = 4000
    gain = np.where(rng.random(n) < 0.7, 0, np.round(rng.lognormal(8, 1, n))).astype(np.int64)
    frame = pd.DataFrame({"gain": gain, "g": rng.choice(["a", "b"], n)})
    frame, schema = read_table(frame)
    t = TableTransformer(schema, point_mass=0.1, seed=0).fit(frame)
    enc = t._fitted()[0].encoder
    assert len(enc.points) == 1 and len(enc.means) >= 1
    x = t.transform(frame)
    pd.testing.assert_series_equal(t.inverse_transform(x)["gain"], frame["gain"])
    span = next(s for s in t.spans if s.role == "mode")
    value = next(s for s in t.spans if s.role == "value")
    block = x.copy()
    block[:, value.start] = rng.uniform(-1, 1, n)  # any value span
    block[:, span.start : span.start + span.width] = 0
    block[:, span.start] = 1  # the point mass's mode
    assert (t.inverse_transform(block)["gain"] == 0).all()
    again = TableTransformer.from_state_dict(schema, json.loads(json.dumps(t.state_dict())))
    assert np.array_equal(again.transform(frame), x)
    without = TableTransformer(schema, seed=0).fit(frame)  # CTGAN's encoding: no point masses
    assert len(without._fitted()[0].encoder.points) == 0
