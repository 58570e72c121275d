"""Auxiliary costs (AC-GAN, InfoGAN) against hand-computed cross-entropies and Gaussian NLLs."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.game import AUXILIARY, PRIORS


def build(name: str, **params):
    return AUXILIARY.build(name, params, where="game.auxiliary.0")


def ce(logits: list[float], target: int) -> float:
    """-log softmax(logits)[target], by hand."""
    return -(logits[target] - math.log(sum(math.exp(v) for v in logits)))


def gauss_nll(c: float, mean: float, logstd: float) -> float:
    """-log N(c; mean, exp(logstd)^2), by hand."""
    std = math.exp(logstd)
    return math.log(std) + 0.5 * math.log(2 * math.pi) + (c - mean) ** 2 / (2 * std**2)


# -- AC-GAN ------------------------------------------------------------------------------------

REAL = [[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]]
FAKE = [[-0.3, 1.2, 0.4], [3.0, -2.0, 0.1]]
Y = [0, 2]


def test_acgan_terms_are_cross_entropies_on_real_and_fake():
    cost = build("ac_gan", weight=0.5)
    aux_real = {"class_logits": torch.tensor(REAL)}
    aux_fake = {"class_logits": torch.tensor(FAKE)}
    y = torch.tensor(Y)
    ce_real = (ce(REAL[0], 0) + ce(REAL[1], 2)) / 2
    ce_fake = (ce(FAKE[0], 0) + ce(FAKE[1], 2)) / 2
    assert ce_real == pytest.approx(0.5 * (0.2414 + math.log(3)), abs=1e-3)  # sanity of the helper
    d_term = cost.discriminator_term(aux_real, aux_fake, y, torch.zeros(2, 4), None)
    g_term = cost.generator_term(aux_fake, y, torch.zeros(2, 4), None)
    assert d_term.item() == pytest.approx(0.5 * (ce_real + ce_fake), rel=1e-6)
    assert g_term.item() == pytest.approx(0.5 * ce_fake, rel=1e-6)
    assert build("ac_gan").weight == 1.0
    assert build("ac_gan").classify_fakes  # the paper's cost by default


def test_acgan_real_only_classification_for_d():
    cost = build("ac_gan", weight=2.0, classify_fakes=False)
    y = torch.tensor(Y)
    ce_real = (ce(REAL[0], 0) + ce(REAL[1], 2)) / 2
    ce_fake = (ce(FAKE[0], 0) + ce(FAKE[1], 2)) / 2
    d_term = cost.discriminator_term({"class_logits": torch.tensor(REAL)}, {}, y, torch.zeros(2, 4), None)
    g_term = cost.generator_term({"class_logits": torch.tensor(FAKE)}, y, torch.zeros(2, 4), None)
    assert d_term.item() == pytest.approx(2.0 * ce_real, rel=1e-6)  # fakes don't enter D's term
    assert g_term.item() == pytest.approx(2.0 * ce_fake, rel=1e-6)  # G's term is unchanged


def test_acgan_needs_labels_and_a_classifier_head():
    cost = build("ac_gan")
    aux = {"class_logits": torch.tensor(FAKE)}
    with pytest.raises(ConfigError, match="class_conditional"):
        cost.generator_term(aux, None, torch.zeros(2, 4), None)
    with pytest.raises(ConfigError, match=r"game\.auxiliary.*class_logits.*conditioning: acgan"):
        cost.discriminator_term({}, {}, torch.tensor(Y), torch.zeros(2, 4), None)


# -- InfoGAN -----------------------------------------------------------------------------------

def prior():
    # z = [noise (2) | one-hot of 3 | one-hot of 2 | 2 continuous]
    return PRIORS.build("infogan", {"latent_dim": 9, "categorical": [3, 2], "continuous": 2}, where="game.prior")


CAT_A, CAT_B = [2, 0], [1, 1]
CONT = [[0.5, -0.25], [-0.75, 0.9]]
LOGITS = [[0.1, -0.4, 1.3, 0.7, -0.2], [2.0, 0.3, -1.0, 0.0, 0.5]]  # 3 + 2 categorical logits
MEAN = [[0.3, 0.1], [-0.5, 0.2]]
LOGSTD = [[-0.2, 0.4], [0.0, -1.0]]


def codes_batch():
    p = prior()
    z = p.join(torch.randn(2, 2, generator=torch.Generator().manual_seed(0)),
               [torch.tensor(CAT_A), torch.tensor(CAT_B)], torch.tensor(CONT))
    aux = {"code_logits": torch.tensor(LOGITS), "code_mean": torch.tensor(MEAN),
           "code_logstd": torch.tensor(LOGSTD)}
    return p, z, aux


def test_infogan_cost_is_the_mutual_information_bound_by_hand():
    p, z, aux = codes_batch()
    cost = build("infogan", weight_categorical=1.0, weight_continuous=0.1)
    cat = sum(ce(LOGITS[i][:3], CAT_A[i]) + ce(LOGITS[i][3:], CAT_B[i]) for i in range(2)) / 2
    cont = sum(gauss_nll(CONT[i][k], MEAN[i][k], LOGSTD[i][k]) for i in range(2) for k in range(2)) / 2
    expected = 1.0 * cat + 0.1 * cont
    d_term = cost.discriminator_term({}, aux, None, z, p)
    g_term = cost.generator_term(aux, None, z, p)
    assert d_term.item() == pytest.approx(expected, rel=1e-6)
    assert g_term.item() == pytest.approx(expected, rel=1e-6)


def test_infogan_fixed_std_and_weights():
    p, z, aux = codes_batch()
    cost = build("infogan", weight_categorical=2.0, weight_continuous=0.5, learn_std=False)
    cat = sum(ce(LOGITS[i][:3], CAT_A[i]) + ce(LOGITS[i][3:], CAT_B[i]) for i in range(2)) / 2
    cont = sum(gauss_nll(CONT[i][k], MEAN[i][k], 0.0) for i in range(2) for k in range(2)) / 2
    assert cost.generator_term(aux, None, z, p).item() == pytest.approx(2.0 * cat + 0.5 * cont, rel=1e-6)
    only_cat = build("infogan", weight_continuous=0.0)
    assert only_cat.generator_term(aux, None, z, p).item() == pytest.approx(cat, rel=1e-6)


def test_infogan_log_std_is_floored():
    p, z, aux = codes_batch()
    aux["code_logstd"] = torch.full((2, 2), -50.0)
    floor = build("infogan").MIN_LOGSTD
    cost = build("infogan", weight_categorical=0.0, weight_continuous=1.0)
    cont = sum(gauss_nll(CONT[i][k], MEAN[i][k], floor) for i in range(2) for k in range(2)) / 2
    assert cost.generator_term(aux, None, z, p).item() == pytest.approx(cont, rel=1e-5)


def test_infogan_gradient_reaches_the_q_outputs():
    p, z, aux = codes_batch()
    aux = {k: v.clone().requires_grad_(True) for k, v in aux.items()}
    build("infogan").generator_term(aux, None, z, p).backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in aux.values())
    # categorical gradient of the batch-mean cross-entropy: (softmax - onehot) / N
    soft = torch.softmax(torch.tensor(LOGITS)[:, :3], dim=1)
    onehot = torch.nn.functional.one_hot(torch.tensor(CAT_A), 3).float()
    assert torch.allclose(aux["code_logits"].grad[:, :3], (soft - onehot) / 2, atol=1e-6)


def test_infogan_errors_name_what_to_fix():
    p, z, aux = codes_batch()
    cost = build("infogan")
    gaussian = PRIORS.build("gaussian", {"latent_dim": 9}, where="game.prior")
    with pytest.raises(ConfigError, match=r"game\.prior.*infogan prior"):
        cost.generator_term(aux, None, z, gaussian)
    with pytest.raises(ConfigError, match=r"game\.auxiliary.*code_logits.*info_categorical"):
        cost.generator_term({}, None, z, p)
    short = dict(aux, code_logits=aux["code_logits"][:, :3])
    with pytest.raises(ConfigError, match=r"model\.discriminator.*3 categorical logits.*\[3, 2\]"):
        cost.generator_term(short, None, z, p)
