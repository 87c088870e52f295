r"""Training protocols of the Part III toy benchmark, as data: networks, optimiser, budget.

A :class:`Protocol` fixes everything a method does not: the architecture of G and D, the
latent distribution, batch size, optimiser, number of iterations, learning-rate schedule,
generator averaging, the evaluation (samples, checkpoints) and the number of seeds. Each
method (:data:`gan_notes.benchmark.METHODS`) then changes only what its paper changes.

- ``pacgan``: the released configuration of PacGAN's 2-D experiments (Lin et al. 2018;
  ``synthetic_data_experiments/2DGrid_GAN&PacGAN/config.py`` of their code), the protocol
  of their Table 1. :attr:`Protocol.deviations` names where we differ.
- ``book``: what 2 CPU cores can run for every method x 10 seeds x 2 data sets within 90
  minutes (the results file records the measured time), chosen from learning-curve pilots
  (Chapters 07 and 09 show the curves): 6,000 iterations on the ring, 8,000 on the grid.
- ``smoke``: seconds, for the tests.

See also
--------
gan_notes.benchmark; gan_notes.ensemble.train_ensemble; Chapters 07 and 09.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from gan_notes.ensemble import checkpoints

__all__ = ["Protocol", "PROTOCOLS"]


@dataclass(frozen=True)
class Protocol:
    r"""One training protocol (the arguments of :func:`~gan_notes.ensemble.train_ensemble`).

    Attributes
    ----------
    name, source : str
        Its name and where it comes from.
    g_hidden, d_hidden : tuple of int
        Hidden widths of G and D.
    g_batch_norm : bool
        Batch normalisation in G's hidden layers.
    d_maxout : int
        Maxout pieces per D unit (0: ReLU).
    init_std : float or None
        :math:`\mathcal N(0, \mathrm{init\_std}^2)` weights and zero biases (None: torch's defaults).
    latent_dim : int
        :math:`z \sim \mathcal N(0, I)` in this many dimensions.
    batch_size, steps : int
        Batch (packs, for PacGAN) and G iterations.
    steps_by_dataset : dict of str to int, optional
        Iterations for the data sets named here, instead of ``steps`` (:meth:`steps_for`).
    lr, betas : float, (float, float)
        Adam's settings for both players, unless the method overrides them.
    lr_decay : bool
        Linear decay of the rates to 0.
    ema : float
        Decay of the generator's weight average that is evaluated (0: the last iterate).
    n_eval, seeds : int
        Samples scored per run, and runs per cell.
    per_decade : int
        Learning-curve checkpoints per factor of 10 of iterations (from 100).
    deviations : tuple of str
        Where we knowingly differ from the source.
    """

    name: str
    source: str
    g_hidden: tuple[int, ...]
    d_hidden: tuple[int, ...]
    g_batch_norm: bool = False
    d_maxout: int = 0
    init_std: float | None = None
    latent_dim: int = 2
    batch_size: int = 128
    steps: int = 10_000
    steps_by_dataset: dict[str, int] | None = field(default=None, hash=False)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: bool = False
    ema: float = 0.0
    n_eval: int = 2500
    seeds: int = 10
    per_decade: int = 3
    deviations: tuple[str, ...] = ()

    def __post_init__(self):
        for name, v in (self.steps_by_dataset or {}).items():
            if not isinstance(name, str) or isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"steps_by_dataset must map data set names to positive ints, got {name!r}: {v!r}")

    def steps_for(self, dataset: str) -> int:
        """The iterations on ``dataset``: its entry of ``steps_by_dataset``, else ``steps``."""
        return (self.steps_by_dataset or {}).get(dataset, self.steps)

    def eval_steps(self, steps: int | None = None) -> list[int]:
        """The learning-curve checkpoints (:func:`~gan_notes.ensemble.checkpoints`)."""
        steps = self.steps if steps is None else steps
        return checkpoints(steps, self.per_decade, first=min(100, steps))

    def trainer_kwargs(self, steps: int | None = None) -> dict:
        """Keyword arguments of :func:`~gan_notes.ensemble.train_ensemble` for this protocol."""
        steps = self.steps if steps is None else steps
        return {
            "latent_dim": self.latent_dim, "hidden": self.d_hidden, "g_hidden": self.g_hidden,
            "g_batch_norm": self.g_batch_norm, "d_maxout": self.d_maxout, "init_std": self.init_std,
            "steps": steps, "batch_size": self.batch_size, "lr_g": self.lr, "lr_d": self.lr, "betas": self.betas,
            "lr_decay": self.lr_decay, "ema": self.ema, "n_eval": self.n_eval, "eval_steps": self.eval_steps(steps),
        }

    def as_dict(self) -> dict:
        """A JSON-ready record (tuples as lists), for the results file."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Protocol":
        """The protocol of :meth:`as_dict`'s record (e.g. a results file's ``metadata["protocol"]``)."""
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def with_options(self, **changes) -> "Protocol":
        """A copy with some fields changed."""
        return replace(self, **changes)


#: The protocols by name: ``pacgan`` (PacGAN's released 2-D configuration), ``book`` (the
#: chapters' CPU protocol) and ``smoke`` (the tests').
PROTOCOLS: dict[str, Protocol] = {
    "pacgan": Protocol(
        name="pacgan",
        source="Lin et al. 2018 (PacGAN), released 2-D configuration: G 4x400 ReLU with batch norm, D 3x200 maxout "
               "(5 pieces), N(0, 0.02^2) weights and zero biases, 2-d Gaussian z, batch 100 (packs), Adam lr 1e-4 "
               "beta1 0.8, 400 epochs of 100,000 samples = 400,000 iterations",
        g_hidden=(400, 400, 400, 400), d_hidden=(200, 200, 200), g_batch_norm=True, d_maxout=5, init_std=0.02,
        latent_dim=2, batch_size=100, steps=400_000, lr=1e-4, betas=(0.8, 0.999), n_eval=2500, seeds=10,
        deviations=(
            "fresh samples each batch, not 400 epochs over a fixed set of 100,000 (an infinite training set)",
            "G's batch norm uses the batch's own statistics at evaluation too (on 2,500 samples), not running averages",
            "G's loss is the non-saturating one (-log D(G(z))), the usual reading of their GAN baseline",
            "modes, high quality and KL from our metrics.mode_coverage on 2,500 samples (their protocol's count)",
        ),
    ),
    "book": Protocol(
        name="book",
        source="ours: sized from learning-curve pilots so that every method x 10 seeds x ring and grid fits in "
               "90 minutes on 2 CPU cores (the results record the measured time)",
        g_hidden=(64, 64, 64), d_hidden=(64, 64, 64), g_batch_norm=True, latent_dim=2, batch_size=128, steps=8000,
        steps_by_dataset={"ring": 6000, "grid": 8000}, lr=2e-3, betas=(0.5, 0.999), lr_decay=True, n_eval=2500, seeds=10,
        deviations=(
            "G and D of three hidden layers of 64 units (ReLU; batch norm in G, as PacGAN's), and 50-67x fewer "
            "iterations than PacGAN's protocol",
            "Adam at 2e-3, decayed linearly to 0. Pilots (NS GAN on the grid, batch 128): the high-quality fraction "
            "rose mostly while the rate fell (1% at 3,000 of 10,000 steps, 62-66% at the end, 5 seeds); at 6,000 "
            "steps and 10 seeds, 1e-3 gave 46% HQ and 21.1 modes, 2e-3 gave 61% and 17.6 modes, batch 256 at 1e-3 "
            "(5,000 steps) 48% and 22.1; an exponential average of G's weights (decay 0.999) did not add to the "
            "decay (62% vs 65%, 5 seeds), so the last iterate is evaluated",
            "Pilots for sharper grid samples at 10 seeds did not reach the blurred data's 90% HQ with every mode: "
            "R1 at 14,000 steps 25.0 modes and 67% HQ (at batch 64, 59%), with D's rate doubled 45%, with gamma 1 "
            "instead of 10 50%; G and D of 128 units at 7,000 steps, R1 62% and NS 62% (14.8 modes); MGAN at "
            "14,000 steps 93% HQ but 19.2 modes. Twice the steps would not fit the 90 minutes",
            "The iterations are split 6,000 (ring) and 8,000 (grid), the same total as 7,000 each: at 7,000 on both "
            "(the previous run), the NS GAN's grid HQ was still climbing fast (44% at 4,642, 59% at 7,000) while "
            "the ring's was near its goal (81%, 89%). Pilots of the NS GAN, 10 seeds: ring 5,000 steps 85.0% HQ, "
            "6,000 87.2%; grid 8,000 67.3%, 9,000 72.3%",
        ),
    ),
    "smoke": Protocol(
        name="smoke", source="ours: seconds, for the tests", g_hidden=(8,), d_hidden=(8,), batch_size=24, steps=3,
        lr_decay=True, n_eval=60, seeds=2, per_decade=1,
    ),
}
