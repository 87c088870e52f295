"""Unit tests of gan_notes.models."""

import pytest
import torch
from torch import nn

from gan_notes.models import mlp


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
