"""Unit tests of gan_notes.dcgan: shapes, packing against manual concatenation, ablation
switches, minibatch discrimination in D1, SELU initialisation, gradients and bad inputs."""

import math

import pytest
import torch
from torch import nn

from gan_notes.dcgan import (
    TWODISC_VARIANTS,
    CNNDiscriminator32,
    MDDiscriminator28,
    ResidualDiscriminator32,
    dcgan_discriminator,
    dcgan_generator,
    twodisc_models,
)
from gan_notes.remedies import MinibatchDiscrimination


@pytest.fixture(autouse=True)
def seeded(one_thread):
    # one torch thread (conftest.py) and the same initial weights in every test
    torch.manual_seed(0)


def _small32(variant="full"):
    return twodisc_models(variant, latent_dim=8, g_width=4, d1_width=4, d2_width=4, md_kernels=3, md_dim=2)


# --- 28×28 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_generator28_shape_and_range(channels):
    g = dcgan_generator(channels, latent_dim=10, width=8)
    x = g(torch.randn(5, 10))
    assert x.shape == (5, channels, 28, 28)
    assert float(x.detach().abs().max()) <= 1.0
    assert (g.latent_dim, g.channels, g.image_size) == (10, channels, 28)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("factor,expected_width", [(1.0, 16), (0.5, 8), (0.25, 4)])
@pytest.mark.parametrize("pack", [1, 2, 4])
def test_discriminator28_width_pack_and_logit_shape(channels, factor, expected_width, pack):
    d = dcgan_discriminator(channels, width_factor=factor, pack=pack, width=16)
    first = d.net[0]
    assert first.out_channels == expected_width and first.in_channels == pack * channels
    out = d(torch.randn(8, channels, 28, 28))
    assert out.shape == (8 // pack, 1)


def test_smaller_discriminators_have_fewer_parameters():
    count = [sum(p.numel() for p in dcgan_discriminator(3, width_factor=f).parameters()) for f in (1.0, 0.5, 0.25)]
    assert count[0] > count[1] > count[2]


@pytest.mark.parametrize("pack", [2, 4])
def test_packing_concatenates_consecutive_images_along_channels(pack):
    d = dcgan_discriminator(3, pack=pack, width=8, batch_norm=False)
    x = torch.randn(4 * pack, 3, 28, 28)
    # Oracle: pack j holds images j*m, ..., j*m + m - 1, channels in that order.
    manual = torch.cat([x[i::pack] for i in range(pack)], dim=1)
    torch.testing.assert_close(d(x), d.net(manual), rtol=0, atol=0)


def test_packing_is_not_a_mean_over_samples():
    # A packed D sees the pack jointly: swapping images between packs changes its output.
    d = dcgan_discriminator(1, pack=2, width=8, batch_norm=False)
    x = torch.randn(4, 1, 28, 28)
    swapped = x[[0, 2, 1, 3]]
    assert not torch.allclose(d(x), d(swapped))


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), "half", True, None])
def test_bad_width_factor(bad):
    with pytest.raises(ValueError, match="width_factor"):
        dcgan_discriminator(1, width_factor=bad)


def test_width_factor_too_small_for_width():
    with pytest.raises(ValueError, match="no channels"):
        dcgan_discriminator(1, width_factor=0.001, width=64)


@pytest.mark.parametrize("kwargs,match", [({"pack": 0}, "pack"), ({"channels": 0}, "channels"), ({"width": 2.5}, "width")])
def test_bad_discriminator_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dcgan_discriminator(**kwargs)


