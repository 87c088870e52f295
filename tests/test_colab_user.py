"""A Colab user: a fresh runtime, the package installed by a chapter's setup cell, every chapter run.

A Colab runtime has torch, NumPy, SciPy, matplotlib, tqdm and Jupyter preinstalled but not
``gan_notes``; a chapter's first cell installs the package (``%pip install --quiet
"gan-notes @ git+https://github.com/...@vX.Y.Z"``, made by ``gan_notes.colab`` from
``_config.yml``'s repository and the package's version) only where it is not importable. This
test plays that user, offline:

1. the runtime: a new virtual environment (``--without-pip``) whose only addition is a
   ``.pth`` file naming the test runner's site-packages, so the libraries are "preinstalled"
   without installing anything. ``gan_notes`` is *not* importable there: the runner has it
   installed in editable mode, and Python does not read the ``.pth`` hook of an editable
   install in a folder that a ``.pth`` file added (checked before installing);
2. the install: the first cell of chapter 01's ``.ipynb``, run in the runtime's kernel as it
   stands, except for the address after ``gan-notes @``: ``git+<repository>@v<version>`` (no
   network here) becomes a wheel built from a copy of the repository's sources (what pip
   builds from a clone at the tag), named with the same version. So the cell's own
   ``try``/``except ImportError``, its ``%pip install --quiet`` and its ``gan_notes.setup`` run;
   pip is told not to use an index (``PIP_NO_INDEX``), so it must find every dependency
   already installed, as on Colab;
3. the chapters: each ``notebooks/*.ipynb`` copied to a folder outside the repository and
   executed there in the ``smoke`` profile by ``jupyter nbconvert --execute``, run by the
   runtime's interpreter with its own kernel; no cell may fail, and a last cell appended to
   the copy records which ``gan_notes`` the chapter's first cell imported: it must be the
   installed copy in the runtime's site-packages, not the repository.

Building the runtime takes seconds (no wheel of torch to unpack); the chapters run two at a
time. Deselect with ``-m "not colab"``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan_notes import __version__
from gan_notes.colab import INSTALL_LINE, book_requirement, installed_from

pytestmark = pytest.mark.colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
# What a clone has and a working tree may also hold: never copied into the package's sources.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv*", "_build", "build", "dist", ".cache", ".test-artifacts", "__pycache__",
    "*.egg-info", ".hypothesis", ".pytest_cache", ".ipynb_checkpoints", "node_modules",
)
PROBE = "GAN_NOTES_PROBE "
PROBE_CELL = (
    "import json, sys\n"
    "_m = sys.modules.get('gan_notes')  # imported by the chapter's first cell\n"
    f"print({PROBE!r} + json.dumps({{'file': getattr(_m, '__file__', None), 'python': sys.executable}}))"
)



def _runtime_env(venv: Path) -> dict[str, str]:
    """The environment of a Colab-like session: the runtime first on PATH, nothing pointing
    into the repository, the smoke profile, one thread per chapter (two run at once)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MPLBACKEND")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        GAN_NOTES_PROFILE="smoke",
        TQDM_DISABLE="1",
        OMP_NUM_THREADS="1",
        PYTHONNOUSERSITE="1",
    )
    return env


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, say):
    """A fresh Colab-like runtime with gan_notes installed from a copy of the repository."""
    t0 = time.perf_counter()
    base = tmp_path_factory.mktemp("colab")
    venv = base / "runtime"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    env = _runtime_env(venv)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env).stdout.strip())
    (purelib / "_colab_preinstalled.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    probe = subprocess.run([python, "-c", "import torch, numpy, scipy, matplotlib, tqdm, ipykernel, nbconvert"],
                           capture_output=True, text=True, cwd=base, env=env)
    assert probe.returncode == 0, f"the runtime lacks the preinstalled libraries:\n{probe.stderr[-2000:]}"
    before = subprocess.run([python, "-c", "import gan_notes; print(gan_notes.__file__)"],
                            capture_output=True, text=True, cwd=base, env=env)
    assert before.returncode != 0, f"gan_notes is importable before the install, from {before.stdout.strip()}"

    # The runtime's own kernel, as Colab's: written into the runtime, found by its Jupyter.
    _run([python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], cwd=base, env=env)

    # What pip gets from git+<repository>@v<version>: the sources at the tag, built as a wheel.
    src, dist = base / "gan-notes", base / "dist"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
          "--disable-pip-version-check", "--wheel-dir", dist, src], cwd=base)
    shutil.rmtree(src)  # the chapters must not find the sources anywhere
    wheel = next(dist.glob("gan_notes-*.whl"))
    assert wheel.name.startswith(f"gan_notes-{__version__}-"), f"{wheel.name}: not the version {__version__}"

    # Chapter 01's setup cell, with only the address of the requirement changed.
    setup = next(c for c in json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    source = "".join(setup["source"])
    assert installed_from(source) == book_requirement(ROOT), f"{NOTEBOOKS[0].name}: the setup cell installs something else"
    local = INSTALL_LINE.sub(lambda m: m[0].replace(m["url"], wheel.as_uri()), source)
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": local}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    folder = base / "content" / "setup"
    folder.mkdir(parents=True)
    (folder / "setup.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    install_env = dict(env, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([python, "-m", "nbconvert", "--to", "notebook", "--execute", "--output", "executed.ipynb",
          "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=600", "setup.ipynb"],
         cwd=folder, env=install_env, timeout=900)
    shutil.rmtree(dist)
    executed = json.loads((folder / "executed.ipynb").read_text(encoding="utf-8"))["cells"]
    errors = [(o["ename"], o["evalue"]) for c in executed for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"the setup cell failed in the runtime: {errors}"
    after = subprocess.run([python, "-c", "import gan_notes; print(gan_notes.__file__, gan_notes.__version__)"],
                           capture_output=True, text=True, cwd=base, env=env)
    assert after.returncode == 0, f"gan_notes is not importable after the setup cell:\n{after.stderr[-2000:]}"
    where, version = after.stdout.split()
    assert Path(where).resolve().is_relative_to(purelib.resolve()) and version == __version__, after.stdout
    seconds = time.perf_counter() - t0
    say(f"colab test: runtime built and package installed by the setup cell in {seconds:.1f} s")
    return {"venv": venv, "python": python, "purelib": purelib, "env": env, "base": base}


def _execute(runtime, ipynb: Path) -> dict:
    folder = runtime["base"] / "content" / ipynb.stem  # outside the repository, like /content
    folder.mkdir(parents=True)
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                        "source": PROBE_CELL})
    (folder / ipynb.name).write_text(json.dumps(nb), encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(runtime["python"]), "-m", "nbconvert", "--to", "notebook", "--execute", "--output", "executed.ipynb",
         "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=600", ipynb.name],
        capture_output=True, text=True, cwd=folder, env=runtime["env"], timeout=1800,
    )
    return {"rc": proc.returncode, "log": proc.stdout[-3000:] + proc.stderr[-5000:], "seconds": time.perf_counter() - t0,
            "executed": folder / "executed.ipynb"}


