"""Image data sets for the image chapters: MNIST, Stacked MNIST and CIFAR-10.

Every loader reads the official files from a data folder, ``root``, chosen in this order:
the ``root`` argument, the environment variable ``GAN_NOTES_DATA``, then a user cache
folder (``$XDG_CACHE_HOME/gan_notes/data``, by default ``~/.cache/gan_notes/data``).
A file that is missing is downloaded from the canonical mirrors where a network exists
(Colab), written atomically (a temporary file, then ``os.replace``) and checked against
the official MD5 before it is used. A file whose MD5 differs raises :class:`~gan_notes.download.ChecksumError`:
no data are ever returned from a file that failed its check. Without a network and without
the files, :class:`~gan_notes.download.DataUnavailableError` says where to put them.

Layout of ``root``::

    mnist/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
          t10k-images-idx3-ubyte.gz,  t10k-labels-idx1-ubyte.gz   (official gzipped IDX)
    cifar-10-python.tar.gz                                       (official archive), and/or
    cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta (torchvision's layout)
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from gan_notes.download import fetch, verify

__all__ = [
    "ENV_DATA",
    "cache_dir",
    "data_root",
    "read_idx",
    "load_mnist",
    "images_to_float",
    "stacked_mnist",
    "load_cifar10",
]

ENV_DATA = "GAN_NOTES_DATA"

# Official files and MD5s (the ones torchvision checks; the test split's agree with
# ../shared/data/mnist/MD5SUMS).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_FILES = {
    "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
    "test": ("test_batch",),
}
CIFAR10_FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

# IDX type codes (third magic byte) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def cache_dir() -> Path:
    """The package's user cache folder: ``$XDG_CACHE_HOME/gan_notes`` (``~/.cache/gan_notes``).

    See also
    --------
    data_root; gan_notes.classifier.digit_classifier (caches its weights here).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gan_notes"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$GAN_NOTES_DATA``, else ``cache_dir()/"data"``.

    See also
    --------
    load_mnist, load_cifar10 (the layout of the folder is in the module docstring).
    """
    if root is None:
        root = os.environ.get(ENV_DATA) or cache_dir() / "data"
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, got {type(root).__name__}")
    return Path(root).expanduser()


def _how_to(what: str, folder: Path, files: str, source: str) -> str:
    return (
        f"To use {what} without a network, put {files} (from {source}) in {folder}, or point the "
        f"environment variable {ENV_DATA} at a folder holding them (layout: see gan_notes.data)."
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    r"""Read an IDX file (gzipped or not), the format of the MNIST distribution.

    The header is a magic number ``00 00 TT D`` (TT: data type code, D: number of
    dimensions), then D big-endian 32-bit sizes, then the data in C order.

    Raises
    ------
    ValueError
        If the magic number is wrong or the data are truncated or too long.

    See also
    --------
    load_mnist.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path} is not a valid gzip file: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: bad magic number {raw[:4].hex()}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"{path} is {kind}: {len(raw)} bytes for shape {shape}, expected {expected}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The MNIST digits of one split, from the official gzipped IDX files.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test digits.
    root : path, optional
        Folder holding ``mnist/``; default :func:`data_root`.
    download : bool
        Download missing files (checksum-verified) when a network exists.

    Returns
    -------
    images : torch.Tensor, uint8, shape (N, 28, 28)
        Pixel intensities 0..255 (white digit on black); see :func:`images_to_float`.
    labels : torch.Tensor, int64, shape (N,)

    Raises
    ------
    ChecksumError
        If a file's MD5 is not the official one.
    DataUnavailableError
        If a file is missing and cannot be downloaded; the message says where to put it.
    ValueError
        If ``split`` is unknown or a file is malformed.

    See also
    --------
    stacked_mnist; the image chapters (Part III).
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    folder = data_root(root) / "mnist"
    names = MNIST_FILES[split]
    how_to = _how_to(f"the MNIST {split} split", folder, " and ".join(names), MNIST_MIRRORS[0])
    paths = [
        fetch(folder / n, [m + n for m in MNIST_MIRRORS], MNIST_MD5[n], download, how_to) for n in names
    ]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]} does not hold uint8 28x28 images: {images.dtype}, {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(f"{paths[1]} does not hold one uint8 label per image: {labels.dtype}, {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[1]} holds labels outside 0..9")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def images_to_float(images) -> torch.Tensor:
    r"""uint8 images (N, H, W) or (N, C, H, W) to float32 (N, C, H, W) in :math:`[-1, 1]`.

    :math:`x = 2\,u/255 - 1`, the range of a generator with a ``tanh`` output, which is the
    input convention of :mod:`gan_notes.classifier`.

    See also
    --------
    load_mnist, load_cifar10.
    """
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (0..255), got {t.dtype}")
    if t.ndim == 3:
        t = t.unsqueeze(1)
    if t.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, C, H, W), got {tuple(t.shape)}")
    return t.float().div(127.5).sub(1.0)


