"""The batched multi-seed trainer: each seed equals its own sequential run."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_notes import losses, models, toy
from gan_notes.ensemble import train_ensemble
from gan_notes.methods import build_networks
from gan_notes.objective import Method
from gan_notes.train import TrainingDiverged, train_gan

H, B, STEPS, N_EVAL = (8, 8), 16, 4, 40
RING = toy.ring()


def batched(method, seeds, data=RING, **kw):
    kw = {"hidden": H, "steps": STEPS, "batch_size": B, "n_eval": N_EVAL, "progress": False, "rng": "per_seed", **kw}
    return train_ensemble(method, data, seeds, **kw)


@pytest.mark.parametrize(
    "loss, kwargs",
    [
        ("non_saturating", {}),
        ("lsgan", {"instance_noise": 0.1}),
        ("wgan", {"penalty": "gp", "d_steps": 2}),
        ("non_saturating", {"penalty": "dragan"}),
        ("hinge", {"penalty": "r1", "penalty_weight": 5.0}),
        ("wgan", {"clip": 0.05, "d_steps": 2}),
    ],
)
def test_each_seed_equals_train_gan(loss, kwargs):
    seeds = [0, 3, 5]
    res = batched(Method(loss=loss, **kwargs), seeds)
    for i, s in enumerate(seeds):
        torch.manual_seed(s)
        G, D = models.mlp(2, 2, H), models.mlp(2, 1, H)
        h = train_gan(G, D, RING, latent_dim=2, steps=STEPS, batch_size=B, loss=loss, seed=s, progress=False,
                      snapshot_steps=[STEPS], snapshot_size=N_EVAL, **kwargs)
        np.testing.assert_allclose(res.d_loss[:, i], h.d_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.g_loss[:, i], h.g_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.samples[i], h.snapshots[STEPS], rtol=1e-5, atol=1e-6)


def test_spectral_norm_equals_torch_parametrization():
    """Reference: a plain loop with torch.nn.utils.parametrizations.spectral_norm, one D
    forward per D step (real and fake together) and one per G step, as the trainer."""
    seeds = [1, 4]
    res = batched(Method(spectral_norm=True), seeds)
    for i, s in enumerate(seeds):
        torch.manual_seed(s)
        G, D = models.mlp(2, 2, H), models.mlp(2, 1, H)
        for mod in D:
            if isinstance(mod, nn.Linear):
                nn.utils.parametrizations.spectral_norm(mod)
        opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
        torch.manual_seed(s)
        for t in range(STEPS):
            real = RING.sample(B)
            with torch.no_grad():
                fake = G(torch.randn(B, 2))
            logits = D(torch.cat([real, fake]))
            d_loss = losses.discriminator_loss("non_saturating", logits[:B], logits[B:])
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = losses.generator_loss("non_saturating", D(G(torch.randn(B, 2))))
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            assert abs(d_loss.item() - res.d_loss[t, i]) < 1e-5 and abs(g_loss.item() - res.g_loss[t, i]) < 1e-5
        fixed_z = torch.randn(N_EVAL, 2, generator=torch.Generator().manual_seed(s + 1))
        with torch.no_grad():
            np.testing.assert_allclose(res.samples[i], G(fixed_z).numpy(), rtol=1e-5, atol=1e-6)


REMEDIES = {
    "pacgan3": Method(pack=3),
    "minibatch": Method(minibatch=(3, 2)),
    "feature_matching": Method(feature_matching=True),
    "mode_seeking": Method(mode_seeking=1.0),
    "mixture": Method(mixture=3),
    "unrolled": Method(unroll=2),
    "d2gan": Method(loss="d2gan"),
    "dual_ns": Method(loss="non_saturating", two_discriminators=True),
    "began": Method(loss="began"),
    "sngan_hinge_gp": Method(loss="hinge", spectral_norm=True, penalty="gp"),
    "noise_anneal": Method(instance_noise=0.2, noise_anneal=True),
}


@pytest.mark.parametrize("name", list(REMEDIES))
def test_vmap_over_many_seeds_equals_one_seed(name):
    """For methods train_gan does not run: vmap over S seeds equals vmap over each alone."""
    res = batched(REMEDIES[name], [0, 2], steps=3)
    for i, s in enumerate([0, 2]):
        one = batched(REMEDIES[name], [s], steps=3)
        np.testing.assert_allclose(res.d_loss[:, i], one.d_loss[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.g_loss[:, i], one.g_loss[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.samples[i], one.samples[0], rtol=1e-5, atol=1e-5)
    assert np.isfinite(res.d_loss).all() and np.isfinite(res.g_loss).all()


def test_methods_change_the_run():
    base = batched(Method(), [0], steps=3)
    for name in ("pacgan3", "mode_seeking", "feature_matching"):
        assert not np.allclose(batched(REMEDIES[name], [0], steps=3).samples, base.samples)


class Poisoned:
    """The ring, but a batch is all NaN with probability 0.1 (drawn from the seed's stream)."""

    centers, std = RING.centers, RING.std

    def sample(self, n, generator=None):
        x = RING.sample(n, generator=generator)
        return x * math.nan if generator is None and float(torch.rand(())) < 0.1 else x


def test_a_diverged_seed_is_recorded_and_the_others_go_on():
    seeds = list(range(8))
    res = batched(Method(), seeds, data=Poisoned(), steps=6, on_diverge="record")
    dead = [s for s, d in zip(seeds, res.diverged) if d]
    alive = [s for s, d in zip(seeds, res.diverged) if not d]
    assert dead and alive  # this draw of seeds has both
    for i, s in enumerate(seeds):
        if s in dead:
            assert "step" in res.errors[i] and "discriminator loss is nan" in res.errors[i]
            assert all(math.isnan(v) for v in res.metrics[i].values())
        else:
            assert res.errors[i] is None and math.isfinite(res.metrics[i]["high_quality"])
    # The survivors are exactly what they are when trained without the diverging seeds.
    only = batched(Method(), alive, data=Poisoned(), steps=6, on_diverge="record")
    assert not any(only.diverged)
    idx = [seeds.index(s) for s in alive]
    np.testing.assert_allclose(res.samples[idx], only.samples, rtol=1e-5, atol=1e-6)
    assert all((a is None) == (s in alive) for s, a in zip(seeds, res.diverged_at))
    with pytest.raises(TrainingDiverged, match=r"not finite \(seed \d+: step \d+: the discriminator loss is nan"):
        batched(Method(), seeds, data=Poisoned(), steps=6)


def test_metrics_history_and_rng():
    state = torch.get_rng_state()
    res = batched(Method(), 2, steps=4, eval_every=2)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's stream is untouched
    assert [e["step"] for e in res.evals] == [0, 2, 4] and len(res.evals[0]["modes"]) == 2
    assert set(res.metrics[0]) >= {"modes", "high_quality", "kl", "precision", "recall"}
    assert res.samples.shape == (2, N_EVAL, 2) and res.d_loss.shape == (4, 2)
    assert res.wall_time_per_seed_s == pytest.approx(res.wall_time_s / 2)
    # the per-mode histograms behind each evaluation agree with its summary numbers
    for e in res.evals:
        for i in range(2):
            counts, nearest = np.asarray(e["counts"][i]), np.asarray(e["nearest_counts"][i])
            assert (counts > 0).sum() == e["modes"][i] and nearest.sum() == N_EVAL
            assert counts.sum() / N_EVAL == pytest.approx(e["high_quality"][i]) and (counts <= nearest).all()


def test_build_networks():
    nets = build_networks(Method(loss="d2gan"), 2, 2, (8,))
    assert set(nets) == {"G", "D", "D2"}
    assert set(build_networks(Method(mixture=3), 2, 2, (8,))) == {"G", "D", "C"}
    assert build_networks(Method(pack=4), 2, 2, (8,))["D"][0].in_features == 8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"loss": "nope"}, "loss"), ({"penalty": "l2"}, "penalty"), ({"d_steps": 0}, "d_steps"),
        ({"pack": 0}, "pack"), ({"clip": -1.0}, "clip"), ({"instance_noise": -0.1}, "instance_noise"),
        ({"mixture": -1}, "mixture"), ({"loss": "began", "penalty": "gp"}, "began"),
        ({"unroll": 2, "pack": 2}, "unroll"),
    ],
)
def test_bad_methods(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Method(**kwargs)


@pytest.mark.parametrize(
    "seeds, kwargs, err, match",
    [
        (0, {}, ValueError, "S >= 1"), ([], {}, ValueError, "S >= 1"), ([1, 1], {}, ValueError, "distinct"),
        ([-1], {}, ValueError, "seeds"), (True, {}, TypeError, "seeds"), (2, {"steps": -1}, ValueError, "steps"),
        (2, {"batch_size": 0}, ValueError, "batch_size"), (2, {"on_diverge": "ignore"}, ValueError, "on_diverge"),
        (2, {"n_eval": 5}, ValueError, "n_eval"), (2, {"hidden": ()}, ValueError, "hidden"),
    ],
)
def test_bad_arguments(seeds, kwargs, err, match):
    with pytest.raises(err, match=match):
        batched(Method(), seeds, **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="method"):
        batched("non_saturating", 2)
    with pytest.raises(TypeError, match="data"):
        batched(Method(), 2, data=lambda n: torch.zeros(n, 2))


# --- issue 13: seed 003's networks, protocol architectures, checkpoints, rng, ema, RMSProp ----

from gan_notes.ensemble import checkpoints  # noqa: E402
from gan_notes.remedies import MinibatchDiscrimination  # noqa: E402

SEED_003 = Method(loss="non_saturating", two_discriminators=True, d2_generator_loss="minimax", minibatch=(5, 3),
                  d2_activation="selu")


def _kinds(net):
    return {type(m) for m in net.modules()}


def test_build_networks_for_seed_003_and_the_protocols():
    nets = build_networks(SEED_003, 2, 2, (8,))
    assert set(nets) == {"G", "D", "D2"}
    assert MinibatchDiscrimination in _kinds(nets["D"]) and nn.ReLU in _kinds(nets["D"])
    assert nn.LeakyReLU not in _kinds(nets["D"]) and nn.SELU not in _kinds(nets["D"])
    assert nn.SELU in _kinds(nets["D2"]) and MinibatchDiscrimination not in _kinds(nets["D2"])
    assert nn.ReLU not in _kinds(nets["D2"])
    # PacGAN's D: maxout; G unchanged
    nets = build_networks(Method(), 2, 2, (8,), d_maxout=5)
    maxouts = [m for m in nets["D"] if isinstance(m, models.Maxout)]
    assert len(maxouts) == 1 and maxouts[0].pieces == 5 and models.Maxout not in _kinds(nets["G"])
    # batch norm in G only
    nets = build_networks(Method(), 2, 2, (8, 8), g_batch_norm=True)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in nets["G"]) == 2 and nn.BatchNorm1d not in _kinds(nets["D"])
    # N(0, std^2) weights, zero biases, in every network
    torch.manual_seed(0)
    nets = build_networks(Method(two_discriminators=True), 2, 2, (64, 64), init_std=0.02)
    for net in nets.values():
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert linears and all(float(m.bias.detach().abs().max()) == 0.0 for m in linears)
        w = torch.cat([m.weight.detach().flatten() for m in linears])
        assert 0.017 < float(w.std()) < 0.023
    # BEGAN: a 1-unit code for 2-d data (a bottleneck), 2*2 - 1 = 3 units for packed pairs
    enc, dec = build_networks(Method(loss="began"), 2, 2, (8,))["D"]
    assert [m for m in enc if isinstance(m, nn.Linear)][-1].out_features == 1
    assert [m for m in dec if isinstance(m, nn.Linear)][0].in_features == 1


