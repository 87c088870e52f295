r"""What a training method is, and what it computes for one seed (Part III).

A :class:`Method` is a small, frozen spec: which networks (:func:`build_networks`), what the
discriminator sees (instance noise, PacGAN packing), which losses (a loss of
:mod:`gan_notes.losses`, the two-discriminator games, BEGAN), which penalties and which
remedies of :mod:`gan_notes.remedies`. :class:`SeedLosses` turns it into the D and G losses of
**one** seed as pure functions of parameter dicts and of random draws passed in
(:func:`torch.func.functional_call`, no random number drawn inside), so that
:mod:`gan_notes.ensemble` can map them over stacked seeds with :func:`torch.func.vmap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from gan_notes import lipschitz, losses, models, remedies

__all__ = ["GAMES", "PENALTIES", "Method", "build_networks", "SeedLosses"]

#: Games a :class:`Method` can play: the losses of :data:`gan_notes.losses.LOSSES`, and the
#: two-discriminator games and BEGAN of Chapter 07.
GAMES = (*losses.LOSSES, "d2gan", "dual", "dual_ns", "began")
PENALTIES = ("gp", "r1", "dragan")


@dataclass(frozen=True)
class Method:
    r"""One training method, as data: which networks, what D sees, which losses, which hooks.

    Attributes
    ----------
    game : one of ``GAMES``
        A loss of :mod:`gan_notes.losses` (``discriminator_loss``/``generator_loss``), or
        ``"d2gan"`` (two discriminators, Nguyen et al. 2017), ``"dual"``/``"dual_ns"`` (the
        dual-discriminator GAN, eq. 5 / eq. 6 of Zhang, Li & Yu 2018), ``"began"``
        (autoencoder D with the :math:`k_t` control, Berthelot et al. 2017).
    d_steps : int
        D steps per G step.
    penalty, penalty_weight : WGAN-GP ``"gp"``, ``"r1"`` or ``"dragan"`` and its weight (as in
        :func:`~gan_notes.train.train_gan`).
    instance_noise : float
        Std of Gaussian noise added to every input of D.
    noise_anneal : bool
        Anneal that std linearly, :math:`\sigma_t = \sigma_0 (1 - (t-1)/T)` at G step *t* of *T*.
    clip : float, optional
        WGAN weight clipping of every D parameter after each D step.
    spectral_norm : bool
        Spectral normalisation of D's weights (:func:`gan_notes.lipschitz.spectral_normalize`,
        one power iteration per D evaluation round, as torch's module in training mode).
    pack : int
        PacGAN: D judges ``pack`` samples at once (:func:`gan_notes.remedies.pack`); a D batch
        holds ``batch_size`` packs, so G draws ``pack * batch_size`` samples.
    minibatch : (n_kernels, kernel_dim), optional
        Minibatch discrimination (:func:`gan_notes.models.mlp_md`).
    feature_matching : bool
        G minimises :func:`~gan_notes.remedies.feature_matching_loss` instead of its loss.
    mode_seeking : float
        Weight :math:`\lambda_{ms}` of :func:`~gan_notes.remedies.mode_seeking_loss` (0: off).
    mixture, mixture_beta : int, float
        A :class:`~gan_notes.remedies.MixtureGenerator` of ``mixture`` generators and a
        classifier C trained with :func:`~gan_notes.remedies.mixture_classifier_loss`; G adds
        ``mixture_beta`` times that loss (MGAN). 0: one generator.
    unroll : int
        Unrolled GAN: G's loss against D after ``unroll`` look-ahead Adam steps
        (:func:`~gan_notes.remedies.unrolled_generator_loss`, learning rate ``lr_d``).
    d2gan_alpha, d2gan_beta, began_gamma, began_lambda_k : the games' constants.
    lr_g, lr_d, betas : optional overrides of the trainer's optimiser settings.
    """

    game: str = "non_saturating"
    d_steps: int = 1
    penalty: str | None = None
    penalty_weight: float = 10.0
    instance_noise: float = 0.0
    noise_anneal: bool = False
    clip: float | None = None
    spectral_norm: bool = False
    pack: int = 1
    minibatch: tuple[int, int] | None = None
    feature_matching: bool = False
    mode_seeking: float = 0.0
    mixture: int = 0
    mixture_beta: float = 0.125
    unroll: int = 0
    d2gan_alpha: float = 0.2
    d2gan_beta: float = 0.1
    began_gamma: float = 0.5
    began_lambda_k: float = 1e-3
    lr_g: float | None = None
    lr_d: float | None = None
    betas: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.game not in GAMES:
            raise ValueError(f"unknown game {self.game!r}; valid: {', '.join(GAMES)}")
        if self.penalty is not None and self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; valid: {', '.join(PENALTIES)}")
        for name in ("d_steps", "pack"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("mixture", "unroll"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        for name in ("instance_noise", "mode_seeking", "penalty_weight", "mixture_beta"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be positive, got {self.clip}")
        two_d = self.game in ("d2gan", "dual", "dual_ns", "began")
        if two_d and (self.penalty or self.pack > 1 or self.minibatch or self.feature_matching or self.unroll):
            raise ValueError(f"game {self.game!r} does not combine with penalties, packing, minibatch "
                             "discrimination, feature matching or unrolling here")
        if self.feature_matching and self.instance_noise:
            raise ValueError("feature_matching does not combine with instance_noise here")
        if self.unroll and (self.pack > 1 or self.minibatch or self.spectral_norm or self.feature_matching):
            raise ValueError("unroll combines here only with a plain D and the usual G loss")

    @property
    def d_names(self) -> tuple[str, ...]:
        """The networks on D's side (one optimiser)."""
        if self.game in ("d2gan", "dual", "dual_ns"):
            return ("D1", "D2")
        return ("D", "C") if self.mixture else ("D",)


