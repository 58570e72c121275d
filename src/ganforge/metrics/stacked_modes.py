"""The 1,000-mode count of stacked MNIST (Metz et al. 2017; VEEGAN, Srivastava et al. 2017; PacGAN,
Lin et al. 2018).

A classifier reads each channel of a generated ``(3, 28, 28)`` sample as a digit ``c_R, c_G, c_B``;
the sample's mode is ``100 c_R + 10 c_G + c_B``. Over ``N`` samples (26,000 in the VEEGAN / PacGAN
protocol), with ``n_k`` samples in mode ``k`` and ``p_k = n_k / N``:

- **modes** = ``#{k : n_k >= 1}``, the modes with at least one sample (the published convention);
- **kl** = ``KL(p || u) = sum_k p_k log(p_k / (1/1000)) = log 1000 - H(p)`` in nats, the KL of the
  samples' mode histogram to the uniform distribution over the 1,000 modes, with ``0 log 0 = 0``
  (PacGAN's evaluation: ``sum p log(p / q)`` over the modes with ``p > 0``, q uniform).

Even a perfect generator has ``kl > 0`` at finite ``N``: for a uniform multinomial the expected KL
is about ``(K - 1) / (2 N)`` = 0.019 at ``K = 1000, N = 26000`` (the chi-square approximation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ganforge.metrics._utils import ArrayLike, MetricInputError

__all__ = ["STACKED_MODES", "StackedModes", "stacked_mode_histogram", "stacked_modes", "uniform_kl_expected"]

STACKED_MODES = 1000  # 10 digits ** 3 channels


@dataclass(frozen=True)
class StackedModes:
    """Modes covered and KL to uniform of a stacked-MNIST mode histogram.

    Attributes:
        modes: modes with at least one sample (of ``n_modes``).
        kl: KL(sample histogram || uniform over ``n_modes``) in nats (0 log 0 = 0).
        n_samples: number of samples counted.
        n_modes: number of modes (1,000).
        counts: ``(n_modes,)`` int64 samples per mode.
    """

    modes: int
    kl: float
    n_samples: int
    n_modes: int
    counts: np.ndarray = field(repr=False, compare=False)


def stacked_mode_histogram(labels: ArrayLike, n_digits: int = 10) -> np.ndarray:
    """Samples per mode: from per-channel digits ``(N, C)`` (mode = their base-``n_digits``
    number, first channel most significant: ``100 c_R + 10 c_G + c_B``) or from modes ``(N,)``.
    Returns ``(n_digits ** C,)`` int64 counts (``C = 3`` for modes given directly)."""
    t = torch.as_tensor(labels).detach().cpu()
    if t.is_floating_point() or t.dtype == torch.bool:
        raise MetricInputError(f"stacked modes: labels must be integers, got {t.dtype}")
    t = t.to(torch.int64)
    if t.dim() == 2:
        c = t.shape[1]
        if c < 1:
            raise MetricInputError("stacked modes: digits (N, C) need at least one channel")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_digits):
            raise MetricInputError(f"stacked modes: digits must lie in [0, {n_digits}), got "
                                   f"[{int(t.min())}, {int(t.max())}]")
        weights = torch.tensor([n_digits ** (c - 1 - i) for i in range(c)], dtype=torch.int64)
        modes, n_modes = (t * weights).sum(dim=1), n_digits**c
    elif t.dim() == 1:
        modes, n_modes = t, n_digits**3
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n_modes):
            raise MetricInputError(f"stacked modes: modes must lie in [0, {n_modes}), got [{int(t.min())}, {int(t.max())}]")
    else:
        raise MetricInputError(f"stacked modes: expected digits (N, 3) or modes (N,), got shape {tuple(t.shape)}")
    return torch.bincount(modes, minlength=n_modes).numpy().astype(np.int64)


def stacked_modes(labels: ArrayLike, n_digits: int = 10) -> StackedModes:
    """Modes covered (>= 1 sample) and KL(sample mode histogram || uniform) of stacked-MNIST samples,
    from their per-channel digits ``(N, 3)`` or their modes ``(N,)`` (see the module's docstring)."""
    counts = stacked_mode_histogram(labels, n_digits)
    n = int(counts.sum())
    if n == 0:
        raise MetricInputError("stacked modes: no samples")
    k = counts.shape[0]
    p = counts[counts > 0].astype(np.float64) / n
    kl = float(np.sum(p * np.log(p * k)))
    return StackedModes(modes=int((counts > 0).sum()), kl=max(kl, 0.0), n_samples=n, n_modes=k, counts=counts)


def uniform_kl_expected(n_samples: int, n_modes: int = STACKED_MODES) -> float:
    """The chi-square approximation ``(K - 1) / (2 N)`` of the expected KL to uniform of the
    histogram of ``N`` samples drawn uniformly over ``K`` modes: the floor of a perfect generator."""
    if n_samples < 1 or n_modes < 1:
        raise MetricInputError("uniform_kl_expected: n_samples and n_modes must be >= 1")
    return (n_modes - 1) / (2.0 * n_samples)
