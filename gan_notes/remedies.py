r"""Mode-collapse remedies as small building blocks (Chapter 09).

Each block is a pure torch function or a stateless ``nn.Module``: no in-place operation on
its inputs, no ``.item()``, no control flow that depends on tensor values. Input checks look
only at types and shapes. So every block also runs under :func:`torch.func.vmap` over a
leading *seed* axis, as the batched multi-seed trainer (:mod:`gan_notes.ensemble`) uses them.

- PacGAN packing (Lin et al. 2018): :func:`pack`;
- minibatch discrimination (Salimans et al. 2016): :class:`MinibatchDiscrimination`;
- feature matching (Salimans et al. 2016): :func:`features`, :func:`feature_matching_loss`;
- mode seeking (Mao et al. 2019, MSGAN): :func:`mode_seeking_loss`;
- a mixture of generators (MGAN, Hoang et al. 2018): :class:`MixtureGenerator`,
  :func:`mixture_classifier_loss`.

The unrolled GAN (Metz et al. 2017) is an optimisation scheme, not a layer or a loss: it is
:mod:`gan_notes.unrolled`. How each remedy enters a training step is :mod:`gan_notes.objective`.

The two-discriminator losses (D2GAN and the dual-discriminator GAN) and BEGAN are losses,
and live in :mod:`gan_notes.losses`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from gan_notes.arrays import Array

__all__ = [
    "pack",
    "MinibatchDiscrimination",
    "l1_distances",
    "features",
    "feature_matching_loss",
    "mode_seeking_loss",
    "MixtureGenerator",
    "mixture_classifier_loss",
]


def _tensor(name: str, x, min_ndim: int = 1) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


# ---------------------------------------------------------------------------------------
# PacGAN
# ---------------------------------------------------------------------------------------


def pack(x: Array, m: int) -> Array:
    r"""PacGAN packing: concatenate ``m`` consecutive samples into one discriminator input.

    .. math::
        (x_1, \dots, x_B) \mapsto \big([x_1; \dots; x_m],\ [x_{m+1}; \dots; x_{2m}],\ \dots\big),

    i.e. a batch ``[..., B, d]`` becomes ``[..., B // m, m * d]``; the discriminator then takes
    ``m * d`` inputs and judges *m* samples at once, which penalises a generator whose samples
    are too alike (Lin et al. 2018). Real and generated batches are packed separately, so a
    pack is all-real or all-fake. Leading axes (seeds) are kept.

    Parameters
    ----------
    x : array or tensor, shape (..., B, d)
    m : int
        Pack size (``m = 1`` is the plain GAN). ``B`` must be a multiple of ``m``.

    Returns
    -------
    Array or tensor of the input kind, shape (..., B // m, m * d).

    See also
    --------
    Chapter 09 (mode-collapse remedies).
    """
    m = _positive_int("m", m)
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        raise TypeError(f"x must be a torch tensor or NumPy array, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., B, d), got {tuple(x.shape)}")
    b, d = x.shape[-2], x.shape[-1]
    if b % m:
        raise ValueError(f"the batch size of x ({b}) must be a multiple of the pack size m={m}")
    # Rows are contiguous in memory, so a reshape packs consecutive samples.
    return x.reshape(*x.shape[:-2], b // m, m * d)


# ---------------------------------------------------------------------------------------
# Minibatch discrimination and feature matching
# ---------------------------------------------------------------------------------------


class _L1Distances(torch.autograd.Function):
    """``torch.cdist(p=1)`` between the rows of each kernel, with a double backward."""

    generate_vmap_rule = True  # so that the trainer's vmap over seeds runs it as written

    @staticmethod
    def forward(m):
        mt = m.movedim(-2, -3).contiguous()  # (..., K, B, C)
        return torch.cdist(mt, mt, p=1).movedim(-3, -1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, g):
        m, l1 = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph (a gradient penalty): d|m_i - m_j|/dm_i = sign(m_i - m_j), written
            # in differentiable operations so that this gradient has a gradient of its own.
            gs = g.unsqueeze(-1) * torch.sign(m.unsqueeze(-3) - m.unsqueeze(-4))  # (..., B_i, B_j, K, C)
            return gs.sum(-3) - gs.sum(-4)
        # Otherwise torch's own cdist backward, about 4x faster than the broadcast form. Both
        # arguments of cdist are m, so m's gradient is the first argument's for g + g^T.
        mt = m.movedim(-2, -3).contiguous()
        gt = g.movedim(-1, -3)
        gt = (gt + gt.transpose(-1, -2)).contiguous()
        return torch.ops.aten._cdist_backward(gt, mt, mt, 1.0, l1.movedim(-1, -3).contiguous()).movedim(-3, -2)


def l1_distances(m: torch.Tensor) -> torch.Tensor:
    r"""The :math:`L_1` distances :math:`\|M_{i,b} - M_{j,b}\|_1` of minibatch discrimination.

    Parameters
    ----------
    m : tensor (..., B, K, C)
        *K* kernels of dimension *C* for each of *B* samples.

    Returns
    -------
    tensor (..., B, B, K)
        Entry ``[..., i, j, b]`` is :math:`\sum_c |m_{ibc} - m_{jbc}|`.

    Notes
    -----
    The numbers of the broadcast form ``(m[..., :, None] - m[..., None, :]).abs().sum(-1)``
    (up to rounding, tested), in :func:`torch.cdist`'s time and memory: the broadcast form
    stores a :math:`B^2 K C` tensor for its backward, which made minibatch discrimination the
    toy benchmark's costliest layer. ``torch.cdist`` alone has no double backward, which a
    gradient penalty on such a D needs; this function has one (used only then). Half-precision
    input (an image D under bfloat16 autocast) takes the broadcast form, since cdist's backward
    does not run in half precision; under autocast, float32 input stays float32.
    """
    _tensor("m", m, min_ndim=3)
    if m.dtype not in (torch.float32, torch.float64):  # cdist's backward has no half precision
        return (m.unsqueeze(-3) - m.unsqueeze(-4)).abs().sum(-1)
    with torch.autocast(m.device.type, enabled=False):  # keep cdist in m's precision under autocast
        return _L1Distances.apply(m)


class MinibatchDiscrimination(nn.Module):
    r"""Minibatch discrimination layer (Salimans et al. 2016).

    For features :math:`f_i \in \mathbb R^A` of the *B* samples of a batch, a learned tensor
    :math:`T \in \mathbb R^{A \times K \times C}` gives :math:`M_i = f_i T \in \mathbb R^{K
    \times C}`; kernel *b* compares rows by

    .. math::
        c_b(x_i, x_j) = \exp\big(-\|M_{i,b} - M_{j,b}\|_{L_1}\big), \qquad
        o(x_i)_b = \sum_{j \ne i} c_b(x_i, x_j),

    and the layer returns :math:`[f_i;\ o(x_i)] \in \mathbb R^{A + K}`. We leave out the self
    term :math:`j = i` (Salimans et al. include it; it only adds the constant 1 to each
    :math:`o_b`). A collapsed batch has large :math:`o`, which D learns to reject.

    Parameters
    ----------
    in_features : int
        *A*, the width of the features.
    n_kernels : int
        *K*, the number of similarity features added.
    kernel_dim : int
        *C*, the dimension in which samples are compared.

    Notes
    -----
    The output of a sample depends on the whole batch (along axis -2), and memory grows as
    :math:`B^2 K C`. ``T`` starts :math:`\mathcal N(0, 1/A)`, so that :math:`M` is of order
    one for features of order one and the kernels do not start saturated at 0.

    See also
    --------
    gan_notes.models.mlp_md; Chapter 09.
    """

    def __init__(self, in_features: int, n_kernels: int, kernel_dim: int) -> None:
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.n_kernels = _positive_int("n_kernels", n_kernels)
        self.kernel_dim = _positive_int("kernel_dim", kernel_dim)
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) / math.sqrt(in_features))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_kernels={self.n_kernels}, kernel_dim={self.kernel_dim}"

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        _tensor("f", f, min_ndim=2)
        if f.shape[-1] != self.in_features:
            raise ValueError(f"f must have {self.in_features} features in its last axis, got shape {tuple(f.shape)}")
        m = (f @ self.T).unflatten(-1, (self.n_kernels, self.kernel_dim))  # (..., B, K, C)
        o = torch.exp(-l1_distances(m)).sum(-2) - 1.0  # drop the self term exp(0) = 1
        return torch.cat([f, o], dim=-1)


def features(D: nn.Module, x: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    r"""The features of a discriminator: the input of its last (linear) layer.

    Convention of the package: a discriminator is an ``nn.Sequential`` whose last module is
    the linear head (:func:`gan_notes.models.mlp`, ``mlp_md``, ``residual_mlp``), so its
    features are ``D[:-1](x)``, the penultimate layer's activations :math:`f(x)`. For the
    BEGAN autoencoder (``nn.Sequential(encoder, decoder)``) they are the code.

    Parameters
    ----------
    D : nn.Sequential
    x : tensor (n, d)
    params : dict name -> tensor, optional
        Evaluate with these parameters instead of D's own (``torch.func.functional_call``),
        e.g. one seed's slice inside :func:`torch.func.vmap`. Names are D's
        ``named_parameters()``; those of the last layer are ignored.

    See also
    --------
    feature_matching_loss; Chapter 09.
    """
    if not isinstance(D, nn.Sequential) or len(D) < 2:
        raise TypeError(f"D must be an nn.Sequential with at least two modules (body, head), got {type(D).__name__}")
    _tensor("x", x, min_ndim=2)
    body = D[:-1]
    if params is None:
        return body(x)
    head = f"{len(D) - 1}."
    return functional_call(body, {k: v for k, v in params.items() if not k.startswith(head)}, (x,))


def feature_matching_loss(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    r"""Feature matching (Salimans et al. 2016): the generator matches the mean features.

    .. math::
        \mathcal L_G = \big\| \E_{x \sim p_{data}} f(x) - \E_{z} f(G(z)) \big\|_2^2 ,

    with batch means (axis -2) and the squared norm over features (axis -1); leading axes
    are kept. Only G minimises it (D keeps its usual loss); compute ``f_real`` without
    gradient (``.detach()``) so that ``backward`` does not leave gradients on D.

    Parameters
    ----------
    f_real, f_fake : tensor (..., B, k)
        Features (:func:`features`) of a real and a generated batch; batch sizes may differ.

    See also
    --------
    features; Chapter 09.
    """
    _tensor("f_real", f_real, min_ndim=2)
    _tensor("f_fake", f_fake, min_ndim=2)
    if f_real.shape[:-2] != f_fake.shape[:-2] or f_real.shape[-1] != f_fake.shape[-1]:
        raise ValueError(
            f"f_real and f_fake must agree except in the batch axis, got {tuple(f_real.shape)} and {tuple(f_fake.shape)}"
        )
    return ((f_real.mean(-2) - f_fake.mean(-2)) ** 2).sum(-1)


# ---------------------------------------------------------------------------------------
# Mode seeking
# ---------------------------------------------------------------------------------------


def mode_seeking_loss(x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    r"""Mode-seeking regulariser of MSGAN (Mao et al. 2019), to add to the generator's loss.

    For two latent batches and their images :math:`x_i = G(z_i)`,

    .. math::
        r = \frac{\operatorname{mean}|x_1 - x_2|}{\operatorname{mean}|z_1 - z_2|}, \qquad
        \mathcal L_{ms} = \frac{1}{r + \epsilon},

    means over all entries. Minimising :math:`\mathcal L_{ms}` pushes G to map distinct
    latents to distinct samples, the opposite of collapse; the generator minimises
    :math:`\mathcal L_G + \lambda_{ms}\mathcal L_{ms}`. ``eps`` keeps the loss finite at
    :math:`r = 0` (full collapse).

    See also
    --------
    Chapter 09.
    """
    for name, t in (("x1", x1), ("x2", x2), ("z1", z1), ("z2", z2)):
        _tensor(name, t)
    if x1.shape != x2.shape:
        raise ValueError(f"x1 and x2 must have the same shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    ratio = (x1 - x2).abs().mean() / (z1 - z2).abs().mean()
    return 1.0 / (ratio + eps)


# ---------------------------------------------------------------------------------------
# Mixture of generators
# ---------------------------------------------------------------------------------------


class MixtureGenerator(nn.Module):
    r"""A mixture of *K* generators with a fixed, deterministic assignment of latents.

    Row *i* of the latent batch goes to generator :math:`i \bmod K`:

    .. math::
        G(z)_i = G_{i \bmod K}(z_i),

    so a batch of size *B* holds :math:`\lceil B/K \rceil` or :math:`\lfloor B/K \rfloor`
    samples of each component (the uniform mixture of MGAN, Hoang et al. 2018). The
    assignment depends on positions only, not on random draws, so the module is reproducible
    and runs under :func:`torch.func.vmap`. :meth:`assignment` gives the component of each row.

    Parameters
    ----------
    generators : sequence of nn.Module
        Each maps (n, latent_dim) to (n, d), with the same latent_dim and d.

    See also
    --------
    mixture_classifier_loss; Chapter 09.
    """

    def __init__(self, generators: Sequence[nn.Module]) -> None:
        super().__init__()
        generators = list(generators)
        if not generators or not all(isinstance(g, nn.Module) for g in generators):
            raise TypeError("generators must be a non-empty sequence of nn.Module")
        self.generators = nn.ModuleList(generators)

    @property
    def n_components(self) -> int:
        return len(self.generators)

    def assignment(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The component index of each of ``n`` rows, ``arange(n) % K``."""
        return torch.arange(_positive_int("n", n), device=device) % self.n_components

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _tensor("z", z, min_ndim=2)
        k, n = self.n_components, z.shape[-2]
        used = range(min(k, n))  # with fewer rows than components, the last ones idle
        outs = [self.generators[i](z[..., i::k, :]) for i in used]
        # Component i produced rows i, i+K, ...; put them back in row order (a shape-only
        # permutation, the same for every seed).
        order = torch.cat([torch.arange(i, n, k) for i in used])
        return torch.cat(outs, dim=-2)[..., torch.argsort(order).to(z.device), :]


def mixture_classifier_loss(class_logits: torch.Tensor) -> torch.Tensor:
    r"""MGAN's classifier term: cross-entropy of predicting which generator made each sample.

    With the assignment of :class:`MixtureGenerator` (row *i* from component
    :math:`u_i = i \bmod K`) and classifier logits :math:`c(x_i) \in \mathbb R^K`,

    .. math::
        \mathcal L_C = -\frac{1}{B}\sum_i \log \operatorname{softmax}(c(x_i))_{u_i} .

    The classifier minimises it, and so do the generators (with a weight :math:`\beta`):
    this pushes the components apart, towards different modes.

    Parameters
    ----------
    class_logits : tensor (B, K)

    See also
    --------
    MixtureGenerator; Chapter 09.
    """
    _tensor("class_logits", class_logits, min_ndim=2)
    n, k = class_logits.shape[-2], class_logits.shape[-1]
    target = torch.arange(n, device=class_logits.device) % k
    return -torch.log_softmax(class_logits, dim=-1)[..., torch.arange(n, device=class_logits.device), target].mean(-1)
