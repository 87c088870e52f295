"""Unit tests of gan_notes.image_training (with gan_notes.checkpoint, gan_notes.batches and
gan_notes.image_bench): what a run records, checkpoint and resume (exactness, atomic writes,
weights_only, bad checkpoints), the two-discriminator losses against gan_notes.theory,
penalties and unrolling against hand-written loops, the options, the NaN guard and bad inputs."""

import copy
import glob
import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from gan_notes import checkpoint, image_bench
from gan_notes.batches import TensorSampler
from gan_notes.checkpoint import CheckpointError
from gan_notes.dcgan import dcgan_discriminator, dcgan_generator, twodisc_models
from gan_notes.image_training import ImageHistory, train_image_gan
from gan_notes.losses import LOSSES, TWO_DISCRIMINATOR_LOSSES, discriminator_loss, dual_discriminator_loss, dual_generator_loss, generator_loss
from gan_notes.plotting import image_grid
from gan_notes.theory import optimal_dual_discriminators
from gan_notes.train import History, TrainingDiverged

LATENT = 8


# Every test here runs on one torch thread (the fixture is in conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _models(init_seed=0, width=4, channels=1):
    torch.manual_seed(init_seed)
    return dcgan_generator(channels, latent_dim=LATENT, width=width), dcgan_discriminator(channels, width=width)


def _data(n=40, channels=1, size=28):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(5)) * 2 - 1


def _run(models=None, data=None, **kwargs):
    g, d = models if models is not None else _models()
    options = dict(steps=6, batch_size=8, progress=False, sample_steps=(0, 3, 6), sample_size=4)
    options.update(kwargs)
    options["sample_steps"] = [s for s in options["sample_steps"] if s <= options["steps"]]
    return train_image_gan(g, d, _data() if data is None else data, **options), g, d


def _params(*modules):
    return [t.detach().clone() for m in modules for t in (*m.parameters(), *m.buffers())]


def _assert_same_run(h1, h2, mods1, mods2):
    for a, b in zip(_params(*mods1), _params(*mods2)):
        assert torch.equal(a, b)
    for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_array_equal(getattr(h1, k), getattr(h2, k))
    assert h1.samples.keys() == h2.samples.keys()
    for s in h1.samples:
        np.testing.assert_array_equal(h1.samples[s], h2.samples[s])


# --- what a run records ------------------------------------------------------------------------


def test_a_run_records_losses_samples_and_throughput():
    h, g, _ = _run()
    assert isinstance(h, ImageHistory) and isinstance(h, History)
    for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert getattr(h, k).shape == (6,) and np.all(np.isfinite(getattr(h, k)))
    assert np.all((h.d_real > 0) & (h.d_real < 1))
    assert sorted(h.samples) == [0, 3, 6] and h.samples[6].shape == (4, 1, 28, 28)
    assert not np.array_equal(h.samples[0], h.samples[6])  # G moved
    assert h.d2_loss is None and h.start_step == 0
    assert h.step_times.shape == (6,) and np.all(np.diff(h.step_times) > 0)
    assert h.steps_per_s > 0 and h.images_per_s == pytest.approx(8 * h.steps_per_s)
    assert h.options == {"device": "cpu", "amp": False, "channels_last": False, "compiled": False, "check_every": 1}
    assert g.training  # samples are drawn in eval mode, then G is put back


def test_same_seed_same_run_and_seed_matters():
    h1, g1, d1 = _run()
    h2, g2, d2 = _run()
    _assert_same_run(h1, h2, (g1, d1), (g2, d2))
    h3, _, _ = _run(seed=1)
    assert not np.array_equal(h1.d_loss, h3.d_loss)


def test_data_as_uint8_callable_and_loader():
    u8 = (_data() * 127.5 + 127.5).round().to(torch.uint8)
    h_u8, _, _ = _run(data=u8, steps=2)
    assert np.all(np.isfinite(h_u8.d_loss))
    h_call, _, _ = _run(data=lambda n: torch.rand(n, 1, 28, 28) * 2 - 1, steps=2)
    assert np.all(np.isfinite(h_call.d_loss))
    # A loader of 2 batches, used for 5 D steps: restarted when exhausted; (x, y) batches.
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(_data(16), torch.zeros(16)), batch_size=8)
    h_dl, _, _ = _run(data=loader, steps=5, sample_steps=())
    assert np.all(np.isfinite(h_dl.d_loss))


