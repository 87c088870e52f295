"""Two-player games and first-order game optimizers (chapter 05).

A game is a value function ``V(x, y)`` that the first player ``x`` minimises and the second
player ``y`` maximises (in a GAN, x is the generator, y the discriminator). Players are scalars
here, as in the book's examples; the state is ``z = (x, y)``. The simultaneous gradient field is

    v(z) = (dV/dx, -dV/dy),

and every method below is a rule for stepping along it. Gradients and Jacobians come from
``torch.func``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import grad, jacrev

__all__ = [
    "Game",
    "bilinear",
    "quadratic",
    "dirac_gan",
    "UPDATE_RULES",
    "step",
    "trajectory",
    "update_jacobian",
    "field_jacobian",
    "spectral_radius",
]

Tensor = torch.Tensor


@dataclass(frozen=True)
class Game:
    """A zero-sum game ``min_x max_y V(x, y)`` between two scalar players.

    Attributes
    ----------
    name : str
    value : callable (x, y) -> V, on 0-d float64 tensors
    equilibrium : (x*, y*)
    """

    name: str
    value: Callable[[Tensor, Tensor], Tensor]
    equilibrium: tuple[float, float] = (0.0, 0.0)

    def grad(self, z: Tensor) -> Tensor:
        """(dV/dx, dV/dy) at z = (x, y)."""
        gx, gy = grad(self.value, argnums=(0, 1))(z[0], z[1])
        return torch.stack([gx, gy])

    def field(self, z: Tensor) -> Tensor:
        """The simultaneous gradient field v(z) = (dV/dx, -dV/dy): descent for x, ascent for y."""
        g = self.grad(z)
        return torch.stack([g[0], -g[1]])


def bilinear() -> Game:
    r"""The bilinear game :math:`V(x, y) = xy`; equilibrium (0, 0).

    See also
    --------
    Chapter 05 (simultaneous GDA spirals out by :math:`\sqrt{1+\eta^2}` per step).
    """
    return Game("bilinear", lambda x, y: x * y)


def quadratic(a: float = 1.5, b: float = 4.0, c: float = -2.5) -> Game:
    r"""The quadratic game :math:`V(\theta, \phi) = a\theta^2 + b\theta\phi + c\phi^2`.

    The defaults give :math:`V = \tfrac32\theta^2 + 4\theta\phi - \tfrac52\phi^2`: convex in the
    minimising player, concave in the maximising one, with equilibrium (0, 0). Its field is
    linear, :math:`v(z) = Az` with :math:`A = \begin{pmatrix}2a & b\\ -b & -2c\end{pmatrix}`.

    See also
    --------
    Chapter 05 (symmetric and rotational parts of the Jacobian).
    """
    return Game(f"quadratic({a}, {b}, {c})", lambda x, y: a * x**2 + b * x * y + c * y**2)


def _gauss_hermite(n: int = 40) -> tuple[Tensor, Tensor]:
    # Nodes and weights for E[f(eps)], eps ~ N(0, 1) (probabilists' Hermite polynomials).
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return torch.as_tensor(nodes), torch.as_tensor(weights / math.sqrt(2 * math.pi))


def dirac_gan(r1: float = 0.0, instance_noise: float = 0.0) -> Game:
    r"""The Dirac-GAN of Mescheder et al. (2018): data is a point mass at 0, the generator a
    point mass at :math:`\theta`, the discriminator :math:`D(x) = \sigma(\psi x)`.

    .. math::
        V(\theta, \psi) = \log\sigma(0) + \log\big(1 - \sigma(\psi\theta)\big)
                        - \tfrac{\gamma}{2}\psi^2 ,

    with :math:`\gamma` = ``r1``: the R1 penalty :math:`\E_{\pdata}\|\nabla_x a(x)\|^2 = \psi^2`
    (the discriminator maximises, so the penalty is subtracted). With ``instance_noise`` = s > 0 both
    distributions are blurred by :math:`\mathcal N(0, s^2)` (instance noise) and the
    expectations are computed by Gauss-Hermite quadrature. Players: x = :math:`\theta`
    (generator), y = :math:`\psi` (discriminator); equilibrium (0, 0).

    See also
    --------
    Chapter 05 (the Dirac-GAN without and with R1 / instance noise).
    """
    if r1 < 0 or instance_noise < 0:
        raise ValueError(f"r1 and instance_noise must be >= 0, got r1={r1}, instance_noise={instance_noise}")
    eps, w = _gauss_hermite()

    def value(theta: Tensor, psi: Tensor) -> Tensor:
        if instance_noise == 0:
            real = -F.softplus(torch.zeros_like(psi))  # log sigmoid(0)
            fake = -F.softplus(psi * theta)  # log(1 - sigmoid(psi theta))
        else:
            real = (w * -F.softplus(-psi * instance_noise * eps)).sum()
            fake = (w * -F.softplus(psi * (theta + instance_noise * eps))).sum()
        return real + fake - 0.5 * r1 * psi**2

    return Game(f"dirac_gan(r1={r1}, instance_noise={instance_noise})", value)


UPDATE_RULES = ("simultaneous", "alternating", "extragradient", "optimistic", "consensus")


def _as_state(z) -> Tensor:
    z = torch.as_tensor(z, dtype=torch.float64)
    if z.shape != (2,):
        raise ValueError(f"the state z = (x, y) must have shape (2,), got {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError("the state z contains NaN or infinite entries")
    return z


def step(game: Game, z: Tensor, lr: float, method: str = "simultaneous", z_prev: Tensor | None = None, gamma: float = 1.0) -> Tensor:
    r"""One step of a first-order game optimizer from ``z = (x, y)``.

    - ``simultaneous`` GDA: :math:`z \leftarrow z - \eta v(z)`;
    - ``alternating`` GDA: :math:`x \leftarrow x - \eta\,\partial_x V(x, y)`, then
      :math:`y \leftarrow y + \eta\,\partial_y V(x_{new}, y)`;
    - ``extragradient``: :math:`z_{1/2} = z - \eta v(z)`, :math:`z \leftarrow z - \eta v(z_{1/2})`;
    - ``optimistic`` GDA: :math:`z \leftarrow z - 2\eta v(z) + \eta v(z_{prev})`
      (``z_prev`` = z at the first step);
    - ``consensus`` optimization (Mescheder et al. 2017):
      :math:`z \leftarrow z - \eta\,(v(z) + \gamma \nabla \tfrac12\|v(z)\|^2)`.

    See also
    --------
    trajectory, update_jacobian; Chapter 05.
    """
    if method not in UPDATE_RULES:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(UPDATE_RULES)}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if method == "simultaneous":
        return z - lr * game.field(z)
    if method == "alternating":
        x = z[0] - lr * game.grad(z)[0]
        z1 = torch.stack([x, z[1]])
        return torch.stack([x, z[1] + lr * game.grad(z1)[1]])
    if method == "extragradient":
        return z - lr * game.field(z - lr * game.field(z))
    if method == "optimistic":
        prev = z if z_prev is None else z_prev
        return z - 2 * lr * game.field(z) + lr * game.field(prev)
    # consensus
    reg = grad(lambda u: 0.5 * (game.field(u) ** 2).sum())(z)
    return z - lr * (game.field(z) + gamma * reg)


def trajectory(game: Game, z0, lr: float, steps: int, method: str = "simultaneous", gamma: float = 1.0) -> np.ndarray:
    """Iterate :func:`step` ``steps`` times from ``z0``; returns the states, shape (steps + 1, 2).

    Raises ValueError if the iterates overflow (a diverging method), naming the step.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    z = _as_state(z0)
    out = [z]
    prev = None
    for t in range(steps):
        z_next = step(game, z, lr, method, z_prev=prev, gamma=gamma)
        if not bool(torch.isfinite(z_next).all()):
            raise ValueError(f"{method} diverged: the state is not finite at step {t + 1}")
        prev, z = z, z_next
        out.append(z)
    return torch.stack(out).numpy()


