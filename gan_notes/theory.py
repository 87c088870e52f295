"""The optimal discriminator and the value function of the GAN game (chapter 03).

With the generator fixed, the discriminator maximises the value function

    V(D, G) = E_{p_data}[log D(x)] + E_{p_g}[log(1 - D(x))]

pointwise, at D*(x) = p_data(x) / (p_data(x) + p_g(x)), where V(D*, G) = -log 4 + 2 JS.
Functions here take densities or probability vectors on a grid, as in ``divergences``, and
accept NumPy arrays or torch tensors, returning the same kind.
"""

from __future__ import annotations


import numpy as np
import torch
from scipy import special

from gan_notes.arrays import (
    Array,
    as_arrays,
    check_dx,
    check_nonnegative,
    check_probability,
    array_sum,
    check_same_shape,
)
from gan_notes.divergences import rel_entr

__all__ = [
    "optimal_discriminator",
    "value_function",
    "js_decomposition",
    "optimal_dual_discriminators",
    "dual_value_function",
]


def _ratio(num: Array, den: Array) -> Array:
    """num / den, and 1/2 where den = 0 (both densities vanish: D* is undetermined there)."""
    zero = den == 0
    if isinstance(den, torch.Tensor):
        safe = torch.where(zero, torch.ones_like(den), den)
        return torch.where(zero, torch.full_like(den, 0.5), num / safe)
    safe = np.where(zero, 1.0, den)
    return np.where(zero, 0.5, num / safe)


def optimal_discriminator(p_data: Array, p_g: Array) -> Array:
    r"""The optimal discriminator :math:`D^*(x) = \frac{p_{data}(x)}{p_{data}(x) + p_g(x)}`.

    Pointwise maximiser of :math:`a \log D + b \log(1-D)` at :math:`D = a/(a+b)`. Where
    both densities vanish every D is optimal; we return 1/2 there.

    Parameters
    ----------
    p_data, p_g : array or tensor
        Non-negative densities (or probabilities) at the same points; need not sum to 1.

    Returns
    -------
    array or tensor of the same shape, values in [0, 1].

    See also
    --------
    value_function; Chapter 03 (the optimal discriminator).
    """
    p_data, p_g = as_arrays(("p_data", "p_g"), p_data, p_g)
    check_same_shape(("p_data", "p_g"), p_data, p_g)
    check_nonnegative("p_data", p_data)
    check_nonnegative("p_g", p_g)
    return _ratio(p_data, p_data + p_g)


def _xlogy(a: Array, b: Array) -> Array:
    """a log b with 0 log 0 = 0 (and a gradient of 0 in b where a = 0)."""
    if isinstance(a, torch.Tensor):
        pos = a > 0
        b_safe = torch.where(pos, b, torch.ones_like(b))
        return torch.where(pos, a * torch.log(b_safe), torch.zeros_like(a))
    return special.xlogy(a, b)


def _check_d(name: str, d: Array) -> None:
    check_nonnegative(name, d)
    if bool((d > 1).any()):
        raise ValueError(f"{name} must take values in [0, 1] (a probability that x is real)")


def value_function(d: Array, p_data: Array, p_g: Array, dx: float = 1.0) -> Array:
    r"""The GAN value :math:`V(D, G) = \E_{p_{data}}[\log D] + \E_{p_g}[\log(1 - D)]` on a grid.

    Computed as :math:`\sum_x [p_{data}(x)\log D(x) + p_g(x)\log(1-D(x))]\,dx`, with
    :math:`0 \log 0 = 0`; ``-inf`` where D is 0 on real mass or 1 on generated mass.

    Parameters
    ----------
    d : array or tensor
        Discriminator values in [0, 1] at the grid points.
    p_data, p_g : array or tensor
        Probability vectors (``dx=1``) or densities on the grid.
    dx : float
        Grid spacing.

    See also
    --------
    optimal_discriminator; Chapter 01 (the game) and Chapter 03.
    """
    dx = check_dx(dx)
    d, p_data, p_g = as_arrays(("d", "p_data", "p_g"), d, p_data, p_g)
    check_same_shape(("d", "p_data"), d, p_data)
    check_same_shape(("p_data", "p_g"), p_data, p_g)
    _check_d("d", d)
    check_probability("p_data", p_data, dx)
    check_probability("p_g", p_g, dx)
    with np.errstate(divide="ignore"):
        return dx * (array_sum(_xlogy(p_data, d)) + array_sum(_xlogy(p_g, 1 - d)))


