"""The time machine's view: a step slider under the training curves that scrubs back through the run.

The snapshots come from the engine (:class:`segtutor.train.TimeMachine`, a callback of the run): the tile's
probabilities, labels and scores at evenly spaced steps. :class:`TimeMachineViewer` only draws them: the
prediction over the tile, its errors for one class (false positives red, false negatives blue), that class's
probability per pixel and the confusion matrix, all at the step the slider points to, with a dotted marker at that
step on the loss and IoU curves of the training dashboard.

While a run trains the slider follows the newest snapshot (left at its right end); drag it back to look at the
past, and it stays there until you move it to the end again.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from segtutor.figures import error_picture, image_trace, png_uri, probability_picture, style
from segtutor.predict import error_map, image_to_rgb, overlay
from segtutor.train import Snapshot, TimeMachine
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.live_figure import LiveFigure

TITLES = ("prediction", "errors", "probability", "confusion matrix")
MARKER = dict(color="#444444", width=1.5, dash="dot")


def time_machine_figure(class_names: Sequence[str], blank: np.ndarray) -> go.Figure:
    """The viewer's figure: the prediction, the errors, one class's probabilities and the confusion matrix.

    Traces, by name: "prediction", "errors", "probability" (pictures) and "confusion" (a heatmap with counts).
    """
    num_classes = len(class_names)
    figure = make_subplots(rows=1, cols=4, subplot_titles=TITLES, horizontal_spacing=0.05,
                           column_widths=[0.25, 0.25, 0.25, 0.25])  # fmt: skip
    for col, name in enumerate(TITLES[:3], start=1):
        figure.add_trace(image_trace(blank, name), 1, col)
    figure.add_trace(go.Heatmap(
        z=np.zeros((num_classes, num_classes)), x=list(class_names), y=list(class_names), colorscale="Blues",
        zmin=0, zmax=1, showscale=False, texttemplate="%{text}", text=[[""] * num_classes] * num_classes,
        name="confusion", hovertemplate="true %{y}, predicted %{x}: %{text} pixels<extra></extra>",
    ), 1, 4)  # fmt: skip
    for col in (1, 2, 3):
        suffix = "" if col == 1 else str(col)
        figure.update_layout({f"xaxis{suffix}": dict(visible=False, constrain="domain"),
                              f"yaxis{suffix}": dict(visible=False, autorange="reversed", constrain="domain",
                                                     scaleanchor=f"x{suffix}")})  # fmt: skip
    figure.update_layout(xaxis4=dict(title_text="predicted"), yaxis4=dict(title_text="true", autorange="reversed"))
    style(figure, width=1120, height=300, margin=dict(l=10, r=10, t=40, b=40))
    for annotation in figure.layout.annotations:
        annotation.font.size = 13
    return figure


class TimeMachineViewer(widgets.VBox):
    """Scrub back through a run: a step slider, and the tile's prediction, errors and scores at that step.

    Args:
        machine: the run's :class:`~segtutor.train.TimeMachine` (a callback of the run).
        colors: one ``(R, G, B)`` per class, for the overlay.
        curves: the training dashboard's figure, whose loss (``x``) and IoU (``x2``) panels get a marker at the
            step shown; None for no marker.
        curve_axes: the ``(xref, yref)`` of each curve panel that gets a marker.

    Python API: ``viewer.slider.value = 40`` shows the latest snapshot at or before step 40;
    :meth:`refresh` takes in new snapshots (the training dashboard calls it as it redraws); :attr:`snapshot` is the
    one on screen.

    Example:
        >>> viewer = TimeMachineViewer(dashboard.time_machine, colors=dashboard.colors, curves=dashboard.figure)
    """

    def __init__(
        self,
        machine: TimeMachine,
        *,
        colors: Sequence[Sequence[int]],
        curves: LiveFigure | None = None,
        curve_axes: Sequence[tuple[str, str]] = (("x", "y"), ("x2", "y2")),
    ) -> None:
        self.machine = machine
        self.colors = [tuple(color) for color in colors]
        self.curves = curves
        self.curve_axes = tuple(curve_axes)
        self.class_names = list(machine.class_names)
        self.snapshot: Snapshot | None = None
        self._image = image_to_rgb(machine.image)  # (H, W, 3) uint8
        self._quiet = False  # True while refresh moves the slider without drawing
        self._drawn: tuple | None = None  # (snapshot, class) the pictures show: the same again is not sent again
        self._marker: int | None = None  # the step the curves' marker is at (None: no marker)
        self._run = -1  # the machine's run the slider spans
        self.slider = widgets.IntSlider(value=0, min=0, max=0, description="⏪ step", continuous_update=True,
                                        layout=widgets.Layout(width="640px"),
                                        style={"description_width": "60px"})  # fmt: skip
        self.class_picker = widgets.Dropdown(options=self.class_names, value=self.class_names[-1],
                                             description="errors of", layout=widgets.Layout(width="210px"))  # fmt: skip
        self.info = widgets.HTML()
        self.info.add_class("segtutor-time-machine-info")
        self.figure = LiveFigure(time_machine_figure(self.class_names, np.full_like(self._image, 255)))
        self.figure.add_class("segtutor-time-machine")
        self.errors = widgets.Output()
        guard = report_errors(self.errors)
        self.slider.observe(guard(self._on_slider), names="value")
        self.class_picker.observe(guard(lambda _: self.draw()), names="value")
        title = widgets.HTML(
            "<b>Time machine</b> <span style='font-size:13px;color:#555'>drag the slider back through training: "
            "what the model predicted on the preview tile at that step, and what it got wrong</span>"
        )
        super().__init__([title, row([self.slider, self.class_picker]), self.info, self.figure, self.errors])
        self.refresh(draw=True)

    def refresh(self, *, draw: bool = True) -> None:
        """Take in the snapshots taken since the last call: the slider spans them, and follows the newest one if
        it was at its right end. ``draw=False`` only moves the slider and the marker (cheap, for live redraws)."""
        snapshots, run = self.machine.snapshots, self.machine.runs
        last = snapshots[-1].iteration if snapshots else 0
        following = self.slider.value >= self.slider.max or run != self._run  # a new run: follow it
        self._run = run
        self._quiet = True  # one drawing at the end, not one per change
        try:
            self.slider.max = last  # a lower max (a new run) pulls the value down with it
            if following:
                self.slider.value = last
        finally:
            self._quiet = False
        if draw:
            self.draw()
        else:
            self._move_marker()

    def draw(self) -> None:
        """Draw the snapshot at the slider's step (the latest one at or before it)."""
        snapshots = self.machine.snapshots
        if not snapshots:
            self.snapshot = None
            self.info.value = "<span style='font-size:13px;color:#555'>no snapshots yet: press Start</span>"
            self._move_marker()
            return
        snapshot = self.machine.at(self.slider.value)
        self.snapshot = snapshot
        class_index = self.class_names.index(self.class_picker.value)
        self.info.value = _scores_html(snapshot, self.class_names, self.colors, len(snapshots), self.machine.every,
                                       self.machine.max_snapshots, sum(s.nbytes for s in snapshots),
                                       self.machine.max_nbytes)  # fmt: skip
        self._move_marker()
        if self._drawn is not None and self._drawn[0] is snapshot and self._drawn[1] == class_index:
            return  # the pictures on screen are these already (a live redraw with no new snapshot)
        self._drawn = (snapshot, class_index)
        preds = snapshot.preds.long()  # (H, W)
        codes = error_map(self.machine.mask, preds, class_index, ignore_index=self.machine.ignore_index)
        confusion = snapshot.confusion.numpy()
        name = self.class_picker.value
        with self.figure.batch():
            self.figure.update_trace("prediction", source=png_uri(overlay(self._image, preds, self.colors, 0.45)))
            self.figure.update_trace("errors", source=png_uri(error_picture(self._image, codes)))
            self.figure.update_trace("probability", source=png_uri(probability_picture(snapshot.probs[class_index])))
            self.figure.update_trace("confusion", z=confusion / max(confusion.max(), 1),
                                     text=[[f"{count:,}" for count in row] for row in confusion])  # fmt: skip
            self.figure.set_subplot_title(0, f"prediction at step {snapshot.iteration}")
            self.figure.set_subplot_title(1, f"errors on {html.escape(name)}: FP red, FN blue")
            self.figure.set_subplot_title(2, f"P({html.escape(name)}) per pixel")

    def _on_slider(self, _change: dict) -> None:
        if not self._quiet:
            self.draw()

    def _move_marker(self) -> None:
        if self.curves is None:
            return
        step = self.machine.at(self.slider.value).iteration if self.machine.snapshots else None
        if step == self._marker:
            return  # the marker is there already (or there is none to draw): no patch to send
        self._marker = step
        shapes = [] if step is None else [
            dict(type="line", xref=x, yref=f"{y} domain", x0=step, x1=step, y0=0, y1=1, line=MARKER,
                 name="time machine") for x, y in self.curve_axes]  # fmt: skip
        self.curves.update_layout(shapes=shapes)