def test_tensor_sampler_draws_epochs_without_replacement():
    sampler = TensorSampler(torch.arange(10.0), seed=0)
    epoch = torch.cat([sampler(5), sampler(5)])
    assert sorted(epoch.tolist()) == list(range(10))


# --- two discriminators ----------------------------------------------------------------------


def test_the_dual_losses_the_loop_uses_are_stationary_at_the_theory_optimum():
    # A discrete p_data and p_g on 3 points, as batches of equal size with repeated points:
    # per-point logits a1, a2 are optimal for dual_discriminator_loss exactly at the D1*, D2*
    # of gan_notes.theory (the convention train_image_gan relies on).
    real_counts, fake_counts = torch.tensor([3, 1, 2]), torch.tensor([1, 2, 3])
    idx_real, idx_fake = torch.repeat_interleave(torch.arange(3), real_counts), torch.repeat_interleave(torch.arange(3), fake_counts)
    d1_star, d2_star = optimal_dual_discriminators(real_counts.double() / 6, fake_counts.double() / 6)

    def loss(a1, a2):
        return dual_discriminator_loss(a1[idx_real], a1[idx_fake], a2[idx_real], a2[idx_fake])

    a1, a2 = torch.logit(d1_star).requires_grad_(True), torch.logit(d2_star).requires_grad_(True)
    for g in torch.autograd.grad(loss(a1, a2), (a1, a2)):
        torch.testing.assert_close(g, torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    b1, b2 = (torch.logit(d1_star) + 0.3).requires_grad_(True), torch.logit(d2_star).requires_grad_(True)
    assert float(torch.autograd.grad(loss(b1, b2), b1)[0].abs().max()) > 1e-3  # elsewhere it is not


def _twodisc():
    torch.manual_seed(0)
    return twodisc_models(latent_dim=LATENT, g_width=4, d1_width=4, d2_width=4, md_kernels=3, md_dim=2)


def test_two_discriminator_run_and_resume(tmp_path):
    data = _data(24, channels=3, size=32)
    g, d1, d2 = _twodisc()
    full = train_image_gan(g, d1, data, discriminator2=d2, steps=4, batch_size=4, progress=False)
    assert full.d2_loss.shape == (4,) and np.all(np.isfinite(full.d2_loss))
    assert not np.array_equal(full.d2_loss, full.d_loss)
    ckpt = tmp_path / "two.pt"
    train_image_gan(*_twodisc()[:2], data, discriminator2=_twodisc()[2], steps=2, batch_size=4, progress=False, checkpoint_path=ckpt)
    g2, d12, d22 = twodisc_models(latent_dim=LATENT, g_width=4, d1_width=4, d2_width=4, md_kernels=3, md_dim=2)
    resumed = train_image_gan(g2, d12, data, discriminator2=d22, steps=4, batch_size=4, progress=False, checkpoint_path=ckpt)
    assert resumed.start_step == 2
    _assert_same_run(full, resumed, (g, d1, d2), (g2, d12, d22))
    np.testing.assert_array_equal(full.d2_loss, resumed.d2_loss)


def test_two_discriminators_need_a_loss_symmetric_under_swapping():
    g, d1, d2 = _twodisc()
    with pytest.raises(ValueError, match=r"L_D\(r, f\) = L_D\(-f, -r\).*got 'lsgan'"):
        train_image_gan(g, d1, _data(8, 3, 32), discriminator2=d2, steps=1, batch_size=4, loss="lsgan", progress=False)


def test_swapping_roles_is_negating_logits_exactly_for_the_offered_losses():
    # Why D2 may be trained on swapped arguments while G's term negates D2's logits.
    gen = torch.Generator().manual_seed(0)
    r, f = torch.randn(16, 1, generator=gen) * 3, torch.randn(16, 1, generator=gen) * 3
    for kind in LOSSES:
        same = torch.allclose(discriminator_loss(kind, r, f), discriminator_loss(kind, -f, -r), atol=1e-6)
        assert same == (kind in TWO_DISCRIMINATOR_LOSSES), kind


# --- checkpoint and resume -----------------------------------------------------------------------


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path):
    full, g_full, d_full = _run()
    ckpt = tmp_path / "run.pt"
    first, _, _ = _run(_models(init_seed=0), steps=3, checkpoint_path=ckpt)
    assert first.start_step == 0
    # Fresh models with other weights: everything must come from the checkpoint.
    resumed, g, d = _run(_models(init_seed=7), checkpoint_path=ckpt)
    assert resumed.start_step == 3 and resumed.step_times.shape == (3,)
    _assert_same_run(full, resumed, (g_full, d_full), (g, d))


