"""Serve a notebook with Voila and open it in headless Chromium (Debian's, driven by playwright).

``voila_page(notebook)`` starts ``voila`` on a free 127.0.0.1 port, opens the page, waits for the first widget
and returns a :class:`VoilaPage` with timings; Voila and its kernel are stopped when the test ends. Screenshots
go to ``/tmp/segtutor-shots``. Every wait is bounded. Tests using it carry ``@pytest.mark.browser`` (skipped
where chromium is missing, see ``tests/conftest.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parent / "notebooks"
collect_ignore_glob = ["notebooks/*.ipynb"]  # pages for the browser tests to serve, not lessons for nbval to run
SHOTS = Path("/tmp/segtutor-shots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 60  # voila answering HTTP
PAGE_LOAD_S = 90  # notebook executed and first widget shown (2 busy cores: be patient, but bounded)


@dataclass
class VoilaPage:
    """An open Voila page and how long it took.

    Attributes:
        page: the playwright page.
        started: ``time.monotonic()`` when the browser asked for the page.
        seconds_to_widgets: from asking for the page to the first widget on screen.
        console: the browser console's messages (for failure reports).
    """

    page: object
    started: float
    seconds_to_widgets: float
    console: list[str] = field(default_factory=list)

    def wait_for_plots(self, count: int, timeout_s: float = 60) -> float:
        """Wait until ``count`` plotly plots are drawn; returns seconds since the page was requested."""
        self.page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot').length >= {count}", timeout=timeout_s * 1000
        )
        return time.monotonic() - self.started

    def timeline(self) -> str:
        """When the page's HTML and LiveFigure's steps happened, in seconds after navigation (for the test log)."""
        marks = self.page.evaluate(
            "[['html', performance.timing.domContentLoadedEventEnd - performance.timing.navigationStart]]"
            ".concat(performance.getEntriesByType('mark').filter(m => m.name.startsWith('segtutor:'))"
            ".map(m => [m.name.slice(9), m.startTime]))"
        )
        return ", ".join(f"{name} {ms / 1000:.1f} s" for name, ms in marks)

    def screenshot(self, name: str) -> Path:
        """Save a screenshot of the page as ``/tmp/segtutor-shots/<name>.png``."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def screenshot_element(self, locator, name: str) -> Path:
        """Save a screenshot of one element (e.g. a cell's output) as ``/tmp/segtutor-shots/<name>.png``."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        locator.screenshot(path=str(path), timeout=15_000)
        return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url + "voila/api/shutdown-probe", timeout=2)  # noqa: S310 (our local server)
            return
        except urllib.error.HTTPError:  # any HTTP answer (here a 404) means the server is up
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"voila did not answer at {url} within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Stop voila and its kernel (the process group we started), politely first."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=30_000)
        yield chromium
        chromium.close()


@pytest.fixture
def voila_page(browser, tmp_path) -> Iterator[Callable[[str], VoilaPage]]:
    """Factory: ``voila_page("two_figures.ipynb")`` serves ``tests/browser/notebooks/<name>`` and opens it."""
    processes: list[subprocess.Popen] = []
    contexts = []

    def open_page(notebook: str, *, width: int = 1400, height: int = 1000) -> VoilaPage:
        port = _free_port()
        log = tmp_path / f"voila-{port}.log"
        command = [
            sys.executable, "-m", "voila", str(NOTEBOOKS / notebook),
            "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
        ]  # fmt: skip
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(process)
        url = f"http://127.0.0.1:{port}/"
        _wait_for_server(url, process, log)

        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        started = time.monotonic()
        page.goto(url, timeout=PAGE_LOAD_S * 1000)
        page.wait_for_selector(".jupyter-widgets", timeout=PAGE_LOAD_S * 1000)
        return VoilaPage(page, started, time.monotonic() - started, console)

    yield open_page
    for context in contexts:
        context.close()
    for process in processes:
        _stop(process)
