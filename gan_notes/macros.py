"""The book's TeX macros: defined once, in ``_config.yml``, and copied into every chapter.

The HTML book gets the macros (``\\pdata``, ``\\pg``, ``\\Dstar``, ``\\JS``, ``\\E``, ...) from
MathJax's configuration in ``_config.yml`` (``sphinx.config.mathjax3_config.tex.macros``), which
JupyterLab, Colab and VS Code never read. So each chapter also defines them itself, in one
hidden markdown cell, its first cell (before the title)::

    +++ {"tags": ["remove-cell"]}

    <!-- TeX macros of the book ... -->
    $\\newcommand{\\KL}{\\operatorname{KL}}$
    ...

    +++

The ``remove-cell`` tag keeps the cell out of the book (MyST-NB drops tagged markdown cells
too), where the configuration already defines the same macros. ``_config.yml`` stays the one
source: the cell is generated from it, and the tests fail when a chapter's cell differs from
what this module generates.

The cell comes first, before the title, because JupyterLab typesets each markdown cell on its
own, in the order the cells happen to get rendered (JupyterLab 4 renders the cells in view and
the rest when idle), and a macro typeset before its ``\\newcommand`` shows as an error. Placed
second, the macro cell was typeset after cells further down in 4 of 12 loads of chapter 01 in
headless Chromium; placed first, in none of 12.

Command line (from the repository root)::

    python -m gan_notes.macros --write   # insert or update the cell in every notebooks/*.md
    python -m gan_notes.macros --check   # exit 1 and name the chapters whose cell is stale

Only the MyST sources are edited; ``jupytext --sync`` carries the cell into the ``.ipynb``.

See also
--------
The book's notation page (``book/notation.md``), which says what each macro stands for.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

MARKER = ("<!-- TeX macros of the book, for JupyterLab, Colab and VS Code (the book defines them in "
          "_config.yml). Generated from _config.yml by `python -m gan_notes.macros --write`: do not edit. -->")
HEADER = '+++ {"tags": ["remove-cell"]}'
_NAME = re.compile(r"[A-Za-z]+")


def config_macros(config: str | Path) -> dict[str, str | list]:
    """The macros of ``mathjax3_config.tex.macros`` in a Jupyter Book ``_config.yml``.

    Parameters
    ----------
    config : str or Path
        Path of ``_config.yml``.

    Returns
    -------
    dict
        Name (without backslash) -> MathJax definition: a string, or ``[body, nargs]`` /
        ``[body, nargs, default]`` for macros with arguments.
    """
    import yaml

    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    try:
        macros = data["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    except (KeyError, TypeError):
        raise ValueError(f"config: {config} has no sphinx.config.mathjax3_config.tex.macros") from None
    if not isinstance(macros, dict) or not macros:
        raise ValueError(f"config: the macros in {config} must be a non-empty mapping, got {macros!r}")
    return macros


def newcommand(name: str, definition: str | list | tuple) -> str:
    """The ``\\newcommand`` that defines one MathJax macro as the configuration does.

    ``name: body`` becomes ``\\newcommand{\\name}{body}``; ``name: [body, n]`` becomes
    ``\\newcommand{\\name}[n]{body}`` and ``name: [body, n, default]``
    ``\\newcommand{\\name}[n][default]{body}`` (MathJax's forms of a macro with arguments).
    """
    if not isinstance(name, str):
        raise TypeError(f"name: must be a string, got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"name: a TeX macro name is letters only, got {name!r}")
    if isinstance(definition, str):
        return f"\\newcommand{{\\{name}}}{{{definition}}}"
    if isinstance(definition, (list, tuple)) and len(definition) in (2, 3) and isinstance(definition[0], str):
        nargs = definition[1]
        if isinstance(nargs, bool) or not isinstance(nargs, int) or not 1 <= nargs <= 9:
            raise ValueError(f"definition: the number of arguments of \\{name} must be 1 to 9, got {nargs!r}")
        default = f"[{definition[2]}]" if len(definition) == 3 else ""
        return f"\\newcommand{{\\{name}}}[{nargs}]{default}{{{definition[0]}}}"
    raise TypeError(f"definition: \\{name} must be a string or [body, nargs(, default)], got {definition!r}")


def macro_cell(macros: Mapping[str, str | list]) -> str:
    """Source of the hidden markdown cell: the marker comment, then one ``$\\newcommand..$`` per
    macro, in the configuration's order."""
    return "\n".join([MARKER] + [f"${newcommand(name, d)}$" for name, d in macros.items()])


def _body_start(lines: list[str]) -> int:
    """Index of the first line after the YAML front matter (0 when there is none)."""
    if not lines or lines[0].strip() != "---":
        return 0
    end = next((k for k in range(1, len(lines)) if lines[k].strip() == "---"), None)
    if end is None:
        raise ValueError("text: the front matter opened by '---' is never closed")
    return end + 1


def _without_cell(lines: list[str]) -> list[str]:
    """The lines with the generated cell (found by its marker) removed, as before insertion."""
    try:
        at = lines.index(MARKER)
    except ValueError:
        return lines
    start = at - 1
    while start > 0 and not lines[start].strip():
        start -= 1
    if lines[start] != HEADER:
        raise ValueError(f"text: the macro cell's marker is not preceded by {HEADER!r}")
    end = at + 1
    while end < len(lines) and not (lines[end].startswith("+++") or lines[end].startswith("```{")):
        end += 1
    if end < len(lines) and lines[end].strip() == "+++":  # closes the cell: drop it and one blank
        end += 1
        if end < len(lines) and not lines[end].strip():
            end += 1
    return lines[:start] + lines[end:]


def with_macro_cell(text: str, cell: str) -> str:
    """The chapter's MyST source with the hidden macro cell ``cell`` as its first cell.

    An existing cell (found by its marker, wherever it is) is replaced; the rest of the text is
    unchanged. The layout is Jupytext's, so ``jupytext --sync`` leaves it as it is.
    """
    if not isinstance(text, str) or not isinstance(cell, str):
        raise TypeError("text and cell must be strings")
    if not cell.startswith(MARKER):
        raise ValueError("cell: must start with the marker comment (use macro_cell)")
    lines = _without_cell(text.split("\n"))
    start = _body_start(lines)
    k = start
    while k < len(lines) and not lines[k].strip():
        k += 1
    nxt = lines[k] if k < len(lines) else ""
    block = [HEADER, "", *cell.split("\n"), ""]
    if not (nxt.startswith("```{") or nxt.startswith("+++") or k == len(lines)):
        block += ["+++", ""]  # the chapter goes on with a markdown cell
    return "\n".join(lines[:start] + ([""] if start else []) + block + lines[k:])


def chapters(root: str | Path) -> list[Path]:
    """The chapters' MyST sources, ``notebooks/*.md`` under ``root``."""
    return sorted((Path(root) / "notebooks").glob("*.md"))


def stale(paths: Iterable[str | Path], cell: str) -> list[Path]:
    """The chapters whose text differs from :func:`with_macro_cell` of itself."""
    out = []
    for p in map(Path, paths):
        text = p.read_text(encoding="utf-8")
        if with_macro_cell(text, cell) != text:
            out.append(p)
    return out


def _default_root() -> Path:
    here = Path(__file__).resolve().parents[1]
    return here if (here / "_config.yml").is_file() else Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="insert or update the macro cell of every chapter")
    action.add_argument("--check", action="store_true", help="exit 1 if a chapter's cell is missing or stale")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: the checkout of this package)")
    parser.add_argument("paths", nargs="*", type=Path, help="chapters (default: notebooks/*.md under the root)")
    args = parser.parse_args(argv)
    root = args.root or _default_root()
    cell = macro_cell(config_macros(root / "_config.yml"))
    paths = args.paths or chapters(root)
    if not paths:
        parser.error(f"no chapters under {root / 'notebooks'}")
    bad = stale(paths, cell)
    if args.check:
        for p in bad:
            print(f"{p}: the TeX macro cell differs from _config.yml's macros; run python -m gan_notes.macros --write")
        return 1 if bad else 0
    for p in bad:
        p.write_text(with_macro_cell(p.read_text(encoding="utf-8"), cell), encoding="utf-8")
        print(f"updated {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
