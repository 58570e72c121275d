"""The equilibrium analysis of a game's players on a fixed batch: what ``ganforge analyze``
(``run.analyze_run``) and ``train.analyze_every`` (equilibrium_callback.py) run.

The run's game is rebuilt from its config (``game.name``, the players of ``model.*``, the cost,
regularizers and auxiliary terms), the checkpoint's weights are loaded into float64 copies of the
players, and the game's costs are computed on one FIXED batch (real examples and latents drawn with
``seed``; the random stream of the regularizers reset to the same state at every evaluation, and the
players' buffers, e.g. batch-norm running statistics or spectral-norm vectors, restored before each), so
that the costs are one deterministic function of the parameters. ``equilibrium.analyze_equilibrium``
then measures that function's gradients, Hessians and game Jacobian; ``equilibrium.path_angle`` the
vector field along the straight line from the run's initialization (rebuilt from ``train.seed``) to the
checkpoint. The result goes to ``DIR/analysis.json`` (``RunDir.analysis_path``), written atomically.

The players run in training mode (batch norm on the batch's statistics: the cost the players were
trained on); the analysis works on copies and changes neither the run's files (besides analysis.json)
nor, during training (``PeriodicAnalysis``), the training players.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ganforge.diagnostics.equilibrium import AnalysisError, analyze_equilibrium, path_angle

__all__ = ["FixedBatch", "analyze_game", "fixed_batch", "game_costs", "json_safe", "latent_generator",
           "summary_lines"]


class FixedBatch:
    """A loader that gives the same batch at every ``next()``: ``(x (n, *shape), y (n,) or None)``."""

    def __init__(self, x: Tensor, y: Tensor | None):
        self.x, self.y = x, y

    def next(self) -> tuple[Tensor, Tensor | None]:
        return self.x, self.y


def _restorer(modules: Sequence[nn.Module]) -> Callable[[], None]:
    buffers = [b for m in modules for b in m.buffers()]
    saved = [b.detach().clone() for b in buffers]

    def restore() -> None:
        with torch.no_grad():
            for b, s in zip(buffers, saved, strict=True):
                b.copy_(s)

    return restore


def _cast_inputs(module: nn.Module, dtype: torch.dtype) -> None:
    """Floating-point tensors given to ``module`` are cast to ``dtype`` (the latents and real examples
    arrive in float32; a game may cast between players with ``.float()``)."""

    def cast(v: Any) -> Any:
        return v.to(dtype) if isinstance(v, Tensor) and v.is_floating_point() and v.dtype != dtype else v

    def hook(mod: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}

    module.register_forward_pre_hook(hook, with_kwargs=True)


def latent_generator(seed: int) -> torch.Generator:
    """The random stream of the fixed batch's latents (and of the regularizers' draws), reset at every
    evaluation of the costs."""
    return torch.Generator().manual_seed(seed * 7919 + 3)


def game_costs(game: Any, players: dict[str, nn.Module], prior: Any, batch: tuple[Tensor, Tensor | None],
               seed: int = 0) -> tuple[dict[str, list[Tensor]], Callable[[], dict[str, Tensor]]]:
    """The game's players' parameters and a ``costs()`` closure on one fixed batch (see the module
    docstring). ``players`` are the modules the costs are differentiated with respect to."""
    from ganforge.game.games import Play

    x, y = batch
    device = x.device
    dtype = next(p for m in players.values() for p in m.parameters()).dtype
    calls = game.call_modules(players)
    restore = _restorer(list(players.values()) + [m for m in calls.values() if isinstance(m, nn.Module)])
    n_scalars = len(getattr(game, "scalars", ()))

    def new_play() -> Play:
        return Play(players=players, calls=calls, loader=FixedBatch(x, y), prior=prior, rng=latent_generator(seed),
                    device=device, batch_size=x.shape[0], sums=torch.zeros(n_scalars, dtype=dtype, device=device))

    reason = game.differentiable(new_play())
    if reason:
        raise AnalysisError(f"analyze: the game's costs cannot be differentiated twice ({reason}); allowed: players "
                            "whose layers have second derivatives")

    def costs() -> dict[str, Tensor]:
        restore()
        play = new_play()
        with torch.random.fork_rng(devices=[]):  # dropout and other draws from the global stream
            torch.manual_seed(seed)
            out = game.costs(play, list(game.players))
        return dict(out)

    params = {name: [p for p in players[name].parameters() if p.requires_grad] for name in game.players}
    return params, costs


def fixed_batch(dataset: Any, batch_size: int, seed: int, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
    """``batch_size`` real examples drawn as the training loader draws them, with ``seed``."""
    from ganforge.data.loader import BatchLoader

    x, y = BatchLoader(dataset, batch_size, seed).next()
    return x.to(dtype), y


def analyze_game(game: Any, players: dict[str, nn.Module], prior: Any, batch: tuple[Tensor, Tensor | None],
                 *, seed: int = 0, start: dict[str, nn.Module] | None = None, path_points: int = 25,
                 **options: Any) -> dict[str, Any]:
    """The equilibrium analysis of ``players`` (float64 copies are made) on ``batch``; with ``start``
    (the same players at the initialization), the path angle from ``start`` to ``players`` at
    ``path_points`` values of α on [0, 1.2], and at α = 1. Returns the JSON-able record."""
    dtype = torch.float64
    work = {k: copy.deepcopy(m).to(dtype).train() for k, m in players.items()}
    for m in work.values():
        m.requires_grad_(True)
        _cast_inputs(m, dtype)
    x, y = batch
    device = next(p for m in work.values() for p in m.parameters()).device
    params, costs = game_costs(game, work, prior, (x.to(device, dtype), None if y is None else y.to(device)), seed)
    result = analyze_equilibrium(params, costs, **options).to_dict()
    # the players compute in float64; a game that casts D's logits with .float() computes its costs from there
    result["cost_dtype"] = str(costs()[game.players[0]].dtype).replace("torch.", "")
    if start is not None and path_points > 0:
        begin = {k: [p.detach().to(dtype) for p in start[k].parameters()] for k in params}
        end = {k: [p.detach().clone() for p in ps] for k, ps in params.items()}
        alphas = np.linspace(0.0, 1.2, int(path_points))
        near = np.abs(alphas - 1.0) < 1e-9
        alphas = np.where(near, 1.0, alphas) if near.any() else np.sort(np.append(alphas, 1.0))  # the checkpoint
        result["path_angle"] = path_angle(begin, end, params, costs, alphas).to_dict()
        result["path_angle"]["from"] = "the initialization (train.seed)"
    return result


def json_safe(obj: Any) -> Any:
    """NaN / inf (from a diverged run) as None: analysis.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def _z(pair: Sequence[float] | None) -> str:
    if pair is None or pair[0] is None or pair[1] is None:
        return "nan"
    re, im = pair
    return f"{re:.4g}" if im == 0 else f"{re:.4g}{'+' if im >= 0 else '-'}{abs(im):.4g}i"


