"""Look inside a prediction: probabilities per class, the argmax overlay, where it is wrong, and the scores.

For a validation tile the viewer shows the image, its ground truth, the prediction over the image (opacity
slider), an error map for one class (false positives red, false negatives blue), one probability map per class,
the confusion matrix and per-class IoU and Dice. The learner can also upload an image of their own (step 7 of
the course's pipeline): it is predicted tile by tile with sliding windows when it is larger than a training tile.
For generated tiles, "test on lab" shows the same validation tissue as another lab stains and scans it
(``segtutor.data.LABS``), with the score over all validation tiles next to the training lab's: domain shift.

The numbers come from the engine (:func:`segtutor.predict.analyse_prediction`, :func:`segtutor.predict.error_map`,
:func:`segtutor.data.read_image_bytes` for uploads); the view (:class:`PredictionViewer`) only draws them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import LABS, FileFormatError, TissueDataset, class_colors, class_names_of, read_image_bytes
from segtutor.figures import class_legend_html, error_picture, image_trace, png_uri, style
from segtutor.models import MIN_SIZE
from segtutor.predict import PredictionAnalysis, analyse_prediction, error_map, overlay, score_dataset
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.live_figure import LiveFigure

MAX_HOVER_PIXELS = 256 * 256  # larger pictures hover with row and column only (no class names per pixel)
MAX_MAP_SIDE = 192  # probability maps are sent at most this many values across (hover keeps true coordinates)


def prediction_figure(class_names: Sequence[str]) -> go.Figure:
    """Empty figure of the viewer: row 1 image, truth, prediction, error map; row 2 probabilities, confusion matrix.

    Traces, by name: "image", "ground truth", "prediction", "errors", "P(<class>)" for each class, "confusion".
    """
    num_classes = len(class_names)
    cols = max(4, num_classes + 1)
    top = ["image", "ground truth", "prediction (argmax)", "errors"] + [""] * (cols - 4)
    bottom = [f"P({name})" for name in class_names] + [""] * (cols - num_classes - 1) + ["confusion matrix"]
    figure = make_subplots(rows=2, cols=cols, subplot_titles=top + bottom, horizontal_spacing=0.04,
                           vertical_spacing=0.1)  # fmt: skip
    blank = np.full((MIN_SIZE, MIN_SIZE, 3), 255, np.uint8)
    for col, name in enumerate(["image", "ground truth", "prediction", "errors"], start=1):  # fmt: skip
        figure.add_trace(image_trace(blank, name), 1, col)
    for col, name in enumerate(class_names, start=1):
        figure.add_trace(go.Heatmap(z=[[0.0]], coloraxis="coloraxis", name=f"P({name})",
                                    hovertemplate=f"row %{{y}}, col %{{x}}<br>P({name}) = %{{z:.3f}}<extra></extra>"),
                         2, col)  # fmt: skip
    confusion = go.Heatmap(
        z=np.zeros((num_classes, num_classes)), x=list(class_names), y=list(class_names), colorscale="Blues", zmin=0,
        zmax=1, showscale=False, texttemplate="%{text}", text=[[""] * num_classes] * num_classes, name="confusion",
        hovertemplate="true %{y}, predicted %{x}: %{text} pixels<extra></extra>",
    )  # fmt: skip
    figure.add_trace(confusion, 2, cols)
    for index in range(1, 2 * cols + 1):
        row, col = (index - 1) // cols + 1, (index - 1) % cols + 1
        suffix = "" if index == 1 else str(index)
        if row == 2 and col == cols:  # the confusion matrix: class names on its axes
            figure.update_layout({f"xaxis{suffix}": dict(title_text="predicted", side="bottom"),
                                  f"yaxis{suffix}": dict(title_text="true", autorange="reversed")})  # fmt: skip
        else:
            figure.update_layout({f"xaxis{suffix}": dict(visible=False, constrain="domain"),
                                  f"yaxis{suffix}": dict(visible=False, autorange="reversed", constrain="domain",
                                                         scaleanchor=f"x{suffix}")})  # fmt: skip
    last_map = figure.layout[f"xaxis{cols + num_classes}"].domain  # the colour bar goes right of the last map
    style(figure)
    figure.update_layout(
        width=1120, height=560, margin=dict(l=10, r=10, t=40, b=40),
        coloraxis=dict(colorscale="RdBu_r", cmin=0, cmax=1,  # as the notebooks draw p(tumor): white = unsure (0.5)
                       colorbar=dict(title=dict(text="probability", side="right"),  # beside the bar: clear of its "1"
                                     len=0.45, y=0.22, x=last_map[1] + 0.01,
                                     thickness=15)),
    )  # fmt: skip
    for annotation in figure.layout.annotations:
        annotation.font.size = 13
    return figure


class PredictionViewer(widgets.VBox):
    """What a trained model predicts on validation tiles, and on an image the learner uploads.

    Args:
        model: the trained model.
        dataset: validation ``(image (C, H, W), mask (H, W))`` pairs.
        class_names: one per class; default ``dataset.class_names``.
        tile_size: larger images are predicted with sliding windows of this size (default: the tiles' size).
        max_upload_bytes: larger uploads are refused with a message.
        max_upload_side: uploads wider or taller than this are refused with a message.

    Python API: :meth:`show_tile`, :meth:`predict_file` (what the upload control calls), :meth:`set_model`,
    :meth:`show_lab` (what the "test on lab" control calls, for a :class:`~segtutor.data.TissueDataset`);
    :attr:`analysis` holds the numbers on screen, :attr:`lab_scores` the score of every lab shown so far.

    Example:
        >>> viewer = PredictionViewer(trained_model, TissueDataset(8, seed=1))
        >>> viewer.analysis.scores.iou
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        *,
        class_names: Sequence[str] | None = None,
        tile_size: int | None = None,
        max_upload_bytes: int = 8_000_000,
        max_upload_side: int = 1024,
    ) -> None:
        self.model = model
        self.dataset = dataset
        self.class_names = class_names_of(dataset, class_names)
        self.colors = getattr(dataset, "class_colors", None) or class_colors(self.class_names)
        self.tile_size = tile_size if tile_size is not None else int(dataset[0][0].shape[-1])
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_side = max_upload_side
        self.analysis: PredictionAnalysis | None = None
        self.source = ""  # what is on screen: "tile 3" or the uploaded file's name
        # Test on another lab: generated tiles only; the datasets' own lab is the one trained on.
        self.home_dataset = dataset
        self.lab_scores: dict[str, object] = {}  # lab name -> SegmentationScores over all validation tiles
        labs = isinstance(dataset, TissueDataset) and dataset.lab in LABS.values()
        self.lab = widgets.ToggleButtons(options=list(LABS), value=dataset.lab.name if labs else None,
                                         description="test on lab", style={"button_width": "auto"},
                                         layout=widgets.Layout(display=None if labs else "none"))  # fmt: skip
        self.lab_message = widgets.HTML()

        self.tile = widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="validation tile",
                                      continuous_update=False, style={"description_width": "100px"})  # fmt: skip
        self.opacity = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="overlay opacity",
                                           style={"description_width": "initial"})  # fmt: skip
        self.error_class = widgets.Dropdown(options=[(name, c) for c, name in enumerate(self.class_names)],
                                            value=min(1, len(self.class_names) - 1), description="errors of",
                                            layout=widgets.Layout(width="220px"))  # fmt: skip
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload an image",
                                         layout=widgets.Layout(width="auto"))  # as wide as its text  # fmt: skip
        self.message = widgets.HTML()
        self.scores = widgets.HTML()
        self.errors = widgets.Output()
        self.figure = LiveFigure(prediction_figure(self.class_names))
        self.figure.add_class("segtutor-prediction")

        guard = report_errors(self.errors)
        self.tile.observe(guard(lambda change: self.show_tile(change["new"])), names="value")
        self.opacity.observe(guard(lambda _: self._draw_overlay()), names="value")
        self.error_class.observe(guard(lambda _: self._draw_errors()), names="value")
        self.upload.observe(guard(self._on_upload), names="value")
        self.lab.observe(guard(lambda change: self.show_lab(change["new"])), names="value")
        self.show_tile(0)
        legend = ("<span style='font-size:12px'>errors: <b style='color:rgb(214,39,40)'>red</b> false positive "
                  "(predicted this class, truly another) · <b style='color:rgb(31,119,180)'>blue</b> false negative "
                  "(truly this class, predicted another)" + (" · <b style='color:rgb(200,160,0)'>yellow</b> wrong "
                  "between two other classes" if len(self.class_names) > 2 else "") + "</span>")  # fmt: skip
        super().__init__([
            row([self.tile, self.opacity, self.error_class]),
            row([self.lab, self.lab_message]),
            row([self.upload, self.message]),
            self.figure, widgets.HTML(class_legend_html(self.class_names, self.colors, alpha=self.opacity.value)),
            widgets.HTML(legend), self.scores, self.errors,
        ])  # fmt: skip

    # ---- Python API ----------------------------------------------------------------------------------------
    def set_model(self, model: nn.Module) -> None:
        """Show the predictions of ``model`` (e.g. after more training) on the current tile."""
        self.model = model
        self.lab_scores = {}
        if self.lab_message.value:
            self.show_lab(self.lab.value)
        self.show_tile(self.tile.value)

    def show_lab(self, lab: str) -> None:
        """Show the validation tiles as lab ``lab`` stains and scans them, and score all of them there.

        The message compares the mean IoU over every validation tile with that on the training lab's tiles.
        """
        if not isinstance(self.home_dataset, TissueDataset):
            raise TypeError(f"test on another lab needs generated tiles (a TissueDataset), not "
                            f"{type(self.home_dataset).__name__}")  # fmt: skip
        if self.lab.value != lab:
            self.lab.value = lab  # the control's observer calls back here
            return
        home = self.home_dataset.lab.name
        self.dataset = self.home_dataset if lab == home else self.home_dataset.with_lab(lab)
        for name, data in ((home, self.home_dataset), (lab, self.dataset)):
            if name not in self.lab_scores:
                self.lab_scores[name] = score_dataset(self.model, data, class_names=self.class_names)
        ours, theirs = self.lab_scores[home], self.lab_scores[lab]
        self.lab_message.value = (f"mean IoU over the {len(self.dataset)} validation tiles: lab {home} (the "
                                  f"validation set's own) {ours.mean_iou:.3f}" + ("" if lab == home else
                                  f" → lab {lab} <b>{theirs.mean_iou:.3f}</b> "
                                  f"({theirs.mean_iou - ours.mean_iou:+.3f})"))  # fmt: skip
        self.show_tile(self.tile.value)

    def show_tile(self, index: int) -> None:
        """Predict validation tile ``index`` and show everything about it."""
        image, mask = self.dataset[index]
        self.source = f"tile {index}"
        self.message.value = ""
        self._show(analyse_prediction(self.model, image, mask, self.class_names, tile_size=self.tile_size))

    def predict_file(self, content: bytes, name: str = "your image") -> bool:
        """Predict an uploaded file; a file that is not a usable image shows a message instead.

        Returns:
            True if the image was predicted, False if the message explains why not.
        """
        try:
            rgb = read_image_bytes(bytes(content), name=name, max_bytes=self.max_upload_bytes,
                                   max_side=self.max_upload_side, min_side=MIN_SIZE)  # fmt: skip
        except FileFormatError as error:
            self.message.value = f"<span style='color:#cb181d'>{html.escape(str(error))}</span>"
            return False
        height, width = rgb.shape[:2]
        tiled = max(height, width) > self.tile_size
        how = f"with sliding windows of {self.tile_size} pixels" if tiled else "in one pass"
        # the line is sent to the page now, before the work: a large image takes seconds
        self.message.value = f"<b>{html.escape(name)}</b>: {width}×{height} pixels, predicting {how}…"
        try:
            analysis = analyse_prediction(self.model, rgb, None, self.class_names, tile_size=self.tile_size)
        except ValueError as error:  # a model that predicts NaN, say
            self.message.value = f"<span style='color:#cb181d'>{html.escape(name)}: {html.escape(str(error))}</span>"
            return False
        self.source = name
        self.message.value = (f"<b>{html.escape(name)}</b>: {width}×{height} pixels, predicted {how}. "
                              "Move the tile slider to go back to the validation tiles.")  # fmt: skip
        self._show(analysis)
        return True

    # ---- drawing -------------------------------------------------------------------------------------------
    def _show(self, analysis: PredictionAnalysis) -> None:
        self.analysis = analysis
        num_classes = len(self.class_names)
        with self.figure.batch():
            self.figure.update_trace("image", source=png_uri(analysis.image))
            if analysis.mask is not None:
                truth = overlay(analysis.image, analysis.mask, self.colors, 0.5)
                self.figure.update_trace("ground truth", source=png_uri(truth))
            else:
                self.figure.update_trace("ground truth", source=png_uri(np.full_like(analysis.image, 255)))
            self._draw_overlay()
            self._hover_texts(analysis)
            self._draw_errors()
            for c, name in enumerate(self.class_names):
                z, step = _display_map(analysis.probs[c])
                self.figure.update_trace(f"P({name})", z=z, x0=0, dx=step, y0=0, dy=step)
            if analysis.confusion is not None:
                matrix = analysis.confusion.double()
                shares = matrix / matrix.sum(1, keepdim=True).clamp(min=1)  # share of each true class
                self.figure.update_trace("confusion", z=shares.numpy(), text=analysis.confusion.numpy().astype(str))
            else:
                self.figure.update_trace("confusion", z=np.zeros((num_classes, num_classes)),
                                         text=[[""] * num_classes] * num_classes)  # fmt: skip
            has_truth = analysis.mask is not None
            self.figure.set_subplot_title(1, "ground truth" if has_truth else "ground truth: none for an upload")
            self.figure.set_subplot_title(0, f"image ({self.source})")
        self.scores.value = (analysis.scores.to_html(self.colors) if analysis.scores is not None else
                             "<i>No ground truth for an uploaded image, so no IoU or Dice: the probability maps "
                             "show how sure the model is.</i>")  # fmt: skip

    def _draw_overlay(self) -> None:
        if self.analysis is not None:
            picture = overlay(self.analysis.image, self.analysis.preds, self.colors, self.opacity.value)
            self.figure.update_trace("prediction", source=png_uri(picture))

    def _hover_texts(self, analysis: PredictionAnalysis) -> None:
        """Hovering a pixel of the truth or the prediction names its class (and the prediction's probability)."""
        height, width = analysis.preds.shape
        if height * width > MAX_HOVER_PIXELS:  # a large upload: the texts would outweigh the picture
            texts = {"ground truth": None, "prediction": None}
        else:
            names = np.array(self.class_names, dtype=object)
            sure = analysis.probs.max(0).values.numpy()  # (H, W) the probability of the predicted class
            predicted = names[analysis.preds.numpy()]
            texts = {"prediction": [[f"{name} (p = {p:.2f})" for name, p in zip(*row)] for row in zip(predicted, sure)]}
            if analysis.mask is not None:
                truth = analysis.mask.numpy()
                known = np.where(truth < len(names), truth, 0)
                texts["ground truth"] = np.where(truth < len(names), names[known], "not annotated").tolist()
            else:
                texts["ground truth"] = None
        for name, text in texts.items():
            rows = f"{name}: %{{text}}<br>" if text is not None else f"{name}<br>"
            self.figure.update_trace(name, text=text, hovertemplate=rows + "row %{y:.0f}, col %{x:.0f}<extra></extra>")

    def _draw_errors(self) -> None:
        if self.analysis is None:
            return
        if self.analysis.mask is None:
            self.figure.update_trace("errors", source=png_uri(np.full_like(self.analysis.image, 255)))
            self.figure.set_subplot_title(3, "errors: need a ground truth")
            return
        codes = error_map(self.analysis.mask, self.analysis.preds, self.error_class.value)
        self.figure.update_trace("errors", source=png_uri(error_picture(self.analysis.image, codes)))
        self.figure.set_subplot_title(3, f"errors of {self.class_names[self.error_class.value]}")

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return  # our own reset below
        entry = files[0]
        self.predict_file(entry["content"], entry.get("name", "your image"))
        self.upload.value = ()  # ready for the next file (the same one again, too)


def _display_map(values: torch.Tensor) -> tuple[np.ndarray, int]:
    """A probability map thinned to at most ``MAX_MAP_SIDE`` values per side, rounded: (map, step in pixels)."""
    step = max(1, math.ceil(max(values.shape) / MAX_MAP_SIDE))
    return np.round(values[::step, ::step].numpy(), 3), step
