"""The training time machine: what the model predicted on one tile, step by step, kept for scrubbing back later.

A loss curve says *how much* the model was wrong at each step, not *where*. :class:`TimeMachine` is a
:class:`~segtutor.train.Callback` that, every few steps of a run, predicts one tile with the weights of that moment
and keeps a :class:`Snapshot`: the per-pixel probabilities, the argmax labels, the step's training loss, and the
tile's confusion matrix with IoU and Dice per class. Scrubbing through the snapshots answers "when did the model
learn the tumor border?" and "what did it get wrong before it got it right?".

**Bounded, for a run of any length.** Snapshots are taken at the multiples of a spacing ``every`` (1 at first).
When ``max_snapshots`` are kept, every other one is dropped (those at odd multiples of ``every``) and ``every``
doubles: the snapshots stay evenly spread over the whole run, never more than ``max_snapshots`` of them, and a run
of ``n`` steps takes about ``max_snapshots + max_snapshots / 2 * log2(n / max_snapshots)`` predictions in all.
Step 0 (the untrained model) is always kept, and the run's last step is added when it ends, however it ends
(completed, stopped, diverged), so a stopped run keeps its history. A diverged run's last snapshot is taken again at
its end: the model then holds the last good weights, which may be those of the step before (``Trainer.step``).

**Time.** Each snapshot is one forward pass on one tile (:meth:`TimeMachine.predict`), on one CPU thread: a
second thread saves 1-2 ms of a 10 ms pass (a small UNet, 128 × 128, on a 2-core CPU) and doubles its CPU time, and
on a busy machine a two-thread pass of one tile waits for its second thread several times longer than
it computes (90-200 ms against 11-18 ms, measured at a load of 2.6). The training dashboard's live
preview asks :meth:`~TimeMachine.predict` too, so a preview of a step with a snapshot costs no second pass, and its
passes count towards the same budget: while predicting the tile costs more than ``max_time_share`` of the training
time so far (3 % by default; early in a run, when a snapshot follows every step), the snapshots are thinned the same
way (every other one dropped, ``every`` doubled), down to no fewer than 8. Watching never takes more than a few per
cent of a run's throughput.

**Memory.** One snapshot holds the probabilities as float16 (``2 K H W`` bytes), the labels as uint8 (``H W``
bytes) and a ``K × K`` int64 matrix (``8 K²`` bytes); never more than ``max_snapshots`` are kept, so at most
:attr:`TimeMachine.max_nbytes` ``= max_snapshots * ((2 K + 1) H W + 8 K²)`` bytes, plus the latest prediction
(``4 K H W`` bytes, float32). With the defaults and a two-class 128 × 128 tile: 64 × 5 × 16 384 B ≈ 5.2 MB.

Hooks run in the training thread, between two steps, so predicting there is safe (the weights do not move);
:attr:`TimeMachine.snapshots` may be read from any thread.

Example:
    >>> machine = TimeMachine(val_data, index=0)
    >>> history = fit(model, train_data, val_data, config, callbacks=[machine])
    >>> [(s.iteration, round(s.iou[1], 2)) for s in machine.snapshots][:3]
    [(0, 0.08), (1, 0.1), (2, 0.13)]
    >>> machine.at(75).preds  # the labels as predicted after 75 steps (the latest snapshot at or before step 75)
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from segtutor.data import IGNORE_INDEX, class_names_of
from segtutor.metrics import confusion_matrix, dice_per_class, iou_per_class, pixel_accuracy
from segtutor.predict import BrokenModelError, labels_of, predict_proba
from segtutor.train.callbacks import Callback, TrainState

MIN_THINNED = 8  # thinning for time never leaves fewer snapshots than this


@dataclass(frozen=True)
class Snapshot:
    """The tile as the model saw it after ``iteration`` optimizer steps."""

    iteration: int  # optimizer steps done (0: the weights before training)
    seconds: float  # training time at that point
    loss: float  # training loss of step ``iteration`` (NaN at step 0)
    probs: torch.Tensor  # (K, H, W) float16 per-pixel class probabilities
    preds: torch.Tensor  # (H, W) uint8 argmax labels (taken before rounding to float16)
    confusion: torch.Tensor  # (K, K) int64 of the tile: rows true classes, columns predicted
    iou: list[float]  # per-class IoU on the tile (NaN: class absent from truth and prediction)
    dice: list[float]  # per-class Dice on the tile
    pixel_accuracy: float  # share of the tile's labelled pixels predicted right

    @property
    def nbytes(self) -> int:
        """Memory held by the snapshot's tensors."""
        return sum(t.numel() * t.element_size() for t in (self.probs, self.preds, self.confusion))


