"""Notebooks as a learner runs them: JupyterLab in headless Chromium, Run All, then twice Restart and Run All.

Every LiveFigure must be drawn each time, also when the cells run right after a kernel (re)start (several figures
appearing at once included), and the convolution explorer must follow its Step button. Saves
``/tmp/segtutor-shots/jupyterlab-<notebook>.png``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .harness import SHOTS, lab_url, page_errors, serve_jupyterlab

pytestmark = pytest.mark.browser

COURSE = Path(__file__).parents[2] / "notebooks"
NOTEBOOKS = [COURSE / "02_convolution.ipynb", Path(__file__).parent / "notebooks" / "explorers.ipynb"]
FIGURES = "document.querySelectorAll('.jp-NotebookPanel .segtutor-figure')"
DRAWN = f"Array.from({FIGURES}).filter(d => d.classList.contains('js-plotly-plot')).length"
PROMPTS = "Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim())"
RUN_S = 180  # the whole notebook on 2 busy cores


def menu(page, *path: str) -> None:
    """Click through JupyterLab's menu bar, e.g. ``menu(page, "Run", "Run All Cells")``.

    A dialog JupyterLab opened on its own (it blocks every click) fails the test with the dialog's text.
    """
    for name in path:
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "jupyterlab-dialog.png"))
            pytest.fail(f"JupyterLab shows a dialog before {name!r}: {dialog.first.inner_text()!r}")
        page.get_by_role("menuitem", name=name, exact=True).click()


def run_all(page, *, restart: bool) -> float:
    """Run every cell (after restarting the kernel if asked); seconds until all have run."""
    started = time.monotonic()
    for _attempt in range(3):  # right after the page opens, JupyterLab can drop a request sent too early
        if restart:
            menu(page, "Kernel", "Restart Kernel and Run All Cells…")
            confirm = page.get_by_role("button", name="Confirm Kernel Restart")
            confirm.or_(page.get_by_role("button", name="Restart", exact=True)).click()
        else:
            menu(page, "Run", "Run All Cells")
        try:
            page.wait_for_function(f"{PROMPTS}.some(p => p.includes('*'))", timeout=15_000)
            break
        except PlaywrightTimeout:  # nothing started: ask again
            continue
    page.wait_for_function(f"{PROMPTS}.every(p => /\\[\\d+\\]/.test(p))", timeout=RUN_S * 1000)
    return time.monotonic() - started


def assert_all_figures_drawn(page) -> int:
    """Every LiveFigure output of the notebook is a drawn plotly plot (none left blank or failed)."""
    page.wait_for_function(f"{FIGURES}.length > 0 && {DRAWN} === {FIGURES}.length", timeout=30_000)
    failed = page.get_by_text("the figure could not be drawn")
    assert failed.count() == 0, failed.first.inner_text()
    return page.evaluate(f"{FIGURES}.length")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_figure_is_drawn_in_jupyterlab(browser, tmp_path, notebook):
    shutil.copy(notebook, tmp_path / notebook.name)
    shutil.copytree(COURSE / "solutions", tmp_path / "solutions")  # for the exercises' "# %load solutions/…"
    with serve_jupyterlab(tmp_path, log_dir=tmp_path) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(lab_url(server, notebook.name), timeout=90_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=90_000)

        seconds = run_all(page, restart=False)
        figures = assert_all_figures_drawn(page)
        print(f"\nJupyterLab: {notebook.name} ran in {seconds:.1f} s, {figures} figure(s) drawn")

        # the explorer answers its Step button: the formula moves on to output pixel (0, 1)
        explorer = page.locator(".jp-OutputArea-output", has=page.get_by_role("button", name="Step")).first
        explorer.scroll_into_view_if_needed()
        explorer.get_by_role("button", name="Step").click()
        explorer.get_by_text("output[0, 1]", exact=False).wait_for(timeout=15_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        explorer.screenshot(path=str(SHOTS / f"jupyterlab-{notebook.stem}.png"))

        # cells run right after a kernel restart: every figure is drawn again, twice in a row
        for attempt in range(2):
            page.wait_for_timeout(500)
            seconds = run_all(page, restart=True)
            assert assert_all_figures_drawn(page) == figures
            print(f"restart {attempt + 1}: ran in {seconds:.1f} s, {figures} figure(s) drawn")
        context.close()
    assert page_errors(errors) == [], "\n".join(errors)
