"""The stacked-MNIST mode counter: modes with >= 1 sample and KL(sample histogram || uniform 1,000),
against hand-computed histograms and closed forms; the per-channel classifier on real stacked
examples; ``ganforge eval`` with ``--metrics stacked_modes``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.evaluation import EXTRACTORS, METRICS, default_features, evaluate_images, load_extractor
from ganforge.evaluation.feature_metrics import MetricInputs
from ganforge.evaluation.features.base import FeatureError, Features
from ganforge.evaluation.protocol import EvalSettings
from ganforge.evaluation.sources import TensorSource
from ganforge.evaluation.stacked_modes import StackedMNISTFeatures, channel_digits
from ganforge.metrics import MetricInputError
from ganforge.metrics.fid import GaussianStats
from ganforge.metrics.stacked_modes import stacked_mode_histogram, stacked_modes, uniform_kl_expected

MNIST_DIR = next((p / "shared" / "data" / "mnist" for p in Path(__file__).resolve().parents
                  if (p / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()), Path("/nonexistent"))
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()


# -- the pure function ------------------------------------------------------------------------------

def test_hand_computed_histogram():
    # 6 samples: modes 123 (x3), 0 (x2), 999 (x1)
    digits = torch.tensor([[1, 2, 3], [1, 2, 3], [0, 0, 0], [9, 9, 9], [1, 2, 3], [0, 0, 0]])
    counts = stacked_mode_histogram(digits)
    assert counts.shape == (1000,) and counts.sum() == 6
    assert counts[123] == 3 and counts[0] == 2 and counts[999] == 1
    r = stacked_modes(digits)
    assert r.modes == 3 and r.n_samples == 6 and r.n_modes == 1000
    p = np.array([3, 2, 1]) / 6
    assert r.kl == pytest.approx(float(np.sum(p * np.log(p / (1 / 1000)))), abs=1e-12)
    # the same from the modes directly
    assert stacked_modes(torch.tensor([123, 123, 0, 999, 123, 0])).kl == pytest.approx(r.kl, abs=1e-12)


def test_closed_forms():
    # uniform over all 1,000 modes: KL 0, every mode covered
    r = stacked_modes(torch.arange(1000).repeat(7))
    assert r.modes == 1000 and r.kl == pytest.approx(0.0, abs=1e-12)
    # uniform over m modes: KL = log(1000 / m)
    for m in (1, 10, 99, 500):
        r = stacked_modes(torch.arange(m).repeat(3))
        assert r.modes == m and r.kl == pytest.approx(math.log(1000 / m), abs=1e-12)
    # half the mass on one mode, the rest uniform on the other 999: KL = log 1000 - H(p)
    counts = np.full(1000, 1)
    counts[0] = 999
    r = stacked_modes(torch.from_numpy(np.repeat(np.arange(1000), counts)))
    p = counts / counts.sum()
    assert r.kl == pytest.approx(math.log(1000) + float(np.sum(p * np.log(p))), abs=1e-12)
    assert r.kl == pytest.approx(math.log(1000) - (math.log(2) + 0.5 * math.log(999)), abs=1e-12)


def test_expected_kl_of_a_perfect_generator():
    # the chi-square approximation (K - 1) / (2N) against a simulation of 26,000 uniform draws
    assert uniform_kl_expected(26_000) == pytest.approx(999 / 52_000)
    g = torch.Generator().manual_seed(0)
    kls = [stacked_modes(torch.randint(0, 1000, (26_000,), generator=g)).kl for _ in range(20)]
    assert np.mean(kls) == pytest.approx(uniform_kl_expected(26_000), rel=0.05)


def test_bad_input():
    with pytest.raises(MetricInputError, match="no samples"):
        stacked_modes(torch.zeros(0, 3, dtype=torch.int64))
    with pytest.raises(MetricInputError, match=r"digits must lie in \[0, 10\)"):
        stacked_modes(torch.tensor([[1, 2, 10]]))
    with pytest.raises(MetricInputError, match=r"modes must lie in \[0, 1000\)"):
        stacked_modes(torch.tensor([1000]))
    with pytest.raises(MetricInputError, match="integers"):
        stacked_modes(torch.tensor([1.0, 2.0]))


# -- the per-channel classifier ------------------------------------------------------------------------

def _stub_extractor() -> StackedMNISTFeatures:
    """The per-channel extractor around a stand-in digit 'classifier': the digit is round(mean pixel
    in [0, 1] * 9)."""
    from ganforge.evaluation.features.classifier import ClassifierFeatures, SmallCNN

    class Digit(ClassifierFeatures):
        def _forward(self, x):
            v = ((x.mean(dim=(1, 2, 3)) + 1) / 2 * 9).round().long()
            return torch.zeros(x.shape[0], 4), torch.nn.functional.one_hot(v, 10).float() * 20

    digit = Digit(SmallCNN(28), "stub")
    digit.num_features = 4
    return StackedMNISTFeatures(digit)


def test_mode_logits_argmax_is_the_channel_digits():
    fx = _stub_extractor()
    digits = torch.tensor([[1, 2, 3], [9, 0, 4], [0, 0, 0], [7, 7, 8]])
    x = (digits.float() / 9 * 2 - 1)[:, :, None, None].expand(4, 3, 28, 28).contiguous()
    assert torch.equal(channel_digits(fx, x), digits)
    f, logits = fx.forward_features_and_logits(x)
    assert f.shape == (4, 12) and logits.shape == (4, 1000)
    assert logits.argmax(dim=1).tolist() == [123, 904, 0, 778]
    metric = METRICS.get("stacked_modes")()
    stats = GaussianStats()
    inp = MetricInputs(Features(stats, None, logits), Features(stats, None, logits), None, None, None, 1000,
                       EvalSettings())
    out = metric(inp)
    assert out["stacked_modes"] == 4 and out["stacked_kl"] == pytest.approx(math.log(1000 / 4))
    with pytest.raises(FeatureError, match="stacked_modes needs the 1,000 mode logits"):
        metric(MetricInputs(inp.real, Features(stats, None, logits[:, :10]), None, None, None, 10, EvalSettings()))


def test_registered_and_the_default_for_the_dataset():
    assert "stacked_mnist" in EXTRACTORS and "stacked_modes" in METRICS
    assert default_features("stacked_mnist") == "stacked_mnist" and default_features("mnist") == "mnist"


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST test set not at ../shared/data/mnist")
def test_real_stacked_examples_cover_all_modes_with_small_kl():
    from ganforge.data import DATASETS

    ds = DATASETS.build("stacked_mnist", {"path": str(MNIST_DIR), "split": "test", "size": 10_000, "seed": 7})
    fx = load_extractor("stacked_mnist")
    digits = channel_digits(fx, ds.examples[torch.arange(10_000)])
    accuracy = (digits == ds.digit_targets.long()).float().mean(dim=0)
    assert bool((accuracy > 0.99).all())  # the shipped classifier: ~99.6 % per channel
    r, true = stacked_modes(digits), stacked_modes(ds.targets)
    assert r.modes >= 998 and true.modes >= 998  # 1000 exp(-10) = 0.05 modes expected empty at n = 10,000
    # the true labels' KL: sampling noise ((K - 1) / 2N = 0.050 at n = 10,000) + MNIST's own class
    # imbalance (~0.01); the classifier's 0.4 % errors per channel add little
    assert abs(true.kl - uniform_kl_expected(10_000) - 0.008) < 0.01 and abs(r.kl - true.kl) < 0.005


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST test set not at ../shared/data/mnist")
def test_eval_pipeline_counts_real_examples():
    from ganforge.data import DATASETS

    ds = DATASETS.build("stacked_mnist", {"path": str(MNIST_DIR), "split": "test", "size": 3000, "seed": 1})
    real = TensorSource(ds.examples, ds.targets, name="stacked")
    fake = TensorSource(ds.examples[torch.arange(1000)], name="fake")
    fx = load_extractor("stacked_mnist")
    report = evaluate_images(fake, real, fx, ["stacked_modes", "modes"])
    m = report["metrics"]
    want = stacked_modes(channel_digits(fx, ds.examples[torch.arange(1000)]))
    assert m["stacked_modes"] == want.modes and m["stacked_kl"] == pytest.approx(want.kl, abs=1e-9)
    assert m["modes_hit"] == want.modes and m["stacked_n"] == 1000