def test_crash_mid_run_resumes_from_the_last_checkpoint(tmp_path):
    # Data from a callable using torch's global generator: its state is in the checkpoint.
    calls = {"n": 0}

    def data(n):
        calls["n"] += 1
        if calls["n"] == 6:  # the D step of step 6: a "Colab disconnect"
            raise KeyboardInterrupt
        return torch.rand(n, 1, 28, 28) * 2 - 1

    def clean(n):
        return torch.rand(n, 1, 28, 28) * 2 - 1

    full, g_full, d_full = _run(data=clean, steps=8, sample_steps=(0, 4, 8))
    ckpt = tmp_path / "crash.pt"
    with pytest.raises(KeyboardInterrupt):
        _run(data=data, steps=8, sample_steps=(0, 4, 8), checkpoint_path=ckpt, checkpoint_every=2)
    assert torch.load(ckpt, weights_only=True)["step"] == 4
    resumed, g, d = _run(_models(init_seed=3), data=clean, steps=8, sample_steps=(0, 4, 8), checkpoint_path=ckpt, checkpoint_every=2)
    assert resumed.start_step == 4
    _assert_same_run(full, resumed, (g_full, d_full), (g, d))


def test_checkpoint_loads_with_weights_only(tmp_path):
    ckpt = tmp_path / "w.pt"
    _run(steps=2, checkpoint_path=ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 2 and state["format"] == "gan_notes.image_training/3"
    assert set(state) >= {"models", "optimizers", "rng", "sampler", "history", "config"}
    assert state["history"]["d_loss"].shape == (2,) and isinstance(state["history"]["samples"][0], torch.Tensor)


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    ckpt = tmp_path / "a.pt"
    _run(steps=2, checkpoint_path=ckpt)
    assert os.listdir(tmp_path) == ["a.pt"]  # no temporary file left behind
    before = ckpt.read_bytes()
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:  # half a file, then the process "dies"
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        _run(steps=4, checkpoint_path=ckpt, resume=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.read_bytes() == before
    assert glob.glob(str(tmp_path / "*.tmp")) == []


def test_resume_false_ignores_and_overwrites_the_checkpoint(tmp_path):
    ckpt = tmp_path / "r.pt"
    _run(steps=3, checkpoint_path=ckpt, seed=1)
    fresh, g1, d1 = _run(checkpoint_path=ckpt, resume=False)
    plain, g2, d2 = _run()
    assert fresh.start_step == 0
    _assert_same_run(fresh, plain, (g1, d1), (g2, d2))
    assert torch.load(ckpt, weights_only=True)["step"] == 6


def test_corrupt_or_foreign_checkpoint_raises(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read"):
        _run(checkpoint_path=bad)
    good = tmp_path / "good.pt"
    _run(steps=2, checkpoint_path=good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read"):
        _run(checkpoint_path=truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a gan_notes"):
        _run(checkpoint_path=foreign)


def test_mismatched_checkpoint_raises(tmp_path):
    ckpt = tmp_path / "m.pt"
    _run(steps=2, checkpoint_path=ckpt)
    with pytest.raises(CheckpointError, match="does not match these models"):
        _run(_models(width=6), checkpoint_path=ckpt)
    with pytest.raises(CheckpointError, match="loss: checkpoint 'non_saturating' vs now 'hinge'"):
        _run(checkpoint_path=ckpt, loss="hinge")
    with pytest.raises(CheckpointError, match="beyond steps=1"):
        _run(checkpoint_path=ckpt, steps=1, sample_steps=())
    assert issubclass(CheckpointError, ValueError)


# --- options ---------------------------------------------------------------------------------


def test_amp_is_a_no_op_on_cpu_unless_forced():
    plain, g1, d1 = _run(steps=3)
    amp, g2, d2 = _run(steps=3, amp=True)
    assert amp.options["amp"] is False
    _assert_same_run(plain, amp, (g1, d1), (g2, d2))
    forced, _, _ = _run(steps=3, amp=True, cpu_amp=True)
    assert forced.options["amp"] is True and np.all(np.isfinite(forced.d_loss))
    assert not np.array_equal(forced.d_loss, plain.d_loss)  # bf16 did change the arithmetic


def test_channels_last_gives_the_same_run_up_to_rounding():
    plain, _, _ = _run(steps=3)
    nhwc, g, d = _run(steps=3, channels_last=True)
    assert nhwc.options["channels_last"] is True
    assert g.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(nhwc.d_loss, plain.d_loss, rtol=1e-4)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    plain, g1, d1 = _run(steps=3)
    with pytest.warns(UserWarning, match="torch.compile failed.*training eagerly"):
        fallback, g2, d2 = _run(steps=3, compile=True)
    assert fallback.options["compiled"] is False
    _assert_same_run(plain, fallback, (g1, d1), (g2, d2))


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="torch.compile on a CPU needs a C compiler")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")  # raised inside torch's compiler
def test_compiled_training_equals_eager_up_to_rounding():
    # The path a GPU run takes (torch.compile, channels-last), run for real on the CPU: the
    # compiled models must compute the same training run, not only compile.
    plain, g1, d1 = _run(steps=3, sample_steps=())
    compiled, g2, d2 = _run(steps=3, sample_steps=(), compile=True, channels_last=True)
    assert compiled.options["compiled"] is True and compiled.options["channels_last"] is True
    for a, b in zip(_params(g1, d1), _params(g2, d2)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compiled.d_loss, plain.d_loss, rtol=1e-5)


def test_image_grid_layout():
    x = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 3, 2, 2)
    grid = image_grid(x, nrow=2, padding=1)
    assert grid.shape == (3 * 3 + 1, 2 * 3 + 1, 3)
    assert grid[1, 1, 0] == 0.0 and grid[1, 4, 0] == 0.25 and grid[7, 1, 0] == 1.0  # images 0, 1, 4
    assert grid[0, 0, 0] == 1.0 and grid[7, 4, 0] == 1.0  # padding and the empty cell are white
    with pytest.raises(ValueError, match="images"):
        image_grid(np.zeros((2, 28, 28)))


# --- NaN guard and bad inputs ---------------------------------------------------------------------


class _Logits(nn.Module):
    """A 28×28 'discriminator' returning finite logits until its ``bad_from``-th call."""

    def __init__(self, value, bad_from=1):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.value, self.bad_from, self.calls = value, bad_from, 0

    def forward(self, x):
        self.calls += 1
        out = x.flatten(1).mean(1, keepdim=True) * self.w
        return out + self.value if self.calls >= self.bad_from else out


@pytest.mark.parametrize(
    "value,bad_from,match",
    [
        (float("nan"), 1, "step 1: the discriminator loss is nan"),
        (float("inf"), 1, "step 1: the discriminator loss is inf"),
        (float("nan"), 3, "step 1: the generator loss is nan"),  # calls 1-2: D step; 3: G step
        (float("nan"), 7, "step 3: the discriminator loss is nan"),
    ],
)
@pytest.mark.parametrize("check_every", [1, 3])
def test_nan_guard(value, bad_from, match, check_every):
    # Reading the losses back every 3 steps still names the first bad step and loss.
    g, _ = _models()
    with pytest.raises(TrainingDiverged, match=match):
        train_image_gan(g, _Logits(value, bad_from), _data(), steps=4, batch_size=4, progress=False, check_every=check_every)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"loss": "bce"}, ValueError, "unknown loss 'bce'"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"steps": -1}, ValueError, "steps"),
        ({"sample_steps": (-1,)}, ValueError, "sample_steps"),
        ({"lr_g": 0.0}, ValueError, "learning rates"),
        ({"batch_size": 41}, ValueError, "exceeds the 40 images"),
        ({"data": np.zeros((8, 1, 28, 28))}, TypeError, "torch.from_numpy"),
        ({"data": torch.zeros(8, 28, 28)}, ValueError, r"\(N, C, H, W\)"),
        ({"data": 3}, TypeError, "data must be"),
        ({"penalty": "wgan-gp"}, ValueError, "unknown penalty 'wgan-gp'"),
        ({"penalty": "gp", "penalty_weight": -1.0}, ValueError, "penalty_weight"),
        ({"unroll": -1}, ValueError, "unroll"),
        ({"check_every": 0}, ValueError, "check_every"),
        ({"compile": 1}, TypeError, "compile must be"),
    ],
)
def test_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        _run(**kwargs)


