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


# --- nearest_counts and mode_hopping ---------------------------------------------------------


def test_nearest_counts_by_hand_and_against_brute_force():
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    x = np.array([[0.1, 0.0], [0.9, 0.1], [0.4, 0.0], [0.6, 0.0], [0.0, 1.1], [5.0, 5.0]])
    # nearest: 0, 1, 0, 1, 2 (1.1 from c0, 0.9 from c2), 2 (far away still counts)
    assert metrics.nearest_counts(x, centers) == [2, 2, 2]
    rng = np.random.default_rng(0)
    pts, cs = rng.normal(size=(500, 3)), rng.normal(size=(7, 3))
    brute = np.bincount(np.linalg.norm(pts[:, None] - cs[None], axis=2).argmin(axis=1), minlength=7)
    assert metrics.nearest_counts(torch.as_tensor(pts), cs) == brute.tolist()


def test_nearest_counts_bad_input():
    with pytest.raises(ValueError, match="samples"):
        metrics.nearest_counts(np.zeros((4, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="samples"):
        metrics.nearest_counts(np.full((4, 2), np.nan), np.zeros((2, 2)))


def test_mode_hopping_made_up_run():
    # 8 modes: on mode 0, hop to mode 3, then spread over all 8 (Chapter 09's check).
    counts = [[90, 5, 5, 0, 0, 0, 0, 0], [80, 0, 0, 20, 0, 0, 0, 0], [0, 0, 0, 100, 0, 0, 0, 0],
              [10, 10, 10, 10, 10, 10, 10, 10], [10, 11, 9, 10, 10, 10, 10, 10]]
    h = metrics.mode_hopping(counts)
    # TV by hand: |.9-.8| + .05 + .05 + .2 = .4 -> .2; .8 + .8 -> .8; 7/8; the last row has
    # 80 samples: (1/80 + 1/80) / 2 = 1/80.
    np.testing.assert_allclose(h["tv"], [0.2, 0.8, 7 / 8, 1 / 80], atol=1e-12)
    np.testing.assert_allclose(h["share"], [0.9, 0.8, 1.0, 0.125, 11 / 80], atol=1e-12)
    assert h["dominant"].tolist() == [0, 0, 3, -1, -1]
    assert h["hops"] == 1 and h["dominated"] == pytest.approx(3 / 5)
    assert h["churn"] == pytest.approx((7 / 8 + 1 / 80) / 2)  # pairs 2 -> 3 -> 4, the second half


def test_mode_hopping_counts_hops_across_evaluations_without_a_dominant_mode():
    # dominant 0, none, 0, none, 1, 1, 0: the subsequence 0 0 1 1 0 changes twice.
    rows = [[9, 1], [5, 5], [8, 2], [5, 5], [1, 9], [2, 8], [7, 3]]
    h = metrics.mode_hopping(np.array(rows))
    assert h["dominant"].tolist() == [0, -1, 0, -1, 1, 1, 0]
    assert h["hops"] == 2 and h["dominated"] == pytest.approx(5 / 7)
    # Exactly half is not a majority; the scale of the counts does not matter.
    assert metrics.mode_hopping([[1, 1], [2, 2]])["dominated"] == 0.0
    h2 = metrics.mode_hopping(10 * np.array(rows))
    np.testing.assert_allclose(h2["tv"], h["tv"])
    two = metrics.mode_hopping([[1, 0], [0, 1]])
    assert two["hops"] == 1 and math.isnan(two["churn"])


@pytest.mark.parametrize(
    "counts, pattern",
    [([[1, 2, 3]], "T >= 2"), ([1, 2, 3], "shape"), ([[1, 0], [0, 0]], "no samples"),
     ([[1, -1], [1, 1]], "non-negative"), ([[1, math.nan], [1, 1]], "finite")],
)
def test_mode_hopping_bad_input(counts, pattern):
    with pytest.raises(ValueError, match=pattern):
        metrics.mode_hopping(counts)
