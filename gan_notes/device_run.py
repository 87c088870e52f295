r"""Part IV on a borrowed GPU: one prepared command, and what its run will cost.

The GPU this project borrows is lent for minutes, one command at a time, and gives back only
a few small files. So everything is prepared here and run there as one command::

    python -m gan_notes.device_run OUTDIR [--profile full|smoke] [--bench-seconds N] [--budget-minutes M]

which, in one process,

1. predicts the chapter's run time: on a GPU from step times measured there, elsewhere for
   an *assumed* H100 and Colab T4 (:mod:`gan_notes.run_time`);
2. executes Chapter 11 through :func:`gan_notes.provenance.execute` into
   ``OUTDIR/11_stacked_mnist.ipynb`` (the repository's notebook is not touched);
3. runs the image speed benchmark (:func:`gan_notes.image_bench.benchmark`: eager fp32
   against the optimised path, in the same run) on MNIST- and Stacked-MNIST-shaped batches;
4. writes ``OUTDIR/results.json``: device, torch and Python versions, the benchmark's
   figures, the prediction, the chapter's wall time, profile, date and git commit.

``results.json`` is rewritten after each stage, so a run stopped by the device's time limit
still returns what it measured. The chapter comes before the benchmark because its time is
predicted from measured rates while the benchmark's compilations are not: a benchmark that
overruns then costs only its own figures. ``--budget-minutes`` skips the chapter when it is
predicted to end later than that, and the benchmark when less than a minute is left.
``OUTDIR`` is checked against what the device tool copies back (:data:`COPY_BACK`); a
violation is reported and the command exits with status 1.
``python -m gan_notes.device_run --predict`` only predicts (no OUTDIR).

See also
--------
gan_notes.image_bench, gan_notes.run_time, gan_notes.provenance; Chapter 11.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gan_notes import image_bench, run_time
from gan_notes.provenance import environment

__all__ = ["COPY_BACK", "CHAPTER", "chapter_namespace", "predict", "bench", "copy_back_problems", "run", "main"]

REPO = Path(__file__).resolve().parent.parent
CHAPTER = REPO / "notebooks" / "11_stacked_mnist.md"

#: What the device tool copies back from its output folder: at most 8 files of 16 MiB, at
#: most two folders deep, names of letters, digits, ".", "_" and "-".
#:
#: :meta hide-value:
COPY_BACK = {"max_files": 8, "max_bytes": 16 * 2**20, "max_folders_deep": 2, "name": re.compile(r"^[A-Za-z0-9._-]+$")}

#: Modules the chapter's kernel needs beyond PyTorch (the GPU image lacks the Jupyter ones:
#: they travel as wheels, see the README).
KERNEL_MODULES = ("jupytext", "nbclient", "nbformat", "ipykernel", "jupyter_client", "matplotlib", "scipy", "tqdm")

# The chapter's cells that device_run executes to learn its configuration, found by a line
# each contains: its imports, its sizes, and the methods' networks.
_CELL_MARKERS = {"imports": "chapter_start = ", "sizes": "BATCH = ", "methods": "def build("}


def _print(*args: Any) -> None:
    print(*args, flush=True)


def chapter_namespace(md: str | Path = CHAPTER, profile: str = "full", on_gpu: bool = True) -> dict[str, Any]:
    """Chapter 11's configuration, from its own cells.

    Executes the chapter's imports cell, its sizes cell (with ``on_gpu`` forced, so the GPU
    branch can be read on a CPU) and its methods cell (``build``, ``stacked_data``) in a
    fresh namespace, with ``budget``/``profile`` bound to ``profile`` and ``print`` silenced.
    Nothing is trained. ``stacked_data`` reads ``digits``/``digit_labels``, which the caller
    provides.

    Returns
    -------
    dict : the namespace: ``STEPS``, ``RUNS``, ``SEEDS``, ``BATCH``, ``N_EVAL``, ``WIDTH``,
        ``build`` and whatever else those cells define.
    """
    import jupytext

    from gan_notes.config import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    nb = jupytext.read(Path(md))
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    cells = {}
    for name, marker in _CELL_MARKERS.items():
        found = [src for src in code if marker in src]
        if len(found) != 1:
            raise ValueError(f"{md}: expected one code cell containing {marker!r} (the {name} cell), found {len(found)}")
        cells[name] = found[0]
    ns: dict[str, Any] = {"device": torch.device("cpu"), "print": lambda *a, **k: None}
    threads = torch.get_num_threads()
    exec(compile(cells["imports"], f"{md}:imports", "exec"), ns)
    ns.update(on_gpu=on_gpu, budget=lambda *, full, smoke: full if profile == "full" else smoke, profile=lambda: profile)
    exec(compile(cells["sizes"], f"{md}:sizes", "exec"), ns)
    exec(compile(cells["methods"], f"{md}:methods", "exec"), ns)
    torch.set_num_threads(threads)  # the chapter's cells may set threads for the GPU host
    return ns


def _run_kwargs(method: str, d2, batch_size: int, device: str, amp: bool, g_steps: int = 1) -> dict[str, Any]:
    # The options of one run of the chapter's long cell on a GPU (its run_options, which is not compiled).
    return dict(batch_size=batch_size, g_steps=g_steps, discriminator2=d2, unroll=5 if method == "Unrolled-5" else 0,
                device=device, amp=amp, channels_last=True)


def predict(md: str | Path = CHAPTER, profile: str = "full", *, probe_steps: int = 10, warmup: int = 3, rounds: int = 5, devices=("h100", "t4")) -> dict[str, Any]:
    r"""Predicted run time of Chapter 11's GPU branch in ``profile``.

    On a CUDA machine: each (method, D size) of the chapter is timed on the GPU at its own
    width and batch (:func:`~gan_notes.run_time.seconds_per_step`; bf16 where supported,
    channels-last, not compiled) and :func:`~gan_notes.run_time.predict_seconds` adds
    them up: a *measured* rate. Elsewhere, for each assumed device of
    :data:`~gan_notes.run_time.ASSUMED_DEVICES`: the step's host time is measured here
    with tiny networks (width 4, batch 4: what is left is Python and dispatch work; the
    fastest of ``rounds`` probes of ``probe_steps`` steps, on one thread) and its
    floating-point work is counted at the chapter's width and batch
    (:class:`torch.utils.flop_counter.FlopCounterMode`), and
    :func:`~gan_notes.run_time.model_step_seconds` turns them into seconds per step.
    """
    from torch.utils.flop_counter import FlopCounterMode

    ns = chapter_namespace(md, profile, on_gpu=True)
    steps, seeds, batch, width, runs = ns["STEPS"], ns["SEEDS"], ns["BATCH"], ns["WIDTH"], list(ns["RUNS"])
    gen = torch.Generator().manual_seed(0)
    ns["digits"] = torch.randint(0, 256, (2000, 28, 28), dtype=torch.uint8, generator=gen)
    ns["digit_labels"] = torch.randint(0, 10, (2000,), generator=gen)
    out: dict[str, Any] = {
        "chapter": str(Path(md).name), "profile": profile, "steps": steps, "seeds": seeds, "batch": batch, "width": width,
        "n_eval": ns["N_EVAL"], "runs": [f"{m} D x{f}" for m, f in runs],
    }  # fmt: skip

    def fresh(method, factor, w):
        torch.manual_seed(0)
        ns["WIDTH"] = w
        try:
            return ns["build"](method, factor)
        finally:
            ns["WIDTH"] = width

    if torch.cuda.is_available():
        amp = torch.cuda.is_bf16_supported(including_emulation=False)
        torch.backends.cudnn.benchmark = True  # as the chapter sets it on a GPU
        step_s = {}
        for method, factor in runs:
            g, d, d2 = fresh(method, factor, width)
            step_s[method, factor] = run_time.seconds_per_step(
                g, d, ns["stacked_data"], steps=max(probe_steps, 20), warmup=max(warmup, 5), **_run_kwargs(method, d2, batch, "cuda", amp, ns["g_steps"](factor))
            )
        fixed = run_time.ASSUMED_DEVICES["h100"].fixed_s
        out["measured"] = {
            "device": torch.cuda.get_device_name(), "amp": amp, "step_s": {f"{m} D x{f}": t for (m, f), t in step_s.items()},
            "fixed_s_assumed": fixed, "predicted_s": run_time.predict_seconds(step_s, steps, repeats=seeds, fixed_s=fixed),
        }  # fmt: skip
        return out

    host_s, flops = {}, {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for method, factor in runs:
            times = []
            for _ in range(rounds):  # the least disturbed of a few rounds, as on a shared machine
                g, d, d2 = fresh(method, factor, 4)
                kwargs = _run_kwargs(method, d2, 4, "cpu", True, ns["g_steps"](factor))
                times.append(run_time.seconds_per_step(g, d, ns["stacked_data"], steps=probe_steps, warmup=warmup, cpu_amp=True, **kwargs))
            host_s[method, factor] = min(times)
            g, d, d2 = fresh(method, factor, width)
            with FlopCounterMode(display=False) as counter:
                run_time.seconds_per_step(g, d, ns["stacked_data"], steps=1, warmup=1, **_run_kwargs(method, d2, batch, "cpu", False, ns["g_steps"](factor)))
            flops[method, factor] = counter.get_total_flops() / 2  # two steps ran
    finally:
        torch.set_num_threads(threads)
    out["host_step_s"] = {f"{m} D x{f}": t for (m, f), t in host_s.items()}
    out["host"] = f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    out["gflop_per_step"] = {f"{m} D x{f}": x / 1e9 for (m, f), x in flops.items()}
    out["assumed"] = {}
    for key in devices:
        model = run_time.ASSUMED_DEVICES[key]
        step_s = {k: run_time.model_step_seconds(host_s[k], flops[k], model) for k in runs}
        out["assumed"][key] = {
            "device": model.name, "source": model.source, "step_s": {f"{m} D x{f}": t for (m, f), t in step_s.items()},
            "predicted_s": run_time.predict_seconds(step_s, steps, repeats=seeds, fixed_s=model.fixed_s),
        }  # fmt: skip
    return out


def _print_prediction(p: dict[str, Any]) -> None:
    _print(f"Chapter 11, GPU branch, profile {p['profile']}: {len(p['runs'])} runs x {p['seeds']} seed(s) x {p['steps']:,} steps, "
           f"G width {p['width']}, batch {p['batch']}, N_EVAL {p['n_eval']:,}")  # fmt: skip
    if "measured" in p:
        m = p["measured"]
        for run, t in m["step_s"].items():
            _print(f"  {run:18s} {1 / t:8.1f} steps/s (measured on {m['device']}, bf16={m['amp']}, not compiled)")
        _print(f"  predicted chapter time: {m['predicted_s'] / 60:.1f} min (+{m['fixed_s_assumed']:.0f} s assumed for the other cells)")
        return
    _print(f"  per run: host time per step (measured here, width 4, batch 4; {p['host']}) and GFLOP per step (counted at the chapter's size)")
    for run in p["runs"]:
        _print(f"  {run:18s} host {1e3 * p['host_step_s'][run]:6.2f} ms  {p['gflop_per_step'][run]:6.2f} GFLOP  "
               + "  ".join(f"{k}: {1 / a['step_s'][run]:6.1f} steps/s" for k, a in p["assumed"].items()))  # fmt: skip
    for a in p["assumed"].values():
        _print(f"  PREDICTED on {a['device']}: {a['predicted_s'] / 60:.1f} min. ASSUMPTION ({a['source']})")


def bench(seconds: float | None = None, *, channels=(1, 3), width: int = 64, batch_size: int = 64) -> dict[str, Any]:
    """The image benchmark's figures (:func:`gan_notes.image_bench.benchmark`) for each shape.

    ``seconds``: the timed steps are chosen so that the timed part lasts about this long in
    all (from a short calibration); ``None`` keeps ``python -m gan_notes.image_bench``'s
    defaults (300 timed steps on CUDA, 30 on a CPU). Warm-up and compilation come on top; on
    CUDA one round (the GPU is not shared, and each round compiles anew), on a CPU the best of two.
    """
    cuda = torch.cuda.is_available()
    warmup, rounds = (20, 1) if cuda else (2, 2)  # a lent GPU is not shared: one round (each compiles)
    if seconds is None:
        steps = 300 if cuda else 30
    else:
        if not seconds > 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        cal = image_bench.benchmark(steps=3, warmup=2, rounds=1, compile=False, channels=3, width=width, batch_size=batch_size)
        rate = min(x["steps_per_s"] for x in cal.values())
        steps = max(1, int(seconds * rate / (2 * rounds * len(channels))))
    out: dict[str, Any] = {"steps": steps, "warmup": warmup, "rounds": rounds, "width": width, "batch_size": batch_size}
    for c in channels:
        g_steps = image_bench.PROTOCOL_G_STEPS if c == 3 else 1  # Stacked MNIST: the protocol's iteration
        r = image_bench.benchmark(steps=steps, warmup=warmup, rounds=rounds, channels=c, width=width, batch_size=batch_size, g_steps=g_steps)
        fig = {"eager": r["eager"], "optimised": r["optimised"], "ratio": r["optimised"]["steps_per_s"] / r["eager"]["steps_per_s"]}
        if c == 1:
            fig["mnist_epoch_s"] = image_bench.MNIST_TRAIN_IMAGES / r["optimised"]["images_per_s"]
        if c == 3:
            fig["protocol_run_min"] = image_bench.PROTOCOL_ITERATIONS / r["optimised"]["steps_per_s"] / 60
        out[{1: "mnist_1x28x28", 3: "stacked_mnist_3x28x28"}.get(c, f"{c}x28x28")] = fig
        _print(f"  {c}x28x28: eager {r['eager']['steps_per_s']:.2f} steps/s, optimised {r['optimised']['steps_per_s']:.2f} steps/s "
               f"(bf16={r['optimised']['amp']}, compiled={r['optimised']['compiled']}), ratio {fig['ratio']:.2f}"
               + (f"; one MNIST epoch {fig['mnist_epoch_s']:.1f} s" if c == 1 else "")
               + (f"; one {image_bench.PROTOCOL_ITERATIONS:,}-iteration protocol run {fig['protocol_run_min']:.1f} min" if c == 3 else ""))  # fmt: skip
    if cuda:
        torch.cuda.empty_cache()
    return out


def copy_back_problems(outdir: str | Path) -> list[str]:
    """What in ``outdir`` the device tool would not copy back (:data:`COPY_BACK`); [] if all of it."""
    root = Path(outdir)
    problems, files = [], []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(not COPY_BACK["name"].match(part) for part in rel.parts):
            problems.append(f"{rel}: name has characters other than letters, digits, '.', '_', '-'")
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            problems.append(f"{rel}: not a plain file or folder")
        elif p.is_file():
            files.append(p)
            if len(rel.parts) - 1 > COPY_BACK["max_folders_deep"]:
                problems.append(f"{rel}: more than {COPY_BACK['max_folders_deep']} folders deep")
            size = p.stat().st_size
            if size > COPY_BACK["max_bytes"]:
                problems.append(f"{rel}: {size / 2**20:.1f} MiB, over the {COPY_BACK['max_bytes'] / 2**20:.0f} MiB a file may have")
    if len(files) > COPY_BACK["max_files"]:
        problems.append(f"{len(files)} files, over the {COPY_BACK['max_files']} that come back")
    return problems


def _git_commit() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def run(
    outdir: str | Path,
    profile: str = "full",
    bench_seconds: float | None = None,
    *,
    budget_minutes: float | None = None,
    chapter: str | Path = CHAPTER,
    cell_timeout: int = 1800,
    offline: bool = True,
) -> dict[str, Any]:
    """The prepared device command (see the module's docstring). Returns the results written.

    ``budget_minutes``: on a GPU, the chapter is skipped (and the run says so) when the time
    spent so far plus its predicted time, measured there, would exceed this: a device command
    that is killed at its time limit returns no notebook.

    ``offline``: downloads in the chapter fail at once (an unreachable proxy) instead of
    waiting for a network the device does not have; MNIST must then be in ``GAN_NOTES_DATA``
    (checked before anything runs).
    """
    from gan_notes import provenance

    start = time.perf_counter()
    outdir = Path(outdir)
    if outdir.exists() and any(outdir.iterdir()):
        raise ValueError(f"outdir {str(outdir)!r} must be empty or not exist (the device tool copies back all of it)")
    missing = [m for m in KERNEL_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"missing Python packages for the chapter's kernel: {', '.join(missing)} (carry them as wheels: see the README)")
    from gan_notes.data import load_mnist

    try:
        load_mnist("test", download=False)
    except FileNotFoundError as e:  # the package's DataUnavailableError
        raise RuntimeError(f"the chapter needs MNIST's test split, not found: set GAN_NOTES_DATA to a folder holding mnist/ ({e})") from e
    outdir.mkdir(parents=True, exist_ok=True)
    notebook = outdir / Path(chapter).with_suffix(".ipynb").name
    results: dict[str, Any] = {
        "argv": sys.argv[1:],
        "device": _device_name(), "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "profile": profile, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "git_commit": _git_commit(),
        "stages_done": [],
    }  # fmt: skip

    def save() -> None:
        results["command_wall_s"] = round(time.perf_counter() - start, 1)
        (outdir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")

    _print(f"device_run: {results['device']}; torch {results['torch']}; python {results['python']}; profile {profile}; into {outdir}")
    _print("[1/3] predicted run time of the chapter's GPU branch")
    results["prediction"] = predict(chapter, profile)
    _print_prediction(results["prediction"])
    results["stages_done"].append("prediction")
    save()

    measured = results["prediction"].get("measured")
    need_s = time.perf_counter() - start + (measured["predicted_s"] if measured else 0.0)
    if budget_minutes is not None and measured is not None and need_s > 60 * budget_minutes:
        results["chapter"] = {"skipped": f"predicted to end at {need_s / 60:.1f} min, over the budget of {budget_minutes} min"}
        _print(f"[2/3] chapter SKIPPED: {results['chapter']['skipped']}")
    else:
        _print(f"[2/3] executing {Path(chapter).name} ({profile}) into {notebook}")
        runs_dir = tempfile.mkdtemp(prefix="gan_notes_11_runs_")  # checkpoints: fresh, outside outdir
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        no_network = dict(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", no_proxy="") if offline else {}
        t0 = time.perf_counter()
        try:
            with environment(GAN_NOTES_RUNS=runs_dir, PYTHONPATH=pythonpath, MPLBACKEND="Agg", **no_network):
                record = provenance.execute(chapter, profile=profile, timeout=cell_timeout, output=notebook)
            results["chapter"] = {"notebook": notebook.name, "wall_time_s": record["wall_time_s"], "provenance": record}
            results["stages_done"].append("chapter")
            _print(f"  {notebook.name}: {record['wall_time_s']} s on {record['device']}")
        except Exception as e:  # keep what was measured; say what failed
            results["chapter"] = {"error": f"{type(e).__name__}: {str(e)[:2000]}", "wall_time_s": round(time.perf_counter() - t0, 1)}
            _print(f"  chapter FAILED: {results['chapter']['error'][:500]}")
    save()

    if budget_minutes is not None and time.perf_counter() - start > 60 * (budget_minutes - 1):
        results["bench"] = {"skipped": f"less than a minute of the budget of {budget_minutes} min left"}
        _print(f"[3/3] image benchmark SKIPPED: {results['bench']['skipped']}")
    else:
        _print("[3/3] image benchmark: eager fp32 against the optimised path, same run")
        t0 = time.perf_counter()
        results["bench"] = bench(bench_seconds)
        results["bench"]["wall_s"] = round(time.perf_counter() - t0, 1)
        results["stages_done"].append("bench")
    return _finish(results, outdir, save)


def _finish(results: dict[str, Any], outdir: Path, save) -> dict[str, Any]:
    save()
    problems = copy_back_problems(outdir)
    results["copy_back"] = {"ok": not problems, "problems": problems,
                            "files": {p.name: p.stat().st_size for p in sorted(outdir.iterdir()) if p.is_file()}}  # fmt: skip
    save()
    results["copy_back"]["files"]["results.json"] = (outdir / "results.json").stat().st_size
    for name, size in results["copy_back"]["files"].items():
        _print(f"  {name}: {size / 2**20:.2f} MiB")
    if problems:
        _print("COPY-BACK PROBLEMS (these files would not come back):\n  " + "\n  ".join(problems))
    _print(f"device_run done in {results['command_wall_s'] / 60:.1f} min: {', '.join(results['stages_done'])}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_notes.device_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", nargs="?", help="output folder (empty or new): the executed notebook and results.json")
    parser.add_argument("--profile", choices=("full", "smoke"), default="full")
    parser.add_argument("--bench-seconds", type=float, default=None, help="timed part of the benchmark, in all (default: image_bench's step counts)")
    parser.add_argument("--predict", action="store_true", help="only print the predicted run time of the chapter's GPU branch")
    parser.add_argument("--budget-minutes", type=float, default=None, help="on a GPU: skip the chapter if it is predicted to end later than this")
    parser.add_argument("--cell-timeout", type=int, default=1800, help="seconds allowed per chapter cell")
    parser.add_argument("--chapter", default=str(CHAPTER), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.predict:
        p = predict(args.chapter, args.profile)
        _print_prediction(p)
        return 0
    if not args.outdir:
        parser.error("outdir is required (or --predict)")
    results = run(args.outdir, args.profile, args.bench_seconds, budget_minutes=args.budget_minutes, chapter=args.chapter, cell_timeout=args.cell_timeout)
    ok = "chapter" in results["stages_done"] and results["copy_back"]["ok"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
