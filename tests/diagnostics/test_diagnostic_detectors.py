"""The detectors on planted failures, fed synthetic metric streams and snapshots (fixed seeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data.toy import Ring
from ganforge.diagnostics import DiagnosticsSettings, Event
from ganforge.diagnostics.engine import Diagnoser
from ganforge.diagnostics.events import merge_event_records
from ganforge.diagnostics.signals import LOG4, SampleReference

RING = Ring(n_modes=8, radius=2.0, std=0.05)


def window(step: int, d_real: float, d_fake: float, g_cost: float, grad_g: float, d_cost: float | None = None,
           ) -> dict:
    if d_cost is None:
        d_cost = -(math.log(d_real) + math.log(1 - d_fake))
    return {"step": step, "d_cost": d_cost, "g_cost": g_cost, "value": -d_cost, "d_real": d_real,
            "d_fake": d_fake, "grad_norm_d": 1.0, "grad_norm_g": grad_g, "penalty": 0.0, "lr_g": 1e-3}


def run(diagnoser: Diagnoser, records: list[dict], snapshots: dict[int, np.ndarray] | None = None) -> list[Event]:
    """Feed windows (and snapshots taken at or before each window) in training order; return all
    events, checking that the appended event records merge to the same episodes."""
    written: list[Event] = []
    snaps = sorted((snapshots or {}).items())
    for rec in records:
        while snaps and snaps[0][0] <= rec["step"]:
            st, x = snaps.pop(0)
            written += diagnoser.observe_samples(st, x).events
        written += diagnoser.observe_scalars(rec["step"], rec).events
    written += diagnoser.finish()
    assert merge_event_records([e.to_dict() for e in written]) == diagnoser.events
    return diagnoser.events


def healthy_stream(n: int, seed: int, log_every: int = 100) -> list[dict]:
    """A ring8-like NS-GAN near equilibrium: D around 1/2, costs near log 4 and log 2, noisy."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(1, n + 1):
        d_real = 0.55 + 0.04 * rng.normal()
        d_fake = 0.45 + 0.04 * rng.normal()
        out.append(window(i * log_every, d_real, d_fake, -math.log(d_fake) + 0.05 * rng.normal(),
                          abs(1.0 + 0.3 * rng.normal())))
    return out


def test_overpowering_is_flagged_with_evidence_and_advice():
    rng = np.random.default_rng(0)
    records = []
    for i in range(1, 61):
        step = 100 * i
        if step < 1200:  # a fair game first
            records.append(window(step, 0.6 + 0.02 * rng.normal(), 0.4 + 0.02 * rng.normal(), -0.9, 2.0))
        else:  # then D rejects every fake and G's gradient vanishes (minimax cost saturates)
            k = step - 1200
            d_fake = 0.002 * math.exp(-k / 2000)
            records.append(window(step, 0.998, d_fake, math.log(1 - d_fake), 2.0 * 0.01 * math.exp(-k / 3000)))
    events = run(Diagnoser(probabilistic=True, total_steps=6000, cost_name="minimax"), records)
    assert [e.kind for e in events] == ["overpowering"]
    e = events[0]
    assert e.start_step == 1200 and e.end_step == 6000 and e.ongoing
    assert e.evidence["grad_g_drop"] >= 100
    assert e.evidence["d_fake"] < 0.002
    assert e.message.startswith("D overpowering G since step 1,200: D(fake) ")
    assert "non-saturating cost" in e.message and "R1" in e.message
    # Other costs get advice that fits them.
    events = run(Diagnoser(probabilistic=True, total_steps=6000, cost_name="non_saturating"), records)
    assert "non-saturating" not in events[0].message and "n_critic" in events[0].message


def test_overpowering_needs_patience_and_ends():
    records = healthy_stream(10, seed=1)
    records += [window(1100 + 100 * i, 0.999, 0.001, 0.0, 0.01) for i in range(2)]  # 2 windows only
    records += healthy_stream(5, seed=2, log_every=100)
    for i, r in enumerate(records[12:]):
        r["step"] = 1300 + 100 * i
    assert run(Diagnoser(probabilistic=True), records) == []
    # Four bad windows confirm it; three good ones end the episode.
    records = healthy_stream(10, seed=1)
    records += [window(1100 + 100 * i, 0.999, 0.001, 0.0, 0.01) for i in range(4)]
    records += [dict(r, step=1500 + 100 * i) for i, r in enumerate(healthy_stream(5, seed=2))]
    (e,) = run(Diagnoser(probabilistic=True), records)
    assert (e.kind, e.start_step, e.end_step, e.ongoing) == ("overpowering", 1100, 1400, False)


def test_not_judged_for_costs_whose_output_is_no_probability():
    records = [window(100 * i, 0.999, 0.001, 0.0, 0.001) for i in range(1, 20)]
    assert run(Diagnoser(probabilistic=False), records) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_healthy_stream_raises_no_warning(seed):
    events = run(Diagnoser(probabilistic=True, total_steps=30000), healthy_stream(300, seed))
    assert events == []


def test_equilibrium_signals_in_the_records():
    d = Diagnoser(probabilistic=True)
    rec = d.observe_scalars(100, window(100, 0.5, 0.5, math.log(2), 1.0)).record
    assert rec["eq_gap"] == 0.0
    assert rec["value_gap"] == pytest.approx(0.0, abs=1e-12)  # V = -log 4 at D = 1/2
    rec = d.observe_scalars(200, window(200, 0.9, 0.3, 1.0, 1.0)).record
    assert rec["eq_gap"] == pytest.approx(0.4)
    assert rec["value_gap"] == pytest.approx(math.log(0.9) + math.log(0.7) + LOG4)


