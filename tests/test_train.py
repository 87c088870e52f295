"""Unit tests of gan_notes.train: what a run records, reproducibility and divergence."""

import numpy as np
import pytest
import torch
from torch import nn

from gan_notes.models import mlp
from gan_notes.toy import mixture_1d, ring
from gan_notes.train import History, TrainingDiverged, train_gan

LATENT = 2
STEPS = 30


# Every test here runs on one torch thread (the fixture is in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _data():
    return mixture_1d([-2.0, 2.0], [0.5, 0.5], [0.5, 0.5])


def _models(init_seed=0, dim=1):
    # Build after seeding, so that two runs start from the same weights.
    torch.manual_seed(init_seed)
    return mlp(LATENT, dim, (16, 16)), mlp(dim, 1, (16, 16))


def _run(seed=0, init_seed=0, **kwargs):
    g, d = _models(init_seed)
    options = dict(latent_dim=LATENT, steps=STEPS, batch_size=64, snapshot_steps=(0, 10, STEPS), snapshot_size=50, seed=seed, progress=False)
    options.update(kwargs)
    return train_gan(g, d, _data(), **options)


class ConstantLogits(nn.Module):
    """A discriminator whose logits are a fixed value (NaN or +-inf), with a parameter."""

    def __init__(self, value):
        super().__init__()
        self.lin = nn.Linear(1, 1)
        self.value = value

    def forward(self, x):
        return self.lin(x) * 0.0 + self.value


# --- what a run records ------------------------------------------------------------------


def test_a_tiny_run_records_everything():
    calls = []

    def callback(step, g, d):
        assert isinstance(g, nn.Module) and isinstance(d, nn.Module)
        # G and D are usable at that step: D gives one logit per point.
        with torch.no_grad():
            out = d(torch.zeros(3, 1))
        calls.append((step, out.shape))

    hist = _run(callback=callback)
    assert isinstance(hist, History)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        arr = getattr(hist, name)
        assert isinstance(arr, np.ndarray) and arr.shape == (STEPS,), name
        assert np.all(np.isfinite(arr)), name
    # Every step was recorded (the arrays start as zeros).
    assert np.all(hist.d_loss > 0)
    # D(x) = sigmoid(logit) is a probability.
    assert np.all((hist.d_real > 0) & (hist.d_real < 1) & (hist.d_fake > 0) & (hist.d_fake < 1))
    assert sorted(hist.snapshots) == [0, 10, STEPS]
    for snap in hist.snapshots.values():
        assert isinstance(snap, np.ndarray) and snap.shape == (50, 1)
    # The generator moved between snapshots (same fixed latents, different weights).
    assert not np.array_equal(hist.snapshots[0], hist.snapshots[STEPS])
    assert calls == [(0, (3, 1)), (10, (3, 1)), (STEPS, (3, 1))]
    assert hist.wall_time_s > 0


def test_the_first_records_are_at_chance():
    # The loss of step 1 is taken before D's first update: a freshly initialised D has
    # logits near 0, so D ~ 1/2 on both batches and the loss is near 2 log 2 = 1.386.
    hist = _run(steps=1, snapshot_steps=())
    np.testing.assert_allclose(hist.d_loss[0], 2 * np.log(2), rtol=0.2)
    np.testing.assert_allclose([hist.d_real[0], hist.d_fake[0]], 0.5, atol=0.15)


def test_snapshot_at_zero_is_the_untrained_generator():
    g, d = _models(0)
    fixed_z = torch.randn(50, LATENT, generator=torch.Generator().manual_seed(0 + 1))
    with torch.no_grad():
        before = g(fixed_z).numpy()
    hist = train_gan(g, d, _data(), latent_dim=LATENT, steps=3, batch_size=16, snapshot_steps=(0, 3), snapshot_size=50, progress=False)
    np.testing.assert_array_equal(hist.snapshots[0], before)
    with torch.no_grad():
        np.testing.assert_array_equal(hist.snapshots[3], g(fixed_z).numpy())


