"""gan_notes.protocols: the training protocols of the Part III benchmark, as data. The
``pacgan`` protocol is checked field by field against PacGAN's released 2-D configuration
(Lin et al. 2018, synthetic_data_experiments config.py), written out here."""

import inspect
import json

import pytest

from gan_notes.benchmark import CURVE_METRICS, run_cell
from gan_notes.ensemble import train_ensemble
from gan_notes.protocols import PROTOCOLS, Protocol

#: PacGAN's released configuration: G 4x400 ReLU + batch norm, D 3x200 maxout with 5 pieces,
#: N(0, 0.02^2) weights and zero biases, 2-d Gaussian z, batch 100, Adam lr 1e-4 beta1 0.8,
#: 400 epochs of 100,000 samples (400,000 iterations at batch 100), 10 seeds, 2,500 samples scored.
PACGAN = dict(g_hidden=(400, 400, 400, 400), g_batch_norm=True, d_hidden=(200, 200, 200), d_maxout=5, init_std=0.02,
              latent_dim=2, batch_size=100, lr=1e-4, betas=(0.8, 0.999), steps=400 * 100_000 // 100, seeds=10, n_eval=2500,
              lr_decay=False, ema=0.0)


def test_the_protocols_are_named_and_sourced():
    assert {"pacgan", "book", "smoke"} <= set(PROTOCOLS)
    for name, p in PROTOCOLS.items():
        assert isinstance(p, Protocol) and p.name == name and p.source


def test_pacgan_protocol_is_the_released_configuration():
    p = PROTOCOLS["pacgan"]
    assert {k: getattr(p, k) for k in PACGAN} == PACGAN
    assert p.steps == 400_000
    assert p.deviations  # every known deviation is named


@pytest.mark.parametrize("name", ["pacgan", "book", "smoke"])
def test_trainer_kwargs_are_train_ensemble_arguments(name):
    p = PROTOCOLS[name]
    accepted = set(inspect.signature(train_ensemble).parameters)
    kw = p.trainer_kwargs()
    assert set(kw) <= accepted
    assert kw["steps"] == p.steps and kw["hidden"] == p.d_hidden and kw["g_hidden"] == p.g_hidden
    assert kw["lr_g"] == kw["lr_d"] == p.lr and kw["betas"] == p.betas and kw["batch_size"] == p.batch_size
    assert kw["eval_steps"] == p.eval_steps()
    assert p.trainer_kwargs(50)["steps"] == 50 and p.trainer_kwargs(50)["eval_steps"][-1] == 50


@pytest.mark.parametrize("name", ["pacgan", "book", "smoke"])
def test_eval_steps_end_with_the_run(name):
    p = PROTOCOLS[name]
    steps = p.eval_steps()
    assert steps[-1] == p.steps and all(a < b for a, b in zip(steps, steps[1:])) and steps[0] >= 1
    assert p.eval_steps(1000)[-1] == 1000


def test_pacgan_checkpoints_are_log_spaced_from_100():
    steps = PROTOCOLS["pacgan"].eval_steps()
    assert steps[:4] == [100, 215, 464, 1000] and steps[-1] == 400_000


@pytest.mark.parametrize("name", ["pacgan", "book", "smoke"])
def test_as_dict_is_json_ready(name):
    p = PROTOCOLS[name]
    d = json.loads(json.dumps(p.as_dict()))
    assert d["name"] == name and d["g_hidden"] == list(p.g_hidden) and d["betas"] == list(p.betas)
    assert Protocol(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}) == p  # round trip


def test_with_options_changes_a_copy():
    p = PROTOCOLS["book"]
    q = p.with_options(steps=10)
    assert q.steps == 10 and p.steps != 10 and q.g_hidden == p.g_hidden


def test_smoke_protocol_runs_a_cell():
    rows, curve = run_cell("ring", "non_saturating", seeds=2, protocol="smoke")
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(r["dataset"] == "ring" and r["method"] == "non_saturating" and not r["diverged"] for r in rows)
    assert curve["steps"][0] == 0 and curve["steps"][-1] == PROTOCOLS["smoke"].steps
    for k in CURVE_METRICS:
        assert len(curve[k]) == len(curve["steps"]) and all(len(v) == 2 for v in curve[k])
    # the curve's last checkpoint is the rows' final scores
    assert curve["high_quality"][-1] == [r["high_quality"] for r in rows]


def test_steps_for_reads_the_per_dataset_iterations():
    book = PROTOCOLS["book"]
    assert book.steps_for("ring") == book.steps_by_dataset["ring"] and book.steps_for("grid") == book.steps_by_dataset["grid"]
    assert book.steps_for("spiral") == book.steps  # a data set not named takes the default
    assert PROTOCOLS["smoke"].steps_for("ring") == PROTOCOLS["smoke"].steps
    for bad in ({"ring": 0}, {"ring": 1.5}, {"ring": True}, {3: 100}):
        with pytest.raises(ValueError, match="steps_by_dataset"):
            book.with_options(steps_by_dataset=bad)


def test_a_cell_runs_its_data_sets_iterations():
    p = PROTOCOLS["smoke"].with_options(steps_by_dataset={"grid": 5})
    PROTOCOLS["smoke_split"] = p.with_options(name="smoke_split")
    try:
        _, ring = run_cell("ring", "non_saturating", seeds=1, protocol="smoke_split")
        _, grid = run_cell("grid", "non_saturating", seeds=1, protocol="smoke_split")
        _, over = run_cell("grid", "non_saturating", seeds=1, protocol="smoke_split", steps=4)
    finally:
        del PROTOCOLS["smoke_split"]
    assert ring["steps"][-1] == p.steps and grid["steps"][-1] == 5 and over["steps"][-1] == 4
