"""Unit tests of gan_notes.models."""

import copy
import pytest
import torch
from torch import nn

from gan_notes.models import BatchNorm, mlp


@pytest.mark.parametrize("in_dim, out_dim, hidden", [(2, 1, (16, 8)), (5, 3, (4,)), (1, 1, ())])
def test_mlp_shapes_and_linear_last_layer(in_dim, out_dim, hidden):
    net = mlp(in_dim, out_dim, hidden)
    assert isinstance(net, nn.Sequential)
    out = net(torch.randn(7, in_dim))
    assert out.shape == (7, out_dim)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    widths = [in_dim, *hidden, out_dim]
    assert [(m.in_features, m.out_features) for m in linears] == list(zip(widths[:-1], widths[1:]))
    # The last layer is linear (logits / points), not an activation.
    assert isinstance(net[-1], nn.Linear)
    assert len(net) == 2 * len(hidden) + 1


def test_mlp_outputs_are_unbounded_logits():
    # A linear last layer: scaling its weights scales the output (no squashing).
    torch.manual_seed(0)
    net = mlp(2, 1, (8,))
    x = torch.randn(32, 2)
    with torch.no_grad():
        net[-1].bias.zero_()
        y = net(x)
        net[-1].weight.mul_(1000.0)
        assert torch.allclose(net(x), 1000.0 * y, rtol=1e-4)
        assert net(x).abs().max() > 1.0


@pytest.mark.parametrize(
    "activation, cls", [("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("tanh", nn.Tanh), ("elu", nn.ELU), ("selu", nn.SELU)]
)
def test_mlp_activations(activation, cls):
    net = mlp(3, 2, (4, 4), activation=activation)
    acts = [m for m in net if not isinstance(m, nn.Linear)]
    assert len(acts) == 2 and all(isinstance(m, cls) for m in acts)
    if activation == "leaky_relu":
        assert acts[0].negative_slope == pytest.approx(0.2)


def test_mlp_default_hidden():
    net = mlp(2, 1)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [128, 128, 1]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(in_dim=0, out_dim=1), "in_dim"),
        (dict(in_dim=2, out_dim=-1), "out_dim"),
        (dict(in_dim=2.0, out_dim=1), "in_dim"),
        (dict(in_dim=2, out_dim=1, hidden=(16, 0)), "hidden"),
        (dict(in_dim=2, out_dim=1, hidden=(16.5,)), "hidden"),
        (dict(in_dim=2, out_dim=1, activation="gelu"), "unknown activation 'gelu'"),
    ],
)
def test_mlp_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        mlp(**kwargs)


# --- Part III discriminators ----------------------------------------------------------

from gan_notes.models import ResidualBlock, autoencoder_mlp, mlp_md, residual_mlp  # noqa: E402
from gan_notes.remedies import MinibatchDiscrimination, features  # noqa: E402


def test_mlp_md_layout_and_batch_dependence():
    torch.manual_seed(0)
    D = mlp_md(2, (16, 8), n_kernels=4, kernel_dim=3)
    assert isinstance(D[-2], MinibatchDiscrimination) and D[-1].in_features == 8 + 4
    x = torch.randn(10, 2)
    assert D(x).shape == (10, 1) and features(D, x).shape == (10, 12)
    # A sample's logit depends on the rest of the batch (unlike a plain MLP).
    assert not torch.allclose(D(x)[:1], D(x[:1]))
    with pytest.raises(ValueError, match="hidden"):
        mlp_md(2, ())


@pytest.mark.parametrize("kernels", [0, 5])
def test_residual_mlp_layout(kernels):
    torch.manual_seed(0)
    D = residual_mlp(3, width=8, n_blocks=2, minibatch_kernels=kernels, activation="selu")
    assert sum(isinstance(m, ResidualBlock) for m in D) == 2
    assert sum(isinstance(m, MinibatchDiscrimination) for m in D) == (kernels > 0)
    assert isinstance(D[-1], nn.Linear) and D[-1].in_features == 8 + kernels
    assert D(torch.randn(6, 3)).shape == (6, 1)


def test_residual_block_is_identity_plus_branch():
    torch.manual_seed(0)
    block = ResidualBlock(4)
    h = torch.randn(5, 4)
    torch.testing.assert_close(block(h), h + block.branch(h))
    with torch.no_grad():
        block.branch[-1].weight.zero_()
        block.branch[-1].bias.zero_()
    torch.testing.assert_close(block(h), h)


def test_autoencoder_mlp_reconstructs_shape_and_code():
    D = autoencoder_mlp(2, hidden=16, code=3)
    x = torch.randn(7, 2)
    assert D(x).shape == (7, 2)
    assert features(D, x).shape == (7, 3)
    torch.testing.assert_close(D[1](D[0](x)), D(x))


