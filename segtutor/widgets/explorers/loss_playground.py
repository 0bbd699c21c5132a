"""LossPlaygroundExplorer: paint a small tumor and a prediction of it, and watch every loss judge the prediction.

Why can a model reach 95 % pixel accuracy with a tumor IoU near 0, and why does adding a Dice term help rare
classes? Here the ground truth is one round tumor covering a few per cent of a square, and the prediction is a
copy of it you can shift, shrink or grow, blur, make more or less confident, and paint on with a brush. Five losses
score it, each with a map of the *push* it gives every pixel: ``-∂loss/∂logit(tumor)``, red where gradient descent
would raise the tumor score, blue where it would lower it.

:class:`LossPlaygroundState` holds the numbers (no widgets: test it on its own); the losses and their gradients
come from the engine (:mod:`segtutor.train.losses`, :func:`~segtutor.train.logit_gradients`).
:class:`LossPlaygroundExplorer` is the view.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from scipy import ndimage

from segtutor.figures import TEMPLATE
from segtutor.metrics import SegmentationScores, confusion_matrix
from segtutor.train import cross_entropy_loss, dice_loss, focal_loss, logit_gradients
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.links import Shareable, ShareLink
from segtutor.widgets.live_figure import Click, LiveFigure

LOSS_NAMES = ("cross-entropy", "weighted cross-entropy", "focal", "soft Dice", "cross-entropy + Dice")
LOSS_COLORS = ("#6baed6", "#2171b5", "#74c476", "#e6550d", "#756bb1")
PRESETS = {  # prediction presets: (shift, grow, blur, confidence)
    "perfect": (0, 0, 0.0, 0.95),
    "shifted": (4, 0, 0.0, 0.95),
    "too small": (0, -3, 0.0, 0.95),
    "too large": (0, 3, 0.0, 0.95),
    "blurred border": (0, 0, 2.0, 0.95),
    "unsure everywhere": (0, 0, 0.0, 0.6),
    "all stroma": (0, -64, 0.0, 0.95),
}
EPSILON = 1e-4  # probabilities are kept in [EPSILON, 1 - EPSILON]: log(0) would be infinite
TRUTH, PREDICTION, BARS = 0, 1, 2  # trace indices; the push maps follow, one per loss


@dataclass(frozen=True)
class LossReading:
    """What one loss says about the prediction."""

    value: float  # the loss
    push: np.ndarray  # (H, W) -∂loss/∂logit(tumor): > 0 raises the tumor score there, < 0 lowers it
    tumor_share: float  # share of the total push (sum of |push|) that falls on true tumor pixels


class LossPlaygroundState:
    """A ground truth with one small round tumor, a prediction made from it, and every loss's verdict.

    Args:
        size: side of the square, in pixels.
        tumor_share: the tumor's share of the pixels (its radius follows).
        row, col: the tumor's centre.
        shift: the prediction's tumor (a copy of the truth's) is moved this many pixels to the right.
        grow: ... and grown by this many pixels: every pixel within ``grow`` pixels of it becomes tumor (negative:
            shrunk, only the tumor pixels more than ``-grow`` pixels from stroma stay; far enough: gone).
        blur: Gaussian blur of the prediction's probabilities, in pixels (0: a sharp border).
        confidence: P(tumor) inside the predicted tumor; ``1 - confidence`` outside.
        tumor_weight: weight of a tumor pixel in the weighted cross-entropy (stroma weighs 1); ``(1 - share) /
            share`` balances the two classes.
        gamma: the focal loss's focusing exponent (0 is cross-entropy).

    The prediction is a copy of the truth *as painted*: :meth:`paint_truth` paints tumor (or stroma) on the ground
    truth, e.g. a second small tumor, and the prediction (every preset: moved, grown or shrunk, blurred) is made
    from that truth again. Brush strokes (:meth:`paint`) are painted on top of the prediction; both kinds of stroke
    are kept when settings change.
    After every change: ``truth (H, W)`` int64, ``probs (H, W)`` P(tumor), ``readings`` (one
    :class:`LossReading` per name in :data:`LOSS_NAMES`) and ``scores`` (pixel accuracy, IoU, Dice of the argmax).

    Example:
        >>> state = LossPlaygroundState(tumor_share=0.05)
        >>> state.configure(grow=-64)  # predict no tumor at all
        >>> state.scores.pixel_accuracy, state.scores.iou[1]
        (0.95, 0.0)
    """

    SETTINGS: ClassVar[tuple[str, ...]] = ("size", "tumor_share", "row", "col", "shift", "grow", "blur", "confidence",
                                           "tumor_weight", "gamma")  # fmt: skip

    def __init__(
        self,
        *,
        size: int = 64,
        tumor_share: float = 0.05,
        row: int | None = None,
        col: int | None = None,
        shift: int = 0,
        grow: int = 0,
        blur: float = 0.0,
        confidence: float = 0.95,
        tumor_weight: float = 19.0,
        gamma: float = 2.0,
    ) -> None:
        self.strokes: list[tuple[int, int, int, float]] = []  # (row, col, radius, P(tumor)) painted on top
        self.truth_strokes: list[tuple[int, int, int, int]] = []  # (row, col, radius, label) painted on the truth
        centre = size // 2
        self._apply(size, tumor_share, centre if row is None else row, centre if col is None else col, shift, grow,
                    blur, confidence, tumor_weight, gamma)  # fmt: skip

    def configure(self, **settings: Any) -> None:
        """Change any of the ``SETTINGS`` (the brush strokes stay, unless the size changes).

        Raises:
            TypeError: on a setting name the playground does not have.
            ValueError: on a bad value; the previous settings are kept.
        """
        current = {name: getattr(self, name) for name in self.SETTINGS}
        unknown = set(settings) - set(current)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; choose from {sorted(current)}")
        self._apply(**{**current, **settings})

    def paint(self, row: int, col: int, radius: int = 3, probability: float = 1.0) -> None:
        """Paint a disc of P(tumor) = ``probability`` on the prediction, centred on pixel ``(row, col)``."""
        if not 0 <= probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        if not (0 <= row < self.size and 0 <= col < self.size):
            raise ValueError(f"(row, col) must lie in the {self.size} × {self.size} square, got ({row}, {col})")
        self.strokes.append((int(row), int(col), int(radius), float(probability)))
        self._compute()

    def paint_truth(self, row: int, col: int, radius: int = 3, tumor: bool = True) -> None:
        """Paint a disc of tumor (``tumor=True``) or stroma on the ground truth, centred on pixel ``(row, col)``."""
        if not (0 <= row < self.size and 0 <= col < self.size):
            raise ValueError(f"(row, col) must lie in the {self.size} × {self.size} square, got ({row}, {col})")
        self.truth_strokes.append((int(row), int(col), int(radius), int(bool(tumor))))
        self._compute()

    def clear_strokes(self) -> None:
        """Remove every brush stroke, on the prediction and on the truth."""
        self.strokes, self.truth_strokes = [], []
        self._compute()

    # ---- the numbers ------------------------------------------------------------------------------------------
    def _apply(self, size, tumor_share, row, col, shift, grow, blur, confidence, tumor_weight, gamma) -> None:
        # 1) check everything before changing anything
        if not 16 <= size <= 256:
            raise ValueError(f"size must be between 16 and 256 pixels, got {size}")
        if not 0 < tumor_share < 0.5:
            raise ValueError(f"tumor_share must be between 0 and 0.5 (a rare tumor), got {tumor_share}")
        if not (0 <= row < size and 0 <= col < size):
            raise ValueError(f"the tumor's centre (row, col) must lie in the square 0 … {size - 1}, got {(row, col)}")
        if not 0.5 <= confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
        if blur < 0 or tumor_weight <= 0 or gamma < 0:
            raise ValueError(f"blur and gamma must be >= 0 and tumor_weight > 0, got blur={blur}, "
                             f"tumor_weight={tumor_weight}, gamma={gamma}")  # fmt: skip
        if size != getattr(self, "size", size):
            self.strokes, self.truth_strokes = [], []  # strokes belong to the old square
        self.size, self.tumor_share, self.row, self.col = int(size), float(tumor_share), int(row), int(col)
        self.shift, self.grow, self.blur, self.confidence = int(shift), int(grow), float(blur), float(confidence)
        self.tumor_weight, self.gamma = float(tumor_weight), float(gamma)
        self._compute()

    @property
    def radius(self) -> float:
        """The true tumor's radius: a disc covering ``tumor_share`` of the square."""
        return math.sqrt(self.tumor_share * self.size**2 / math.pi)

    def losses(self) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
        """The five losses as functions of ``(logits (1, 2, H, W), masks (1, H, W))``, by name."""
        weights = torch.tensor([1.0, self.tumor_weight], dtype=torch.float64)
        return {
            "cross-entropy": cross_entropy_loss,
            "weighted cross-entropy": functools.partial(cross_entropy_loss, class_weights=weights),
            "focal": functools.partial(focal_loss, gamma=self.gamma),
            "soft Dice": dice_loss,
            "cross-entropy + Dice": lambda logits, masks: cross_entropy_loss(logits, masks) + dice_loss(logits, masks),
        }

    def _compute(self) -> None:
        # 1) the truth: a disc of the chosen share around (row, col)
        rows, cols = np.mgrid[: self.size, : self.size]
        self.truth = ((rows - self.row) ** 2 + (cols - self.col) ** 2 <= self.radius**2).astype(np.int64)  # (H, W)
        for row, col, brush, label in self.truth_strokes:  # painted on the truth
            self.truth[(rows - row) ** 2 + (cols - col) ** 2 <= brush**2] = label
        # 2) the prediction: a copy of the truth as painted, moved and grown (or shrunk), confident inside, blurred,
        #    then the prediction's brush strokes
        inside = grown(moved(self.truth == 1, self.shift), self.grow)  # (H, W) bool
        probs = np.where(inside, self.confidence, 1 - self.confidence)
        if self.blur > 0:
            probs = ndimage.gaussian_filter(probs, self.blur, mode="nearest")
        for row, col, brush, value in self.strokes:
            probs[(rows - row) ** 2 + (cols - col) ** 2 <= brush**2] = value
        self.probs = np.clip(probs, EPSILON, 1 - EPSILON)  # (H, W) P(tumor)
        # 3) logits whose softmax is (1 - p, p): log-probabilities are such logits
        p = torch.from_numpy(self.probs)  # float64
        self.logits = torch.stack([torch.log1p(-p), torch.log(p)])[None]  # (1, 2, H, W)
        masks = torch.from_numpy(self.truth)[None]  # (1, H, W)
        # 4) each loss, and its push on every pixel's tumor score
        tumor = self.truth == 1
        self.readings: dict[str, LossReading] = {}
        for name, loss in self.losses().items():
            push = -logit_gradients(loss, self.logits, masks)[0, 1].numpy()  # (H, W)
            total = float(np.abs(push).sum())
            self.readings[name] = LossReading(
                value=float(loss(self.logits, masks)),
                push=push,
                tumor_share=float(np.abs(push[tumor]).sum()) / total if total > 0 else math.nan,
            )
        # 5) what the argmax scores: pixel accuracy against IoU and Dice
        preds = torch.from_numpy((self.probs > 0.5).astype(np.int64))
        matrix = confusion_matrix(masks[0], preds, 2, ignore_index=None)
        self.scores = SegmentationScores.from_matrix(matrix, ["stroma", "tumor"])

    def __repr__(self) -> str:
        values = ", ".join(f"{name} {reading.value:.3f}" for name, reading in self.readings.items())
        return (
            f"LossPlaygroundState(tumor {self.tumor_share:.0%} of {self.size}², pixel accuracy "
            f"{self.scores.pixel_accuracy:.3f}, tumor IoU {self.scores.iou[1]:.3f}; {values})"
        )


