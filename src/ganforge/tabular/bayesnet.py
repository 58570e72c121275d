"""Bayesian networks with a known likelihood: the oracles of the CTGAN paper's simulated tables.

A discrete Bayesian network is read from a BIF file (the bnlearn repository's format), forward-sampled
into a table, and scores rows by their exact log-likelihood. ``bayesian_likelihood`` computes the two
figures of the CTGAN paper (Xu et al. 2019) exactly as SDGym 0.2.0's ``_evaluate_bayesian_likelihood``
did with pomegranate 0.x:

    L_syn  = mean over synthetic rows of log(P_true(row) + 1e-8)
    L_test = mean over test rows of log(P_refit(row) + 1e-8), where P_refit is the same structure with
             its tables refit by maximum likelihood on the synthetic rows.

The BIF reader is a small tokenizer and parser written here (no pgmpy, nothing evaluated): blocks
``network NAME { ... }``, ``variable NAME { type discrete [ n ] { s1, s2, ... }; }`` and
``probability ( CHILD | P1, P2 ) { (p1_state, p2_state) q1, q2, ...; default ...; }`` (``table q1, ...;``
for a variable without parents), ``property ...;`` lines skipped, ``//`` and ``/* */`` comments, ``,`` and
``|`` ignored between tokens as the format says. Each bad file gives one :class:`DataError` line naming
the file, the line and what is allowed.
"""

from __future__ import annotations

import gzip
import heapq
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ganforge.errors import DataError

SUM_TOLERANCE = 1e-6
"""How far from 1 a row of a conditional table may sum in a BayesianNetwork."""

BIF_SUM_TOLERANCE = 1e-3
"""How far from 1 a BIF file's row may sum: files round their probabilities (child.bif's rows have 8
digits); rows within this are renormalized, rows beyond it are refused."""

SDGYM_EPSILON = 1e-8
"""SDGym adds this to every probability before the log, and uses it as the probability of a row that
made pomegranate raise (a state its table has no key for)."""


@dataclass(frozen=True, eq=False)
class Variable:
    """One discrete variable: its states, its parents and its conditional table.

    ``cpt[i_1, ..., i_m, j]`` is P(variable = states[j] | parents[0] = its state i_1, ...): shape
    (*parent cardinalities, len(states)), each row summing to 1. The array is a read-only copy.
    """

    name: str
    states: tuple[str, ...]
    parents: tuple[str, ...]
    cpt: np.ndarray

    def __post_init__(self) -> None:
        cpt = np.array(self.cpt, dtype=np.float64)  # a copy: the caller's array stays theirs
        cpt.flags.writeable = False
        object.__setattr__(self, "states", tuple(str(s) for s in self.states))
        object.__setattr__(self, "parents", tuple(str(p) for p in self.parents))
        object.__setattr__(self, "cpt", cpt)

    @property
    def cardinality(self) -> int:
        return len(self.states)


