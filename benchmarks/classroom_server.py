"""A classroom on one server, without browsers: N clients speak the Jupyter protocol to the training studio.

``classroom.py`` measures N learners in N headless Chromium pages on the server's own 2 cores; in its load phase the
server used 1.4 CPU-seconds and the 8 browsers 27 (``classroom-after.md``). In a real class each browser runs on the
learner's own laptop, so this benchmark plays the learners without one, to measure what can be attributed to the
server. It starts the server exactly as ``classroom.py`` does (the README's class command, ``--pool_size`` N + 2,
its pre-heated kernels filled before the class) and, in one asyncio event loop in this process, asks for all N pages
at the same moment; then, all together and each timed on its own:

1. the page: ``GET`` the studio over HTTP (with ``--preheat_kernel=True`` it comes from a pre-heated kernel), its
   kernel id read from the page's ``jupyter-config-data`` script, its cookies kept;
2. widgets: the kernel's websocket (``api/kernels/<id>/channels``, with the page's cookies, in JupyterLab's
   ``v1.kernel.websocket.jupyter.org`` protocol as voila's page speaks it; see ``PROTOCOL``) opened, a comm opened on
   ``jupyter.widget.control`` and ``{"method": "request_states"}`` sent, as ``@jupyter-widgets``' managers do;
   "widgets" is the time to the whole ``update_states`` reply holding the studio's tabs, "first plot" to the
   architecture diagram's figure (a segtutor ``LiveFigure``, not plotly's ``FigureWidget``) with its traces and the
   plotly.js library widget it draws with;
3. the Train tab: the Tab's ``selected_index`` set by a comm ``update`` (the kernel builds the tab then), until the
   status line and the empty loss curve have come; the budget set to ``--budget`` seconds;
4. Start (a Button's click is the comm message ``{"method": "custom", "content": {"event": "click"}}``) → the status
   line says "running" at step 1 or more; every client's step counter rises over ``--watch`` seconds; Pause →
   "paused", Resume → "running" (and the steps rise again), Stop → "stopped"; the loss curve, kept up to date from
   the figure's patches, holds every step of the run.

Click → status is timed from sending the click to the arrival of the status line's update naming the state. The
kernels' resident memory, the load average and the server's CPU time (voila and its kernels) are sampled by
``classroom.Sampler``; the clients' CPU time is this process's own, less the sampler's thread.

What it does not measure: rendering. A browser's own work (parsing and evaluating plotly.js and the widgets'
JavaScript, laying out and drawing the page: about 3.4 CPU-seconds per page on this machine, measured with Chromium
by ``classroom.py``) happens on the learner's own laptop and is not here; nor does a client report the width it draws
a figure at (``LiveFigure.room``), so the diagram is not laid out again for it; nor are the page's static files
fetched (voila's and the widgets' JavaScript: a browser gets them from the server, then caches them). "widgets" and
"first plot" are when a browser would have every message it needs to draw them. Every wait is bounded; traffic goes
only to 127.0.0.1. Run::

    flock /tmp/segtutor-heavy.lock env PYTHONPATH=. .venv/bin/python benchmarks/classroom_server.py 1 4 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import psutil
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

sys.path.insert(0, str(Path(__file__).parent))  # classroom.py, beside this file
from classroom import (  # noqa: E402
    README_COMMAND,
    RUN_TIMEOUT_S,
    STEP_TIMEOUT_S,
    TARGETS,
    Learner,
    Sampler,
    max_median,
    median_max,
    readme_class_command,
    serve,
    wait_until_quiet,
)

CONFIG_DATA = re.compile(r'<script id="jupyter-config-data" type="application/json">\s*(\{.*?\})\s*</script>', re.S)
CONTROL_TARGET, CONTROL_VERSION = "jupyter.widget.control", "1.0.0"  # ipywidgets 8's control comm
TRAIN_TAB_TITLE = "2 · Train"
# JupyterLab's protocol, as voila's page speaks it. Not the legacy JSON one: voila 0.5.13's websocket handler reads
# every binary frame as v1 (VoilaKernelWebsocketHandler.write_message), so a legacy binary frame (update_states,
# with plotly.js as a buffer) makes voila loop over a bogus offset count, a core at 100 % and gigabytes of memory.
PROTOCOL = "v1.kernel.websocket.jupyter.org"
STATUS, CURVES, DIAGRAM = "segtutor-training-status", "segtutor-training-curves", "segtutor-architecture"


# ---- the protocol, as pure functions ------------------------------------------------------------------------------
def page_config(page: str) -> dict:
    """The ``jupyter-config-data`` of a Voila page (``kernelId``, ``baseUrl``, …); ``{}`` if the page has none."""
    match = CONFIG_DATA.search(page)
    return json.loads(match[1]) if match else {}


def channels_url(page_url: str, config: dict, session: str) -> str:
    """The websocket URL of the page's kernel: ``ws://host/<baseUrl>api/kernels/<kernelId>/channels?session_id=…``."""
    origin = re.match(r"https?://[^/]+", page_url)[0].replace("http", "ws", 1)
    base = "/" + config.get("baseUrl", "/").strip("/")
    return f"{origin}{base.rstrip('/')}/api/kernels/{config['kernelId']}/channels?session_id={session}"


