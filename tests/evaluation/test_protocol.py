"""The evaluation protocol: 8-bit quantization (with closed-form FIDs), P/R at k = 3 and D/C at k = 5
against a brute-force reference, and the protocol recorded in the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.evaluation import EvalSettings, TensorSource, evaluate_images, from_callable, quantize_8bit
from ganforge.evaluation.feature_metrics import check_memory, check_metrics
from ganforge.evaluation.features.base import FeatureError
from ganforge.metrics import prdc


def identity_features(shape: tuple[int, int, int] = (1, 2, 2)):
    """Features = the pixels: metrics on them have closed forms."""
    return from_callable(lambda x: x.flatten(1), name="pixels", num_features=int(np.prod(shape)), image_shape=shape)


def test_quantization_is_stylegan2_adas_uint8_conversion() -> None:
    x = torch.rand(2000, 1, 2, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (N, 1, 2, 2) in [-1, 1)
    x = torch.cat([x, torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), -1.0)])
    u = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # stylegan2-ada-pytorch, metrics/metric_utils.py
    assert torch.equal(quantize_8bit(x), u.float() / 127.5 - 1.0)
    assert float((quantize_8bit(x) - x).abs().max()) <= 0.5 / 127.5 + 1e-6  # at most half a step moved


def test_real_images_from_8bit_files_are_not_rounded_a_second_time() -> None:
    u = torch.arange(256, dtype=torch.uint8)
    for x in (u.float() / 127.5 - 1.0,  # ganforge's loaders (data/images.py)
              u.float() / 255.0 * 2.0 - 1.0,  # the other common convention
              torch.from_numpy(u.numpy().astype(np.float32) / 127.5 - 1.0)):  # the sample arrays' (sources.py)
        assert torch.equal(quantize_8bit(x), u.float() / 127.5 - 1.0)  # exactly the same 8-bit levels


def _shifted(offset: float) -> tuple[TensorSource, TensorSource]:
    """Real images on the 8-bit grid, fake = real shifted up by ``offset`` levels (same covariance)."""
    g = torch.Generator().manual_seed(1)
    u = torch.randint(0, 250, (400, 1, 2, 2), generator=g).float()  # levels 0..249: the shift stays in range
    return TensorSource(u / 127.5 - 1.0, name="real"), TensorSource((u + offset) / 127.5 - 1.0, name="fake")


@pytest.mark.parametrize("offset, quantize, levels", [
    (0.7, True, 1.0),  # rounded up to the next level: the mean moves by one level per pixel
    (0.3, True, 0.0),  # rounded back onto the real images: FID 0
    (0.7, False, 0.7),  # floats fed as they are: the mean moves by 0.7 levels
])
def test_quantization_changes_fid_by_the_closed_form(offset: float, quantize: bool, levels: float) -> None:
    # FID of two Gaussians with the same covariance is |mu1 - mu2|^2: here d * (levels / 127.5)^2.
    real, fake = _shifted(offset)
    report = evaluate_images(fake, real, identity_features(), ["fid"], settings=EvalSettings(quantize=quantize))
    assert report["metrics"]["fid"] == pytest.approx(4 * (levels / 127.5) ** 2, rel=1e-4, abs=1e-9)  # float32 pixels
    assert report["protocol"]["quantize"] is quantize


def _brute_force(real: np.ndarray, fake: np.ndarray, pr_k: int, dc_k: int) -> tuple[float, float, float, float]:
    """Kynkäänniemi et al. / Naeem et al. straight from the definitions, with full distance matrices."""
    def kth(x: np.ndarray, k: int) -> np.ndarray:
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    d = np.linalg.norm(fake[:, None] - real[None], axis=-1)  # (m fake, n real)
    r_real_pr, r_fake_pr, r_real_dc = kth(real, pr_k), kth(fake, pr_k), kth(real, dc_k)
    precision = float((d <= r_real_pr[None]).any(axis=1).mean())
    recall = float((d <= r_fake_pr[:, None]).any(axis=0).mean())
    density = float((d <= r_real_dc[None]).sum() / (dc_k * len(fake)))
    coverage = float((d <= r_real_dc[None]).any(axis=0).mean())
    return precision, recall, density, coverage


def test_prdc_uses_k3_for_precision_recall_and_k5_for_density_coverage() -> None:
    g = torch.Generator().manual_seed(3)
    real_x = torch.rand(120, 1, 2, 2, generator=g) * 2 - 1  # continuous values: no ties at the ball edges
    fake_x = (real_x[:100] * 0.6 + 0.2 + 0.25 * torch.rand(100, 1, 2, 2, generator=g)).clamp(-1, 1)
    settings = EvalSettings(quantize=False)  # k alone is under test here
    report = evaluate_images(TensorSource(fake_x), TensorSource(real_x), identity_features(), ["prdc"],
                             settings=settings)
    r, f = real_x.flatten(1).double().numpy(), fake_x.flatten(1).double().numpy()
    expected = _brute_force(r, f, pr_k=3, dc_k=5)
    m = report["metrics"]
    assert (m["precision"], m["recall"], m["density"], m["coverage"]) == pytest.approx(expected, abs=1e-12)
    one_k = _brute_force(r, f, pr_k=5, dc_k=5)  # the k = 5 everywhere of before: a different answer here
    assert (one_k[0], one_k[1]) != pytest.approx(expected[:2], abs=1e-3)
    assert (report["protocol"]["precision_recall_k"], report["protocol"]["density_coverage_k"]) == (3, 5)
    p = prdc(r, f, k=5, pr_k=3)  # the pure function, one pass
    assert (p.precision, p.recall, p.density, p.coverage) == pytest.approx(expected, abs=1e-12)


def test_report_records_the_protocol() -> None:
    real, fake = _shifted(0.7)
    report = evaluate_images(fake, real, identity_features(), ["fid", "kid", "prdc"], floor=True,
                             settings=EvalSettings(seed=7, kid_subsets=3))
    p = report["protocol"]
    assert p["feature_network"]["name"] == "pixels" and p["feature_network"]["dim"] == 4
    assert p["feature_network"]["weights_sha256"].startswith("unknown")  # a callable: no weights file
    assert (p["n_fake"], p["n_real"], p["n_reference"]) == (400, 400, 200)  # --floor: reference = half A
    assert p["reference"] == "real" and "seed 7" in p["reference_split"] and "half A" in p["reference_split"]
    assert (p["quantize"], p["seed"], p["precision_recall_k"], p["density_coverage_k"]) == (True, 7, 3, 5)
    assert (p["kid_subsets"], p["kid_subset_size_max"]) == (3, 1000)
    assert isinstance(p["ganforge_version"], str) and p["ganforge_version"]


def test_memory_check_refuses_what_cannot_fit_and_lets_fid_stream() -> None:
    fx = identity_features()
    kept = check_metrics(["fid", "prdc"], fx)
    check_memory(1_000, fx, kept, ["fid", "prdc"], "x", available=1 << 30)  # 1,000 x 4 floats: fine
    with pytest.raises(FeatureError, match=r"1,000,000,000 images for prdc needs about 14.9 GiB.*--metrics fid"):
        check_memory(10**9, fx, kept, ["fid", "prdc"], "x", available=1 << 30)
    check_memory(10**9, fx, check_metrics(["fid"], fx), ["fid"], "x", available=1 << 30)  # FID alone streams
