r"""Convolutional GANs for images (chapters 11 and 12): DCGAN for 28×28, a two-discriminator GAN for 32×32.

- :func:`dcgan_generator` and :func:`dcgan_discriminator`: DCGAN-style networks
  (Radford et al. 2016) for 28×28 images with 1 channel (MNIST) or 3 (Stacked MNIST). The
  discriminator's width is a fraction of the generator's (full, ½, ¼: the D sizes of
  PacGAN's Table 3, Lin et al. 2018) and it can *pack* :math:`m` samples, concatenated along
  channels, into one decision; :class:`MDDiscriminator28` adds minibatch discrimination to
  its linear head.
- :func:`twodisc_models`: G, D1 and D2 of the 32×32 (CIFAR-10) two-discriminator GAN of
  Zhang, Li & Yu 2018 (the book's "seed-003 architecture"), with the switches of its
  ablations (:data:`TWODISC_VARIANTS`).

D1 uses :class:`gan_notes.remedies.MinibatchDiscrimination` (Salimans et al. 2016) on its
pooled convolutional features.

Every discriminator returns *logits* of shape ``(n / pack, 1)``; every generator maps
:math:`z \in \R^{latent\_dim}` to images in :math:`[-1, 1]` (``tanh``). Models carry
``latent_dim``, ``channels`` and ``image_size`` attributes, which
:func:`gan_notes.image_training.train_image_gan` reads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_notes.remedies import MinibatchDiscrimination

__all__ = [
    "Generator28",
    "Discriminator28",
    "MDDiscriminator28",
    "dcgan_generator",
    "dcgan_discriminator",
    "Generator32",
    "ResidualDiscriminator32",
    "CNNDiscriminator32",
    "TWODISC_VARIANTS",
    "twodisc_models",
]

_ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "selu": nn.SELU, "relu": nn.ReLU}


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def _check_images(x: torch.Tensor, channels: int, size: int, pack: int = 1) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a torch tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1:] != (channels, size, size):
        raise ValueError(
            f"images must have shape (n, {channels}, {size}, {size}), got {tuple(x.shape)} "
            "(image size or channel count does not match the model)"
        )
    if x.shape[0] % pack:
        raise ValueError(f"batch size {x.shape[0]} is not a multiple of pack={pack}")


def _selu_init(module: nn.Module) -> None:
    # Self-normalising networks need LeCun-normal weights (std 1/sqrt(fan_in)): in PyTorch,
    # kaiming_normal_ with nonlinearity="linear" (the torch.nn.SELU documentation's advice).
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --- 28×28: DCGAN for MNIST and Stacked MNIST ---------------------------------------------


class Generator28(nn.Module):
    r"""DCGAN generator for 28×28 images: :math:`z \to` FC :math:`2w\cdot 7\cdot 7` :math:`\to`
    deconv to 14×14 (:math:`w` channels) :math:`\to` deconv to 28×28 (``channels``), ``tanh``;
    batch norm and ReLU between layers. Built by :func:`dcgan_generator`."""

    image_size = 28

    def __init__(self, latent_dim: int = 100, channels: int = 1, width: int = 64):
        super().__init__()
        self.latent_dim, self.channels, self.width = latent_dim, channels, width
        self.fc = nn.Sequential(nn.Linear(latent_dim, 2 * width * 49, bias=False), nn.BatchNorm1d(2 * width * 49), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(self.fc(z).view(-1, 2 * self.width, 7, 7))


class Discriminator28(nn.Module):
    r"""DCGAN discriminator for 28×28 images, optionally packed (PacGAN).

    With ``pack`` :math:`= m`, a batch of :math:`n` images is read as :math:`n/m` packs of
    :math:`m` consecutive images, concatenated along channels, and D returns one logit per
    pack: :math:`D(x_1, \dots, x_m)`. Losses are means over packs, so the training loop is
    unchanged. Layers: conv 4×4/2 to 14×14 (:math:`w`), LeakyReLU(0.2), conv 4×4/2 to 7×7
    (:math:`2w`), batch norm (optional), LeakyReLU(0.2), linear to one logit. Built by
    :func:`dcgan_discriminator`.
    """

    image_size = 28

    def __init__(self, channels: int = 1, width: int = 64, pack: int = 1, batch_norm: bool = True):
        super().__init__()
        self.channels, self.width, self.pack = channels, width, pack
        self.net = nn.Sequential(
            nn.Conv2d(pack * channels, width, 4, 2, 1),  # 28 -> 14
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=not batch_norm),  # 14 -> 7
            nn.BatchNorm2d(2 * width) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * 49, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, 28, self.pack)
        if self.pack > 1:
            # (n, C, H, W) -> (n/m, m*C, H, W): consecutive images become one pack.
            x = x.reshape(x.shape[0] // self.pack, self.pack * self.channels, 28, 28)
        return self.net(x)


class MDDiscriminator28(nn.Module):
    r"""A DCGAN discriminator with minibatch discrimination before its linear head.

    The convolutional body :math:`f` of ``base`` (everything up to and including its
    ``Flatten``) gives features :math:`f(x_i) \in \R^A`;
    :class:`~gan_notes.remedies.MinibatchDiscrimination` appends, for each sample, how close it
    is to the rest of the batch, :math:`o(x_i)_b = \sum_{j \ne i} \exp(-\|M_{i,b} - M_{j,b}\|_1)`
    with :math:`M_i = f(x_i)\,T` (``n_kernels`` kernels of dimension ``kernel_dim``), and a new
    linear head maps :math:`[f(x_i); o(x_i)] \in \R^{A + K}` to one logit (Salimans et al.
    2016). The body's modules are ``base``'s own (shared, not copied); ``base``'s head is not
    used. Parameters are created in the order ``T``, then the head, from torch's global
    random state.

    Parameters
    ----------
    base : Discriminator28
        Unpacked (``pack=1``): a sample's decision must depend on the batch through
        :math:`o` only.
    n_kernels : int
        *K*, similarity features per sample (50 in Salimans et al.).
    kernel_dim : int
        *C*, the dimension in which samples are compared (5 in Salimans et al.).

    See also
    --------
    dcgan_discriminator, gan_notes.models.mlp_md (the toy version); Chapter 11 (the MD runs).
    """

    image_size = 28

    def __init__(self, base: Discriminator28, n_kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        if not isinstance(base, Discriminator28):
            raise TypeError(f"base must be a Discriminator28 (dcgan_discriminator), got {type(base).__name__}")
        if base.pack != 1:
            raise ValueError(f"base must be unpacked (pack=1), got pack={base.pack}")
        self.channels = base.channels
        self.body = base.net[:-1]  # everything up to and including Flatten
        n_features = base.net[-1].in_features
        self.md = MinibatchDiscrimination(n_features, _positive_int("n_kernels", n_kernels), _positive_int("kernel_dim", kernel_dim))
        self.head = nn.Linear(n_features + n_kernels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, 28)
        return self.head(self.md(self.body(x)))


def dcgan_generator(channels: int = 1, latent_dim: int = 100, width: int = 64) -> Generator28:
    r"""A DCGAN generator :math:`G: \R^{latent\_dim} \to [-1,1]^{channels \times 28 \times 28}`.

    Parameters
    ----------
    channels : {1, 3} or any positive int
        1 for MNIST, 3 for Stacked MNIST (three digits stacked as colour channels).
    latent_dim : int
        Size of :math:`z \sim \mathcal N(0, I)`.
    width : int
        :math:`w`, the channels of the last hidden layer (the first has :math:`2w`).

    See also
    --------
    dcgan_discriminator; Chapter 11 (Stacked MNIST).
    """
    return Generator28(_positive_int("latent_dim", latent_dim), _positive_int("channels", channels), _positive_int("width", width))


def dcgan_discriminator(channels: int = 1, width_factor: float = 1.0, pack: int = 1, width: int = 64, batch_norm: bool = True) -> Discriminator28:
    r"""A DCGAN discriminator for 28×28 images whose size is a fraction of G's.

    Its width is :math:`w_D = \operatorname{round}(\text{width\_factor} \cdot w)`, so
    ``width_factor`` = 1, 0.5, 0.25 give the full, ½ and ¼ discriminators of PacGAN's Table 3
    (the D size that decides whether a GAN covers the 1000 modes of Stacked MNIST). With
    ``pack`` :math:`= m` it is PacGAN's packed discriminator

    .. math::
        D(x_1, \dots, x_m) \quad\text{on}\quad \operatorname{concat}_{\text{channels}}(x_1, \dots, x_m),

    whose first layer has :math:`m` times the input channels (and nothing else changes).

    Parameters
    ----------
    channels : int
        Image channels (1: MNIST, 3: Stacked MNIST).
    width_factor : float
        Positive; :math:`w_D / w`.
    pack : int
        Samples per decision :math:`m`; batches must be multiples of it.
    width : int
        :math:`w`, the generator's width that ``width_factor`` scales.
    batch_norm : bool
        Batch norm after the second convolution (DCGAN); turn off for gradient penalties.

    Returns
    -------
    Discriminator28
        Maps ``(n, channels, 28, 28)`` to logits ``(n / pack, 1)``.

    See also
    --------
    dcgan_generator; Chapter 09 (PacGAN) and Chapter 11.
    """
    if isinstance(width_factor, bool) or not isinstance(width_factor, (int, float)) or not (math.isfinite(width_factor) and width_factor > 0):
        raise ValueError(f"width_factor must be a positive finite number (1, 0.5, 0.25 in PacGAN), got {width_factor!r}")
    width = _positive_int("width", width)
    d_width = round(width * width_factor)
    if d_width < 1:
        raise ValueError(f"width_factor={width_factor} leaves the discriminator with no channels (width={width})")
    return Discriminator28(_positive_int("channels", channels), d_width, _positive_int("pack", pack), bool(batch_norm))


# --- 32×32: the two-discriminator GAN (Zhang, Li & Yu 2018) --------------------------------


class Generator32(nn.Module):
    r"""The "standard CNN" generator of SNGAN (Miyato et al. 2018) for 32×32 images:
    :math:`z \to` FC :math:`4 \times 4 \times 8w` :math:`\to` three deconvolutions 4×4/2
    (:math:`4w, 2w, w` channels) with batch norm and ReLU :math:`\to` conv 3×3 to
    ``channels``, ``tanh``. With :math:`w = 64` it is SNGAN's 512-256-128-64 generator."""

    image_size = 32

    def __init__(self, latent_dim: int = 128, channels: int = 3, width: int = 64):
        super().__init__()
        self.latent_dim, self.channels, self.width = latent_dim, channels, width
        self.fc = nn.Sequential(nn.Linear(latent_dim, 16 * 8 * width, bias=False), nn.BatchNorm1d(16 * 8 * width), nn.ReLU())
        layers: list[nn.Module] = []
        for c_in, c_out in ((8 * width, 4 * width), (4 * width, 2 * width), (2 * width, width)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (n, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(self.fc(z).view(-1, 8 * self.width, 4, 4))


class _Block(nn.Module):
    """Two 3×3 convolutions (pre-activation), optional 2×2 average-pool downsampling, and with
    ``residual`` a shortcut (1×1 conv where the shape changes), as in SNGAN's ResNet D. The
    first block (``first``) skips the leading activation, since it reads the image."""

    def __init__(self, c_in: int, c_out: int, activation: str, down: bool, residual: bool, first: bool):
        super().__init__()
        self.act1 = nn.Identity() if first else _activation(activation)
        self.conv1, self.act2, self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), _activation(activation), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.pool = nn.AvgPool2d(2) if down else nn.Identity()
        self.residual = residual
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if residual and (c_in != c_out or down) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.conv2(self.act2(self.conv1(self.act1(x)))))
        return h + self.pool(self.shortcut(x)) if self.residual else h


