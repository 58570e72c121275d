"""``DiagnosticsCallback``: the game's health while it trains.

Every logging window it feeds the window's scalars (and the sample snapshots taken since the last
window, read from ``run_dir/samples/``) to a ``Diagnoser`` and appends:

- ``run_dir/diagnostics.jsonl``: the signals of each window and snapshot;
- ``run_dir/events.jsonl``: warning episodes when they are confirmed, end, or training stops.

Records carry ``logged_at``, the step of the logging window that wrote them. On resume from step k,
records logged after k are dropped and the Diagnoser is rebuilt by replaying metrics.jsonl and the
snapshots up to the last window at or before k, so the files read as if the run had never stopped.
Only rank 0 computes and writes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganforge.diagnostics.analysis import interleave, reference_for, settings_of
from ganforge.diagnostics.engine import Diagnoser, Observation
from ganforge.diagnostics.events import Event, json_safe
from ganforge.diagnostics.settings import DiagnosticsSettings
from ganforge.rundir import RunDir
from ganforge.train.callbacks import Callback


def warn_to_stderr(line: str) -> None:
    """Print a warning on stderr without breaking a tqdm progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def snapshot_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the sample snapshots ``samples/step_XXXXXXXX.npz``, in step order."""
    return RunDir(run_dir).snapshot_files()


def load_samples(path: Path) -> np.ndarray | None:
    """The raw generator's samples of a snapshot file (None when it has none or is unreadable)."""
    arrays = RunDir.read_snapshot(path)
    return None if arrays is None else arrays.get("samples")


class DiagnosticsCallback(Callback):
    """Computes the diagnostics on each logging window; see the module docstring.

    Args:
        run_dir: the run directory (diagnostics.jsonl, events.jsonl; snapshots are read from samples/).
        settings: thresholds; None uses the config's ``diagnostics`` section, else the defaults.
        reference_seed: seed of the real examples drawn once as the diversity reference.
        echo: called with one line when a warning is first raised (e.g. ``warn_to_stderr``); None: silent.
    """

    def __init__(self, run_dir: str | Path, settings: DiagnosticsSettings | None = None, reference_seed: int = 0,
                 echo: Callable[[str], None] | None = None):
        self.run = RunDir(run_dir)
        self.run_dir = self.run.path
        self.settings = settings
        self.reference_seed = reference_seed
        self.echo = echo
        self._announced: set[tuple[str, str, int]] = set()
        self.signals_path = self.run.diagnostics_path
        self.events_path = self.run.warnings_path
        self.diagnoser: Diagnoser | None = None
        self._last_snapshot = -1  # snapshots up to this step have been observed

    # -- set-up and resume --------------------------------------------------------------------------

    def on_fit_start(self, trainer, state):
        if trainer.rank != 0:
            return
        settings = self.settings or settings_of(trainer.cfg)
        if not settings.enabled:
            self.diagnoser = None
            return
        exp = trainer.experiment
        self.diagnoser = Diagnoser(settings, exp.cost.probabilistic, trainer.cfg.train.steps,
                                   reference_for(exp.dataset, settings, self.reference_seed), trainer.cfg.game.cost.name)
        for path in (self.signals_path, self.events_path):
            self.run.truncate_log(path, state.step, key="logged_at")
        self._replay(state.step)

    def _replay(self, step: int) -> None:
        """Rebuild the Diagnoser's state from the files, writing nothing."""
        assert self.diagnoser is not None
        records = [r for r in self.run.read_metrics() if int(r.get("step", 0)) <= step]
        if not records:
            self._last_snapshot = -1
            return
        last = max(int(r.get("step", 0)) for r in records)
        snaps = [(st, a) for st, p in self.run.snapshot_files() if st <= last
                 for a in [load_samples(p)] if a is not None]
        for kind, st, payload in interleave(records, snaps):
            if kind == "scalars":
                self.diagnoser.observe_scalars(st, payload)
            else:
                self.diagnoser.observe_samples(st, payload)
        self._last_snapshot = last

    # -- every logging window -------------------------------------------------------------------------

    def on_log(self, trainer, state, result):
        if trainer.rank != 0 or self.diagnoser is None:
            return
        observations: list[Observation] = []
        for st, path in self.run.snapshot_files():
            if self._last_snapshot < st <= result.step:
                samples = load_samples(path)
                if samples is not None:
                    observations.append(self.diagnoser.observe_samples(st, samples))
        self._last_snapshot = max(self._last_snapshot, result.step)
        observations.append(self.diagnoser.observe_scalars(result.step, result.scalars))
        self._write(observations, result.step)

    def on_fit_end(self, trainer, state):
        if trainer.rank != 0 or self.diagnoser is None:
            return
        self._write([Observation({}, self.diagnoser.finish())], state.step)

    def _write(self, observations: list[Observation], logged_at: int) -> None:
        signals = [{**o.record, "logged_at": logged_at} for o in observations if o.record]
        events = [{**e.to_dict(), "logged_at": logged_at} for o in observations for e in o.events]
        if self.echo is not None:
            for e in (e for o in observations for e in o.events if e.key not in self._announced):
                self._announced.add(e.key)
                self.echo(f"ganforge: warning: {e.line()}")
        for path, recs in ((self.signals_path, signals), (self.events_path, events)):
            self.run.append_log(path, [json_safe(r) for r in recs])

    @property
    def events(self) -> list[Event]:
        """The episodes found so far (empty before training starts)."""
        return [] if self.diagnoser is None else self.diagnoser.events


__all__ = ["DiagnosticsCallback", "load_samples", "snapshot_files", "warn_to_stderr"]
