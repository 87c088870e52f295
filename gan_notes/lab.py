r"""The GAN lab's model: a 2-D GAN whose every knob can be turned between steps (chapter 13).

In the spirit of GAN Lab (Kahng et al., 2018, the in-browser visualiser), :class:`Lab` holds
a generator, a discriminator, their optimisers and everything recorded so far; ``step(n)``
trains for ``n`` iterations with the current settings, and :meth:`Lab.configure` changes them
between steps. It is pure Python and torch, so the tests and the book drive it without any
widget; the interactive view is :mod:`gan_notes.lab_widget` (:func:`gan_notes.lab_widget.show`).

One *iteration* is ``d_steps`` discriminator steps, then ``g_steps`` generator steps, each on
a fresh batch. Each step's loss is the book's one objective
(:func:`gan_notes.objective.discriminator_step_loss`,
:func:`gan_notes.objective.generator_step_loss`) for the lab's settings as a
:class:`~gan_notes.objective.Method`; the lab adds what is about the loop: the optimisers, the
random draws, the NaN guard. Every ``eval_every`` iterations the lab evaluates the generator
on a fixed batch of latents: mode coverage and the mode-histogram KL of
:func:`~gan_notes.metrics.mode_coverage`, a Jensen-Shannon estimate on a grid
(:func:`gan_notes.lab_data.grid_js`), and the mean norm of the generator's per-sample gradient
(the arrows of the view). The data sets and the JS estimate are in :mod:`gan_notes.lab_data`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gan_notes import validate
from gan_notes.lab_data import LAB_DATASETS, LIM, dataset, grid_js
from gan_notes.lipschitz import apply_spectral_norm
from gan_notes.losses import LOGISTIC, LOSSES, generator_loss
from gan_notes.metrics import mode_coverage
from gan_notes.models import mlp
from gan_notes.objective import Method, Nets, discriminator_step_loss, generator_step_loss
from gan_notes.penalties import PENALTIES
from gan_notes.train import TrainingDiverged
from gan_notes.unrolled import adam_state

__all__ = ["LabHistory", "Lab"]

#: Losses whose discriminator outputs a logit, shown as D(x) = sigmoid(logit).
# Settings that change the networks or the data: changing one restarts the run.
_STRUCTURAL = ("data", "seed", "hidden", "spectral_norm")


@dataclass
class LabHistory:
    """What a lab run recorded.

    Attributes
    ----------
    d_loss, g_loss : lists, one entry per iteration
        The loss of the last D step and of the last G step of the iteration (with the
        penalty for D), in nats for the logistic losses.
    eval_iteration : list of int
        Iterations at which the generator was evaluated (0, eval_every, ...).
    modes, high_quality, kl : lists
        :func:`~gan_notes.metrics.mode_coverage` at 3 sigma on the fixed batch: modes covered,
        high-quality fraction, KL of the mode histogram from the mode weights (nats).
    js : list
        :func:`~gan_notes.lab_data.grid_js` of the fixed batch (nats).
    grad_norm : list
        Mean norm of the per-sample gradient :math:`\\nabla_x L_G` at the fixed batch.
    """

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    eval_iteration: list[int] = field(default_factory=list)
    modes: list[int] = field(default_factory=list)
    high_quality: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    js: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)


class Lab:
    r"""A 2-D GAN to train step by step, with every setting of the GAN lab.

    Parameters
    ----------
    data : one of :data:`gan_notes.lab_data.LAB_DATASETS`
    loss : one of ``gan_notes.losses.LOSSES``
    penalty : None or one of :data:`gan_notes.penalties.PENALTIES` (``"gp"``, ``"r1"``, ``"dragan"``)
        A gradient penalty added, times ``penalty_weight``, to D's loss
        (:func:`gan_notes.penalties.penalty`).
    spectral_norm : bool
        Spectral normalisation of every linear layer of D
        (:func:`gan_notes.lipschitz.apply_spectral_norm`); switching it rebuilds D.
    instance_noise : float
        Standard deviation :math:`s` of the instance noise: D sees every input, real and
        generated, plus :math:`\mathcal N(0, s^2 I)`; 0 is off.
    d_steps, g_steps : int
        Discriminator and generator steps per iteration.
    lr_d, lr_g : float
        Adam learning rates (betas (0.5, 0.999), as in :func:`~gan_notes.train.train_gan`).
    unroll : int
        Unrolled GAN (Metz et al. 2017), as in every loop of the package
        (:func:`gan_notes.unrolled.unroll`): with k > 0, each generator step descends
        :math:`L_G(\theta_G; \phi_k)`, where :math:`\phi_0 = \phi` are D's parameters and
        :math:`\phi_1, \dots, \phi_k` are k Adam steps of D's own loss on one real batch and
        the step's generated batch, continuing D's live Adam state (moments and step count,
        learning rate ``lr_d``); the gradient flows through all k steps. D's own update is
        unchanged. (Earlier versions of the lab took plain gradient steps on fresh batches;
        that variant is gone.) The look-ahead uses D's game loss only, without penalty or
        instance noise, and does not combine with ``spectral_norm``.
    batch_size : int
    penalty_weight : float
        Weight :math:`\lambda` of the penalty (10, as :func:`~gan_notes.train.train_gan`).
    seed : int
        Seeds the networks and every random draw of the run; the lab keeps its own random
        state (a fork of torch's generator), so it neither reads nor changes torch's global
        generator.
    hidden : tuple of int
        Hidden widths of both multilayer perceptrons (ReLU); the latent is 2-D.
    eval_every : int
        Evaluate every ``eval_every`` iterations.
    n_eval : int
        Size of the fixed batch of latents (and of the fixed batch of real samples shown).

    Attributes
    ----------
    iteration : int
        Iterations taken since the last reset.
    history : LabHistory
    G, D : nn.Module
    mixture : Mixture
        The data distribution.
    method : gan_notes.objective.Method
        The current settings as the objective takes them.

    Raises
    ------
    ValueError
        An unknown name, a bad number, a bool where a number is meant, or settings that do
        not combine (``unroll`` with ``spectral_norm``); the message names the setting.
    TrainingDiverged
        (from ``step``) a loss turned NaN or infinite; the message names the iteration.

    See also
    --------
    gan_notes.objective.Method, gan_notes.lab_widget.LabWidget; Chapter 13 (the GAN lab).
    """

    def __init__(
        self,
        data: str = "ring",
        loss: str = "non_saturating",
        penalty: str | None = None,
        *,
        spectral_norm: bool = False,
        instance_noise: float = 0.0,
        d_steps: int = 1,
        g_steps: int = 1,
        lr_d: float = 1e-3,
        lr_g: float = 1e-3,
        unroll: int = 0,
        batch_size: int = 128,
        penalty_weight: float = 10.0,
        seed: int = 0,
        hidden: tuple[int, ...] = (64, 64),
        eval_every: int = 10,
        n_eval: int = 1000,
    ) -> None:
        self.settings: dict = {}
        self.n_eval = validate.integer("n_eval", n_eval)
        self.configure(
            data=data, loss=loss, penalty=penalty, spectral_norm=spectral_norm, instance_noise=instance_noise,
            d_steps=d_steps, g_steps=g_steps, lr_d=lr_d, lr_g=lr_g, unroll=unroll, batch_size=batch_size,
            penalty_weight=penalty_weight, seed=seed, hidden=hidden, eval_every=eval_every,
        )

    # --- settings -----------------------------------------------------------------------
    def __getattr__(self, name: str):
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(name)

    @staticmethod
    def _validate(name: str, v):
        if name == "data":
            return validate.choice("data", v, LAB_DATASETS)
        if name == "loss":
            return validate.choice("loss", v, LOSSES)
        if name == "penalty":
            return None if v is None else validate.choice("penalty", v, PENALTIES)
        if name == "spectral_norm":
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"spectral_norm must be a bool, got {v!r}")
            return bool(v)
        if name in ("d_steps", "g_steps", "batch_size", "eval_every"):
            return validate.integer(name, v)
        if name in ("unroll", "seed"):
            return validate.integer(name, v, minimum=0)
        if name in ("lr_d", "lr_g"):
            return validate.number(name, v, strict=True)
        if name in ("penalty_weight", "instance_noise"):
            return validate.number(name, v)
        if name == "hidden":
            if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
                raise ValueError(f"hidden must be a tuple of ints, got {v!r}")
            return tuple(validate.integer("hidden", h) for h in v)
        raise ValueError(f"unknown setting {name!r}")

    @staticmethod
    def _method(s: dict) -> Method:
        """The settings ``s`` as the objective's :class:`~gan_notes.objective.Method`."""
        try:
            return Method(loss=s["loss"], d_steps=s["d_steps"], penalty=s["penalty"], penalty_weight=s["penalty_weight"],
                          instance_noise=s["instance_noise"], spectral_norm=s["spectral_norm"], unroll=s["unroll"])
        except TypeError as err:  # the lab's settings are validated above; keep one error type
            raise ValueError(str(err)) from err

    def configure(self, **changes) -> bool:
        """Change settings (the constructor's arguments). Changes to ``data``, ``seed``,
        ``hidden`` or ``spectral_norm`` rebuild the networks and restart the run; the others
        apply from the next step on. A rejected change (``ValueError``) leaves every setting
        as it was.

        Returns
        -------
        bool
            True when the run was restarted.
        """
        new = dict(self.settings)
        for name, v in changes.items():
            new[name] = self._validate(name, v)
        method = self._method(new)
        restart = not self.settings or any(new[k] != self.settings[k] for k in _STRUCTURAL)
        self.settings, self.method = new, method
        if restart:
            self.reset()
        else:
            for opt, lr in ((self._opt_d, new["lr_d"]), (self._opt_g, new["lr_g"])):
                for group in opt.param_groups:
                    group["lr"] = lr
        return restart

    # --- state --------------------------------------------------------------------------
    def reset(self) -> None:
        """Fresh networks, optimisers and history, from the current settings and seed."""
        s = self.settings
        self.mixture = dataset(s["data"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s["seed"])
            self.G = mlp(2, 2, hidden=s["hidden"])
            self.D = mlp(2, 1, hidden=s["hidden"])
            if s["spectral_norm"]:
                apply_spectral_norm(self.D)
            self.fixed_z = torch.randn(self.n_eval, 2)
            self.real = self.mixture.sample(self.n_eval)
            self._rng = torch.get_rng_state()
        self._nets = Nets({"G": self.G, "D": self.D})
        self._opt_d = torch.optim.Adam(self.D.parameters(), lr=s["lr_d"], betas=(0.5, 0.999))
        self._opt_g = torch.optim.Adam(self.G.parameters(), lr=s["lr_g"], betas=(0.5, 0.999))
        self.iteration = 0
        self.history = LabHistory()
        self._js_floor: float | None = None
        self.evaluate()

    @property
    def js_floor(self) -> float:
        """:func:`~gan_notes.lab_data.grid_js` of ``n_eval`` samples of the data itself: what a
        perfect generator scores, the estimator's bias at this sample size."""
        if self._js_floor is None:
            self._js_floor = grid_js(self.mixture, self.real)
        return self._js_floor

    def fake(self) -> np.ndarray:
        """The generator's samples on the fixed batch of latents, shape (n_eval, 2)."""
        with torch.no_grad():
            return self.G(self.fixed_z).numpy()

    def field(self, resolution: int = 60, lim: float = LIM) -> np.ndarray:
        """D on a ``resolution`` x ``resolution`` grid over [-lim, lim]^2 (rows: x2, columns:
        x1, as ``imshow(origin="lower")`` wants): D(x) = sigmoid(logit) for the logistic
        losses (``LOGISTIC``), the raw critic value otherwise (a WGAN critic is no probability)."""
        resolution = validate.integer("resolution", resolution)
        ticks = torch.linspace(-lim, lim, resolution)
        gx, gy = torch.meshgrid(ticks, ticks, indexing="xy")
        with torch.no_grad():
            out = self.D(torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)).reshape(resolution, resolution)
        return (torch.sigmoid(out) if self.loss in LOGISTIC else out).numpy()

    def generator_gradients(self, points=None) -> tuple[np.ndarray, np.ndarray]:
        r"""Per-sample :math:`-\nabla_x L_G(x)` at generated points (default: the fixed batch):
        the direction in which the current D pushes each sample. Returns (points, directions)."""
        x = torch.as_tensor(self.fake() if points is None else points, dtype=torch.float32)
        x = x.detach().requires_grad_(True)
        # The batch-mean loss times the batch size has the per-sample losses' gradients.
        (g,) = torch.autograd.grad(generator_loss(self.loss, self.D(x)) * x.shape[0], x)
        return x.detach().numpy(), -g.numpy()

    def evaluate(self) -> dict:
        """Evaluate the generator on the fixed batch and append to the history."""
        x = self.fake()
        if not np.isfinite(x).all():
            raise TrainingDiverged(f"iteration {self.iteration}: the generator returned NaN or infinite samples")
        mc = mode_coverage(x, self.mixture.centers, float(self.mixture.std[0]), weights=self.mixture.weights.double())
        _, grads = self.generator_gradients(x)
        row = {"modes": mc["modes"], "high_quality": mc["high_quality"], "kl": mc["kl"],
               "js": grid_js(self.mixture, x), "grad_norm": float(np.linalg.norm(grads, axis=1).mean())}
        h = self.history
        h.eval_iteration.append(self.iteration)
        for k, v in row.items():
            getattr(h, k).append(v)
        return row

    # --- training -----------------------------------------------------------------------
    def _check(self, name: str, value: torch.Tensor) -> float:
        """The NaN guard: the loss as a float, or TrainingDiverged naming the iteration."""
        v = float(value.detach())
        if not math.isfinite(v):
            raise TrainingDiverged(f"iteration {self.iteration + 1}: the {name} loss is {v}; lower the learning rates")
        return v

    def _d_step(self) -> float:
        """One D step on fresh draws: ``real``, ``fake`` (no gradient to G), instance noise."""
        real = self.mixture.sample(self.batch_size)
        with torch.no_grad():
            fake = self.G(torch.randn(self.batch_size, 2))
        r = {"real": real, "fake": fake}
        if self.method.instance_noise:
            r["noise_real"], r["noise_fake"] = torch.randn_like(real), torch.randn_like(fake)
        loss, _ = discriminator_step_loss(self.method, self._nets, r)
        value = self._check("discriminator", loss)
        self._opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_d.step()
        return value

    def _g_step(self) -> float:
        """One G step; gradients for G only, so D's ``.grad`` is left as D's step made it."""
        m = self.method
        r = {"z": torch.randn(self.batch_size, 2)}
        if m.instance_noise:
            r["noise_fake"] = torch.randn(self.batch_size, 2)
        if m.unroll:
            r["real"] = self.mixture.sample(self.batch_size)
        adam = adam_state(self._opt_d, dict(self.D.named_parameters())) if m.unroll else None
        loss = generator_step_loss(m, self._nets, r, adam=adam)
        value = self._check("generator", loss)
        grads = torch.autograd.grad(loss, list(self.G.parameters()))
        for p, g in zip(self.G.parameters(), grads):
            p.grad = g
        self._opt_g.step()
        return value

    def step(self, n: int = 1) -> LabHistory:
        """Train for ``n`` iterations with the current settings; returns the history.

        Raises
        ------
        ValueError
            ``n`` is not a non-negative int.
        TrainingDiverged
            A loss turned NaN or infinite.
        """
        n = validate.integer("n", n, minimum=0)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng)
            try:
                for _ in range(n):
                    d = [self._d_step() for _ in range(self.d_steps)][-1]
                    g = [self._g_step() for _ in range(self.g_steps)][-1]
                    self.iteration += 1
                    self.history.d_loss.append(d)
                    self.history.g_loss.append(g)
                    if self.iteration % self.eval_every == 0:
                        self.evaluate()
            finally:
                self._rng = torch.get_rng_state()
        return self.history

    def __repr__(self) -> str:
        shown = ("data", "loss", "penalty", "spectral_norm", "instance_noise", "d_steps", "g_steps", "lr_d", "lr_g",
                 "unroll", "batch_size", "seed")
        return f"Lab({', '.join(f'{k}={self.settings[k]!r}' for k in shown)}, iteration={self.iteration})"
