r"""Gradient penalties of the discriminator (chapters 05 and 08), written once.

Each penalty is a mean over the batch of a function of the critic's input-gradient norms
:math:`\|\nabla_x D(x)\|_2`, computed with :func:`gan_notes.lipschitz.gradient_norms`
(:func:`torch.func.grad`): the result stays differentiable in the critic's parameters, and
the same code runs in an ordinary training loop and under :func:`torch.func.vmap` in the
batched multi-seed trainer. The random draws (GP's interpolation weights, DRAGAN's
perturbation) can be passed in, which is what ``vmap`` needs; drawn here otherwise, from
torch's generator. Penalties are returned without their weight; inputs are checked for type
and shape only, so nothing here waits for the device.

A critic with batch-norm layers in training mode updates its running statistics in place,
which :func:`torch.func.grad` refuses; such a critic needs
``torch.func.replace_all_batch_norm_modules_`` first (its training-mode outputs are
unchanged).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gan_notes.lipschitz import gradient_norms

__all__ = ["PENALTIES", "gradient_penalty", "r1_penalty", "dragan_penalty", "penalty"]

#: Penalty names, as the training loops and :class:`gan_notes.objective.Method` take them.
PENALTIES = ("gp", "r1", "dragan")

Critic = Callable[[torch.Tensor], torch.Tensor]


def _batch(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch tensor, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of shape (n, ...), got {tuple(x.shape)}")
    return x


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    r"""WGAN-GP penalty :math:`\E(\|\nabla_{\hat x} D(\hat x)\|_2 - 1)^2` on random interpolates
    :math:`\hat x = \epsilon x + (1-\epsilon)\tilde x`, :math:`\epsilon \sim U[0,1]` per sample
    (Gulrajani et al. 2017). Any batch shape (vectors or images); without the weight λ.

    Parameters
    ----------
    critic : callable (n, ...) -> (n, 1)
    real, fake : tensors of one shape (n, ...)
    eps : tensor (n, 1, ..., 1), optional
        The interpolation weights; drawn with ``torch.rand`` when not given.

    See also
    --------
    r1_penalty, dragan_penalty; Chapter 08 (Lipschitz constraints).
    """
    _batch("real", real)
    _batch("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if eps is None:
        eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return ((gradient_norms(critic, x_hat) - 1) ** 2).mean()


def r1_penalty(critic: Critic, real: torch.Tensor) -> torch.Tensor:
    r"""R1 penalty :math:`\E_{\pdata}\|\nabla_x D(x)\|^2` on real samples (Mescheder et al. 2018),
    without the usual factor :math:`\gamma/2`.

    See also
    --------
    gradient_penalty; Chapter 05 (the Dirac-GAN) and Chapter 08.
    """
    _batch("real", real)
    return (gradient_norms(critic, real.detach()) ** 2).mean()


def dragan_penalty(critic: Critic, real: torch.Tensor, c: float = 0.5, u: torch.Tensor | None = None) -> torch.Tensor:
    r"""DRAGAN penalty :math:`\E(\|\nabla D(x + \delta)\|_2 - 1)^2` at perturbed real points,
    :math:`\delta = c\,\operatorname{std}(x)\,u` with :math:`u \sim U[0,1]` per entry (Kodali et al. 2017).

    Parameters
    ----------
    critic : callable
    real : tensor (n, ...)
    c : float > 0
        Scale of the perturbation, in units of the batch's standard deviation.
    u : tensor like ``real``, optional
        The uniform draws; ``torch.rand_like(real)`` when not given.

    See also
    --------
    gradient_penalty; Chapter 08.
    """
    _batch("real", real)
    if isinstance(c, bool) or not c > 0:
        raise ValueError(f"c must be positive, got {c!r}")
    x = real.detach()
    if u is None:
        u = torch.rand_like(x)
    return ((gradient_norms(critic, x + c * x.std() * u) - 1) ** 2).mean()


def penalty(name: str, critic: Critic, positive: torch.Tensor, negative: torch.Tensor,
            draws: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    r"""The penalty ``name`` of a critic whose positive class is ``positive``.

    ``positive`` is the batch the critic scores high (the real samples for D; the generated
    ones for the second discriminator of a two-discriminator GAN), ``negative`` the other;
    GP interpolates between them, R1 and DRAGAN use ``positive`` only. ``draws`` may hold
    ``"eps"`` (GP) or ``"u"`` (DRAGAN).

    See also
    --------
    gan_notes.objective.discriminator_step_loss; Chapter 08.
    """
    draws = draws or {}
    if name == "gp":
        return gradient_penalty(critic, positive, negative, eps=draws.get("eps"))
    if name == "r1":
        return r1_penalty(critic, positive)
    if name == "dragan":
        return dragan_penalty(critic, positive, u=draws.get("u"))
    raise ValueError(f"unknown penalty {name!r}; valid: {', '.join(PENALTIES)}")
