"""Unit tests of gan_notes.unrolled (the unrolled GAN of Metz et al. 2017): against the
plain loss (k = 0), a hand computation with torch.autograd (k = 1), finite differences,
torch.optim.Adam, and a Python loop under torch.func.vmap."""

import copy

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from gan_notes.losses import discriminator_loss, generator_loss
from gan_notes.models import mlp
from gan_notes.unrolled import adam_state, unroll, unrolled_generator_loss


def _problem(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    D = mlp(2, 1, (6,), activation="tanh").to(dtype)
    fake = torch.randn(5, 2, dtype=dtype, requires_grad=True)  # stands for G(z)
    real = torch.randn(5, 2, dtype=dtype) + 1.0
    params = {n: p.detach().clone() for n, p in D.named_parameters()}
    return D, params, fake, real


@pytest.mark.parametrize("loss", ["non_saturating", "minimax", "wgan", "lsgan"])
def test_k0_is_the_plain_generator_loss(loss):
    D, params, fake, real = _problem()
    out = unrolled_generator_loss(D, params, fake, real, loss=loss, k=0)
    torch.testing.assert_close(out, generator_loss(loss, D(fake)))


def test_k1_matches_a_hand_computation_with_autograd():
    D, params, fake, real = _problem()
    lr = 0.3
    names = list(params)
    theta = [params[n].clone().requires_grad_(True) for n in names]
    call = lambda th, x: functional_call(D, dict(zip(names, th)), (x,))  # noqa: E731
    d_loss = discriminator_loss("non_saturating", call(theta, real), call(theta, fake))
    grads = torch.autograd.grad(d_loss, theta, create_graph=True)
    theta1 = [t - lr * g for t, g in zip(theta, grads)]
    expected = generator_loss("non_saturating", call(theta1, fake))
    got = unrolled_generator_loss(D, params, fake, real, k=1, lr=lr)
    torch.testing.assert_close(got, expected)
    (g_expected,) = torch.autograd.grad(expected, fake)
    (g_got,) = torch.autograd.grad(got, fake)
    torch.testing.assert_close(g_got, g_expected)


def test_lookahead_gradient_differs_from_k0_and_matches_finite_differences():
    D, params, fake, real = _problem()
    k, lr = 3, 0.5
    f = lambda x: unrolled_generator_loss(D, params, x, real, k=k, lr=lr)  # noqa: E731
    (g_k,) = torch.autograd.grad(f(fake), fake)
    (g_0,) = torch.autograd.grad(unrolled_generator_loss(D, params, fake, real, k=0), fake)
    assert (g_k - g_0).abs().max() > 1e-3  # the look-ahead term is there
    h = 1e-6
    fd = torch.zeros_like(fake)
    with torch.no_grad():
        for i in range(fake.shape[0]):
            for j in range(fake.shape[1]):
                e = torch.zeros_like(fake)
                e[i, j] = h
                fd[i, j] = (f(fake + e) - f(fake - e)) / (2 * h)
    torch.testing.assert_close(g_k, fd, rtol=1e-5, atol=1e-8)


def test_gradient_reaches_the_generator_not_the_discriminator():
    torch.manual_seed(1)
    G, D = mlp(3, 2, (4,)), mlp(2, 1, (4,))
    real = torch.randn(8, 2)
    loss = unrolled_generator_loss(D, dict(D.named_parameters()), G(torch.randn(8, 3)), real, k=2, lr=0.1)
    loss.backward()
    assert all(p.grad is not None for p in G.parameters())
    assert all(p.grad is None for p in D.parameters())


def test_unroll_sgd_on_a_quadratic_closed_form():
    # f(theta) = 1/2 a theta^2: k steps of SGD give (1 - lr a)^k theta.
    a, lr, k = 2.0, 0.1, 4
    out = unroll(lambda p: 0.5 * a * (p["w"] ** 2).sum(), {"w": torch.tensor([1.0, -3.0])}, k, lr)
    torch.testing.assert_close(out["w"], (1 - lr * a) ** k * torch.tensor([1.0, -3.0]))


def test_unroll_adam_matches_torch_optim_adam():
    D, params, fake, real = _problem()
    lr, k = 0.05, 3
    loss_fn = lambda th: discriminator_loss("non_saturating", functional_call(D, th, (real,)), functional_call(D, th, (fake.detach(),)))  # noqa: E731
    ours = unroll(loss_fn, params, k, lr, optimizer="adam", betas=(0.5, 0.999), eps=1e-8)
    theta = {n: p.clone().requires_grad_(True) for n, p in params.items()}
    opt = torch.optim.Adam(theta.values(), lr=lr, betas=(0.5, 0.999), eps=1e-8)
    for _ in range(k):
        opt.zero_grad()
        loss_fn(theta).backward()
        opt.step()
    for n in params:
        # Only the form of eps differs (sqrt(v + eps^2) vs sqrt(v) + eps).
        torch.testing.assert_close(ours[n], theta[n].detach(), rtol=1e-5, atol=1e-6)



def _seeds(S):
    """S small discriminators, their stacked parameters, a parameter-free copy for
    functional_call, and a batch of fake and real samples per seed."""
    models = []
    for s in range(S):
        torch.manual_seed(s)
        models.append(mlp(2, 1, (5,)))
    params, _ = stack_module_state(models)
    params = {n: p.detach() for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    return models, params, base, torch.randn(S, 6, 2), torch.randn(S, 6, 2)


def test_unrolled_loss_under_vmap_matches_loop():
    S = 3
    models, params, base, fake, real = _seeds(S)
    fn = lambda p, f, r: unrolled_generator_loss(base, p, f, r, k=2, lr=0.2)  # noqa: E731
    out = vmap(fn)(params, fake, real)
    loop = torch.stack([unrolled_generator_loss(m, dict(m.named_parameters()), f, r, k=2, lr=0.2) for m, f, r in zip(models, fake, real)])
    torch.testing.assert_close(out, loop)
    # and the gradients to the samples, seed by seed
    fake.requires_grad_(True)
    (g_vmap,) = torch.autograd.grad(vmap(fn)(params, fake, real).sum(), fake)
    g_loop = torch.stack([torch.autograd.grad(fn({n: p[s] for n, p in params.items()}, fake[s], real[s]), fake)[0][s] for s in range(S)])
    torch.testing.assert_close(g_vmap, g_loop)


def test_bad_arguments():
    D, params, fake, real = _problem()
    with pytest.raises(ValueError, match="k must be"):
        unroll(lambda p: p["w"].sum(), {"w": torch.ones(1)}, -1, 0.1)
    with pytest.raises(ValueError, match="lr must be"):
        unroll(lambda p: p["w"].sum(), {"w": torch.ones(1)}, 1, 0.0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        unroll(lambda p: p["w"].sum(), {"w": torch.ones(1)}, 1, 0.1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown loss"):
        unrolled_generator_loss(D, params, fake, real, loss="hinged")
    with pytest.raises(TypeError, match="fake"):
        unrolled_generator_loss(D, params, fake.numpy(force=True), real)


def test_adam_unrolling_under_vmap_of_torch_func_grad():
    # The batched trainer differentiates with torch.func.grad inside vmap: grad of a loss
    # that itself contains k torch.func.grad steps.
    from torch.func import grad

    S = 3
    models, params, base, fake, real = _seeds(S)
    fn = lambda p, f, r: unrolled_generator_loss(base, p, f, r, k=2, lr=0.1, optimizer="adam")  # noqa: E731
    g_vmap = vmap(grad(fn, argnums=1))(params, fake, real)
    g_loop = torch.stack([grad(fn, argnums=1)({n: p[s] for n, p in params.items()}, fake[s], real[s]) for s in range(S)])
    torch.testing.assert_close(g_vmap, g_loop)


# --- continuing D's live Adam state (Metz et al. unroll D's own optimiser) ----------------------


def _adam_after(D, loss_fn, steps, lr=0.05, betas=(0.6, 0.95), eps=1e-8):
    """A torch.optim.Adam on D's parameters after ``steps`` steps on ``loss_fn``."""
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=betas, eps=eps)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(dict(D.named_parameters())).backward()
        opt.step()
    return opt


def test_adam_state_reads_the_live_optimiser():
    D, _, fake, real = _problem()
    loss_fn = lambda th: discriminator_loss("wgan", functional_call(D, th, (real,)), functional_call(D, th, (fake.detach(),)))  # noqa: E731
    fresh = adam_state(torch.optim.Adam(D.parameters(), lr=0.01), dict(D.named_parameters()))
    assert fresh["step"] == 0 and all(not m.any() for m in fresh["exp_avg"].values())
    opt = _adam_after(D, loss_fn, 3, lr=0.02, betas=(0.7, 0.9), eps=1e-6)
    st = adam_state(opt, dict(D.named_parameters()))
    assert st["step"] == 3 and st["lr"] == 0.02 and st["betas"] == (0.7, 0.9) and st["eps"] == 1e-6
    for n, p in D.named_parameters():
        assert torch.equal(st["exp_avg"][n], opt.state[p]["exp_avg"])
        assert torch.equal(st["exp_avg_sq"][n], opt.state[p]["exp_avg_sq"])
    with pytest.raises(TypeError, match="optimizer"):
        adam_state(torch.optim.SGD(D.parameters(), lr=0.1), dict(D.named_parameters()))


def test_unroll_adam_continues_torch_optim_adam_from_its_state():
    # k look-ahead steps from D's live state equal k more steps of D's own torch.optim.Adam.
    D, _, fake, real = _problem()
    loss_fn = lambda th: discriminator_loss("non_saturating", functional_call(D, th, (real,)), functional_call(D, th, (fake.detach(),)))  # noqa: E731
    opt = _adam_after(D, loss_fn, 4)
    st = adam_state(opt, dict(D.named_parameters()))
    start = {n: p.detach().clone() for n, p in D.named_parameters()}
    ours = unroll(loss_fn, start, 3, st["lr"], "adam", betas=st["betas"], eps=st["eps"], state=st)
    from_zero = unroll(loss_fn, start, 3, st["lr"], "adam", betas=st["betas"], eps=st["eps"])
    for _ in range(3):  # (this changes opt's state in place: ours is computed before)
        opt.zero_grad()
        loss_fn(dict(D.named_parameters())).backward()
        opt.step()
    for n, p in D.named_parameters():
        # Only the form of eps differs (sqrt(v + eps^2) vs sqrt(v) + eps).
        torch.testing.assert_close(ours[n], p.detach(), rtol=1e-5, atol=1e-6)
    assert max((from_zero[n] - ours[n]).abs().max() for n in ours) > 1e-4  # the state matters


def _hand_adam_lookahead(D, real, fake, loss, k, state, lr, betas, eps=1e-8):
    """k Adam steps on D's loss from ``state``, written out with torch.autograd."""
    names = list(dict(D.named_parameters()))
    theta = [state["theta"][n].clone().requires_grad_(True) for n in names]
    m = [state["exp_avg"][n].clone() for n in names]
    v = [state["exp_avg_sq"][n].clone() for n in names]
    b1, b2 = betas
    call = lambda th, x: functional_call(D, dict(zip(names, th)), (x,))  # noqa: E731
    for t in range(state["step"] + 1, state["step"] + k + 1):
        g = torch.autograd.grad(discriminator_loss(loss, call(theta, real), call(theta, fake)), theta, create_graph=True)
        m = [b1 * a + (1 - b1) * b for a, b in zip(m, g)]
        v = [b2 * a + (1 - b2) * b * b for a, b in zip(v, g)]
        theta = [p - lr * (a / (1 - b1**t)) / torch.sqrt(b / (1 - b2**t) + eps**2) for p, a, b in zip(theta, m, v)]
    return generator_loss(loss, call(theta, fake))


def test_unrolled_generator_loss_with_the_live_adam_state_equals_a_hand_computation():
    D, params, fake, real = _problem()
    loss_fn = lambda th: discriminator_loss("lsgan", functional_call(D, th, (real,)), functional_call(D, th, (fake.detach(),)))  # noqa: E731
    opt = _adam_after(D, loss_fn, 2, lr=0.05, betas=(0.6, 0.95))
    st = adam_state(opt, dict(D.named_parameters()))
    d_params = {n: p.detach().clone() for n, p in D.named_parameters()}
    got = unrolled_generator_loss(D, d_params, fake, real, loss="lsgan", k=2, lr=0.05, optimizer="adam", state=st, betas=(0.6, 0.95))
    expected = _hand_adam_lookahead(D, real, fake, "lsgan", 2, {**st, "theta": d_params}, 0.05, (0.6, 0.95))
    torch.testing.assert_close(got, expected)
    (g_got,) = torch.autograd.grad(got, fake)
    (g_exp,) = torch.autograd.grad(expected, fake)
    torch.testing.assert_close(g_got, g_exp)
