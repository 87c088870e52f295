"""Minibatches of real images for the image trainers, with a state a checkpoint can hold.

:func:`batch_source` turns what a user has (an image tensor, a callable ``n -> images``, or a
``DataLoader``) into one function ``n -> batch``. For a tensor it is a :class:`TensorSampler`:
shuffled epochs drawn with a generator of its own, whose state (generator, permutation,
position) :func:`gan_notes.image_training.train_image_gan` saves, so a resumed run draws the
same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

__all__ = ["TensorSampler", "batch_source", "to_model_range"]


class TensorSampler:
    """Minibatches of a tensor, shuffled anew each epoch (a last partial batch is dropped),
    drawn with a ``torch.Generator`` of its own (seeded with ``seed``).

    See also
    --------
    batch_source; gan_notes.image_training.train_image_gan.
    """

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


def batch_source(data, batch_size: int, seed: int) -> tuple[Callable[[int], torch.Tensor], TensorSampler | None]:
    """Return ``(sample, sampler)``: ``sample(n)`` draws a batch; ``sampler`` is the
    checkpointable :class:`TensorSampler` for tensor data, else ``None``.

    ``data`` is an image tensor ``(N, C, H, W)`` (at least ``batch_size`` images), a callable
    ``n -> images`` (or an object with ``sample(n)``), or an iterable of batches (a
    ``DataLoader``; a ``(images, labels)`` batch gives its images), restarted when exhausted.

    Raises
    ------
    TypeError
        A NumPy array (convert it with ``torch.from_numpy``) or anything else.
    ValueError
        A tensor that is not 4-D, or holds fewer than ``batch_size`` images.
    """
    if isinstance(data, torch.Tensor):
        if data.ndim != 4:
            raise ValueError(f"data must be an image tensor (N, C, H, W), got shape {tuple(data.shape)}")
        if len(data) < batch_size:
            raise ValueError(f"batch_size={batch_size} exceeds the {len(data)} images in data")
        sampler = TensorSampler(data, seed)
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


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> floats in [-1, 1] (the range of G's tanh); floats are
    returned as they are."""
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x