class ResidualDiscriminator32(nn.Module):
    r"""D1 of the two-discriminator GAN: residual blocks, then minibatch discrimination.

    Assumed layout (the paper's text is not at hand): SNGAN's CIFAR ResNet discriminator, four
    blocks of width :math:`w` (32→16→8, then 8 and 8), activation, global *average* pooling
    (SNGAN sums; the average keeps the minibatch-discrimination distances at a scale where
    :math:`\exp(-\|\cdot\|_1)` is not zero at initialisation), :class:`gan_notes.remedies.MinibatchDiscrimination`,
    linear to one logit. Without normalisation layers, so its decision on a sample depends on
    the batch only through minibatch discrimination.

    Parameters
    ----------
    residual : bool
        False drops the shortcuts: the same convolutions as a plain CNN (the "without
        ResBlock" ablation).
    minibatch_discrimination : bool
        False: the linear head reads the pooled features directly (the "without MD" ablation).
    activation : {"leaky_relu", "selu", "relu"}
        LeakyReLU(0.2) by default; "selu" is the "SELU in both" ablation.
    """

    image_size = 32

    def __init__(self, channels: int = 3, width: int = 128, *, residual: bool = True, minibatch_discrimination: bool = True, activation: str = "leaky_relu", md_kernels: int = 100, md_dim: int = 5):
        super().__init__()
        self.channels = channels
        blocks = [(channels, width, True, True), (width, width, True, False), (width, width, False, False), (width, width, False, False)]
        self.blocks = nn.Sequential(*(_Block(a, b, activation, down, residual, first) for a, b, down, first in blocks))
        self.act = _activation(activation)
        self.md = MinibatchDiscrimination(width, md_kernels, md_dim) if minibatch_discrimination else nn.Identity()
        self.head = nn.Linear(width + (md_kernels if minibatch_discrimination else 0), 1)
        if activation == "selu":
            _selu_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, 32)
        h = self.act(self.blocks(x)).mean(dim=(2, 3))
        return self.head(self.md(h))


