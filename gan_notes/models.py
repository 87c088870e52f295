"""Small networks for the toy chapters: multilayer perceptrons for G and D."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["mlp"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "selu": nn.SELU,
}


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (128, 128), activation: str = "relu") -> nn.Sequential:
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
        layers += [nn.Linear(a, b), _ACTIVATIONS[activation]()]
    layers.append(nn.Linear(widths[-1], out_dim))
    return nn.Sequential(*layers)
