"""Training a segmentation network: settings, the loop, its history, live control and checkpoints.

Example:
    >>> config = TrainConfig(lr=1e-3, batch_size=8, max_seconds=20)
    >>> history = fit(model, train_data, val_data, config, callbacks=[PrintProgress()])
    >>> history.val_iou("tumor")[-1]

Step by step (what a dashboard does):
    >>> trainer = Trainer(model, train_data, val_data, config)
    >>> while not trainer.finished:
    ...     trainer.step()
    ...     if trainer.should_evaluate():
    ...         trainer.evaluate()
    >>> trainer.end()
"""

from segtutor.train.callbacks import Callback, PrintProgress, TrainState
from segtutor.train.checkpoint import Checkpoint, infer_create_args, load_checkpoint, save_checkpoint
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.history import Evaluation, History
from segtutor.train.losses import SegmentationLoss, cross_entropy_loss, dice_loss
from segtutor.train.trainer import Trainer, fit

__all__ = [
    "Callback",
    "Checkpoint",
    "Evaluation",
    "History",
    "PrintProgress",
    "SegmentationLoss",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingControl",
    "cross_entropy_loss",
    "dice_loss",
    "fit",
    "infer_create_args",
    "load_checkpoint",
    "save_checkpoint",
]
