r"""Metrics of image generators: Inception Score, Fréchet distance (FID), Stacked MNIST modes.

All of them compare distributions through a fixed classifier: on MNIST the package's own
:func:`gan_notes.classifier.digit_classifier`; on CIFAR-10 the Inception-v3 network of
the literature (:func:`inception_features`, which needs ``torch-fidelity`` and a network
to fetch its weights). Precision, recall, density and coverage of the same features are
:func:`gan_notes.metrics.prdc`.

The functions take NumPy arrays or torch tensors and return Python floats (summary
numbers, like :mod:`gan_notes.metrics`); they compute in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import rel_entr

__all__ = [
    "inception_score",
    "feature_statistics",
    "frechet_distance",
    "fid",
    "stacked_modes",
    "stacked_kl",
    "stacked_mode_labels",
    "inception_features",
]

STACKED_MODES = 1000


def _float64(name: str, x, ndim: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array") from err
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    r"""Inception Score of class probabilities (Salimans et al. 2016).

    .. math::

        \mathrm{IS} = \exp\Big(\E_x\, \KL\big(p(y \mid x) \,\|\, p(y)\big)\Big),
        \qquad p(y) = \E_x\, p(y \mid x),

    computed on each of ``splits`` consecutive chunks of the samples (``numpy.array_split``:
    every sample is used), with :math:`0 \log 0 = 0`. It lies in :math:`[1, K]` for K
    classes: 1 when every sample gets the same prediction, K when the predictions are
    confident (one-hot) and spread evenly over the classes.

    Parameters
    ----------
    probs : array (N, K)
        Rows :math:`p(y \mid x_i)`: non-negative, summing to 1 (within 1e-3).
    splits : int
        Number of chunks, ``1 <= splits <= N``.

    Returns
    -------
    (mean, std) over the chunks (``std`` with ``ddof=0``, as in the original code).

    See also
    --------
    gan_notes.classifier.DigitClassifier.probs; the image chapters (Part III).
    """
    p = _float64("probs", probs, 2)
    n, k = p.shape
    if n == 0 or k == 0:
        raise ValueError(f"probs must be non-empty, got shape {p.shape}")
    if (p < 0).any():
        raise ValueError("probs has negative entries")
    if np.abs(p.sum(axis=1) - 1).max() > 1e-3:
        raise ValueError("each row of probs must sum to 1 (pass softmax outputs, not logits)")
    if not isinstance(splits, int) or isinstance(splits, bool) or not 1 <= splits <= n:
        raise ValueError(f"splits must be an int in [1, {n}], got {splits!r}")
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        # rel_entr(p, q) = p log(p/q) with 0 log 0 = 0 (and p(y) > 0 wherever p(y|x) > 0).
        scores.append(math.exp(rel_entr(part, py).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and covariance of features (N, d): :math:`\mu = \bar f`,
    :math:`\Sigma = \frac{1}{N-1}\sum_i (f_i - \mu)(f_i - \mu)^\top` (``numpy.cov``).

    Compute the real data's statistics once and pass them to :func:`frechet_distance`.

    See also
    --------
    fid.
    """
    f = _float64("features", features, 2)
    if f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"features must have shape (N, d) with N >= 2, got {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""Squared Fréchet (2-Wasserstein) distance between two Gaussians.

    .. math::

        d^2 = \|\mu_1 - \mu_2\|^2
              + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big),

    with :math:`\operatorname{Tr}(\Sigma_1\Sigma_2)^{1/2} = \sum_i \sqrt{\lambda_i}`, the
    :math:`\lambda_i \ge 0` being the eigenvalues of the symmetric matrix
    :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}` (it is similar to :math:`\Sigma_1\Sigma_2`).
    Symmetric eigendecompositions stay real and finite when a covariance is singular
    (fewer samples than dimensions), where ``scipy.linalg.sqrtm`` of the non-symmetric
    product needs the small diagonal offset of pytorch-fid. Rounding below zero is clipped.

    Parameters
    ----------
    mu1, mu2 : array (d,)
    sigma1, sigma2 : array (d, d), symmetric positive semi-definite

    See also
    --------
    fid; gan_notes.divergences (the 1-D case is :math:`(\mu_1-\mu_2)^2 + (\sigma_1-\sigma_2)^2`).
    """
    m1, m2 = _float64("mu1", mu1, 1), _float64("mu2", mu2, 1)
    s1, s2 = _float64("sigma1", sigma1, 2), _float64("sigma2", sigma2, 2)
    d = m1.shape[0]
    if m2.shape != (d,):
        raise ValueError(f"mu2 must have shape ({d},) like mu1, got {m2.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}), got {s.shape}")
        if not np.allclose(s, s.T, rtol=1e-6, atol=1e-8 * max(1.0, np.abs(s).max())):
            raise ValueError(f"{name} must be symmetric")
        if np.linalg.eigvalsh(s).min() < -1e-6 * max(1.0, np.abs(s).max()):
            raise ValueError(f"{name} must be positive semi-definite")
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(lam, 0, None)).sum()
    value = float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(value, 0.0)


def fid(real_features, fake_features) -> float:
    r"""Fréchet Inception Distance (Heusel et al. 2017) between two feature sets.

    :func:`frechet_distance` of the Gaussians fitted by :func:`feature_statistics`. With
    Inception-v3 pool features (:func:`inception_features`) it is the FID of the
    literature; with :meth:`~gan_notes.classifier.DigitClassifier.features` it is the
    MNIST analogue. Its estimate is biased upwards for small N: compare only values computed
    with the same N.

    Parameters
    ----------
    real_features : array (N, d); fake_features : array (M, d)

    See also
    --------
    frechet_distance, inception_features; the image chapters (Part III).
    """
    mu1, s1 = feature_statistics(real_features)
    mu2, s2 = feature_statistics(fake_features)
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"real_features and fake_features must have the same dimension, got {mu1.shape[0]} and {mu2.shape[0]}"
        )
    return frechet_distance(mu1, s1, mu2, s2)


def _mode_counts(mode_labels, n_modes: int) -> np.ndarray:
    if isinstance(mode_labels, torch.Tensor):
        mode_labels = mode_labels.detach().cpu().numpy()
    m = np.asarray(mode_labels)
    if m.ndim != 1 or m.size == 0:
        raise ValueError(f"mode_labels must be a non-empty 1-D array, got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.integer):
        raise TypeError(f"mode_labels must be integers, got {m.dtype}")
    if m.min() < 0 or m.max() >= n_modes:
        raise ValueError(f"mode_labels must lie in 0..{n_modes - 1}")
    return np.bincount(m, minlength=n_modes)


def stacked_modes(mode_labels, n_modes: int = STACKED_MODES) -> int:
    """Number of distinct modes among generated samples' mode labels (0..n_modes-1).

    See also
    --------
    stacked_kl, stacked_mode_labels, gan_notes.data.stacked_mnist.
    """
    return int((_mode_counts(mode_labels, n_modes) > 0).sum())


def stacked_kl(mode_labels, n_modes: int = STACKED_MODES) -> float:
    r"""KL divergence (natural log) of the generated mode histogram from the uniform one.

    .. math::

        \KL(\hat q \,\|\, u) = \sum_k \hat q_k \log(K \hat q_k), \qquad 0 \log 0 = 0,

    0 for a perfectly even spread over the K = 1,000 Stacked MNIST modes, :math:`\log K`
    when every sample falls in one mode. The PacGAN protocol classifies 26,000 samples.

    See also
    --------
    stacked_modes; gan_notes.metrics.mode_coverage (the same KL on toy mixtures).
    """
    counts = _mode_counts(mode_labels, n_modes)
    q = counts[counts > 0] / counts.sum()
    return float(max((q * np.log(n_modes * q)).sum(), 0.0))


def stacked_mode_labels(images, classifier=None, batch_size: int = 1024):
    r"""Mode labels :math:`100\,d_1 + 10\,d_2 + d_3` of Stacked MNIST images.

    Classifies each of the three channels with the digit classifier.

    Parameters
    ----------
    images : array (N, 3, 28, 28)
        Float in :math:`[-1, 1]` or uint8.
    classifier : DigitClassifier, optional
        Default :func:`gan_notes.classifier.digit_classifier` (trained once, cached).

    Returns
    -------
    (N,) int64 array, same kind as ``images``.

    See also
    --------
    stacked_modes, stacked_kl, gan_notes.data.stacked_mnist.
    """
    if isinstance(images, torch.nn.Module) or not (isinstance(images, torch.Tensor) or np.asarray(images).dtype.kind in "fiub"):
        raise TypeError(f"images must be a numeric array or tensor (N, 3, 28, 28), got {type(images).__name__} "
                        "(the classifier is the second argument)")
    if classifier is not None and not hasattr(classifier, "predict"):
        raise TypeError(f"classifier must have a predict method (a DigitClassifier), got {type(classifier).__name__}")
    if classifier is None:
        from gan_notes.classifier import digit_classifier

        classifier = digit_classifier()
    was_numpy = not isinstance(images, torch.Tensor)
    x = torch.as_tensor(np.asarray(images)) if was_numpy else images.detach()
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, 28, 28):
        raise ValueError(f"images must have shape (N, 3, 28, 28), got {tuple(x.shape)}")
    # The three channels become 3N single-channel digits, in channel-major order.
    digits = torch.as_tensor(classifier.predict(x.transpose(0, 1).reshape(-1, 1, 28, 28), batch_size))
    d = digits.reshape(3, -1).to(torch.int64)
    modes = 100 * d[0] + 10 * d[1] + d[2]
    return modes.cpu().numpy() if was_numpy else modes.to(x.device)


def inception_features(images, batch_size: int = 64, device=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Inception-v3 pool features (N, 2048) and class probabilities (N, 1008) of images.

    Uses the Inception network of the TensorFlow FID/IS reference implementation as ported
    by ``torch-fidelity`` (images resized to 299x299 as TensorFlow 1 did). That library is
    not a dependency of this package: ``pip install torch-fidelity``; its weights (about
    100 MB) are downloaded on first use, so this needs a network (e.g. Colab) once.

    Parameters
    ----------
    images : array (N, 3, H, W) or (N, 1, H, W)
        uint8 (0..255) or float in :math:`[-1, 1]`; grayscale is repeated to RGB.
    batch_size : int
    device : torch.device or str, optional

    Returns
    -------
    features : (N, 2048) float64, for :func:`fid` and :func:`gan_notes.metrics.prdc`
    probs : (N, 1008) float64, for :func:`inception_score`

    Raises
    ------
    ImportError
        If ``torch-fidelity`` is not installed.
    RuntimeError
        If its weights are not cached and cannot be downloaded.

    See also
    --------
    fid, inception_score, gan_notes.data.load_cifar10.
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError(
            "inception_features needs torch-fidelity (pip install torch-fidelity) and, on first "
            "use, a network to download the Inception weights (e.g. in Colab)"
        ) from err
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images.detach()
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"images must have shape (N, 3, H, W) or (N, 1, H, W), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        if not x.is_floating_point():
            raise TypeError(f"images must be uint8 or float in [-1, 1], got {x.dtype}")
        if float(x.min()) < -1.01 or float(x.max()) > 1.01:
            raise ValueError("float images must lie in [-1, 1]")
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # the extractor wants uint8
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    except Exception as err:  # the weight download fails offline with various error types
        raise RuntimeError(
            "could not load the Inception-v3 weights of torch-fidelity; they are downloaded on "
            f"first use and need a network (e.g. Colab): {err}"
        ) from err
    dev = torch.device(device) if device is not None else torch.device("cpu")
    net = net.to(dev)
    feats, probs = [], []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            f, logits = net(chunk.to(dev))
            feats.append(f.double().cpu())
            probs.append(torch.softmax(logits.double(), dim=1).cpu())
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
