"""Tables: synthetic tabular data (CTGAN-class games), its metrics, privacy, and Bayesian-network oracles.

Modules:
    table: reading CSV / Parquet files and data frames, column types, the table's schema.
    transformer: the reversible encoding of a table for the players (mode-specific normalization).
    bayesnet: Bayesian networks in BIF (parser, forward sampler, exact likelihood, refit).
    metrics: fidelity, utility (TSTR) and privacy of a synthetic table.
"""

from ganforge.tabular.api import TableSynthesizer

__all__ = ["TableSynthesizer"]
