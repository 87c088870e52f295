"""Profiles, device choice and seeding: the switches every chapter reads.

The book runs each chapter at one of two scales, chosen by the environment variable
``GAN_NOTES_PROFILE``: ``full`` (the default, the real experiment) or ``smoke`` (the same
code at tiny size, used by the tests).
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("full", "smoke")
ENV_VAR = "GAN_NOTES_PROFILE"

T = TypeVar("T")


def profile() -> str:
    """Return the active profile, read from ``GAN_NOTES_PROFILE``.

    Returns
    -------
    str
        ``"full"`` (default when the variable is unset or empty) or ``"smoke"``.

    Raises
    ------
    ValueError
        If the variable holds any other value.

    See also
    --------
    budget : pick a size by profile.
    """
    value = os.environ.get(ENV_VAR, "").strip().lower() or "full"
    if value not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r} is not a profile; use one of {PROFILES}"
        )
    return value


def budget(*, full: T, smoke: T) -> T:
    """Return ``full`` or ``smoke`` according to the active profile.

    Every size in a notebook comes from this helper, e.g.
    ``steps = budget(full=20_000, smoke=100)``, so one switch scales a whole chapter.

    Parameters
    ----------
    full, smoke
        The value to use in each profile.

    Returns
    -------
    The value for :func:`profile`.
    """
    return full if profile() == "full" else smoke


def device() -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA too


def set_plot_style() -> None:
    """A modest, readable matplotlib style shared by every figure of the book."""
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 80,
            "savefig.dpi": 80,
            "figure.figsize": (6.0, 3.6),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "legend.frameon": False,
        }
    )


def setup(seed: int = 0, threads: int | None = None) -> torch.device:
    """Prepare a chapter: seed every generator, set the plot style, pick the device.

    Parameters
    ----------
    seed : int
        Seed for Python, NumPy and torch.
    threads : int, optional
        CPU threads for torch's operators. The toy chapters pass 1: their networks are so
        small that a second thread costs more in synchronisation than it saves (and much
        more when the cores are shared). ``None`` keeps torch's default.

    Returns
    -------
    torch.device
        The device from :func:`device`; the chapter prints it so a reader knows what
        produced its figures.
    """
    seed_everything(seed)
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
        torch.set_num_threads(threads)
    set_plot_style()
    dev = device()
    print(f"gan_notes: profile={profile()}, device={dev}, torch={torch.__version__}, threads={torch.get_num_threads()}")
    return dev
