"""CpuShare: the runs of several processes take turns for the cores (a class of learners on one server)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest
import torch
from helpers import blob_dataset, tiny_net, wait_until

from segtutor.train import Callback, CpuShare, TrainConfig, Trainer, TrainingControl
from segtutor.train.sharing import SLOTS_VARIABLE

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not CpuShare(1).enabled,
                                reason="CpuShare needs POSIX flock and fork")  # fmt: skip
FORK = multiprocessing.get_context("fork") if hasattr(os, "fork") else None


# ---- what the worker processes do (module level: the child processes run them) ---------------------------------
def _take_turns(folder: str, slots: int, seconds: float, intervals) -> None:
    """Step for ``seconds`` in turns; each step (10 ms of work holding a core) is reported as (pid, start, end)."""
    share = CpuShare(slots, folder, quantum_s=0.05, poll_s=0.005, nice=0)
    turn = share.join(threads=2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not turn.acquire(timeout=0.05):
            continue
        started = time.monotonic()
        while time.monotonic() - started < 0.01:  # busy, as a step is
            pass
        intervals.put((os.getpid(), started, time.monotonic(), turn.threads))
        turn.after_step()
    turn.leave()
    intervals.put(None)


def _hold_a_core(folder: str, ready) -> None:
    """Take a core and keep it until killed."""
    turn = CpuShare(1, folder, nice=0).join(threads=1)
    assert turn.acquire(timeout=10)
    ready.set()
    time.sleep(600)


@pytest.fixture
def core_holder(tmp_path):
    """A real process that holds the only core of a 1-slot share in ``tmp_path``; killed afterwards."""
    ready = FORK.Event()
    process = FORK.Process(target=_hold_a_core, args=(str(tmp_path), ready), daemon=True)
    process.start()
    assert ready.wait(20), "the process holding the core did not start"
    yield process
    process.kill()
    process.join(10)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (a sweep over their starts and ends)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


# ---- the tests ---------------------------------------------------------------------------------------------------
def test_six_processes_on_two_slots_never_step_more_than_two_at_once_and_all_get_turns(tmp_path):
    intervals = FORK.Queue()
    workers = [FORK.Process(target=_take_turns, args=(str(tmp_path), 2, 1.5, intervals)) for _ in range(6)]
    for worker in workers:
        worker.start()
    steps, finished = [], 0
    while finished < len(workers):
        item = intervals.get(timeout=30)
        if item is None:
            finished += 1
        else:
            steps.append(item)
    for worker in workers:
        worker.join(10)
    assert max_overlap([(start, end) for _, start, end, _ in steps]) == 2  # the slots are used, never exceeded
    per_process = [sum(pid == worker.pid for pid, *_ in steps) for worker in workers]
    assert min(per_process) >= 0.3 * max(per_process), per_process  # turns in order: nobody starves
    all_counted = max(min(start for pid, start, *_ in steps if pid == worker.pid) for worker in workers)
    first_done = min(max(end for pid, _, end, _ in steps if pid == worker.pid) for worker in workers)
    shared = {threads for _, start, _, threads in steps if all_counted + 0.1 < start < first_done}
    assert shared == {1}  # 6 runs on 2 cores: one torch thread each (alone at the start or the end: 2)
    assert not list(tmp_path.glob("run-*")) and not list(tmp_path.glob("wait-*"))  # every run left


def test_one_run_alone_keeps_its_threads_never_waits_and_trains_as_without(tmp_path):
    data = blob_dataset(16, 24)
    threads_wanted = torch.get_num_threads()

    class Watch(Callback):
        def __init__(self):
            self.threads, self.waits = [], 0

        def on_iteration(self, state):
            self.threads.append(torch.get_num_threads())

        def on_wait(self, state):
            self.waits += 1

    histories, watch = [], Watch()
    for share, callbacks in ((None, []), (CpuShare(2, tmp_path), [watch])):
        config = TrainConfig(max_iters=6, batch_size=4, lr=1e-2, device="cpu")
        histories.append(Trainer(tiny_net(), data, None, config, callbacks=callbacks, cpu_share=share).run())
    assert histories[1].losses == histories[0].losses  # the same run
    assert watch.threads == [threads_wanted] * 6 and watch.waits == 0
    assert torch.get_num_threads() == threads_wanted
    assert CpuShare(2, tmp_path).active_runs() == 0  # it left the count at the end


def test_a_run_waiting_for_a_core_pauses_and_stops_at_once(tmp_path, core_holder):
    share = CpuShare(1, tmp_path, poll_s=0.01)
    control = TrainingControl(tick_seconds=0.05)
    seen = []

    class Watch(Callback):
        def on_wait(self, state):
            seen.append((state.waiting_ahead, state.control.paused, state.runs_sharing, state.iteration))

    trainer = Trainer(tiny_net(), blob_dataset(16, 24), blob_dataset(4, 24, seed=1),
                      TrainConfig(max_iters=100, batch_size=4, device="cpu"), callbacks=[Watch()], control=control,
                      cpu_share=share)  # fmt: skip
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    wait_until(lambda: len(seen) >= 3, timeout=20)
    assert seen[-1] == (0, False, 2, 0)  # first in line, two runs on the machine, no step taken
    assert len(share.line()) == 1
    control.pause()
    wait_until(lambda: seen[-1][1] and share.line() == [], timeout=5)  # paused: it leaves the line within a tick
    assert share.active_runs() == 1  # and the count: only the holder is left
    control.resume()
    wait_until(lambda: seen[-1][0] == 0 and not seen[-1][1], timeout=5)  # back in line
    clicked = time.monotonic()
    control.stop()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - clicked < 3
    assert trainer.history.status == "stopped" and trainer.iteration == 0
    assert share.line() == [] and share.active_runs() == 1  # only the holder is left


def test_a_killed_process_leaves_its_core_free(tmp_path, core_holder):
    share = CpuShare(1, tmp_path, poll_s=0.01)
    turn = share.join(threads=1)
    assert not turn.acquire(timeout=0.2) and turn.ahead == 0
    assert share.active_runs() == 2
    os.kill(core_holder.pid, signal.SIGKILL)
    core_holder.join(10)
    assert turn.acquire(timeout=5)  # the kernel dropped the dead process's lock
    assert share.active_runs() == 1 and turn.threads == 1
    turn.leave()


def test_a_run_hands_its_core_over_after_its_quantum_to_a_run_waiting_for_it(tmp_path):
    share = CpuShare(1, tmp_path, quantum_s=0.05, poll_s=0.005, nice=0)
    first, second = share.join(threads=2), share.join(threads=2)
    assert first.acquire(0.1)
    assert not second.acquire(0.02) and second.ahead == 0 and len(share.line()) == 1
    time.sleep(0.06)
    first.after_step()  # its quantum is over, but the one in line is not asking now (busy elsewhere): it keeps it
    assert first.holding
    got = threading.Event()

    def wait_for_the_core() -> None:
        while not second.acquire(0.05):
            pass
        got.set()

    threading.Thread(target=wait_for_the_core, daemon=True).start()
    wait_until(lambda: share.ready() != [])  # second is waiting for the core right now
    first.after_step()  # within its quantum: it keeps the core
    assert first.holding and not got.is_set()
    time.sleep(0.06)
    first.after_step()  # its quantum is over and a run waits: the core goes to it
    wait_until(got.is_set)
    assert not first.holding and not first.acquire(0.02) and first.ahead == 0  # now first is the one in line
    for turn in (first, second):
        turn.leave()
    assert share.line() == [] and share.ready() == [] and share.active_runs() == 0


def test_threads_follow_the_runs_active_on_the_machine(tmp_path):
    share = CpuShare(2, tmp_path, quantum_s=0.01, nice=0)
    alone = share.join(threads=2)
    assert alone.acquire(0.1) and alone.threads == 2
    other = share.join(threads=2)
    assert other.acquire(0.1) and other.threads == 1
    time.sleep(0.02)
    alone.after_step()  # nobody waits: it keeps its core and counts again
    assert alone.holding and alone.threads == 1 and alone.runs == 2
    other.pause()  # paused: it no longer counts
    time.sleep(0.02)
    alone.after_step()
    assert alone.threads == 2
    alone.leave()


def test_slots_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(SLOTS_VARIABLE, "0")
    off = CpuShare(folder=tmp_path)
    assert not off.enabled and off.join(threads=2).acquire(0) and repr(off) == "CpuShare(off)"
    monkeypatch.setenv(SLOTS_VARIABLE, "3")
    assert CpuShare(folder=tmp_path).slots == 3
    monkeypatch.setenv(SLOTS_VARIABLE, "two")
    with pytest.raises(ValueError, match="SEGTUTOR_CPU_SLOTS must be a whole number of cores.*'two'"):
        CpuShare(folder=tmp_path)


def _wait_in_line_then_work(folder: str, ready) -> None:
    """Join the line of a 1-slot share (its core is held), then stay away from acquire (as a run does while it
    evaluates after a Stop or tells its views), keeping the place, until killed."""
    turn = CpuShare(1, folder, nice=0).join(threads=1)
    assert not turn.acquire(timeout=0.05) and turn.ahead == 0
    ready.set()
    time.sleep(600)


def test_a_run_first_in_line_but_not_waiting_does_not_hold_up_the_line(tmp_path, core_holder):
    ready = FORK.Event()
    first = FORK.Process(target=_wait_in_line_then_work, args=(str(tmp_path), ready), daemon=True)
    first.start()
    try:
        assert ready.wait(20), "the first process did not join the line"
        share = CpuShare(1, tmp_path, poll_s=0.01, nice=0)
        second = share.join(threads=1)
        assert not second.acquire(timeout=0.05) and second.ahead == 1  # second in line: the view says 1 ahead
        os.kill(core_holder.pid, signal.SIGKILL)  # the core comes free while the first in line is busy elsewhere
        core_holder.join(10)
        assert second.acquire(timeout=20)  # it takes the core: nobody else is waiting for it now
        assert len(share.line()) == 1  # the first keeps its place for when it asks again
        second.leave()
    finally:
        first.kill()
        first.join(10)


def _wait_for_a_core(folder: str, report: str) -> None:
    """Wait in line of a 1-slot share for a core, polling as a run does; once it holds it, append its pid to
    ``report`` (a plain file: a process killed while writing to a multiprocessing queue can leave its lock held)."""
    turn = CpuShare(1, folder, poll_s=0.01, nice=0).join(threads=1)
    while not turn.acquire(timeout=0.05):
        pass
    with open(report, "a") as file:
        file.write(f"{os.getpid()}\n")
    time.sleep(600)


def test_runs_that_wait_get_the_core_in_the_order_they_came(tmp_path, core_holder):
    report = tmp_path / "got-the-core.txt"  # not a lock file: the share ignores it
    report.touch()
    share = CpuShare(1, tmp_path, nice=0)
    waiters = []
    for place in range(3):  # one after another: each is in line before the next starts
        waiters.append(FORK.Process(target=_wait_for_a_core, args=(str(tmp_path), str(report)), daemon=True))
        waiters[-1].start()
        wait_until(lambda place=place: len(share.line()) == place + 1, timeout=20)
    try:
        holder = core_holder
        for taken in range(1, len(waiters) + 1):
            os.kill(holder.pid, signal.SIGKILL)  # the holder leaves: the next in line takes the core
            holder.join(10)
            wait_until(lambda taken=taken: len(report.read_text().split()) == taken, timeout=20)
            holder = next(w for w in waiters if w.pid == int(report.read_text().split()[-1]))
        assert [int(pid) for pid in report.read_text().split()] == [w.pid for w in waiters]
    finally:
        for waiter in waiters:
            waiter.kill()
            waiter.join(10)


# ---- the studio's other tabs that train take turns as the Train tab does ---------------------------------------
def test_an_annotation_round_waits_for_a_core_and_trains_once_it_is_free(tmp_path, core_holder):
    from segtutor.data import TissueDataset
    from segtutor.train import ActiveLearner, AnnotationPool

    class Watch(Callback):
        def __init__(self):
            self.waits = []

        def on_wait(self, state):
            self.waits.append((state.waiting_ahead, state.iteration))

    watch = Watch()
    pool = AnnotationPool(TissueDataset(4, 32, seed=0), 16)
    pool.label_tiles([0, 1])
    learner = ActiveLearner(tiny_net(), pool, TissueDataset(2, 32, seed=1), TrainConfig(max_iters=3, batch_size=2),
                            callbacks=[watch], cpu_share=CpuShare(1, tmp_path, poll_s=0.01))  # fmt: skip
    rounds = []
    worker = threading.Thread(target=lambda: rounds.append(learner.train_round()), daemon=True)
    worker.start()
    wait_until(lambda: (0, 0) in watch.waits, timeout=30)  # first in line, no step taken: the core is held
    os.kill(core_holder.pid, signal.SIGKILL)
    core_holder.join(10)
    worker.join(60)
    assert rounds and rounds[0].status == "completed"
    assert CpuShare(1, tmp_path).active_runs() == 0  # the round left the count


def test_the_race_waits_for_a_core_says_so_and_races_once_it_is_free(tmp_path, core_holder, train_data, val_data):
    from segtutor.widgets import ArchitectureRace

    race = ArchitectureRace(train_data, val_data, TrainConfig(max_iters=2, batch_size=2), models=["unet"],
                            size="tiny", cpu_share=CpuShare(1, tmp_path, poll_s=0.01))  # fmt: skip
    race.start()
    wait_until(lambda: "waiting for a free core — 0 ahead" in race.status.value, timeout=30)
    assert race.running and race._history is not None and race._history.losses == []  # no step without a core
    os.kill(core_holder.pid, signal.SIGKILL)
    core_holder.join(10)
    assert race.join(60) and [r.model_name for r in race.results] == ["unet"], race.errors.outputs
    assert "waiting" not in race.status.value


def test_the_studio_gives_its_race_and_annotation_tabs_the_kernels_share():
    from segtutor.widgets import TrainingStudio

    studio = TrainingStudio(model="unet", size="tiny", tile_size=32, num_train=4, num_val=2)
    assert isinstance(studio.cpu_share, CpuShare)
    assert studio.race.cpu_share is studio.cpu_share
    assert studio.annotation.cpu_share is studio.cpu_share and studio.annotation.learner.cpu_share is studio.cpu_share
