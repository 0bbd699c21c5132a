"""Pick UNet, FCN-8s or DeepLabv3 and a size, and see the architecture drawn from the model itself.

The view shows the diagram of :func:`segtutor.figures.architecture_figure` (hover a box for what the stage does),
the parameter count, the FLOPs of one forward pass, and the layer table (every module with its output shape), all
from :func:`segtutor.models.describe_architecture`.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets
import plotly.graph_objects as go
from torch import nn

from segtutor.figures import architecture_figure, legend_html
from segtutor.models import (
    LABELS,
    PAPER_SIZED_PARAMETERS,
    create_model,
    describe_architecture,
    format_count,
    list_models,
    list_sizes,
)
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.live_figure import LiveFigure


class ModelPicker(widgets.VBox):
    """Choose an architecture and a size; see its diagram, parameter count, FLOPs and layer table.

    Args:
        model: first architecture shown, one of ``list_models()``.
        size: first size, one of ``list_sizes()``.
        in_channels: channels of the images the model will see.
        num_classes: classes it predicts.
        input_size: height and width of the image the shapes and FLOPs are computed for (the tile size).
        seed: seeds the new model's initial weights.

    Attributes:
        model: the model currently picked (fresh weights).
        summary: its :class:`~segtutor.models.ArchitectureSummary`.
        figure: the diagram (a :class:`LiveFigure`), laid out for the width the browser draws it at.
        diagram: the plotly figure it shows.

    Example:
        >>> picker = ModelPicker("unet", "small")
        >>> picker.on_change(lambda model: print(type(model).__name__))
        >>> picker.architecture.value = "fcn8s"     # what a click on "FCN-8s" does
        FCN8s
    """

    def __init__(
        self,
        model: str = "unet",
        size: str = "small",
        *,
        in_channels: int = 3,
        num_classes: int = 2,
        input_size: int = 128,
        seed: int = 0,
    ) -> None:
        if model not in list_models():
            raise ValueError(f"unknown model {model!r}; available options are: {', '.join(list_models())}")
        if size not in list_sizes():
            raise ValueError(f"unknown size {size!r}; available options are: {', '.join(list_sizes())}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.input_size = input_size
        self.seed = seed
        self._callbacks: list[Callable[[nn.Module], None]] = []

        self.architecture = widgets.ToggleButtons(
            options=[(LABELS.get(name, name), name) for name in list_models()], value=model,
            style={"button_width": "auto"},
        )  # fmt: skip
        self.size = widgets.ToggleButtons(
            options=list_sizes(), value=size, style={"button_width": "auto"},
            tooltips=["fastest", "trains in seconds on a CPU", "slower, a bit better", "the published network"],
        )  # fmt: skip
        self.counts = widgets.HTML()
        self.legend = widgets.HTML()
        self.table = widgets.HTML(layout=widgets.Layout(max_height="320px", overflow="auto", width="100%"))
        self.errors = widgets.Output()
        self.model = create_model(model, size=size, in_channels=in_channels, num_classes=num_classes, seed=seed)
        self.summary = describe_architecture(self.model, (in_channels, input_size, input_size))
        self.diagram = architecture_figure(self.summary, title=False)  # the counts line says what a title would
        self.figure = LiveFigure(self.diagram)
        self.figure.add_class("segtutor-architecture")
        self._show_counts()

        pick = report_errors(self.errors)(self._pick)  # an error shows below the diagram, not in a log
        self.architecture.observe(pick, names="value")
        self.size.observe(pick, names="value")
        self.figure.observe(report_errors(self.errors)(self._on_room), names="room")
        table = widgets.Accordion([self.table], titles=("layer table: every module and its output shape",))
        table.selected_index = None
        label = dict(layout=widgets.Layout(width="90px"))
        super().__init__([
            row([widgets.Label("architecture", **label), self.architecture]),
            row([widgets.Label("size", **label), self.size]),
            self.counts, self.legend, self.figure, table, self.errors,
        ])  # fmt: skip

    def on_change(self, callback: Callable[[nn.Module], None]) -> None:
        """Call ``callback(model)`` with the new model whenever the learner picks another architecture or size."""
        self._callbacks.append(callback)

    @property
    def model_name(self) -> str:
        """The registry name of the picked architecture, e.g. ``"unet"``."""
        return self.architecture.value

    def _pick(self, _change: dict | None = None) -> None:
        name, size = self.architecture.value, self.size.value
        self.counts.value = f"<i>building {LABELS.get(name, name)} ({size})…</i>"
        self.model = create_model(name, size=size, in_channels=self.in_channels, num_classes=self.num_classes,
                                  seed=self.seed)  # fmt: skip
        self.summary = describe_architecture(self.model, (self.in_channels, self.input_size, self.input_size))
        self._show_diagram(architecture_figure(self.summary, title=False, room=self.figure.room))
        self._show_counts()
        for callback in self._callbacks:
            callback(self.model)

    def _on_room(self, _change: dict) -> None:
        """The browser draws the diagram at another width: lay its labels out for that width, if that changes it
        (upright labels where the columns are narrow)."""
        diagram = architecture_figure(self.summary, title=False, room=self.figure.room)
        if diagram.layout.to_plotly_json() != self.diagram.layout.to_plotly_json():
            self._show_diagram(diagram)

    def _show_diagram(self, diagram: go.Figure) -> None:
        self.diagram = diagram
        self.figure.show(diagram)

    def _show_counts(self) -> None:
        summary = self.summary
        _, height, width = summary.input_size
        warning = ""
        if summary.num_params > PAPER_SIZED_PARAMETERS:
            warning = (" &nbsp;<span style='color:#b35806'>paper-sized: one training step takes seconds on a CPU; "
                       "pick tiny or small to train here</span>")  # fmt: skip
        self.counts.value = (
            f"<b>{html.escape(LABELS.get(self.model_name, summary.name))}</b> ({self.size.value}): "
            f"<b>{summary.num_params:,}</b> parameters · <b>{format_count(summary.flops)}FLOPs</b> for one "
            f"{height}×{width} image (a training step costs about 3× that per image){warning}"
        )
        self.table.value = summary.layers.compact_html(max_depth=3)
        self.legend.value = legend_html(summary)
