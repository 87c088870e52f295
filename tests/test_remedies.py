"""Unit tests of gan_notes.remedies (Chapter 09): each block against a brute-force or
closed-form oracle, and under torch.func.vmap over a seed axis against a Python loop."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gan_notes.models import mlp, mlp_md
from gan_notes.remedies import (
    MinibatchDiscrimination,
    MixtureGenerator,
    feature_matching_loss,
    l1_distances,
    features,
    mixture_classifier_loss,
    mode_seeking_loss,
    pack,
)

S = 3  # seeds in the vmap tests


def _stacked(make, n=S):
    """n independently initialised copies of a module, their stacked parameters and a base."""
    models = [make(seed) for seed in range(n)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    return models, params, buffers, base


# --- pack ---------------------------------------------------------------------------


@given(b=st.integers(1, 6), m=st.integers(1, 4), d=st.integers(1, 3))
@settings(max_examples=30, deadline=None)
def test_pack_concatenates_consecutive_samples(b, m, d):
    x = torch.randn(b * m, d)
    p = pack(x, m)
    assert p.shape == (b, m * d)
    for i in range(b):
        assert torch.equal(p[i], torch.cat([x[i * m + j] for j in range(m)]))


def test_pack_numpy_leading_axes_and_gradient():
    x = np.arange(24.0).reshape(2, 6, 2)
    p = pack(x, 3)
    assert isinstance(p, np.ndarray) and p.shape == (2, 2, 6)
    np.testing.assert_array_equal(p[1, 0], [12, 13, 14, 15, 16, 17])
    t = torch.randn(4, 2, requires_grad=True)
    pack(t, 2).sum().backward()
    assert torch.equal(t.grad, torch.ones(4, 2))


def test_pack_bad_input():
    with pytest.raises(ValueError, match="multiple of the pack size"):
        pack(torch.randn(5, 2), 2)
    with pytest.raises(ValueError, match="m must be"):
        pack(torch.randn(4, 2), 0)
    with pytest.raises(ValueError, match="x must have shape"):
        pack(torch.randn(4), 2)
    with pytest.raises(TypeError, match="x must be"):
        pack([[1.0, 2.0]], 1)


def test_pack_under_vmap():
    x = torch.randn(S, 8, 2)
    assert torch.equal(vmap(lambda y: pack(y, 4))(x), torch.stack([pack(y, 4) for y in x]))


# --- minibatch discrimination -------------------------------------------------------


def _md_brute(layer, f):
    T = layer.T.detach().reshape(layer.in_features, layer.n_kernels, layer.kernel_dim)
    M = torch.einsum("ia,akc->ikc", f, T)
    n = f.shape[0]
    o = torch.zeros(n, layer.n_kernels, dtype=f.dtype)
    for i in range(n):
        for j in range(n):
            if i != j:
                for b in range(layer.n_kernels):
                    o[i, b] += torch.exp(-(M[i, b] - M[j, b]).abs().sum())
    return torch.cat([f, o], dim=1)


def test_minibatch_discrimination_matches_double_loop():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(4, 3, 2).double()
    f = torch.randn(6, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(f), _md_brute(layer, f))


def _l1_broadcast(m):
    return (m.unsqueeze(-3) - m.unsqueeze(-4)).abs().sum(-1)


def test_l1_distances_match_broadcast_form_with_first_and_second_derivatives():
    torch.manual_seed(0)
    m = torch.randn(3, 7, 4, 2, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(l1_distances(m), _l1_broadcast(m))
    w = torch.randn(3, 7, 7, 4, dtype=torch.float64)  # a generic (not symmetric) upstream gradient
    g, = torch.autograd.grad((l1_distances(m) * w).sum(), m, create_graph=True)
    g_ref, = torch.autograd.grad((_l1_broadcast(m) * w).sum(), m, create_graph=True)
    torch.testing.assert_close(g, g_ref)
    # the fast backward (no create_graph) and the differentiable one agree
    g_fast, = torch.autograd.grad((l1_distances(m) * w).sum(), m)
    torch.testing.assert_close(g_fast, g_ref)
    # second derivatives through a smooth function of the distances (a penalty's path)
    h, = torch.autograd.grad((torch.exp(-l1_distances(m)).sum(-2) ** 2).sum(), m, create_graph=True)
    h_ref, = torch.autograd.grad((torch.exp(-_l1_broadcast(m)).sum(-2) ** 2).sum(), m, create_graph=True)
    hh, = torch.autograd.grad((h ** 2).sum(), m)
    hh_ref, = torch.autograd.grad((h_ref ** 2).sum(), m)
    torch.testing.assert_close(hh, hh_ref)
    assert torch.autograd.gradcheck(l1_distances, (m[:1, :4],))
    assert torch.autograd.gradgradcheck(l1_distances, (m[:1, :4],))


def test_l1_distances_under_vmap_and_a_gradient_penalty():
    # The trainer's path: per-seed gradients under vmap, and R1 (a double backward) on an MD D.
    torch.manual_seed(1)
    m = torch.randn(4, 6, 3, 2, dtype=torch.float64)
    f = lambda fn: (lambda x: torch.exp(-fn(x)).sum())  # noqa: E731
    torch.testing.assert_close(vmap(torch.func.grad(f(l1_distances)))(m), vmap(torch.func.grad(f(_l1_broadcast)))(m))
    D = mlp_md(2, hidden=(8,), n_kernels=3, kernel_dim=2).double()
    x = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    gx, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    loss = (gx ** 2).sum()
    grads = torch.autograd.grad(loss, list(D.parameters()), allow_unused=True)  # the head's bias is unused
    layer = next(mod for mod in D.modules() if isinstance(mod, MinibatchDiscrimination))
    saved = MinibatchDiscrimination.forward
    MinibatchDiscrimination.forward = lambda self, f_: torch.cat(
        [f_, torch.exp(-_l1_broadcast((f_ @ self.T).unflatten(-1, (self.n_kernels, self.kernel_dim)))).sum(-2) - 1.0], -1)
    try:
        gx_ref, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        grads_ref = torch.autograd.grad((gx_ref ** 2).sum(), list(D.parameters()), allow_unused=True)
    finally:
        MinibatchDiscrimination.forward = saved
    assert layer.T.requires_grad
    assert sum(g is not None for g in grads) == len(grads) - 1
    for a, b in zip(grads, grads_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("case", ["bfloat16 input", "float32 input under bfloat16 autocast"])
def test_l1_distances_in_half_precision_and_under_autocast(case):
    # The image loop's D runs under bfloat16 autocast; cdist's backward has no bfloat16 kernel.
    torch.manual_seed(2)
    m32 = torch.randn(6, 3, 2)
    m = (m32.bfloat16() if case == "bfloat16 input" else m32).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=case != "bfloat16 input"):
        out = l1_distances(m)
    (out.float() * torch.randn(6, 6, 3)).sum().backward()
    assert out.dtype == m.dtype and m.grad is not None and m.grad.dtype == m.dtype
    torch.testing.assert_close(out.float(), _l1_broadcast(m.detach().float()), rtol=2e-2, atol=2e-2)


def test_l1_distances_bad_input():
    with pytest.raises(ValueError, match="at least 3"):
        l1_distances(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="floating"):
        l1_distances(torch.zeros(2, 4, 3, dtype=torch.long))


def test_minibatch_discrimination_sees_collapse():
    # Identical samples: every o_b = B - 1 (exp(0) for each other sample); a single sample: 0.
    layer = MinibatchDiscrimination(3, 2, 4)
    f = torch.randn(1, 3).repeat(5, 1)
    torch.testing.assert_close(layer(f)[:, 3:], torch.full((5, 2), 4.0))
    assert torch.equal(layer(f[:1])[:, 3:], torch.zeros(1, 2))


def test_minibatch_discrimination_bad_input():
    layer = MinibatchDiscrimination(3, 2, 4)
    with pytest.raises(ValueError, match="3 features"):
        layer(torch.randn(5, 4))
    with pytest.raises(ValueError, match="n_kernels"):
        MinibatchDiscrimination(3, 0, 4)
    with pytest.raises(TypeError, match="f must be"):
        layer(np.zeros((5, 3)))


def test_mlp_md_under_vmap_matches_loop():
    models, params, buffers, base = _stacked(lambda s: (torch.manual_seed(s), mlp_md(2, (8, 8), 4, 3))[1])
    x = torch.randn(S, 10, 2)
    out = vmap(lambda p, b, xs: functional_call(base, (p, b), (xs,)))(params, buffers, x)
    torch.testing.assert_close(out, torch.stack([m(xs) for m, xs in zip(models, x)]))
    # features with per-seed parameters, and feature matching on them
    fm = vmap(lambda p, xs, ys: feature_matching_loss(features(base, xs, p), features(base, ys, p)))(params, x, x.flip(1) + 1)
    loop = [feature_matching_loss(features(m, xs), features(m, xs.flip(0) + 1)) for m, xs in zip(models, x)]
    torch.testing.assert_close(fm, torch.stack(loop))


# --- features and feature matching --------------------------------------------------


def test_features_is_the_penultimate_layer():
    torch.manual_seed(0)
    D = mlp(2, 1, (8, 5))
    x = torch.randn(7, 2)
    f = features(D, x)
    assert f.shape == (7, 5)
    torch.testing.assert_close(D[-1](f), D(x))
    params = {n: p + 1.0 for n, p in D.named_parameters()}
    torch.testing.assert_close(features(D, x, params), functional_call(D[:-1], {k: v for k, v in params.items() if not k.startswith("4.")}, (x,)))
    with pytest.raises(TypeError, match="D must be an nn.Sequential"):
        features(nn.Linear(2, 1), x)


def test_feature_matching_loss_closed_form_and_gradient():
    torch.manual_seed(0)
    fr, ff = torch.randn(6, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    loss = feature_matching_loss(fr, ff)
    expected = sum((fr[:, j].mean() - ff[:, j].mean()) ** 2 for j in range(3))
    torch.testing.assert_close(loss, expected)
    (g,) = torch.autograd.grad(loss, ff)
    # d/d ff_ij = -2 (mean fr_j - mean ff_j) / n_fake
    torch.testing.assert_close(g, (-2 * (fr.mean(0) - ff.mean(0)) / 4).expand(4, 3).detach())
    assert feature_matching_loss(fr, fr) == 0


def test_feature_matching_bad_input_and_vmap():
    with pytest.raises(ValueError, match="agree except in the batch axis"):
        feature_matching_loss(torch.randn(4, 3), torch.randn(4, 2))
    a, b = torch.randn(S, 5, 3), torch.randn(S, 6, 3)
    torch.testing.assert_close(vmap(feature_matching_loss)(a, b), torch.stack([feature_matching_loss(x, y) for x, y in zip(a, b)]))
    # Leading axes are kept without vmap as well.
    torch.testing.assert_close(feature_matching_loss(a, b), vmap(feature_matching_loss)(a, b))


# --- mode seeking -------------------------------------------------------------------


def test_mode_seeking_loss_formula_and_gradient_direction():
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    G = mlp(4, 2, (8,))
    x1, x2 = G(z1), G(z2)
    ratio = (x1 - x2).abs().mean() / (z1 - z2).abs().mean()
    loss = mode_seeking_loss(x1, x2, z1, z2)
    torch.testing.assert_close(loss, 1 / (ratio + 1e-5))
    # A gradient step on the loss spreads the samples of the two latent batches apart.
    loss.backward()
    with torch.no_grad():
        for p in G.parameters():
            p -= 1e-2 * p.grad
    assert (G(z1) - G(z2)).abs().mean() > (x1 - x2).abs().mean()


def test_mode_seeking_collapse_is_finite_and_bad_input():
    z1, z2 = torch.randn(4, 2), torch.randn(4, 2)
    x = torch.zeros(4, 3)
    assert mode_seeking_loss(x, x, z1, z2) == pytest.approx(1e5)
    with pytest.raises(ValueError, match="x1 and x2"):
        mode_seeking_loss(x, torch.zeros(5, 3), z1, z2)
    with pytest.raises(ValueError, match="eps"):
        mode_seeking_loss(x, x, z1, z2, eps=0.0)


def test_mode_seeking_under_vmap():
    x1, x2, z1, z2 = (torch.randn(S, 6, 2) for _ in range(4))
    out = vmap(mode_seeking_loss)(x1, x2, z1, z2)
    torch.testing.assert_close(out, torch.stack([mode_seeking_loss(*t) for t in zip(x1, x2, z1, z2)]))


# --- mixture of generators ----------------------------------------------------------


@pytest.mark.parametrize("n", [1, 6, 7, 10])
def test_mixture_generator_row_assignment(n):
    torch.manual_seed(0)
    gens = [mlp(2, 3, (4,)) for _ in range(3)]
    mix = MixtureGenerator(gens)
    z = torch.randn(n, 2)
    out = mix(z)
    assert out.shape == (n, 3)
    expected = torch.stack([gens[i % 3](z[i : i + 1])[0] for i in range(n)])
    torch.testing.assert_close(out, expected)
    assert mix.assignment(n).tolist() == [i % 3 for i in range(n)]


def test_mixture_generator_under_vmap_and_bad_input():
    def make(s):
        torch.manual_seed(s)
        return MixtureGenerator([mlp(2, 2, (4,)) for _ in range(2)])

    models, params, buffers, base = _stacked(make)
    z = torch.randn(S, 7, 2)
    out = vmap(lambda p, b, zs: functional_call(base, (p, b), (zs,)))(params, buffers, z)
    torch.testing.assert_close(out, torch.stack([m(zs) for m, zs in zip(models, z)]))
    with pytest.raises(TypeError, match="generators"):
        MixtureGenerator([])


def test_mixture_classifier_loss_is_cross_entropy_with_assignment():
    torch.manual_seed(0)
    logits = torch.randn(7, 3)
    target = torch.arange(7) % 3
    torch.testing.assert_close(mixture_classifier_loss(logits), nn.functional.cross_entropy(logits, target))
    batch = torch.randn(S, 7, 3)
    torch.testing.assert_close(vmap(mixture_classifier_loss)(batch), torch.stack([mixture_classifier_loss(b) for b in batch]))
