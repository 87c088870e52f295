"""The chapters' install line: one repository (``_config.yml``) and one version
(``gan_notes.__version__``) for every chapter (``gan_notes.colab``). The Colab-user test
(``test_colab_user.py``, marker ``colab``) runs the line itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import gan_notes
from gan_notes import colab

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.md"))
CELL = '''try:
    import gan_notes
except ImportError:  # a fresh Colab runtime
    %pip install --quiet "gan-notes @ git+https://github.com/old/place@v0.0.1"
    import gan_notes
'''


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_installs_the_book_version_from_the_book_repository(md):
    url = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    expected = f"gan-notes @ git+{url.rstrip('/')}@v{gan_notes.__version__}"
    assert colab.installed_from(md.read_text(encoding="utf-8")) == expected, (
        f"{md.name}: run python -m gan_notes.colab --write")


def test_check_command_passes_on_the_repository(capsys):
    assert colab.main(["--check", "--root", str(ROOT)]) == 0, capsys.readouterr().out


def test_requirement():
    assert colab.requirement("https://github.com/a/b", "1.2.3") == "gan-notes @ git+https://github.com/a/b@v1.2.3"
    assert colab.requirement("https://example.org/x", "0.2.0rc1").endswith("@v0.2.0rc1")


@pytest.mark.parametrize("url, version, error", [
    ("http://github.com/a/b", "1.0", ValueError),
    ("https://github.com/a b", "1.0", ValueError),
    ("https://github.com/a/b", "v1.0", ValueError),
    ("https://github.com/a/b", "", ValueError),
    ("https://github.com/a/b", 1.0, TypeError),
])
def test_requirement_rejects(url, version, error):
    with pytest.raises(error, match="url|version"):
        colab.requirement(url, version)


@pytest.mark.parametrize("given", ["https://github.com/a/b", "https://github.com/a/b/", "https://github.com/a/b.git"])
def test_repository_url(tmp_path, given):
    cfg = tmp_path / "_config.yml"
    cfg.write_text(f"repository:\n  url: {given}\n", encoding="utf-8")
    assert colab.repository_url(cfg) == "https://github.com/a/b"


def test_repository_url_missing(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("title: x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="config"):
        colab.repository_url(cfg)


def test_with_requirement_changes_only_the_address():
    req = "gan-notes @ git+https://github.com/a/b@v9.9"
    out = colab.with_requirement(CELL, req)
    assert colab.installed_from(out) == req
    assert out.splitlines()[3] == '    %pip install --quiet "gan-notes @ git+https://github.com/a/b@v9.9"'
    assert [a for a, b in zip(CELL.splitlines(), out.splitlines()) if a != b] == [CELL.splitlines()[3]]
    assert colab.with_requirement(out, req) == out


@pytest.mark.parametrize("text", ["import gan_notes\n", CELL + CELL])
def test_with_requirement_wants_one_line(text):
    with pytest.raises(ValueError, match="text"):
        colab.with_requirement(text, "gan-notes @ git+https://github.com/a/b@v1")


def test_write_and_check_commands(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/new/home\n", encoding="utf-8")
    chapter = tmp_path / "notebooks" / "01_x.md"
    chapter.write_text("# Title\n\n```{code-cell} ipython3\n" + CELL + "```\n", encoding="utf-8")
    assert colab.main(["--check", "--root", str(tmp_path)]) == 1
    assert colab.main(["--write", "--root", str(tmp_path)]) == 0
    assert colab.main(["--check", "--root", str(tmp_path)]) == 0
    line = re.search(r"%pip install .*", chapter.read_text(encoding="utf-8"))[0]
    assert line == f'%pip install --quiet "gan-notes @ git+https://github.com/new/home@v{gan_notes.__version__}"'
