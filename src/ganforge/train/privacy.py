"""Differentially private training of the discriminator (``train.privacy``): DP-SGD with Opacus.

The discriminator is the only player that reads real examples; the generator learns from D's
gradients on its own fakes, so it (and every sample it makes) is post-processing of D and carries D's
guarantee (the DP-GAN argument: Xie et al. 2018; Beaulieu-Jones et al. 2019, the seed's ref 3).

What is done, and why it is sound:

- **Poisson sampling.** Each real example joins a step's batch independently with probability
  q = batch_size / N (the loader's ``poisson_rate``), the sampling the accountants analyse. A table's
  training-by-sampling, which draws rows by their category, is refused: a rare row would be drawn far
  more often than q.
- **Per-example clipping and noise** (Opacus's GradSampleModule hooks and DPOptimizer). D judges real
  and fake examples in one pass; J(D)'s per-example gradients are clipped to ``max_grad_norm / B``
  (B = batch_size; J(D) averages over examples, so this is the clip of B x J(D) at max_grad_norm), summed,
  and Gaussian noise of standard deviation ``noise_multiplier x max_grad_norm / B`` is added. One real
  example changes the sum by at most max_grad_norm / B: the noise multiplier is the Gaussian
  mechanism's. D must judge each example on its own (no packing, batch norm or minibatch statistics),
  and no penalty may differentiate D's input gradient (R1, R2, gradient penalty: the hooks do not
  see double backward); the cost of G must not read D on real examples (relativistic costs).
- **Accounting.** Every D step taken is counted, including steps undone by a divergence rollback
  (the data was read), and written to ``privacy.json`` at every log window; a run resumed after a
  crash adds the steps it may have taken after the last write (one log window). epsilon at ``delta`` is
  computed by Opacus's RDP accountant and, independently, by Google's dp-accounting (RDP); the run
  stops before a step would take either past the target.

Not covered by epsilon: what the data's encoding learned from the data before training (a table's
column ranges and category sets, and its per-column mixtures with ``continuous: mode_specific``);
``privacy.json`` says so.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ganforge.errors import ConfigError
from ganforge.io import write_json_atomic
from ganforge.rundir import RunDir

NOT_COVERED = ("epsilon covers the discriminator's training steps; the data's encoding (a table's column ranges "
               "and category sets, and its mode-specific mixtures) is fitted on the data without noise and is "
               "not covered")


def _opacus() -> Any:
    try:
        import opacus  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the extra is installed with the tests
        raise ConfigError("train.privacy", "differential privacy needs Opacus: pip install 'ganforge[privacy]'") from None
    return opacus


def epsilon_opacus(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """epsilon after ``steps`` Poisson-sampled Gaussian steps, by Opacus's RDP accountant."""
    from opacus.accountants import RDPAccountant  # noqa: PLC0415

    if steps == 0:
        return 0.0
    acc = RDPAccountant()
    acc.history = [(noise_multiplier, sample_rate, steps)]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": a looser bound, still a bound
        warnings.simplefilter("ignore", UserWarning)
        return float(acc.get_epsilon(delta))


def epsilon_dp_accounting(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """The same, by Google's dp-accounting (its own RDP accountant and orders): the cross-check."""
    import dp_accounting  # noqa: PLC0415
    from dp_accounting.rdp import rdp_privacy_accountant  # noqa: PLC0415

    if steps == 0:
        return 0.0
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)), steps)
    acc = rdp_privacy_accountant.RdpAccountant()
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def check_privacy(cfg: Any, experiment: Any, rule: Any, world_size: int) -> None:
    """Refuse, naming the config path, what DP-SGD on D cannot be run with (see the module)."""
    where = "train.privacy"
    game = experiment.game
    D = experiment.players.get("discriminator")
    if D is None:
        raise ConfigError(where, f"the {cfg.game.name} game has no discriminator: differential privacy here is "
                                 "DP-SGD on the discriminator, the player that reads real examples")
    if cfg.train.update.name != "alternating":
        raise ConfigError(where, f"needs the alternating update (the {cfg.train.update.name} update takes gradients "
                                 "the per-example hooks do not see)")
    if world_size > 1:
        raise ConfigError(where, "is for one process (distributed DP-SGD is not supported)")
    if getattr(D, "batch_coupled", False):
        raise ConfigError("model.discriminator", "differential privacy needs a discriminator that judges each "
                                                 "example on its own: pack 1, no minibatch_std, no batch norm")
    if experiment.regularizers:
        names = ", ".join(r.name for r in cfg.game.regularizers)
        raise ConfigError("game.regularizers", f"{names}: penalties on D's input gradient are not supported with "
                                               "differential privacy (the per-example hooks do not see double "
                                               "backward); use a cost that needs no penalty, or weight_clip")
    if experiment.auxiliary:
        raise ConfigError("game.auxiliary", "auxiliary costs are not supported with differential privacy")
    if experiment.cost.generator_needs_real:
        raise ConfigError("game.cost", f"{cfg.game.cost.name}: G's cost reads D on real examples, which would "
                                       "not be private; use non_saturating, wasserstein or hinge")
    data = experiment.dataset
    if not data.is_finite:
        raise ConfigError("data", "differential privacy protects the examples of a finite dataset")
    if getattr(data, "draws_own_batches", False):
        raise ConfigError("data.conditional", "a table's training-by-sampling draws rare rows far more often "
                                              "than the batch rate; set data.conditional: false with privacy")
    if data.n_classes:
        raise ConfigError("data", "class-conditional players are not supported with differential privacy (the "
                                  "fakes' labels would come from the Poisson-sampled real batch)")
    if getattr(type(game), "players", ()) != ("generator", "discriminator"):
        raise ConfigError(where, f"is for a game of one generator and one discriminator, not {game.players}")
    _opacus()
    from opacus.validators import ModuleValidator  # noqa: PLC0415

    problems = ModuleValidator.validate(D, strict=False)
    if problems:
        raise ConfigError("model.discriminator", f"not supported by Opacus's per-example gradients: {problems[0]}")