class CNNDiscriminator32(nn.Module):
    r"""D2 of the two-discriminator GAN: SNGAN's "standard CNN" discriminator with SELU.

    Assumed layout: conv 3×3 (:math:`w`), conv 4×4/2 (:math:`w`), conv 3×3 (:math:`2w`), conv
    4×4/2 (:math:`2w`), conv 3×3 (:math:`4w`), conv 4×4/2 (:math:`4w`), conv 3×3 (:math:`8w`),
    each followed by the activation, then linear from the :math:`8w \times 4 \times 4`
    features to one logit. SELU (Klambauer et al. 2017) keeps activations near zero mean and
    unit variance without batch norm; its weights get LeCun-normal initialisation.

    Parameters
    ----------
    activation : {"selu", "leaky_relu", "relu"}
        "leaky_relu" (slope 0.2) is the "without SELU" ablation.
    minibatch_discrimination : bool
        True is the "MD in both" ablation: the layer reads the flattened features (its memory
        grows as batch² × md_kernels × md_dim).
    """

    image_size = 32

    def __init__(self, channels: int = 3, width: int = 64, *, activation: str = "selu", minibatch_discrimination: bool = False, md_kernels: int = 100, md_dim: int = 5):
        super().__init__()
        self.channels = channels
        spec = [(channels, width, 3, 1), (width, width, 4, 2), (width, 2 * width, 3, 1), (2 * width, 2 * width, 4, 2), (2 * width, 4 * width, 3, 1), (4 * width, 4 * width, 4, 2), (4 * width, 8 * width, 3, 1)]
        layers: list[nn.Module] = []
        for c_in, c_out, k, s in spec:
            layers += [nn.Conv2d(c_in, c_out, k, s, 1), _activation(activation)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_features = 8 * width * 16
        self.md = MinibatchDiscrimination(n_features, md_kernels, md_dim) if minibatch_discrimination else nn.Identity()
        self.head = nn.Linear(n_features + (md_kernels if minibatch_discrimination else 0), 1)
        if activation == "selu":
            _selu_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels, 32)
        return self.head(self.md(self.features(x)))


