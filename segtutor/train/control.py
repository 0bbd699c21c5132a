"""Steering a run from outside: pause, resume, stop and a new learning rate, from any thread.

A dashboard runs training in a worker thread and keeps a :class:`TrainingControl`; its buttons call
:meth:`~TrainingControl.pause`, :meth:`~TrainingControl.resume`, :meth:`~TrainingControl.stop` and
:meth:`~TrainingControl.set_lr`, which only set flags and return at once. The training loop reads the flags
between steps, so a request takes effect after the step in progress (tens of milliseconds for small models).

The control also owns :attr:`~TrainingControl.step_lock`, which the loop holds during each step: whoever wants
the model as it is *between* two steps (a copy for a viewer, a checkpoint) takes the lock first.
"""

from __future__ import annotations

import threading


class TrainingControl:
    """Thread-safe pause / resume / stop / learning-rate requests for one training run.

    Example:
        >>> control = TrainingControl()
        >>> worker = threading.Thread(target=fit, args=(model, train, val, config), kwargs={"control": control})
        >>> worker.start()
        >>> control.pause(); control.set_lr(1e-4); control.resume()
        >>> control.stop(); worker.join()
    """

    def __init__(self, tick_seconds: float = 0.2):
        """``tick_seconds``: how often a paused loop wakes up to tell its callbacks (``on_wait``) it still waits."""
        if not tick_seconds > 0:
            raise ValueError(f"tick_seconds must be > 0, got {tick_seconds!r}")
        self.tick_seconds = tick_seconds
        self.step_lock = threading.Lock()  # held by the loop during each step: take it to see the model between steps
        self._running = threading.Event()  # set: go on; cleared: paused
        self._running.set()
        self._stop = threading.Event()  # set: end the run after the current step
        self._lock = threading.Lock()  # guards the pending learning rate
        self._pending_lr: float | None = None

    def pause(self) -> None:
        """Ask the loop to wait after the current step (training time stops counting)."""
        self._running.clear()

    def resume(self) -> None:
        """Let a paused loop go on."""
        self._running.set()

    def stop(self) -> None:
        """Ask the loop to end after the current step; a paused loop wakes up and ends too."""
        self._stop.set()
        self._running.set()

    def set_lr(self, lr: float) -> None:
        """Change the (peak) learning rate from the next step on; the schedule goes on scaling it."""
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        with self._lock:
            self._pending_lr = float(lr)

    @property
    def paused(self) -> bool:
        """True while a pause is requested (and no stop)."""
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> bool:
        """Block while paused (the training loop calls this between steps).

        Returns:
            True if the loop may go on (not paused), False if still paused after ``timeout`` seconds.
        """
        return self._running.wait(timeout)

    def take_lr(self) -> float | None:
        """The learning rate asked for since the last call, or None (the training loop calls this)."""
        with self._lock:
            lr, self._pending_lr = self._pending_lr, None
        return lr

    def __repr__(self) -> str:
        state = "stop requested" if self.stop_requested else "paused" if self.paused else "running"
        return f"TrainingControl({state})"
