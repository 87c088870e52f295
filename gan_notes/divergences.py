"""Divergences between distributions on a grid: KL, JS, TV, Pearson chi^2, f-divergences, W1.

Notation (chapter 02): ``p`` and ``q`` are probability vectors (``dx=1``) or densities on a
uniform grid with spacing ``dx``. Natural logarithms throughout, ``0 log 0 = 0``, and the
value is ``inf`` where the mathematics says so (``p > 0 = q`` for KL and chi^2).

Every function accepts NumPy arrays or torch tensors and returns the same kind: a NumPy
float64 scalar, or a 0-d tensor that stays differentiable.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy import special

from gan_notes.arrays import (
    Array,
    as_arrays,
    check_dx,
    check_finite,
    check_nonnegative,
    check_probability,
    check_same_shape,
    array_sum,
    total,
)

__all__ = [
    "rel_entr",
    "kl",
    "js",
    "tv",
    "chi2",
    "f_divergence",
    "F_GENERATORS",
    "wasserstein1",
    "wasserstein1_samples",
    "kl_normal",
    "w1_normal",
]


def _pair(p, q, dx):
    dx = check_dx(dx)
    p, q = as_arrays(("p", "q"), p, q)
    check_same_shape(("p", "q"), p, q)
    check_probability("p", p, dx)
    check_probability("q", q, dx)
    return p, q, dx


def rel_entr(p: Array, q: Array) -> Array:
    r"""Elementwise :math:`p \log(p/q)`, with :math:`0 \log(0/q) = 0` and :math:`p \log(p/0) = \infty`
    for :math:`p > 0`: the integrand of :func:`kl` (``scipy.special.rel_entr`` for NumPy input;
    in torch, differentiable, with finite gradients where :math:`p = 0`).

    See also
    --------
    kl, js; Chapter 02 (divergences).
    """
    if not isinstance(p, torch.Tensor):
        return special.rel_entr(p, q)
    pos = p > 0
    # Where p = 0 the term is 0; substituting 1 keeps both log and its gradient finite.
    p_safe = torch.where(pos, p, torch.ones_like(p))
    q_safe = torch.where(pos, q, torch.ones_like(q))
    return torch.where(pos, p_safe * (torch.log(p_safe) - torch.log(q_safe)), torch.zeros_like(p))


def kl(p: Array, q: Array, dx: float = 1.0) -> Array:
    r"""Kullback-Leibler divergence :math:`\KL(p\|q) = \int p \log(p/q)\,dx`.

    Parameters
    ----------
    p, q : array or tensor
        Probability vectors (``dx=1``) or densities on a uniform grid of spacing ``dx``.
    dx : float
        Grid spacing.

    Returns
    -------
    scalar of the input kind
        Non-negative; ``inf`` where some ``p > 0`` meets ``q = 0``.

    Raises
    ------
    ValueError
        Negative or non-finite entries, shapes that differ, or mass that is not 1.

    See also
    --------
    Chapter 02 (divergences); ``scipy.stats.entropy`` is the oracle in the tests.
    """
    p, q, dx = _pair(p, q, dx)
    return array_sum(rel_entr(p, q)) * dx


def js(p: Array, q: Array, dx: float = 1.0) -> Array:
    r"""Jensen-Shannon divergence :math:`\JS(p\|q) = \tfrac12\KL(p\|m) + \tfrac12\KL(q\|m)`,
    with :math:`m = (p+q)/2`.

    Symmetric, bounded in :math:`[0, \log 2]` and always finite. SciPy's
    ``scipy.spatial.distance.jensenshannon`` returns its square root.

    See also
    --------
    kl; Chapter 02 (divergences) and Chapter 03 (optimal discriminator).
    """
    p, q, dx = _pair(p, q, dx)
    # p log(p/m) = (1/2) (2p) log(2p / (p+q)): unlike m = (p+q)/2, which rounds to 0 for
    # the smallest subnormal p (and would give inf), p + q > 0 wherever p > 0.
    s = p + q
    return 0.25 * dx * (array_sum(rel_entr(2 * p, s)) + array_sum(rel_entr(2 * q, s)))


def tv(p: Array, q: Array, dx: float = 1.0) -> Array:
    r"""Total variation distance :math:`\mathrm{TV}(p, q) = \tfrac12 \int |p - q|\,dx`, in [0, 1].

    See also
    --------
    Chapter 02 (divergences).
    """
    p, q, dx = _pair(p, q, dx)
    diff = (p - q).abs() if isinstance(p, torch.Tensor) else np.abs(p - q)
    return 0.5 * dx * array_sum(diff)


def chi2(p: Array, q: Array, dx: float = 1.0) -> Array:
    r"""Pearson chi-squared divergence :math:`\chi^2(p\|q) = \int (p - q)^2 / q\,dx`.

    The f-divergence with :math:`f(t) = (t-1)^2`; ``inf`` where ``p > 0 = q``, and terms
    with ``p = q = 0`` count as 0.

    See also
    --------
    f_divergence; Chapter 02 (divergences).
    """
    p, q, dx = _pair(p, q, dx)
    return f_divergence(p, q, *F_GENERATORS["pearson"], dx=dx)


def f_divergence(
    p: Array,
    q: Array,
    f: Callable[[Array], Array],
    slope_at_infinity: float = math.inf,
    dx: float = 1.0,
) -> Array:
    r"""The f-divergence :math:`D_f(p\|q) = \int q\, f(p/q)\,dx` for convex f with f(1) = 0.

    Where ``q = 0 < p`` the integrand is its limit :math:`p\, f'(\infty)`, with
    :math:`f'(\infty) = \lim_{t\to\infty} f(t)/t` given as ``slope_at_infinity``
    (``inf`` for KL and chi^2); terms with ``p = q = 0`` count as 0. The same limit is used
    where ``p/q`` overflows the floating-point range (``q > 0`` but tiny).

    Parameters
    ----------
    p, q : array or tensor
        Probability vectors or densities on a uniform grid.
    f : callable
        The generator, applied elementwise to an array of the input kind (``t >= 0``).
    slope_at_infinity : float
        :math:`\lim_{t\to\infty} f(t)/t`. ``F_GENERATORS`` lists it for the book's table.
    dx : float
        Grid spacing.

    See also
    --------
    F_GENERATORS; Chapter 02 (the f-divergence table).
    """
    p, q, dx = _pair(p, q, dx)
    torch_in = isinstance(p, torch.Tensor)
    where = torch.where if torch_in else np.where
    q_pos = q > 0
    ones = torch.ones_like(q) if torch_in else np.ones_like(q)
    q_safe = where(q_pos, q, ones)
    p_safe = where(q_pos, p, ones)
    with np.errstate(over="ignore"):
        t = p_safe / q_safe
    # Where p/q overflows (q > 0 but tiny), q f(p/q) has reached its limit p f'(inf):
    # use that branch rather than f(inf), which is nan or -inf for some generators, and
    # divide by a safe 1 there so that no inf reaches torch's gradient either.
    q_pos = q_pos & (torch.isfinite(t) if torch_in else np.isfinite(t))
    q_safe = where(q_pos, q, ones)
    p_safe = where(q_pos, p, ones)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = q_safe * f(p_safe / q_safe)
    zero = torch.zeros_like(p) if torch_in else np.zeros_like(p)
    if slope_at_infinity == math.inf:
        # p * inf would be nan at p = 0; the limit there is 0.
        outside = where(p > 0, zero + math.inf, zero)
    else:
        outside = p * slope_at_infinity
    return dx * array_sum(where(q_pos, inside, outside))


def _xlogx(t: Array) -> Array:
    if isinstance(t, torch.Tensor):
        return torch.special.xlogy(t, t)
    return special.xlogy(t, t)


def _log(t: Array) -> Array:
    with np.errstate(divide="ignore"):
        return torch.log(t) if isinstance(t, torch.Tensor) else np.log(t)


def _abs(t: Array) -> Array:
    return t.abs() if isinstance(t, torch.Tensor) else np.abs(t)


#: The book's f-divergence table: name -> (f, lim f(t)/t as t -> inf).
F_GENERATORS: dict[str, tuple[Callable[[Array], Array], float]] = {
    "kl": (lambda t: _xlogx(t), math.inf),
    "reverse_kl": (lambda t: -_log(t), 0.0),
    "js": (lambda t: 0.5 * (_xlogx(t) - _xlogx(t + 1) + (t + 1) * math.log(2.0)), 0.5 * math.log(2.0)),
    "tv": (lambda t: 0.5 * _abs(t - 1), 0.5),
    "pearson": (lambda t: (t - 1) ** 2, math.inf),
}


def _uniform_spacing(x: Array) -> float | None:
    steps = np.diff(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    if steps.size and np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        return float(steps[0])
    return None


def wasserstein1(p: Array, q: Array, x: Array) -> Array:
    r"""Wasserstein-1 distance between two distributions on the sorted points ``x``.

    In one dimension :math:`W_1(p, q) = \int |F_p(x) - F_q(x)|\,dx`, the area between
    the CDFs. ``p`` and ``q`` are weights on ``x`` (summing to 1) or densities on a
    uniform grid ``x`` (summing to 1 times the spacing); either way
    ``W_1 = \sum_i |F_p(x_i) - F_q(x_i)| (x_{i+1} - x_i)``, which equals SciPy's
    ``wasserstein_distance(x, x, p, q)`` for weights.

    Raises
    ------
    ValueError
        Shapes that differ, ``x`` not 1-D and strictly increasing, negative or
        non-finite entries, or mass that is neither 1 as weights nor 1 as a density.

    See also
    --------
    wasserstein1_samples; Chapter 02 (W1 through CDFs).
    """
    p, q, x = as_arrays(("p", "q", "x"), p, q, x)
    check_same_shape(("p", "q"), p, q)
    check_same_shape(("p", "x"), p, x)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"x must be a non-empty 1-D array of points, got shape {tuple(x.shape)}")
    check_finite("x", x)
    steps = x[1:] - x[:-1]
    if bool((steps <= 0).any()):
        raise ValueError("x must be strictly increasing")
    check_nonnegative("p", p)
    check_nonnegative("q", q)
    # Weights sum to 1; densities on a uniform grid sum to 1/dx: normalise both to weights.
    h = _uniform_spacing(x)
    for name, w in (("p", p), ("q", q)):
        mass = total(w)
        if not (abs(mass - 1) <= 1e-6 or (h is not None and abs(mass * h - 1) <= 1e-6)):
            raise ValueError(
                f"{name} must be weights summing to 1 or a density on a uniform grid x "
                f"(sum times spacing = 1); its sum is {mass:.8g}"
            )
    torch_in = isinstance(p, torch.Tensor)
    cumsum = torch.cumsum if torch_in else np.cumsum
    cdf_gap = cumsum(p / array_sum(p), 0) - cumsum(q / array_sum(q), 0)
    return array_sum(_abs(cdf_gap[:-1]) * steps)


def wasserstein1_samples(a: Array, b: Array) -> Array:
    r"""Wasserstein-1 distance between the empirical distributions of 1-D samples.

    Through quantile functions, :math:`W_1 = \int_0^1 |F_a^{-1}(u) - F_b^{-1}(u)|\,du`;
    for equal sizes this is the mean absolute difference of the sorted samples.
    Differentiable in torch (through the sort). Equals ``scipy.stats.wasserstein_distance(a, b)``.

    Raises
    ------
    ValueError
        Empty, non-1-D, or non-finite samples.

    See also
    --------
    wasserstein1; Chapter 02.
    """
    a, b = as_arrays(("a", "b"), a, b)
    for name, s in (("a", a), ("b", b)):
        if s.ndim != 1 or s.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty 1-D sample, got shape {tuple(s.shape)}")
        check_finite(name, s)
    n, m = a.shape[0], b.shape[0]
    # Breakpoints of both quantile functions: the union of {i/n} and {j/m}.
    u = np.union1d(np.arange(n + 1) / n, np.arange(m + 1) / m)
    widths, mids = np.diff(u), 0.5 * (u[1:] + u[:-1])
    ia = np.minimum((mids * n).astype(np.int64), n - 1)
    ib = np.minimum((mids * m).astype(np.int64), m - 1)
    if isinstance(a, torch.Tensor):
        sa, sb = torch.sort(a).values, torch.sort(b).values
        w = torch.as_tensor(widths, dtype=a.dtype, device=a.device)
        ia_t = torch.as_tensor(ia, device=a.device)
        ib_t = torch.as_tensor(ib, device=a.device)
        return ((sa[ia_t] - sb[ib_t]).abs() * w).sum()
    sa, sb = np.sort(a), np.sort(b)
    return np.sum(np.abs(sa[ia] - sb[ib]) * widths)


def _check_sigma(name: str, s) -> None:
    arr = s.detach() if isinstance(s, torch.Tensor) else np.asarray(s)
    if not bool(np.all(np.asarray(arr) > 0)):
        raise ValueError(f"{name} must be positive, got {s}")


def kl_normal(mu1, sigma1, mu2, sigma2):
    r"""Closed form :math:`\KL(\mathcal N(\mu_1,\sigma_1^2)\,\|\,\mathcal N(\mu_2,\sigma_2^2))
    = \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1-\mu_2)^2}{2\sigma_2^2} - \frac12`.

    Accepts floats, NumPy arrays or torch tensors (broadcast).

    See also
    --------
    kl; Chapter 02.
    """
    mu1, sigma1, mu2, sigma2 = as_arrays(("mu1", "sigma1", "mu2", "sigma2"), mu1, sigma1, mu2, sigma2)
    for name, v in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        check_finite(name, v)
    _check_sigma("sigma1", sigma1)
    _check_sigma("sigma2", sigma2)
    log = torch.log if isinstance(mu1, torch.Tensor) else np.log
    return log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5


def w1_normal(mu1, mu2):
    r"""Closed form :math:`W_1(\mathcal N(\mu_1,\sigma^2), \mathcal N(\mu_2,\sigma^2)) = |\mu_1 - \mu_2|`
    for any common :math:`\sigma` (one is a translate of the other).

    See also
    --------
    wasserstein1; Chapter 02 and Chapter 04.
    """
    mu1, mu2 = as_arrays(("mu1", "mu2"), mu1, mu2)
    check_finite("mu1", mu1)
    check_finite("mu2", mu2)
    return _abs(mu1 - mu2)
