"""Moment matching: the maximum mean discrepancy, its cost and the two games that play it.

MMD (Gretton et al. 2012) compares two distributions through a kernel k:
MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y), x, x' ~ P, y, y' ~ Q. Its unbiased estimator
on samples x_1..x_m ~ P and y_1..y_n ~ Q (Gretton et al. 2012, Lemma 6) is

    MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_{i, j} k(x_i, y_j),

which may be slightly negative. Kernels (each a sum over its list, so that one kernel sees several
scales at once):

- ``gaussian``: sum_sigma exp(-|x - y|^2 / (2 sigma^2)) over ``bandwidths`` (GMMN, Li et al. 2015);
- ``rational_quadratic``: sum_alpha (1 + |x - y|^2 / (2 alpha))^(-alpha) over ``alphas``
  (Binkowski et al. 2018, "Demystifying MMD GANs": alphas 0.2, 0.5, 1, 2, 5).

The cost ``mmd`` (``game.cost: {name: mmd, kernel: ..., bandwidths: [...], alphas: [...]}``) is
unlike the GAN costs in one way: its inputs are not D's logits (N,) but vectors (N, F), each example
flattened (``on_features``). Which vectors is the game's: the examples themselves in ``gmmn``
(real and generated), the critic's feature output in ``mmd_gan``. The GAN game refuses it, and
these two games refuse the logit costs.

Games:

- ``gmmn`` (Li et al. 2015, generative moment matching networks): ONE player, the generator, whose
  cost is MMD^2_u between a batch of G(z) and a batch of real examples. No discriminator.
- ``mmd_gan`` (Li et al. 2017): a critic h (``model.discriminator`` with ``out_features`` > 0, so
  that it returns a feature vector per example) gives the kernel its input: G minimizes
  MMD^2_u(h(x), h(G(z))), the critic maximizes it. Li et al. keep the critic bounded by clipping its
  weights (``game.regularizers: [{name: weight_clip, clip: 0.01}]``); Binkowski et al. 2018 (MMD-GAN-GP)
  penalize instead the gradient of the witness function f(x) = mean_j k(h(x), h(x_j)) -
  mean_j k(h(x), h(G(z_j))): the regularizers of ``game.regularizers`` (gradient_penalty, r1, r2) are
  applied to that witness, a scalar function of the input, in place of a logit (its reference
  features, those of the batch, held fixed). (Li et al.'s
  auto-encoder term on the critic is not part of this game.)

In a distributed run each process estimates MMD^2_u on its slice of the batch; the gradients are
averaged, so the estimator is that of the slice size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.game.games import GAMES, DiscriminatorPass, Game, GameParts, Play, _takes_shard, full_precision
from ganforge.game.losses import COSTS, Cost

Kernel = Callable[[Tensor, Tensor], Tensor]
PositiveList = list[Annotated[float, Field(gt=0)]]

# defaults: GMMN's bandwidths (Li et al. 2015, MNIST: 2, 5, 10, 20, 40, 80); Binkowski et al.'s alphas
GMMN_BANDWIDTHS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)
RQ_ALPHAS = (0.2, 0.5, 1.0, 2.0, 5.0)


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """|x_i - y_j|^2 for ``x (m, F)`` and ``y (n, F)``: ``(m, n)``, clamped at 0 (no square root, so
    the gradient is defined at equal points)."""
    xx = x.pow(2).sum(dim=1, keepdim=True)  # (m, 1)
    yy = y.pow(2).sum(dim=1, keepdim=True).T  # (1, n)
    return (xx + yy - 2.0 * (x @ y.T)).clamp_min(0.0)


def gaussian_kernel(x: Tensor, y: Tensor, bandwidths: Sequence[float] = GMMN_BANDWIDTHS) -> Tensor:
    """sum over sigma in ``bandwidths`` of exp(-|x_i - y_j|^2 / (2 sigma^2)): ``(m, n)``."""
    d2 = squared_distances(x, y)
    return sum(torch.exp(d2 * (-0.5 / (s * s))) for s in bandwidths)  # type: ignore[return-value]


def rational_quadratic_kernel(x: Tensor, y: Tensor, alphas: Sequence[float] = RQ_ALPHAS) -> Tensor:
    """sum over alpha in ``alphas`` of (1 + |x_i - y_j|^2 / (2 alpha))^(-alpha): ``(m, n)``."""
    d2 = squared_distances(x, y)
    return sum((1.0 + d2 * (0.5 / a)).pow(-a) for a in alphas)  # type: ignore[return-value]


def _off_diagonal_mean(k: Tensor) -> Tensor:
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def mmd2_unbiased(x: Tensor, y: Tensor, kernel: Kernel) -> Tensor:
    """MMD^2_u between samples ``x (m, F)`` and ``y (n, F)`` (m, n >= 2); a scalar, differentiable
    in both."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"MMD compares vectors of one size: got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"the unbiased MMD estimator needs at least 2 examples of each, got {x.shape[0]} "
                         f"and {y.shape[0]}")
    return _off_diagonal_mean(kernel(x, x)) + _off_diagonal_mean(kernel(y, y)) - 2.0 * kernel(x, y).mean()


