"""The classroom benchmarks: the browsers' priority (``classroom.py``), the browserless clients' protocol
(``classroom_server.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
pytest.importorskip("psutil")


@pytest.fixture(scope="module")
def classroom():
    spec = importlib.util.spec_from_file_location("classroom_benchmark", ROOT / "benchmarks" / "classroom.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_chromium_starts_at_the_lowest_priority_by_default(classroom, monkeypatch):
    monkeypatch.setattr(classroom, "CHROMIUM", "/bin/sh")  # a "browser" that prints its own niceness
    executable = classroom.nice_chromium(19)
    try:
        shown = subprocess.run([executable, "-c", "nice"], capture_output=True, text=True, check=True).stdout
    finally:
        Path(executable).unlink()
    assert int(shown) == min(os.getpriority(os.PRIO_PROCESS, 0) + 19, 19)
    assert classroom.nice_chromium(0) == "/bin/sh"  # the old mode: Chromium as it is


def test_the_sampler_lowers_every_browser_process_and_leaves_the_server_alone(classroom):
    server, browser = (subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2))
    try:
        sampler = classroom.Sampler(server.pid, browser_nice=19)
        sampler.sample()
        assert os.getpriority(os.PRIO_PROCESS, browser.pid) == 19  # a child of the benchmark, not of the server
        assert os.getpriority(os.PRIO_PROCESS, server.pid) == os.getpriority(os.PRIO_PROCESS, 0)
        assert set(sampler.cpu) == {"server", "browser"}
    finally:
        for process in (server, browser):
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def classroom_server(classroom):
    sys.path.insert(0, str(ROOT / "benchmarks"))  # it imports classroom.py from beside itself
    try:
        spec = importlib.util.spec_from_file_location("classroom_server", ROOT / "benchmarks" / "classroom_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_the_browserless_client_finds_the_kernel_and_its_websocket_in_a_voila_page(classroom_server):
    page = ('<body><script id="jupyter-config-data" type="application/json">\n  {"baseUrl": "/", "kernelId": '
            '"3f2b-9c", "fullStaticUrl": "/voila/static"}\n</script><div cell-index="1"></div></body>')  # fmt: skip
    config = classroom_server.page_config(page)
    assert config["kernelId"] == "3f2b-9c"
    assert (classroom_server.channels_url("http://127.0.0.1:8866/", config, "s1")
            == "ws://127.0.0.1:8866/api/kernels/3f2b-9c/channels?session_id=s1")  # fmt: skip
    prefixed = classroom_server.channels_url("http://h:1/x/", {**config, "baseUrl": "/x/"}, "s")
    assert prefixed.startswith("ws://h:1/x/api/kernels/3f2b-9c/")
    assert classroom_server.page_config("<html>no kernel</html>") == {}
    cookies = ['username-127-0-0-1-8866="2|1:0|10:17|abc"; expires=Fri, 01 Jan 2027 15:58:37 GMT; HttpOnly; Path=/',
               "_xsrf=2|d1|e5; Path=/"]  # fmt: skip
    assert classroom_server.cookie_header(cookies) == "username-127-0-0-1-8866=2|1:0|10:17|abc; _xsrf=2|d1|e5"


def test_frames_match_jupyter_servers_v1_websocket_protocol(classroom_server):
    base = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    frame = classroom_server.kernel_message("comm_msg", classroom_server.click_message("m1"), "s1")
    channel, parts = base.deserialize_msg_from_ws_v1(frame)  # what the server reads from the client
    header, parent, metadata, content = (json.loads(part) for part in parts)
    assert (channel, header["msg_type"], header["session"], parent, metadata) == ("shell", "comm_msg", "s1", {}, {})
    assert content == {"comm_id": "m1", "data": {"method": "custom", "content": {"event": "click"}}}
    sent = [json.dumps(part).encode() for part in ({"msg_type": "comm_msg"}, {}, {}, {"data": {"x": 1}})]
    channel, msg = classroom_server.decode_frame(base.serialize_msg_to_ws_v1([*sent, b"\x00\x01"], "iopub"))
    assert channel == "iopub" and msg["content"] == {"data": {"x": 1}} and msg["buffers"] == [b"\x00\x01"]
    assert classroom_server.update_message("t", {"selected_index": 1})["data"] == {
        "method": "update", "state": {"selected_index": 1}, "buffer_paths": []}  # fmt: skip


def test_state_buffers_figure_patches_and_the_status_line_are_read_as_a_browser_reads_them(classroom_server):
    states = {"lib": {"state": {"source": None}}, "fig": {"state": {"figure": {"data": [{"x": [0]}], "layout": {}}}}}
    classroom_server.put_buffers(states, [["lib", "state", "source"]], [b"plotly"])
    assert states["lib"]["state"]["source"] == b"plotly"
    figure = states["fig"]["state"]["figure"]
    classroom_server.apply_patch(figure, [{"trace": 0, "props": {"x": [1, 2], "line.color": "red"}},
                                          {"props": {"xaxis.range": [0, 9], "title": {"text": "t"}}}])  # fmt: skip
    assert figure == {"data": [{"x": [1, 2], "line": {"color": "red"}}],
                      "layout": {"xaxis": {"range": [0, 9]}, "title": {"text": "t"}}}  # fmt: skip
    line = ("<div><span style='white-space:nowrap'><b style='color:#2ca02c'>running</b></span> · "
            "<span>step 12 / 150</span> · <span>2.1 s</span> · <span>31 images/s</span></div>")  # fmt: skip
    assert classroom_server.status_of(line) == ("running", 12, 31)
    assert classroom_server.status_of("") == ("", 0, 0)


def test_a_client_follows_the_widget_tree_and_times_a_state_from_the_click(classroom_server):
    client = classroom_server.Client(0)
    client.models = {"tab": {"children": ["IPY_MODEL_page"]}, "page": {"children": ["IPY_MODEL_row"]},
                     "row": {"children": ["IPY_MODEL_go", "IPY_MODEL_st"]}, "go": {"description": "▶ Start"},
                     "st": {"_dom_classes": [classroom_server.STATUS], "value": ""}, "loose": {}}  # fmt: skip
    assert client.shows("tab", "st") and not client.shows("tab", "loose")
    assert client.button("▶ Start") == "go"
    client.handle({"header": {"msg_type": "comm_msg"}, "buffers": [], "content": {
        "comm_id": "st", "data": {"method": "update", "state": {"value": "<b>paused</b> · step 3"}}}}, 0)  # fmt: skip
    assert (client.states[-1][0], client.step) == ("paused", 3)
    assert client.reached("paused", client.states[-1][1] - 0.5) == pytest.approx(0.5)
    assert client.reached("stopped", 0) is None
