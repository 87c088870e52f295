r"""Many seeds of one toy GAN trained at once: a batched multi-seed trainer (Part III).

*S* runs of one configuration differ only in their seed, so their networks have the same
shapes. We stack the *S* copies of each parameter along a new leading axis
(:func:`torch.func.stack_module_state`) and write the losses of **one** seed as a pure
function of its parameters (:func:`torch.func.functional_call`); :func:`torch.func.vmap`
maps that function over the seed axis, so every layer runs as one batched matrix product
for all seeds. Seeds never interact: the loss we differentiate is the sum of the per-seed
losses, :math:`\nabla_{\theta_s}\sum_r L_r = \nabla_{\theta_s} L_s`, and Adam is elementwise,
so one Adam on the stacked tensors takes every seed's own Adam step.

**Why vmap over functional_call, not hand-written batched matrix products.** In pilot runs on
the toy MLPs (one CPU thread), a hand-written ``torch.baddbmm`` network was 5-10% faster, but
vmap takes *any* module unchanged: minibatch discrimination, BEGAN's autoencoder, the mixture
of generators and the unrolled look-ahead of :mod:`gan_notes.remedies` run under it as written.

**Reproducibility.** Each seed keeps its own state of torch's default CPU generator and draws
its random numbers (data, latents, instance noise, penalty interpolates) with the same calls,
in the same order, as :func:`gan_notes.train.train_gan`; networks are built after
``torch.manual_seed(seed)``. So seed *s* of :func:`train_ensemble` reproduces
``train_gan(..., seed=s)`` up to float rounding (tested). The caller's generator state is
restored at the end.

**Divergence.** A seed whose loss turns NaN or infinite is either reported at once
(``on_diverge="raise"``: :class:`~gan_notes.train.TrainingDiverged` naming the step, the
loss and the seeds) or recorded (``"record"``, what the benchmark uses): its parameters and
Adam moments are set to zero and its loss masked out, so it stops moving and cannot disturb
the others, which continue; its metrics are NaN and :attr:`EnsembleResult.diverged` says so.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from gan_notes import lipschitz, losses
from gan_notes.methods import SeedLosses, build_networks
from gan_notes.metrics import mode_coverage, nearest_counts, prdc
from gan_notes.objective import Method
from gan_notes.train import TrainingDiverged

__all__ = ["EnsembleResult", "train_ensemble", "REAL_EVAL_SEED"]


@dataclass
class EnsembleResult:
    """What :func:`train_ensemble` returns; per-seed entries follow ``seeds``.

    Attributes
    ----------
    seeds : list of int
    metrics : list of dict
        Final ``modes``, ``high_quality``, ``kl`` (:func:`~gan_notes.metrics.mode_coverage`) and
        ``precision``, ``recall``, ``density``, ``coverage`` (:func:`~gan_notes.metrics.prdc`)
        per seed; NaN for a diverged seed.
    diverged : list of bool; errors : list of str or None (the divergence message)
    d_loss, g_loss : arrays (steps, S)
    samples : array (S, n_eval, d)
        Final generated samples (fixed latents per seed, as ``train_gan``'s snapshots).
    evals : list of dict
        ``{"step", "modes", "high_quality", "kl", "counts", "nearest_counts"}`` (lists over
        seeds), every ``eval_every``: ``counts`` are the high-quality samples per mode and
        ``nearest_counts`` all samples by nearest mode (K numbers each, NaN when diverged).
    wall_time_s : float
        Seconds for the whole batched training (evaluation excluded).
    wall_time_per_seed_s : float
        ``wall_time_s / S``: the batched time shared out, not a sequential run's time.
    device : str
    """

    seeds: list[int]
    metrics: list[dict]
    diverged: list[bool]
    errors: list[str | None]
    d_loss: np.ndarray
    g_loss: np.ndarray
    samples: np.ndarray
    evals: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    wall_time_per_seed_s: float = 0.0
    device: str = "cpu"


_METRIC_KEYS = ("modes", "high_quality", "kl", "precision", "recall", "density", "coverage")


class _Ensemble:
    """The stacked networks, their optimisers and the per-seed random streams."""

    def __init__(self, method, data, seeds, latent_dim, hidden, batch_size, lr_g, lr_d, betas, device):
        self.m, self.data, self.seeds = method, data, list(seeds)
        self.latent_dim, self.batch = latent_dim, batch_size
        self.dim = int(data.centers.shape[1])
        per_seed, self.sn_v = [], {}
        for s in self.seeds:
            torch.manual_seed(s)
            nets = build_networks(method, latent_dim, self.dim, hidden)
            if method.spectral_norm:
                self._init_spectral_norm(nets["D"])
            per_seed.append(nets)
        self.base = per_seed[0]  # the structure functional_call evaluates with each seed's tensors
        self.params, self.buffers = {}, {}
        for name in per_seed[0]:
            p, b = stack_module_state([nets[name] for nets in per_seed])
            self.params[name] = {k: v.to(device) for k, v in p.items()}
            self.buffers[name] = {k: v.to(device) for k, v in b.items()}
        self.sn_v = {k: torch.stack(v).to(device) for k, v in self.sn_v.items()}
        self.opt_g = torch.optim.Adam(list(self.params["G"].values()), lr=lr_g, betas=betas)
        self.opt_d = torch.optim.Adam([p for n in method.d_names for p in self.params[n].values()], lr=lr_d, betas=betas)
        self.rng = [torch.manual_seed(s).get_state() for s in self.seeds]  # train_gan's start state
        self.alive = torch.ones(len(self.seeds), dtype=torch.bool, device=device)
        self.pending: list[int] = []
        self.device = device

    def _init_spectral_norm(self, D: nn.Module) -> None:
        # torch's parametrization draws u, v and runs 15 power iterations; take its v, then
        # remove it again (keeping the raw weight) and normalise functionally in training.
        for name, mod in D.named_modules():
            if isinstance(mod, nn.Linear):
                nn.utils.parametrizations.spectral_norm(mod)
                self.sn_v.setdefault(f"{name}.weight", []).append(mod.parametrizations.weight[0]._v.clone())
                nn.utils.parametrize.remove_parametrizations(mod, "weight", leave_parametrized=False)

    def call(self, name, params, x):
        """Network ``name`` of one seed (inside vmap) with parameters ``params[name]``."""
        return functional_call(self.base[name], params[name], (x,))

    def adam_moments(self):
        """D's Adam moments (S-stacked, detached) and settings, for the unrolled look-ahead."""
        group = self.opt_d.param_groups[0]
        params = self.params["D"]
        state = [self.opt_d.state.get(p, {}) for p in params.values()]
        step = int(state[0]["step"]) if state and "step" in state[0] else 0
        m = {k: (st["exp_avg"] if "exp_avg" in st else torch.zeros_like(p)).detach() for (k, p), st in zip(params.items(), state)}
        v = {k: (st["exp_avg_sq"] if "exp_avg_sq" in st else torch.zeros_like(p)).detach() for (k, p), st in zip(params.items(), state)}
        return m, v, {"lr": group["lr"], "betas": tuple(group["betas"]), "eps": group["eps"], "step": step}

    def d_params_for_round(self):
        """D's parameters for one evaluation round; with spectral norm, normalised weights
        (gradient through W only) and one power iteration on each stored v."""
        if not self.m.spectral_norm:
            return self.params
        sn = dict(self.params["D"])
        for key, v in self.sn_v.items():
            sn[key], self.sn_v[key] = vmap(lipschitz.spectral_normalize)(self.params["D"][key], v)
        return {**self.params, "D": sn}

    # -- random numbers: one stream per seed, in train_gan's order ------------------------
    def draw(self, what):
        out = []
        for i in range(len(self.seeds)):
            torch.set_rng_state(self.rng[i])
            out.append(what())
            self.rng[i] = torch.get_rng_state()
        return {k: torch.stack([o[k] for o in out]).to(self.device) for k in out[0]}

    def draw_d(self):
        m, n, d = self.m, self.m.pack * self.batch, self.dim

        def what():
            r = {"real": self.data.sample(n), "z": torch.randn(n, self.latent_dim)}
            if m.instance_noise:
                r["noise_real"], r["noise_fake"] = torch.randn(n, d), torch.randn(n, d)
            if m.penalty == "gp":  # penalties.gradient_penalty: one interpolation weight per D input row
                r["eps"] = torch.rand(self.batch, 1)
            elif m.penalty == "dragan":  # penalties.dragan_penalty: rand_like(real)
                r["u"] = torch.rand(self.batch, m.pack * d)
            return r

        return self.draw(what)

    def draw_g(self):
        m, n, d = self.m, self.m.pack * self.batch, self.dim

        def what():
            r = {"z": torch.randn(n, self.latent_dim)}
            if m.instance_noise:
                r["noise_fake"] = torch.randn(n, d)
            if m.mode_seeking:
                r["z2"] = torch.randn(n, self.latent_dim)
            if m.feature_matching or m.unroll:
                r["real"] = self.data.sample(n)
            return r

        return self.draw(what)

    # -- bookkeeping ----------------------------------------------------------------------
    def merged(self, params, names, detach=False):
        """Per-network dicts of parameters and buffers, as functional_call takes them."""
        return {n: {**{k: (v.detach() if detach else v) for k, v in params[n].items()}, **self.buffers[n]} for n in names}

    def check(self, t, name, loss_vec, on_diverge, errors):
        """Stop or bury the seeds whose loss is not finite; return the loss with them masked."""
        bad = ~torch.isfinite(loss_vec.detach()) & self.alive
        if bool(bad.any()):
            idx = bad.nonzero().flatten().tolist()
            values = loss_vec.detach().cpu()
            what = ", ".join(f"seed {self.seeds[i]}: {float(values[i])}" for i in idx)
            msg = f"step {t}: the {name} loss is not finite ({what}); lower the learning rate or check the data"
            if on_diverge == "raise":
                raise TrainingDiverged(msg)
            for i in idx:
                errors[i] = f"step {t}: the {name} loss is {float(values[i])}"
            self.alive[idx] = False
            self.pending += idx  # buried after this step's backward, which needs the old values
        return torch.where(self.alive, loss_vec, torch.zeros_like(loss_vec))

    @torch.no_grad()
    def bury(self):
        # A diverged seed stops: zero parameters and Adam moments, and (zero_dead_grads) zero
        # gradients, so each later Adam step leaves it where it is.
        idx, self.pending = self.pending, []
        if not idx:
            return
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                for p in group["params"]:
                    p[idx] = 0
                    for key in ("exp_avg", "exp_avg_sq"):
                        if key in opt.state.get(p, {}):
                            opt.state[p][key][idx] = 0

    def zero_dead_grads(self, opt):
        if bool(self.alive.all()):
            return
        with torch.no_grad():
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad[~self.alive] = 0


def _check_args(method, data, seeds, latent_dim, hidden, steps, batch_size, n_eval, eval_every, on_diverge):
    if not isinstance(method, Method):
        raise TypeError(f"method must be a gan_notes.objective.Method, got {type(method).__name__}")
    if not (hasattr(data, "sample") and hasattr(data, "centers") and hasattr(data, "std")):
        raise TypeError("data must be a gan_notes.toy mixture (with sample, centers and std)")
    if isinstance(seeds, bool):
        raise TypeError("seeds must be an int S (seeds 0..S-1) or a sequence of ints")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if len(seeds) < 1:
        raise ValueError("seeds must hold at least one seed (S >= 1)")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative ints, got {seeds}")
    for name, v in (("latent_dim", latent_dim), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    for name, v in (("steps", steps), ("eval_every", eval_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if isinstance(n_eval, bool) or not isinstance(n_eval, int) or n_eval < 10:
        raise ValueError(f"n_eval must be an int >= 10 (prdc needs more than k=5 samples), got {n_eval!r}")
    hidden = tuple(hidden)
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty sequence of positive ints, got {hidden}")
    if on_diverge not in ("raise", "record"):
        raise ValueError(f"on_diverge must be 'raise' or 'record', got {on_diverge!r}")
    return seeds, hidden


#: Seed of the real samples that precision and recall compare against (the same for all runs).
REAL_EVAL_SEED = 12345


def train_ensemble(
    method: Method,
    data,
    seeds: int | Sequence[int] = 10,
    *,
    latent_dim: int = 2,
    hidden: Sequence[int] = (128, 128, 128),
    steps: int = 2500,
    batch_size: int = 256,
    lr_g: float = 1e-3,
    lr_d: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    n_eval: int = 2500,
    eval_every: int = 0,
    lr_decay: bool = False,
    on_diverge: str = "raise",
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> EnsembleResult:
    r"""Train ``S`` seeds of one method on one toy mixture at once, and evaluate each.

    Every seed plays the game of ``method`` with Adam on its own parameters: per iteration
    ``method.d_steps`` D steps, then one G step, each on fresh batches. The *S* copies are
    stacked and evaluated with :func:`torch.func.vmap`; the loss differentiated is
    :math:`\sum_s L_s(\theta_s)`, whose gradient in :math:`\theta_s` is seed *s*'s own.
    Seed *s* reproduces :func:`gan_notes.train.train_gan` with ``seed=s`` for the plain
    losses (same initialisation, same random draws; float rounding aside).

    At the end each seed's generator maps ``n_eval`` fixed latents (``train_gan``'s snapshot
    latents, seed ``s + 1``) to samples, scored by :func:`~gan_notes.metrics.mode_coverage`
    (3 standard deviations) and :func:`~gan_notes.metrics.prdc` (k = 5) against ``n_eval``
    real samples drawn with seed ``REAL_EVAL_SEED``.

    Parameters
    ----------
    method : Method
    data : gan_notes.toy.Mixture
        E.g. :func:`gan_notes.toy.ring` or :func:`gan_notes.toy.grid`.
    seeds : int or sequence of int
        ``S`` (seeds 0..S-1) or the seeds themselves.
    latent_dim, hidden, steps, batch_size, lr_g, lr_d, betas
        As in :func:`~gan_notes.train.train_gan` (``method`` may override the rates and betas).
    n_eval : int
        Samples per seed for the final metrics (the protocol's 2,500).
    eval_every : int
        Also record mode coverage every ``eval_every`` G steps (0: only at the end).
    lr_decay : bool
        Decay both learning rates linearly, :math:`\eta_t = \eta\,(1 - (t-1)/T)` at G step
        *t* of *T* (all D steps of an iteration share it): lets the generator settle onto the
        modes at the end instead of jittering around them. Off: constant rates, as ``train_gan``.
    on_diverge : {"raise", "record"}
        What a NaN or infinite loss does: raise :class:`~gan_notes.train.TrainingDiverged`
        (naming step, loss and seeds), or record the seed as failed and go on with the others.
    device : torch device, optional
        Default CPU. Random numbers are drawn on the CPU, so runs agree across devices up to
        rounding.
    progress : bool, optional
        A tqdm bar; off when the environment sets ``TQDM_DISABLE=1``.

    Returns
    -------
    EnsembleResult

    See also
    --------
    gan_notes.benchmark (the Part III benchmark); Chapter 09 (mode-collapse remedies).
    """
    seeds, hidden = _check_args(method, data, seeds, latent_dim, hidden, steps, batch_size, n_eval, eval_every, on_diverge)
    device = torch.device(device) if device is not None else torch.device("cpu")
    lr_g = method.lr_g if method.lr_g is not None else lr_g
    lr_d = method.lr_d if method.lr_d is not None else lr_d
    betas = method.betas if method.betas is not None else betas
    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "") not in ("1", "true", "True")
    S, m = len(seeds), method
    rec = {"d_loss": np.full((steps, S), np.nan), "g_loss": np.full((steps, S), np.nan)}
    errors: list[str | None] = [None] * S
    evals: list[dict] = []
    with torch.random.fork_rng(devices=[]):  # the caller's generator state is left untouched
        start = time.perf_counter()
        ens = _Ensemble(m, data, seeds, latent_dim, hidden, batch_size, lr_g, lr_d, betas, device)
        ens.losses = SeedLosses(m, ens.base)
        fixed_z = torch.stack([torch.randn(n_eval, latent_dim, generator=torch.Generator().manual_seed(s + 1)) for s in seeds]).to(device)
        k_began = torch.zeros(S, device=device)
        gen = vmap(lambda p, z: ens.call("G", p, z))
        d_fn, g_fn = vmap(ens.losses.d_loss), vmap(ens.losses.g_loss)
        evaluate = lambda t: evals.append({"step": t, **_coverage(ens, gen, fixed_z, data)})  # noqa: E731
        if eval_every:
            evaluate(0)
        for t in tqdm(range(1, steps + 1), disable=not progress, desc=f"{S} seeds"):
            anneal = 1 - (t - 1) / steps if m.noise_anneal else 1.0
            if lr_decay:
                for opt, lr in ((ens.opt_g, lr_g), (ens.opt_d, lr_d)):
                    for group in opt.param_groups:
                        group["lr"] = lr * (1 - (t - 1) / steps)
            for _ in range(m.d_steps):
                r = _scaled(ens.draw_d(), anneal)
                with torch.no_grad():
                    r["fake"] = gen(ens.merged(ens.params, ("G",)), r["z"])
                if m.loss == "began":
                    r["k"] = k_began
                pd = ens.merged(ens.d_params_for_round(), m.d_names)
                loss_d, aux = d_fn(pd, r)
                loss_d = ens.check(t, "discriminator", loss_d, on_diverge, errors)
                ens.opt_d.zero_grad(set_to_none=True)
                loss_d.sum().backward()
                ens.zero_dead_grads(ens.opt_d)
                ens.opt_d.step()
                ens.bury()
                if m.clip is not None:
                    with torch.no_grad():
                        for n in m.d_names:
                            for p in ens.params[n].values():
                                p.clamp_(-m.clip, m.clip)
                if m.loss == "began":
                    k_new = vmap(lambda k, a: losses.began_k_update(k, a[0], a[1], m.began_gamma, m.began_lambda_k))(k_began, aux)
                    k_began = torch.where(ens.alive, k_new, torch.zeros_like(k_new))
            rec["d_loss"][t - 1] = _recorded(loss_d, ens.alive)
            r = _scaled(ens.draw_g(), anneal)
            if m.unroll:  # the look-ahead continues D's live Adam state (Metz et al.)
                r["adam_m"], r["adam_v"], ens.losses.adam = ens.adam_moments()
            pg = {**ens.merged(ens.params, ("G",)), **ens.merged(ens.d_params_for_round(), m.d_names, detach=True)}
            loss_g = ens.check(t, "generator", g_fn(pg, r), on_diverge, errors)
            ens.opt_g.zero_grad(set_to_none=True)
            loss_g.sum().backward()
            ens.zero_dead_grads(ens.opt_g)
            ens.opt_g.step()
            ens.bury()
            rec["g_loss"][t - 1] = _recorded(loss_g, ens.alive)
            if eval_every and t % eval_every == 0:
                evaluate(t)
            if not bool(ens.alive.any()):
                break
        wall = time.perf_counter() - start
        with torch.no_grad():
            samples = gen(ens.merged(ens.params, ("G",)), fixed_z).cpu()
        real_ref = data.sample(n_eval, generator=torch.Generator().manual_seed(REAL_EVAL_SEED))
    metrics = []
    for i in range(S):
        x = samples[i]
        if ens.alive[i] and not bool(torch.isfinite(x).all()):
            ens.alive[i] = False
            errors[i] = "the generator's samples are not finite at the end"
            if on_diverge == "raise":
                raise TrainingDiverged(f"step {steps}: seed {seeds[i]}: {errors[i]}")
        if not ens.alive[i]:
            metrics.append({k: math.nan for k in _METRIC_KEYS})
            continue
        mc = mode_coverage(x, data.centers, float(data.std.reshape(-1)[0]))
        pr = prdc(real_ref, x)
        metrics.append({"modes": mc["modes"], "high_quality": mc["high_quality"], "kl": mc["kl"], **pr})
    return EnsembleResult(
        seeds=seeds, metrics=metrics, diverged=[not bool(a) for a in ens.alive.cpu()], errors=errors,
        d_loss=rec["d_loss"], g_loss=rec["g_loss"], samples=samples.numpy(), evals=evals,
        wall_time_s=wall, wall_time_per_seed_s=wall / S, device=str(device),
    )


def _scaled(r: dict, factor: float) -> dict:
    """Instance noise scaled by the annealing factor."""
    if factor != 1.0:
        r.update({k: factor * v for k, v in r.items() if k.startswith("noise_")})
    return r


def _recorded(loss: torch.Tensor, alive: torch.Tensor) -> np.ndarray:
    """Per-seed losses for the history, NaN for the seeds that diverged."""
    return torch.where(alive, loss.detach(), torch.full_like(loss, math.nan)).cpu().numpy()


def _coverage(ens, gen, fixed_z, data) -> dict:
    """Mode coverage of every seed's generator on its fixed latents (NaN for diverged seeds),
    with the per-mode histograms behind it: ``counts`` (high-quality samples per mode) and
    ``nearest_counts`` (all samples by nearest mode), for mode-histogram heat maps."""
    with torch.no_grad():
        x = gen(ens.merged(ens.params, ("G",)), fixed_z).cpu()
    out = {"modes": [], "high_quality": [], "kl": [], "counts": [], "nearest_counts": []}
    std = float(data.std.reshape(-1)[0])
    k = data.centers.shape[0]
    for i in range(x.shape[0]):
        ok = bool(ens.alive[i]) and bool(torch.isfinite(x[i]).all())
        if ok:
            mc = mode_coverage(x[i], data.centers, std)
            mc["nearest_counts"] = nearest_counts(x[i], data.centers)
        else:
            mc = {"modes": math.nan, "high_quality": math.nan, "kl": math.nan,
                  "counts": [math.nan] * k, "nearest_counts": [math.nan] * k}
        for key in out:
            out[key].append(mc[key])
    return out
