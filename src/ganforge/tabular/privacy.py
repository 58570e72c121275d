"""Privacy of a synthetic table: distances to the closest record, membership and attribute inference.

- DCR (distance to closest record): for each synthetic row, the distance to its nearest real
  training row, with SDMetrics 0.32's distance (sdmetrics.single_table.privacy.dcr_utils, used by
  DCRBaselineProtection and DCROverfittingProtection): the mean over columns of a per-column
  difference, numerical ones ``min(|a - b| / range, 1)`` with the range of the table searched (the
  reference; a constant column: 0 if equal, else 1; datetimes in seconds), categorical / boolean
  ones 0 if equal else 1; one missing value against a present one: 1, two missing values: 0. Both
  SDMetrics metrics are reproduced (their scores), plus the ratio of the median DCR to the training
  table over the median DCR to a holdout table (real rows never trained on; near 1: no memorization)
  and the nearest-neighbour distance ratio NNDR = d1 / d2 (d2 = 0: NNDR 1, the row sits in a group of
  identical real rows rather than next to one of them).
- Membership inference, DOMIAS (van Breugel, Sun, Qian & van der Schaar 2023, "Membership Inference
  Attacks against Synthetic Data through Overfitting Detection"): a candidate row scores
  log p_syn(x) - log p_ref(x), p_syn a kernel density fitted on the synthetic rows and p_ref one on
  the holdout rows (the attacker's real non-member reference; a holdout candidate is left out of its
  own estimate). The kernel is a product: Gaussian over the numerical columns scaled to the training
  table's range, Aitchison-Aitken over the categorical ones (and the missing flags of numerical ones:
  a missing value is imputed with the median). Each density's bandwidths maximize the leave-one-out
  likelihood of its own rows (synthetic, or holdout): no member is used to choose them, and a
  generator that repeats rows gets the narrow kernel its repeats call for. Reported: the ROC AUC of
  the score on equal numbers of
  members (training rows) and non-members (holdout rows), seeded; next to it, the AUC of the plain
  distance attack (score: minus the candidate's distance to the closest synthetic row).
- Attribute inference: SDMetrics' CategoricalCAP (correct attribution probability) on known and
  sensitive columns, 1 - the mean share of synthetic rows with a real row's known values that also
  have its sensitive values (real rows whose known values no synthetic row has do not count).

Distances are computed in blocks of bounded size (torch, float64): the numerical part as one L1
``torch.cdist`` plus rank-one corrections for missing values (exact when every value of the row lies
in the reference's range, where the cap at 1 cannot bind; other rows take an exact per-column path),
the categorical part as the count of unequal codes (``torch.cdist`` with p=0). 30,000 x 30,000 rows
take 64 MiB blocks, never an n x m matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganforge.errors import DataError
from ganforge.tabular.metrics import (
    DISCRETE_KINDS,
    NUMERICAL_KINDS,
    check_kinds,
    datetime_ns,
    numeric_values,
)

__all__ = [
    "NOTE", "categorical_cap", "closest_distances", "dcr", "dcr_baseline_protection",
    "dcr_overfitting_protection", "membership_inference", "privacy",
]

NOTE = (
    "Distances alone never show that synthetic data is private: a synthetic row far from every real row "
    "can still let an attacker infer membership or attributes, and DCR / NNDR only describe geometry. "
    "Read each distance beside the membership-inference AUC (0.5: the attacker does no better than chance; "
    "1: members are told apart perfectly); no figure here is a guarantee (only differential privacy in "
    "training gives one)."
)

#: Elements of one distance block (float64): 2**23 = 64 MiB.
_BLOCK_ELEMENTS = 1 << 23
#: A missing value's stand-in in the range-scaled space, far below [0, 1]: |x - NaN stand-in| = x + 10.
_NAN_STAND_IN = -10.0


# ----------------------------------------------------------------------------------------------
# SDMetrics' DCR distance
# ----------------------------------------------------------------------------------------------


class _DcrSpace:
    """Two tables (dataset rows, reference rows) encoded for SDMetrics' DCR distance."""

    def __init__(self, dataset: pd.DataFrame, reference: pd.DataFrame, kinds: Mapping[str, str]):
        n, m = len(dataset), len(reference)
        self.n, self.m, self.n_columns = n, m, len(kinds)
        a_cols, b_cols, capped, nan_cols = [], [], [], []
        self.row_constant = np.zeros(n)  # columns missing from the whole reference: 1 per present value
        self.in_range = np.ones(n, dtype=bool)
        for column, kind in kinds.items():
            if kind not in NUMERICAL_KINDS:
                continue
            a, b = self._numbers(dataset[column], reference[column], kind)
            a_nan, b_nan = np.isnan(a), np.isnan(b)
            if b_nan.all():
                self.row_constant += ~a_nan
                continue
            lo, hi = b[~b_nan].min(), b[~b_nan].max()
            width = hi - lo
            self.in_range &= a_nan | ((a >= lo) & (a <= hi))
            scale = width if width > 0 else 1.0
            a_cols.append((a - lo) / scale)
            b_cols.append((b - lo) / scale)
            capped.append(width > 0)  # a constant reference column counts "differs" (0/1) instead
            nan_cols.append(a_nan.any() or b_nan.any())
        self.p = len(a_cols)
        self.a = torch.from_numpy(np.stack(a_cols, 1) if a_cols else np.zeros((n, 0)))
        self.b = torch.from_numpy(np.stack(b_cols, 1) if b_cols else np.zeros((m, 0)))
        self.capped = torch.tensor(capped, dtype=torch.bool)
        self.a_nan, self.b_nan = torch.isnan(self.a), torch.isnan(self.b)
        self.a_fast = torch.nan_to_num(self.a, nan=_NAN_STAND_IN)
        self.b_fast = torch.nan_to_num(self.b, nan=_NAN_STAND_IN)
        # Missing-value corrections on the fast path, for the columns that have any (see block()).
        idx = torch.tensor([i for i, has in enumerate(nan_cols) if has], dtype=torch.long)
        a_n, b_n = self.a_nan[:, idx].double(), self.b_nan[:, idx].double()
        self.corr_a = (torch.cat([a_n, (1 - a_n) * (-9.0 - torch.nan_to_num(self.a[:, idx]))], 1))
        self.corr_b = (torch.cat([(1 - b_n) * (-9.0 - torch.nan_to_num(self.b[:, idx])), b_n], 1))
        # Categorical / boolean: codes over both tables' values (a missing value is a value), compared by
        # cdist with p=0, the count of unequal coordinates.
        a_codes, b_codes = [], []
        for column, kind in kinds.items():
            if kind not in DISCRETE_KINDS:
                continue
            both = pd.concat([dataset[column].astype(object), reference[column].astype(object)], ignore_index=True)
            codes, _ = pd.factorize(both, use_na_sentinel=False)
            a_codes.append(codes[:n])
            b_codes.append(codes[n:])
        self.q = len(a_codes)
        self.a_codes = torch.from_numpy(np.stack(a_codes, 1).astype(np.float64) if a_codes else np.zeros((n, 0)))
        self.b_codes = torch.from_numpy(np.stack(b_codes, 1).astype(np.float64) if b_codes else np.zeros((m, 0)))
        self.slow_rows = np.flatnonzero(~self.in_range)
        self.row_constant_t = torch.from_numpy(self.row_constant)
        self.any_row_constant = bool(self.row_constant.any())

    @staticmethod
    def _numbers(a: pd.Series, b: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
        if kind != "datetime":
            return numeric_values(a, kind), numeric_values(b, kind)
        (a_ns, a_missing), (b_ns, b_missing) = datetime_ns(a), datetime_ns(b)
        origin = b_ns[~b_missing].min() if (~b_missing).any() else 0
        a_s, b_s = (a_ns - origin).astype(np.float64) / 1e9, (b_ns - origin).astype(np.float64) / 1e9
        a_s[a_missing], b_s[b_missing] = np.nan, np.nan
        return a_s, b_s

    def fast_numeric(self, rows: slice, cols: slice) -> torch.Tensor:
        """The numerical part, exact for rows whose values all lie in the reference's range.

        There |a - b| / range <= 1, so the cap cannot bind and the sum is one L1 distance; a missing
        value's stand-in gives |stand-in - b| = b + 10 where 1 is due, so -9 - b is added (the same
        for a missing b), and two stand-ins give 0 as they should.
        """
        d = torch.cdist(self.a_fast[rows].unsqueeze(0), self.b_fast[cols].unsqueeze(0), p=1).squeeze(0)
        if self.corr_a.shape[1]:
            d += self.corr_a[rows] @ self.corr_b[cols].T
        return d

    def exact_numeric(self, rows: np.ndarray, cols: slice) -> torch.Tensor:
        """The numerical part for any rows (those with values outside the range): per column, capped."""
        a, a_nan = self.a[rows], self.a_nan[rows]
        b, b_nan = self.b[cols], self.b_nan[cols]
        total = torch.zeros(len(rows), b.shape[0], dtype=torch.float64)
        for j in range(self.p):
            diff = (a[:, j : j + 1] - b[:, j].unsqueeze(0)).abs()
            diff = diff.clamp(max=1.0) if self.capped[j] else (diff > 0).double()
            one_missing = a_nan[:, j : j + 1] ^ b_nan[:, j].unsqueeze(0)
            any_missing = a_nan[:, j : j + 1] | b_nan[:, j].unsqueeze(0)
            total += torch.where(any_missing, one_missing.double(), diff)
        return total

    def block(self, rows: slice, cols: slice) -> torch.Tensor:
        """Summed column differences of dataset rows ``rows`` to reference rows ``cols`` (DCR times the
        number of columns): (len(rows), len(cols)) float64."""
        if self.p:
            d = self.fast_numeric(rows, cols)
            slow = self.slow_rows[(self.slow_rows >= rows.start) & (self.slow_rows < rows.stop)]
            if len(slow):
                d[torch.from_numpy(slow - rows.start)] = self.exact_numeric(slow, cols)
        else:
            d = torch.zeros(rows.stop - rows.start, cols.stop - cols.start, dtype=torch.float64)
        if self.q:
            d += torch.cdist(self.a_codes[rows].unsqueeze(0), self.b_codes[cols].unsqueeze(0), p=0).squeeze(0)
        if self.any_row_constant:
            d += self.row_constant_t[rows].unsqueeze(1)
        return d


def closest_distances(
    dataset: pd.DataFrame, reference: pd.DataFrame, kinds: Mapping[str, str], *, k: int = 1,
) -> np.ndarray:
    """(len(dataset), k) float64: the k smallest DCR distances of each dataset row to the reference rows.

    Column ``[:, 0]`` equals SDMetrics' ``calculate_dcr(dataset, reference, metadata)``. When k exceeds
    the reference's rows, the columns past them are +inf. Memory: blocks of 2**23 float64 elements.
    """
    check_kinds(kinds, dataset=dataset, reference=reference)
    if len(dataset) == 0 or len(reference) == 0:
        raise DataError(f"closest distances: empty table (dataset {len(dataset)}, reference {len(reference)} rows)")
    space = _DcrSpace(dataset, reference, kinds)
    n, m = space.n, space.m
    ref_block = min(m, 1 << 16)
    row_block = max(1, _BLOCK_ELEMENTS // ref_block)
    out = np.full((n, k), np.inf)
    with torch.no_grad():
        for i0 in range(0, n, row_block):
            rows = slice(i0, min(n, i0 + row_block))
            best = None
            for j0 in range(0, m, ref_block):
                d = space.block(rows, slice(j0, min(m, j0 + ref_block)))
                if best is not None:
                    d = torch.cat([best, d], 1)
                best = torch.topk(d, min(k, d.shape[1]), dim=1, largest=False).values
            out[rows, : best.shape[1]] = best.numpy() / space.n_columns
    return out


def dcr(dataset: pd.DataFrame, reference: pd.DataFrame, kinds: Mapping[str, str]) -> np.ndarray:
    """SDMetrics' DCR of each dataset row to the reference table: (len(dataset),) float64."""
    return closest_distances(dataset, reference, kinds, k=1)[:, 0]


def _summary(d: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(d)), "mean": float(d.mean()), "p05": float(np.quantile(d, 0.05)),
        "min": float(d.min()), "exact_copies": float(np.mean(d == 0)),
    }


def _random_table(real: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """DCRBaselineProtection's random table: per column uniform over the real range (or categories).

    The same draws as SDMetrics' ``_generate_random_data`` with ``_seed = seed``; its missing values are
    drawn from a second generator (SDMetrics uses numpy's global one), so tables with missing values
    match SDMetrics in distribution, and the others value for value.
    """
    values_rng = np.random.default_rng(seed)
    missing_rng = np.random.default_rng([seed, 1])
    columns = {}
    for column in real.columns:
        series = real[column]
        if pd.api.types.is_integer_dtype(series):
            values = values_rng.integers(low=series.min(), high=series.max() + 1, size=n)
        elif pd.api.types.is_float_dtype(series):
            values = values_rng.uniform(low=series.min(), high=series.max(), size=n)
        elif pd.api.types.is_datetime64_any_dtype(series):
            lo, hi = series.min(), series.max()
            values = lo + pd.to_timedelta(values_rng.uniform(0, (hi - lo).total_seconds(), size=n), unit="s")
        else:
            values = values_rng.choice(series.dropna().unique(), size=n)
        missing = missing_rng.random(n) < series.isna().mean()
        columns[column] = pd.Series(values).where(~missing)  # NaN, or NaT for datetimes
    return pd.DataFrame(columns)


def dcr_baseline_protection(
    real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str], *, seed: int = 0,
) -> dict[str, Any]:
    """SDMetrics' DCRBaselineProtection: median DCR of synthetic rows over that of random rows, capped at 1."""
    return _baseline_protection(real, dcr(synthetic, real, kinds), kinds, seed)


def _baseline_protection(real: pd.DataFrame, synthetic_dcr: np.ndarray, kinds: Mapping[str, str], seed: int):
    real = real[list(kinds)]
    random_rows = _random_table(real, len(synthetic_dcr), seed)
    synthetic_median = float(np.median(synthetic_dcr))
    random_median = float(np.median(dcr(random_rows, real, kinds)))
    score = min(synthetic_median / random_median, 1.0) if random_median != 0 else None
    return {"score": score, "median_dcr_synthetic": synthetic_median, "median_dcr_random": random_median}


def dcr_overfitting_protection(
    train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, kinds: Mapping[str, str],
) -> dict[str, Any]:
    """SDMetrics' DCROverfittingProtection: min(2 x the share of synthetic rows not closer to training, 1)."""
    to_train, to_holdout = dcr(synthetic, train, kinds), dcr(synthetic, holdout, kinds)
    closer = float(np.mean(to_train < to_holdout))
    return {"score": min((1.0 - closer) * 2, 1.0), "closer_to_training": closer, "closer_to_holdout": 1.0 - closer}


# ----------------------------------------------------------------------------------------------
# Membership inference (DOMIAS, kernel density ratio)
# ----------------------------------------------------------------------------------------------

_BANDWIDTHS = np.geomspace(0.01, 1.0, 9)  # Gaussian, in units of the training range
_LAMBDAS = np.array([0.001, 0.01, 0.03, 0.1, 0.25, 0.5])  # Aitchison-Aitken: the mass off the row's value
_SELECT_QUERIES, _SELECT_KERNELS = 500, 5000
_MISSING_FLAG = "\0missing"


class _KdeSpace:
    """Rows encoded for the product kernel: numbers scaled by the training range, one-hot categories.

    log K(x, y) = sum over numbers of log N(x - y; 0, h^2) + sum over categorical columns j of
    log(1 - lam) if x_j = y_j else log(lam / (c_j - 1)); the second sum is, with S the number of equal
    columns and W the sum of log(c_j - 1) over them, S (log(1 - lam) - log lam) + J log lam - C + W
    (C: the sum over all J columns), so that two matrix products serve every lam.
    """

    def __init__(self, train: pd.DataFrame, tables: Sequence[pd.DataFrame], kinds: Mapping[str, str]):
        self.kinds = dict(kinds)
        self.scale: dict[str, tuple[float, float, float]] = {}
        self.categories: dict[str, pd.Series] = {}
        for column, kind in kinds.items():
            if kind in NUMERICAL_KINDS:
                x = numeric_values(train[column], kind)
                x = x[~np.isnan(x)]
                lo, hi = (x.min(), x.max()) if len(x) else (0.0, 1.0)
                width = (hi - lo) or 1.0
                self.scale[column] = (lo, width, float(np.median((x - lo) / width)) if len(x) else 0.0)
                if any(t[column].isna().any() for t in tables):
                    self.categories[column + _MISSING_FLAG] = pd.Series([False, True], dtype=object)
            else:
                both = pd.concat([t[column].astype(object) for t in tables], ignore_index=True)
                _, uniques = pd.factorize(both, use_na_sentinel=False)
                if len(uniques) >= 2:  # a column with one value is the same for every row
                    self.categories[column] = pd.Series(np.asarray(uniques, dtype=object))
        sizes = np.array([len(c) for c in self.categories.values()], dtype=np.float64)
        self.p, self.j = len(self.scale), len(self.categories)
        self.log_c_minus_1 = float(np.log(sizes - 1).sum()) if self.j else 0.0
        self.weights = torch.from_numpy(
            np.concatenate([np.full(int(s), np.log(s - 1)) for s in sizes]) if self.j else np.zeros(0)
        ).float()

    def encode(self, table: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """(numbers (n, p) float64, one-hot (n, sum of category counts) float32) of a table."""
        numbers = []
        for column, (lo, width, median) in self.scale.items():
            x = (numeric_values(table[column], self.kinds[column]) - lo) / width
            numbers.append(np.where(np.isnan(x), median, x))
        hots = []
        for name, uniques in self.categories.items():
            if name.endswith(_MISSING_FLAG):
                values = table[name[: -len(_MISSING_FLAG)]].isna().astype(object)
            else:
                values = table[name].astype(object)
            codes, _ = pd.factorize(pd.concat([uniques, values], ignore_index=True), use_na_sentinel=False)
            hots.append(np.eye(len(uniques), dtype=np.float32)[codes[len(uniques):]])
        n = len(table)
        return (torch.from_numpy(np.stack(numbers, 1) if numbers else np.zeros((n, 0))),
                torch.from_numpy(np.hstack(hots) if hots else np.zeros((n, 0), np.float32)))

    def pair_terms(self, x, y) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(squared distances, equal columns S, W) between rows x and y: each (n_x, n_y) float32."""
        (xn, xc), (yn, yc) = x, y
        sq = torch.cdist(xn, yn).square().float() if self.p else torch.zeros(len(xn), len(yn))
        return sq, xc @ yc.T, (xc * self.weights) @ yc.T

    def log_kernel(self, terms, h: float, lam: float) -> torch.Tensor:
        """log K for one (bandwidth, lambda), from pair_terms."""
        sq, same, weighted = terms
        out = sq * (-0.5 / h**2) - self.p * (np.log(h) + 0.5 * np.log(2 * np.pi))
        if self.j:
            out += same * (np.log1p(-lam) - np.log(lam)) + weighted + (self.j * np.log(lam) - self.log_c_minus_1)
        return out


def _logsumexp(x: torch.Tensor) -> torch.Tensor:
    """log sum exp over rows' last axis; torch.logsumexp is several times slower on CPU when -inf occurs."""
    top = x.amax(1, keepdim=True)
    return (x - top).exp_().sum(1).log_() + top.squeeze(1)


def _row_step(n_kernels: int) -> int:
    return max(1, _BLOCK_ELEMENTS // (4 * max(1, n_kernels)))  # a few (step, n_kernels) blocks at once


def _log_density(space: _KdeSpace, x, y, h: float, lam: float, exclude: np.ndarray | None = None) -> np.ndarray:
    """log of the kernel density of rows y at rows x; ``exclude[i]``: the y row left out for x_i."""
    n_x, n_y = len(x[0]), len(y[0])
    out = np.empty(n_x)
    step = _row_step(n_y)
    for i0 in range(0, n_x, step):
        sl = slice(i0, min(n_x, i0 + step))
        logk = space.log_kernel(space.pair_terms((x[0][sl], x[1][sl]), y), h, lam)
        count = float(n_y)
        if exclude is not None:
            logk[torch.arange(logk.shape[0]), torch.from_numpy(exclude[sl])] = -torch.inf
            count -= 1
        out[sl] = _logsumexp(logk).double().numpy() - np.log(count)
    return out


def _select_bandwidth(space: _KdeSpace, queries, kernels, leave_one_out: bool) -> tuple[float, float]:
    """The (bandwidth, lambda) maximizing the mean log-likelihood of the query rows; with
    ``leave_one_out`` query i is kernel row i and is left out of its own estimate. float32: it only
    ranks a grid."""
    n_q, n_k = len(queries[0]), len(kernels[0])
    lambdas = _LAMBDAS if space.j else _LAMBDAS[:1]
    bandwidths = _BANDWIDTHS if space.p else _BANDWIDTHS[:1]
    total = np.zeros((len(bandwidths), len(lambdas)))
    step = max(1, _BLOCK_ELEMENTS // (2 * (len(lambdas) + 2) * max(1, n_k)))
    for i0 in range(0, n_q, step):
        sl = slice(i0, min(n_q, i0 + step))
        sq, same, weighted = space.pair_terms((queries[0][sl], queries[1][sl]), kernels)
        if leave_one_out:  # +inf distance to itself: its kernel vanishes for every bandwidth
            i = torch.arange(sl.start, sl.stop)
            sq[i - sl.start, i] = torch.inf
        categorical = [
            torch.add(weighted, same, alpha=float(np.log1p(-lam) - np.log(lam))) if space.j else None
            for lam in lambdas
        ]
        for a, h in enumerate(bandwidths):
            numeric = sq * float(-0.5 / h**2)
            for b, lam in enumerate(lambdas):
                logk = numeric + categorical[b] if space.j else numeric
                constant = -space.p * (np.log(h) + 0.5 * np.log(2 * np.pi))
                if space.j:
                    constant += space.j * np.log(lam) - space.log_c_minus_1
                total[a, b] += float(_logsumexp(logk).double().sum()) + constant * (sl.stop - sl.start)
    a, b = np.unravel_index(int(np.argmax(total)), total.shape)
    return float(bandwidths[a]), float(lambdas[b])


def _rows(encoded, idx: np.ndarray):
    return encoded[0][idx], encoded[1][idx]


def membership_inference(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    seed: int = 0,
    max_candidates: int = 2000,
) -> dict[str, Any]:
    """DOMIAS membership inference: ROC AUC of log p_syn / p_ref on members vs non-members.

    ``min(len(train), len(holdout), max_candidates)`` members are drawn from ``train`` and as many
    non-members from ``holdout`` (seeded). p_syn is the density of all synthetic rows, p_ref of all
    holdout rows, each holdout candidate left out of its own. The bandwidths (Gaussian, in units of the
    training range, and the categorical kernel's lambda, on a grid) maximize the leave-one-out
    likelihood of up to 500 of the density's own rows against up to 5,000. Also reported: the AUC of
    the distance attack (minus the candidate's DCR to the synthetic rows).
    """
    from sklearn.metrics import roc_auc_score

    check_kinds(kinds, train=train, holdout=holdout, synthetic=synthetic)
    if min(len(train), len(holdout), len(synthetic)) < 2:
        raise DataError("membership inference: train, holdout and synthetic need 2+ rows each")
    rng = np.random.default_rng(seed)
    m = min(len(train), len(holdout), max_candidates)
    members = rng.choice(len(train), m, replace=False)
    non_members = rng.choice(len(holdout), m, replace=False)
    space = _KdeSpace(train, [train, holdout, synthetic], kinds)
    enc_train, enc_hold, enc_syn = space.encode(train), space.encode(holdout), space.encode(synthetic)

    with torch.no_grad():
        select_ref = rng.permutation(len(holdout))[:_SELECT_KERNELS]
        queries = _rows(enc_hold, select_ref[:_SELECT_QUERIES])
        h_ref, lam_ref = _select_bandwidth(space, queries, _rows(enc_hold, select_ref), leave_one_out=True)
        select_syn = rng.permutation(len(synthetic))[:_SELECT_KERNELS]
        h_syn, lam_syn = _select_bandwidth(
            space, _rows(enc_syn, select_syn[:_SELECT_QUERIES]), _rows(enc_syn, select_syn), leave_one_out=True
        )

        cand_m, cand_n = _rows(enc_train, members), _rows(enc_hold, non_members)
        score_m = (_log_density(space, cand_m, enc_syn, h_syn, lam_syn)
                   - _log_density(space, cand_m, enc_hold, h_ref, lam_ref))
        score_n = (_log_density(space, cand_n, enc_syn, h_syn, lam_syn)
                   - _log_density(space, cand_n, enc_hold, h_ref, lam_ref, exclude=non_members))
    labels = np.r_[np.ones(m), np.zeros(m)]
    auc = float(roc_auc_score(labels, np.r_[score_m, score_n]))
    distances = np.r_[dcr(train.iloc[members], synthetic, kinds), dcr(holdout.iloc[non_members], synthetic, kinds)]
    distance_auc = float(roc_auc_score(labels, -distances))
    return {
        "auc": auc, "distance_attack_auc": distance_auc, "members": int(m), "non_members": int(m),
        "method": "DOMIAS: log p_syn - log p_ref, product kernel density (Gaussian x Aitchison-Aitken)",
        "bandwidths": {"synthetic": {"gaussian": h_syn, "categorical": lam_syn},
                       "reference": {"gaussian": h_ref, "categorical": lam_ref}},
    }


# ----------------------------------------------------------------------------------------------
# Attribute inference (CategoricalCAP)
# ----------------------------------------------------------------------------------------------


class _Missing:
    """None's stand-in while coding values: pandas would merge None with NaN, SDMetrics tells them apart."""


def _row_codes(real: pd.DataFrame, synthetic: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One integer per row for the tuple of values in ``columns``, shared by both tables."""
    key = np.zeros(len(real) + len(synthetic), dtype=np.int64)
    stand_in = _Missing()
    for column in columns:
        values = np.concatenate([real[column].to_numpy(dtype=object), synthetic[column].to_numpy(dtype=object)])
        values[np.fromiter((v is None for v in values), dtype=bool, count=len(values))] = stand_in
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        key, _ = pd.factorize(key * (len(uniques) + 1) + codes)
    return key[: len(real)], key[len(real):]


def categorical_cap(
    real: pd.DataFrame, synthetic: pd.DataFrame, known: Sequence[str], sensitive: Sequence[str],
) -> float | None:
    """SDMetrics' CategoricalCAP: 1 - the mean correct attribution probability; None if no key matches.

    A missing value is a value of its own (None and NaN apart), as SDMetrics compares them when the
    NaN is numpy's shared ``np.nan`` object.
    """
    known, sensitive = list(known), list(sensitive)
    if not known or not sensitive:
        raise DataError("CategoricalCAP: known and sensitive need at least one column each")
    for name, table in (("real", real), ("synthetic", synthetic)):
        missing = [c for c in known + sensitive if c not in table.columns]
        if missing:
            raise DataError(f"CategoricalCAP: {name} lacks column(s) {missing}")
    real_key, syn_key = _row_codes(real, synthetic, known)
    real_pair, syn_pair = _row_codes(real, synthetic, known + sensitive)
    key_counts = pd.Series(syn_key).value_counts()
    pair_counts = pd.Series(syn_pair).value_counts()
    matched = np.isin(real_key, key_counts.index)
    if not matched.any():
        return None
    hits = pair_counts.reindex(real_pair[matched], fill_value=0).to_numpy()
    totals = key_counts.reindex(real_key[matched]).to_numpy()
    return float(1.0 - np.mean(hits / totals))


# ----------------------------------------------------------------------------------------------
# Everything
# ----------------------------------------------------------------------------------------------


def privacy(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    holdout: pd.DataFrame | None = None,
    known: Sequence[str] | None = None,
    sensitive: Sequence[str] | None = None,
    seed: int = 0,
    max_candidates: int = 2000,
) -> dict[str, Any]:
    """DCR (with SDMetrics' two scores), NNDR, the membership-inference AUC and CategoricalCAP.

    ``real`` is the generator's training table, ``holdout`` real rows it never saw (without them there
    is no ratio, no overfitting score and no attack: every ``mia_auc`` is None). The DCR ratio is the
    median DCR to training over the median DCR to the holdout, the larger table cut (seeded) to the
    smaller one's size so that table size does not move it.
    """
    check_kinds(kinds, real=real, synthetic=synthetic, holdout=holdout)
    if len(real) < 2:
        raise DataError(f"privacy: the real table has {len(real)} row(s); need 2+ for NNDR")
    nearest = closest_distances(synthetic, real, kinds, k=2)
    d1, d2 = nearest[:, 0], nearest[:, 1]
    nndr = np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), 1.0)
    mia = None
    if holdout is not None:
        mia = membership_inference(real, holdout, synthetic, kinds, seed=seed, max_candidates=max_candidates)
    auc = mia["auc"] if mia else None
    dcr_out: dict[str, Any] = {
        "to_training": _summary(d1), "mia_auc": auc,
        "baseline_protection": {**_baseline_protection(real, d1, kinds, seed), "mia_auc": auc},
        "to_holdout": None, "ratio": None, "overfitting_protection": None,
    }
    if holdout is not None:
        to_holdout = dcr(synthetic, holdout, kinds)
        closer = float(np.mean(d1 < to_holdout))
        dcr_out["to_holdout"] = _summary(to_holdout)
        dcr_out["overfitting_protection"] = {
            "score": min((1.0 - closer) * 2, 1.0), "closer_to_training": closer,
            "closer_to_holdout": 1.0 - closer, "mia_auc": auc,
        }
        rng = np.random.default_rng(seed)
        train_ref, holdout_ref = real, holdout
        if len(real) > len(holdout):
            train_ref = real.iloc[rng.choice(len(real), len(holdout), replace=False)]
        elif len(holdout) > len(real):
            holdout_ref = holdout.iloc[rng.choice(len(holdout), len(real), replace=False)]
        num = np.median(d1) if train_ref is real else np.median(dcr(synthetic, train_ref, kinds))
        den = np.median(to_holdout) if holdout_ref is holdout else np.median(dcr(synthetic, holdout_ref, kinds))
        dcr_out["ratio"] = {
            "value": float(num / den) if den > 0 else None, "reference_rows": len(train_ref), "mia_auc": auc,
        }
    cap = None
    if known or sensitive:
        cap = {"score": categorical_cap(real, synthetic, known or [], sensitive or []),
               "known": list(known or []), "sensitive": list(sensitive or [])}
    return {
        "note": NOTE,
        "membership_inference": mia if mia else {"auc": None, "reason": "no holdout table: no non-members"},
        "dcr": dcr_out,
        "nndr": {**{k: v for k, v in _summary(nndr).items() if k != "exact_copies"}, "mia_auc": auc},
        "cap": cap,
    }
