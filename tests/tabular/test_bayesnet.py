"""Bayesian-network oracles (issue 13): the BIF reader, forward sampling, exact likelihood, refitting and
SDGym 0.2.0's L_syn / L_test. Every expected number is written out by hand from the tables below (or is
a published fact about a bnlearn network), never taken from the code under test."""

from __future__ import annotations

import gzip
import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
from tabular_shared import shared_data

from ganforge.errors import DataError
from ganforge.tabular.bayesnet import BayesianNetwork, Variable, bayesian_likelihood

SHARED_BN = shared_data("bn")
needs_shared = pytest.mark.skipif(SHARED_BN is None, reason="shared/data/bn is absent (tests only)")

# A tiny network, declared out of topological order, C's parents listed as (B, A): the rows must be read
# in that order. P(A) = (0.3, 0.7); P(B | A); P(C | A, B) as in the dicts below.
TINY_BIF = """\
// a tiny network whose joint is written out by hand in this test
network tiny {
  property author = "test" ;
}
variable C {
  type discrete [ 2 ] { c0, c1 };
}
/* A is the root,
   B depends on A */
variable A {
  type discrete [2] {a0 a1};   // no commas: they are optional in BIF
  property note = "a { brace in a property" ;
}
variable "B" {
  type discrete [ 3 ] { b0, b1, b2 };
}
probability ( C | B, A ) {
  (b0, a0) 0.9, 0.1;
  (b0, a1) 0.4, 0.6;
  (b1, a0) 0.25, 0.75;
  (b1, a1) 0.5, 0.5;
  (b2, a0) 0.0, 1.0;
  (b2, a1) 0.7, 0.3;
}
probability ( A ) {
  table 0.3, 0.7;
}
probability ( B | A ) {
  (a0) 0.2, 0.5, 0.3;
  (a1) 0.6, 0.1, 0.3;
}
"""
P_A = {"a0": 0.3, "a1": 0.7}
P_B = {"a0": {"b0": 0.2, "b1": 0.5, "b2": 0.3}, "a1": {"b0": 0.6, "b1": 0.1, "b2": 0.3}}
P_C = {("a0", "b0"): {"c0": 0.9, "c1": 0.1}, ("a1", "b0"): {"c0": 0.4, "c1": 0.6},
       ("a0", "b1"): {"c0": 0.25, "c1": 0.75}, ("a1", "b1"): {"c0": 0.5, "c1": 0.5},
       ("a0", "b2"): {"c0": 0.0, "c1": 1.0}, ("a1", "b2"): {"c0": 0.7, "c1": 0.3}}


def joint(a: str, b: str, c: str) -> float:
    return P_A[a] * P_B[a][b] * P_C[(a, b)][c]


ALL_ROWS = list(itertools.product(["c0", "c1"], ["a0", "a1"], ["b0", "b1", "b2"]))  # (C, A, B): file order


@pytest.fixture(scope="module")
def tiny() -> BayesianNetwork:
    return BayesianNetwork.from_bif(TINY_BIF)


@pytest.fixture(scope="module")
def tiny_rows(tiny) -> pd.DataFrame:
    return tiny.sample(200_000, seed=7)


# ---------------------------------------------------------------------- reading


def test_tiny_structure(tiny):
    assert tiny.name == "tiny"
    assert tiny.columns == ("C", "A", "B")  # the file's declaration order
    assert [v.name for v in tiny.variables] == ["A", "B", "C"]  # topological
    assert tiny["C"].parents == ("B", "A") and tiny["C"].cpt.shape == (3, 2, 2)
    assert tiny["C"].cpt[2, 1].tolist() == [0.7, 0.3]  # P(C | B=b2, A=a1)
    assert tiny["B"].states == ("b0", "b1", "b2")
    with pytest.raises(ValueError):
        tiny["C"].cpt[0, 0, 0] = 0.5  # tables are read-only


@needs_shared
@pytest.mark.parametrize("name, n_vars, n_edges", [
    # nodes and arcs as listed by the bnlearn Bayesian network repository
    ("asia", 8, 8), ("alarm", 37, 46), ("child", 20, 25), ("insurance", 27, 52),
])
def test_shipped_networks_parse(name, n_vars, n_edges):
    net = BayesianNetwork.from_bif(SHARED_BN / f"{name}.bif.gz")
    assert len(net.variables) == n_vars
    assert sum(len(v.parents) for v in net.variables) == n_edges
    seen: set[str] = set()
    for v in net.variables:
        assert set(v.parents) <= seen  # topological order
        seen.add(v.name)
        np.testing.assert_allclose(v.cpt.sum(axis=-1), 1.0, atol=1e-12)


