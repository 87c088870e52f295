"""A small, readable training loop for toy GANs (chapter 01).

Each iteration takes ``d_steps`` discriminator steps and then one generator step, each on
a fresh batch; it records both losses and the discriminator's mean output on real and
generated samples, and keeps snapshots of generated samples (from one fixed batch of
latents) at chosen steps for figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gan_notes.losses import LOSSES, discriminator_loss, generator_loss

__all__ = ["History", "TrainingDiverged", "train_gan"]


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite; the message names the step and the loss."""


@dataclass
class History:
    """What a run recorded, one entry per generator step.

    Attributes
    ----------
    d_loss, g_loss : arrays (steps,)
        The discriminator's loss (its last D step of the iteration) and the generator's loss.
    d_real, d_fake : arrays (steps,)
        Mean of D(x) = sigmoid(logit) on the real and the generated batch of the D step.
    snapshots : dict step -> array (snapshot_size, d)
        Generated samples from a fixed latent batch, after ``step`` generator steps.
    wall_time_s : float
        Seconds the loop took.
    """

    d_loss: np.ndarray
    g_loss: np.ndarray
    d_real: np.ndarray
    d_fake: np.ndarray
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    wall_time_s: float = 0.0


def _sampler(data) -> Callable[[int], torch.Tensor]:
    if hasattr(data, "sample"):
        return data.sample
    if callable(data):
        return data
    raise TypeError("data must have a .sample(n) method (e.g. gan_notes.toy.ring()) or be a callable n -> tensor")


def _check_logits(step: int, name: str, *logits: torch.Tensor) -> None:
    # NaN logits make the loss NaN; stop here with the step and the loss, before the loss
    # functions reject the NaN input with a plain ValueError.
    if any(bool(torch.isnan(x.detach()).any()) for x in logits):
        raise TrainingDiverged(
            f"step {step}: the {name} loss is nan (the discriminator returned NaN logits); "
            "lower the learning rate or check the data"
        )


def _check_finite(step: int, name: str, value: torch.Tensor) -> float:
    v = float(value.detach())
    if not np.isfinite(v):
        raise TrainingDiverged(f"step {step}: the {name} loss is {v}; lower the learning rate or check the data")
    return v


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data,
    *,
    latent_dim: int,
    steps: int,
    loss: str = "non_saturating",
    batch_size: int = 256,
    d_steps: int = 1,
    lr_g: float = 1e-3,
    lr_d: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    snapshot_steps: Iterable[int] = (),
    snapshot_size: int = 1000,
    callback: Callable[[int, nn.Module, nn.Module], None] | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> History:
    r"""Train a GAN by alternating ``d_steps`` D steps and one G step with Adam.

    The discriminator minimises :func:`~gan_notes.losses.discriminator_loss`, the generator
    :func:`~gan_notes.losses.generator_loss`; latents are :math:`z \sim \mathcal N(0, I)`.

    Parameters
    ----------
    generator, discriminator : nn.Module
        G maps (n, latent_dim) to (n, d); D maps (n, d) to logits (n, 1).
    data : object with ``.sample(n)`` or callable ``n -> tensor (n, d)``
        The real distribution, e.g. :func:`gan_notes.toy.ring`.
    latent_dim, steps : int
        Latent size; number of generator steps.
    loss : {"minimax", "non_saturating"}
    batch_size, d_steps : int
    lr_g, lr_d : float
        Adam learning rates; ``betas`` Adam's betas.
    snapshot_steps : iterable of int
        Record generated samples after these many G steps (0 = before training).
    snapshot_size : int
        Size of the fixed latent batch used for snapshots.
    callback : callable (step, G, D), optional
        Called at each snapshot step, e.g. to evaluate D on a grid.
    seed : int
        Seeds torch's generator at the start: the same seed gives the same run on a CPU.
    device : torch device, optional
        Where to train; defaults to the generator's device.
    progress : bool, optional
        Show a ``tqdm`` progress bar; by default yes, unless the environment sets
        ``TQDM_DISABLE=1`` (as the book's executor does, to keep committed outputs clean).

    Returns
    -------
    History

    Raises
    ------
    ValueError
        Bad sizes or an unknown loss.
    TrainingDiverged
        A loss turned NaN or infinite; the message gives the step and the loss.

    See also
    --------
    gan_notes.losses; Chapter 01 (the training loop written out by hand first).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    for name, v in (("latent_dim", latent_dim), ("batch_size", batch_size), ("d_steps", d_steps), ("snapshot_size", snapshot_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    snap_at = sorted(set(int(s) for s in snapshot_steps))
    if any(s < 0 or s > steps for s in snap_at):
        raise ValueError(f"snapshot_steps must lie in [0, steps={steps}], got {snap_at}")
    sample = _sampler(data)
    if device is None:
        device = next(generator.parameters()).device
    generator.to(device)
    discriminator.to(device)

    torch.manual_seed(seed)
    fixed_z = torch.randn(snapshot_size, latent_dim, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)
    rec = {k: np.zeros(steps) for k in ("d_loss", "g_loss", "d_real", "d_fake")}
    snapshots: dict[int, np.ndarray] = {}

    def snapshot(step: int) -> None:
        if step in snap_at:
            with torch.no_grad():
                snapshots[step] = generator(fixed_z).cpu().numpy()
            if callback is not None:
                callback(step, generator, discriminator)

    if progress is None:
        # tqdm.notebook ignores TQDM_DISABLE, so honour it here.
        progress = os.environ.get("TQDM_DISABLE", "") not in ("1", "true", "True")
    start = time.perf_counter()
    snapshot(0)
    for t in tqdm(range(1, steps + 1), disable=not progress, desc=f"GAN ({loss})"):
        for _ in range(d_steps):
            real = sample(batch_size).to(device)
            with torch.no_grad():
                fake = generator(torch.randn(batch_size, latent_dim, device=device))
            real_logits, fake_logits = discriminator(real), discriminator(fake)
            _check_logits(t, "discriminator", real_logits, fake_logits)
            d_loss = discriminator_loss(loss, real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        rec["d_loss"][t - 1] = _check_finite(t, "discriminator", d_loss)
        rec["d_real"][t - 1] = float(torch.sigmoid(real_logits.detach()).mean())
        rec["d_fake"][t - 1] = float(torch.sigmoid(fake_logits.detach()).mean())

        fake = generator(torch.randn(batch_size, latent_dim, device=device))
        g_logits = discriminator(fake)
        _check_logits(t, "generator", g_logits)
        g_loss = generator_loss(loss, g_logits)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        rec["g_loss"][t - 1] = _check_finite(t, "generator", g_loss)
        snapshot(t)
    return History(**rec, snapshots=snapshots, wall_time_s=time.perf_counter() - start)
