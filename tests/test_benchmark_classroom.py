"""The classroom benchmark's browser priority: the server gets the cores first, as when browsers run elsewhere."""

from __future__ import annotations

import importlib.util
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