@dataclass(frozen=True, eq=False)
class BayesianNetwork:
    """A discrete Bayesian network.

    ``variables`` are in a topological order (every parent before its children); ``columns`` is the
    order of the table's columns (a BIF file's declaration order), the default being the variables'
    order. Constructing one validates it: unique names, known parents, a table of the right shape whose
    rows are probabilities summing to 1 within ``SUM_TOLERANCE``.
    """

    variables: tuple[Variable, ...]
    columns: tuple[str, ...] = ()
    name: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        variables = tuple(self.variables)
        object.__setattr__(self, "variables", variables)
        index: dict[str, int] = {}
        for i, var in enumerate(variables):
            if var.name in index:
                raise DataError(f"Bayesian network: variable {var.name!r} is defined twice; names must be unique")
            if len(var.states) == 0 or len(set(var.states)) != len(var.states):
                raise DataError(f"Bayesian network: variable {var.name!r} has states {list(var.states)}; "
                                "it needs at least one, all distinct")
            if len(set(var.parents)) != len(var.parents):
                raise DataError(f"Bayesian network: variable {var.name!r} lists a parent twice: {list(var.parents)}")
            for p in var.parents:
                if p not in index:
                    where = "is not a variable" if all(v.name != p for v in variables) else "comes after it"
                    raise DataError(f"Bayesian network: parent {p!r} of {var.name!r} {where}; variables must be "
                                    "in a topological order (parents first)")
            shape = tuple(variables[index[p]].cardinality for p in var.parents) + (var.cardinality,)
            if var.cpt.shape != shape:
                raise DataError(f"Bayesian network: the table of {var.name!r} has shape {var.cpt.shape}; "
                                f"its parents and states need {shape}")
            if not np.all(np.isfinite(var.cpt)) or np.any(var.cpt < 0):
                raise DataError(f"Bayesian network: the table of {var.name!r} holds negative or non-finite "
                                "entries; probabilities must be in [0, 1]")
            sums = var.cpt.sum(axis=-1)
            if np.any(np.abs(sums - 1.0) > SUM_TOLERANCE):
                worst = float(sums.flat[int(np.argmax(np.abs(sums - 1.0)))])
                raise DataError(f"Bayesian network: a row of the table of {var.name!r} sums to {worst!r}; rows must "
                                f"sum to 1 within {SUM_TOLERANCE}")
            index[var.name] = i
        columns = tuple(self.columns) if self.columns else tuple(v.name for v in variables)
        if sorted(columns) != sorted(index):
            raise DataError(f"Bayesian network: columns {list(columns)} must name each variable once "
                            f"({sorted(index)})")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "_index", index)

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_bif(cls, source: str | Path) -> BayesianNetwork:
        """Read a network from a BIF file (``.bif`` or gzipped, found by its magic bytes) or from BIF text.

        A ``Path`` is always a file; a ``str`` is BIF text when it holds a ``{`` and a file path otherwise.
        Rows that sum to within ``BIF_SUM_TOLERANCE`` of 1 are renormalized (files round); anything else
        wrong raises one DataError line naming the file and line.
        """
        if isinstance(source, Path) or "{" not in str(source):
            path = Path(source)
            where = str(path)
            try:
                raw = path.read_bytes()
            except OSError as e:
                raise DataError(f"{where}: cannot read the BIF file ({e.strerror or e}); give a .bif or .bif.gz "
                                "file or the BIF text itself") from None
            if raw[:2] == b"\x1f\x8b":
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError) as e:
                    raise DataError(f"{where}: the gzip stream is damaged ({e}); give an intact .bif.gz") from None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                line = raw[: e.start].count(b"\n") + 1
                raise DataError(f"{where}: line {line}: bytes that are not UTF-8 text; a BIF file is text") from None
        else:
            where, text = "BIF text", str(source)
        return _BifParser(text, where).network()

    # ------------------------------------------------------------------ queries

    def __getitem__(self, name: str) -> Variable:
        try:
            return self.variables[self._index[name]]
        except KeyError:
            raise KeyError(f"{name!r} is not a variable of this network ({', '.join(self.columns)})") from None

    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        edges = sum(len(v.parents) for v in self.variables)
        return f"BayesianNetwork({self.name!r}, {len(self.variables)} variables, {edges} edges)"

    # ------------------------------------------------------------------ sampling

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` rows drawn by forward (ancestral) sampling, the same rows for the same seed.

        Columns in ``self.columns`` order; each is categorical with the variable's states, in their order,
        as categories. One uniform draw per row and variable, in topological order, from
        ``numpy.random.Generator(PCG64(seed))``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"Bayesian network sample: n={n!r}; give a whole number of rows >= 0")
        rng = np.random.Generator(np.random.PCG64(seed))
        codes = np.empty((len(self.variables), int(n)), dtype=np.int64)  # (d, n)
        for i, var in enumerate(self.variables):
            table = var.cpt.reshape(-1, var.cardinality)  # (parent configurations, k)
            cum = np.cumsum(table, axis=1)
            cum[:, -1] = np.inf  # rounding never lets a draw fall past the last state
            row = self._config_index(var, codes)  # (n,)
            u = rng.random(int(n))
            # the state is the number of cumulative bounds at or below u (zero-probability states are skipped)
            codes[i] = (u[:, None] >= cum[row]).sum(axis=1)
        return pd.DataFrame({
            name: pd.Categorical.from_codes(codes[self._index[name]], categories=list(self[name].states))
            for name in self.columns
        })

    def _config_index(self, var: Variable, codes: np.ndarray) -> np.ndarray:
        """Flat index of each row's parent configuration into ``var.cpt.reshape(-1, k)``.

        codes: (d, n) state codes in ``self.variables`` order, all valid for ``var``'s parents.
        """
        n = codes.shape[1]
        row = np.zeros(n, dtype=np.int64)
        for p in var.parents:
            j = self._index[p]
            row = row * self.variables[j].cardinality + codes[j]
        return row

    # ------------------------------------------------------------------ likelihood

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """State codes of a table's rows: (d, n), in ``self.variables`` order.

        -1 where a cell is missing or is not one of the variable's state names (cells are compared as
        strings, so 1 matches a state named "1"). Columns are found by name; other columns are ignored.
        """
        missing = [name for name in self.columns if name not in frame.columns]
        if missing:
            raise DataError(f"Bayesian network: the table has no column {missing[0]!r}; it needs one per variable "
                            f"({', '.join(self.columns)})")
        codes = np.empty((len(self.variables), len(frame)), dtype=np.int64)
        for i, var in enumerate(self.variables):
            codes[i] = pd.Categorical(_state_names(frame[var.name]), categories=list(var.states)).codes
        return codes

    def log_likelihood(self, frame: pd.DataFrame) -> np.ndarray:
        """Exact natural-log probability of each row: (n,).

        A row with a missing cell or a value that is not a state of its variable gets ``-inf`` (it has
        probability 0 under the network), as does a row the network gives probability 0.
        """
        return self._log_likelihood_codes(self.encode(frame))

    def _log_likelihood_codes(self, codes: np.ndarray) -> np.ndarray:
        n = codes.shape[1]
        valid = np.all(codes >= 0, axis=0)
        safe = np.where(valid[None, :], codes, 0)
        logp = np.zeros(n)
        with np.errstate(divide="ignore"):
            for i, var in enumerate(self.variables):
                table = var.cpt.reshape(-1, var.cardinality)
                logp += np.log(table[self._config_index(var, safe), safe[i]])
        logp[~valid] = -np.inf
        return logp

    # ------------------------------------------------------------------ refitting

    def fit_parameters(self, frame: pd.DataFrame, pseudocount: float = 0.0) -> BayesianNetwork:
        """The same structure and states with every table refit on ``frame``'s rows by counting.

        P(x | parents = c) = (n(c, x) + a) / (n(c) + a k), with k the variable's number of states and a the
        pseudocount. A parent configuration that never occurs in ``frame`` (n(c) = 0, a = 0) gets a uniform
        row over the variable's states that occur in its column of ``frame`` (zero for the others): what
        pomegranate 0.x's ``ConditionalProbabilityTable.from_samples`` (used by SDGym 0.2.0 through
        ``BayesianNetwork.from_structure``) does, since its keys are the values seen in the data. A row with
        a missing cell is left out of the counts of the tables that cell belongs to (pomegranate skips them
        too). A value that is not a state of its variable is refused.
        """
        if not (isinstance(pseudocount, (int, float)) and math.isfinite(pseudocount) and pseudocount >= 0):
            raise DataError(f"Bayesian network fit: pseudocount={pseudocount!r}; give a finite number >= 0")
        if len(frame) == 0:
            raise DataError("Bayesian network fit: the table has no rows; give at least one")
        codes = self.encode(frame)
        for i, var in enumerate(self.variables):
            names = _state_names(frame[var.name])
            bad = (codes[i] < 0) & pd.notna(names)
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(f"Bayesian network fit: column {var.name!r} holds {names[row]!r} (row {row}, from 0), "
                                f"which is not one of its states ({', '.join(var.states)})")
        refit = []
        for i, var in enumerate(self.variables):
            k = var.cardinality
            family = [self._index[p] for p in var.parents] + [i]
            rows = np.all(codes[family] >= 0, axis=0)
            flat = self._config_index(var, np.where(rows[None, :], codes, 0)) * k + codes[i]
            counts = np.bincount(flat[rows], minlength=var.cpt.size).astype(np.float64).reshape(-1, k)
            totals = counts.sum(axis=1, keepdims=True)
            seen_states = np.bincount(codes[i][codes[i] >= 0], minlength=k) > 0
            if not seen_states.any():  # the column is all missing: nothing says which states exist
                seen_states[:] = True
            uniform = seen_states / seen_states.sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                table = (counts + pseudocount) / (totals + pseudocount * k)
            table = np.where(totals + pseudocount * k > 0, table, uniform[None, :])
            refit.append(Variable(var.name, var.states, var.parents, table.reshape(var.cpt.shape)))
        return BayesianNetwork(tuple(refit), self.columns, self.name)

    def _with_states(self, states: dict[str, tuple[str, ...]]) -> BayesianNetwork:
        """The same structure over other state sets (tables uniform): what a refit starts from."""
        variables = []
        for var in self.variables:
            shape = tuple(len(states[p]) for p in var.parents) + (len(states[var.name]),)
            variables.append(Variable(var.name, states[var.name], var.parents, np.full(shape, 1.0 / shape[-1])))
        return BayesianNetwork(tuple(variables), self.columns, self.name)


# ---------------------------------------------------------------------- SDGym 0.2.0's figures


def _state_names(column: pd.Series) -> np.ndarray:
    """A column's cells as strings (object array), None where a cell is missing."""
    values = column.to_numpy(dtype=object)
    names = values.astype(str).astype(object)
    names[pd.isna(values)] = None
    return names


def _sdgym_probability(network: BayesianNetwork, frame: pd.DataFrame) -> np.ndarray:
    """P(row) as SDGym 0.2.0 collected it from pomegranate 0.x: (n,).

    pomegranate raises for a value its conditional table has no key for (KeyError in the table of a
    variable with parents, the value being the variable's or one of its parents'): SDGym catches that and
    records 1e-8. A variable without parents gives probability 0 to a value it has no key for, without
    raising. Otherwise the row's probability under the network.
    """
    codes = network.encode(frame)
    index = {v.name: i for i, v in enumerate(network.variables)}
    raised = np.zeros(len(frame), dtype=bool)
    for i, var in enumerate(network.variables):
        if var.parents:
            family = [index[p] for p in var.parents] + [i]
            raised |= np.any(codes[family] < 0, axis=0)
    prob = np.exp(network._log_likelihood_codes(codes))  # 0 where any code is unknown
    prob[raised] = SDGYM_EPSILON
    return prob


def bayesian_likelihood(synthetic: pd.DataFrame, test: pd.DataFrame, network: BayesianNetwork) -> dict[str, float]:
    """The CTGAN paper's L_syn and L_test (natural log, per row), computed as SDGym 0.2.0 does.

    ``l_syn`` = mean log(P_true(synthetic row) + 1e-8): how likely the synthetic rows are under the true
    network. ``l_test`` = mean log(P_refit(test row) + 1e-8), where P_refit keeps the true structure and
    refits every table by maximum likelihood on the synthetic rows, like pomegranate 0.x's
    ``BayesianNetwork.from_structure``: each variable's states are the values its synthetic column holds;
    a parent configuration the synthetic rows never show gets a uniform row over those states; a test row
    with a value the synthetic rows never showed scores 1e-8 when that value belongs to a variable with
    parents or to a parent, and 0 when it belongs to a variable with neither parents nor children (the
    same rule scores unknown values against the true network for l_syn). A missing cell counts as a value
    no table knows (pomegranate would instead have left that factor out of the product).
    """
    if len(synthetic) == 0 or len(test) == 0:
        raise DataError(f"bayesian_likelihood: {len(synthetic)} synthetic rows and {len(test)} test rows; "
                        "both need at least one")
    p_syn = _sdgym_probability(network, synthetic)
    network.encode(test)  # the test table's columns, checked before the refit
    states = {}
    for var in network.variables:
        values = {v for v in _state_names(synthetic[var.name]) if v is not None}
        extra = sorted(values.difference(var.states))
        states[var.name] = tuple(s for s in var.states if s in values) + tuple(extra)
        if not states[var.name]:
            raise DataError(f"bayesian_likelihood: synthetic column {var.name!r} holds no values; it needs at least one")
    refit = network._with_states(states).fit_parameters(synthetic)
    p_test = _sdgym_probability(refit, test)
    return {
        "l_syn": float(np.mean(np.log(p_syn + SDGYM_EPSILON))),
        "l_test": float(np.mean(np.log(p_test + SDGYM_EPSILON))),
    }


# ---------------------------------------------------------------------- BIF reader

_SCAN = re.compile(r"""
    (?P<newline>\n)
  | (?P<space>(?:[^\S\n]|[,|])+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<open_comment>/\*)
  | (?P<symbol>[{}\[\]();])
  | (?P<string>"[^"\n]*")
  | (?P<open_string>")
  | (?P<word>(?:[^\s{}\[\]();,|"/]|/(?![/*]))+)
""", re.VERBOSE | re.DOTALL)

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    kind: str  # "symbol", "word" (a quoted string is a word whose quotes are gone)


def _tokenize(text: str, where: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _SCAN.match(text, pos)
        if m is None:  # every character is covered by the pattern; kept as a guard
            raise DataError(f"{where}: line {line}: unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind == "open_comment":
            raise DataError(f"{where}: line {line}: a /* comment is never closed; close it with */")
        if kind == "open_string":
            raise DataError(f"{where}: line {line}: a quoted name is not closed on its line; close it with \"")
        if kind == "symbol":
            tokens.append(_Token(m.group(), line, "symbol"))
        elif kind == "word":
            tokens.append(_Token(m.group(), line, "word"))
        elif kind == "string":
            tokens.append(_Token(m.group()[1:-1], line, "word"))
        line += m.group().count("\n")
        pos = m.end()
    return tokens


@dataclass
class _VariableDecl:
    name: str
    states: tuple[str, ...]
    line: int


@dataclass
class _ProbabilityDecl:
    child: _Token
    parents: list[_Token]
    line: int
    table: tuple[list[float], int] | None = None  # (values, line)
    default: tuple[list[float], int] | None = None
    rows: list[tuple[list[_Token], list[float], int]] = field(default_factory=list)


class _BifParser:
    """Recursive descent over the tokens of one BIF text; every error names ``where`` and a line."""

    def __init__(self, text: str, where: str):
        self.where = where
        self.tokens = _tokenize(text, where)
        self.pos = 0
        self.name = ""
        self.variables: list[_VariableDecl] = []
        self.probabilities: list[_ProbabilityDecl] = []

    # -- token helpers

    def fail(self, line: int, message: str) -> DataError:
        return DataError(f"{self.where}: line {line}: {message}")

    def last_line(self) -> int:
        return self.tokens[-1].line if self.tokens else 1

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, expecting: str) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.fail(self.last_line(), f"the file ends where {expecting} was expected")
        self.pos += 1
        return tok

    def expect_symbol(self, symbol: str, context: str) -> _Token:
        tok = self.next(f"{symbol!r} ({context})")
        if tok.kind != "symbol" or tok.text != symbol:
            raise self.fail(tok.line, f"expected {symbol!r} ({context}), found {tok.text!r}")
        return tok

    def at_symbol(self, symbol: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "symbol" and tok.text == symbol

    def at_keyword(self, keyword: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.lower() == keyword

    def name_token(self, context: str) -> _Token:
        tok = self.next(f"a name ({context})")
        if tok.kind != "word":
            raise self.fail(tok.line, f"expected a name ({context}), found {tok.text!r}")
        return tok

    def skip_property(self) -> None:
        start = self.next("'property'")
        while not self.at_symbol(";"):
            if self.peek() is None:
                raise self.fail(start.line, "a 'property' line is never ended with ';'")
            self.pos += 1
        self.pos += 1

    def numbers(self, context: str) -> list[float]:
        """Probabilities up to the ';' that ends them (consumed)."""
        values = []
        while True:
            tok = self.next(f"probabilities or ';' ({context})")
            if tok.kind == "symbol" and tok.text == ";":
                break
            if tok.kind != "word" or not _NUMBER.fullmatch(tok.text):
                raise self.fail(tok.line, f"{tok.text!r} is not a probability ({context}); give decimal numbers "
                                          "ended by ';'")
            value = float(tok.text)
            if not (0.0 <= value <= 1.0 + BIF_SUM_TOLERANCE):
                raise self.fail(tok.line, f"probability {tok.text} ({context}) is outside [0, 1]")
            values.append(min(value, 1.0))
        if not values:
            raise self.fail(tok.line, f"no probabilities before ';' ({context})")
        return values

    # -- blocks

    def parse(self) -> None:
        while (tok := self.peek()) is not None:
            if tok.kind == "symbol" and tok.text == ";":  # a stray ';' after a block
                self.pos += 1
                continue
            keyword = tok.text.lower() if tok.kind == "word" else ""
            if keyword == "network":
                self.network_block()
            elif keyword == "variable":
                self.variable_block()
            elif keyword == "probability":
                self.probability_block()
            else:
                raise self.fail(tok.line, f"expected a block ('network', 'variable' or 'probability'), "
                                          f"found {tok.text!r}")

    def network_block(self) -> None:
        self.pos += 1
        if not self.at_symbol("{"):
            self.name = self.name_token("the network's name").text
        self.expect_symbol("{", "opening the network block")
        while not self.at_symbol("}"):
            tok = self.next("'property' or '}' (network block)")
            if tok.kind == "word" and tok.text.lower() == "property":
                self.pos -= 1
                self.skip_property()
            else:
                raise self.fail(tok.line, f"expected 'property' or '}}' in the network block, found {tok.text!r}")
        self.pos += 1

    def variable_block(self) -> None:
        start = self.next("'variable'")
        name = self.name_token("the variable's name")
        self.expect_symbol("{", f"opening variable {name.text!r}")
        states: tuple[str, ...] | None = None
        while not self.at_symbol("}"):
            tok = self.next(f"'type', 'property' or '}}' (variable {name.text!r})")
            word = tok.text.lower() if tok.kind == "word" else ""
            if word == "property":
                self.pos -= 1
                self.skip_property()
            elif word == "type":
                if states is not None:
                    raise self.fail(tok.line, f"variable {name.text!r} has a second 'type'; give one")
                states = self.type_declaration(name.text)
            else:
                raise self.fail(tok.line, f"expected 'type', 'property' or '}}' in variable {name.text!r}, "
                                          f"found {tok.text!r}")
        self.pos += 1
        if states is None:
            raise self.fail(start.line, f"variable {name.text!r} has no 'type discrete [ n ] {{ ... }};'")
        self.variables.append(_VariableDecl(name.text, states, name.line))

    def type_declaration(self, variable: str) -> tuple[str, ...]:
        kind = self.name_token(f"the type of {variable!r}")
        if kind.text.lower() != "discrete":
            raise self.fail(kind.line, f"variable {variable!r} is of type {kind.text!r}; only 'discrete' is allowed")
        self.expect_symbol("[", f"the number of states of {variable!r}")
        count = self.next(f"the number of states of {variable!r}")
        if count.kind != "word" or not count.text.isdigit() or int(count.text) < 1:
            raise self.fail(count.line, f"the number of states of {variable!r} is {count.text!r}; give a whole "
                                        "number >= 1")
        self.expect_symbol("]", f"after the number of states of {variable!r}")
        self.expect_symbol("{", f"opening the states of {variable!r}")
        states: list[_Token] = []
        while not self.at_symbol("}"):
            states.append(self.name_token(f"a state of {variable!r}"))
        close = self.expect_symbol("}", f"closing the states of {variable!r}")
        if self.at_symbol(";"):
            self.pos += 1
        if len(states) != int(count.text):
            raise self.fail(close.line, f"variable {variable!r} declares {count.text} states and lists "
                                        f"{len(states)}; the two must agree")
        seen: set[str] = set()
        for s in states:
            if s.text in seen:
                raise self.fail(s.line, f"variable {variable!r} lists state {s.text!r} twice; states must be distinct")
            seen.add(s.text)
        return tuple(s.text for s in states)

    def probability_block(self) -> None:
        start = self.next("'probability'")
        self.expect_symbol("(", "opening the probability's variables")
        names: list[_Token] = []
        while not self.at_symbol(")"):
            names.append(self.name_token("a variable of the probability"))
        self.pos += 1
        if not names:
            raise self.fail(start.line, "'probability ( )' names no variable; give 'probability ( child | parents )'")
        decl = _ProbabilityDecl(names[0], names[1:], start.line)
        context = f"P({names[0].text} | ...)" if len(names) > 1 else f"P({names[0].text})"
        self.expect_symbol("{", f"opening {context}")
        while not self.at_symbol("}"):
            tok = self.next(f"a row, 'table', 'default', 'property' or '}}' ({context})")
            word = tok.text.lower() if tok.kind == "word" else ""
            if word == "property":
                self.pos -= 1
                self.skip_property()
            elif word in ("table", "default"):
                if getattr(decl, word) is not None:
                    raise self.fail(tok.line, f"{context} has a second '{word}'; give one")
                setattr(decl, word, (self.numbers(f"{word} of {context}"), tok.line))
            elif tok.kind == "symbol" and tok.text == "(":
                config: list[_Token] = []
                while not self.at_symbol(")"):
                    config.append(self.name_token(f"a parent state in a row of {context}"))
                self.pos += 1
                decl.rows.append((config, self.numbers(f"a row of {context}"), tok.line))
            else:
                raise self.fail(tok.line, f"expected a row '(states) p1, p2, ...;', 'table', 'default', 'property' "
                                          f"or '}}' in {context}, found {tok.text!r}")
        self.pos += 1
        self.probabilities.append(decl)

    # -- assembling

    def network(self) -> BayesianNetwork:
        self.parse()
        if not self.variables:
            raise self.fail(self.last_line(), "no variable is declared; a network needs 'variable' blocks")
        declared: dict[str, _VariableDecl] = {}
        for v in self.variables:
            if v.name in declared:
                raise self.fail(v.line, f"variable {v.name!r} is declared twice (first on line "
                                        f"{declared[v.name].line}); names must be unique")
            declared[v.name] = v
        names = ", ".join(declared)

        def resolve(tok: _Token) -> _VariableDecl:
            if tok.text not in declared:
                raise self.fail(tok.line, f"{tok.text!r} is not a declared variable (declared: {names})")
            return declared[tok.text]

        blocks: dict[str, _ProbabilityDecl] = {}
        for decl in self.probabilities:
            child = resolve(decl.child)
            if child.name in blocks:
                raise self.fail(decl.line, f"a second probability block for {child.name!r} (first on line "
                                           f"{blocks[child.name].line}); give one per variable")
            seen = {child.name}
            for p in decl.parents:
                resolve(p)
                if p.text in seen:
                    raise self.fail(p.line, f"{p.text!r} appears twice among P({child.name} | ...)'s variables; "
                                            "a variable cannot be its own parent and parents are listed once")
                seen.add(p.text)
            blocks[child.name] = decl
        for v in self.variables:
            if v.name not in blocks:
                raise self.fail(v.line, f"variable {v.name!r} has no probability block; each variable needs "
                                        f"'probability ( {v.name} ... ) {{ ... }}'")

        order = self.topological_order(blocks)
        built = [self.table(declared[name], blocks[name], declared) for name in order]
        return BayesianNetwork(tuple(built), tuple(v.name for v in self.variables), self.name)

    def topological_order(self, blocks: dict[str, _ProbabilityDecl]) -> list[str]:
        """Kahn's algorithm taking, among the ready variables, the first declared: the file's order when
        that order is already topological."""
        position = {v.name: i for i, v in enumerate(self.variables)}
        parents = {name: [p.text for p in blocks[name].parents] for name in position}
        children: dict[str, list[str]] = {name: [] for name in position}
        for name, ps in parents.items():
            for p in ps:
                children[p].append(name)
        waiting = {name: len(ps) for name, ps in parents.items()}
        ready = [position[name] for name, w in waiting.items() if w == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = self.variables[heapq.heappop(ready)].name
            order.append(name)
            for c in children[name]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    heapq.heappush(ready, position[c])
        if len(order) < len(position):
            left = {name for name in position if name not in set(order)}
            cycle = self.find_cycle(left, parents)
            raise self.fail(blocks[cycle[0]].line, "the network has a cycle: " + " -> ".join(cycle + [cycle[0]])
                            + "; a Bayesian network's parent links must form a DAG")
        return order

    @staticmethod
    def find_cycle(left: set[str], parents: dict[str, list[str]]) -> list[str]:
        """A directed cycle among ``left`` (each of which still waits on a parent in ``left``), parent first."""
        name = min(left)
        path: list[str] = []
        on_path: dict[str, int] = {}
        while name not in on_path:
            on_path[name] = len(path)
            path.append(name)
            name = next(p for p in parents[name] if p in left)
        return list(reversed(path[on_path[name]:]))

    def table(self, var: _VariableDecl, decl: _ProbabilityDecl, declared: dict[str, _VariableDecl]) -> Variable:
        parents = [declared[p.text] for p in decl.parents]
        k = len(var.states)
        context = f"P({var.name} | {', '.join(p.name for p in parents)})" if parents else f"P({var.name})"
        shape = tuple(len(p.states) for p in parents) + (k,)
        cpt = np.full(shape, np.nan)
        filled = np.zeros(shape[:-1], dtype=bool)
        lines = np.zeros(shape[:-1], dtype=np.int64)

        def checked(values: list[float], line: int, what: str) -> np.ndarray:
            if len(values) != k:
                raise self.fail(line, f"{len(values)} probabilities {what}; {var.name!r} has {k} states "
                                      f"({', '.join(var.states)})")
            row = np.asarray(values)
            total = float(row.sum())
            if abs(total - 1.0) > BIF_SUM_TOLERANCE:
                raise self.fail(line, f"the probabilities {what} sum to {total:.6g}; they must sum to 1 (within "
                                      f"{BIF_SUM_TOLERANCE})")
            return row / total

        if decl.table is not None:
            values, line = decl.table
            if parents:
                raise self.fail(line, f"'table' in {context}, which has parents; write one row "
                                      "'(parent states) p1, p2, ...;' per parent configuration")
            cpt[()] = checked(values, line, f"in the table of {context}")
            filled[()] = True
        for config, values, line in decl.rows:
            if len(config) != len(parents):
                raise self.fail(line, f"a row of {context} gives {len(config)} parent states; it needs "
                                      f"{len(parents)} (one per parent, in the order {', '.join(p.name for p in parents) or 'none'})")
            idx = []
            for tok, parent in zip(config, parents, strict=True):
                if tok.text not in parent.states:
                    raise self.fail(tok.line, f"{tok.text!r} is not a state of {parent.name!r} (allowed: "
                                              f"{', '.join(parent.states)})")
                idx.append(parent.states.index(tok.text))
            key = tuple(idx)
            if filled[key]:
                raise self.fail(line, f"a second row for {context} given ({', '.join(t.text for t in config)}) "
                                      f"(first on line {lines[key]}); give one row per parent configuration")
            cpt[key] = checked(values, line, f"for {var.name!r} given ({', '.join(t.text for t in config)})")
            filled[key] = True
            lines[key] = line
        if decl.default is not None:
            values, line = decl.default
            row = checked(values, line, f"in the default of {context}")
            cpt[~filled] = row
            filled[...] = True
        if not filled.all():
            config = np.unravel_index(int(np.flatnonzero(~filled.ravel())[0]), filled.shape)
            names = ", ".join(p.states[i] for p, i in zip(parents, config, strict=True))
            count = int((~filled).sum())
            more = f" (and {count - 1} more)" if count > 1 else ""
            what = f"row for {var.name!r} given ({names}){more}" if parents else f"table for {var.name!r}"
            raise self.fail(decl.line, f"{context} has no {what}; every parent configuration needs a row "
                                       "(or give a 'default')")
        return Variable(var.name, var.states, tuple(p.name for p in parents), cpt)
