"""Game dynamics: the derivations of chapter 05 against autograd and closed forms."""

import math

import numpy as np
import pytest

from gan_notes import dynamics as dy


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.5])
def test_simultaneous_gda_on_bilinear_grows_by_sqrt_1_plus_lr2(lr):
    traj = dy.trajectory(dy.bilinear(), [1.0, -0.5], lr, 20)
    norms = np.linalg.norm(traj, axis=1)
    np.testing.assert_allclose(norms[1:] / norms[:-1], math.sqrt(1 + lr**2), rtol=1e-12)


def test_alternating_gda_on_bilinear_stays_bounded_and_does_not_converge():
    traj = dy.trajectory(dy.bilinear(), [1.0, 1.0], 0.1, 2000, method="alternating")
    norms = np.linalg.norm(traj, axis=1)
    assert norms.max() < 2.0 and norms[-200:].min() > 0.5
    # The update map is area preserving: determinant 1.
    assert np.linalg.det(dy.update_jacobian(dy.bilinear(), 0.1, "alternating")) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["extragradient", "optimistic", "consensus"])
def test_stabilised_methods_converge_on_bilinear(method):
    traj = dy.trajectory(dy.bilinear(), [1.0, 1.0], 0.1, 3000, method=method)
    assert np.linalg.norm(traj[-1]) < 1e-3


def test_quadratic_field_jacobian_matches_closed_form():
    # V = 3/2 x^2 + 4 x y - 5/2 y^2: v = (3x + 4y, -(4x - 5y)) = A z with A = [[3, 4], [-4, 5]].
    lr = 0.05
    jac = dy.update_jacobian(dy.quadratic(), lr)
    a = np.array([[3.0, 4.0], [-4.0, 5.0]])
    np.testing.assert_allclose(jac, np.eye(2) - lr * a, atol=1e-12)
    eig = np.linalg.eigvals(a)
    np.testing.assert_allclose(sorted(eig.real), [4.0, 4.0])
    np.testing.assert_allclose(sorted(np.abs(eig.imag)), [math.sqrt(15)] * 2)


def test_spectral_radius_of_simultaneous_gda_on_quadratic():
    # Eigenvalues of I - lr A are 1 - lr (4 +- i sqrt 15): |.|^2 = (1 - 4 lr)^2 + 15 lr^2.
    for lr in (0.01, 0.1, 0.2, 0.3):
        expected = math.sqrt((1 - 4 * lr) ** 2 + 15 * lr**2)
        assert dy.spectral_radius(dy.update_jacobian(dy.quadratic(), lr)) == pytest.approx(expected)


def test_dirac_gan_gradient_matches_closed_form():
    # V = log s(0) + log(1 - s(psi theta)): dV/dtheta = -psi s(psi theta), dV/dpsi = -theta s(psi theta).
    import torch

    theta, psi = 0.7, -1.3
    g = dy.dirac_gan().grad(torch.tensor([theta, psi], dtype=torch.float64)).numpy()
    s = 1 / (1 + math.exp(-psi * theta))
    np.testing.assert_allclose(g, [-psi * s, -theta * s], rtol=1e-12)


def test_dirac_gan_converges_only_with_regularisation():
    plain = dy.trajectory(dy.dirac_gan(), [1.0, 1.0], 0.1, 2000)
    r1 = dy.trajectory(dy.dirac_gan(r1=1.0), [1.0, 1.0], 0.1, 2000)
    noisy = dy.trajectory(dy.dirac_gan(instance_noise=1.0), [1.0, 1.0], 0.1, 2000)
    assert np.linalg.norm(plain[-1]) > 0.5
    assert np.linalg.norm(r1[-1]) < 1e-3
    assert np.linalg.norm(noisy[-1]) < 1e-3


def test_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        dy.step(dy.bilinear(), dy._as_state([0.0, 0.0]), 0.1, method="adam")
    with pytest.raises(ValueError, match="lr"):
        dy.trajectory(dy.bilinear(), [1.0, 1.0], -0.1, 3)
    with pytest.raises(ValueError, match="shape"):
        dy.trajectory(dy.bilinear(), [1.0, 1.0, 1.0], 0.1, 3)
    with pytest.raises(ValueError, match="diverged"):
        dy.trajectory(dy.bilinear(), [1.0, 1.0], 1e3, 500)
    with pytest.raises(ValueError, match="square"):
        dy.spectral_radius(np.ones((2, 3)))


def test_field_jacobian_of_the_quadratic_game_and_the_dirac_gan():
    np.testing.assert_allclose(dy.field_jacobian(dy.quadratic()), [[3.0, 4.0], [-4.0, 5.0]], atol=1e-12)
    # Dirac-GAN at the equilibrium: purely rotational, [[0, -1/2], [1/2, 0]] (sigma(0) = 1/2).
    np.testing.assert_allclose(dy.field_jacobian(dy.dirac_gan()), [[0.0, -0.5], [0.5, 0.0]], atol=1e-12)
