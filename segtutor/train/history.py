"""What happened during training: the numbers a loss curve and an IoU curve are drawn from."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

STATUSES = ("running", "completed", "stopped", "diverged", "error")
SMOOTHING = 0.9  # weight of the past in a smoothed loss curve (an exponential moving average)


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard smooths a loss curve.

    ``s[i] = weight * s[i-1] + (1 - weight) * values[i]``, divided by ``1 - weight**(i+1)`` so the first
    points are not pulled towards 0. NaN values are skipped (they keep the previous average).
    """
    smoothed, average, count = [], 0.0, 0
    for value in values:
        if math.isfinite(value):
            average = weight * average + (1 - weight) * value
            count += 1
        smoothed.append(average / (1 - weight**count) if count else math.nan)
    return smoothed


@dataclass
class Evaluation:
    """Validation scores after ``iteration`` optimizer steps."""

    iteration: int  # optimizer steps done when the model was evaluated
    seconds: float  # training time at that point (evaluation and pauses not counted)
    loss: float  # mean validation loss
    iou: list[float]  # per-class IoU (NaN: class absent from masks and predictions)
    dice: list[float]  # per-class Dice
    pixel_accuracy: float  # share of validation pixels classified correctly
    mean_iou: float  # mean of the per-class IoU over the classes that occur
    eval_seconds: float  # how long this evaluation took


@dataclass
class History:
    """Per-step training numbers, every evaluation, and how the run ended.

    Iterations count optimizer steps from 1: ``losses[i]`` is the training loss of step ``i + 1``, computed on
    the weights left by step ``i``. Everything is plain Python, so :meth:`to_dict` is JSON-ready.
    """

    class_names: list[str] = field(default_factory=list)  # names of the classes scored in evaluations
    losses: list[float] = field(default_factory=list)  # training loss of each step
    lrs: list[float] = field(default_factory=list)  # learning rate used by each step
    seconds: list[float] = field(default_factory=list)  # training time after each step
    evaluations: list[Evaluation] = field(default_factory=list)  # validation scores, in order
    images_seen: int = 0  # training images passed through the model
    status: str = "running"  # "running", then "completed", "stopped", "diverged" or "error"
    message: str = ""  # why the run ended, in words (what to try next, after a divergence or an error)

    @property
    def iterations(self) -> list[int]:
        """Step numbers 1, 2, ... matching :attr:`losses`, :attr:`lrs` and :attr:`seconds`."""
        return list(range(1, len(self.losses) + 1))

    @property
    def train_seconds(self) -> float:
        """Training time so far, in seconds (evaluation and pauses not counted)."""
        return self.seconds[-1] if self.seconds else 0.0

    @property
    def images_per_second(self) -> float:
        """Training throughput over the whole run (NaN before the first step)."""
        return self.images_seen / self.train_seconds if self.train_seconds > 0 else math.nan

    @property
    def seconds_per_iteration(self) -> float:
        """Median duration of one training step (robust to the odd slow step), NaN before two steps."""
        if len(self.seconds) < 2:
            return math.nan
        return statistics.median(b - a for a, b in zip(self.seconds, self.seconds[1:]))

    @property
    def val_iterations(self) -> list[int]:
        """Step number of each evaluation."""
        return [evaluation.iteration for evaluation in self.evaluations]

    @property
    def val_losses(self) -> list[float]:
        """Validation loss of each evaluation."""
        return [evaluation.loss for evaluation in self.evaluations]

    def val_iou(self, class_name: str | int) -> list[float]:
        """IoU of one class (by name or index) at each evaluation, e.g. ``history.val_iou("tumor")``."""
        index = self._class_index(class_name)
        return [evaluation.iou[index] for evaluation in self.evaluations]

    def val_dice(self, class_name: str | int) -> list[float]:
        """Dice of one class (by name or index) at each evaluation."""
        index = self._class_index(class_name)
        return [evaluation.dice[index] for evaluation in self.evaluations]

    def _class_index(self, class_name: str | int) -> int:
        if isinstance(class_name, int):
            if not 0 <= class_name < len(self.class_names):
                raise IndexError(f"class index {class_name} out of range for {len(self.class_names)} classes")
            return class_name
        if class_name not in self.class_names:
            raise KeyError(f"no class {class_name!r}; the classes are {self.class_names}")
        return self.class_names.index(class_name)

    def to_dict(self) -> dict:
        """Plain dict of lists, numbers and strings (JSON-ready; NaN stays NaN)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        """Inverse of :meth:`to_dict`."""
        values = dict(values)
        values["evaluations"] = [Evaluation(**evaluation) for evaluation in values.get("evaluations", [])]
        if values.get("status", "running") not in STATUSES:
            raise ValueError(f"unknown status {values['status']!r}; expected one of {STATUSES}")
        return cls(**values)

    def __repr__(self) -> str:
        text = f"History({len(self.losses)} steps, {self.train_seconds:.1f} s, {self.status}"
        if self.losses:
            text += f", last loss {self.losses[-1]:.4f}"
        if self.evaluations:
            last = self.evaluations[-1]
            ious = ", ".join(f"{name} {iou:.3f}" for name, iou in zip(self.class_names, last.iou))
            text += f", val IoU at step {last.iteration}: {ious}"
        return text + ")"
