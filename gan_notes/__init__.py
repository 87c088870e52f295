"""gan_notes: the companion package of *GAN notes*, an executable textbook on why GAN
training fails and how to fix it.

One module per concept: ``config`` (profiles, device, seeding), ``divergences``,
``theory`` (the optimal discriminator and the value function), ``toy`` (mixture
benchmarks), ``models``, ``losses`` (losses and gradient penalties), ``train``, ``metrics``
(mode coverage, precision/recall/density/coverage), ``dynamics`` (two-player games and
their optimizers), ``plotting`` and ``provenance`` (how the book's notebooks record where
their outputs came from).
"""

__version__ = "0.1.0"

from gan_notes.config import budget, device, profile, setup  # noqa: E402,F401
