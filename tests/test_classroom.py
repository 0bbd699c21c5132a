"""PacedKernelManager: Voila's pre-heated kernels start one at a time, each once the one before has run its notebook."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import pytest
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from segtutor.classroom import PacedKernelManager

POOL = {"env": {"VOILA_PREHEAT": "True"}}  # what Voila passes when it fills its pool
BURN = "import time, sys\nt = time.process_time()\nwhile time.process_time() - t < {cpu}: pass\ntime.sleep(60)"


class FakeKernels(PacedKernelManager):
    """The paced manager over a parent that "starts" a kernel as a Python process burning ``cpu`` CPU-seconds."""

    def __init__(self, cpu: float = 0.4, fail: bool = False) -> None:
        super().__init__(quiet_s=0.3, poll_s=0.05, settle_timeout_s=20)
        self.cpu, self.fail = cpu, fail
        self.started: list[tuple[str, float]] = []  # (kernel id, when its process started)
        self.processes: list[subprocess.Popen] = []


async def _fake_start(self: FakeKernels, **kwargs) -> str:
    if self.fail:
        raise RuntimeError("no kernel")
    process = subprocess.Popen([sys.executable, "-c", BURN.format(cpu=self.cpu)])
    kernel_id = f"k{len(self.processes)}"
    self.processes.append(process)
    # what jupyter_server keeps per kernel: its provisioner's pid and the state its status messages said
    self._kernels[kernel_id] = SimpleNamespace(provisioner=SimpleNamespace(pid=process.pid), execution_state="busy")
    self.started.append((kernel_id, time.monotonic()))
    return kernel_id


@pytest.fixture
def fake_parent(monkeypatch):
    monkeypatch.setattr(AsyncMappingKernelManager, "start_kernel", _fake_start)
    made: list[FakeKernels] = []
    yield lambda **kwargs: made.append(FakeKernels(**kwargs)) or made[-1]
    for manager in made:
        for process in manager.processes:
            process.kill()
            process.wait()


def run(coroutine):
    """``asyncio.run`` in a thread of its own: the suite's browser tests leave an event loop running in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _start_all(manager: FakeKernels, count: int, env: dict) -> list[str]:
    ids = await asyncio.gather(*(manager.start_kernel(**env) for _ in range(count)))
    while manager._turn is not None and manager._turn.locked():  # the last one settles
        await asyncio.sleep(0.05)
    return ids


def test_pool_kernels_start_one_after_the_other_once_each_has_run(fake_parent):
    manager = fake_parent(cpu=0.4)
    assert run(_start_all(manager, 3, POOL)) == ["k0", "k1", "k2"]
    times = [when for _, when in manager.started]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    # each waits for the one before: its 0.4 CPU-s of work, then quiet_s (0.3 s) without any
    assert all(gap >= 0.4 + 0.3 for gap in gaps), gaps
    assert all(gap < 10 for gap in gaps), gaps


def test_kernels_for_a_page_are_never_held_back(fake_parent):
    manager = fake_parent(cpu=0.4)
    run(_start_all(manager, 3, {"env": {}}))
    times = [when for _, when in manager.started]
    assert times[-1] - times[0] < 0.4, "kernels outside the pool started together"
    assert manager._turn is None


def test_a_kernel_that_dies_while_settling_hands_on_its_turn(fake_parent):
    manager = fake_parent(cpu=5.0)

    async def scenario() -> float:
        first = asyncio.create_task(manager.start_kernel(**POOL))
        await first
        second = asyncio.create_task(manager.start_kernel(**POOL))
        await asyncio.sleep(0.3)
        assert not second.done(), "the second started while the first was busy"
        manager.processes[0].kill()
        died = time.monotonic()
        await second
        return time.monotonic() - died

    assert run(scenario()) < 1.0


def test_a_failed_start_hands_on_its_turn(fake_parent):
    manager = fake_parent(fail=True)

    async def scenario() -> None:
        for _ in range(2):  # the second would wait forever if the first had kept the turn
            with pytest.raises(RuntimeError, match="no kernel"):
                await asyncio.wait_for(manager.start_kernel(**POOL), timeout=5)

    run(scenario())
    assert not manager._turn.locked()


def test_voila_fills_its_pool_one_kernel_at_a_time(tmp_path):
    """The real thing: voila with the paced manager, a pool of 2, a notebook whose kernel works for 1.5 CPU-s."""
    notebook = tmp_path / "busy.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass\nprint('ran')"}  # fmt: skip
    notebook.write_text(json.dumps({"cells": [cell], "metadata": {"kernelspec": {"name": "python3",
                        "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}))  # fmt: skip
    port = 20000 + int(time.time() * 1000) % 20000
    log = tmp_path / "voila.log"
    command = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
               "--preheat_kernel=True", "--pool_size=2", "--VoilaKernelManager.fill_delay=0",
               "--VoilaConfiguration.multi_kernel_manager_class=segtutor.classroom.PacedKernelManager"]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while log.read_text().count("settled after") < 2 and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        events = re.findall(r"(Kernel started|settled after) ?:? ?(\S+)", text)
        assert [kind for kind, _ in events][:4] == ["Kernel started", "settled after"] * 2, text
        settled = [float(seconds) for kind, seconds in events if kind == "settled after"]
        assert all(seconds >= 1.5 for seconds in settled), text  # each ran its 1.5 CPU-s before the next started
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).read().decode()
        assert "ran" in page  # a page comes from the pool, the notebook's output in it
    finally:
        server.terminate()
        server.wait(timeout=30)
