"""Where Colab installs the package from: the repository and version of the chapters' setup cell.

A chapter's first code cell installs ``gan_notes`` where it is not importable (a fresh Colab
runtime), pinned to the book's version::

    %pip install --quiet "gan-notes @ git+https://github.com/gan-notes/gan-notes@v0.1.0"

Two facts make that line, each held in one place:

- the repository: ``repository.url`` in ``_config.yml``, which also makes the book's
  launch buttons (the "open in Colab" links);
- the version: ``gan_notes.__version__`` (which ``pyproject.toml`` reads too); the line names
  the git tag ``v<version>``, which publishing creates.

Every chapter's line is generated from those two, and the tests fail when one differs.

Command line (from the repository root)::

    python -m gan_notes.colab --write   # rewrite the install line of every notebooks/*.md
    python -m gan_notes.colab --check   # exit 1 and name the chapters whose line is stale

Only the MyST sources are edited; ``jupytext --sync`` carries the line into the ``.ipynb``.

See also
--------
README.md, "Publishing a version"; ``tests/test_colab_user.py``, which runs the line.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path

DISTRIBUTION = "gan-notes"
# The install line of a chapter's setup cell, whatever its URL and version.
INSTALL_LINE = re.compile(r'^(?P<indent>[ \t]*)%pip install --quiet "gan-notes @ (?P<url>[^"]+)"[ \t]*$', re.M)
_VERSION = re.compile(r"\d+(\.\d+)*([abrc.][\w.]*)?")


def repository_url(config: str | Path) -> str:
    """``repository.url`` of a Jupyter Book ``_config.yml``, without a trailing slash or ``.git``.

    Raises
    ------
    ValueError
        If the configuration names no ``https://`` repository.
    """
    import yaml

    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    url = (data.get("repository") or {}).get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError(f"config: {config} has no https:// repository.url, got {url!r}")
    url = url.rstrip("/")
    return url[: -len(".git")] if url.endswith(".git") else url


def requirement(url: str, version: str) -> str:
    """The pip requirement of the setup cell: ``gan-notes @ git+<url>@v<version>``.

    Parameters
    ----------
    url : str
        The repository, ``https://...``.
    version : str
        The package's version; the git tag is ``v`` + version.
    """
    if not isinstance(url, str) or not isinstance(version, str):
        raise TypeError("url and version must be strings")
    if not url.startswith("https://") or any(c in url for c in ' "@'):
        raise ValueError(f"url: an https:// repository address without spaces, quotes or '@', got {url!r}")
    if not _VERSION.fullmatch(version):
        raise ValueError(f"version: a version such as 0.1.0, got {version!r}")
    return f"{DISTRIBUTION} @ git+{url}@v{version}"


def with_requirement(text: str, req: str) -> str:
    """The chapter's text with its one install line installing ``req`` (the rest unchanged).

    Raises
    ------
    ValueError
        If the chapter has no install line, or more than one.
    """
    found = INSTALL_LINE.findall(text)
    if len(found) != 1:
        raise ValueError(f"text: expected one '%pip install --quiet \"gan-notes @ ...\"' line, found {len(found)}")
    return INSTALL_LINE.sub(lambda m: f'{m["indent"]}%pip install --quiet "{req}"', text)


def installed_from(text: str) -> str:
    """The requirement the chapter's install line installs (``gan-notes @ ...``)."""
    found = INSTALL_LINE.findall(text)
    if len(found) != 1:
        raise ValueError(f"text: expected one '%pip install --quiet \"gan-notes @ ...\"' line, found {len(found)}")
    return f"{DISTRIBUTION} @ {found[0][1]}"


def book_requirement(root: str | Path) -> str:
    """The requirement every chapter must install: ``_config.yml``'s repository at the tag of
    ``gan_notes.__version__``."""
    from gan_notes import __version__

    return requirement(repository_url(Path(root) / "_config.yml"), __version__)


def stale(paths: Iterable[str | Path], req: str) -> list[Path]:
    """The chapters whose install line does not install ``req``."""
    out = []
    for p in map(Path, paths):
        text = p.read_text(encoding="utf-8")
        if with_requirement(text, req) != text:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the install line of every chapter")
    action.add_argument("--check", action="store_true", help="exit 1 if a chapter's install line is stale")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: the checkout of this package)")
    parser.add_argument("paths", nargs="*", type=Path, help="chapters (default: notebooks/*.md under the root)")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parents[1]
    root = args.root or (here if (here / "_config.yml").is_file() else Path.cwd())
    req = book_requirement(root)
    paths = args.paths or sorted((root / "notebooks").glob("*.md"))
    if not paths:
        parser.error(f"no chapters under {root / 'notebooks'}")
    bad = stale(paths, req)
    if args.check:
        for p in bad:
            print(f"{p}: the install line does not install {req!r}; run python -m gan_notes.colab --write")
        return 1 if bad else 0
    for p in bad:
        p.write_text(with_requirement(p.read_text(encoding="utf-8"), req), encoding="utf-8")
        print(f"updated {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
