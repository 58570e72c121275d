"""Thresholds of the diagnostics, as a typed section (``diagnostics:`` in a config, when the lead wires it).

Kept free of ganforge imports so that ``ganforge.config`` can import it without a cycle.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(gt=0, lt=1)]
PositiveInt = Annotated[int, Field(gt=0)]


class DiagnosticsSettings(BaseModel):
    """When a signal counts as a problem. Defaults are tuned on the toy runs (ring, grid, 1-D)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    enabled: bool = True  # write diagnostics.jsonl / events.jsonl during training
    patience: PositiveInt = 3  # log windows in a row a condition must hold before it is reported
    clear_after: PositiveInt = 3  # log windows without the condition that end an episode

    # discriminator overpowering (probabilistic costs only: D(.) is a probability)
    fake_threshold: Fraction = 0.05  # mean D(G(z)) at or below this: D rejects nearly every fake
    real_threshold: Fraction = 0.95  # with D(x) at or above this, D wins outright
    grad_drop: Annotated[float, Field(gt=1)] = 10.0  # |grad G| fell this many times below its peak

    # mode collapse, from sample snapshots
    sample_patience: PositiveInt = 2  # snapshots in a row a sample-based condition must hold
    warmup: Annotated[float, Field(ge=0, lt=1)] = 0.1  # fraction of train.steps before samples are judged
    # samples that never spread out (G still near its initial output) count as collapsed only from this
    # step on: early on, a contracted generator has not learned yet, it has not collapsed
    stuck_after: Annotated[int, Field(ge=0)] = 1000
    n_diversity: Annotated[int, Field(ge=2)] = 500  # real examples, and samples per snapshot, for diversity
    min_mode_share: Fraction = 0.1  # a mode is covered with >= this share of its expected samples
    collapse_modes: Fraction = 0.5  # covering at most this fraction of the modes is collapse
    min_hq_fraction: Fraction = 0.5  # samples must sit on modes before coverage is judged
    min_diversity: Fraction = 0.3  # mean pairwise distance below this fraction of real data's
    max_duplicates: Fraction = 0.5  # fraction of near-duplicate samples that counts as collapse
    duplicate_radius: Fraction = 0.1  # near-duplicate: closer than this x real data's median NN distance
    hop_snapshots: Annotated[int, Field(ge=3)] = 4  # snapshots compared for mode hopping

    # the fit, for mixtures whose modes are known (missed_modes, low_quality): judged on the snapshots
    # of the last part of training, when the samples should sit on every mode; a run whose last snapshot
    # fails is flagged at its end even if fewer than sample_patience snapshots were judged
    fit_after: Annotated[float, Field(ge=0, lt=1)] = 0.8  # fraction of train.steps before the fit is judged
    min_hq_fit: Fraction = 0.25  # fewer samples than this within 3 std of a mode is a low-quality fit
    missed_share: Fraction = 0.1  # a mode is missed when it gets under this share of the high-quality
    #                               samples its weight would give ...
    missed_p: Fraction = 0.01  # ... and chance gives so few with probability under missed_p / K (Poisson)

    # oscillation of the costs (per log window); the defaults flag a sinusoid twice as large as the
    # window-to-window noise almost always, and red noise (AR(1), phi 0.8) in about 3 % of 300-window runs
    osc_window: Annotated[int, Field(ge=8)] = 64  # trailing log windows analysed
    osc_min_windows: Annotated[int, Field(ge=8)] = 32  # windows needed before judging
    osc_min_cycles: Annotated[float, Field(ge=2)] = 3.0  # full periods required inside the window
    osc_power: Fraction = 0.5  # share of the detrended variance in the peak frequency (+-1 bin)
    osc_acf: Fraction = 0.6  # autocorrelation at the period's lag
    osc_acf2: Fraction = 0.3  # autocorrelation at twice that lag (the swing repeats)
    osc_stable: Annotated[float, Field(gt=1)] = 1.25  # max/min period over the confirming windows
    osc_min_amplitude: Annotated[float, Field(ge=0)] = 0.02  # detrended std / (median |cost| + 0.1)


__all__ = ["DiagnosticsSettings"]
