r"""How fast the book's DCGAN trains: eager fp32 against the optimised path, in one run.

``python -m gan_notes.image_bench`` prints training throughput (steps/s, images/s) of the
DCGAN of :mod:`gan_notes.dcgan` on MNIST-shaped (1×28×28) and Stacked-MNIST-shaped (3×28×28)
batches, the ratio optimised / eager, and what the rates mean for the book's runs: the time of
one MNIST epoch (60,000 images) and of one Stacked MNIST run of PacGAN's released Table 2
protocol (100,000 iterations of one D and two G updates; the Stacked MNIST rates are measured
with two G updates per step).

See also
--------
gan_notes.image_training.train_image_gan; Chapter 11.
"""

from __future__ import annotations

import argparse

import torch

from gan_notes.dcgan import dcgan_discriminator, dcgan_generator
from gan_notes.image_training import train_image_gan

__all__ = ["benchmark", "MNIST_TRAIN_IMAGES", "PROTOCOL_ITERATIONS", "PROTOCOL_G_STEPS"]

MNIST_TRAIN_IMAGES = 60_000  # one epoch of the MNIST training split
PROTOCOL_ITERATIONS = 100_000  # PacGAN's Table 2 run: 50 epochs x 2,000 batches of 64
PROTOCOL_G_STEPS = 2  # G updates per iteration in that protocol


def benchmark(
    *,
    steps: int = 30,
    batch_size: int = 64,
    device: str | None = None,
    warmup: int = 5,
    rounds: int = 2,
    compile: bool | str | None = None,
    channels: int = 1,
    width: int = 64,
    g_steps: int = 1,
) -> dict[str, dict]:
    r"""Training throughput of the book's DCGAN, eager fp32 against the optimised path.

    Both paths train :func:`~gan_notes.dcgan.dcgan_generator` and
    :func:`~gan_notes.dcgan.dcgan_discriminator` (non-saturating loss) with
    :func:`~gan_notes.image_training.train_image_gan` on *random* images of shape
    ``(channels, 28, 28)`` kept on the device, so no data loading is measured.

    - **eager**: fp32, contiguous (NCHW) tensors, the losses read back every step
      (``check_every=1``: what a loop that prints ``loss.item()`` each step does);
    - **optimised**: channels-last, bf16 autocast on CUDA, ``torch.compile`` where ``compile``
      is true or a mode (default: ``"reduce-overhead"``, i.e. CUDA graphs, on CUDA; off on a
      CPU, where compiling takes minutes), and the losses read back every 50 steps on CUDA.

    Throughput is :math:`\text{steps} / (t_{\text{warmup}+\text{steps}} - t_{\text{warmup}})`,
    excluding the first ``warmup`` steps (compilation, cuDNN autotuning, graph capture), the
    best of ``rounds`` alternating runs of the two paths (on a shared machine the best is the
    least disturbed). ``width`` is G's width :math:`w` (64: the book's DCGAN); ``g_steps`` G
    updates per step (2: an iteration of PacGAN's Stacked MNIST protocol).

    Returns
    -------
    dict
        ``{"eager": {...}, "optimised": {...}}`` with ``steps_per_s``, ``images_per_s`` and
        the options in effect.

    See also
    --------
    gan_notes.image_training.train_image_gan; Chapter 11.
    """
    if min(steps, warmup, rounds) < 1:
        raise ValueError(f"steps, warmup and rounds must be positive, got {steps}, {warmup}, {rounds}")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if compile is None:
        compile = "reduce-overhead" if dev.type == "cuda" else False
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = torch.rand(max(4 * batch_size, 1024), channels, 28, 28, device=dev) * 2 - 1
    paths = {
        "eager": {"check_every": 1},
        "optimised": {"channels_last": True, "amp": True, "compile": compile, "check_every": 50 if dev.type == "cuda" else 1},
    }
    results: dict[str, dict] = {}
    for _ in range(rounds):
        for name, opts in paths.items():
            with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                torch.manual_seed(0)
                g, d = dcgan_generator(channels, width=width), dcgan_discriminator(channels, width=width)
            h = train_image_gan(g, d, data, steps=warmup + steps, batch_size=batch_size, g_steps=g_steps, device=dev, progress=False, **opts)
            rate = steps / (h.step_times[-1] - h.step_times[warmup - 1])
            if rate > results.get(name, {}).get("steps_per_s", 0.0):
                results[name] = {"steps_per_s": rate, "images_per_s": rate * batch_size, "check_every": opts["check_every"], **h.options}
    return results


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_notes.image_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per path (default: 300 on CUDA, 30 on a CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 20 on CUDA, 5 on a CPU)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of both paths; the best of each is reported")
    parser.add_argument("--width", type=int, default=64, help="G's width w (64: the book's DCGAN)")
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 3], help="1: MNIST, 3: Stacked MNIST")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    parser.add_argument("--compile", default=None, help="optimised path: 'off', 'default', 'reduce-overhead' (default on CUDA) or 'max-autotune'")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    steps = args.steps or (300 if dev == "cuda" else 30)
    warmup = args.warmup or (20 if dev == "cuda" else 5)
    compile = None if args.compile is None else (False if args.compile == "off" else (True if args.compile == "default" else args.compile))
    name = torch.cuda.get_device_name() if dev == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"DCGAN training throughput (G width {args.width}, batch {args.batch}, random data on the device), {steps} timed steps "
          f"after {warmup} warm-up, best of {args.rounds} rounds; {name}; torch {torch.__version__}")  # fmt: skip
    for channels in args.channels:
        g_steps = PROTOCOL_G_STEPS if channels == 3 else 1
        r = benchmark(steps=steps, batch_size=args.batch, device=dev, warmup=warmup, rounds=args.rounds, compile=compile,
                      channels=channels, width=args.width, g_steps=g_steps)
        label = {1: "MNIST 1x28x28", 3: "Stacked MNIST 3x28x28, 1 D + 2 G updates per step"}.get(channels, f"{channels}x28x28")
        print(f"{label}:")
        for path, x in r.items():
            print(f"  {path:9s}  {x['steps_per_s']:8.2f} steps/s  {x['images_per_s']:9.1f} images/s  (channels_last={x['channels_last']}, "
                  f"bf16={x['amp']}, compiled={x['compiled']}, losses read every {x['check_every']} steps)")  # fmt: skip
        best = r["optimised"]
        print(f"  ratio optimised/eager: {best['steps_per_s'] / r['eager']['steps_per_s']:.2f}")
        if channels == 1:
            print(f"  one MNIST epoch ({MNIST_TRAIN_IMAGES:,} images) at the optimised rate: {MNIST_TRAIN_IMAGES / best['images_per_s']:.1f} s")
        if channels == 3:
            print(f"  one PacGAN Table 2 run ({PROTOCOL_ITERATIONS:,} iterations) at the optimised rate: "
                  f"{PROTOCOL_ITERATIONS / best['steps_per_s'] / 60:.1f} min")


if __name__ == "__main__":
    _main()
