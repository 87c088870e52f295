r"""Training image GANs at scale (chapters 11 and 12): one loop, resumable and fast.

:func:`train_image_gan` is :func:`gan_notes.train.train_gan`'s loop for convolutional
networks, with what a long run on a GPU (or a Colab session that disconnects) needs:

- a checkpoint (G, D, optimizers, step, random-number states, the data sampler, the history)
  written atomically every few steps (:mod:`gan_notes.checkpoint`), and resumed from: a run
  interrupted at step :math:`k` and resumed to :math:`N` ends exactly where an uninterrupted
  :math:`N`-step run ends;
- the speed options: bf16 autocast on CUDA, channels-last memory, ``torch.compile`` (skipped
  with a warning where it does not work), and losses read back from the device only every
  ``check_every`` steps (:mod:`gan_notes.image_bench` measures them);
- the book's remedies at image scale: a second discriminator with the roles of real and fake
  swapped (:func:`gan_notes.dcgan.twodisc_models`), gradient penalties, unrolled G steps;
- throughput (steps/s, images/s) in the returned :class:`ImageHistory`.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from gan_notes.batches import batch_source as _batch_source
from gan_notes.batches import to_model_range as _to_model_range
from gan_notes.checkpoint import CheckpointError, load_checkpoint, rng_state, save_atomic, set_rng_state
from gan_notes.losses import LOSSES, TWO_DISCRIMINATOR_LOSSES
from gan_notes.objective import Method, Nets, discriminator_step_loss, generator_step_loss
from gan_notes.penalties import PENALTIES
from gan_notes.train import History, TrainingDiverged
from gan_notes.unrolled import adam_state

__all__ = ["ImageHistory", "train_image_gan"]

_FORMAT = "gan_notes.image_training/3"
_RECORDS = ("d_loss", "g_loss", "d_real", "d_fake", "d2_loss")


@dataclass
class ImageHistory(History):
    """:class:`gan_notes.train.History` plus what a long image run needs.

    Attributes
    ----------
    d_loss, g_loss, d_real, d_fake : arrays (steps,)
        As in ``History``, for every step of the run, those before a resume included.
    snapshots : dict step -> array (sample_size, C, H, W)
        Images from a fixed latent batch after ``step`` G steps (G in eval mode); also
        available as ``samples``; :func:`gan_notes.plotting.image_grid` tiles them.
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
        ``torch.compile`` failed and the run fell back to eager), check_every.
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


