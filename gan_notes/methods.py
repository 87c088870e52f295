r"""The networks of a training method, and its losses for one seed of the batched trainer (Part III).

:func:`build_networks` builds the networks a :class:`~gan_notes.objective.Method` needs (G, D,
a second D, MGAN's classifier). :class:`SeedLosses` evaluates the step losses of
:mod:`gan_notes.objective` for **one** seed as pure functions of parameter dicts and of random
draws passed in (:func:`torch.func.functional_call`, no random number drawn inside), so that
:mod:`gan_notes.ensemble` can map them over stacked seeds with :func:`torch.func.vmap`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_notes import models, remedies
from gan_notes.objective import Method, Nets, discriminator_step_loss, generator_step_loss

__all__ = ["build_networks", "SeedLosses"]


def build_networks(method: Method, latent_dim: int, dim: int, hidden: Sequence[int], *, g_hidden: Sequence[int] | None = None,
                   g_batch_norm: bool = False, d_maxout: int = 0, init_std: float | None = None) -> dict[str, nn.Module]:
    r"""The networks of one seed, built from torch's global generator in a fixed order: G first,
    then D's side (as the book's chapters build them before :func:`~gan_notes.train.train_gan`).

    G is :func:`~gan_notes.models.mlp` (``latent_dim -> g_hidden -> dim``, batch-normalised
    with ``g_batch_norm``) or a mixture of them; D is ``mlp(pack * dim, 1, hidden)`` (ReLU), or
    :func:`~gan_notes.models.maxout_mlp` with ``d_maxout`` pieces, :func:`~gan_notes.models.mlp_md`
    (ReLU) for minibatch discrimination, :func:`~gan_notes.models.autoencoder_mlp` (width
    ``hidden[0]``, a code of ``dim - 1`` units: a bottleneck, as BEGAN's) for BEGAN; D2 of a
    two-discriminator method uses ``method.d2_activation``; C (mixture) is
    ``mlp(dim, mixture, hidden)``. With ``init_std``, every linear layer is drawn from
    :math:`\mathcal N(0, \mathrm{init\_std}^2)` with zero biases (:func:`~gan_notes.models.init_normal_`).

    See also
    --------
    train_ensemble; gan_notes.protocols; Chapter 09.
    """
    hidden = tuple(hidden)
    g_hidden = hidden if g_hidden is None else tuple(g_hidden)
    make_g = lambda: models.mlp(latent_dim, dim, g_hidden, batch_norm=g_batch_norm)  # noqa: E731
    nets: dict[str, nn.Module] = {"G": remedies.MixtureGenerator([make_g() for _ in range(method.mixture)]) if method.mixture else make_g()}
    d_in = method.pack * dim
    for name in method.d_names:
        if name == "C":
            nets[name] = models.mlp(dim, method.mixture, hidden)
        elif method.loss == "began":
            nets[name] = models.autoencoder_mlp(d_in, hidden=hidden[0], code=max(d_in - 1, 1))
        elif name == "D2" and method.two_discriminators:
            nets[name] = models.mlp(d_in, 1, hidden, activation=method.d2_activation)
        elif method.minibatch:
            nets[name] = models.mlp_md(d_in, hidden, *method.minibatch, activation="relu")
        elif d_maxout:
            nets[name] = models.maxout_mlp(d_in, 1, hidden, d_maxout)
        else:
            nets[name] = models.mlp(d_in, 1, hidden)
    if init_std is not None:
        for net in nets.values():
            models.init_normal_(net, init_std)
    return nets


class SeedLosses:
    r"""The D and G losses of one seed for a :class:`~gan_notes.objective.Method`, for :func:`torch.func.vmap`.

    ``p`` maps a network name to its parameter dict (one seed's slice inside vmap); ``r``
    holds the seed's random draws for the step (see :mod:`gan_notes.objective`), and for
    unrolling D's Adam moments ``adam_m``, ``adam_v`` (one seed's slices). :meth:`d_loss`
    returns ``(loss, aux)`` with ``aux`` BEGAN's :math:`(\mathcal L(x), \mathcal L(G(z)))`
    (zeros otherwise); :meth:`g_loss` the loss.

    Parameters
    ----------
    method : Method
    base : dict name -> nn.Module
        One seed's networks, used for their structure (:func:`torch.func.functional_call`).

    Attributes
    ----------
    adam : dict
        D's Adam settings and step count for the look-ahead (``lr``, ``betas``, ``eps``,
        ``step``), set by the trainer before each G step.

    See also
    --------
    gan_notes.ensemble.train_ensemble; gan_notes.objective; Chapter 09.
    """

    def __init__(self, method: Method, base: dict[str, nn.Module]) -> None:
        self.m, self.base, self.adam = method, base, {}

    def d_loss(self, p, r):
        """D's step loss (:func:`~gan_notes.objective.discriminator_step_loss`) and BEGAN's aux."""
        loss, terms = discriminator_step_loss(self.m, Nets(self.base, params=p), r)
        aux = torch.stack([terms["l_real"], terms["l_fake"]]) if self.m.loss == "began" else loss.new_zeros(2)
        return loss, aux

    def g_loss(self, p, r):
        """G's step loss (:func:`~gan_notes.objective.generator_step_loss`)."""
        adam = {**self.adam, "exp_avg": r["adam_m"], "exp_avg_sq": r["adam_v"]} if self.m.unroll else None
        return generator_step_loss(self.m, Nets(self.base, params=p), r, adam=adam)
