r"""Unrolled GANs (Metz et al. 2017): the generator plays against a look-ahead discriminator.

The discriminator's next *k* optimisation steps are written as a differentiable function of
the generator's samples with :func:`torch.func.grad`, so the generator's gradient sees how D
would react. Pure functions of parameter dicts (:func:`torch.func.functional_call`): they run
under :func:`torch.func.vmap` over a leading seed axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.func import grad

from gan_notes.losses import LOSSES, discriminator_loss, generator_loss
from gan_notes.models import call

__all__ = ["unroll", "unrolled_generator_loss", "adam_state"]

Params = dict[str, torch.Tensor]


def unroll(
    loss_fn: Callable[[Params], torch.Tensor],
    params: Mapping[str, torch.Tensor],
    k: int,
    lr: float,
    optimizer: str = "sgd",
    betas: tuple[float, float] = (0.5, 0.999),
    eps: float = 1e-8,
    state: Mapping | None = None,
) -> Params:
    r"""Take *k* differentiable optimisation steps on ``loss_fn`` (Metz et al. 2017).

    With SGD (the default),

    .. math::
        \theta^{0} = \theta, \qquad \theta^{j+1} = \theta^{j} - \eta\, \nabla_\theta f(\theta^{j}),

    where the gradients come from :func:`torch.func.grad`; they stay in the autograd graph, so
    :math:`\theta^k` is a differentiable function of whatever ``loss_fn`` closes over (the
    generator's samples): that is the look-ahead term of the unrolled generator.

    ``optimizer="adam"`` takes *k* Adam steps continuing from the discriminator's live
    optimiser ``state`` (its moments and step count, :func:`adam_state`), as Metz et al. unroll
    D's Adam; without ``state`` it starts from zero moments. Its denominator is
    :math:`\sqrt{\hat v + \epsilon^2}` instead of :math:`\sqrt{\hat v} + \epsilon`, so its
    derivative stays finite where a gradient entry is 0.

    Parameters
    ----------
    loss_fn : callable params -> scalar tensor
    params : dict name -> tensor
        Start point, e.g. ``{n: p.detach() for n, p in D.named_parameters()}``.
    k : int >= 0
        Number of steps; ``k = 0`` returns ``params``.
    lr : float > 0
    optimizer : {"sgd", "adam"}
    betas, eps : Adam's constants.
    state : dict, optional
        ``{"exp_avg": {name: m}, "exp_avg_sq": {name: v}, "step": t}``: Adam's moments after
        ``t`` steps (per-seed slices under ``vmap``). Read, never changed.

    Returns
    -------
    dict name -> tensor, the parameters after *k* steps.

    See also
    --------
    unrolled_generator_loss; Chapter 09.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: sgd, adam")
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict name -> tensor, got {type(params).__name__}")
    theta = dict(params)
    if state is not None and optimizer == "adam":
        m = {n: state["exp_avg"][n].detach() for n in theta}
        v = {n: state["exp_avg_sq"][n].detach() for n in theta}
        t0 = int(state["step"])
    else:
        m = {n: torch.zeros_like(p) for n, p in theta.items()}
        v = {n: torch.zeros_like(p) for n, p in theta.items()}
        t0 = 0
    b1, b2 = betas
    for t in range(t0 + 1, t0 + k + 1):
        g = grad(loss_fn)(theta)
        if optimizer == "sgd":
            theta = {n: p - lr * g[n] for n, p in theta.items()}
            continue
        m = {n: b1 * m[n] + (1 - b1) * g[n] for n in theta}
        v = {n: b2 * v[n] + (1 - b2) * g[n] ** 2 for n in theta}
        theta = {
            n: p - lr * (m[n] / (1 - b1**t)) / torch.sqrt(v[n] / (1 - b2**t) + eps**2) for n, p in theta.items()
        }
    return theta


def unrolled_generator_loss(
    D: nn.Module,
    d_params: Mapping[str, torch.Tensor],
    fake: torch.Tensor,
    real: torch.Tensor,
    loss: str = "non_saturating",
    k: int = 5,
    lr: float = 1e-3,
    optimizer: str = "sgd",
    state: Mapping | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
) -> torch.Tensor:
    r"""The unrolled generator loss of Metz et al. (2017).

    .. math::
        \mathcal L_G^{(k)}(\phi) = \mathcal L_G\big(D_{\theta^k(\phi)}(G_\phi(z))\big), \qquad
        \theta^{j+1} = \theta^j - \eta \nabla_\theta \mathcal L_D(\theta^j; x, G_\phi(z)),

    i.e. the generator's loss against the discriminator *after* it has answered with *k*
    steps (:func:`unroll`) on the same real batch and the same generated batch. Its gradient
    in :math:`\phi` includes how D would react; ``k = 0`` is the usual generator loss.

    Parameters
    ----------
    D : nn.Module
        Evaluated with :func:`gan_notes.models.call` (``torch.func.functional_call``'s numbers).
    d_params : dict name -> tensor
        D's current parameters (detached here: the loss trains G only; D keeps its own step).
    fake : tensor (B, d)
        ``G(z)``, in G's autograd graph.
    real : tensor (B, d)
    loss : one of ``gan_notes.losses.LOSSES``
        Used for both the unrolled D steps and the generator's loss.
    k, lr, optimizer, state, betas : see :func:`unroll`; pass D's live Adam ``state``
        (:func:`adam_state`) to continue its moments, as Metz et al.

    See also
    --------
    unroll; gan_notes.losses.discriminator_loss; Chapter 09.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    if not isinstance(D, nn.Module):
        raise TypeError(f"D must be an nn.Module, got {type(D).__name__}")
    for name, t in (("fake", fake), ("real", real)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch tensor, got {type(t).__name__}")
    if not isinstance(d_params, Mapping):
        raise TypeError(f"d_params must be a dict name -> tensor, got {type(d_params).__name__}")
    theta0 = {n: p.detach() for n, p in d_params.items()}
    # `fake` stays in G's graph inside the D steps: the look-ahead term is d theta^k / d fake.
    def d_loss(theta: Params) -> torch.Tensor:
        return discriminator_loss(loss, call(D, theta, real), call(D, theta, fake))

    theta_k = unroll(d_loss, theta0, k, lr, optimizer, betas=betas, state=state)
    return generator_loss(loss, call(D, theta_k, fake))


def adam_state(optimizer: torch.optim.Optimizer, params: Mapping[str, torch.Tensor]) -> dict:
    r"""The live state of a ``torch.optim.Adam`` for named parameters, as :func:`unroll` takes it.

    Returns ``{"exp_avg": {name: m}, "exp_avg_sq": {name: v}, "step": t}`` (detached views,
    zeros and ``t = 0`` before the first step), plus the optimiser's ``"lr"``, ``"betas"`` and
    ``"eps"`` (of its first parameter group).

    See also
    --------
    unroll; Chapter 09.
    """
    if not isinstance(optimizer, torch.optim.Adam):
        raise TypeError(f"optimizer must be a torch.optim.Adam, got {type(optimizer).__name__}")
    group = optimizer.param_groups[0]
    out: dict = {"exp_avg": {}, "exp_avg_sq": {}, "step": 0, "lr": group["lr"], "betas": tuple(group["betas"]), "eps": group["eps"]}
    for n, p in params.items():
        st = optimizer.state.get(p, {})
        out["exp_avg"][n] = st["exp_avg"].detach() if "exp_avg" in st else torch.zeros_like(p.detach())
        out["exp_avg_sq"][n] = st["exp_avg_sq"].detach() if "exp_avg_sq" in st else torch.zeros_like(p.detach())
        if "step" in st:
            out["step"] = int(st["step"])
    return out
