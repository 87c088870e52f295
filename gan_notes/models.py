"""Small networks for the toy chapters: multilayer perceptrons for G and D.

Besides the plain :func:`mlp`, Part III's discriminators: an MLP with minibatch
discrimination (:func:`mlp_md`), a residual MLP (:func:`residual_mlp`, :class:`ResidualBlock`)
and BEGAN's autoencoder (:func:`autoencoder_mlp`). Every discriminator is an ``nn.Sequential``
whose last module is its head, so ``D[:-1]`` gives its features
(:func:`gan_notes.remedies.features`).

:func:`generate` samples any generator, toy or convolutional, in chunks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from gan_notes.remedies import MinibatchDiscrimination
from gan_notes.validate import integer

__all__ = ["ACTIVATIONS", "BatchNorm", "call", "mlp", "mlp_md", "Maxout", "maxout_mlp", "init_normal_", "ResidualBlock", "residual_mlp", "autoencoder_mlp", "generate"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "selu": nn.SELU,
}
#: The hidden activations the MLPs accept.
ACTIVATIONS = tuple(_ACTIVATIONS)


class BatchNorm(nn.BatchNorm1d):
    r"""Batch normalisation on the batch's own statistics, in training and evaluation alike:
    :math:`\gamma\,(x - \bar x)/\sqrt{\overline{(x - \bar x)^2} + \epsilon} + \beta` per feature,
    the biased variance, as ``nn.BatchNorm1d(n, track_running_stats=False)`` (its parameters and
    initialisation; tested against it).

    Why not that module itself: under :func:`torch.func.vmap` over stacked seeds, torch's batch
    norm is slower on the CPU than these two means (forward and backward of the book protocol's
    generator, 10 seeds of 128 samples, one thread: 5.5 ms instead of 6.6 ms). Input ``(N, n)``
    with ``N >= 2``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__(num_features, eps=eps, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(x, self.weight, self.bias, self.eps)

    @staticmethod
    def normalize(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        """The layer as a function of its parameters (what :func:`call` evaluates)."""
        if x.dim() != 2 or x.shape[0] < 2:
            raise ValueError(f"BatchNorm expects (N, features) with N >= 2, got shape {tuple(x.shape)}")
        xc = x - x.mean(0)
        return xc * (torch.rsqrt((xc * xc).mean(0) + eps) * weight) + bias


def call(net: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r"""``torch.func.functional_call(net, params, (x,))``, faster for the package's MLPs.

    For an ``nn.Sequential``, each :class:`~torch.nn.Linear` and :class:`BatchNorm` layer is
    evaluated by the same torch operations as its ``forward`` on the tensors of ``params``
    (keys ``"{i}.weight"``, ``"{i}.bias"``; a missing key falls back to the layer's own
    tensor, as in ``functional_call``), a layer without parameters or buffers is called as it
    is, and any other layer goes through ``functional_call`` with its share of ``params``. So
    the numbers are those of ``functional_call`` (tested, bit for bit), without its swapping of
    every parameter into the module on every call: under :func:`torch.func.vmap` over stacked
    seeds that swapping was about a tenth of a toy training step's time. Any other module goes
    through ``functional_call`` whole.
    """
    if not isinstance(net, nn.Sequential):
        return functional_call(net, params, (x,))
    for i, layer in enumerate(net):
        kind = type(layer)
        if kind is nn.Linear or kind is BatchNorm:
            w, b = params.get(f"{i}.weight", layer.weight), params.get(f"{i}.bias", layer.bias)
            x = F.linear(x, w, b) if kind is nn.Linear else BatchNorm.normalize(x, w, b, layer.eps)
        elif next(layer.parameters(), None) is None and next(layer.buffers(), None) is None:
            x = layer(x)
        else:
            head = f"{i}."
            x = functional_call(layer, {k[len(head):]: v for k, v in params.items() if k.startswith(head)}, (x,))
    return x


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (128, 128), activation: str = "relu",
        batch_norm: bool = False) -> nn.Sequential:
    """A multilayer perceptron ``in_dim -> hidden... -> out_dim`` with a linear last layer.

    The last layer is linear on purpose: a discriminator returns *logits* (the losses apply
    ``softplus``/``logsigmoid``), a generator returns points.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output sizes (latent and data dimension for G; data dimension and 1 for D).
    hidden : sequence of int
        Widths of the hidden layers.
    activation : {"relu", "leaky_relu", "tanh", "elu", "selu"}
        Hidden activation.
    batch_norm : bool
        Batch normalisation (:class:`BatchNorm`) before each hidden activation (PacGAN's toy
        generator), on the batch's own statistics in training *and* evaluation (no running
        buffers to update, so the network maps over seeds with ``vmap``); the hidden layers
        then have no bias, which the normalisation's shift replaces.

    See also
    --------
    gan_notes.train.train_gan; Chapter 01.
    """
    for name, v in (("in_dim", in_dim), ("out_dim", out_dim)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    hidden = tuple(hidden)
    if any(not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be positive ints, got {hidden}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {sorted(_ACTIVATIONS)}")
    widths = (in_dim, *hidden)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers.append(nn.Linear(a, b, bias=not batch_norm))
        if batch_norm:
            layers.append(BatchNorm(b))
        layers.append(_ACTIVATIONS[activation]())
    layers.append(nn.Linear(widths[-1], out_dim))
    return nn.Sequential(*layers)


class Maxout(nn.Module):
    r"""A maxout layer (Goodfellow et al. 2013): :math:`h_j = \max_{k \le K} (W_k x + b_k)_j`,
    ``in_dim -> out_dim`` with ``pieces`` = K affine pieces per unit."""

    def __init__(self, in_dim: int, out_dim: int, pieces: int) -> None:
        super().__init__()
        _check_dims(in_dim=in_dim, out_dim=out_dim, pieces=pieces)
        self.out_dim, self.pieces = out_dim, pieces
        self.linear = nn.Linear(in_dim, out_dim * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(-1, (self.out_dim, self.pieces)).amax(-1)


def maxout_mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (200, 200, 200), pieces: int = 5) -> nn.Sequential:
    """A maxout MLP ``in_dim -> hidden... -> out_dim`` with a linear last layer (PacGAN's and
    VEEGAN's toy discriminator: three maxout layers of 200 units, 5 pieces each).

    See also
    --------
    Maxout; gan_notes.protocols; Chapter 09.
    """
    hidden = tuple(hidden)
    _check_dims(in_dim=in_dim, out_dim=out_dim, pieces=pieces, **{f"hidden[{i}]": h for i, h in enumerate(hidden)})
    widths = (in_dim, *hidden)
    layers: list[nn.Module] = [Maxout(a, b, pieces) for a, b in zip(widths[:-1], widths[1:])]
    layers.append(nn.Linear(widths[-1], out_dim))
    return nn.Sequential(*layers)


def init_normal_(net: nn.Module, std: float) -> nn.Module:
    r"""Initialise every linear weight from :math:`\mathcal N(0, \mathrm{std}^2)` and every bias to
    zero, in place (PacGAN's released toy code: ``IsotropicGaussian(0.02)``, ``Constant(0)``);
    batch-norm scales and shifts keep their 1 and 0. Draws from torch's global generator."""
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not std > 0:
        raise ValueError(f"std must be a positive number, got {std!r}")
    for mod in net.modules():
        if isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0.0, std)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return net


def _check_dims(**dims: int) -> None:
    for name, v in dims.items():
        can_be_zero = name in ("minibatch_kernels", "n_blocks")
        if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (v == 0 and not can_be_zero):
            raise ValueError(f"{name} must be a {'non-negative' if can_be_zero else 'positive'} int, got {v!r}")


def _check_activation(activation: str) -> None:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {sorted(_ACTIVATIONS)}")


def mlp_md(
    in_dim: int, hidden: Sequence[int] = (128, 128), n_kernels: int = 16, kernel_dim: int = 8, activation: str = "leaky_relu"
) -> nn.Sequential:
    """A discriminator MLP with minibatch discrimination before its linear head.

    ``in_dim -> hidden... -> MinibatchDiscrimination(hidden[-1], n_kernels, kernel_dim) ->
    Linear(hidden[-1] + n_kernels, 1)``: the head sees each sample's features and how close
    it is to the rest of the batch (Salimans et al. 2016).

    See also
    --------
    gan_notes.remedies.MinibatchDiscrimination; Chapter 09 (mode-collapse remedies).
    """
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError("hidden must hold at least one width (the features compared across the batch)")
    _check_dims(n_kernels=n_kernels, kernel_dim=kernel_dim)
    body = mlp(in_dim, hidden[-1], hidden[:-1], activation)
    return nn.Sequential(
        *body, _ACTIVATIONS[activation](), MinibatchDiscrimination(hidden[-1], n_kernels, kernel_dim),
        nn.Linear(hidden[-1] + n_kernels, 1),
    )


class ResidualBlock(nn.Module):
    r"""A residual block :math:`h \mapsto h + W_2\,a(W_1 h)` of constant width.

    See also
    --------
    residual_mlp; Chapter 07.
    """

    def __init__(self, width: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        _check_dims(width=width)
        _check_activation(activation)
        self.branch = nn.Sequential(nn.Linear(width, width), _ACTIVATIONS[activation](), nn.Linear(width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h)


def residual_mlp(
    in_dim: int, width: int = 128, n_blocks: int = 2, minibatch_kernels: int = 0, kernel_dim: int = 8,
    activation: str = "leaky_relu",
) -> nn.Sequential:
    """A residual MLP discriminator: ``Linear(in_dim, width)``, ``n_blocks`` residual blocks,
    the activation, optional minibatch discrimination, and a linear head to one logit.

    With ``minibatch_kernels = K > 0`` a :class:`~gan_notes.remedies.MinibatchDiscrimination`
    layer with K kernels of dimension ``kernel_dim`` comes before the head (the architecture
    used with the dual-discriminator GAN in Chapter 07). For the SELU variant, use
    ``activation="selu"`` (or :func:`mlp` with ``activation="selu"``).

    See also
    --------
    ResidualBlock; Chapter 07 (the loss zoo).
    """
    _check_dims(in_dim=in_dim, width=width, n_blocks=n_blocks, minibatch_kernels=minibatch_kernels, kernel_dim=kernel_dim)
    _check_activation(activation)
    layers: list[nn.Module] = [nn.Linear(in_dim, width)]
    layers += [ResidualBlock(width, activation) for _ in range(n_blocks)]
    layers.append(_ACTIVATIONS[activation]())
    if minibatch_kernels:
        layers.append(MinibatchDiscrimination(width, minibatch_kernels, kernel_dim))
    layers.append(nn.Linear(width + minibatch_kernels, 1))
    return nn.Sequential(*layers)


def autoencoder_mlp(dim: int, hidden: int = 128, code: int = 8, activation: str = "elu") -> nn.Sequential:
    """BEGAN's autoencoder discriminator: ``nn.Sequential(encoder, decoder)``.

    encoder ``dim -> hidden -> code`` and decoder ``code -> hidden -> dim`` (ELU, as in
    Berthelot et al. 2017); ``D(x)`` is the reconstruction, ``D[:-1](x) = D[0](x)`` the code.

    See also
    --------
    gan_notes.losses.began_reconstruction; Chapter 07.
    """
    _check_dims(dim=dim, hidden=hidden, code=code)
    return nn.Sequential(mlp(dim, code, (hidden,), activation), mlp(code, dim, (hidden,), activation))


def generate(
    G: nn.Module, n: int, *, chunk: int = 1000, latent_dim: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Draw ``n`` samples :math:`x = G(z)`, :math:`z \sim \mathcal N(0, I)`, in chunks.

    For evaluation: no gradients are recorded, and ``G`` runs in eval mode (batch norm uses
    its running statistics and does not update them); ``G``'s mode before the call is
    restored afterwards, also when an error interrupts it. The latents of each chunk of at
    most ``chunk`` rows are drawn in turn, on ``G``'s device and in its parameters' dtype,
    from ``generator`` or, without one, from torch's global random state (advanced, not
    reseeded).

    Parameters
    ----------
    G : nn.Module
        Maps ``(m, latent_dim)`` latents to samples.
    n : int
        Number of samples, ``n >= 1``.
    chunk : int
        Latents per forward pass (bounds the memory).
    latent_dim : int, optional
        Defaults to ``G.latent_dim`` (the image generators of :mod:`gan_notes.dcgan` carry it).
    generator : torch.Generator, optional
        The random state of the latents.

    Returns
    -------
    torch.Tensor
        ``(n, ...)`` on ``G``'s device, without gradient.

    See also
    --------
    gan_notes.dcgan.dcgan_generator; Chapters 11 and 12.
    """
    if not isinstance(G, nn.Module):
        raise TypeError(f"G must be a torch.nn.Module, got {type(G).__name__}")
    n = integer("n", n)
    chunk = integer("chunk", chunk)
    latent_dim = getattr(G, "latent_dim", None) if latent_dim is None else latent_dim
    if latent_dim is None:
        raise ValueError("latent_dim is required: G has no latent_dim attribute")
    latent_dim = integer("latent_dim", latent_dim)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    param = next((p for p in G.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            out = []
            for start in range(0, n, chunk):
                size = min(chunk, n - start)
                if generator is None:
                    z = torch.randn(size, latent_dim, device=device, dtype=dtype)
                else:
                    z = torch.randn(size, latent_dim, generator=generator, device=generator.device, dtype=dtype).to(device)
                out.append(G(z))
            return torch.cat(out)
    finally:
        G.train(was_training)