def _maybe_compile(module: nn.Module, example: torch.Tensor, autocast, mode: str | None) -> tuple[Callable, bool]:
    """``torch.compile(module, mode=mode)`` if a trial forward and backward on a copy works,
    else the module itself and a warning (no compiler, unsupported platform, old torch)."""
    if not hasattr(torch, "compile"):
        warnings.warn("torch.compile is not available in this torch; training eagerly", stacklevel=3)
        return module, False
    try:
        trial = torch.compile(copy.deepcopy(module), mode=mode)
        with autocast():
            out = trial(example)
        out.float().sum().backward()
        return torch.compile(module, mode=mode), True
    except Exception as e:  # any failure of the compiler stack means: run eagerly
        warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); training eagerly", stacklevel=3)
        return module, False


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
    g_steps: int = 1,
    lr_g: float = 2e-4,
    lr_d: float | None = None,
    betas: tuple[float, float] = (0.5, 0.999),
    discriminator2: nn.Module | None = None,
    penalty: str | None = None,
    penalty_weight: float = 10.0,
    unroll: int = 0,
    device: torch.device | str | None = None,
    amp: bool = False,
    cpu_amp: bool = False,
    channels_last: bool = False,
    compile: bool | str = False,
    check_every: int | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    resume: bool = True,
    sample_steps: Iterable[int] = (),
    sample_size: int = 64,
    progress: bool | None = None,
    seed: int = 0,
) -> ImageHistory:
    r"""Train an image GAN with Adam, ``d_steps`` D updates per G update, resumably.

    Each step's losses come from :mod:`gan_notes.objective` (D minimises
    :func:`~gan_notes.losses.discriminator_loss` plus its penalty, G
    :func:`~gan_notes.losses.generator_loss`), computed in float32 from the logits;
    :math:`z \sim \mathcal N(0, I)`.

    **Two discriminators.** With ``discriminator2`` (the two-discriminator GAN), D2 plays D's
    game with the roles of real and generated images swapped: it minimises
    :math:`\mathcal L_D(a_2(G(z)), a_2(x))`, and G's loss gains the term
    :math:`\mathcal L_G(-a_2(G(z)))`:

    .. math::
        \begin{aligned}
        \mathcal L_{D_1} + \mathcal L_{D_2} &= \mathcal L_D\big(a_1(x), a_1(G(z))\big)
        + \mathcal L_D\big(a_2(G(z)), a_2(x)\big), \\
        \mathcal L_G &= \mathcal L_G\big(a_1(G(z))\big) + \mathcal L_G\big(-a_2(G(z))\big).
        \end{aligned}

    These are :func:`~gan_notes.losses.dual_discriminator_loss` and
    :func:`~gan_notes.losses.dual_generator_loss` (``"non_saturating"``: G maximises
    :math:`\log D_1(G(z)) + \log(1 - D_2(G(z)))`; ``"minimax"``: the G terms of the value
    function), with optimal discriminators :math:`D_1^* = p_{data}/(p_{data}+p_g)` and
    :math:`D_2^* = p_g/(p_{data}+p_g)` (:func:`gan_notes.theory.optimal_dual_discriminators`).
    The same two formulas define ``"hinge"`` and ``"wgan"`` with two critics; these four losses
    satisfy :math:`\mathcal L_D(r, f) = \mathcal L_D(-f, -r)`, so swapping the roles is the same
    as negating D2's logits. (LSGAN's targets are not symmetric, so it is not offered.)

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
    batch_size, d_steps, g_steps : int
        ``d_steps`` D updates, then ``g_steps`` G updates (each on a fresh latent batch), per
        step; PacGAN's Stacked MNIST protocol takes two G updates per step.
    loss : one of ``gan_notes.losses.LOSSES`` (with ``discriminator2``: ``"minimax"``,
        ``"non_saturating"``, ``"hinge"`` or ``"wgan"``)
    lr_g, lr_d, betas : Adam's settings; ``lr_d`` defaults to ``lr_g``.
    discriminator2 : nn.Module, optional
        A second discriminator, whose positive class is the generated images (see above).
    penalty : {"gp", "r1", "dragan"}, optional
        Added to each discriminator's loss with weight ``penalty_weight``, computed in float32
        on the module itself (not its compiled version): :func:`~gan_notes.penalties.gradient_penalty`
        between its positive and negative batch, or :func:`~gan_notes.penalties.r1_penalty` /
        :func:`~gan_notes.penalties.dragan_penalty` at its positive batch (the real images for D,
        the generated ones for D2).
    unroll : int
        :math:`k > 0`: G's loss is against D after :math:`k` look-ahead Adam steps that
        continue D's live optimiser state (:func:`gan_notes.unrolled.unroll`, Metz et al.
        2017), on a fresh real batch. With ``unroll`` or a ``penalty``, D's batch-norm layers
        keep no running statistics (``torch.func.replace_all_batch_norm_modules_``:
        ``torch.func`` cannot update them; D's training-mode outputs are unchanged). Not with
        ``discriminator2``.
    device : torch device, optional
        Defaults to the generator's.
    amp : bool
        bf16 autocast for the forward passes on CUDA (no loss scaling is needed with bf16).
        On the CPU it does nothing unless ``cpu_amp=True`` too: CPU bf16 is slow on most
        processors and only useful to test the bf16 code path.
    channels_last : bool
        Store models and batches channels-last (NHWC), which cuDNN's convolutions prefer.
    compile : bool or str
        ``torch.compile`` G and D (a string is its ``mode``, e.g. ``"reduce-overhead"``: CUDA
        graphs), after a trial on copies; if that fails (no compiler, old torch), warn and
        train eagerly (``options["compiled"]`` says which happened).
    check_every : int, optional
        Read the losses back from the device, and check them for NaN and inf, every this many
        steps (default: 1 on a CPU, 50 on CUDA, where reading a number back each step stops the
        host from queueing the next step's work). A diverged run still names the first bad step.
    checkpoint_path : path, optional
        Where to save and resume from; saved every ``checkpoint_every`` steps (0: only at the
        end), atomically (:func:`gan_notes.checkpoint.save_atomic`).
    resume : bool
        Resume from ``checkpoint_path`` if it exists; False ignores (and later overwrites) it.
    sample_steps : iterable of int
        Record ``sample_size`` images from a fixed latent batch after these G steps.
    progress : bool, optional
        A ``tqdm`` bar with ETA; by default shown unless ``TQDM_DISABLE=1``.
    seed : int
        Seeds the run's random numbers (and the data sampler) of a fresh run: on a CPU, the
        same seed and models give the same run. The run draws from a fork of torch's
        generator, so the caller's random state is unchanged.

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
    gan_notes.train.train_gan; gan_notes.dcgan; gan_notes.image_bench; Chapter 11 (Stacked
    MNIST) and Chapter 12 (CIFAR-10).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    if discriminator2 is not None and loss not in TWO_DISCRIMINATOR_LOSSES:
        raise ValueError(f"discriminator2 needs a loss with L_D(r, f) = L_D(-f, -r) ({', '.join(TWO_DISCRIMINATOR_LOSSES)}), got {loss!r}")
    if penalty is not None and penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; valid: {', '.join(PENALTIES)}")
    if not (isinstance(penalty_weight, (int, float)) and not isinstance(penalty_weight, bool) and penalty_weight >= 0):
        raise ValueError(f"penalty_weight must be a non-negative number, got {penalty_weight!r}")
    if not isinstance(compile, (bool, str)):
        raise TypeError(f"compile must be a bool or a torch.compile mode string, got {type(compile).__name__}")
    latent_dim = getattr(generator, "latent_dim", None) if latent_dim is None else latent_dim
    if latent_dim is None:
        raise ValueError("latent_dim is required (the generator has no latent_dim attribute)")
    for name, v in (("latent_dim", latent_dim), ("batch_size", batch_size), ("d_steps", d_steps), ("g_steps", g_steps), ("sample_size", sample_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    for name, v in (("steps", steps), ("checkpoint_every", checkpoint_every), ("seed", seed), ("unroll", unroll)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if unroll and discriminator2 is not None:
        raise ValueError("unroll does not combine with discriminator2")
    lr_d = lr_g if lr_d is None else lr_d
    if not (lr_g > 0 and lr_d > 0):
        raise ValueError(f"learning rates must be positive, got lr_g={lr_g}, lr_d={lr_d}")
    sample_at = sorted(set(int(s) for s in sample_steps))
    if any(s < 0 or s > steps for s in sample_at):
        raise ValueError(f"sample_steps must lie in [0, steps={steps}], got {sample_at}")

    dev = torch.device(device) if device is not None else next(generator.parameters()).device
    if check_every is None:
        check_every = 50 if dev.type == "cuda" else 1
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be a positive int, got {check_every!r}")
    use_amp = bool(amp) and (dev.type == "cuda" or bool(cpu_amp))
    fmt = torch.channels_last if channels_last else torch.preserve_format
    discriminators = [d for d in (discriminator, discriminator2) if d is not None]
    for m in (generator, *discriminators):
        m.to(device=dev, memory_format=fmt)
    if unroll or penalty is not None:
        # torch.func (the look-ahead, the penalties' input gradients) cannot update batch-norm
        # running statistics; in training mode D's outputs are the same without them.
        for d in discriminators:
            torch.func.replace_all_batch_norm_modules_(d)
    method = Method(loss=loss, two_discriminators=discriminator2 is not None, d_steps=d_steps, penalty=penalty,
                    penalty_weight=float(penalty_weight), unroll=unroll)
    sample, sampler = _batch_source(data, batch_size, seed + 2)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16) if use_amp else nullcontext()

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return _to_model_range(x).to(dev, non_blocking=True).contiguous(memory_format=fmt)

    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas)
    opt_ds = [torch.optim.Adam(d.parameters(), lr=lr_d, betas=betas) for d in discriminators]
    config = {
        "loss": loss, "batch_size": batch_size, "latent_dim": latent_dim, "d_steps": d_steps, "g_steps": g_steps, "lr_g": lr_g, "lr_d": lr_d,
        "betas": list(betas), "seed": seed, "two_discriminators": discriminator2 is not None,
        "penalty": penalty, "penalty_weight": float(penalty_weight) if penalty else None, "unroll": unroll,
    }  # fmt: skip
    rec = {k: np.zeros(steps) for k in _RECORDS}
    snapshots: dict[int, np.ndarray] = {}
    start = 0

    # The run draws from a fork of torch's generator: the caller's random state is unchanged.
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        path = os.fspath(checkpoint_path) if checkpoint_path is not None else None
        if path is not None and resume and os.path.exists(path):
            ckpt = load_checkpoint(path, kind=_FORMAT, config=config, device=dev)
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
            set_rng_state(ckpt["rng"], dev)
            if sampler is not None and ckpt["sampler"] is not None:
                sampler.load_state_dict({k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in ckpt["sampler"].items()})

        def save(step: int) -> None:
            history = {k: torch.from_numpy(rec[k][:step].copy()) for k in _RECORDS}
            history["samples"] = {s: torch.from_numpy(x) for s, x in snapshots.items()}
            save_atomic(
                {
                    "format": _FORMAT,
                    "step": step,
                    "config": config,
                    "models": [m.state_dict() for m in (generator, *discriminators)],
                    "optimizers": [o.state_dict() for o in (opt_g, *opt_ds)],
                    "rng": rng_state(dev),
                    "sampler": sampler.state_dict() if sampler is not None else None,
                    "history": history,
                },
                path,
            )

        # Each step's records stay on the device until `flush` reads them back in one transfer.
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            if not pending:
                return
            values = torch.stack([v for _, v in pending]).cpu().numpy()
            for (t, _), row in zip(pending, values):
                for name, label in (("d_loss", "discriminator"), ("d2_loss", "second discriminator"), ("g_loss", "generator")):
                    v = row[_RECORDS.index(name)]
                    if not np.isfinite(v):
                        raise TrainingDiverged(f"step {t}: the {label} loss is {v}; lower the learning rate or check the data")
                for k, v in zip(_RECORDS, row):
                    rec[k][t - 1] = v
            pending.clear()

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
            mode = compile if isinstance(compile, str) else None
            # Trial inputs of the training shapes, from a generator of their own (no draw from
            # the training stream, so compiling does not change the run's random numbers).
            z_example = torch.randn(batch_size, latent_dim, generator=torch.Generator().manual_seed(seed + 3)).to(dev)
            generator.eval()
            with torch.no_grad():
                example = generator(z_example).contiguous(memory_format=fmt)
            generator.train()
            g_fwd, compiled = _maybe_compile(generator, z_example, autocast, mode)
            if compiled:
                d_fwds = [_maybe_compile(d, example, autocast, mode)[0] for d in discriminators]

        # The objective calls the compiled forward, under autocast, for the game's terms (losses in
        # float32), and the modules themselves, in float32, for the penalties and the look-ahead.
        def autocast_call(f):
            def call(x):
                with autocast():
                    return f(x).float()
            return call

        names = ("D", "D2")[: len(discriminators)]
        forward = {"G": autocast_call(g_fwd), **{n: autocast_call(d) for n, d in zip(names, d_fwds)}}
        nets = Nets({"G": generator, **dict(zip(names, discriminators))}, forward=forward)
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
                with torch.no_grad():
                    fake = nets("G", z)
                if fake.shape[1:] != real.shape[1:]:
                    raise ValueError(f"generated images have shape {tuple(fake.shape[1:])} but the data's are {tuple(real.shape[1:])}")
                # Unchecked losses: the NaN check is `flush`'s, so nothing waits for the device here.
                total, terms = discriminator_step_loss(method, nets, {"real": real, "fake": fake})
                for opt in opt_ds:
                    opt.zero_grad(set_to_none=True)
                total.backward()
                for opt in opt_ds:
                    opt.step()

            for _ in range(g_steps):
                if unroll:  # the look-ahead runs in float32 on D itself, from D's live Adam state
                    r = {"real": prepare(sample(batch_size)).float(), "z": torch.randn(batch_size, latent_dim, device=dev)}
                    g_loss = generator_step_loss(method, nets, r, adam=adam_state(opt_ds[0], dict(discriminator.named_parameters())))
                else:
                    g_loss = generator_step_loss(method, nets, {"z": torch.randn(batch_size, latent_dim, device=dev)})
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
            pending.append((t, torch.stack([terms["d_loss"].detach(), g_loss.detach(), terms["d_real"], terms["d_fake"], terms["d2_loss"].detach()])))
            if t % check_every == 0 or t == steps:
                flush()
            snapshot(t)
            times.append(time.perf_counter() - t0)
            if progress and t % check_every == 0:
                bar.set_postfix(d_loss=f"{rec['d_loss'][t - 1]:.3f}", g_loss=f"{rec['g_loss'][t - 1]:.3f}", refresh=False)
            if path is not None and checkpoint_every and t % checkpoint_every == 0 and t < steps:
                flush()
                save(t)
        flush()
        if path is not None:
            save(steps)

        wall = time.perf_counter() - t0
        n_run = steps - start
        rate = n_run / wall if n_run and wall > 0 else 0.0
        return ImageHistory(
            d_loss=rec["d_loss"], g_loss=rec["g_loss"], d_real=rec["d_real"], d_fake=rec["d_fake"],
            snapshots=snapshots, wall_time_s=wall, d2_loss=rec["d2_loss"] if discriminator2 is not None else None,
            start_step=start, step_times=np.asarray(times), steps_per_s=rate, images_per_s=rate * batch_size,
            options={"device": str(dev), "amp": use_amp, "channels_last": bool(channels_last), "compiled": compiled, "check_every": check_every},
        )  # fmt: skip
