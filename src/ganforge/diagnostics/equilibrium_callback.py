"""The equilibrium analysis during training (``train.analyze_every``): one record per analysis in
``run_dir/analysis.jsonl``, which the HTML report draws over training.

Every ``every`` steps (and at the last step), rank 0 analyzes float64 copies of the training players
on one fixed batch drawn at the start (the same batch at every analysis, so the figures are comparable
along the run): each player's gradient norm and own-Hessian extremes, the game Jacobian's least stable
and largest eigenvalues, the rotation (``equilibrium.analyze_equilibrium``). The players, their
buffers and every random stream of the run are left as they were, so analyzing does not change the
training trajectory. Records past a resume / rollback step are dropped, as metrics.jsonl's are.

The records live in their own file rather than metrics.jsonl: the diagnostics read every
metrics.jsonl record as a logging window.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ganforge.diagnostics.equilibrium_run import analyze_game, fixed_batch, json_safe
from ganforge.rundir import RunDir
from ganforge.train.callbacks import Callback

if TYPE_CHECKING:
    from ganforge.train.state import TrainState
    from ganforge.train.trainer import Trainer

__all__ = ["PeriodicAnalysis", "analysis_record"]

#: the fields of an analysis kept in analysis.jsonl (the whole analysis is ``ganforge analyze``'s)
KEPT = ("players", "sizes", "gradient_norm", "hessian_min_eigenvalue", "hessian_max_eigenvalue",
        "largest_modulus_eigenvalue", "least_stable_eigenvalue", "max_rotation", "stationary", "nash", "stable",
        "kind", "verdict")


def analysis_record(step: int, analysis: dict[str, Any]) -> dict[str, Any]:
    """The line of analysis.jsonl for one analysis (``analyze_game``'s record)."""
    rec: dict[str, Any] = {"step": int(step)}
    rec.update({k: analysis[k] for k in KEPT if k in analysis})
    rec["convention"] = analysis["convention"]["name"]
    rec["method"] = analysis["method"]["jacobian"]
    return json_safe(rec)


class PeriodicAnalysis(Callback):
    """Analyzes the game every ``every`` steps (rank 0 only) into ``run_dir/analysis.jsonl``.

    Args:
        every: analyze when ``step % every == 0`` and at the last step.
        run_dir: where analysis.jsonl lives (default: the trainer's run directory).
        batch_size: examples in the fixed batch (default ``train.batch_size``).
        seed: draws the fixed batch.
        options: for ``analyze_equilibrium`` (method, n_eigenvalues, tolerances).
    """

    def __init__(self, every: int, run_dir: str | Path | None = None, batch_size: int | None = None, seed: int = 0,
                 **options: Any) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"PeriodicAnalysis: every must be a positive integer, got {every!r}")
        self.every, self.run_dir, self.batch_size, self.seed = every, run_dir, batch_size, seed
        self.options = {"n_eigenvalues": 4, **options}
        self.batch: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.history: list[dict[str, Any]] = []

    def _run(self, trainer: Trainer) -> RunDir | None:
        root = self.run_dir if self.run_dir is not None else trainer.run_dir
        return None if root is None else RunDir(root)

    def on_fit_start(self, trainer: Trainer, state: TrainState) -> None:
        if trainer.rank != 0:
            return
        run = self._run(trainer)
        if run is not None:
            run.truncate_log(run.analysis_log_path, state.step, key="step")
        exp = trainer.experiment
        assert exp is not None
        self.batch = fixed_batch(exp.dataset, int(self.batch_size or trainer.cfg.train.batch_size), self.seed,
                                 torch.float64)

    def on_rollback(self, trainer: Trainer, state: TrainState, event: dict[str, Any]) -> None:
        if trainer.rank != 0:
            return
        run = self._run(trainer)
        if run is not None:
            run.truncate_log(run.analysis_log_path, state.step, key="step")

    def analyze(self, trainer: Trainer, state: TrainState) -> dict[str, Any]:
        """The record of one analysis (also appended to analysis.jsonl by ``on_step_end``)."""
        exp = trainer.experiment
        assert exp is not None and self.batch is not None
        game = exp.game
        try:  # a game of its own: the trainer's may hold what it kept between phases
            game = type(game)(game.parts)
        except TypeError:
            game = copy.copy(game)
        t0 = time.perf_counter()
        players = dict(state.players)
        with torch.random.fork_rng(devices=_cuda_devices(players)):
            result = analyze_game(game, players, exp.prior, self.batch, seed=self.seed, path_points=0,
                                  **self.options)
        rec = analysis_record(state.step, result)
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        return rec

    def on_step_end(self, trainer: Trainer, state: TrainState) -> None:
        if trainer.rank != 0:
            return
        if state.step % self.every and state.step != trainer.cfg.train.steps:
            return
        rec = self.analyze(trainer, state)
        self.history.append(rec)
        run = self._run(trainer)
        if run is not None:
            run.append_log(run.analysis_log_path, [rec])


def _cuda_devices(players: dict[str, torch.nn.Module]) -> list[int]:
    found = {p.device.index or 0 for m in players.values() for p in m.parameters() if p.device.type == "cuda"}
    return sorted(found)
