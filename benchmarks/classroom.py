"""A classroom on one server: N learners open the training studio at the same moment, train, pause, resume, stop.

The issue's goal for a class of 8 on 2 cores, served with the README's command: every page shows its widgets within
8 s and its first plot within 10 s; all press Start; every page keeps updating; Pause and Stop show within 1 s
(median) and 2 s (max) of the click; nobody's run is lost; each kernel stays under 1 GB resident.

One server per run (``--serve``: a voila command line, or ``jupyter server`` with Voila's server extension), one
headless Chromium (Debian's, as the browser tests use it: ``tests/browser/harness.py``), one browser context per
learner. All N pages are asked for at the same moment; then, all together and each timed in its own page:

1. widgets on screen, first plot drawn (the architecture diagram);
2. the Train tab opened (the studio builds it then), the budget set to ``--budget`` seconds (so that no run ends on
   its own before it is paused), Start → "running" with its first steps drawn;
3. every page keeps updating: the status line's step counter rises over ``--watch`` seconds;
4. Pause → "paused", Resume → "running" (and the steps rise again), Stop → "stopped"; the loss curve keeps every
   step of the run (nobody's history lost).

Click → status is timed in the page (a click listener and a MutationObserver on the status line, both on
``performance.now()``), so playwright's own polling is not counted. Start, Pause, Resume and Stop are clicked with
``force=True`` (a real mouse click, without playwright's visible-stable-enabled checks: with 8 pages training on 2
cores those checks ran past 30 s although the button was enabled and the page answered within 2 s). Meanwhile the
kernels' resident memory (the ``ipykernel_launcher`` processes under the server), the load average and the CPU time
of the server (voila and its kernels) against the browser are sampled.

The browsers of a real class run on the learners' own machines. Here they share the server's cores, so by default
(``--browser-nice 19``) Chromium and playwright's driver run at the lowest CPU priority: Chromium is started under
``nice -n 19`` without the right to raise its priority again (Chromium raises its own where it may), and every
thread of the browser's processes is set to nice 19 at each sample. The server gets the cores first and the browsers what is left, so what is measured
can be attributed to the server; the pages' own work still happens on these cores, in the time the server leaves.
``--browser-nice 0`` is the old mode, as the issue measured (browser and server at the same priority). Every wait
is bounded: a page that does not
load within ``--load-timeout`` is reported as such and takes no further part. Traffic goes only to 127.0.0.1. Run::

    flock /tmp/segtutor-heavy.lock .venv/bin/python benchmarks/classroom.py 8     # the README's command for a class
    .venv/bin/python benchmarks/classroom.py 1 4 8 --serve "voila --preheat_kernel=True" --serve voila
    .venv/bin/python benchmarks/classroom.py 8 --serve "voila --preheat_kernel=True --pool_size=8"
    .venv/bin/python benchmarks/classroom.py 8 --serve "jupyter server"     # /voila/render/<studio>
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import signal
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' Voila + Chromium harness
from browser.harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_FLAGS,
    SHOTS,
    serve_jupyter_server,
    serve_voila,
    voila_render_url,
)

STUDIO = "notebooks/dashboards/training_studio.ipynb"
README_COMMAND = "readme"  # the README's command for a class, its pool sized for each class measured (N + 2)
STATUS = ".segtutor-training-status"
LOSS_POINTS = "(document.querySelector('.segtutor-training-curves .js-plotly-plot')?.data?.[0]?.x?.length ?? -1)"
TARGETS = {"widgets": 8.0, "plot": 10.0, "median click": 1.0, "max click": 2.0, "kernel MB": 1024}
STEP_TIMEOUT_S = 30  # one phase of one page (tab built, status shown, …) once the page has loaded
RUN_TIMEOUT_S = 120  # Start → running with steps drawn (the first step of a fresh kernel is slow; 8 share 2 cores)

# In the page: remember every button click and every change of the status line's state, on performance.now().
WATCH_STATUS = """(selector) => {
  const status = document.querySelector(selector);
  const seg = window.__segtutor = {clicks: [], states: [], updates: 0, step: 0};
  const record = () => {
    const state = status.querySelector('b')?.textContent ?? '';
    const last = seg.states[seg.states.length - 1];
    if (!last || last[0] !== state) seg.states.push([state, performance.now()]);
    seg.step = Number(status.textContent.match(/step (\\d+)/)?.[1] ?? 0);
    seg.imagesPerSecond = Number(status.textContent.match(/(\\d+) images\\/s/)?.[1] ?? 0);
    seg.updates += 1;
  };
  new MutationObserver(record).observe(status, {subtree: true, childList: true, characterData: true});
  record();
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (button) seg.clicks.push([button.textContent.trim(), performance.now()]);
  }, true);
}"""
# what a page shows when a step failed
PAGE_STATE = """(selector) => {
  const status = document.querySelector(selector);
  const buttons = [...document.querySelectorAll('button')].filter(b => /Start|Pause|Resume|Stop/.test(b.textContent))
    .map(b => `${b.textContent.trim()}${b.disabled ? ' (disabled)' : ''}`);
  return `document ${document.readyState}, ${document.querySelectorAll('.jupyter-widgets').length} widgets, `
    + `${document.querySelectorAll('.js-plotly-plot').length} plots, status "${status?.textContent ?? '(none)'}", `
    + `buttons ${buttons.join(', ') || '(none)'}, body starts "${document.body?.innerText.slice(0, 120) ?? ''}"`;
}"""
# seconds from the latest click on `button` to the first state `state` after it (null: not yet)
CLICK_TO_STATE = """([button, state]) => {
  const seg = window.__segtutor;
  const clicks = seg.clicks.filter(([text]) => text === button);
  if (!clicks.length) return null;
  const clicked = clicks[clicks.length - 1][1];
  const reached = seg.states.find(([s, t]) => s === state && t >= clicked);
  return reached ? (reached[1] - clicked) / 1000 : null;
}"""


@dataclass
class Learner:
    """One learner's page and what was measured in it (None: that step was not reached)."""

    index: int
    widgets_s: float | None = None
    plot_s: float | None = None
    train_tab_s: float | None = None  # tab clicked → status line and empty curves shown
    running_s: float | None = None  # Start clicked → "running" with a step drawn
    steps_per_s: float | None = None  # step counter's rise per second while all train
    updates_per_s: float | None = None  # status-line redraws per second while all train
    page_answer_s: float | None = None  # round trip of a trivial script while all train (the browser's own delay)
    pause_s: float | None = None
    resume_s: float | None = None
    stop_s: float | None = None
    images_per_s: float | None = None  # the run's training speed as the kernel reports it (status line, at Stop)
    run_kept: bool | None = None  # after Stop: the curve holds every step, the state is "stopped"
    failed: str = ""  # the first step that did not happen in time, and why
    seen: str = ""  # what the page showed then
    console: list[str] = field(default_factory=list)


