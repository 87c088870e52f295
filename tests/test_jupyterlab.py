"""Every chapter opened in a real JupyterLab, in headless Chromium, as a reader opens it.

The book defines its TeX macros in ``_config.yml``; JupyterLab never reads that file, so each
chapter defines them itself in a hidden cell (``gan_notes.macros``). This test checks what a
reader of the ``.ipynb`` in JupyterLab sees:

- a JupyterLab server is started on 127.0.0.1 (a free port, a random token, no browser, its
  own settings and runtime folders, autosave off) on a temporary copy of ``notebooks/*.ipynb``,
  and is always shut down afterwards;
- each chapter is opened in a fresh page (MathJax keeps ``\\newcommand`` definitions for the
  whole page, so a chapter opened after another would borrow its macros), and once its
  markdown is rendered and MathJax has settled there must be no MathJax error element
  (``mjx-merror``), no undefined macro (MathJax draws those as red text), and no raw TeX in the
  visible text of the rendered markdown, cells and markdown outputs alike (``$``, a control
  word such as ``\\pdata``, ``\\(`` ``\\[``: the same rule as the book's browser test);
- a canary notebook with an undefined macro and raw TeX must fail both checks, so the checks
  can fail;
- chapter 13's lab: a python kernel runs the chapter's setup and import cells and the cell
  that shows the widget; the widget must render (its figure is an image), and changing the
  loss dropdown and pressing "one step" must update the figure and the status line.

Without Chromium or Playwright the tests skip, saying what is missing; in CI (``CI=true``)
they fail instead. Deselect them with ``-m "not jupyterlab"``. The chapters' markdown is
what is tested, so after editing a chapter's ``.md`` sync its ``.ipynb`` (``jupytext --sync``)
before running this.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from _book import CHROMIUM_FLAGS, RAW_TEX_JS, find_chromium, require  # noqa: E402

pytestmark = pytest.mark.jupyterlab

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = Path(os.environ.get("GAN_NOTES_ARTIFACTS", ROOT / ".test-artifacts")) / "screenshots"
LAB_CHAPTER = "13_gan_lab.ipynb"
CANARY = "canary.ipynb"
START_TIMEOUT_S = 90
# Settings of the test's JupyterLab: no autosave (the notebooks are copies, but a run cell
# makes one dirty), no news or update check (the machine is offline).
SETTINGS = {"@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False}}

# Opens the notebook at `path` in the restored JupyterLab (File > Open does the same) and
# resolves once every markdown cell is rendered and MathJax's output has stopped changing
# (JupyterLab typesets each cell asynchronously and says nothing when it is done).
JS_OPEN = r"""async path => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const app = window.jupyterapp;
  await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path});
  await panel.context.ready;
  await panel.revealed;
  const nb = panel.content;
  const md = () => nb.widgets.filter(c => c.model.type === 'markdown');
  for (let i = 0; i < 600; i++) {
    if (nb.widgets.length && md().every(c => c.rendered && c.node.querySelector('.jp-RenderedMarkdown'))) break;
    await sleep(100);
  }
  const hasMath = md().some(c => /[$]|\\begin/.test(c.model.sharedModel.getSource()));
  let last = -1, stable = 0;
  for (let i = 0; i < 600 && stable < 4; i++) {
    const n = nb.node.querySelectorAll('mjx-container').length;
    stable = (n === last && (n > 0 || !hasMath)) ? stable + 1 : 0;
    last = n;
    await sleep(250);
  }
  return {cells: nb.widgets.length, markdown: md().length, typeset: last, hasMath, settled: stable >= 4};
}"""

# What a reader sees in the notebook's rendered markdown: MathJax errors, undefined macros
# (red text: its characters are the mjx-c classes' code points) and raw TeX in the text.
JS_REPORT = r"""() => {
  const rawTexIn = """ + RAW_TEX_JS + r""";
  const nb = window.jupyterapp.shell.currentWidget.content;
  const chars = el => [...el.querySelectorAll('mjx-c')]
    .map(c => { const m = [...c.classList].map(k => /^mjx-c([0-9A-F]+)$/.exec(k)).find(Boolean);
                return m ? String.fromCodePoint(parseInt(m[1], 16)) : (c.textContent || '?'); }).join('');
  const texErrors = [], rawTex = [];
  nb.widgets.forEach((cell, i) => {
    for (const area of cell.node.querySelectorAll('.jp-RenderedMarkdown')) {
      const where = `cell ${i}${area.closest('.jp-OutputArea') ? ' (output)' : ''}`;
      for (const e of area.querySelectorAll('mjx-merror')) {
        texErrors.push(`${where}: MathJax error ${e.getAttribute('data-mjx-error') || e.getAttribute('title') || chars(e)}`);
      }
      for (const e of area.querySelectorAll('mjx-container [style*="color: red"]')) {
        texErrors.push(`${where}: undefined macro ${chars(e)}`);
      }
      const prose = area.cloneNode(true);
      prose.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
      for (const hit of rawTexIn(prose.textContent)) rawTex.push(`${where}: ${hit}`);
    }
  });
  return {texErrors, rawTex};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _canary() -> nbformat.NotebookNode:
    """A notebook that both checks must reject: an undefined macro and raw TeX."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Canary\n\nAn undefined macro: $\\notamacro(x)$."),
        nbformat.v4.new_markdown_cell("Raw TeX: \\alpha outside math."),
    ]
    return nb


@pytest.fixture(scope="module")
def chromium():
    """Playwright driving the system's Chromium."""
    exe = find_chromium()
    require(exe, "no Chromium: install it (Debian: apt-get install chromium) or set GAN_NOTES_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright for Python is not installed: pip install playwright")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def lab(chromium, tmp_path_factory, say):
    """A JupyterLab server on 127.0.0.1 serving a copy of the chapters; yields (url, token)."""
    require(CHAPTERS, f"no chapters in {ROOT / 'notebooks'}")
    require(importlib.util.find_spec("jupyterlab"), "JupyterLab is not installed: pip install jupyterlab")
    home = tmp_path_factory.mktemp("jupyterlab")
    notebooks = home / "notebooks"
    notebooks.mkdir()
    for ipynb in CHAPTERS:
        shutil.copy2(ipynb, notebooks / ipynb.name)
    nbformat.write(_canary(), notebooks / CANARY)
    for name, value in SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"),   # nobody's jupyter_server_config.py
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "GAN_NOTES_PROFILE": env.get("GAN_NOTES_PROFILE", "smoke"),
        "OMP_NUM_THREADS": "1",
    })
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebooks}",
         "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: open notebooks, run cells
         "--LabApp.notebook_starts_kernel=False",  # only chapter 13's test starts a kernel
         f"--LabServerApp.user_settings_dir={home / 'settings'}", f"--LabServerApp.workspaces_dir={home / 'workspaces'}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=notebooks, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(home / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT_S} s:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        say(f"jupyterlab test: server up in {time.monotonic() - t0:.1f} s at {url}")
        yield url, token
    finally:
        try:  # shuts the kernels down too
            req = urllib.request.Request(f"{url}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=10).close()
            proc.wait(timeout=30)
        except Exception:
            pass
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        say(f"jupyterlab test: {time.monotonic() - t0:.0f} s with the server up")


def _open(chromium, lab, name: str, timeout_ms: int = 120_000):
    """A fresh page (fresh MathJax state) with notebook ``name`` open in JupyterLab, settled;
    returns (context, page, settle report, list of blocked outside requests)."""
    url, token = lab
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(url + "/"):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: page.console_errors.append(f"page error: {err}"))
    # ?reset: a new, empty workspace.
    page.goto(f"{url}/lab?reset&token={token}", wait_until="load")
    page.wait_for_function("() => window.jupyterapp !== undefined")
    settled = page.evaluate(JS_OPEN, name)
    return context, page, settled, blocked


