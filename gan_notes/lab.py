r"""The GAN lab's model: a 2-D GAN whose every knob can be turned between steps (chapter 13).

In the spirit of GAN Lab (Kahng et al., 2018, the in-browser visualiser), :class:`Lab` holds
a generator, a discriminator, their optimisers and everything recorded so far; ``step(n)``
trains for ``n`` iterations with the current settings, and :meth:`Lab.configure` changes them
between steps. It is pure Python and torch, so the tests and the book drive it without any
widget; the interactive view is :mod:`gan_notes.lab_widget` (``gan_notes.lab.show()``).

One *iteration* is ``d_steps`` discriminator steps, then ``g_steps`` generator steps, each on
a fresh batch. Every ``eval_every`` iterations the lab evaluates the generator on a fixed batch
of latents: mode coverage and the mode-histogram KL of :func:`~gan_notes.metrics.mode_coverage`,
a Jensen-Shannon estimate on a grid (:func:`grid_js`), and the mean norm of the generator's
per-sample gradient (the arrows of the view). The data sets and the JS estimate are in
:mod:`gan_notes.lab_data` (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import spectral_norm

from gan_notes.lab_data import DATASETS, LIM, cell_masses, dataset, grid_js
from gan_notes.losses import LOSSES, discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from gan_notes.metrics import mode_coverage
from gan_notes.models import mlp
from gan_notes.train import TrainingDiverged

# The data sets and the JS estimate live in gan_notes.lab_data; re-exported for convenience.
__all__ = ["DATASETS", "LIM", "REGULARISERS", "LOGISTIC", "dataset", "cell_masses", "grid_js", "LabHistory", "Lab", "show"]

#: Regularisers of the discriminator.
REGULARISERS = ("none", "gp", "r1", "spectral_norm", "instance_noise")
#: Losses whose discriminator outputs a logit, shown as D(x) = sigmoid(logit).
LOGISTIC = ("minimax", "non_saturating")
# Settings that change the networks or the data: changing one restarts the run.
_STRUCTURAL = ("data", "seed", "hidden", "spectral")


@dataclass
class LabHistory:
    """What a lab run recorded.

    Attributes
    ----------
    d_loss, g_loss : lists, one entry per iteration
        The loss of the last D step and of the last G step of the iteration (with the
        regulariser's penalty for D), in nats for the logistic losses.
    eval_iteration : list of int
        Iterations at which the generator was evaluated (0, eval_every, ...).
    modes, high_quality, kl : lists
        :func:`~gan_notes.metrics.mode_coverage` at 3 sigma on the fixed batch: modes covered,
        high-quality fraction, KL of the mode histogram from the mode weights (nats).
    js : list
        :func:`grid_js` of the fixed batch (nats).
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


def _positive_int(name: str, v, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _nonnegative(name: str, v, positive: bool = False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number, got {v!r}") from err
    if not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")
    return f


class Lab:
    r"""A 2-D GAN to train step by step, with every setting of the GAN lab.

    Parameters
    ----------
    data : one of ``DATASETS``
    loss : one of ``gan_notes.losses.LOSSES``
    regulariser : one of ``REGULARISERS``
        ``"gp"`` adds ``penalty_weight`` times :func:`~gan_notes.losses.gradient_penalty`,
        ``"r1"`` ``penalty_weight`` times :func:`~gan_notes.losses.r1_penalty` to D's loss;
        ``"spectral_norm"`` wraps every linear layer of D in
        ``torch.nn.utils.parametrizations.spectral_norm``; ``"instance_noise"`` adds
        :math:`\mathcal N(0, \mathrm{noise\_std}^2 I)` to everything D sees, real and fake.
    d_steps, g_steps : int
        Discriminator and generator steps per iteration.
    lr_d, lr_g : float
        Adam learning rates (betas (0.5, 0.999), as in :func:`~gan_notes.train.train_gan`).
    unroll : int
        Unrolled GAN (Metz et al. 2017): with k > 0, each generator step descends
        :math:`L_G(\theta_G; \phi_k)`, where :math:`\phi_0 = \phi` are D's parameters and
        :math:`\phi_{j+1} = \phi_j - \eta_D \nabla_\phi L_D(\phi_j, \theta_G)` are k plain
        gradient steps of D (learning rate ``lr_d``, on fresh batches, with the regulariser),
        and the gradient flows through all k steps (``torch.func.functional_call``). D's own
        update is unchanged. Metz et al. unroll Adam; plain steps keep the look-ahead simple.
    batch_size : int
    penalty_weight : float
        Weight :math:`\lambda` of ``"gp"`` and ``"r1"``.
    noise_std : float
        Standard deviation of ``"instance_noise"``.
    seed : int
        Seeds the networks and every random draw of the run; the lab keeps its own random
        state, so it neither reads nor changes torch's global generator.
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

    Raises
    ------
    ValueError
        An unknown name or a bad number; the message names the argument.
    TrainingDiverged
        (from ``step``) a loss turned NaN or infinite; the message names the iteration.

    See also
    --------
    gan_notes.lab_widget.LabWidget; Chapter 13 (the GAN lab).
    """

    def __init__(
        self,
        data: str = "ring",
        loss: str = "non_saturating",
        regulariser: str = "none",
        *,
        d_steps: int = 1,
        g_steps: int = 1,
        lr_d: float = 1e-3,
        lr_g: float = 1e-3,
        unroll: int = 0,
        batch_size: int = 128,
        penalty_weight: float = 1.0,
        noise_std: float = 0.1,
        seed: int = 0,
        hidden: tuple[int, ...] = (64, 64),
        eval_every: int = 10,
        n_eval: int = 1000,
    ) -> None:
        self.settings: dict = {}
        self.n_eval = _positive_int("n_eval", n_eval)
        self.configure(
            data=data, loss=loss, regulariser=regulariser, d_steps=d_steps, g_steps=g_steps, lr_d=lr_d,
            lr_g=lr_g, unroll=unroll, batch_size=batch_size, penalty_weight=penalty_weight,
            noise_std=noise_std, seed=seed, hidden=hidden, eval_every=eval_every,
        )

    # --- settings -----------------------------------------------------------------------
    def __getattr__(self, name: str):
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(name)

    @staticmethod
    def _validate(name: str, v):
        choices = {"data": DATASETS, "loss": LOSSES, "regulariser": REGULARISERS}
        if name in choices:
            if v not in choices[name]:
                raise ValueError(f"unknown {name} {v!r}; valid: {', '.join(choices[name])}")
            return v
        if name in ("d_steps", "g_steps", "batch_size", "eval_every"):
            return _positive_int(name, v)
        if name in ("unroll", "seed"):
            return _positive_int(name, v, minimum=0)
        if name in ("lr_d", "lr_g"):
            return _nonnegative(name, v, positive=True)
        if name in ("penalty_weight", "noise_std"):
            return _nonnegative(name, v)
        if name == "hidden":
            return tuple(_positive_int("hidden", h) for h in v)
        raise ValueError(f"unknown setting {name!r}")

    def configure(self, **changes) -> bool:
        """Change settings (the constructor's arguments). Changes to ``data``, ``seed``,
        ``hidden``, or switching spectral normalisation on or off rebuild the networks and
        restart the run; the others apply from the next step on.

        Returns
        -------
        bool
            True when the run was restarted.
        """
        new = dict(self.settings)
        for name, v in changes.items():
            new[name] = self._validate(name, v)
        new["spectral"] = new["regulariser"] == "spectral_norm"
        restart = not self.settings or any(new[k] != self.settings[k] for k in _STRUCTURAL)
        self.settings = new
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
            if s["spectral"]:
                for layer in self.D:
                    if isinstance(layer, nn.Linear):
                        spectral_norm(layer)
            self.fixed_z = torch.randn(self.n_eval, 2)
            self.real = self.mixture.sample(self.n_eval)
            self._rng = torch.get_rng_state()
        self._opt_d = torch.optim.Adam(self.D.parameters(), lr=s["lr_d"], betas=(0.5, 0.999))
        self._opt_g = torch.optim.Adam(self.G.parameters(), lr=s["lr_g"], betas=(0.5, 0.999))
        self.iteration = 0
        self.history = LabHistory()
        self._js_floor: float | None = None
        self.evaluate()

    @property
    def js_floor(self) -> float:
        """:func:`grid_js` of ``n_eval`` samples of the data itself: what a perfect generator
        scores, the estimator's bias at this sample size."""
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
        losses, the raw critic value otherwise."""
        ticks = torch.linspace(-lim, lim, _positive_int("resolution", resolution))
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
    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        if self.regulariser == "instance_noise" and self.noise_std > 0:
            return x + self.noise_std * torch.randn_like(x)
        return x

    def _d_loss(self, critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real_logits, fake_logits = critic(self._noisy(real)), critic(self._noisy(fake))
        if not bool(torch.isfinite(real_logits).all() and torch.isfinite(fake_logits).all()):
            raise TrainingDiverged(f"iteration {self.iteration + 1}: the discriminator loss is nan "
                                   "(D returned non-finite outputs); lower the learning rates")
        loss = discriminator_loss(self.loss, real_logits, fake_logits)
        if self.regulariser == "gp":
            loss = loss + self.penalty_weight * gradient_penalty(critic, real, fake)
        elif self.regulariser == "r1":
            loss = loss + self.penalty_weight * r1_penalty(critic, real)
        return loss

    def _check(self, name: str, value: torch.Tensor) -> float:
        v = float(value.detach())
        if not math.isfinite(v):
            raise TrainingDiverged(f"iteration {self.iteration + 1}: the {name} loss is {v}; lower the learning rates")
        return v

    def _d_step(self) -> float:
        real = self.mixture.sample(self.batch_size)
        with torch.no_grad():
            fake = self.G(torch.randn(self.batch_size, 2))
        loss = self._d_loss(self.D, real, fake)
        value = self._check("discriminator", loss)
        self._opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self._opt_d.step()
        return value

    def _g_step(self) -> float:
        critic = self.D
        if self.unroll:
            # Look ahead: k differentiable gradient steps of D against the current G.
            params = dict(self.D.named_parameters())
            for _ in range(self.unroll):
                ahead = lambda x, p=params: functional_call(self.D, p, (x,))  # noqa: E731
                loss = self._d_loss(ahead, self.mixture.sample(self.batch_size), self.G(torch.randn(self.batch_size, 2)))
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
                params = {n: p - self.lr_d * g for (n, p), g in zip(params.items(), grads)}
            critic = lambda x: functional_call(self.D, params, (x,))  # noqa: E731
        logits = critic(self._noisy(self.G(torch.randn(self.batch_size, 2))))
        if not bool(torch.isfinite(logits).all()):
            raise TrainingDiverged(f"iteration {self.iteration + 1}: the generator loss is nan "
                                   "(D returned non-finite outputs); lower the learning rates")
        loss = generator_loss(self.loss, logits)
        value = self._check("generator", loss)
        # Gradients for G only: D's .grad stays untouched by the generator's step.
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
        n = _positive_int("n", n, minimum=0)
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
        shown = ("data", "loss", "regulariser", "d_steps", "g_steps", "lr_d", "lr_g", "unroll", "batch_size", "seed")
        return f"Lab({', '.join(f'{k}={self.settings[k]!r}' for k in shown)}, iteration={self.iteration})"


def show(lab: Lab | None = None, *, force: bool = False, **settings):
    """Open the interactive lab (ipywidgets) on ``lab`` or on ``Lab(**settings)``.

    See :func:`gan_notes.lab_widget.show`, which this forwards to.
    """
    from gan_notes.lab_widget import show as _show

    return _show(lab, force=force, **settings)
