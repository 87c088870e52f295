"""GAN losses and gradient penalties (chapters 01, 04 and 07).

For the logistic losses, :math:`D(x) = \\sigma(a(x))` for a logit :math:`a`, and the identities
:math:`-\\log D = \\operatorname{softplus}(-a)` and :math:`-\\log(1 - D) = \\operatorname{softplus}(a)`
keep every loss finite for any logit: no ``log(sigmoid(.))`` is ever formed. The LSGAN,
WGAN and hinge losses take the critic's raw output. All losses are means over the batch and
are *minimised* by the player that owns them. Penalties are returned without their weight.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "discriminator_loss", "generator_loss", "gradient_penalty", "r1_penalty", "dragan_penalty"]

#: Names accepted by :func:`discriminator_loss` and :func:`generator_loss`.
LOSSES = ("minimax", "non_saturating", "lsgan", "wgan", "hinge")


def _check(kind: str, **logits: torch.Tensor) -> None:
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; valid: {', '.join(LOSSES)}")
    for name, x in logits.items():
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
        if x.numel() == 0:
            raise ValueError(f"{name} is empty")
        if bool(torch.isnan(x.detach()).any()):
            raise ValueError(f"{name} contains NaN")


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The discriminator's (critic's) loss, to minimise; means over the batch.

    - ``"minimax"``, ``"non_saturating"``: the negated value function,
      :math:`-\E\log D(x) - \E\log(1 - D(G(z))) = \E\,\mathrm{softplus}(-a_{real}) + \E\,\mathrm{softplus}(a_{fake})`;
    - ``"lsgan"``: :math:`\E(D(x) - 1)^2 + \E D(G(z))^2` on raw outputs (no 1/2 factor);
    - ``"wgan"``: :math:`-\E D(x) + \E D(G(z))`;
    - ``"hinge"``: :math:`\E\,\mathrm{relu}(1 - D(x)) + \E\,\mathrm{relu}(1 + D(G(z)))`.

    Parameters
    ----------
    kind : one of ``LOSSES``
    real_logits, fake_logits : tensor
        Discriminator outputs (logits or raw critic values) on real and generated samples.

    See also
    --------
    generator_loss; Chapter 01 (the game) and Chapter 04 (vanishing gradients).
    """
    _check(kind, real_logits=real_logits, fake_logits=fake_logits)
    if kind in ("minimax", "non_saturating"):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "lsgan":
        return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()
    if kind == "wgan":
        return -real_logits.mean() + fake_logits.mean()
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The generator's loss, to minimise; a mean over the batch.

    - ``"minimax"`` (saturating): :math:`\E\log(1 - D(G(z))) = -\E\,\mathrm{softplus}(a)`;
      its gradient in the logit is :math:`-D`, which vanishes when D rejects the fakes.
    - ``"non_saturating"``: :math:`-\E\log D(G(z)) = \E\,\mathrm{softplus}(-a)`;
      gradient :math:`-(1 - D)`, strong exactly when D rejects the fakes.
    - ``"lsgan"``: :math:`\E(D(G(z)) - 1)^2`.
    - ``"wgan"`` and ``"hinge"``: :math:`-\E D(G(z))`.

    See also
    --------
    discriminator_loss; Chapter 01 and Chapter 04.
    """
    _check(kind, fake_logits=fake_logits)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()
    if kind == "lsgan":
        return ((fake_logits - 1) ** 2).mean()
    return -fake_logits.mean()


def _check_batch(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of shape (n, ...), got {tuple(x.shape)}")
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")


def _input_grad_norm(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Per-sample norm of the critic's gradient with respect to its input, kept in the graph."""
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return g.flatten(start_dim=1).norm(dim=1)


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    r"""WGAN-GP penalty :math:`\E(\|\nabla_{\hat x} D(\hat x)\|_2 - 1)^2` on random interpolates
    :math:`\hat x = \epsilon x + (1-\epsilon)\tilde x`, :math:`\epsilon \sim U[0,1]` per sample
    (Gulrajani et al. 2017). Any batch shape (vectors or images); without the weight λ.

    See also
    --------
    r1_penalty, dragan_penalty; Chapter 08 (Lipschitz constraints).
    """
    _check_batch("real", real)
    _check_batch("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return ((_input_grad_norm(critic, x_hat) - 1) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    r"""R1 penalty :math:`\E_{\pdata}\|\nabla_x D(x)\|^2` on real samples (Mescheder et al. 2018),
    without the usual factor :math:`\gamma/2`.

    See also
    --------
    gradient_penalty; Chapter 05 (the Dirac-GAN) and Chapter 08.
    """
    _check_batch("real", real)
    return (_input_grad_norm(critic, real) ** 2).mean()


def dragan_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    r"""DRAGAN penalty :math:`\E(\|\nabla D(x + \delta)\|_2 - 1)^2` at perturbed real points,
    :math:`\delta = c\,\operatorname{std}(x)\,u` with :math:`u \sim U[0,1]` per entry (Kodali et al. 2017).

    See also
    --------
    gradient_penalty; Chapter 08.
    """
    _check_batch("real", real)
    if not c > 0:
        raise ValueError(f"c must be positive, got {c}")
    x = real.detach()
    perturbed = x + c * x.std() * torch.rand_like(x)
    return ((_input_grad_norm(critic, perturbed) - 1) ** 2).mean()
