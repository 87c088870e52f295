r"""Reference rows for the toy benchmark: trivial samplers scored by the same code as a GAN.

A benchmark cell means something only beside what needs no training. For a mixture
:math:`p = \sum_k w_k \mathcal N(c_k, \sigma^2 I)` (:mod:`gan_notes.toy`) the references
(:data:`REFERENCES`) are

- ``"uniform"``: noise over the data's support: uniform on the circle through the centres
  (the ring), else uniform over the centres' bounding box padded by a quarter of the
  smallest distance between two centres (:func:`bounding_box`; the grid: :math:`[-4.5, 4.5]^2`);
- ``"data"``: samples of :math:`p` itself;
- ``"blurK"``, :math:`K = 1, 2, 3`: the data plus independent :math:`\mathcal N(0, (K\sigma)^2 I)`,
  i.e. each mode's std becomes :math:`\sigma\sqrt{1+K^2}`;
- ``"collapse"``: every sample from one mode :math:`c_j + \mathcal N(0, \sigma^2 I)`,
  :math:`j \sim w` drawn once per seed.

They are scored by :func:`score` exactly as :func:`gan_notes.ensemble.train_ensemble` scores a
generator, and :func:`reference_rows` gives rows with the columns of
:data:`gan_notes.benchmark_results.FIELDS` (method ``"ref:<kind>"``).

**Which reference is the bar.** No generator can beat the data, so the data row is the
ceiling, not a bar. Nor is a reference that equals the data on a metric: the blurred data
covers every mode and its KL sits at the sampling floor, so nothing beats it on modes;
the collapse has the data's high-quality fraction. Each kind is a bar only on the metrics it
fails on (:data:`FAILS_ON`): noise on all, blurred data on sharpness (high quality,
precision), the collapse on coverage (modes, KL, recall). A method *beats* a reference on a
metric when its mean is better by more than two standard errors of the difference
(:func:`beats`), and the bar of a metric (:func:`bar`) is the best reference that fails on it
and falls short of the data by that rule: blur1 for the high-quality fraction, the uniform box
for modes and KL on the grid. :func:`marks` marks the cells that do not beat the bar; chapter text ranks only
the others.

See also
--------
gan_notes.benchmark_results, gan_notes.metrics; Chapters 07 and 09.
"""

from __future__ import annotations

import math

import torch

from gan_notes.benchmark_results import FIELDS
from gan_notes.ensemble import REAL_EVAL_SEED
from gan_notes.metrics import mode_coverage, prdc
from gan_notes.stats import format_mean_se, markdown_table
from gan_notes.toy import Mixture
from gan_notes.validate import choice, integer

__all__ = ["REFERENCES", "BETTER", "PREFIX", "SEED_OFFSET", "bounding_box", "circle_radius",
           "FAILS_ON", "reference_samples", "score", "reference_rows", "ref_summary", "bar", "beats", "marks", "beats_all", "marked_table"]

#: The reference kinds, in table order.
REFERENCES = ("uniform", "data", "blur1", "blur2", "blur3", "collapse")
#: +1 where higher is better, -1 where lower is better.
BETTER = {"modes": +1, "high_quality": +1, "kl": -1, "precision": +1, "recall": +1}
#: Method name of a reference row: ``PREFIX + kind``.
PREFIX = "ref:"
#: Reference seed s draws its samples with seed ``SEED_OFFSET + s``, never ``REAL_EVAL_SEED``,
#: so the ``"data"`` row is not the very draw that precision and recall compare against.
SEED_OFFSET = 1000


def _mixture(data) -> Mixture:
    if not isinstance(data, Mixture):
        raise TypeError(f"data must be a gan_notes.toy.Mixture, got {type(data).__name__}")
    return data