@needs_shared
def test_asia_tables_as_published():
    net = BayesianNetwork.from_bif(SHARED_BN / "asia.bif.gz")
    assert net.columns == ("asia", "tub", "smoke", "lung", "bronc", "either", "xray", "dysp")
    assert net["dysp"].parents == ("bronc", "either")
    assert net["dysp"].cpt[1, 0].tolist() == [0.7, 0.3]  # (bronc=no, either=yes)
    assert net["either"].cpt[:, :, 0].tolist() == [[1.0, 1.0], [1.0, 0.0]]  # logical or of lung, tub


def test_rounded_rows_are_renormalized():
    net = BayesianNetwork.from_bif("variable X { type discrete [3] {p, q, r}; }\n"
                                   "probability ( X ) { table 0.3333, 0.3333, 0.3333; }")
    np.testing.assert_allclose(net["X"].cpt, [1 / 3, 1 / 3, 1 / 3], rtol=1e-12)


def test_default_row_fills_the_rest():
    net = BayesianNetwork.from_bif("variable X { type discrete [2] {x0, x1}; }\n"
                                   "variable Y { type discrete [2] {y0, y1}; }\n"
                                   "probability ( X ) { table 0.5, 0.5; }\n"
                                   "probability ( Y | X ) { (x1) 0.9, 0.1; default 0.2, 0.8; }")
    assert net["Y"].cpt.tolist() == [[0.2, 0.8], [0.9, 0.1]]


def test_gzipped_file_and_plain_file(tmp_path):
    (tmp_path / "t.bif").write_text(TINY_BIF)
    (tmp_path / "t.bif.gz").write_bytes(gzip.compress(TINY_BIF.encode()))
    for path in (tmp_path / "t.bif", tmp_path / "t.bif.gz", str(tmp_path / "t.bif.gz")):
        net = BayesianNetwork.from_bif(path)
        assert net["C"].cpt.tolist() == BayesianNetwork.from_bif(TINY_BIF)["C"].cpt.tolist()


# ---------------------------------------------------------------------- bad input

BASE = ["variable A { type discrete [ 2 ] { a0, a1 }; }",              # line 1
        "variable B { type discrete [ 2 ] { b0, b1 }; }",              # line 2
        "probability ( A ) { table 0.5, 0.5; }",                       # line 3
        "probability ( B | A ) {",                                     # line 4
        "  (a0) 0.1, 0.9;",                                            # line 5
        "  (a1) 0.6, 0.4;",                                            # line 6
        "}"]                                                           # line 7


def _with(line: int, text: str) -> str:
    lines = list(BASE)
    lines[line - 1] = text
    return "\n".join(lines)


