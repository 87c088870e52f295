"""Gradient penalties against closed forms on linear critics."""

import pytest
import torch

from gan_notes import penalties
from _references import autograd_norms  # noqa: E402


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
    assert float(penalties.gradient_penalty(linear_critic(w), real, fake).detach()) == pytest.approx(float(expected), rel=1e-12)
    assert float(penalties.r1_penalty(linear_critic(w), real).detach()) == pytest.approx(float(w.norm() ** 2), rel=1e-12)
    assert float(penalties.dragan_penalty(linear_critic(w), real).detach()) == pytest.approx(float(expected), rel=1e-12)


def test_r1_of_a_quadratic_critic():
    # D(x) = |x|^2 / 2 has gradient x: R1 = E |x|^2.
    x = torch.randn(64, 3, dtype=torch.float64)
    assert float(penalties.r1_penalty(lambda t: 0.5 * (t**2).sum(dim=1), x).detach()) == pytest.approx(float((x**2).sum(1).mean()))


def test_penalties_are_differentiable_in_the_critic():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gp = penalties.gradient_penalty(lambda x: x @ w, torch.randn(16, 2), torch.randn(16, 2))
    gp.backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w| = 2 * 4 * (0.6, 0.8)
    torch.testing.assert_close(w.grad, torch.tensor([4.8, 6.4]))


def test_penalty_bad_inputs():
    critic = linear_critic(torch.ones(2))
    with pytest.raises(ValueError, match="same shape"):
        penalties.gradient_penalty(critic, torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="real"):
        penalties.r1_penalty(critic, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="c must be positive"):
        penalties.dragan_penalty(critic, torch.zeros(4, 2), c=0.0)
    with pytest.raises(ValueError, match="unknown penalty"):
        penalties.penalty("l2", critic, torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(TypeError, match="real"):
        penalties.r1_penalty(critic, [[0.0, 0.0]])


def _mlp_critic(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()


def test_gp_and_dragan_with_given_draws_equal_hand_computations():
    D = _mlp_critic()
    real, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64) + 2
    eps, u = torch.rand(6, 1, dtype=torch.float64), torch.rand(6, 3, dtype=torch.float64)
    x_hat = eps * real + (1 - eps) * fake
    torch.testing.assert_close(penalties.gradient_penalty(D, real, fake, eps=eps), ((autograd_norms(D, x_hat) - 1) ** 2).mean())
    perturbed = real + 0.7 * real.std() * u
    torch.testing.assert_close(penalties.dragan_penalty(D, real, c=0.7, u=u), ((autograd_norms(D, perturbed) - 1) ** 2).mean())
    torch.testing.assert_close(penalties.r1_penalty(D, real), (autograd_norms(D, real) ** 2).mean())


def test_penalty_gradients_in_the_critic_equal_autograd():
    D = _mlp_critic(1)
    real = torch.randn(5, 3, dtype=torch.float64)
    (ours,) = torch.autograd.grad(penalties.r1_penalty(D, real), [D[0].weight])
    (ref,) = torch.autograd.grad((autograd_norms(D, real) ** 2).mean(), [D[0].weight])
    torch.testing.assert_close(ours, ref)


def test_dispatcher_uses_the_positive_batch():
    D = _mlp_critic(2)
    pos, neg = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    eps = torch.rand(4, 1, dtype=torch.float64)
    torch.testing.assert_close(penalties.penalty("r1", D, pos, neg), penalties.r1_penalty(D, pos))
    torch.testing.assert_close(penalties.penalty("gp", D, pos, neg, {"eps": eps}), penalties.gradient_penalty(D, pos, neg, eps=eps))
    assert not torch.isclose(penalties.penalty("r1", D, pos, neg), penalties.penalty("r1", D, neg, pos))


def test_dispatcher_and_default_dragan_use_kodalis_constant_at_the_positive_batch():
    # DRAGAN perturbs the positive batch by c std(x) u with c = 0.5 (Kodali et al. 2017), the
    # value every training loop uses through the dispatcher.
    D = _mlp_critic(3)
    pos, neg = torch.randn(5, 3, dtype=torch.float64), 3 * torch.randn(5, 3, dtype=torch.float64) - 1
    u = torch.rand(5, 3, dtype=torch.float64)
    expected = ((autograd_norms(D, pos + 0.5 * pos.std() * u) - 1) ** 2).mean()
    torch.testing.assert_close(penalties.dragan_penalty(D, pos, u=u), expected)
    torch.testing.assert_close(penalties.penalty("dragan", D, pos, neg, {"u": u}), expected)


def test_penalties_run_under_vmap_and_equal_a_loop():
    from torch.func import functional_call, stack_module_state, vmap

    models = [_mlp_critic(s) for s in range(3)]
    params, _ = stack_module_state(models)
    real, fake = torch.randn(3, 5, 3, dtype=torch.float64), torch.randn(3, 5, 3, dtype=torch.float64)
    eps = torch.rand(3, 5, 1, dtype=torch.float64)

    def one(p, r, f, e):
        critic = lambda x: functional_call(models[0], p, (x,))  # noqa: E731
        return penalties.gradient_penalty(critic, r, f, eps=e)

    batched = vmap(one)(params, real, fake, eps)
    loop = torch.stack([penalties.gradient_penalty(m, r, f, eps=e) for m, r, f, e in zip(models, real, fake, eps)])
    torch.testing.assert_close(batched, loop)
