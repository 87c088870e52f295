r"""Statistics for reading results: mean ± standard error over seeds, how the book prints
them in tables, and the law of :math:`m` independent draws (PacGAN's packs).

- :func:`mean_se`: :math:`\bar x` and :math:`s/\sqrt n` with a stated NaN policy and the count
  of NaNs it met (:class:`MeanSE`).
- :func:`format_mean_se` and :func:`markdown_table`: the cells and the Markdown tables of the
  chapters' results (Chapters 06, 07, 09).
- :func:`product_distribution`: :math:`p^{\otimes m}`, the distribution of a pack of :math:`m`
  i.i.d. draws from a distribution on a finite set (Chapters 09 and 11).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from gan_notes.arrays import Array
from gan_notes.validate import choice, integer, number

__all__ = ["MeanSE", "mean_se", "format_mean_se", "markdown_table", "product_distribution"]

#: The NaN policies of :func:`mean_se`.
NAN_POLICIES = ("propagate", "omit")


class MeanSE(NamedTuple):
    """The result of :func:`mean_se`: ``mean``, standard error ``se``, the number ``n`` of
    values they are over, and the number ``n_nan`` of NaNs met in the input."""

    mean: float
    se: float
    n: int
    n_nan: int


def mean_se(values, *, nan: str = "propagate") -> MeanSE:
    r"""Mean and standard error of the mean of repeated measurements (e.g. one per seed).

    .. math::
        \bar x = \frac1n \sum_{i=1}^n x_i, \qquad
        \mathrm{se} = \frac{s}{\sqrt n}, \quad s^2 = \frac{1}{n-1}\sum_{i=1}^n (x_i - \bar x)^2 .

    NaN policy (``nan``), stated because a NaN usually means a run that failed:

    - ``"propagate"`` (default): any NaN makes ``mean`` and ``se`` NaN; ``n`` counts all values.
    - ``"omit"``: NaNs are dropped and the statistics are over the other ``n`` values.

    Either way ``n_nan`` reports how many NaNs the input held, so a NaN is never lost without
    a trace. Infinities are values, not NaNs: a mean over values that include ``+inf`` (e.g. a
    KL divergence with no high-quality sample) is ``inf`` (NaN if both ``+inf`` and ``-inf``
    occur), and its ``se`` is NaN. ``se`` is NaN when :math:`n < 2`; ``mean`` is NaN when
    :math:`n = 0` (empty input, or only NaNs under ``"omit"``).

    Parameters
    ----------
    values : 1-D array-like or torch tensor of numbers
    nan : {"propagate", "omit"}

    Returns
    -------
    MeanSE
        ``(mean, se, n, n_nan)`` as plain Python numbers; ``m, se, *_ = mean_se(v)`` or
        ``mean_se(v).mean``.

    See also
    --------
    format_mean_se; Chapters 06, 08 and 09 (results over seeds).
    """
    choice("nan", nan, NAN_POLICIES)
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"values must be a 1-D sequence of numbers, got {type(values).__name__}") from err
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    is_nan = np.isnan(v)
    n_nan = int(is_nan.sum())
    if nan == "omit":
        v = v[~is_nan]
    n = int(v.size)
    if n == 0 or (n_nan and nan == "propagate"):
        return MeanSE(math.nan, math.nan, n, n_nan)
    if not np.isfinite(v).all():
        has_pos, has_neg = bool((v == math.inf).any()), bool((v == -math.inf).any())
        mean = math.nan if has_pos and has_neg else (math.inf if has_pos else -math.inf)
        return MeanSE(mean, math.nan, n, n_nan)
    se = float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return MeanSE(float(v.mean()), se, n, n_nan)


def format_mean_se(value, *, scale: float = 1.0, digits: int = 2) -> str:
    r"""One table cell: ``"m ± s"`` with ``digits`` decimals, after multiplying by ``scale``.

    ``value`` is a :class:`MeanSE` or a pair ``(mean, se)``, either of which may be ``None``
    (a published number without its error, or none at all). The cell is

    - ``"–"`` when the mean is ``None`` or NaN (nothing to show);
    - ``"inf"`` or ``"-inf"`` when the mean is infinite;
    - ``"m"`` when ``se`` is ``None`` or not finite (one seed, or no error published);
    - ``"m ± s"`` otherwise.

    Parameters
    ----------
    value : MeanSE or (mean, se)
    scale : float
        E.g. 100 to print a fraction in percent.
    digits : int
        Decimals.

    See also
    --------
    mean_se, markdown_table; Chapters 06, 07 and 09.
    """
    if isinstance(value, MeanSE):
        m, s = value.mean, value.se
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        m, s = value
    else:
        raise TypeError(f"value must be a MeanSE or a (mean, se) pair, got {value!r}")
    for name, x in (("mean", m), ("se", s)):
        if x is not None and (isinstance(x, bool) or not isinstance(x, numbers.Real)):
            raise TypeError(f"value: the {name} must be a real number or None, got {x!r}")
    scale = number("scale", scale, minimum=-math.inf)
    digits = integer("digits", digits, minimum=0)
    if m is None or math.isnan(m):
        return "–"
    if math.isinf(m):
        return "inf" if m > 0 else "-inf"
    text = f"{scale * m:.{digits}f}"
    if s is not None and math.isfinite(s):
        text += f" ± {scale * s:.{digits}f}"
    return text


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown (pipe) table: the header, the separator ``|---|...|``, then one line per row.

    Each cell is ``str(cell)``, with ``|`` escaped; an empty cell is written ``| |``. Display it
    with ``IPython.display.Markdown``.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences
        Each with one cell per column.

    Raises
    ------
    ValueError
        When the header is empty or a row has another number of cells.

    See also
    --------
    format_mean_se; Chapters 07 and 09 (benchmark tables).
    """
    header = list(header)
    if not header:
        raise ValueError("header must name at least one column")

    def line(cells) -> str:
        text = [str(c).replace("|", "\\|") for c in cells]
        return "|" + "|".join(f" {t} " if t else " " for t in text) + "|"

    lines = [line(header), "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, the header {len(header)}")
        lines.append(line(row))
    return "\n".join(lines)