def build_networks(method: Method, latent_dim: int, dim: int, hidden: Sequence[int]) -> dict[str, nn.Module]:
    r"""The networks of one seed, built from torch's global generator in a fixed order: G first,
    then D's side (as the book's chapters build them before :func:`~gan_notes.train.train_gan`).

    G is :func:`~gan_notes.models.mlp` (``latent_dim -> hidden -> dim``) or a mixture of them;
    D is ``mlp(pack * dim, 1, hidden)``, :func:`~gan_notes.models.mlp_md` for minibatch
    discrimination, :func:`~gan_notes.models.autoencoder_mlp` (width ``hidden[0]``) for BEGAN;
    C (mixture) is ``mlp(dim, mixture, hidden)``.

    See also
    --------
    train_ensemble; Chapter 09.
    """
    hidden = tuple(hidden)
    if method.mixture:
        nets: dict[str, nn.Module] = {"G": remedies.MixtureGenerator([models.mlp(latent_dim, dim, hidden) for _ in range(method.mixture)])}
    else:
        nets = {"G": models.mlp(latent_dim, dim, hidden)}
    d_in = method.pack * dim
    for name in method.d_names:
        if name == "C":
            nets[name] = models.mlp(dim, method.mixture, hidden)
        elif method.game == "began":
            nets[name] = models.autoencoder_mlp(d_in, hidden=hidden[0])
        elif method.minibatch:
            nets[name] = models.mlp_md(d_in, hidden, *method.minibatch)
        else:
            nets[name] = models.mlp(d_in, 1, hidden)
    return nets


