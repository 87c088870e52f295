"""Data loaders: IDX parsing against hand-packed files, MD5 verification, atomic downloads
(through a fake ``urlopen``: no test touches the network), Stacked MNIST, CIFAR-10 batches
written in the official format, and the real MNIST test split when it is reachable."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from gan_notes import data, download

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    """The offline MNIST test split: $GAN_NOTES_DATA, else <repo>/../shared/data (development)."""
    for cand in (os.environ.get(data.ENV_DATA), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
            return Path(cand)
    return None


SHARED = _shared_data()
needs_mnist = pytest.mark.skipif(
    SHARED is None, reason="MNIST test split not found (set GAN_NOTES_DATA or use <repo>/../shared/data)"
)


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file packed by hand: 00 00 code ndim, big-endian sizes, data."""
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def small_mnist(n: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


@pytest.fixture
def offline(monkeypatch):
    """No network: every urlopen raises URLError and is counted."""
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        raise URLError("no network (test)")

    monkeypatch.setattr(download, "urlopen", fake)
    return calls


def write_mnist(folder: Path, split: str, images, labels, monkeypatch) -> dict:
    """Write gzipped IDX files for a split and make their MD5s the 'official' ones."""
    (folder / "mnist").mkdir(parents=True, exist_ok=True)
    blobs = dict(zip(data.MNIST_FILES[split], (gzip.compress(idx_bytes(images)), gzip.compress(idx_bytes(labels)))))
    for name, blob in blobs.items():
        (folder / "mnist" / name).write_bytes(blob)
    monkeypatch.setattr(data, "MNIST_MD5", {**data.MNIST_MD5, **{k: md5(v) for k, v in blobs.items()}})
    return blobs


# --- IDX --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C), (np.float64, 0x0E)])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, code, gz):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) if dtype != np.uint8 else np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(arr, code)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "longer"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "magic"),
        (lambda b: b[:6], "truncated"),
        (lambda b: b"", "magic"),
    ],
)
def test_read_idx_rejects_malformed(tmp_path, mutate, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(mutate(idx_bytes(np.zeros((2, 3), np.uint8))))
    with pytest.raises(ValueError, match=match):
        data.read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))[:-10])
    with pytest.raises(ValueError, match="gzip"):
        data.read_idx(path)


# --- load_mnist ---------------------------------------------------------------------------


def test_official_md5s_match_shared_md5sums():
    path = REPO.parent / "shared" / "data" / "mnist" / "MD5SUMS"
    if not path.exists():
        pytest.skip("../shared/data/mnist/MD5SUMS not reachable")
    for line in path.read_text().splitlines():
        digest, name = line.split()
        assert data.MNIST_MD5[name] == digest


def test_load_mnist_round_trip(tmp_path, monkeypatch, offline):
    images, labels = small_mnist()
    write_mnist(tmp_path, "test", images, labels, monkeypatch)
    x, y = data.load_mnist("test", root=tmp_path)
    assert x.dtype == torch.uint8 and x.shape == (7, 28, 28) and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert offline == []  # present files are never downloaded


def test_root_from_environment(tmp_path, monkeypatch, offline):
    images, labels = small_mnist()
    write_mnist(tmp_path, "test", images, labels, monkeypatch)
    monkeypatch.setenv(data.ENV_DATA, str(tmp_path))
    np.testing.assert_array_equal(data.load_mnist("test")[0].numpy(), images)


def test_default_root_is_xdg_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_DATA, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.data_root() == tmp_path / "gan_notes" / "data"
    assert data.data_root("/x/y") == Path("/x/y")


