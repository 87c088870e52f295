"""A small, readable training loop for toy GANs (chapters 01 and 04-06).

Each iteration takes ``d_steps`` discriminator steps and then one generator step, each on
a fresh batch; it records both losses and the discriminator's mean output on real and
generated samples, and keeps snapshots of generated samples (from one fixed batch of
latents) at chosen steps for figures. Options cover Part II: any loss by name, a gradient
penalty, instance noise, weight clipping, freezing either player, and an evaluation (mode
coverage by default) recorded every few steps.
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

from gan_notes.losses import LOSSES
from gan_notes.metrics import mode_coverage
from gan_notes.objective import Method, Nets, discriminator_step_loss, generator_step_loss
from gan_notes.penalties import PENALTIES
from gan_notes.unrolled import adam_state
from gan_notes.validate import integer

__all__ = ["History", "TrainingDiverged", "check_finite", "train_gan"]


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
    evals : list of dict
        One dict per evaluation (``eval_every``), with its ``"step"``.
    """

    d_loss: np.ndarray
    g_loss: np.ndarray
    d_real: np.ndarray
    d_fake: np.ndarray
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    wall_time_s: float = 0.0
    evals: list[dict] = field(default_factory=list)


def _sampler(data) -> Callable[[int], torch.Tensor]:
    if hasattr(data, "sample"):
        return data.sample
    if callable(data):
        return data
    raise TypeError("data must have a .sample(n) method (e.g. gan_notes.toy.ring()) or be a callable n -> tensor")


