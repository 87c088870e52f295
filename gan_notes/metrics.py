"""Sample-based metrics for toy GANs: mode coverage (VEEGAN/PacGAN protocol) and
precision / recall / density / coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020).

Both take samples as NumPy arrays or torch tensors of shape (n, d) and return plain Python
numbers in a dict, ready to print or to write into a results table.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["mode_coverage", "prdc"]


def _points(name: str, x, dim: int | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu", torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array of shape (n, d)") from err
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {tuple(t.shape)}")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name} has dimension {t.shape[1]}, expected {dim}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return t


def mode_coverage(samples, centers, std, threshold: float = 3.0, weights=None) -> dict[str, float]:
    r"""Mode coverage of generated samples on a mixture with known modes.

    Each sample is assigned to its nearest center; it is *high quality* when that distance is
    below ``threshold * std``. Then

    - ``modes``: the number of centers that are the nearest center of at least one
      high-quality sample;
    - ``high_quality``: the fraction of samples that are high quality;
    - ``kl``: :math:`\KL(\hat q \| w)`, the KL divergence (natural log) of the histogram
      :math:`\hat q` of high-quality samples over the modes from the true mode weights
      :math:`w` (uniform by default): 0 for a perfect spread, :math:`\log K` when everything
      falls on one of K equally weighted modes, ``inf`` when no sample is high quality.

    This is the protocol of VEEGAN and PacGAN (2,500 samples, threshold 3).

    Parameters
    ----------
    samples : array (n, d)
    centers : array (K, d)
    std : float
        The components' standard deviation :math:`\sigma`.
    threshold : float
        High quality means within ``threshold * std`` of the nearest center.
    weights : array (K,), optional
        True mode weights; uniform when omitted.

    Returns
    -------
    dict with ``modes`` (int), ``high_quality`` (float in [0, 1]), ``kl`` (float) and
    ``counts`` (list of K ints: high-quality samples per mode, for mode histograms).

    See also
    --------
    gan_notes.toy.ring, gan_notes.toy.grid; Chapter 06 (mode collapse).
    """
    c = _points("centers", centers)
    x = _points("samples", samples, dim=c.shape[1])
    std = float(std if not isinstance(std, torch.Tensor) else std.reshape(-1)[0])
    if not (math.isfinite(std) and std > 0):
        raise ValueError(f"std must be positive, got {std}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be positive, got {threshold}")
    k = c.shape[0]
    if weights is None:
        w = torch.full((k,), 1.0 / k, dtype=torch.float64)
    else:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.shape != (k,) or bool((w < 0).any()) or abs(float(w.sum()) - 1) > 1e-6:
            raise ValueError(f"weights must be {k} non-negative numbers summing to 1")
    nearest, idx = torch.cdist(x, c).min(dim=1)
    hq = nearest < threshold * std
    counts = torch.bincount(idx[hq], minlength=k).double()
    n_hq = int(hq.sum())
    if n_hq == 0:
        kl = math.inf
    else:
        q = counts / n_hq
        pos = q > 0
        kl = float((q[pos] * (q[pos].log() - w[pos].log())).sum()) if bool((w[pos] > 0).all()) else math.inf
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": n_hq / x.shape[0],
        "kl": kl,
        "counts": counts.long().tolist(),
    }


def _kth_radius(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour, the point itself excluded."""
    d = torch.cdist(points, points)
    # The smallest entry of each row is the point itself (distance 0): take the (k+1)-th.
    return d.kthvalue(k + 1, dim=1).values


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    r"""Precision, recall, density and coverage of ``fake`` samples against ``real`` ones.

    With :math:`r_k(x)` the distance from a point to its k-th nearest neighbour in its own set
    (itself excluded) and :math:`B(x, r)` the open ball:

    - precision: fraction of fakes inside some :math:`B(x_i, r_k(x_i))` of a real point;
    - recall: fraction of reals inside some :math:`B(y_j, r_k(y_j))` of a fake point
      (Kynkäänniemi et al. 2019);
    - density: :math:`\frac{1}{kM}\sum_j \sum_i 1[y_j \in B(x_i, r_k(x_i))]` (can exceed 1);
    - coverage: fraction of reals whose own ball contains at least one fake (Naeem et al. 2020).

    Membership uses the strict inequality ``<`` as in the reference implementation.

    Parameters
    ----------
    real : array (N, d); fake : array (M, d)
    k : int
        Neighbourhood size, ``1 <= k < min(N, M)``.

    Returns
    -------
    dict with ``precision``, ``recall``, ``density``, ``coverage`` (floats).

    See also
    --------
    mode_coverage; Chapter 06 (collapsed vs healthy runs).
    """
    x = _points("real", real)
    y = _points("fake", fake, dim=x.shape[1])
    if not isinstance(k, int) or k < 1 or k >= min(x.shape[0], y.shape[0]):
        raise ValueError(f"k must be an int with 1 <= k < min(len(real), len(fake)), got {k!r}")
    r_real = _kth_radius(x, k)
    r_fake = _kth_radius(y, k)
    d = torch.cdist(x, y)  # (N, M)
    in_real_balls = d < r_real[:, None]
    precision = in_real_balls.any(dim=0).double().mean()
    recall = (d < r_fake[None, :]).any(dim=1).double().mean()
    density = in_real_balls.double().sum(dim=0).mean() / k
    coverage = (d.min(dim=1).values < r_real).double().mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }
