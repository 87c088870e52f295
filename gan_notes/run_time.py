r"""How long an image-GAN run takes: step times measured here, and the run time they predict.

Chapter 11 prints, before its long cell, the run time it predicts for the device it finds:
it times a few training steps of each run with :func:`seconds_per_step` and adds them up with
:func:`predict_seconds`. ``python -m gan_notes.device_run --predict`` does the same for a
device that is not here (an H100, a Colab T4) from the step's *host* time (the Python and
dispatch work, measured here with tiny tensors) and its floating-point work, under the stated
assumptions of a :class:`DeviceModel` (:func:`model_step_seconds`).

See also
--------
gan_notes.image_bench, gan_notes.device_run; Chapter 11.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from gan_notes.image_training import train_image_gan

__all__ = ["seconds_per_step", "predict_seconds", "DeviceModel", "ASSUMED_DEVICES", "model_step_seconds"]


def seconds_per_step(generator, discriminator, data, *, steps: int = 20, warmup: int = 5, **train_kwargs) -> float:
    r"""Measured seconds per training step of :func:`~gan_notes.image_training.train_image_gan`.

    Trains ``warmup + steps`` steps and returns
    :math:`(t_{\text{warmup}+\text{steps}} - t_{\text{warmup}}) / \text{steps}` from the run's
    ``step_times``, so start-up (cuDNN autotuning, compilation, the first allocations) is left
    out. ``train_kwargs`` are passed on (``batch_size``, ``device``, ``amp``, ...); the
    models are trained in place, so pass fresh ones.

    See also
    --------
    gan_notes.image_bench.benchmark; Chapter 11.
    """
    for name, v in (("steps", steps), ("warmup", warmup)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    train_kwargs.setdefault("progress", False)
    h = train_image_gan(generator, discriminator, data, steps=warmup + steps, **train_kwargs)
    return float(h.step_times[-1] - h.step_times[warmup - 1]) / steps


def predict_seconds(step_seconds: Mapping[Hashable, float], steps: int, *, repeats: int = 1, per_run_s: float = 0.0, fixed_s: float = 0.0) -> float:
    r"""Predicted wall time of a set of runs:
    :math:`T = r \sum_k (S\, t_k + e) + c`.

    ``step_seconds`` maps each run :math:`k` to its seconds per step :math:`t_k`; each trains
    :math:`S` = ``steps`` steps, is repeated :math:`r` = ``repeats`` times (seeds) and costs
    :math:`e` = ``per_run_s`` more (evaluation); :math:`c` = ``fixed_s`` is paid once.

    See also
    --------
    seconds_per_step; Chapter 11.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    bad = {k: t for k, t in step_seconds.items() if not t >= 0}
    if bad or not per_run_s >= 0 or not fixed_s >= 0:
        raise ValueError(f"step_seconds, per_run_s and fixed_s must be non-negative, got {bad or (per_run_s, fixed_s)}")
    return repeats * sum(steps * t + per_run_s for t in step_seconds.values()) + fixed_s


@dataclass(frozen=True)
class DeviceModel:
    """Assumed figures of a device that is not here: an *assumption*, not a measurement.

    Attributes
    ----------
    name : str
    host_factor : float
        Its host's time for a step's Python and dispatch work, relative to the machine where the
        prediction runs (1.0: as fast; 1.5: half again as slow).
    flops_per_s : float
        Effective floating-point rate of this small DCGAN's kernels at batch 64 (far below peak).
    bf16 : bool
        Whether the chapter's bf16 autocast is used there (the GPU has bf16 tensor cores).
    fixed_s : float
        Time of the chapter's cells other than the training steps (kernel start, CUDA
        initialisation, imports, the digit classifier, the evaluations, the figures).
    source : str
        Where the figures come from.
    """

    name: str
    host_factor: float
    flops_per_s: float
    bf16: bool
    fixed_s: float
    source: str


#: The two devices the book is sized for. None of these figures is measured.
ASSUMED_DEVICES: dict[str, DeviceModel] = {
    "h100": DeviceModel(
        name="NVIDIA H100 (assumed)",
        host_factor=1.0,
        flops_per_s=50e12,
        bf16=True,
        fixed_s=60.0,
        source="assumption, no H100 measurement exists: host as fast as this machine's core; 50 TFLOP/s "
        "effective bf16 (about 5% of the 989 TFLOP/s dense peak, for convolutions this small); 60 s of "
        "non-training cells",
    ),
    "t4": DeviceModel(
        name="NVIDIA T4, Colab (assumed)",
        host_factor=1.5,
        flops_per_s=3e12,
        bf16=False,
        fixed_s=120.0,
        source="assumption, no T4 measurement exists: Colab's 2-vCPU host 1.5x slower than this machine; "
        "fp32 only (no bf16 tensor cores), 3 TFLOP/s effective of the 8.1 TFLOP/s fp32 peak; 120 s of "
        "non-training cells",
    ),
}


def model_step_seconds(host_s: float, flops: float, model: DeviceModel) -> float:
    r"""Seconds per step on an assumed device:
    :math:`t = \max(h\,t_{\text{host}},\; F / R)`.

    A GPU runs a step's kernels while its host queues the next ones, so the step takes the
    longer of the host's work (:math:`t_{\text{host}}`, measured here, times the model's
    ``host_factor`` :math:`h`) and the device's (:math:`F` floating-point operations at the
    model's effective rate :math:`R`). For this small DCGAN the host's part dominates on fast
    GPUs: that is why CUDA graphs (``torch.compile(mode="reduce-overhead")``) help.

    See also
    --------
    DeviceModel; Chapter 11.
    """
    if not host_s >= 0 or not flops >= 0:
        raise ValueError(f"host_s and flops must be non-negative, got {host_s}, {flops}")
    return max(model.host_factor * host_s, flops / model.flops_per_s)
