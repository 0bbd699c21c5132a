"""Training in a worker thread (what the dashboard runs): pause, resume, set_lr, stop, errors, one run per kernel."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import torch
from helpers import JOIN_S, Broken, wait_until

from segtutor.data import TissueDataset
from segtutor.models import create_model
from segtutor.train import Callback, TrainConfig, TrainingSession, stop_all


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_start(self, state):
        self.events.append("start")

    def on_iteration(self, state):
        self.events.append("step")

    def on_wait(self, state):
        self.events.append("wait")

    def on_train_end(self, state):
        self.events.append(f"end {state.history.status}")


def test_session_pause_set_lr_resume_stop(train_data, val_data):
    session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False,
                              tick_seconds=0.05)  # fmt: skip
    recorder = Recorder()
    session.callbacks.append(recorder)
    session.start(TrainConfig(max_iters=10_000, batch_size=2, schedule="constant", lr=1e-3, eval_every=3))
    wait_until(lambda: session.history is not None and len(session.history.losses) >= 3)
    session.control.pause()
    wait_until(lambda: "wait" in recorder.events)  # the worker noticed and idles
    steps = len(session.history.losses)
    time.sleep(0.2)
    assert session.state == "paused" and len(session.history.losses) == steps  # no step while paused
    session.control.set_lr(5e-4)
    session.control.resume()
    wait_until(lambda: len(session.history.losses) >= steps + 3)
    session.control.stop()
    assert session.join(JOIN_S)
    history = session.history
    assert session.state == "stopped" and history.status == "stopped"
    assert history.lrs[:steps] == [1e-3] * steps and set(history.lrs[steps:]) == {5e-4}
    assert recorder.events[0] == "start" and recorder.events[-1] == "end stopped"
    assert recorder.events.count("step") == len(history.losses)
    total = len(history.losses)
    assert history.val_iterations == list(range(3, total + 1, 3)) + ([total] if total % 3 else [])  # + at the stop

def test_session_restarts_from_scratch_and_keeps_model_after_divergence(train_data, val_data):
    model = create_model("unet", size="tiny")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    session = TrainingSession(model, train_data, val_data, warm_up=False)
    session.start(TrainConfig(max_iters=2, batch_size=2))
    assert session.join(JOIN_S) and session.state == "completed"
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(trained["classifier.weight"], initial["classifier.weight"])

    # from scratch: the initial weights come back, so the same run gives the same weights
    session.start(TrainConfig(max_iters=2, batch_size=2))
    assert session.join(JOIN_S)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, trained[key])

    # an absurd learning rate: the run diverges, model and history stay
    session.start(TrainConfig(max_iters=50, batch_size=2, optimizer="sgd", lr=1e12, schedule="constant"),
                  from_scratch=False)  # fmt: skip
    assert session.join(JOIN_S)
    assert session.state == "diverged" and "smaller learning rate" in session.history.message
    assert session.model is model and all(torch.isfinite(p).all() for p in model.parameters())
    assert len(session.history.losses) >= 1

def test_a_new_session_stops_the_old_run(train_data, val_data):
    """Re-running a notebook cell builds a new dashboard: the old one's run must not go on in the background."""
    old = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    old.start(TrainConfig(max_iters=100_000, batch_size=2))
    wait_until(lambda: old.history is not None and len(old.history.losses) >= 1)
    new = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    assert old.join(JOIN_S) and old.state == "stopped"
    assert new.state == "idle"

def test_session_reports_errors(train_data, val_data):
    session = TrainingSession(Broken(), train_data, val_data, warm_up=False)
    recorder = Recorder()
    session.callbacks.append(recorder)
    session.start(TrainConfig(max_iters=3, batch_size=2))
    assert session.join(JOIN_S)
    assert session.state == "error" and "this layer is broken" in session.history.message
    assert "RuntimeError: this layer is broken" in session.error_text
    assert recorder.events[-1] == "end error"

    with pytest.raises(ValueError, match="batch_size=64"):  # more than the 8 tiles: refused at the click
        session.start(TrainConfig(max_iters=3, batch_size=64))
    assert session.state == "error" and not session.running  # the last run is still what the views show
    with pytest.raises(TypeError, match="TrainConfig"):
        session.start({"max_iters": 3})


def test_stop_all_stops_every_run_and_a_snapshot_waits_for_the_step(train_data, val_data):
    session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    session.start(TrainConfig(max_iters=100_000, batch_size=2))
    wait_until(lambda: session.history.losses)
    copy = session.snapshot_model()  # taken between two steps, while the run goes on
    assert copy is not session.model and set(copy.state_dict()) == set(session.model.state_dict())
    stop_all()
    assert not session.running and session.state == "stopped"
    assert session.history.evaluations[-1].iteration == len(session.history.losses)  # scored at the stop


@pytest.mark.parametrize("hook", ["on_wait", "on_iteration", "on_train_end"])
def test_a_callback_raising_keyboard_interrupt_ends_the_run_and_every_view_hears_it(val_data, hook):
    class Rude(Callback):
        pass

    class SlowTiles(TissueDataset):  # the warm-up reads every tile once: slowly, so the run waits for it
        def load_sample(self, index):
            time.sleep(0.05)
            return super().load_sample(index)

    setattr(Rude, hook, lambda self, state: (_ for _ in ()).throw(KeyboardInterrupt))  # raises in that hook
    slow = SlowTiles(8, 32, seed=0)
    session = TrainingSession(create_model("unet", size="tiny"), slow, val_data, warm_up=hook == "on_wait",
                              warm_up_delay=10.0, tick_seconds=0.02)  # fmt: skip
    recorder = Recorder()
    session.callbacks += [Rude(), recorder]  # the view comes after the callback that raises
    session.start(TrainConfig(max_iters=4, batch_size=2))
    assert session.join(JOIN_S)
    assert recorder.events[-1] in ("end stopped", "end completed") and session.state != "running"
    if hook != "on_train_end":  # the run stops there; a KeyboardInterrupt in on_train_end comes after the end
        assert session.state == "stopped"
        assert session.history.message.startswith(f"Rude.{hook} raised (KeyboardInterrupt) after")


def test_python_exits_cleanly_while_a_run_and_a_warm_up_are_in_their_steps():
    # A daemon thread inside torch while the interpreter shuts down aborts the process ("terminate called without
    # an active exception", exit code 134): a kernel shut down mid-run, or a test session ending during a warm-up.
    script = textwrap.dedent("""
        import time
        from segtutor.data import TissueDataset
        from segtutor.models import create_model
        from segtutor.train import TrainConfig, TrainingSession
        train, val = TissueDataset(8, 128, seed=0), TissueDataset(8, 128, seed=1)
        warm = TrainingSession(create_model("unet", size="small"), train, val, warm_up_delay=0.2)
        session = TrainingSession(create_model("unet", size="small"), train, val, warm_up=False)
        session.start(TrainConfig(max_seconds=60, batch_size=8))
        time.sleep(1.5)
        assert session.state == "running", session.state
    """)  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "terminate called" not in result.stderr, result.stderr
