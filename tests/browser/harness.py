"""Serve a notebook with Voila on 127.0.0.1 and open it in headless Chromium (Debian's, driven by playwright).

Used by the browser tests (through the fixtures in ``conftest.py``) and by ``benchmarks/page_load.py``::

    with launch_browser() as browser, serve_voila(notebook) as url:
        voila = open_page(browser, url)
        print(voila.seconds_to_widgets, voila.wait_for_plots(1))

Every wait is bounded. Screenshots go to ``/tmp/segtutor-shots``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SHOTS = Path("/tmp/segtutor-shots")
# anywidget 0.11 rejects a promise when a widget's module has not loaded within 2 s of its model, and nobody handles
# the rejection: on a busy 2-core machine (the kernel running cells, plotly.js being evaluated) that happens while the
# widget goes on to load and draw. The tests check that every widget drew; this one message says nothing more.
ANYWIDGET_DEADLINE = "[anywidget] Failed to initialize model."


def page_errors(errors: Sequence[str]) -> list[str]:
    """The page's uncaught errors, less anywidget's 2-second deadline (:data:`ANYWIDGET_DEADLINE`)."""
    return [error for error in errors if ANYWIDGET_DEADLINE not in error]
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
PREHEAT_S = 120  # with --preheat_kernel=True: the pre-heated kernel has run the notebook
PAGE_LOAD_S = 90  # notebook executed and first widget shown (2 busy cores: be patient, but bounded)
POOL_FILLED = "is filled with"  # voila's log line once its pre-heated kernel has started the notebook
ROOT = Path(__file__).parents[2]  # voila runs here, so it reads the repository's voila.json


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


@contextmanager
def launch_browser() -> Iterator[object]:
    """One headless Chromium (Debian's ``/usr/bin/chromium``), closed on exit."""
    from playwright.sync_api import sync_playwright  # imported here: the tests skip cleanly without playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=30_000)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def serve_voila(notebook: str | Path, options: Sequence[str] = (), *, log_dir: Path | None = None,
                preheat_s: float = PREHEAT_S) -> Iterator[str]:
    """Run ``voila <notebook> <options>`` on a free 127.0.0.1 port; yields its URL once it answers.

    With ``--preheat_kernel=True`` among the options, waits (at most ``preheat_s`` seconds) until the pre-heated
    kernels have run the notebook (voila says the pool is filled, then its processes sit idle), as when an
    instructor starts voila before the class. Voila and its kernels are stopped on exit.
    """
    port = _free_port()
    log = Path(log_dir or tempfile.mkdtemp(prefix="segtutor-voila-")) / f"voila-{port}.log"
    command = [
        sys.executable, "-m", "voila", str(notebook), *options,
        "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", "--Voila.port_retries=0",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=_server_env(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until(lambda: _answers(url), process, log, SERVER_START_S, "answer HTTP")
        if "--preheat_kernel=True" in options:
            _wait_until(lambda: POOL_FILLED in log.read_text(), process, log, preheat_s, "start its pre-heated kernel")
            _wait_until(lambda: _idle(process.pid), process, log, preheat_s, "finish running the notebook")
        yield url
    finally:
        _stop(process)


def open_page(browser, url: str, *, width: int = 1400, height: int = 1000) -> VoilaPage:
    """Open ``url`` in a new browser context; returns once the first widget is on screen."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    started = time.monotonic()
    page.goto(url, timeout=PAGE_LOAD_S * 1000)
    page.wait_for_selector(".jupyter-widgets", timeout=PAGE_LOAD_S * 1000)
    return VoilaPage(page, started, time.monotonic() - started, console)


def _server_env() -> dict[str, str]:
    """The environment for a server and its kernels: this checkout's ``segtutor`` first on the path.

    Kernels start in the notebook's folder, so without it they import whichever ``segtutor`` is installed (an
    editable install of another checkout, say), not the code under test.
    """
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, path.split(os.pathsep))])}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "voila/api/shutdown-probe", timeout=2)  # noqa: S310 (our local server)
    except urllib.error.HTTPError:  # any HTTP answer (here a 404) means the server is up
        return True
    except OSError:
        return False
    return True


def _idle(root: int, *, seconds: float = 1.0) -> bool:
    """Whether process ``root`` and its descendants (voila and its kernels) used under 5 % of a core for ``seconds``."""

    def cpu_seconds() -> float:
        parent, used = {}, {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name: state, ppid, …, utime, stime
            except OSError:  # the process ended meanwhile
                continue
            pid = int(stat.parent.name)
            parent[pid], used[pid] = int(fields[1]), int(fields[11]) + int(fields[12])

        def descends(pid: int) -> bool:
            while pid > 1:
                if pid == root:
                    return True
                pid = parent.get(pid, 0)
            return False

        return sum(ticks for pid, ticks in used.items() if descends(pid)) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    time.sleep(seconds)
    return cpu_seconds() - before < 0.05 * seconds


def _wait_until(done, process: subprocess.Popen, log: Path, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if done():
            return
        time.sleep(0.3)
    raise TimeoutError(f"the server did not {what} within {timeout_s} s:\n{log.read_text()[-3000:]}")


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


@contextmanager
def serve_jupyterlab(root: Path, *, log_dir: Path | None = None,
                     settings: dict[str, dict] | None = None) -> Iterator[str]:
    """Run JupyterLab on a free 127.0.0.1 port over the folder ``root``; yields ``http://127.0.0.1:<port>/?token=…``
    once it answers (:func:`lab_url` makes a notebook's address from it).

    Settings, workspaces and runtime files go to a temporary folder, so the learner's own JupyterLab is untouched.
    ``settings`` adds user settings by plugin, e.g. ``{"@jupyterlab/notebook-extension/tracker": {"windowingMode":
    "none"}}`` (every cell rendered, also those scrolled out of view).
    """
    port, token = _free_port(), "segtutor-browser-test"
    home = Path(tempfile.mkdtemp(prefix="segtutor-lab-"))
    log = Path(log_dir or home) / f"jupyterlab-{port}.log"
    env = {
        **_server_env(),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "Would you like to get notified…" toast over the notebook
    for plugin, values in (settings or {}).items():
        package, _, name = plugin.rpartition("/")
        path = home / "settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until(lambda: _answers(url), process, log, SERVER_START_S, "answer HTTP")
        yield f"{url}?token={token}"
    finally:
        _stop(process)


@contextmanager
def serve_jupyter_server(root: Path, options: Sequence[str] = (), *, log_dir: Path | None = None) -> Iterator[str]:
    """Run ``jupyter server`` with Voila's server extension on a free 127.0.0.1 port over the folder ``root``;
    yields ``http://127.0.0.1:<port>/?token=…`` once it answers (:func:`voila_render_url` makes a page's address).

    It runs in the repository, so Voila's extension reads ``voila.json`` (it looks in the working directory); user
    settings and runtime files go to a temporary folder.
    """
    port, token = _free_port(), "segtutor-browser-test"
    home = Path(tempfile.mkdtemp(prefix="segtutor-server-"))
    log = Path(log_dir or home) / f"jupyter-server-{port}.log"
    env = {**_server_env(), "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    command = [
        sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--allow-root", "--ServerApp.jpserver_extensions=voila.server_extension=True", *options,
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until(lambda: _answers(url), process, log, SERVER_START_S, "answer HTTP")
        yield f"{url}?token={token}"
    finally:
        _stop(process)


def voila_render_url(server: str, notebook: str) -> str:
    """The address at which Voila's server extension renders ``notebook`` (relative to the served folder)."""
    base, token = server.split("?")
    return f"{base}voila/render/{notebook}?{token}"


def lab_url(server: str, notebook: str) -> str:
    """The address that opens ``notebook`` (relative to the served folder) in JupyterLab."""
    base, token = server.split("?")
    return f"{base}lab/tree/{notebook}?{token}"