def test_seed_003_method_trains_under_vmap():
    res = batched(SEED_003, [0, 1], steps=2, rng="batched")
    assert np.isfinite(res.d_loss).all() and np.isfinite(res.g_loss).all()
    assert all(math.isfinite(mt["modes"]) for mt in res.metrics)


def test_checkpoints_are_log_spaced_and_end_with_steps():
    assert checkpoints(10000, 3, 100) == [100, 215, 464, 1000, 2154, 4642, 10000]
    assert checkpoints(1000, 1, 10) == [10, 100, 1000]
    assert checkpoints(1500, 2, 100) == [100, 316, 1000, 1500]
    assert checkpoints(50, 3, 100) == [50]
    for steps, per, first in [(7, 3, 1), (400_000, 3, 100), (6000, 5, 100), (3, 1, 3)]:
        c = checkpoints(steps, per, first)
        assert c[-1] == steps and c[0] == min(first, steps) and all(a < b for a, b in zip(c, c[1:]))


@pytest.mark.parametrize("args", [(0, 3, 100), (100, 0, 10), (100, 3, 0), (True, 3, 100), (100.0, 3, 100), (100, 3, -1)])
def test_checkpoints_reject_bad_arguments(args):
    with pytest.raises(ValueError):
        checkpoints(*args)


