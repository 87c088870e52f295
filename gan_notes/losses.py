"""GAN losses from discriminator logits (chapters 01 and 04).

With :math:`D(x) = \\sigma(a(x))` for a logit :math:`a`, the identities
:math:`-\\log D = \\operatorname{softplus}(-a)` and :math:`-\\log(1 - D) = \\operatorname{softplus}(a)`
keep every loss finite for any logit: no ``log(sigmoid(.))`` is ever formed.
All losses are means over the batch and are *minimised* by the player that owns them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "discriminator_loss", "generator_loss"]

#: Names accepted by :func:`discriminator_loss` and :func:`generator_loss`.
LOSSES = ("minimax", "non_saturating")


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
    r"""The discriminator's loss (to minimise).

    For ``"minimax"`` and ``"non_saturating"`` alike it is the negated value function,
    :math:`-\E\log D(x) - \E\log(1 - D(G(z))) = \E\,\mathrm{softplus}(-a_{real}) + \E\,\mathrm{softplus}(a_{fake})`.

    Parameters
    ----------
    kind : {"minimax", "non_saturating"}
    real_logits, fake_logits : tensor
        Discriminator logits on real and generated samples (any shapes).

    See also
    --------
    generator_loss; Chapter 01 (the game) and Chapter 04 (vanishing gradients).
    """
    _check(kind, real_logits=real_logits, fake_logits=fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The generator's loss (to minimise).

    - ``"minimax"`` (saturating): :math:`\E\log(1 - D(G(z))) = -\E\,\mathrm{softplus}(a)`;
      its gradient in the logit is :math:`-D`, which vanishes when D rejects the fakes.
    - ``"non_saturating"``: :math:`-\E\log D(G(z)) = \E\,\mathrm{softplus}(-a)`;
      gradient :math:`-(1 - D)`, strong exactly when D rejects the fakes.

    See also
    --------
    discriminator_loss; Chapter 01 and Chapter 04.
    """
    _check(kind, fake_logits=fake_logits)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()