@dataclass
class Sampler:
    """Samples (every ``period_s``) the server's kernels' resident memory, the load average and CPU time."""

    server_pid: int
    nice: int = 0  # given to every thread of the server and its kernels at each sample (0: left alone)
    browser_nice: int = 0  # given to every thread of the browser's processes (Chromium, playwright's driver)
    period_s: float = 0.5
    kernel_rss_max: dict[int, int] = field(default_factory=dict)  # pid → max RSS (bytes)
    server_rss_max: int = 0  # voila or jupyter server itself
    load_max: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # "server" / "browser" → CPU seconds, latest sample
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="classroom-sampler", daemon=True)
        self._cpu_by_pid: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            self._sample()

    def _sample(self) -> None:
        self.load_max = max(self.load_max, os.getloadavg()[0])
        try:
            server = psutil.Process(self.server_pid)
            server_tree = [server, *server.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        server_pids = {p.pid for p in server_tree}
        browser_tree = [p for p in psutil.Process().children(recursive=True) if p.pid not in server_pids]
        for group, processes in (("server", server_tree), ("browser", browser_tree)):
            for process in processes:
                try:
                    with process.oneshot():
                        times, rss = process.cpu_times(), process.memory_info().rss
                        kernel = process.pid != self.server_pid and "ipykernel_launcher" in " ".join(process.cmdline())
                except psutil.Error:  # it ended meanwhile
                    continue
                self._cpu_by_pid[process.pid] = (group, times.user + times.system)
                if group == "server" and self.nice:
                    _renice_threads(process.pid, self.nice)
                if group == "browser" and self.browser_nice:
                    _renice_threads(process.pid, self.browser_nice)
                if process.pid == self.server_pid:
                    self.server_rss_max = max(self.server_rss_max, rss)
                elif kernel:
                    self.kernel_rss_max[process.pid] = max(self.kernel_rss_max.get(process.pid, 0), rss)
        totals = {"server": 0.0, "browser": 0.0}
        for group, seconds in self._cpu_by_pid.values():  # ended processes keep their last sample
            totals[group] += seconds
        self.cpu = totals


def _renice_threads(pid: int, nice: int) -> None:
    """Set ``nice`` on every thread of process ``pid`` (Linux niceness belongs to threads, not processes)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if os.getpriority(os.PRIO_PROCESS, int(task.name)) != nice:
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except OSError:  # the thread ended meanwhile
            pass


@dataclass
class Phase:
    """CPU seconds of server and browser, and wall seconds, between two marks."""

    name: str
    wall_s: float
    server_cpu_s: float
    browser_cpu_s: float


class Classroom:
    """N learners in one browser, driven together through the studio (see the module docstring)."""

    def __init__(self, browser, url: str, count: int, args: argparse.Namespace, sampler: Sampler) -> None:
        self.browser, self.url, self.args, self.sampler = browser, url, args, sampler
        self.learners = [Learner(i) for i in range(count)]
        self.pages: dict[int, object] = {}
        self.phases: list[Phase] = []
        self.shots: set[str] = set()  # the kinds of page shot already
        self._mark = (time.monotonic(), dict(sampler.cpu))

    def phase(self, name: str) -> None:
        """Close the phase that began at the previous mark."""
        self.sampler.sample()
        started, cpu = self._mark
        now = time.monotonic()
        self.phases.append(Phase(name, now - started, self.sampler.cpu.get("server", 0) - cpu.get("server", 0),
                                 self.sampler.cpu.get("browser", 0) - cpu.get("browser", 0)))  # fmt: skip
        self._mark = (now, dict(self.sampler.cpu))

    def active(self) -> list[Learner]:
        return [learner for learner in self.learners if not learner.failed]

    async def each(self, step) -> None:
        """Run ``step(learner, page)`` for every learner still taking part, all at once; a failure drops only one."""

        async def guarded(learner: Learner) -> None:
            try:
                await step(learner, self.pages[learner.index])
            except Exception as error:  # noqa: BLE001 (reported per page, the class goes on)
                learner.failed = f"{step.__name__}: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
                learner.seen = await self.diagnose(learner)

        await asyncio.gather(*(guarded(learner) for learner in self.active()))

    async def run(self) -> None:
        contexts = [await self.browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in self.learners]
        for learner, context in zip(self.learners, contexts):
            page = await context.new_page()
            page.on("console", lambda message, log=learner.console: log.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error, log=learner.console: log.append(f"pageerror: {error}"))
            self.pages[learner.index] = page
        self.sampler.sample()
        self._mark = (time.monotonic(), dict(self.sampler.cpu))
        try:
            for name, step in (("load", self.load), ("train tab", self.open_train_tab), ("start", self.start),
                               ("all training", self.watch), ("pause, resume", self.pause_and_resume),
                               ("stop", self.stop)):  # fmt: skip
                await self.each(step)
                self.phase(name)
        finally:
            for context in contexts:
                await context.close()

    async def diagnose(self, learner: Learner) -> str:
        """What a page that failed a step shows (and a screenshot in /tmp/segtutor-shots)."""
        page = self.pages[learner.index]
        try:
            seen = await asyncio.wait_for(page.evaluate(PAGE_STATE, STATUS), 15)
            SHOTS.mkdir(parents=True, exist_ok=True)
            shot = SHOTS / f"classroom-{len(self.learners)}-page{learner.index + 1}.png"
            await page.screenshot(path=str(shot), timeout=15_000)
            return f"{seen}; screenshot {shot}"
        except Exception as error:  # noqa: BLE001 (a page too stuck to answer says so)
            return f"the page did not answer ({type(error).__name__})"

    # ---- the steps, one page each ----------------------------------------------------------------------------
    async def load(self, learner: Learner, page) -> None:
        timeout = self.args.load_timeout * 1000
        started = time.monotonic()

        def left() -> float:
            return max(timeout - (time.monotonic() - started) * 1000, 1)

        try:
            await page.goto(self.url, wait_until="commit", timeout=timeout)
            await page.wait_for_selector(".jupyter-widgets", timeout=left())
            learner.widgets_s = time.monotonic() - started
            await page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=left())
            learner.plot_s = time.monotonic() - started
        except Exception as error:
            if "Timeout" in type(error).__name__:
                raise TimeoutError(f"not loaded within {self.args.load_timeout:.0f} s") from None
            raise

    async def open_train_tab(self, learner: Learner, page) -> None:
        started = time.monotonic()
        await page.locator(".lm-TabBar-tab", has_text="2 · Train").click(timeout=STEP_TIMEOUT_S * 1000)
        await page.wait_for_selector(STATUS, timeout=STEP_TIMEOUT_S * 1000)
        await page.wait_for_function(f"{LOSS_POINTS} === 0", timeout=STEP_TIMEOUT_S * 1000)  # empty curves drawn
        learner.train_tab_s = time.monotonic() - started
        await page.evaluate(WATCH_STATUS, STATUS)
        budget = page.get_by_label("budget", exact=True)
        await budget.fill(str(self.args.budget), timeout=STEP_TIMEOUT_S * 1000)
        await budget.press("Enter")

    async def start(self, learner: Learner, page) -> None:
        started = time.monotonic()
        await page.get_by_role("button", name="▶ Start").click(force=True, timeout=STEP_TIMEOUT_S * 1000)
        await page.wait_for_function("window.__segtutor.states.some(([s]) => s === 'running') && "
                                     "window.__segtutor.step >= 1", timeout=RUN_TIMEOUT_S * 1000)  # fmt: skip
        learner.running_s = time.monotonic() - started

    async def watch(self, learner: Learner, page) -> None:
        asked = time.monotonic()
        before = await page.evaluate("[window.__segtutor.step, window.__segtutor.updates, performance.now()]")
        learner.page_answer_s = time.monotonic() - asked  # how busy the browser is: a trivial script's round trip
        await asyncio.sleep(self.args.watch)
        after = await page.evaluate("[window.__segtutor.step, window.__segtutor.updates, performance.now()]")
        seconds = (after[2] - before[2]) / 1000
        learner.steps_per_s = (after[0] - before[0]) / seconds
        learner.updates_per_s = (after[1] - before[1]) / seconds
        await self.shoot(page, "waiting" if "waiting for a free core" in await page.inner_text(STATUS) else "training")

    async def shoot(self, page, kind: str) -> None:
        """One screenshot of a page of each kind (a run waiting in line, a run training) in /tmp/segtutor-shots."""
        if kind in self.shots:
            return
        self.shots.add(kind)
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / f"classroom-{len(self.learners)}-{kind}.png"
        await page.screenshot(path=str(shot), timeout=15_000)
        print(f"screenshot of a page {kind}: {shot}", flush=True)

    async def pause_and_resume(self, learner: Learner, page) -> None:
        learner.pause_s = await self.click_until(page, "‖ Pause", "paused")
        paused_at = await page.evaluate("window.__segtutor.step")
        await asyncio.sleep(1)
        learner.resume_s = await self.click_until(page, "▷ Resume", "running")
        await page.wait_for_function(f"window.__segtutor.step > {paused_at}", timeout=STEP_TIMEOUT_S * 1000)

    async def stop(self, learner: Learner, page) -> None:
        steps = await page.evaluate("window.__segtutor.step")
        learner.stop_s = await self.click_until(page, "■ Stop", "stopped")
        await asyncio.sleep(1)  # the final redraw
        final = await page.evaluate(f"[window.__segtutor.step, {LOSS_POINTS}, window.__segtutor.imagesPerSecond]")
        learner.run_kept = final[0] >= steps and final[1] == final[0]  # every step of the run is on the curve
        learner.images_per_s = final[2]

    async def click_until(self, page, button: str, state: str) -> float:
        """Click ``button``; seconds from the click to the status line showing ``state``, measured in the page."""
        check = f"({CLICK_TO_STATE})({[button, state]!r})"
        await page.get_by_role("button", name=button).click(force=True, timeout=STEP_TIMEOUT_S * 1000)
        await page.wait_for_function(f"{check} !== null", timeout=STEP_TIMEOUT_S * 1000)
        return await page.evaluate(check)


def readme_class_command(count: int) -> str:
    """The README's command that serves a class, with ``--pool_size`` for ``count`` learners (N + 2), no notebook."""
    line = next(line for line in (ROOT / "README.md").read_text().splitlines()
                if "voila" in line and "--pool_size=" in line and line.lstrip().startswith(".venv"))  # fmt: skip
    words = [word for word in shlex.split(line) if not word.endswith(".ipynb")]
    words[0] = "voila"
    return " ".join(re.sub(r"^--pool_size=\d+$", f"--pool_size={count + 2}", word) for word in words)


@contextmanager
def serve(command: str, args: argparse.Namespace) -> Iterator[tuple[str, int]]:
    """Start the server that ``command`` names; yields (the studio's URL, the server's process id)."""
    words = shlex.split(command)
    if words[:1] == ["voila"]:
        server = serve_voila(ROOT / STUDIO, words[1:], preheat_s=args.preheat_timeout)
        page = lambda url: url  # noqa: E731 (voila serves the one notebook at its root)
    elif words[:2] == ["jupyter", "server"]:
        server = serve_jupyter_server(ROOT, words[2:])
        page = lambda url: voila_render_url(url, STUDIO)  # noqa: E731
    else:
        raise SystemExit(f"--serve must start with 'voila' or 'jupyter server', got {command!r}")
    with server as url:
        port = int(re.search(r":(\d+)/", url)[1])
        pid = next(p.pid for p in psutil.Process().children() if f"--port={port}" in p.cmdline())
        yield page(url), pid


def nice_chromium(nice: int) -> str:
    """An executable that starts Chromium at ``nice`` (a small script in /tmp); Chromium itself for 0.

    Chromium raises its own processes' priority where it may (as root: its browser process to nice -8, renderers
    to 0); ``setpriv`` takes that right (``CAP_SYS_NICE``) from it, so it stays at ``nice`` and below.
    """
    if not nice:
        return CHROMIUM
    script = Path(f"/tmp/segtutor-chromium-nice-{nice}-{os.getpid()}")
    keep_low = "setpriv --bounding-set -sys_nice " if shutil.which("setpriv") else ""
    script.write_text(f'#!/bin/sh\nexec {keep_low}nice -n {nice} {shlex.quote(CHROMIUM)} "$@"\n')
    script.chmod(0o755)
    return str(script)


async def drive(url: str, count: int, args: argparse.Namespace, sampler: Sampler) -> Classroom:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=nice_chromium(args.browser_nice),
                                                   args=CHROMIUM_FLAGS, timeout=30_000)  # fmt: skip
        try:
            classroom = Classroom(browser, url, count, args, sampler)
            await classroom.run()
        finally:
            await browser.close()
    return classroom


