r"""Training image GANs at scale (chapters 11 and 12): checkpoints, resuming, throughput.

:func:`train_image_gan` is :func:`gan_notes.train.train_gan`'s loop for convolutional
networks, with what a long run on a GPU (or a Colab session that disconnects) needs:

- a checkpoint (G, D, optimizers, step, random-number states, the data sampler, the history)
  written atomically every few steps, and resumed from: a run interrupted at step :math:`k`
  and resumed to :math:`N` ends exactly where an uninterrupted :math:`N`-step run ends;
- the speed options: bf16 autocast on CUDA, channels-last memory, ``torch.compile`` (skipped
  with a warning where it does not work);
- a second discriminator with the roles of real and fake swapped (the two-discriminator GAN
  of :func:`gan_notes.dcgan.twodisc_models`);
- throughput (steps/s, images/s) in the returned :class:`ImageHistory`.

``python -m gan_notes.image_training bench`` prints DCGAN-MNIST training throughput, eager
fp32 against the optimised path (:func:`benchmark`).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gan_notes.losses import LOSSES, discriminator_loss, dual_discriminator_loss, dual_generator_loss, generator_loss
from gan_notes.train import History, _check_finite, _check_logits

__all__ = ["CheckpointError", "ImageHistory", "train_image_gan", "image_grid", "benchmark"]

_FORMAT = "gan_notes.image_training/1"
_RECORDS = ("d_loss", "g_loss", "d_real", "d_fake", "d2_loss")


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to this run (other models or settings)."""


@dataclass
class ImageHistory(History):
    """:class:`gan_notes.train.History` plus what a long image run needs.

    Attributes
    ----------
    d_loss, g_loss, d_real, d_fake : arrays (steps,)
        As in ``History``, for every step of the run, those before a resume included.
    snapshots : dict step -> array (sample_size, C, H, W)
        Images from a fixed latent batch after ``step`` G steps (G in eval mode); also
        available as ``samples``; :func:`image_grid` tiles them.
    d2_loss : array (steps,) or None
        The second discriminator's loss, with ``discriminator2``.
    start_step : int
        The step this call resumed from (0 for a fresh run).
    step_times : array (steps - start_step,)
        Seconds from the start of this call to the end of each of its steps.
    wall_time_s, steps_per_s, images_per_s : float
        For this call only; one step is ``d_steps`` D updates and one G update, and images/s
        counts the generator's batch, ``batch_size`` per step.
    options : dict
        The options in effect: device, amp, channels_last, compiled (False if
        ``torch.compile`` failed and the run fell back to eager).
    """

    d2_loss: np.ndarray | None = None
    start_step: int = 0
    step_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steps_per_s: float = 0.0
    images_per_s: float = 0.0
    options: dict = field(default_factory=dict)

    @property
    def samples(self) -> dict[int, np.ndarray]:
        return self.snapshots


class _TensorSampler:
    """Minibatches of a tensor, shuffled anew each epoch (a last partial batch is dropped),
    drawn with a generator of its own, so that its state can be checkpointed."""

    def __init__(self, data: torch.Tensor, seed: int):
        self.data, self.gen, self.pos = data, torch.Generator().manual_seed(seed), 0
        self.perm = torch.randperm(len(data), generator=self.gen)

    def __call__(self, n: int) -> torch.Tensor:
        if self.pos + n > len(self.data):
            self.perm, self.pos = torch.randperm(len(self.data), generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + n]
        self.pos += n
        return self.data[idx.to(self.data.device)]

    def state_dict(self) -> dict:
        return {"generator": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])


