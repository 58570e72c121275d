"""The detectors: a stream of logged windows and sample snapshots in, signals and warning events out.

``Diagnoser`` is fed in step order, the same way during training (``DiagnosticsCallback``) and
afterwards (``diagnose(run_dir)``), so both give the same events. Each detector turns every
observation into "the condition holds / does not hold"; a condition held for ``patience``
observations in a row opens an episode (an ``Event``), and ``clear_after`` observations without it
close the episode.

Detectors:

- ``overpowering`` (probabilistic costs): mean D(G(z)) <= ``fake_threshold`` while |grad G| fell
  ``grad_drop`` times below its peak, or D(x) >= ``real_threshold`` (D wins outright).
- ``mode_collapse`` (snapshots after the warm-up): for toy mixtures, samples sit on modes
  (HQ fraction >= ``min_hq_fraction``) but cover at most ``collapse_modes`` of them; for any data,
  mean pairwise distance below ``min_diversity`` x real data's, or ``max_duplicates`` of the
  samples with a near-duplicate, once the samples had spread out (or, when they never did, from
  step ``stuck_after`` on: a young generator near its initial output has not collapsed).
- ``missed_modes`` and ``low_quality`` (toy mixtures, snapshots from ``fit_after`` x train.steps on,
  when a run should have found its fit): modes that the high-quality samples avoid beyond chance
  (``signals.missed_modes``; not raised while ``mode_collapse`` already says so), and fewer than
  ``min_hq_fit`` of the samples within 3 std of a mode. Either one still holding on the last
  snapshot of a finished run is reported even when fewer than ``sample_patience`` snapshots were
  judged: the run ended with that fit. ``mode_collapse`` only sees samples that already sit on
  modes (HQ >= ``min_hq_fraction``) and cover at most half of them, so a run ending with 31 of 49
  grid modes and 5 % of its samples on a mode passed it; these two catch it.
- ``oscillation``: a stable period in the detrended g_cost or d_cost series (``signals.periodicity``),
  or the covered modes changing from snapshot to snapshot while few are covered (mode hopping).
- ``non_finite``: NaN or Inf in a logged cost, D output or gradient norm.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ganforge.diagnostics.events import Event, json_safe
from ganforge.diagnostics.settings import DiagnosticsSettings
from ganforge.diagnostics.signals import (
    SampleReference,
    equilibrium_gap,
    missed_modes,
    periodicity,
    real_hq_fraction,
    sample_signals,
    value_gap,
)

_FINITE_KEYS = ("d_cost", "g_cost", "value", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
_OSC_SERIES = ("g_cost", "d_cost")

_TRY_COLLAPSE = "try minibatch_std or pack (PacGAN) in D, R1, or a lower G learning rate"
_TRY_OSCILLATION = ("try lower learning rates (Adam beta1 0.5 or 0), R1 or spectral norm in D, "
                    "and sample from the EMA generator")
_TRY_MISSED = ("try minibatch_std or pack (PacGAN) in D, a zero-centred gradient penalty (gradient_penalty with "
               "target 0, or r1) so that D leads G to the modes it has not found, or more steps")
_TRY_LOW_QUALITY = ("try more steps with a decaying learning rate (optim schedule: linear), a zero-centred gradient "
                    "penalty (gradient_penalty with target 0, or r1), or a wider generator")
_FIT = ("missed_modes", "low_quality")
_TRY_NON_FINITE = "try lower learning rates, a gradient penalty (R1), or fp32 instead of bf16"


def as_float(v: Any) -> float:
    """A logged value as a float: numbers as they are, 'nan' / 'inf' strings as non-finite floats."""
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.2g}" if abs(x) < 0.01 else f"{x:.3g}"


def _times(x: float) -> str:
    if not math.isfinite(x):
        return "to 0"
    return f"{x:,.0f}x" if x >= 10 else f"{x:.1f}x"


@dataclass
class Observation:
    """What one observation gave: its signal record (for diagnostics.jsonl) and the event records
    to append to events.jsonl (episodes just confirmed or just ended)."""

    record: dict[str, Any]
    events: list[Event] = field(default_factory=list)


class _Condition:
    """Turns yes/no observations into episodes (see the module docstring)."""

    def __init__(self, patience: int, clear_after: int):
        self.patience, self.clear_after = patience, clear_after
        self.streak = 0
        self.streak_start = 0
        self.quiet = 0
        self.open: Event | None = None
        self.dirty = False  # the open episode changed since it was last emitted
        self.episodes: list[Event] = []

    def observe(self, step: int, active: bool, since: int | None,
                describe: Callable[[int, int], Event] | None) -> list[Event]:
        out: list[Event] = []
        if active:
            assert describe is not None
            if self.streak == 0:
                self.streak_start = step if since is None else since
            self.streak += 1
            self.quiet = 0
            if self.open is not None:
                self._set(describe(self.open.start_step, step))
                self.dirty = True
            elif self.streak >= self.patience:
                ev = describe(self.streak_start, step)
                self.open = ev
                self.episodes.append(ev)
                self.dirty = False
                out.append(ev)
            return out
        self.streak = 0
        if self.open is not None:
            self.quiet += 1
            if self.quiet >= self.clear_after:
                self._set(replace(self.open, ongoing=False))
                out.append(self.open)
                self.open, self.dirty, self.quiet = None, False, 0
        return out

    def force(self, step: int, describe: Callable[[int, int], Event]) -> list[Event]:
        """Open an episode from the current streak now, without waiting for ``patience``."""
        if self.open is not None or self.streak == 0:
            return []
        ev = describe(self.streak_start, step)
        self.open = ev
        self.episodes.append(ev)
        self.dirty = False
        return [ev]

    def _set(self, ev: Event) -> None:
        self.open = ev
        self.episodes[-1] = ev

    def flush(self) -> list[Event]:
        """The open episode's newest version, when it changed since it was emitted."""
        if self.open is not None and self.dirty:
            self.dirty = False
            return [self.open]
        return []


