"""Unit tests of gan_notes.toy: the ring, the grid and 1-D mixtures."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from gan_notes.toy import Mixture, grid, mixture_1d, ring


def _pairwise_distances(c):
    c = np.asarray(c, dtype=np.float64)
    d = np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1)
    return d[np.triu_indices(len(c), k=1)]


def _nearest_center(x, centers):
    d = torch.cdist(x.double(), centers.double())
    return d.argmin(dim=1).numpy()


def _brute_log_prob(x, centers, stds, weights):
    """log sum_k w_k N(x; c_k, s_k^2 I), in float64 with scipy's logsumexp."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    s = np.asarray(stds, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    dim = c.shape[1]
    sq = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)  # (n, K)
    log_n = -0.5 * dim * np.log(2 * np.pi * s**2) - sq / (2 * s**2)
    return special.logsumexp(log_n + np.log(w), axis=1)


# --- ring --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_modes", [8, 3, 5])
def test_ring_has_distinct_equally_spaced_centers(n_modes):
    r = ring(n_modes)
    c = r.centers.numpy().astype(np.float64)
    assert c.shape == (n_modes, 2)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-6)
    # Angles 2 pi k / n, k = 0..n-1 (a linspace that includes 2 pi would repeat angle 0).
    angles = np.sort(np.mod(np.arctan2(c[:, 1], c[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(n_modes) / n_modes, atol=1e-6)
    # Distinct: neighbours are a chord 2 sin(pi/n) apart.
    dmin = _pairwise_distances(c).min()
    assert dmin > 0
    np.testing.assert_allclose(dmin, 2 * math.sin(math.pi / n_modes), rtol=1e-6)
    assert r.n_modes == n_modes and r.dim == 2


def test_ring_defaults_std_weights_and_radius():
    r = ring()
    assert r.n_modes == 8
    np.testing.assert_allclose(r.std.numpy(), np.full(8, 0.01), rtol=1e-6)
    np.testing.assert_allclose(r.weights.numpy(), np.full(8, 1 / 8), rtol=1e-6)
    big = ring(4, radius=3.0, std=0.2)
    np.testing.assert_allclose(np.linalg.norm(big.centers.numpy(), axis=1), 3.0, rtol=1e-6)
    np.testing.assert_allclose(big.std.numpy(), 0.2, rtol=1e-6)


# --- grid --------------------------------------------------------------------------------


def test_grid_centers_are_the_pacgan_grid():
    g = grid()
    c = g.centers.numpy()
    assert c.shape == (25, 2)
    expected = set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    assert {tuple(map(float, row)) for row in c} == expected
    np.testing.assert_allclose(g.std.numpy(), 0.05, rtol=1e-6)
    np.testing.assert_allclose(g.weights.numpy(), 1 / 25, rtol=1e-6)
    assert _pairwise_distances(c).min() == pytest.approx(2.0)


def test_grid_other_sizes_are_centred():
    g = grid(side=4, spacing=1.0)
    c = g.centers.numpy()
    assert c.shape == (16, 2)
    np.testing.assert_allclose(c.mean(axis=0), 0.0, atol=1e-7)
    np.testing.assert_allclose(np.unique(c[:, 0]), [-1.5, -0.5, 0.5, 1.5])


# --- sampling ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [ring, grid], ids=["ring", "grid"])
def test_samples_cover_the_modes_uniformly(make):
    torch.manual_seed(0)
    m = make()
    n = 10_000
    x = m.sample(n)
    assert x.shape == (n, 2) and x.dtype == torch.float32
    # The mean of a symmetric mixture is 0; its standard error is below 3/sqrt(n) = 0.03.
    np.testing.assert_allclose(x.mean(0).numpy(), 0.0, atol=0.1)
    counts = np.bincount(_nearest_center(x, m.centers), minlength=m.n_modes)
    # Uniform mode frequencies: a chi-square goodness-of-fit test (fixed seed, so this is
    # deterministic; p > 1e-3 fails only for a clearly non-uniform assignment).
    assert stats.chisquare(counts).pvalue > 1e-3
    # Each sample sits near its center: std 0.01 / 0.05 in each coordinate.
    gap = x - m.centers[_nearest_center(x, m.centers)]
    np.testing.assert_allclose(gap.std(0).numpy(), m.std[0].item(), rtol=0.05)


def test_weighted_1d_mixture_samples_follow_the_weights():
    m = mixture_1d([-20.0, 0.0, 20.0], [0.5, 1.0, 2.0], [0.2, 0.3, 0.5])
    n = 20_000
    for gen in (None, torch.Generator().manual_seed(4)):
        torch.manual_seed(1)
        x = m.sample(n, generator=gen)
        assert x.shape == (n, 1)
        idx = _nearest_center(x, m.centers)
        counts = np.bincount(idx, minlength=3)
        assert stats.chisquare(counts, n * np.array([0.2, 0.3, 0.5])).pvalue > 1e-3
        # Per-mode spread is the component std: the nearest-center boundaries lie 5 stds
        # or more from each mode, so assignment errors are negligible (< 1e-6).
        for k, s in enumerate([0.5, 1.0, 2.0]):
            np.testing.assert_allclose(x[idx == k].std().item(), s, rtol=0.06)


def test_sample_with_a_generator_is_reproducible():
    m = ring()
    a = m.sample(500, generator=torch.Generator().manual_seed(11))
    b = m.sample(500, generator=torch.Generator().manual_seed(11))
    c = m.sample(500, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # The global generator is untouched by an explicit one.
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    m.sample(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(3), expected)


def test_sample_with_the_global_seed_is_reproducible():
    m = grid()
    torch.manual_seed(3)
    a = m.sample(200)
    torch.manual_seed(3)
    assert torch.equal(a, m.sample(200))


# --- densities ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [ring, grid, lambda: ring(5, radius=2.0, std=0.7)], ids=["ring", "grid", "wide-ring"])
def test_log_prob_matches_brute_force(make):
    m = make()
    g = torch.Generator().manual_seed(0)
    x = torch.cat([m.sample(200, generator=g), 3 * torch.randn(100, 2, generator=g)])
    got = m.log_prob(x)
    assert got.shape == (300,)
    expected = _brute_log_prob(x.numpy(), m.centers.numpy(), m.std.numpy(), m.weights.numpy())
    # float32 inside torch: relative 1e-5 on values up to ~1e5 in magnitude far from modes.
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(m.prob(x[:200]).double().numpy(), np.exp(expected[:200]), rtol=1e-4)


def test_log_prob_unequal_stds_and_weights():
    m = Mixture([[0.0, 0.0], [1.0, -1.0], [-2.0, 0.5]], [0.3, 1.0, 0.6], [0.5, 0.2, 0.3])
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(2))
    expected = _brute_log_prob(x.numpy(), m.centers.numpy(), [0.3, 1.0, 0.6], [0.5, 0.2, 0.3])
    np.testing.assert_allclose(m.log_prob(x).double().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_mixture_1d_density_integrates_to_one():
    m = mixture_1d([-2.0, 1.0, 3.0], [0.5, 1.0, 0.3], [0.2, 0.5, 0.3])
    x = np.linspace(-15.0, 15.0, 30_001)
    dens = m.prob(torch.tensor(x, dtype=torch.float32)).double().numpy()
    assert dens.shape == x.shape
    # Trapezoid rule on dx = 1e-3 for a smooth density with negligible tails: its error is
    # far below the float32 rounding of the density values (~1e-7 relative).
    np.testing.assert_allclose(np.trapezoid(dens, x), 1.0, rtol=1e-5)
    # ... and matches a sum of scipy normal densities.
    ref = sum(w * stats.norm.pdf(x, mu, s) for mu, s, w in [(-2, 0.5, 0.2), (1, 1.0, 0.5), (3, 0.3, 0.3)])
    np.testing.assert_allclose(dens, ref, rtol=1e-5, atol=1e-10)
    # (n,) and (n, 1) inputs agree in 1-D.
    xt = torch.linspace(-3, 3, 7)
    assert torch.equal(m.log_prob(xt), m.log_prob(xt[:, None]))


def test_repr_names_the_shape():
    assert "K=8" in repr(ring()) and "d=2" in repr(ring())


# --- bad inputs --------------------------------------------------------------------------


def test_bad_weights():
    with pytest.raises(ValueError, match="weights must sum to 1"):
        mixture_1d([0.0, 1.0], 1.0, [0.5, 0.51])
    with pytest.raises(ValueError, match="weights must be finite and non-negative"):
        mixture_1d([0.0, 1.0], 1.0, [1.5, -0.5])
    with pytest.raises(ValueError, match="weights must have K=2"):
        mixture_1d([0.0, 1.0], 1.0, [1.0])
    with pytest.raises(ValueError, match="weights must be finite"):
        mixture_1d([0.0, 1.0], 1.0, [np.nan, 1.0])


@pytest.mark.parametrize("std", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_std(std):
    with pytest.raises(ValueError, match="std must be positive"):
        mixture_1d([0.0], std)
    with pytest.raises(ValueError, match="std must be positive"):
        ring(std=std)


def test_bad_shapes_and_sizes():
    with pytest.raises(ValueError, match="n_modes must be a positive int"):
        ring(0)
    with pytest.raises(ValueError, match="n_modes must be a positive int"):
        ring(2.5)
    with pytest.raises(ValueError, match="radius must be positive"):
        ring(8, radius=0.0)
    with pytest.raises(ValueError, match="side must be a positive int"):
        grid(0)
    with pytest.raises(ValueError, match="spacing must be positive"):
        grid(5, spacing=-1.0)
    with pytest.raises(ValueError, match="std must be a number or K=2"):
        mixture_1d([0.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"centers must have shape \(K, d\)"):
        Mixture(torch.zeros(0, 2), 1.0)
    with pytest.raises(ValueError, match="centers must be finite"):
        Mixture([[0.0, np.nan]], 1.0)


def test_bad_points_and_sample_sizes():
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        ring().log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        ring().log_prob(torch.zeros(5))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1\)"):
        mixture_1d([0.0], 1.0).log_prob(torch.zeros(4, 2))
    for n in (0, -3, 2.0):
        with pytest.raises(ValueError, match="n must be a positive int"):
            ring().sample(n)