def product_distribution(p: Array, m: int) -> Array:
    r"""The distribution of :math:`m` independent draws, :math:`p^{\otimes m}`, flattened.

    .. math::
        p^{\otimes m}(x_1, \dots, x_m) = \prod_{i=1}^m p(x_i),

    for :math:`p` on a set of :math:`K` points, as a vector of :math:`K^m` entries in
    row-major order: the tuple :math:`(x_1, \dots, x_m)` sits at index
    :math:`\sum_i x_i K^{m-i}`. It is the distribution a packed discriminator (PacGAN) sees;
    divergences between packed distributions are divergences between such products.

    Parameters
    ----------
    p : 1-D array or tensor
        A probability vector (non-negative, sums to 1).
    m : int
        Pack size, :math:`m \ge 1`.

    Returns
    -------
    Array of length :math:`K^m`, the same kind as ``p`` (torch inputs stay differentiable).

    See also
    --------
    gan_notes.remedies.pack; Chapter 09 (PacGAN's argument, exactly) and Chapter 11.
    """
    m = integer("m", m)
    is_torch = isinstance(p, torch.Tensor)
    if not is_torch:
        try:
            p = np.asarray(p, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"p must be a 1-D array of probabilities, got {type(p).__name__}") from err
    if p.ndim != 1 or p.shape[0] == 0:
        raise ValueError(f"p must be a non-empty 1-D array, got shape {tuple(p.shape)}")
    check = p.detach().cpu().double().numpy() if is_torch else p
    if not np.isfinite(check).all() or (check < 0).any():
        raise ValueError("p must be finite and non-negative")
    if abs(check.sum() - 1.0) > 1e-6:
        raise ValueError(f"p must sum to 1, got {check.sum():.6g}")
    if p.shape[0] ** m > 2**27:
        raise ValueError(f"p has {p.shape[0]} points: the product for m={m} would have {p.shape[0] ** m} entries")
    out = p
    for _ in range(m - 1):
        out = torch.outer(out, p).reshape(-1) if is_torch else np.outer(out, p).ravel()
    return out
