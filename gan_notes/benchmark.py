r"""The Part III toy benchmark: every method, 10 seeds, the ring of 8 and the grid of 25.

Protocol (VEEGAN, PacGAN): train each method on the ring (8 modes, radius 1,
:math:`\sigma = 0.01`) and the grid (25 modes on :math:`\{-4,-2,0,2,4\}^2`,
:math:`\sigma = 0.05`), then score 2,500 generated samples per seed with
:func:`gan_notes.metrics.mode_coverage` (modes covered, high-quality fraction within
:math:`3\sigma`, KL of the mode histogram) and :func:`gan_notes.metrics.prdc` (precision,
recall). Every cell (data set x method) trains its seeds together with
:func:`gan_notes.ensemble.train_ensemble`; a seed whose loss turns NaN is recorded as
diverged, with NaN metrics, and the summary counts it.

Results: ``gan_notes/results/toy_benchmark.json`` (metadata and per-seed rows) and a CSV of
the rows, shipped with the package so that the chapters find them in a Colab runtime too;
:mod:`gan_notes.benchmark_results` reads them back, summarises them and holds the published
anchors (its names are importable from here as well).

Profiles (:data:`SIZES`): ``full`` trains 1,500 steps of ReLU MLPs with three hidden layers
of 64 units, batches of 128, Adam (lr 1e-3, betas (0.5, 0.999)) with the learning rate decayed
linearly to 0 (in a pilot, 4 seeds on the ring at 1,000 steps, the decay raised the modes found from 6-8 to 8 of 8);
smaller than Chapter 06's networks so that all 44 cells x 10 seeds fit a budget of minutes.
``smoke`` runs everything in seconds, for the tests.

Command line::

    python -m gan_notes.benchmark run [--profile full|smoke] [--methods ...] [--datasets ...]
                                      [--seeds 10] [--steps N] [--workers 2] [--out PATH.json]
    python -m gan_notes.benchmark speed [--method non_saturating] [--seeds 10] [--steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import torch

from gan_notes import models, toy
from gan_notes.benchmark_results import FIELDS, GOALS, RESULTS_PATH, goals, save_results, summary
from gan_notes.ensemble import train_ensemble
from gan_notes.objective import Method
from gan_notes.train import train_gan

# The results file, its summary and the published anchors are gan_notes.benchmark_results'.
__all__ = ["METHODS", "SOURCES", "MIXTURES", "SIZES", "COST", "run_cell", "run_benchmark", "speed", "main"]

#: The methods: name -> spec. Settings not listed are the trainer's (Adam, lr 1e-3,
#: betas (0.5, 0.999), batch 256, 2-D latent, ReLU MLPs; see SIZES).
METHODS: dict[str, Method] = {
    "minimax": Method(loss="minimax"),
    "non_saturating": Method(loss="non_saturating"),
    "lsgan": Method(loss="lsgan"),
    "wgan": Method(loss="wgan", clip=0.01, d_steps=5),
    "wgan_gp": Method(loss="wgan", penalty="gp", penalty_weight=10.0, d_steps=5, betas=(0.5, 0.9)),
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
    "dual_d": Method(loss="minimax", two_discriminators=True),
    "dual_d_ns": Method(loss="non_saturating", two_discriminators=True),
}

#: Where each method and its hyperparameters come from ("ours" marks our choices).
SOURCES: dict[str, str] = {
    "minimax": "Goodfellow et al. 2014, the saturating generator loss",
    "non_saturating": "Goodfellow et al. 2014, -log D(G(z))",
    "lsgan": "Mao et al. 2017, a=0, b=c=1 (no factor 1/2)",
    "wgan": "Arjovsky et al. 2017: clip c=0.01, n_critic=5; Adam instead of their RMSProp(5e-5) (ours)",
    "wgan_gp": "Gulrajani et al. 2017: lambda=10, n_critic=5, Adam betas (0.5, 0.9); lr ours",
    "dragan": "Kodali et al. 2017: lambda=10, perturbation 0.5 std(x) U[0,1]",
    "hinge": "Lim & Ye 2017; Miyato et al. 2018",
    "began": "Berthelot et al. 2017: gamma=0.5, lambda_k=1e-3, L1 autoencoder D (ELU); k from the D step (ours)",
    "sngan": "Miyato et al. 2018: spectral norm on every D layer, 1 power iteration, standard (NS) loss",
    "r1": "Mescheder et al. 2018: R1 with gamma=10 (weight gamma/2 = 5)",
    "unrolled": "Metz et al. 2017: k=5 look-ahead D steps (Adam from fresh moments, lr_d)",
    "minibatch_disc": "Salimans et al. 2016: B=5 kernels of dimension C=3 (sizes ours, for 2-D data)",
    "feature_matching": "Salimans et al. 2016: G matches the mean of D's last hidden layer",
    "pacgan2": "Lin et al. 2018: packing m=2; a D batch holds batch_size packs (m * batch_size samples)",
    "pacgan3": "Lin et al. 2018: packing m=3",
    "pacgan4": "Lin et al. 2018: packing m=4",
    "instance_noise": "Sonderby et al. 2017: Gaussian noise on D's inputs, std 0.1 annealed linearly to 0 (ours)",
    "mode_seeking": "Mao et al. 2019 (MSGAN): lambda_ms=1",
    "mixture": "Hoang et al. 2018 (MGAN): K=5 generators, classifier weight beta=0.125 (ours), separate classifier C",
    "d2gan": "Nguyen et al. 2017: alpha=0.2, beta=0.1",
    "dual_d": "after Zhang, Li & Yu 2018: eq. (6), the saturating game (plain MLP discriminators, "
              "no minibatch discrimination or SELU)",
    "dual_d_ns": "after Zhang, Li & Yu 2018: both generator terms non-saturating (neither eq. (5) nor (6): "
                 "eq. (5) changes only D1's term; plain MLP discriminators)",
}

MIXTURES = {"ring": toy.ring, "grid": toy.grid}

#: Sizes per profile. ``full``: chosen so that all methods x 10 seeds x 2 data sets fit in
#: about 20 minutes on 2 CPU cores (``--workers 2``); ``smoke``: seconds, for the tests.
SIZES: dict[str, dict] = {
    "full": {"steps": 1500, "hidden": (64, 64, 64), "batch_size": 128, "latent_dim": 2, "lr": 1e-3, "lr_decay": True,
             "n_eval": 2500, "seeds": 10},
    "smoke": {"steps": 3, "hidden": (8,), "batch_size": 24, "latent_dim": 2, "lr": 1e-3, "lr_decay": True,
              "n_eval": 60, "seeds": 2},
}

#: Relative cost of a cell (time per step / non_saturating's), measured with 10 seeds on one
#: CPU thread; the runner starts the expensive cells first so that workers finish together.
COST = {"unrolled": 7.7, "minibatch_disc": 6.2, "wgan_gp": 5.4, "wgan": 4.0, "mixture": 2.0, "sngan": 1.8,
        "dual_d_ns": 1.6, "dual_d": 1.6, "r1": 1.6, "pacgan4": 1.4, "d2gan": 1.3}

def _profile(name: str) -> dict:
    if name not in SIZES:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(SIZES)}")
    return SIZES[name]


def _names(kind: str, given, valid) -> list[str]:
    names = list(valid) if given is None else list(given)
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise ValueError(f"unknown {kind} {unknown or names!r}; valid: {', '.join(valid)}")
    return names


def run_cell(dataset: str, method: str, seeds: int | Sequence[int] = 10, profile: str = "full", device=None,
             steps: int | None = None) -> list[dict]:
    r"""Train one cell (data set x method) for all seeds at once; one row per seed (:data:`~gan_notes.benchmark_results.FIELDS`).

    ``wall_time_s`` is the batched training time divided by the number of seeds; ``steps``
    overrides the profile's.

    See also
    --------
    run_benchmark; gan_notes.ensemble.train_ensemble.
    """
    _names("dataset", [dataset], MIXTURES)
    _names("method", [method], METHODS)
    p = _profile(profile)
    res = train_ensemble(
        METHODS[method], MIXTURES[dataset](), seeds, latent_dim=p["latent_dim"], hidden=p["hidden"], steps=steps or p["steps"],
        batch_size=p["batch_size"], lr_g=p["lr"], lr_d=p["lr"], lr_decay=p["lr_decay"], n_eval=p["n_eval"], on_diverge="record",
        device=device, progress=False,
    )
    rows = []
    for s, mt, div in zip(res.seeds, res.metrics, res.diverged):
        rows.append({"dataset": dataset, "method": method, "seed": s, **{k: float(mt[k]) for k in FIELDS[3:8]},
                     "wall_time_s": res.wall_time_per_seed_s, "diverged": bool(div)})
    return rows


def _cell_job(args):
    torch.set_num_threads(1)  # toy networks: one thread per worker is fastest
    return run_cell(*args)


def run_benchmark(
    methods: Sequence[str] | None = None, datasets: Sequence[str] | None = None, seeds: int | None = None,
    profile: str = "full", workers: int = 1, device=None, log=print, steps: int | None = None,
) -> dict:
    r"""Run every (data set, method) cell; return ``{"metadata": {...}, "rows": [...]}``.

    Cells run one after another, or in ``workers`` processes (one CPU thread each), the
    expensive ones first (:data:`COST`); rows come back in the order data set, method, seed.
    ``steps`` overrides the profile's number of steps.

    See also
    --------
    save_results, summary.
    """
    p = _profile(profile)
    methods, datasets = _names("method", methods, METHODS), _names("dataset", datasets, MIXTURES)
    seeds = p["seeds"] if seeds is None else seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    jobs = sorted(((d, m, seeds, profile, device, steps) for d in datasets for m in methods), key=lambda j: -COST.get(j[1], 1.0))
    start, rows = time.perf_counter(), []
    if workers == 1:
        results = map(run_cell, *zip(*jobs))
    else:
        results = ProcessPoolExecutor(workers).map(_cell_job, jobs)
    for job, cell_rows in zip(jobs, results):
        rows += cell_rows
        if log:
            s = summary(cell_rows)[job[0], job[1]]
            log(f"{job[0]:>4} {job[1]:<17} modes {s['modes'][0]:5.1f}  HQ {100 * s['high_quality'][0]:5.1f}%  "
                f"KL {s['kl'][0]:6.3f}  diverged {s['diverged']}/{s['n']}  {cell_rows[0]['wall_time_s']:.1f} s/seed "
                f"[{time.perf_counter() - start:.0f} s]")
    meta = {
        "profile": profile, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items() if k != "seeds"},
        "steps": steps or p["steps"], "seeds": seeds, "methods": methods, "datasets": datasets, "workers": workers,
        "device": str(device or "cpu"), "torch": torch.__version__, "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "total_wall_time_s": time.perf_counter() - start, "cpu_count": os.cpu_count(), "threads_per_worker": 1,
        "wall_time_note": "wall_time_s per row = batched time of its cell / seeds",
    }
    order = {(d, m): i for i, (d, m) in enumerate((d, m) for d in datasets for m in methods)}
    rows.sort(key=lambda r: (order[r["dataset"], r["method"]], r["seed"]))
    return {"metadata": meta, "rows": rows}


def speed(method: str = "non_saturating", dataset: str = "ring", seeds: int = 10, steps: int = 300,
          profile: str = "full", devices: Sequence[str] | None = None, log=print) -> list[dict]:
    r"""Wall time of S seeds trained one after another with :func:`~gan_notes.train.train_gan`
    against the same S seeds batched with :func:`~gan_notes.ensemble.train_ensemble`, measured
    in the same process (CPU; CUDA too when available), and their ratio.

    The networks are the profile's; times exclude evaluation.
    """
    p = _profile(profile)
    _names("method", [method], METHODS)
    data = MIXTURES[_names("dataset", [dataset], MIXTURES)[0]]()
    spec = METHODS[method]
    if spec.loss not in ("minimax", "non_saturating", "lsgan", "wgan", "hinge") or spec.pack > 1 or spec.minibatch \
            or spec.spectral_norm or spec.feature_matching or spec.mode_seeking or spec.mixture or spec.unroll or spec.noise_anneal:
        raise ValueError(f"speed compares with train_gan, which cannot run {method!r}")
    devices = list(devices) if devices else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    out = []
    for dev in devices:
        t0 = time.perf_counter()
        for s in range(seeds):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                G = models.mlp(p["latent_dim"], 2, p["hidden"])
                D = models.mlp(2, 1, p["hidden"])
            train_gan(G, D, data, latent_dim=p["latent_dim"], steps=steps, loss=spec.loss, batch_size=p["batch_size"],
                      d_steps=spec.d_steps, penalty=spec.penalty, penalty_weight=spec.penalty_weight,
                      instance_noise=spec.instance_noise, clip=spec.clip, seed=s, device=dev, progress=False)
        seq = time.perf_counter() - t0
        res = train_ensemble(spec, data, seeds, latent_dim=p["latent_dim"], hidden=p["hidden"], steps=steps,
                             batch_size=p["batch_size"], n_eval=10, device=dev, progress=False)
        row = {"device": dev, "method": method, "seeds": seeds, "steps": steps, "threads": torch.get_num_threads(),
               "sequential_s": seq, "batched_s": res.wall_time_s, "speedup": seq / res.wall_time_s}
        out.append(row)
        if log:
            log(f"{dev}: {seeds} seeds x {steps} steps of {method} (hidden {p['hidden']}, batch {p['batch_size']}, "
                f"{row['threads']} thread(s)): sequential {seq:.1f} s, batched {res.wall_time_s:.1f} s, "
                f"speed-up {row['speedup']:.1f}x")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m gan_notes.benchmark", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmark and write the results")
    r.add_argument("--profile", default="full", choices=list(SIZES))
    r.add_argument("--methods", nargs="+", default=None, help=f"default: all of {', '.join(METHODS)}")
    r.add_argument("--datasets", nargs="+", default=None, help="default: ring grid")
    r.add_argument("--seeds", type=int, default=None, help="seeds per cell (default: the profile's, 10 in full)")
    r.add_argument("--steps", type=int, default=None, help="override the profile's steps")
    r.add_argument("--workers", type=int, default=1, help="processes, one CPU thread each (2 on a 2-core machine)")
    r.add_argument("--out", default=RESULTS_PATH, help="default: gan_notes/results/toy_benchmark.json (the committed results)")
    s = sub.add_parser("speed", help="sequential train_gan vs batched wall time")
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
    results = run_benchmark(args.methods, args.datasets, args.seeds, args.profile, args.workers, steps=args.steps)
    for dataset, g in goals(summary(results["rows"])).items():
        print(f"{dataset}: best {g['method']} ({g['modes']:.1f} modes, {100 * g['high_quality']:.1f}% HQ, KL {g['kl']:.3f}); "
              f"goal {GOALS[dataset]} {'met' if g['met'] else 'NOT met'}")
    paths = save_results(results, args.out)
    print(f"wrote {paths[0]} and {paths[1]} ({results['metadata']['total_wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
