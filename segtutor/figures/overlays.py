"""Class overlays a pathologist can read: tiles with their labels painted on, a legend, hover, and axes in µm.

:func:`overlay_row` draws a row of panels, each an image with a label map (a mask or a prediction) painted on
it by :func:`segtutor.predict.overlay`, or the image alone. Every such figure carries

- a **legend** naming each class, its swatch in the colour the class shows on screen (the median of its
  overlaid pixels: a bluish green mixed over pink stroma turns teal, a grey over glass stays grey);
- **hover** that names the pixel's class, and the probability the model gave it where ``probs`` are given
  (not the RGBA tuple of the pixel);
- **axes in µm** where the pixel size is known (``microns_per_pixel``), else axes that say "pixels".

Hover text for large images (a whole slide) is given on a coarser grid, one cell per few pixels, so that the
figure stays small enough to send.

Example:
    >>> overlay_row(image, [None, mask, preds], ["tile", "truth", "prediction"], class_names=["stroma", "tumor"],
    ...             probs=[None, None, probs], microns_per_pixel=1.0)

:func:`compare_predictions` puts several predictions of one image next to its truth, each titled with its IoU and
boundary F-score (notebook 04: a UNet without and with its skip connections).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from segtutor.data import IGNORE_INDEX, class_colors
from segtutor.figures.pictures import EOSIN_PINK, image_row
from segtutor.metrics import boundary_scores, confusion_matrix, iou_per_class
from segtutor.predict import ImageLike, image_to_rgb, overlay

MAX_HOVER_CELLS = 128 * 128  # hover text per pixel up to this size; larger images get it on a coarser grid
TRANSPARENT = [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]]


def on_stain(color: Sequence[int], alpha: float) -> tuple[int, int, int]:
    """``color`` mixed at ``alpha`` over a typical eosin-pink stroma pixel: how an overlay colour looks on tissue."""
    return tuple(round((1 - alpha) * e + alpha * c) for e, c in zip(EOSIN_PINK, color))


def legend_colors(
    pictures: Sequence[np.ndarray],
    labels: Sequence[np.ndarray | torch.Tensor | None],
    colors: Sequence[Sequence[int]],
    alpha: float,
) -> list[tuple[int, int, int]]:
    """The colour each class shows on screen: the median of its overlaid pixels in ``pictures`` (uint8
    ``(H, W, 3)``, one per label map; None skipped), or :func:`on_stain` for a class no panel shows.

    The median of what is drawn, not the pure colour: a grey over glass stays grey, a bluish green over pink
    stroma turns teal, and the legend shows what the eye compares it with.
    """
    shown: list[list[np.ndarray]] = [[] for _ in colors]
    for picture, label in zip(pictures, labels):
        if label is None:
            continue
        label = np.asarray(torch.as_tensor(label).cpu())
        for index in np.unique(label[label != IGNORE_INDEX]):
            shown[int(index)].append(picture[label == index])  # (n, 3)
    return [tuple(int(v) for v in np.median(np.concatenate(pixels), axis=0).round()) if pixels
            else on_stain(color, alpha) for pixels, color in zip(shown, colors)]  # fmt: skip


def hover_text(
    labels: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    probs: np.ndarray | torch.Tensor | None = None,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Each pixel's class name, and with ``probs (K, H, W)`` the probability of that class: ``(H, W)`` strings.

    Example: ``"tumor, p = 0.83"``; unannotated pixels (``ignore_index``) read ``"not annotated"``.
    """
    labels = np.asarray(torch.as_tensor(labels).cpu()).astype(np.int64)
    annotated = labels != ignore_index
    if annotated.any() and (labels[annotated].min() < 0 or labels[annotated].max() >= len(class_names)):
        raise ValueError(f"labels go up to {int(labels[annotated].max())} but only {len(class_names)} class names")
    names = np.array([*class_names, "not annotated"])
    text = names[np.where(annotated, labels, len(class_names))]
    if probs is None:
        return text
    probs = np.asarray(torch.as_tensor(probs).float().cpu())
    if probs.shape[1:] != labels.shape:
        raise ValueError(f"probs {probs.shape} must be (K, H, W) with (H, W) = {labels.shape}, the labels' size")
    chosen = np.take_along_axis(probs, np.where(annotated, labels, 0)[None], axis=0)[0]  # p of the pixel's class
    with_p = np.char.add(np.char.add(text, ", p = "), np.char.mod("%.2f", chosen))
    return np.where(annotated, with_p, text)