@pytest.mark.parametrize("ipynb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_formulas_render(ipynb, chromium, lab):
    t0 = time.monotonic()
    # JupyterLab typesets markdown cells asynchronously; now and then (about one chapter load in
    # twenty under CI's load) a cell is typeset before the macro cell that defines its macros,
    # and shows "undefined macro" until it is rendered again. A reader reopens; the test opens
    # the chapter afresh up to three times, and says when it had to.
    for attempt in range(1, 4):
        context, page, settled, blocked = _open(chromium, lab, ipynb.name)
        try:
            report = page.evaluate(JS_REPORT)
        finally:
            context.close()
        undefined_only = report["texErrors"] and all("undefined macro" in e for e in report["texErrors"])
        if not undefined_only:
            break
        print(f"{ipynb.stem}: attempt {attempt}: {len(report['texErrors'])} cell(s) typeset before the macro cell")
    print(f"{ipynb.stem}: {settled['cells']} cells, {settled['typeset']} formulas typeset in "
          f"{time.monotonic() - t0:.1f} s ({attempt} attempt(s)); blocked outside requests: {blocked or 'none'}")
    assert settled["settled"], f"{ipynb.stem}: MathJax did not settle: {settled}"
    assert not settled["hasMath"] or settled["typeset"] > 0, f"{ipynb.stem}: nothing typeset: {settled}"
    assert not report["texErrors"], (
        f"{ipynb.stem}: formulas that do not render in JupyterLab (a macro missing from the chapter's "
        f"macro cell? run python -m gan_notes.macros --write and sync): {report['texErrors'][:8]}")
    assert not report["rawTex"], f"{ipynb.stem}: raw TeX in the rendered markdown: {report['rawTex'][:8]}"


def test_canary_fails_both_checks(chromium, lab):
    context, page, settled, _ = _open(chromium, lab, CANARY)
    try:
        report = page.evaluate(JS_REPORT)
    finally:
        context.close()
    assert settled["settled"] and settled["typeset"] >= 1, settled
    assert any("undefined macro \\notamacro" in e for e in report["texErrors"]), report
    assert any("\\alpha" in e for e in report["rawTex"]), report


def test_lab_widget_is_live(chromium, lab):
    """Chapter 13: run its setup, its imports and the widget cell in a kernel; the widget
    shows a figure, and a control change and a step redraw it."""
    if not (ROOT / "notebooks" / LAB_CHAPTER).exists():
        pytest.skip(f"no {LAB_CHAPTER}")
    t0 = time.monotonic()
    # The chapter's kernel, started before the notebook opens (as JupyterLab does by default
    # when it opens a notebook): the widget manager binds to the kernel the notebook opens with.
    url, token = lab
    body = json.dumps({"path": LAB_CHAPTER, "type": "notebook", "name": LAB_CHAPTER,
                       "kernel": {"name": "python3"}}).encode()
    req = urllib.request.Request(f"{url}/api/sessions", data=body, method="POST",
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 201, f"could not start a kernel: HTTP {r.status}"
    context, page, _, _ = _open(chromium, lab, LAB_CHAPTER, timeout_ms=240_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        # The code cells to run: those that import (the Colab setup and the imports), then the
        # cell that shows the lab. Each run resolves when its cell has finished.
        ran = page.evaluate(r"""async () => {
          const panel = window.jupyterapp.shell.currentWidget, nb = panel.content;
          await panel.sessionContext.ready;
          const session = panel.sessionContext.session;
          if (!session || !session.kernel) return {error: 'the notebook opened without its kernel'};
          await session.kernel.info;
          const src = c => c.model.sharedModel.getSource();
          const code = nb.widgets.map((c, i) => [c, i]).filter(([c]) => c.model.type === 'code');
          const show = code.find(([c]) => /\blab(_widget)?\.show\(/.test(src(c)));
          if (!show) return {error: 'no cell calls lab_widget.show('};
          const todo = code.filter(([c, i]) => i < show[1] && /^\s*(import|from)\s/m.test(src(c))).concat([show]);
          const out = [];
          for (const [c, i] of todo) {
            nb.activeCellIndex = i;
            await window.jupyterapp.commands.execute('notebook:run-cell');
            const errors = c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`);
            out.push({cell: i, count: c.model.executionCount, errors});
            if (errors.length) break;
          }
          // What the show cell displayed (for the message, should the widget not render).
          out.push({shown: JSON.stringify(show[0].model.outputs.toJSON()).slice(0, 1500)});
          return {ran: out};
        }""")
        assert "error" not in ran, ran["error"]
        shown = ran["ran"].pop()["shown"]
        failed = [r for r in ran["ran"] if r["errors"] or r["count"] is None]
        assert not failed, f"{LAB_CHAPTER}: cells that failed in JupyterLab's kernel: {failed}"

        # Bring the widget into view: JupyterLab skips the rendering of cells out of view.
        page.evaluate("i => window.jupyterapp.shell.currentWidget.content.scrollToItem(i, 'start')", ran["ran"][-1]["cell"])
        image = page.locator(".jp-OutputArea .widget-image").first
        try:
            image.wait_for(state="attached", timeout=60_000)
            image.scroll_into_view_if_needed()
        except Exception as err:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-13-widget.png"))
            raise AssertionError(f"{LAB_CHAPTER}: the lab's widget did not render (screenshot in {ARTIFACTS}); "
                                 f"the cell displayed {shown}; errors in the browser: {page.console_errors}") from err
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=60_000)
        status = page.locator(".jp-OutputArea .widget-html").first
        first_src = image.get_attribute("src")
        first_status = status.inner_text()
        assert "iteration 0" in first_status, first_status

        # A control: the loss dropdown. The figure (heat map of the new loss) is redrawn.
        loss = page.locator(".jp-OutputArea .widget-dropdown", has=page.locator("label", has_text=re.compile(r"^loss$")))
        loss.locator("select").first.select_option("hinge")
        page.wait_for_function("([img, src]) => img.getAttribute('src') !== src && img.naturalWidth > 0",
                               arg=[image.element_handle(), first_src], timeout=60_000)
        second_src = image.get_attribute("src")

        # A step: "one step" trains one frame; the status line and the figure follow.
        page.locator(".jp-OutputArea button", has_text="one step").first.click()
        page.wait_for_function("el => /iteration [1-9]/.test(el.textContent)", arg=status.element_handle(), timeout=60_000)
        page.wait_for_function("([img, src]) => img.getAttribute('src') !== src", arg=[image.element_handle(), second_src],
                               timeout=60_000)
        print(f"{LAB_CHAPTER}: widget live in {time.monotonic() - t0:.1f} s; cells run {[r['cell'] for r in ran['ran']]}; "
              f"status after a step: {status.inner_text()!r}")
    finally:
        context.close()