def witness(x: Tensor, real: Tensor, fake: Tensor, kernel: Kernel) -> Tensor:
    """The MMD witness function at ``x (N, F)``: mean_j k(x, real_j) - mean_j k(x, fake_j), ``(N,)``
    (positive where the real sample is denser)."""
    return kernel(x, real).mean(dim=1) - kernel(x, fake).mean(dim=1)


def _flat(x: Tensor) -> Tensor:
    """(N, ...) -> (N, F), in float32 at least."""
    return x.reshape(x.shape[0], -1).to(torch.promote_types(x.dtype, torch.float32))


@COSTS.register("mmd")
class MMD(Cost):
    """MMD^2_u between real and generated vectors (N, F) (not logits: see the module's docstring).
    J(G) = MMD^2_u, J(D) = -MMD^2_u (the critic of ``mmd_gan`` maximizes it). ``kernel`` is
    ``gaussian`` (sum over ``bandwidths``) or ``rational_quadratic`` (sum over ``alphas``)."""

    on_features = True
    generator_needs_real = True

    def __init__(self, kernel: Literal["gaussian", "rational_quadratic"] = "gaussian",  # the kernel's family
                 bandwidths: PositiveList = list(GMMN_BANDWIDTHS),  # noqa: B006  gaussian: the sigmas summed over
                 alphas: PositiveList = list(RQ_ALPHAS)):  # noqa: B006  rational_quadratic: the alphas summed over
        lists = {"gaussian": ("bandwidths", bandwidths), "rational_quadratic": ("alphas", alphas)}
        name, values = lists[kernel]
        if not values:
            raise ValueError(f"the {kernel} kernel needs at least one value in {name}")
        self.kernel_name, self.bandwidths, self.alphas = kernel, [float(b) for b in bandwidths], [float(a) for a in alphas]

    def kernel(self, x: Tensor, y: Tensor) -> Tensor:
        if self.kernel_name == "gaussian":
            return gaussian_kernel(x, y, self.bandwidths)
        return rational_quadratic_kernel(x, y, self.alphas)

    def mmd2(self, real: Tensor, fake: Tensor) -> Tensor:
        """MMD^2_u of the flattened examples, in float32 at least (bf16 features are promoted)."""
        return mmd2_unbiased(_flat(real), _flat(fake), self.kernel)

    def discriminator_cost(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        return -self.mmd2(d_real, d_fake)

    def generator_cost(self, d_fake: Tensor, d_real: Tensor | None = None) -> Tensor:
        if d_real is None:
            raise ValueError("the mmd cost compares the generated examples with real ones: pass both")
        return self.mmd2(d_real, d_fake)

    def __repr__(self) -> str:
        values = self.bandwidths if self.kernel_name == "gaussian" else self.alphas
        return f"MMD(kernel={self.kernel_name!r}, {values})"


def _check_feature_cost(cfg: Any, game: str) -> None:
    cost = COSTS.get(cfg.game.cost.name, "game.cost.name")
    if not getattr(cost, "on_features", False):
        raise ConfigError("game.cost", f"the {game} game compares feature vectors, not logits: it needs a cost on "
                                       f"features such as game.cost: {{name: mmd}}, got {cfg.game.cost.name!r}")
    if cfg.data.params.get("class_conditional"):
        raise ConfigError("data.class_conditional", f"the {game} game matches the distribution of all examples, "
                                                    "not one per class: set data.class_conditional: false")
    if cfg.game.auxiliary:
        raise ConfigError("game.auxiliary", f"the {game} game has no auxiliary terms (AC-GAN / InfoGAN need the gan game)")


@GAMES.register("gmmn")
class GmmnGame(Game):
    """GMMN (Li et al. 2015): one player, the generator, whose cost is MMD^2_u between a batch of
    G(z) and a batch of real examples, both flattened. No discriminator; the update rules step the
    generator alone (``simultaneous`` is then plain gradient descent, like ``alternating``)."""

    players = ("generator",)
    player_kinds = {"generator": "generator"}
    short_names = {"generator": "g"}
    scalars = ("g_cost",)
    scalar_players = ("generator",)
    guarded = ("g_cost",)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        _check_feature_cost(cfg, "gmmn")
        if cfg.game.regularizers:
            raise ConfigError("game.regularizers", "the gmmn game has no discriminator to regularize: remove "
                                                   "game.regularizers")

    def costs(self, play: Play, players: Sequence[str], keep: bool = False) -> dict[str, Tensor]:
        if set(players) != {"generator"}:
            raise ValueError(f"the gmmn game has one player, the generator, not {sorted(players)}")
        real, y = play.real()
        z = play.latent()
        with play.autocast():
            fake = play.calls["generator"](z, y)
        cost = self.parts.cost.generator_cost(_flat(fake), _flat(real))
        play.sums[0] += cost.detach()
        return {"generator": cost}


class _Witness(nn.Module):
    """The MMD witness as a "discriminator" for the regularizers: x -> f(h(x)) (N,), with the
    reference features of the current batch."""

    def __init__(self, critic: nn.Module, real_features: Tensor, fake_features: Tensor, kernel: Kernel):
        super().__init__()
        self.critic, self.kernel = critic, kernel
        self.real_features, self.fake_features = real_features, fake_features

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return witness(_flat(self.critic(x, y)), self.real_features, self.fake_features, self.kernel)


# scalars of mmd_gan: the critic's cost -MMD^2_u (its penalties apart, as in the GAN), the generator's
# MMD^2_u (on the updated critic's features), the penalties, and the critic phase's MMD^2_u
MMD_GAN_SCALARS = ("d_cost", "g_cost", "penalty", "mmd2")


@GAMES.register("mmd_gan")
class MmdGanGame(Game):
    """MMD-GAN (Li et al. 2017): the critic ``discriminator`` (with ``out_features`` > 0) maps each
    example to a feature vector; G minimizes MMD^2_u of the critic's features of real and generated
    examples, the critic maximizes it. The regularizers act on the critic: ``weight_clip`` after its
    steps (the paper), or input-gradient penalties on the MMD witness (MMD-GAN-GP, Binkowski et al.
    2018). Phases as in the GAN: ``n_critic`` critic steps, then one generator step (which reuses the
    last critic step's fakes, against the updated critic, with ``keep``)."""

    players = ("generator", "discriminator")
    player_kinds = {"generator": "generator", "discriminator": "discriminator"}
    short_names = {"generator": "g", "discriminator": "d"}
    adversaries = {"generator": "discriminator"}
    scalars = MMD_GAN_SCALARS
    scalar_players = ("discriminator", "generator", "discriminator", "discriminator")
    guarded = ("d_cost", "g_cost", "penalty")

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        _check_feature_cost(cfg, "mmd_gan")
        if not cfg.model.discriminator.params.get("out_features"):
            raise ConfigError("model.discriminator.out_features", "the mmd_gan game's critic gives the kernel a "
                                                                  "feature vector per example: set out_features "
                                                                  "(e.g. 16) in model.discriminator")

    def __init__(self, parts: GameParts):
        super().__init__(parts)
        self._kept: tuple[Tensor, Tensor, Tensor | None] | None = None

    def schedule(self, n_critic: int) -> tuple[tuple[str, int], ...]:
        return (("discriminator", n_critic), ("generator", 1))

    def call_modules(self, players: dict[str, nn.Module]) -> dict[str, nn.Module]:
        return {"generator": players["generator"],
                "discriminator_pass": DiscriminatorPass(players["discriminator"], False)}

    def _critic_cost(self, play: Play, real: Tensor, fake: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """J(critic) with its penalties, and the features of real and fake (fake's with G's graph
        when ``fake`` has one)."""
        regs = self.parts.regularizers
        if any(r.needs_real_grad for r in regs):
            real = real.detach().requires_grad_(True)
        if any(r.needs_fake_grad for r in regs) and not fake.requires_grad:
            fake = fake.detach().requires_grad_(True)
        with play.autocast():
            h_real, h_fake, _, _ = play.calls["discriminator_pass"](real, fake, y)
        h_real, h_fake = _flat(h_real), _flat(h_fake)
        cost: MMD = self.parts.cost  # type: ignore[assignment]
        mmd2 = cost.mmd2(h_real, h_fake)
        penalty = torch.zeros((), device=mmd2.device)
        if regs:
            ref_real, ref_fake = h_real.detach(), h_fake.detach()  # the witness's reference points, held fixed
            w = _Witness(play.players["discriminator"], ref_real, ref_fake, cost.kernel)
            w_real = witness(h_real, ref_real, ref_fake, cost.kernel)
            w_fake = witness(h_fake, ref_real, ref_fake, cost.kernel)
            for reg in regs:
                shard = ((play.rank, play.world_size),) if _takes_shard(reg) else ()
                p = reg.penalty(w, real, fake, w_real, w_fake, y, play.rng, *shard)
                if p is not None:
                    penalty = penalty + p
        d_cost = -mmd2
        with torch.no_grad():
            m = mmd2.detach()
            zero = torch.zeros_like(m)
            play.sums += torch.stack([-m, zero, penalty.detach(), m])
        return d_cost + penalty, h_real, h_fake

    def _generator_cost(self, play: Play, h_real: Tensor, h_fake: Tensor) -> Tensor:
        cost_g = self.parts.cost.generator_cost(h_fake, h_real)
        play.sums[1] += cost_g.detach()
        return cost_g

    def costs(self, play: Play, players: Sequence[str], keep: bool = False) -> dict[str, Tensor]:
        wanted = set(players)
        if wanted == {"discriminator"}:
            real, y = play.real()
            z = play.latent()
            with torch.set_grad_enabled(keep), play.autocast():
                fake = play.calls["generator"](z, y)
            self._kept = (fake, real, y) if keep else None
            return {"discriminator": self._critic_cost(play, real, full_precision(fake.detach()), y)[0]}
        if wanted == {"generator"}:
            return {"generator": self._generator_phase(play)}
        if wanted == {"generator", "discriminator"}:  # one batch, one critic pass (simultaneous)
            real, y = play.real()
            z = play.latent()
            with play.autocast():
                fake = full_precision(play.calls["generator"](z, y))
            d_cost, h_real, h_fake = self._critic_cost(play, real, fake, y)
            return {"discriminator": d_cost, "generator": self._generator_cost(play, h_real, h_fake)}
        raise ValueError(f"the mmd_gan game has the players generator and discriminator, not {sorted(wanted)}")

    def _generator_phase(self, play: Play) -> Tensor:
        D = play.players["discriminator"]
        if self._kept is not None:
            fake, real, y = self._kept
            self._kept = None
        else:
            real, y = play.real()
            z = play.latent()
            with play.autocast():
                fake = play.calls["generator"](z, y)
        d_params = [p for p in D.parameters() if p.requires_grad]
        for p in d_params:  # no gradients for the critic's weights in G's phase
            p.requires_grad_(False)
        try:
            with play.autocast():
                h_fake = _flat(D(fake, y))
                with torch.no_grad():
                    h_real = _flat(D(real, y))
        finally:
            for p in d_params:
                p.requires_grad_(True)
        return self._generator_cost(play, h_real, h_fake)

    def after_step(self, play: Play, player: str) -> None:
        if player == "discriminator":
            for reg in self.parts.regularizers:
                reg.after_discriminator_step(play.players["discriminator"])
