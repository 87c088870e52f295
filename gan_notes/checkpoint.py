r"""Checkpoints that survive a disconnect (chapters 11 and 12).

A long run on a GPU, or a Colab session that disconnects, needs three things from a
checkpoint, each of which this module provides and the tests check:

- **atomic writes** (:func:`save_atomic`): the file is written beside its target and renamed
  over it, so a crash mid-write leaves the previous checkpoint whole;
- **safe loads** (:func:`load_checkpoint`): ``torch.load(..., weights_only=True)`` (no pickled
  code runs), and a clear :class:`CheckpointError` for a corrupt file, a file of another kind,
  or one made with other settings;
- **the random-number state** (:func:`rng_state`, :func:`set_rng_state`): a run resumed
  from step :math:`k` draws the same numbers an uninterrupted run draws after step :math:`k`.

:func:`gan_notes.image_training.train_image_gan` builds its checkpoints from these.
"""

from __future__ import annotations

import os
import tempfile

import torch

__all__ = ["CheckpointError", "save_atomic", "load_checkpoint", "rng_state", "set_rng_state"]


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not belong to this run (other models or settings)."""


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` so that ``path`` holds either the old or the new file, never
    half of one: write a temporary file in the same directory, then ``os.replace`` it.

    See also
    --------
    load_checkpoint; Chapter 11.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows when both lie on one file system
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: str | os.PathLike, *, kind: str, config: dict, device: torch.device | str = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_atomic` with ``weights_only=True``.

    Parameters
    ----------
    path : path
    kind : str
        The checkpoint's ``"format"`` entry must equal this (e.g. ``"gan_notes.image_training/2"``).
    config : dict
        Each key must have the same value in the checkpoint's ``"config"``: a run resumes only
        from a checkpoint of the same settings.
    device : torch device
        Where tensors are loaded (``map_location``).

    Raises
    ------
    CheckpointError
        Unreadable (corrupt, truncated, not a torch file), of another kind, or other settings
        (the message lists each setting that differs).

    See also
    --------
    save_atomic; Chapter 11.
    """
    path = os.fspath(path)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path!r} (corrupt, truncated or not a torch file): {type(e).__name__}: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != kind:
        raise CheckpointError(f"{path!r} is not a {kind} checkpoint (found format {ckpt.get('format') if isinstance(ckpt, dict) else None!r})")
    saved = ckpt.get("config", {})
    diff = {k: (saved.get(k), v) for k, v in config.items() if saved.get(k) != v}
    if diff:
        details = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"checkpoint {path!r} was made with other settings ({details}); pass resume=False to start afresh")
    return ckpt


def rng_state(device: torch.device | str = "cpu") -> dict:
    """torch's global random-number state: the CPU generator's, and the CUDA device's when
    ``device`` is a CUDA device (``None`` otherwise)."""
    device = torch.device(device)
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict, device: torch.device | str = "cpu") -> None:
    """Restore what :func:`rng_state` returned (the CUDA part only on a CUDA device)."""
    device = torch.device(device)
    torch.set_rng_state(state["cpu"].cpu())
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