@pytest.mark.parametrize("period_steps", [800, 700])
def test_oscillating_costs_report_the_period(period_steps):
    rng = np.random.default_rng(5)
    records = []
    for i in range(1, 121):
        step = 100 * i
        g = 1.0 + 0.3 * math.sin(2 * math.pi * step / period_steps) + 0.05 * rng.normal()
        dc = 1.3 - 0.2 * math.sin(2 * math.pi * step / period_steps) + 0.05 * rng.normal()
        records.append(window(step, 0.55, 0.45, g, 1.0, d_cost=dc))
    events = run(Diagnoser(probabilistic=True, total_steps=12000), records)
    assert [(e.kind, e.source) for e in events] == [("oscillation", "costs")]
    e = events[0]
    assert e.evidence["period_steps"] == period_steps
    assert e.evidence["series"] == "g_cost"  # the larger swing
    assert f"period of about {period_steps:,} steps" in e.message
    assert e.start_step <= 100 * DiagnosticsSettings().osc_min_windows and e.end_step == 12000


def test_non_finite_values_are_flagged_at_their_step():
    records = healthy_stream(20, seed=0)
    records[12] = dict(records[12], d_cost="nan", value="nan")  # as metrics.jsonl writes NaN
    events = run(Diagnoser(probabilistic=True), records)
    assert [e.kind for e in events] == ["non_finite"]
    assert (events[0].start_step, events[0].end_step, events[0].ongoing) == (1300, 1300, False)
    assert "d_cost nan" in events[0].message


def ring_samples(modes: list[int], n: int = 1000, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    idx = torch.tensor(modes)[torch.randint(0, len(modes), (n,), generator=g)]
    return (RING.modes[idx] + RING.std * torch.randn(n, 2, generator=g)).numpy()


def sample_diagnoser() -> Diagnoser:
    return Diagnoser(probabilistic=True, total_steps=5000, reference=SampleReference.from_dataset(RING, 500))


def test_generator_on_two_of_eight_modes_is_collapsed():
    records = healthy_stream(50, seed=3)
    snaps = {0: np.zeros((1000, 2))}
    snaps.update({st: ring_samples([2, 6], seed=st) for st in range(500, 5001, 500)})
    events = run(sample_diagnoser(), records, snaps)
    assert [(e.kind, e.source) for e in events] == [("mode_collapse", "samples")]
    e = events[0]
    assert e.start_step == 500 and e.end_step == 5000
    assert e.evidence["modes_captured"] == 2 and e.evidence["n_modes"] == 8
    assert "cover 2 of 8 modes" in e.message and "minibatch_std" in e.message


def test_all_modes_covered_is_healthy_even_from_a_collapsed_start():
    records = healthy_stream(50, seed=4)
    snaps = {0: np.zeros((1000, 2))}  # the untrained generator sits at the origin: not judged (warm-up)
    snaps.update({st: ring_samples(list(range(8)), seed=st) for st in range(500, 5001, 500)})
    assert run(sample_diagnoser(), records, snaps) == []


def test_collapse_onto_a_point_in_any_data():
    # Not a mixture: diversity and duplicates alone.
    ref = SampleReference.from_examples(np.random.default_rng(0).normal(size=(500, 5)))
    spread = np.random.default_rng(1).normal(size=(500, 5))
    x = spread.copy()
    x[50:] = x[0]  # 90 % of the samples on one point
    d = Diagnoser(probabilistic=True, total_steps=1000, reference=ref)
    events = run(d, healthy_stream(10, seed=5), {200: spread, 400: x, 600: x, 800: x})
    assert [e.kind for e in events] == ["mode_collapse"]
    assert events[0].start_step == 400
    assert events[0].evidence["reasons"] == ["diversity", "duplicates"]
    assert "near-duplicates" in events[0].message


def test_a_generator_that_never_spread_out_is_judged_late():
    ref = SampleReference.from_examples(np.random.default_rng(0).normal(size=(500, 5)))
    tight = 0.05 * np.random.default_rng(1).normal(size=(500, 5))  # still near its initial output
    d = Diagnoser(probabilistic=True, total_steps=3000, reference=ref)
    events = run(d, healthy_stream(30, seed=5), {st: tight for st in range(250, 3001, 250)})
    assert [e.kind for e in events] == ["mode_collapse"]
    assert events[0].start_step == DiagnosticsSettings().stuck_after  # not before
    assert "never above" in events[0].message


def test_mode_hopping_is_an_oscillation():
    records = healthy_stream(50, seed=6)
    cycle = [[0, 1], [4, 5], [2, 3], [6, 7]]
    snaps = {st: ring_samples(cycle[i % 4], seed=st) for i, st in enumerate(range(500, 5001, 500))}
    events = run(sample_diagnoser(), records, snaps)
    kinds = {(e.kind, e.source) for e in events}
    assert ("oscillation", "modes") in kinds and ("mode_collapse", "samples") in kinds
    hop = next(e for e in events if e.source == "modes")
    assert hop.start_step == 500 and "Mode hopping" in hop.message


def test_event_roundtrip_and_line():
    e = Event("overpowering", 1200, 3400, "D overpowering G", {"d_fake": float("nan")}, False)
    d = e.to_dict()
    assert d["evidence"]["d_fake"] == "nan"  # JSON-safe
    assert Event.from_dict(d).key == e.key
    assert e.line() == "[overpowering] steps 1,200-3,400: D overpowering G"
