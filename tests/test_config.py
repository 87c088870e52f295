"""Unit tests of gan_notes.config: the profile switch, budgets, device and seeding."""

import random

import matplotlib as mpl
import numpy as np
import pytest
import torch

from gan_notes import config
from gan_notes.config import ENV_VAR, budget, device, profile, setup


# --- profile -----------------------------------------------------------------------------


def test_profile_defaults_to_full_when_unset(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert profile() == "full"


@pytest.mark.parametrize("value", ["", "   "])
def test_profile_defaults_to_full_when_empty(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    assert profile() == "full"


@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("full", "full"), (" Smoke ", "smoke")])
def test_profile_reads_the_variable(monkeypatch, value, expected):
    monkeypatch.setenv(ENV_VAR, value)
    assert profile() == expected


@pytest.mark.parametrize("value", ["fast", "smoke2", "0", "ful"])
def test_profile_rejects_other_values(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    # The message names the variable and the value, so a reader knows what to fix.
    with pytest.raises(ValueError, match=ENV_VAR) as err:
        profile()
    assert repr(value) in str(err.value)


# --- budget ------------------------------------------------------------------------------


def test_budget_picks_full_by_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert budget(full=20_000, smoke=100) == 20_000


def test_budget_picks_smoke_in_smoke_profile(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert budget(full=20_000, smoke=100) == 100


def test_budget_returns_the_object_itself(monkeypatch):
    # Any value works, not only numbers: the very object is returned.
    full, smoke = {"width": 128}, {"width": 8}
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert budget(full=full, smoke=smoke) is smoke
    monkeypatch.setenv(ENV_VAR, "full")
    assert budget(full=full, smoke=smoke) is full


def test_budget_raises_on_a_bad_profile(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "medium")
    with pytest.raises(ValueError, match=ENV_VAR):
        budget(full=1, smoke=0)


def test_budget_is_keyword_only():
    with pytest.raises(TypeError):
        budget(1, 0)


# --- device ------------------------------------------------------------------------------


def test_device_returns_a_usable_torch_device():
    dev = device()
    assert isinstance(dev, torch.device)
    assert dev.type in {"cpu", "cuda", "mps"}
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    # A tensor can be made there.
    assert torch.zeros(2, device=dev).device.type == dev.type


def test_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
    assert device() == torch.device("cpu")


# --- setup and seeding -------------------------------------------------------------------


def _draws():
    return (torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)])


@pytest.fixture
def restore_rc():
    # setup() sets the book's matplotlib style globally; keep other tests unaffected.
    with mpl.rc_context():
        yield


def test_setup_returns_a_device_and_seeds_everything(restore_rc, capsys):
    dev = setup(123)
    assert isinstance(dev, torch.device)
    first = _draws()
    dev2 = setup(123)
    second = _draws()
    assert dev2 == dev
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    # It reports what produced the figures.
    out = capsys.readouterr().out
    assert f"device={dev}" in out and "profile=" in out


def test_setup_with_different_seeds_gives_different_draws(restore_rc, capsys):
    setup(1)
    a = _draws()
    setup(2)
    b = _draws()
    assert not torch.equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])
    assert a[2] != b[2]


def test_setup_sets_the_plot_style(restore_rc, capsys):
    mpl.rcParams["figure.dpi"] = 300
    setup(0)
    assert mpl.rcParams["figure.dpi"] == 80
    assert mpl.rcParams["axes.grid"] is True


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None, True])
def test_setup_rejects_bad_seeds(restore_rc, seed):
    with pytest.raises(ValueError, match="seed"):
        setup(seed)


@pytest.mark.parametrize("seed", [-3, 2.0])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(seed)


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_setup_sets_the_thread_count(restore_rc, restore_threads, capsys):
    setup(0, threads=1)
    assert torch.get_num_threads() == 1
    assert "threads=1" in capsys.readouterr().out
    before = torch.get_num_threads()
    setup(0)  # None keeps the current setting
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, -2, 1.5, "4"])
def test_setup_rejects_bad_thread_counts(restore_rc, restore_threads, threads):
    with pytest.raises(ValueError, match="threads"):
        setup(0, threads=threads)