def summary_lines(record: dict[str, Any]) -> list[str]:
    """A few lines for the terminal: the verdict, then the figures it rests on."""
    fmt = lambda v: "nan" if v is None else f"{v:.4g}"  # noqa: E731
    out = [f"step {record.get('step')}: {record['verdict']}"]
    for p in record["players"]:
        out.append(f"  {p:14s} |grad| {fmt(record['gradient_norm'][p])}   Hessian eigenvalues "
                   f"[{fmt(record['hessian_min_eigenvalue'][p])}, {fmt(record['hessian_max_eigenvalue'][p])}]   "
                   f"({record['sizes'][p]} parameters)")
    conv = record["convention"]["name"]
    out.append(f"  game Jacobian ({conv} convention, {record['method']['jacobian']}): largest modulus "
               f"{_z(record['largest_modulus_eigenvalue'])}, least stable {_z(record['least_stable_eigenvalue'])}, "
               f"max |Im|/|lambda| {fmt(record['max_rotation'])}")
    pa = record.get("path_angle")
    if pa:
        cos = [c for a, c in zip(pa["alphas"], pa["cosine"], strict=True) if c is not None and a <= 1.0]
        if cos:
            out.append(f"  path angle from the initialization: cosine {fmt(cos[0])} at alpha 0, "
                       f"{fmt(cos[-1])} at alpha {max(a for a in pa['alphas'] if a <= 1.0):.2f}")
    return out
