"""The learning-rate finder: a short mock training whose learning rate rises step by step, to see which ones learn.

Smith (2017), "Cyclical Learning Rates for Training Neural Networks", https://arxiv.org/abs/1506.01186 (the "LR
range test"), as fastai's ``lr_find`` runs it. Train a copy of the model for about a hundred steps, raising the
learning rate by the same factor each step, from far too small (the loss does not move) to far too large (the
loss shoots up), and record the loss of each step. Read the curve from the left:

1. a flat start: steps too small to change anything;
2. a valley: the loss falls, fastest where the curve is steepest; good learning rates lie here;
3. the minimum, and then a climb: steps so large that they overshoot.

The loss at the minimum belongs to a rate that is already nearly too large (the loss is about to rise, and a real
run also starts from worse weights), so the suggestion is the minimum's learning rate divided by 10, one decade
into the valley (fastai's ``lr_min``). It is a starting point, not a guarantee: the curve is noisy, and the
model's recommended rate (:class:`~segtutor.models.TrainingDefaults`) was chosen from full runs.

The mock training is an ordinary run of :class:`~segtutor.train.Trainer` (the package's one training loop) with a
constant schedule and the :class:`LRRangeTest` callback, which sets the next step's learning rate through the
run's :class:`~segtutor.train.TrainingControl` and stops the run once the loss has clearly diverged.

Example:
    >>> result = lr_find(create_model("unet"), train_data)
    >>> result.suggestion  # a learning rate, e.g. 3e-3
    >>> lr_finder_figure(result)  # from segtutor.figures
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from torch.utils.data import Dataset

from segtutor.train.callbacks import Callback, TrainState
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.trainer import Trainer


@dataclass(frozen=True)
class LRFinderResult:
    """What :func:`lr_find` measured: one learning rate and one loss per step, and the suggestion."""

    lrs: list[float]  # the learning rate of each step, rising
    losses: list[float]  # the training loss of each step
    smoothed: list[float]  # the losses smoothed (exponential moving average, bias-corrected): the curve to read
    suggestion: float  # the learning rate to train with: the smoothed minimum's, divided by 10
    min_loss_lr: float  # the learning rate at the smoothed loss's minimum
    diverged: bool  # True if the loss shot up (the run stopped before the last planned step)

    @property
    def steps(self) -> int:
        """Steps taken."""
        return len(self.lrs)


class LRRangeTest(Callback):
    """Raise the learning rate after every step, from ``start_lr`` to ``end_lr`` over ``num_steps`` steps.

    Records each step's learning rate and loss, and stops the run once the smoothed loss exceeds ``diverge``
    times its lowest value so far (or is not finite): past that point the curve says nothing more.

    Args:
        start_lr: the first step's learning rate.
        end_lr: the last step's learning rate.
        num_steps: steps from start_lr to end_lr (the factor per step is ``(end_lr / start_lr) ** (1 / (num_steps -
            1))``).
        beta: weight of the past in the smoothed loss (0.98: roughly the last 50 steps).
        diverge: stop when the smoothed loss exceeds this many times its minimum.
    """

    def __init__(self, start_lr: float, end_lr: float, num_steps: int, *, beta: float = 0.98,
                 diverge: float = 4.0) -> None:  # fmt: skip
        if not 0 < start_lr < end_lr:
            raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
        if num_steps < 2:
            raise ValueError(f"num_steps must be >= 2, got {num_steps}")
        self.start_lr, self.end_lr, self.num_steps = start_lr, end_lr, num_steps
        self.beta, self.diverge = beta, diverge
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.diverged = False
        self._average = 0.0

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): geometric from start_lr to end_lr."""
        return self.start_lr * (self.end_lr / self.start_lr) ** (step / (self.num_steps - 1))

    def on_iteration(self, state: TrainState) -> None:
        # 1) record this step, and smooth its loss (the moving average starts at 0: divide its bias out)
        self.lrs.append(state.lr)
        self.losses.append(state.loss)
        self._average = self.beta * self._average + (1 - self.beta) * state.loss
        smoothed = self._average / (1 - self.beta ** len(self.losses))
        self.smoothed.append(smoothed)
        # 2) stop once the loss has clearly shot up, or at the last planned step; else raise the learning rate
        if not math.isfinite(smoothed) or smoothed > self.diverge * min(self.smoothed):
            self.diverged = True
            state.control.stop()
        elif len(self.lrs) >= self.num_steps:
            state.control.stop()
        else:
            state.control.set_lr(self.lr_at(len(self.lrs)))


def lr_find(
    model: nn.Module,
    train_data: Dataset,
    config: TrainConfig | None = None,
    *,
    start_lr: float = 1e-5,
    end_lr: float = 1.0,
    num_steps: int = 100,
    callbacks: Sequence[Callback] = (),
    control: TrainingControl | None = None,
) -> LRFinderResult:
    """Run the learning-rate range test on a copy of ``model``; the model itself is left untouched.

    Args:
        model: the network (it is copied; neither its weights nor its batch-norm statistics change).
        train_data: a ``Dataset`` of ``(image (C, H, W) float, mask (H, W) int64)`` pairs.
        config: the settings to test with (optimizer, batch size, loss, device, seed, ...); its learning rate,
            schedule and budget are replaced. Default: ``TrainConfig()``'s, with the model's recommended batch size.
        start_lr: the first step's learning rate.
        end_lr: the last planned step's learning rate.
        num_steps: planned steps from start_lr to end_lr; the run stops earlier if the loss diverges.
        callbacks: also told about the mock training's progress (a live view, say).
        control: to pause or stop the mock training from another thread.

    Returns:
        The curve and the suggested learning rate (:class:`LRFinderResult`).

    Example:
        >>> result = lr_find(create_model("unet"), TissueDataset(64, seed=0))
        >>> fit(model, train_data, val_data, TrainConfig(lr=result.suggestion, max_seconds=20))
    """
    if len(train_data) == 0:
        raise ValueError("train_data is empty: the learning-rate finder needs training samples")
    test = LRRangeTest(start_lr, end_lr, num_steps)
    base = config if config is not None else TrainConfig(max_iters=num_steps)
    # a constant schedule: the callback alone sets each step's learning rate; no evaluation
    settings = dataclasses.replace(base, lr=start_lr, schedule="constant", max_iters=num_steps, num_epochs=None,
                                   max_seconds=None, eval_every=None)  # fmt: skip
    trial = copy.deepcopy(model)  # the mock training changes weights and batch-norm statistics: a copy's
    trainer = Trainer(trial, train_data, None, settings, callbacks=[test, *callbacks], control=control)
    trainer.run()
    if not test.lrs:
        raise RuntimeError(f"the learning-rate finder took no step: {trainer.history.message}")
    # 3) the suggestion: one decade below the smoothed minimum (the last points, where it shot up, excluded)
    lowest = min(range(len(test.smoothed)), key=test.smoothed.__getitem__)
    return LRFinderResult(
        lrs=test.lrs,
        losses=test.losses,
        smoothed=test.smoothed,
        suggestion=test.lrs[lowest] / 10,
        min_loss_lr=test.lrs[lowest],
        diverged=test.diverged or trainer.history.status == "diverged",
    )