def cookie_header(set_cookies: list[str]) -> str:
    """A ``Cookie`` request header holding what the ``Set-Cookie`` response headers set."""
    jar = SimpleCookie()
    for line in set_cookies:
        jar.load(line)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())


def kernel_message(msg_type: str, content: dict, session: str, metadata: dict | None = None) -> bytes:
    """A shell-channel message, framed for the websocket's ``v1.kernel.websocket.jupyter.org`` protocol."""
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session, "username": "learner",
              "date": datetime.now(timezone.utc).isoformat(), "version": "5.3"}  # fmt: skip
    parts = [json.dumps(part).encode() for part in (header, {}, metadata or {}, content)]
    return encode_frame("shell", parts)


def encode_frame(channel: str, parts: list[bytes]) -> bytes:
    """``v1.kernel.websocket.jupyter.org`` framing: the offsets' count and the offsets (8 bytes, little-endian each),
    then the channel's name and the message's parts (header, parent header, metadata, content, buffers)."""
    blobs = [channel.encode(), *parts]
    offsets = [8 * (len(blobs) + 2)]
    for blob in blobs:
        offsets.append(offsets[-1] + len(blob))
    return b"".join([len(offsets).to_bytes(8, "little"), *(o.to_bytes(8, "little") for o in offsets), *blobs])


