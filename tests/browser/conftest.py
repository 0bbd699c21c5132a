"""Fixtures for the browser tests: one headless Chromium per session, and Voila pages that close themselves.

``voila_page(notebook)`` serves ``tests/browser/notebooks/<notebook>`` (or any path) with Voila and opens it; see
:mod:`harness` for the timings it records. Tests using it carry ``@pytest.mark.browser`` (skipped where chromium is
missing, see ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from .harness import VoilaPage, launch_browser, open_page, serve_voila

NOTEBOOKS = Path(__file__).parent / "notebooks"
collect_ignore_glob = ["notebooks/*.ipynb"]  # pages for the browser tests to serve, not lessons for nbval to run


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session."""
    pytest.importorskip("playwright.sync_api")
    with launch_browser() as chromium:
        yield chromium


@pytest.fixture
def voila_page(browser, tmp_path) -> Iterator[Callable[..., VoilaPage]]:
    """Factory: ``voila_page("two_figures.ipynb", options=["--preheat_kernel=True"], query="?a=1")`` serves and
    opens a page (with ``query`` appended to its address)."""
    with ExitStack() as stack:

        def serve_and_open(notebook: str, *, options: Sequence[str] = (), query: str = "",
                           **viewport: int) -> VoilaPage:
            url = stack.enter_context(serve_voila(NOTEBOOKS / notebook, options, log_dir=tmp_path))
            voila = open_page(browser, url + query, **viewport)  # query: "?view=…", the page's query string
            stack.callback(voila.page.context.close)  # closed before voila stops (the stack unwinds in reverse)
            return voila

        yield serve_and_open