def _batch_source(data, batch_size: int, seed: int):
    """Return (sample: n -> batch, checkpointable sampler or None)."""
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise ValueError(f"data must be an image tensor (N, C, H, W), got shape {tuple(data.shape)}")
        if len(data) < batch_size:
            raise ValueError(f"batch_size={batch_size} exceeds the {len(data)} images in data")
        sampler = _TensorSampler(data, seed)
        return sampler, sampler
    if isinstance(data, np.ndarray):
        raise TypeError("data must be a torch tensor; convert it with torch.from_numpy")
    if hasattr(data, "sample") or callable(data):
        return (data.sample if hasattr(data, "sample") else data), None
    if isinstance(data, Iterable):
        iterator = [iter(data)]

        def next_batch(n: int) -> torch.Tensor:
            try:
                batch = next(iterator[0])
            except StopIteration:  # a new epoch of a re-iterable loader
                iterator[0] = iter(data)
                batch = next(iterator[0])
            return batch[0] if isinstance(batch, (tuple, list)) else batch

        return next_batch, None
    raise TypeError("data must be an image tensor, a callable n -> images, or an iterable of batches (a DataLoader)")


def _to_model_range(x: torch.Tensor) -> torch.Tensor:
    # uint8 pixels in [0, 255] -> [-1, 1], the range of G's tanh; floats are taken as they are.
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x


def _maybe_compile(module: nn.Module, example: torch.Tensor, autocast) -> tuple[Callable, bool]:
    """``torch.compile(module)`` if a trial forward and backward on a copy works, else the
    module itself and a warning (no compiler, unsupported platform, old torch)."""
    if not hasattr(torch, "compile"):
        warnings.warn("torch.compile is not available in this torch; training eagerly", stacklevel=3)
        return module, False
    try:
        trial = torch.compile(copy.deepcopy(module))
        with autocast():
            out = trial(example)
        out.float().sum().backward()
        return torch.compile(module), True
    except Exception as e:  # any failure of the compiler stack means: run eagerly
        warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training eagerly", stacklevel=3)
        return module, False


def _save_atomic(obj: dict, path: str) -> None:
    # Write to a temporary file in the same directory, then rename: a crash or a Colab
    # disconnect mid-write leaves the previous checkpoint intact.
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _load_checkpoint(path: str, device: torch.device, config: dict) -> dict:
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path!r} (corrupt, truncated or not a torch file): {type(e).__name__}: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise CheckpointError(f"{path!r} is not a gan_notes.image_training checkpoint")
    diff = {k: (ckpt["config"].get(k), v) for k, v in config.items() if ckpt["config"].get(k) != v}
    if diff:
        details = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"checkpoint {path!r} was made with other settings ({details}); pass resume=False to start afresh")
    return ckpt


