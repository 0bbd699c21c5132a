"""A training run in a worker thread, with no widgets: what the training dashboard drives (and tests drive headless).

A loop run inside a button callback blocks the kernel: no Pause or Stop click is seen until it returns. So a
:class:`TrainingSession` trains in a worker thread, one step at a time with the step-wise
:class:`~segtutor.train.Trainer`, and the buttons only flip flags on a :class:`~segtutor.train.TrainingControl`:

1. ``start(config)`` stops the previous run (and waits for it), then starts a new worker thread.
2. The worker runs: warm-up done? → build the Trainer → step, evaluate when due, repeat, honouring pause, stop and
   new learning rates between steps → end.
3. Whoever watches (a dashboard) subclasses :class:`RunListener`. Its hooks run *in the worker thread*, so every
   widget write of a running dashboard happens in that one thread; while paused the worker wakes every
   ``tick_seconds`` and calls ``on_wait``, so a paused dashboard still shows that it is paused.
4. However the run ends (budget used up, stopped, diverged, an error), model and history stay in the session;
   a stopped run is evaluated once more, so its curves end with the scores of the model the learner keeps.
   An error is caught, recorded (``history.status == "error"``, :attr:`TrainingSession.error_text`) and handed
   to ``on_run_end``, never lost in a thread.
5. One run per kernel: creating a session, or starting a run, stops the runs of every other session. Re-running
   a notebook cell builds a new dashboard; without this its old run would go on training unseen, taking the CPU.
"""

from __future__ import annotations

import copy
import threading
import traceback
import weakref
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from segtutor.device import default_device
from segtutor.predict import predict_proba
from segtutor.train import History, TrainConfig, Trainer, TrainingControl

WARM_UP_MAX_PARAMETERS = 5_000_000  # bigger models skip the warm-up: a step of theirs takes seconds anyway
STATES = ("idle", "warming up", "running", "paused", "completed", "stopped", "diverged", "error")


class RunListener:
    """What a view of a :class:`TrainingSession` hears; every hook runs in the worker thread. Override what you need."""

    def on_run_start(self, session: TrainingSession) -> None:
        """A run begins: ``session.history`` is new and empty."""

    def on_step(self, session: TrainingSession) -> None:
        """After each optimizer step (and its evaluation, if one was due). Throttle your redraws here."""

    def on_wait(self, session: TrainingSession) -> None:
        """Every ``tick_seconds`` while the run is paused (or waits for the warm-up), and once when it resumes."""

    def on_run_end(self, session: TrainingSession) -> None:
        """Once, however the run ended; ``session.history.status`` says how, ``session.error_text`` why if it failed."""