def test_batched_rng_is_reproducible_and_differs_from_per_seed_only_in_the_draws():
    a = batched(Method(), [0, 1], rng="batched")
    b = batched(Method(), [0, 1], rng="batched")
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.d_loss, b.d_loss)
    per_seed = batched(Method(), [0, 1], rng="per_seed")
    assert not np.allclose(a.samples, per_seed.samples)
    # no step: the samples are the initial generators' -- the same in both modes
    a0, p0 = batched(Method(), [0, 1], steps=0, rng="batched"), batched(Method(), [0, 1], steps=0, rng="per_seed")
    np.testing.assert_array_equal(a0.samples, p0.samples)
    assert a0.d_loss.shape == (0, 2)
    with pytest.raises(ValueError, match="rng"):
        batched(Method(), [0, 1], rng="foo")


def test_ema_evaluates_the_averaged_generator():
    seeds = [0, 1]
    last = batched(Method(), seeds, steps=3)
    init = batched(Method(), seeds, steps=0)
    avg = batched(Method(), seeds, steps=3, ema=0.5)
    assert not np.allclose(avg.samples, last.samples) and not np.allclose(avg.samples, init.samples)
    np.testing.assert_allclose(avg.d_loss, last.d_loss)  # the average is evaluated, not trained
    # the decay's direction: beta -> 0 keeps the last iterate, beta -> 1 the initial weights
    np.testing.assert_allclose(batched(Method(), seeds, steps=3, ema=1e-9).samples, last.samples, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched(Method(), seeds, steps=3, ema=1 - 1e-7).samples, init.samples, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ema", [1.0, -0.1, True, 1.5])
def test_ema_must_be_in_0_1(ema):
    with pytest.raises(ValueError, match="ema"):
        batched(Method(), [0], ema=ema)


def test_eval_steps_record_learning_curves():
    res = batched(Method(), [0, 1], steps=4, eval_steps=[2])
    assert [e["step"] for e in res.evals] == [0, 2]  # step 0 is added; the final scores are res.metrics
    res = batched(Method(), [0, 1], steps=4, eval_steps=[2, 4])
    assert [e["step"] for e in res.evals] == [0, 2, 4]
    for e in res.evals:
        assert len(e["precision"]) == len(e["recall"]) == 2
        assert all(0 <= v <= 1 for v in e["precision"] + e["recall"])
    assert res.evals[-1]["recall"] == [mt["recall"] for mt in res.metrics]
    for bad in ([5], [-1], [True], [2.0]):
        with pytest.raises(ValueError, match="eval_steps"):
            batched(Method(), [0], steps=4, eval_steps=bad)


def test_rmsprop_with_clipping_equals_a_plain_loop():
    """WGAN as its paper trains it: RMSProp for both players, D's weights clipped after each
    D step. Reference: torch.optim.RMSprop on one seed's modules, train_gan's draws."""
    m = Method(optimizer="rmsprop", loss="wgan", clip=0.01)
    seeds, steps = [0, 2], 4
    res = batched(m, seeds, steps=steps)
    assert np.isfinite(res.d_loss).all() and all(math.isfinite(mt["high_quality"]) for mt in res.metrics)
    for i, s in enumerate(seeds):
        torch.manual_seed(s)
        G, D = models.mlp(2, 2, H), models.mlp(2, 1, H)
        opt_g, opt_d = torch.optim.RMSprop(G.parameters(), lr=1e-3), torch.optim.RMSprop(D.parameters(), lr=1e-3)
        torch.manual_seed(s)
        d_hist = []
        for _ in range(steps):
            real = RING.sample(B)
            with torch.no_grad():
                fake = G(torch.randn(B, 2))
            d_loss = D(fake).mean() - D(real).mean()
            d_hist.append(float(d_loss.detach()))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            with torch.no_grad():
                for w in D.parameters():
                    w.clamp_(-0.01, 0.01)
            g_loss = -D(G(torch.randn(B, 2))).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
        assert all(float(w.detach().abs().max()) <= 0.01 for w in D.parameters())
        np.testing.assert_allclose(res.d_loss[:, i], d_hist, rtol=1e-4, atol=1e-7)
        with torch.no_grad():
            x = G(torch.randn(N_EVAL, 2, generator=torch.Generator().manual_seed(s + 1)))
        np.testing.assert_allclose(res.samples[i], x.numpy(), rtol=1e-5, atol=1e-6)
    # Adam, for contrast, gives another run
    assert not np.allclose(batched(Method(loss="wgan", clip=0.01), seeds, steps=steps).samples, res.samples)