@pytest.fixture(scope="module")
def executed(runtime, request, say):
    """The selected chapters executed in the runtime, two at a time (the machine has two cores)."""
    t0 = time.perf_counter()
    selected = {item.callspec.params["stem"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_chapter_runs_for_a_colab_user" and hasattr(item, "callspec")}
    chapters = [p for p in NOTEBOOKS if p.stem in selected]
    workers = max(1, min(2, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = dict(zip([p.stem for p in chapters], pool.map(lambda p: _execute(runtime, p), chapters)))
    each = ", ".join(f"{k} {v['seconds']:.0f} s" for k, v in results.items())
    say(f"colab test: {len(results)} chapters in {time.perf_counter() - t0:.0f} s ({each})")
    return results


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks/*.ipynb"


@pytest.mark.parametrize("stem", IDS)
def test_chapter_runs_for_a_colab_user(stem, runtime, executed):
    result = executed[stem]
    assert result["rc"] == 0, f"{stem} failed in the Colab-like runtime:\n{result['log']}"
    nb = json.loads(result["executed"].read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{stem}: error outputs: {[(e['ename'], e['evalue']) for e in errors]}"

    # The first cell found the installed package: its `except ImportError` branch (the
    # %pip install, which needs a network) did not run.
    first = "".join("".join(o.get("text", "")) for o in code[0].get("outputs", []))
    assert "Successfully installed" not in first and "pip" not in first.lower(), f"{stem}: first cell ran pip:\n{first}"
    probe = [line for o in code[-1].get("outputs", []) for line in "".join(o.get("text", "")).splitlines()
             if line.startswith(PROBE)]
    assert probe, f"{stem}: the probe cell printed nothing"
    where = json.loads(probe[0][len(PROBE):])
    assert where["file"], f"{stem}: the first cell did not import gan_notes"
    module = Path(where["file"]).resolve()
    assert module.is_relative_to(runtime["purelib"].resolve()), f"{stem}: gan_notes came from {module}, not the runtime"
    assert not module.is_relative_to(ROOT), f"{stem}: gan_notes came from the repository ({module})"
    assert Path(where["python"]).parent == runtime["venv"] / "bin", f"{stem}: kernel ran {where['python']}"