def decode_frame(frame: bytes) -> tuple[str, dict]:
    """(channel, kernel message with its ``buffers``) from a ``v1.kernel.websocket.jupyter.org`` frame."""
    count = int.from_bytes(frame[:8], "little")
    offsets = [int.from_bytes(frame[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    channel, *parts = (frame[start:stop] for start, stop in zip(offsets, offsets[1:]))
    header, parent, metadata, content = (json.loads(part) for part in parts[:4])
    return channel.decode(), {"header": header, "parent_header": parent, "metadata": metadata, "content": content,
                              "buffers": parts[4:]}  # fmt: skip


def click_message(model_id: str) -> dict:
    """A Button's click: the comm message its view sends (``Button._handle_button_msg`` reads ``event``)."""
    return {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}


def update_message(model_id: str, state: dict) -> dict:
    """A view's change of its model's state, e.g. ``{"selected_index": 1}`` for a Tab."""
    return {"comm_id": model_id, "data": {"method": "update", "state": state, "buffer_paths": []}}


def put_buffers(state: Any, buffer_paths: list[list], buffers: list[bytes]) -> None:
    """Put binary buffers back where ``buffer_paths`` say in ``state`` (ipywidgets' ``_put_buffers``, in place)."""
    for path, buffer in zip(buffer_paths, buffers):
        node = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = buffer


def apply_patch(figure: dict, ops: list[dict]) -> None:
    """Apply a ``LiveFigure`` patch's ops to ``{"data": [...], "layout": {...}}`` in place (dotted paths too)."""
    for op in ops:
        target = figure["data"][op["trace"]] if "trace" in op else figure["layout"]
        for path, value in op["props"].items():
            *parents, last = path.split(".")
            node = target
            for key in parents:
                node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
            if isinstance(node, list):
                node[int(last)] = value
            else:
                node[last] = value


def is_studio_tabs(state: dict) -> bool:
    """Whether a model's state is the studio's Tab (its titles name the Train tab)."""
    return TRAIN_TAB_TITLE in state.get("titles", ())


def status_of(value: str) -> tuple[str, int, int]:
    """(state, step, images/s) of the training dashboard's status line (HTML): ``("running", 12, 31)``."""
    state = re.search(r"<b[^>]*>([^<]*)</b>", value)
    text = re.sub(r"<[^>]+>", "", value)
    step, speed = re.search(r"step (\d+)", text), re.search(r"(\d+) images/s", text)
    return (state[1] if state else ""), int(step[1]) if step else 0, int(speed[1]) if speed else 0


# ---- one learner, as a client of its kernel -----------------------------------------------------------------------
@dataclass
class Client(Learner):
    """One learner without a browser: its kernel's widget models and what was measured (None: not reached)."""

    page_s: float | None = None  # the page's HTML received whole
    state_mb: float | None = None  # the update_states reply's size
    received_mb: float = 0.0  # everything the websocket brought
    models: dict[str, dict] = field(default_factory=dict)  # model id → state, kept up to date
    states: list[tuple[str, float]] = field(default_factory=list)  # the status line's states, on arrival
    step: int = 0
    updates: int = 0  # status line changes
    images: int = 0
    control: str = ""
    full_state_at: float | None = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex)
    socket: WebSocketClientConnection | None = None
    reader: asyncio.Task | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def find(self, predicate: Callable[[dict], bool]) -> list[str]:
        """Ids of the models whose state satisfies ``predicate``, oldest first."""
        return [model_id for model_id, state in self.models.items() if predicate(state)]

    def with_class(self, name: str) -> str | None:
        found = self.find(lambda state: name in state.get("_dom_classes", ()))
        return found[-1] if found else None

    def shows(self, root: str, model_id: str) -> bool:
        """Whether model ``model_id`` is on the page under model ``root`` (through ``children``, as a view is)."""
        seen, todo = set(), [root]
        while todo:
            node = todo.pop()
            if node == model_id:
                return True
            if node not in seen:
                seen.add(node)
                todo += [child.removeprefix("IPY_MODEL_") for child in self.models.get(node, {}).get("children", [])]
        return False

    def figure_of(self, box_class: str) -> dict | None:
        """The figure (``{"data", "layout"}``) of the LiveFigure inside the Box with class ``box_class``."""
        box = self.with_class(box_class)
        children = self.models[box].get("children", []) if box else []
        child = self.models.get(children[0].removeprefix("IPY_MODEL_"), {}) if children else {}
        return child.get("figure")

    def send(self, msg_type: str, content: dict, metadata: dict | None = None) -> None:
        self.socket.write_message(kernel_message(msg_type, content, self.session, metadata), binary=True)

    async def until(self, predicate: Callable[[], Any], timeout_s: float) -> Any:
        """Wait (at most ``timeout_s``) until ``predicate()`` is true after some message; returns its value."""
        deadline = time.monotonic() + timeout_s
        while not (value := predicate()):
            if self.reader is not None and self.reader.done():
                error = self.reader.exception()
                why = f"{type(error).__name__}: {error}" if error else "by the server"
                raise ConnectionError(f"the kernel's websocket closed ({why})")
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), max(deadline - time.monotonic(), 0))
        return value

    async def read(self) -> None:
        """Apply every message of the kernel's websocket to the models, until it closes."""
        try:
            while (frame := await self.socket.read_message()) is not None:
                self.received_mb += len(frame) / 2**20
                self.handle(decode_frame(frame)[1], len(frame))
                self._changed.set()
        finally:
            self._changed.set()  # a waiter sees the end

    def handle(self, msg: dict, size: int) -> None:
        kind, content = msg["header"]["msg_type"], msg["content"]
        data = content.get("data", {})
        if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            put_buffers(data["state"], data.get("buffer_paths", []), msg["buffers"])
            self.models[content["comm_id"]] = data["state"]
        elif kind == "comm_close":
            self.models.pop(content["comm_id"], None)
        elif kind != "comm_msg":
            return
        elif content["comm_id"] == self.control and data.get("method") == "update_states":
            put_buffers(data["states"], data.get("buffer_paths", []), msg["buffers"])
            for model_id, model in data["states"].items():
                self.models.setdefault(model_id, {}).update(model["state"])
            self.full_state_at, self.state_mb = time.monotonic(), size / 2**20
        elif (state := self.models.get(content["comm_id"])) is not None:
            if data.get("method") in ("update", "echo_update"):
                put_buffers(data["state"], data.get("buffer_paths", []), msg["buffers"])
                state.update(data["state"])
            elif data.get("method") == "custom" and data.get("content", {}).get("type") == "patch":
                apply_patch(state["figure"], data["content"]["ops"])
                state["figure"]["revision"] = data["content"]["revision"]
        self._record_status(content.get("comm_id"))

    def _record_status(self, changed: str | None) -> None:
        if changed is None or changed != self.with_class(STATUS):
            return
        state, self.step, self.images = status_of(self.models[changed].get("value", ""))
        self.updates += 1
        if not self.states or self.states[-1][0] != state:
            self.states.append((state, time.monotonic()))

    def button(self, description: str) -> str:
        """The dashboard's button ``description`` (in the row that holds the status line)."""
        status = f"IPY_MODEL_{self.with_class(STATUS)}"
        row = self.find(lambda state: status in state.get("children", ()))[-1]
        return next(child.removeprefix("IPY_MODEL_") for child in self.models[row]["children"]
                    if self.models.get(child.removeprefix("IPY_MODEL_"), {}).get("description") == description)

    def reached(self, state: str, since: float) -> float | None:
        """Seconds from ``since`` to the first arrival of status ``state`` after it (None: not yet)."""
        return next((at - since for s, at in self.states if s == state and at >= since), None)