def wait_until_quiet(timeout_s: float = 60, busy: float = 0.25) -> float:
    """Wait (at most ``timeout_s``) until the CPUs are under ``busy`` used over a second; returns the last share."""
    deadline = time.monotonic() + timeout_s
    share = psutil.cpu_percent(interval=1) / 100
    while share > busy and time.monotonic() < deadline:
        share = psutil.cpu_percent(interval=1) / 100
    return share


def measure(command: str, count: int, args: argparse.Namespace) -> dict:
    """One class: a fresh server, ``count`` learners; returns the table row's numbers and the details."""
    if command == README_COMMAND:
        command = readme_class_command(count)
    busy_at_start = wait_until_quiet()  # the previous class's kernels have gone
    load_at_start = os.getloadavg()
    started = time.monotonic()
    with serve(command, args) as (url, pid):
        server_ready_s = time.monotonic() - started
        with Sampler(pid, nice=args.server_nice, browser_nice=args.browser_nice) as sampler:
            classroom = asyncio.run(drive(url, count, args, sampler))
    return {"command": command, "count": count, "learners": classroom.learners, "phases": classroom.phases,
            "kernel_rss": sampler.kernel_rss_max, "server_rss": sampler.server_rss_max, "load_max": sampler.load_max,
            "load_at_start": load_at_start, "busy_at_start": busy_at_start,
            "server_ready_s": server_ready_s, "server_nice": args.server_nice,
            "browser_nice": args.browser_nice}  # fmt: skip


