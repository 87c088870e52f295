"""Image metrics against independent oracles: the Inception Score against scipy.stats.entropy,
the Fréchet distance against closed forms and against the pytorch-fid computation
(scipy.linalg.sqrtm), Stacked MNIST KL against scipy, and the Inception feature wrapper
through fake torch-fidelity modules (no download)."""

import math
import sys
import types
from urllib.error import URLError

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, stats

from gan_notes import image_metrics as im


def random_probs(n, k, seed, conc=0.3):
    return np.random.default_rng(seed).dirichlet(np.full(k, conc), size=n)


# --- Inception Score --------------------------------------------------------------------------


def is_reference(p, splits):
    """IS by scipy.stats.entropy (KL when given two distributions), chunk by chunk."""
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0)
        scores.append(np.exp(np.mean([stats.entropy(row, py) for row in part])))
    return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("splits", [1, 3, 10])
def test_inception_score_matches_scipy(splits):
    p = random_probs(103, 10, seed=splits)
    got = im.inception_score(p, splits=splits)
    np.testing.assert_allclose(got, is_reference(p, splits), rtol=1e-12, atol=1e-14)


def test_inception_score_torch_input_float32():
    p = random_probs(50, 7, seed=1)
    got = im.inception_score(torch.tensor(p, dtype=torch.float32), splits=2)
    np.testing.assert_allclose(got, is_reference(p, 2), rtol=1e-5, atol=1e-7)


def test_one_hot_uniform_classes_give_n_classes():
    p = np.eye(10)[np.arange(1000) % 10]
    mean, std = im.inception_score(p, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_identical_rows_give_one():
    p = np.tile(random_probs(1, 10, seed=2), (100, 1))
    mean, std = im.inception_score(p, splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 60), st.integers(2, 12), st.integers(1, 5), st.floats(0.05, 5), st.integers(0, 10**6))
def test_inception_score_bounds(n, k, splits, conc, seed):
    mean, std = im.inception_score(random_probs(n, k, seed, conc), splits=min(splits, n))
    assert 1 - 1e-9 <= mean <= k + 1e-9 and std >= 0


@pytest.mark.parametrize(
    "probs, splits, match",
    [
        (np.full((4, 3), 0.5), 1, "sum to 1"),
        (np.array([[1.5, -0.5]] * 4), 1, "negative"),
        (np.full((4, 2), np.nan), 1, "NaN"),
        (np.full(4, 0.25), 1, "dimension"),
        (np.full((4, 2), 0.5), 5, "splits"),
        (np.full((4, 2), 0.5), 0, "splits"),
    ],
)
def test_inception_score_bad_input(probs, splits, match):
    with pytest.raises(ValueError, match=match):
        im.inception_score(probs, splits=splits)


# --- Fréchet distance ---------------------------------------------------------------------------


def fd_pytorch_fid(mu1, s1, mu2, s2, eps=1e-6):
    """The pytorch-fid computation: scipy.linalg.sqrtm of the product, offset if singular."""
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        off = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_cov(d, seed, rank=None):
    a = np.random.default_rng(seed).normal(size=(d, rank or d))
    return a @ a.T / d


def test_one_dimensional_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    got = im.frechet_distance([0.5], [[4.0]], [-1.0], [[0.25]])
    assert got == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_diagonal_closed_form():
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert im.frechet_distance(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_matches_pytorch_fid_computation(seed):
    rng = np.random.default_rng(seed)
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = random_cov(8, seed), random_cov(8, seed + 100)
    assert im.frechet_distance(m1, s1, m2, s2) == pytest.approx(fd_pytorch_fid(m1, s1, m2, s2), rel=1e-8)


def test_symmetric_and_zero_for_identical():
    m1, m2 = np.arange(6.0), np.ones(6)
    s1, s2 = random_cov(6, 1), random_cov(6, 2)
    assert im.frechet_distance(m1, s1, m2, s2) == pytest.approx(im.frechet_distance(m2, s2, m1, s1), rel=1e-10)
    assert im.frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-10)


def test_singular_covariances_are_finite():
    s1, s2 = random_cov(10, 3, rank=3), random_cov(10, 4, rank=2)
    m = np.zeros(10)
    got = im.frechet_distance(m, s1, m, s2)
    assert math.isfinite(got) and got >= 0
    assert got == pytest.approx(fd_pytorch_fid(m, s1, m, s2), rel=1e-4)  # eps offset: 1e-4 agreement
    # Commuting singular covariances: the closed form is sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 0.0, 4.0]), np.array([0.0, 0.0, 1.0])
    assert im.frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(2.0, rel=1e-12)


def test_fid_of_samples():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 4))
    fake = rng.normal(size=(300, 4)) * 2 + 1
    mu1, s1 = real.mean(0), np.cov(real, rowvar=False)
    mu2, s2 = fake.mean(0), np.cov(fake, rowvar=False)
    assert im.fid(real, torch.tensor(fake)) == pytest.approx(fd_pytorch_fid(mu1, s1, mu2, s2), rel=1e-8)
    assert im.fid(real, real) == pytest.approx(0.0, abs=1e-10)
    # Fewer samples than dimensions: singular covariances, still finite.
    assert math.isfinite(im.fid(rng.normal(size=(5, 20)), rng.normal(size=(6, 20))))