def circle_radius(data: Mixture) -> float | None:
    r"""The radius :math:`r` when the :math:`K \ge 3` centres of a 2-D mixture lie on one circle
    about the origin (:math:`\max_k \|c_k\| - \min_k \|c_k\| \le 10^{-6} \max_k \|c_k\|`), else None."""
    c = _mixture(data).centers.double()
    if c.shape[1] != 2 or c.shape[0] < 3:
        return None
    r = c.norm(dim=1)
    return float(r.mean()) if float(r.max() - r.min()) <= 1e-6 * float(r.max()) and float(r.max()) > 0 else None


def bounding_box(data: Mixture) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(lo, hi)``: the centres' bounding box padded by :math:`\delta/4` on every side,
    :math:`\delta = \min_{k \ne l} \|c_k - c_l\|` (needs :math:`K \ge 2` distinct centres)."""
    c = _mixture(data).centers.double()
    if c.shape[0] < 2:
        raise ValueError("data must have at least 2 centres for a bounding box")
    d = torch.cdist(c, c) + torch.diag(torch.full((c.shape[0],), math.inf, dtype=c.dtype))
    pad = float(d.min()) / 4
    if not pad > 0:
        raise ValueError("data has two equal centres: the bounding box padding would be 0")
    return c.min(dim=0).values - pad, c.max(dim=0).values + pad


def reference_samples(data: Mixture, kind: str, n: int, seed: int) -> torch.Tensor:
    r"""``n`` samples of reference ``kind`` for mixture ``data``, shape (n, d), float32.

    All randomness comes from ``torch.Generator().manual_seed(seed)``. ``"blurK"`` draws the
    same mode indices and standard normals as ``"data"`` with the same seed (the calls of
    :meth:`~gan_notes.toy.Mixture.sample`) and scales the noise by :math:`\sqrt{1+K^2}`:
    :math:`x = c_j + \sigma_j\sqrt{1+K^2}\,\varepsilon`, which is data plus independent
    :math:`\mathcal N(0, (K\sigma_j)^2 I)`. See the module docstring for the kinds.

    Raises
    ------
    TypeError
        ``data`` is not a :class:`~gan_notes.toy.Mixture`.
    ValueError
        Unknown ``kind``; ``n < 1``; ``seed`` negative or not an int (bools refused).
    """
    data = _mixture(data)
    choice("kind", kind, REFERENCES)
    n, seed = integer("n", n), integer("seed", seed, 0)
    g = torch.Generator().manual_seed(seed)
    d = data.dim
    if kind == "uniform":
        r = circle_radius(data)
        if r is not None:
            a = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
            return (r * torch.stack([a.cos(), a.sin()], dim=1)).float()
        lo, hi = bounding_box(data)
        return (lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=torch.float64)).float()
    if kind == "data":
        return data.sample(n, generator=g)
    if kind == "collapse":
        j = torch.multinomial(data.weights, 1, generator=g)
        return data.centers[j] + data.std[j, None] * torch.randn(n, d, generator=g)
    scale = math.sqrt(1 + int(kind[-1]) ** 2)
    idx = torch.multinomial(data.weights, n, replacement=True, generator=g)
    return data.centers[idx] + torch.randn(n, d, generator=g) * data.std[idx, None] * scale


def score(samples, data: Mixture, real) -> dict[str, float]:
    r"""``modes``, ``high_quality``, ``kl`` (:func:`~gan_notes.metrics.mode_coverage`, threshold
    :math:`3\sigma`) and ``precision``, ``recall`` (:func:`~gan_notes.metrics.prdc` against
    ``real``, k = 5): what :func:`gan_notes.ensemble.train_ensemble` reports for a generator."""
    data = _mixture(data)
    mc = mode_coverage(samples, data.centers, float(data.std.reshape(-1)[0]))
    pr = prdc(real, samples)
    return {"modes": mc["modes"], "high_quality": mc["high_quality"], "kl": mc["kl"],
            "precision": pr["precision"], "recall": pr["recall"]}


def reference_rows(dataset: str, data: Mixture, seeds: int = 10, n_eval: int = 2500) -> list[dict]:
    r"""One row per (kind, seed), seeds :math:`0..S-1`, with the keys of
    :data:`~gan_notes.benchmark_results.FIELDS` (method ``"ref:<kind>"``, ``wall_time_s`` 0,
    ``diverged`` False), so :func:`~gan_notes.benchmark_results.summary` reads them unchanged.

    Each is scored by :func:`score` against ``n_eval`` real samples drawn with
    :data:`~gan_notes.ensemble.REAL_EVAL_SEED`, as a trained generator is; reference seed s
    draws its ``n_eval`` samples with seed :data:`SEED_OFFSET` + s, a different draw.
    """
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}")
    data, seeds, n_eval = _mixture(data), integer("seeds", seeds), integer("n_eval", n_eval, 10)
    if SEED_OFFSET <= REAL_EVAL_SEED < SEED_OFFSET + seeds:
        raise ValueError(f"seeds must be at most {REAL_EVAL_SEED - SEED_OFFSET}, got {seeds}")
    real = data.sample(n_eval, generator=torch.Generator().manual_seed(REAL_EVAL_SEED))
    rows = []
    for kind in REFERENCES:
        for s in range(seeds):
            sc = score(reference_samples(data, kind, n_eval, SEED_OFFSET + s), data, real)
            rows.append({"dataset": dataset, "method": PREFIX + kind, "seed": s, **sc,
                         "wall_time_s": 0.0, "diverged": False})
    assert tuple(rows[0]) == FIELDS
    return rows


def ref_summary(summ: dict, dataset: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``{kind: {metric: (mean, se)}}`` of the reference cells of ``dataset`` in a
    :func:`~gan_notes.benchmark_results.summary` result (keys ``(dataset, "ref:<kind>")``)."""
    out = {key[1][len(PREFIX):]: {m: v for m, v in cell.items() if isinstance(v, tuple)}
           for key, cell in summ.items() if key[0] == dataset and key[1].startswith(PREFIX)}
    if "data" not in out:
        raise ValueError(f"summ has no reference rows for dataset {dataset!r} (run reference_rows)")
    return out