def max_median(values: list[float | None], digits: int = 1) -> str:
    """``max / median`` of the values measured (``—`` if none was), ``(k of n)`` if some were missing."""
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    text = f"{max(got):.{digits}f} / {statistics.median(got):.{digits}f}"
    return text if len(got) == len(values) else f"{text} ({len(got)} of {len(values)})"


def median_max(values: list[float | None]) -> str:
    """``median / max`` (the goal's order for click → status)."""
    got = [v for v in values if v is not None]
    if not got:
        return "—"
    text = f"{statistics.median(got):.2f} / {max(got):.2f}"
    return text if len(got) == len(values) else f"{text} ({len(got)} of {len(values)})"


def report(result: dict) -> str:
    """Details of one class: every page, every phase."""
    lines = [f"\n### {result['count']} learners, `{result['command']}` (server ready after "
             f"{result['server_ready_s']:.0f} s; before: CPUs {result['busy_at_start']:.0%} busy, load average "
             f"{result['load_at_start'][0]:.2f})"]  # fmt: skip
    for learner in result["learners"]:
        skip = ("index", "failed", "seen", "console")
        numbers = {k: v for k, v in vars(learner).items() if k not in skip and v is not None}
        text = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items())
        failed = f" — **failed at {learner.failed}**; page: {learner.seen}" if learner.failed else ""
        lines.append(f"- page {learner.index + 1}: {text}{failed}")
        errors = [line for line in learner.console if ("pageerror" in line or line.startswith("error"))
                  and "ERR_NAME_NOT_RESOLVED" not in line]  # not Font Awesome's CDN (offline; cosmetic)
        if errors:
            lines.append(f"  console errors ({len(errors)}): {errors[0][:200]}")
        if learner.failed:
            lines.append(f"  last console lines: {[line[:160] for line in learner.console[-3:]]}")
    for phase in result["phases"]:
        share = phase.server_cpu_s / max(phase.server_cpu_s + phase.browser_cpu_s, 1e-9)
        lines.append(f"- phase {phase.name}: {phase.wall_s:.1f} s wall, CPU server {phase.server_cpu_s:.1f} s, "
                     f"browser {phase.browser_cpu_s:.1f} s (server {share:.0%} of the CPU used)")  # fmt: skip
    rss = sorted(result["kernel_rss"].values())
    lines.append(f"- kernels seen: {len(rss)}, resident max {[round(r / 2**20) for r in rss]} MB; server process "
                 f"{result['server_rss'] / 2**20:.0f} MB")  # fmt: skip
    return "\n".join(lines)