@dataclass
class Phase:
    """CPU seconds of the server and of the clients (this process, less the sampler), and wall seconds."""

    name: str
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float


def client_cpu_s(sampler_thread: threading.Thread) -> float:
    """This process's CPU seconds, less those of the sampler's thread (it samples the server, it is no client)."""
    process = psutil.Process()
    times = process.cpu_times()
    sampler = next((t for t in process.threads() if t.id == sampler_thread.native_id), None)
    return times.user + times.system - (sampler.user_time + sampler.system_time if sampler else 0.0)


class Classroom:
    """N clients, driven together through the studio (see the module docstring)."""

    def __init__(self, url: str, count: int, args: argparse.Namespace, sampler: Sampler) -> None:
        self.url, self.args, self.sampler = url, args, sampler
        self.clients = [Client(i) for i in range(count)]
        self.phases: list[Phase] = []
        self._mark = self._now()

    def _now(self) -> tuple[float, float, float]:
        self.sampler.sample()
        return time.monotonic(), self.sampler.cpu.get("server", 0.0), client_cpu_s(self.sampler._thread)

    def phase(self, name: str) -> None:
        """Close the phase that began at the previous mark."""
        now = self._now()
        self.phases.append(Phase(name, *(b - a for a, b in zip(self._mark, now))))
        self._mark = now

    async def each(self, step) -> None:
        """Run ``step(client)`` for every client still taking part, all at once; a failure drops only one."""

        async def guarded(client: Client) -> None:
            try:
                await step(client)
            except Exception as error:  # noqa: BLE001 (reported per client, the class goes on)
                text = str(error).splitlines()[0][:160] if str(error) else "timed out"
                client.failed = f"{step.__name__}: {type(error).__name__}: {text}"
                client.seen = self.diagnose(client)

        await asyncio.gather(*(guarded(client) for client in self.clients if not client.failed))

    def diagnose(self, client: Client) -> str:
        status = client.with_class(STATUS)
        value = client.models[status].get("value", "") if status else "(none)"
        return f"{len(client.models)} models, status {status_of(value) if status else value}, states {client.states}"

    async def run(self) -> None:
        AsyncHTTPClient.configure(None, max_clients=len(self.clients) + 2)
        self._mark = self._now()
        try:
            for name, step in (("load", self.load), ("train tab", self.open_train_tab), ("start", self.start),
                               ("all training", self.watch), ("pause, resume", self.pause_and_resume),
                               ("stop", self.stop)):  # fmt: skip
                await self.each(step)
                self.phase(name)
        finally:
            for client in self.clients:
                if client.socket is not None:
                    client.socket.close()

    # ---- the steps, one client each -----------------------------------------------------------------------------
    async def load(self, client: Client) -> None:
        started = time.monotonic()
        left = lambda: max(self.args.load_timeout - (time.monotonic() - started), 0.1)  # noqa: E731
        response = await AsyncHTTPClient().fetch(HTTPRequest(self.url, request_timeout=left()))
        client.page_s = time.monotonic() - started
        config = page_config(response.body.decode())
        if "kernelId" not in config:
            raise RuntimeError(f"no kernel id in the page ({len(response.body)} bytes)")
        cookies = cookie_header(response.headers.get_list("Set-Cookie"))
        origin = re.match(r"https?://[^/]+", self.url)[0]
        request = HTTPRequest(channels_url(self.url, config, client.session), headers={"Cookie": cookies,
                              "Origin": origin}, connect_timeout=left(), request_timeout=left())  # fmt: skip
        client.socket = await websocket_connect(request, max_message_size=1 << 30, subprotocols=[PROTOCOL])
        if client.socket.selected_subprotocol != PROTOCOL:  # see PROTOCOL
            raise RuntimeError(f"the server did not take {PROTOCOL} ({client.socket.selected_subprotocol!r})")
        client.reader = asyncio.ensure_future(client.read())
        client.control = uuid.uuid4().hex
        client.send("comm_open", {"comm_id": client.control, "target_name": CONTROL_TARGET, "data": {}},
                    metadata={"version": CONTROL_VERSION})  # fmt: skip
        client.send("comm_msg", {"comm_id": client.control, "data": {"method": "request_states"}})
        await client.until(lambda: client.full_state_at and client.find(is_studio_tabs), left())
        client.widgets_s = client.full_state_at - started

        def diagram_drawable() -> bool:
            figure = client.models.get(client.with_class(DIAGRAM) or "", {})
            library = client.models.get(str(figure.get("library", "")).removeprefix("IPY_MODEL_"), {})
            return bool(figure.get("figure", {}).get("data")) and bool(library.get("source"))

        await client.until(diagram_drawable, left())
        client.plot_s = time.monotonic() - started

    async def open_train_tab(self, client: Client) -> None:
        started = time.monotonic()
        tabs = client.find(is_studio_tabs)[-1]
        index = client.models[tabs]["titles"].index(TRAIN_TAB_TITLE)
        client.send("comm_msg", update_message(tabs, {"selected_index": index}))

        def shown() -> bool:  # the status line and the curves are on the page, the curves empty, the status drawn
            status, curves = client.with_class(STATUS), client.with_class(CURVES)
            return (status is not None and curves is not None and client.shows(tabs, status)
                    and client.shows(tabs, curves) and client.figure_of(CURVES)["data"][0].get("x") == []
                    and bool(client.states and client.states[-1][0]))  # fmt: skip

        await client.until(shown, STEP_TIMEOUT_S)
        client.train_tab_s = time.monotonic() - started
        # the dashboard's budget, the latest one opened (the studio's own, for links, is linked to it)
        budget = client.find(lambda s: s.get("_model_name") == "BoundedFloatTextModel"
                             and s.get("description") == "budget")[-1]  # fmt: skip
        client.send("comm_msg", update_message(budget, {"value": self.args.budget}))

    async def start(self, client: Client) -> None:
        started = time.monotonic()
        client.send("comm_msg", click_message(client.button("▶ Start")))
        await client.until(lambda: client.reached("running", started) is not None and client.step >= 1, RUN_TIMEOUT_S)
        client.running_s = time.monotonic() - started

    async def watch(self, client: Client) -> None:
        before = (client.step, client.updates, time.monotonic())
        await asyncio.sleep(self.args.watch)
        seconds = time.monotonic() - before[2]
        client.steps_per_s = (client.step - before[0]) / seconds
        client.updates_per_s = (client.updates - before[1]) / seconds

    async def pause_and_resume(self, client: Client) -> None:
        client.pause_s = await self.click_until(client, "‖ Pause", "paused")
        paused_at = client.step
        await asyncio.sleep(1)
        client.resume_s = await self.click_until(client, "▷ Resume", "running")
        await client.until(lambda: client.step > paused_at, STEP_TIMEOUT_S)

    async def stop(self, client: Client) -> None:
        steps = client.step
        client.stop_s = await self.click_until(client, "■ Stop", "stopped")
        await asyncio.sleep(1)  # the final redraw
        points = len((client.figure_of(CURVES) or {"data": [{}]})["data"][0].get("x", []))
        client.run_kept = client.step >= steps and points == client.step  # every step of the run is on the curve
        client.images_per_s = client.images

    async def click_until(self, client: Client, button: str, state: str) -> float:
        """Click ``button``; seconds from sending the click to the status line's update showing ``state``."""
        clicked = time.monotonic()
        client.send("comm_msg", click_message(client.button(button)))
        return await client.until(lambda: client.reached(state, clicked), STEP_TIMEOUT_S)


