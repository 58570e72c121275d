"""Is this point of a game an equilibrium? First- and second-order checks of a differentiable game.

A game of n players is given as
    ``params``: ``{player: [tensor, ...]}``, each player's parameters θ_i (``requires_grad``), and
    ``costs``:  a callable returning ``{player: scalar}``, each player's cost L_i(θ) on a FIXED batch,
               recomputed from the current parameter values on every call.

Everything is computed in the parameters' dtype: give the game in float64 (``module.double()`` and a
float64 batch) for the figures to mean what they say; the result records the dtype it used.

What is measured, with the references:

- ``gradient_norm[i]`` = |∇_{θ_i} L_i|: a stationary point of the game has every one ~0.
- ``hessian_min_eigenvalue[i]``, ``hessian_max_eigenvalue[i]``: the extreme eigenvalues of each player's
  own Hessian ∇²_{θ_i} L_i. A differential Nash equilibrium (Ratliff, Burden & Sastry 2013, 2016) is a
  stationary point where each is positive definite; a local Nash equilibrium needs them positive
  semi-definite. Hessian-vector products by double backward, extremes by Lanczos (ARPACK's ``eigsh``).
- ``jacobian_eigenvalues``: eigenvalues of the game Jacobian, the derivative of the simultaneous-gradient
  vector field ξ(θ) = (∇_{θ_1} L_1, ..., ∇_{θ_n} L_n) (Mescheder et al. 2017; Balduzzi et al. 2018).
  Products Jᵀv = ∇_θ(ξ·v) by double backward (Jᵀ has the eigenvalues of J), then Arnoldi (ARPACK's
  ``eigs``) for the few with the largest modulus and the few closest to instability; a dense
  eigendecomposition below ``dense_below`` parameters (or when asked for).

Sign convention (``convention``, recorded in the result):

- ``"dynamics"`` (the default): the eigenvalues of A = −∂ξ/∂θ, the Jacobian of the gradient flow
  θ' = −ξ(θ), as Mescheder et al. 2018 write it. The Dirac-GAN at (θ, ψ) = (0, 0) has ±i/2, and with
  R1 of weight γ (penalty γ/2·ψ² in the discriminator's cost) −γ/2 ± sqrt(γ²/4 − 1/4). Simultaneous
  gradient descent with small steps is locally stable when every real part is < 0; the least stable
  eigenvalue is the one with the LARGEST real part.
- ``"field"``: the eigenvalues of ∂ξ/∂θ itself (the Jacobian of the field of cost gradients); stable
  when every real part is > 0; the least stable eigenvalue is the one with the SMALLEST real part.

The rotation of the game: eigenvalues with large imaginary parts (``max_rotation``, the largest
|Im λ|/|λ| among those computed), and ``path_angle`` (Berard et al. 2020): the cosine between the
vector field and the straight line from a starting point (e.g. the initialization) to the analyzed
point, along that line.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ganforge.errors import GanforgeError

Params = Mapping[str, Sequence[torch.Tensor]]
Costs = Callable[[], Mapping[str, torch.Tensor]]
Convention = Literal["dynamics", "field"]
Method = Literal["auto", "dense", "iterative"]

CONVENTIONS = {
    "dynamics": "eigenvalues of -dxi/dtheta, the Jacobian of the gradient flow theta' = -xi(theta), "
                "xi = each player's gradient of its own cost (Mescheder et al. 2018); simultaneous gradient "
                "descent is locally stable iff every real part < 0",
    "field": "eigenvalues of dxi/dtheta, xi = each player's gradient of its own cost; simultaneous gradient "
             "descent is locally stable iff every real part > 0",
}


class AnalysisError(GanforgeError, ValueError):
    """The game cannot be analyzed as asked (too large for a dense check, players that do not match)."""


# ----------------------------------------------------------------------------------------------- helpers


def _check_game(params: Params, values: Mapping[str, torch.Tensor]) -> list[str]:
    players = list(params)
    if not players:
        raise AnalysisError("analyze: the game has no players")
    if set(values) != set(players):
        raise AnalysisError(f"analyze: the costs name players {sorted(values)}, the parameters {sorted(players)}; "
                            "each player needs exactly one cost")
    seen: dict[int, str] = {}
    for name in players:
        if not params[name]:
            raise AnalysisError(f"analyze: player {name!r} has no parameters")
        for p in params[name]:
            if not p.requires_grad:
                raise AnalysisError(f"analyze: a parameter of player {name!r} does not require grad")
            if id(p) in seen and seen[id(p)] != name:
                raise AnalysisError(f"analyze: players {seen[id(p)]!r} and {name!r} share a parameter; "
                                    "each parameter belongs to one player")
            seen[id(p)] = name
    for name, v in values.items():
        if v.dim() != 0:
            raise AnalysisError(f"analyze: the cost of player {name!r} has shape {tuple(v.shape)}; a scalar is needed")
    return players


def _flat(tensors: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if t is None else t).reshape(-1) for t, p in zip(tensors, like, strict=True)])


@contextlib.contextmanager
def _twice(what: str) -> Iterator[None]:
    """A layer without second derivatives: one line, not a traceback."""
    try:
        yield
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise AnalysisError(f"analyze: {what} cannot be differentiated twice ({first}); allowed: players whose "
                            "layers have second derivatives") from None


def _check_second_derivatives(grad: torch.Tensor, what: str) -> None:
    """A layer whose backward is ``once_differentiable`` leaves an ``Error`` node in the gradient's graph,
    which would silently read as zero second derivatives (with ``allow_unused``): refuse it."""
    seen: set[int] = set()
    todo = [grad.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if type(node).__name__ in ("Error", "DelayedError"):
            raise AnalysisError(f"analyze: {what} cannot be differentiated twice (a layer's backward is "
                                "once_differentiable); allowed: players whose layers have second derivatives")
        todo.extend(fn for fn, _ in node.next_functions)


class _Field:
    """The simultaneous-gradient field ξ at the current parameters, with its graph kept for products."""

    def __init__(self, params: Params, costs: Costs):
        values = costs()
        self.players = _check_game(params, values)
        self.params = {k: list(params[k]) for k in self.players}
        self.all_params = [p for k in self.players for p in self.params[k]]
        self.sizes = {k: int(sum(p.numel() for p in self.params[k])) for k in self.players}
        self.n = int(sum(self.sizes.values()))
        self.dtype = self.all_params[0].dtype
        self.offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for k in self.players:
            self.offsets[k] = (start, start + self.sizes[k])
            start += self.sizes[k]
        self.grads: dict[str, torch.Tensor] = {}
        for k in self.players:
            with _twice(f"the cost of player {k!r}"):
                g = torch.autograd.grad(values[k], self.params[k], create_graph=True, allow_unused=True)
            self.grads[k] = _flat(g, self.params[k])  # (n_k,)
            _check_second_derivatives(self.grads[k], f"the cost of player {k!r}")
        self.xi = torch.cat([self.grads[k] for k in self.players])  # (n,)

    def gradient_norms(self) -> dict[str, float]:
        return {k: float(self.grads[k].detach().double().norm()) for k in self.players}

    def _vjp(self, out: torch.Tensor, v: np.ndarray, wrt: list[torch.Tensor]) -> np.ndarray:
        if np.iscomplexobj(v):  # ARPACK may hand a complex vector to a real operator
            return self._vjp(out, np.real(v), wrt) + 1j * self._vjp(out, np.imag(v), wrt)
        vt = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=out.dtype, device=out.device)
        dot = torch.dot(out, vt)
        if not dot.requires_grad:  # ξ does not depend on the parameters at all: a zero Jacobian
            return np.zeros(sum(p.numel() for p in wrt))
        with _twice("the game's vector field"):
            g = torch.autograd.grad(dot, wrt, retain_graph=True, allow_unused=True)
        return _flat(g, wrt).detach().double().cpu().numpy()

    def jacobian_t_matvec(self, v: np.ndarray) -> np.ndarray:
        """Jᵀv = ∇_θ(ξ·v), J = ∂ξ/∂θ."""
        return self._vjp(self.xi, v, self.all_params)

    def hessian_matvec(self, player: str, v: np.ndarray) -> np.ndarray:
        """H_i v = ∇_{θ_i}(∇_{θ_i}L_i · v)."""
        return self._vjp(self.grads[player], v, self.params[player])

    def dense_jacobian(self) -> np.ndarray:
        """J = ∂ξ/∂θ, (n, n): row k is ∇_θ ξ_k."""
        eye = np.eye(self.n)
        return np.stack([self.jacobian_t_matvec(eye[k]) for k in range(self.n)])


def _operator(n: int, matvec: Callable[[np.ndarray], np.ndarray]):
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator((n, n), matvec=matvec, dtype=np.float64)


def _hessian_extremes_dense(H: np.ndarray) -> tuple[float, float]:
    eig = np.linalg.eigvalsh(0.5 * (H + H.T))
    return float(eig[0]), float(eig[-1])


def _hessian_extremes_lanczos(n: int, matvec, tol: float, maxiter: int | None) -> tuple[float, float]:
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    op = _operator(n, matvec)
    ncv = min(n, 40)
    try:
        lo = eigsh(op, k=1, which="SA", tol=tol, ncv=ncv, maxiter=maxiter, return_eigenvectors=False)
        hi = eigsh(op, k=1, which="LA", tol=tol, ncv=ncv, maxiter=maxiter, return_eigenvectors=False)
    except ArpackNoConvergence as exc:
        raise AnalysisError(f"analyze: Lanczos did not converge on a Hessian of size {n} within {maxiter} "
                            "iterations; allowed: a dense check (method='dense') or a larger maxiter") from exc
    return float(lo[0]), float(hi[0])


def _arnoldi(n: int, matvec, k: int, tol: float, maxiter: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues of largest modulus, eigenvalues of smallest real part) of the operator."""
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    op = _operator(n, matvec)
    ncv = min(n, max(2 * k + 1, 40))
    try:
        lm = eigs(op, k=k, which="LM", tol=tol, ncv=ncv, maxiter=maxiter, return_eigenvectors=False)
        sr = eigs(op, k=k, which="SR", tol=tol, ncv=ncv, maxiter=maxiter, return_eigenvectors=False)
    except ArpackNoConvergence as exc:
        raise AnalysisError(f"analyze: Arnoldi did not converge on a game Jacobian of size {n} within {maxiter} "
                            "iterations; allowed: a dense check (method='dense') or a larger maxiter") from exc
    return np.asarray(lm), np.asarray(sr)


