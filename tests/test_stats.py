"""Unit tests of gan_notes.stats: mean ± s.e. against scipy, its NaN policies, table cells and
Markdown tables against hand-written strings, the product distribution against a brute-force
enumeration of tuples."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gan_notes.stats import MeanSE, format_mean_se, markdown_table, mean_se, product_distribution

# --- mean_se -------------------------------------------------------------------------------


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
@settings(max_examples=50, deadline=None)
def test_mean_se_matches_scipy(values):
    r = mean_se(values)
    assert r.n == len(values) and r.n_nan == 0
    assert r.mean == pytest.approx(float(np.mean(values)), rel=1e-12, abs=1e-9)
    assert r.se == pytest.approx(float(scipy.stats.sem(values)), rel=1e-9, abs=1e-9)


def test_mean_se_by_hand():
    # 1, 2, 3, 6: mean 3, s^2 = (4 + 1 + 0 + 9) / 3 = 14/3, se = sqrt(14/3 / 4)
    r = mean_se([1, 2, 3, 6])
    assert r == MeanSE(3.0, pytest.approx(math.sqrt(14 / 12)), 4, 0)
    m, se, *_ = r
    assert (m, se) == (r.mean, r.se)


def test_mean_se_nan_policies():
    v = [1.0, math.nan, 3.0, math.nan]
    p = mean_se(v)  # default: propagate
    assert math.isnan(p.mean) and math.isnan(p.se) and (p.n, p.n_nan) == (4, 2)
    o = mean_se(v, nan="omit")
    assert o.mean == 2.0 and o.se == pytest.approx(1.0) and (o.n, o.n_nan) == (2, 2)
    only_nan = mean_se([math.nan, math.nan], nan="omit")
    assert math.isnan(only_nan.mean) and (only_nan.n, only_nan.n_nan) == (0, 2)


def test_mean_se_infinities_and_small_n():
    r = mean_se([0.5, math.inf, 1.0])  # a KL of inf: the mean is inf, the spread undefined
    assert r.mean == math.inf and math.isnan(r.se) and r.n_nan == 0
    assert mean_se([-math.inf, 1.0]).mean == -math.inf
    assert math.isnan(mean_se([-math.inf, math.inf]).mean)
    one = mean_se([2.5])
    assert one.mean == 2.5 and math.isnan(one.se) and one.n == 1
    empty = mean_se([])
    assert math.isnan(empty.mean) and empty.n == 0


def test_mean_se_accepts_tensors():
    r = mean_se(torch.tensor([1.0, 2.0, 3.0], requires_grad=True))
    assert r.mean == pytest.approx(2.0) and r.se == pytest.approx(1 / math.sqrt(3))


def test_mean_se_bad_input():
    with pytest.raises(ValueError, match="nan"):
        mean_se([1.0], nan="drop")
    with pytest.raises(ValueError, match="values"):
        mean_se([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="values"):
        mean_se(["a", "b"])


# --- format_mean_se and markdown_table -----------------------------------------------------


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        ((1.2345, 0.0678), {}, "1.23 ± 0.07"),
        ((0.4567, 0.0123), dict(scale=100, digits=1), "45.7 ± 1.2"),
        ((7.0, None), dict(digits=1), "7.0"),
        ((7.0, math.nan), dict(digits=1), "7.0"),
        ((None, None), {}, "–"),
        ((math.nan, math.nan), {}, "–"),
        ((math.inf, math.nan), {}, "inf"),
        ((-math.inf, math.nan), {}, "-inf"),
        (MeanSE(3.0, 0.5, 4, 1), dict(digits=0), "3 ± 0"),
    ],
)
def test_format_mean_se(value, kwargs, expected):
    assert format_mean_se(value, **kwargs) == expected


def test_format_mean_se_bad_input():
    with pytest.raises(TypeError, match="value"):
        format_mean_se(1.0)
    with pytest.raises(TypeError, match="value"):
        format_mean_se((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="digits"):
        format_mean_se((1.0, 0.1), digits=-1)
    with pytest.raises(TypeError, match="mean"):
        format_mean_se(("1.0", 0.1))
    with pytest.raises(ValueError, match="scale"):
        format_mean_se((1.0, 0.1), scale=True)


def test_markdown_table():
    text = markdown_table(["a", "b c", "d"], [[1, "x|y", ""], ("*p*", 2.5, None)])
    assert text == "| a | b c | d |\n|---|---|---|\n| 1 | x\\|y | |\n| *p* | 2.5 | None |"


def test_markdown_table_bad_rows():
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        markdown_table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="header"):
        markdown_table([], [])


# --- product_distribution ------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 3])
def test_product_distribution_matches_enumeration(m):
    p = np.array([0.5, 0.3, 0.2])
    brute = [math.prod(p[i] for i in t) for t in itertools.product(range(3), repeat=m)]
    np.testing.assert_allclose(product_distribution(p, m), brute, rtol=1e-14)
    assert product_distribution(p, m).sum() == pytest.approx(1.0)


def test_product_distribution_torch_is_differentiable():
    p = torch.tensor([0.25, 0.75], dtype=torch.float64, requires_grad=True)
    out = product_distribution(p, 2)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out.detach(), torch.tensor([1 / 16, 3 / 16, 3 / 16, 9 / 16], dtype=torch.float64))
    (out[3]).backward()  # d p_1^2 / d p_1 = 2 p_1
    torch.testing.assert_close(p.grad, torch.tensor([0.0, 1.5], dtype=torch.float64))


@pytest.mark.parametrize(
    "p, m, error, pattern",
    [
        ([0.5, 0.5], 0, ValueError, "m"),
        ([0.5, 0.5], True, ValueError, "m"),
        ([0.5, 0.6], 2, ValueError, "sum to 1"),
        ([1.5, -0.5], 2, ValueError, "non-negative"),
        ([[0.5, 0.5]], 2, ValueError, "1-D"),
        (["a"], 2, TypeError, "p"),
    ],
)
def test_product_distribution_bad_input(p, m, error, pattern):
    with pytest.raises(error, match=pattern):
        product_distribution(p, m)
