"""Auxiliary costs: extra terms of the game computed from heads that share D's body.

A discriminator with auxiliary heads implements ``forward_aux(x, y) -> (logits (N,), aux dict)``;
the trainer then calls it instead of ``D(x, y)`` and adds each registered auxiliary cost's terms:

- AC-GAN (Odena et al. 2017): D's classifier head predicts the class of real and fake examples;
  D minimizes the classification cost on both, G on its fakes.
- InfoGAN (Chen et al. 2016): a Q head predicts the latent codes c from G(z, c); G and Q maximize a
  lower bound on the mutual information I(c; G(z, c)).

Auxiliary costs, like the costs of losses.py, are pure functions of outputs; they never call backward.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.game.priors import InfoGANPrior, Prior
from ganforge.registry import Registry

NonNegFloat = Annotated[float, Field(ge=0)]
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class AuxiliaryCost:
    """Extra terms added to J(D) and J(G).

    Attributes (checked against the config before anything is built, components.check_game):
        heads: the discriminator's auxiliary heads (``forward_aux`` keys) this cost reads; a head
            that no cost reads, or a cost without its head, is refused.
        required_prior: the registered prior this cost needs, or None.
    """

    heads: tuple[str, ...] = ()
    required_prior: str | None = None

    def discriminator_term(self, aux_real: dict[str, Tensor], aux_fake: dict[str, Tensor], y: Tensor | None,
                           z: Tensor, prior: Prior) -> Tensor | None:
        """Added to J(D); ``z`` is the latent batch that produced the fakes."""
        return None

    def generator_term(self, aux_fake: dict[str, Tensor], y: Tensor | None, z: Tensor, prior: Prior) -> Tensor | None:
        """Added to J(G)."""
        return None


AUXILIARY: Registry[AuxiliaryCost] = Registry("auxiliary cost")


def _head(aux: dict[str, Tensor], key: str, cost: str, hint: str) -> Tensor:
    """An auxiliary head's output by name, or a ConfigError saying which discriminator setting adds it."""
    if key not in aux:
        raise ConfigError("game.auxiliary", f"{cost} needs the discriminator's {key!r} head "
                                            f"(got {sorted(aux) or 'no heads'}); {hint}")
    return aux[key].float()


@AUXILIARY.register("ac_gan")
class ACGANCost(AuxiliaryCost):
    """AC-GAN (Odena et al. 2017): D's classifier head predicts the class of real and fake examples.

    D term: ``weight * (CE(class_logits(x_real), y) + CE(class_logits(G(z, y)), y))``;
    G term: ``weight * CE(class_logits(G(z, y)), y)`` (cross-entropies are batch means). Needs
    ``data.class_conditional: true`` and ``model.discriminator.conditioning: acgan``.

    ``classify_fakes: false`` drops the fakes from D's term, so D's classifier learns from real
    examples only. With the paper's cost D is also trained to recognise G's *intended* class on any
    fake, which lets D and G agree on easily classified, low-diversity fakes (Shu et al. 2017; Gong
    et al. 2019); a classifier of real digits gives G nothing to agree on.
    """

    HINT = "set model.discriminator.conditioning: acgan"
    heads = ("class_logits",)

    def __init__(self, weight: NonNegFloat = 1.0, classify_fakes: bool = True):
        self.weight, self.classify_fakes = weight, classify_fakes

    @staticmethod
    def _labels(y: Tensor | None) -> Tensor:
        if y is None:
            raise ConfigError("game.auxiliary", "ac_gan needs class labels: use a labelled dataset with "
                                                "data.class_conditional: true")
        return y

    def discriminator_term(self, aux_real, aux_fake, y, z, prior):
        y = self._labels(y)
        real = _head(aux_real, "class_logits", "ac_gan", self.HINT)
        cost = F.cross_entropy(real, y)
        if self.classify_fakes:
            cost = cost + F.cross_entropy(_head(aux_fake, "class_logits", "ac_gan", self.HINT), y)
        return self.weight * cost

    def generator_term(self, aux_fake, y, z, prior):
        y = self._labels(y)
        return self.weight * F.cross_entropy(_head(aux_fake, "class_logits", "ac_gan", self.HINT), y)

    def __repr__(self) -> str:
        return f"ACGANCost(weight={self.weight}, classify_fakes={self.classify_fakes})"