@pytest.mark.parametrize(
    "fn, kwargs, pattern",
    [
        (residual_mlp, dict(in_dim=2, width=0), "width"),
        (residual_mlp, dict(in_dim=2, minibatch_kernels=-1), "minibatch_kernels"),
        (residual_mlp, dict(in_dim=2, activation="gelu"), "unknown activation"),
        (autoencoder_mlp, dict(dim=2, code=0), "code"),
        (mlp_md, dict(in_dim=2, n_kernels=0), "n_kernels"),
    ],
)
def test_part3_models_bad_arguments(fn, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(**kwargs)


# --- generate ----------------------------------------------------------------------------

from gan_notes.models import generate  # noqa: E402


class _BNGenerator(nn.Module):
    """Linear + batch norm: train and eval mode give different outputs."""

    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.fc, self.bn = nn.Linear(3, 2), nn.BatchNorm1d(2)
        with torch.no_grad():
            self.bn.running_mean.fill_(5.0)  # far from any batch's mean
            self.bn.running_var.fill_(4.0)

    def forward(self, z):
        return self.bn(self.fc(z))


@pytest.mark.parametrize("was_training", [True, False])
def test_generate_in_eval_mode_without_grad_and_restores_the_mode(was_training):
    torch.manual_seed(0)
    G = _BNGenerator().train(was_training)
    running = G.bn.running_mean.clone()
    x = generate(G, 10, chunk=4, generator=torch.Generator().manual_seed(1))
    assert x.shape == (10, 2) and not x.requires_grad
    assert G.training == was_training
    torch.testing.assert_close(G.bn.running_mean, running)  # eval mode: statistics untouched
    # The reference: the same latents, drawn chunk by chunk, through the network in eval mode.
    g = torch.Generator().manual_seed(1)
    z = torch.cat([torch.randn(m, 3, generator=g) for m in (4, 4, 2)])
    with torch.no_grad():
        ref = (z @ G.fc.weight.T + G.fc.bias - 5.0) / torch.sqrt(torch.tensor(4.0) + G.bn.eps)
    torch.testing.assert_close(x, ref)


def test_generate_uses_the_global_random_state_and_restores_the_mode_after_an_error():
    G = mlp(2, 2, (4,))
    torch.manual_seed(3)
    a = generate(G, 5, latent_dim=2)
    torch.manual_seed(3)
    with torch.no_grad():
        torch.testing.assert_close(a, G(torch.randn(5, 2)))

    class Broken(nn.Module):
        latent_dim = 2

        def forward(self, z):
            raise RuntimeError("boom")

    broken = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        generate(broken, 3)
    assert broken.training


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(n=0), ValueError, "n must"),
        (dict(n=True), ValueError, "n must"),
        (dict(n=4, chunk=0), ValueError, "chunk"),
        (dict(n=4, generator=0), TypeError, "generator"),
    ],
)
def test_generate_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        generate(_BNGenerator(), **kwargs)


def test_generate_needs_a_latent_dim():
    with pytest.raises(ValueError, match="latent_dim"):
        generate(mlp(2, 2), 4)
    with pytest.raises(TypeError, match="G must"):
        generate(lambda z: z, 4, latent_dim=2)


# --- Maxout, PacGAN's toy discriminator, N(0, std^2) initialisation, batch-normalised MLPs ---

from torch.func import functional_call, stack_module_state, vmap  # noqa: E402

from gan_notes.models import Maxout, init_normal_, maxout_mlp  # noqa: E402


def _ref_maxout(layer, x):
    """max_k (x W_k^T + b_k), with W_k the rows j * pieces + k of the linear map (unit j, piece k)."""
    W, b, K = layer.linear.weight, layer.linear.bias, layer.pieces
    return torch.stack([x @ W[k::K].T + b[k::K] for k in range(K)]).max(0).values


def test_maxout_equals_the_max_over_affine_pieces():
    torch.manual_seed(0)
    layer = Maxout(3, 4, 5)
    assert (layer.linear.in_features, layer.linear.out_features) == (3, 20)
    x = torch.randn(11, 3)
    out = layer(x)
    assert out.shape == (11, 4)
    torch.testing.assert_close(out, _ref_maxout(layer, x))
    # one piece: the affine map itself
    one = Maxout(3, 4, 1)
    torch.testing.assert_close(one(x), one.linear(x))


@pytest.mark.parametrize("dims", [(0, 4, 5), (3, 0, 5), (3, 4, 0), (3, 4, True), (3, 4.0, 5), (-1, 4, 5)])
def test_maxout_rejects_bad_dims(dims):
    with pytest.raises(ValueError):
        Maxout(*dims)