class LossPlaygroundExplorer(widgets.VBox, Shareable):
    """Shift, shrink, blur or paint a prediction of a small tumor and watch five losses and their pushes.

    Click the ground truth to move the tumor (or, with ``truth_click``, paint tumor or stroma on it); click the
    prediction to paint P(tumor) with the brush.

    Args:
        size: side of the square, in pixels.
        tumor_share: the tumor's share of the pixels.

    Python API: set any control's ``value``; ``explorer.figure.click(PREDICTION, x=col, y=row)`` paints;
    :attr:`state` holds the numbers on screen.

    Example:
        >>> explorer = LossPlaygroundExplorer(tumor_share=0.05)
        >>> explorer.preset.value = "all stroma"
        >>> explorer.state.scores.pixel_accuracy, explorer.state.readings["soft Dice"].value
    """

    LINK_VIEW = "loss-playground"
    LINK_CONTROLS = {name: name for name in ("tumor_share", "row", "col", "shift", "grow", "blur", "confidence",
                                             "tumor_weight", "gamma")}  # brush strokes are not in the link

    def __init__(self, *, size: int = 64, tumor_share: float = 0.05) -> None:
        self.state = LossPlaygroundState(size=size, tumor_share=tumor_share,
                                         tumor_weight=round((1 - tumor_share) / tumor_share, 1))  # fmt: skip
        state = self.state
        slider = dict(continuous_update=False, style={"description_width": "110px"},
                      layout=widgets.Layout(width="330px"))  # fmt: skip
        # 1) the truth
        self.tumor_share = widgets.FloatSlider(value=tumor_share, min=0.01, max=0.3, step=0.01, readout_format=".0%",
                                               description="tumor share", **slider)  # fmt: skip
        self.row = widgets.IntSlider(value=state.row, min=0, max=size - 1, description="tumor row", **slider)
        self.col = widgets.IntSlider(value=state.col, min=0, max=size - 1, description="tumor column", **slider)
        # 2) the prediction
        self.preset = widgets.Dropdown(options=[*PRESETS, "custom"], value="perfect", description="prediction",
                                       style={"description_width": "110px"})  # fmt: skip
        self.shift = widgets.IntSlider(value=0, min=-16, max=16, description="shift right", **slider)
        self.grow = widgets.IntSlider(value=0, min=-size, max=16, description="grow (− shrink)", **slider)
        self.blur = widgets.FloatSlider(value=0.0, min=0, max=6, step=0.5, description="blur border", **slider)
        self.confidence = widgets.FloatSlider(value=0.95, min=0.5, max=0.999, step=0.005, readout_format=".3f",
                                              description="confidence", **slider)  # fmt: skip
        # 3) the losses' own settings, and the brush
        self.tumor_weight = widgets.FloatSlider(value=state.tumor_weight, min=1, max=60, step=0.5,
                                                description="tumor weight", **slider)  # fmt: skip
        self.gamma = widgets.FloatSlider(value=2.0, min=0, max=5, step=0.5, description="focal γ", **slider)
        self.brush_radius = widgets.IntSlider(value=3, min=1, max=12, description="brush radius", **slider)
        self.brush_value = widgets.FloatSlider(value=1.0, min=0, max=1, step=0.05, description="brush P(tumor)",
                                               **slider)  # fmt: skip
        self.truth_click = widgets.ToggleButtons(options=["move the tumor", "paint tumor", "paint stroma"],
                                                 value="move the tumor", description="click truth to",
                                                 style={"button_width": "auto", "description_width": "110px"})
        self.clear_button = widgets.Button(description="clear the brush strokes", icon="eraser",
                                           layout=widgets.Layout(width="200px"))  # fmt: skip
        self.scores = widgets.HTML()
        self.scores.add_class("segtutor-loss-scores")
        self.figure = LiveFigure(self._figure())
        self.figure.add_class("segtutor-loss-playground")
        self.errors = widgets.Output()
        self._applying_preset = False  # True while a preset sets the prediction's sliders

        guard = report_errors(self.errors)
        self._settings = [self.tumor_share, self.row, self.col, self.shift, self.grow, self.blur, self.confidence,
                          self.tumor_weight, self.gamma]  # fmt: skip
        for control in self._settings:
            control.observe(guard(self._on_settings), names="value")
        self.preset.observe(guard(self._on_preset), names="value")
        self.clear_button.on_click(guard(lambda _: self._clear()))
        self.figure.on_click(guard(self._on_click))
        hint = widgets.HTML("<span style='font-size:12px;color:#555'>click the truth to move the tumor (or paint it, "
                            "as chosen above), click the prediction to paint with the brush</span>")  # fmt: skip
        columns = row([
            widgets.VBox([widgets.HTML("<b>ground truth</b>"), self.tumor_share, self.row, self.col,
                          self.truth_click]),
            widgets.VBox([widgets.HTML("<b>prediction</b>"), self.preset, self.shift, self.grow, self.blur,
                          self.confidence]),
            widgets.VBox([widgets.HTML("<b>losses and brush</b>"), self.tumor_weight, self.gamma, self.brush_radius,
                          self.brush_value, self.clear_button, hint]),
        ], align_items="flex-start")  # fmt: skip
        self.share = ShareLink(self)
        super().__init__([columns, self.scores, self.figure, self.errors, self.share])
        self._draw()

    # ---- controls -----------------------------------------------------------------------------------------------
    def _on_settings(self, change: dict) -> None:
        if change["owner"] in (self.shift, self.grow, self.blur, self.confidence) and not self._applying_preset:
            self.preset.value = self._matching_preset()
        try:
            self.state.configure(tumor_share=self.tumor_share.value, row=self.row.value, col=self.col.value,
                                 shift=self.shift.value, grow=self.grow.value, blur=self.blur.value,
                                 confidence=self.confidence.value, tumor_weight=self.tumor_weight.value,
                                 gamma=self.gamma.value)  # fmt: skip
        finally:
            self._draw()

    def _on_preset(self, change: dict) -> None:
        if change["new"] == "custom":
            return
        shift, grow, blur, confidence = PRESETS[change["new"]]
        self._applying_preset = True
        try:
            with self.hold_sync():
                self.shift.value, self.grow.value = shift, max(grow, self.grow.min)
                self.blur.value, self.confidence.value = blur, confidence
        finally:
            self._applying_preset = False

    def _matching_preset(self) -> str:
        values = (self.shift.value, self.grow.value, self.blur.value, self.confidence.value)
        for name, (shift, grow, blur, confidence) in PRESETS.items():
            if (shift, max(grow, self.grow.min), blur, confidence) == values:
                return name
        return "custom"

    def _on_click(self, click: Click) -> None:
        row, col = int(round(click.y)), int(round(click.x))
        if click.trace == TRUTH and self.truth_click.value != "move the tumor":
            self.state.paint_truth(row, col, self.brush_radius.value, tumor=self.truth_click.value == "paint tumor")
            self._draw()
        elif click.trace == TRUTH:
            with self.hold_sync():
                self.row.value, self.col.value = row, col
        elif click.trace == PREDICTION:
            self.state.paint(row, col, self.brush_radius.value, self.brush_value.value)
            self._draw()

    def _clear(self) -> None:
        self.state.clear_strokes()
        self._draw()

    # ---- drawing ------------------------------------------------------------------------------------------------
    def _figure(self) -> go.Figure:
        titles = ["ground truth<br>(tumor red)", "prediction:<br>P(tumor)", "the losses", "", "",
                  *(_push_title(name) for name in LOSS_NAMES)]  # on lines this short five side by side fit 592 px
        # vertical spacing 0.3: room for the bars' slanted labels and, under them, the push maps' titles
        figure = make_subplots(rows=2, cols=5, specs=[[{}, {}, {"colspan": 3}, None, None], [{}] * 5],
                               subplot_titles=[t for t in titles if t], horizontal_spacing=0.03,
                               vertical_spacing=0.3)  # fmt: skip
        blank = np.zeros((self.state.size, self.state.size))
        hover = "row %{y}, col %{x}<br>%{z:.3f}<extra></extra>"
        figure.add_trace(go.Heatmap(z=blank, colorscale=[[0, "#f2e6ef"], [1, "#c0392b"]], zmin=0, zmax=1,
                                    showscale=False, name="truth", hovertemplate=hover), 1, 1)  # fmt: skip
        figure.add_trace(go.Heatmap(z=blank, colorscale="Reds", zmin=0, zmax=1, showscale=False, name="prediction",
                                    hovertemplate="row %{y}, col %{x}<br>P(tumor) %{z:.3f}<extra></extra>"),
                         1, 2)  # fmt: skip
        figure.add_trace(go.Bar(x=list(LOSS_NAMES), y=[0.0] * len(LOSS_NAMES), marker_color=list(LOSS_COLORS),
                                name="losses", texttemplate="%{y:.3f}", textposition="outside",
                                hovertemplate="%{x}: %{y:.4f}<extra></extra>"), 1, 3)  # fmt: skip
        for col, name in enumerate(LOSS_NAMES, start=1):
            hover = "row %{y}, col %{x}<br>push %{z:.3f} of the largest<extra></extra>"
            figure.add_trace(go.Heatmap(z=blank, colorscale="RdBu_r", zmid=0, showscale=False, name=f"push {name}",
                                        hovertemplate=hover), 2, col)  # fmt: skip
        for axis in (1, 2, 4, 5, 6, 7, 8):  # the maps: square pixels, row 0 at the top
            suffix = "" if axis == 1 else str(axis)
            figure.update_layout({f"xaxis{suffix}": dict(visible=False, constrain="domain"),
                                  f"yaxis{suffix}": dict(visible=False, autorange="reversed", constrain="domain",
                                                         scaleanchor=f"x{suffix}")})  # fmt: skip
        # the losses' axis on the right: its ticks clear of the prediction (the gap between them is 17 px at 592 px)
        figure.update_layout(yaxis3=dict(title_text="loss", rangemode="tozero", side="right"), template=TEMPLATE,
                             width=1120, height=600, margin=dict(l=10, r=50, t=50, b=10), showlegend=False)  # fmt: skip
        for annotation in figure.layout.annotations:
            annotation.font.size = 12
        return figure

    def _draw(self) -> None:
        state = self.state
        with self.figure.batch():
            self.figure.update_trace(TRUTH, z=state.truth)
            self.figure.update_trace(PREDICTION, z=state.probs.round(4))
            self.figure.update_trace(BARS, y=[state.readings[name].value for name in LOSS_NAMES])
            for offset, name in enumerate(LOSS_NAMES):
                push = state.readings[name].push
                scale = float(np.abs(push).max()) or 1.0
                self.figure.update_trace(BARS + 1 + offset, z=(push / scale).round(3), zmin=-1, zmax=1)
                share = state.readings[name].tumor_share
                self.figure.set_subplot_title(3 + offset, _push_title(name, share))
        scores = state.scores
        self.scores.value = (
            f"<div style='font-size:14px'>argmax of this prediction: pixel accuracy <b>{scores.pixel_accuracy:.1%}"
            f"</b> · tumor IoU <b>{scores.iou[1]:.2f}</b> · tumor Dice <b>{scores.dice[1]:.2f}</b> "
            f"<span style='color:#555'>(the tumor covers {state.truth.mean():.1%} of the pixels; the push maps are "
            "scaled to their own largest value: red raises the tumor score, blue lowers it)</span></div>"
        )


