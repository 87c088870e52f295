"""GAN losses and gradient penalties (chapters 01, 04, 07 and 08).

For the logistic losses, :math:`D(x) = \\sigma(a(x))` for a logit :math:`a`, and the identities
:math:`-\\log D = \\operatorname{softplus}(-a)` and :math:`-\\log(1 - D) = \\operatorname{softplus}(a)`
keep every loss finite for any logit: no ``log(sigmoid(.))`` is ever formed. The LSGAN,
WGAN and hinge losses take the critic's raw output. All losses are means over the batch and
are *minimised* by the player that owns them. The gradient penalties are in
:mod:`gan_notes.penalties`; what one training step computes from these is
:mod:`gan_notes.objective`.

The loss zoo of Chapter 07 adds two-discriminator games, D2GAN (``d2gan_*``) and the
dual-discriminator GAN (``dual_*``), and BEGAN's autoencoder losses (``began_*``). These
check only types and shapes, so that they run under :func:`torch.func.vmap`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "LOSSES",
    "discriminator_loss",
    "generator_loss",
    "LOGISTIC",
    "TWO_DISCRIMINATOR_LOSSES",
    "d2gan_discriminator_loss",
    "d2gan_generator_loss",
    "dual_discriminator_loss",
    "dual_generator_loss",
    "began_reconstruction",
    "began_losses",
    "began_k_update",
    "began_convergence",
]

#: Names accepted by :func:`discriminator_loss` and :func:`generator_loss`.
LOSSES = ("minimax", "non_saturating", "lsgan", "wgan", "hinge")
#: The losses whose D outputs a logit: :math:`D(x) = \sigma(a(x))` is a probability. The others
#: (LSGAN, WGAN, hinge) score with a raw critic value.
LOGISTIC = ("minimax", "non_saturating")
#: The losses with :math:`\mathcal L_D(r, f) = \mathcal L_D(-f, -r)`: for these, a second
#: discriminator whose positive class is the generated samples is D's game with negated
#: logits (:func:`dual_discriminator_loss`). LSGAN's targets are not symmetric.
TWO_DISCRIMINATOR_LOSSES = ("minimax", "non_saturating", "hinge", "wgan")


def _check(loss: str, **logits: torch.Tensor) -> None:
    # Types and names only: a data-dependent check (NaN) would wait for the device and is
    # not allowed under torch.func.vmap; the training loops guard against NaN instead.
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    for name, x in logits.items():
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
        if x.numel() == 0:
            raise ValueError(f"{name} is empty")


def discriminator_loss(loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The discriminator's (critic's) loss, to minimise; means over the batch.

    - ``"minimax"``, ``"non_saturating"``: the negated value function,
      :math:`-\E\log D(x) - \E\log(1 - D(G(z))) = \E\,\mathrm{softplus}(-a_{real}) + \E\,\mathrm{softplus}(a_{fake})`;
    - ``"lsgan"``: :math:`\E(D(x) - 1)^2 + \E D(G(z))^2` on raw outputs (no 1/2 factor);
    - ``"wgan"``: :math:`-\E D(x) + \E D(G(z))`;
    - ``"hinge"``: :math:`\E\,\mathrm{relu}(1 - D(x)) + \E\,\mathrm{relu}(1 + D(G(z)))`.

    Pure: it checks types only (no NaN check, which would wait for the device), so it runs
    under :func:`torch.func.vmap`; NaN logits give a NaN loss, which the loops report.

    Parameters
    ----------
    loss : one of ``LOSSES``
    real_logits, fake_logits : tensor
        Discriminator outputs (logits or raw critic values) on real and generated samples.

    See also
    --------
    generator_loss; Chapter 01 (the game) and Chapter 04 (vanishing gradients).
    """
    _check(loss, real_logits=real_logits, fake_logits=fake_logits)
    if loss in ("minimax", "non_saturating"):
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if loss == "lsgan":
        return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()
    if loss == "wgan":
        return -real_logits.mean() + fake_logits.mean()
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_loss(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The generator's loss, to minimise; a mean over the batch.

    - ``"minimax"`` (saturating): :math:`\E\log(1 - D(G(z))) = -\E\,\mathrm{softplus}(a)`;
      its gradient in the logit is :math:`-D`, which vanishes when D rejects the fakes.
    - ``"non_saturating"``: :math:`-\E\log D(G(z)) = \E\,\mathrm{softplus}(-a)`;
      gradient :math:`-(1 - D)`, strong exactly when D rejects the fakes.
    - ``"lsgan"``: :math:`\E(D(G(z)) - 1)^2`.
    - ``"wgan"`` and ``"hinge"``: :math:`-\E D(G(z))`.

    Pure, as :func:`discriminator_loss`.

    See also
    --------
    discriminator_loss; Chapter 01 and Chapter 04.
    """
    _check(loss, fake_logits=fake_logits)
    if loss == "minimax":
        return -F.softplus(fake_logits).mean()
    if loss == "non_saturating":
        return F.softplus(-fake_logits).mean()
    if loss == "lsgan":
        return ((fake_logits - 1) ** 2).mean()
    return -fake_logits.mean()


# ---------------------------------------------------------------------------------------
# Chapter 07, the loss zoo: two discriminators (D2GAN, the dual-discriminator GAN), BEGAN.
# Pure torch, checks on types and shapes only, so they also run under torch.func.vmap.
# ---------------------------------------------------------------------------------------


def _tensors(**xs: torch.Tensor) -> None:
    for name, x in xs.items():
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
        if x.numel() == 0:
            raise ValueError(f"{name} is empty")


def _log_softplus(a: torch.Tensor) -> torch.Tensor:
    # log(softplus(a)) -> a for a -> -inf, where softplus underflows to 0; the second where
    # keeps the unused branch finite, so its gradient is not NaN.
    low = a < -15.0
    safe = torch.where(low, torch.zeros_like(a), a)
    return torch.where(low, a, torch.log(F.softplus(safe)))


def d2gan_discriminator_loss(
    d1_real: torch.Tensor, d1_fake: torch.Tensor, d2_real: torch.Tensor, d2_fake: torch.Tensor,
    alpha: float = 0.2, beta: float = 0.1,
) -> torch.Tensor:
    r"""D2GAN's discriminator loss (Nguyen et al. 2017), from logits; to minimise.

    Two discriminators with positive outputs :math:`D_k = \operatorname{softplus}(a_k)`:
    :math:`D_1` rewards real data (a KL term), :math:`D_2` generated data (a reverse-KL term).

    .. math::
        \mathcal L_D = -\alpha\,\E_x \log D_1(x) + \E_z D_1(G(z)) + \E_x D_2(x) - \beta\,\E_z \log D_2(G(z)).

    Pointwise optimum: :math:`D_1^* = \alpha\,p_{data}/p_g` and :math:`D_2^* = \beta\,p_g/p_{data}`.

    Parameters
    ----------
    d1_real, d1_fake, d2_real, d2_fake : tensor
        Logits :math:`a_1, a_2` of the two discriminators on a real and a generated batch.
    alpha, beta : float > 0
        Weights of the KL and reverse-KL terms (the paper's defaults 0.2 and 0.1).

    See also
    --------
    d2gan_generator_loss; Chapter 07 (the loss zoo).
    """
    _tensors(d1_real=d1_real, d1_fake=d1_fake, d2_real=d2_real, d2_fake=d2_fake)
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"alpha and beta must be positive, got alpha={alpha}, beta={beta}")
    return (
        -alpha * _log_softplus(d1_real).mean() + F.softplus(d1_fake).mean()
        + F.softplus(d2_real).mean() - beta * _log_softplus(d2_fake).mean()
    )


def d2gan_generator_loss(d1_fake: torch.Tensor, d2_fake: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    r"""D2GAN's generator loss, from logits; to minimise:
    :math:`\mathcal L_G = -\E_z D_1(G(z)) + \beta\,\E_z \log D_2(G(z))`, with
    :math:`D_k = \operatorname{softplus}(a_k)`.

    See also
    --------
    d2gan_discriminator_loss; Chapter 07.
    """
    _tensors(d1_fake=d1_fake, d2_fake=d2_fake)
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return -F.softplus(d1_fake).mean() + beta * _log_softplus(d2_fake).mean()


def dual_discriminator_loss(
    d1_real: torch.Tensor, d1_fake: torch.Tensor, d2_real: torch.Tensor, d2_fake: torch.Tensor,
    loss: str = "non_saturating",
) -> torch.Tensor:
    r"""Loss of the two discriminators of a two-discriminator GAN (after Zhang, Li & Yu 2018).

    :math:`D_1` plays D's game; :math:`D_2` plays it with the roles of real and generated
    samples swapped (its positive class is :math:`G(z)`). The sum of their losses is

    .. math::
        \mathcal L_{D_1} + \mathcal L_{D_2} = \mathcal L_D\big(a_1(x), a_1(G(z))\big)
        + \mathcal L_D\big(a_2(G(z)), a_2(x)\big),

    with :math:`\mathcal L_D` = :func:`discriminator_loss` of ``loss``. For the logistic
    losses, with :math:`D_k = \sigma(a_k)`, this is :math:`-V` for the value function
    :math:`V = \E\log D_1(x) + \E\log(1 - D_1(G(z))) + \E\log D_2(G(z)) + \E\log(1 - D_2(x))`
    (:func:`gan_notes.theory.dual_value_function`).

    Parameters
    ----------
    d1_real, d1_fake, d2_real, d2_fake : tensor
        Logits of the two discriminators on a real and a generated batch.
    loss : one of ``TWO_DISCRIMINATOR_LOSSES``

    See also
    --------
    dual_generator_loss; Chapter 07 (the loss zoo), Chapter 12.
    """
    _check_two(loss)
    return discriminator_loss(loss, d1_real, d1_fake) + discriminator_loss(loss, d2_fake, d2_real)


def dual_generator_loss(d1_fake: torch.Tensor, d2_fake: torch.Tensor, loss: str = "non_saturating") -> torch.Tensor:
    r"""Generator loss of a two-discriminator GAN: :math:`\mathcal L_G(a_1(G(z))) + \mathcal L_G(-a_2(G(z)))`.

    G fools :math:`D_1` (which calls real data positive) and :math:`D_2` (which calls generated
    data positive) at once; negating :math:`a_2` swaps :math:`D_2`'s classes. With
    ``"non_saturating"``, G minimises :math:`\E\,\mathrm{softplus}(-a_1) + \E\,\mathrm{softplus}(a_2)`,
    i.e. maximises :math:`\log D_1(G(z)) + \log(1 - D_2(G(z)))`; with ``"minimax"`` it minimises
    the G terms of *V*, :math:`\E\log(1 - D_1(G(z))) + \E\log D_2(G(z))`.

    See also
    --------
    dual_discriminator_loss; Chapter 07.
    """
    _check_two(loss)
    return generator_loss(loss, d1_fake) + generator_loss(loss, -d2_fake)


def _check_two(loss: str) -> None:
    if loss not in TWO_DISCRIMINATOR_LOSSES:
        raise ValueError(f"a second discriminator needs a loss with L_D(r, f) = L_D(-f, -r) "
                         f"({', '.join(TWO_DISCRIMINATOR_LOSSES)}), got {loss!r}")


def began_reconstruction(v: torch.Tensor, v_rec: torch.Tensor) -> torch.Tensor:
    r"""BEGAN's per-sample reconstruction loss :math:`\mathcal L(v) = \operatorname{mean}_j |v_j - \mathrm{AE}(v)_j|`
    (the :math:`L_1` loss, :math:`\eta = 1`, of Berthelot et al. 2017), one value per sample.

    Parameters
    ----------
    v, v_rec : tensor (B, ...)
        Inputs and their reconstructions by the autoencoder discriminator.

    Returns
    -------
    tensor (B,)

    See also
    --------
    began_losses; gan_notes.models.autoencoder_mlp; Chapter 07.
    """
    _tensors(v=v, v_rec=v_rec)
    if v.shape != v_rec.shape or v.ndim < 2:
        raise ValueError(f"v and v_rec must be batches of the same shape, got {tuple(v.shape)} and {tuple(v_rec.shape)}")
    return (v - v_rec).abs().flatten(start_dim=1).mean(dim=1)


def began_losses(l_real: torch.Tensor, l_fake: torch.Tensor, k: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""BEGAN's losses (Berthelot et al. 2017): :math:`\mathcal L_D = \mathcal L(x) - k_t\,\mathcal L(G(z))`
    and :math:`\mathcal L_G = \mathcal L(G(z))`, with batch means of the reconstruction losses.

    Returns ``(L_D, L_G)``; ``k`` is treated as a constant (detached).

    See also
    --------
    began_reconstruction, began_k_update; Chapter 07.
    """
    _tensors(l_real=l_real, l_fake=l_fake)
    k = k.detach() if isinstance(k, torch.Tensor) else k
    return l_real.mean() - k * l_fake.mean(), l_fake.mean()


def began_k_update(
    k: torch.Tensor, l_real: torch.Tensor, l_fake: torch.Tensor, gamma: float = 0.5, lambda_k: float = 1e-3
) -> torch.Tensor:
    r"""BEGAN's proportional control of :math:`k`:
    :math:`k_{t+1} = \operatorname{clip}\big(k_t + \lambda_k(\gamma\,\mathcal L(x) - \mathcal L(G(z))),\ 0,\ 1\big)`.

    It keeps :math:`\E\mathcal L(G(z)) \approx \gamma\,\E\mathcal L(x)`; :math:`\gamma` is the
    diversity ratio. Tensors in, a detached tensor out (no gradient is needed).

    See also
    --------
    began_losses, began_convergence; Chapter 07.
    """
    _tensors(k=k, l_real=l_real, l_fake=l_fake)
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if not lambda_k > 0:
        raise ValueError(f"lambda_k must be positive, got {lambda_k}")
    step = lambda_k * (gamma * l_real.detach().mean() - l_fake.detach().mean())
    return torch.clamp(k.detach() + step, 0.0, 1.0)


def began_convergence(l_real: torch.Tensor, l_fake: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    r"""BEGAN's convergence measure :math:`\mathcal M = \mathcal L(x) + |\gamma\,\mathcal L(x) - \mathcal L(G(z))|`
    (batch means); it decreases as training converges.

    See also
    --------
    began_k_update; Chapter 07.
    """
    _tensors(l_real=l_real, l_fake=l_fake)
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    lr, lf = l_real.detach().mean(), l_fake.detach().mean()
    return lr + (gamma * lr - lf).abs()