def overlay_row(
    images: ImageLike | Sequence[ImageLike],
    labels: Sequence[np.ndarray | torch.Tensor | None],
    titles: Sequence[str],
    *,
    class_names: Sequence[str],
    colors: Sequence[Sequence[int]] | None = None,
    probs: Sequence[np.ndarray | torch.Tensor | None] | None = None,
    alpha: float = 0.4,
    microns_per_pixel: float | None = None,
    height: int = 360,
    title: str | None = None,
    columns: int | None = None,
) -> go.Figure:
    """Panels side by side, each an image with a label map painted on (or the image alone), with a class legend.

    Args:
        images: one image shown in every panel, or one per panel (uint8 ``(H, W, 3)``, a float tensor
            ``(3, H, W)``, ...: anything :func:`segtutor.predict.overlay` takes).
        labels: one ``(H, W)`` label map per panel (a mask or a prediction), or None for the image alone.
        titles: one title per panel.
        class_names: the name of each class, in label order.
        colors: one ``(R, G, B)`` per class (default :func:`segtutor.data.class_colors` of the names).
        probs: one ``probs (K, H, W)`` or None per panel: hover then gives the probability of the shown class.
        alpha: colour share of the overlay.
        microns_per_pixel: the pixel size; the axes are then in µm (default: axes in pixels).
        height, title, columns: as for :func:`segtutor.figures.image_row`.
    """
    count = len(labels)
    images = list(images) if isinstance(images, (list, tuple)) else [images] * count
    probs = [None] * count if probs is None else list(probs)
    if not len(images) == len(probs) == len(titles) == count:
        raise ValueError(f"got {len(images)} images, {count} label maps, {len(probs)} probs and {len(titles)} titles;"
                         " give one of each per panel (None where a panel has no labels or probs)")  # fmt: skip
    colors = class_colors(class_names) if colors is None else [tuple(color) for color in colors]
    if len(colors) != len(class_names):
        raise ValueError(f"got {len(colors)} colours for {len(class_names)} classes; give one colour per class")
    pictures = [image_to_rgb(image) if label is None else overlay(image, label, colors, alpha)
                for image, label in zip(images, labels)]  # fmt: skip
    figure = image_row(pictures, titles, height=height, title=title, columns=columns,
                       microns_per_pixel=microns_per_pixel)  # fmt: skip
    at = "x %{x:.0f} µm, y %{y:.0f} µm" if microns_per_pixel is not None else "row %{y:.0f}, col %{x:.0f}"
    for trace, label, prob in zip(list(figure.data), labels, probs):
        if label is None:  # the image alone: hover gives the place (image_row's)
            continue
        trace.hoverinfo = "skip"  # the class layer below answers instead of the picture's RGBA
        figure.add_trace(_class_layer(label, prob, class_names, microns_per_pixel, trace.xaxis, trace.yaxis, at))
    for name, swatch in zip(class_names, legend_colors(pictures, labels, colors, alpha)):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name, showlegend=True,
                                    marker=dict(symbol="square", size=14, color=f"rgb{swatch}",
                                                line=dict(color="#666", width=1))))  # fmt: skip
    figure.update_layout(legend=dict(orientation="h", x=0, xanchor="left", y=0, yanchor="top",
                                     title=dict(text="classes (colours as painted on the tissue):")),
                         margin=dict(b=110))  # fmt: skip
    figure.layout.legend.y = -68 / (height - 110)  # under the axis title: 68 px below the plots
    figure.update_yaxes(autorange="reversed")  # row 0 at the top, as in the picture
    return figure