@AUXILIARY.register("infogan")
class InfoGANCost(AuxiliaryCost):
    """InfoGAN (Chen et al. 2016): the variational lower bound L_I of the mutual information
    I(c; G(z, c)), through D's Q head, as a cost to minimize (``-L_I`` without the codes' constant
    entropy H(c)):

        weight_categorical * sum_j CE(code_logits_j, c_j)
      + weight_continuous  * sum_k -log N(c_k; code_mean_k, exp(code_logstd_k)^2)

    averaged over the batch of fakes. Both terms of the game are this cost: the D term trains the
    Q head and D's body (G's output detached), the G term trains G. The paper sets lambda = 1 for
    discrete codes and a smaller lambda for continuous ones, so that the differential entropy stays
    on the scale of the GAN costs: defaults 1.0 and 0.1. With ``learn_std: false`` the Gaussian has
    unit variance (the NLL is then the squared error up to constants). The predicted log-std is
    floored at ``MIN_LOGSTD`` so the NLL stays bounded below.

    Needs the ``infogan`` prior and a discriminator with the matching Q head
    (``model.discriminator.info_categorical`` / ``info_continuous``).
    """

    MIN_LOGSTD = -5.0
    HINT = "set model.discriminator.info_categorical / info_continuous to the prior's codes"
    heads = ("code_logits", "code_mean", "code_logstd")
    required_prior = "infogan"

    def __init__(self, weight_categorical: NonNegFloat = 1.0, weight_continuous: NonNegFloat = 0.1,
                 learn_std: bool = True):
        self.weight_categorical, self.weight_continuous = weight_categorical, weight_continuous
        self.learn_std = learn_std

    @staticmethod
    def check_config(prior_params: dict, d_params: dict) -> None:
        """The Q head must predict the prior's codes (read from the config, before anything is built)."""
        want = (list(prior_params.get("categorical", [])), int(prior_params.get("continuous", 0)))
        got = (list(d_params.get("info_categorical", [])), int(d_params.get("info_continuous", 0)))
        if got != want:
            raise ConfigError("model.discriminator.info_categorical",
                              f"the Q head predicts categorical codes {got[0]} and {got[1]} continuous ones, but "
                              f"game.prior has categorical {want[0]} and continuous {want[1]}; set "
                              "model.discriminator.info_categorical / info_continuous to the prior's codes")

    def mutual_information_cost(self, aux_fake: dict[str, Tensor], z: Tensor, prior: Prior) -> Tensor:
        """The cost above, from the Q head's outputs on G(z) and the codes inside z."""
        if not isinstance(prior, InfoGANPrior):
            raise ConfigError("game.prior", f"the infogan auxiliary cost needs the infogan prior, got {prior!r}")
        codes = prior.split(z)
        logits = _head(aux_fake, "code_logits", "infogan", self.HINT)
        mean = _head(aux_fake, "code_mean", "infogan", self.HINT)
        logstd = _head(aux_fake, "code_logstd", "infogan", self.HINT)
        if logits.shape[1] != prior.n_categorical_total or mean.shape[1] != prior.continuous:
            raise ConfigError("model.discriminator", f"the Q head predicts {logits.shape[1]} categorical logits and "
                                                     f"{mean.shape[1]} continuous codes, but game.prior has "
                                                     f"categorical {prior.categorical} and continuous "
                                                     f"{prior.continuous}; {self.HINT}")
        cost = logits.new_zeros(())
        start = 0
        for k, c in zip(prior.categorical, codes.categorical, strict=True):
            cost = cost + self.weight_categorical * F.cross_entropy(logits[:, start : start + k], c)
            start += k
        if prior.continuous:
            logstd = logstd.clamp(min=self.MIN_LOGSTD) if self.learn_std else torch.zeros_like(mean)
            c = codes.continuous.float()
            nll = logstd + _LOG_SQRT_2PI + 0.5 * ((c - mean) * torch.exp(-logstd)) ** 2  # (N, n_continuous)
            cost = cost + self.weight_continuous * nll.sum(dim=1).mean()
        return cost

    def discriminator_term(self, aux_real, aux_fake, y, z, prior):
        return self.mutual_information_cost(aux_fake, z, prior)

    def generator_term(self, aux_fake, y, z, prior):
        return self.mutual_information_cost(aux_fake, z, prior)

    def __repr__(self) -> str:
        return (f"InfoGANCost(weight_categorical={self.weight_categorical}, "
                f"weight_continuous={self.weight_continuous}, learn_std={self.learn_std})")