def _metric(metric: str) -> int:
    return BETTER[choice("metric", metric, BETTER)]


def _se(x: float) -> float:
    return 0.0 if math.isnan(x) else float(x)


def beats(cell: tuple[float, float], ref: tuple[float, float], metric: str) -> bool:
    r"""Whether ``cell = (mean, se)`` beats ``ref = (mean, se)`` on ``metric`` by two standard
    errors: :math:`b\,(\bar x_{cell} - \bar x_{ref}) > 2\sqrt{se_{cell}^2 + se_{ref}^2}`,
    :math:`b` = :data:`BETTER` [metric], a NaN se counted as 0. A NaN mean beats nothing and
    is beaten by nothing; equal means (both ``inf`` included) never beat; an infinite KL never
    beats, and every finite KL beats an infinite one."""
    sign = _metric(metric)
    (m1, s1), (m2, s2) = cell, ref
    if math.isnan(m1) or math.isnan(m2) or m1 == m2:
        return False
    return bool(sign * (m1 - m2) > 2 * math.sqrt(_se(s1) ** 2 + _se(s2) ** 2))


#: The metrics on which each kind of reference is a failure, and so a bar: the noise fails on
#: all; a blurred copy of the data only on sharpness (its modes and mode histogram are the
#: data's: its KL differs from the data's only by the sampling noise of fewer high-quality
#: samples); the collapse only on coverage (its one mode is as sharp as the data's).
FAILS_ON = {"uniform": tuple(BETTER), "blur1": ("high_quality", "precision"), "blur2": ("high_quality", "precision"),
            "blur3": ("high_quality", "precision"), "collapse": ("modes", "kl", "recall")}


def _short(refs: dict, metric: str) -> list[str]:
    """The trivial references that fail on ``metric`` (:data:`FAILS_ON`) and fall short of the data there."""
    if "data" not in refs:
        raise ValueError("ref_summary must have a 'data' entry")
    return [k for k in refs if metric in FAILS_ON.get(k, ()) and beats(refs["data"][metric], refs[k][metric], metric)]


