r"""Lipschitz constraints on the critic (Chapter 08).

- the spectral norm by power iteration, written out (:func:`spectral_norm`) and as the pure
  one-step update that spectral normalisation uses in training (:func:`spectral_normalize`,
  the same computation as ``torch.nn.utils.parametrizations.spectral_norm``), and that
  parametrization applied to every layer of a network (:func:`apply_spectral_norm`);
- the product bound on a network's Lipschitz constant (:func:`lipschitz_upper_bound`) and
  the measured input-gradient norms (:func:`gradient_norms`);
- weight clipping (:func:`clip_weights_`) and how much of the weight mass piles up at the
  clipping bounds (:func:`weight_pile_fraction`);
- the critic's estimate of the Wasserstein-1 distance (:func:`critic_w1_estimate`).

Weights are made 2-D as torch does: :math:`W` of shape ``(out, ...)`` becomes
``W.flatten(1)``, of shape ``(out, prod(...))``. All but :func:`clip_weights_` are pure
functions; :func:`spectral_normalize`, :func:`gradient_norms` and :func:`critic_w1_estimate`
also run under :func:`torch.func.vmap`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad

from gan_notes.arrays import Array
from gan_notes.validate import integer

__all__ = [
    "spectral_norm",
    "spectral_normalize",
    "apply_spectral_norm",
    "lipschitz_upper_bound",
    "gradient_norms",
    "clip_weights_",
    "weight_pile_fraction",
    "critic_w1_estimate",
]


def _matrix(name: str, W) -> torch.Tensor:
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(W).__name__}")
    if W.ndim < 2 or W.numel() == 0:
        raise ValueError(f"{name} must be a non-empty weight of at least 2 dimensions, got shape {tuple(W.shape)}")
    if not W.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {W.dtype}")
    return W.flatten(1)


def _check_v(v: torch.Tensor, cols: int) -> None:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"v must be a torch tensor, got {type(v).__name__}")
    if v.shape != (cols,):
        raise ValueError(f"v must have shape ({cols},) (the columns of W flattened to 2-D), got {tuple(v.shape)}")


def _n_iter(n_iter) -> int:
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive int, got {n_iter!r}")
    return n_iter


def _power_iteration(W: torch.Tensor, v: torch.Tensor, n_iter: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    # The order and the eps of torch's _SpectralNorm._power_method: u from v, then v from u.
    for _ in range(n_iter):
        u = F.normalize(W @ v, dim=0, eps=eps)
        v = F.normalize(W.mT @ u, dim=0, eps=eps)
    return u, v


def spectral_norm(W: Array, n_iter: int = 100, v: Array | None = None, eps: float = 1e-12) -> tuple[Array, Array, Array]:
    r"""The spectral norm :math:`\sigma(W) = \max_{\|v\|=1}\|Wv\|` by power iteration.

    Starting from a unit vector :math:`v`, repeat (in torch's order)

    .. math::
        u \leftarrow \frac{W v}{\|W v\|}, \qquad v \leftarrow \frac{W^\top u}{\|W^\top u\|},

    then :math:`\sigma \approx u^\top W v`. The error in the singular vectors shrinks like
    :math:`(\sigma_2/\sigma_1)^{2n}`. This is the iteration inside spectral normalisation
    (Miyato et al. 2018); :func:`torch.linalg.matrix_norm` with ``ord=2`` computes the same
    number by an SVD.

    Parameters
    ----------
    W : tensor or array, shape (out, ...)
        Flattened to ``(out, prod(...))`` as torch does for Linear and Conv weights.
    n_iter : int >= 1
    v : tensor or array (prod(...),), optional
        Start vector (unit norm); by default a fixed random one (seed 0), so the result is
        reproducible.
    eps : float
        Guard in the normalisation, as in torch.

    Returns
    -------
    (sigma, u, v) : scalar, left and right singular vector estimates; NumPy if W was.

    See also
    --------
    spectral_normalize; Chapter 08 (Lipschitz constraints).
    """
    is_np = isinstance(W, np.ndarray)
    W = torch.as_tensor(W) if is_np else W
    n_iter = _n_iter(n_iter)
    mat = _matrix("W", W)
    if v is None:
        gen = torch.Generator().manual_seed(0)
        v = F.normalize(torch.randn(mat.shape[1], generator=gen, dtype=mat.dtype).to(mat.device), dim=0, eps=eps)
    else:
        v = torch.as_tensor(v, dtype=mat.dtype, device=mat.device)
    _check_v(v, mat.shape[1])
    u, v = _power_iteration(mat, v, n_iter, eps)
    sigma = u @ (mat @ v)
    if is_np:
        return sigma.numpy(), u.numpy(), v.numpy()
    return sigma, u, v


def spectral_normalize(W: torch.Tensor, v: torch.Tensor, n_iter: int = 1, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Spectral normalisation as a pure function: :math:`W / \sigma(W)` and the updated *v*.

    One training-time call of ``torch.nn.utils.parametrizations.spectral_norm``:
    ``n_iter`` power iterations (:func:`spectral_norm`'s loop, without gradient) from the
    stored right vector *v*, then

    .. math::
        \bar W = \frac{W}{\sigma}, \qquad \sigma = u^\top W v ,

    with the gradient flowing through *W* only (*u*, *v* are constants), as in Miyato et al.
    (2018) and in torch. The caller stores ``new_v`` for the next step; no module state is
    touched, so a batched trainer can carry one *v* per seed through :func:`torch.func.vmap`.
    torch keeps both ``_u`` and ``_v`` buffers, but each iteration recomputes *u* from *v*,
    so *v* (torch's ``_v``) is the whole state: with the same *v* and ``n_iter`` the result
    equals torch's.

    Parameters
    ----------
    W : tensor (out, ...)
    v : tensor (prod(...),)
        The current right singular vector estimate (unit norm), e.g. torch's ``_v`` buffer
        or ``F.normalize(torch.randn(W.flatten(1).shape[1]), dim=0)`` at the start.
    n_iter : int >= 1
        torch's ``n_power_iterations``.
    eps : float
        torch's ``eps``.

    Returns
    -------
    (W_bar, new_v) : the normalised weight (shape of W) and the detached new *v*.

    See also
    --------
    spectral_norm; Chapter 08.
    """
    mat = _matrix("W", W)
    _check_v(v, mat.shape[1])
    n_iter = _n_iter(n_iter)
    u, v = _power_iteration(mat.detach(), v.detach(), n_iter, eps)
    sigma = u @ (mat @ v)
    return W / sigma, v


#: The layers :func:`apply_spectral_norm` normalises.
_SN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def apply_spectral_norm(net: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    r"""Spectral normalisation of a whole network (Miyato et al. 2018), in place.

    Every ``nn.Linear`` and convolution (``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``) of
    ``net``, visited in the order of ``net.modules()``, gets
    ``torch.nn.utils.parametrizations.spectral_norm``: its weight is used as

    .. math::
        \bar W = W / \sigma(W),

    with :math:`\sigma(W)` estimated by ``n_power_iterations`` power-iteration steps per
    training-mode forward pass (:func:`spectral_normalize` is that step, written out).
    With 1-Lipschitz activations the network is then at most 1-Lipschitz
    (:func:`lipschitz_upper_bound`). Layers whose weight is already parametrized are left
    as they are, so a second call does not normalise twice; other modules (biases, batch norm,
    minibatch discrimination) are untouched.

    Parameters
    ----------
    net : nn.Module
    n_power_iterations : int
        Power-iteration steps per forward pass (torch's default, 1).

    Returns
    -------
    nn.Module
        ``net`` itself.

    See also
    --------
    spectral_normalize, lipschitz_upper_bound; Chapter 08 (spectral normalisation).
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    n_power_iterations = integer("n_power_iterations", n_power_iterations)
    layers = [m for m in net.modules() if isinstance(m, _SN_LAYERS)]
    for m in layers:
        if not nn.utils.parametrize.is_parametrized(m, "weight"):
            nn.utils.parametrizations.spectral_norm(m, n_power_iterations=n_power_iterations)
    return net


# Lipschitz constants of the elementwise activations (max |f'|).
def _activation_lipschitz(m: nn.Module) -> float | None:
    if isinstance(m, (nn.ReLU, nn.Tanh, nn.Identity, nn.Hardtanh)):
        return 1.0
    if isinstance(m, nn.Sigmoid):
        return 0.25
    if isinstance(m, nn.LeakyReLU):
        return max(1.0, abs(m.negative_slope))
    if isinstance(m, nn.ELU):
        return max(1.0, m.alpha)
    if isinstance(m, nn.SELU):
        return 1.0507009873554805 * 1.6732632423543772  # scale * alpha, the slope near 0^-
    return None


def lipschitz_upper_bound(net: nn.Module) -> float:
    r"""Upper bound on the Lipschitz constant (in :math:`\ell_2`) of a feed-forward network.

    For :math:`f = W_L \circ a \circ \dots \circ a \circ W_1` (affine layers :math:`W_l`,
    elementwise activations with Lipschitz constant :math:`L_a`),

    .. math::
        \operatorname{Lip}(f) \le \prod_l \sigma(W_l) \prod_{\text{activations}} L_a ,

    where :math:`\sigma` is the spectral norm (exact, by SVD). ReLU, LeakyReLU(0.2) and tanh
    have :math:`L_a = 1`; ELU :math:`\max(1,\alpha)`; SELU :math:`\lambda\alpha \approx 1.76`.
    A spectrally normalised ``nn.Linear`` counts with its normalised weight. The bound is
    often loose: it ignores how the layers' singular directions line up.

    Parameters
    ----------
    net : nn.Sequential of nn.Linear and activations (or a single nn.Linear)

    Returns
    -------
    float

    See also
    --------
    gradient_norms; Chapter 08.
    """
    if isinstance(net, nn.Linear):
        net = nn.Sequential(net)
    if not isinstance(net, nn.Sequential):
        raise TypeError(f"net must be an nn.Sequential of Linear layers and activations, got {type(net).__name__}")
    bound = 1.0
    with torch.no_grad():
        for i, m in enumerate(net):
            if isinstance(m, nn.Linear):
                # eval mode: a spectral_norm parametrization then reads its weight without
                # taking a power-iteration step (no side effect on its u, v buffers).
                was_training = m.training
                m.eval()
                bound *= float(torch.linalg.matrix_norm(m.weight, ord=2))
                m.train(was_training)
                continue
            la = _activation_lipschitz(m)
            if la is None:
                raise TypeError(f"net[{i}] is a {type(m).__name__}: no Lipschitz constant known for it")
            bound *= la
    return bound


def gradient_norms(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r"""Norms of the critic's input gradient, :math:`\|\nabla_x D(x_i)\|_2`, one per sample.

    Computed as the gradient of :math:`\sum_i D(x_i)` with :func:`torch.func.grad`, which
    equals the per-sample gradients when D treats samples independently (not so with
    minibatch discrimination). The result stays differentiable in the critic's parameters,
    and the function runs under :func:`torch.func.vmap`. A 1-Lipschitz critic has all norms
    :math:`\le 1`.

    Parameters
    ----------
    critic : callable (n, ...) -> (n,) or (n, 1)
    x : tensor (n, ...)

    Returns
    -------
    tensor (n,)

    See also
    --------
    lipschitz_upper_bound; gan_notes.penalties.gradient_penalty; Chapter 08.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch of shape (n, ...), got {tuple(x.shape)}")
    g = grad(lambda y: critic(y).sum())(x)
    return g.flatten(start_dim=1).norm(dim=1)


def clip_weights_(module: nn.Module, c: float) -> nn.Module:
    r"""WGAN weight clipping, **in place**: every parameter :math:`w \leftarrow \operatorname{clip}(w, -c, c)`.

    Arjovsky et al. (2017) clip all of the critic's parameters after each critic step to keep
    it (crudely) Lipschitz. The only in-place function of the package's Part III blocks; it
    returns the module for chaining.

    See also
    --------
    weight_pile_fraction; Chapter 08.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    if not c > 0:
        raise ValueError(f"c must be positive, got {c}")
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)
    return module


def weight_pile_fraction(module: nn.Module, c: float, tol: float = 1e-3) -> float:
    r"""Fraction of a module's parameters within ``tol`` of the clipping bounds :math:`\pm c`.

    .. math::
        \frac{\#\{w : |w| \ge c - \mathrm{tol}\}}{\#\{w\}} .

    After weight clipping most weights end at :math:`\pm c` (Gulrajani et al. 2017, Fig. 1b):
    the critic spends its capacity on the constraint.

    See also
    --------
    clip_weights_; Chapter 08.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    if not c > 0:
        raise ValueError(f"c must be positive, got {c}")
    if not 0 <= tol < c:
        raise ValueError(f"tol must be in [0, c), got {tol}")
    params = [p.detach().flatten() for p in module.parameters()]
    if not params:
        raise ValueError("module has no parameters")
    w = torch.cat(params)
    return float((w.abs() >= c - tol).double().mean())


def critic_w1_estimate(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    r"""The critic's estimate of the Wasserstein-1 distance, :math:`\E D(x) - \E D(G(z))`.

    By Kantorovich-Rubinstein duality :math:`W_1(p, q) = \sup_{\operatorname{Lip}(D) \le 1}
    \E_p D - \E_q D`, so for a 1-Lipschitz critic this is a lower bound on :math:`W_1`; for a
    critic with Lipschitz constant *L*, divide by *L*. Means over the batch axis (0).

    See also
    --------
    lipschitz_upper_bound; Chapter 08.
    """
    for name, t in (("real", real), ("fake", fake)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
    return critic(real).mean() - critic(fake).mean()
