r"""The GAN lab's data sets, and how far a generator's samples are from them (chapter 13).

Five 2-D Gaussian mixtures inside the square :math:`[-2, 2]^2` that the lab's views show, the
exact probabilities of a grid of cells under such a mixture, and the Jensen-Shannon estimate
between a mixture and samples on that grid, with its derivation and its bias in chapter 13.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special

from gan_notes.divergences import js
from gan_notes.toy import Mixture, grid, ring

__all__ = ["LAB_DATASETS", "LIM", "dataset", "cell_masses", "grid_js"]

#: Data sets of the lab, all :class:`~gan_notes.toy.Mixture` s inside the square [-2, 2]^2.
LAB_DATASETS = ("line", "ring", "grid", "overlapping", "disjoint")
#: Half-width of the square shown by the views and covered by the JS grid.
LIM = 2.0


def dataset(name: str) -> Mixture:
    r"""One of the lab's data sets, by name (see ``LAB_DATASETS``).

    - ``"line"``: 13 Gaussians (:math:`\sigma = 0.08`) spaced 0.25 apart along a diagonal
      segment, overlapping into a thin 1-D manifold;
    - ``"ring"``: 8 Gaussians (:math:`\sigma = 0.05`) on a circle of radius 1.5;
    - ``"grid"``: 25 Gaussians (:math:`\sigma = 0.05`) on the grid :math:`\{-1.6, -0.8, 0, 0.8, 1.6\}^2`;
    - ``"overlapping"``: two Gaussians (:math:`\sigma = 0.35`) at :math:`(\pm 0.4, 0)`, one blob;
    - ``"disjoint"``: three well-separated clusters (:math:`\sigma = 0.1`).

    See also
    --------
    gan_notes.toy.ring, gan_notes.toy.grid; Chapter 13 (the GAN lab).
    """
    if name == "line":
        t = (torch.arange(13, dtype=torch.float32) - 6) * 0.25 / math.sqrt(1.0**2 + 0.6**2)
        return Mixture(torch.stack([t, 0.6 * t], dim=1), 0.08)
    if name == "ring":
        return ring(8, radius=1.5, std=0.05)
    if name == "grid":
        return grid(5, spacing=0.8, std=0.05)
    if name == "overlapping":
        return Mixture([[-0.4, 0.0], [0.4, 0.0]], 0.35)
    if name == "disjoint":
        return Mixture([[-1.2, -0.8], [1.2, -0.8], [0.0, 1.2]], 0.1)
    raise ValueError(f"unknown data {name!r}; valid: {', '.join(LAB_DATASETS)}")


def cell_masses(data: Mixture, lim: float = LIM, bins: int = 40) -> np.ndarray:
    r"""Probabilities of the cells of a grid under a 2-D isotropic Gaussian mixture.

    The square :math:`[-\ell, \ell]^2` is cut into ``bins`` :math:`\times` ``bins`` cells; a
    last entry holds everything outside it. An isotropic Gaussian factorises over the two
    coordinates, so a cell :math:`[a, b] \times [c, d]` has the exact mass

    .. math::
        p = \sum_k w_k \big[\Phi(\tfrac{b - \mu_{k1}}{\sigma_k}) - \Phi(\tfrac{a - \mu_{k1}}{\sigma_k})\big]
                       \big[\Phi(\tfrac{d - \mu_{k2}}{\sigma_k}) - \Phi(\tfrac{c - \mu_{k2}}{\sigma_k})\big].

    Returns
    -------
    array (bins * bins + 1,)
        Cell ``(i, j)`` (i along :math:`x_1`, j along :math:`x_2`) at index ``i * bins + j``,
        as ``numpy.histogram2d(x1, x2).ravel()`` orders counts; sums to 1.

    See also
    --------
    grid_js; Chapter 13 (the GAN lab).
    """
    if not isinstance(data, Mixture) or data.dim != 2:
        raise TypeError("data must be a 2-D gan_notes.toy.Mixture")
    if not (isinstance(lim, (int, float)) and math.isfinite(lim) and lim > 0):
        raise ValueError(f"lim must be a positive number, got {lim!r}")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    edges = np.linspace(-lim, lim, bins + 1)
    c, s = data.centers.double().numpy(), data.std.double().numpy()[:, None]
    w = data.weights.double().numpy()
    w = w / w.sum()  # the weights are stored in float32
    mx = np.diff(special.ndtr((edges - c[:, :1]) / s), axis=1)  # (K, bins): mass of each column
    my = np.diff(special.ndtr((edges - c[:, 1:]) / s), axis=1)
    inside = np.einsum("k,ki,kj->ij", w, mx, my).ravel()
    return np.append(inside, max(0.0, 1.0 - inside.sum()))


def grid_js(data: Mixture, samples, lim: float = LIM, bins: int = 40) -> float:
    r"""Jensen-Shannon estimate between a 2-D mixture and samples, on a grid of cells.

    With :math:`p` the data's exact cell probabilities (:func:`cell_masses`: ``bins``
    :math:`\times` ``bins`` cells over :math:`[-\ell, \ell]^2` and one cell for the outside)
    and :math:`\hat q_i = n_i/n` the histogram of the n samples on the same cells,

    .. math::
        \widehat{\JS} = \JS(p \,\|\, \hat q) \in [0, \log 2],

    computed by :func:`gan_notes.divergences.js`. It is the JS divergence between the two
    distributions *coarsened to the cells* (a lower bound on the true JS, by the data
    processing inequality), plus sampling noise that biases it upward: for samples drawn from
    the data itself, :math:`\E\,\widehat{\JS} \approx (B - 1)/(8n)` with B the number of cells
    that hold data (Chapter 13). Compare it with the same estimate on n data samples.

    Parameters
    ----------
    data : Mixture
        A 2-D data distribution (one of :func:`dataset`, or any 2-D mixture).
    samples : array or tensor (n, 2)
        Generated samples.
    lim : float
        Half-width of the square.
    bins : int
        Cells per side.

    See also
    --------
    gan_notes.divergences.js; Chapter 02 (divergences) and Chapter 13 (the GAN lab).
    """
    p = cell_masses(data, lim, bins)
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise ValueError(f"samples must have shape (n, 2) with n >= 1, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or infinite entries")
    edges = np.linspace(-lim, lim, bins + 1)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    q = np.append(counts.ravel(), x.shape[0] - counts.sum()) / x.shape[0]
    return float(js(p, q))