class TrainingSession:
    """One model, its data, and at most one training run at a time, in a worker thread.

    Args:
        model: the network to train (in place); its weights now are what "from scratch" goes back to.
        train_data: ``Dataset`` of ``(image (C, H, W) float, mask (H, W) int64)``.
        val_data: the same for evaluation and for the live preview.
        class_names: one name per class; default ``train_data.class_names``.
        preview_index: the validation sample the live preview predicts.
        warm_up: prepare the first run in a background thread (see :meth:`warm_up`).
        warm_up_delay: seconds the warm-up waits before it starts, so that it does not compete with building and
            drawing a page (a run started earlier starts it at once).
        tick_seconds: how often a paused worker wakes up to call ``on_wait``.

    Creating a session, or starting a run, stops the runs of all other sessions (one run per kernel).

    Example:
        >>> session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data)
        >>> session.start(TrainConfig(max_iters=50, eval_every=10))
        >>> session.pause(); session.set_lr(1e-4); session.resume()
        >>> session.join(timeout=60); session.history.losses[-1]
    """

    _sessions: ClassVar[weakref.WeakSet] = weakref.WeakSet()  # every session of this kernel; one trains at a time

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset,
        *,
        class_names: Sequence[str] | None = None,
        preview_index: int = 0,
        warm_up: bool = True,
        warm_up_delay: float = 0.0,
        tick_seconds: float = 0.2,
    ) -> None:
        names = class_names if class_names is not None else getattr(train_data, "class_names", None)
        if names is None:
            raise ValueError("give class_names, e.g. ['stroma', 'tumor'] (train_data has no .class_names)")
        if not 0 <= preview_index < len(val_data):
            raise ValueError(f"preview_index must be in 0 … {len(val_data) - 1}, got {preview_index}")
        self.train_data = train_data
        self.val_data = val_data
        self.class_names = list(names)
        self.preview_index = preview_index
        self.tick_seconds = tick_seconds
        self.warm_up_delay = warm_up_delay
        self.listeners: list[RunListener] = []
        self.config: TrainConfig | None = None  # settings of the latest run
        self.trainer: Trainer | None = None  # the latest run's trainer (its history, progress and device)
        self.history: History | None = None  # the latest run's numbers; kept after the run ends
        self.control = TrainingControl()  # the latest run's pause / resume / stop / lr flags
        self.error_text = ""  # traceback of the error that ended the latest run, if one did
        self.listener_error_text = ""  # traceback of the latest error inside a listener (a view), if any
        self.runs_started = 0  # how many runs this session has started (views use it to notice a new model)
        self._worker: threading.Thread | None = None
        self._warm_up: threading.Thread | None = None
        self._warm_up_now = threading.Event()  # set: the warm-up stops waiting out its delay
        self._model_lock = threading.Lock()  # held by the worker during each step; snapshot_model() waits for it
        TrainingSession._sessions.add(self)
        self.stop_others()
        self.set_model(model, warm_up=warm_up)

    # ---- the model -------------------------------------------------------------------------------------------
    def set_model(self, model: nn.Module, *, warm_up: bool = True) -> None:
        """Use another model from now on (the current run is stopped first); its weights become "from scratch"."""
        self.stop()
        self.join(timeout=30)
        self.model = model
        self._initial_state = copy.deepcopy(model.state_dict())  # what start(from_scratch=True) restores
        self.history = None
        self.trainer = None
        if warm_up:
            self.warm_up()

    def snapshot_model(self) -> nn.Module:
        """A copy of the model as it is between two steps (safe to use while a run trains the original)."""
        with self._model_lock:
            return copy.deepcopy(self.model)

    def warm_up(self, batch_size: int = 8) -> None:
        """Prepare the first run in a background thread: fill the data's cache, and take one throw-away step.

        torch builds its kernels for each shape on first use, so the first step of a fresh kernel is several times
        slower than the next; segtutor's generated tiles are made on first read (``cache=True`` keeps them). The
        next :meth:`start` waits for this to finish (its state shows ``"warming up"`` meanwhile). Models larger
        than ``WARM_UP_MAX_PARAMETERS`` take no throw-away step: one of their steps takes seconds anyway.
        """
        model = None
        if sum(p.numel() for p in self.model.parameters()) <= WARM_UP_MAX_PARAMETERS:
            model = copy.deepcopy(self.model).to(self.device)
        self._warm_up = threading.Thread(target=self._prepare, args=(model, max(batch_size, 2)),
                                         name="segtutor-warm-up", daemon=True)  # fmt: skip
        self._warm_up.start()

    def _prepare(self, model: nn.Module | None, batch_size: int) -> None:
        self._warm_up_now.wait(self.warm_up_delay)
        # 1) read every training sample once if the dataset caches what it reads (segtutor's datasets do)
        if getattr(self.train_data, "cache", False) and hasattr(self.train_data, "load_sample"):
            for index in range(len(self.train_data)):
                self.train_data.load_sample(index)  # no augmentation: its epoch counter stays at 0
        # 2) one throw-away step on validation samples, on a copy of the model
        if model is not None:
            warm_up_step(model, [self.val_data[i % len(self.val_data)] for i in range(batch_size)])

    # ---- the run -------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a worker thread exists for the latest run (also while it is paused)."""
        return self._worker is not None and self._worker.is_alive()

    @property
    def state(self) -> str:
        """One of ``STATES``: "idle" before the first run, then the latest run's state."""
        history = self.history
        if history is not None and history.status != "running":
            return history.status  # ended (the listeners' on_run_end already sees this)
        if self.running:
            if self.trainer is None:
                return "warming up"
            return "paused" if self.control.paused and not self.control.stop_requested else "running"
        return "idle" if history is None else "stopped"

    @property
    def device(self) -> torch.device:
        """Where the latest run trains (where the next one will, before the first run)."""
        if self.trainer is not None:
            return self.trainer.device
        if self.config is not None and self.config.device is not None:
            return torch.device(self.config.device)
        return default_device()

    def start(self, config: TrainConfig, *, from_scratch: bool = True) -> None:
        """Stop the current run (if any), then train with ``config`` in a new worker thread.

        Args:
            config: the run's settings (give it a budget: ``max_seconds`` or ``max_iters``).
            from_scratch: start from the model's initial weights (runs are then comparable); False continues
                from the weights the last run left.

        Raises:
            RuntimeError: if the previous run did not finish its step within 30 s (a huge model on a CPU).
        """
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.stop()
        if not self.join(timeout=30):
            raise RuntimeError("the previous run is still finishing a step; try again in a moment")
        if from_scratch:
            self.model.load_state_dict(self._initial_state)
        self.config = config
        self.control = TrainingControl()
        self.trainer, self.history = None, None  # run() creates the new history
        self.runs_started += 1
        self._worker = threading.Thread(target=self.run, args=(config, self.control), name="segtutor-training",
                                        daemon=True)  # fmt: skip
        self._worker.start()

    def run(self, config: TrainConfig, control: TrainingControl | None = None) -> History:
        """Train in *this* thread until the budget is used up or ``control`` stops it (what the worker runs).

        :meth:`start` runs this in a new thread; a race of several models calls it from its own worker, one
        model after the other. Errors end the run (status ``"error"``) and are reported, not raised.
        """
        control = control if control is not None else self.control
        threads = torch.get_num_threads()  # config.num_threads changes it for the process; restored at the end
        self.control, self.config, self.trainer = control, config, None
        self.history = History(class_names=list(self.class_names))  # empty until the trainer exists
        self.error_text = ""
        self.stop_others()
        for listener in self.listeners:
            _call(listener.on_run_start, self)
        try:
            # 1) let the warm-up finish (it holds torch's threads), telling the listeners we wait
            self._warm_up_now.set()
            while self._warm_up is not None and self._warm_up.is_alive():
                self._warm_up.join(self.tick_seconds)
                self._notify("on_wait")
            # 2) the trainer: data loader, optimizer, device
            with self._model_lock:
                self.trainer = Trainer(self.model, self.train_data, self.val_data, config, control=control,
                                       class_names=self.class_names)  # fmt: skip
            self.history = self.trainer.history
            trainer = self.trainer
            trainer.start()
            # 3) step until the budget is used up; pause, stop and new learning rates are read between steps
            paused = False
            while not trainer.finished:
                if not control.wait_while_paused(self.tick_seconds):
                    paused = True
                    self._notify("on_wait")
                    continue
                if paused:  # resumed: let the views say so before the next step
                    paused = False
                    self._notify("on_wait")
                if control.stop_requested:
                    with self._model_lock:
                        _evaluate_if_due(trainer)  # the stopped model's scores, for the curves
                        trainer.end("stopped", f"stopped after {trainer.iteration} steps")
                    break
                with self._model_lock:
                    trainer.step()
                    if trainer.should_evaluate() and trainer.history.status == "running":
                        trainer.evaluate()
                self._notify("on_step")
            with self._model_lock:
                trainer.end("completed")  # a no-op if the run ended already (stopped, diverged)
        except Exception as error:  # noqa: BLE001 (shown by the listeners, never lost in the thread)
            self.error_text = traceback.format_exc()
            if self.trainer is not None:
                self.trainer.fail(error)
            else:
                self.history.status, self.history.message = "error", f"{type(error).__name__}: {error}"
        finally:
            torch.set_num_threads(threads)
        for listener in self.listeners:
            _call(listener.on_run_end, self)
        return self.history

    def stop_others(self) -> None:
        """Ask every other session's run to stop after its current step (one run per kernel)."""
        for other in list(TrainingSession._sessions):
            if other is not self:
                other.stop()

    def pause(self) -> None:
        """Pause after the step in progress (training time stops counting)."""
        self.control.pause()

    def resume(self) -> None:
        """Go on after a pause."""
        self.control.resume()

    def stop(self) -> None:
        """End the run after the step in progress; model and history are kept."""
        self.control.stop()

    def set_lr(self, lr: float) -> None:
        """Use learning rate ``lr`` (the peak, which the schedule scales) from the next step on."""
        self.control.set_lr(lr)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker (at most ``timeout`` seconds); True if no run is active any more."""
        if self._worker is not None:
            self._worker.join(timeout)
        return not self.running

    # ---- looking at the model -------------------------------------------------------------------------------
    def preview_sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation ``(image (C, H, W), mask (H, W))`` the live preview predicts."""
        return self.val_data[self.preview_index]

    def predict_preview(self) -> torch.Tensor:
        """``probs (K, H, W)`` of the preview sample with the current weights (call it from the worker's hooks)."""
        image, _ = self.preview_sample()
        return predict_proba(self.model, image)

    # ---- internals ---------------------------------------------------------------------------------------
    def _notify(self, hook: str) -> None:
        for listener in self.listeners:
            _call(getattr(listener, hook), self)

    def __repr__(self) -> str:
        model = type(self.model).__name__
        steps = len(self.history.losses) if self.history is not None else 0
        return f"TrainingSession({model}, {self.state}, {steps} steps, on {self.device})"


def _evaluate_if_due(trainer: Trainer) -> None:
    """Evaluate unless there is no validation data, no step yet, or an evaluation of this very step."""
    evaluations = trainer.history.evaluations
    if trainer.val_loader is not None and trainer.iteration > 0:
        if not evaluations or evaluations[-1].iteration != trainer.iteration:
            trainer.evaluate()


def _call(hook, session: TrainingSession) -> None:
    """Run a listener hook; a broken view must not end the training run (its error is kept in the session)."""
    try:
        hook(session)
    except Exception:  # noqa: BLE001
        session.listener_error_text = traceback.format_exc()


def warm_up_step(model: nn.Module, batch: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """One forward and backward pass of ``model`` in training mode on ``batch``, results thrown away.

    Use a copy of the model (batch norm updates its statistics). Errors are ignored: the real run reports them.
    """
    try:
        device = next(model.parameters()).device
        images = torch.stack([image for image, _ in batch]).to(device)  # (N, C, H, W)
        masks = torch.stack([mask for _, mask in batch]).to(device)  # (N, H, W)
        model.train()
        torch.nn.functional.cross_entropy(model(images), masks).backward()
    except Exception:  # noqa: BLE001
        pass