@dataclass
class PrivacyLedger:
    """The spent budget of a run, as privacy.json records it."""

    noise_multiplier: float
    sample_rate: float
    delta: float
    target_epsilon: float
    max_grad_norm: float
    d_steps: int = 0
    clean: bool = False  # the run stopped normally after the last write

    def epsilon(self, steps: int | None = None) -> dict[str, float]:
        k = self.d_steps if steps is None else steps
        return {"opacus_rdp": epsilon_opacus(self.noise_multiplier, self.sample_rate, k, self.delta),
                "dp_accounting_rdp": epsilon_dp_accounting(self.noise_multiplier, self.sample_rate, k, self.delta)}

    def record(self) -> dict[str, Any]:
        eps = self.epsilon()
        return {"epsilon": max(eps.values()), "delta": self.delta, "accountants": eps,
                "target_epsilon": self.target_epsilon, "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "max_grad_norm": self.max_grad_norm,
                "discriminator_steps": self.d_steps, "clean_stop": self.clean, "mechanism": "DP-SGD on the "
                "discriminator (Opacus), Poisson sampling", "not_covered": NOT_COVERED}


class DifferentialPrivacy:
    """DP-SGD for the discriminator of a run (set up by the trainer when ``train.privacy`` is set)."""

    def __init__(self, cfg: Any, experiment: Any, state: Any, loader: Any, run_dir: Path | None):
        opacus = _opacus()
        from opacus.accountants.utils import get_noise_multiplier  # noqa: PLC0415

        p = cfg.train.privacy
        n = len(experiment.dataset)
        self.batch = cfg.train.batch_size
        if self.batch >= n:
            raise ConfigError("train.batch_size", f"{self.batch} is not below the {n} examples: Poisson sampling "
                                                  "needs a batch rate below 1")
        q = self.batch / n
        planned = cfg.train.steps * cfg.train.n_critic
        sigma = p.noise_multiplier
        if sigma is None:
            sigma = float(get_noise_multiplier(target_epsilon=p.epsilon, target_delta=p.delta, sample_rate=q,
                                               steps=planned, accountant="rdp", epsilon_tolerance=0.005))
        self.path = None if run_dir is None else RunDir(run_dir).privacy_path
        self.ledger = PrivacyLedger(sigma, q, p.delta, p.epsilon, p.max_grad_norm)
        self.n_critic = cfg.train.n_critic
        # Opacus's hooks on D fire in D's backward, whose inputs (real rows, detached fakes) need no gradient
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with "
                                                  "respect to module outputs")
        D: nn.Module = experiment.players["discriminator"]
        # the hooks live on D's own submodules: D stays the player (its checkpoint keys unchanged)
        self._hooks = opacus.GradSampleModule(D, batch_first=True, loss_reduction="sum")
        # J(D) is a mean over the B examples: clipping its per-example gradients at C / B clips B x J(D)'s at C
        opt = opacus.optimizers.DPOptimizer(state.optimizers["discriminator"], noise_multiplier=sigma,
                                            max_grad_norm=p.max_grad_norm / self.batch,
                                            expected_batch_size=self.batch, loss_reduction="sum")
        opt.per_example = True  # Steps.clear_grads clears its per-example gradients too
        opt.hooks = self._hooks  # and Steps.backward quiets them in the other players' backward
        state.optimizers["discriminator"] = opt
        loader.poisson_rate = q
        self.stop_reason: str | None = None
        self._max_steps: int | None = None

    def resume(self) -> None:
        """Take over the budget spent by the run so far (privacy.json), with one log window's margin
        when the run did not stop cleanly after its last write."""
        if self.path is None or not self.path.is_file():
            return
        rec = json.loads(self.path.read_text())
        steps = int(rec.get("discriminator_steps", 0))
        if not rec.get("clean_stop", False):
            steps += int(rec.get("margin_steps", 0))
        self.ledger.d_steps = steps

    def max_steps(self) -> int:
        """The most D steps that keep every accountant within the target epsilon (epsilon grows with the
        steps: a doubling, then a bisection)."""
        if self._max_steps is None:
            def within(k: int) -> bool:
                return max(self.ledger.epsilon(k).values()) <= self.ledger.target_epsilon

            lo, hi = 0, max(self.n_critic, 1)
            while within(hi):
                lo, hi = hi, hi * 2
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if within(mid) else (lo, mid)
            self._max_steps = lo
        return self._max_steps

    def can_step(self) -> bool:
        """Whether one more generator step (n_critic D steps) keeps every accountant within the target."""
        if self.ledger.d_steps + self.n_critic > self.max_steps():
            after = self.ledger.epsilon(self.ledger.d_steps + self.n_critic)
            self.stop_reason = (f"the privacy budget: one more step would spend epsilon "
                                f"{max(after.values()):.3f} > the target {self.ledger.target_epsilon}")
            return False
        return True

    def took_step(self) -> None:
        self.ledger.d_steps += self.n_critic

    def write(self, margin_steps: int, clean: bool = False) -> None:
        self.ledger.clean = clean
        if self.path is not None:
            write_json_atomic(self.path, {**self.ledger.record(), "margin_steps": margin_steps})