def test_image_size_mismatch_between_generator_and_data():
    with pytest.raises(ValueError, match=r"generated images have shape \(1, 28, 28\) but the data's are \(1, 32, 32\)"):
        _run(data=_data(size=32))


def test_latent_dim_needed_when_generator_does_not_say():
    g = nn.Sequential(nn.Linear(LATENT, 784), nn.Unflatten(1, (1, 28, 28)))
    with pytest.raises(ValueError, match="latent_dim is required"):
        train_image_gan(g, _models()[1], _data(), steps=1, batch_size=4, progress=False)
    h = train_image_gan(g, _models()[1], _data(), steps=1, batch_size=4, latent_dim=LATENT, progress=False)
    assert h.d_loss.shape == (1,)


def test_benchmark_reports_both_paths_on_cpu():
    r = image_bench.benchmark(steps=2, warmup=1, rounds=1, batch_size=4, device="cpu", width=4, channels=3)
    assert set(r) == {"eager", "optimised"}
    assert r["eager"]["check_every"] == 1
    assert r["eager"]["channels_last"] is False and r["optimised"]["channels_last"] is True
    # On the CPU: no bf16 and, by default, no compilation.
    assert r["optimised"]["amp"] is False and r["optimised"]["compiled"] is False
    for x in r.values():
        assert x["steps_per_s"] > 0 and x["images_per_s"] == pytest.approx(4 * x["steps_per_s"])
    with pytest.raises(ValueError, match="rounds"):
        image_bench.benchmark(rounds=0)