def moved(mask: np.ndarray, shift: int) -> np.ndarray:
    """``mask (H, W)`` moved ``shift`` pixels to the right (left if negative); what leaves the square is gone."""
    result = np.zeros_like(mask)
    width = mask.shape[1]
    if abs(shift) < width:
        if shift >= 0:
            result[:, shift:] = mask[:, : width - shift]
        else:
            result[:, :shift] = mask[:, -shift:]
    return result


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask (H, W)`` bool grown by ``pixels``: every pixel within that Euclidean distance of a True pixel.

    Negative ``pixels`` shrink it: a True pixel stays if every False pixel, and the square's edge (outside counts
    as False), is more than ``-pixels`` away. A round tumor grown by ``g`` is about the disc of radius ``r + g``
    (a few border pixels apart); a painted one keeps its shape, and a small one vanishes when shrunk by more than its
    radius.
    """
    if pixels == 0 or not mask.any():
        return mask.copy()
    padded = np.pad(mask, 1)  # a ring of stroma around the square
    if pixels > 0:
        distance = ndimage.distance_transform_edt(~padded)  # to the nearest True pixel
        return distance[1:-1, 1:-1] <= pixels
    distance = ndimage.distance_transform_edt(padded)  # to the nearest False pixel
    return distance[1:-1, 1:-1] > -pixels


def _percent(share: float) -> str:
    return "—" if math.isnan(share) else f"{share:.0%}"


def _push_title(name: str, share: float | None = None) -> str:
    """A push map's title in short lines, e.g. "push of / weighted / cross-entropy: / 51% on tumor": five maps side
    by side are about 100 px wide each in a 592 px output."""
    title = "push of<br>" + name.replace("weighted ", "weighted<br>").replace(" + ", "<br>+ ")
    return title if share is None else f"{title}:<br>{_percent(share)} on tumor"
