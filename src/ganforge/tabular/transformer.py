"""The reversible encoding of a table for the players (CTGAN's data transformer).

``TableTransformer(schema).fit(frame)`` learns, per column, how to turn the canonical frame of
``read_table`` into one float32 matrix ``(n, output_width)`` and back:

- **continuous, integer and datetime** columns (datetimes as int64 nanoseconds) are first standardized
  (``z = (x - mean) / std``; a constant column has std 1), then encoded by ``continuous``:

  - ``"mode_specific"`` (CTGAN, Xu et al. 2019): a variational Gaussian mixture
    (``sklearn.mixture.BayesianGaussianMixture``, Dirichlet-process prior 0.001, ``max_modes``
    components, ``gmm_max_iter`` iterations (CTGAN: 100), ``random_state=seed``) is fit on at most
    ``GMM_MAX_SAMPLES`` values (a seeded subsample: fitting UCI Adult's six numeric columns took 5.3 s with 20,000 values and
    8.0 s with all 32,561 rows on a busy 2-core machine, keeping the same modes except one more in
    capital-gain; the mixture runs on one BLAS thread); components whose weight exceeds
    ``weight_threshold`` are kept (sorted by mean). A value is encoded as a mode ``k`` *sampled*
    from its posterior over the kept components (Gaussian densities times weights) with a numpy
    Generator seeded by ``seed`` (so ``transform`` is deterministic), a one-hot ``beta`` over the
    modes (softmax span, role ``"mode"``) and ``alpha = (z - mu_k) / (4 sigma_k)`` clipped to
    [-0.99, 0.99] (tanh span, role ``"value"``). Decoding takes the argmax mode. A value more than
    3.96 sigma_k from its sampled mode comes back at mu_k +- 3.96 sigma_k (for Gaussian modes 7.5e-5
    of the values; on UCI Adult's heavy-tailed capital-gain about 1%, capital-loss and fnlwgt < 0.1%).
  - ``"quantile"``: the empirical quantiles of the column (``N_QUANTILES`` of them, as scikit-learn's
    ``QuantileTransformer(output_distribution="normal")`` computes and interpolates them), mapped
    to a standard normal clipped at +-``Z_MAX`` (the normal quantile of 1 - 1e-7, 5.20) and divided
    by ``Z_MAX``: one tanh span in [-1, 1]. Decoding interpolates back, so values between two
    quantiles come back up to the interpolation error.
  - ``"minmax"``: ``2 (z - min) / (max - min) - 1``, one tanh span.

- **categorical and boolean** columns are one-hot blocks (softmax span, role ``"category"``) in the
  schema's category order (boolean: False, True); ``discrete`` lists them with their frequencies in
  the fit frame (for CTGAN's conditional vector and training-by-sampling).

Missing values: a numeric column with ``has_missing`` gets a 2-wide softmax span (role ``"missing"``:
index 0 present, 1 missing) after its value spans, and its missing cells are encoded at the median of
the column (so the value spans stay on the data). A discrete column with ``has_missing`` gets a
**dedicated last category** ``MISSING_LABEL`` in its one-hot block instead (``DiscreteColumn.has_missing``),
so the conditional vector can ask for missing cells too. Decoding puts NaN / NA / NaT / None back.

``inverse_transform`` returns a frame of the schema's columns and dtypes: numeric values clipped to
the schema's [minimum, maximum], integers rounded, continuous values rounded to the schema's
``decimals``, datetimes to its ``step``, categories from the schema's set. Encoding then decoding the
canonical frame gives it back exactly for discrete, integer and datetime columns (when their
granularity exceeds the float32 resolution of the value span and no value lost its tail to the
clip) and up to float32 rounding for continuous ones.

``state_dict()`` holds only JSON numbers, strings and lists; ``load_state_dict`` checks it strictly
(DataError on anything malformed) and never unpickles.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from ganforge.data.base import check_memory
from ganforge.errors import ConfigError, DataError
from ganforge.tabular.table import (
    DISCRETE_KINDS,
    ColumnSpec,
    TableSchema,
    column_values,
    restore_column,
)

ContinuousMethod = Literal["mode_specific", "quantile", "minmax"]
CONTINUOUS_METHODS: tuple[str, ...] = get_args(ContinuousMethod)
GMM_MAX_SAMPLES = 20_000  # the mixture (and the quantiles) are fit on a seeded subsample of this many
ALPHA_CLIP = 0.99  # CTGAN's clip of the mode-specific value
N_QUANTILES = 1000  # as scikit-learn's QuantileTransformer
QUANTILE_BOUND = 1e-7  # scikit-learn's BOUNDS_THRESHOLD
Z_MAX = float(ndtri(1 - QUANTILE_BOUND))  # 5.199...: the quantile span is the normal score / Z_MAX
MISSING_LABEL = "(missing)"  # the name of a discrete column's missing category in DiscreteColumn


@dataclasses.dataclass(frozen=True)
class Span:
    """Columns ``[start, start + width)`` of the encoded matrix: one activation of one table column.

    ``kind``: ``"tanh"`` (one value in [-1, 1]) or ``"softmax"`` (a one-hot block). ``role``:
    ``"value"`` (a numeric value), ``"mode"`` (its mixture component), ``"category"`` (a discrete
    column's category) or ``"missing"`` (present / missing).
    """

    column: str
    kind: Literal["tanh", "softmax"]
    start: int
    width: int
    role: Literal["value", "mode", "category", "missing"]


@dataclasses.dataclass(frozen=True)
class DiscreteColumn:
    """The one-hot block of a categorical or boolean column: ``width`` categories (labels in
    ``categories``, counts in the fit frame in ``frequencies``). With ``has_missing`` the last
    category (labelled ``MISSING_LABEL``) stands for a missing cell."""

    column: str
    start: int
    width: int
    categories: tuple[str, ...]
    frequencies: tuple[int, ...]
    has_missing: bool = False


# -- per-column codecs -----------------------------------------------------------------------------


class _ValueEncoder:
    """Encodes standardized values ``z`` (n,) into a block of ``width`` columns and back."""

    method = ""
    width = 1

    def fit(self, z: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def encode(self, z: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        raise NotImplementedError

    def decode(self, block: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def spans(self, column: str, start: int) -> list[Span]:
        return [Span(column, "tanh", start, 1, "value")]

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, d: dict[str, Any], v: _Check) -> None:
        raise NotImplementedError


class _ModeSpecific(_ValueEncoder):
    """CTGAN's mode-specific normalization (see the module docstring), with point masses: values that
    hold at least ``point_mass`` of the column (Adult's capital-gain 0, hours-per-week 40) are modes of
    their own, of width zero, decoded exactly (``points``, before the mixture's modes in the one-hot)."""

    method = "mode_specific"

    def __init__(self, max_modes: int, weight_threshold: float, seed: int, max_iter: int, point_mass: float = 0.0):
        self.max_modes, self.weight_threshold, self.seed, self.max_iter = max_modes, weight_threshold, seed, max_iter
        self.point_mass = point_mass
        self.means = self.stds = self.weights = np.zeros(0)
        self.points = np.zeros(0)

    @property
    def width(self) -> int:  # type: ignore[override]
        return 1 + len(self.points) + len(self.means)

    def fit(self, z: np.ndarray, rng: np.random.Generator) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture
        from threadpoolctl import threadpool_limits

        self.points = np.zeros(0)
        if self.point_mass > 0 and len(z):
            values, counts = np.unique(z, return_counts=True)
            self.points = values[counts >= self.point_mass * len(z)].astype(np.float64)
            if len(self.points):
                z = z[~np.isin(z, self.points)]
        if len(self.points) and len(z) == 0:  # only point masses: no mixture
            self.means = self.stds = self.weights = np.zeros(0)
            return
        sample = _subsample(z, rng)
        if len(sample) < 2 or np.ptp(sample) == 0:
            self.means, self.stds, self.weights = np.array([float(sample.mean())]), np.ones(1), np.ones(1)
            return
        gmm = BayesianGaussianMixture(
            n_components=min(self.max_modes, len(sample)), weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001, max_iter=self.max_iter, n_init=1, random_state=self.seed)
        # one BLAS thread: a 1-D mixture gains nothing from more, and loses much on a busy machine
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(sample.reshape(-1, 1))
        keep = gmm.weights_ > self.weight_threshold
        if not keep.any():
            keep = gmm.weights_ == gmm.weights_.max()
        order = np.argsort(gmm.means_[keep, 0], kind="stable")
        self.means = gmm.means_[keep, 0][order].astype(np.float64)
        self.stds = np.sqrt(gmm.covariances_[keep].reshape(-1))[order].astype(np.float64)
        self.weights = gmm.weights_[keep][order].astype(np.float64)

    def posterior(self, z: np.ndarray) -> np.ndarray:
        """``(n, K)`` posterior probabilities of the kept modes (Gaussian densities times weights)."""
        logp = (np.log(self.weights) - np.log(self.stds))[None, :] - 0.5 * (
            (z[:, None] - self.means[None, :]) / self.stds[None, :]) ** 2
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    def encode(self, z: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        # out: (n, 1 + P + K) -- alpha, then the one-hot mode: P point masses, then K mixture modes
        n, n_points, k_modes = len(z), len(self.points), len(self.means)
        at_point = np.isin(z, self.points) if n_points else np.zeros(n, bool)
        rest = ~at_point
        if n_points:
            idx = np.searchsorted(self.points, z[at_point])
            out[np.flatnonzero(at_point), 1 + idx] = 1.0  # alpha stays 0
        if k_modes and rest.any():
            zr = z[rest]
            cum = np.cumsum(self.posterior(zr), axis=1)
            u = rng.random(len(zr))[:, None] * cum[:, -1:]
            k = np.minimum((cum < u).sum(axis=1), k_modes - 1)
            rows = np.flatnonzero(rest)
            out[rows, 0] = np.clip((zr - self.means[k]) / (4 * self.stds[k]), -ALPHA_CLIP, ALPHA_CLIP)
            out[rows, 1 + n_points + k] = 1.0
        elif rest.any():  # values off the point masses in a column that had only point masses
            nearest = np.abs(z[rest][:, None] - self.points[None, :]).argmin(axis=1)
            out[np.flatnonzero(rest), 1 + nearest] = 1.0

    def decode(self, block: np.ndarray) -> np.ndarray:
        n_points = len(self.points)
        k = block[:, 1:].argmax(axis=1)
        alpha = np.clip(block[:, 0].astype(np.float64), -1.0, 1.0)
        out = np.empty(len(block), np.float64)
        point = k < n_points
        out[point] = self.points[k[point]]
        km = k[~point] - n_points
        out[~point] = alpha[~point] * 4 * self.stds[km] + self.means[km] if len(self.means) else 0.0
        return out

    def spans(self, column: str, start: int) -> list[Span]:
        return [Span(column, "tanh", start, 1, "value"),
                Span(column, "softmax", start + 1, len(self.points) + len(self.means), "mode")]

    def state(self) -> dict[str, Any]:
        return {"method": self.method, "means": _floats(self.means), "stds": _floats(self.stds),
                "weights": _floats(self.weights), "points": _floats(self.points)}

    def load(self, d: dict[str, Any], v: _Check) -> None:
        v.keys(d, {"method", "means", "stds", "weights", "points"})
        means, stds, weights, points = (v.floats(d[key], key) for key in ("means", "stds", "weights", "points"))
        if len(means) > self.max_modes or len(stds) != len(means) or len(weights) != len(means) \
                or len(means) + len(points) == 0:
            v.fail(f"means, stds and weights must have the same length, at most {self.max_modes}, and there must "
                   "be a mode or a point mass")
        if (stds <= 0).any() or (weights <= 0).any():
            v.fail("stds and weights must be positive")
        if len(points) and (np.diff(points) <= 0).any():
            v.fail("points must increase")
        self.means, self.stds, self.weights, self.points = means, stds, weights, points


class _Quantile(_ValueEncoder):
    """Empirical quantiles to a normal score, scaled by ``Z_MAX`` into [-1, 1]."""

    method = "quantile"

    def __init__(self) -> None:
        self.quantiles = self.references = np.zeros(0)

    def fit(self, z: np.ndarray, rng: np.random.Generator) -> None:
        sample = _subsample(z, rng)
        self.references = np.linspace(0.0, 1.0, min(N_QUANTILES, len(sample)))
        self.quantiles = np.maximum.accumulate(np.percentile(sample, self.references * 100))

    def encode(self, z: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        q, r = self.quantiles, self.references
        # the mean of the forward and the reversed interpolation handles repeated quantiles (as sklearn)
        u = 0.5 * (np.interp(z, q, r) - np.interp(-z, -q[::-1], -r[::-1]))
        u[z + QUANTILE_BOUND > q[-1]] = 1.0
        u[z - QUANTILE_BOUND < q[0]] = 0.0
        with np.errstate(divide="ignore"):
            score = np.clip(ndtri(u), ndtri(QUANTILE_BOUND - np.spacing(1)), ndtri(1 - (QUANTILE_BOUND - np.spacing(1))))
        out[:, 0] = np.clip(score / Z_MAX, -1.0, 1.0)

    def decode(self, block: np.ndarray) -> np.ndarray:
        u = ndtr(np.clip(block[:, 0].astype(np.float64), -1.0, 1.0) * Z_MAX)
        z = np.interp(u, self.references, self.quantiles)
        # the encoded bounds, allowing for the float32 rounding of the score (2 x the bound)
        z[u < 2 * QUANTILE_BOUND] = self.quantiles[0]
        z[u > 1 - 2 * QUANTILE_BOUND] = self.quantiles[-1]
        return z

    def state(self) -> dict[str, Any]:
        return {"method": self.method, "quantiles": _floats(self.quantiles), "references": _floats(self.references)}

    def load(self, d: dict[str, Any], v: _Check) -> None:
        v.keys(d, {"method", "quantiles", "references"})
        q, r = v.floats(d["quantiles"], "quantiles"), v.floats(d["references"], "references")
        if not 1 <= len(q) <= N_QUANTILES or len(r) != len(q) or (np.diff(q) < 0).any():
            v.fail(f"quantiles: 1..{N_QUANTILES} non-decreasing values, as many as references")
        if len(r) > 1 and (r[0] != 0 or r[-1] != 1 or (np.diff(r) <= 0).any()):
            v.fail("references: increasing from 0 to 1")
        self.quantiles, self.references = q, r


class _MinMax(_ValueEncoder):
    """``2 (z - low) / (high - low) - 1``."""

    method = "minmax"

    def __init__(self) -> None:
        self.low = self.high = 0.0

    def fit(self, z: np.ndarray, rng: np.random.Generator) -> None:
        self.low, self.high = float(z.min()), float(z.max())

    def encode(self, z: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        span = self.high - self.low
        out[:, 0] = 0.0 if span == 0 else np.clip(2 * (z - self.low) / span - 1, -1.0, 1.0)

    def decode(self, block: np.ndarray) -> np.ndarray:
        alpha = np.clip(block[:, 0].astype(np.float64), -1.0, 1.0)
        return self.low + (alpha + 1) / 2 * (self.high - self.low)

    def state(self) -> dict[str, Any]:
        return {"method": self.method, "low": self.low, "high": self.high}

    def load(self, d: dict[str, Any], v: _Check) -> None:
        v.keys(d, {"method", "low", "high"})
        low, high = v.float(d["low"], "low"), v.float(d["high"], "high")
        if low > high:
            v.fail(f"low {low} > high {high}")
        self.low, self.high = low, high


class _NumericColumn:
    """A continuous, integer or datetime column: standardization, the value encoder, missing cells."""

    def __init__(self, spec: ColumnSpec, encoder: _ValueEncoder):
        self.spec, self.encoder = spec, encoder
        self.center: float | int = 0
        self.scale = 1.0
        self.impute: float | int | None = None

    @property
    def width(self) -> int:
        return self.encoder.width + (2 if self.spec.has_missing else 0)

    def standardize(self, values: np.ndarray) -> np.ndarray:
        if self.spec.kind == "datetime":  # int64 ns: subtract in integers, then scale
            return (values.astype(np.int64) - np.int64(self.center)).astype(np.float64) / self.scale
        return (values - self.center) / self.scale

    def fit(self, values: np.ndarray, missing: np.ndarray, rng: np.random.Generator) -> None:
        present = values[~missing]
        mean, std = float(present.astype(np.float64).mean()), float(present.astype(np.float64).std())
        self.center = int(round(mean)) if self.spec.kind == "datetime" else mean
        self.scale = std if std > 0 and math.isfinite(std) else 1.0
        if self.spec.has_missing:
            median = float(np.median(present))
            self.impute = int(round(median)) if self.spec.kind == "datetime" else median
        self.encoder.fit(self.standardize(present), rng)

    def encode(self, values: np.ndarray, missing: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        if self.spec.has_missing:
            values = np.where(missing, np.asarray(self.impute, values.dtype), values)
            w = self.encoder.width
            out[:, w] = ~missing
            out[:, w + 1] = missing
        self.encoder.encode(self.standardize(values), rng, out[:, :self.encoder.width])

    def decode(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec, z = self.spec, self.encoder.decode(block[:, :self.encoder.width])
        w = self.encoder.width
        missing = block[:, w + 1] > block[:, w] if spec.has_missing else np.zeros(len(block), bool)
        lo, hi = spec.minimum, spec.maximum
        assert lo is not None and hi is not None
        if spec.kind == "datetime":
            offset = np.rint(np.clip(z * self.scale, lo - self.center, hi - self.center)).astype(np.int64)
            ns = offset + np.int64(self.center)
            step = np.int64(spec.step or 1)
            ns = (ns + step // 2) // step * step
            return np.clip(ns, int(lo), int(hi)), missing
        x = np.clip(z * self.scale + self.center, lo, hi)
        if spec.kind == "integer":
            x = np.rint(x)
        elif spec.decimals is not None:
            x = np.clip(np.round(x, spec.decimals), lo, hi)
        return x, missing

    def spans(self, start: int) -> list[Span]:
        spans = self.encoder.spans(self.spec.name, start)
        if self.spec.has_missing:
            spans.append(Span(self.spec.name, "softmax", start + self.encoder.width, 2, "missing"))
        return spans

    def state(self) -> dict[str, Any]:
        return {"column": self.spec.name, "center": self.center, "scale": self.scale, "impute": self.impute,
                "encoder": self.encoder.state()}

    def load(self, d: dict[str, Any], v: _Check) -> None:
        v.keys(d, {"column", "center", "scale", "impute", "encoder"})
        integer = self.spec.kind == "datetime"
        self.center = v.int(d["center"], "center") if integer else v.float(d["center"], "center")
        self.scale = v.float(d["scale"], "scale")
        if self.scale <= 0:
            v.fail(f"scale must be positive, got {self.scale}")
        if self.spec.has_missing:
            self.impute = v.int(d["impute"], "impute") if integer else v.float(d["impute"], "impute")
        elif d["impute"] is not None:
            v.fail("impute must be null for a column without missing values")
        enc = d["encoder"]
        if not isinstance(enc, dict) or enc.get("method") != self.encoder.method:
            v.fail(f"encoder.method must be {self.encoder.method!r}")
        self.encoder.load(enc, v.at("encoder"))


class _DiscreteColumn:
    """A categorical or boolean column: a one-hot block, plus a last slot for missing cells."""

    def __init__(self, spec: ColumnSpec):
        self.spec = spec
        self.categories = tuple(spec.categories or ())
        self.frequencies: tuple[int, ...] = (0,) * self.width

    @property
    def width(self) -> int:
        return len(self.categories) + (1 if self.spec.has_missing else 0)

    def codes(self, values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        if self.spec.kind == "boolean":
            codes = values.astype(np.int64)
        else:
            codes = pd.Index(self.categories).get_indexer(np.where(missing, self.categories[0], values))
            if (codes < 0).any():  # check_frame refuses unknown categories first
                raise DataError(f"column {self.spec.name!r}: category {values[codes < 0][0]!r} is not in the schema")
        return np.where(missing, len(self.categories), codes)

    def fit(self, values: np.ndarray, missing: np.ndarray, rng: np.random.Generator) -> None:
        self.frequencies = tuple(int(c) for c in np.bincount(self.codes(values, missing), minlength=self.width))

    def encode(self, values: np.ndarray, missing: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        out[np.arange(len(values)), self.codes(values, missing)] = 1.0

    def decode(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = block.argmax(axis=1)
        missing = k == len(self.categories)
        if self.spec.kind == "boolean":
            return k == 1, missing
        labels = np.array(self.categories + ("",), dtype=object)
        return labels[k], missing

    def spans(self, start: int) -> list[Span]:
        return [Span(self.spec.name, "softmax", start, self.width, "category")]

    def state(self) -> dict[str, Any]:
        return {"column": self.spec.name, "frequencies": list(self.frequencies)}

    def load(self, d: dict[str, Any], v: _Check) -> None:
        v.keys(d, {"column", "frequencies"})
        f = d["frequencies"]
        if (not isinstance(f, list) or len(f) != self.width
                or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in f)):
            v.fail(f"frequencies must be {self.width} non-negative integers")
        self.frequencies = tuple(f)


# -- the transformer -------------------------------------------------------------------------------


class TableTransformer:
    """The reversible encoding of a table of ``schema`` (see the module docstring).

    Args:
        schema: the table's schema (``read_table``).
        continuous: how numeric columns are encoded: ``"mode_specific"`` (CTGAN), ``"quantile"`` or
            ``"minmax"``.
        max_modes: mode_specific: the mixture's number of components (an upper bound on the modes).
        weight_threshold: mode_specific: components with at most this weight are dropped.
        seed: seeds the mixture fits, the subsamples and the mode sampling of ``transform``.
        gmm_max_iter: mode_specific: the mixture's variational iterations. CTGAN's 100 (the default)
            often stops before convergence and keeps a wide mode split in two or three (on three
            separated Gaussians: 4-5 modes kept for 5 of 5 seeds tried, 3 once converged, which took
            120-260 iterations); more iterations give fewer, truer modes at a longer fit.
        point_mass: mode_specific: a value that holds at least this share of a numeric column is a mode
            of its own, of width zero, decoded exactly (0: none, as CTGAN).
    """

    FORMAT = "ganforge-table-transformer"
    VERSION = 1

    def __init__(self, schema: TableSchema, continuous: ContinuousMethod = "mode_specific", max_modes: int = 10,
                 weight_threshold: float = 0.005, seed: int = 0, gmm_max_iter: int = 100, point_mass: float = 0.0):
        if not isinstance(schema, TableSchema):
            raise TypeError(f"schema must be a TableSchema, got {type(schema).__name__}")
        if continuous not in CONTINUOUS_METHODS:
            raise ConfigError("continuous", f"{continuous!r} is not one of {', '.join(CONTINUOUS_METHODS)}")
        if isinstance(max_modes, bool) or not isinstance(max_modes, int) or max_modes < 1:
            raise ConfigError("max_modes", f"must be a positive integer, got {max_modes!r}")
        if not isinstance(weight_threshold, (int, float)) or not 0 <= weight_threshold < 1:
            raise ConfigError("weight_threshold", f"must be in [0, 1), got {weight_threshold!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError("seed", f"must be a non-negative integer, got {seed!r}")
        if isinstance(gmm_max_iter, bool) or not isinstance(gmm_max_iter, int) or gmm_max_iter < 1:
            raise ConfigError("gmm_max_iter", f"must be a positive integer, got {gmm_max_iter!r}")
        self.schema, self.continuous = schema, continuous
        self.max_modes, self.weight_threshold, self.seed = max_modes, float(weight_threshold), seed
        self.gmm_max_iter = gmm_max_iter
        if not isinstance(point_mass, (int, float)) or isinstance(point_mass, bool) or not 0 <= point_mass <= 1:
            raise ConfigError("point_mass", f"must be in [0, 1], got {point_mass!r}")
        self.point_mass = float(point_mass)
        self._columns: list[_NumericColumn | _DiscreteColumn] | None = None

    def _new_columns(self) -> list[_NumericColumn | _DiscreteColumn]:
        cols: list[_NumericColumn | _DiscreteColumn] = []
        for spec in self.schema.columns:
            if spec.kind in DISCRETE_KINDS:
                cols.append(_DiscreteColumn(spec))
            else:
                encoder: _ValueEncoder = {
                    "mode_specific": lambda: _ModeSpecific(self.max_modes, self.weight_threshold, self.seed,
                                                           self.gmm_max_iter, self.point_mass),
                    "quantile": _Quantile, "minmax": _MinMax}[self.continuous]()
                cols.append(_NumericColumn(spec, encoder))
        return cols

    def _fitted(self) -> list[_NumericColumn | _DiscreteColumn]:
        if self._columns is None:
            raise RuntimeError("TableTransformer is not fitted: call fit(frame) or load_state_dict(state)")
        return self._columns

    # -- fitting and encoding ---------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, where: str = "table") -> TableTransformer:
        """Learn each column's encoding from ``frame`` (checked with ``schema.check_frame``)."""
        frame = self.schema.check_frame(frame, where)
        cols = self._new_columns()
        for i, col in enumerate(cols):
            values, missing = column_values(col.spec, frame[col.spec.name], where)
            if missing.all() and isinstance(col, _NumericColumn):
                raise DataError(f"{where}: column {col.spec.name!r} is entirely missing; nothing to fit")
            col.fit(values, missing, np.random.default_rng([self.seed, i, 0]))
        self._columns = cols
        return self

    def transform(self, frame: pd.DataFrame, where: str = "table") -> np.ndarray:
        """``(n, output_width)`` float32 encoding of ``frame`` (checked with ``schema.check_frame``);
        the same frame always gives the same matrix (the mode sampling is seeded by ``seed``)."""
        cols = self._fitted()
        frame = self.schema.check_frame(frame, where)
        n = len(frame)
        check_memory(n * self.output_width * 4, where, f"its {n:,} encoded rows of width {self.output_width}",
                     "encode the table in parts")
        out = np.zeros((n, self.output_width), np.float32)
        start = 0
        for i, col in enumerate(cols):
            values, missing = column_values(col.spec, frame[col.spec.name], where)
            col.encode(values, missing, np.random.default_rng([self.seed, i, 1]), out[:, start:start + col.width])
            start += col.width
        return out

    def fit_transform(self, frame: pd.DataFrame, where: str = "table") -> np.ndarray:
        return self.fit(frame, where).transform(frame, where)

    def inverse_transform(self, array: Any) -> pd.DataFrame:
        """The frame (schema columns and dtypes) of an encoded matrix ``(n, output_width)``: the
        generator's output after its activations, or ``transform``'s. Softmax spans are read by argmax,
        tanh values clipped to [-1, 1]."""
        cols = self._fitted()
        if hasattr(array, "detach"):  # a torch tensor
            array = array.detach().cpu().numpy()
        array = np.asarray(array)
        if array.ndim != 2 or array.shape[1] != self.output_width:
            raise DataError(f"inverse_transform: expected an array of shape (n, {self.output_width}), "
                            f"got {tuple(array.shape)}")
        bad = ~np.isfinite(array)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(f"inverse_transform: row {r}, column {c} is {array[r, c]}; the encoding must be finite")
        out, start = {}, 0
        for col in cols:
            values, missing = col.decode(array[:, start:start + col.width])
            out[col.spec.name] = restore_column(col.spec, values, missing)
            start += col.width
        return pd.DataFrame(out)

    # -- layout -----------------------------------------------------------------------------------

    @property
    def output_width(self) -> int:
        return sum(c.width for c in self._fitted())

    @property
    def spans(self) -> tuple[Span, ...]:
        spans, start = [], 0
        for col in self._fitted():
            spans.extend(col.spans(start))
            start += col.width
        return tuple(spans)

    @property
    def discrete(self) -> tuple[DiscreteColumn, ...]:
        out, start = [], 0
        for col in self._fitted():
            if isinstance(col, _DiscreteColumn):
                labels = col.categories + ((MISSING_LABEL,) if col.spec.has_missing else ())
                out.append(DiscreteColumn(col.spec.name, start, col.width, labels, col.frequencies,
                                          col.spec.has_missing))
            start += col.width
        return tuple(out)

    def modes(self, column: str) -> dict[str, list[float]]:
        """mode_specific: the kept mixture components of a numeric column in its own units
        (datetime: ns): ``{"means", "stds", "weights"}``, sorted by mean."""
        for col in self._fitted():
            if col.spec.name == column and isinstance(col, _NumericColumn) and isinstance(col.encoder, _ModeSpecific):
                enc = col.encoder
                return {"means": _floats(enc.means * col.scale + col.center), "stds": _floats(enc.stds * col.scale),
                        "weights": _floats(enc.weights)}
        raise KeyError(f"no mode-specific numeric column {column!r}")

    # -- state ------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the settings, the schema, and each column's learned numbers."""
        return {"format": self.FORMAT, "version": self.VERSION, "continuous": self.continuous,
                "max_modes": self.max_modes, "weight_threshold": self.weight_threshold, "seed": self.seed,
                "gmm_max_iter": self.gmm_max_iter, "point_mass": self.point_mass, "schema": self.schema.to_dict(),
                "columns": [c.state() for c in self._fitted()]}

    def load_state_dict(self, state: Any, where: str = "transformer state") -> TableTransformer:
        """Load ``state_dict()``'s output; DataError naming the field on anything malformed, on another
        schema, or on other settings."""
        v = _Check(where)
        v.keys(state, {"format", "version", "continuous", "max_modes", "weight_threshold", "seed", "gmm_max_iter",
                       "point_mass", "schema", "columns"})
        if state["format"] != self.FORMAT or state["version"] != self.VERSION:
            v.fail(f"format {state['format']!r} version {state['version']!r} is not {self.FORMAT!r} "
                   f"version {self.VERSION}")
        for key in ("continuous", "max_modes", "weight_threshold", "seed", "gmm_max_iter", "point_mass"):
            if state[key] != getattr(self, key) or isinstance(state[key], bool):
                v.fail(f"{key} is {state[key]!r} but this transformer has {getattr(self, key)!r}")
        schema = TableSchema.from_dict(state["schema"], f"{where}: schema")
        if schema != self.schema:
            diff = [a.name for a, b in zip(schema.columns, self.schema.columns, strict=False) if a != b]
            v.fail("it was fit on another table schema"
                   + (f" (column {diff[0]!r} differs)" if diff else " (other columns, id columns or target)"))
        cols = self._new_columns()
        if not isinstance(state["columns"], list) or len(state["columns"]) != len(cols):
            v.fail(f"columns must be a list of {len(cols)} column states")
        for i, (col, d) in enumerate(zip(cols, state["columns"], strict=True)):
            cv = v.at(f"columns[{i}]")
            if not isinstance(d, dict) or d.get("column") != col.spec.name:
                cv.fail(f"expected the state of column {col.spec.name!r}")
            col.load(d, cv)
        self._columns = cols
        return self

    @classmethod
    def from_state_dict(cls, schema: TableSchema, state: Any, where: str = "transformer state") -> TableTransformer:
        """A fitted transformer from ``state_dict()``'s output (its settings are read from it)."""
        v = _Check(where)
        if not isinstance(state, dict):
            v.fail(f"expected an object, got {type(state).__name__}")
        try:
            t = cls(schema, continuous=state.get("continuous"), max_modes=state.get("max_modes"),
                    weight_threshold=state.get("weight_threshold"), seed=state.get("seed"),
                    gmm_max_iter=state.get("gmm_max_iter"), point_mass=state.get("point_mass"))
        except ConfigError as e:
            raise DataError(f"{where}: {str(e).removeprefix('config ')}") from None
        return t.load_state_dict(state, where)


# -- helpers ---------------------------------------------------------------------------------------


def _subsample(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return z if len(z) <= GMM_MAX_SAMPLES else rng.choice(z, GMM_MAX_SAMPLES, replace=False)


def _floats(a: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(a, np.float64)]


class _Check:
    """Strict checks of a JSON-loaded state, raising one-line DataErrors naming the field."""

    def __init__(self, where: str, path: str = ""):
        self.where, self.path = where, path

    def at(self, field: str) -> _Check:
        return _Check(self.where, f"{self.path}.{field}" if self.path else field)

    def fail(self, what: str) -> None:
        raise DataError(f"{self.where}: {self.path}: {what}" if self.path else f"{self.where}: {what}")

    def keys(self, d: Any, keys: set[str]) -> None:
        if not isinstance(d, dict):
            self.fail(f"expected an object, got {type(d).__name__}")
        missing, extra = sorted(keys - set(d)), sorted(set(d) - keys)
        if missing or extra:
            self.fail("; ".join(([f"missing key(s) {missing}"] if missing else [])
                                + ([f"unexpected key(s) {extra}"] if extra else [])))

    def float(self, x: Any, field: str) -> float:
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
            self.fail(f"{field} must be a finite number, got {x!r}")
        return float(x)

    def int(self, x: Any, field: str) -> int:
        if not isinstance(x, int) or isinstance(x, bool):
            self.fail(f"{field} must be an integer, got {x!r}")
        return int(x)

    def floats(self, x: Any, field: str) -> np.ndarray:
        if not isinstance(x, list) or not all(isinstance(e, (int, float)) and not isinstance(e, bool)
                                              and math.isfinite(e) for e in x):
            self.fail(f"{field} must be a list of finite numbers")
        return np.asarray(x, np.float64)