def test_wrong_md5_raises_and_returns_nothing(tmp_path, monkeypatch, offline):
    images, labels = small_mnist()
    write_mnist(tmp_path, "test", images, labels, monkeypatch)
    monkeypatch.setattr(data, "MNIST_MD5", {**data.MNIST_MD5, "t10k-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(download.ChecksumError, match="checksum mismatch"):
        data.load_mnist("test", root=tmp_path)
    assert offline == []  # a bad local file is reported, not silently replaced


def test_truncated_file_with_matching_md5_is_malformed(tmp_path, monkeypatch):
    images, labels = small_mnist()
    blobs = write_mnist(tmp_path, "test", images, labels, monkeypatch)
    name = data.MNIST_FILES["test"][0]
    cut = gzip.compress(gzip.decompress(blobs[name])[:-28])
    (tmp_path / "mnist" / name).write_bytes(cut)
    monkeypatch.setattr(data, "MNIST_MD5", {**data.MNIST_MD5, name: md5(cut)})
    with pytest.raises(ValueError, match="truncated"):
        data.load_mnist("test", root=tmp_path)


def test_label_count_must_match(tmp_path, monkeypatch):
    images, labels = small_mnist()
    write_mnist(tmp_path, "test", images, labels[:-1], monkeypatch)
    with pytest.raises(ValueError, match="one uint8 label per image"):
        data.load_mnist("test", root=tmp_path)


def test_missing_files_offline_say_how_to_get_them(tmp_path, offline):
    with pytest.raises(download.DataUnavailableError) as info:
        data.load_mnist("train", root=tmp_path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg and data.ENV_DATA in msg
    assert len(offline) == len(data.MNIST_MIRRORS)  # every mirror tried once
    assert not any(p.name.endswith(".part") for p in (tmp_path / "mnist").iterdir())


def test_no_download_when_disabled(tmp_path, offline):
    with pytest.raises(download.DataUnavailableError, match="download=False"):
        data.load_mnist("test", root=tmp_path, download=False)
    assert offline == []


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve(monkeypatch, files: dict[str, bytes], calls: list):
    def fake(url, timeout=None):
        calls.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise URLError(f"404 {url}")
        return FakeResponse(files[name])

    monkeypatch.setattr(download, "urlopen", fake)


def test_download_writes_atomically_and_verifies(tmp_path, monkeypatch):
    images, labels = small_mnist()
    blobs = {
        "t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images)),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(labels)),
    }
    monkeypatch.setattr(data, "MNIST_MD5", {**data.MNIST_MD5, **{k: md5(v) for k, v in blobs.items()}})
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(download.os, "replace", spy)
    calls = []
    serve(monkeypatch, blobs, calls)
    x, y = data.load_mnist("test", root=tmp_path)
    np.testing.assert_array_equal(x.numpy(), images)
    assert calls == [data.MNIST_MIRRORS[0] + n for n in data.MNIST_FILES["test"]]
    # Each file went to a temporary name in the same folder, then was renamed into place.
    assert [d.name for _, d in replaced] == list(data.MNIST_FILES["test"])
    assert all(s.parent == d.parent and s.name.endswith(".part") for s, d in replaced)
    # A second load reads the files.
    data.load_mnist("test", root=tmp_path)
    assert len(calls) == 2


def test_download_falls_back_to_next_mirror(tmp_path, monkeypatch):
    images, labels = small_mnist()
    blob = gzip.compress(idx_bytes(labels))
    name = "t10k-labels-idx1-ubyte.gz"
    monkeypatch.setattr(data, "MNIST_MD5", {**data.MNIST_MD5, name: md5(blob)})
    calls = []

    def fake(url, timeout=None):
        calls.append(url)
        if url.startswith(data.MNIST_MIRRORS[0]):
            raise URLError("mirror down")
        return FakeResponse(blob)

    monkeypatch.setattr(download, "urlopen", fake)
    download.fetch(tmp_path / name, [m + name for m in data.MNIST_MIRRORS], md5(blob), True, "")
    assert (tmp_path / name).read_bytes() == blob and len(calls) == 2


def test_read_only_folder_is_unavailable_not_a_crash(tmp_path, monkeypatch, offline):
    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(download.tempfile, "TemporaryFile", read_only)
    with pytest.raises(download.DataUnavailableError, match="cannot be downloaded into"):
        data.load_mnist("test", root=tmp_path)
    assert offline == []


def test_downloaded_bytes_with_wrong_md5_are_not_kept(tmp_path, monkeypatch):
    calls = []
    serve(monkeypatch, {n: b"not mnist" for n in data.MNIST_MD5}, calls)
    with pytest.raises(download.ChecksumError, match="checksum mismatch"):
        data.load_mnist("test", root=tmp_path)
    assert list((tmp_path / "mnist").iterdir()) == []  # nothing written, no temp file left


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")
    with pytest.raises(ValueError, match="split"):
        data.load_cifar10("val")


@needs_mnist
def test_real_mnist_test_split():
    x, y = data.load_mnist("test", root=SHARED, download=False)
    assert x.shape == (10000, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (10000,) and y.dtype == torch.int64
    # Known facts of the official test split: first labels, class counts, pixel range.
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(x.min()) == 0 and int(x.max()) == 255


# --- images_to_float, stacked MNIST --------------------------------------------------------


def test_images_to_float():
    u = torch.tensor([[[0, 255], [51, 204]]], dtype=torch.uint8)
    x = data.images_to_float(u)
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0, 0].numpy(), [[-1.0, 1.0], [-0.6, 0.6]], rtol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        data.images_to_float(torch.zeros(1, 2, 2))


def test_stacked_mnist_modes_and_channels():
    images, labels = small_mnist(20, seed=1)
    g = torch.Generator().manual_seed(3)
    x, modes = data.stacked_mnist(torch.from_numpy(images), torch.from_numpy(labels), 500, generator=g)
    assert x.shape == (500, 3, 28, 28) and x.dtype == torch.uint8 and modes.dtype == torch.int64
    # Recover each channel's source digit by matching images (the random images are distinct).
    flat = torch.from_numpy(images).reshape(20, -1)
    for i in range(0, 500, 37):
        src = [int((flat == x[i, c].reshape(1, -1)).all(1).nonzero()) for c in range(3)]
        d = labels[src].astype(np.int64)
        assert int(modes[i]) == 100 * d[0] + 10 * d[1] + d[2]
    # Same seed, same data; NumPy in, NumPy out.
    x2, m2 = data.stacked_mnist(images, labels, 500, generator=torch.Generator().manual_seed(3))
    assert isinstance(x2, np.ndarray) and isinstance(m2, np.ndarray)
    np.testing.assert_array_equal(m2, modes.numpy())


def test_stacked_mnist_reaches_all_modes():
    # One image per digit: 20,000 draws over 1,000 equally likely modes miss none
    # (P(a given mode is missed) = (1 - 1/1000)^20000 ~ 2e-9).
    images = np.zeros((10, 1, 1), np.uint8)  # any image size works; 1x1 keeps it cheap
    x, modes = data.stacked_mnist(images, np.arange(10), 20_000, generator=torch.Generator().manual_seed(0))
    assert len(np.unique(modes)) == 1000


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must"),
        ({"labels": np.arange(5)}, "labels must have shape"),
        ({"labels": np.full(10, 10)}, "digits"),
        ({"images": np.zeros((10, 28))}, "images must have shape"),
    ],
)
def test_stacked_mnist_bad_input(kwargs, match):
    args = {"images": np.zeros((10, 28, 28), np.uint8), "labels": np.arange(10), "n": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        data.stacked_mnist(**args)


# --- CIFAR-10 --------------------------------------------------------------------------------


def cifar_batches(n: int = 4, seed: int = 0) -> dict[str, bytes]:
    """Pickled batches in the official format: dicts with b"data" uint8 (n, 3072), b"labels"."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate([*data.CIFAR10_FILES["train"], *data.CIFAR10_FILES["test"]]):
        batch = {
            b"batch_label": f"batch {i}".encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"x.png"] * n,
        }
        out[name] = pickle.dumps(batch, protocol=2)
    out["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2)
    return out


def cifar_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in files.items():
            info = tarfile.TarInfo(f"{data.CIFAR10_DIR}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def official_md5s(monkeypatch, files):
    monkeypatch.setattr(data, "CIFAR10_FILE_MD5", {k: md5(v) for k, v in files.items()})


def check_cifar(images, labels, files, split):
    names = data.CIFAR10_FILES[split]
    batches = [pickle.loads(files[n], encoding="bytes") for n in names]
    assert images.dtype == torch.uint8 and images.shape == (4 * len(names), 3, 32, 32)
    assert labels.dtype == torch.int64 and labels.tolist() == sum((b[b"labels"] for b in batches), [])
    # Official row layout: 1,024 red, then 1,024 green, then 1,024 blue values, row-major.
    row = batches[0][b"data"][1]
    for c in range(3):
        np.testing.assert_array_equal(images[1, c].numpy(), row[1024 * c : 1024 * (c + 1)].reshape(32, 32))


def test_cifar_from_extracted_batches(tmp_path, monkeypatch, offline):
    files = cifar_batches()
    (tmp_path / data.CIFAR10_DIR).mkdir()
    for name, blob in files.items():
        (tmp_path / data.CIFAR10_DIR / name).write_bytes(blob)
    official_md5s(monkeypatch, files)
    for split in ("train", "test"):
        check_cifar(*data.load_cifar10(split, root=tmp_path), files, split)
    assert offline == []


def test_cifar_batch_with_wrong_md5(tmp_path, monkeypatch):
    files = cifar_batches()
    (tmp_path / data.CIFAR10_DIR).mkdir()
    for name, blob in files.items():
        (tmp_path / data.CIFAR10_DIR / name).write_bytes(blob)
    official_md5s(monkeypatch, {**files, "test_batch": b"other"})
    with pytest.raises(download.ChecksumError, match="test_batch"):
        data.load_cifar10("test", root=tmp_path)


def test_cifar_from_archive(tmp_path, monkeypatch, offline):
    files = cifar_batches()
    tar = cifar_tar(files)
    (tmp_path / data.CIFAR10_ARCHIVE).write_bytes(tar)
    official_md5s(monkeypatch, files)
    monkeypatch.setattr(data, "CIFAR10_MD5", md5(tar))
    check_cifar(*data.load_cifar10("test", root=tmp_path), files, "test")
    assert offline == []


def test_cifar_archive_with_wrong_checksum_is_not_extracted(tmp_path, monkeypatch, offline):
    files = cifar_batches()
    (tmp_path / data.CIFAR10_ARCHIVE).write_bytes(cifar_tar(files))
    official_md5s(monkeypatch, files)  # the archive keeps the real official MD5: mismatch
    with pytest.raises(download.ChecksumError, match="checksum mismatch"):
        data.load_cifar10("train", root=tmp_path)
    assert not (tmp_path / data.CIFAR10_DIR).exists()


def test_cifar_download(tmp_path, monkeypatch):
    files = cifar_batches()
    tar = cifar_tar(files)
    official_md5s(monkeypatch, files)
    monkeypatch.setattr(data, "CIFAR10_MD5", md5(tar))
    calls = []
    serve(monkeypatch, {data.CIFAR10_ARCHIVE: tar}, calls)
    check_cifar(*data.load_cifar10("train", root=tmp_path), files, "train")
    assert calls == [data.CIFAR10_URL]
    assert (tmp_path / data.CIFAR10_ARCHIVE).read_bytes() == tar


def test_cifar_offline_message(tmp_path, offline):
    with pytest.raises(download.DataUnavailableError) as info:
        data.load_cifar10("train", root=tmp_path)
    assert data.CIFAR10_ARCHIVE in str(info.value) and data.ENV_DATA in str(info.value)
    assert offline == [data.CIFAR10_URL]


def test_cifar_malformed_batch(tmp_path, monkeypatch):
    files = cifar_batches()
    files["test_batch"] = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    (tmp_path / data.CIFAR10_DIR).mkdir()
    for name, blob in files.items():
        (tmp_path / data.CIFAR10_DIR / name).write_bytes(blob)
    official_md5s(monkeypatch, files)
    with pytest.raises(ValueError, match="3072"):
        data.load_cifar10("test", root=tmp_path)
