"""The built book in a real browser: every page of the table of contents, in headless Chromium.

What a reader of the HTML book sees is checked where Sphinx cannot check it: each page listed
in ``_toc.yml`` is opened in Chromium (driven by Playwright, with the system's ``chromium``)
from a local HTTP server, and must

- load without JavaScript errors (console messages of type ``error`` and uncaught page
  errors), except the two known, harmless ones in ``KNOWN_NOISE``;
- have every equation typeset by MathJax: each Sphinx ``.math`` element holds an
  ``mjx-container``, MathJax reports no TeX error or undefined macro, and no raw TeX is left
  in the visible text (code blocks and the typeset math excepted): no ``$``, no control word
  such as ``\\pdata`` or ``\\begin``, no ``\\(`` ``\\)`` ``\\[`` ``\\]`` (a TeX source line that
  starts with ``+`` or ``-`` becomes a list item and leaves its formula raw);
- show its figures: every image in the article has loaded (``naturalWidth > 0``), and a
  chapter shows one image per image output of its ``.ipynb``.

A full-page screenshot of each page is saved in ``.test-artifacts/screenshots/`` (or the
folder named by ``GAN_NOTES_ARTIFACTS``) for a person to look at.

The machine that runs the tests is offline, so the browser reaches nothing but the local
server: the book's MathJax (a CDN address in the published book) is answered from a local
copy of the npm package ``mathjax@3`` (``GAN_NOTES_MATHJAX``, default
``.cache/mathjax/node_modules/mathjax``; ``.ci/run`` installs it), and any other outside
request is aborted and listed. The book is the one ``.ci/run`` built when it sets
``GAN_NOTES_BOOK_HTML``; otherwise the test builds a copy of the sources in a temporary folder.

Without Chromium, Playwright or the MathJax copy these tests skip, saying what is missing;
in CI (``CI=true``) they fail instead. Deselect them with ``-m "not browser"``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _book import CHROMIUM_FLAGS, RAW_TEX_JS, find_chromium, toc_pages  # noqa: E402
from _book import require as _require  # noqa: E402

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("GAN_NOTES_ARTIFACTS", ROOT / ".test-artifacts")) / "screenshots"
MATHJAX = Path(os.environ.get("GAN_NOTES_MATHJAX", ROOT / ".cache" / "mathjax" / "node_modules" / "mathjax"))
# The book loads MathJax 3 from a CDN (Sphinx's default mathjax_path); any such address is
# answered from the local copy: .../mathjax@3/es5/tex-mml-chtml.js -> <MATHJAX>/es5/...
MATHJAX_URL = re.compile(r"^https?://[^/]+/(?:npm/)?mathjax@3[^/]*/(es5/[^?#]+)")
# Console errors and page errors that come from the book's toolchain, not from its content,
# and are harmless. Each is matched in full; anything else fails the test.
KNOWN_NOISE = {
    # Sphinx 7.4 emits sphinx-thebe's inline config <script> twice (a body-only script added
    # after the builder started is not recognised as a duplicate), so the second copy's
    # `const` declarations throw. The first copy already defined the same values, and thebe
    # itself is only loaded when a reader clicks "live code".
    "thebe-duplicate-config": re.compile(r"page error: (SyntaxError: )?Identifier 'THEBE_JS_URL' has already been declared"),
    # pydata-sphinx-theme on a browser with no stored light/dark preference (every fresh
    # profile, so every first visit) logs this as an error and falls back to "auto".
    "theme-mode-unset": re.compile(r"console: Got invalid theme mode: \. Resetting to auto\..*"),
}
JS_REPORT = r"""() => {
  const rawTexIn = """ + RAW_TEX_JS + r""";
  const article = document.querySelector('article') || document.querySelector('main') || document.body;
  const untypeset = [...article.querySelectorAll('.math')]
    .filter(e => !e.querySelector('mjx-container'))
    .map(e => e.textContent.trim().slice(0, 80));
  const texErrors = [];
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) {
      const bad = [];
      item.root.walkTree(node => {
        if (node.isKind('merror')) bad.push('error: ' + (node.attributes.get('data-mjx-error') || '?'));
        // MathJax shows an undefined macro as red text instead of failing.
        if (node.attributes && node.attributes.get('mathcolor') === 'red') bad.push('undefined macro');
      });
      if (bad.length) texErrors.push(item.math.slice(0, 80) + ' -> ' + bad.join(', '));
    }
  }
  // Visible prose: the article without code (which may hold "$" or "\(" on purpose) and
  // without the typeset math itself.
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  const rawTex = rawTexIn(prose.textContent);
  const images = [...article.querySelectorAll('img')].map(img => ({
    src: img.getAttribute('src'),
    loaded: img.complete && img.naturalWidth > 0,
    output: !!img.closest('.cell_output, .output'),
  }));
  // Display equations wider than the text column (MathJax does not break lines): a reader
  // on a laptop sees them cut off or has to scroll sideways.
  const wide = [...article.querySelectorAll('mjx-container[display="true"]')]
    .map(c => ({c, math: c.querySelector('mjx-math')}))
    .filter(({c, math}) => math && math.getBoundingClientRect().width > c.getBoundingClientRect().width + 1)
    .map(({c, math}) => `${Math.round(math.getBoundingClientRect().width)} px in ${Math.round(c.getBoundingClientRect().width)} px: ` +
         (c.closest('.math') || c).textContent.trim().slice(0, 60));
  return {
    title: document.title,
    math: article.querySelectorAll('.math').length,
    typeset: article.querySelectorAll('mjx-container').length,
    untypeset, texErrors, rawTex, images, wide,
  };
}"""


PAGES = toc_pages()


def _image_outputs(ipynb: Path) -> int:
    """Number of image outputs a reader should see in a chapter (cells not removed by tags)."""
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    count = 0
    for cell in nb["cells"]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] != "code" or tags & {"remove-cell", "remove-output"}:
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if any(k in data for k in ("image/png", "image/jpeg", "image/svg+xml", "image/gif")):
                count += 1
            elif "text/html" in data:  # e.g. an animation: the <img> elements it writes
                count += "".join(data["text/html"]).count("<img")
    return count


@pytest.fixture(scope="module")
def chromium():
    """Playwright driving the system's Chromium (Playwright's own browser download is not
    needed, and impossible offline)."""
    exe = find_chromium()
    _require(exe, "no Chromium: install it (Debian: apt-get install chromium) or set GAN_NOTES_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "Playwright for Python is not installed: pip install playwright")
    _require((MATHJAX / "es5" / "tex-mml-chtml.js").exists(),
             f"no local MathJax 3 at {MATHJAX}: npm install --prefix .cache/mathjax mathjax@3 (or set GAN_NOTES_MATHJAX)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def book_html(chromium, tmp_path_factory) -> Path:
    """The built HTML book: the one named by GAN_NOTES_BOOK_HTML (CI builds it once), or a
    fresh build of a copy of the sources in a temporary folder (never the repository's _build)."""
    given = os.environ.get("GAN_NOTES_BOOK_HTML")
    if given:
        html = Path(given)
        assert (html / "index.html").is_file(), f"GAN_NOTES_BOOK_HTML={given} holds no built book"
        return html
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    _require(jb, "jupyter-book is not installed")
    src = tmp_path_factory.mktemp("book-src")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("book", "notebooks"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    out = tmp_path_factory.mktemp("book-out")
    proc = subprocess.run([jb, "build", str(src), "--path-output", str(out)], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def site(book_html):
    """The book served on 127.0.0.1 (a free port) from a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(book_html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def screenshots(say) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS
    # Said outside pytest's capture, so that the path shows in every run.
    say(f"browser test: screenshots of the book's pages in {ARTIFACTS}")


def test_toc_lists_pages():
    assert PAGES[0] == "book/intro" and len(PAGES) >= 5
    missing = [p for p in PAGES if not any((ROOT / f"{p}{ext}").exists() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists pages with no source: {missing}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_in_browser(docname, chromium, site, screenshots):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    # Generous: a full-page screenshot of a long chapter takes seconds, many more on a busy machine.
    context.set_default_timeout(180_000)
    blocked: list[str] = []
    problems: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(site + "/"):
            return r.continue_()
        match = MATHJAX_URL.match(url)
        if match and (MATHJAX / match.group(1)).is_file():
            return r.fulfill(path=str(MATHJAX / match.group(1)))
        blocked.append(url)
        return r.abort()

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            problems.append(f"console: {msg.text} [{loc.get('url', '')}:{loc.get('lineNumber', '')}]")

    def on_response(resp):
        if resp.status >= 400:
            problems.append(f"HTTP {resp.status}: {resp.url}")

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("response", on_response)
    try:
        response = page.goto(f"{site}/{docname}.html", wait_until="load")
        assert response is not None and response.ok, f"{docname}.html: HTTP {response and response.status}"
        has_mathjax = page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')")
        if has_mathjax:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise")  # resolves when the first typeset is done
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        page.evaluate("() => document.fonts.ready.then(() => true)")
        shot = screenshots / f"{docname.replace('/', '__')}.png"
        page.screenshot(path=str(shot), full_page=True)
        report = page.evaluate(JS_REPORT)
    finally:
        context.close()

    # Outside requests: the book needs none but MathJax; list any (e.g. a remote image).
    for url in blocked:
        print(f"{docname}: blocked outside request {url}")
    # A blocked request shows as "Failed to load resource: net::ERR_FAILED"; that is the
    # offline machine, not the book. A local 404 is reported separately (HTTP 404) and fails.
    errors = [p for p in problems if not (blocked and "net::ERR_FAILED" in p)]
    noise = [p for p in errors if any(rx.fullmatch(p) for rx in KNOWN_NOISE.values())]
    errors = [p for p in errors if p not in noise]
    print(f"{docname}: {report['typeset']} equations typeset, {len(report['images'])} images, "
          f"{len(noise)} known harmless errors, screenshot {shot}")
    assert not errors, f"{docname}: errors in the browser:\n" + "\n".join(errors)

    # Equations.
    assert report["math"] == 0 or has_mathjax, f"{docname}: has math but does not load MathJax"
    assert not report["untypeset"], f"{docname}: equations not typeset: {report['untypeset'][:5]}"
    assert report["typeset"] >= report["math"]
    assert not report["texErrors"], f"{docname}: MathJax could not render: {report['texErrors'][:5]}"
    assert not report["rawTex"], f"{docname}: raw TeX in the visible text: {report['rawTex'][:5]}"
    assert not report["wide"], f"{docname}: display equations wider than the column (break them with aligned): {report['wide']}"

    # Figures.
    broken = [img["src"] for img in report["images"] if not img["loaded"]]
    assert not broken, f"{docname}: images that did not load: {broken}"
    ipynb = ROOT / f"{docname}.ipynb"
    if ipynb.exists():
        shown = sum(img["output"] for img in report["images"])
        expected = _image_outputs(ipynb)
        assert shown == expected, f"{docname}: {shown} figures shown, the notebook has {expected} image outputs"
