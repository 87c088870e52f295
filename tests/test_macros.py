"""The chapters' TeX macro cells: generated from ``_config.yml``, so the book and the notebooks
cannot drift (``gan_notes.macros``)."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml

from gan_notes import macros

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
CHAPTERS = sorted((ROOT / "notebooks").glob("*.md"))
# One definition as MathJax's \newcommand reads it: name, optional argument count, body.
NEWCOMMAND = re.compile(r"^\$\\newcommand\{\\([A-Za-z]+)\}(?:\[(\d)\])?\{(.*)\}\$$")


def _config_macros() -> dict:
    """The macros as the book's MathJax gets them, read without gan_notes."""
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


def _cell_definitions(source: str) -> dict:
    """name -> body (or [body, nargs]) parsed back from a macro cell's source."""
    out = {}
    for line in source.splitlines()[1:]:
        m = NEWCOMMAND.match(line)
        assert m, f"not a \\newcommand line: {line!r}"
        name, nargs, body = m.groups()
        out[name] = [body, int(nargs)] if nargs else body
    return out


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_cell_is_the_generated_one(md):
    cell = macros.macro_cell(macros.config_macros(CONFIG))
    text = md.read_text(encoding="utf-8")
    assert macros.with_macro_cell(text, cell) == text, (
        f"{md.name}: its TeX macro cell is missing or differs from _config.yml's macros; "
        "run python -m gan_notes.macros --write (then jupytext --sync the chapter)")


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_cell_as_jupyter_reads_it(md):
    """Read by Jupytext, as JupyterLab gets it: the first cell, markdown, tagged remove-cell
    (the book drops it), and defines exactly the book's macros."""
    nb = jupytext.read(md)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(macros.MARKER), f"{md.name}: {first.source[:80]!r}"
    assert first.metadata.get("tags") == ["remove-cell"]
    assert _cell_definitions(first.source) == _config_macros()
    assert sum(macros.MARKER in c.source for c in nb.cells) == 1


def test_check_command_passes_on_the_repository(capsys):
    assert macros.main(["--check", "--root", str(ROOT)]) == 0, capsys.readouterr().out


def test_cell_holds_every_macro_of_the_config():
    cell = macros.macro_cell(macros.config_macros(CONFIG))
    assert _cell_definitions(cell) == _config_macros()
    assert cell.splitlines()[0] == macros.MARKER


def test_newcommand_forms():
    assert macros.newcommand("pdata", r"p_{\mathrm{data}}") == r"\newcommand{\pdata}{p_{\mathrm{data}}}"
    assert macros.newcommand("norm", [r"\lVert #1 \rVert", 1]) == r"\newcommand{\norm}[1]{\lVert #1 \rVert}"
    assert macros.newcommand("Ex", [r"\E_{#1}", 1, "x"]) == r"\newcommand{\Ex}[1][x]{\E_{#1}}"


@pytest.mark.parametrize("name, definition, error", [
    ("p_g", "p_g", ValueError),         # not a TeX control word
    ("", "x", ValueError),
    (3, "x", TypeError),
    ("norm", [r"\lVert #1 \rVert", 0], ValueError),
    ("norm", [r"\lVert #1 \rVert", 10], ValueError),
    ("norm", [r"\lVert #1 \rVert", True], ValueError),
    ("norm", 3.0, TypeError),
    ("norm", [r"\lVert", 1, "a", "b"], TypeError),
])
def test_newcommand_rejects(name, definition, error):
    with pytest.raises(error, match="name|definition"):
        macros.newcommand(name, definition)


def test_config_without_macros_is_an_error(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("title: x\nsphinx:\n  config: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="config"):
        macros.config_macros(cfg)


FRONT = ("---\njupytext:\n  formats: ipynb,md:myst\nkernelspec:\n  display_name: Python 3\n"
         "  language: python\n  name: python3\n---\n\n")
CASES = {
    "title first": FRONT + "# Title\n\nProse $\\pg$.\n\n```{code-cell} ipython3\nx = 1\n```\n",
    "code first": FRONT + "```{code-cell} ipython3\nx = 1\n```\n\n# Title\n\nProse.\n",
}


@pytest.mark.parametrize("case", CASES)
def test_insertion_is_jupytext_layout_and_idempotent(case):
    text = CASES[case]
    cell = macros.macro_cell({"pg": "p_g", "norm": [r"\lVert #1 \rVert", 1]})
    out = macros.with_macro_cell(text, cell)
    assert macros.with_macro_cell(out, cell) == out
    nb = jupytext.reads(out, "md:myst")
    before = jupytext.reads(text, "md:myst")
    # The notebook gained one first cell and nothing else changed.
    assert nb.cells[0].source == cell and nb.cells[0].metadata == {"tags": ["remove-cell"]}
    assert [(c.cell_type, c.source) for c in nb.cells[1:]] == [(c.cell_type, c.source) for c in before.cells]
    # Jupytext writes it back exactly so (the lead's jupytext --sync leaves it as it is).
    body = out.split("\n---\n", 1)[1]
    assert jupytext.writes(nb, "md:myst").split("\n---\n", 1)[1] == body


def test_stale_cell_is_replaced_wherever_it_is():
    old = macros.macro_cell({"pg": "p_g"})
    new = macros.macro_cell({"pg": "p_g", "pdata": r"p_{\mathrm{data}}"})
    text = CASES["title first"]
    first = macros.with_macro_cell(text, old)
    assert macros.with_macro_cell(first, new) == macros.with_macro_cell(text, new)
    # A cell that ended up after the title (the earlier layout) moves to the top.
    after_title = text.replace("# Title\n\n", "# Title\n\n" + '+++ {"tags": ["remove-cell"]}\n\n' + old + "\n\n+++\n\n")
    assert macros.with_macro_cell(after_title, new) == macros.with_macro_cell(text, new)


def test_write_and_check_commands(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_config.yml").write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    chapter = tmp_path / "notebooks" / "01_x.md"
    chapter.write_text(CASES["title first"], encoding="utf-8")
    assert macros.main(["--check", "--root", str(tmp_path)]) == 1
    assert macros.main(["--write", "--root", str(tmp_path)]) == 0
    assert macros.main(["--check", "--root", str(tmp_path)]) == 0
    assert jupytext.reads(chapter.read_text(encoding="utf-8"), "md:myst").cells[0].metadata["tags"] == ["remove-cell"]


def test_bad_arguments():
    cell = macros.macro_cell({"pg": "p_g"})
    with pytest.raises(ValueError, match="cell"):
        macros.with_macro_cell(CASES["title first"], "$\\newcommand{\\pg}{p_g}$")
    with pytest.raises(TypeError):
        macros.with_macro_cell(None, cell)
    with pytest.raises(ValueError, match="front matter"):
        macros.with_macro_cell("---\nkernelspec: {}\n# Title\n", cell)