# ---- a class, its report -------------------------------------------------------------------------------------------
def measure(command: str, count: int, args: argparse.Namespace) -> dict:
    """One class: a fresh server, ``count`` clients; returns the table row's numbers and the details."""
    if command == README_COMMAND:
        command = readme_class_command(count)
    busy_at_start = wait_until_quiet()  # the previous class's kernels have gone
    load_at_start = os.getloadavg()
    started = time.monotonic()
    with serve(command, args) as (url, pid):
        server_ready_s = time.monotonic() - started
        with Sampler(pid) as sampler:
            classroom = Classroom(url, count, args, sampler)
            asyncio.run(classroom.run())
    return {"command": command, "count": count, "clients": classroom.clients, "phases": classroom.phases,
            "kernel_rss": sampler.kernel_rss_max, "server_rss": sampler.server_rss_max, "load_max": sampler.load_max,
            "load_at_start": load_at_start, "busy_at_start": busy_at_start, "server_ready_s": server_ready_s,
            "other_children_cpu_s": sampler.cpu.get("browser", 0.0)}  # fmt: skip


def report(result: dict) -> str:
    """Details of one class: every client, every phase."""
    lines = [f"\n### {result['count']} clients, `{result['command']}` (server ready after "
             f"{result['server_ready_s']:.0f} s; before: CPUs {result['busy_at_start']:.0%} busy, load average "
             f"{result['load_at_start'][0]:.2f})"]  # fmt: skip
    keep = ("page_s", "widgets_s", "plot_s", "state_mb", "train_tab_s", "running_s", "steps_per_s", "updates_per_s",
            "pause_s", "resume_s", "stop_s", "images_per_s", "run_kept", "received_mb")  # fmt: skip
    for client in result["clients"]:
        numbers = {k: getattr(client, k) for k in keep if getattr(client, k) is not None}
        text = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items())
        failed = f" — **failed at {client.failed}**; seen: {client.seen}" if client.failed else ""
        lines.append(f"- client {client.index + 1}: {text}{failed}")
    lines += ["", "| phase | wall (s) | server CPU (s) | client CPU (s) |", "|---|---|---|---|"]
    lines += [f"| {p.name} | {p.wall_s:.1f} | {p.server_cpu_s:.1f} | {p.client_cpu_s:.1f} |" for p in result["phases"]]
    rss = sorted(result["kernel_rss"].values())
    lines.append(f"\n- kernels seen: {len(rss)}, resident max {[round(r / 2**20) for r in rss]} MB; server process "
                 f"{result['server_rss'] / 2**20:.0f} MB; other child processes of this benchmark (no browser): "
                 f"{result['other_children_cpu_s']:.1f} CPU-s")  # fmt: skip
    return "\n".join(lines)


