"""Unit tests of gan_notes.losses: the values of the minimax and non-saturating losses,
their stability at extreme logits and the gradient identities of chapter 04."""

import numpy as np
import pytest
import torch

from gan_notes.losses import (
    LOSSES,
    TWO_DISCRIMINATOR_LOSSES,
    d2gan_discriminator_loss,
    d2gan_generator_loss,
    discriminator_loss,
    dual_discriminator_loss,
    dual_generator_loss,
    generator_loss,
)

# The two losses of the original game (chapters 01 and 04).
GAME_LOSSES = ("minimax", "non_saturating")


def _sigmoid(a):
    """Independent oracle: 1 / (1 + e^-a) in float64 NumPy."""
    return 1.0 / (1.0 + np.exp(-np.asarray(a, dtype=np.float64)))


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    real = 3 * torch.randn(64, 1, dtype=torch.float64, generator=g)
    fake = 3 * torch.randn(48, 1, dtype=torch.float64, generator=g) - 1
    return real, fake


def test_loss_names():
    assert set(GAME_LOSSES) <= set(LOSSES)
    assert len(set(LOSSES)) == len(LOSSES)


@pytest.mark.parametrize("kind", GAME_LOSSES)
def test_discriminator_loss_is_the_naive_formula(kind, logits):
    real, fake = logits
    d_real, d_fake = _sigmoid(real.numpy()), _sigmoid(fake.numpy())
    # At moderate logits (|a| < ~15) the naive formula is accurate.
    naive = -np.mean(np.log(d_real)) - np.mean(np.log(1 - d_fake))
    got = discriminator_loss(kind, real, fake)
    assert got.dim() == 0
    np.testing.assert_allclose(got.item(), naive, rtol=1e-10)


def test_generator_losses_are_the_naive_formulas(logits):
    _, fake = logits
    d_fake = _sigmoid(fake.numpy())
    np.testing.assert_allclose(generator_loss("minimax", fake).item(), np.mean(np.log(1 - d_fake)), rtol=1e-10)
    np.testing.assert_allclose(generator_loss("non_saturating", fake).item(), -np.mean(np.log(d_fake)), rtol=1e-10)


def test_losses_accept_any_shape_and_float32():
    a = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    b = torch.tensor([1.0, -2.0, 0.3])
    out = discriminator_loss("minimax", a, b)
    assert out.dtype == torch.float32 and out.dim() == 0
    naive = -np.mean(np.log(_sigmoid(a.numpy()))) - np.mean(np.log(1 - _sigmoid(b.numpy())))
    np.testing.assert_allclose(out.item(), naive, rtol=1e-6)


@pytest.mark.parametrize("kind", GAME_LOSSES)
def test_finite_values_and_gradients_at_extreme_logits(kind):
    # log(sigmoid(-100)) would be log(0) = -inf in float32; the losses never form it.
    for dtype in (torch.float32, torch.float64):
        real = torch.tensor([100.0, -100.0], dtype=dtype, requires_grad=True)
        fake = torch.tensor([-100.0, 100.0], dtype=dtype, requires_grad=True)
        d = discriminator_loss(kind, real, fake)
        g = generator_loss(kind, fake)
        assert torch.isfinite(d) and torch.isfinite(g)
        # softplus(100) = 100 exactly in floating point: mean over 2 of (0 + 100).
        np.testing.assert_allclose(d.item(), 0.5 * 100 + 0.5 * 100, rtol=1e-6)
        d.backward()
        assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
        # d/da softplus(-a)/2 = -sigmoid(-a)/2: -1/2 at a = -100 (D fooled), ~0 at a = 100.
        np.testing.assert_allclose(real.grad.double().numpy(), [0.0, -0.5], atol=1e-30)
        fake.grad = None
        generator_loss(kind, fake).backward()
        assert torch.isfinite(fake.grad).all()
    expected_g = {"minimax": -50.0, "non_saturating": 50.0}[kind]
    np.testing.assert_allclose(g.item(), expected_g, rtol=1e-12)


def _per_sample_grad(kind, a):
    a = a.clone().requires_grad_(True)
    # The loss is a mean: n times its gradient is the per-sample derivative.
    (generator_loss(kind, a) * a.numel()).backward()
    return a.grad.numpy()