def _scores_html(snapshot: Snapshot, class_names: Sequence[str], colors: Sequence[Sequence[int]], count: int,
                 every: int, most: int, nbytes: int, max_nbytes: int | None) -> str:  # fmt: skip
    """One line: the snapshot's step, training loss, pixel accuracy, and IoU and Dice of each class on the tile;
    a second: how many snapshots are kept (of at most ``most``), how far apart, and the memory they hold (of at most
    ``max_nbytes``, however long the run)."""
    loss = "—" if math.isnan(snapshot.loss) else f"{snapshot.loss:.3f}"
    scores = " · ".join(
        f"<span style='color:rgb{tuple(color)}'>■</span> {html.escape(name)} IoU <b>{_number(iou)}</b> "
        f"Dice {_number(dice)}"
        for name, color, iou, dice in zip(class_names, colors, snapshot.iou, snapshot.dice)
    )
    return (
        f"<div style='font-size:13px'>step <b>{snapshot.iteration}</b> ({snapshot.seconds:.1f} s) · training loss "
        f"{loss} · on this tile: pixel accuracy {snapshot.pixel_accuracy:.3f} · {scores}"
        f"<br><span style='color:#666'>{count} snapshots kept (at most {most}), one every {every} steps (thinned as "
        f"the run grows), {nbytes / 1e6:.1f} MB (at most {(max_nbytes or 0) / 1e6:.1f} MB, however long the run)"
        "</span></div>"
    )


def _number(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3f}"

