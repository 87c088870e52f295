"""Unit tests of gan_notes.plotting: what the heat map of discriminator_field shows (sigmoid of
a logit, or a critic's raw values), its arrows against the hand-computed generator gradient,
loss_curves' smoothed curves against a direct moving average, and bad inputs."""

import math
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from gan_notes.plotting import discriminator_field, learning_curves, loss_curves, smooth  # noqa: E402


class _FirstCoordinate(nn.Module):
    """f(x) = c * x_1: a linear critic (or logit) whose values on the grid are known."""

    def __init__(self, c: float = 3.0):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return self.c * x[:, :1]


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _grid_x1(lim, resolution):
    return np.tile(np.linspace(-lim, lim, resolution, dtype=np.float32), (resolution, 1))  # rows: x_2, columns: x_1


@pytest.mark.parametrize("loss, logit", [("non_saturating", None), ("minimax", None), ("wgan", True)])
def test_heat_map_is_the_sigmoid_of_a_logit(ax, loss, logit):
    discriminator_field(ax, _FirstCoordinate(), fake=np.zeros((3, 2)), lim=2.0, resolution=9, loss=loss, arrows=0, logit=logit)
    im = ax.images[0]
    np.testing.assert_allclose(im.get_array(), 1 / (1 + np.exp(-3.0 * _grid_x1(2.0, 9))), rtol=1e-6)
    assert im.get_clim() == (0.0, 1.0)


@pytest.mark.parametrize("loss, logit", [("wgan", None), ("hinge", None), ("lsgan", None), ("non_saturating", False)])
def test_heat_map_of_a_critic_shows_its_raw_values(ax, loss, logit):
    discriminator_field(ax, _FirstCoordinate(), fake=np.zeros((3, 2)), lim=2.0, resolution=9, loss=loss, arrows=0, logit=logit)
    im = ax.images[0]
    np.testing.assert_allclose(im.get_array(), 3.0 * _grid_x1(2.0, 9), rtol=1e-6)
    assert im.get_clim() == (-6.0, 6.0)  # symmetric about 0: +- max |f| on the grid


def test_arrows_follow_the_critic_gradient(ax):
    # WGAN: L_G = -mean f(G(z)), so -grad_x L_G per sample = grad f = (3, 0): unit arrows along x_1.
    fake = np.array([[0.5, -0.3], [-1.0, 1.0]])
    discriminator_field(ax, _FirstCoordinate(), fake=fake, lim=2.0, resolution=5, loss="wgan", arrows=2)
    q = ax.collections[-1]
    np.testing.assert_allclose(q.U, [1.0, 1.0])
    np.testing.assert_allclose(q.V, [0.0, 0.0])
    np.testing.assert_allclose(q.get_offsets(), fake, rtol=1e-6)


def test_logit_must_be_a_bool(ax):
    with pytest.raises(TypeError, match="logit"):
        discriminator_field(ax, _FirstCoordinate(), fake=np.zeros((3, 2)), resolution=5, arrows=0, logit="yes")


def test_loss_curves_plot_a_moving_average(ax):
    rng = np.random.default_rng(0)
    history = types.SimpleNamespace(d_loss=rng.normal(size=30), g_loss=rng.normal(size=30))
    loss_curves(ax, history, window=4, labels=("D", "G (non-saturating)"))
    smoothed = {line.get_label(): line for line in ax.lines if line.get_label() in ("D", "G (non-saturating)")}
    d = smoothed["D"]
    direct = [history.d_loss[i : i + 4].mean() for i in range(27)]
    np.testing.assert_allclose(d.get_ydata(), direct)
    np.testing.assert_array_equal(d.get_xdata(), np.arange(4, 31))  # each mean sits at its last step
    assert {line.get_label() for line in ax.lines} >= {r"$\log 4$", r"$\log 2$"}
    assert math.log(4) in [line.get_ydata()[0] for line in ax.lines]


def test_smooth():
    np.testing.assert_allclose(smooth([1.0, 2.0, 3.0, 4.0], window=2), [1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth([1.0, 3.0], window=50), [2.0])  # the window shrinks to the data
    with pytest.raises(ValueError, match="window"):
        smooth([1.0, 2.0], window=0)
    with pytest.raises(ValueError, match="y must"):
        smooth([], window=2)


def test_learning_curves_plot_the_mean_over_seeds_and_the_references(ax):
    nan = math.nan
    curve = {"method": "m", "steps": [0, 100, 1000], "high_quality": [[0.0, 0.0], [0.2, 0.4], [0.5, nan]]}
    learning_curves(ax, [curve], "high_quality", refs={"data": {"high_quality": (0.99, 0.001)},
                                                      "uniform": {"modes": (22.5, 0.4)}}, scale=100)
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [100, 1000])  # step 0 is off the log axis
    np.testing.assert_allclose(line.get_ydata(), [30.0, 50.0])  # mean over seeds, a NaN seed left out
    refs = [ln for ln in ax.get_lines()[1:]]
    assert len(refs) == 1 and refs[0].get_ydata()[0] == pytest.approx(99.0)  # only the metric's references
    assert ax.get_xscale() == "log" and ax.get_lines()[0].get_label() == "m"
