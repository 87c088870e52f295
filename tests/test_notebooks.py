"""Checks of every chapter: paired, in sync, executed top to bottom, with provenance.

nbval (``--nbval-lax``) executes the notebooks themselves; these tests check what a reader
of the built book relies on: that the outputs shown were produced by the committed code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest

import gan_notes
from gan_notes.provenance import KEY, source_hash
from _book import toc_pages  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.md"))
IDS = [p.stem for p in SOURCES]


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def _toc_files() -> set[str]:
    return set(toc_pages())


def test_there_are_chapters():
    assert len(SOURCES) >= 3, "Part I has three chapters"


def test_every_ipynb_has_a_source():
    orphans = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} - set(IDS)
    assert not orphans, f"notebooks without a .md source: {sorted(orphans)}"


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_pair_in_sync(md):
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"{md.name} has no paired .ipynb"
    assert _cells(jupytext.read(md)) == _cells(jupytext.read(ipynb)), (
        f"{md.stem}: .md and .ipynb differ; run python -m gan_notes.provenance {md.relative_to(ROOT)}"
    )


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_executed_top_to_bottom_without_errors(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c.get("execution_count") for c in code] == list(range(1, len(code) + 1))
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{md.stem} has error outputs"


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_provenance_matches_sources(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    record = nb["metadata"].get(KEY)
    assert record, f"{md.stem}: no provenance; execute it with python -m gan_notes.provenance"
    for field in ("profile", "device", "wall_time_s", "executed_at", "source_hash"):
        assert field in record, f"{md.stem}: provenance lacks {field}"
    assert record["profile"] == "full", f"{md.stem}: the committed outputs must come from the full profile"
    assert record["source_hash"] == source_hash(nb), (
        f"{md.stem}: the sources changed after the outputs were made; execute it again"
    )


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_in_table_of_contents(md):
    assert f"notebooks/{md.stem}" in _toc_files()


@pytest.mark.parametrize("md", SOURCES, ids=IDS)
def test_first_code_cell_is_colab_setup(md):
    nb = jupytext.read(md)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert "import gan_notes" in first and "except ImportError" in first
    pins = re.findall(r"%pip install .*@v([0-9][^\"'\s]*)", first)
    assert pins == [gan_notes.__version__], f"install pinned to {pins}, package is {gan_notes.__version__}"
    assert "gan_notes.setup(" in first


def test_provenance_hash_sees_every_change():
    nb = {"cells": [{"cell_type": "markdown", "source": "# A"}, {"cell_type": "code", "source": "x = 1"}]}
    h = source_hash(nb)
    nb["cells"][1]["source"] = "x = 2"
    assert source_hash(nb) != h
    nb["cells"][1]["source"] = "x = 1"
    nb["cells"][0]["source"] = "# B"
    assert source_hash(nb) != h


def test_provenance_page_is_up_to_date():
    from gan_notes.provenance import provenance_page

    page = ROOT / "book" / "provenance.md"
    assert page.read_text(encoding="utf-8") == provenance_page(ROOT / "notebooks"), (
        "book/provenance.md is stale; run python -m gan_notes.provenance (no arguments)"
    )