def test_image_size_mismatch_raises():
    d = dcgan_discriminator(1, width=8)
    with pytest.raises(ValueError, match="image size"):
        d(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\(n, 1, 28, 28\)"):
        d(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="pack"):
        dcgan_discriminator(1, pack=4, width=8)(torch.randn(6, 1, 28, 28))
    with pytest.raises(ValueError, match="z must have shape"):
        dcgan_generator(1, latent_dim=10, width=8)(torch.randn(2, 11))
    with pytest.raises(ValueError, match="image size"):
        _small32()[1](torch.randn(2, 3, 28, 28))


def test_md_discriminator28_against_the_minibatch_discrimination_formula():
    base = dcgan_discriminator(3, width=4, batch_norm=False)
    d = MDDiscriminator28(base, n_kernels=3, kernel_dim=2)
    assert (d.channels, d.image_size) == (3, 28) and d.head.in_features == 8 * 49 + 3
    x = torch.randn(5, 3, 28, 28)
    # Oracle, written from Salimans et al.: f = base's features, M_i = f_i T (K x C),
    # o_b(x_i) = sum_{j != i} exp(-||M_ib - M_jb||_1), logit = head([f_i; o(x_i)]).
    f = base.net[:-1](x)
    M = (f @ d.md.T).reshape(5, 3, 2)
    o = torch.stack([torch.stack([sum(torch.exp(-(M[i, b] - M[j, b]).abs().sum()) for j in range(5) if j != i)
                                  for b in range(3)]) for i in range(5)])
    torch.testing.assert_close(d(x), torch.cat([f, o], dim=1) @ d.head.weight.T + d.head.bias)
    # A sample's logit depends on the rest of the batch; the plain DCGAN D's does not.
    y = x.clone()
    y[1:] = torch.randn(4, 3, 28, 28)
    assert not torch.allclose(d(x)[0], d(y)[0])
    torch.testing.assert_close(base(x)[0], base(y)[0])


def test_md_discriminator28_bad_arguments():
    with pytest.raises(TypeError, match="base"):
        MDDiscriminator28(nn.Linear(2, 1))
    with pytest.raises(ValueError, match="pack"):
        MDDiscriminator28(dcgan_discriminator(1, pack=2, width=4))
    with pytest.raises(ValueError, match="n_kernels"):
        MDDiscriminator28(dcgan_discriminator(1, width=4), n_kernels=0)
    with pytest.raises(ValueError, match="image size"):
        MDDiscriminator28(dcgan_discriminator(1, width=4))(torch.randn(2, 1, 32, 32))


# --- 32×32 two-discriminator GAN --------------------------------------------------------------


@pytest.mark.parametrize("variant", list(TWODISC_VARIANTS))
def test_twodisc_shapes(variant):
    g, d1, d2 = _small32(variant)
    x = g(torch.randn(6, 8))
    assert x.shape == (6, 3, 32, 32)
    assert d1(x).shape == (6, 1) and d2(x).shape == (6, 1)


def _has(module, kind):
    return any(isinstance(m, kind) for m in module.modules())


def test_twodisc_ablation_switches_do_what_they_say():
    _, d1, d2 = _small32("full")
    assert isinstance(d1.md, MinibatchDiscrimination) and not _has(d2, MinibatchDiscrimination)
    assert _has(d2, nn.SELU) and not _has(d1, nn.SELU)
    assert all(b.residual for b in d1.blocks)
    assert not _has(_small32("no_md")[1], MinibatchDiscrimination)
    assert not _has(_small32("no_selu")[2], nn.SELU) and _has(_small32("no_selu")[2], nn.LeakyReLU)
    assert isinstance(_small32("md_both")[2].md, MinibatchDiscrimination)
    assert _has(_small32("selu_both")[1], nn.SELU)
    plain = _small32("no_resblock")[1]
    assert not any(b.residual for b in plain.blocks)
    assert all(isinstance(b.shortcut, nn.Identity) for b in plain.blocks)


def test_no_resblock_drops_exactly_the_shortcut():
    # With the same weights, a residual block minus its shortcut branch is the plain block.
    from gan_notes.dcgan import _Block

    res = _Block(4, 4, "leaky_relu", down=True, residual=True, first=False)
    plain = _Block(4, 4, "leaky_relu", down=True, residual=False, first=False)
    plain.load_state_dict(res.state_dict(), strict=False)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(res(x) - plain(x), res.pool(res.shortcut(x)))


def test_unknown_variant_and_bad_sizes():
    with pytest.raises(ValueError, match="variant"):
        twodisc_models("no_such_thing")
    with pytest.raises(ValueError, match="d1_width"):
        twodisc_models(d1_width=0)
    with pytest.raises(ValueError, match="activation"):
        CNNDiscriminator32(3, 4, activation="swish")


def test_selu_layers_get_lecun_normal_weights():
    d2 = CNNDiscriminator32(3, 16)
    conv = d2.features[12]  # the last conv, 4w -> 8w channels, 3x3
    fan_in = conv.in_channels * 9
    assert math.isclose(float(conv.weight.detach().std()), 1 / math.sqrt(fan_in), rel_tol=0.1)


def test_residual_discriminator_default_activation_is_leaky_relu():
    d1 = ResidualDiscriminator32(3, 4, md_kernels=2, md_dim=2)
    assert _has(d1, nn.LeakyReLU) and not _has(d1, nn.SELU)


# --- minibatch discrimination in D1 ------------------------------------------------------------


def test_d1_decision_depends_on_the_batch_only_through_minibatch_discrimination():
    x = torch.randn(4, 3, 32, 32)
    y = x.clone()
    y[3] += 1.0  # change another sample of the batch
    with_md, without_md = _small32("full")[1], _small32("no_md")[1]
    assert isinstance(with_md.md, MinibatchDiscrimination)
    assert not torch.allclose(with_md(x)[0], with_md(y)[0])
    torch.testing.assert_close(without_md(x)[:3], without_md(y)[:3], rtol=0, atol=0)
    # The layer reads the pooled features: [features, o] with K = md_kernels extra entries.
    assert with_md.head.in_features == 4 + 3


# --- gradients --------------------------------------------------------------------------------


def _assert_all_grads(module):
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().sum()) > 0, name


@pytest.mark.parametrize("pack", [1, 2])
def test_gradients_flow_through_dcgan(pack):
    g, d = dcgan_generator(3, latent_dim=8, width=4), dcgan_discriminator(3, width_factor=0.5, pack=pack, width=4)
    d(g(torch.randn(4, 8))).sum().backward()
    _assert_all_grads(g)
    _assert_all_grads(d)


@pytest.mark.parametrize("variant", ["full", "md_both", "no_resblock"])
def test_gradients_flow_through_twodisc(variant):
    g, d1, d2 = _small32(variant)
    x = g(torch.randn(4, 8))
    (d1(x).sum() + d2(x).sum()).backward()
    for m in (g, d1, d2):
        _assert_all_grads(m)
