"""The GAN lab's view: matplotlib panels of a :class:`~gan_notes.lab.Lab`, and the ipywidgets UI
that drives it (chapter 13).

- :class:`FieldPanel` draws the discriminator's heat map with real and generated samples and
  the generator's gradient arrows on one ``Axes``, and updates those artists in place;
- :class:`LabFigure` adds the loss curves and the metrics over time (mode-histogram KL, the
  grid JS estimate, modes covered), on a figure that is not managed by pyplot;
- :class:`LabWidget` builds the controls (ipywidgets 8, core widgets only, so it runs in
  JupyterLab, Jupyter Notebook and Colab without extensions) and shows the figure as a PNG in
  an ``Image`` widget, replaced after every frame;
- :func:`animate` records a run as a matplotlib animation, for the static book.

**How play works.** ``Play`` is ipywidgets' front-end timer: while it plays, the browser
increments its value every ``interval`` ms and each increment runs one frame (``steps per
frame`` iterations, then a redraw) in the kernel. No thread is involved, so it behaves the same
in Jupyter and Colab. Limits: the kernel is busy during a frame, so other cells wait; when a frame
takes longer than the interval, ticks queue up in the kernel, and the lab drops ticks that arrive
less than half an interval after the previous frame ended, so a slow machine shows fewer frames
instead of running ever further behind. A pause takes effect after the frame in progress.
"""

from __future__ import annotations

import io
import math
import sys
import time

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gan_notes.lab import Lab
from gan_notes.losses import LOGISTIC
from gan_notes.lab_data import LAB_DATASETS, LIM
from gan_notes.losses import LOSSES
from gan_notes.penalties import PENALTIES
from gan_notes.plotting import smooth
from gan_notes.train import TrainingDiverged

__all__ = ["FieldPanel", "LabFigure", "LabWidget", "animate", "show", "frontend_attached"]


class FieldPanel:
    r"""The lab's main view on one ``Axes``: D as a heat map, real (blue) and generated
    (orange) samples, and arrows :math:`-\nabla_x L_G(x)` at generated samples, normalised by the
    longest arrow of the frame (lengths compare within a frame, not across frames).

    The same picture as :func:`gan_notes.plotting.discriminator_field`, but built once and then
    updated in place (``update()``), which live views and animations need.

    Parameters
    ----------
    ax : Axes
    lab : Lab
    n_show : int
        Samples shown of each kind; ``arrows`` of the generated ones carry an arrow.
    resolution : int
        Grid points per side of the heat map.
    colorbar : bool
        Draw a colour bar.

    See also
    --------
    LabFigure; Chapter 13 (the GAN lab).
    """

    def __init__(self, ax: Axes, lab: Lab, n_show: int = 500, arrows: int = 100, resolution: int = 60,
                 colorbar: bool = True) -> None:
        self.ax, self.lab = ax, lab
        self.n_show, self.arrows, self.resolution = n_show, arrows, resolution
        self.image = ax.imshow(np.zeros((resolution, resolution)), extent=(-LIM, LIM, -LIM, LIM), origin="lower",
                               cmap="RdBu_r", alpha=0.8, vmin=0, vmax=1)
        self.colorbar = ax.figure.colorbar(self.image, ax=ax, fraction=0.046, pad=0.04) if colorbar else None
        self.real = ax.scatter([], [], s=2, color="C0", alpha=0.4, label="data")
        self.fake = ax.scatter([], [], s=2, color="C1", alpha=0.6, label="generated")
        zeros = np.zeros(arrows)
        self.quiver = ax.quiver(zeros, zeros, zeros, zeros, color="k", width=0.004, scale=8, alpha=0.7,
                                angles="xy")
        ax.set_xlim(-LIM, LIM)
        ax.set_ylim(-LIM, LIM)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.grid(False)
        self.update()

    def update(self, title: str | None = None) -> None:
        """Redraw from the lab's current state."""
        lab = self.lab
        values = lab.field(self.resolution)
        self.image.set_data(values)
        if lab.loss in LOGISTIC:
            self.image.set_clim(0, 1)
            label = "D(x)"
        else:
            lo, hi = float(values.min()), float(values.max())
            self.image.set_clim(lo, hi if hi > lo else lo + 1e-6)
            label = "critic output"
        if self.colorbar is not None:
            self.colorbar.set_label(label)
        self.real.set_offsets(lab.real[: self.n_show].numpy())
        fake = lab.fake()
        self.fake.set_offsets(fake[: self.n_show])
        points, step = lab.generator_gradients(fake[: self.arrows])
        scale = float(np.abs(step).max()) or 1.0
        self.quiver.set_offsets(points)
        self.quiver.set_UVC(step[:, 0] / scale, step[:, 1] / scale)
        self.ax.set_title(title if title is not None else f"{lab.data}, {lab.loss}: iteration {lab.iteration}", fontsize=9)


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)  # inf KL (no sharp sample): a gap in the curve


