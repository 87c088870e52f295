"""Unit tests of gan_notes.lipschitz (Chapter 08): the written-out power iteration against
torch.linalg and torch's spectral_norm parametrization, the product bound against measured
gradients, weight clipping, and the non-Lipschitz sum of two normalised branches."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from gan_notes.lipschitz import (
    clip_weights_,
    critic_w1_estimate,
    gradient_norms,
    lipschitz_upper_bound,
    spectral_norm,
    spectral_normalize,
    weight_pile_fraction,
)
from gan_notes.models import mlp


@given(rows=st.integers(1, 6), cols=st.integers(1, 6), seed=st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_spectral_norm_matches_svd(rows, cols, seed):
    W = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    sigma, _, _ = spectral_norm(W, n_iter=300)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(W, ord=2), rtol=1e-6, atol=1e-10)


def test_spectral_norm_finds_the_top_singular_vectors():
    # W = U diag(3, 1.5, 0.5) V^T: the iteration converges like (1.5 / 3)^(2n).
    torch.manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(4, 3, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(5, 3, dtype=torch.float64))
    W = U @ torch.diag(torch.tensor([3.0, 1.5, 0.5], dtype=torch.float64)) @ V.T
    sigma, u, v = spectral_norm(W, n_iter=40)
    torch.testing.assert_close(sigma, torch.tensor(3.0, dtype=torch.float64))
    sign = torch.sign(u @ U[:, 0])
    torch.testing.assert_close(sign * u, U[:, 0])
    torch.testing.assert_close(sign * v, V[:, 0])


def test_spectral_norm_conv_weight_numpy_and_bad_input():
    W = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    sigma, _, v = spectral_norm(W)
    torch.testing.assert_close(sigma, torch.linalg.matrix_norm(W.flatten(1), ord=2))
    assert v.shape == (12,)
    s_np, u_np, _ = spectral_norm(W.numpy())
    assert isinstance(s_np, np.ndarray) and isinstance(u_np, np.ndarray)
    np.testing.assert_allclose(s_np, np.linalg.norm(W.flatten(1).numpy(), 2))
    with pytest.raises(ValueError, match="W must be"):
        spectral_norm(torch.randn(3))
    with pytest.raises(ValueError, match="v must have shape"):
        spectral_norm(torch.randn(3, 2), v=torch.ones(3))
    with pytest.raises(ValueError, match="n_iter"):
        spectral_norm(torch.randn(3, 2), n_iter=0)


@pytest.mark.parametrize("n_iter", [1, 3])
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 3)])
def test_spectral_normalize_matches_torch_parametrization(n_iter, shape):
    torch.manual_seed(0)
    layer = nn.Linear(shape[1], shape[0]) if len(shape) == 2 else nn.Conv2d(shape[1], shape[0], shape[2])
    weight = layer.weight.detach().clone()
    torch_spectral_norm(layer, n_power_iterations=n_iter)
    pm = layer.parametrizations.weight[0]
    v0 = pm._v.clone()
    ours, new_v = spectral_normalize(weight, v0, n_iter=n_iter)
    layer.train()
    theirs = layer.weight  # one training-time forward: n_iter power iterations, then W / sigma
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(new_v, pm._v)
    # The gradient flows through W only, as in torch.
    w = weight.clone().requires_grad_(True)
    g_ours = torch.autograd.grad(spectral_normalize(w, v0, n_iter)[0].sum(), w)[0]
    layer2 = copy.deepcopy(layer)
    layer2.parametrizations.weight[0]._v.copy_(v0)
    with torch.no_grad():
        layer2.parametrizations.weight.original.copy_(weight)
    layer2.weight.sum().backward()
    torch.testing.assert_close(g_ours, layer2.parametrizations.weight.original.grad)


def test_spectral_normalize_under_vmap_and_converges():
    W = torch.randn(3, 4, 5)
    v = F.normalize(torch.randn(3, 5), dim=1)
    out, new_v = vmap(spectral_normalize)(W, v)
    for s in range(3):
        o, nv = spectral_normalize(W[s], v[s])
        torch.testing.assert_close(out[s], o)
        torch.testing.assert_close(new_v[s], nv)
    # Carried over steps, the normalised weight tends to spectral norm 1.
    w, vv = W[0], v[0]
    for _ in range(50):
        wn, vv = spectral_normalize(w, vv)
    torch.testing.assert_close(torch.linalg.matrix_norm(wn, ord=2), torch.tensor(1.0), rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="v must have shape"):
        spectral_normalize(w, torch.ones(4))


def test_lipschitz_upper_bound_is_product_and_bounds_gradients():
    torch.manual_seed(0)
    net = mlp(3, 1, (16, 16), activation="leaky_relu")
    expected = np.prod([torch.linalg.matrix_norm(m.weight, ord=2).item() for m in net if isinstance(m, nn.Linear)])
    bound = lipschitz_upper_bound(net)
    assert bound == pytest.approx(expected)
    x = torch.randn(500, 3) * 3
    assert gradient_norms(net, x).max() <= bound
    # Sigmoid and SELU constants enter the product.
    lin = nn.Linear(2, 2)
    s = torch.linalg.matrix_norm(lin.weight, ord=2).item()
    assert lipschitz_upper_bound(nn.Sequential(lin, nn.Sigmoid())) == pytest.approx(0.25 * s)
    assert lipschitz_upper_bound(nn.Sequential(lin, nn.SELU())) == pytest.approx(1.0507009873554805 * 1.6732632423543772 * s)
    with pytest.raises(TypeError, match="net\\[1\\] is a Softmax"):
        lipschitz_upper_bound(nn.Sequential(lin, nn.Softmax(dim=1)))
    with pytest.raises(TypeError, match="net must be"):
        lipschitz_upper_bound(nn.ReLU())


def test_lipschitz_bound_of_spectrally_normalised_mlp_is_about_one():
    torch.manual_seed(0)
    net = mlp(2, 1, (8, 8))
    for m in net:
        if isinstance(m, nn.Linear):
            torch_spectral_norm(m, n_power_iterations=1)
    net.train()
    for _ in range(30):  # let the power iterations converge
        net(torch.zeros(1, 2))
    assert lipschitz_upper_bound(net) == pytest.approx(1.0, rel=1e-3)
    assert gradient_norms(net, torch.randn(200, 2)).max() <= 1.0 + 1e-3


def test_sum_of_two_normalised_branches_is_not_1_lipschitz():
    # Each branch g_i is 1-Lipschitz after spectral normalisation, but f = g1 + g2 is not:
    # its gradient w1/|w1| + w2/|w2| has norm up to 2 (the sum of the bounds).
    torch.manual_seed(0)
    branches = [torch_spectral_norm(nn.Linear(3, 1)) for _ in range(2)]
    with torch.no_grad():
        branches[0].parametrizations.weight.original.copy_(torch.tensor([[1.0, 0.2, 0.0]]))
        branches[1].parametrizations.weight.original.copy_(torch.tensor([[0.9, 0.0, 0.3]]))
    f = lambda x: branches[0](x) + branches[1](x)  # noqa: E731
    norms = gradient_norms(f, torch.randn(50, 3))
    assert all(lipschitz_upper_bound(b) == pytest.approx(1.0, rel=1e-5) for b in branches)
    assert norms.max() > 1.5
    assert norms.max() <= sum(lipschitz_upper_bound(b) for b in branches) + 1e-6


def test_gradient_norms_closed_form_vmap_and_graph():
    # D(x) = |x|^2 / 2 has gradient x.
    x = torch.randn(6, 3)
    torch.testing.assert_close(gradient_norms(lambda y: 0.5 * (y**2).sum(1), x), x.norm(dim=1))
    # Image-shaped input
    xi = torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(gradient_norms(lambda y: y.flatten(1).sum(1), xi), torch.full((2,), 3.0))
    # Differentiable in the critic's parameters (for penalties)
    w = torch.tensor([2.0, 0.0, 0.0], requires_grad=True)
    g = gradient_norms(lambda y: y @ w, x)
    g.sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor([6.0, 0.0, 0.0]))
    # Under vmap over seeds of a critic
    models = []
    for s in range(3):
        torch.manual_seed(s)
        models.append(mlp(2, 1, (5,)))
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    xs = torch.randn(3, 7, 2)
    out = vmap(lambda p, b, xx: gradient_norms(lambda y: functional_call(base, (p, b), (y,)), xx))(params, buffers, xs)
    torch.testing.assert_close(out, torch.stack([gradient_norms(m, xx) for m, xx in zip(models, xs)]))
    with pytest.raises(TypeError, match="x must be"):
        gradient_norms(models[0], np.zeros((2, 2)))


def test_clip_and_pile_fraction():
    torch.manual_seed(0)
    net = mlp(2, 1, (32,))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(10)
    before = [p.detach().clone() for p in net.parameters()]
    assert clip_weights_(net, 0.01) is net
    for p, b in zip(net.parameters(), before):
        torch.testing.assert_close(p.detach(), b.clamp(-0.01, 0.01))
    w = torch.cat([b.flatten() for b in before])
    frac = weight_pile_fraction(net, 0.01, tol=1e-6)
    assert frac == pytest.approx((w.abs() >= 0.01 - 1e-6).double().mean().item())
    assert frac > 0.5
    fresh = nn.Linear(1, 4)
    with torch.no_grad():
        fresh.weight.copy_(torch.tensor([[0.5], [-0.5], [0.1], [0.0]]))
        fresh.bias.copy_(torch.tensor([0.499, 0.2, -0.3, 0.0]))
    assert weight_pile_fraction(fresh, 0.5, tol=1e-2) == pytest.approx(3 / 8)
    with pytest.raises(ValueError, match="c must be positive"):
        clip_weights_(net, 0.0)
    with pytest.raises(ValueError, match="tol"):
        weight_pile_fraction(net, 0.01, tol=0.02)
    with pytest.raises(TypeError, match="module"):
        clip_weights_(torch.ones(2), 0.1)


def test_critic_w1_estimate_on_shifted_points():
    # D(x) = x_0 is 1-Lipschitz; for a shift by delta along x_0, E D(real) - E D(fake) = W1 = delta.
    real = torch.randn(100, 2)
    fake = real - torch.tensor([0.7, 0.0])
    torch.testing.assert_close(critic_w1_estimate(lambda x: x[:, :1], real, fake), torch.tensor(0.7))
    vm = vmap(lambda r, f: critic_w1_estimate(lambda x: x[:, 0], r, f))(torch.stack([real, real]), torch.stack([fake, real]))
    torch.testing.assert_close(vm, torch.tensor([0.7, 0.0]))
    with pytest.raises(TypeError, match="fake"):
        critic_w1_estimate(lambda x: x, real, [1.0])


def test_lipschitz_bound_leaves_spectral_norm_state_alone():
    layer = torch_spectral_norm(nn.Linear(4, 3))
    layer.train()
    v = layer.parametrizations.weight[0]._v.clone()
    lipschitz_upper_bound(layer)
    assert torch.equal(layer.parametrizations.weight[0]._v, v) and layer.training


# --- apply_spectral_norm -------------------------------------------------------------------

from gan_notes.lipschitz import apply_spectral_norm  # noqa: E402


def test_apply_spectral_norm_normalises_every_linear_and_conv_layer():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.ConvTranspose2d(4, 3, 2), nn.Flatten(),
        nn.Linear(3 * 7 * 7, 5), nn.ReLU(), nn.Linear(5, 1),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.mul_(7.0)  # far from norm 1 before
    assert apply_spectral_norm(net) is net
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not nn.utils.parametrize.is_parametrized(net[1])  # batch norm untouched
    x = torch.randn(4, 2, 8, 8)
    for _ in range(200):  # training-mode passes: one power-iteration step each
        net(x)
    net.eval()
    for m in layers:
        # torch reshapes conv weights to (out, -1); transposed convs along their output dim 1.
        w = m.weight.transpose(0, 1) if isinstance(m, nn.ConvTranspose2d) else m.weight
        sigma = torch.linalg.matrix_norm(w.flatten(1).detach(), ord=2)
        assert float(sigma) == pytest.approx(1.0, rel=1e-3)


def test_apply_spectral_norm_matches_torch_layer_by_layer_and_is_idempotent():
    torch.manual_seed(1)
    a = mlp(2, 1, (8, 8))
    b = copy.deepcopy(a)
    torch.manual_seed(2)
    apply_spectral_norm(a)
    torch.manual_seed(2)  # the same random starting vectors, drawn in the same layer order
    for m in b.modules():
        if isinstance(m, nn.Linear):
            torch_spectral_norm(m)
    x = torch.randn(16, 2)
    torch.testing.assert_close(a(x), b(x))
    apply_spectral_norm(a)  # a second call adds nothing
    assert all(len(m.parametrizations.weight) == 1 for m in a if isinstance(m, nn.Linear))


def test_apply_spectral_norm_bad_arguments():
    with pytest.raises(TypeError, match="net"):
        apply_spectral_norm(lambda x: x)
    with pytest.raises(ValueError, match="n_power_iterations"):
        apply_spectral_norm(mlp(2, 1), n_power_iterations=0)