def bar(ref_summary: dict, metric: str) -> tuple[str, float, float] | None:
    r"""The bar of ``metric``: ``(kind, mean, se)`` of the best trivial reference (not
    ``"data"``) among those the data beats (:func:`beats`), or None when every trivial
    reference matches the data on ``metric``. ``ref_summary``: ``{kind: {metric: (mean, se)}}``."""
    sign = _metric(metric)
    short = _short(ref_summary, metric)
    if not short:
        return None
    best = max(short, key=lambda k: sign * ref_summary[k][metric][0])
    return (best, *ref_summary[best][metric])


def _methods(summ: dict, dataset: str) -> list[str]:
    return [m for d, m in summ if d == dataset and not m.startswith(PREFIX)]


def marks(summ: dict, dataset: str, metrics=("modes", "high_quality", "kl")) -> dict[str, dict[str, bool]]:
    """``method -> metric -> marked`` for every non-reference method of ``dataset`` in ``summ``:
    True when the cell does not beat the :func:`bar` of the metric by two standard errors;
    False where the metric has no bar (every trivial reference matches the data)."""
    refs = ref_summary(summ, dataset)
    bars = {m: bar(refs, m) for m in metrics}
    return {meth: {m: bars[m] is not None and not beats(summ[(dataset, meth)][m], bars[m][1:], m) for m in metrics}
            for meth in _methods(summ, dataset)}


def beats_all(summ: dict, dataset: str, method: str, metrics=("modes", "high_quality", "kl")) -> bool:
    """Whether ``method`` beats (:func:`beats`) every trivial reference that falls short of the
    data, on every metric of ``metrics`` (a metric with no such reference passes)."""
    if (dataset, method) not in summ:
        raise ValueError(f"summ has no cell ({dataset!r}, {method!r})")
    refs, cell = ref_summary(summ, dataset), summ[(dataset, method)]
    return all(beats(cell[m], refs[k][m], m) for m in metrics for k in _short(refs, m))


def marked_table(summ: dict, dataset: str, methods, metrics=("modes", "high_quality", "kl", "precision", "recall"),
                 extra: dict | None = None) -> str:
    r"""A Markdown table of ``methods`` on ``dataset`` (mean ± s.e.), then the reference rows
    (in italics); a method cell that does not beat its metric's :func:`bar` by two standard
    errors carries a dagger (†), and the last column says whether the method beats every
    reference (:func:`beats_all` on modes, high quality and KL).

    ``extra`` maps a column name to ``{method: text}`` (e.g. seconds per seed).

    See also
    --------
    gan_notes.stats.markdown_table; Chapters 07 and 09.
    """
    names = {"modes": "modes", "high_quality": "HQ (%)", "kl": "KL", "precision": "precision", "recall": "recall"}
    fmt = {"modes": dict(digits=1), "high_quality": dict(scale=100, digits=1), "kl": dict(digits=3),
           "precision": dict(digits=3), "recall": dict(digits=3)}
    refs = ref_summary(summ, dataset)
    bars = {m: bar(refs, m) for m in metrics}
    header = ["method", *(names[m] for m in metrics), *(extra or {}), "diverged", "beats every reference"]
    rows = []
    for meth in methods:
        s = summ[(dataset, meth)]
        cells = []
        for m in metrics:
            text = format_mean_se(s[m], **fmt[m])
            if bars[m] is not None and not beats(s[m], bars[m][1:], m):
                text += " †"
            cells.append(text)
        rows.append([meth, *cells, *(col.get(meth, "") for col in (extra or {}).values()),
                     f"{s['diverged']}/{s['n'] + s['diverged']}", "yes" if beats_all(summ, dataset, meth) else "no"])
    for kind in REFERENCES:
        if kind in refs:
            rows.append([f"*ref: {kind}*", *(f"*{format_mean_se(refs[kind][m], **fmt[m])}*" for m in metrics),
                         *("" for _ in (extra or {})), "", ""])
    return markdown_table(header, rows)