def stacked_mnist(images, labels, n: int, generator: torch.Generator | None = None):
    r"""Stacked MNIST: three random digits as the R, G, B channels of one image (1,000 modes).

    Each sample draws three digits uniformly with replacement; its mode is
    :math:`100\,d_1 + 10\,d_2 + d_3` (Metz et al. 2017; the PacGAN protocol).

    Parameters
    ----------
    images : array (N, 28, 28) or (N, 1, 28, 28), any dtype (uint8 from :func:`load_mnist`)
    labels : array (N,) of digits 0..9
    n : int
        Number of stacked samples.
    generator : torch.Generator, optional
        Source of randomness, for reproducible data sets.

    Returns
    -------
    x : (n, 3, 28, 28), the dtype and kind (NumPy/torch) of ``images``
    modes : (n,) int64, same kind

    See also
    --------
    gan_notes.image_metrics.stacked_mode_labels, gan_notes.image_metrics.stacked_kl;
    the image chapters (Part III).
    """
    as_numpy = not isinstance(images, torch.Tensor)
    x = torch.as_tensor(np.asarray(images) if as_numpy else images)
    y = torch.as_tensor(np.asarray(labels)).to(x.device).long()
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
    if y.shape != x.shape[:1]:
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("images is empty")
    if bool(((y < 0) | (y > 9)).any()):
        raise ValueError("labels must be digits 0..9")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    idx = torch.randint(x.shape[0], (n, 3), generator=generator).to(x.device)
    out = x[idx]  # (n, 3, H, W): channel c is digit idx[:, c]
    d = y[idx]
    modes = 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]
    return (out.numpy(), modes.numpy()) if as_numpy else (out, modes)


def _unpickle(path: Path) -> dict:
    # The file's MD5 was checked against the official one first: pickle runs code, so only
    # verified files are unpickled.
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _extract_cifar(archive: Path, folder: Path) -> None:
    """Extract the expected members only (no path from the archive is trusted), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for name in CIFAR10_FILE_MD5:
            member = tar.extractfile(f"{CIFAR10_DIR}/{name}")
            if member is None:
                raise ValueError(f"{archive} has no regular file {CIFAR10_DIR}/{name}")
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(member, out)
                os.replace(tmp, folder / name)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)


def load_cifar10(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""CIFAR-10 images of one split, from the official Python pickle batches.

    Reads ``root/cifar-10-batches-py/`` (torchvision's layout, so a torchvision data folder
    works), extracting it from ``root/cifar-10-python.tar.gz`` when needed, which is itself
    downloaded where a network exists. The archive and every batch are MD5-checked.

    Parameters
    ----------
    split : {"train", "test"}
        50,000 training or 10,000 test images.
    root : path, optional
        Default :func:`data_root`.
    download : bool
        Download the archive (checksum-verified) when missing.

    Returns
    -------
    images : torch.Tensor, uint8, shape (N, 3, 32, 32)
        Channels first (R, G, B), the layout of the official rows of 3,072 bytes; use
        ``images.permute(0, 2, 3, 1)`` for (N, 32, 32, 3) and :func:`images_to_float`
        for :math:`[-1, 1]`.
    labels : torch.Tensor, int64, shape (N,), classes 0..9 (airplane, ..., truck)

    Raises
    ------
    ChecksumError, DataUnavailableError, ValueError
        As :func:`load_mnist`.

    See also
    --------
    gan_notes.image_metrics.inception_features; the image chapters (Part III).
    """
    if split not in CIFAR10_FILES:
        raise ValueError(f"split must be one of {sorted(CIFAR10_FILES)}, got {split!r}")
    base = data_root(root)
    folder = base / CIFAR10_DIR
    names = CIFAR10_FILES[split]
    if not all((folder / n).exists() for n in names):
        how_to = _how_to("CIFAR-10", base, CIFAR10_ARCHIVE, CIFAR10_URL)
        archive = fetch(base / CIFAR10_ARCHIVE, [CIFAR10_URL], CIFAR10_MD5, download, how_to)
        _extract_cifar(archive, folder)
    images, labels = [], []
    for name in names:
        path = folder / name
        verify(path, CIFAR10_FILE_MD5[name])
        batch = _unpickle(path)
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"{path} is not a CIFAR-10 batch (a dict with b'data' and b'labels')")
        data = np.asarray(batch[b"data"])
        lab = np.asarray(batch[b"labels"], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or lab.shape != data.shape[:1]:
            raise ValueError(f"{path}: expected uint8 data (n, 3072) and n labels, got {data.shape}, {lab.shape}")
        if lab.size and (lab.min() < 0 or lab.max() > 9):
            raise ValueError(f"{path} holds labels outside 0..9")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
