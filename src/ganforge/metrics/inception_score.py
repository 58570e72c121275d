"""Inception Score (IS) from classifier logits.

Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen (2016), "Improved Techniques for Training
GANs":

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = E_x p(y|x),

computed separately on ``splits`` consecutive parts of the samples (boundaries ``i * N // splits``
as in the reference code), reported as mean and (population) standard deviation over the parts.

Computed in float64 from ``log_softmax``; the marginal uses ``logsumexp``, so tiny probabilities
never turn into ``log(0)``; classes with probability exactly 0 contribute 0 (never NaN).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganforge.metrics._utils import ArrayLike, MeanStd, MetricInputError

__all__ = ["inception_score"]


def _split_score(log_p: Tensor) -> float:
    """``exp(mean_x KL(p(y|x) || p(y)))`` for one part; ``log_p (n, C)`` are log-probabilities."""
    n = log_p.shape[0]
    log_py = torch.logsumexp(log_p, dim=0) - math.log(n)  # (C,) log of the marginal
    p = log_p.exp()  # (n, C)
    terms = torch.where(p > 0, p * (log_p - log_py), torch.zeros_like(p))  # (n, C)
    kl = terms.sum(dim=1).clamp_min(0.0)  # (n,) KL >= 0 up to round-off
    return math.exp(float(kl.mean()))


def inception_score(logits: ArrayLike, splits: int = 10) -> MeanStd:
    """Inception Score (Salimans et al. 2016) of classifier logits ``(N, C)``.

    Args:
        logits: unnormalised class scores, one row per generated sample (e.g. the 1008 logits of
            the FID Inception network). ``-inf`` is allowed (a class with probability 0).
        splits: number of consecutive parts; part ``i`` is ``logits[i*N//splits:(i+1)*N//splits]``.
            Shuffle the rows beforehand if their order is not random.

    Returns:
        ``MeanStd(mean, std)`` over the parts (population standard deviation, as the reference code).

    Raises:
        MetricInputError: fewer samples than splits, NaN / +inf logits, a row with all ``-inf``.
    """
    t = torch.as_tensor(logits)
    if t.dim() != 2:
        raise MetricInputError(f"logits must have shape (N, C), got {tuple(t.shape)}")
    t = t.detach().to(torch.float64)
    if bool(torch.isnan(t).any()) or bool((t == math.inf).any()):
        raise MetricInputError("logits contain NaN or +inf values")
    if not isinstance(splits, int) or splits < 1:
        raise MetricInputError(f"splits must be a positive integer, got {splits!r}")
    n = t.shape[0]
    if n < splits:
        raise MetricInputError(
            f"Inception Score with {splits} splits needs at least {splits} samples, got {n}"
        )
    if t.shape[1] < 1:
        raise MetricInputError("logits have no classes")
    if not bool(torch.isfinite(t).any(dim=1).all()):
        raise MetricInputError("a row of logits is entirely -inf")
    log_p = torch.log_softmax(t, dim=1)  # (N, C)
    scores = torch.tensor(
        [_split_score(log_p[i * n // splits : (i + 1) * n // splits]) for i in range(splits)],
        dtype=torch.float64,
    )
    return MeanStd(float(scores.mean()), float(scores.std(unbiased=False)))
