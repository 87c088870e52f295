"""Test configuration: chapters run in the smoke profile unless told otherwise.

nbval starts each notebook's kernel from this process, so the environment set here reaches
the notebooks too.
"""

import os

os.environ.setdefault("GAN_NOTES_PROFILE", "smoke")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
