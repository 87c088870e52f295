"""Sample-based metrics for toy GANs: mode coverage (VEEGAN/PacGAN protocol),
precision / recall / density / coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020), and
mode hopping: where the generator's mass is (:func:`nearest_counts`) and how it moves between
evaluations (:func:`mode_hopping`).

They take samples as NumPy arrays or torch tensors of shape (n, d) and return plain Python
numbers in a dict, ready to print or to write into a results table.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["mode_coverage", "prdc", "nearest_counts", "mode_hopping"]


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
    # The smallest entry of each row is the point itself (distance 0): take the (k+1)-th
    # (topk of the k+1 smallest: the same value as kthvalue, several times faster on a CPU).
    return d.topk(k + 1, dim=1, largest=False).values[:, -1]


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


def nearest_counts(samples, centers) -> list[int]:
    r"""Samples per mode, each sample counted at its nearest center (no quality threshold).

    .. math::
        n(k) = \#\{i : \arg\min_j \|x_i - c_j\|_2 = k\}, \qquad \sum_k n(k) = n,

    ties going to the center listed first. Unlike :func:`mode_coverage`'s ``counts``, every
    sample counts, near a mode or not: :math:`n(k)/n` is where the generator's mass is.

    Parameters
    ----------
    samples : array (n, d)
    centers : array (K, d)

    Returns
    -------
    list of K ints.

    See also
    --------
    mode_hopping, mode_coverage; Chapter 06 (mode hopping) and Chapter 09.
    """
    c = _points("centers", centers)
    x = _points("samples", samples, dim=c.shape[1])
    return torch.bincount(torch.cdist(x, c).argmin(dim=1), minlength=c.shape[0]).tolist()


def mode_hopping(counts) -> dict:
    r"""How a generator's mass moves between modes over T evaluations (mode hopping).

    With :math:`q_t(k) = n_t(k) / \sum_j n_t(j)` the share of samples nearest to mode
    :math:`k` at evaluation :math:`t` (:func:`nearest_counts`, on a fixed batch of latents, so
    that a change is a change of the generator):

    - ``tv``: :math:`\TV_t = \tfrac12 \sum_k |q_t(k) - q_{t-1}(k)|`, :math:`t = 1, \dots, T-1`:
      0 when the mass stays, 1 when it moves entirely to other modes;
    - ``share``: :math:`\max_k q_t(k)`, and ``dominant``: the *dominant* mode
      :math:`\arg\max_k q_t(k)` where it holds more than half of the mass
      (:math:`q_t(k) > 1/2`), else -1;
    - ``hops``: the number of times the dominant mode changes, counted over the evaluations
      that have one (consecutive in that subsequence); without the majority rule an evenly
      spread histogram would "hop" at every wobble of its largest bar;
    - ``dominated``: the fraction of evaluations that have a dominant mode;
    - ``churn``: the mean of :math:`\TV_t` over the second half, the pairs of evaluations
      :math:`t - 1, t \ge \lfloor T/2 \rfloor` (NaN when T = 2: the second half has no pair).

    Parameters
    ----------
    counts : array (T, K)
        Samples per nearest mode at each of :math:`T \ge 2` evaluations (non-negative, each
        row with a positive total).

    Returns
    -------
    dict with ``tv`` (array T-1), ``share`` (array T), ``dominant`` (int array T), ``hops``
    (int), ``dominated`` (float) and ``churn`` (float).

    See also
    --------
    nearest_counts; Chapter 06 (the experiment on mode hopping) and Chapter 09 (the
    hopping indicators).
    """
    if isinstance(counts, torch.Tensor):
        counts = counts.detach().cpu().numpy()
    try:
        n = np.asarray(counts, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError("counts must be a numeric array of shape (T, K)") from err
    if n.ndim != 2 or n.shape[0] < 2 or n.shape[1] < 1:
        raise ValueError(f"counts must have shape (T, K) with T >= 2 evaluations, got {n.shape}")
    if not np.isfinite(n).all() or (n < 0).any():
        raise ValueError("counts must be finite and non-negative (a diverged run has NaN counts)")
    total = n.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("counts has an evaluation with no samples (a row summing to 0)")
    q = n / total
    tv = 0.5 * np.abs(np.diff(q, axis=0)).sum(axis=1)
    share = q.max(axis=1)
    dominant = np.where(share > 0.5, q.argmax(axis=1), -1)
    seq = dominant[dominant >= 0]
    late = tv[n.shape[0] // 2:]
    return {
        "tv": tv,
        "share": share,
        "dominant": dominant,
        "hops": int((seq[1:] != seq[:-1]).sum()),
        "dominated": float(seq.size / n.shape[0]),
        "churn": float(late.mean()) if late.size else math.nan,
    }
