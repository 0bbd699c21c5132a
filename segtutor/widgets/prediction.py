"""Look inside a prediction: probabilities per class, the argmax overlay, where it is wrong, and the scores.

For a validation tile the viewer shows the image, its ground truth, the prediction over the image (opacity
slider), an error map for one class (false positives red, false negatives blue), one probability map per class,
the confusion matrix and per-class IoU and Dice. The learner can also upload an image of their own (step 7 of
the course's pipeline): it is predicted tile by tile with sliding windows when it is larger than a training tile.

The numbers come from pure functions (:func:`analyse_prediction`, :func:`error_map`, :func:`read_upload`), the
view (:class:`PredictionViewer`) only draws them.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, UnidentifiedImageError
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import class_colors
from segtutor.metrics import IGNORE_INDEX, SegmentationScores, confusion_matrix
from segtutor.models import MIN_SIZE
from segtutor.predict import overlay, predict_proba, sliding_window_proba
from segtutor.widgets.controls import report_errors
from segtutor.widgets.figures import LiveFigure
from segtutor.widgets.pictures import as_rgb, image_trace, png_uri
from segtutor.widgets.theme import style

# Codes of the error map of one class c.
TRUE_NEGATIVE = 0  # neither truth nor prediction is c
TRUE_POSITIVE = 1  # both are c
FALSE_POSITIVE = 2  # predicted c, truly another class
FALSE_NEGATIVE = 3  # truly c, predicted another class
OTHER_ERROR = 4  # wrong, but neither side is c (three or more classes)
ERROR_COLORS = {FALSE_POSITIVE: (214, 39, 40), FALSE_NEGATIVE: (31, 119, 180), OTHER_ERROR: (240, 200, 0)}
MAX_MAP_SIDE = 192  # probability maps are sent at most this many values across (hover keeps true coordinates)


class UploadError(ValueError):
    """An uploaded file that cannot be predicted on; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class PredictionAnalysis:
    """Everything the viewer shows about one image."""

    image: np.ndarray  # uint8 (H, W, 3)
    probs: torch.Tensor  # (K, H, W) float32, from segtutor.predict
    preds: torch.Tensor  # (H, W) int64, probs.argmax(0)
    mask: torch.Tensor | None  # (H, W) int64 ground truth, None for an uploaded image
    confusion: torch.Tensor | None  # (K, K) int64, rows true classes, columns predicted
    scores: SegmentationScores | None  # per-class IoU and Dice, pixel accuracy


