"""The training settings as one group of controls, shared by the training dashboard and the architecture race."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import ipywidgets as widgets
from torch import nn

from segtutor.models import GENERIC_DEFAULTS
from segtutor.train import TrainConfig
from segtutor.widgets.controls import row


class TrainSettings:
    """The training settings a learner may change, as a group of controls, to and from a :class:`TrainConfig`.

    Every setting without a control (seed, device, ``eval_every``, the loss, ...) is kept from the initial config,
    so ``settings.config()`` is that config with the controls' values put in. The training dashboard shows all of
    the controls, the architecture race the batch size and the budget.

    A learning rate or batch size the config leaves at None (the model's recommendation) is shown resolved for
    ``model`` (:meth:`~segtutor.train.TrainConfig.resolve`), and :meth:`use_model` shows another model's. Without
    a model, the batch-size control offers "each model's own" (what the race trains with).

    Args:
        config: the first values; its budget must be ``max_seconds`` or ``max_iters`` (the budget control offers
            seconds or iterations).
        fields: the controls to build, from :data:`FIELDS`.
        model: the model the settings are for: its recommendations fill in what the config leaves at None.

    Example:
        >>> settings = TrainSettings(TrainConfig(max_seconds=30, eval_every=20))
        >>> settings.lr.value = 3e-3; settings.budget_unit.value = "iterations"; settings.budget.value = 200
        >>> settings.config().max_iters, settings.config().lr
        (200, 0.003)
    """

    FIELDS = ("lr", "optimizer", "batch_size", "budget", "schedule")
    BATCH_SIZES = (2, 4, 8, 16, 32)
    EACH_MODELS_OWN = 0  # the batch-size control's value for "each model's own" (None in the config)

    def __init__(self, config: TrainConfig, fields: Sequence[str] = FIELDS, *, model: nn.Module | None = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        unknown = sorted(set(fields) - set(self.FIELDS))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; choose from {self.FIELDS}")
        if config.num_epochs is not None or (config.max_seconds is None) == (config.max_iters is None):
            raise ValueError("give the config one budget, max_seconds or max_iters: the budget control offers seconds "
                             f"or iterations (got max_seconds={config.max_seconds}, max_iters={config.max_iters}, "
                             f"num_epochs={config.num_epochs})")  # fmt: skip
        self.initial = config
        self.fields = tuple(fields)
        seconds = config.max_seconds is not None
        shown = config.resolve(model) if model is not None else config  # None: the model's recommendation
        self.lr = widgets.FloatLogSlider(value=shown.lr if shown.lr is not None else GENERIC_DEFAULTS.lr, base=10,
                                         min=-5, max=0, step=0.1, description="learning rate",
                                         readout_format=".1e", continuous_update=False,
                                         style={"description_width": "90px"})  # fmt: skip
        self.optimizer = widgets.ToggleButtons(options=[("Adam", "adam"), ("SGD", "sgd")], value=config.optimizer,
                                               style={"button_width": "auto"})  # fmt: skip
        self.batch_size = widgets.Dropdown(description="batch size", layout=widgets.Layout(width="200px"))
        self._show_batch_size(shown.batch_size)
        self.budget = widgets.BoundedFloatText(value=config.max_seconds if seconds else config.max_iters, min=1,
                                               max=100_000, description="budget",
                                               layout=widgets.Layout(width="170px"))  # fmt: skip
        self.budget_unit = widgets.ToggleButtons(options=["seconds", "iterations"],
                                                 value="seconds" if seconds else "iterations",
                                                 style={"button_width": "auto"})  # fmt: skip
        self.schedule = widgets.ToggleButtons(
            options=["cosine", "constant"], value=config.schedule, style={"button_width": "auto"},
            tooltips=["lr falls to 0 over the budget", "the same lr throughout"],
        )  # fmt: skip

    def use_model(self, model: nn.Module) -> None:
        """Show ``model``'s recommendations in the controls of the settings the initial config leaves at None."""
        shown = self.initial.resolve(model)
        if self.initial.lr is None:
            self.lr.value = shown.lr
        if self.initial.batch_size is None:
            self._show_batch_size(shown.batch_size)

    def config(self) -> TrainConfig:
        """The initial config with the values of the controls in :attr:`fields` put in."""
        values = {}
        if "lr" in self.fields:
            values["lr"] = float(self.lr.value)
        if "optimizer" in self.fields:
            values["optimizer"] = self.optimizer.value
        if "batch_size" in self.fields:
            size = int(self.batch_size.value)
            values["batch_size"] = None if size == self.EACH_MODELS_OWN else size
        if "schedule" in self.fields:
            values["schedule"] = self.schedule.value
        if "budget" in self.fields:
            seconds = self.budget_unit.value == "seconds"
            values["max_seconds"] = float(self.budget.value) if seconds else None
            values["max_iters"] = None if seconds else int(self.budget.value)
        return dataclasses.replace(self.initial, **values)

    def _show_batch_size(self, size: int | None) -> None:
        """Offer the usual batch sizes (and ``size``), showing ``size``; None shows "each model's own"."""
        options = [(str(b), b) for b in sorted({*self.BATCH_SIZES, size or self.BATCH_SIZES[0]})]
        if size is None:
            options.insert(0, ("each model's own", self.EACH_MODELS_OWN))
        self.batch_size.options = options
        self.batch_size.value = size if size is not None else self.EACH_MODELS_OWN
        self.batch_size.layout.width = "260px" if size is None else "200px"  # room for "each model's own"

    def rows(self) -> list[widgets.HBox]:
        """The controls of :attr:`fields`, laid out in rows (that wrap where the output is narrow) with their labels."""
        first = [self.lr] if "lr" in self.fields else []
        first += [label("optimizer"), self.optimizer] if "optimizer" in self.fields else []
        first += [self.batch_size] if "batch_size" in self.fields else []
        second = [self.budget, self.budget_unit] if "budget" in self.fields else []
        second += [label("lr schedule"), self.schedule] if "schedule" in self.fields else []
        return [row(controls) for controls in (first, second) if controls]


def label(text: str) -> widgets.Label:
    """A label in front of a control whose own description would wrap onto a line of its own."""
    return widgets.Label(text, layout=widgets.Layout(margin="0 4px 0 24px"))
