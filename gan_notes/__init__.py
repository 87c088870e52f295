"""gan_notes: the companion package of *GAN notes*, an executable textbook on why GAN
training fails and how to fix it.

One module per concept:

- Part I and II: ``config`` (profiles, device, seeding), ``divergences``, ``theory`` (the
  optimal discriminator and the value function), ``toy`` (mixture benchmarks), ``models``
  (toy networks, sampling a generator), ``losses`` (the loss zoo), ``penalties`` (GP, R1,
  DRAGAN), ``objective`` (a training method as data, and one step's D and G losses: every
  training loop computes its losses through it), ``train`` (the toy training loop),
  ``metrics`` (mode coverage, mode hopping, precision/recall/density/coverage), ``stats``
  (mean and standard error with a stated NaN policy, result tables), ``dynamics``
  (two-player games and their optimizers), ``plotting``.
- Part III: ``lipschitz`` (spectral norm, Lipschitz bounds, weight clipping), ``remedies``
  (PacGAN packing, minibatch discrimination, feature matching, mode seeking, mixtures of
  generators), ``unrolled`` (unrolled GANs, continuing D's Adam state), ``methods`` and
  ``ensemble`` (many seeds trained as one batched model), ``benchmark`` (the mode-coverage benchmark) and ``benchmark_results``
  (its results file, summary and published anchors).
- Part IV: ``data`` (MNIST, Stacked MNIST, CIFAR-10) and ``download`` (checksum-verified
  downloads),
  ``classifier`` (the cached MNIST digit classifier), ``image_metrics`` (Inception Score,
  FID, Stacked MNIST modes), ``dcgan`` (convolutional GANs for 28x28 and 32x32 images),
  ``image_training`` (image GAN training: two discriminators, penalties, unrolling, bf16,
  compile), ``checkpoint`` and ``batches`` (what makes it resumable), ``image_bench`` (its
  throughput benchmark).
- The reader's tools: ``lab``, ``lab_data`` and ``lab_widget`` (the interactive GAN lab),
  ``provenance`` (how the book's notebooks record where their outputs came from) and ``claims``
  (chapter claims that hold in the full run, checked against the committed outputs; numbers
  bound to outputs), ``macros`` (the book's TeX macros in every chapter) and ``colab`` (the
  chapters' install line).
- Shared checks: ``validate`` (arguments) and ``arrays`` (NumPy or torch in, the same out).
"""

__version__ = "0.1.0"

from gan_notes.config import budget, device, profile, setup  # noqa: E402,F401
