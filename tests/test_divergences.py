"""Unit tests of gan_notes.divergences, each against an independent oracle (SciPy, torch,
a brute-force sum or a closed form), plus hypothesis properties."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import spatial, stats

from gan_notes import divergences as D
from gan_notes.divergences import (
    F_GENERATORS,
    chi2,
    f_divergence,
    js,
    kl,
    kl_normal,
    tv,
    w1_normal,
    wasserstein1,
    wasserstein1_samples,
)

LOG2 = math.log(2.0)
RNG_SEED = 20240601


# --- helpers -----------------------------------------------------------------------------


def _normalise(xs):
    a = np.asarray(xs, dtype=np.float64)
    return a / a.sum()


def _random_simplex(rng, n, zeros=0):
    """A random probability vector with ``zeros`` exact zeros."""
    w = rng.gamma(1.0, size=n)
    if zeros:
        w[rng.choice(n, size=zeros, replace=False)] = 0.0
    return w / w.sum()


def _grid_gaussian(x, mu, sigma):
    """N(mu, sigma^2) on the uniform grid x, normalised so that sum * dx = 1."""
    dx = x[1] - x[0]
    p = stats.norm.pdf(x, mu, sigma)
    return p / (p.sum() * dx)


GRID = np.linspace(-10.0, 10.0, 2001)  # dx = 0.01
DX = GRID[1] - GRID[0]

# Probability vectors for hypothesis: lists of non-negative floats (the full range, with
# subnormals), normalised; all-zero lists are skipped.
_weights = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)


@st.composite
def prob_vectors(draw, n=None, elements=_weights, min_size=1, max_size=8):
    size = n if n is not None else draw(st.integers(min_size, max_size))
    xs = draw(st.lists(elements, min_size=size, max_size=size))
    assume(sum(xs) > 0)
    return _normalise(xs)


@st.composite
def prob_pairs(draw, elements=_weights, count=2):
    n = draw(st.integers(1, 8))
    return tuple(draw(prob_vectors(n=n, elements=elements)) for _ in range(count))


# For comparisons with oracles that form p/q or (p - q)^2 / q we keep the ratios within
# ~1e13: beyond ~1e154 (p/q)^2 overflows, and that is a float limit, not the formula's.
_moderate = st.one_of(st.just(0.0), st.floats(min_value=1e-12, max_value=1.0))


# --- KL ----------------------------------------------------------------------------------


def test_kl_matches_scipy_entropy():
    rng = np.random.default_rng(RNG_SEED)
    for n in (1, 2, 5, 50):
        p, q = _random_simplex(rng, n), _random_simplex(rng, n)
        np.testing.assert_allclose(kl(p, q), stats.entropy(p, q), rtol=1e-12, atol=1e-15)


def test_kl_with_zeros_uses_the_conventions():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    # 0 log 0 = 0: the third entry of p contributes nothing.
    np.testing.assert_allclose(kl(p, q), LOG2, rtol=1e-14)
    np.testing.assert_allclose(kl(p, q), stats.entropy(p, q), rtol=1e-14)
    # p > 0 = q: infinite.
    assert kl(q, p) == np.inf
    assert stats.entropy(q, p) == np.inf


@settings(max_examples=100, deadline=None)
@given(prob_pairs())
def test_kl_is_nonnegative_zero_on_the_diagonal_and_above_pinsker(pq):
    p, q = pq
    assert kl(p, p) == 0.0
    d = kl(p, q)
    assert d >= -1e-15  # rounding only
    # Pinsker: KL >= 2 TV^2, so KL > 0 whenever p and q differ measurably.
    t = float(tv(p, q))
    assert d >= 2 * t**2 - 1e-12
    if t > 1e-6:
        assert d > 0


def test_kl_on_a_grid_with_dx_matches_the_closed_form():
    p, q = _grid_gaussian(GRID, 0.0, 1.0), _grid_gaussian(GRID, 1.0, 1.5)
    # The integrand is smooth and its tails beyond +-10 are < 1e-20, so the Riemann sum
    # on dx = 0.01 is accurate far below 1e-6.
    np.testing.assert_allclose(kl(p, q, dx=DX), kl_normal(0.0, 1.0, 1.0, 1.5), rtol=1e-6)
    # Forgetting dx is a different number (guards against ignoring it).
    with pytest.raises(ValueError, match="p must sum to 1"):
        kl(p, q)


# --- JS ----------------------------------------------------------------------------------


def test_js_matches_scipy_jensenshannon_squared():
    rng = np.random.default_rng(RNG_SEED + 1)
    for n, zeros in ((2, 0), (6, 0), (6, 2), (40, 10)):
        p, q = _random_simplex(rng, n, zeros), _random_simplex(rng, n, zeros)
        # SciPy returns the Jensen-Shannon *distance*, the square root of the divergence.
        np.testing.assert_allclose(js(p, q), spatial.distance.jensenshannon(p, q) ** 2, rtol=1e-10)


def test_js_of_disjoint_supports_is_log2():
    np.testing.assert_allclose(js([1.0, 0.0], [0.0, 1.0]), LOG2, rtol=1e-15)
    np.testing.assert_allclose(js([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]), LOG2, rtol=1e-15)


def test_js_stays_finite_where_the_mixture_underflows():
    # N(0,1) and N(-3,1) on a wide grid: p holds the smallest subnormal (5e-324) where q is
    # exactly 0, so m = (p + q)/2 rounds to 0. JS is bounded by log 2 whatever the grid.
    x = np.linspace(-50.0, 50.0, 10001)
    dx = x[1] - x[0]
    p, q = _grid_gaussian(x, 0.0, 1.0), _grid_gaussian(x, -3.0, 1.0)
    assert np.any((p > 0) & (q == 0) & (0.5 * (p + q) == 0))  # the situation is present
    # On the narrow grid the tails are negligible: same value.
    expected = js(_grid_gaussian(GRID, 0.0, 1.0), _grid_gaussian(GRID, -3.0, 1.0), dx=DX)
    np.testing.assert_allclose(js(p, q, dx=dx), expected, rtol=1e-9)
    np.testing.assert_allclose(float(js(torch.tensor(p), torch.tensor(q), dx=dx)), expected, rtol=1e-9)
    # The smallest case: a single subnormal entry.
    np.testing.assert_allclose(js([1.0, 5e-324], [1.0, 0.0]), 0.0, atol=1e-300)


@settings(max_examples=100, deadline=None)
@given(prob_pairs())
def test_js_is_symmetric_and_bounded(pq):
    p, q = pq
    a, b = js(p, q), js(q, p)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert -1e-15 <= a <= LOG2 + 1e-12
    assert js(p, p) == 0.0


@settings(max_examples=100, deadline=None)
@given(prob_pairs(count=3))
def test_sqrt_js_satisfies_the_triangle_inequality(pqr):
    p, q, r = pqr

    def dist(a, b):
        return math.sqrt(max(float(js(a, b)), 0.0))

    assert dist(p, r) <= dist(p, q) + dist(q, r) + 1e-9


# --- TV and chi^2 ------------------------------------------------------------------------


def test_tv_and_chi2_match_brute_force_sums():
    rng = np.random.default_rng(RNG_SEED + 2)
    for n in (1, 3, 17):
        p, q = _random_simplex(rng, n), _random_simplex(rng, n)
        tv_sum = 0.5 * sum(abs(a - b) for a, b in zip(p, q))
        chi_sum = sum((a - b) ** 2 / b for a, b in zip(p, q))
        np.testing.assert_allclose(tv(p, q), tv_sum, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(chi2(p, q), chi_sum, rtol=1e-12, atol=1e-15)


def test_chi2_with_zeros():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    # Terms with p = 0 < q give q: 2 * 0.25^2 / 0.25 + 0.5.
    np.testing.assert_allclose(chi2(p, q), 1.0, rtol=1e-14)
    assert chi2(q, p) == np.inf  # q > 0 = p
    assert chi2([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0  # 0/0 terms count as 0


def test_tv_and_chi2_on_a_grid_with_dx():
    p, q = _grid_gaussian(GRID, 0.0, 1.0), _grid_gaussian(GRID, 0.5, 1.0)
    # TV(N(0,1), N(d,1)) = 2 Phi(d/2) - 1; chi^2 = exp(d^2) - 1. Riemann sums of smooth
    # integrands with negligible tails: 1e-6 is loose (|p - q| has a kink: O(dx^2)).
    np.testing.assert_allclose(tv(p, q, dx=DX), 2 * stats.norm.cdf(0.25) - 1, rtol=1e-5)
    np.testing.assert_allclose(chi2(p, q, dx=DX), math.expm1(0.25), rtol=1e-6)


@settings(max_examples=100, deadline=None)
@given(prob_pairs())
def test_tv_is_in_unit_interval_and_chi2_nonnegative(pq):
    p, q = pq
    t = tv(p, q)
    assert 0.0 <= t <= 1.0 + 1e-12
    assert tv(p, p) == 0.0
    assert chi2(p, q) >= 0.0
    # chi^2 >= 4 TV^2 (by Cauchy-Schwarz): a check that is not trivially true.
    assert chi2(p, q) >= 4 * float(t) ** 2 * (1 - 1e-9) - 1e-12


# --- f-divergences -----------------------------------------------------------------------


def _expected_f(name, p, q, dx=1.0):
    return {
        "kl": lambda: kl(p, q, dx),
        "reverse_kl": lambda: kl(q, p, dx),
        "js": lambda: js(p, q, dx),
        "tv": lambda: tv(p, q, dx),
        "pearson": lambda: chi2(p, q, dx),
    }[name]()


def test_f_generators_lists_the_book_table():
    assert set(F_GENERATORS) == {"kl", "reverse_kl", "js", "tv", "pearson"}
    for name, (f, _) in F_GENERATORS.items():
        # Each generator is an f-divergence generator: f(1) = 0.
        np.testing.assert_allclose(f(np.array([1.0])), 0.0, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", sorted(F_GENERATORS))
def test_f_divergence_matches_the_dedicated_functions(name):
    rng = np.random.default_rng(RNG_SEED + 3)
    f, slope = F_GENERATORS[name]
    cases = [(_random_simplex(rng, 7), _random_simplex(rng, 7)) for _ in range(3)]
    # Vectors with zeros: 0 log 0 = 0 and p > 0 = q (the slope at infinity) both occur.
    cases += [
        (np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])),
        (np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.5, 0.0])),
        (np.array([0.0, 0.3, 0.7, 0.0]), np.array([0.0, 0.6, 0.0, 0.4])),
        (np.array([1.0, 0.0]), np.array([0.0, 1.0])),
    ]
    for p, q in cases:
        expected = _expected_f(name, p, q)
        got = f_divergence(p, q, f, slope)
        if np.isinf(expected):
            assert got == np.inf, (name, p, q)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", sorted(F_GENERATORS))
@settings(max_examples=50, deadline=None)
@given(pq=prob_pairs(elements=_moderate))
def test_f_divergence_matches_on_random_vectors(name, pq):
    p, q = pq
    expected = _expected_f(name, p, q)
    got = f_divergence(p, q, *F_GENERATORS[name])
    if np.isinf(expected):
        assert got == np.inf
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-13)


def test_f_divergence_on_a_grid_with_dx():
    p, q = _grid_gaussian(GRID, 0.0, 1.0), _grid_gaussian(GRID, 1.0, 1.2)
    for name in F_GENERATORS:
        got = f_divergence(p, q, *F_GENERATORS[name], dx=DX)
        expected = _expected_f(name, p, q, DX)
        np.testing.assert_allclose(got, expected, rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_f_divergence_never_returns_nan_when_the_ratio_overflows(dtype):
    # q > 0 so small that p/q overflows (1e-40 is subnormal in float32; 1e-310 in float64):
    # q f(p/q) is then at its limit p f'(inf), and the finite-slope divergences agree
    # with the dedicated functions.
    tiny = 1e-40 if dtype == torch.float32 else 1e-310
    p = torch.tensor([0.5, 0.5], dtype=dtype)
    q = torch.tensor([1.0 - tiny, tiny], dtype=dtype)
    for name, (f, slope) in F_GENERATORS.items():
        for a, b in ((p, q), (p.numpy().astype(np.float64), q.numpy().astype(np.float64))):
            got = f_divergence(a, b, f, slope)
            assert not math.isnan(float(got)), name
            assert float(got) >= 0.0, name
            if math.isfinite(slope):
                expected = _expected_f(name, a, b)
                np.testing.assert_allclose(float(got), float(expected), rtol=1e-5, err_msg=name)
        if math.isfinite(slope):
            # The value is finite, and so is its torch gradient: no NaN leaks from f(inf)
            # in the branch that where() discards.
            pg, qg = p.clone().requires_grad_(True), q.clone().requires_grad_(True)
            f_divergence(pg, qg, f, slope).backward()
            assert torch.isfinite(pg.grad).all() and torch.isfinite(qg.grad).all(), name


# --- Wasserstein-1 -----------------------------------------------------------------------


def test_wasserstein1_weights_match_scipy():
    rng = np.random.default_rng(RNG_SEED + 4)
    for n in (1, 2, 10, 64):
        x = np.sort(rng.normal(size=n) * 3)
        x = np.unique(x)  # strictly increasing
        p, q = _random_simplex(rng, x.size, zeros=x.size // 3), _random_simplex(rng, x.size)
        np.testing.assert_allclose(
            wasserstein1(p, q, x), stats.wasserstein_distance(x, x, p, q), rtol=1e-10, atol=1e-14
        )


def test_wasserstein1_of_diracs_is_their_distance():
    x = np.array([-1.0, 0.5, 3.0])
    np.testing.assert_allclose(wasserstein1([1, 0, 0], [0, 0, 1], x), 4.0, rtol=1e-15)
    np.testing.assert_allclose(wasserstein1([0, 1, 0], [0, 0, 1], x), 2.5, rtol=1e-15)


def test_wasserstein1_densities_equal_weights():
    p, q = _grid_gaussian(GRID, -0.3, 0.7), _grid_gaussian(GRID, 1.1, 1.3)
    np.testing.assert_allclose(wasserstein1(p, q, GRID), wasserstein1(p * DX, q * DX, GRID), rtol=1e-12)
    np.testing.assert_allclose(
        wasserstein1(p, q, GRID), stats.wasserstein_distance(GRID, GRID, p, q), rtol=1e-10
    )


def test_wasserstein1_samples_matches_scipy():
    rng = np.random.default_rng(RNG_SEED + 5)
    for n, m in ((1, 1), (50, 50), (7, 11), (100, 3), (64, 96)):
        a, b = rng.normal(size=n), rng.normal(1.0, 2.0, size=m)
        np.testing.assert_allclose(
            wasserstein1_samples(a, b), stats.wasserstein_distance(a, b), rtol=1e-10, atol=1e-14
        )


def test_wasserstein1_samples_equal_sizes_is_mean_sorted_gap():
    a = np.array([3.0, -1.0, 2.0])
    b = np.array([0.0, 0.0, 10.0])
    # sorted: (-1, 2, 3) vs (0, 0, 10): |-1| + 2 + 7 = 10, over 3.
    np.testing.assert_allclose(wasserstein1_samples(a, b), 10.0 / 3.0, rtol=1e-15)


# --- Gaussian closed forms ---------------------------------------------------------------


@pytest.mark.parametrize("mu1, s1, mu2, s2", [(0.0, 1.0, 1.0, 1.5), (0.5, 0.8, -0.5, 1.0), (0.0, 1.0, 0.0, 1.0)])
def test_kl_normal_matches_a_grid_integral_and_torch(mu1, s1, mu2, s2):
    p, q = _grid_gaussian(GRID, mu1, s1), _grid_gaussian(GRID, mu2, s2)
    closed = kl_normal(mu1, s1, mu2, s2)
    # Riemann sum of a smooth integrand with tails < 1e-15 beyond +-10 (s1 <= 1).
    np.testing.assert_allclose(kl(p, q, dx=DX), closed, rtol=1e-6, atol=1e-12)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(mu1, dtype=torch.float64), s1),
        torch.distributions.Normal(torch.tensor(mu2, dtype=torch.float64), s2),
    )
    np.testing.assert_allclose(closed, ref.item(), rtol=1e-12, atol=1e-15)


def test_kl_normal_broadcasts_and_keeps_kind():
    mu = np.array([0.0, 1.0, 2.0])
    out = kl_normal(mu, 1.0, 0.0, 2.0)
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(mu), 1.0), torch.distributions.Normal(0.0, torch.tensor(2.0, dtype=torch.float64))
    )
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-12)
    mu_t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    val = kl_normal(mu_t, 1.0, 0.0, 1.0)
    assert isinstance(val, torch.Tensor)
    val.backward()
    np.testing.assert_allclose(mu_t.grad.item(), 0.7, rtol=1e-12)  # d/dmu mu^2/2


@pytest.mark.parametrize("mu1, mu2", [(0.0, 1.234), (-2.0, 0.5), (0.3, 0.3)])
def test_w1_normal_matches_wasserstein1_on_a_grid(mu1, mu2):
    sigma = 0.9
    p, q = _grid_gaussian(GRID, mu1, sigma), _grid_gaussian(GRID, mu2, sigma)
    # The grid CDFs are both offset by about dx/2 from the exact ones, so their gap is
    # accurate to O(dx^2) = 1e-4 relative at worst; 1e-5 absolute is comfortably met.
    np.testing.assert_allclose(wasserstein1(p, q, GRID), w1_normal(mu1, mu2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w1_normal(mu1, mu2), abs(mu1 - mu2), rtol=1e-15)


# --- input kinds and differentiability ---------------------------------------------------

PAIR_FUNCS = [kl, js, tv, chi2]


@pytest.mark.parametrize("func", PAIR_FUNCS + [lambda p, q: f_divergence(p, q, *F_GENERATORS["js"])])
def test_numpy_in_numpy_scalar_out_and_torch_in_tensor_out(func):
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    out = func(p, q)
    assert isinstance(out, np.floating) and np.ndim(out) == 0
    out_list = func(list(p), list(q))
    assert isinstance(out_list, np.floating)
    out_t = func(torch.tensor(p), torch.tensor(q))
    assert isinstance(out_t, torch.Tensor) and out_t.dim() == 0
    assert out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.item(), out, rtol=1e-12)
    out_32 = func(torch.tensor(p, dtype=torch.float32), torch.tensor(q, dtype=torch.float32))
    assert out_32.dtype == torch.float32
    np.testing.assert_allclose(out_32.item(), out, rtol=1e-5)


def test_wasserstein_kinds():
    x = np.array([0.0, 1.0, 2.0])
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    out = wasserstein1(p, q, x)
    assert isinstance(out, np.floating)
    out_t = wasserstein1(torch.tensor(p), torch.tensor(q), x)
    assert isinstance(out_t, torch.Tensor) and out_t.dim() == 0
    np.testing.assert_allclose(out_t.item(), out, rtol=1e-12)
    s = wasserstein1_samples(np.array([0.0, 1.0]), np.array([2.0]))
    assert isinstance(s, np.floating)
    s_t = wasserstein1_samples(torch.tensor([0.0, 1.0]), torch.tensor([2.0]))
    assert isinstance(s_t, torch.Tensor) and s_t.dim() == 0
    np.testing.assert_allclose(s_t.item(), s, rtol=1e-6)


def _simplex_logits(seed, n=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dtype=torch.float64, generator=g).requires_grad_(True)


@pytest.mark.parametrize("func", [kl, js, chi2, tv], ids=["kl", "js", "chi2", "tv"])
def test_gradcheck(func):
    # Gradients through the probabilities: parametrise by logits so that the finite
    # differences stay on the simplex (a perturbed p would fail the mass check).
    a, b = _simplex_logits(1), _simplex_logits(2)
    if func is tv:
        # Away from the kink of |p - q|: the entries differ by far more than the step.
        pa, pb = torch.softmax(a, 0), torch.softmax(b, 0)
        assert (pa - pb).abs().min() > 1e-3
    assert torch.autograd.gradcheck(
        lambda u, v: func(torch.softmax(u, 0), torch.softmax(v, 0)), (a, b), eps=1e-6, atol=1e-8
    )


def test_kl_gradient_matches_closed_form():
    # d KL(p||q) / d q_i = -p_i / q_i: an independent check of the torch path.
    p = torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64)
    q = torch.tensor([0.3, 0.3, 0.4], dtype=torch.float64, requires_grad=True)
    kl(p, q).backward()
    np.testing.assert_allclose(q.grad.numpy(), -(p / q).detach().numpy(), rtol=1e-12)


def test_kl_gradient_is_finite_with_zeros():
    # 0 log 0 = 0 must not leak NaN into the gradient.
    p = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    for func in (kl, js):
        p.grad = q.grad = None
        func(p, q).backward()
        assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


def test_wasserstein1_samples_gives_gradients():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(12, dtype=torch.float64, generator=g).requires_grad_(True)
    b = torch.randn(12, dtype=torch.float64, generator=g) + 5.0  # every b above every a
    w = wasserstein1_samples(a, b)
    w.backward()
    # W1 = mean(b) - mean(a) here, so dW/da_i = -1/n exactly.
    np.testing.assert_allclose(a.grad.numpy(), -np.ones(12) / 12, rtol=1e-12)
    a2 = torch.randn(7, dtype=torch.float64, generator=g).requires_grad_(True)
    b2 = torch.randn(9, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda u: wasserstein1_samples(u, b2), (a2,), eps=1e-7, atol=1e-8)


# --- bad inputs --------------------------------------------------------------------------

GOOD = np.array([0.25, 0.75])


@pytest.mark.parametrize("func", PAIR_FUNCS, ids=["kl", "js", "tv", "chi2"])
@pytest.mark.parametrize(
    "p, q, pattern",
    [
        ([1.2, -0.2], GOOD, r"\bp has negative"),
        (GOOD, [-0.5, 1.5], r"\bq has negative"),
        ([np.nan, 1.0], GOOD, r"\bp contains NaN"),
        (GOOD, [np.inf, 0.0], r"\bq contains NaN or infinite"),
        ([0.2, 0.3, 0.5], GOOD, r"\bp and q must have the same shape"),
        ([0.5, 0.51], GOOD, r"\bp must sum to 1"),
        (GOOD, [0.5, 0.51], r"\bq must sum to 1"),
        (GOOD, [0.5, 0.49], r"\bq must sum to 1"),
        ([], [], r"\bp is empty"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(func, p, q, pattern):
    with pytest.raises(ValueError, match=pattern):
        func(p, q)
    with pytest.raises(ValueError, match=pattern):
        func(torch.tensor(np.asarray(p, dtype=np.float64)), torch.tensor(np.asarray(q, dtype=np.float64)))


@pytest.mark.parametrize("func", PAIR_FUNCS, ids=["kl", "js", "tv", "chi2"])
@pytest.mark.parametrize("dx", [0.0, -0.01, np.nan, np.inf])
def test_bad_dx(func, dx):
    with pytest.raises(ValueError, match="dx"):
        func(GOOD, GOOD, dx=dx)


@pytest.mark.parametrize("func", PAIR_FUNCS, ids=["kl", "js", "tv", "chi2"])
def test_non_numeric_input_raises_type_error(func):
    with pytest.raises(TypeError, match=r"\bp must be a numeric array"):
        func(["a", "b"], GOOD)
    with pytest.raises(TypeError, match=r"\bq must be a numeric array"):
        func(GOOD, {"a": 1})
    with pytest.raises(TypeError, match="dx"):
        func(GOOD, GOOD, dx="wide")


def test_f_divergence_validates_like_the_others():
    f, slope = F_GENERATORS["kl"]
    with pytest.raises(ValueError, match=r"\bp has negative"):
        f_divergence([1.5, -0.5], GOOD, f, slope)
    with pytest.raises(ValueError, match=r"\bq must sum to 1"):
        f_divergence(GOOD, [0.5, 0.6], f, slope)


def test_wasserstein1_bad_inputs():
    x = np.array([0.0, 1.0])
    with pytest.raises(ValueError, match=r"\bx must be strictly increasing"):
        wasserstein1(GOOD, GOOD, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"\bx must be strictly increasing"):
        wasserstein1(GOOD, GOOD, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\bp has negative"):
        wasserstein1([1.5, -0.5], GOOD, x)
    with pytest.raises(ValueError, match=r"\bq contains NaN"):
        wasserstein1(GOOD, [np.nan, 1.0], x)
    with pytest.raises(ValueError, match=r"\bx contains NaN"):
        wasserstein1(GOOD, GOOD, [0.0, np.inf])
    with pytest.raises(ValueError, match=r"\bp and q must have the same shape"):
        wasserstein1([1.0], GOOD, x)
    with pytest.raises(ValueError, match=r"\bp and x must have the same shape"):
        wasserstein1(GOOD, GOOD, [0.0, 1.0, 2.0])
    # Neither weights (sum 1) nor a density on the grid (sum * spacing = 1).
    with pytest.raises(ValueError, match=r"\bp must be weights summing to 1"):
        wasserstein1([0.5, 0.51], GOOD, x)
    with pytest.raises(ValueError, match=r"\bq must be weights summing to 1"):
        wasserstein1(GOOD, [1.0, 1.0], x)
    # A density on a non-uniform grid is ambiguous: refused.
    with pytest.raises(ValueError, match=r"\bp must be weights"):
        wasserstein1([2.0, 2.0, 2.0], [1 / 3] * 3, [0.0, 0.5, 2.0])
    with pytest.raises(TypeError, match=r"\bx must be a numeric array"):
        wasserstein1(GOOD, GOOD, ["a", "b"])


def test_wasserstein1_samples_bad_inputs():
    with pytest.raises(ValueError, match=r"\ba must be a non-empty"):
        wasserstein1_samples([], [1.0])
    with pytest.raises(ValueError, match=r"\bb must be a non-empty"):
        wasserstein1_samples([1.0], np.zeros(0))
    with pytest.raises(ValueError, match=r"\bb must be a non-empty 1-D"):
        wasserstein1_samples([1.0], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\ba contains NaN"):
        wasserstein1_samples([np.nan, 1.0], [1.0])
    with pytest.raises(ValueError, match=r"\bb contains NaN or infinite"):
        wasserstein1_samples(torch.tensor([1.0]), torch.tensor([np.inf]))
    with pytest.raises(TypeError, match=r"\ba must be a numeric array"):
        wasserstein1_samples(["x"], [1.0])


@pytest.mark.parametrize(
    "args, pattern",
    [
        ((0.0, 0.0, 0.0, 1.0), r"\bsigma1 must be positive"),
        ((0.0, -1.0, 0.0, 1.0), r"\bsigma1 must be positive"),
        ((0.0, 1.0, 0.0, 0.0), r"\bsigma2 must be positive"),
        ((0.0, 1.0, 0.0, np.array([1.0, -2.0])), r"\bsigma2 must be positive"),
        ((np.nan, 1.0, 0.0, 1.0), r"\bmu1 contains NaN"),
        ((0.0, 1.0, np.inf, 1.0), r"\bmu2 contains NaN or infinite"),
        ((0.0, np.inf, 0.0, 1.0), r"\bsigma1 contains NaN or infinite"),
    ],
)
def test_kl_normal_bad_inputs(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        kl_normal(*args)


def test_kl_normal_rejects_nonpositive_torch_sigma():
    with pytest.raises(ValueError, match=r"\bsigma2 must be positive"):
        kl_normal(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.0), torch.tensor(-1.0))


def test_w1_normal_bad_inputs():
    with pytest.raises(ValueError, match=r"\bmu1 contains NaN"):
        w1_normal(np.nan, 0.0)
    with pytest.raises(ValueError, match=r"\bmu2 contains NaN"):
        w1_normal(0.0, np.inf)
    with pytest.raises(TypeError, match=r"\bmu1 must be a numeric"):
        w1_normal("zero", 0.0)


def test_rel_entr_is_scipys_in_numpy_and_torch():
    from scipy import special

    p = np.array([0.0, 0.0, 0.2, 0.5, 0.3])
    q = np.array([0.0, 0.4, 0.0, 0.5, 0.1])
    expected = special.rel_entr(p, q)  # 0, 0, inf, 0, 0.3 log 3
    np.testing.assert_allclose(D.rel_entr(p, q), expected, rtol=1e-14)
    pt = torch.tensor(p, requires_grad=True)
    out = D.rel_entr(pt, torch.tensor(q))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-14)
    out[[0, 1, 3, 4]].sum().backward()
    # finite gradients wherever the term is finite (p = 0 included); d/dp log(p/0) is undefined
    assert torch.isfinite(pt.grad[[0, 1, 3, 4]]).all()
