"""The architecture race: UNet, FCN-8s and DeepLabv3 trained with the same budget on the same data, one after another.

Each model is built from the same seed, takes one throw-away step (so no model pays for torch's first-use kernel
building inside its budget), then trains with :func:`~segtutor.train.fit` and the same
:class:`~segtutor.train.TrainConfig`: the same data order, the same validation tiles; a learning rate or batch size
left at None is each model's own recommendation, so each trains the way it trains best. The result of each is a
:class:`RaceResult`: what a learner weighs when choosing: size (parameters), cost (FLOPs per image, time per
training step), and quality (IoU and Dice, and the boundary F-score, which looks only at the outlines; see
:mod:`segtutor.metrics.boundary`). On a 2-core laptop the models train in turn: side by side they would only make
each other slower.

A race is one comparison, at one budget and one seed: not a ranking of the architectures. Repeat it with other
seeds (``seed`` draws the initial weights, ``config.seed`` the order of the batches) to see the spread, and give
DeepLabv3 rates that fit the tile (``model_options={"deeplabv3": {"aspp_rates": aspp_rates_for_tile(96)}}``).

Example:
    >>> results = race(["unet", "fcn8s"], train_data, val_data, TrainConfig(max_seconds=20))
    >>> [(r.model_name, round(r.mean_iou, 3)) for r in results]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import class_names_of
from segtutor.device import default_device
from segtutor.metrics import BoundaryScores, boundary_scores
from segtutor.models import count_flops, count_parameters, create_model, list_models
from segtutor.predict import predict
from segtutor.train.callbacks import Callback
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.history import History
from segtutor.train.sharing import CpuShare
from segtutor.train.trainer import fit, warm_up_step


@dataclass(frozen=True)
class RaceResult:
    """One architecture's line in the race table."""

    model_name: str  # registry name, e.g. "unet"
    size: str  # e.g. "small"
    num_params: int  # parameters
    flops: int  # FLOPs of one forward pass on one tile
    iterations: int  # optimizer steps done within the budget
    seconds_per_iteration: float  # median time of one training step
    mean_iou: float  # mean IoU over the classes, at the final evaluation
    mean_dice: float  # mean Dice over the classes, at the final evaluation
    boundary: BoundaryScores  # outline precision, recall and F-score per class on the validation tiles
    history: History  # every number of the run
    status: str  # how the run ended: "completed", "stopped", "diverged", "error"


class RaceCallback(Callback):
    """A :class:`~segtutor.train.Callback` that also hears when each model of a race starts and ends."""

    def on_model_start(self, name: str, index: int) -> None:
        """Model ``name`` (the ``index``-th of the race) is built and about to train."""

    def on_model_end(self, result: RaceResult) -> None:
        """A model has finished (its history is complete); ``result`` is its line of the table."""


def race(
    model_names: Sequence[str],
    train_data: Dataset,
    val_data: Dataset,
    config: TrainConfig,
    *,
    size: str = "small",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    tolerance: float = 2.0,
    callbacks: Sequence[Callback] = (),
    control: TrainingControl | None = None,
    model_options: Mapping[str, Mapping[str, object]] | None = None,
    cpu_share: CpuShare | None = None,
) -> list[RaceResult]:
    """Train each of ``model_names`` in turn with the same ``config``; one :class:`RaceResult` per model.

    Args:
        model_names: registry names, e.g. ``list_models()``.
        train_data, val_data: ``(image (C, H, W), mask (H, W))`` datasets shared by every model.
        config: the one budget and set of settings every model trains with; a setting left at None (the learning
            rate, the batch size) is each model's own recommendation (:meth:`TrainConfig.resolve`).
        size: the size of every model (``"tiny"``, ``"small"``, ...).
        seed: the initial weights of every model are drawn from this seed.
        class_names: one per class; default ``train_data.class_names``.
        tolerance: pixels an outline may be off in the boundary F-score.
        callbacks: told about every model's training; :class:`RaceCallback` hooks also about each model's start
            and end.
        control: pause / resume the model training now; a stop ends the race (the models done keep their line).
        model_options: more ``create_model`` arguments for some models, by name, e.g.
            ``{"deeplabv3": {"aspp_rates": [2, 4, 7]}}``.
        cpu_share: every model takes turns for the machine's cores with the runs of other processes (a class on
            one server, :class:`~segtutor.train.CpuShare`); the budget counts only the seconds it trains.

    Returns:
        The results in the order the models trained (fewer than ``model_names`` if the race was stopped).
    """
    unknown = [name for name in model_names if name not in list_models()]
    if unknown:
        raise ValueError(f"unknown models {unknown}; available options are: {', '.join(list_models())}")
    options = {name: dict(value) for name, value in (model_options or {}).items()}
    stray = [name for name in options if name not in model_names]
    if stray:
        raise ValueError(f"model_options name {stray}, which are not in this race ({list(model_names)})")
    names = class_names_of(train_data, class_names)
    control = control if control is not None else TrainingControl()
    tile = tuple(val_data[0][0].shape)  # (C, H, W)
    race_callbacks = [callback for callback in callbacks if isinstance(callback, RaceCallback)]
    results: list[RaceResult] = []
    for index, name in enumerate(model_names):
        if control.stop_requested:
            break
        model = create_model(name, size=size, in_channels=tile[0], num_classes=len(names), seed=seed,
                             **options.get(name, {}))
        for callback in race_callbacks:
            callback.on_model_start(name, index)
        batch_size = max(config.resolve(model).batch_size, 2)  # the batch size it trains with (its own if None)
        batch = [val_data[i % len(val_data)] for i in range(batch_size)]
        warm_up_step(copy.deepcopy(model).to(_device(config)), batch)  # the same start for everyone
        history = fit(model, train_data, val_data, config, callbacks, control, class_names=names,
                      cpu_share=cpu_share)  # fmt: skip
        result = _result(name, size, model, history, val_data, len(names), tile, tolerance)
        results.append(result)
        for callback in race_callbacks:
            callback.on_model_end(result)
    return results


@torch.no_grad()
def evaluate_boundaries(
    model: nn.Module, dataset: Dataset, num_classes: int, *, tolerance: float = 2.0
) -> BoundaryScores:
    """Boundary scores of ``model``'s predictions over every ``(image, mask)`` of ``dataset``."""
    masks, preds = [], []
    for index in range(len(dataset)):
        image, mask = dataset[index]
        masks.append(mask)
        preds.append(predict(model, image))
    return boundary_scores(torch.stack(masks), torch.stack(preds), num_classes, tolerance=tolerance)


def _result(name: str, size: str, model: nn.Module, history: History, val_data: Dataset, num_classes: int,
            tile: tuple[int, ...], tolerance: float) -> RaceResult:  # fmt: skip
    last = history.evaluations[-1] if history.evaluations else None
    dice = [value for value in last.dice if value == value] if last is not None else []
    return RaceResult(
        model_name=name,
        size=size,
        num_params=count_parameters(model),
        flops=count_flops(model, tile),
        iterations=len(history.losses),
        seconds_per_iteration=history.seconds_per_iteration,
        mean_iou=last.mean_iou if last is not None else math.nan,
        mean_dice=float(np.mean(dice)) if dice else math.nan,
        boundary=evaluate_boundaries(model, val_data, num_classes, tolerance=tolerance),
        history=history,
        status=history.status,
    )


def _device(config: TrainConfig) -> torch.device:
    return torch.device(config.device) if config.device is not None else default_device()