def _unique(values: np.ndarray, scale: float) -> np.ndarray:
    out: list[complex] = []
    for v in values:
        if not any(abs(v - u) <= 1e-9 * max(scale, 1e-300) for u in out):
            out.append(complex(v))
    return np.asarray(out, dtype=complex)


def _fmt(z: complex) -> str:
    re, im = float(np.real(z)), float(np.imag(z))
    if abs(im) <= 1e-12 * max(abs(re), 1e-300):
        return f"{re:.4g}"
    return f"{re:.4g}{'+' if im >= 0 else '-'}{abs(im):.4g}i"


# ------------------------------------------------------------------------------------------------ result


@dataclass
class EquilibriumAnalysis:
    """What ``analyze_equilibrium`` found. ``to_dict()`` is the JSON of ``DIR/analysis.json``.

    Attributes:
        players: the players, in the order of the parameter vector.
        sizes: parameters per player, and ``total``.
        gradient_norm: |∇_{θ_i} L_i| per player.
        hessian_min_eigenvalue / hessian_max_eigenvalue: extremes of each player's own Hessian.
        jacobian_eigenvalues: the computed eigenvalues of the game Jacobian in ``convention`` (all of them
            for the dense method), least stable first.
        largest_modulus_eigenvalue: the Jacobian's eigenvalue of largest modulus.
        least_stable_eigenvalue: the one closest to (or furthest into) instability: the largest real part
            in the ``dynamics`` convention, the smallest in ``field``.
        max_rotation: the largest |Im λ|/|λ| among the computed eigenvalues (0: no rotation, 1: pure rotation).
        stationary, nash, stable: the three checks; ``stable`` is "stable", "marginal" or "unstable".
        kind: a short name of the verdict; verdict: the verdict in words.
    """

    players: list[str]
    sizes: dict[str, int]
    gradient_norm: dict[str, float]
    hessian_min_eigenvalue: dict[str, float]
    hessian_max_eigenvalue: dict[str, float]
    jacobian_eigenvalues: list[complex]
    largest_modulus_eigenvalue: complex
    least_stable_eigenvalue: complex
    max_rotation: float
    stationary: bool
    nash: bool
    stable: str
    kind: str
    verdict: str
    convention: str
    method: dict[str, Any]
    dtype: str
    tolerances: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("gradient_norm", "hessian_min_eigenvalue", "hessian_max_eigenvalue"):
            d[key] = {k: float(v) + 0.0 for k, v in d[key].items()}  # no -0.0
        pair = lambda z: [float(np.real(z)) + 0.0, float(np.imag(z)) + 0.0]  # noqa: E731 (no -0.0)
        d["jacobian_eigenvalues"] = [pair(z) for z in self.jacobian_eigenvalues]
        d["largest_modulus_eigenvalue"] = pair(self.largest_modulus_eigenvalue)
        d["least_stable_eigenvalue"] = pair(self.least_stable_eigenvalue)
        d["convention"] = {"name": self.convention, "meaning": CONVENTIONS[self.convention]}
        extra = d.pop("extra")
        d.update(extra)
        return d