class SeedLosses:
    r"""The D and G losses of one seed for a :class:`Method`, written for :func:`torch.func.vmap`.

    ``p`` maps a network name to its parameter dict (one seed's slice inside vmap); ``r``
    holds the seed's random draws for the step (``real``, ``z``, ``fake``, noise, penalty
    draws). :meth:`d_loss` returns ``(loss, aux)`` with ``aux`` BEGAN's
    :math:`(\mathcal L(x), \mathcal L(G(z)))` (zeros otherwise); :meth:`g_loss` the loss.

    Parameters
    ----------
    method : Method
    base : dict name -> nn.Module
        One seed's networks, used for their structure (:func:`torch.func.functional_call`).
    lr_d : float
        D's learning rate (the unrolled look-ahead steps use it).

    See also
    --------
    gan_notes.ensemble.train_ensemble; Chapter 09.
    """

    def __init__(self, method: Method, base: dict[str, nn.Module], lr_d: float) -> None:
        self.m, self.base, self.lr_d = method, base, lr_d

    # -- functional networks ------------------------------------------------------------
    def call(self, name, params, x):
        """Network ``name`` of one seed (inside vmap) with parameters ``params[name]``."""
        return functional_call(self.base[name], params[name], (x,))

    # -- the losses of one seed ---------------------------------------------------------
    def d_input(self, x, noise):
        """What D sees of a batch: with instance noise added, packed for PacGAN."""
        m = self.m
        if m.instance_noise:
            x = x + m.instance_noise * noise
        return remedies.pack(x, m.pack) if m.pack > 1 else x

    def d_loss(self, p, r):
        """D's loss (with its penalty and, for MGAN, the classifier's loss) and BEGAN's aux."""
        m = self.m
        real, fake = r["real"], r["fake"]
        if m.game == "began":
            l_real = losses.began_reconstruction(real, self.call("D", p, real))
            l_fake = losses.began_reconstruction(fake, self.call("D", p, fake))
            loss_d, _ = losses.began_losses(l_real, l_fake, r["k"])
            return loss_d, torch.stack([l_real.mean(), l_fake.mean()])
        x_real, x_fake = self.d_input(real, r.get("noise_real")), self.d_input(fake, r.get("noise_fake"))
        if m.game in ("d2gan", "dual", "dual_ns"):
            a = [self.call(n, p, x) for n in ("D1", "D2") for x in (x_real, x_fake)]
            if m.game == "d2gan":
                loss = losses.d2gan_discriminator_loss(*a, alpha=m.d2gan_alpha, beta=m.d2gan_beta)
            else:
                loss = losses.dual_discriminator_loss(*a)
            return loss, loss.new_zeros(2)
        loss = losses._discriminator_loss(m.game, self.call("D", p, x_real), self.call("D", p, x_fake))
        if m.penalty is not None:
            # The penalties of gan_notes.losses, with their random draws passed in; the input
            # gradients come from torch.func (lipschitz.gradient_norms), which runs under vmap.
            critic = lambda x: self.call("D", p, x)  # noqa: E731
            pr, pf = (remedies.pack(t, m.pack) if m.pack > 1 else t for t in (real, fake))
            if m.penalty == "gp":
                x_hat = r["eps"] * pr + (1 - r["eps"]) * pf
                pen = ((lipschitz.gradient_norms(critic, x_hat) - 1) ** 2).mean()
            elif m.penalty == "r1":
                pen = (lipschitz.gradient_norms(critic, pr) ** 2).mean()
            else:
                pen = ((lipschitz.gradient_norms(critic, pr + 0.5 * pr.std() * r["u"]) - 1) ** 2).mean()
            loss = loss + m.penalty_weight * pen
        if m.mixture:
            loss = loss + remedies.mixture_classifier_loss(self.call("C", p, fake))
        return loss, loss.new_zeros(2)

    def g_loss(self, p, r):
        """G's loss, with the remedies' terms added."""
        m = self.m
        fake = self.call("G", p, r["z"])
        if m.game == "began":
            loss = losses.began_reconstruction(fake, self.call("D", p, fake)).mean()
        elif m.game in ("d2gan", "dual", "dual_ns"):
            x = self.d_input(fake, r.get("noise_fake"))
            a1, a2 = self.call("D1", p, x), self.call("D2", p, x)
            if m.game == "d2gan":
                loss = losses.d2gan_generator_loss(a1, a2, beta=m.d2gan_beta)
            else:
                loss = losses.dual_generator_loss(a1, a2, non_saturating=m.game == "dual_ns")
        elif m.feature_matching:
            # D's features of a real batch are constants for G (see feature_matching_loss).
            f_real = remedies.features(self.base["D"], self.d_input(r["real"], None), p["D"]).detach()
            loss = remedies.feature_matching_loss(f_real, remedies.features(self.base["D"], self.d_input(fake, None), p["D"]))
        elif m.unroll:
            loss = remedies.unrolled_generator_loss(self.base["D"], p["D"], fake, r["real"], m.game, k=m.unroll,
                                                    lr=self.lr_d, optimizer="adam")
        else:
            loss = losses._generator_loss(m.game, self.call("D", p, self.d_input(fake, r.get("noise_fake"))))
        if m.mode_seeking:
            loss = loss + m.mode_seeking * remedies.mode_seeking_loss(fake, self.call("G", p, r["z2"]), r["z"], r["z2"])
        if m.mixture:
            loss = loss + m.mixture_beta * remedies.mixture_classifier_loss(self.call("C", p, fake))
        return loss