class Diagnoser:
    """Signals and warning events of one run, fed in step order.

    Args:
        settings: thresholds (defaults: ``DiagnosticsSettings()``).
        probabilistic: the cost's D output is a probability (equilibrium and overpowering apply).
        total_steps: the run's ``train.steps`` (for the sample warm-up); None: no warm-up but step 0.
        reference: real data's statistics, for sample-based signals; None skips them.
        cost_name: the registered cost, to tailor suggestions.
    """

    def __init__(self, settings: DiagnosticsSettings | None = None, probabilistic: bool = True,
                 total_steps: int | None = None, reference: SampleReference | None = None,
                 cost_name: str = ""):
        self.settings = s = settings or DiagnosticsSettings()
        self.probabilistic = probabilistic
        self.total_steps = total_steps
        self.reference = reference
        self.cost_name = cost_name
        self.grad_g_peak = 0.0
        self.peak_diversity = 0.0  # highest sample diversity seen (did the samples ever spread out?)
        self.series: dict[str, deque[float]] = {k: deque(maxlen=s.osc_window) for k in _OSC_SERIES}
        self.series_steps: deque[int] = deque(maxlen=s.osc_window)
        self.osc_periods: list[float] = []
        self.covered_history: deque[tuple[int, tuple[int, ...]]] = deque(maxlen=s.hop_snapshots)
        self.conditions = {
            "overpowering": _Condition(s.patience, s.clear_after),
            "non_finite": _Condition(1, 1),
            "oscillation:costs": _Condition(s.patience, s.clear_after),
            "mode_collapse": _Condition(s.sample_patience, s.sample_patience),
            "oscillation:modes": _Condition(1, s.sample_patience),
            "missed_modes": _Condition(s.sample_patience, s.sample_patience),
            "low_quality": _Condition(s.sample_patience, s.sample_patience),
        }
        self.last_step = -1  # the newest step observed (logged window or snapshot)
        # fit conditions: the snapshots of the current streak or episode, and how to describe it
        self.fit_history: dict[str, list[dict[str, Any]]] = {k: [] for k in _FIT}
        self.fit_describe: dict[str, Callable[[int, int], Event] | None] = {k: None for k in _FIT}

    # -- the episodes ----------------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """Every episode so far, newest version, ordered by start step."""
        evs = [e for c in self.conditions.values() for e in c.episodes]
        return sorted(evs, key=lambda e: (e.start_step, e.kind, e.source))

    def finish(self) -> list[Event]:
        """Newest versions of open episodes that changed since they were emitted (end of training); when
        the run reached its last step, also a fit condition that held on the last snapshot but had not
        been confirmed yet (the run ended with that fit)."""
        out: list[Event] = []
        if self.total_steps is None or self.last_step >= self.total_steps:
            for k in _FIT:
                describe = self.fit_describe[k]
                if describe is not None:
                    out += self.conditions[k].force(self.fit_history[k][-1]["step"], describe)
        return out + [e for c in self.conditions.values() for e in c.flush()]

    @property
    def warmup_step(self) -> int:
        if self.total_steps is None:
            return 1
        return max(1, math.ceil(self.settings.warmup * self.total_steps))

    @property
    def fit_step(self) -> int:
        """The first step whose snapshot is judged for missed modes and low quality."""
        if self.total_steps is None:
            return 1
        return max(1, math.ceil(self.settings.fit_after * self.total_steps))

    # -- logged windows ----------------------------------------------------------------------------

    def observe_scalars(self, step: int, scalars: dict[str, Any]) -> Observation:
        """One logging window's scalars (d_cost, g_cost, value, d_real, d_fake, grad norms)."""
        s = self.settings
        self.last_step = max(self.last_step, int(step))
        v = {k: as_float(scalars[k]) for k in _FINITE_KEYS if k in scalars}
        record: dict[str, Any] = {"step": int(step), "source": "scalars"}
        events: list[Event] = []
        bad = {k: x for k, x in v.items() if not math.isfinite(x)}
        events += self.conditions["non_finite"].observe(
            step, bool(bad), None, lambda a, b: self._non_finite_event(a, b, bad))
        if bad:
            record["non_finite"] = sorted(bad)
            for c in ("overpowering", "oscillation:costs"):
                events += self.conditions[c].observe(step, False, None, None)
            for q in self.series.values():
                q.clear()
            self.series_steps.clear()
            self.osc_periods = []
            record["active"] = self._active()
            return Observation(json_safe(record), events)

        d_real, d_fake = v.get("d_real", math.nan), v.get("d_fake", math.nan)
        if "d_real" in v or "d_fake" in v:  # a game without a discriminator (gmmn) logs neither
            record.update({"d_real": d_real, "d_fake": d_fake})
        if self.probabilistic and math.isfinite(d_real) and math.isfinite(d_fake):
            record["eq_gap"] = equilibrium_gap(d_real, d_fake)
            if "value" in v:
                record["value_gap"] = value_gap(v["value"])
        grad_g = v.get("grad_norm_g", math.nan)
        drop = math.nan
        if math.isfinite(grad_g):
            self.grad_g_peak = max(self.grad_g_peak, grad_g)
            drop = self.grad_g_peak / grad_g if grad_g > 0 else math.inf
            record["grad_g_drop"] = drop

        # discriminator overpowering
        active = False
        if self.probabilistic and math.isfinite(d_fake):
            strong_d = (math.isfinite(drop) and drop >= s.grad_drop) or drop == math.inf or d_real >= s.real_threshold
            active = d_fake <= s.fake_threshold and strong_d
        evidence = {"d_fake": d_fake, "d_real": d_real, "grad_norm_g": grad_g, "grad_g_peak": self.grad_g_peak,
                    "grad_g_drop": drop}
        events += self.conditions["overpowering"].observe(
            step, active, None, lambda a, b: self._overpowering_event(a, b, evidence))

        # oscillating costs
        self.series_steps.append(int(step))
        for k in _OSC_SERIES:
            if k in v:
                self.series[k].append(v[k])
        osc = self._oscillation()
        if osc is not None:
            record.update({"osc_series": osc["series"], "osc_period_steps": osc["period_steps"],
                           "osc_power": osc["power"], "osc_acf": osc["acf"]})
        osc_active = osc is not None and osc["periodic"]
        if osc_active:
            self.osc_periods.append(osc["period"])
            recent = self.osc_periods[-s.patience:]
            if max(recent) > s.osc_stable * min(recent):
                self.osc_periods = [osc["period"]]
                osc_active = False
        else:
            self.osc_periods = []
        events += self.conditions["oscillation:costs"].observe(
            step, osc_active, None if osc is None else osc["since"],
            lambda a, b: self._oscillation_event(a, b, osc))
        record["active"] = self._active()
        return Observation(json_safe(record), events)

    def _oscillation(self) -> dict[str, Any] | None:
        """The strongest periodic cost series over the trailing windows, or None."""
        s = self.settings
        if len(self.series_steps) < s.osc_min_windows:
            return None
        steps = np.asarray(self.series_steps)
        spacing = float(np.median(np.diff(steps))) if steps.size > 1 else 1.0
        best: dict[str, Any] | None = None
        for k in _OSC_SERIES:
            x = np.asarray(self.series[k], dtype=np.float64)
            if x.size < s.osc_min_windows:
                continue
            p = periodicity(x, s.osc_min_cycles)
            if p is None:
                continue
            rel = p.amplitude / (float(np.median(np.abs(x))) + 0.1)
            periodic = (p.power >= s.osc_power and p.acf >= s.osc_acf and rel >= s.osc_min_amplitude
                        and (math.isnan(p.acf2) or p.acf2 >= s.osc_acf2))
            cand = {"series": k, "period": p.period, "period_steps": int(round(p.period * spacing)),
                    "power": p.power, "acf": p.acf, "acf2": p.acf2, "amplitude": p.amplitude,
                    "relative_amplitude": rel, "periodic": periodic, "since": int(steps[-x.size]),
                    "windows": int(x.size)}
            if best is None or (cand["periodic"], cand["power"]) > (best["periodic"], best["power"]):
                best = cand
        return best

    def _active(self) -> list[str]:
        return sorted({k.split(":")[0] for k, c in self.conditions.items() if c.open is not None})

    # -- sample snapshots ----------------------------------------------------------------------------

    def observe_samples(self, step: int, samples: Any) -> Observation:
        """One snapshot of generated samples ``(n, ...)`` from the fixed latent batch."""
        s = self.settings
        record: dict[str, Any] = {"step": int(step), "source": "samples"}
        self.last_step = max(self.last_step, int(step))
        if self.reference is None:
            return Observation(record)
        samples = np.asarray(samples)
        if tuple(samples.shape[1:]) != tuple(self.reference.shape):
            record["skipped"] = f"sample shape {tuple(samples.shape[1:])} != data shape {self.reference.shape}"
            return Observation(record)
        sig = sample_signals(samples, self.reference, s.n_diversity, s.min_mode_share)
        record.update(sig)
        if math.isfinite(sig.get("diversity_ratio", math.nan)):
            self.peak_diversity = max(self.peak_diversity, sig["diversity_ratio"])
        events: list[Event] = []
        judged = step >= self.warmup_step
        record["judged"] = judged
        if not judged:
            return Observation(json_safe(record), events)

        ref = self.reference
        reasons = []
        div, dup = sig.get("diversity_ratio", math.nan), sig.get("duplicate_rate", math.nan)
        # low diversity is collapse once the samples had spread out, or when they never did for long
        judge_spread = self.peak_diversity >= s.min_diversity or step >= s.stuck_after
        if judge_spread and math.isfinite(div) and div < s.min_diversity:
            reasons.append("diversity")
        if (judge_spread and math.isfinite(dup) and dup >= s.max_duplicates
                and ref.duplicate_rate < s.max_duplicates / 2):
            reasons.append("duplicates")
        on_modes = ref.is_mixture and sig.get("hq_fraction", 0.0) >= s.min_hq_fraction
        if on_modes and sig["modes_captured"] <= s.collapse_modes * sig["n_modes"]:
            reasons.append("modes")
        evidence = {k: sig[k] for k in ("diversity_ratio", "duplicate_rate", "real_duplicate_rate", "modes_captured",
                                        "n_modes", "hq_fraction", "mode_counts", "covered") if k in sig}
        evidence["reasons"] = reasons
        evidence["peak_diversity"] = self.peak_diversity
        events += self.conditions["mode_collapse"].observe(
            step, bool(reasons), None, lambda a, b: self._collapse_event(a, b, evidence))
        if ref.is_mixture and "mode_counts" in sig and step >= self.fit_step:
            events += self._judge_fit(step, sig, record, collapsed="modes" in reasons)

        # mode hopping: few modes covered, but not the same ones from snapshot to snapshot
        hop: dict[str, Any] | None = None
        if on_modes:
            self.covered_history.append((int(step), tuple(sig["covered"])))
            hop = self._mode_hopping(sig["n_modes"])
        else:
            self.covered_history.clear()
        if hop is not None:
            record.update({"hop_jaccard": hop["mean_jaccard"], "hop_union": hop["union"]})
        events += self.conditions["oscillation:modes"].observe(
            step, hop is not None and hop["hopping"], None if hop is None else hop["since"],
            lambda a, b: self._hopping_event(a, b, hop))
        record["active"] = self._active()
        return Observation(json_safe(record), events)

    def _judge_fit(self, step: int, sig: dict[str, Any], record: dict[str, Any], collapsed: bool) -> list[Event]:
        """Missed modes and low quality on one snapshot of the last part of training."""
        s, ref = self.settings, self.reference
        assert ref is not None and ref.weights is not None
        counts = np.asarray(sig["mode_counts"])
        missed = missed_modes(counts, ref.weights, s.missed_share, s.missed_p)
        hq = float(sig["hq_fraction"])
        # modes_reached: modes with any high-quality sample (eval.json's modes_captured, min_count 1)
        evidence = {"n_modes": sig["n_modes"], "modes_reached": int(np.sum(counts > 0)), "hq_fraction": hq,
                    "real_hq_fraction": real_hq_fraction(int(np.prod(ref.shape))), "missed": missed,
                    "unreached": [int(i) for i in np.flatnonzero(counts == 0)], "mode_counts": sig["mode_counts"]}
        record.update({"modes_reached": evidence["modes_reached"], "missed_modes": missed})
        out: list[Event] = []
        for kind, active in (("missed_modes", bool(missed) and not collapsed), ("low_quality", hq < s.min_hq_fit)):
            cond, history = self.conditions[kind], self.fit_history[kind]
            describe: Callable[[int, int], Event] | None = None
            if active:
                history.append({"step": int(step), "modes_reached": evidence["modes_reached"], "hq_fraction": hq,
                                "missed": len(missed)})
                ev = {**evidence, "history": [dict(h) for h in history]}
                describe = functools.partial(self._fit_event, kind, ev=ev)
            out += cond.observe(step, active, None, describe)
            self.fit_describe[kind] = describe
            if not active and cond.open is None:
                history.clear()
        return out

    def _mode_hopping(self, n_modes: int) -> dict[str, Any] | None:
        s = self.settings
        hist = list(self.covered_history)
        if len(hist) < s.hop_snapshots:
            return None
        sets = [set(c) for _, c in hist]
        sizes = [len(c) for c in sets]
        jac = [len(a & b) / len(a | b) if a | b else 1.0 for a, b in zip(sets, sets[1:], strict=False)]
        union = set().union(*sets)
        mean_size = float(np.mean(sizes))
        hopping = (max(sizes) <= s.collapse_modes * n_modes and float(np.mean(jac)) <= 0.5
                   and len(union) >= 1.5 * max(mean_size, 1.0))
        return {"hopping": hopping, "since": hist[0][0], "mean_jaccard": float(np.mean(jac)), "union": len(union),
                "covered": {str(st): list(c) for st, c in hist}, "n_modes": n_modes}

    # -- the messages ----------------------------------------------------------------------------

    def _overpowering_event(self, start: int, end: int, ev: dict[str, Any]) -> Event:
        grad = (f"|grad G| fell {_times(ev['grad_g_drop'])}" if ev["grad_g_drop"] >= 2
                else f"|grad G| {_num(ev['grad_norm_g'])}")
        if self.cost_name == "minimax":
            advice = "try the non-saturating cost, R1, or a lower D learning rate"
        else:
            advice = "try R1 or spectral norm in D, a lower D learning rate, or fewer D steps (n_critic)"
        msg = (f"D overpowering G since step {start:,}: D(fake) {_num(ev['d_fake'])}, D(real) {_num(ev['d_real'])}, "
               f"{grad}; {advice}")
        return Event("overpowering", start, end, msg, json_safe(dict(ev)), True, "scalars")

    def _non_finite_event(self, start: int, end: int, bad: dict[str, float]) -> Event:
        what = ", ".join(f"{k} {v}" for k, v in sorted(bad.items()))
        msg = f"Non-finite values since step {start:,} ({what}): the game diverged; {_TRY_NON_FINITE}"
        return Event("non_finite", start, end, msg, json_safe({"values": bad}), True, "scalars")

    def _oscillation_event(self, start: int, end: int, osc: dict[str, Any] | None) -> Event:
        assert osc is not None
        msg = (f"Costs oscillate since step {start:,}: {osc['series']} swings with a period of about "
               f"{osc['period_steps']:,} steps (amplitude {_num(osc['amplitude'])}); {_TRY_OSCILLATION}")
        evidence = {k: osc[k] for k in ("series", "period_steps", "period", "power", "acf", "acf2", "amplitude",
                                        "relative_amplitude", "windows")}
        return Event("oscillation", start, end, msg, json_safe(evidence), True, "costs")

    def _collapse_event(self, start: int, end: int, ev: dict[str, Any]) -> Event:
        parts = []
        if "modes" in ev["reasons"]:
            parts.append(f"samples cover {ev['modes_captured']} of {ev['n_modes']} modes "
                         f"({ev['hq_fraction']:.0%} on a mode)")
        if "diversity_ratio" in ev:
            never = ("diversity" in ev["reasons"] and ev["peak_diversity"] < self.settings.min_diversity)
            parts.append(f"sample diversity {ev['diversity_ratio']:.2f}x real data's"
                         + (f" (never above {ev['peak_diversity']:.2f}x: G has not spread out since it started)"
                            if never else ""))
        if "duplicates" in ev["reasons"]:
            parts.append(f"{ev['duplicate_rate']:.0%} near-duplicates (real data {ev['real_duplicate_rate']:.0%})")
        msg = f"Mode collapse since step {start:,}: {', '.join(parts)}; {_TRY_COLLAPSE}"
        return Event("mode_collapse", start, end, msg, json_safe(dict(ev)), True, "samples")

    def _mode_names(self, idx: list[int], limit: int = 8) -> str:
        """``3 (-4, -2), 7 (0, 4), ... and 5 more``: mode indices with their centres (up to 2-D)."""
        ref = self.reference
        names = []
        for i in idx[:limit]:
            if ref is not None and ref.modes is not None and ref.modes.shape[1] <= 2:
                names.append(f"{i} ({', '.join(f'{c:.3g}' for c in ref.modes[i])})")
            else:
                names.append(str(i))
        more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
        return ", ".join(names) + more

    def _fit_event(self, kind: str, start: int, end: int, *, ev: dict[str, Any]) -> Event:
        k, hq, real = ev["n_modes"], ev["hq_fraction"], ev["real_hq_fraction"]
        if kind == "missed_modes":
            missed = ev["missed"]
            msg = (f"Missed modes since step {start:,}: {len(missed)} of {k} modes get almost none of the "
                   f"high-quality samples (under {self.settings.missed_share:.0%} of their share): "
                   f"{self._mode_names(missed)}; {hq:.1%} of the samples lie on a mode (real data {real:.1%}); "
                   f"{_TRY_MISSED}")
        else:
            reached = ev["modes_reached"]
            none = f" (none on {self._mode_names(ev['unreached'])})" if ev["unreached"] else ""
            msg = (f"Low-quality fit since step {start:,}: only {hq:.1%} of the samples lie within 3 std of a mode "
                   f"(real data {real:.1%}), and {reached} of {k} modes have any{none}; {_TRY_LOW_QUALITY}")
        return Event(kind, start, end, msg, json_safe(dict(ev)), True, "samples")

    def _hopping_event(self, start: int, end: int, hop: dict[str, Any] | None) -> Event:
        assert hop is not None
        seq = "; ".join(f"step {st}: {c}" for st, c in hop["covered"].items())
        msg = (f"Mode hopping since step {start:,}: the generator moves between modes instead of covering them "
               f"({seq}); {_TRY_COLLAPSE}")
        return Event("oscillation", start, end, msg, json_safe(dict(hop)), True, "modes")


__all__ = ["Diagnoser", "Observation", "as_float"]
