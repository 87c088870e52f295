r"""Many seeds of one toy GAN trained at once: a batched multi-seed trainer (Part III).

*S* runs of one configuration differ only in their seed, so their networks have the same
shapes. We stack the *S* copies of each parameter along a new leading axis
(:func:`torch.func.stack_module_state`) and write the losses of **one** seed as a pure
function of its parameters (:func:`torch.func.functional_call`); :func:`torch.func.vmap`
maps that function over the seed axis, so every layer runs as one batched matrix product
for all seeds. Seeds never interact: the loss we differentiate is the sum of the per-seed
losses, :math:`\nabla_{\theta_s}\sum_r L_r = \nabla_{\theta_s} L_s`, and Adam is elementwise,
so one Adam on the stacked tensors takes every seed's own Adam step.

**Why vmap, not hand-written batched matrix products.** In pilot runs on the toy MLPs (one
CPU thread), a hand-written ``torch.baddbmm`` network was 5-10% faster, but vmap takes *any*
module unchanged: minibatch discrimination, BEGAN's autoencoder, the mixture of generators and
the unrolled look-ahead of :mod:`gan_notes.remedies` run under it as written. Measured since,
one batched linear layer of the book protocol (10 seeds, 128 x 64 by 64 x 64) costs the same
inside vmap as ``torch.baddbmm`` (about 0.12 ms, near the thread's matrix-product rate), so
what a hand-written network would save is Python time. Most of that was
:func:`torch.func.functional_call` swapping each parameter into the module on each call;
networks are evaluated with :func:`gan_notes.models.call` instead, which runs the same
operations on the parameter tensors directly (the same numbers, bit for bit, tested).
On the CPU, :func:`torch.compile` of the vmapped losses made a step 2-3 times *slower* (torch
2.13, one thread: 25 against 10 ms for 10 seeds of the book protocol; a vmapped 3-layer MLP's
forward and backward 5.1-7.0 against 2.4 ms), so the trainer runs eagerly. What is left is
about 3.7 ms of fixed cost per step and 1 ms per seed, of which the batched matrix products
are about 0.6 ms (``python -m gan_notes.benchmark speed``, one thread, both in one run: 10 seeds
batched 12 ms a step against 40 ms for ten one-seed runs, 3.4 times faster).

**Random numbers.** ``rng="batched"`` (the default) draws every seed's batch in one call
from one generator on the training device, seeded from the list of seeds: no per-seed loop
and no host round trip in the step loop, so a run is reproducible given the same seeds, device
and settings. ``rng="per_seed"`` keeps one state of torch's CPU generator per seed and draws
with the same calls, in the same order, as :func:`gan_notes.train.train_gan`: seed *s*
then reproduces ``train_gan(..., seed=s)`` up to float rounding (tested), at the cost of a
Python loop over seeds per draw. Networks are built after ``torch.manual_seed(seed)`` in
both. The caller's generator state is restored at the end.

**No host synchronisation in the step loop.** Seeds never interact, so a seed whose loss
turns NaN spoils only its own parameters (the gradient of :math:`\sum_s L_s` in
:math:`\theta_r` is :math:`\nabla L_r`, and Adam is elementwise): the loop does not stop to
look. The losses are kept on the device; at each evaluation checkpoint and at the end, a seed
with a non-finite loss is reported (``on_diverge="raise"``: :class:`~gan_notes.train.TrainingDiverged`
naming the first bad step, the loss and the seeds) or recorded (``"record"``, what the
benchmark uses: its metrics are NaN and :attr:`EnsembleResult.diverged` says so).

**Averaged generator.** With ``ema`` > 0 the trainer keeps an exponential moving average of
G's weights, :math:`\bar\theta \leftarrow \beta\bar\theta + (1-\beta)\theta` after each G step
(Yazıcı et al. 2019), and evaluates it instead of the last iterate.
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
from torch.func import stack_module_state, vmap
from tqdm.auto import tqdm

from gan_notes import lipschitz, losses, models
from gan_notes.methods import SeedLosses, build_networks
from gan_notes.metrics import mode_coverage, nearest_counts, prdc
from gan_notes.objective import Method
from gan_notes.train import TrainingDiverged

__all__ = ["EnsembleResult", "train_ensemble", "checkpoints", "REAL_EVAL_SEED", "RNG_MODES"]


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
    diverged_at : list of int or None
        The first step whose loss was not finite, per seed.
    d_loss, g_loss : arrays (steps, S)
    samples : array (S, n_eval, d)
        Final generated samples (fixed latents per seed, as ``train_gan``'s snapshots).
    evals : list of dict
        ``{"step", "modes", "high_quality", "kl", "precision", "recall", "counts",
        "nearest_counts"}`` (lists over seeds) at each checkpoint (``eval_every``,
        ``eval_steps``): ``counts`` are the high-quality samples per mode and ``nearest_counts``
        all samples by nearest mode (K numbers each); NaN for a seed diverged by then.
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
    diverged_at: list[int | None]
    d_loss: np.ndarray
    g_loss: np.ndarray
    samples: np.ndarray
    evals: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    wall_time_per_seed_s: float = 0.0
    device: str = "cpu"


_METRIC_KEYS = ("modes", "high_quality", "kl", "precision", "recall", "density", "coverage")
RNG_MODES = ("batched", "per_seed")


class _Ensemble:
    """The stacked networks, their optimisers and the random streams."""

    def __init__(self, method, data, seeds, latent_dim, nets_kw, batch_size, lr_g, lr_d, betas, device, rng):
        self.m, self.data, self.seeds = method, data, list(seeds)
        self.latent_dim, self.batch = latent_dim, batch_size
        self.dim = int(data.centers.shape[1])
        per_seed, self.sn_v = [], {}
        for s in self.seeds:
            torch.manual_seed(s)
            nets = build_networks(method, latent_dim, self.dim, **nets_kw)
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
        # Adam fused (one kernel per tensor for the whole update; about half foreach's time on
        # the stacked toy tensors), RMSProp foreach (one kernel per operation over all tensors)
        opt = (lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=betas, fused=True)) if method.optimizer == "adam" else \
            (lambda ps, lr: torch.optim.RMSprop(ps, lr=lr, foreach=True))
        self.opt_g = opt(list(self.params["G"].values()), lr_g)
        self.opt_d = opt([p for n in method.d_names for p in self.params[n].values()], lr_d)
        self.rng_mode = rng
        if rng == "per_seed":
            self.rng = [torch.manual_seed(s).get_state() for s in self.seeds]  # train_gan's start state
        else:
            key = int(np.random.SeedSequence(self.seeds).generate_state(1)[0])
            self.gen = torch.Generator(device).manual_seed(key)
            self.centers = data.centers.to(device, torch.float32)
            self.std = data.std.to(device, torch.float32)
            self.weights = data.weights.to(device, torch.float32)
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
        return models.call(self.base[name], params[name], x)

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

    # -- random numbers -------------------------------------------------------------------
    def _batched(self, what):
        """``what`` lists (key, kind, shape per seed); one draw of (S, *shape) per key."""
        S, g, dev, out = len(self.seeds), self.gen, self.device, {}
        for key, kind, shape in what:
            if kind == "data":  # the mixture, sampled as toy.Mixture.sample: a mode, then its Gaussian
                n = shape[0]
                idx = torch.multinomial(self.weights, S * n, replacement=True, generator=g)
                noise = torch.randn(S * n, self.dim, generator=g, device=dev)
                out[key] = (self.centers[idx] + noise * self.std[idx, None]).view(S, n, self.dim)
            elif kind == "normal":
                out[key] = torch.randn(S, *shape, generator=g, device=dev)
            else:
                out[key] = torch.rand(S, *shape, generator=g, device=dev)
        return out

    def _per_seed(self, what):
        """train_gan's calls, in its order, from each seed's own CPU stream."""
        out = []
        for i in range(len(self.seeds)):
            torch.set_rng_state(self.rng[i])
            out.append({key: self.data.sample(shape[0]) if kind == "data" else
                        (torch.randn(*shape) if kind == "normal" else torch.rand(*shape)) for key, kind, shape in what})
            self.rng[i] = torch.get_rng_state()
        return {k: torch.stack([o[k] for o in out]).to(self.device) for k in out[0]}

    def draw(self, what):
        return self._per_seed(what) if self.rng_mode == "per_seed" else self._batched(what)

    def draw_d(self):
        m, n, d = self.m, self.m.pack * self.batch, self.dim
        what = [("real", "data", (n,)), ("z", "normal", (n, self.latent_dim))]
        if m.instance_noise:
            what += [("noise_real", "normal", (n, d)), ("noise_fake", "normal", (n, d))]
        if m.penalty == "gp":  # penalties.gradient_penalty: one interpolation weight per D input row
            what.append(("eps", "uniform", (self.batch, 1)))
        elif m.penalty == "dragan":  # penalties.dragan_penalty: rand_like(real)
            what.append(("u", "uniform", (self.batch, m.pack * d)))
        return self.draw(what)

    def draw_g(self):
        m, n, d = self.m, self.m.pack * self.batch, self.dim
        what = [("z", "normal", (n, self.latent_dim))]
        if m.instance_noise:
            what.append(("noise_fake", "normal", (n, d)))
        if m.mode_seeking:
            what.append(("z2", "normal", (n, self.latent_dim)))
        if m.feature_matching or m.unroll:
            what.append(("real", "data", (n,)))
        return self.draw(what)

    # -- bookkeeping ----------------------------------------------------------------------
    def merged(self, params, names, detach=False):
        """Per-network dicts of parameters and buffers, as functional_call takes them."""
        return {n: {**{k: (v.detach() if detach else v) for k, v in params[n].items()}, **self.buffers[n]} for n in names}


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


def checkpoints(steps: int, per_decade: int = 3, first: int = 100) -> list[int]:
    r"""Log-spaced evaluation steps: ``per_decade`` per factor of 10 from ``first``, rounded,
    and always ``steps`` itself (e.g. 100, 215, 464, 1000, ..., ``steps``), for learning curves."""
    for name, v in (("steps", steps), ("per_decade", per_decade), ("first", first)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    out, i = set(), 0
    while (t := round(first * 10 ** (i / per_decade))) < steps:
        out.add(t)
        i += 1
    return sorted(out | {steps})


def train_ensemble(
    method: Method,
    data,
    seeds: int | Sequence[int] = 10,
    *,
    latent_dim: int = 2,
    hidden: Sequence[int] = (128, 128, 128),
    g_hidden: Sequence[int] | None = None,
    g_batch_norm: bool = False,
    d_maxout: int = 0,
    init_std: float | None = None,
    steps: int = 2500,
    batch_size: int = 256,
    lr_g: float = 1e-3,
    lr_d: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    lr_decay: bool = False,
    ema: float = 0.0,
    n_eval: int = 2500,
    eval_every: int = 0,
    eval_steps: Sequence[int] | None = None,
    rng: str = "batched",
    on_diverge: str = "raise",
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> EnsembleResult:
    r"""Train ``S`` seeds of one method on one toy mixture at once, and evaluate each.

    Every seed plays the game of ``method`` with Adam on its own parameters: per iteration
    ``method.d_steps`` D steps, then one G step, each on fresh batches. The *S* copies are
    stacked and evaluated with :func:`torch.func.vmap`; the loss differentiated is
    :math:`\sum_s L_s(\theta_s)`, whose gradient in :math:`\theta_s` is seed *s*'s own.
    With ``rng="per_seed"``, seed *s* reproduces :func:`gan_notes.train.train_gan` with
    ``seed=s`` for the plain losses (same initialisation, same random draws; float rounding aside).

    At each checkpoint and at the end each seed's generator (its average with ``ema``) maps
    ``n_eval`` fixed latents (``train_gan``'s snapshot latents, seed ``s + 1``) to samples,
    scored by :func:`~gan_notes.metrics.mode_coverage` (3 standard deviations) and
    :func:`~gan_notes.metrics.prdc` (k = 5) against ``n_eval`` real samples drawn with seed
    ``REAL_EVAL_SEED``.

    Parameters
    ----------
    method : Method
    data : gan_notes.toy.Mixture
        E.g. :func:`gan_notes.toy.ring` or :func:`gan_notes.toy.grid`.
    seeds : int or sequence of int
        ``S`` (seeds 0..S-1) or the seeds themselves.
    latent_dim, hidden, steps, batch_size, lr_g, lr_d, betas
        As in :func:`~gan_notes.train.train_gan` (``method`` may override the rates and betas).
        ``hidden`` are D's widths (and G's unless ``g_hidden``).
    g_hidden, g_batch_norm, d_maxout, init_std
        The architecture (:func:`gan_notes.methods.build_networks`; :mod:`gan_notes.protocols`).
    lr_decay : bool
        Decay both learning rates linearly, :math:`\eta_t = \eta\,(1 - (t-1)/T)` at G step
        *t* of *T* (all D steps of an iteration share it): lets the generator settle onto the
        modes at the end instead of jittering around them. Off: constant rates, as ``train_gan``.
    ema : float
        Decay :math:`\beta` of the generator's weight average (0: evaluate the last iterate).
    n_eval : int
        Samples per seed for the metrics (the protocol's 2,500).
    eval_every, eval_steps
        Also evaluate every ``eval_every`` G steps, and at the steps ``eval_steps`` (e.g.
        :func:`checkpoints`), besides step 0 when either is given.
    rng : {"batched", "per_seed"}
        How random numbers are drawn (see the module docstring).
    on_diverge : {"raise", "record"}
        What a NaN or infinite loss does, found at the next checkpoint: raise
        :class:`~gan_notes.train.TrainingDiverged` (naming its first step, loss and seeds), or
        record the seed as failed (the others are unaffected).
    device : torch device, optional
        Default CPU.
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
    if rng not in RNG_MODES:
        raise ValueError(f"rng must be one of {RNG_MODES}, got {rng!r}")
    if isinstance(ema, bool) or not (0 <= ema < 1):
        raise ValueError(f"ema must be in [0, 1), got {ema!r}")
    marks = set(eval_steps or ())
    if any(isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= steps for t in marks):
        raise ValueError(f"eval_steps must be ints in [0, steps], got {eval_steps!r}")
    if eval_every:
        marks |= set(range(0, steps + 1, eval_every))
    if marks:
        marks.add(0)
    device = torch.device(device) if device is not None else torch.device("cpu")
    lr_g = method.lr_g if method.lr_g is not None else lr_g
    lr_d = method.lr_d if method.lr_d is not None else lr_d
    betas = method.betas if method.betas is not None else betas
    if progress is None:
        progress = os.environ.get("TQDM_DISABLE", "") not in ("1", "true", "True")
    S, m = len(seeds), method
    nets_kw = {"hidden": hidden, "g_hidden": g_hidden, "g_batch_norm": g_batch_norm, "d_maxout": d_maxout, "init_std": init_std}
    hist = torch.full((2, steps, S), math.nan, device=device)  # D's and G's losses, kept on the device
    evals: list[dict] = []
    with torch.random.fork_rng(devices=[]):  # the caller's generator state is left untouched
        start = time.perf_counter()
        ens = _Ensemble(m, data, seeds, latent_dim, nets_kw, batch_size, lr_g, lr_d, betas, device, rng)
        ens.losses = SeedLosses(m, ens.base)
        fixed_z = torch.stack([torch.randn(n_eval, latent_dim, generator=torch.Generator().manual_seed(s + 1)) for s in seeds]).to(device)
        real_ref = data.sample(n_eval, generator=torch.Generator().manual_seed(REAL_EVAL_SEED))
        g_avg = {k: v.detach().clone() for k, v in ens.params["G"].items()} if ema else None
        k_began = torch.zeros(S, device=device)
        gen = vmap(lambda p, z: ens.call("G", p, z))
        d_fn, g_fn = vmap(ens.losses.d_loss), vmap(ens.losses.g_loss)
        status = _Status(seeds, on_diverge)
        eval_time = 0.0

        def evaluate(t):
            nonlocal eval_time
            t0 = time.perf_counter()
            status.update(hist, t)
            g_params = {**ens.params["G"], **(g_avg or {})}
            evals.append({"step": t, **_scores(ens, gen, g_params, fixed_z, data, real_ref, status)})
            eval_time += time.perf_counter() - t0

        if 0 in marks:
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
                ens.opt_d.zero_grad(set_to_none=True)
                loss_d.sum().backward()
                ens.opt_d.step()
                if m.clip is not None:
                    with torch.no_grad():
                        torch._foreach_clamp_min_(ens.opt_d.param_groups[0]["params"], -m.clip)
                        torch._foreach_clamp_max_(ens.opt_d.param_groups[0]["params"], m.clip)
                if m.loss == "began":
                    k_began = vmap(lambda k, a: losses.began_k_update(k, a[0], a[1], m.began_gamma, m.began_lambda_k))(k_began, aux)
            hist[0, t - 1] = loss_d.detach()
            r = _scaled(ens.draw_g(), anneal)
            if m.unroll:  # the look-ahead continues D's live Adam state (Metz et al.)
                r["adam_m"], r["adam_v"], ens.losses.adam = ens.adam_moments()
            pg = {**ens.merged(ens.params, ("G",)), **ens.merged(ens.d_params_for_round(), m.d_names, detach=True)}
            loss_g = g_fn(pg, r)
            ens.opt_g.zero_grad(set_to_none=True)
            loss_g.sum().backward()
            ens.opt_g.step()
            hist[1, t - 1] = loss_g.detach()
            if g_avg is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(list(g_avg.values()), [ens.params["G"][k] for k in g_avg], 1 - ema)
            if t in marks and t != steps:
                evaluate(t)
        wall = time.perf_counter() - start - eval_time  # training only
        evaluate(steps)  # always: the final scores (and the divergence check) come from here
        status.check_samples()
    final = evals[-1] if (steps in marks) else evals.pop()
    metrics = [{k: final[k][i] for k in _METRIC_KEYS} for i in range(S)]
    with torch.no_grad():
        samples = gen({"G": {**ens.params["G"], **(g_avg or {}), **ens.buffers["G"]}}, fixed_z).cpu()
    return EnsembleResult(
        seeds=seeds, metrics=metrics, diverged=[not a for a in status.alive], errors=status.errors,
        diverged_at=status.first_bad, d_loss=hist[0].cpu().numpy(), g_loss=hist[1].cpu().numpy(),
        samples=samples.numpy(), evals=evals, wall_time_s=wall, wall_time_per_seed_s=wall / S, device=str(device),
    )


class _Status:
    """Which seeds have diverged, read from the loss history at checkpoints (the only syncs)."""

    def __init__(self, seeds, on_diverge):
        self.seeds, self.on_diverge = seeds, on_diverge
        self.alive = [True] * len(seeds)
        self.errors: list[str | None] = [None] * len(seeds)
        self.first_bad: list[int | None] = [None] * len(seeds)

    def update(self, hist, t):
        if t == 0:
            return
        h = hist[:, :t].cpu()
        bad = ~torch.isfinite(h)
        for i in range(len(self.seeds)):
            if not self.alive[i] or not bool(bad[:, :, i].any()):
                continue
            step = int(bad[:, :, i].any(0).nonzero()[0]) + 1
            who = "discriminator" if bool(bad[0, step - 1, i]) else "generator"
            self.alive[i], self.first_bad[i] = False, step
            self.errors[i] = f"step {step}: the {who} loss is {float(h[0 if who[0] == 'd' else 1, step - 1, i])}"
        self._raise()

    def check_samples(self):
        for i, a in enumerate(self.alive):
            if not a and self.errors[i] is None:
                self.errors[i] = "the generator's samples are not finite"
        self._raise()

    def _raise(self):
        dead = [i for i, a in enumerate(self.alive) if not a]
        if dead and self.on_diverge == "raise":
            what = "; ".join(f"seed {self.seeds[i]}: {self.errors[i]}" for i in dead)
            raise TrainingDiverged(f"a loss is not finite ({what}); lower the learning rate or check the data")


def _scaled(r: dict, factor: float) -> dict:
    """Instance noise scaled by the annealing factor."""
    if factor != 1.0:
        r.update({k: factor * v for k, v in r.items() if k.startswith("noise_")})
    return r


def _scores(ens, gen, g_params, fixed_z, data, real_ref, status) -> dict:
    """Every seed's metrics on its fixed latents (NaN for diverged seeds), with the per-mode
    histograms behind them: ``counts`` (high-quality samples per mode) and ``nearest_counts``
    (all samples by nearest mode), for mode-histogram heat maps."""
    with torch.no_grad():
        x = gen({"G": {**g_params, **ens.buffers["G"]}}, fixed_z).cpu()
    out = {k: [] for k in (*_METRIC_KEYS, "counts", "nearest_counts")}
    std = float(data.std.reshape(-1)[0])
    k = data.centers.shape[0]
    alive = status.alive
    for i in range(x.shape[0]):
        if alive[i] and not bool(torch.isfinite(x[i]).all()):
            alive[i] = False  # finite losses, non-finite samples: counted as diverged too
        if alive[i]:
            mc = mode_coverage(x[i], data.centers, std)
            mc["nearest_counts"] = nearest_counts(x[i], data.centers)
            mc.update(prdc(real_ref, x[i]))
        else:
            mc = {**{key: math.nan for key in _METRIC_KEYS}, "counts": [math.nan] * k, "nearest_counts": [math.nan] * k}
        for key in out:
            out[key].append(mc[key])
    return out