A = torch.linspace(-30, 30, 61, dtype=torch.float64)
# torch's softplus is exact up to |input| = 20 and the identity beyond it (its documented
# `threshold`), which is off by at most e^-20 ~ 2.1e-9 relative: below float32 resolution.
EXACT = A.abs().numpy() <= 20
THRESHOLD_RTOL = np.exp(-20.0)


def _check_identity(got, expected):
    np.testing.assert_allclose(got[EXACT], expected[EXACT], rtol=1e-12, atol=0)
    np.testing.assert_allclose(got[~EXACT], expected[~EXACT], rtol=THRESHOLD_RTOL, atol=0)


def test_minimax_generator_gradient_is_minus_d():
    # d/da log(1 - sigmoid(a)) = -sigmoid(a) = -D: it vanishes when D rejects the fakes
    # (a -> -inf), the saturation of chapter 04.
    grad = _per_sample_grad("minimax", A)
    _check_identity(grad, -_sigmoid(A.numpy()))
    assert abs(grad[0]) < 1e-12  # a = -30: no signal for G


def test_non_saturating_generator_gradient_is_minus_one_minus_d():
    # d/da [-log sigmoid(a)] = -(1 - sigmoid(a)) = -(1 - D), written sigmoid(-a) to avoid
    # cancellation near a = 30: strong exactly where the minimax gradient vanishes.
    grad = _per_sample_grad("non_saturating", A)
    _check_identity(grad, -_sigmoid(-A.numpy()))
    np.testing.assert_allclose(grad[0], -1.0, rtol=1e-12)  # a = -30: full signal


def test_gradients_match_finite_differences(logits):
    real, fake = (t[:8].clone().requires_grad_(True) for t in logits)
    for kind in GAME_LOSSES:
        assert torch.autograd.gradcheck(lambda r, f: discriminator_loss(kind, r, f), (real, fake))
        assert torch.autograd.gradcheck(lambda f: generator_loss(kind, f), (fake,))


# --- bad inputs --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wasserstein-ish", "Minimax", "", "non-saturating"])
def test_unknown_kind_lists_the_valid_names(kind):
    x = torch.zeros(3)
    for call in (lambda: discriminator_loss(kind, x, x), lambda: generator_loss(kind, x)):
        with pytest.raises(ValueError, match="unknown loss") as err:
            call()
        assert all(name in str(err.value) for name in LOSSES)


@pytest.mark.parametrize("kind", LOSSES)
def test_empty_and_nan_logits(kind):
    ok = torch.zeros(3)
    with pytest.raises(ValueError, match=r"\breal_logits is empty"):
        discriminator_loss(kind, torch.zeros(0), ok)
    with pytest.raises(ValueError, match=r"\bfake_logits is empty"):
        discriminator_loss(kind, ok, torch.zeros(0, 1))
    with pytest.raises(ValueError, match=r"\bfake_logits is empty"):
        generator_loss(kind, torch.zeros(0))
    # Pure losses: NaN logits give a NaN loss without a host check; the loops' guard reports it
    # (tests/test_train.py: TrainingDiverged names the step and the loss).
    nan = torch.tensor([0.0, float("nan")])
    assert torch.isnan(discriminator_loss(kind, nan, ok)) and torch.isnan(discriminator_loss(kind, ok, nan))
    assert torch.isnan(generator_loss(kind, nan))


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("bad", [[0.0, 1.0], np.zeros(3), 0.5])
def test_non_tensors_raise_type_error(kind, bad):
    ok = torch.zeros(3)
    with pytest.raises(TypeError, match=r"\breal_logits must be a torch tensor"):
        discriminator_loss(kind, bad, ok)
    with pytest.raises(TypeError, match=r"\bfake_logits must be a torch tensor"):
        discriminator_loss(kind, ok, bad)
    with pytest.raises(TypeError, match=r"\bfake_logits must be a torch tensor"):
        generator_loss(kind, bad)