def row(result: dict) -> str:
    learners = result["learners"]
    loaded = sum(learner.widgets_s is not None for learner in learners)
    updating = sum((learner.steps_per_s or 0) > 0 for learner in learners)
    kept = sum(bool(learner.run_kept) for learner in learners)
    rss = max(result["kernel_rss"].values(), default=0) / 2**20
    training = next((p for p in result["phases"] if p.name == "all training"), None)
    share = f"{training.server_cpu_s / training.wall_s / os.cpu_count():.0%}" if training else "—"
    cells = [
        str(result["count"]), f"`{result['command']}`" + (f" (server nice {result['server_nice']})"
                                                           if result["server_nice"] else ""),
        f"{loaded}/{len(learners)}",
        max_median([learner.widgets_s for learner in learners]), max_median([learner.plot_s for learner in learners]),
        max_median([learner.train_tab_s for learner in learners]),
        max_median([learner.running_s for learner in learners]), f"{updating}/{len(learners)}",
        median_max([learner.pause_s for learner in learners]), median_max([learner.stop_s for learner in learners]),
        f"{kept}/{len(learners)}", f"{sum(learner.images_per_s or 0 for learner in learners):.0f}", f"{rss:.0f}",
        f"{result['load_max']:.1f}", share, str(result["browser_nice"]),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEADER = ("| learners | served with | loaded | widgets (s) max / med | first plot (s) max / med "
          "| Train tab (s) max / med | Start → running (s) max / med | updating | Pause (s) med / max "
          "| Stop (s) med / max | runs kept | images/s, all runs | kernel RSS max (MB) | load avg (1 min, max) "
          "| server CPU while training | browsers at nice |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("learners", type=int, nargs="+", help="class sizes to measure, e.g. 1 4 8")
    parser.add_argument("--serve", action="append", help=f"server command line (repeatable; default "
                        f"{README_COMMAND!r}, the README's); 'jupyter server [options]' uses Voila's server extension")
    parser.add_argument("--load-timeout", type=float, default=120, help="seconds a page may take to show widgets")
    parser.add_argument("--preheat-timeout", type=float, default=300,
                        help="seconds voila may take to fill its pre-heated pool before the class")  # fmt: skip
    parser.add_argument("--budget", type=float, default=120, help="training budget typed in before Start (seconds)")
    parser.add_argument("--server-nice", type=int, default=0,
                        help="nice value for every thread of the server and its kernels (e.g. 10: the pages get the "
                        "CPU first, as on learners' own machines; 0, the default, as the issue measured: browser and "
                        "server share the cores). Chromium sets its renderers' priorities itself, so the server's "
                        "are the ones to change")  # fmt: skip
    parser.add_argument("--browser-nice", type=int, default=19,
                        help="nice value of Chromium and playwright's driver (19, the default: the lowest priority, "
                        "so that the server gets the cores first, as when the browsers run on the learners' own "
                        "machines; 0: the old mode, browser and server at the same priority, as the issue measured)")
    parser.add_argument("--watch", type=float, default=5, help="seconds all train while the updates are counted")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` or kill: the servers are stopped on the way out
    commands = args.serve or [README_COMMAND]
    print(f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB; load average {os.getloadavg()}")
    results = []
    for command in commands:
        for count in args.learners:
            result = measure(command, count, args)
            results.append(result)
            print(report(result), flush=True)
    nices = sorted({result["browser_nice"] for result in results})
    print(f"\nbrowsers (Chromium and playwright's driver, on the server's {os.cpu_count()} cores) at nice "
          f"{' and '.join(map(str, nices))}" + (" (the lowest priority: the server gets the cores first)"
                                                 if 19 in nices else " (the same priority as the server)"))
    print(f"\n{HEADER}")
    for result in results:
        print(row(result))
    print(f"\ngoal for 8 learners: widgets ≤ {TARGETS['widgets']:.0f} s, first plot ≤ {TARGETS['plot']:.0f} s, "
          f"Pause and Stop ≤ {TARGETS['median click']:.0f} s median / {TARGETS['max click']:.0f} s max, "
          "kernels < 1 GB; times from asking for the page (or from the click, measured in the page); "
          "'server CPU while training': voila + kernels, share of all cores")  # fmt: skip


if __name__ == "__main__":
    main()
