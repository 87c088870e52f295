"""Unit tests of the Chapter 07 loss zoo in gan_notes.losses: D2GAN, the dual-discriminator
GAN and BEGAN, against pointwise optima (SciPy), gan_notes.theory, autograd and a loop under
torch.func.vmap."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import optimize
from torch.func import vmap

from gan_notes.losses import (
    began_convergence,
    began_k_update,
    began_losses,
    began_reconstruction,
    d2gan_discriminator_loss,
    d2gan_generator_loss,
    dual_discriminator_loss,
    dual_generator_loss,
)
from gan_notes.theory import dual_value_function, optimal_dual_discriminators

S = 3
# A discrete p_data and p_g with rational masses: a batch that repeats grid point i
# counts[i] times has batch means equal to the expectations.
COUNTS_DATA = np.array([1, 3, 2, 6, 4])
COUNTS_G = np.array([4, 1, 5, 2, 4])


def _batches(a_grid):
    """Real and generated batches of per-point logits a_grid (which may require grad)."""
    idx_real = torch.as_tensor(np.repeat(np.arange(5), COUNTS_DATA))
    idx_fake = torch.as_tensor(np.repeat(np.arange(5), COUNTS_G))
    return a_grid[..., idx_real], a_grid[..., idx_fake]


def _softplus_inv(y):
    return np.log(np.expm1(y))


# --- D2GAN --------------------------------------------------------------------------


@pytest.mark.parametrize("p, q", [(0.3, 0.7), (0.8, 0.1), (0.05, 0.5)])
@pytest.mark.parametrize("alpha, beta", [(0.2, 0.1), (1.0, 1.0)])
def test_d2gan_pointwise_optimum_matches_paper(p, q, alpha, beta):
    # Pointwise, minimising p * [real terms](a) + q * [fake terms](a) over each logit gives
    # D1* = alpha p/q and D2* = beta q/p (Nguyen et al. 2017, Prop. 1).
    def objective(a1, a2):
        # p * (the loss's real-sample terms at logits a1, a2) + q * (its fake-sample terms);
        # the slots filled with +-50 only add constants.
        t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        real = d2gan_discriminator_loss(t(a1), t(-50.0), t(a2), t(-50.0), alpha, beta)
        fake = d2gan_discriminator_loss(t(50.0), t(a1), t(-50.0), t(a2), alpha, beta)
        return p * float(real) + q * float(fake)

    a1 = optimize.minimize_scalar(lambda a: objective(a, 0.0), bounds=(-20, 20), method="bounded", options=dict(xatol=1e-10)).x
    a2 = optimize.minimize_scalar(lambda a: objective(0.0, a), bounds=(-20, 20), method="bounded", options=dict(xatol=1e-10)).x
    np.testing.assert_allclose(F.softplus(torch.tensor(a1)).item(), alpha * p / q, rtol=1e-5)
    np.testing.assert_allclose(F.softplus(torch.tensor(a2)).item(), beta * q / p, rtol=1e-5)


def test_d2gan_gradients_vanish_at_the_closed_form_optimum():
    p, q = COUNTS_DATA / COUNTS_DATA.sum(), COUNTS_G / COUNTS_G.sum()
    # Equal batch sizes are needed for batch means to weigh p and q equally.
    assert COUNTS_DATA.sum() == COUNTS_G.sum()
    alpha, beta = 0.2, 0.1
    a1 = torch.tensor(_softplus_inv(alpha * p / q), requires_grad=True)
    a2 = torch.tensor(_softplus_inv(beta * q / p), requires_grad=True)
    r1, f1 = _batches(a1)
    r2, f2 = _batches(a2)
    loss = d2gan_discriminator_loss(r1, f1, r2, f2, alpha, beta)
    g1, g2 = torch.autograd.grad(loss, (a1, a2))
    assert g1.abs().max() < 1e-12 and g2.abs().max() < 1e-12


def test_d2gan_losses_formulas_and_stability():
    a = torch.tensor([-200.0, -3.0, 0.0, 4.0, 60.0], requires_grad=True)
    d = F.softplus(a.double()).detach()
    alpha, beta = 0.3, 0.2
    loss = d2gan_discriminator_loss(a, a, a, a, alpha, beta)
    expected = -alpha * torch.log(d).mean() + d.mean() + d.mean() - beta * torch.log(d).mean()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=1e-6)
    g_loss = d2gan_generator_loss(a, a, beta)
    torch.testing.assert_close(g_loss.double(), -d.mean() + beta * torch.log(d).mean(), rtol=1e-6, atol=1e-6)
    (loss + g_loss).backward()
    assert torch.isfinite(a.grad).all()
    with pytest.raises(ValueError, match="alpha and beta"):
        d2gan_discriminator_loss(a, a, a, a, alpha=0.0)
    with pytest.raises(TypeError, match="d2_fake"):
        d2gan_generator_loss(a, [1.0])


# --- dual-discriminator GAN ---------------------------------------------------------


def test_dual_loss_at_optimum_is_minus_the_dual_value():
    n_data, n_g = COUNTS_DATA.sum(), COUNTS_G.sum()
    p, q = COUNTS_DATA / n_data, COUNTS_G / n_g
    d1, d2 = optimal_dual_discriminators(torch.tensor(p), torch.tensor(q))
    a1, a2 = torch.logit(d1), torch.logit(d2)
    r1, f1 = _batches(a1)
    r2, f2 = _batches(a2)
    value = dual_value_function(d1, d2, torch.tensor(p), torch.tensor(q))
    torch.testing.assert_close(-dual_discriminator_loss(r1, f1, r2, f2), value)
    # ... and at other discriminators too (the loss is -V everywhere).
    e1, e2 = torch.sigmoid(a1 + 0.7), torch.sigmoid(a2 - 1.3)
    r1, f1 = _batches(a1 + 0.7)
    r2, f2 = _batches(a2 - 1.3)
    torch.testing.assert_close(-dual_discriminator_loss(r1, f1, r2, f2), dual_value_function(e1, e2, torch.tensor(p), torch.tensor(q)))


def test_dual_gradients_vanish_at_optimum():
    p, q = COUNTS_DATA / COUNTS_DATA.sum(), COUNTS_G / COUNTS_G.sum()
    assert COUNTS_DATA.sum() == COUNTS_G.sum()
    d1, d2 = optimal_dual_discriminators(p, q)
    a1 = torch.tensor(np.log(d1 / (1 - d1)), requires_grad=True)
    a2 = torch.tensor(np.log(d2 / (1 - d2)), requires_grad=True)
    r1, f1 = _batches(a1)
    r2, f2 = _batches(a2)
    g1, g2 = torch.autograd.grad(dual_discriminator_loss(r1, f1, r2, f2), (a1, a2))
    assert g1.abs().max() < 1e-12 and g2.abs().max() < 1e-12
    # Away from the optimum they do not.
    (g,) = torch.autograd.grad(dual_discriminator_loss(*_batches(a1 + 0.5), r2, f2), a1)
    assert g.abs().min() > 1e-3


def test_dual_generator_losses():
    a1, a2 = torch.tensor([-2.0, 0.5, 3.0]), torch.tensor([1.0, -1.0, 0.0])
    d1, d2 = torch.sigmoid(a1), torch.sigmoid(a2)
    # eq. (6): -E log D1 - E log(1 - D2); eq. (5): E log(1 - D1) + E log D2
    torch.testing.assert_close(dual_generator_loss(a1, a2), -(torch.log(d1) + torch.log(1 - d2)).mean())
    torch.testing.assert_close(dual_generator_loss(a1, a2, loss="minimax"), (torch.log(1 - d1) + torch.log(d2)).mean())
    # The minimax G loss is the G part of V: with the D part fixed, L_D = -V moves opposite.
    ar = torch.tensor([0.3, -0.2])
    base = dual_discriminator_loss(ar, a1, ar, a2) - dual_discriminator_loss(ar, 0 * a1 - 100, ar, 0 * a2 + 100)
    torch.testing.assert_close(dual_generator_loss(a1, a2, loss="minimax"), -base, atol=1e-4, rtol=0)


def test_two_discriminator_losses_under_vmap():
    xs = [torch.randn(S, 6) for _ in range(4)]
    for fn in (dual_discriminator_loss, d2gan_discriminator_loss):
        torch.testing.assert_close(vmap(fn)(*xs), torch.stack([fn(*t) for t in zip(*xs)]))
    for fn in (dual_generator_loss, d2gan_generator_loss):
        torch.testing.assert_close(vmap(fn)(*xs[:2]), torch.stack([fn(*t) for t in zip(*xs[:2])]))


# --- BEGAN --------------------------------------------------------------------------


def test_began_reconstruction_is_per_sample_l1_mean():
    v = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    rec = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(began_reconstruction(v, rec), torch.tensor([0.5, 1.5]))
    x = torch.randn(3, 2, 4, 4)
    assert began_reconstruction(x, x).shape == (3,)
    with pytest.raises(ValueError, match="same shape"):
        began_reconstruction(v, rec[:1])


def test_began_losses_k_update_and_convergence():
    l_real, l_fake = torch.tensor([0.4, 0.6]), torch.tensor([0.1, 0.3], requires_grad=True)
    k = torch.tensor(0.25)
    l_d, l_g = began_losses(l_real, l_fake, k)
    torch.testing.assert_close(l_d, torch.tensor(0.5 - 0.25 * 0.2))
    torch.testing.assert_close(l_g, torch.tensor(0.2))
    # k update: 0.25 + 1e-3 * (0.5 * 0.5 - 0.2), clipped to [0, 1]
    k1 = began_k_update(k, l_real, l_fake, gamma=0.5, lambda_k=1e-3)
    torch.testing.assert_close(k1, torch.tensor(0.25 + 1e-3 * 0.05))
    assert not k1.requires_grad
    assert began_k_update(torch.tensor(0.0), l_real, l_fake * 10, lambda_k=1.0) == 0.0
    assert began_k_update(torch.tensor(1.0), l_real * 10, l_fake, gamma=1.0, lambda_k=1.0) == 1.0
    torch.testing.assert_close(began_convergence(l_real, l_fake, 0.5), torch.tensor(0.5 + abs(0.25 - 0.2)))
    with pytest.raises(ValueError, match="gamma"):
        began_k_update(k, l_real, l_fake, gamma=0.0)


def test_began_under_vmap():
    v, rec = torch.randn(S, 5, 2), torch.randn(S, 5, 2)
    k = torch.rand(S)

    def step(v, rec, k):
        lr = began_reconstruction(v, rec)
        lf = began_reconstruction(rec, 0.5 * v)
        l_d, l_g = began_losses(lr, lf, k)
        return l_d, l_g, began_k_update(k, lr, lf), began_convergence(lr, lf)

    out = vmap(step)(v, rec, k)
    loop = [step(*t) for t in zip(v, rec, k)]
    for i in range(4):
        torch.testing.assert_close(out[i], torch.stack([o[i] for o in loop]))