def row(result: dict) -> str:
    clients = result["clients"]
    loaded = sum(client.widgets_s is not None for client in clients)
    updating = sum((client.steps_per_s or 0) > 0 for client in clients)
    kept = sum(bool(client.run_kept) for client in clients)
    rss = max(result["kernel_rss"].values(), default=0) / 2**20
    phases = {phase.name: phase for phase in result["phases"]}
    training, load = phases.get("all training"), phases.get("load")
    share = f"{training.server_cpu_s / training.wall_s / os.cpu_count():.0%}" if training else "—"
    cells = [
        str(result["count"]), f"{loaded}/{len(clients)}", max_median([client.page_s for client in clients]),
        max_median([client.widgets_s for client in clients]), max_median([client.plot_s for client in clients]),
        max_median([client.train_tab_s for client in clients]),
        max_median([client.running_s for client in clients]), f"{updating}/{len(clients)}",
        median_max([client.pause_s for client in clients]), median_max([client.stop_s for client in clients]),
        f"{kept}/{len(clients)}", f"{sum(client.images_per_s or 0 for client in clients):.0f}", f"{rss:.0f}",
        f"{result['load_max']:.1f}", share,
        f"{load.server_cpu_s:.1f} / {load.client_cpu_s:.1f}" if load else "—",
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEADER = ("| learners | loaded | page HTML (s) max / med | widgets (s) max / med | first plot (s) max / med "
          "| Train tab (s) max / med | Start → running (s) max / med | updating | Pause (s) med / max "
          "| Stop (s) med / max | runs kept | images/s, all runs | kernel RSS max (MB) | load avg (1 min, max) "
          "| server CPU while training | load phase CPU (s) server / clients |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("learners", type=int, nargs="+", help="class sizes to measure, e.g. 1 4 8")
    parser.add_argument("--serve", action="append", help=f"voila command line (repeatable; default "
                        f"{README_COMMAND!r}, the README's class command with --pool_size N + 2)")  # fmt: skip
    parser.add_argument("--load-timeout", type=float, default=120, help="seconds a client may take to get widgets")
    parser.add_argument("--preheat-timeout", type=float, default=300,
                        help="seconds voila may take to fill its pre-heated pool before the class")  # fmt: skip
    parser.add_argument("--budget", type=float, default=120, help="training budget set before Start (seconds)")
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
    served = ", ".join(sorted({result["command"] for result in results}))
    print(f"\nclients: this process, one asyncio loop, no browser; served with {served}")
    print(f"\n{HEADER}")
    for result in results:
        print(row(result))
    print(f"\ngoal for 8 learners: widgets ≤ {TARGETS['widgets']:.0f} s, first plot ≤ {TARGETS['plot']:.0f} s, "
          f"Pause and Stop ≤ {TARGETS['median click']:.0f} s median / {TARGETS['max click']:.0f} s max, "
          "kernels < 1 GB; times from asking for the page (or from sending the click) to the message that shows it, "
          "no rendering; 'server CPU while training': voila + kernels, share of all cores; load average at the end: "
          f"{os.getloadavg()}")  # fmt: skip


if __name__ == "__main__":
    main()
