"""The book's shared figures, so the chapters stay about ideas (chapters 01, 04-06, 10-12).

Every function draws on a given matplotlib ``Axes`` and returns it, except :func:`image_grid`,
which returns an array for ``imshow``; none calls ``plt.show``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes

from gan_notes.losses import LOGISTIC, generator_loss
from gan_notes.validate import integer

__all__ = ["samples", "discriminator_field", "densities_1d", "mode_histogram", "loss_curves", "learning_curves", "smooth",
           "image_grid"]


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def samples(ax: Axes, real=None, fake=None, title: str | None = None, lim: float | None = None) -> Axes:
    """Scatter real (blue) and generated (orange) 2-D samples, equal aspect."""
    if real is not None:
        r = _np(real)
        ax.scatter(r[:, 0], r[:, 1], s=2, color="C0", alpha=0.3, label="data")
    if fake is not None:
        f = _np(fake)
        ax.scatter(f[:, 0], f[:, 1], s=2, color="C1", alpha=0.5, label="generated")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def discriminator_field(
    ax: Axes,
    discriminator: torch.nn.Module,
    fake,
    real=None,
    lim: float = 2.0,
    resolution: int = 120,
    loss: str = "non_saturating",
    arrows: int = 150,
    title: str | None = None,
    logit: bool | None = None,
) -> Axes:
    r"""The discriminator as a heat map on :math:`[-\text{lim}, \text{lim}]^2`, samples on top,
    and the generator's gradient arrows.

    With ``logit`` the network's output is a logit :math:`a(x)` and the map shows
    :math:`D(x) = \sigma(a(x))` on the fixed scale :math:`[0, 1]`. Without it the output is a
    critic's raw value :math:`f(x)` (WGAN, hinge, LSGAN), shown as it is, on a colour scale
    symmetric about 0 (:math:`\pm \max |f|` over the grid): a sigmoid would invent a
    probability the critic never claimed.

    The arrows at generated points are :math:`-\nabla_x L_G(x)` for the generator loss
    ``loss`` (the direction the loss pushes each sample), normalised for display: their
    lengths compare within a panel.

    Parameters
    ----------
    ax : Axes
    discriminator : nn.Module
        Maps points ``(n, 2)`` to ``(n, 1)``.
    fake, real : arrays (n, 2)
        Generated and real samples; ``real`` is optional.
    lim, resolution : float, int
        The grid: ``resolution`` points per axis on :math:`[-\text{lim}, \text{lim}]`.
    loss : str
        The generator loss whose gradient the arrows show (:func:`gan_notes.losses.generator_loss`).
    arrows : int
        How many generated points get an arrow (0: none).
    title : str, optional
    logit : bool, optional
        Whether the output is a logit. Default: ``True`` for the logistic losses
        (``"minimax"``, ``"non_saturating"``), ``False`` for the others.

    See also
    --------
    samples; Chapters 04 and 06.
    """
    if logit is None:
        logit = loss in LOGISTIC
    if not isinstance(logit, bool):
        raise TypeError(f"logit must be a bool or None, got {logit!r}")
    dev = next(discriminator.parameters()).device
    ticks = torch.linspace(-lim, lim, resolution)
    gx, gy = torch.meshgrid(ticks, ticks, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(dev)
    with torch.no_grad():
        out = discriminator(grid).reshape(resolution, resolution).float().cpu()
    if logit:
        values, vmin, vmax, label = torch.sigmoid(out), 0.0, 1.0, "D(x)"
    else:
        vmax = float(out.abs().max()) or 1.0
        values, vmin, label = out, -vmax, "critic f(x) (raw output)"
    im = ax.imshow(values.numpy(), extent=(-lim, lim, -lim, lim), origin="lower", cmap="RdBu_r", vmin=vmin, vmax=vmax, alpha=0.8)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=label)
    samples(ax, real=real, fake=fake, lim=lim, title=title)
    if arrows:
        f = torch.as_tensor(_np(fake)[:arrows], dtype=torch.float32, device=dev).requires_grad_(True)
        # Per-sample loss gradients: sum the batch-mean loss times the batch size.
        (g,) = torch.autograd.grad(generator_loss(loss, discriminator(f)) * f.shape[0], f)
        step = -g.cpu().numpy()
        scale = np.abs(step).max() or 1.0
        fp = f.detach().cpu().numpy()
        ax.quiver(fp[:, 0], fp[:, 1], step[:, 0] / scale, step[:, 1] / scale, color="k", width=0.004, scale=8, alpha=0.7)
    return ax


def densities_1d(ax: Axes, x, curves: dict[str, np.ndarray], xlabel: str = "x", ylabel: str = "density") -> Axes:
    """Plot named 1-D curves (densities, discriminators) against x, with a legend."""
    xs = _np(x).ravel()
    for name, y in curves.items():
        ax.plot(xs, _np(y).ravel(), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def mode_histogram(ax: Axes, steps: Sequence[int], counts, title: str | None = None) -> Axes:
    """Heat map of the fraction of high-quality samples on each mode (rows) over training (columns)."""
    c = _np(counts).astype(float)
    if c.ndim != 2 or c.shape[0] != len(steps):
        raise ValueError(f"counts must have shape (len(steps), K), got {c.shape}")
    frac = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(frac.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                   extent=(-0.5, len(steps) - 0.5, -0.5, c.shape[1] - 0.5))
    ax.figure.colorbar(im, ax=ax, label="fraction of high-quality samples")
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 6)).round().astype(int)
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(steps[i]) for i in ticks])
    ax.set_xlabel("generator step")
    ax.set_ylabel("mode")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def smooth(y, window: int = 50) -> np.ndarray:
    r"""Moving average over :math:`w = \min(\text{window}, \text{len}(y))` points, the 'valid' part:
    :math:`\bar y_t = \frac1w \sum_{i=0}^{w-1} y_{t+i}` for :math:`t = 0, \dots, \text{len}(y) - w`.

    See also
    --------
    loss_curves; Chapters 01 and 12.
    """
    window = integer("window", window)
    y = _np(y).astype(float)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D sequence, got shape {y.shape}")
    w = min(window, len(y))
    return np.convolve(y, np.ones(w) / w, mode="valid")


def loss_curves(
    ax: Axes, history, window: int = 50, equilibria: bool = True, labels: tuple[str, str] = ("D loss", "G loss")
) -> Axes:
    r"""Discriminator and generator losses of a :class:`~gan_notes.train.History`, raw (faint)
    and as a moving average over ``window`` steps (:func:`smooth`), against the generator step.

    With ``equilibria``, dashed lines mark :math:`\log 4` and :math:`\log 2`, the values of the
    logistic losses (D's, and the non-saturating G's) when :math:`D = 1/2` everywhere.

    Parameters
    ----------
    ax : Axes
    history : History
        Anything with ``d_loss`` and ``g_loss`` arrays, one entry per generator step.
    window : int
        Moving-average width.
    equilibria : bool
        Draw the :math:`\log 4`, :math:`\log 2` lines.
    labels : (str, str)
        Legend entries of the D and G curves.

    See also
    --------
    smooth; Chapter 01 (what the loss curves say).
    """
    t = np.arange(1, len(history.d_loss) + 1)
    for name, y, color in ((labels[0], history.d_loss, "C0"), (labels[1], history.g_loss, "C1")):
        ax.plot(t, y, color=color, alpha=0.2)
        s = smooth(y, window)
        ax.plot(t[len(t) - len(s):], s, color=color, label=name)
    if equilibria:
        ax.axhline(math.log(4), color="C0", ls="--", lw=1, label=r"$\log 4$")
        ax.axhline(math.log(2), color="C1", ls="--", lw=1, label=r"$\log 2$")
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=8)
    return ax


#: Line styles of the reference rows in :func:`learning_curves`.
_REF_STYLES = {"data": ("k", "-"), "blur1": ("0.35", "--"), "blur2": ("0.5", "--"), "blur3": ("0.65", "--"),
               "uniform": ("tab:red", ":"), "collapse": ("tab:purple", "-.")}


def learning_curves(ax: Axes, curves: Sequence[dict], metric: str, refs: dict | None = None, scale: float = 1.0,
                    colors: dict | None = None) -> Axes:
    r"""Learning curves of benchmark cells: the mean over seeds of ``metric`` (± one standard
    error, shaded) against the iteration, on a log axis from the first checkpoint, with the
    reference rows as horizontal lines, so that a reader sees whether a method lost or had not
    finished.

    Parameters
    ----------
    ax : Axes
    curves : sequence of dict
        Cells' curves as :func:`gan_notes.benchmark.run_cell` returns them (``"method"``,
        ``"steps"``, and ``metric``: a list per checkpoint of values per seed; NaN for diverged
        seeds, left out of the mean).
    metric : str
        E.g. ``"high_quality"`` or ``"modes"``.
    refs : dict, optional
        ``{kind: {metric: (mean, se)}}`` (:func:`gan_notes.references.ref_summary`).
    scale : float
        E.g. 100 for percent.
    colors : dict method -> colour, optional

    See also
    --------
    gan_notes.benchmark; Chapters 07 and 09.
    """
    for i, c in enumerate(curves):
        steps = np.asarray(c["steps"], dtype=float)
        vals = np.asarray(c[metric], dtype=float) * scale  # (checkpoints, seeds)
        keep = steps > 0
        n = np.sum(np.isfinite(vals), axis=1)
        with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as sup:
            sup.filter(RuntimeWarning)
            mean = np.nanmean(vals, axis=1)
            se = np.nanstd(vals, axis=1, ddof=1) / np.sqrt(np.maximum(n, 1))
        color = (colors or {}).get(c["method"], f"C{i % 10}")
        ax.plot(steps[keep], mean[keep], color=color, marker="o", ms=3, label=c["method"])
        ax.fill_between(steps[keep], (mean - se)[keep], (mean + se)[keep], color=color, alpha=0.2, lw=0)
    for kind, v in (refs or {}).items():
        if metric in v and math.isfinite(v[metric][0]):
            color, ls = _REF_STYLES.get(kind, ("0.5", ":"))
            ax.axhline(v[metric][0] * scale, color=color, ls=ls, lw=1, label=f"ref: {kind}")
    ax.set_xscale("log")
    ax.set_xlabel("iteration (log scale)")
    return ax


def image_grid(images, nrow: int = 8, padding: int = 2) -> np.ndarray:
    r"""Tile images ``(n, C, H, W)`` in [-1, 1] into one ``(rows, cols, C)`` array in [0, 1]
    for ``plt.imshow``: image :math:`i` goes to row :math:`\lfloor i/nrow \rfloor`, column
    :math:`i \bmod nrow`; :math:`x \mapsto (x + 1)/2`, clipped; ``padding`` pixels of 1 (white) between.

    See also
    --------
    gan_notes.image_training.train_image_gan (its ``samples``); Chapters 10-12.
    """
    x = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, dtype=float)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"images must have shape (n, C, H, W) with n >= 1, got {x.shape}")
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1 or isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"nrow must be a positive int and padding a non-negative int, got {nrow!r}, {padding!r}")
    n, c, h, w = x.shape
    rows, cols = -(-n // nrow), min(n, nrow)
    grid = np.ones((rows * (h + padding) + padding, cols * (w + padding) + padding, c))
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top : top + h, left : left + w] = np.clip((x[i].transpose(1, 2, 0) + 1) / 2, 0, 1)
    return grid
