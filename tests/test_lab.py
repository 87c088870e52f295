"""Tests of gan_notes.lab (the GAN lab's model) and gan_notes.lab_widget (its view and UI).

The widgets are driven as a user would: change a dropdown, press a button (``click()``), tick
the play timer; no front end is needed (ipywidgets falls back to a dummy comm).
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import multivariate_normal

import torch.nn.functional as F

from gan_notes import lab_widget
from gan_notes.lab import Lab
from gan_notes.lab_data import LAB_DATASETS, LIM, cell_masses, dataset, grid_js
from gan_notes.lab_widget import LabWidget, animate, show
from gan_notes.losses import LOSSES, discriminator_loss, generator_loss
from gan_notes.penalties import PENALTIES
from gan_notes.toy import Mixture
from gan_notes.train import TrainingDiverged

SMALL = {"hidden": (16,), "n_eval": 200, "batch_size": 32}
FAST = {"dpi": 30, **SMALL}  # widgets: a small figure renders faster


# Every test here runs on one torch thread (the fixture is in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


# --- data and the JS estimator -------------------------------------------------------------

@pytest.mark.parametrize("name", LAB_DATASETS)
def test_datasets_are_2d_mixtures_inside_the_view(name):
    m = dataset(name)
    assert isinstance(m, Mixture) and m.dim == 2
    # Every mode lies at least 3 standard deviations inside the square the views show.
    assert float(m.centers.abs().max() + 3 * m.std.max()) < LIM


def test_unknown_dataset_names_the_argument():
    with pytest.raises(ValueError, match="data"):
        dataset("moons")


@pytest.mark.parametrize("name", ["disjoint", "ring"])
def test_cell_masses_match_scipy_multivariate_normal_cdf(name):
    data, bins = dataset(name), 10
    p = cell_masses(data, bins=bins)
    assert p.shape == (bins * bins + 1,) and (p >= 0).all() and p.sum() == pytest.approx(1, abs=1e-12)
    edges = np.linspace(-LIM, LIM, bins + 1)
    comps = [(multivariate_normal(c.numpy(), float(s) ** 2 * np.eye(2)), float(w))
             for c, s, w in zip(data.centers, data.std, data.weights)]

    def cdf(x, y):
        return sum(w * mvn.cdf([x, y]) for mvn, w in comps)

    for i, j in [(0, 0), (2, 3), (5, 5), (7, 2), (3, 8), (9, 9), (4, 4)]:
        a, b, c, d = edges[i], edges[i + 1], edges[j], edges[j + 1]
        expected = cdf(b, d) - cdf(a, d) - cdf(b, c) + cdf(a, c)  # inclusion-exclusion
        assert p[i * bins + j] == pytest.approx(expected, abs=1e-5)
    inside = cdf(LIM, LIM) - cdf(-LIM, LIM) - cdf(LIM, -LIM) + cdf(-LIM, -LIM)
    assert p[-1] == pytest.approx(1 - inside, abs=1e-5)


def test_grid_js_is_scipy_js_of_the_cell_masses_and_the_histogram():
    data, bins = dataset("disjoint"), 25
    x = data.sample(3000, generator=torch.Generator().manual_seed(1)).numpy() * 1.1
    edges = np.linspace(-LIM, LIM, bins + 1)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    q = np.append(counts.ravel(), len(x) - counts.sum())
    expected = jensenshannon(cell_masses(data, bins=bins), q) ** 2  # SciPy returns the square root
    assert grid_js(data, x, bins=bins) == pytest.approx(expected, rel=1e-9)
    assert grid_js(data, torch.as_tensor(x), bins=bins) == pytest.approx(expected, rel=1e-9)


def test_grid_js_bounds_and_limits():
    data = dataset("ring")
    far = np.full((500, 2), 10.0)  # all outside the square, where the data has no mass
    assert grid_js(data, far) == pytest.approx(math.log(2), abs=1e-6)
    own = data.sample(4000, generator=torch.Generator().manual_seed(0))
    shifted = own + 0.5
    j_own, j_shift = grid_js(data, own), grid_js(data, shifted)
    assert 0 <= j_own < 0.05 < j_shift <= math.log(2)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"samples": np.zeros((5, 3))}, "samples"), ({"samples": np.full((5, 2), np.nan)}, "samples"),
     ({"bins": 0}, "bins"), ({"lim": -1.0}, "lim")],
)
def test_grid_js_bad_input(kwargs, name):
    args = {"samples": np.zeros((5, 2)), **kwargs}
    with pytest.raises(ValueError, match=name):
        grid_js(dataset("ring"), **args)
    with pytest.raises(TypeError, match="data"):
        grid_js("ring", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="bins"):
        cell_masses(dataset("ring"), bins=2.5)


# --- the model ---------------------------------------------------------------------------

def test_step_records_one_entry_per_iteration_and_evaluates_on_schedule():
    lab = Lab("ring", eval_every=3, **SMALL)
    assert lab.iteration == 0 and lab.history.eval_iteration == [0]
    lab.step(7)
    h = lab.history
    assert lab.iteration == 7 and len(h.d_loss) == len(h.g_loss) == 7
    assert h.eval_iteration == [0, 3, 6]
    assert all(len(getattr(h, k)) == 3 for k in ("modes", "high_quality", "kl", "js", "grad_norm"))
    assert all(0 <= j <= math.log(2) + 1e-12 for j in h.js)


def test_runs_are_reproducible_and_leave_the_global_generator_alone():
    state = torch.get_rng_state()
    a, b, c = (Lab("grid", "hinge", "gp", instance_noise=0.1, seed=s, **SMALL) for s in (3, 3, 4))
    for lab in (a, b, c):
        lab.step(5)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.history.d_loss == b.history.d_loss and a.history.js == b.history.js
    assert a.history.d_loss != c.history.d_loss


@pytest.mark.parametrize("loss", ["lsgan", "minimax"])
def test_recorded_d_loss_is_the_package_loss_on_the_batch(loss):
    lab = Lab("overlapping", loss, **SMALL)
    D, G, state = copy.deepcopy(lab.D), copy.deepcopy(lab.G), lab._rng.clone()
    lab.step(1)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.set_rng_state(state)  # replay the lab's draws: a real batch, then latents
        real = lab.mixture.sample(lab.batch_size)
        fake = G(torch.randn(lab.batch_size, 2))
        expected = float(discriminator_loss(loss, D(real), D(fake)))
    assert lab.history.d_loss[0] == pytest.approx(expected, rel=1e-6)


def test_recorded_d_loss_adds_instance_noise_and_the_weighted_r1_penalty_at_the_clean_real_batch():
    s, w = 0.2, 3.0
    lab = Lab("ring", "lsgan", "r1", instance_noise=s, penalty_weight=w, **SMALL)
    D, G, state = copy.deepcopy(lab.D), copy.deepcopy(lab.G), lab._rng.clone()
    lab.step(1)
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(state)  # replay: a real batch, latents, then the noise of each batch
        real = lab.mixture.sample(lab.batch_size)
        with torch.no_grad():
            fake = G(torch.randn(lab.batch_size, 2))
        noise_real, noise_fake = torch.randn_like(real), torch.randn_like(fake)
    x = real.clone().requires_grad_(True)
    (grad_x,) = torch.autograd.grad(D(x).sum(), x)  # rows of D's input gradient, one per sample
    with torch.no_grad():
        game = ((D(real + s * noise_real) - 1) ** 2).mean() + (D(fake + s * noise_fake) ** 2).mean()
    expected = float(game) + w * float((grad_x**2).sum(dim=1).mean())
    assert lab.history.d_loss[0] == pytest.approx(expected, rel=1e-5)


def test_configure_live_settings_keep_the_run_structural_ones_restart_it():
    lab = Lab("ring", **SMALL)
    lab.step(2)
    assert lab.configure(lr_d=3e-4, loss="wgan", d_steps=2, unroll=1) is False
    assert lab.iteration == 2 and lab.loss == "wgan"
    assert lab._opt_d.param_groups[0]["lr"] == 3e-4
    lab.step(1)
    assert lab.iteration == 3
    assert lab.configure(data="grid") is True
    assert lab.iteration == 0 and lab.mixture.n_modes == 25
    assert lab.configure(unroll=0, spectral_norm=True) is True
    assert any(hasattr(m, "parametrizations") for m in lab.D)
    assert lab.configure(penalty="r1", instance_noise=0.2) is False  # they combine with spectral norm
    assert lab.method.penalty == "r1" and lab.method.instance_noise == 0.2 and lab.method.spectral_norm
    assert lab.configure(spectral_norm=False) is True  # switching spectral norm off rebuilds D
    assert not any(hasattr(m, "parametrizations") for m in lab.D)
    assert lab.configure(penalty=None) is False and lab.method.penalty is None


def _manual_mlp(params, x):
    """Linear-ReLU-Linear written out, an oracle independent of functional_call."""
    h = torch.relu(x @ params["0.weight"].T + params["0.bias"])
    return h @ params["2.weight"].T + params["2.bias"]


def test_unrolled_generator_gradient_matches_a_hand_written_adam_lookahead():
    # Metz et al.: G's loss against D after k Adam steps that continue D's live Adam state.
    lab = Lab("ring", "non_saturating", unroll=3, lr_d=0.02, **SMALL)
    lab.step(4)  # D's optimiser now has moments and a step count to continue
    G, D, bs, k = copy.deepcopy(lab.G), copy.deepcopy(lab.D), lab.batch_size, lab.unroll
    opt = lab._opt_d
    group = opt.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    live = {n: opt.state[p] for n, p in lab.D.named_parameters()}
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(lab._rng)  # replay the G step's draws: latents, then one real batch
        z, real = torch.randn(bs, 2), lab.mixture.sample(bs)
    fake = G(z)
    theta = {n: p.detach().clone().requires_grad_(True) for n, p in D.named_parameters()}
    m = {n: live[n]["exp_avg"].clone() for n in theta}
    v = {n: live[n]["exp_avg_sq"].clone() for n in theta}
    t0 = int(live["0.weight"]["step"])
    assert t0 == 4
    for j in range(1, k + 1):
        # The non-saturating D loss, softplus written out: E softplus(-a(x)) + E softplus(a(G(z))).
        d_loss = F.softplus(-_manual_mlp(theta, real)).mean() + F.softplus(_manual_mlp(theta, fake)).mean()
        grads = dict(zip(theta, torch.autograd.grad(d_loss, list(theta.values()), create_graph=True)))
        t = t0 + j
        m = {n: b1 * m[n] + (1 - b1) * grads[n] for n in theta}
        v = {n: b2 * v[n] + (1 - b2) * grads[n] ** 2 for n in theta}
        # The documented denominator sqrt(v_hat + eps^2) (differentiable where v = 0).
        theta = {n: theta[n] - lr * (m[n] / (1 - b1**t)) / torch.sqrt(v[n] / (1 - b2**t) + eps**2) for n in theta}
        if j == 1:
            first = {n: p.detach().clone() for n, p in theta.items()}
    g_loss = F.softplus(-_manual_mlp(theta, fake)).mean()
    expected = torch.autograd.grad(g_loss, list(G.parameters()))

    # The reference's first look-ahead step is what torch's Adam does from the live state
    # (on a deep copy: load_state_dict may share the state's tensors).
    d_state = copy.deepcopy(opt.state_dict())
    D_adam = copy.deepcopy(lab.D)
    opt_adam = torch.optim.Adam(D_adam.parameters(), lr=lr, betas=(b1, b2), eps=eps)
    opt_adam.load_state_dict(copy.deepcopy(d_state))
    loss = discriminator_loss("non_saturating", D_adam(real), D_adam(fake.detach()))
    opt_adam.zero_grad()
    loss.backward()
    opt_adam.step()
    for n, p in D_adam.named_parameters():
        assert torch.allclose(p, first[n], atol=1e-6, rtol=0), n

    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(lab._rng)
        lab._g_step()
    for p, e in zip(lab.G.parameters(), expected):
        assert torch.allclose(p.grad, e, atol=1e-6, rtol=0)
    # The look-ahead reads D's optimiser state, never changes it.
    after = opt.state_dict()["state"]
    assert all(torch.equal(after[i][key], d_state["state"][i][key]) for i in after for key in ("exp_avg", "exp_avg_sq"))
    # The look-ahead matters: the plain gradient (k = 0) differs.
    plain = torch.autograd.grad(F.softplus(-D(G(z))).mean(), list(G.parameters()))
    assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(plain, expected))


def test_generator_step_leaves_the_discriminator_gradients_alone():
    lab = Lab("ring", unroll=1, **SMALL)
    lab._d_step()
    before = [p.grad.clone() for p in lab.D.parameters()]
    lab._g_step()
    assert all(torch.equal(a, p.grad) for a, p in zip(before, lab.D.parameters()))


@pytest.mark.parametrize("data", LAB_DATASETS)
def test_every_data_loss_penalty_spectral_norm_instance_noise_combination_takes_a_step(data):
    small = {**SMALL, "n_eval": 50, "eval_every": 100}
    for loss in LOSSES:
        for penalty in (None, *PENALTIES):
            for sn in (False, True):
                for noise in (0.0, 0.3):
                    # Unrolling (not with spectral norm) on some of them, so it meets every loss.
                    unroll = 1 if not sn and (penalty is None or noise) else 0
                    lab = Lab(data, loss, penalty, spectral_norm=sn, instance_noise=noise, unroll=unroll, **small)
                    lab.step(1)
                    d, g = lab.history.d_loss[0], lab.history.g_loss[0]
                    assert lab.iteration == 1 and math.isfinite(d) and math.isfinite(g), (loss, penalty, sn, noise)


def test_field_and_gradients_shapes_and_ranges():
    lab = Lab("ring", "minimax", **SMALL)
    f = lab.field(resolution=17)
    assert f.shape == (17, 17) and (0 <= f).all() and (f <= 1).all()
    pts, g = lab.generator_gradients()
    assert pts.shape == g.shape == (lab.n_eval, 2)
    # Per-sample gradient against a finite difference of the per-sample minimax loss.
    x0, eps = torch.tensor(pts[:1], dtype=torch.float64), 1e-4
    D64 = copy.deepcopy(lab.D).double()

    def loss_at(x):
        with torch.no_grad():
            return float(generator_loss("minimax", D64(x)))

    fd = [(loss_at(x0 + eps * e) - loss_at(x0 - eps * e)) / (2 * eps) for e in torch.eye(2, dtype=torch.float64)]
    assert np.allclose(-g[0], fd, atol=1e-4)
    # A critic's field is its raw value, not a probability.
    lab.configure(loss="wgan")
    grid = torch.tensor([[-LIM, -LIM], [LIM, -LIM], [-LIM, LIM], [LIM, LIM]])
    with torch.no_grad():
        raw = lab.D(grid).reshape(-1).numpy()
    assert np.allclose(lab.field(resolution=2)[[0, 0, 1, 1], [0, 1, 0, 1]], raw, atol=1e-6)


def test_divergence_raises_training_diverged_naming_the_iteration():
    lab = Lab("ring", **SMALL)
    with torch.no_grad():
        lab.D[0].weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="iteration 1"):
        lab.step(1)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"data": "moons"}, "data"), ({"loss": "bce"}, "loss"), ({"penalty": "dropout"}, "penalty"),
     ({"penalty": "none"}, "penalty"), ({"spectral_norm": 1}, "spectral_norm"),
     ({"instance_noise": -0.1}, "instance_noise"), ({"instance_noise": True}, "instance_noise"),
     ({"unroll": True}, "unroll"), ({"penalty_weight": True}, "penalty_weight"),
     ({"unroll": 2, "spectral_norm": True}, "unroll"),
     ({"d_steps": 0}, "d_steps"), ({"g_steps": -1}, "g_steps"), ({"lr_d": 0.0}, "lr_d"),
     ({"lr_g": float("nan")}, "lr_g"), ({"unroll": -1}, "unroll"), ({"batch_size": 1.5}, "batch_size"),
     ({"penalty_weight": -1.0}, "penalty_weight"), ({"instance_noise": float("inf")}, "instance_noise"),
     ({"seed": -3}, "seed"), ({"eval_every": 0}, "eval_every"), ({"n_eval": 0}, "n_eval"),
     ({"hidden": (0,)}, "hidden"), ({"d_steps": True}, "d_steps")],
)
def test_bad_values_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Lab(**{**SMALL, **kwargs})


def test_bad_values_in_configure_and_step():
    lab = Lab(**SMALL)
    with pytest.raises(ValueError, match="lr_g"):
        lab.configure(lr_g=-1)
    with pytest.raises(ValueError, match="colour"):
        lab.configure(colour="red")
    assert lab.lr_g == 1e-3  # a rejected change leaves the settings alone
    with pytest.raises(ValueError, match="unroll"):
        lab.configure(unroll=3, spectral_norm=True)  # settings that do not combine
    assert lab.unroll == 0 and not lab.spectral_norm and lab.method.unroll == 0
    with pytest.raises(ValueError, match="n"):
        lab.step(-1)


# --- the view and the widget -----------------------------------------------------------------

def test_widget_loss_dropdown_step_button_and_figure_update():
    w = LabWidget(data="ring", steps_per_frame=4, **FAST)
    image0, frames0 = w.image.value, w.frames
    fake0 = w.view.field.fake.get_offsets().copy()
    w.controls["loss"].value = "hinge"
    assert w.lab.loss == "hinge" and w.lab.iteration == 0
    assert w.view.field.colorbar.ax.get_ylabel() == "critic output"
    w.step_button.click()
    assert w.lab.iteration == 4 and len(w.lab.history.d_loss) == 4 and w.lab.loss == "hinge"
    assert w.frames == frames0 + 2  # one redraw for the loss change, one for the step
    assert w.image.value != image0 and w.image.value[:4] == b"\x89PNG"
    assert not np.array_equal(w.view.field.fake.get_offsets(), fake0)
    assert len(w.view.loss_lines["D loss"][0].get_xdata()) == 4
    assert "iteration 4" in w.status.value


def test_widget_data_change_restarts_and_reset_button_clears():
    w = LabWidget(data="ring", steps_per_frame=3, **FAST)
    w.step_button.click()
    w.controls["lr_g"].value = 1e-2  # live: the run goes on
    assert w.lab.iteration == 3 and w.lab.lr_g == pytest.approx(1e-2)
    w.controls["data"].value = "grid"
    assert w.lab.iteration == 0 and w.lab.mixture.n_modes == 25 and "restarted" in w.status.value
    w.step_button.click()
    w.reset_button.click()
    assert w.lab.iteration == 0 and w.lab.history.d_loss == [] and w.lab.history.eval_iteration == [0]
    assert len(w.view.loss_lines["D loss"][0].get_xdata()) == 0


def test_widget_penalty_dropdown_spectral_norm_checkbox_and_instance_noise_slider():
    w = LabWidget(data="ring", steps_per_frame=2, **FAST)
    assert w.controls["penalty"].value is None and w.lab.penalty is None
    w.step_button.click()
    w.controls["penalty"].value = "dragan"  # live: the run goes on
    w.controls["instance_noise"].value = 0.25
    assert w.lab.iteration == 2 and w.lab.method.penalty == "dragan" and w.lab.method.instance_noise == 0.25
    w.controls["spectral_norm"].value = True  # structural: D is rebuilt
    assert w.lab.iteration == 0 and "restarted: spectral_norm" in w.status.value
    assert any(hasattr(m, "parametrizations") for m in w.lab.D)
    w.step_button.click()
    assert w.lab.iteration == 2 and math.isfinite(w.lab.history.d_loss[-1])
    w.controls["unroll"].value = 2  # does not combine with spectral norm: said, not applied
    assert "unroll" in w.status.value and w.lab.unroll == 0
    w.controls["penalty"].value = None
    assert w.lab.penalty is None


def test_lab_imports_neither_its_view_nor_a_facade():
    # No cycle (lab_widget imports lab, never the other way) and no re-exported names.
    code = ("import sys, gan_notes.lab as lab; assert 'gan_notes.lab_widget' not in sys.modules; "
            "assert not hasattr(lab, 'show') and not hasattr(lab, 'DATASETS'); "
            "assert all(getattr(getattr(lab, n), '__module__', 'gan_notes.lab') == 'gan_notes.lab' for n in lab.__all__)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_widget_play_ticks_run_frames_and_drop_backlog(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(lab_widget.time, "monotonic", lambda: clock[0])
    w = LabWidget(data="disjoint", steps_per_frame=2, interval_ms=200, **FAST)
    clock[0] += 1.0  # a tick one second after the last frame: run a frame
    w.play.value += 1
    assert w.lab.iteration == 2
    clock[0] += 0.05  # a queued tick right after that frame: dropped
    w.play.value += 1
    assert w.lab.iteration == 2 and w.dropped == 1
    clock[0] += 0.2
    w.play.value += 1
    assert w.lab.iteration == 4


def test_widget_reports_bad_values_and_divergence():
    w = LabWidget(penalty_weight=0.0, **FAST)
    w.controls["penalty_weight"].value = -1.0
    assert "penalty_weight" in w.status.value and w.lab.penalty_weight == 0.0
    with torch.no_grad():
        w.lab.D[0].weight[0, 0] = float("nan")
    w.step_button.click()
    assert "diverged" in w.status.value and w.lab.iteration == 0
    with pytest.raises(ValueError, match="lab"):
        LabWidget(Lab(**SMALL), seed=2)


def test_show_builds_nothing_without_a_front_end(capsys):
    assert lab_widget.frontend_attached() is False
    assert show(**SMALL) is None
    assert "run this notebook" in capsys.readouterr().out
    assert isinstance(show(force=True, **FAST), LabWidget)


def test_animate_steps_the_lab_once_per_frame():
    lab = Lab("ring", **SMALL)
    anim = animate(lab, frames=3, steps_per_frame=2, figsize=(6, 2), dpi=30)
    html = anim.to_jshtml()
    assert lab.iteration == 4 and html.count("data:image/png;base64") == 3