def test_zero_steps_and_2d_data():
    g, d = _models(0, dim=2)
    hist = train_gan(g, d, ring(), latent_dim=LATENT, steps=0, snapshot_steps=(0,), snapshot_size=7, progress=False)
    assert hist.d_loss.shape == (0,) and hist.g_loss.shape == (0,)
    assert hist.snapshots[0].shape == (7, 2)


def test_callable_data_and_minimax_loss_and_d_steps():
    data = _data()
    hist = _run(loss="minimax", d_steps=2, snapshot_steps=())
    assert hist.d_loss.shape == (STEPS,) and np.all(np.isfinite(hist.g_loss))
    # The minimax G loss is E log(1 - D(G(z))) < 0; the non-saturating one is > 0.
    assert np.all(hist.g_loss < 0)
    g, d = _models(0)
    hist2 = train_gan(g, d, data.sample, latent_dim=LATENT, steps=5, batch_size=8, progress=False)
    assert np.all(hist2.g_loss > 0)


# --- reproducibility ---------------------------------------------------------------------


def test_the_same_seed_gives_identical_numbers():
    a, b = _run(seed=3), _run(seed=3)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.snapshots.keys() == b.snapshots.keys()
    for step in a.snapshots:
        assert np.array_equal(a.snapshots[step], b.snapshots[step]), step


def test_different_seeds_differ():
    a, b = _run(seed=0), _run(seed=1)
    assert not np.array_equal(a.d_loss, b.d_loss)
    assert not np.array_equal(a.g_loss, b.g_loss)
    assert not np.array_equal(a.snapshots[STEPS], b.snapshots[STEPS])


# --- divergence --------------------------------------------------------------------------


def test_an_absurd_learning_rate_raises_training_diverged():
    with pytest.raises(TrainingDiverged, match=r"step \d+: the (discriminator|generator) loss is (nan|inf|-inf)"):
        _run(lr_d=1e30, lr_g=1e30)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_discriminator_raises_training_diverged(value):
    g, _ = _models(0)
    with pytest.raises(TrainingDiverged, match="step 1") as err:
        train_gan(g, ConstantLogits(value), _data(), latent_dim=LATENT, steps=5, batch_size=8, progress=False)
    assert "discriminator" in str(err.value) and "loss" in str(err.value)
    assert isinstance(err.value, FloatingPointError)


def test_a_nan_generator_step_is_named():
    # D is finite on real data and NaN on fakes only from the G step on: the first D step
    # sees finite logits, so the NaN shows up in the generator's loss at step 1.
    class NanOnGradFakes(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 1)

        def forward(self, x):
            out = self.lin(x)
            return out + float("nan") if x.requires_grad else out

    g, _ = _models(0)
    with pytest.raises(TrainingDiverged, match="step 1: the generator loss"):
        train_gan(g, NanOnGradFakes(), _data(), latent_dim=LATENT, steps=3, batch_size=8, progress=False)


# --- bad arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(loss="bogus"), "unknown loss 'bogus'; valid: .*minimax.*non_saturating"),
        (dict(steps=-1), "steps must be a non-negative int"),
        (dict(steps=2.5), "steps must be a non-negative int"),
        (dict(snapshot_steps=(0, STEPS + 1)), r"snapshot_steps must lie in \[0, steps=30\]"),
        (dict(snapshot_steps=(-1,)), "snapshot_steps must lie"),
        (dict(batch_size=0), "batch_size must be a positive int"),
        (dict(d_steps=0), "d_steps must be a positive int"),
        (dict(latent_dim=0), "latent_dim must be a positive int"),
        (dict(snapshot_size=0), "snapshot_size must be a positive int"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _run(**kwargs)


@pytest.mark.parametrize("data", [42, "ring", None])
def test_data_without_sample_raises_type_error(data):
    g, d = _models(0)
    with pytest.raises(TypeError, match=r"data must have a \.sample\(n\) method"):
        train_gan(g, d, data, latent_dim=LATENT, steps=1, progress=False)
