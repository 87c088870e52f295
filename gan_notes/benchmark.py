r"""The Part III toy benchmark: every method, 10 seeds, the ring of 8 and the grid of 25.

Protocol (VEEGAN, PacGAN): train each method on the ring (8 modes, radius 1,
:math:`\sigma = 0.01`) and the grid (25 modes on :math:`\{-4,-2,0,2,4\}^2`,
:math:`\sigma = 0.05`), then score 2,500 generated samples per seed with
:func:`gan_notes.metrics.mode_coverage` (modes covered, high-quality fraction within
:math:`3\sigma`, KL of the mode histogram) and :func:`gan_notes.metrics.prdc` (precision,
recall), at log-spaced checkpoints (the learning curves) and at the end. Every cell (data set
x method) trains its seeds together with :func:`gan_notes.ensemble.train_ensemble`; a seed
whose loss turns NaN is recorded as diverged, with NaN metrics, and the summary counts it.
Beside the methods, the reference rows of :mod:`gan_notes.references` (noise, the data, the
data blurred, a collapse) are scored by the same code; :func:`gan_notes.references.marks`
says which cells beat them.

What is trained is fixed by a protocol (:data:`gan_notes.protocols.PROTOCOLS`: ``book``, the
CPU protocol of the chapters; ``pacgan``, PacGAN's released configuration; ``smoke``, for the
tests) and each method's own settings (:data:`METHODS`, with their sources and deviations in
:data:`SOURCES`).

Results: ``gan_notes/results/toy_benchmark.json`` (metadata, per-seed rows, learning curves)
and a CSV of the rows, shipped with the package so that the chapters find them in a Colab
runtime too; :mod:`gan_notes.benchmark_results` reads them back and summarises them. The
``pacgan`` protocol writes ``toy_benchmark_pacgan.json`` beside them.

Command line::

    python -m gan_notes.benchmark run [--protocol book|pacgan|smoke] [--methods ...] [--datasets ...]
                                      [--seeds 10] [--steps N] [--workers 2] [--device cuda]
                                      [--budget-minutes M] [--out PATH.json]
    python -m gan_notes.benchmark speed [--method non_saturating] [--seeds 10] [--steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import torch

from gan_notes import toy
from gan_notes.benchmark_results import FIELDS, RESULTS_PATH, save_results, summary
from gan_notes.ensemble import train_ensemble
from gan_notes.methods import build_networks
from gan_notes.objective import Method
from gan_notes.protocols import PROTOCOLS, Protocol
from gan_notes.references import beats_all, reference_rows
from gan_notes.train import train_gan

# The results file, its summary and the published anchors are gan_notes.benchmark_results'.
__all__ = ["METHODS", "SOURCES", "MIXTURES", "COST", "CURVE_METRICS", "PACGAN_METHODS", "PACGAN_RESULTS_PATH",
           "run_cell", "run_benchmark", "speed", "main"]

#: The methods: name -> spec. Settings not listed are the protocol's (:mod:`gan_notes.protocols`:
#: architecture, Adam's rate and betas, batch, latent, iterations).
METHODS: dict[str, Method] = {
    "minimax": Method(loss="minimax"),
    "non_saturating": Method(loss="non_saturating"),
    "lsgan": Method(loss="lsgan"),
    "wgan": Method(loss="wgan", clip=0.01, d_steps=5, optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5),
    "wgan_gp": Method(loss="wgan", penalty="gp", penalty_weight=10.0, d_steps=5, lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9)),
    "dragan": Method(penalty="dragan", penalty_weight=10.0),
    "hinge": Method(loss="hinge"),
    "began": Method(loss="began", began_gamma=0.5, began_lambda_k=1e-3),
    "sngan": Method(spectral_norm=True),
    "r1": Method(penalty="r1", penalty_weight=5.0),
    "unrolled": Method(unroll=5),
    "minibatch_disc": Method(minibatch=(5, 3)),
    "feature_matching": Method(feature_matching=True),
    "pacgan2": Method(pack=2),
    "pacgan3": Method(pack=3),
    "pacgan4": Method(pack=4),
    "instance_noise": Method(instance_noise=0.1, noise_anneal=True),
    "mode_seeking": Method(mode_seeking=1.0),
    "mixture": Method(mixture=5, mixture_beta=0.125),
    "d2gan": Method(loss="d2gan", d2gan_alpha=0.2, d2gan_beta=0.1),
    "dual_d": Method(loss="non_saturating", two_discriminators=True, d2_generator_loss="minimax", minibatch=(5, 3),
                     d2_activation="selu"),
    "dual_d_saturating": Method(loss="minimax", two_discriminators=True, minibatch=(5, 3), d2_activation="selu"),
}

#: Each method's source and settings, and where we deviate from it ("" = none beyond the protocol's).
SOURCES: dict[str, tuple[str, str]] = {
    "minimax": ("Goodfellow et al. 2014: the saturating generator loss log(1 - D(G(z)))", ""),
    "non_saturating": ("Goodfellow et al. 2014: -log D(G(z))", ""),
    "lsgan": ("Mao et al. 2017: a=0, b=c=1", "no factor 1/2 (the same optimum; Adam is scale-free)"),
    "wgan": ("Arjovsky et al. 2017: clip c=0.01, n_critic=5, RMSProp lr 5e-5", ""),
    "wgan_gp": ("Gulrajani et al. 2017, Algorithm 1: lambda=10, n_critic=5, Adam lr 1e-4, betas (0, 0.9)", ""),
    "dragan": ("Kodali et al. 2017: lambda=10, perturbation 0.5 std(x) U[0,1]", "Adam settings the protocol's"),
    "hinge": ("Lim & Ye 2017; Miyato et al. 2018", ""),
    "began": ("Berthelot et al. 2017: gamma=0.5, lambda_k=1e-3, L1 autoencoder D with ELU",
              "an autoencoder of one hidden layer with a 1-unit code (a bottleneck for 2-d data); Adam the protocol's"),
    "sngan": ("Miyato et al. 2018: spectral norm on every D layer, 1 power iteration, the standard (NS) loss", ""),
    "r1": ("Mescheder et al. 2018: R1 with gamma=10 (weight gamma/2 = 5)", "Adam instead of their RMSProp"),
    "unrolled": ("Metz et al. 2017: k=5 look-ahead D steps continuing D's Adam state", ""),
    "minibatch_disc": ("Salimans et al. 2016: minibatch features before D's head", "B=5 kernels of dimension C=3 (ours, for 2-d data)"),
    "feature_matching": ("Salimans et al. 2016: G matches the mean of D's last hidden layer", ""),
    "pacgan2": ("Lin et al. 2018: packing m=2; a D batch holds batch_size packs (m x batch_size samples)",
                "the protocol's D (3x64 ReLU), not their 3x200 maxout; a pilot with theirs (grid, 8,000 iterations, "
                "5 seeds) reached 47.5% HQ and 22.2 modes; the benchmark's cell ends near 5%, and D widened to 3x128 "
                "ReLU reached 9.0%"),
    "pacgan3": ("Lin et al. 2018: packing m=3", ""),
    "pacgan4": ("Lin et al. 2018: packing m=4", ""),
    "instance_noise": ("Sonderby et al. 2017: Gaussian noise on D's inputs", "std 0.1 annealed linearly to 0 (ours)"),
    "mode_seeking": ("Mao et al. 2019 (MSGAN): lambda_ms=1", ""),
    "mixture": ("Hoang et al. 2018 (MGAN): K generators, a classifier C, weight beta", "K=5, beta=0.125 (ours); C separate from D"),
    "d2gan": ("Nguyen et al. 2017: alpha=0.2, beta=0.1", ""),
    "dual_d": ("Zhang, Li & Yu 2018 (seed 003), eq. (5): G minimises -log D1(G(z)) + log D2(G(z)); D1 with "
               "minibatch discrimination, D2 with SELU", "MLPs, not their ResBlock networks; MD with B=5, C=3"),
    "dual_d_saturating": ("Zhang, Li & Yu 2018 (seed 003), eq. (6): the saturating form, "
                          "log(1 - D1(G(z))) + log D2(G(z)); the same networks", "as dual_d"),
}

MIXTURES = {"ring": toy.ring, "grid": toy.grid}

#: Relative cost of a cell (time per step / non_saturating's) under the book protocol, measured
#: with 10 seeds on one CPU thread (100 steps, beside a second busy process); the runner starts
#: the expensive cells first so that workers finish together. The cells with minibatch
#: discrimination (also dual_d's D1) were re-measured alone after its distances moved to
#: remedies.l1_distances.
COST = {"unrolled": 8.2, "dual_d_saturating": 4.7, "wgan_gp": 5.4, "dual_d": 4.7, "minibatch_disc": 4.1, "wgan": 3.4,
        "mixture": 2.2, "pacgan4": 1.9, "d2gan": 1.6, "dragan": 1.6, "pacgan3": 1.5, "sngan": 1.4, "r1": 1.4}


def _protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def _names(kind: str, given, valid) -> list[str]:
    names = list(valid) if given is None else list(given)
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise ValueError(f"unknown {kind} {unknown or names!r}; valid: {', '.join(valid)}")
    return names


def _positive(name, v):
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise ValueError(f"{name} must be a positive int, got {v!r}")


def run_cell(dataset: str, method: str, seeds: int | Sequence[int] | None = None, protocol: str = "book", device=None,
             steps: int | None = None, progress: bool = False) -> tuple[list[dict], dict]:
    r"""Train one cell (data set x method) for all seeds at once under ``protocol``.

    Returns one row per seed (:data:`~gan_notes.benchmark_results.FIELDS`) and the cell's
    learning curve: ``{"dataset", "method", "steps": [...], metric: [[value per seed] per
    checkpoint]}`` for modes, high_quality, kl, precision and recall at the protocol's
    log-spaced checkpoints. ``wall_time_s`` is the batched training time divided by the
    number of seeds; ``steps`` overrides the protocol's iterations on ``dataset``
    (:meth:`~gan_notes.protocols.Protocol.steps_for`), and ``seeds`` its seeds (None: the
    protocol's count).

    See also
    --------
    run_benchmark; gan_notes.ensemble.train_ensemble.
    """
    _names("dataset", [dataset], MIXTURES)
    _names("method", [method], METHODS)
    _positive("steps", steps)
    p = _protocol(protocol)
    steps = p.steps_for(dataset) if steps is None else steps
    res = train_ensemble(METHODS[method], MIXTURES[dataset](), p.seeds if seeds is None else seeds, **p.trainer_kwargs(steps), on_diverge="record",
                         device=device, progress=progress)
    rows = []
    for s, mt, div in zip(res.seeds, res.metrics, res.diverged):
        rows.append({"dataset": dataset, "method": method, "seed": s, **{k: float(mt[k]) for k in FIELDS[3:8]},
                     "wall_time_s": res.wall_time_per_seed_s, "diverged": bool(div)})
    curve = {"dataset": dataset, "method": method, "steps": [e["step"] for e in res.evals],
             **{k: [[float(v) for v in e[k]] for e in res.evals] for k in CURVE_METRICS}}
    return rows, curve


#: The metrics a learning curve records at each checkpoint.
CURVE_METRICS = ("modes", "high_quality", "kl", "precision", "recall")


def _cell_job(args):
    torch.set_num_threads(1)  # toy networks: one thread per worker is fastest
    return run_cell(*args)


def run_benchmark(
    methods: Sequence[str] | None = None, datasets: Sequence[str] | None = None, seeds: int | None = None,
    protocol: str = "book", workers: int = 1, device=None, log=print, steps: int | None = None, references: bool = True,
    budget_s: float | None = None,
) -> dict:
    r"""Run every (data set, method) cell; return ``{"metadata", "rows", "curves"}``.

    Cells run one after another, or in ``workers`` processes (one CPU thread each), the
    expensive ones first (:data:`COST`). With ``references``, the reference rows of
    :func:`gan_notes.references.reference_rows` (method ``"ref:<kind>"``) are scored by the
    same code and appended. Rows come back in the order data set, method, seed.

    With ``budget_s`` (a time box, for a lent accelerator), the iterations are planned: each
    cell's step time is measured on 50 steps first, and every cell runs
    ``min(protocol steps, the steps that fit the budget)`` iterations (in multiples of 100;
    the metadata records the plan). Only for protocols without a learning-rate schedule, whose
    truncated run is the same run stopped early.

    See also
    --------
    save_results, summary, gan_notes.references.marks.
    """
    p = _protocol(protocol)
    methods, datasets = _names("method", methods, METHODS), _names("dataset", datasets, MIXTURES)
    seeds = p.seeds if seeds is None else seeds
    for name, v in (("seeds", seeds), ("workers", workers), ("steps", steps)):
        _positive(name, v)
    start, plan = time.perf_counter(), None
    if budget_s is not None:
        steps, plan = _plan(p, methods, datasets, seeds, device, budget_s, workers, log)
    jobs = sorted(((d, m, seeds, protocol, device, steps) for d in datasets for m in methods), key=lambda j: -COST.get(j[1], 1.0))
    rows, curves = [], []
    if workers == 1:
        results = (run_cell(*j, progress=log is not None and device is not None and str(device) != "cpu") for j in jobs)
    else:
        results = ProcessPoolExecutor(workers).map(_cell_job, jobs)
    for job, (cell_rows, curve) in zip(jobs, results):
        rows += cell_rows
        curves.append(curve)
        if log:
            s = summary(cell_rows)[job[0], job[1]]
            log(f"{job[0]:>4} {job[1]:<17} modes {s['modes'][0]:5.1f}  HQ {100 * s['high_quality'][0]:5.1f}%  "
                f"KL {s['kl'][0]:6.3f}  diverged {s['diverged']}/{s['n']}  {cell_rows[0]['wall_time_s']:.1f} s/seed "
                f"[{time.perf_counter() - start:.0f} s]", flush=True)
    train_time = time.perf_counter() - start
    if references:
        for d in datasets:
            rows += reference_rows(d, MIXTURES[d](), seeds, p.n_eval)
    meta = {
        "protocol": p.as_dict(), "steps": {d: steps or p.steps_for(d) for d in datasets}, "seeds": seeds, "methods": methods, "datasets": datasets,
        "workers": workers, "device": str(device or "cpu"),
        "device_name": torch.cuda.get_device_name(device) if device is not None and torch.device(device).type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__, "python": platform.python_version(), "git_commit": _git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "total_wall_time_s": train_time, "plan": plan, "cpu_count": os.cpu_count(), "threads_per_worker": torch.get_num_threads() if workers == 1 else 1,
        "wall_time_note": "wall_time_s per row = batched time of its cell / seeds; total_wall_time_s = all cells, "
                          "evaluation included, references excluded",
    }
    order = {(d, m): i for i, (d, m) in enumerate((d, m) for d in datasets for m in methods)}
    rank = lambda r: (datasets.index(r["dataset"]), order.get((r["dataset"], r["method"]), len(order)), r["method"], r["seed"])  # noqa: E731
    rows.sort(key=rank)
    curves.sort(key=lambda c: order[c["dataset"], c["method"]])
    return {"metadata": meta, "rows": rows, "curves": curves}


def _plan(p: Protocol, methods, datasets, seeds, device, budget_s, workers, log) -> tuple[int, dict]:
    """Steps per cell that fit ``budget_s``, from 50 timed steps of every cell (see run_benchmark)."""
    if p.lr_decay:
        raise ValueError(f"budget_s needs a protocol without a learning-rate schedule; {p.name!r} decays its rates")
    if not (isinstance(budget_s, (int, float)) and not isinstance(budget_s, bool) and budget_s > 0):
        raise ValueError(f"budget_s must be a positive number of seconds, got {budget_s!r}")
    t0, per_step = time.perf_counter(), {}
    for d in datasets:
        for m in methods:
            kw = {**p.trainer_kwargs(60), "eval_steps": None, "n_eval": 10}
            times = [train_ensemble(METHODS[m], MIXTURES[d](), seeds, **{**kw, "steps": n}, device=device,
                                    progress=False).wall_time_s for n in (10, 60)]
            per_step[f"{d}/{m}"] = (times[1] - times[0]) / 50  # compilation and warm-up cancel out
    left = budget_s - (time.perf_counter() - t0)
    n_ckpt = len(p.eval_steps()) + 1
    eval_s = n_ckpt * seeds * 0.25 * len(per_step)  # about 0.25 s per seed and checkpoint (prdc on 2,500 points)
    fit = int(max(left - eval_s, 0) * workers / sum(per_step.values()) / 100) * 100
    steps = max(100, min(p.steps, fit))
    plan = {"budget_s": budget_s, "seconds_per_step": per_step, "planned_steps": steps, "protocol_steps": p.steps,
            "predicted_s": steps * sum(per_step.values()) / workers + eval_s + (time.perf_counter() - t0)}
    if log:
        log(f"plan: {steps} of {p.steps} iterations per cell fit {budget_s:.0f} s "
            f"(predicted {plan['predicted_s']:.0f} s; {sum(per_step.values()) * 1e3:.1f} ms per step of all cells)", flush=True)
    return steps, plan


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def speed(method: str = "non_saturating", dataset: str = "ring", seeds: int = 10, steps: int = 300,
          protocol: str = "book", devices: Sequence[str] | None = None, log=print) -> list[dict]:
    r"""Wall time of S seeds trained one after another with :func:`~gan_notes.train.train_gan`
    against the same S seeds batched with :func:`~gan_notes.ensemble.train_ensemble`, measured
    in the same process (CPU; CUDA too when available) at the protocol's sizes, and their ratio.

    Both runs use torch's current number of threads; times exclude evaluation.
    """
    p = _protocol(protocol)
    _names("method", [method], METHODS)
    data = MIXTURES[_names("dataset", [dataset], MIXTURES)[0]]()
    spec = METHODS[method]
    if spec.loss not in ("minimax", "non_saturating", "lsgan", "wgan", "hinge") or spec.pack > 1 or spec.minibatch \
            or spec.spectral_norm or spec.feature_matching or spec.mode_seeking or spec.mixture or spec.unroll \
            or spec.noise_anneal or spec.optimizer != "adam":
        raise ValueError(f"speed compares with train_gan, which cannot run {method!r}")
    devices = list(devices) if devices else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    kw = p.trainer_kwargs(steps)
    out = []
    for dev in devices:
        t0 = time.perf_counter()
        for s in range(seeds):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)  # the batched trainer's networks of seed s
                nets = build_networks(spec, p.latent_dim, 2, p.d_hidden, g_hidden=p.g_hidden, g_batch_norm=p.g_batch_norm,
                                      d_maxout=p.d_maxout, init_std=p.init_std)
            train_gan(nets["G"], nets["D"], data, latent_dim=p.latent_dim, steps=steps, loss=spec.loss, batch_size=p.batch_size,
                      lr_g=p.lr, lr_d=p.lr, betas=p.betas, d_steps=spec.d_steps, penalty=spec.penalty,
                      penalty_weight=spec.penalty_weight, instance_noise=spec.instance_noise, clip=spec.clip, seed=s,
                      device=dev, progress=False)
        seq = time.perf_counter() - t0
        # the same work as train_gan: constant rates, no weight average, no checkpoints
        res = train_ensemble(spec, data, seeds, **{**kw, "n_eval": 10, "eval_steps": None, "lr_decay": False, "ema": 0.0},
                             device=dev, progress=False)
        row = {"device": dev, "method": method, "seeds": seeds, "steps": steps, "threads": torch.get_num_threads(),
               "sequential_s": seq, "batched_s": res.wall_time_s, "speedup": seq / res.wall_time_s}
        out.append(row)
        if log:
            log(f"{dev}: {seeds} seeds x {steps} steps of {method} (protocol {protocol}: G {p.g_hidden}"
                f"{' with batch norm' if p.g_batch_norm else ''}, D {p.d_hidden}, "
                f"batch {p.batch_size}; {row['threads']} thread(s)): one seed at a time {seq:.1f} s, batched {res.wall_time_s:.1f} s, "
                f"speed-up {row['speedup']:.1f}x")
    return out


#: The prepared accelerator command: PacGAN's protocol for GAN and PacGAN2/3/4 (their Table 1).
PACGAN_METHODS = ("non_saturating", "pacgan2", "pacgan3", "pacgan4")
PACGAN_RESULTS_PATH = RESULTS_PATH[:-5] + "_pacgan.json"


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m gan_notes.benchmark", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmark and write the results")
    r.add_argument("--protocol", default="book", choices=list(PROTOCOLS))
    r.add_argument("--methods", nargs="+", default=None, help=f"default: all of {', '.join(METHODS)}")
    r.add_argument("--datasets", nargs="+", default=None, help="default: ring grid")
    r.add_argument("--seeds", type=int, default=None, help="seeds per cell (default: the protocol's, 10)")
    r.add_argument("--steps", type=int, default=None, help="override the protocol's iterations")
    r.add_argument("--workers", type=int, default=1, help="processes, one CPU thread each (2 on a 2-core machine)")
    r.add_argument("--device", default=None, help="e.g. cuda (default: CPU)")
    r.add_argument("--budget-minutes", type=float, default=None,
                   help="time box: plan the iterations from measured step times (protocols without lr decay)")
    r.add_argument("--out", default=None, help="default: gan_notes/results/toy_benchmark.json "
                                               "(toy_benchmark_pacgan.json for --protocol pacgan)")
    s = sub.add_parser("speed", help="one seed at a time (train_gan) vs batched wall time")
    s.add_argument("--method", default="non_saturating")
    s.add_argument("--dataset", default="ring")
    s.add_argument("--seeds", type=int, default=10)
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.cmd == "speed":
        torch.set_num_threads(args.threads)
        speed(args.method, args.dataset, args.seeds, args.steps)
        return 0
    torch.set_num_threads(1)
    results = run_benchmark(args.methods, args.datasets, args.seeds, args.protocol, args.workers, device=args.device,
                            steps=args.steps, budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes)
    summ = summary(results["rows"])
    for dataset in results["metadata"]["datasets"]:
        winners = [m for m in results["metadata"]["methods"] if beats_all(summ, dataset, m)]
        print(f"{dataset}: beat every reference on modes, HQ and KL by 2 s.e.: {', '.join(winners) or 'none'}")
    out = args.out or (PACGAN_RESULTS_PATH if args.protocol == "pacgan" else RESULTS_PATH)
    paths = save_results(results, out)
    print(f"wrote {paths[0]} and {paths[1]} ({results['metadata']['total_wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