BAD = {
    "unknown state": (_with(5, "  (maybe) 0.1, 0.9;"), 5, "'maybe' is not a state of 'A' (allowed: a0, a1)"),
    "too few probabilities": (_with(6, "  (a1) 1.0;"), 6, "1 probabilities for 'B' given (a1); 'B' has 2 states"),
    "too many probabilities": (_with(3, "probability ( A ) { table 0.5, 0.25, 0.25; }"), 3, "3 probabilities"),
    "cycle": (_with(3, "probability ( A | B ) { (b0) 0.5, 0.5; (b1) 0.5, 0.5; }"), 4,
              "the network has a cycle: B -> A -> B"),
    "undeclared variable": (_with(4, "probability ( B | Q ) {"), 4, "'Q' is not a declared variable (declared: A, B)"),
    "row missing": (_with(6, ""), 4, "has no row for 'B' given (a1)"),
    "row sums off": (_with(5, "  (a0) 0.1, 0.8;"), 5, "sum to 0.9; they must sum to 1"),
    "not a number": (_with(5, "  (a0) 0.1, 9e;"), 5, "'9e' is not a probability"),
    "nan": (_with(5, "  (a0) nan, 0.9;"), 5, "'nan' is not a probability"),
    "negative": (_with(5, "  (a0) -0.1, 1.1;"), 5, "outside [0, 1]"),
    "duplicate row": (_with(6, "  (a0) 0.6, 0.4;"), 6, "a second row for P(B | A) given (a0) (first on line 5)"),
    "wrong number of parent states": (_with(6, "  (a1, a0) 0.6, 0.4;"), 6, "gives 2 parent states; it needs 1"),
    "table with parents": (_with(5, "  table 0.1, 0.9, 0.6, 0.4;"), 5, "'table' in P(B | A), which has parents"),
    "state count": (_with(2, "variable B { type discrete [ 3 ] { b0, b1 }; }"), 2, "declares 3 states and lists 2"),
    "duplicate state": (_with(2, "variable B { type discrete [ 2 ] { b0, b0 }; }"), 2, "lists state 'b0' twice"),
    "not discrete": (_with(2, "variable B { type continuous; }"), 2, "only 'discrete' is allowed"),
    "no probability block": (_with(3, ""), 1, "variable 'A' has no probability block"),
    "declared twice": (_with(2, "variable A { type discrete [ 2 ] { a0, a1 }; }"), 2,
                       "variable 'A' is declared twice (first on line 1)"),
    "second block": (_with(7, "} probability ( A ) { table 0.5, 0.5; }"), 7, "a second probability block for 'A'"),
    "own parent": (_with(4, "probability ( B | B ) {"), 4, "'B' appears twice"),
    "stray text": (_with(7, "} oops"), 7, "expected a block ('network', 'variable' or 'probability'), found 'oops'"),
    "open comment": (_with(6, "  (a1) 0.6, 0.4; /* never closed"), 6, "a /* comment is never closed"),
    "open quote": (_with(2, 'variable "B { type discrete [ 2 ] { b0, b1 }; }'), 2, "a quoted name is not closed"),
    "ends early": (_with(7, ""), 6, "the file ends where"),
    "property never ended": (_with(7, "} network n { property x = 1 }"), 7, "a 'property' line is never ended"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bif_names_the_line(case):
    text, line, phrase = BAD[case]
    with pytest.raises(DataError) as info:
        BayesianNetwork.from_bif(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"BIF text: line {line}: "), message
    assert phrase in message, message


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "broken.bif.gz"
    path.write_bytes(gzip.compress(BAD["unknown state"][0].encode()))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: line 5: 'maybe' is not a state"):
        BayesianNetwork.from_bif(path)
    with pytest.raises(DataError, match=r"missing\.bif: cannot read the BIF file"):
        BayesianNetwork.from_bif(tmp_path / "missing.bif")
    (tmp_path / "latin1.bif").write_bytes(b"variable A {\n type discrete [1] { \xe9 }; }")
    with pytest.raises(DataError, match=r"latin1\.bif: line 2: bytes that are not UTF-8"):
        BayesianNetwork.from_bif(tmp_path / "latin1.bif")


def test_constructor_validates():
    a = Variable("A", ("a0", "a1"), (), np.array([0.5, 0.5]))
    with pytest.raises(DataError, match="rows must sum to 1"):
        BayesianNetwork((Variable("A", ("a0", "a1"), (), np.array([0.5, 0.4])),))
    with pytest.raises(DataError, match="topological order"):
        BayesianNetwork((Variable("B", ("b0",), ("A",), np.ones((2, 1))), a))
    with pytest.raises(DataError, match="has shape"):
        BayesianNetwork((a, Variable("B", ("b0",), ("A",), np.ones((3, 1)))))


# ---------------------------------------------------------------------- likelihood and sampling


def test_log_likelihood_closed_form(tiny):
    frame = pd.DataFrame(ALL_ROWS, columns=["C", "A", "B"])
    expected = [math.log(joint(a, b, c)) if joint(a, b, c) > 0 else -math.inf for c, a, b in ALL_ROWS]
    np.testing.assert_allclose(tiny.log_likelihood(frame), expected, rtol=1e-12)
    assert math.isclose(sum(joint(a, b, c) for c, a, b in ALL_ROWS), 1.0)


def test_unknown_states_score_minus_infinity(tiny):
    frame = pd.DataFrame({"A": ["a0", "a9", "a1", None], "B": ["b0", "b0", "b1", "b1"],
                          "C": ["c0", "c0", "nope", "c1"], "extra": [1, 2, 3, 4]})
    ll = tiny.log_likelihood(frame)
    assert ll[0] == pytest.approx(math.log(0.3 * 0.2 * 0.9))
    assert ll[1:].tolist() == [-math.inf] * 3
    with pytest.raises(DataError, match="the table has no column 'C'"):
        tiny.log_likelihood(frame.drop(columns="C"))


def test_sampling_matches_the_joint(tiny, tiny_rows):
    n = len(tiny_rows)
    assert list(tiny_rows.columns) == ["C", "A", "B"]
    assert list(tiny_rows["B"].cat.categories) == ["b0", "b1", "b2"]
    counts = tiny_rows.value_counts()
    for c, a, b in ALL_ROWS:
        p = joint(a, b, c)
        seen = int(counts.get((c, a, b), 0))
        assert abs(seen - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9, (c, a, b, seen, n * p)


def test_same_seed_same_rows(tiny):
    first, again, other = tiny.sample(500, seed=3), tiny.sample(500, seed=3), tiny.sample(500, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert len(tiny.sample(0, seed=0)) == 0
    with pytest.raises(DataError, match="whole number of rows"):
        tiny.sample(-1, seed=0)


@needs_shared
def test_asia_marginals_match_enumeration():
    net = BayesianNetwork.from_bif(SHARED_BN / "asia.bif.gz")
    states = [net[name].states for name in net.columns]
    everything = pd.DataFrame(list(itertools.product(*states)), columns=list(net.columns))
    p = np.exp(net.log_likelihood(everything))  # all 256 rows
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    exact = {name: everything.loc[everything[name] == "yes"].index for name in net.columns}
    exact = {name: float(p[idx].sum()) for name, idx in exact.items()}
    # closed forms from the tables: P(smoke) = 0.5, P(lung) = 0.5 (0.1 + 0.01), P(tub) = 0.01 0.05 + 0.99 0.01
    assert exact["smoke"] == pytest.approx(0.5) and exact["lung"] == pytest.approx(0.055)
    assert exact["tub"] == pytest.approx(0.0104) and exact["bronc"] == pytest.approx(0.45)
    n = 100_000
    rows = net.sample(n, seed=11)
    for name, q in exact.items():
        seen = int((rows[name] == "yes").sum())
        assert abs(seen - n * q) <= 5 * math.sqrt(n * q * (1 - q)), (name, seen, n * q)


# ---------------------------------------------------------------------- refitting


def test_fit_parameters_recovers_the_tables(tiny, tiny_rows):
    refit = tiny.fit_parameters(tiny_rows)
    assert refit.columns == tiny.columns and [v.parents for v in refit.variables] == [v.parents for v in tiny.variables]
    for var in tiny.variables:
        for config in itertools.product(*(tiny[p].states for p in var.parents)):
            given = np.ones(len(tiny_rows), dtype=bool)
            for parent, state in zip(var.parents, config, strict=True):
                given &= (tiny_rows[parent] == state).to_numpy()
            n_config = int(given.sum())
            idx = tuple(tiny[p].states.index(s) for p, s in zip(var.parents, config, strict=True))
            p = var.cpt[idx]
            sigma = np.sqrt(p * (1 - p) / n_config)
            assert np.all(np.abs(refit[var.name].cpt[idx] - p) <= 5 * sigma + 1e-12), (var.name, config)


def test_fit_parameters_closed_form():
    frame = pd.DataFrame({"C": ["c0", "c1", "c1", "c0"], "A": ["a0", "a0", "a1", "a1"],
                          "B": ["b0", "b0", "b2", "b1"]})
    net = BayesianNetwork.from_bif(TINY_BIF)
    refit = net.fit_parameters(frame)
    assert refit["A"].cpt.tolist() == [0.5, 0.5]
    assert refit["B"].cpt.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]
    c = refit["C"].cpt  # (B, A, C)
    assert c[0, 0].tolist() == [0.5, 0.5] and c[2, 1].tolist() == [0.0, 1.0] and c[1, 1].tolist() == [1.0, 0.0]
    # (b1, a0), (b2, a0): never seen -> uniform over the C states the column holds (both here)
    assert c[1, 0].tolist() == [0.5, 0.5] and c[2, 0].tolist() == [0.5, 0.5]
    only_c1 = frame.assign(C="c1")
    assert net.fit_parameters(only_c1)["C"].cpt[1, 0].tolist() == [0.0, 1.0]  # c0 never occurs: zero
    smoothed = net.fit_parameters(frame, pseudocount=1.0)
    assert smoothed["B"].cpt[0].tolist() == pytest.approx([3 / 5, 1 / 5, 1 / 5])  # (2 + 1) / (2 + 3)
    assert smoothed["C"].cpt[1, 0].tolist() == [0.5, 0.5]  # (0 + 1) / (0 + 2)
    with pytest.raises(DataError, match="column 'B' holds 'b7' \\(row 1, from 0\\), which is not one of its states"):
        net.fit_parameters(frame.assign(B=["b0", "b7", "b2", "b1"]))


# ---------------------------------------------------------------------- SDGym 0.2.0's L_syn and L_test

# X, Z roots; Y | X, Z; I a root with no children.
SDGYM_BIF = """
variable X { type discrete [2] { x0, x1 }; }
variable Z { type discrete [2] { z0, z1 }; }
variable Y { type discrete [3] { y0, y1, y2 }; }
variable I { type discrete [2] { i0, i1 }; }
probability ( X ) { table 0.4, 0.6; }
probability ( Z ) { table 0.5, 0.5; }
probability ( Y | X, Z ) {
  (x0, z0) 0.5, 0.3, 0.2;
  (x1, z0) 0.1, 0.1, 0.8;
  (x0, z1) 0.2, 0.2, 0.6;
  (x1, z1) 0.3, 0.3, 0.4;
}
probability ( I ) { table 0.9, 0.1; }
"""
COLUMNS = ["X", "Z", "Y", "I"]
SYNTHETIC = [("x0", "z0", "y0", "i0"), ("x0", "z0", "y1", "i0"), ("x1", "z1", "y0", "i0"), ("x0", "z0", "y0", "i0")]
TEST = [("x0", "z1", "y1", "i0"), ("x1", "z0", "y0", "i0"), ("x1", "z1", "y1", "i0"),
        ("x0", "z0", "y2", "i0"), ("x0", "z0", "y0", "i1"), ("x9", "z0", "y0", "i0")]
EPS = 1e-8


def _mean_log(probabilities: list[float]) -> float:
    return float(np.mean(np.log(np.asarray(probabilities) + EPS)))


def test_bayesian_likelihood_as_sdgym_computes_it():
    net = BayesianNetwork.from_bif(SDGYM_BIF)
    synthetic, test = pd.DataFrame(SYNTHETIC, columns=COLUMNS), pd.DataFrame(TEST, columns=COLUMNS)
    got = bayesian_likelihood(synthetic, test, net)
    # L_syn: P_true of each synthetic row
    assert got["l_syn"] == pytest.approx(_mean_log([0.4 * 0.5 * 0.5 * 0.9, 0.4 * 0.5 * 0.3 * 0.9,
                                                    0.6 * 0.5 * 0.3 * 0.9, 0.4 * 0.5 * 0.5 * 0.9]), rel=1e-12)
    # refit: P(X) = (3/4, 1/4), P(Z) = (3/4, 1/4), P(I) = (1) over {i0}; Y's keys {y0, y1}:
    # (x0, z0) -> (2/3, 1/3), (x1, z1) -> (1, 0), unseen (x0, z1), (x1, z0) -> uniform (1/2, 1/2)
    expected = [3 / 4 * 1 / 4 * 1 / 2,   # (x0, z1) never seen: uniform over Y's two keys
                1 / 4 * 3 / 4 * 1 / 2,   # (x1, z0) never seen
                0.0,                     # P(y1 | x1, z1) = 0
                EPS,                     # y2 is no key of Y's table: pomegranate raises, SDGym records 1e-8
                0.0,                     # i1 is no key of I, a root without children: probability 0
                EPS]                     # x9 is no key of X, a parent of Y: raises
    assert got["l_test"] == pytest.approx(_mean_log(expected), rel=1e-12)


def test_bayesian_likelihood_with_values_the_network_lacks():
    net = BayesianNetwork.from_bif(SDGYM_BIF)
    synthetic = pd.DataFrame(SYNTHETIC + [("x0", "z0", "y9", "i0")], columns=COLUMNS)
    got = bayesian_likelihood(synthetic, pd.DataFrame(TEST[:2], columns=COLUMNS), net)
    # y9 is no state of Y (which has parents): that row scores 1e-8 against the true network
    assert got["l_syn"] == pytest.approx(_mean_log([0.09, 0.054, 0.081, 0.09, EPS]), rel=1e-12)
    # ...and becomes a key of the refit Y: (x0, z0) -> (2/4, 1/4, 1/4) over (y0, y1, y9), unseen -> 1/3 each
    assert got["l_test"] == pytest.approx(_mean_log([4 / 5 * 1 / 5 * 1 / 3, 1 / 5 * 4 / 5 * 1 / 3]), rel=1e-12)


@needs_shared
def test_identity_on_asia_is_near_the_published_figure():
    """SDGym 0.2.0's real-data row for asia: L_syn -2.23, L_test -2.24 (10,000 rows each)."""
    net = BayesianNetwork.from_bif(SHARED_BN / "asia.bif.gz")
    got = bayesian_likelihood(net.sample(10_000, seed=0), net.sample(10_000, seed=1), net)
    assert got["l_syn"] == pytest.approx(-2.23, abs=0.05) and got["l_test"] == pytest.approx(-2.24, abs=0.05)
