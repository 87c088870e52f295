"""Fetching files safely: download from mirrors, write atomically, verify the MD5.

:mod:`gan_notes.data` loads data sets with it and raises its two error types. Tests replace
``urlopen`` here with a fake; nothing downloads in tests.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

__all__ = ["ChecksumError", "DataUnavailableError", "md5sum", "verify", "download_file", "fetch"]


class ChecksumError(ValueError):
    """A data file's MD5 differs from the official one: it is corrupt or not the official file."""


class DataUnavailableError(FileNotFoundError):
    """A data file is missing and could not be downloaded (no network)."""


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in chunks.

    See also
    --------
    ChecksumError; the official MD5s are in ``gan_notes.data`` (``MNIST_MD5``, ``CIFAR10_MD5``).
    """
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless the file's MD5 is ``expected``."""
    got = md5sum(path)
    if got != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: MD5 {got}, expected {expected}. The file is corrupt "
            "or not the official one; delete it to download it again"
        )


def download_file(urls: list[str], dest: Path, md5: str, how_to: str) -> None:
    """Fetch the first mirror that serves bytes with the right MD5 into ``dest``, atomically.

    Each attempt writes a temporary file next to ``dest`` and renames it into place only
    after its MD5 matched. ``how_to`` ends the error message when nothing could be fetched.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=dest.parent).close()
    except OSError as err:  # e.g. a read-only shared folder: the file is unavailable all the same
        raise DataUnavailableError(
            f"{dest} is missing and cannot be downloaded into {dest.parent} ({err}). {how_to}"
        ) from err
    failures = []
    bad_checksum = False
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
            got = md5sum(tmp)
            if got != md5:
                bad_checksum = True
                failures.append(f"{url}: checksum mismatch (MD5 {got}, expected {md5})")
                continue
            os.replace(tmp, dest)  # atomic: readers never see a half-written file
            return
        except (URLError, OSError, ValueError) as err:  # ValueError: http.client's odd cases
            failures.append(f"{url}: {err}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    detail = "; ".join(failures)
    if bad_checksum:
        raise ChecksumError(f"checksum mismatch while downloading {dest.name} ({detail}); nothing was written")
    raise DataUnavailableError(f"{dest} is missing and could not be downloaded ({detail}). {how_to}")


def fetch(path: Path, urls: list[str], md5: str, download: bool, how_to: str) -> Path:
    """Return ``path`` once it exists and matches ``md5``, downloading it if allowed."""
    if not path.exists():
        if not download:
            raise DataUnavailableError(f"{path} is missing and download=False. {how_to}")
        download_file(urls, path, md5, how_to)
    verify(path, md5)
    return path
