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
from gan_notes.claims import METADATA_KEY as CLAIM_KEY
from gan_notes.claims import audit_notebook
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
def test_figures_are_images_not_reprs(md):
    # An executor with a non-inline matplotlib backend (MPLBACKEND=Agg) leaves only the text
    # "<Figure size ...>" where the reader should see the figure.
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    bare = [o for o in outputs if "image/png" not in o.get("data", {})
            and re.match(r"<Figure size", "".join(o.get("data", {}).get("text/plain", "")))]
    assert not bare, f"{md.stem}: {len(bare)} figure(s) committed as text, not images"
    source = "".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    if "plt.subplots" in source or "plt.figure" in source:
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{md.stem} draws figures but has no image output"


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
def test_claims_hold_in_the_committed_full_outputs(md):
    """The chapter's claims (results that bind only in the full profile; the smoke run under
    nbval records them without checking) are checked here, on the committed full outputs:
    each claim( call of the source recorded once, from the full profile, and holding."""
    problems = audit_notebook(json.loads(md.with_suffix(".ipynb").read_text()))
    assert not problems, f"{md.stem}: " + "; ".join(problems) + (
        f"; execute it in full with python -m gan_notes.provenance {md.relative_to(ROOT)}"
    )


def test_claims_check_catches_a_failed_and_a_missing_claim():
    def cell(source, *records):
        outputs = [{"output_type": "display_data", "data": {"text/plain": "claim"}, "metadata": {CLAIM_KEY: r}}
                   for r in records]
        return {"cell_type": "code", "source": source, "outputs": outputs, "execution_count": 1, "metadata": {}}

    held = {"name": "r", "value": 0.3, "op": "<", "threshold": 0.5, "profile": "full", "passed": True}
    failed = {**held, "value": 0.7, "passed": False}
    ok = {"cells": [cell('claim("r", ratio, "<", 0.5)', held)]}
    assert audit_notebook(ok) == []
    assert len(audit_notebook({"cells": [cell('claim("r", ratio, "<", 0.5)', failed)]})) == 1
    assert len(audit_notebook({"cells": [cell('claim("r", ratio, "<", 0.5)')]})) == 1
    assert len(audit_notebook({"cells": [cell('claim("r", ratio, "<", 0.5)', {**held, "profile": "smoke"})]})) == 1


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