class TimeMachine(Callback):
    """Keeps up to ``max_snapshots`` evenly spaced :class:`Snapshot` s of one tile's prediction during a run.

    Args:
        dataset: ``(image (C, H, W), mask (H, W))`` pairs; sample ``index`` is the tile watched.
        index: which sample to watch (the training dashboard watches its preview tile).
        max_snapshots: at most this many snapshots are kept (>= 2); see the module docstring for the thinning.
        class_names: one per class; default ``dataset.class_names``.
        ignore_index: mask value of unlabelled pixels (left out of the scores).
        max_time_share: thin the snapshots while predicting the tile (snapshots and live previews) costs more
            than this share of the training time; None keeps every multiple of ``every`` (exact steps, e.g. for
            tests).

    A new run (``on_train_start``) starts a new series; the last run's snapshots stay until then.
    """

    def __init__(
        self,
        dataset: Dataset,
        index: int = 0,
        max_snapshots: int = 64,
        *,
        class_names: Sequence[str] | None = None,
        ignore_index: int = IGNORE_INDEX,
        max_time_share: float | None = 0.03,
    ) -> None:
        if not 0 <= index < len(dataset):
            raise ValueError(f"index must be in 0 … {len(dataset) - 1}, got {index}")
        if max_snapshots < 2:
            raise ValueError(f"max_snapshots must be >= 2 (thinning halves the snapshots), got {max_snapshots}")
        self.image, mask = dataset[index]  # (C, H, W), (H, W)
        self.mask = torch.as_tensor(mask).long()
        self.class_names = class_names_of(dataset, class_names)
        self.max_snapshots = max_snapshots
        self.ignore_index = ignore_index
        self.max_time_share = max_time_share
        self.every = 1  # steps between two snapshots; doubles each time the snapshots are thinned
        self.predict_seconds = 0.0  # time spent predicting the tile in this run (the cost of watching)
        self.runs = 0  # runs watched so far: a view notices a new series when it changes
        self._snapshots: list[Snapshot] = []
        self._latest: tuple[object, int, torch.Tensor] | None = None  # (history, step, probs) of the last pass
        self._lock = threading.Lock()

    # ---- reading the snapshots (any thread) -------------------------------------------------------------------
    @property
    def snapshots(self) -> list[Snapshot]:
        """The snapshots kept, in step order (a copy of the list: safe to read while a run goes on)."""
        with self._lock:
            return list(self._snapshots)

    @property
    def iterations(self) -> list[int]:
        """The step of each snapshot."""
        return [snapshot.iteration for snapshot in self.snapshots]

    def at(self, iteration: int) -> Snapshot:
        """The latest snapshot taken at or before step ``iteration`` (the first one for an earlier step).

        Raises:
            LookupError: before the first snapshot (no run has started).
        """
        snapshots = self.snapshots
        if not snapshots:
            raise LookupError("no snapshots yet: the time machine fills in once a run starts")
        position = bisect.bisect_right([s.iteration for s in snapshots], iteration) - 1
        return snapshots[max(position, 0)]

    def first_iteration(self, class_name: str | int, threshold: float, metric: str = "iou") -> int | None:
        """The step of the first snapshot whose ``metric`` (``"iou"`` or ``"dice"``) for a class reaches ``threshold``.

        Returns None if no snapshot does. Example: ``machine.first_iteration("tumor", 0.5)``.
        """
        if metric not in ("iou", "dice"):
            raise ValueError(f"metric must be 'iou' or 'dice', got {metric!r}")
        index = class_name if isinstance(class_name, int) else self._class_index(class_name)
        for snapshot in self.snapshots:
            value = getattr(snapshot, metric)[index]
            if not math.isnan(value) and value >= threshold:
                return snapshot.iteration
        return None

    @property
    def nbytes(self) -> int:
        """Memory held by the snapshots kept now."""
        return sum(snapshot.nbytes for snapshot in self.snapshots)

    @property
    def max_nbytes(self) -> int | None:
        """The most memory the snapshots can hold, for a run of any length: ``max_snapshots * ((2 K + 1) H W + 8 K²)``
        bytes (K classes, as predicted in the first snapshot; None before it)."""
        snapshots = self.snapshots
        if not snapshots:
            return None
        num_classes, height, width = snapshots[0].probs.shape
        return self.max_snapshots * ((2 * num_classes + 1) * height * width + 8 * num_classes**2)

    # ---- predicting the tile (the training thread, from a hook) ---------------------------------------------------
    def predict(self, state: TrainState) -> torch.Tensor:
        """``probs (K, H, W)`` float32 of the watched tile with the weights of now (call it from a hook).

        One forward pass in eval mode on one CPU thread (see the module docstring); asked again for the same step of
        the same run, it returns the same tensor: the dashboard's live preview and a snapshot of that step share one
        pass. Its time counts towards ``max_time_share``.

        Raises:
            BrokenModelError: the weights predict NaN or infinity.
        """
        if self.predicted(state):
            return self._latest[2]
        started = time.perf_counter()
        try:
            with _one_cpu_thread(state.model):
                probs = predict_proba(state.model, self.image)  # (K, H, W) float32 on the CPU; no gradients
        finally:
            self.predict_seconds += time.perf_counter() - started
        self._latest = (state.history, state.iteration, probs)
        return probs

    def predicted(self, state: TrainState) -> bool:
        """True if the tile was predicted at this step of this run already: :meth:`predict` costs nothing now."""
        latest = self._latest
        return latest is not None and latest[0] is state.history and latest[1] == state.iteration

    # ---- Callback hooks (the training thread) -------------------------------------------------------------------
    def on_train_start(self, state: TrainState) -> None:
        with self._lock:
            self._snapshots, self.every = [], 1
            self.runs += 1
        self.predict_seconds, self._latest = 0.0, None
        self._take(state)  # step 0: the weights before training

    def on_iteration(self, state: TrainState) -> None:
        if state.iteration % self.every == 0:
            self._take(state)

    def on_train_end(self, state: TrainState) -> None:
        if state.history.status == "error":
            return  # the model (or its data) failed: predicting once more would fail again, and hide the error
        if state.history.status == "diverged":
            self._latest = None  # the weights kept may be those of the step before (Trainer.step): predict again
        with self._lock:
            taken = bool(self._snapshots) and self._snapshots[-1].iteration == state.iteration
        if not taken or state.history.status == "diverged":
            self._take(state)  # the last weights, whether the run completed, was stopped or diverged

    # ---- internals ------------------------------------------------------------------------------------------------
    def _take(self, state: TrainState) -> None:
        try:
            probs = self.predict(state)  # (K, H, W)
        except BrokenModelError:
            return  # NaN weights just now: no picture to keep; the run's own checks say what went wrong
        started = time.perf_counter()
        preds = labels_of(probs)  # (H, W)
        matrix = confusion_matrix(self.mask, preds, probs.shape[0], ignore_index=self.ignore_index)
        snapshot = Snapshot(
            iteration=state.iteration,
            seconds=state.history.train_seconds,
            loss=state.loss if state.iteration > 0 else math.nan,
            probs=probs.half(),
            preds=preds.to(torch.uint8),
            confusion=matrix,
            iou=iou_per_class(matrix).tolist(),
            dice=dice_per_class(matrix).tolist(),
            pixel_accuracy=pixel_accuracy(matrix),
        )
        self.predict_seconds += time.perf_counter() - started
        with self._lock:
            if self._snapshots and self._snapshots[-1].iteration == snapshot.iteration:
                self._snapshots.pop()  # the same step again (a diverged run's last weights): the newer one counts
            if len(self._snapshots) >= self.max_snapshots:
                self._thin()
            self._snapshots.append(snapshot)
            too_slow = self.max_time_share is not None and self.predict_seconds > self.max_time_share * max(
                state.history.train_seconds, 1e-9)  # fmt: skip
            if too_slow and len(self._snapshots) >= 2 * MIN_THINNED:
                self._thin()  # fewer snapshots from now on: watching must not slow the run down

    def _thin(self) -> None:
        """Keep the snapshots at multiples of ``2 * every`` (step 0 among them), then double ``every``."""
        self.every *= 2
        self._snapshots = [s for s in self._snapshots if s.iteration % self.every == 0]

    def _class_index(self, name: str) -> int:
        if name not in self.class_names:
            raise KeyError(f"no class {name!r}; the classes are {list(self.class_names)}")
        return list(self.class_names).index(name)

    def __repr__(self) -> str:
        snapshots = self.snapshots
        steps = f", steps {snapshots[0].iteration} … {snapshots[-1].iteration}" if snapshots else ""
        return (
            f"TimeMachine({len(snapshots)} of at most {self.max_snapshots} snapshots, every {self.every} steps{steps}, "
            f"{self.nbytes / 1e6:.1f} MB)"
        )


@contextlib.contextmanager
def _one_cpu_thread(model: torch.nn.Module) -> Iterator[None]:
    """torch's CPU thread count at 1 meanwhile, if the model's weights are on the CPU (else left alone)."""
    weights = next(model.parameters(), None)
    if weights is not None and weights.device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