def train_image_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data,
    *,
    steps: int,
    latent_dim: int | None = None,
    batch_size: int = 64,
    loss: str = "non_saturating",
    d_steps: int = 1,
    lr: float = 2e-4,
    lr_d: float | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
    discriminator2: nn.Module | None = None,
    device: torch.device | str | None = None,
    amp: bool = False,
    cpu_amp: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = True,
    sample_steps: Iterable[int] = (),
    sample_size: int = 64,
    progress: bool | None = None,
    seed: int = 0,
) -> ImageHistory:
    r"""Train an image GAN with Adam, ``d_steps`` D updates per G update, resumably.

    The losses are :func:`~gan_notes.losses.discriminator_loss` and
    :func:`~gan_notes.losses.generator_loss`, computed in float32 from the logits;
    :math:`z \sim \mathcal N(0, I)`. With ``discriminator2`` (the two-discriminator GAN),
    D2 plays D's game with the roles of real and generated images swapped: D1 and D2 minimise
    :func:`~gan_notes.losses.dual_discriminator_loss` (D1: real = 1, fake = 0; D2: real = 0,
    fake = 1), G minimises :func:`~gan_notes.losses.dual_generator_loss`,

    .. math::
        L_G = \E_z\,\mathrm{softplus}(-a_1(G(z))) + \E_z\,\mathrm{softplus}(a_2(G(z)))
        \quad\text{(G maximises } \log D_1(G(z)) + \log(1 - D_2(G(z))) \text{)}

    for ``"non_saturating"``, or, with ``"minimax"``, the G terms of the value function. So the optimal discriminators
    are :math:`D_1^* = p_{data}/(p_{data}+p_g)` and :math:`D_2^* = p_g/(p_{data}+p_g)`, as in
    :func:`gan_notes.theory.optimal_dual_discriminators`.

    Parameters
    ----------
    generator, discriminator : nn.Module
        G maps ``(n, latent_dim)`` to images ``(n, C, H, W)``; D maps images to logits
        (e.g. :mod:`gan_notes.dcgan`).
    data : tensor (N, C, H, W), callable ``n -> images``, or iterable of batches
        Real images in [-1, 1] (uint8 tensors in [0, 255] are rescaled). A tensor is
        sampled in shuffled epochs with a generator of its own; that sampler's state is in
        the checkpoint, so resuming is exact. A callable (which should use torch's global
        generator, also checkpointed) gets ``batch_size``; an iterable (a ``DataLoader``,
        whose batches set the batch size) is restarted when exhausted, and its position is
        *not* checkpointed.
    steps : int
        Total number of G steps, those before a resume included.
    latent_dim : int, optional
        Defaults to ``generator.latent_dim``.
    batch_size, d_steps : int
    loss : one of ``gan_notes.losses.LOSSES`` (``"minimax"`` or ``"non_saturating"`` with ``discriminator2``)
    lr, lr_d, betas : Adam's settings; ``lr_d`` defaults to ``lr``.
    discriminator2 : nn.Module, optional
        A second discriminator, trained on real = 0 / fake = 1 (see above).
    device : torch device, optional
        Defaults to the generator's.
    amp : bool
        bf16 autocast for the forward passes on CUDA (no loss scaling is needed with bf16).
        On the CPU it does nothing unless ``cpu_amp=True`` too: CPU bf16 is slow on most
        processors and only useful to test the bf16 code path.
    channels_last : bool
        Store models and batches channels-last (NHWC), which cuDNN's convolutions prefer.
    compile : bool
        ``torch.compile`` G and D, after a trial on copies; if that fails (no compiler, old
        torch), warn and train eagerly (``options["compiled"]`` says which happened).
    checkpoint_path : path, optional
        Where to save and resume from; saved every ``checkpoint_every`` steps (0: only at the
        end), atomically (a temporary file renamed over the old one).
    resume : bool
        Resume from ``checkpoint_path`` if it exists; False ignores (and later overwrites) it.
    sample_steps : iterable of int
        Record ``sample_size`` images from a fixed latent batch after these G steps.
    progress : bool, optional
        A ``tqdm`` bar with ETA; by default shown unless ``TQDM_DISABLE=1``.
    seed : int
        Seeds torch's generator (and the data sampler) of a fresh run: on a CPU, the same
        seed and models give the same run.

    Returns
    -------
    ImageHistory

    Raises
    ------
    ValueError
        Bad settings, or generated images whose shape differs from the data's.
    CheckpointError
        The checkpoint is unreadable or made with other models or settings.
    TrainingDiverged
        A loss turned NaN or infinite; the message names the step and the loss.

    See also
    --------
    gan_notes.train.train_gan; gan_notes.dcgan; Chapter 11 (Stacked MNIST) and Chapter 12 (CIFAR-10).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    if discriminator2 is not None and loss not in ("minimax", "non_saturating"):
        raise ValueError(f"discriminator2 needs a logistic loss ('minimax' or 'non_saturating'), got {loss!r}")
    latent_dim = getattr(generator, "latent_dim", None) if latent_dim is None else latent_dim
    if latent_dim is None:
        raise ValueError("latent_dim is required (the generator has no latent_dim attribute)")
    for name, v in (("latent_dim", latent_dim), ("batch_size", batch_size), ("d_steps", d_steps), ("sample_size", sample_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    for name, v in (("steps", steps), ("checkpoint_every", checkpoint_every), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    lr_d = lr if lr_d is None else lr_d
    if not (lr > 0 and lr_d > 0):
        raise ValueError(f"learning rates must be positive, got lr={lr}, lr_d={lr_d}")
    sample_at = sorted(set(int(s) for s in sample_steps))
    if any(s < 0 or s > steps for s in sample_at):
        raise ValueError(f"sample_steps must lie in [0, steps={steps}], got {sample_at}")

    dev = torch.device(device) if device is not None else next(generator.parameters()).device
    use_amp = bool(amp) and (dev.type == "cuda" or bool(cpu_amp))
    fmt = torch.channels_last if channels_last else torch.preserve_format
    discriminators = [d for d in (discriminator, discriminator2) if d is not None]
    for m in (generator, *discriminators):
        m.to(device=dev, memory_format=fmt)
    sample, sampler = _batch_source(data, batch_size, seed + 2)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16) if use_amp else nullcontext()

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return _to_model_range(x).to(dev, non_blocking=True).contiguous(memory_format=fmt)

    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    opt_ds = [torch.optim.Adam(d.parameters(), lr=lr_d, betas=betas) for d in discriminators]
    config = {"loss": loss, "batch_size": batch_size, "latent_dim": latent_dim, "d_steps": d_steps, "lr": lr, "lr_d": lr_d, "betas": list(betas), "seed": seed, "two_discriminators": discriminator2 is not None}
    rec = {k: np.zeros(steps) for k in _RECORDS}
    snapshots: dict[int, np.ndarray] = {}
    start = 0

    torch.manual_seed(seed)
    path = os.fspath(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and resume and os.path.exists(path):
        ckpt = _load_checkpoint(path, dev, config)
        start = int(ckpt["step"])
        if start > steps:
            raise CheckpointError(f"checkpoint {path!r} is at step {start}, beyond steps={steps}")
        try:
            for module, state in zip((generator, *discriminators), ckpt["models"]):
                module.load_state_dict(state)
            for opt, state in zip((opt_g, *opt_ds), ckpt["optimizers"]):
                opt.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"checkpoint {path!r} does not match these models: {str(e)[:300]}") from e
        for k in _RECORDS:
            rec[k][:start] = ckpt["history"][k].cpu().numpy()
        snapshots = {int(s): x.cpu().numpy() for s, x in ckpt["history"]["samples"].items()}
        torch.set_rng_state(ckpt["rng"]["cpu"].cpu())
        if dev.type == "cuda" and ckpt["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), dev)
        if sampler is not None and ckpt["sampler"] is not None:
            sampler.load_state_dict({k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in ckpt["sampler"].items()})

    def save(step: int) -> None:
        history = {k: torch.from_numpy(rec[k][:step].copy()) for k in _RECORDS}
        history["samples"] = {s: torch.from_numpy(x) for s, x in snapshots.items()}
        _save_atomic(
            {
                "format": _FORMAT,
                "step": step,
                "config": config,
                "models": [m.state_dict() for m in (generator, *discriminators)],
                "optimizers": [o.state_dict() for o in (opt_g, *opt_ds)],
                "rng": {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None},
                "sampler": sampler.state_dict() if sampler is not None else None,
                "history": history,
            },
            path,
        )

    # A fixed latent batch from its own generator: samples are comparable across steps and
    # drawing them consumes nothing from the training stream.
    fixed_z = torch.randn(sample_size, latent_dim, generator=torch.Generator().manual_seed(seed + 1)).to(dev)

    def snapshot(step: int) -> None:
        if step in sample_at and step not in snapshots:
            generator.eval()  # eval: batch norm uses its running statistics and does not update them
            with torch.no_grad(), autocast():
                snapshots[step] = generator(fixed_z).float().cpu().numpy()
            generator.train()

    g_fwd, d_fwds, compiled = generator, list(discriminators), False
    if compile and start < steps:
        # Trial inputs of the training shapes, from a generator of their own (no draw from
        # the training stream, so compiling does not change the run's random numbers).
        z_example = torch.randn(batch_size, latent_dim, generator=torch.Generator().manual_seed(seed + 3)).to(dev)
        generator.eval()
        with torch.no_grad():
            example = generator(z_example).contiguous(memory_format=fmt)
        generator.train()
        g_fwd, compiled = _maybe_compile(generator, z_example, autocast)
        if compiled:
            d_fwds = [_maybe_compile(d, example, autocast)[0] for d in discriminators]

    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "") not in ("1", "true", "True")
    times: list[float] = []
    t0 = time.perf_counter()
    snapshot(start)
    bar = tqdm(range(start + 1, steps + 1), initial=start, total=steps, disable=not progress, desc=f"image GAN ({loss})")
    for t in bar:
        for _ in range(d_steps):
            real = prepare(sample(batch_size))
            z = torch.randn(len(real), latent_dim, device=dev)
            with autocast():
                with torch.no_grad():
                    fake = g_fwd(z)
                if fake.shape[1:] != real.shape[1:]:
                    raise ValueError(f"generated images have shape {tuple(fake.shape[1:])} but the data's are {tuple(real.shape[1:])}")
                logits = [(d(real).float(), d(fake).float()) for d in d_fwds]
            _check_logits(t, "discriminator", *logits[0])
            if discriminator2 is not None:
                _check_logits(t, "second discriminator", *logits[1])
            d_loss = discriminator_loss(loss, *logits[0])
            total = d_loss if discriminator2 is None else dual_discriminator_loss(*logits[0], *logits[1])
            for opt in opt_ds:
                opt.zero_grad(set_to_none=True)
            total.backward()
            for opt in opt_ds:
                opt.step()
        rec["d_loss"][t - 1] = _check_finite(t, "discriminator", d_loss)
        if discriminator2 is not None:  # D2's own loss: the dual loss minus D1's
            rec["d2_loss"][t - 1] = _check_finite(t, "second discriminator", total - d_loss)
        rec["d_real"][t - 1] = float(torch.sigmoid(logits[0][0].detach()).mean())
        rec["d_fake"][t - 1] = float(torch.sigmoid(logits[0][1].detach()).mean())

        with autocast():
            fake = g_fwd(torch.randn(batch_size, latent_dim, device=dev))
            g_logits = [d(fake).float() for d in d_fwds]
        _check_logits(t, "generator", *g_logits)
        if discriminator2 is None:
            g_loss = generator_loss(loss, g_logits[0])
        else:
            g_loss = dual_generator_loss(*g_logits, non_saturating=loss == "non_saturating")
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        rec["g_loss"][t - 1] = _check_finite(t, "generator", g_loss)
        snapshot(t)
        times.append(time.perf_counter() - t0)
        if progress and t % 10 == 0:
            bar.set_postfix(d_loss=f"{rec['d_loss'][t - 1]:.3f}", g_loss=f"{rec['g_loss'][t - 1]:.3f}", refresh=False)
        if path is not None and checkpoint_every and t % checkpoint_every == 0 and t < steps:
            save(t)
    if path is not None:
        save(steps)

    wall = time.perf_counter() - t0
    n_run = steps - start
    rate = n_run / wall if n_run and wall > 0 else 0.0
    return ImageHistory(
        d_loss=rec["d_loss"], g_loss=rec["g_loss"], d_real=rec["d_real"], d_fake=rec["d_fake"],
        snapshots=snapshots, wall_time_s=wall, d2_loss=rec["d2_loss"] if discriminator2 is not None else None,
        start_step=start, step_times=np.asarray(times), steps_per_s=rate, images_per_s=rate * batch_size,
        options={"device": str(dev), "amp": use_amp, "channels_last": bool(channels_last), "compiled": compiled},
    )  # fmt: skip


def image_grid(images, nrow: int = 8, padding: int = 2) -> np.ndarray:
    r"""Tile images ``(n, C, H, W)`` in [-1, 1] into one ``(rows, cols, C)`` array in [0, 1]
    for ``plt.imshow``: image :math:`i` goes to row :math:`\lfloor i/nrow \rfloor`, column
    :math:`i \bmod nrow`; :math:`x \mapsto (x + 1)/2`, clipped; ``padding`` pixels of 1 (white) between.

    See also
    --------
    train_image_gan (its ``samples``); Chapter 11.
    """
    x = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, dtype=float)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"images must have shape (n, C, H, W) with n >= 1, got {x.shape}")
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1 or isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"nrow must be a positive int and padding a non-negative int, got {nrow!r}, {padding!r}")
    n, c, h, w = x.shape
    rows, cols = -(-n // nrow), min(n, nrow)
    grid = np.ones((rows * (h + padding) + padding, cols * (w + padding) + padding, c))
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top : top + h, left : left + w] = np.clip((x[i].transpose(1, 2, 0) + 1) / 2, 0, 1)
    return grid


def benchmark(*, steps: int = 30, batch_size: int = 64, device: str | None = None, warmup: int = 5, rounds: int = 2, compile: bool | None = None, channels: int = 1, width: int = 64) -> dict[str, dict]:
    r"""Training throughput of the DCGAN for MNIST, eager fp32 against the optimised path.

    Both paths train :func:`~gan_notes.dcgan.dcgan_generator` and
    :func:`~gan_notes.dcgan.dcgan_discriminator` (non-saturating loss) on *random* images of
    MNIST's shape kept on the device, so no data loading is measured. The optimised path is
    channels-last, plus bf16 autocast on CUDA and ``torch.compile`` where ``compile`` is true
    (by default only on CUDA, as compiling takes a minute or more on a CPU). Throughput is
    :math:`(steps)/(t_{warmup+steps} - t_{warmup})`, excluding the first ``warmup`` steps
    (compilation, cuDNN autotuning), and the best of ``rounds`` alternating runs of the two
    paths (on a shared machine, the best is the least disturbed). Each step synchronises with
    the device (the NaN guard reads the losses).

    ``width`` is G's (and D's) width :math:`w` (64: the book's DCGAN).

    Returns
    -------
    dict
        ``{"eager": {...}, "optimised": {...}}`` with ``steps_per_s``, ``images_per_s`` and
        the options in effect.

    See also
    --------
    train_image_gan; Chapter 11.
    """
    from gan_notes.dcgan import dcgan_discriminator, dcgan_generator

    if min(steps, warmup, rounds) < 1:
        raise ValueError(f"steps, warmup and rounds must be positive, got {steps}, {warmup}, {rounds}")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if compile is None:
        compile = dev.type == "cuda"
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = torch.rand(max(4 * batch_size, 1024), channels, 28, 28, device=dev) * 2 - 1
    results: dict[str, dict] = {}
    for _ in range(rounds):
        for name, opts in (("eager", {}), ("optimised", {"channels_last": True, "amp": True, "compile": compile})):
            torch.manual_seed(0)
            g, d = dcgan_generator(channels, width=width), dcgan_discriminator(channels, width=width)
            h = train_image_gan(g, d, data, steps=warmup + steps, batch_size=batch_size, device=dev, progress=False, **opts)
            rate = steps / (h.step_times[-1] - h.step_times[warmup - 1])
            if rate > results.get(name, {}).get("steps_per_s", 0.0):
                results[name] = {"steps_per_s": rate, "images_per_s": rate * batch_size, **h.options}
    return results


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_notes.image_training", description="Image GAN training utilities.")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="DCGAN-MNIST training throughput, eager fp32 vs optimised (random data of MNIST shape)")
    bench.add_argument("--steps", type=int, default=30, help="timed steps per path (after --warmup)")
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--batch", type=int, default=64)
    bench.add_argument("--rounds", type=int, default=2, help="alternating runs of both paths; the best of each is reported")
    bench.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    bench.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile in the optimised path (default: on CUDA only)")
    bench.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = benchmark(steps=args.steps, batch_size=args.batch, device=args.device, warmup=args.warmup, rounds=args.rounds, compile=args.compile)
    print(f"DCGAN-MNIST training throughput, random data of MNIST shape (1x28x28) on the device, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, best of {args.rounds} rounds; torch {torch.__version__}, threads {torch.get_num_threads()}")  # fmt: skip
    for name, x in r.items():
        print(f"  {name:9s}  {x['steps_per_s']:8.2f} steps/s  {x['images_per_s']:9.1f} images/s  "
              f"(device={x['device']}, channels_last={x['channels_last']}, bf16={x['amp']}, compiled={x['compiled']})")  # fmt: skip
    print(f"  ratio optimised/eager: {r['optimised']['steps_per_s'] / r['eager']['steps_per_s']:.2f}")


if __name__ == "__main__":
    _main()
