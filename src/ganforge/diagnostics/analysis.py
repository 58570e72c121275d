"""Diagnose a run from its files (metrics.jsonl, samples/, config.yaml), finished or still running.

The same ``Diagnoser`` as during training is fed the same observations in the same order, so
``diagnose(run_dir)`` gives the events that ``DiagnosticsCallback`` wrote to events.jsonl.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.diagnostics.engine import Diagnoser
from ganforge.diagnostics.events import Event
from ganforge.diagnostics.settings import DiagnosticsSettings
from ganforge.diagnostics.signals import SampleReference
from ganforge.errors import GanforgeError


@dataclass
class Diagnosis:
    """Everything the diagnostics found in a run.

    Attributes:
        events: the warning episodes, ordered by start step.
        scalars: one signal record per logged window (equilibrium gap, |grad G| drop, oscillation).
        samples: one signal record per snapshot (diversity, duplicates, mode coverage).
        probabilistic: D's output is a probability (equilibrium at 1/2, value -log 4).
    """

    events: list[Event] = field(default_factory=list)
    scalars: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    probabilistic: bool = True


def settings_of(cfg: Any) -> DiagnosticsSettings:
    """The config's ``diagnostics`` section when it has one, else the defaults."""
    found = getattr(cfg, "diagnostics", None)
    return found if isinstance(found, DiagnosticsSettings) else DiagnosticsSettings()


def reference_for(dataset: Any, settings: DiagnosticsSettings, seed: int = 0) -> SampleReference | None:
    """Real data's statistics for sample-based signals; None when the data cannot give them."""
    try:
        return SampleReference.from_dataset(dataset, settings.n_diversity, seed, settings.duplicate_radius)
    except (NotImplementedError, ValueError, RuntimeError, TypeError):
        return None


def interleave(records: Iterable[dict[str, Any]], snapshots: Iterable[tuple[int, Any]]
               ) -> Iterator[tuple[str, int, Any]]:
    """Observations in the order the training loop makes them: the snapshots taken up to a logged
    step come before that step's scalars; snapshots after the last logged step come last."""
    snaps = sorted(snapshots, key=lambda s: s[0])
    i = 0
    for rec in records:
        step = int(rec.get("step", 0))
        while i < len(snaps) and snaps[i][0] <= step:
            yield "samples", snaps[i][0], snaps[i][1]
            i += 1
        yield "scalars", step, rec
    for st, arr in snaps[i:]:
        yield "samples", st, arr


def feed(engine: Diagnoser, observations: Iterable[tuple[str, int, Any]]) -> Diagnosis:
    out = Diagnosis(probabilistic=engine.probabilistic)
    for kind, step, payload in observations:
        if kind == "scalars":
            out.scalars.append(engine.observe_scalars(step, payload).record)
        else:
            out.samples.append(engine.observe_samples(step, payload).record)
    engine.finish()
    out.events = engine.events
    return out


def _snapshot_samples(run_dir: Path, up_to: int | None = None) -> list[tuple[int, Any]]:
    from ganforge.rundir import RunDir

    return [(step, arrays["samples"]) for step, arrays in RunDir(run_dir).read_snapshots(up_to)
            if "samples" in arrays]


def analyze(run_dir: str | Path, settings: DiagnosticsSettings | None = None, dataset: Any = None) -> Diagnosis:
    """Signals and events of a run, recomputed from its files (``dataset``: the run's data, when the
    caller has already built it)."""
    from ganforge.components import build_dataset
    from ganforge.game import COSTS
    from ganforge.rundir import RunDir

    run = RunDir(run_dir)
    run_dir = run.path
    cfg = run.read_config()
    settings = settings or settings_of(cfg)
    cost = COSTS.build(cfg.game.cost.name, cfg.game.cost.params, where="game.cost")
    try:
        reference = reference_for(dataset if dataset is not None else build_dataset(cfg), settings)
    except GanforgeError:  # the data moved or is unreadable: judge the scalars only
        reference = None
    engine = Diagnoser(settings, cost.probabilistic, cfg.train.steps, reference, cfg.game.cost.name)
    records = run.read_metrics()
    return feed(engine, interleave(records, _snapshot_samples(run_dir)))


def diagnose(run_dir: str | Path, settings: DiagnosticsSettings | None = None) -> list[Event]:
    """The warning events of a finished or running run, from metrics.jsonl and samples/."""
    return analyze(run_dir, settings).events


__all__ = ["Diagnosis", "analyze", "diagnose", "feed", "interleave", "reference_for", "settings_of"]
