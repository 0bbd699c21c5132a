"""How training reports progress without knowing who listens: callbacks.

Training never imports plotting. It calls the hooks of each :class:`Callback` it was given, passing a
:class:`TrainState`; a live plot, a progress printer, the architecture race or a test subclasses :class:`Callback`
and overrides the hooks it needs. Hooks run in the training thread (a worker thread under a dashboard): keep them
quick (a dashboard redraws at most every 0.2 s). An exception in a hook ends the run as an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.history import Evaluation, History


@dataclass
class TrainState:
    """A view of the run that every hook receives (the same object, updated in place)."""

    model: nn.Module  # the model being trained (on `device`)
    config: TrainConfig  # the run's settings
    history: History  # every number so far
    control: TrainingControl  # call state.control.stop() to end the run from a hook
    device: torch.device  # where the model and batches live
    iteration: int = 0  # optimizer steps done
    epoch: int = 0  # full passes over the training data done
    loss: float = float("nan")  # training loss of the last step
    lr: float = float("nan")  # learning rate of the last step
    progress: float = 0.0  # share of the budget used, 0 to 1 (for a progress bar)
    evaluation: Evaluation | None = None  # the latest evaluation, if any
    traceback: str = ""  # the traceback of the error that ended the run, if one did
    waiting_ahead: int | None = None  # waiting for a free core (CpuShare): runs first in line; None: not waiting
    runs_sharing: int = 1  # runs of the machine sharing its cores, at the last count (CpuShare)


class Callback:
    """Base class with a no-op for every hook; override the ones you need."""

    def on_train_start(self, state: TrainState) -> None:
        """Before the first step."""

    def on_iteration(self, state: TrainState) -> None:
        """After each optimizer step (``state.loss``, ``state.lr``, ``state.iteration`` are fresh)."""

    def on_evaluate(self, state: TrainState) -> None:
        """After each evaluation (``state.evaluation`` is fresh)."""

    def on_wait(self, state: TrainState) -> None:
        """Every ``control.tick_seconds`` while the run is paused or waits for a free core, and once when it goes on.

        ``state.control.paused`` and ``state.waiting_ahead`` say which (a view shows it).
        """

    def on_train_end(self, state: TrainState) -> None:
        """Once at the end, however the run ended (``state.history.status`` and ``.message`` say how)."""


class PrintProgress(Callback):
    """Prints the training loss every ``every_seconds`` and each evaluation: a headless progress report."""

    def __init__(self, every_seconds: float = 2.0):
        self.every_seconds = every_seconds
        self._last_print = -float("inf")

    def on_iteration(self, state: TrainState) -> None:
        now = time.perf_counter()
        if now - self._last_print >= self.every_seconds:
            self._last_print = now
            print(f"step {state.iteration:>5}  loss {state.loss:.4f}  lr {state.lr:.2e}", flush=True)

    def on_evaluate(self, state: TrainState) -> None:
        scores = ", ".join(f"{name} {iou:.3f}" for name, iou in zip(state.history.class_names, state.evaluation.iou))
        print(f"step {state.iteration:>5}  val loss {state.evaluation.loss:.4f}  IoU: {scores}", flush=True)

    def on_train_end(self, state: TrainState) -> None:
        print(f"{state.history.status}: {state.history.message}", flush=True)
