"""Unit tests of gan_notes.theory: the optimal discriminator, the value function, the
quality/coverage split of JS and the two-discriminator game."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import special, stats

from gan_notes import divergences
from gan_notes.theory import (
    dual_value_function,
    js_decomposition,
    optimal_discriminator,
    optimal_dual_discriminators,
    value_function,
)

LOG2 = math.log(2.0)
LOG4 = math.log(4.0)

GRID = np.linspace(-10.0, 10.0, 2001)  # dx = 0.01
DX = GRID[1] - GRID[0]


def _grid_gaussian(mu, sigma, x=GRID):
    p = stats.norm.pdf(x, mu, sigma)
    return p / (p.sum() * (x[1] - x[0]))


# Entries are 0 or at least 1e-3 before normalising. Where p_g/p_data < ~1e-17, D* =
# p_data/(p_data + p_g) rounds to exactly 1 in float64 and log(1 - D*) = -inf: a limit of
# representing D by a probability, not of the identities tested here.
_entry = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1.0))


@st.composite
def prob_vectors(draw, n):
    xs = draw(st.lists(_entry, min_size=n, max_size=n))
    assume(sum(xs) > 0)
    a = np.asarray(xs)
    return a / a.sum()


@st.composite
def prob_pairs(draw):
    n = draw(st.integers(1, 8))
    return draw(prob_vectors(n)), draw(prob_vectors(n))


# Non-negative densities that need not sum to 1 (optimal_discriminator accepts those).
_densities = st.lists(
    st.tuples(st.floats(0.0, 1e6, allow_subnormal=False), st.floats(0.0, 1e6, allow_subnormal=False)),
    min_size=1,
    max_size=10,
)


# --- the optimal discriminator -----------------------------------------------------------


def test_optimal_discriminator_formula_and_undetermined_points():
    p_data = np.array([0.2, 0.0, 0.5, 0.0, 3.0])
    p_g = np.array([0.6, 0.4, 0.0, 0.0, 1.0])
    expected = [0.25, 0.0, 1.0, 0.5, 0.75]
    np.testing.assert_allclose(optimal_discriminator(p_data, p_g), expected, rtol=1e-15)
    out_t = optimal_discriminator(torch.tensor(p_data), torch.tensor(p_g))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), expected, rtol=1e-15)


@settings(max_examples=100, deadline=None)
@given(_densities)
def test_optimal_discriminator_is_the_ratio_in_unit_interval(pairs):
    p_data = np.array([a for a, _ in pairs])
    p_g = np.array([b for _, b in pairs])
    d = optimal_discriminator(p_data, p_g)
    assert d.shape == p_data.shape
    assert np.all((d >= 0) & (d <= 1))
    tot = p_data + p_g
    pos = tot > 0
    np.testing.assert_allclose(d[pos], p_data[pos] / tot[pos], rtol=1e-15)
    assert np.all(d[~pos] == 0.5)
    # Swapping the roles gives 1 - D* where the total is positive.
    np.testing.assert_allclose(optimal_discriminator(p_g, p_data)[pos], 1 - d[pos], atol=1e-15)


def test_optimal_discriminator_matches_brute_force_maximisation():
    # Maximise a log D + b log(1 - D) over a fine grid of D in (0, 1).
    grid_d = np.linspace(1e-6, 1 - 1e-6, 1_000_001)
    rng = np.random.default_rng(7)
    a = np.concatenate([rng.uniform(0.01, 2.0, 6), [1.0, 0.3]])
    b = np.concatenate([rng.uniform(0.01, 2.0, 6), [1.0, 1.2]])
    d_star = optimal_discriminator(a, b)
    for ai, bi, di in zip(a, b, d_star):
        objective = ai * np.log(grid_d) + bi * np.log1p(-grid_d)
        # The argmax is within one grid step (1e-6) of the true maximiser.
        np.testing.assert_allclose(di, grid_d[np.argmax(objective)], atol=2e-6)


def test_optimal_discriminator_torch_is_differentiable():
    p_data = torch.tensor([0.2, 0.3], dtype=torch.float64, requires_grad=True)
    p_g = torch.tensor([0.6, 0.1], dtype=torch.float64)
    d = optimal_discriminator(p_data, p_g)
    assert isinstance(d, torch.Tensor)
    d.sum().backward()
    # d/da a/(a+b) = b/(a+b)^2
    np.testing.assert_allclose(p_data.grad.numpy(), [0.6 / 0.8**2, 0.1 / 0.4**2], rtol=1e-12)


def test_optimal_discriminator_bad_inputs():
    with pytest.raises(ValueError, match=r"\bp_g has negative"):
        optimal_discriminator([0.5, 0.5], [1.5, -0.5])
    with pytest.raises(ValueError, match=r"\bp_data contains NaN"):
        optimal_discriminator([np.nan, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\bp_data and p_g must have the same shape"):
        optimal_discriminator([0.5, 0.5], [1.0])
    with pytest.raises(TypeError, match=r"\bp_g must be a numeric array"):
        optimal_discriminator([0.5, 0.5], ["x", "y"])


# --- the value function ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(prob_pairs(), st.data())
def test_optimal_discriminator_maximises_the_value_function(pq, data):
    p_data, p_g = pq
    d = np.array(data.draw(st.lists(st.floats(1e-6, 1 - 1e-6), min_size=p_data.size, max_size=p_data.size)))
    best = value_function(optimal_discriminator(p_data, p_g), p_data, p_g)
    assert value_function(d, p_data, p_g) <= best + 1e-12


@settings(max_examples=100, deadline=None)
@given(prob_pairs())
def test_value_at_the_optimum_is_minus_log4_plus_2js(pq):
    p_data, p_g = pq
    d_star = optimal_discriminator(p_data, p_g)
    np.testing.assert_allclose(
        value_function(d_star, p_data, p_g), -LOG4 + 2 * divergences.js(p_data, p_g), rtol=1e-9, atol=1e-12
    )


def test_value_at_the_optimum_on_a_gaussian_grid():
    # p_g is the wider one: where p_g/p_data < ~1e-17 (the tails of a *narrower* p_g),
    # D* rounds to 1.0 and log(1 - D*) = -inf; here that ratio stays above e^-3.
    p_data, p_g = _grid_gaussian(0.0, 1.0), _grid_gaussian(1.5, 1.2)
    d_star = optimal_discriminator(p_data, p_g)
    v = value_function(d_star, p_data, p_g, dx=DX)
    np.testing.assert_allclose(v, -LOG4 + 2 * divergences.js(p_data, p_g, dx=DX), rtol=1e-9)
    # and it beats a perturbed discriminator
    worse = np.clip(d_star + 0.05 * np.sin(GRID), 1e-9, 1 - 1e-9)
    assert value_function(worse, p_data, p_g, dx=DX) < v
    # At p_g = p_data the optimum is D* = 1/2 and V = -log 4.
    np.testing.assert_allclose(optimal_discriminator(p_data, p_data), 0.5, rtol=0)
    np.testing.assert_allclose(value_function(np.full_like(GRID, 0.5), p_data, p_data, dx=DX), -LOG4, rtol=1e-12)


def test_value_function_matches_a_direct_sum():
    p_data = np.array([0.1, 0.4, 0.5])
    p_g = np.array([0.3, 0.3, 0.4])
    d = np.array([0.2, 0.7, 0.9])
    expected = sum(a * math.log(di) + b * math.log(1 - di) for a, b, di in zip(p_data, p_g, d))
    np.testing.assert_allclose(value_function(d, p_data, p_g), expected, rtol=1e-14)
    out_t = value_function(torch.tensor(d), torch.tensor(p_data), torch.tensor(p_g))
    assert isinstance(out_t, torch.Tensor) and out_t.dim() == 0
    np.testing.assert_allclose(out_t.item(), expected, rtol=1e-14)


def test_value_function_infinities_and_zero_log_zero():
    # D = 0 on real mass: log 0 = -inf.
    assert value_function([0.0, 0.5], [0.5, 0.5], [0.5, 0.5]) == -np.inf
    # D = 1 on generated mass: log(1 - 1) = -inf.
    assert value_function([0.5, 1.0], [0.5, 0.5], [0.5, 0.5]) == -np.inf
    assert value_function(torch.tensor([0.0, 0.5]), [0.5, 0.5], [0.5, 0.5]).item() == -math.inf
    # D = 0 where there is no real mass, D = 1 where nothing is generated: 0 log 0 = 0.
    v = value_function([0.0, 1.0, 0.5], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(v, 0.5 * math.log(0.5) + 0.5 * math.log(0.5), rtol=1e-14)


def test_value_function_bad_inputs():
    p = [0.5, 0.5]
    with pytest.raises(ValueError, match=r"\bd must take values in \[0, 1\]"):
        value_function([0.5, 1.5], p, p)
    with pytest.raises(ValueError, match=r"\bd has negative"):
        value_function([-0.1, 0.5], p, p)
    with pytest.raises(ValueError, match=r"\bd contains NaN"):
        value_function([np.nan, 0.5], p, p)
    with pytest.raises(ValueError, match=r"\bd and p_data must have the same shape"):
        value_function([0.5], p, p)
    with pytest.raises(ValueError, match=r"\bp_data must sum to 1"):
        value_function([0.5, 0.5], [0.5, 0.6], p)
    with pytest.raises(ValueError, match=r"\bp_g has negative"):
        value_function([0.5, 0.5], p, [1.5, -0.5])
    with pytest.raises(ValueError, match=r"\bp_data and p_g must have the same shape"):
        value_function([0.5, 0.5], p, [1.0])
    with pytest.raises(ValueError, match="dx"):
        value_function([0.5, 0.5], p, p, dx=0.0)
    with pytest.raises(ValueError, match=r"\bp_g must sum to 1"):
        # a density on dx = 0.01 passed without dx
        value_function(np.full(3, 0.5), np.full(3, 1 / 3), np.full(3, 100 / 3))


# --- quality and coverage ----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(prob_pairs())
def test_js_decomposition_sums_to_js_and_matches_the_discriminator_form(pq):
    p_g, p_data = pq
    parts = js_decomposition(p_g, p_data)
    quality, coverage = parts["quality"], parts["coverage"]
    np.testing.assert_allclose(quality + coverage, parts["js"], rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(parts["js"], divergences.js(p_g, p_data), rtol=1e-12, atol=1e-15)
    for term in (quality, coverage):
        assert -1e-15 <= term <= 0.5 * LOG2 + 1e-12
    # quality = 1/2 E_pg[log 2(1 - D*)], coverage = 1/2 E_pdata[log 2 D*]; 0 log 0 = 0.
    d = optimal_discriminator(p_data, p_g)
    q_ref = 0.5 * np.sum(special.xlogy(p_g, 2 * (1 - d)))
    c_ref = 0.5 * np.sum(special.xlogy(p_data, 2 * d))
    np.testing.assert_allclose(quality, q_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(coverage, c_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k, n_modes", [(1, 8), (3, 8), (8, 8), (2, 5)])
def test_js_decomposition_of_a_generator_on_a_subset_of_modes(k, n_modes):
    # Data uniform on K disjoint modes; the generator uniform on k of them. On a covered
    # mode p_g = 1/k, p_data = 1/K. Closed forms:
    #   quality  = 1/2 log(2K / (K + k))                   (small: fakes look real)
    #   coverage = 1/2 [(k/K) log(2k / (K + k)) + (1 - k/K) log 2]   (missed modes)
    p_data = np.full(n_modes, 1.0 / n_modes)
    p_g = np.zeros(n_modes)
    p_g[:k] = 1.0 / k
    parts = js_decomposition(p_g, p_data)
    K = n_modes
    np.testing.assert_allclose(parts["quality"], 0.5 * math.log(2 * K / (K + k)), rtol=1e-12, atol=1e-15)
    coverage = 0.5 * ((k / K) * math.log(2 * k / (K + k)) + (1 - k / K) * LOG2)
    np.testing.assert_allclose(parts["coverage"], coverage, rtol=1e-12, atol=1e-15)
    if k < K:
        assert parts["coverage"] > 0
    else:
        assert parts["js"] == 0


def test_js_decomposition_terms_swap_with_the_roles():
    # quality(p_g, p_data) is an expectation under p_g, coverage under p_data: exchanging
    # the two distributions exchanges the terms. Not symmetric terms on their own:
    p_data = np.array([0.25, 0.25, 0.25, 0.25, 0.0, 0.0])
    p_g = np.array([0.5, 0.3, 0.0, 0.0, 0.0, 0.2])
    a, b = js_decomposition(p_g, p_data), js_decomposition(p_data, p_g)
    np.testing.assert_allclose(a["quality"], b["coverage"], rtol=1e-14)
    np.testing.assert_allclose(a["coverage"], b["quality"], rtol=1e-14)
    assert abs(a["quality"] - a["coverage"]) > 1e-3


def test_js_decomposition_on_a_grid_torch_and_underflow():
    p_g, p_data = _grid_gaussian(1.0, 0.5), _grid_gaussian(0.0, 1.0)
    parts = js_decomposition(p_g, p_data, dx=DX)
    np.testing.assert_allclose(parts["js"], divergences.js(p_g, p_data, dx=DX), rtol=1e-12)
    parts_t = js_decomposition(torch.tensor(p_g), torch.tensor(p_data), dx=DX)
    for key in ("quality", "coverage", "js"):
        assert isinstance(parts_t[key], torch.Tensor) and parts_t[key].dim() == 0
        np.testing.assert_allclose(parts_t[key].item(), parts[key], rtol=1e-12)
    # A wide grid puts the smallest subnormal density where the other one is 0: the terms
    # must stay finite (the mixture m = (p+q)/2 would round to 0 there).
    x = np.linspace(-50.0, 50.0, 10001)
    wide = js_decomposition(_grid_gaussian(-3.0, 1.0, x), _grid_gaussian(0.0, 1.0, x), dx=x[1] - x[0])
    narrow = js_decomposition(_grid_gaussian(-3.0, 1.0), _grid_gaussian(0.0, 1.0), dx=DX)
    for key in ("quality", "coverage"):
        np.testing.assert_allclose(wide[key], narrow[key], rtol=1e-9)


def test_js_decomposition_bad_inputs():
    with pytest.raises(ValueError, match=r"\bp_g must sum to 1"):
        js_decomposition([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\bp_data has negative"):
        js_decomposition([0.5, 0.5], [1.5, -0.5])
    with pytest.raises(ValueError, match=r"\bp_g and p_data must have the same shape"):
        js_decomposition([1.0], [0.5, 0.5])


# --- two discriminators ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(prob_pairs())
def test_dual_optimum_and_value(pq):
    p_data, p_g = pq
    d1, d2 = optimal_dual_discriminators(p_data, p_g)
    tot = p_data + p_g
    pos = tot > 0
    np.testing.assert_allclose(d1[pos], p_data[pos] / tot[pos], rtol=1e-15)
    np.testing.assert_allclose(d2[pos], 1 - d1[pos], atol=1e-15)
    assert np.all(d1[~pos] == 0.5) and np.all(d2[~pos] == 0.5)
    np.testing.assert_allclose(
        dual_value_function(d1, d2, p_data, p_g), -4 * LOG2 + 4 * divergences.js(p_data, p_g), rtol=1e-9, atol=1e-12
    )


def test_dual_value_is_minimal_at_p_g_equal_p_data():
    p = _grid_gaussian(0.3, 1.1)
    d1, d2 = optimal_dual_discriminators(p, p)
    np.testing.assert_allclose(d1, 0.5, rtol=0)
    np.testing.assert_allclose(dual_value_function(d1, d2, p, p, dx=DX), -4 * LOG2, rtol=1e-12)
    q = _grid_gaussian(0.8, 1.1)
    e1, e2 = optimal_dual_discriminators(p, q)
    assert dual_value_function(e1, e2, p, q, dx=DX) > -4 * LOG2 + 1e-3


def test_dual_value_matches_a_direct_sum_away_from_the_optimum():
    p_data, p_g = np.array([0.2, 0.8]), np.array([0.6, 0.4])
    d1, d2 = np.array([0.3, 0.9]), np.array([0.4, 0.2])
    expected = sum(
        a * math.log(x) + b * math.log(1 - x) + b * math.log(y) + a * math.log(1 - y)
        for a, b, x, y in zip(p_data, p_g, d1, d2)
    )
    np.testing.assert_allclose(dual_value_function(d1, d2, p_data, p_g), expected, rtol=1e-14)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(*[st.lists(st.floats(1e-3, 1.0), min_size=n, max_size=n)] * 2)))
def test_reverse_kl_from_the_first_discriminator(lists):
    # Eq. (7) of Zhang, Li & Yu (2018): KL(p_g||p_data) = E_pg[log(1 - D1*)] - E_pg[log D1*],
    # on strictly positive vectors (elsewhere it reads inf - inf).
    p_data, p_g = (np.asarray(v) / np.sum(v) for v in lists)
    d1, _ = optimal_dual_discriminators(p_data, p_g)
    lhs = divergences.kl(p_g, p_data)
    rhs = np.sum(p_g * np.log(1 - d1)) - np.sum(p_g * np.log(d1))
    np.testing.assert_allclose(rhs, lhs, rtol=1e-9, atol=1e-12)


def test_dual_bad_inputs():
    p = [0.5, 0.5]
    with pytest.raises(ValueError, match=r"\bd2 must take values in \[0, 1\]"):
        dual_value_function([0.5, 0.5], [0.5, 1.2], p, p)
    with pytest.raises(ValueError, match=r"\bd2 has negative"):
        dual_value_function([0.5, 0.5], [-0.5, 0.2], p, p)
    with pytest.raises(ValueError, match=r"\bd must take values in \[0, 1\]"):
        dual_value_function([0.5, 2.0], [0.5, 0.5], p, p)
    with pytest.raises(ValueError, match=r"\bp_g has negative"):
        optimal_dual_discriminators([0.5, 0.5], [-1.0, 2.0])
    with pytest.raises(ValueError, match=r"\bp_data and p_g must have the same shape"):
        optimal_dual_discriminators([0.5, 0.5], [1.0])
