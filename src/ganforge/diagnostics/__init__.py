"""Numbers about the game: equilibrium, discriminator overpowering, mode collapse, the fit of a known
mixture (missed modes, samples off the modes), oscillation.

- signals.py   pure functions of logged scalars and sample arrays (equilibrium gap, periodicity,
               diversity, duplicates, mode coverage, missed modes)
- engine.py    ``Diagnoser``: the detectors, turning a stream of observations into warning events
- events.py    ``Event`` (kind, step range, evidence, message) and events.jsonl reading
- callback.py  ``DiagnosticsCallback``: the diagnostics during training
- analysis.py  ``diagnose(run_dir)``: the same, recomputed from a run's files
- equilibrium.py           is a point of a differentiable game an equilibrium? gradient norms, each
                           player's own-Hessian extremes, the game Jacobian's eigenvalues, the path angle
- equilibrium_run.py       the same for a game's players on a fixed batch (``ganforge analyze``)
- equilibrium_callback.py  ``PeriodicAnalysis``: the analysis during training (``train.analyze_every``)

The callback and ``diagnose`` are imported on first use, so that ``ganforge.config`` can import
``DiagnosticsSettings`` without an import cycle.
"""

from typing import Any

from ganforge.diagnostics.events import EVENT_KINDS, Event, read_events
from ganforge.diagnostics.settings import DiagnosticsSettings

_LAZY = {
    "Diagnoser": "ganforge.diagnostics.engine",
    "DiagnosticsCallback": "ganforge.diagnostics.callback",
    "Diagnosis": "ganforge.diagnostics.analysis",
    "analyze": "ganforge.diagnostics.analysis",
    "diagnose": "ganforge.diagnostics.analysis",
    "SampleReference": "ganforge.diagnostics.signals",
    "periodicity": "ganforge.diagnostics.signals",
    "sample_signals": "ganforge.diagnostics.signals",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganforge.diagnostics' has no attribute {name!r}")


__all__ = ["EVENT_KINDS", "Diagnoser", "Diagnosis", "DiagnosticsCallback", "DiagnosticsSettings", "Event",
           "SampleReference", "analyze", "diagnose", "periodicity", "read_events", "sample_signals"]
