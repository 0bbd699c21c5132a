"""Training in a worker thread, so a page stays live: what the training dashboard and the race run.

A loop run inside a button callback blocks the kernel: no Pause or Stop click is seen until it returns. So a
background run calls the same :meth:`~segtutor.train.Trainer.run` as :func:`~segtutor.train.fit`, in a worker
thread, and the buttons only flip flags on its :class:`~segtutor.train.TrainingControl`. Whoever watches (a
dashboard) is a :class:`~segtutor.train.Callback`: its hooks run in the worker thread.

**One run per kernel.** :func:`run_in_background` first calls :func:`stop_all`, which stops every run it started
before in this kernel and waits for each to finish its step; so does creating a :class:`TrainingSession`.
Re-running a notebook cell builds a new dashboard: without this rule its old run would go on training unseen,
taking the CPU, and the dashboard and the race of one studio would train at the same time.

A :class:`TrainingSession` is one model, its data, and at most one such run at a time:

1. :meth:`TrainingSession.start` builds the run's :class:`~segtutor.train.Trainer` *in the calling thread*, so a
   bad setting is an error at the click, then starts the worker.
2. The worker waits for the warm-up (see :meth:`TrainingSession.warm_up`), telling the callbacks ``on_wait``, then
   runs the trainer.
3. However the run ends (budget used up, stopped, diverged, an error), model and history stay in the session; an
   error is recorded (``history.status == "error"``, :attr:`TrainingSession.error_text`), never lost in a thread.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import threading
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import class_names_of
from segtutor.device import default_device
from segtutor.models import PAPER_SIZED_PARAMETERS, count_parameters
from segtutor.predict import predict_proba
from segtutor.train.callbacks import Callback
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.history import History
from segtutor.train.lr_finder import LRFinderResult, lr_find
from segtutor.train.sharing import CpuShare
from segtutor.train.trainer import Trainer, warm_up_step

STATES = ("idle", "warming up", "running", "paused", "completed", "stopped", "diverged", "error", "finding lr")
WARM_UP_WAIT_S = 30.0  # how long a warm-up waits for a free core of the machine before it steps anyway
STOP_TIMEOUT_S = 30.0  # how long stop_all waits for a run to finish its step (a paper-sized model on a CPU: seconds)

_runs: dict[threading.Thread, TrainingControl] = {}  # this kernel's background runs still alive
_warm_ups: dict[threading.Thread, threading.Event] = {}  # warm-ups still alive, and the event that wakes each
_runs_lock = threading.Lock()
_exiting = threading.Event()  # set when Python exits: warm-ups still waiting give up


def stop_all(timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop every background run of this kernel and wait until each has finished its step.

    Raises:
        RuntimeError: if a run is still in its step after ``timeout`` seconds (a huge model on a CPU).
    """
    with _runs_lock:
        runs = list(_runs.items())
    for _, control in runs:
        control.stop()
    for thread, _ in runs:
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError("the previous run is still finishing a step; try again in a moment")


@atexit.register
def _stop_at_exit() -> None:
    """When Python exits (a kernel shut down, a script's end): stop every run and warm-up, and wait for them.

    A daemon thread still inside torch while the interpreter shuts down aborts the whole process ("terminate
    called without an active exception"); after this, none is.
    """
    _exiting.set()
    with _runs_lock:
        warm_ups = list(_warm_ups.items())
    for _, wake in warm_ups:
        wake.set()
    with contextlib.suppress(RuntimeError):
        stop_all()
    for thread, _ in warm_ups:
        thread.join(STOP_TIMEOUT_S)