#: The ablations of the two-discriminator GAN: variant name -> switches of :func:`twodisc_models`.
TWODISC_VARIANTS: dict[str, dict] = {
    "full": {},
    "no_md": {"d1_md": False},
    "no_selu": {"d2_activation": "leaky_relu"},
    "md_both": {"d2_md": True},
    "selu_both": {"d1_activation": "selu"},
    "no_resblock": {"residual": False},
}


def twodisc_models(
    variant: str = "full",
    *,
    channels: int = 3,
    latent_dim: int = 128,
    g_width: int = 64,
    d1_width: int = 128,
    d2_width: int = 64,
    md_kernels: int = 100,
    md_dim: int = 5,
) -> tuple[Generator32, ResidualDiscriminator32, CNNDiscriminator32]:
    r"""G, D1 and D2 of the 32×32 two-discriminator GAN (Zhang, Li & Yu 2018), with ablations.

    The book calls this "the seed-003 architecture". D1 is trained on real = 1 / fake = 0 and
    D2 the reverse, so at the optimum :math:`D_1^* = p_{data}/(p_{data}+p_g)` and
    :math:`D_2^* = p_g/(p_{data}+p_g)` (:func:`gan_notes.theory.optimal_dual_discriminators`);
    :func:`gan_notes.image_training.train_image_gan` trains them with ``discriminator2=D2``.

    Assumptions, since the paper's text is not at hand: G is SNGAN's standard CNN generator
    (:class:`Generator32`); D1 is a ResBlock discriminator with minibatch discrimination
    before its linear head (:class:`ResidualDiscriminator32`); D2 is SNGAN's standard CNN
    discriminator with SELU activations (:class:`CNNDiscriminator32`). The two
    discriminators differ on purpose, so that they make different mistakes.

    Parameters
    ----------
    variant : one of ``TWODISC_VARIANTS``
        ``"full"``; ``"no_md"`` (D1 without minibatch discrimination); ``"no_selu"`` (D2 with
        LeakyReLU(0.2)); ``"md_both"`` (D2 also has minibatch discrimination); ``"selu_both"``
        (D1 also uses SELU); ``"no_resblock"`` (D1 without residual shortcuts).
    channels, latent_dim : int
        Image channels (3 for CIFAR-10) and size of :math:`z`.
    g_width, d1_width, d2_width : int
        Base widths (SNGAN's defaults: 64, 128, 64).
    md_kernels, md_dim : int
        :math:`K` and :math:`C` of :class:`gan_notes.remedies.MinibatchDiscrimination` (100 and 5,
        as in Salimans et al.'s code).

    Returns
    -------
    (G, D1, D2)

    See also
    --------
    gan_notes.theory.optimal_dual_discriminators; Chapter 03 (two discriminators) and Chapter 12 (CIFAR-10).
    """
    if variant not in TWODISC_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(TWODISC_VARIANTS)}")
    for name, v in (("channels", channels), ("latent_dim", latent_dim), ("g_width", g_width), ("d1_width", d1_width), ("d2_width", d2_width), ("md_kernels", md_kernels), ("md_dim", md_dim)):
        _positive_int(name, v)
    s = {"d1_md": True, "d2_md": False, "d1_activation": "leaky_relu", "d2_activation": "selu", "residual": True, **TWODISC_VARIANTS[variant]}
    md = {"md_kernels": md_kernels, "md_dim": md_dim}
    g = Generator32(latent_dim, channels, g_width)
    d1 = ResidualDiscriminator32(channels, d1_width, residual=s["residual"], minibatch_discrimination=s["d1_md"], activation=s["d1_activation"], **md)
    d2 = CNNDiscriminator32(channels, d2_width, activation=s["d2_activation"], minibatch_discrimination=s["d2_md"], **md)
    return g, d1, d2
