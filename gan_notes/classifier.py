"""A small convolutional MNIST digit classifier, the "judge" of the image metrics.

Stacked MNIST mode counting, the Inception Score and the FID of MNIST generators need a
network that recognises digits. :func:`digit_classifier` trains one on the MNIST digits it
can load and caches its weights in the user cache folder, so the minute of training happens
once per machine:

- with the training split (downloaded where a network exists), it trains on the 60,000
  training digits and reports its accuracy on the 10,000 test digits;
- offline, with only the test split (``GAN_NOTES_DATA=../shared/data``), it trains on the
  first 8,000 test digits and holds out the last 2,000.

Inputs are images in :math:`[-1, 1]` (a ``tanh`` generator's range), shape (N, 1, 28, 28)
or (N, 28, 28); uint8 images (0..255) are converted with
:func:`gan_notes.data.images_to_float`.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_notes import data as _data
from gan_notes.download import DataUnavailableError

__all__ = ["ARCH_VERSION", "DigitClassifier", "train_digit_classifier", "accuracy", "digit_classifier"]

# Bump when the architecture or the training recipe changes: it is part of the cache key.
ARCH_VERSION = 1
DEFAULT_STEPS = 1000


def _as_images(x, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Validate classifier input and return float (N, 1, 28, 28) in [-1, 1] on ``device``."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dtype == torch.uint8:
        x = _data.images_to_float(x)
    elif not x.is_floating_point():
        raise TypeError(f"x must be float images in [-1, 1] or uint8 images, got {x.dtype}")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"x must have shape (N, 1, 28, 28) or (N, 28, 28), got {tuple(x.shape)}")
    lo, hi = (float(v) for v in torch.aminmax(x.detach())) if x.numel() else (0.0, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("x contains NaN or infinite entries")
    if lo < -1.01 or hi > 1.01:
        raise ValueError(f"x must lie in [-1, 1] (a tanh generator's range), got values in [{lo:.3g}, {hi:.3g}]")
    return x.to(device=device, dtype=dtype)


class DigitClassifier(nn.Module):
    r"""Two conv layers and two linear layers: 28x28 digit -> 128 features -> 10 logits.

    ``forward`` returns logits; :meth:`probs` the class probabilities :math:`p(y \mid x)`
    and :meth:`features` the 128 penultimate activations (for FID and PRDC on MNIST).

    See also
    --------
    digit_classifier (trained and cached), train_digit_classifier.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 14 x 14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 x 7 x 7
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(128, 10))
        self.heldout_accuracy: float | None = None  # set by training or by the cache
        self.trained_on: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def _run(self, fn, x, batch_size: int):
        was_numpy = not isinstance(x, torch.Tensor)
        p = next(self.parameters())
        x = _as_images(x, p.device, p.dtype)
        training = self.training
        self.eval()
        try:
            if x.requires_grad:  # keep the graph: no chunking, no no_grad
                out = fn(x)
            else:
                with torch.no_grad():
                    out = torch.cat([fn(c) for c in x.split(batch_size)]) if len(x) else fn(x)
        finally:
            self.train(training)
        return out.cpu().numpy() if was_numpy else out

    def probs(self, x, batch_size: int = 1024):
        r"""Class probabilities :math:`p(y \mid x)`, shape (N, 10), same kind as ``x``."""
        return self._run(lambda c: F.softmax(self(c), dim=1), x, batch_size)

    def features(self, x, batch_size: int = 1024):
        """Penultimate activations, shape (N, 128), same kind as ``x``."""
        return self._run(self.body, x, batch_size)

    def predict(self, x, batch_size: int = 1024):
        """Most probable digit, shape (N,), int64."""
        p = self.probs(x, batch_size)
        return p.argmax(1) if isinstance(p, torch.Tensor) else p.argmax(1).astype(np.int64)


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (augmentation; background stays -1)."""
    n = x.shape[0]
    t = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(x) * (2.0 / 28)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="nearest", align_corners=False) - 1


def train_digit_classifier(
    images,
    labels,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    lr: float = 1e-3,
    max_shift: int = 2,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` with Adam and random translations.

    Parameters
    ----------
    images : (N, 28, 28) uint8 or (N, 1, 28, 28) float in [-1, 1]
    labels : (N,) digits 0..9
    steps : int
        Adam steps of ``batch_size`` images each (the learning rate decays by cosine).
    max_shift : int
        Largest random translation in pixels (0 turns augmentation off).
    seed : int
        Seeds the initialisation, the batches and the shifts.

    Returns
    -------
    DigitClassifier
        In eval mode.

    See also
    --------
    digit_classifier (the recipe with its cache), accuracy.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    x = _as_images(images, dev, torch.float32)
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).long().to(dev)
    if y.shape != x.shape[:1] or len(y) == 0:
        raise ValueError(f"labels must have shape ({x.shape[0]},) with at least one digit, got {tuple(y.shape)}")
    if bool(((y < 0) | (y > 9)).any()):
        raise ValueError("labels must be digits 0..9")
    gen = torch.Generator().manual_seed(seed)
    # The whole run (weights, dropout) draws from a fork seeded with `seed`: the same seed gives
    # the same classifier, and the caller's random state is untouched.
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = DigitClassifier().to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        model.train()
        for step in range(steps):
            idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen).to(dev)
            xb = _shift(x[idx], max_shift, gen) if max_shift > 0 else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            if not torch.isfinite(loss):
                raise RuntimeError(f"classifier training diverged at step {step}: loss {loss.item()}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


def accuracy(model: DigitClassifier, images, labels) -> float:
    """Fraction of ``images`` that ``model`` classifies as ``labels``.

    See also
    --------
    DigitClassifier.predict.
    """
    pred = torch.as_tensor(model.predict(images)).cpu()
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).cpu()
    if pred.shape != y.shape:
        raise ValueError(f"labels must have shape {tuple(pred.shape)}, got {tuple(y.shape)}")
    return float((pred == y).double().mean())


def _cache_path(source: str, steps: int) -> Path:
    # The data are MD5-verified official files, so their name and MD5 identify them.
    md5 = _data.MNIST_MD5[_data.MNIST_FILES[source][0]][:8]
    return _data.cache_dir() / "models" / f"digit_cnn_v{ARCH_VERSION}_mnist-{source}-{md5}_s{steps}.pt"


def _load(path: Path, dev: torch.device) -> DigitClassifier | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("arch_version") != ARCH_VERSION:
            return None
        model = DigitClassifier()
        model.load_state_dict(blob["state_dict"])
    except Exception as err:  # a corrupt or foreign file: retrain rather than fail
        warnings.warn(f"ignoring the cached classifier {path} ({err}); retraining", stacklevel=3)
        return None
    model.heldout_accuracy = float(blob["heldout_accuracy"])
    model.trained_on = str(blob["trained_on"])
    return model.to(dev).eval()


def _save(model: DigitClassifier, path: Path, **meta) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"arch_version": ARCH_VERSION, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, **meta}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def digit_classifier(
    root: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    retrain: bool = False,
    steps: int = DEFAULT_STEPS,
) -> DigitClassifier:
    r"""The package's MNIST digit classifier, trained once and cached.

    Looks in ``cache_dir()/models`` for weights trained with this architecture version and
    recipe, preferring the ones trained on the training split; otherwise trains (about a
    minute on one CPU core), reports the held-out accuracy and caches the weights. See the
    module docstring for the data it trains on.

    Parameters
    ----------
    root : path, optional
        MNIST data folder (see :func:`gan_notes.data.load_mnist`).
    device : torch.device or str, optional
        Where the returned model lives (and trains); default CPU.
    retrain : bool
        Train again even if cached weights exist.
    steps : int
        Training steps (part of the cache key).

    Returns
    -------
    DigitClassifier
        In eval mode, with ``heldout_accuracy`` and ``trained_on`` set.

    See also
    --------
    gan_notes.image_metrics.stacked_mode_labels, gan_notes.image_metrics.inception_score.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    train_path, test_path = _cache_path("train", steps), _cache_path("test", steps)
    if not retrain:
        for path in (train_path, test_path):
            if path.exists() and (model := _load(path, dev)) is not None:
                return model
    try:
        x, y = _data.load_mnist("train", root)
        x_test, y_test = _data.load_mnist("test", root)
        source, path = "train", train_path
        trained_on, heldout = "mnist-train[:60000]", "mnist-test[:10000]"
    except DataUnavailableError:
        x, y = _data.load_mnist("test", root)
        n = int(0.8 * len(x))  # 8,000 of the official 10,000
        x, y, x_test, y_test = x[:n], y[:n], x[n:], y[n:]
        source, path = "test", test_path
        trained_on, heldout = f"mnist-test[:{n}]", f"mnist-test[{n}:]"
        print(f"gan_notes: MNIST training split unavailable; training the digit classifier on {trained_on}")
    t0 = time.perf_counter()
    model = train_digit_classifier(x, y, steps=steps, device=dev)
    seconds = time.perf_counter() - t0
    acc = accuracy(model, x_test, y_test)
    model.heldout_accuracy, model.trained_on = acc, trained_on
    print(
        f"gan_notes: digit classifier trained on {trained_on} in {seconds:.0f} s; "
        f"accuracy on {heldout}: {acc:.4f} (cached in {path})"
    )
    _save(model, path, heldout_accuracy=acc, trained_on=trained_on, heldout=heldout,
          source=source, steps=steps, train_seconds=seconds)
    return model