@pytest.mark.parametrize(
    "args, match",
    [
        (([0.0, 0.0], np.eye(2), [0.0], np.eye(2)), "mu2"),
        (([0.0, 0.0], np.eye(3), [0.0, 0.0], np.eye(2)), "sigma1"),
        (([0.0, 0.0], np.eye(2), [0.0, 0.0], [[1.0, 1.0], [0.0, 1.0]]), "symmetric"),
        (([0.0, 0.0], np.eye(2), [0.0, 0.0], -np.eye(2)), "positive semi-definite"),
        (([np.nan, 0.0], np.eye(2), [0.0, 0.0], np.eye(2)), "NaN"),
    ],
)
def test_frechet_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        im.frechet_distance(*args)


def test_fid_bad_input():
    with pytest.raises(ValueError, match="same dimension"):
        im.fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="N >= 2"):
        im.fid(np.zeros((1, 3)), np.zeros((5, 3)))


# --- Stacked MNIST ------------------------------------------------------------------------------


def test_uniform_modes():
    labels = np.tile(np.arange(1000), 26)
    assert im.stacked_modes(labels) == 1000
    assert im.stacked_kl(labels) == pytest.approx(0.0, abs=1e-12)


def test_one_mode():
    labels = torch.full((26000,), 123)
    assert im.stacked_modes(labels) == 1
    assert im.stacked_kl(labels) == pytest.approx(math.log(1000), rel=1e-12)


def test_stacked_kl_matches_scipy():
    labels = np.random.default_rng(0).integers(0, 300, 5000)
    q = np.bincount(labels, minlength=1000) / 5000
    assert im.stacked_kl(labels) == pytest.approx(stats.entropy(q, np.full(1000, 1e-3)), rel=1e-12)
    assert im.stacked_modes(labels) == len(np.unique(labels))


@pytest.mark.parametrize(
    "labels, exc, match",
    [
        (np.array([0, 1000]), ValueError, "0..999"),
        (np.array([-1]), ValueError, "0..999"),
        (np.array([], dtype=int), ValueError, "non-empty"),
        (np.array([0.5]), TypeError, "integers"),
    ],
)
def test_stacked_bad_labels(labels, exc, match):
    with pytest.raises(exc, match=match):
        im.stacked_kl(labels)


class FakeClassifier:
    """Reads the digit from the brightest pixel column's position: (0, 0, 3*d)."""

    def predict(self, x, batch_size=1024):
        x = torch.as_tensor(x)
        return x[:, 0, 0, :].argmax(1) // 3


def test_stacked_mode_labels_classifies_each_channel():
    digits = np.array([[1, 2, 3], [9, 0, 7], [0, 0, 0]])
    x = -torch.ones(3, 3, 28, 28)
    for i, row in enumerate(digits):
        for c, d in enumerate(row):
            x[i, c, 0, 3 * d] = 1.0
    got = im.stacked_mode_labels(x, classifier=FakeClassifier())
    assert got.tolist() == [123, 907, 0] and got.dtype == torch.int64
    assert im.stacked_mode_labels(x.numpy(), classifier=FakeClassifier()).tolist() == [123, 907, 0]
    with pytest.raises(ValueError, match=r"\(N, 3, 28, 28\)"):
        im.stacked_mode_labels(x[:, :1], classifier=FakeClassifier())
    # Arguments swapped (a mistake the signature invites): a clear TypeError, before any training.
    with pytest.raises(TypeError, match="the classifier is the second argument"):
        im.stacked_mode_labels(FakeClassifier(), x)
    with pytest.raises(TypeError, match="predict method"):
        im.stacked_mode_labels(x, classifier="not a classifier")


# --- Inception features (torch-fidelity is optional; never downloads here) ---------------------


def install_fake_fidelity(monkeypatch, extractor_cls):
    pkg = types.ModuleType("torch_fidelity")
    mod = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    mod.FeatureExtractorInceptionV3 = extractor_cls
    monkeypatch.setitem(sys.modules, "torch_fidelity", pkg)
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", mod)


def test_inception_features_without_torch_fidelity(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import fails
    with pytest.raises(ImportError, match="pip install torch-fidelity"):
        im.inception_features(np.zeros((2, 3, 8, 8), np.uint8))


def test_inception_features_without_weights(monkeypatch):
    class Offline(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            raise URLError("no network (test)")

    install_fake_fidelity(monkeypatch, Offline)
    with pytest.raises(RuntimeError, match="need a network"):
        im.inception_features(np.zeros((2, 3, 8, 8), np.uint8))


def test_inception_features_batches_and_converts(monkeypatch):
    seen = []

    class Fake(torch.nn.Module):
        def __init__(self, name, features_list):
            super().__init__()
            assert features_list == ["2048", "logits_unbiased"]

        def forward(self, x):
            seen.append(x)
            mean = x.double().mean(dim=(1, 2, 3))
            return mean[:, None].repeat(1, 2048), torch.zeros(len(x), 1008)

    install_fake_fidelity(monkeypatch, Fake)
    images = torch.linspace(-1, 1, 5)[:, None, None, None].expand(5, 1, 4, 4)  # grayscale, [-1, 1]
    feats, probs = im.inception_features(images, batch_size=2)
    assert [len(b) for b in seen] == [2, 2, 1]
    assert all(b.dtype == torch.uint8 and b.shape[1] == 3 for b in seen)
    np.testing.assert_allclose(feats[:, 0], [0, 64, 128, 191, 255], atol=1)  # 127.5 (x + 1), rounded
    assert feats.shape == (5, 2048) and probs.shape == (5, 1008)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        im.inception_features(images * 3)