# ---------------------------------------------------------------------------------------------- analysis


def analyze_equilibrium(params: Params, costs: Costs, *, method: Method = "auto", convention: Convention = "dynamics",
                        n_eigenvalues: int = 6, dense_below: int = 64, dense_max: int = 4096,
                        gradient_tol: float = 1e-4, hessian_tol: float = 1e-6, stability_tol: float = 1e-6,
                        rotation_tol: float = 0.1, arpack_tol: float = 1e-10,
                        maxiter: int | None = None) -> EquilibriumAnalysis:
    """First- and second-order checks of the game at the parameters' current values.

    Args:
        params: each player's parameters (``requires_grad``); players must not share parameters.
        costs: each player's scalar cost on a fixed batch, recomputed on every call.
        method: ``dense`` (every eigenvalue, from the full Jacobian: n double-backward passes; refused above
            ``dense_max`` parameters), ``iterative`` (Lanczos / Arnoldi on products; a game too small for
            ARPACK, under 4 parameters in all or per player, is done densely and recorded so), or ``auto``
            (dense below ``dense_below`` parameters, else iterative).
        convention: ``dynamics`` (eigenvalues of −∂ξ/∂θ) or ``field`` (of ∂ξ/∂θ); see the module docstring.
        n_eigenvalues: iterative method: how many eigenvalues of largest modulus and how many least stable.
        gradient_tol: a player's gradient norm at most this counts as zero (absolute).
        hessian_tol: a Hessian counts as PSD when its smallest eigenvalue ≥ −hessian_tol·max(1, |largest|).
        stability_tol: real parts within ±stability_tol·max(1, |λ_max|) of 0 are "marginal".
        rotation_tol: the verdict speaks of rotation when some eigenvalue has |Im λ|/|λ| above this.
        arpack_tol: relative accuracy asked of ARPACK; maxiter: its iteration limit (None: ARPACK's 10·n).
    """
    if method not in ("auto", "dense", "iterative"):
        raise AnalysisError(f"analyze: method {method!r}; allowed: auto, dense, iterative")
    if convention not in CONVENTIONS:
        raise AnalysisError(f"analyze: convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    with torch.enable_grad():
        fld = _Field(params, costs)
    n = fld.n
    if method == "dense" and n > dense_max:
        raise AnalysisError(f"analyze: a dense check of a game with {n} parameters is too large; allowed: at most "
                            f"{dense_max} parameters (dense_max; --dense-max), or the iterative method")
    dense = method == "dense" or (method == "auto" and n < dense_below) or n < 4
    k = max(1, min(int(n_eigenvalues), n - 2))
    sign = -1.0 if convention == "dynamics" else 1.0

    hmin: dict[str, float] = {}
    hmax: dict[str, float] = {}
    hess_method: dict[str, str] = {}
    if dense:
        J = fld.dense_jacobian()  # (n, n), ∂ξ/∂θ
        eig = np.linalg.eigvals(J)
        for name in fld.players:
            a, b = fld.offsets[name]
            hmin[name], hmax[name] = _hessian_extremes_dense(J[a:b, a:b])
            hess_method[name] = "dense"
        jac_method = "dense"
        computed = eig
    else:
        for name in fld.players:
            m = fld.sizes[name]
            if m < 4 or method == "dense":
                eye = np.eye(m)
                H = np.stack([fld.hessian_matvec(name, eye[i]) for i in range(m)])
                hmin[name], hmax[name] = _hessian_extremes_dense(H)
                hess_method[name] = "dense"
            else:
                hmin[name], hmax[name] = _hessian_extremes_lanczos(
                    m, lambda v, name=name: fld.hessian_matvec(name, v), arpack_tol, maxiter)
                hess_method[name] = "lanczos"
        lm, sr = _arnoldi(n, fld.jacobian_t_matvec, k, arpack_tol, maxiter)
        computed = np.concatenate([lm, sr])
        jac_method = "arnoldi"

    scale = float(np.max(np.abs(computed))) if computed.size else 0.0
    eigs_conv = _unique(sign * computed, scale)  # in the reported convention
    # least stable first: largest real part (dynamics) / smallest (field)
    order = np.lexsort((-eigs_conv.imag, -np.abs(eigs_conv.imag), sign * eigs_conv.real))
    eigs_conv = eigs_conv[order]
    largest = complex(eigs_conv[np.argmax(np.abs(eigs_conv))])
    least = complex(eigs_conv[0])
    mod = np.abs(eigs_conv)
    rot = np.where(mod > 0, np.abs(eigs_conv.imag) / np.where(mod > 0, mod, 1.0), 0.0)
    max_rotation = float(rot.max()) if rot.size else 0.0

    grad_norm = fld.gradient_norms()
    tolerances = {"gradient_tol": gradient_tol, "hessian_tol": hessian_tol, "stability_tol": stability_tol,
                  "rotation_tol": rotation_tol, "arpack_tol": arpack_tol}
    stationary = all(g <= gradient_tol for g in grad_norm.values())
    not_psd = {p: hmin[p] for p in fld.players if hmin[p] < -hessian_tol * max(1.0, abs(hmax[p]))}
    nash = stationary and not not_psd
    margin = stability_tol * max(1.0, scale)
    worst_re = -sign * least.real  # > 0: the flow moves away along this direction
    stable = "stable" if worst_re < -margin else ("marginal" if worst_re <= margin else "unstable")
    rotating = max_rotation > rotation_tol
    rot_z = complex(eigs_conv[int(np.argmax(rot))]) if rot.size else 0j

    kind, verdict = _verdict(fld.players, grad_norm, hmin, not_psd, stationary, stable, least, rotating, rot_z,
                             max_rotation, gradient_tol, convention)
    return EquilibriumAnalysis(
        players=fld.players, sizes={**fld.sizes, "total": n}, gradient_norm=grad_norm,
        hessian_min_eigenvalue=hmin, hessian_max_eigenvalue=hmax, jacobian_eigenvalues=list(eigs_conv),
        largest_modulus_eigenvalue=largest, least_stable_eigenvalue=least, max_rotation=max_rotation,
        stationary=stationary, nash=nash, stable=stable, kind=kind, verdict=verdict, convention=convention,
        method={"jacobian": jac_method, "hessian": hess_method,
                "n_eigenvalues": int(len(eigs_conv)) if dense else k},
        dtype=str(fld.dtype).replace("torch.", ""), tolerances=tolerances)


def _verdict(players, grad_norm, hmin, not_psd, stationary, stable, least, rotating, rot_z, max_rotation,
             gradient_tol, convention) -> tuple[str, str]:
    sign_word = "> 0" if convention == "dynamics" else "< 0"
    if stable == "stable":
        dyn = "simultaneous gradient steps are locally stable"
    elif stable == "marginal":
        dyn = (f"simultaneous gradient steps are not stable: eigenvalue {_fmt(least)} has real part ~0 "
               "(no damping: they cycle or spiral out)")
    else:
        dyn = (f"simultaneous gradient steps are unstable: eigenvalue {_fmt(least)} has real part {sign_word}")
    rot = (f"; rotational dynamics: eigenvalue {_fmt(rot_z)} (|Im|/|λ| = {max_rotation:.3g})" if rotating else "")
    if not stationary:
        moving = ", ".join(f"the {p}'s gradient norm is {grad_norm[p]:.3g}" for p in players
                           if grad_norm[p] > gradient_tol)
        return "not_stationary", f"not an equilibrium: {moving} (> {gradient_tol:g}); locally, {dyn}{rot}"
    if not_psd:
        saddles = ", ".join(f"the {p}'s Hessian has eigenvalue {v:.4g}" for p, v in not_psd.items())
        what = "a locally stable stationary point" if stable == "stable" else "a stationary point"
        kind = "stable_not_nash" if stable == "stable" else "stationary_not_nash"
        return kind, f"{what} that is not a local Nash equilibrium: {saddles} (a saddle of its own cost); {dyn}{rot}"
    if stable == "stable":
        return "local_nash_stable", ("a local Nash equilibrium: gradients ~0, each player's Hessian PSD, "
                                     f"the Jacobian stable{rot}")
    return "local_nash_not_stable", (f"a local Nash equilibrium (gradients ~0, each player's Hessian PSD) where {dyn}"
                                     f"{rot}")


# -------------------------------------------------------------------------------------------- path angle


@dataclass
class PathAngle:
    """The vector field along the straight line θ_α = (1 − α)·θ_start + α·θ_end.

    ``cosine[j]`` = ⟨θ_end − θ_start, ξ(θ_α)⟩ / (|θ_end − θ_start|·|ξ(θ_α)|) (Berard et al. 2020, the
    path-angle; ξ the players' cost gradients, so descent moves along −ξ): on a path that descends to a
    minimum it is −1 before α = 1 and +1 after. Near a locally stable stationary point with rotation it
    is small and switches sign through a bump; a pure rotation around the path's end gives 0.
    ``dot`` is the numerator divided by |θ_end − θ_start| (the field's component along the path),
    ``field_norm`` is |ξ(θ_α)|; ``cosine`` is NaN where the field is exactly 0.
    """

    alphas: list[float]
    cosine: list[float]
    dot: list[float]
    field_norm: list[float]

    def to_dict(self) -> dict[str, Any]:
        clean = lambda xs: [None if not math.isfinite(x) else x for x in xs]  # noqa: E731
        return {"alphas": self.alphas, "cosine": clean(self.cosine), "dot": clean(self.dot),
                "field_norm": clean(self.field_norm),
                "definition": "cos(alpha) = <theta_end - theta_start, xi(theta_alpha)> / (|theta_end - theta_start| "
                              "|xi(theta_alpha)|), theta_alpha = (1-alpha) theta_start + alpha theta_end, xi = each "
                              "player's gradient of its own cost (Berard et al. 2020)"}


def _check_like(params: Params, other: Params, what: str) -> None:
    if list(other) != list(params):
        raise AnalysisError(f"path angle: {what} names players {list(other)}; the game's are {list(params)}")
    for k in params:
        shapes = [tuple(t.shape) for t in other[k]]
        if shapes != [tuple(p.shape) for p in params[k]]:
            raise AnalysisError(f"path angle: {what}'s {k!r} tensors have shapes {shapes}; the game's are "
                                f"{[tuple(p.shape) for p in params[k]]}")


def path_angle(params_start: Params, params_end: Params, params: Params, costs: Costs,
               alphas: Sequence[float] | None = None) -> PathAngle:
    """The path-angle of Berard et al. 2020 between ``params_start`` and ``params_end`` (values of the
    game's parameters, same players and shapes), at ``alphas`` (default 101 points on [−0.1, 1.1]).

    The game's parameters ``params`` are set to each point of the line in turn and restored afterwards.
    """
    _check_like(params, params_start, "params_start")
    _check_like(params, params_end, "params_end")
    alphas = [float(a) for a in (np.linspace(-0.1, 1.1, 101) if alphas is None else alphas)]
    players = list(params)
    flat_p = [p for k in players for p in params[k]]
    start = [t.detach().to(p) for k in players for t, p in zip(params_start[k], params[k], strict=True)]
    end = [t.detach().to(p) for k in players for t, p in zip(params_end[k], params[k], strict=True)]
    saved = [p.detach().clone() for p in flat_p]
    d = torch.cat([(e - s).reshape(-1) for s, e in zip(start, end, strict=True)]).double()
    d_norm = float(d.norm())
    if d_norm == 0.0:
        raise AnalysisError("path angle: params_start and params_end are the same point; a path needs two points")
    cos, dot, norm = [], [], []
    try:
        for a in alphas:
            with torch.no_grad():
                for p, s, e in zip(flat_p, start, end, strict=True):
                    p.copy_((1.0 - a) * s + a * e)
            with torch.enable_grad():
                values = costs()
                _check_game(params, values)
                xi = torch.cat([_flat(torch.autograd.grad(values[k], list(params[k]), allow_unused=True,
                                                          retain_graph=True), list(params[k]))
                                for k in players]).double()
            n_xi = float(xi.norm())
            proj = float(torch.dot(d, xi)) / d_norm
            dot.append(proj)
            norm.append(n_xi)
            cos.append(proj / n_xi if n_xi > 0 else float("nan"))
    finally:
        with torch.no_grad():
            for p, s in zip(flat_p, saved, strict=True):
                p.copy_(s)
    return PathAngle(alphas=alphas, cosine=cos, dot=dot, field_norm=norm)


__all__ = ["CONVENTIONS", "AnalysisError", "EquilibriumAnalysis", "PathAngle", "analyze_equilibrium", "path_angle"]
