r"""One training step's losses, for every training loop of the book (Parts II-IV).

A :class:`Method` is a training method as data: which loss, which penalty, what D sees
(instance noise, PacGAN packing), which remedy terms. :func:`discriminator_step_loss` and
:func:`generator_step_loss` compute one step's D and G losses of a method from the players,
:class:`Nets`, and the step's random draws. They are the only place where a loss, a penalty
or a remedy is wired into a step: the toy loop (:func:`gan_notes.train.train_gan`), the image
loop (:func:`gan_notes.image_training.train_image_gan`), the batched multi-seed trainer
(:func:`gan_notes.ensemble.train_ensemble`) and the lab (:class:`gan_notes.lab.Lab`) call them,
and add only what is about loops (optimisers, batching, checkpoints, the NaN guard).

The functions are pure: no random number is drawn and nothing waits for the device, so the
batched trainer maps them over seeds with :func:`torch.func.vmap`. The formulas themselves
live in :mod:`gan_notes.losses`, :mod:`gan_notes.penalties`, :mod:`gan_notes.remedies` and
:mod:`gan_notes.unrolled`; adding a remedy is a field here plus its term.

The random draws ``r`` of a D step: ``real`` (a batch of ``pack * B`` samples), ``fake``
(generated, detached), optionally ``noise_real``/``noise_fake`` (standard normal, for instance
noise), ``eps`` (GP's interpolation weights, ``(B, 1)``) or ``u`` (DRAGAN's uniforms), ``k``
(BEGAN's :math:`k_t`). Of a G step: ``z``, optionally ``noise_fake``, ``z2`` (mode seeking),
``real`` (feature matching, unrolling); unrolling also takes D's live Adam state
(:func:`gan_notes.unrolled.adam_state`) as the ``adam`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch
from torch import nn

from gan_notes import losses, models, remedies, validate
from gan_notes.models import ACTIVATIONS
from gan_notes.penalties import PENALTIES, penalty
from gan_notes.unrolled import unroll

__all__ = ["METHOD_LOSSES", "OPTIMIZERS", "Method", "Nets", "d_input", "discriminator_step_loss", "generator_step_loss"]

#: Losses a :class:`Method` can train with: those of :data:`gan_notes.losses.LOSSES`, and the
#: two games of Chapter 07 that need networks of their own, D2GAN and BEGAN.
METHOD_LOSSES = (*losses.LOSSES, "d2gan", "began")
#: The optimisers a :class:`Method` can name.
OPTIMIZERS = ("adam", "rmsprop")


@dataclass(frozen=True)
class Method:
    r"""One training method, as data: which losses, what D sees, which penalty and remedies.

    Attributes
    ----------
    loss : one of ``METHOD_LOSSES``
        A loss of :mod:`gan_notes.losses` (``discriminator_loss``/``generator_loss``), or
        ``"d2gan"`` (two positive-output discriminators, Nguyen et al. 2017) or ``"began"``
        (autoencoder D with the :math:`k_t` control, Berthelot et al. 2017).
    two_discriminators : bool
        A second discriminator ``"D2"`` whose positive class is the generated samples
        (:func:`~gan_notes.losses.dual_discriminator_loss`); ``loss`` must be one of
        :data:`~gan_notes.losses.TWO_DISCRIMINATOR_LOSSES`.
    d2_generator_loss : str, optional
        G's loss for D2's term, :math:`\mathcal L_G(-a_2)`, when it differs from ``loss`` (both
        must share D's loss): Zhang, Li & Yu's eq. (5) is ``loss="non_saturating"`` with
        ``d2_generator_loss="minimax"`` (only D1's term made non-saturating); eq. (6) is
        ``loss="minimax"``.
    d2_activation : str
        D2's hidden activation (:func:`gan_notes.models.mlp`; ``"selu"`` in Zhang, Li & Yu).
    d_steps : int
        D steps per G step (``n_critic``).
    penalty, penalty_weight : one of :data:`~gan_notes.penalties.PENALTIES` and its weight
        (no factor 1/2: R1 with weight w is :math:`\gamma/2` of Mescheder et al. with
        :math:`\gamma = 2w`). Each discriminator is penalised at its own positive batch.
    instance_noise : float
        Std of Gaussian noise added to every input of D, real and generated.
    noise_anneal : bool
        Anneal that std linearly, :math:`\sigma_t = \sigma_0 (1 - (t-1)/T)` at G step *t* of *T*.
    clip : float, optional
        WGAN weight clipping of every D parameter after each D step.
    spectral_norm : bool
        Spectral normalisation of D's weights (a property of the network; the loops apply it).
    pack : int
        PacGAN: D judges ``pack`` samples at once (:func:`gan_notes.remedies.pack`); a D batch
        holds ``batch_size`` packs, so G draws ``pack * batch_size`` samples.
    minibatch : (n_kernels, kernel_dim), optional
        Minibatch discrimination (a property of D's network, :func:`gan_notes.models.mlp_md`).
    feature_matching : bool
        G minimises :func:`~gan_notes.remedies.feature_matching_loss` instead of its loss.
    mode_seeking : float
        Weight :math:`\lambda_{ms}` of :func:`~gan_notes.remedies.mode_seeking_loss` (0: off).
    mixture, mixture_beta : int, float
        A :class:`~gan_notes.remedies.MixtureGenerator` of ``mixture`` generators and a
        classifier ``"C"`` trained with :func:`~gan_notes.remedies.mixture_classifier_loss`; G
        adds ``mixture_beta`` times that loss (MGAN). 0: one generator.
    unroll : int
        Unrolled GAN: G's loss against D after ``unroll`` look-ahead Adam steps that continue
        D's live optimiser state (:func:`gan_notes.unrolled.unroll`, Metz et al. 2017).
    d2gan_alpha, d2gan_beta, began_gamma, began_lambda_k : the games' constants.
    lr_g, lr_d, betas : optional overrides of the trainer's optimiser settings.
    optimizer : {"adam", "rmsprop"}
        Both players' optimiser in the batched trainer (:func:`gan_notes.ensemble.train_ensemble`;
        WGAN's paper uses RMSProp); ``betas`` apply to Adam only.
    """

    loss: str = "non_saturating"
    two_discriminators: bool = False
    d2_generator_loss: str | None = None
    d2_activation: str = "relu"
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
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        if self.loss not in METHOD_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(METHOD_LOSSES)}")
        if self.penalty is not None and self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; valid: {', '.join(PENALTIES)}")
        for name in ("two_discriminators", "noise_anneal", "spectral_norm", "feature_matching"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name, low in (("d_steps", 1), ("pack", 1), ("mixture", 0), ("unroll", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        for name in ("instance_noise", "mode_seeking", "penalty_weight", "mixture_beta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v!r}")
        if self.clip is not None:
            validate.number("clip", self.clip, 0.0, strict=True)
        if self.minibatch is not None:
            if not isinstance(self.minibatch, tuple) or len(self.minibatch) != 2:
                raise ValueError(f"minibatch must be a pair (n_kernels, kernel_dim), got {self.minibatch!r}")
            for v in self.minibatch:
                validate.integer("minibatch", v, 1)
        for name in ("d2gan_alpha", "d2gan_beta", "began_lambda_k"):
            validate.number(name, getattr(self, name), 0.0, strict=True)
        gamma = validate.number("began_gamma", self.began_gamma, 0.0, strict=True)
        if gamma > 1:
            raise ValueError(f"began_gamma must be in (0, 1], got {self.began_gamma!r}")
        for name in ("lr_g", "lr_d"):
            if getattr(self, name) is not None:
                validate.number(name, getattr(self, name), 0.0, strict=True)
        if self.betas is not None:
            if not isinstance(self.betas, tuple) or len(self.betas) != 2 or not all(
                    0 <= validate.number("betas", b) < 1 for b in self.betas):
                raise ValueError(f"betas must be a pair in [0, 1), got {self.betas!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.unroll and self.optimizer != "adam":
            raise ValueError("unroll continues D's Adam state: it needs optimizer='adam'")
        if self.two_discriminators and self.loss not in losses.TWO_DISCRIMINATOR_LOSSES:
            raise ValueError(f"two_discriminators needs a loss with L_D(r, f) = L_D(-f, -r) "
                             f"({', '.join(losses.TWO_DISCRIMINATOR_LOSSES)}), got {self.loss!r}")
        own_nets = self.loss in ("d2gan", "began")
        if own_nets and (self.penalty or self.pack > 1 or self.minibatch or self.feature_matching or self.unroll):
            raise ValueError(f"loss {self.loss!r} does not combine with penalties, packing, minibatch "
                             "discrimination, feature matching or unrolling here")
        if self.two_discriminators and (self.pack > 1 or self.feature_matching or self.unroll or self.mixture):
            raise ValueError("two_discriminators does not combine with packing, feature matching, unrolling "
                             "or a mixture here")
        if self.d2_generator_loss is not None and not (
                self.two_discriminators and self.loss in losses.LOGISTIC and self.d2_generator_loss in losses.LOGISTIC):
            raise ValueError(f"d2_generator_loss needs two_discriminators and, like loss, one of "
                             f"{', '.join(losses.LOGISTIC)} (they share D's loss), got {self.d2_generator_loss!r}")
        if self.d2_activation not in ACTIVATIONS:
            raise ValueError(f"unknown d2_activation {self.d2_activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if self.d2_activation != "relu" and not self.two_discriminators:
            raise ValueError("d2_activation needs two_discriminators")
        if self.feature_matching and self.instance_noise:
            raise ValueError("feature_matching does not combine with instance_noise here")
        if self.unroll and (self.pack > 1 or self.minibatch or self.spectral_norm or self.feature_matching):
            raise ValueError("unroll combines here only with a plain D and the usual G loss")

    @property
    def d_names(self) -> tuple[str, ...]:
        """The networks on D's side (trained by D's optimiser)."""
        if self.loss == "d2gan" or self.two_discriminators:
            return ("D", "D2")
        return ("D", "C") if self.mixture else ("D",)

    def with_options(self, **changes) -> "Method":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


class Nets:
    r"""The players of one run, as the objective calls them.

    ``nets(name, x)`` evaluates network ``name`` (``"G"``, ``"D"``, ``"D2"``, ``"C"``). Two
    ways: modules called as they are (the toy loop, the lab), or, with ``params``, each module
    evaluated with :func:`torch.func.functional_call` on the parameters given (the batched
    trainer, inside ``vmap``). ``forward`` may replace a module's call for the game's terms
    (the image loop's compiled, autocast forward); penalties and look-ahead always use the
    module itself in float32.

    Parameters
    ----------
    modules : dict name -> nn.Module
    params : dict name -> dict of tensors, optional
        Parameters (and buffers) per network, for ``functional_call``.
    forward : dict name -> callable, optional
    """

    def __init__(self, modules: Mapping[str, nn.Module], params: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
                 forward: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None) -> None:
        self.modules, self.params, self.forward = dict(modules), params, dict(forward or {})

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name in self.forward:
            return self.forward[name](x)
        return self.module_call(name, x)

    def module_call(self, name: str, x: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Network ``name`` itself (not ``forward``), optionally with other parameters."""
        if params is None and self.params is None:
            return self.modules[name](x)
        return models.call(self.modules[name], params if params is not None else self.params[name], x)

    def parameters(self, name: str) -> dict[str, torch.Tensor]:
        """The current parameters of network ``name``, by name."""
        if self.params is not None:
            return dict(self.params[name])
        return dict(self.modules[name].named_parameters())


def d_input(method: Method, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """What D sees of a batch: instance noise added (``noise`` is standard normal), packed."""
    if method.instance_noise and noise is not None:
        x = x + method.instance_noise * noise
    return remedies.pack(x, method.pack) if method.pack > 1 else x


def discriminator_step_loss(method: Method, nets: Nets, r: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""The loss D's optimiser minimises in one D step, and its terms.

    .. math::
        \begin{aligned}
        \mathcal L = {} & \mathcal L_D\big(a(\tilde x), a(\tilde{G}(z))\big) + \lambda\,\Omega(D) \\
        & [+\ \mathcal L_D(a_2(\tilde G(z)), a_2(\tilde x)) + \lambda\,\Omega(D_2)]\;[+\ \mathcal L_C],
        \end{aligned}

    where :math:`\tilde\cdot` is what D sees (:func:`d_input`), :math:`\Omega` the penalty at
    each discriminator's positive batch and :math:`\mathcal L_C` the mixture classifier's loss;
    D2GAN and BEGAN use their own losses.

    Returns
    -------
    loss : scalar tensor
    terms : dict
        ``"d_loss"`` (the first discriminator's game loss), ``"d2_loss"`` (the second's, 0 if
        none), ``"d_real"``, ``"d_fake"`` (mean :math:`\sigma(a)` of D on what it saw, detached;
        for the losses of :data:`~gan_notes.losses.LOSSES`), and, for BEGAN, ``"l_real"``,
        ``"l_fake"`` (mean reconstruction losses).

    See also
    --------
    generator_step_loss; Chapters 07-09.
    """
    m = method
    real, fake = r["real"], r["fake"]
    zero = real.new_zeros(())
    if m.loss == "began":
        l_real = losses.began_reconstruction(real, nets("D", real))
        l_fake = losses.began_reconstruction(fake, nets("D", fake))
        loss, _ = losses.began_losses(l_real, l_fake, r["k"])
        return loss, {"d_loss": loss, "d2_loss": zero, "l_real": l_real.mean(), "l_fake": l_fake.mean()}
    x_real, x_fake = d_input(m, real, r.get("noise_real")), d_input(m, fake, r.get("noise_fake"))
    if m.loss == "d2gan":
        a = [nets(n, x) for n in ("D", "D2") for x in (x_real, x_fake)]
        loss = losses.d2gan_discriminator_loss(*a, alpha=m.d2gan_alpha, beta=m.d2gan_beta)
        return loss, {"d_loss": loss, "d2_loss": zero}
    a_real, a_fake = nets("D", x_real), nets("D", x_fake)
    d_loss = losses.discriminator_loss(m.loss, a_real, a_fake)
    d2_loss = zero
    if m.two_discriminators:
        # D2's positive class is the generated batch: D's loss with the batches swapped.
        d2_loss = losses.discriminator_loss(m.loss, nets("D2", x_fake), nets("D2", x_real))
    loss = d_loss + d2_loss
    if m.penalty is not None:
        positive, negative = (d_input(m, t) for t in (real, fake))  # packed, without noise
        roles = [("D", positive, negative)] + ([("D2", negative, positive)] if m.two_discriminators else [])
        for name, pos, neg in roles:
            critic = lambda x, name=name: nets.module_call(name, x)  # noqa: E731
            loss = loss + m.penalty_weight * penalty(m.penalty, critic, pos, neg, r)
    if m.mixture:
        loss = loss + remedies.mixture_classifier_loss(nets("C", fake))
    seen = {"d_real": torch.sigmoid(a_real.detach()).mean(), "d_fake": torch.sigmoid(a_fake.detach()).mean()}
    return loss, {"d_loss": d_loss, "d2_loss": d2_loss, **seen}


def generator_step_loss(method: Method, nets: Nets, r: Mapping[str, torch.Tensor], adam: Mapping | None = None) -> torch.Tensor:
    r"""The loss G's optimiser minimises in one G step.

    .. math::
        \begin{aligned}
        \mathcal L = {} & \mathcal L_G\big(a(\tilde G(z))\big)\;[+\ \mathcal L_G(-a_2(\tilde G(z)))] \\
        & [+\ \lambda_{ms}\mathcal L_{ms}]\;[+\ \beta\,\mathcal L_C],
        \end{aligned}

    with D replaced by its look-ahead :math:`D_{\theta^k}` for unrolling, by the feature
    distance for feature matching, and by their own losses for D2GAN and BEGAN.

    Parameters
    ----------
    method, nets, r : see :func:`discriminator_step_loss`.
    adam : dict, optional
        D's live Adam state and settings (:func:`gan_notes.unrolled.adam_state`); required
        when ``method.unroll > 0``.

    See also
    --------
    discriminator_step_loss; Chapters 07-09.
    """
    m = method
    fake = nets("G", r["z"])
    if m.loss == "began":
        loss = losses.began_reconstruction(fake, nets("D", fake)).mean()
    elif m.loss == "d2gan":
        x = d_input(m, fake, r.get("noise_fake"))
        loss = losses.d2gan_generator_loss(nets("D", x), nets("D2", x), beta=m.d2gan_beta)
    elif m.feature_matching:
        # D's features of a real batch are constants for G (see feature_matching_loss).
        d_params = nets.parameters("D")
        f_real = remedies.features(nets.modules["D"], d_input(m, r["real"]), d_params).detach()
        loss = remedies.feature_matching_loss(f_real, remedies.features(nets.modules["D"], d_input(m, fake), d_params))
    elif m.unroll:
        if adam is None:
            raise ValueError("unroll needs D's live Adam state: pass adam=gan_notes.unrolled.adam_state(opt_d, ...)")
        critic = _lookahead(m, nets, r["real"], fake, adam)  # D's game loss, without penalty or noise
        loss = losses.generator_loss(m.loss, critic(d_input(m, fake, r.get("noise_fake"))))
    else:
        x = d_input(m, fake, r.get("noise_fake"))
        loss = losses.generator_loss(m.loss, nets("D", x))
        if m.two_discriminators:
            loss = loss + losses.generator_loss(m.d2_generator_loss or m.loss, -nets("D2", x))
    if m.mode_seeking:
        loss = loss + m.mode_seeking * remedies.mode_seeking_loss(fake, nets("G", r["z2"]), r["z"], r["z2"])
    if m.mixture:
        loss = loss + m.mixture_beta * remedies.mixture_classifier_loss(nets("C", fake))
    return loss


def _lookahead(m: Method, nets: Nets, real: torch.Tensor, fake: torch.Tensor, adam: Mapping) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""D after ``m.unroll`` Adam steps on :math:`\mathcal L_D(x, G(z))`, as a function of
    ``fake`` (which stays in G's graph), continuing D's live Adam state ``adam``."""
    theta0 = {n: p.detach() for n, p in nets.parameters("D").items() if n in adam["exp_avg"]}

    def d_loss(theta):
        return losses.discriminator_loss(m.loss, nets.module_call("D", real, theta), nets.module_call("D", fake, theta))

    theta_k = unroll(d_loss, theta0, m.unroll, adam["lr"], "adam", betas=adam["betas"], eps=adam["eps"], state=adam)
    return lambda x: nets.module_call("D", x, theta_k)
