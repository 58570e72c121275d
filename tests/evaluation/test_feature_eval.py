"""evaluate_images: the same numbers as the metric functions on the same features, the floor,
the memorization check, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data import DATASETS
from ganforge.evaluation import (
    ArraySource,
    EvalSettings,
    FeatureError,
    FolderSource,
    TensorSource,
    evaluate_images,
    from_callable,
    load_extractor,
    quantize_8bit,
)
from ganforge.evaluation.feature_metrics import METRICS
from ganforge.metrics import MetricInputError, fid_from_features, kid, prdc


@pytest.fixture(scope="module")
def digits() -> TensorSource:
    d = DATASETS.build("digits", {})
    return TensorSource(d.examples, d.targets, name="digits")


def _noise(n: int, seed: int = 0) -> TensorSource:
    g = torch.Generator().manual_seed(seed)
    return TensorSource(torch.rand(n, 1, 8, 8, generator=g) * 2 - 1, name="noise")


def test_metric_registry() -> None:
    assert METRICS.names() == ["fid", "is", "kid", "memorization", "modes", "prdc", "stacked_modes"]


def test_numbers_equal_the_metric_functions_on_the_same_features(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    fake = TensorSource(digits.images[:300] * 0.8, name="fake")
    settings = EvalSettings(kid_subsets=20, kid_subset_size=100, batch_size=64, seed=5)
    report = evaluate_images(fake, digits, fx, ["fid", "kid", "prdc"], settings=settings)
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():  # the protocol: every image rounded to 8 bits before the features
        real_f = fx(quantize_8bit(digits.images[order])).double()
        fake_f = fx(quantize_8bit(fake.images)).double()
    m = report["metrics"]
    assert m["fid"] == pytest.approx(fid_from_features(real_f, fake_f), rel=1e-5)
    k = kid(real_f, fake_f, n_subsets=20, subset_size=100, seed=5)
    assert m["kid"] == pytest.approx(k.mean, rel=1e-5) and m["kid_std"] == pytest.approx(k.std, rel=1e-5)
    pr, dc = prdc(real_f, fake_f, k=3), prdc(real_f, fake_f, k=5)  # P/R at k = 3, D/C at k = 5
    assert (m["precision"], m["recall"], m["density"], m["coverage"]) == pytest.approx(
        (pr.precision, pr.recall, dc.density, dc.coverage))
    assert report["real"] == {"source": "digits", "n": 1797, "n_reference": 1797}


def test_floor_is_real_vs_real_and_beats_noise(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    names = ["fid", "kid", "is", "prdc", "modes", "memorization"]
    report = evaluate_images(_noise(400), digits, fx, names, floor=True,
                             settings=EvalSettings(kid_subsets=10, batch_size=200))
    floor, m = report["floor"], report["metrics"]
    assert report["real"]["n_reference"] == 899 and report["real"]["n_floor_samples"] == 400
    assert set(floor) == set(m) - {k for k in m if k.startswith("memorization")}
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in floor.values())
    assert 0 <= floor["fid"] < m["fid"] and floor["kid"] < m["kid"]
    assert floor["precision"] > 0.9 and floor["recall"] > 0.9 and floor["coverage"] > m["coverage"]
    assert floor["modes_covered"] == 10 and floor["is"] > 5.0
    assert floor["label_kl"] < 0.05


def test_memorization_flags_copies_of_the_training_half(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    order = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))
    train_half = TensorSource(digits.images[order[:899]], name="copies")
    other_half = TensorSource(digits.images[order[899:]], name="new")
    copied = evaluate_images(train_half, digits, fx, ["memorization"])["metrics"]
    fresh = evaluate_images(other_half, digits, fx, ["memorization"])["metrics"]
    assert copied["memorization_fraction_suspicious"] == 1.0 and copied["memorization_generated_median"] == 0.0
    assert fresh["memorization_fraction_suspicious"] < 0.05 and fresh["memorization_ks_statistic"] < 0.1


def test_explicit_heldout_set(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    report = evaluate_images(_noise(50), TensorSource(digits.images[:1000]), fx, ["memorization"],
                             heldout=TensorSource(digits.images[1000:], name="later digits"))
    assert report["real"]["memorization_heldout"] == "later digits (797)"
    assert report["real"]["memorization_train"] == 1000


def test_small_and_degenerate_samples_give_finite_numbers(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    same = TensorSource(digits.images[:1].repeat(10, 1, 1, 1), name="ten copies")
    for fake in (same, _noise(10)):
        report = evaluate_images(fake, digits, fx, ["fid", "kid", "is", "prdc", "modes"], floor=True,
                                 settings=EvalSettings(kid_subsets=5))
        for v in (*report["metrics"].values(), *report["floor"].values()):
            assert math.isfinite(v)
        assert report["metrics"]["fid"] >= 0
        assert any("SmallSampleWarning" in w for w in report["warnings"])  # 10 samples < 64 dimensions


def test_samples_from_array_and_folder_agree(tmp_path, digits: TensorSource) -> None:
    from PIL import Image

    images = np.round((digits.images[:40, 0].numpy() + 1) * 127.5).astype(np.uint8)  # (40, 8, 8)
    np.save(tmp_path / "s.npy", images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    fx = load_extractor("digits")
    a = evaluate_images(ArraySource(tmp_path / "s.npy"), digits, fx, ["fid", "prdc"])
    b = evaluate_images(FolderSource(folder), digits, fx, ["fid", "prdc"])
    assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-9)


def test_unknown_metric_and_missing_logits(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    with pytest.raises(FeatureError, match="unknown metric.*fjd.*valid: fid, is, kid"):
        evaluate_images(_noise(10), digits, fx, ["fjd"])
    no_logits = from_callable(lambda x: x.flatten(1), name="pixels")
    with pytest.raises(FeatureError, match="is,modes need class logits"):
        evaluate_images(_noise(10), digits, no_logits, ["fid", "is", "modes"])


def test_features_of_mismatched_dimension_are_refused(digits: TensorSource) -> None:
    flaky = {"calls": 0}

    def changing(x):  # the dimension changes after the first batch
        flaky["calls"] += 1
        return x.flatten(1)[:, : 8 if flaky["calls"] == 1 else 6]

    with pytest.raises((FeatureError, MetricInputError), match="dimension 6, expected 8"):
        evaluate_images(_noise(20), digits, from_callable(changing, name="changing"), ["fid"],
                        settings=EvalSettings(batch_size=10))


def test_dropped_modes_are_counted_despite_stray_misclassifications(digits: TensorSource) -> None:
    fx = load_extractor("digits")
    low = digits.labels < 5
    report = evaluate_images(TensorSource(digits.images[low], name="digits 0-4"), digits, fx, ["modes"])
    m = report["metrics"]
    assert m["modes_covered"] == 5 and m["modes_total"] == 10 and m["modes_hit"] >= 5
    assert m["label_kl"] == pytest.approx(math.log(2), abs=0.05)  # half of the classes, each twice as frequent


def test_sample_folder_reads_16_bit_images_by_their_depth(tmp_path):
    """A 16-bit grey PNG among 8-bit ones is read by its real depth (b6bd8ea read it as a constant)."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "samples"
    folder.mkdir()
    ramp8 = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1))
    Image.fromarray(ramp8).save(folder / "a.png")
    ramp16 = ramp8.astype(np.uint16) * 257  # the same intensities at 16 bits
    Image.fromarray(ramp16).save(folder / "b.png")
    assert Image.open(folder / "b.png").mode.startswith("I")
    x = FolderSource(folder).get([0, 1])
    want = torch.from_numpy(ramp8.astype(np.float32) / 127.5 - 1.0)
    torch.testing.assert_close(x[0, 0], want)
    torch.testing.assert_close(x[1, 0], want, atol=1e-6, rtol=0)
