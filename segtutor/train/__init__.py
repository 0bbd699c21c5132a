"""Training a segmentation network: settings, the loop, its history, live control, background runs and checkpoints.

Example:
    >>> config = TrainConfig(lr=1e-3, batch_size=8, max_seconds=20)
    >>> history = fit(model, train_data, val_data, config, callbacks=[PrintProgress()])
    >>> history.val_iou("tumor")[-1]

Step by step (the loop :func:`fit` runs):
    >>> trainer = Trainer(model, train_data, val_data, config)
    >>> while not trainer.finished:
    ...     trainer.step()
    ...     if trainer.should_evaluate():
    ...         trainer.evaluate()
    >>> trainer.end()

In a worker thread, so a page stays live (what the training dashboard does): :class:`TrainingSession`. Every
architecture in turn, with the same budget: :func:`race`. Which learning rate: :func:`lr_find`. Snapshots of
one tile's prediction through a run, to scrub back through: :class:`TimeMachine`. Asking for labels where the
model is unsure (active learning): :mod:`segtutor.train.active`. A class of learners training on one server, in
turns for its cores: :class:`CpuShare`. From the command line, in one process or,
under torchrun, in one per GPU (:func:`init_distributed`): ``python -m segtutor.train --help``.
"""

from segtutor.train.active import (
    UNCERTAINTY_MEASURES,
    ActiveLearner,
    ActiveRound,
    AnnotationPool,
    Patch,
    active_learning,
    compare_strategies,
    entropy_map,
    margin_map,
    propose_patches,
)
from segtutor.train.background import TrainingSession, run_in_background, stop_all
from segtutor.train.callbacks import Callback, PrintProgress, TrainState
from segtutor.train.checkpoint import Checkpoint, infer_create_args, load_checkpoint, save_checkpoint
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.distributed import Distributed, init_distributed
from segtutor.train.history import Evaluation, History, smooth
from segtutor.train.losses import SegmentationLoss, cross_entropy_loss, dice_loss, focal_loss, logit_gradients
from segtutor.train.lr_finder import LRFinderResult, LRRangeTest, lr_find
from segtutor.train.race import RaceCallback, RaceResult, evaluate_boundaries, race
from segtutor.train.sharing import CpuShare, CpuTurn
from segtutor.train.snapshots import Snapshot, TimeMachine
from segtutor.train.trainer import Trainer, fit, warm_up_step

__all__ = [
    "ActiveLearner",
    "ActiveRound",
    "AnnotationPool",
    "Callback",
    "Checkpoint",
    "CpuShare",
    "CpuTurn",
    "Distributed",
    "Evaluation",
    "History",
    "LRFinderResult",
    "LRRangeTest",
    "Patch",
    "PrintProgress",
    "RaceCallback",
    "RaceResult",
    "SegmentationLoss",
    "Snapshot",
    "TimeMachine",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingControl",
    "TrainingSession",
    "UNCERTAINTY_MEASURES",
    "active_learning",
    "compare_strategies",
    "cross_entropy_loss",
    "dice_loss",
    "entropy_map",
    "evaluate_boundaries",
    "fit",
    "focal_loss",
    "infer_create_args",
    "init_distributed",
    "load_checkpoint",
    "logit_gradients",
    "lr_find",
    "margin_map",
    "propose_patches",
    "race",
    "run_in_background",
    "save_checkpoint",
    "smooth",
    "stop_all",
    "warm_up_step",
]
