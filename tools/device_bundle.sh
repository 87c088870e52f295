#!/usr/bin/env bash
# Prepare .cache/device/ (git-ignored) for `python -m gan_notes.device_run` on the lent GPU
# machine, which has Python 3.12, torch and numpy but no Jupyter stack and no network:
# wheels of what executing a chapter needs, and the MNIST test split. Run from the repository
# root; name .cache/device in the device call's `carry` (see README, "Running Part IV on a GPU").
set -euo pipefail
out=.cache/device
mkdir -p "$out/whl" "$out/data"
pip download --quiet --dest "$out/whl" --only-binary=:all: --python-version 3.12 \
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --implementation cp \
  jupytext nbclient ipykernel nbformat tqdm
data=${GAN_NOTES_DATA:-../shared/data}
cp -r "$data/mnist" "$out/data/"
du -sh "$out"
