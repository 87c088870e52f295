"""mode_coverage on constructed samples, and prdc against a brute-force reference."""

import math

import numpy as np
import pytest
import torch

from gan_notes import metrics, toy


def test_all_modes_covered():
    ring = toy.ring()
    torch.manual_seed(0)
    out = metrics.mode_coverage(ring.sample(2500), ring.centers, 0.01)
    assert out["modes"] == 8
    # Within 3 sigma of an isotropic 2-D Gaussian: 1 - exp(-9/2) = 98.9% of the mass.
    assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert out["kl"] < 0.01
    assert sum(out["counts"]) == round(out["high_quality"] * 2500)


def test_one_mode_gives_kl_log_k():
    grid = toy.grid()
    samples = grid.centers[7].repeat(100, 1)
    out = metrics.mode_coverage(samples, grid.centers, 0.05)
    assert out["modes"] == 1 and out["high_quality"] == 1.0
    assert out["kl"] == pytest.approx(math.log(25), rel=1e-12)


def test_uniform_junk_is_low_quality():
    ring = toy.ring()
    rng = np.random.default_rng(0)
    junk = rng.uniform(-2, 2, size=(2500, 2))
    out = metrics.mode_coverage(junk, ring.centers.numpy(), 0.01)
    # Area within 3 sigma of the 8 modes over the square's area: 8 pi (0.03)^2 / 16 = 0.14%.
    assert out["high_quality"] < 0.01


def test_no_high_quality_sample_gives_infinite_kl():
    ring = toy.ring()
    out = metrics.mode_coverage(torch.full((10, 2), 5.0), ring.centers, 0.01)
    assert out == {"modes": 0, "high_quality": 0.0, "kl": math.inf, "counts": [0] * 8}


def test_kl_with_weights():
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[0.0, 0.0]] * 3 + [[10.0, 0.0]])
    out = metrics.mode_coverage(samples, centers, 1.0, weights=[0.5, 0.5])
    q = np.array([0.75, 0.25])
    assert out["kl"] == pytest.approx(float(np.sum(q * np.log(q / 0.5))))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"samples": np.zeros((0, 2))}, "samples"),
        ({"samples": np.zeros((5, 3))}, "dimension"),
        ({"samples": np.full((5, 2), np.nan)}, "NaN"),
        ({"std": 0.0}, "std"),
        ({"threshold": -1.0}, "threshold"),
    ],
)
def test_mode_coverage_bad_inputs(kwargs, match):
    args = {"samples": np.zeros((5, 2)), "centers": toy.ring().centers, "std": 0.01}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        metrics.mode_coverage(**args)


def _prdc_reference(real, fake, k):
    """Literal transcription of the definitions, one point at a time."""
    def kth(points, i):
        d = sorted(np.linalg.norm(points - points[i], axis=1))
        return d[k]  # d[0] = 0 is the point itself

    r_real = [kth(real, i) for i in range(len(real))]
    r_fake = [kth(fake, j) for j in range(len(fake))]
    dist = lambda a, b: float(np.linalg.norm(a - b))
    precision = np.mean([any(dist(real[i], y) < r_real[i] for i in range(len(real))) for y in fake])
    recall = np.mean([any(dist(x, fake[j]) < r_fake[j] for j in range(len(fake))) for x in real])
    density = np.mean([sum(dist(real[i], y) < r_real[i] for i in range(len(real))) for y in fake]) / k
    coverage = np.mean([min(dist(real[i], y) for y in fake) < r_real[i] for i in range(len(real))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("seed", [0, 1])
def test_prdc_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(60, 3))
    fake = rng.normal(loc=0.5, scale=1.3, size=(45, 3))
    ours = metrics.prdc(real, fake, k=4)
    ref = _prdc_reference(real, fake, 4)
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_prdc_collapse_has_high_precision_low_recall():
    ring = toy.ring()
    torch.manual_seed(0)
    real = ring.sample(1000)
    collapsed = ring.centers[0] + 0.01 * torch.randn(1000, 2)
    out = metrics.prdc(real, collapsed, k=5)
    assert out["precision"] > 0.9
    assert out["recall"] < 0.2 and out["coverage"] < 0.2


def test_prdc_bad_k():
    with pytest.raises(ValueError, match="k"):
        metrics.prdc(np.zeros((5, 2)), np.zeros((5, 2)), k=5)