class LabFigure:
    """Three panels of a lab: :class:`FieldPanel`, the two losses per iteration (raw, faint, and
    a moving average), and the metrics at each evaluation: the mode-histogram KL and the grid
    JS estimate (with the JS of data samples, the estimator's floor, dashed).

    The figure is a bare ``matplotlib.figure.Figure`` (not pyplot's), so it is never shown by
    accident; :meth:`png` renders it.

    See also
    --------
    LabWidget, animate; Chapter 13 (the GAN lab).
    """

    def __init__(self, lab: Lab, figsize: tuple[float, float] = (11.0, 3.4), dpi: int = 80, window: int = 20) -> None:
        self.lab, self.window = lab, window
        self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.figure)
        ax_field, self.ax_loss, self.ax_metrics = self.figure.subplots(1, 3, width_ratios=(1.2, 1, 1))
        self.field = FieldPanel(ax_field, lab)
        self.loss_lines = {}
        for name, color in (("D loss", "C0"), ("G loss", "C1")):
            raw, = self.ax_loss.plot([], [], color=color, alpha=0.25, lw=0.8)
            avg, = self.ax_loss.plot([], [], color=color, label=name)
            self.loss_lines[name] = (raw, avg)
        self.ax_loss.set_xlabel("iteration")
        self.ax_loss.set_ylabel("loss")
        self.ax_loss.legend(fontsize=8, loc="upper right")
        self.kl_line, = self.ax_metrics.plot([], [], "-", color="C2", label="mode KL")
        self.js_line, = self.ax_metrics.plot([], [], "-", color="C3", label="JS (grid)")
        self.floor_line = self.ax_metrics.axhline(0, color="C3", ls="--", lw=1, label="JS of data samples")
        self.ax_metrics.set_xlabel("iteration")
        self.ax_metrics.set_ylabel("nats")
        self.ax_metrics.legend(fontsize=8, loc="upper right")
        self.update()
        # Lay out once, then keep the positions: constrained layout on every frame is slow.
        self.figure.canvas.draw()
        self.figure.set_layout_engine("none")

    def update(self) -> None:
        """Redraw every panel from the lab's current state."""
        lab, h = self.lab, self.lab.history
        self.field.update()
        t = np.arange(1, len(h.d_loss) + 1)
        for (raw, avg), y in zip(self.loss_lines.values(), (h.d_loss, h.g_loss)):
            raw.set_data(t, _finite(y))
            s = smooth(y, self.window) if len(y) else np.array([])
            avg.set_data(t[len(t) - len(s):], _finite(s))
        self.kl_line.set_data(h.eval_iteration, _finite(h.kl))
        self.js_line.set_data(h.eval_iteration, _finite(h.js))
        self.floor_line.set_ydata([lab.js_floor, lab.js_floor])
        for ax in (self.ax_loss, self.ax_metrics):
            ax.relim()
            ax.autoscale_view()
            ax.set_xlim(0, max(lab.iteration, 1))
        self.ax_metrics.set_ylim(bottom=0)
        kl = h.kl[-1]
        self.ax_metrics.set_title(f"modes {h.modes[-1]}/{lab.mixture.n_modes}, KL {kl:.2f}, JS {h.js[-1]:.3f}"
                                  if math.isfinite(kl) else f"modes 0/{lab.mixture.n_modes}, JS {h.js[-1]:.3f}", fontsize=9)

    def png(self) -> bytes:
        """The figure as PNG bytes."""
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png")
        return buf.getvalue()


def animate(lab: Lab, frames: int, steps_per_frame: int, figsize: tuple[float, float] = (11.0, 3.4), dpi: int = 60,
            interval: int = 200):
    """Record a run of ``lab`` as a ``matplotlib.animation.FuncAnimation`` of :class:`LabFigure`:
    the first frame is the current state, each later frame follows ``steps_per_frame`` more
    iterations. Render it with ``.to_jshtml()`` (rendering runs the training).

    See also
    --------
    LabFigure; Chapter 13 (the pre-rendered run).
    """
    from matplotlib.animation import FuncAnimation

    view = LabFigure(lab, figsize=figsize, dpi=dpi)

    def frame(i: int):
        if i > 0:
            lab.step(steps_per_frame)
        view.update()
        return []

    return FuncAnimation(view.figure, frame, frames=frames, init_func=lambda: [], interval=interval, blit=False,
                         repeat=False)


