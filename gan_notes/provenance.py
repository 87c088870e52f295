"""Where a notebook's outputs came from: execute a chapter and record it.

The book shows the committed outputs of each chapter (it does not execute them), so each
executed notebook carries, in ``metadata["gan_notes"]``, the profile, the device, the wall
time, the date and a hash of its cell sources. The tests recompute the hash: a chapter
whose text or code changed after its outputs were made fails until it is executed again.

Command line (from the repository root)::

    python -m gan_notes.provenance notebooks/01_gan_game.md [--profile full]

reads the MyST source, writes the paired ``.ipynb`` (Jupytext), executes it top to bottom
in a fresh kernel with ``GAN_NOTES_PROFILE`` set, records the provenance, and regenerates the
book's provenance page ``book/provenance.md`` (run it with no notebook to only regenerate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KEY = "gan_notes"


def _source(cell: Any) -> str:
    src = cell["source"]
    return ("".join(src) if isinstance(src, list) else src).strip()


def source_hash(nb: Any) -> str:
    """SHA-256 of the notebook's cell types and sources (markdown and code), in order."""
    payload = json.dumps([[c["cell_type"], _source(c)] for c in nb["cells"]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@contextmanager
def environment(**values: str):
    """Set environment variables for the duration of a ``with`` block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def describe_device() -> str:
    """A short description of the device the chapters will use, e.g. 'cpu (2 cores)'."""
    import torch

    from gan_notes.config import device

    dev = device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"{dev.type} ({os.cpu_count()} cores, {platform.machine()})"


def execute(path: str | Path, profile: str = "full", timeout: int = 1800, output: str | Path | None = None) -> dict[str, Any]:
    """Execute a chapter from its MyST source and write the paired, executed ``.ipynb``.

    Parameters
    ----------
    path : path to ``notebooks/NN_slug.md`` (or its ``.ipynb``; the ``.md`` is read).
    profile : {"full", "smoke"}
    timeout : seconds allowed per cell.
    output : where to write the executed notebook (default: the paired ``.ipynb`` beside the
        source). The kernel still runs in the source's folder; the repository's notebook is
        left untouched when ``output`` points elsewhere (e.g. a device run's output folder).

    Returns
    -------
    dict : the provenance written into the notebook's metadata.
    """
    import jupytext
    from nbclient import NotebookClient

    from gan_notes.config import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    md = Path(path).with_suffix(".md")
    target = Path(output) if output is not None else md.with_suffix(".ipynb")
    if target.suffix != ".ipynb":
        raise ValueError(f"output must be a .ipynb path, got {str(target)!r}")
    nb = jupytext.read(md)
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,md:myst"
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    # Figures inline whatever the caller's MPLBACKEND (CI sets Agg, which would leave only
    # "<Figure size ...>" text in the committed outputs).
    env = {"GAN_NOTES_PROFILE": profile, "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    with environment(**env):
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(md.parent)}}).execute()
        wall = time.perf_counter() - start
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            # Errors raised while displaying an output (e.g. a figure that fails to render) do
            # not stop nbclient; a chapter with an error output must not be committed.
            raise RuntimeError(f"{md}: {len(errors)} error output(s), first: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    import torch

    import gan_notes

    record = {
        "profile": profile,
        "device": describe_device(),
        "wall_time_s": round(wall, 1),
        "executed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source_hash": source_hash(nb),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gan_notes": gan_notes.__version__,
    }
    nb.metadata[KEY] = record
    jupytext.write(nb, target)
    return record


def provenance_page(notebooks_dir: str | Path) -> str:
    """The book's provenance page (MyST markdown): one row per executed chapter.

    Generated from the notebooks' metadata by ``python -m gan_notes.provenance --page``; the
    tests check that the committed ``book/provenance.md`` equals this text.
    """
    rows = []
    for ipynb in sorted(Path(notebooks_dir).glob("*.ipynb")):
        nb = json.loads(ipynb.read_text(encoding="utf-8"))
        rec = nb.get("metadata", {}).get(KEY, {})
        # The chapter's title: its first top-level heading (the hidden macro cell comes before it).
        headings = (line[2:] for c in nb["cells"] if c["cell_type"] == "markdown" for line in _source(c).splitlines()
                    if line.startswith("# "))
        title = next(headings, ipynb.stem)
        rows.append(
            f"| {{doc}}`{title} <../notebooks/{ipynb.stem}>` | {rec.get('profile', '?')} | {rec.get('device', '?')} "
            f"| {rec.get('wall_time_s', '?')} | {rec.get('executed_at', '?')[:10]} | {rec.get('torch', '?')} |"
        )
    return "\n".join(
        [
            "# Provenance of the outputs",
            "",
            "The book shows the outputs committed with each chapter; it never re-executes them. Each",
            "chapter was executed top to bottom in one fresh kernel by `python -m gan_notes.provenance`,",
            "which records the run below in the notebook's metadata with a hash of its cell sources; the",
            "tests fail when a chapter's sources change after its outputs were made. This page is",
            "generated from that metadata.",
            "",
            "| chapter | profile | device | wall time (s) | date | torch |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks/NN_slug.md files to execute")
    parser.add_argument("--profile", default="full", choices=("full", "smoke"))
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--page", default="book/provenance.md", help="provenance page to regenerate ('' for none)")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        rec = execute(path, profile=args.profile, timeout=args.timeout)
        print(f"{path}: {rec['wall_time_s']} s on {rec['device']} ({rec['profile']})", flush=True)
    if args.page:
        page = Path(args.page)
        nb_dir = Path(args.notebooks[0]).parent if args.notebooks else page.parent.parent / "notebooks"
        page.write_text(provenance_page(nb_dir), encoding="utf-8")
        print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
