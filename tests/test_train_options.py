"""The Part II options of train_gan: freezing, penalties, noise, clipping, evaluations."""

import numpy as np
import pytest
import torch

from gan_notes import models, toy
from gan_notes.train import train_gan


def players(seed=0):
    torch.manual_seed(seed)
    return models.mlp(2, 2, (16,)), models.mlp(2, 1, (16,))


def params(m):
    return [p.detach().clone() for p in m.parameters()]


@pytest.mark.parametrize("frozen", ["d", "g"])
def test_a_frozen_player_does_not_move(frozen):
    G, D = players()
    before = params(D if frozen == "d" else G)
    other = params(G if frozen == "d" else D)
    train_gan(G, D, toy.ring(), latent_dim=2, steps=5, batch_size=32, train_d=frozen != "d", train_g=frozen != "g", progress=False)
    after = params(D if frozen == "d" else G)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    moved = params(G if frozen == "d" else D)
    assert any(not torch.equal(a, b) for a, b in zip(other, moved))


def test_clipping_bounds_every_discriminator_weight():
    G, D = players()
    train_gan(G, D, toy.ring(), latent_dim=2, steps=3, batch_size=32, loss="wgan", clip=0.01, progress=False)
    assert max(float(p.detach().abs().max()) for p in D.parameters()) <= 0.01


@pytest.mark.parametrize("penalty", ["gp", "r1", "dragan"])
def test_penalties_and_noise_run_and_change_the_run(penalty):
    runs = []
    for kwargs in ({}, {"penalty": penalty, "penalty_weight": 10.0}, {"instance_noise": 0.1}):
        G, D = players()
        h = train_gan(G, D, toy.ring(), latent_dim=2, steps=4, batch_size=32, loss="wgan", progress=False, **kwargs)
        runs.append(h.d_loss)
    assert not np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_mode_coverage_is_recorded_every_few_steps():
    G, D = players()
    ring = toy.ring()
    h = train_gan(G, D, ring, latent_dim=2, steps=10, batch_size=32, eval_every=5, snapshot_size=500, progress=False)
    assert [e["step"] for e in h.evals] == [0, 5, 10]
    assert set(h.evals[0]) >= {"modes", "high_quality", "kl", "counts"}


def test_custom_eval_fn():
    G, D = players()
    h = train_gan(G, D, toy.ring(), latent_dim=2, steps=4, batch_size=16, eval_every=2,
                  eval_fn=lambda step, s: {"mean_norm": float(np.linalg.norm(s, axis=1).mean())}, progress=False)
    assert [e["step"] for e in h.evals] == [0, 2, 4] and all("mean_norm" in e for e in h.evals)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"penalty": "l2"}, "penalty"),
        ({"instance_noise": -1.0}, "instance_noise"),
        ({"clip": 0.0}, "clip"),
        ({"eval_every": -1}, "eval_every"),
    ],
)
def test_bad_options(kwargs, match):
    G, D = players()
    with pytest.raises(ValueError, match=match):
        train_gan(G, D, toy.ring(), latent_dim=2, steps=1, progress=False, **kwargs)


def test_eval_needs_a_mixture_or_a_function():
    G, D = players()
    with pytest.raises(ValueError, match="eval_fn"):
        train_gan(G, D, lambda n: torch.randn(n, 2), latent_dim=2, steps=1, eval_every=1, progress=False)
