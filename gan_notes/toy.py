"""Toy data: Gaussian mixtures in 1-D and 2-D, the ring and grid of the mode-coverage
benchmarks (VEEGAN, PacGAN).

Each is a :class:`Mixture` built on ``torch.distributions.MixtureSameFamily``: it samples,
evaluates log densities, and exposes the mode ``centers`` and the component ``std`` that the
mode-coverage metric needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import distributions as td

__all__ = ["Mixture", "mixture_1d", "ring", "grid"]


class Mixture:
    """An isotropic Gaussian mixture with K components in d dimensions.

    Parameters
    ----------
    centers : tensor, shape (K, d)
        Component means (the modes).
    std : float or sequence of K floats
        Component standard deviations (isotropic).
    weights : sequence of K floats, optional
        Mixture weights, non-negative and summing to 1; uniform by default.

    Attributes
    ----------
    centers : tensor (K, d); std : tensor (K,); weights : tensor (K,); dist : the
    ``torch.distributions.MixtureSameFamily``.

    See also
    --------
    mixture_1d, ring, grid; Chapter 01.
    """

    def __init__(self, centers, std, weights=None):
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.ndim != 2 or centers.shape[0] < 1:
            raise ValueError(f"centers must have shape (K, d) with K >= 1, got {tuple(centers.shape)}")
        k, d = centers.shape
        std_t = torch.as_tensor(std, dtype=torch.float32)
        std_t = std_t.expand(k).clone() if std_t.ndim == 0 else std_t
        if std_t.shape != (k,):
            raise ValueError(f"std must be a number or K={k} numbers, got shape {tuple(std_t.shape)}")
        if not bool(torch.isfinite(std_t).all() and (std_t > 0).all()):
            raise ValueError(f"std must be positive and finite, got {std_t.tolist()}")
        if weights is None:
            w = torch.full((k,), 1.0 / k, dtype=torch.float64)
        else:
            w = torch.as_tensor(weights, dtype=torch.float64)
            if w.shape != (k,):
                raise ValueError(f"weights must have K={k} entries, got shape {tuple(w.shape)}")
            if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
                raise ValueError("weights must be finite and non-negative")
            if abs(float(w.sum()) - 1.0) > 1e-6:
                raise ValueError(f"weights must sum to 1, they sum to {float(w.sum()):.8g}")
        if not bool(torch.isfinite(centers).all()):
            raise ValueError("centers must be finite")
        self.centers = centers
        self.std = std_t
        self.weights = w.float()
        self.dim = d
        self.dist = self._build(torch.float32)
        self._dists = {torch.float32: self.dist}

    def _build(self, dtype: torch.dtype) -> td.MixtureSameFamily:
        k, d = self.centers.shape
        c, s = self.centers.to(dtype), self.std.to(dtype)
        components = td.Independent(td.Normal(c, s[:, None].expand(k, d)), 1)
        return td.MixtureSameFamily(td.Categorical(probs=self.weights.to(dtype)), components)

    @property
    def n_modes(self) -> int:
        return self.centers.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` samples, shape (n, d). Uses torch's global generator unless given one."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if generator is None:
            return self.dist.sample((n,))
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.centers[idx] + noise * self.std[idx, None]

    def _points(self, x) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        if self.dim == 1 and x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        return x

    def log_prob(self, x) -> torch.Tensor:
        """Log density at points x of shape (n, d) (or (n,) in 1-D); returns shape (n,).

        Computed in x's dtype: pass float64 points for densities far in the tails, where
        float32 underflows to 0.
        """
        x = self._points(x)
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        if dtype not in self._dists:
            self._dists[dtype] = self._build(dtype)
        return self._dists[dtype].log_prob(x.to(dtype))

    def prob(self, x) -> torch.Tensor:
        """Density at points x; ``exp(log_prob(x))``."""
        return self.log_prob(x).exp()

    def __repr__(self) -> str:
        return f"Mixture(K={self.n_modes}, d={self.dim}, std={self.std.tolist()})"


def mixture_1d(means: Sequence[float], stds: Sequence[float] | float, weights: Sequence[float] | None = None) -> Mixture:
    """A 1-D Gaussian mixture with the given means, standard deviations and weights.

    Examples
    --------
    >>> bimodal = mixture_1d([-2.0, 2.0], [0.5, 0.5], [0.5, 0.5])

    See also
    --------
    Mixture; Chapters 01-03.
    """
    means_t = torch.as_tensor(means, dtype=torch.float32).reshape(-1, 1)
    return Mixture(means_t, stds, weights)


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> Mixture:
    r"""``n_modes`` Gaussians equally spaced on a circle: centers at angles :math:`2\pi k/n`,
    :math:`k = 0, \dots, n-1` (all distinct), equal weights.

    The defaults are the VEEGAN/PacGAN ring: 8 modes, radius 1, :math:`\sigma = 0.01`.

    See also
    --------
    grid; Chapter 01 and Chapter 06 (mode collapse).
    """
    if not isinstance(n_modes, int) or n_modes < 1:
        raise ValueError(f"n_modes must be a positive int, got {n_modes!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    centers = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return Mixture(centers.float(), std)


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    r"""``side**2`` Gaussians on a square grid centred at the origin.

    The defaults are the PacGAN grid: centers :math:`\{-4,-2,0,2,4\}^2`, :math:`\sigma = 0.05`.

    See also
    --------
    ring; Chapter 06 (mode collapse).
    """
    if not isinstance(side, int) or side < 1:
        raise ValueError(f"side must be a positive int, got {side!r}")
    if not spacing > 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    ticks = (np.arange(side) - (side - 1) / 2) * spacing
    xs, ys = np.meshgrid(ticks, ticks, indexing="ij")
    centers = np.stack([xs.ravel(), ys.ravel()], axis=1)
    return Mixture(torch.as_tensor(centers, dtype=torch.float32), std)
