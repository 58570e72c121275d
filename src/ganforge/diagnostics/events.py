"""Warning events: what went wrong in the game, over which steps, the evidence, and what to try.

An event is one *episode* of a condition (the discriminator overpowering the generator, mode
collapse, modes missed or samples off the modes at the end of a toy-mixture run, oscillation,
non-finite costs): it starts when the condition is confirmed and lasts
while it holds. ``run_dir/events.jsonl`` is append-only; an episode is written when it is
confirmed and again when it ends (or when training stops), so readers keep the newest record of
each episode (``read_events``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ganforge.io import read_jsonl

EVENT_KINDS = ("overpowering", "mode_collapse", "missed_modes", "low_quality", "oscillation", "non_finite")


@dataclass(frozen=True)
class Event:
    """One episode of a problem in the game.

    Attributes:
        kind: one of ``EVENT_KINDS``.
        start_step: first generator step of the episode (the first window that showed it).
        end_step: last step at which the condition was seen.
        message: one line in plain words with the evidence and a concrete suggestion.
        evidence: the numbers behind the message (JSON-able).
        ongoing: the condition still held at ``end_step``, the last step observed.
        source: which signal raised it (``scalars``, ``samples``, ``costs``, ``modes``).
    """

    kind: str
    start_step: int
    end_step: int
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    ongoing: bool = True
    source: str = "scalars"

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity of the episode across its records in events.jsonl."""
        return (self.kind, self.source, self.start_step)

    def line(self) -> str:
        """``[kind] steps a-b: message`` (what ``ganforge diagnose`` prints)."""
        until = "" if self.end_step == self.start_step else f"-{self.end_step:,}"
        return f"[{self.kind}] steps {self.start_step:,}{until}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = json_safe(d["evidence"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(kind=str(d["kind"]), start_step=int(d["start_step"]), end_step=int(d["end_step"]),
                   message=str(d.get("message", "")), evidence=dict(d.get("evidence") or {}),
                   ongoing=bool(d.get("ongoing", True)), source=str(d.get("source", "scalars")))


def json_safe(obj: Any) -> Any:
    """Numbers that JSON can carry: non-finite floats become the strings 'nan', 'inf', '-inf'."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()  # numpy / torch scalars
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def merge_event_records(records: list[dict[str, Any]]) -> list[Event]:
    """The newest record of each episode, ordered by start step then kind."""
    latest: dict[tuple[str, str, int], Event] = {}
    for rec in records:
        try:
            ev = Event.from_dict(rec)
        except (KeyError, TypeError, ValueError):
            continue
        latest[ev.key] = ev
    return sorted(latest.values(), key=lambda e: (e.start_step, e.kind, e.source))


def read_events(run_dir: str | Path) -> list[Event]:
    """The episodes recorded in ``run_dir/events.jsonl`` during training (newest record of each)."""
    from ganforge.rundir import RunDir

    return merge_event_records(read_jsonl(RunDir(run_dir).warnings_path))


__all__ = ["EVENT_KINDS", "Event", "json_safe", "merge_event_records", "read_events", "read_jsonl"]