def check_finite(step: int, name: str, value: torch.Tensor) -> float:
    """The loss as a float; :class:`TrainingDiverged` naming the step and the loss if it is
    NaN or infinite. The loops' NaN guard (the losses themselves never check)."""
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
    penalty: str | None = None,
    penalty_weight: float = 10.0,
    instance_noise: float = 0.0,
    clip: float | None = None,
    train_d: bool = True,
    train_g: bool = True,
    eval_every: int = 0,
    eval_fn: Callable[[int, np.ndarray], dict] | None = None,
    unroll: int = 0,
) -> History:
    r"""Train a GAN by alternating ``d_steps`` D steps and one G step with Adam.

    Each step's losses come from :mod:`gan_notes.objective` (the discriminator's
    :func:`~gan_notes.losses.discriminator_loss` plus its penalty, the generator's
    :func:`~gan_notes.losses.generator_loss`); latents are :math:`z \sim \mathcal N(0, I)`.

    Parameters
    ----------
    generator, discriminator : nn.Module
        G maps (n, latent_dim) to (n, d); D maps (n, d) to logits (n, 1).
    data : object with ``.sample(n)`` or callable ``n -> tensor (n, d)``
        The real distribution, e.g. :func:`gan_notes.toy.ring`.
    latent_dim, steps : int
        Latent size; number of generator steps.
    loss : one of ``gan_notes.losses.LOSSES``
    batch_size, d_steps : int
        ``d_steps`` is also called ``n_critic``.
    lr_g, lr_d : float
        Adam learning rates; ``betas`` Adam's betas.
    snapshot_steps : iterable of int
        Record generated samples after these many G steps (0 = before training).
    snapshot_size : int
        Size of the fixed latent batch used for snapshots.
    callback : callable (step, G, D), optional
        Called at each snapshot step, e.g. to evaluate D on a grid.
    seed : int
        Seeds the run's random numbers: the same seed gives the same run on a CPU. The run
        draws from a fork of torch's generator, so the caller's random state is unchanged.
    device : torch device, optional
        Where to train; defaults to the generator's device.
    progress : bool, optional
        Show a ``tqdm`` progress bar; by default yes, unless the environment sets
        ``TQDM_DISABLE=1`` (as the book's executor does, to keep committed outputs clean).
    penalty : {"gp", "r1", "dragan"}, optional
        A gradient penalty added to the D loss with weight ``penalty_weight`` (no factor 1/2:
        R1 with weight w is the :math:`\gamma/2` convention of Mescheder et al. with
        :math:`\gamma = 2w`).
    instance_noise : float
        Standard deviation of Gaussian noise added to every input D sees (real and fake).
    clip : float, optional
        Clip every D parameter to [-clip, clip] after each D step (WGAN weight clipping).
    train_d, train_g : bool
        Freeze a player by passing False: its steps are skipped (losses still recorded).
    eval_every : int
        Every ``eval_every`` G steps (and at 0), evaluate the generator on the fixed latent
        batch: ``eval_fn(step, samples)`` if given, else, when ``data`` has ``centers`` and
        ``std`` (the toy mixtures), :func:`~gan_notes.metrics.mode_coverage`.
    unroll : int
        Unrolled GAN (Metz et al. 2017): G's loss against D after ``unroll`` look-ahead Adam
        steps continuing D's live optimiser state (:func:`gan_notes.unrolled.unroll`).

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
        integer(name, v, 1)
    for name, v in (("steps", steps), ("unroll", unroll), ("seed", seed)):
        integer(name, v, 0)
    snap_at = sorted(set(int(s) for s in snapshot_steps))
    if any(s < 0 or s > steps for s in snap_at):
        raise ValueError(f"snapshot_steps must lie in [0, steps={steps}], got {snap_at}")
    if penalty is not None and penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; valid: {', '.join(PENALTIES)}")
    if not (instance_noise >= 0 and np.isfinite(instance_noise)):
        raise ValueError(f"instance_noise must be >= 0, got {instance_noise}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be positive, got {clip}")
    integer("eval_every", eval_every, 0)
    method = Method(loss=loss, d_steps=d_steps, penalty=penalty, penalty_weight=penalty_weight,
                    instance_noise=instance_noise, clip=clip, unroll=unroll)
    if eval_every and eval_fn is None:
        if not (hasattr(data, "centers") and hasattr(data, "std")):
            raise ValueError("eval_every needs eval_fn, or data with centers and std (a gan_notes.toy mixture)")
        centers, std = data.centers, float(data.std.reshape(-1)[0])

        def eval_fn(step: int, samples: np.ndarray) -> dict:
            return mode_coverage(samples, centers, std)

    sample = _sampler(data)
    if device is None:
        device = next(generator.parameters()).device
    generator.to(device)
    discriminator.to(device)

    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return _train(generator, discriminator, sample, method, device, latent_dim, steps, batch_size, lr_g, lr_d, betas,
                      snap_at, snapshot_size, callback, seed, progress, train_d, train_g, eval_every, eval_fn)


def _train(generator, discriminator, sample, method, device, latent_dim, steps, batch_size, lr_g, lr_d, betas,
           snap_at, snapshot_size, callback, seed, progress, train_d, train_g, eval_every, eval_fn) -> History:
    fixed_z = torch.randn(snapshot_size, latent_dim, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)
    nets = Nets({"G": generator, "D": discriminator})
    rec = {k: np.zeros(steps) for k in ("d_loss", "g_loss", "d_real", "d_fake")}
    snapshots: dict[int, np.ndarray] = {}
    evals: list[dict] = []

    def snapshot(step: int) -> None:
        evaluate = bool(eval_every) and step % eval_every == 0
        if step in snap_at or evaluate:
            with torch.no_grad():
                fake_now = generator(fixed_z).cpu().numpy()
            if step in snap_at:
                snapshots[step] = fake_now
                if callback is not None:
                    callback(step, generator, discriminator)
            if evaluate:
                evals.append({"step": step, **eval_fn(step, fake_now)})

    noise = bool(method.instance_noise)
    if progress is None:
        # tqdm.notebook ignores TQDM_DISABLE, so honour it here.
        progress = os.environ.get("TQDM_DISABLE", "") not in ("1", "true", "True")
    start = time.perf_counter()
    snapshot(0)
    for t in tqdm(range(1, steps + 1), disable=not progress, desc=f"GAN ({method.loss})"):
        for _ in range(method.d_steps):
            real = sample(batch_size).to(device)
            with torch.no_grad():
                fake = generator(torch.randn(batch_size, latent_dim, device=device))
            r = {"real": real, "fake": fake}
            if noise:
                r["noise_real"], r["noise_fake"] = torch.randn_like(real), torch.randn_like(fake)
            d_loss, terms = discriminator_step_loss(method, nets, r)
            rec["d_loss"][t - 1] = check_finite(t, "discriminator", d_loss)
            if train_d:
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                if method.clip is not None:
                    with torch.no_grad():
                        for w in discriminator.parameters():
                            w.clamp_(-method.clip, method.clip)
        rec["d_real"][t - 1] = float(terms["d_real"])
        rec["d_fake"][t - 1] = float(terms["d_fake"])

        r = {"z": torch.randn(batch_size, latent_dim, device=device)}
        if noise:
            r["noise_fake"] = torch.randn(batch_size, *real.shape[1:], device=device)
        if method.unroll:
            r["real"] = sample(batch_size).to(device)
        adam = adam_state(opt_d, dict(discriminator.named_parameters())) if method.unroll else None
        g_loss = generator_step_loss(method, nets, r, adam=adam)
        rec["g_loss"][t - 1] = check_finite(t, "generator", g_loss)
        if train_g:
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        snapshot(t)
    return History(**rec, snapshots=snapshots, wall_time_s=time.perf_counter() - start, evals=evals)