def test_benchmark_command_prints_ratio_and_projections(capsys):
    image_bench._main(["--steps", "1", "--warmup", "1", "--rounds", "1", "--batch", "4", "--width", "4", "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr().out
    assert "MNIST 1x28x28:" in out and "Stacked MNIST 3x28x28, 1 D + 2 G updates per step:" in out
    assert out.count("ratio optimised/eager:") == 2
    assert "one MNIST epoch (60,000 images) at the optimised rate:" in out
    assert "one PacGAN Table 2 run (100,000 iterations) at the optimised rate:" in out


class _Constant(nn.Module):
    """A discriminator whose logit is a constant (with a parameter that gets zero gradient)."""

    def __init__(self, value):
        super().__init__()
        self.w, self.value = nn.Parameter(torch.zeros(1)), value

    def forward(self, x):
        return x.flatten(1).mean(1, keepdim=True) * self.w * 0.0 + self.value


@pytest.mark.parametrize("loss", ["non_saturating", "minimax"])
def test_two_discriminator_wiring_uses_the_dual_losses(loss):
    g, _ = _models()
    a1, a2 = torch.tensor([[0.5]]), torch.tensor([[-1.0]])
    h = train_image_gan(g, _Constant(0.5), _data(), discriminator2=_Constant(-1.0), steps=2, batch_size=4, loss=loss, progress=False)
    d1 = float(nn.functional.softplus(-a1) + nn.functional.softplus(a1))
    d2 = float(dual_discriminator_loss(a1, a1, a2, a2)) - d1
    np.testing.assert_allclose(h.d_loss, d1, rtol=1e-6)
    np.testing.assert_allclose(h.d2_loss, d2, rtol=1e-6)
    np.testing.assert_allclose(h.g_loss, float(dual_generator_loss(a1, a2, loss=loss)), rtol=1e-6)


@pytest.mark.parametrize(
    "loss,d1,d2,g",
    [
        # Constant logits a1 = 0.5 (D1) and a2 = -1 (D2) on every image: closed forms.
        ("hinge", 0.5 + 1.5, 2.0 + 0.0, -0.5 + -1.0),  # D1: relu(1-a1)+relu(1+a1); D2: relu(1-a2)+relu(1+a2); G: -a1 + a2
        ("wgan", 0.0, 0.0, -0.5 + -1.0),  # D: -E a(real) + E a(fake) = 0 for constant logits; G: -a1 + a2
    ],
)
def test_two_discriminator_wiring_for_hinge_and_wgan(loss, d1, d2, g):
    h = train_image_gan(_models()[0], _Constant(0.5), _data(), discriminator2=_Constant(-1.0), steps=2, batch_size=4, loss=loss, progress=False)
    np.testing.assert_allclose(h.d_loss, d1, rtol=1e-6)
    np.testing.assert_allclose(h.d2_loss, d2, rtol=1e-6)
    np.testing.assert_allclose(h.g_loss, g, rtol=1e-6)


# --- penalties and unrolling against hand-written loops ------------------------------------------


def _hand_gp(d, real, fake):
    """WGAN-GP written out with torch.autograd: (||grad D(x_hat)|| - 1)^2 at random interpolates."""
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _hand_lookahead(d, opt_d, real, fake, k):
    """D after k Adam steps continuing opt_d's moments and step count (Metz et al.), written out
    with torch.autograd and torch's Adam update, but with sqrt(v_hat + eps^2) as the package."""
    names = [n for n, _ in d.named_parameters()]
    group = opt_d.param_groups[0]
    lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
    theta = [p.detach().requires_grad_(True) for p in d.parameters()]
    m = [opt_d.state[p]["exp_avg"].clone() for p in d.parameters()]
    v = [opt_d.state[p]["exp_avg_sq"].clone() for p in d.parameters()]
    t0 = int(opt_d.state[next(iter(d.parameters()))]["step"])
    call = lambda th, x: torch.func.functional_call(d, dict(zip(names, th)), (x,))  # noqa: E731
    for t in range(t0 + 1, t0 + k + 1):
        loss = discriminator_loss("non_saturating", call(theta, real), call(theta, fake))
        grads = torch.autograd.grad(loss, theta, create_graph=True)
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        v = [b2 * vi + (1 - b2) * g**2 for vi, g in zip(v, grads)]
        theta = [p - lr * (mi / (1 - b1**t)) / torch.sqrt(vi / (1 - b2**t) + eps**2) for p, mi, vi in zip(theta, m, v)]
    return lambda x: call(theta, x)


def _reference_loop(g, d, data, steps, *, penalty_weight=0.0, unroll=0, lr=2e-4, batch_size=8, seed=0):
    """The textbook loop, written out: the same random draws in the same order as train_image_gan."""
    torch.manual_seed(seed)
    sampler = TensorSampler(data, seed + 2)
    if unroll:
        torch.func.replace_all_batch_norm_modules_(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    for _ in range(steps):
        real = sampler(batch_size)
        z = torch.randn(batch_size, LATENT)
        with torch.no_grad():
            fake = g(z)
        loss_d = discriminator_loss("non_saturating", d(real), d(fake))
        if penalty_weight:
            loss_d = loss_d + penalty_weight * _hand_gp(d, real, fake)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        if unroll:
            real_g = sampler(batch_size)
            fake = g(torch.randn(batch_size, LATENT))
            loss_g = generator_loss("non_saturating", _hand_lookahead(d, opt_d, real_g, fake, unroll)(fake))
        else:
            loss_g = generator_loss("non_saturating", d(g(torch.randn(batch_size, LATENT))))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()


@pytest.mark.parametrize("options", [{"penalty": "gp", "penalty_weight": 5.0}, {"unroll": 2}])
def test_penalty_and_unrolling_equal_the_hand_written_loop(options):
    g, d = _models()
    g_ref, d_ref = copy.deepcopy(g), copy.deepcopy(d)
    data = _data()
    h = train_image_gan(g, d, data, steps=3, batch_size=8, progress=False, **options)
    _reference_loop(g_ref, d_ref, data, 3, penalty_weight=options.get("penalty_weight", 0.0), unroll=options.get("unroll", 0))
    for a, b in zip(_params(g, d), _params(g_ref, d_ref)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    plain, g_plain, _ = _run(_models(), steps=3, sample_steps=())
    assert not torch.allclose(_params(g)[0], _params(g_plain)[0])  # the option changed the run
    assert np.all(np.isfinite(h.g_loss))


def test_two_discriminators_with_a_penalty_and_resume(tmp_path):
    data = _data(24, channels=3, size=32)
    g, d1, d2 = _twodisc()
    opts = dict(discriminator2=None, steps=4, batch_size=4, progress=False, loss="hinge", penalty="r1", penalty_weight=1.0)
    full = train_image_gan(g, d1, data, **{**opts, "discriminator2": d2})
    ckpt = tmp_path / "gp.pt"
    g_a, d1_a, d2_a = _twodisc()
    train_image_gan(g_a, d1_a, data, **{**opts, "discriminator2": d2_a, "steps": 2}, checkpoint_path=ckpt)
    g_b, d1_b, d2_b = _twodisc()
    resumed = train_image_gan(g_b, d1_b, data, **{**opts, "discriminator2": d2_b}, checkpoint_path=ckpt)
    _assert_same_run(full, resumed, (g, d1, d2), (g_b, d1_b, d2_b))
    with pytest.raises(CheckpointError, match="penalty: checkpoint 'r1' vs now 'gp'"):
        train_image_gan(*_twodisc()[:2], data, **{**opts, "discriminator2": _twodisc()[2], "penalty": "gp"}, checkpoint_path=ckpt)


def test_unrolling_does_not_combine_with_two_discriminators():
    g, d1, d2 = _twodisc()
    with pytest.raises(ValueError, match="unroll does not combine with discriminator2"):
        train_image_gan(g, d1, _data(8, 3, 32), discriminator2=d2, steps=1, batch_size=4, unroll=2, progress=False)


# --- reading losses back less often, compile modes ---------------------------------------------------


def test_check_every_changes_nothing_but_when_losses_are_read():
    every, g1, d1 = _run(steps=7, check_every=1)
    lazy, g2, d2 = _run(steps=7, check_every=3)
    _assert_same_run(every, lazy, (g1, d1), (g2, d2))
    assert lazy.options["check_every"] == 3


def test_compile_mode_is_passed_to_torch_compile(monkeypatch):
    modes = []

    def fake_compile(module, mode=None):
        modes.append(mode)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    h, _, _ = _run(steps=2, compile="reduce-overhead")
    assert h.options["compiled"] is True and set(modes) == {"reduce-overhead"}
    modes.clear()
    _run(steps=2, compile=True)
    assert set(modes) == {None}


# --- gan_notes.checkpoint on its own ------------------------------------------------------------------


def test_checkpoint_module_round_trip_and_errors(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"format": "kind/1", "config": {"a": 1, "b": [2]}, "x": torch.arange(3)}, path)
    ckpt = checkpoint.load_checkpoint(path, kind="kind/1", config={"a": 1, "b": [2]})
    assert torch.equal(ckpt["x"], torch.arange(3))
    with pytest.raises(CheckpointError, match="not a kind/2 checkpoint"):
        checkpoint.load_checkpoint(path, kind="kind/2", config={})
    with pytest.raises(CheckpointError, match=r"a: checkpoint 1 vs now 3, b: checkpoint \[2\] vs now \[4\]"):
        checkpoint.load_checkpoint(path, kind="kind/1", config={"a": 3, "b": [4]})


def test_rng_state_round_trip():
    torch.manual_seed(11)
    state = checkpoint.rng_state("cpu")
    first = torch.rand(5)
    torch.manual_seed(99)
    checkpoint.set_rng_state(state, "cpu")
    assert torch.equal(torch.rand(5), first) and state["cuda"] is None


def test_g_steps_takes_that_many_generator_updates():
    # With two G updates per step, one step of the loop equals a hand-written step with two.
    g, d = _models()
    g_ref, d_ref = copy.deepcopy(g), copy.deepcopy(d)
    data = _data()
    train_image_gan(g, d, data, steps=2, batch_size=8, g_steps=2, progress=False)
    torch.manual_seed(0)
    sampler = TensorSampler(data, 2)
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for _ in range(2):
        real = sampler(8)
        with torch.no_grad():
            fake = g_ref(torch.randn(8, LATENT))
        loss_d = discriminator_loss("non_saturating", d_ref(real), d_ref(fake))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        for _ in range(2):
            loss_g = generator_loss("non_saturating", d_ref(g_ref(torch.randn(8, LATENT))))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
    for a, b in zip(_params(g, d), _params(g_ref, d_ref)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
