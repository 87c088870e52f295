"""Gradient penalties against closed forms on linear critics."""

import pytest
import torch

from gan_notes import losses


def linear_critic(w):
    return lambda x: x.flatten(start_dim=1) @ w


@pytest.mark.parametrize("shape", [(32, 2), (8, 1, 4, 4)])
def test_gradient_penalty_of_a_linear_critic_is_exact(shape):
    torch.manual_seed(0)
    n = 1
    for s in shape[1:]:
        n *= s
    w = torch.randn(n, dtype=torch.float64)
    real, fake = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    expected = (w.norm() - 1) ** 2
    assert float(losses.gradient_penalty(linear_critic(w), real, fake).detach()) == pytest.approx(float(expected), rel=1e-12)
    assert float(losses.r1_penalty(linear_critic(w), real).detach()) == pytest.approx(float(w.norm() ** 2), rel=1e-12)
    assert float(losses.dragan_penalty(linear_critic(w), real).detach()) == pytest.approx(float(expected), rel=1e-12)


def test_r1_of_a_quadratic_critic():
    # D(x) = |x|^2 / 2 has gradient x: R1 = E |x|^2.
    x = torch.randn(64, 3, dtype=torch.float64)
    assert float(losses.r1_penalty(lambda t: 0.5 * (t**2).sum(dim=1), x).detach()) == pytest.approx(float((x**2).sum(1).mean()))


def test_penalties_are_differentiable_in_the_critic():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gp = losses.gradient_penalty(lambda x: x @ w, torch.randn(16, 2), torch.randn(16, 2))
    gp.backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w| = 2 * 4 * (0.6, 0.8)
    torch.testing.assert_close(w.grad, torch.tensor([4.8, 6.4]))


def test_penalty_bad_inputs():
    critic = linear_critic(torch.ones(2))
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(critic, torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="real"):
        losses.r1_penalty(critic, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="NaN"):
        losses.r1_penalty(critic, torch.full((4, 2), float("nan")))
    with pytest.raises(TypeError, match="real"):
        losses.r1_penalty(critic, [[0.0, 0.0]])


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_every_loss_is_finite_at_extreme_logits(kind):
    a = torch.tensor([100.0, -100.0, 0.0], requires_grad=True)
    b = torch.tensor([-100.0, 100.0, 0.0], requires_grad=True)
    total = losses.discriminator_loss(kind, a, b) + losses.generator_loss(kind, b)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_new_losses_against_their_formulas():
    r, f = torch.randn(50), torch.randn(50)
    torch.testing.assert_close(losses.discriminator_loss("lsgan", r, f), ((r - 1) ** 2).mean() + (f**2).mean())
    torch.testing.assert_close(losses.generator_loss("lsgan", f), ((f - 1) ** 2).mean())
    torch.testing.assert_close(losses.discriminator_loss("wgan", r, f), f.mean() - r.mean())
    torch.testing.assert_close(losses.generator_loss("wgan", f), -f.mean())
    torch.testing.assert_close(losses.discriminator_loss("hinge", r, f), torch.relu(1 - r).mean() + torch.relu(1 + f).mean())
    torch.testing.assert_close(losses.generator_loss("hinge", f), -f.mean())