@pytest.mark.parametrize("kind", LOSSES)
def test_every_loss_is_finite_at_extreme_logits(kind):
    a = torch.tensor([100.0, -100.0, 0.0], requires_grad=True)
    b = torch.tensor([-100.0, 100.0, 0.0], requires_grad=True)
    total = discriminator_loss(kind, a, b) + generator_loss(kind, b)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_new_losses_against_their_formulas():
    r, f = torch.randn(50), torch.randn(50)
    torch.testing.assert_close(discriminator_loss("lsgan", r, f), ((r - 1) ** 2).mean() + (f**2).mean())
    torch.testing.assert_close(generator_loss("lsgan", f), ((f - 1) ** 2).mean())
    torch.testing.assert_close(discriminator_loss("wgan", r, f), f.mean() - r.mean())
    torch.testing.assert_close(generator_loss("wgan", f), -f.mean())
    torch.testing.assert_close(discriminator_loss("hinge", r, f), torch.relu(1 - r).mean() + torch.relu(1 + f).mean())
    torch.testing.assert_close(generator_loss("hinge", f), -f.mean())


# --- the Chapter 07 games, written out (asymmetric logits, so that a negated logit shows) -------

# Fixed logits of two discriminators on a real and a generated batch; no set is symmetric
# about 0, so softplus(a) and softplus(-a) have different means.
D1_REAL = torch.tensor([1.3, -0.4, 2.2, 0.7], dtype=torch.float64)
D1_FAKE = torch.tensor([-1.1, 0.5, -2.4], dtype=torch.float64)
D2_REAL = torch.tensor([-0.9, 0.2, -1.7, 0.4], dtype=torch.float64)
D2_FAKE = torch.tensor([0.8, 1.9, -0.3], dtype=torch.float64)


def test_d2gan_defaults_are_the_papers_constants():
    # Nguyen et al. 2017 use alpha = 0.2, beta = 0.1; D_k = softplus(a_k) = log(1 + e^a).
    sp = lambda a: torch.log1p(torch.exp(a))  # noqa: E731
    expected_d = (-0.2 * torch.log(sp(D1_REAL)).mean() + sp(D1_FAKE).mean()
                  + sp(D2_REAL).mean() - 0.1 * torch.log(sp(D2_FAKE)).mean())
    torch.testing.assert_close(d2gan_discriminator_loss(D1_REAL, D1_FAKE, D2_REAL, D2_FAKE), expected_d)
    expected_g = -sp(D1_FAKE).mean() + 0.1 * torch.log(sp(D2_FAKE)).mean()
    torch.testing.assert_close(d2gan_generator_loss(D1_FAKE, D2_FAKE), expected_g)


@pytest.mark.parametrize("loss", TWO_DISCRIMINATOR_LOSSES)
def test_dual_losses_are_the_written_out_formulas(loss):
    """D2 calls generated samples positive: its loss is D's with the batches' roles swapped, and
    G wants D2 to call its samples data."""
    s = torch.sigmoid
    if loss in ("minimax", "non_saturating"):
        d = (-torch.log(s(D1_REAL)).mean() - torch.log(1 - s(D1_FAKE)).mean()
             - torch.log(s(D2_FAKE)).mean() - torch.log(1 - s(D2_REAL)).mean())
    elif loss == "hinge":
        d = (torch.clamp(1 - D1_REAL, min=0).mean() + torch.clamp(1 + D1_FAKE, min=0).mean()
             + torch.clamp(1 - D2_FAKE, min=0).mean() + torch.clamp(1 + D2_REAL, min=0).mean())
    else:  # wgan
        d = -D1_REAL.mean() + D1_FAKE.mean() - D2_FAKE.mean() + D2_REAL.mean()
    if loss == "minimax":  # G minimises the G terms of V
        g = torch.log(1 - s(D1_FAKE)).mean() + torch.log(s(D2_FAKE)).mean()
    elif loss == "non_saturating":
        g = -torch.log(s(D1_FAKE)).mean() - torch.log(1 - s(D2_FAKE)).mean()
    else:  # wgan, hinge
        g = -D1_FAKE.mean() + D2_FAKE.mean()
    torch.testing.assert_close(dual_discriminator_loss(D1_REAL, D1_FAKE, D2_REAL, D2_FAKE, loss=loss), d)
    torch.testing.assert_close(dual_generator_loss(D1_FAKE, D2_FAKE, loss=loss), g)
    with pytest.raises(ValueError, match="second discriminator"):
        dual_generator_loss(D1_FAKE, D2_FAKE, loss="lsgan")