def _class_layer(
    labels: np.ndarray | torch.Tensor,
    probs: np.ndarray | torch.Tensor | None,
    class_names: Sequence[str],
    microns_per_pixel: float | None,
    xaxis: str,
    yaxis: str,
    at: str,
) -> go.Heatmap:
    """A transparent heatmap over a panel whose hover gives each pixel's :func:`hover_text`; on a coarser grid (one
    cell per ``step × step`` pixels, its centre pixel's text) when the panel has more than :data:`MAX_HOVER_CELLS`
    pixels. Cell centres lie on the picture's pixel centres: ``i`` in pixels, ``(i + 0.5) × µm per pixel`` in µm."""
    height, width = labels.shape[-2:]
    step = max(1, int(np.ceil(np.sqrt(height * width / MAX_HOVER_CELLS))))
    rows, cols = np.arange(step // 2, height, step), np.arange(step // 2, width, step)
    grid = np.ix_(rows, cols)
    labels = np.asarray(torch.as_tensor(labels).cpu())[grid]
    probs = None if probs is None else np.asarray(torch.as_tensor(probs).float().cpu())[(slice(None), *grid)]
    text = hover_text(labels, class_names, probs)

    def centre(index: np.ndarray) -> np.ndarray:
        return index if microns_per_pixel is None else (index + 0.5) * microns_per_pixel

    return go.Heatmap(z=np.zeros(text.shape), text=text.tolist(), x=centre(cols), y=centre(rows),
                      colorscale=TRANSPARENT, showscale=False, xaxis=xaxis, yaxis=yaxis, name="classes",
                      hovertemplate=f"%{{text}}<br>{at}<extra></extra>")  # fmt: skip


def compare_predictions(
    image: ImageLike,
    mask: np.ndarray | torch.Tensor,
    predictions: dict[str, np.ndarray | torch.Tensor],
    *,
    class_names: Sequence[str],
    focus: int = 1,
    tolerance: float = 2.0,
    microns_per_pixel: float | None = None,
    height: int = 400,
    title: str | None = None,
) -> go.Figure:
    """The true mask next to several predictions of one image, each titled with its IoU and boundary F-score.

    Two scores per prediction, of class ``focus`` (default 1, tumor): the **IoU** (how much of the region) and
    the **boundary F-score** (how much of the outline, within ``tolerance`` pixels; see
    :func:`segtutor.metrics.boundary_scores`). Two predictions with a similar IoU can differ a lot in the second.

    Args:
        image: the image (as for :func:`overlay_row`).
        mask: its true classes ``(H, W)``.
        predictions: one ``(H, W)`` label map per name, e.g. ``{"without skips": preds_a, "with skips": preds_b}``.
        class_names: the name of each class.
        focus: the class whose scores the titles give.
        tolerance: the boundary F-score's tolerance in pixels.
        microns_per_pixel, height, title: as for :func:`overlay_row`.
    """
    truth = torch.as_tensor(mask).long()
    titles = ["true mask"]
    for name, labels in predictions.items():
        labels = torch.as_tensor(labels).long()
        if labels.shape != truth.shape:
            raise ValueError(f"prediction {name!r} is {tuple(labels.shape)}, the mask {tuple(truth.shape)}")
        iou = float(iou_per_class(confusion_matrix(truth, labels, num_classes=len(class_names)))[focus])
        outline = boundary_scores(truth, labels, len(class_names), tolerance=tolerance).f_score[focus]
        titles.append(f"{name}<br>{class_names[focus]} IoU {iou:.2f}, boundary F {outline:.2f}")
    return overlay_row(image, [truth, *predictions.values()], titles, class_names=class_names,
                       microns_per_pixel=microns_per_pixel, height=height, title=title)  # fmt: skip