def test_maxout_mlp_layers_and_vmap_over_stacked_copies():
    net = maxout_mlp(2, 1, (200, 200, 200), 5)
    assert [type(m) for m in net] == [Maxout, Maxout, Maxout, nn.Linear]
    assert [(m.linear.in_features, m.linear.out_features, m.pieces) for m in net[:3]] == [(2, 1000, 5), (200, 1000, 5), (200, 1000, 5)]
    assert (net[3].in_features, net[3].out_features) == (200, 1)
    x = torch.randn(9, 2)
    h = x
    for layer in net[:3]:
        h = _ref_maxout(layer, h)
    torch.testing.assert_close(net(x), h @ net[3].weight.T + net[3].bias)
    with pytest.raises(ValueError):
        maxout_mlp(2, 1, (8, 0), 5)
    # three copies, stacked and mapped with vmap, equal a loop over the copies
    torch.manual_seed(1)
    copies = [maxout_mlp(2, 1, (6, 6), 3) for _ in range(3)]
    params, buffers = stack_module_state(copies)
    xs = torch.randn(3, 7, 2)
    got = vmap(lambda p, b, x: functional_call(copies[0], (p, b), (x,)))(params, buffers, xs)
    torch.testing.assert_close(got, torch.stack([c(x) for c, x in zip(copies, xs)]))