def run_in_background(target: Callable[[], object], control: TrainingControl, *, name: str) -> threading.Thread:
    """Stop every other run of this kernel (:func:`stop_all`), then call ``target()`` in a new worker thread.

    ``control`` is what :func:`stop_all` stops the run with later. ``target`` must catch its own errors (they would
    only reach a log); a :class:`TrainingSession` and the race widget record them for their views.
    """
    stop_all()

    def registered() -> None:
        try:
            target()
        finally:
            with _runs_lock:
                _runs.pop(threading.current_thread(), None)

    thread = threading.Thread(target=registered, name=name, daemon=True)
    with _runs_lock:
        _runs[thread] = control
    thread.start()
    return thread


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
        tick_seconds: how often a paused run wakes up to call the callbacks' ``on_wait``.
        share_cpu: on a CPU, take turns for the cores with the runs of the machine's other kernels (a class on one
            server: :class:`~segtutor.train.sharing.CpuShare`); one run alone trains as fast as without.

    Creating a session stops every background run of this kernel (one run per kernel, see :func:`stop_all`).

    Example:
        >>> session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data)
        >>> session.callbacks.append(PrintProgress())
        >>> session.start(TrainConfig(max_iters=50, eval_every=10))
        >>> session.control.pause(); session.control.set_lr(1e-4); session.control.resume()
        >>> session.join(timeout=60); session.history.losses[-1]
    """

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
        share_cpu: bool = True,
    ) -> None:
        if not 0 <= preview_index < len(val_data):
            raise ValueError(f"preview_index must be in 0 … {len(val_data) - 1}, got {preview_index}")
        self.train_data = train_data
        self.val_data = val_data
        self.class_names = class_names_of(train_data, class_names)
        self.preview_index = preview_index
        self.tick_seconds = tick_seconds
        self.warm_up_delay = warm_up_delay
        self.cpu_share = CpuShare() if share_cpu else None  # None: trains whenever it likes
        self.callbacks: list[Callback] = []  # told about every run of this session, in the worker thread
        self.trainer: Trainer | None = None  # the latest run's trainer (its config, history, progress, device)
        self.control = TrainingControl(tick_seconds)  # the latest run's pause / resume / stop / lr: steer it here
        self.runs_started = 0  # how many runs this session has started (views use it to notice a new model)
        self.finding_lr = False  # True while find_lr's worker runs
        self._worker: threading.Thread | None = None
        self._warm_up: threading.Thread | None = None
        self._warm_up_now = threading.Event()  # set: the warm-up stops waiting out its delay
        stop_all()
        self.set_model(model, warm_up=warm_up)

    # ---- the model -------------------------------------------------------------------------------------------
    def set_model(self, model: nn.Module, *, warm_up: bool = True) -> None:
        """Use another model from now on (the current run is stopped first); its weights become "from scratch"."""
        self.control.stop()
        self.join(timeout=STOP_TIMEOUT_S)
        self.model = model
        self._initial_state = copy.deepcopy(model.state_dict())  # what start(from_scratch=True) restores
        self.trainer = None
        if warm_up:
            self.warm_up()

    def snapshot_model(self) -> nn.Module:
        """A copy of the model as it is between two steps (safe to use while a run trains the original)."""
        with self.control.step_lock:
            return copy.deepcopy(self.model)

    def warm_up(self, batch_size: int = 8) -> None:
        """Prepare the first run in a background thread: fill the data's cache, and take one throw-away step.

        torch builds its kernels for each shape on first use, so the first step of a fresh kernel is several times
        slower than the next; segtutor's generated tiles are made on first read (``cache=True`` keeps them). The
        next :meth:`start` waits for this to finish (its state shows ``"warming up"`` meanwhile). With
        :attr:`cpu_share`, it waits for a free core of the machine first, as a run does. Paper-sized models take no
        throw-away step: one of their steps takes seconds anyway.
        """
        model = None
        if count_parameters(self.model) <= PAPER_SIZED_PARAMETERS:
            model = copy.deepcopy(self.model).to(self.device)
        self._warm_up = threading.Thread(target=self._prepare, args=(model, max(batch_size, 2)),
                                         name="segtutor-warm-up", daemon=True)  # fmt: skip
        with _runs_lock:
            _warm_ups[self._warm_up] = self._warm_up_now
        self._warm_up.start()

    def _prepare(self, model: nn.Module | None, batch_size: int) -> None:
        """The warm-up thread: wait out the delay, then warm up unless Python is exiting meanwhile."""
        try:
            self._warm_up_now.wait(self.warm_up_delay)
            if not _exiting.is_set():
                self._warm_up_step(model, batch_size)
        finally:
            with _runs_lock:
                _warm_ups.pop(threading.current_thread(), None)

    def _warm_up_step(self, model: nn.Module | None, batch_size: int) -> None:
        """Fill the data's cache and take one throw-away step on a copy of the model (``model``; None: no step)."""
        # 1) a turn for the machine's cores, like a run's (a class opening the Train tab at once takes turns)
        turn = None
        if self.cpu_share is not None and self.device.type == "cpu":
            turn = self.cpu_share.join(threads=torch.get_num_threads())
            waited = 0.0
            while not turn.acquire(timeout=1.0) and waited < WARM_UP_WAIT_S and not _exiting.is_set():
                waited += 1.0
            if not turn.holding:
                turn.pause()  # waited long enough: warm up anyway, out of the line (the turn is left at the end)
        try:
            with _threads(turn.threads if turn is not None else None):
                # 2) read every training sample once if the dataset caches what it reads (segtutor's datasets do)
                if getattr(self.train_data, "cache", False) and hasattr(self.train_data, "load_sample"):
                    for index in range(len(self.train_data)):
                        self.train_data.load_sample(index)  # no augmentation: its epoch counter stays at 0
                # 3) one throw-away step on validation samples, on a copy of the model
                if model is not None:
                    warm_up_step(model, [self.val_data[i % len(self.val_data)] for i in range(batch_size)])
        finally:
            if turn is not None:
                turn.leave()

    # ---- the run -------------------------------------------------------------------------------------------
    @property
    def history(self) -> History | None:
        """The latest run's numbers (None before the first run); kept after the run ends."""
        return self.trainer.history if self.trainer is not None else None

    @property
    def config(self) -> TrainConfig | None:
        """The latest run's settings."""
        return self.trainer.config if self.trainer is not None else None

    @property
    def error_text(self) -> str:
        """The traceback of the error that ended the latest run ("" if none did)."""
        return self.trainer.state.traceback if self.trainer is not None else ""

    @property
    def running(self) -> bool:
        """True while the latest run's worker thread is alive (also while it is paused or warming up)."""
        return self._worker is not None and self._worker.is_alive()

    @property
    def state(self) -> str:
        """One of ``STATES``: "idle" before the first run, then the latest run's state."""
        if self.finding_lr and self.running:
            return "finding lr"
        history = self.history
        if history is not None and history.status != "running":
            return history.status
        if self.running:
            if self._warm_up is not None and self._warm_up.is_alive():
                return "warming up"
            return "paused" if self.control.paused and not self.control.stop_requested else "running"
        return "idle" if history is None else "stopped"

    @property
    def device(self) -> torch.device:
        """Where the latest run trains (where the next one will, before the first run)."""
        return self.trainer.device if self.trainer is not None else default_device()

    def start(self, config: TrainConfig, *, from_scratch: bool = True) -> None:
        """Stop the current run (and every other of this kernel), then train with ``config`` in a worker thread.

        Args:
            config: the run's settings (give it a budget: ``max_seconds`` or ``max_iters``).
            from_scratch: start from the model's initial weights (runs are then comparable); False continues
                from the weights the last run left.

        Raises:
            TypeError, ValueError: bad settings (the Trainer is built here, before the worker starts).
            RuntimeError: if the previous run did not finish its step within 30 s (a huge model on a CPU).
        """
        stop_all()
        self.finding_lr = False
        if from_scratch:
            self.model.load_state_dict(self._initial_state)
        control = TrainingControl(self.tick_seconds)
        self.trainer = Trainer(self.model, self.train_data, self.val_data, config, callbacks=self.callbacks,
                               control=control, class_names=self.class_names, cpu_share=self.cpu_share)  # fmt: skip
        self.control = control
        self.runs_started += 1
        self._worker = run_in_background(self._train, control, name="segtutor-training")

    def _train(self) -> None:
        """What the worker runs: wait for the warm-up, then the trainer's loop; however it ends, the history says so.

        Nothing can interrupt a worker thread from outside, so a KeyboardInterrupt here was raised by a callback:
        the run ends as "stopped" (and every callback hears it), instead of leaving the views on "running".
        """
        trainer = self.trainer
        self._warm_up_now.set()
        try:
            while self._warm_up is not None and self._warm_up.is_alive():
                self._warm_up.join(self.tick_seconds)
                trainer.notify("on_wait")
            trainer.run()
        except BaseException as error:  # noqa: BLE001 (a worker thread has no one to raise to: record it)
            with contextlib.suppress(BaseException):  # a callback that raises again in on_train_end
                if isinstance(error, KeyboardInterrupt):
                    trainer.end("stopped", f"{trainer.interrupted_by or 'a callback'} raised (KeyboardInterrupt) "
                                f"after {trainer.iteration} steps", final_evaluation=False)  # fmt: skip
                else:
                    trainer.fail(error)  # a no-op if the trainer recorded it already

    def find_lr(self, config: TrainConfig, on_done: Callable[[LRFinderResult | None, str], None], *,
                num_steps: int = 100) -> None:  # fmt: skip
        """Run :func:`~segtutor.train.lr_find` on a copy of the model in a worker thread (stopping any run first).

        The model and the last run's history are left as they are. When the test ends, ``on_done(result, error)``
        is called in the worker thread: the :class:`~segtutor.train.LRFinderResult` and ``""``, or None and the
        error's text. :attr:`control` stops it.

        Args:
            config: the settings to test with (its lr, schedule and budget are replaced), e.g. the dashboard's.
            on_done: told the result (a view draws the curve).
            num_steps: planned steps of the mock training.
        """
        stop_all()
        control = TrainingControl(self.tick_seconds)
        model = self.model

        def find() -> None:
            self._warm_up_now.set()
            if self._warm_up is not None:
                self._warm_up.join()
            try:
                result = lr_find(model, self.train_data, config, num_steps=num_steps, control=control)
            except Exception as error:  # noqa: BLE001 (told to the view, never lost in the thread)
                result, message = None, f"{type(error).__name__}: {error}"
            else:
                message = ""
            self.finding_lr = False
            on_done(result, message)

        self.control = control
        self.finding_lr = True
        self._worker = run_in_background(find, control, name="segtutor-lr-finder")

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

    def __repr__(self) -> str:
        steps = len(self.history.losses) if self.history is not None else 0
        return f"TrainingSession({type(self.model).__name__}, {self.state}, {steps} steps, on {self.device})"


@contextlib.contextmanager
def _threads(count: int | None):
    """torch's thread count set to ``count`` in this thread meanwhile (None: left alone)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
