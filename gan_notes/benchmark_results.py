r"""The toy benchmark's results: the committed tables, their summary, the published anchors.

:func:`gan_notes.benchmark.run_benchmark` produces per-seed rows (:data:`FIELDS`);
:func:`save_results` writes them as JSON and CSV (``gan_notes/results/``, shipped with the
package, so a chapter opened in Colab finds them), :func:`load_results` reads them back,
:func:`summary` gives mean ± standard error per cell, and :func:`goals` compares the best cell
of each data set with :data:`GOALS`. :data:`PUBLISHED` holds the VEEGAN and PacGAN numbers the
chapters set beside ours.

See also
--------
gan_notes.benchmark; Chapters 07 and 09.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence

from gan_notes.stats import mean_se

__all__ = ["PUBLISHED", "GOALS", "FIELDS", "RESULTS_PATH", "save_results", "load_results", "summary", "goals"]

#: Published anchors: (modes, s.e.), (high-quality %, s.e.), (KL, s.e.); None where not given.
#: VEEGAN: Srivastava et al. 2017, Table 1. PacGAN: Lin et al. 2018, Table 1 (10 runs).
PUBLISHED: dict[str, dict[str, tuple]] = {
    "ring": {
        "VEEGAN Table 1: GAN": ((1.0, None), (99.3, None), (None, None)),
        "VEEGAN Table 1: ALI": ((2.8, None), (0.13, None), (None, None)),
        "VEEGAN Table 1: Unrolled GAN": ((7.6, None), (35.6, None), (None, None)),
        "VEEGAN Table 1: VEEGAN": ((8.0, None), (52.9, None), (None, None)),
        "PacGAN Table 1: GAN": ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
        "PacGAN Table 1: PacGAN2": ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
    },
    "grid": {
        "VEEGAN Table 1: GAN": ((3.3, None), (0.5, None), (None, None)),
        "VEEGAN Table 1: ALI": ((15.8, None), (1.6, None), (None, None)),
        "VEEGAN Table 1: Unrolled GAN": ((23.6, None), (16.0, None), (None, None)),
        "VEEGAN Table 1: VEEGAN": ((24.6, None), (40.0, None), (None, None)),
        "PacGAN Table 1: GAN": ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
        "PacGAN Table 1: PacGAN4": ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
    },
}

#: The goals of issue #4 for the best method per data set.
GOALS = {"ring": {"modes": 8.0, "high_quality": 0.97}, "grid": {"modes": 24.8, "high_quality": 0.94, "kl": 0.04}}

#: Columns of a per-seed row.
FIELDS = ("dataset", "method", "seed", "modes", "high_quality", "kl", "precision", "recall", "wall_time_s", "diverged")


def _encode(v):
    """Non-finite floats as strings, in nested lists too (strict JSON has no NaN)."""
    if isinstance(v, list):
        return [_encode(x) for x in v]
    return v if not isinstance(v, float) or math.isfinite(v) else str(v)


def _decode(v):
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v


def save_results(results: dict, path: str | os.PathLike) -> tuple[str, str]:
    """Write the JSON (metadata, rows and learning curves) and a CSV of the rows next to it;
    return both paths.

    ``results["curves"]`` (optional) is a list of ``{"dataset", "method", "steps": [...],
    metric: [[value per seed] per step]}``, from :func:`gan_notes.benchmark.run_cell`.

    Non-finite numbers are written as the strings ``"nan"``/``"inf"`` in JSON (strict JSON has
    none) and read back as floats by :func:`load_results`.
    """
    path = os.fspath(path)
    if not path.endswith(".json"):
        raise ValueError(f"path must end in .json, got {path!r}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    enc = lambda v: v if not isinstance(v, float) or math.isfinite(v) else str(v)  # noqa: E731
    rows = [{k: enc(r[k]) for k in FIELDS} for r in results["rows"]]
    curves = [{k: _encode(v) for k, v in c.items()} for c in results.get("curves", [])]
    with open(path, "w") as f:
        json.dump({"metadata": results["metadata"], "rows": rows, "curves": curves}, f, indent=1)
    csv_path = path[:-5] + ".csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(results["rows"])
    return path, csv_path


#: The committed results: package data, so an installed package (a Colab runtime) has them too.
RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "toy_benchmark.json")


def load_results(path: str | os.PathLike | None = None) -> dict:
    """Read :func:`save_results`' JSON: ``{"metadata": dict, "rows": list of dict, "curves": list}`` with
    floats (NaN/inf restored), int seeds and bool ``diverged``; no pandas needed.

    ``path`` defaults to :data:`RESULTS_PATH` (``gan_notes/results/toy_benchmark.json``, installed with the package),
    so a chapter reads it from any working directory.
    """
    path = RESULTS_PATH if path is None else path
    with open(path) as f:
        raw = json.load(f)
    if not isinstance(raw, dict) or "rows" not in raw or "metadata" not in raw:
        raise ValueError(f"{path} is not a toy benchmark results file (needs 'metadata' and 'rows')")
    rows = []
    for r in raw["rows"]:
        missing = [k for k in FIELDS if k not in r]
        if missing:
            raise ValueError(f"{path}: a row lacks {missing}")
        rows.append({"dataset": r["dataset"], "method": r["method"], "seed": int(r["seed"]),
                     **{k: float(r[k]) for k in FIELDS[3:9]}, "diverged": bool(r["diverged"])})
    curves = [{k: _decode(v) for k, v in c.items()} for c in raw.get("curves", [])]
    return {"metadata": raw["metadata"], "rows": rows, "curves": curves}


def summary(rows, metrics: Sequence[str] = ("modes", "high_quality", "kl", "precision", "recall")) -> dict:
    r"""Mean ± standard error per cell over the seeds that did not diverge.

    .. math::
        \bar x = \frac1n\sum_i x_i, \qquad \mathrm{se} = \frac{s}{\sqrt n}, \quad
        s^2 = \frac{1}{n-1}\sum_i (x_i - \bar x)^2 ,

    (se NaN for n = 1; mean inf if some seed has KL inf).

    Parameters
    ----------
    rows : list of dict, or the dict of :func:`load_results`
    metrics : names of the columns to summarise

    Returns
    -------
    dict (dataset, method) -> {metric: (mean, se), "n": seeds that finished, "diverged": count}

    See also
    --------
    load_results; Chapter 09.
    """
    if isinstance(rows, dict):
        rows = rows["rows"]
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["dataset"], r["method"]), []).append(r)
    out = {}
    for key, rs in cells.items():
        ok = [r for r in rs if not r["diverged"]]
        out[key] = {m: tuple(mean_se([r[m] for r in ok])[:2]) for m in metrics}
        out[key]["n"], out[key]["diverged"] = len(ok), len(rs) - len(ok)
    return out


def goals(summ: dict) -> dict[str, dict]:
    r"""The issue's goals (:data:`GOALS`) against the best cell per data set.

    The best method of a data set is the one with the most modes on average, then the highest
    high-quality fraction. Returns ``dataset -> {"method", "met": bool, "modes", "high_quality",
    "kl"}`` (means over the seeds that finished).

    See also
    --------
    summary.
    """
    out = {}
    for dataset, goal in GOALS.items():
        cells = {m: v for (d, m), v in summ.items() if d == dataset and v["n"] > 0}
        if not cells:
            continue
        best = max(cells, key=lambda m: (cells[m]["modes"][0], cells[m]["high_quality"][0]))
        got = {k: cells[best][k][0] for k in ("modes", "high_quality", "kl")}
        met = got["modes"] >= goal["modes"] and got["high_quality"] >= goal["high_quality"] and got["kl"] <= goal.get("kl", math.inf)
        out[dataset] = {"method": best, "met": bool(met), **got}
    return out
