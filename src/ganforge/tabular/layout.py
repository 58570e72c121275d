"""What the players need to know of a table's encoding: its width, its spans and its discrete blocks.

Built from a fitted :class:`~ganforge.tabular.transformer.TableTransformer` when training, and from
the run's data.json when a run is read back (so sampling never needs the training file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganforge.errors import DataError
from ganforge.tabular.transformer import DiscreteColumn, Span


@dataclass(frozen=True)
class TableLayout:
    """``width`` columns of the encoded row; ``spans`` cover them exactly, in order; ``discrete`` are
    the one-hot blocks of the categorical and boolean columns, whose categories, in this order, are
    the conditions 0..n_conditions-1."""

    width: int
    spans: tuple[Span, ...]
    discrete: tuple[DiscreteColumn, ...]

    def __post_init__(self) -> None:
        pos = 0
        for s in self.spans:
            if s.start != pos or s.width < 1:
                raise DataError(f"the table's encoding: span {s.column!r} starts at {s.start}, expected {pos}")
            pos += s.width
        if pos != self.width:
            raise DataError(f"the table's encoding: spans cover {pos} columns, not its width {self.width}")

    @property
    def n_conditions(self) -> int:
        return sum(c.width for c in self.discrete)

    def condition_offsets(self) -> dict[str, int]:
        """The first condition index of each discrete column."""
        out, k = {}, 0
        for c in self.discrete:
            out[c.column] = k
            k += c.width
        return out

    def condition(self, column: str, value: Any) -> int:
        """The condition index of ``column == value`` (DataError naming the allowed values)."""
        for c, k in zip(self.discrete, self.condition_offsets().values(), strict=True):
            if c.column == column:
                text = str(value)
                if text not in c.categories:
                    raise DataError(f"condition {column}={value!r}: not a category of {column!r}; allowed: "
                                    f"{', '.join(c.categories[:20])}{' ...' if len(c.categories) > 20 else ''}")
                return k + c.categories.index(text)
        names = ", ".join(c.column for c in self.discrete) or "(none)"
        raise DataError(f"condition on {column!r}: not a discrete column of this table; allowed: {names}")

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width,
                "spans": [[s.column, s.kind, s.start, s.width, s.role] for s in self.spans],
                "discrete": [[c.column, c.start, c.width, list(c.categories), list(c.frequencies)]
                             for c in self.discrete]}

    @classmethod
    def from_dict(cls, d: Any, where: str = "the run's data description") -> TableLayout:
        try:
            spans = tuple(Span(str(c), k, int(st), int(w), r) for c, k, st, w, r in d["spans"])
            discrete = tuple(DiscreteColumn(str(c), int(st), int(w), tuple(str(v) for v in cats),
                                            tuple(int(f) for f in freqs))
                             for c, st, w, cats, freqs in d["discrete"])
            return cls(int(d["width"]), spans, discrete)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: the table's encoding is malformed ({exc})") from None