def frontend_attached() -> bool:
    """Whether this code runs in a kernel with a live front end that can show widgets.

    Heuristic: in an IPython kernel whose current request allows stdin. Jupyter's front ends
    and Colab allow it; headless executors (nbclient, nbconvert, nbval, the book's build)
    don't, and there widgets would only store dead state in the notebook.
    """
    if "google.colab" in sys.modules:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    kernel = getattr(get_ipython(), "kernel", None)
    return bool(getattr(kernel, "_allow_stdin", False))


class LabWidget:
    """The interactive GAN lab: controls for every setting of a :class:`~gan_notes.lab.Lab`,
    play / pause (ipywidgets ``Play``), one step, reset, and the :class:`LabFigure`.

    Pass an existing ``lab``, or the settings of a new one (``Lab``'s arguments);
    ``steps_per_frame`` and ``interval_ms`` (the timer's period) set the initial pace and ``dpi``
    the figure's resolution. Changing a control calls ``lab.configure`` (changing the data, the seed, or switching
    spectral normalisation restarts the run; the rest apply from the next step). Displaying the
    object shows the UI.

    Attributes
    ----------
    lab : Lab
    view : LabFigure
    controls : dict name -> widget
        One per setting of the lab (``data``, ``loss``, ``penalty`` (a dropdown whose
        ``"none"`` is ``None``), ``spectral_norm`` (a checkbox), ``instance_noise`` (a slider,
        0 = off), ``d_steps``, ``g_steps``, ``lr_d``, ``lr_g``, ``unroll``, ``batch_size``,
        ``penalty_weight``, ``seed``), plus ``steps_per_frame``.
    play, step_button, reset_button, image, status, ui
        The timer, the buttons, the figure's ``Image``, a status line and the whole layout.
    dropped : int
        Timer ticks dropped because they queued up behind a slow frame.
    frames : int
        Frames drawn so far.

    See also
    --------
    show; Chapter 13 (the GAN lab).
    """

    def __init__(self, lab: Lab | None = None, steps_per_frame: int = 10, interval_ms: int = 300, dpi: int = 80,
                 **settings) -> None:
        import ipywidgets as w

        if lab is not None and settings:
            raise ValueError("pass either lab or settings, not both")
        self.lab = lab if lab is not None else Lab(**settings)
        self.view = LabFigure(self.lab, dpi=dpi)
        self.frames, self.dropped, self._last_frame_end = 0, 0, -math.inf
        s = self.lab.settings
        wide = {"style": {"description_width": "initial"}}

        def log_slider(name, lo, hi, desc):
            v = s[name]
            lo, hi = min(lo, math.floor(math.log10(v))), max(hi, math.ceil(math.log10(v)))
            return w.FloatLogSlider(value=v, base=10, min=lo, max=hi, step=0.25, description=desc, readout_format=".1e", **wide)

        batches = sorted({16, 32, 64, 128, 256, 512, s["batch_size"]})
        self.controls = {
            "data": w.Dropdown(options=LAB_DATASETS, value=s["data"], description="data"),
            "loss": w.Dropdown(options=LOSSES, value=s["loss"], description="loss"),
            "penalty": w.Dropdown(options=[("none", None), *((p, p) for p in PENALTIES)], value=s["penalty"],
                                  description="penalty", **wide),
            "spectral_norm": w.Checkbox(value=s["spectral_norm"], description="spectral norm", indent=False),
            "instance_noise": w.FloatSlider(value=s["instance_noise"], min=0, max=max(1.0, s["instance_noise"]), step=0.01,
                                            description="instance noise", **wide),
            "d_steps": w.IntSlider(value=s["d_steps"], min=1, max=max(10, s["d_steps"]), description="D steps", **wide),
            "g_steps": w.IntSlider(value=s["g_steps"], min=1, max=max(10, s["g_steps"]), description="G steps", **wide),
            "lr_d": log_slider("lr_d", -5, -1, "D learning rate"),
            "lr_g": log_slider("lr_g", -5, -1, "G learning rate"),
            "unroll": w.IntSlider(value=s["unroll"], min=0, max=max(10, s["unroll"]), description="unroll k", **wide),
            "batch_size": w.Dropdown(options=batches, value=s["batch_size"], description="batch size", **wide),
            "penalty_weight": log_slider("penalty_weight", -2, 2, "penalty weight") if s["penalty_weight"] > 0
            else w.FloatText(value=0.0, description="penalty weight", **wide),
            "seed": w.BoundedIntText(value=s["seed"], min=0, max=max(10**6, s["seed"]), description="seed"),
            "steps_per_frame": w.IntSlider(value=steps_per_frame, min=1, max=max(100, steps_per_frame),
                                           description="steps per frame", **wide),
        }
        for name, control in self.controls.items():
            if name != "steps_per_frame":
                control.observe(self._on_setting, names="value")
        self.play = w.Play(value=0, min=0, max=10**9, step=1, interval=interval_ms, description="play")
        if hasattr(self.play, "show_repeat"):
            self.play.show_repeat = False
        self.play.observe(self._on_tick, names="value")
        self.step_button = w.Button(description="one step", tooltip="run one frame: 'steps per frame' iterations")
        self.step_button.on_click(lambda _: self.advance())
        self.reset_button = w.Button(description="reset", tooltip="new networks from the seed")
        self.reset_button.on_click(lambda _: self.reset())
        self.image = w.Image(format="png")
        self.status = w.HTML()
        c = self.controls
        column = lambda *names: w.VBox([c[n] for n in names])  # noqa: E731
        self.ui = w.VBox([
            w.HBox([self.play, self.step_button, self.reset_button, c["steps_per_frame"]]),
            w.HBox([column("data", "loss", "penalty", "spectral_norm", "seed"),
                    column("d_steps", "g_steps", "unroll", "batch_size"),
                    column("lr_d", "lr_g", "penalty_weight", "instance_noise")]),
            self.image,
            self.status,
        ])
        self.redraw()

    def _key(self, widget) -> str:
        return next(k for k, v in self.controls.items() if v is widget)

    def _on_setting(self, change) -> None:
        name = self._key(change["owner"])
        try:
            restarted = self.lab.configure(**{name: change["new"]})
        except ValueError as err:
            self.status.value = f"<b>{name}</b>: {err}"
            return
        self.redraw(note="restarted: " + name if restarted else None)

    def _on_tick(self, change) -> None:
        # Ticks that queued while the kernel drew the last frame arrive at once: drop them.
        if time.monotonic() - self._last_frame_end < self.play.interval / 2000:
            self.dropped += 1
            return
        self.advance()

    def advance(self) -> None:
        """One frame: ``steps per frame`` iterations, then a redraw (what "one step" does)."""
        try:
            self.lab.step(self.controls["steps_per_frame"].value)
        except TrainingDiverged as err:
            if hasattr(self.play, "playing"):
                self.play.playing = False
            # The networks hold NaNs now: keep the last picture, say what happened.
            self.status.value = f"<b>diverged</b>: {err}. Lower the learning rates and press reset."
            return
        self.redraw()

    def reset(self) -> None:
        """New networks and an empty history, from the current settings."""
        self.lab.reset()
        self.redraw(note="reset")

    def redraw(self, note: str | None = None) -> None:
        """Update the figure and the status line from the lab."""
        self.view.update()
        self.image.value = self.view.png()
        self.frames += 1
        self._last_frame_end = time.monotonic()
        h = self.lab.history
        text = (f"iteration {self.lab.iteration} &middot; D loss {h.d_loss[-1]:.3f} &middot; G loss {h.g_loss[-1]:.3f}"
                if h.d_loss else "iteration 0")
        text += f" &middot; modes {h.modes[-1]}/{self.lab.mixture.n_modes} &middot; JS {h.js[-1]:.3f} (data: {self.lab.js_floor:.3f})"
        self.status.value = text + (f" &middot; <i>{note}</i>" if note else "")

    def _repr_mimebundle_(self, **kwargs):
        return self.ui._repr_mimebundle_(**kwargs)


def show(lab: Lab | None = None, *, force: bool = False, **settings) -> LabWidget | None:
    """Display the interactive lab and return its :class:`LabWidget`.

    Where no live front end is attached (see :func:`frontend_attached`: the book's executor,
    nbval, a script) it prints a note instead and returns None, so executed notebooks carry no
    dead widget state; ``force=True`` builds and displays it anyway.

    See also
    --------
    LabWidget; Chapter 13 (the GAN lab).
    """
    if not (force or frontend_attached()):
        print("The GAN lab is interactive: run this notebook in Jupyter or Colab to use it "
              "(here no live front end is attached, so nothing is built).")
        return None
    from IPython.display import display

    widget = LabWidget(lab, **settings)
    display(widget)
    return widget