def js_decomposition(p_g: Array, p_data: Array, dx: float = 1.0) -> dict[str, Array]:
    r"""Split :math:`\JS(p_g\|p_{data})` into a quality and a coverage term.

    With :math:`m = (p_g + p_{data})/2`,

    .. math::
        \JS = \underbrace{\tfrac12 \KL(p_g\|m)}_{\text{quality}}
            + \underbrace{\tfrac12 \KL(p_{data}\|m)}_{\text{coverage}} .

    The quality term is an expectation under :math:`p_g`: it grows when generated mass sits
    where data is thin, :math:`\tfrac12\E_{p_g}\log 2(1-D^*)`. The coverage term is an
    expectation under :math:`p_{data}`: it grows when data mass is left uncovered,
    :math:`\tfrac12\E_{p_{data}}\log 2D^*`. Each lies in :math:`[0, \tfrac12\log 2]`.

    Returns
    -------
    dict with ``"quality"``, ``"coverage"`` and ``"js"`` (their sum).

    See also
    --------
    gan_notes.divergences.js; Chapter 03 (quality and coverage).
    """
    dx = check_dx(dx)
    p_g, p_data = as_arrays(("p_g", "p_data"), p_g, p_data)
    check_same_shape(("p_g", "p_data"), p_g, p_data)
    check_probability("p_g", p_g, dx)
    check_probability("p_data", p_data, dx)
    # (1/2) KL(p||m) written with 2p and p_g + p_data = 2m, which cannot underflow to 0
    # where p > 0 (as in divergences.js).
    s = p_g + p_data
    quality = 0.25 * dx * array_sum(rel_entr(2 * p_g, s))
    coverage = 0.25 * dx * array_sum(rel_entr(2 * p_data, s))
    return {"quality": quality, "coverage": coverage, "js": quality + coverage}


def optimal_dual_discriminators(p_data: Array, p_g: Array) -> tuple[Array, Array]:
    r"""Optimal discriminators of the two-discriminator GAN (Zhang, Li & Yu 2018).

    The game adds to the standard value a second discriminator with the roles of real and
    generated samples swapped:

    .. math::
        \begin{aligned}
        V(D_1, D_2, G) &= \E_{p_{data}}[\log D_1] + \E_{p_g}[\log(1-D_1)] \\
                       &\quad + \E_{p_g}[\log D_2] + \E_{p_{data}}[\log(1-D_2)] ,
        \end{aligned}

    so, pointwise, :math:`D_1^* = p_{data}/(p_{data}+p_g)` and
    :math:`D_2^* = p_g/(p_{data}+p_g)` (both 1/2 where both densities vanish).

    Returns
    -------
    (D1*, D2*) : arrays or tensors of the input kind.

    See also
    --------
    dual_value_function; Chapter 03 (two discriminators).
    """
    p_data, p_g = as_arrays(("p_data", "p_g"), p_data, p_g)
    check_same_shape(("p_data", "p_g"), p_data, p_g)
    check_nonnegative("p_data", p_data)
    check_nonnegative("p_g", p_g)
    total = p_data + p_g
    return _ratio(p_data, total), _ratio(p_g, total)


def dual_value_function(d1: Array, d2: Array, p_data: Array, p_g: Array, dx: float = 1.0) -> Array:
    r"""Value of the two-discriminator game,
    :math:`V(D_1,D_2,G) = V(D_1, G) + \E_{p_g}[\log D_2] + \E_{p_{data}}[\log(1-D_2)]`.

    At :math:`(D_1^*, D_2^*)` it equals :math:`-4\log 2 + 4\,\JS(p_{data}\|p_g)`, whose
    minimum over G, :math:`-4 \log 2`, is reached only at :math:`p_g = p_{data}`.

    See also
    --------
    optimal_dual_discriminators; value_function; Chapter 03.
    """
    d2_arr, = as_arrays(("d2",), d2)
    _check_d("d2", d2_arr)
    # The D2 terms are V with the roles of p_data and p_g swapped.
    return value_function(d1, p_data, p_g, dx) + value_function(d2, p_g, p_data, dx)