def analyse_prediction(
    model: nn.Module,
    image: torch.Tensor | np.ndarray,
    mask: torch.Tensor | None,
    class_names: Sequence[str],
    *,
    tile_size: int = 128,
    ignore_index: int = IGNORE_INDEX,
) -> PredictionAnalysis:
    """Predict ``image`` and, when a ``mask`` is given, score the prediction against it.

    Args:
        model: a segmentation model.
        image: float ``(C, H, W)`` in [0, 1] or uint8 ``(H, W, 3)``.
        mask: ``(H, W)`` true classes, or None.
        class_names: one name per class.
        tile_size: images larger than this are predicted with :func:`segtutor.predict.sliding_window_proba`.
        ignore_index: mask value of unlabelled pixels.
    """
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    if max(height, width) > tile_size:
        probs = sliding_window_proba(model, image, tile_size=tile_size, overlap=tile_size // 4)
    else:
        probs = predict_proba(model, image)
    preds = probs.argmax(0)  # (H, W)
    confusion = scores = None
    if mask is not None:
        mask = torch.as_tensor(mask).long()
        confusion = confusion_matrix(mask, preds, len(class_names), ignore_index=ignore_index)
        scores = SegmentationScores.from_matrix(confusion, list(class_names))
    return PredictionAnalysis(rgb, probs, preds, mask, confusion, scores)


def error_map(mask: torch.Tensor | np.ndarray, preds: torch.Tensor | np.ndarray, class_index: int, *,
              ignore_index: int = IGNORE_INDEX) -> np.ndarray:  # fmt: skip
    """Where a prediction is right and wrong about class ``class_index``.

    Returns:
        ``(H, W)`` uint8 codes: ``TRUE_NEGATIVE``, ``TRUE_POSITIVE``, ``FALSE_POSITIVE``, ``FALSE_NEGATIVE``,
        ``OTHER_ERROR`` (wrong between two other classes), and ``ignore_index`` where the mask is unlabelled.
    """
    mask, preds = np.asarray(mask), np.asarray(preds)
    if mask.shape != preds.shape:
        raise ValueError(f"mask {mask.shape} and preds {preds.shape} must have the same shape")
    truly, predicted = mask == class_index, preds == class_index
    codes = np.full(mask.shape, TRUE_NEGATIVE, dtype=np.uint8)
    codes[(mask != preds) & ~truly & ~predicted] = OTHER_ERROR
    codes[truly & predicted] = TRUE_POSITIVE
    codes[predicted & ~truly] = FALSE_POSITIVE
    codes[truly & ~predicted] = FALSE_NEGATIVE
    codes[mask == ignore_index] = ignore_index
    return codes


def error_picture(image: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The image in pale grey with false positives, false negatives and other errors painted on: uint8 (H, W, 3)."""
    grey = image.astype(np.float32).mean(axis=2, keepdims=True)  # (H, W, 1)
    picture = np.repeat(150 + 0.4 * grey, 3, axis=2)  # pale, so the colours stand out
    for code, color in ERROR_COLORS.items():
        picture[codes == code] = color
    return picture.clip(0, 255).astype(np.uint8)


def read_upload(content: bytes, *, max_bytes: int = 8_000_000, max_side: int = 1024) -> np.ndarray:
    """An uploaded file as an RGB image, uint8 ``(H, W, 3)``, or an :class:`UploadError` that says what to fix.

    Args:
        content: the file's bytes.
        max_bytes: larger files are refused.
        max_side: images wider or taller than this are refused (predicting them would take long).
    """
    if len(content) == 0:
        raise UploadError("the file is empty: upload a PNG, JPEG or TIFF image")
    if len(content) > max_bytes:
        raise UploadError(f"the file has {len(content) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB: "
                          "upload a crop of the region you are interested in")  # fmt: skip
    try:
        with Image.open(io.BytesIO(content)) as picture:
            width, height = picture.size
            if max(width, height) > max_side:
                raise UploadError(f"the image is {width}×{height} pixels; the limit is {max_side} pixels per side: "
                                  "crop or downscale it first")  # fmt: skip
            rgb = np.array(picture.convert("RGB"))  # a writable copy
    except UploadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise UploadError(f"this file is not an image segtutor can read ({type(error).__name__}): upload a PNG, "
                          "JPEG or TIFF picture of tissue") from error  # fmt: skip
    if min(rgb.shape[:2]) < MIN_SIZE:
        raise UploadError(f"the image is {rgb.shape[1]}×{rgb.shape[0]} pixels; the models need at least "
                          f"{MIN_SIZE}×{MIN_SIZE}: upload a larger image")  # fmt: skip
    return rgb


def prediction_figure(class_names: Sequence[str]) -> go.Figure:
    """Empty figure of the viewer: row 1 image, truth, prediction, error map; row 2 probabilities, confusion matrix.

    Traces: 0 image, 1 truth, 2 prediction, 3 error map, 4 … 4+K-1 probability of each class, 4+K confusion.
    """
    num_classes = len(class_names)
    cols = max(4, num_classes + 1)
    top = ["image", "ground truth", "prediction (argmax)", "errors"] + [""] * (cols - 4)
    bottom = [f"P({name})" for name in class_names] + [""] * (cols - num_classes - 1) + ["confusion matrix"]
    figure = make_subplots(rows=2, cols=cols, subplot_titles=top + bottom, horizontal_spacing=0.04,
                           vertical_spacing=0.1)  # fmt: skip
    blank = np.full((MIN_SIZE, MIN_SIZE, 3), 255, np.uint8)
    for col, name in enumerate(["image", "ground truth", "prediction", "errors"], start=1):
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
        coloraxis=dict(colorscale="Viridis", cmin=0, cmax=1,
                       colorbar=dict(title="P", len=0.45, y=0.22, x=last_map[1] + 0.01, thickness=15)),
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

    Python API: :meth:`show_tile`, :meth:`predict_file` (what the upload control calls), :meth:`set_model`;
    :attr:`analysis` holds the numbers on screen.

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
        names = class_names if class_names is not None else getattr(dataset, "class_names", None)
        if names is None:
            raise ValueError("give class_names, e.g. ['stroma', 'tumor'] (the dataset has no .class_names)")
        self.model = model
        self.dataset = dataset
        self.class_names = list(names)
        self.colors = getattr(dataset, "class_colors", None) or class_colors(self.class_names)
        self.tile_size = tile_size if tile_size is not None else int(dataset[0][0].shape[-1])
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_side = max_upload_side
        self.analysis: PredictionAnalysis | None = None
        self.source = ""  # what is on screen: "tile 3" or the uploaded file's name

        self.tile = widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="validation tile",
                                      continuous_update=False, style={"description_width": "100px"})  # fmt: skip
        self.opacity = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="overlay opacity",
                                           style={"description_width": "initial"})  # fmt: skip
        self.error_class = widgets.Dropdown(options=[(name, c) for c, name in enumerate(self.class_names)],
                                            value=min(1, len(self.class_names) - 1), description="errors of",
                                            layout=widgets.Layout(width="220px"))  # fmt: skip
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload an image",
                                         layout=widgets.Layout(width="170px"))  # fmt: skip
        self.message = widgets.HTML()
        self.scores = widgets.HTML()
        self.errors = widgets.Output()
        self.figure = LiveFigure(prediction_figure(self.class_names))
        self.figure.add_class("segtutor-prediction")
        self._titles = [dict(annotation) for annotation in self.figure.layout["annotations"]]
        self._cols = max(4, len(self.class_names) + 1)

        guard = report_errors(self.errors)
        self.tile.observe(guard(lambda change: self.show_tile(change["new"])), names="value")
        self.opacity.observe(guard(lambda _: self._draw_overlay()), names="value")
        self.error_class.observe(guard(lambda _: self._draw_errors()), names="value")
        self.upload.observe(guard(self._on_upload), names="value")
        self.show_tile(0)
        legend = ("<span style='font-size:12px'>errors: <b style='color:rgb(214,39,40)'>red</b> false positive "
                  "(predicted this class, truly another) · <b style='color:rgb(31,119,180)'>blue</b> false negative "
                  "(truly this class, predicted another) · <b style='color:rgb(200,160,0)'>yellow</b> wrong "
                  "between two other classes</span>")  # fmt: skip
        super().__init__([
            widgets.HBox([self.tile, self.opacity, self.error_class]),
            widgets.HBox([self.upload, self.message], layout=widgets.Layout(align_items="center")),
            self.figure, widgets.HTML(legend), self.scores, self.errors,
        ])  # fmt: skip

    # ---- Python API ----------------------------------------------------------------------------------------
    def set_model(self, model: nn.Module) -> None:
        """Show the predictions of ``model`` (e.g. after more training) on the current tile."""
        self.model = model
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
            rgb = read_upload(bytes(content), max_bytes=self.max_upload_bytes, max_side=self.max_upload_side)
            analysis = analyse_prediction(self.model, rgb, None, self.class_names, tile_size=self.tile_size)
        except UploadError as error:
            self.message.value = f"<span style='color:#cb181d'>{html.escape(name)}: {html.escape(str(error))}</span>"
            return False
        self.source = name
        height, width = rgb.shape[:2]
        how = "with sliding windows" if max(height, width) > self.tile_size else "in one pass"
        self.message.value = (f"<b>{html.escape(name)}</b>: {width}×{height} pixels, predicted {how}. "
                              "Move the tile slider to go back to the validation tiles.")  # fmt: skip
        self._show(analysis)
        return True

    # ---- drawing -------------------------------------------------------------------------------------------
    def _show(self, analysis: PredictionAnalysis) -> None:
        self.analysis = analysis
        num_classes = len(self.class_names)
        with self.figure.batch():
            self.figure.update_trace(0, source=png_uri(analysis.image))
            if analysis.mask is not None:
                self.figure.update_trace(1, source=png_uri(overlay(analysis.image, analysis.mask, self.colors, 0.5)))
            else:
                self.figure.update_trace(1, source=png_uri(np.full_like(analysis.image, 255)))
            self._draw_overlay()
            self._draw_errors()
            for c in range(num_classes):
                z, step = _display_map(analysis.probs[c])
                self.figure.update_trace(4 + c, z=z, x0=0, dx=step, y0=0, dy=step)
            if analysis.confusion is not None:
                matrix = analysis.confusion.double()
                shares = matrix / matrix.sum(1, keepdim=True).clamp(min=1)  # share of each true class
                self.figure.update_trace(4 + num_classes, z=shares.numpy(), text=analysis.confusion.numpy().astype(str))
            else:
                self.figure.update_trace(4 + num_classes, z=np.zeros((num_classes, num_classes)),
                                         text=[[""] * num_classes] * num_classes)  # fmt: skip
            self._set_title(1, "ground truth" if analysis.mask is not None else "ground truth: none for an upload")
            self._set_title(0, f"image ({self.source})")
        self.scores.value = _scores_html(analysis.scores, self.class_names, self.colors)

    def _draw_overlay(self) -> None:
        if self.analysis is not None:
            picture = overlay(self.analysis.image, self.analysis.preds, self.colors, self.opacity.value)
            self.figure.update_trace(2, source=png_uri(picture))

    def _draw_errors(self) -> None:
        if self.analysis is None:
            return
        if self.analysis.mask is None:
            self.figure.update_trace(3, source=png_uri(np.full_like(self.analysis.image, 255)))
            self._set_title(3, "errors: need a ground truth")
            return
        codes = error_map(self.analysis.mask, self.analysis.preds, self.error_class.value)
        self.figure.update_trace(3, source=png_uri(error_picture(self.analysis.image, codes)))
        self._set_title(3, f"errors of {self.class_names[self.error_class.value]}")

    def _set_title(self, index: int, text: str) -> None:
        self._titles[index] = {**self._titles[index], "text": text}
        self.figure.update_layout(annotations=self._titles)

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


def _scores_html(scores: SegmentationScores | None, class_names: Sequence[str], colors) -> str:
    if scores is None:
        return ("<i>No ground truth for an uploaded image, so no IoU or Dice: the probability maps show how sure "
                "the model is.</i>")  # fmt: skip
    total = max(sum(scores.class_pixels), 1)
    rows = "".join(
        f"<tr><td><span style='color:rgb{tuple(color)}'>■</span> {html.escape(name)}</td>"
        f"<td>{pixels / total:.1%}</td><td><b>{iou:.3f}</b></td><td>{dice:.3f}</td></tr>"
        for name, color, pixels, iou, dice in zip(class_names, colors, scores.class_pixels, scores.iou, scores.dice)
    )
    return (
        "<table style='font-size:13px'><tr><th style='text-align:left'>class</th><th>share of pixels</th><th>IoU</th>"
        f"<th>Dice</th></tr>{rows}</table><span style='font-size:13px'>pixel accuracy {scores.pixel_accuracy:.3f} · "
        f"mean IoU {scores.mean_iou:.3f}</span>"
    )