def test_init_normal_draws_weights_with_the_given_std_and_zero_biases():
    torch.manual_seed(0)
    net = init_normal_(mlp(2, 2, (400, 400)), 0.02)
    w = torch.cat([m.weight.detach().flatten() for m in net if isinstance(m, nn.Linear)])
    assert w.numel() == 2 * 400 + 400 * 400 + 400 * 2
    assert abs(float(w.std()) / 0.02 - 1) < 0.02
    assert abs(float(w.mean())) < 0.02 * 0.02
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in net if isinstance(m, nn.Linear))
    # batch norm keeps its scale 1 and shift 0; only the last linear layer has a bias
    bn = init_normal_(mlp(2, 2, (400, 400), batch_norm=True), 0.5)
    norms = [m for m in bn if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 2 and all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in norms)
    w = torch.cat([m.weight.detach().flatten() for m in bn if isinstance(m, nn.Linear)])
    assert abs(float(w.std()) / 0.5 - 1) < 0.02
    assert float(bn[-1].bias.detach().abs().max()) == 0.0
    # maxout's linear maps too
    mo = init_normal_(maxout_mlp(2, 1, (200, 200), 5), 0.1)
    assert abs(float(mo[1].linear.weight.detach().std()) / 0.1 - 1) < 0.02
    assert float(mo[0].linear.bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize("std", [0, 0.0, -1, True, float("nan"), "0.02", None])
def test_init_normal_rejects_bad_std(std):
    with pytest.raises(ValueError, match="std"):
        init_normal_(mlp(2, 2, (4,)), std)


def _ref_bn_mlp(net, x):
    """Linear (no bias), batch norm on the batch's own statistics (biased variance, eps 1e-5),
    ReLU, per hidden layer; then the linear head."""
    mods = list(net)
    h = x
    for i in range(0, len(mods) - 1, 3):
        lin, bn = mods[i], mods[i + 1]
        h = h @ lin.weight.T
        mean, var = h.mean(0), ((h - h.mean(0)) ** 2).mean(0)
        h = torch.clamp((h - mean) / torch.sqrt(var + 1e-5) * bn.weight + bn.bias, min=0)
    return h @ mods[-1].weight.T + mods[-1].bias


def test_batch_norm_mlp_uses_batch_statistics_in_train_and_eval():
    torch.manual_seed(0)
    net = mlp(3, 2, (6, 5), batch_norm=True)
    types = [type(m) for m in net]
    assert types == [nn.Linear, BatchNorm, nn.ReLU, nn.Linear, BatchNorm, nn.ReLU, nn.Linear]
    assert net[0].bias is None and net[3].bias is None and net[-1].bias is not None
    assert all(not m.track_running_stats and m.running_mean is None for m in net if isinstance(m, nn.BatchNorm1d))
    with torch.no_grad():  # scales and shifts away from 1 and 0, so that they matter
        for m in net:
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.normal_()
    x = torch.randn(13, 3) * 2 + 1
    expected = _ref_bn_mlp(net, x)
    out_train = net.train()(x)
    out_eval = net.eval()(x)
    torch.testing.assert_close(out_train, expected)
    torch.testing.assert_close(out_eval, expected)
    # under vmap over stacked copies, as the batched trainer uses it
    copies = [mlp(3, 2, (6, 5), batch_norm=True) for _ in range(3)]
    params, buffers = stack_module_state(copies)
    xs = torch.randn(3, 13, 3)
    got = vmap(lambda p, b, x: functional_call(copies[0], (p, b), (x,)))(params, buffers, xs)
    torch.testing.assert_close(got, torch.stack([_ref_bn_mlp(c, x) for c, x in zip(copies, xs)]))


def test_batch_norm_matches_torch_batch_norm_values_gradients_and_vmap():
    """models.BatchNorm against nn.BatchNorm1d(track_running_stats=False): outputs, first and
    second derivatives, and the same map over stacked seeds under vmap."""
    torch.manual_seed(0)
    ours, ref = BatchNorm(5), nn.BatchNorm1d(5, track_running_stats=False)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
        ours.bias.normal_()
    ref.load_state_dict(ours.state_dict())
    x = (torch.randn(17, 5, dtype=torch.float64) * 3 + 2).requires_grad_()
    ours, ref = ours.double(), ref.double()
    y, y_ref = ours(x), ref(x)
    torch.testing.assert_close(y, y_ref)
    w = torch.randn_like(y)
    g = torch.autograd.grad((y * w).sum(), (x, ours.weight, ours.bias), create_graph=True)
    g_ref = torch.autograd.grad((y_ref * w).sum(), (x, ref.weight, ref.bias), create_graph=True)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(torch.autograd.grad(g[0].pow(2).sum(), x)[0], torch.autograd.grad(g_ref[0].pow(2).sum(), x)[0])
    # over 3 stacked seeds
    from torch.func import functional_call, stack_module_state, vmap
    nets = [mlp(2, 2, (6,), batch_norm=True) for _ in range(3)]
    params, buffers = stack_module_state(nets)
    z = torch.randn(3, 11, 2)
    out = vmap(lambda p, b, z: functional_call(nets[0], (p, b), (z,)))(params, buffers, z)
    torch.testing.assert_close(out, torch.stack([n(zi) for n, zi in zip(nets, z)]))
    # the same as torch's module in the whole MLP
    torch_net = nn.Sequential(*[nn.BatchNorm1d(6, track_running_stats=False) if isinstance(m, BatchNorm) else m for m in nets[0]])
    torch_net.load_state_dict(nets[0].state_dict())
    torch.testing.assert_close(torch_net(z[0]), nets[0](z[0]))


@pytest.mark.parametrize("shape", [(1, 4), (4,), (2, 4, 3)])
def test_batch_norm_rejects_a_single_row_or_other_shapes(shape):
    with pytest.raises(ValueError, match="N >= 2"):
        BatchNorm(4)(torch.randn(shape))


# --- models.call: functional_call's numbers without its reparametrisation -------------------

from gan_notes.models import call  # noqa: E402
from gan_notes.remedies import MixtureGenerator  # noqa: E402


def _nets():
    torch.manual_seed(0)
    return {
        "mlp with batch norm": (mlp(2, 2, (16, 16), batch_norm=True), 2),
        "mlp selu": (mlp(4, 1, (16,), activation="selu"), 4),
        "minibatch discrimination": (mlp_md(2, (16, 16), 3, 2, activation="relu"), 2),
        "maxout": (maxout_mlp(2, 1, (8, 8), 3), 2),
        "autoencoder": (autoencoder_mlp(2, 8, 1), 2),
        "residual": (residual_mlp(2, 1, 16, 2), 2),
        "mixture of generators": (MixtureGenerator([mlp(2, 2, (8,)) for _ in range(3)]), 2),
    }


@pytest.mark.parametrize("name", list(_nets()))
def test_call_is_functional_call_bit_for_bit_with_gradients_and_under_vmap(name):
    net, d = _nets()[name]
    S = 3
    copies = [copy.deepcopy(net) for _ in range(S)]
    for i, c in enumerate(copies):  # distinct parameters per seed
        with torch.no_grad():
            for p in c.parameters():
                p.add_(0.1 * i * torch.randn_like(p))
    params, buffers = stack_module_state(copies)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    x = torch.randn(S, 12, d)
    outs, grads = [], []
    for fn in (lambda p, x_: call(net, {**p, **buffers}, x_), lambda p, x_: functional_call(net, {**p, **buffers}, (x_,))):
        y = vmap(fn)(params, x)
        outs.append(y)
        grads.append(torch.autograd.grad((y ** 2).sum(), list(params.values()), allow_unused=True))
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads):
        assert (a is None and b is None) or torch.equal(a, b)
    # one seed, outside vmap, against the module itself
    one = {k: v[1].detach() for k, v in params.items()}
    torch.testing.assert_close(call(net, one, x[1]), copies[1](x[1]), rtol=0, atol=0)


def test_call_falls_back_to_the_modules_own_tensors_for_missing_keys():
    torch.manual_seed(0)
    net = mlp(2, 1, (4,))
    x = torch.randn(5, 2)
    w = torch.zeros_like(net[2].weight)
    out = call(net, {"2.weight": w}, x)  # only the head's weight replaced
    torch.testing.assert_close(out, functional_call(net, {"2.weight": w}, (x,)))
    torch.testing.assert_close(out, net[2].bias.expand(5, 1).detach(), rtol=0, atol=0)