def update_jacobian(game: Game, lr: float, method: str = "simultaneous", z=None, gamma: float = 1.0) -> np.ndarray:
    r"""Jacobian of the update map :math:`z \mapsto z_{next}` at ``z`` (default: the equilibrium).

    A fixed point is locally stable when the spectral radius of this Jacobian is below 1. For
    ``optimistic`` GDA the map acts on the pair :math:`(z_t, z_{t-1})`, so the Jacobian is 4x4.

    See also
    --------
    spectral_radius; Chapter 05.
    """
    z = _as_state(game.equilibrium if z is None else z)
    if method == "optimistic":
        def pair_map(s: Tensor) -> Tensor:
            return torch.cat([step(game, s[:2], lr, method, z_prev=s[2:]), s[:2]])

        return jacrev(pair_map)(torch.cat([z, z])).numpy()
    return jacrev(lambda u: step(game, u, lr, method, gamma=gamma))(z).numpy()


def field_jacobian(game: Game, z=None) -> np.ndarray:
    r"""Jacobian of the gradient field :math:`v(z) = (\partial_x V, -\partial_y V)` at ``z``
    (default: the equilibrium). Its symmetric part contracts or expands; its antisymmetric
    part rotates.

    See also
    --------
    update_jacobian; Chapter 05.
    """
    z = _as_state(game.equilibrium if z is None else z)
    return jacrev(game.field)(z).numpy()


def spectral_radius(matrix) -> float:
    """Largest absolute eigenvalue of a square matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square, got shape {m.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(m))))
