"""Helpers shared by the book-level tests (imported by name: pytest puts tests/ on sys.path)."""

import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Offline machine: without these Chromium keeps trying to reach Google's services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# Raw TeX in the text a reader sees (code, and the typeset math itself, removed first): a
# dollar sign, a control word such as \pdata or \begin, or a \( \) \[ \] delimiter. The JS
# function takes that text and returns each hit with some context.
RAW_TEX_JS = r"""text => {
  const hits = [];
  for (const m of text.matchAll(/\$|\\[A-Za-z]+|\\[()\[\]]/g)) {
    hits.push(text.slice(Math.max(0, m.index - 40), m.index + 40).replace(/\s+/g, ' '));
  }
  return hits;
}"""


def require(ok, reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where everything must be installed."""
    if not ok:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this test must run; .ci/run installs what it needs)")
        pytest.skip(reason)


def find_chromium() -> str | None:
    """The system's Chromium (``GAN_NOTES_CHROMIUM`` if set), or None."""
    given = os.environ.get("GAN_NOTES_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def toc_pages() -> list[str]:
    """Every page of ``_toc.yml``, root first, in reading order, without suffixes."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [str(Path(p).with_suffix("")) for p in pages]
