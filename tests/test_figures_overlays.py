"""Overlays with a class legend, hover that names the class and its probability, and axes in µm or pixels."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from segtutor.data import class_colors
from segtutor.figures import compare_predictions, hover_text, legend_colors, on_stain, overlay_row
from segtutor.figures.overlays import MAX_HOVER_CELLS
from segtutor.figures.pictures import EOSIN_PINK
from segtutor.metrics import boundary_scores
from segtutor.predict import overlay

NAMES = ["stroma", "tumor"]


def _tile(height: int = 6, width: int = 8) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = torch.zeros(height, width, dtype=torch.long)
    mask[:, width // 2 :] = 1  # tumor on the right half
    probs = torch.softmax(torch.randn(2, height, width, generator=torch.Generator().manual_seed(0)), dim=0)
    return image, mask, probs


def test_hover_text_names_each_pixels_class_and_the_probability_of_that_class():
    _, mask, probs = _tile()
    mask[0, 0] = 255  # not annotated
    text = hover_text(mask, NAMES, probs)
    assert text.shape == (6, 8)
    assert text[0, 0] == "not annotated"
    assert text[1, 0] == f"stroma, p = {float(probs[0, 1, 0]):.2f}"  # p of the pixel's own class
    assert text[2, 7] == f"tumor, p = {float(probs[1, 2, 7]):.2f}"
    assert hover_text(mask, NAMES)[3, 7] == "tumor"
    with pytest.raises(ValueError, match="only 1 class names"):
        hover_text(mask, ["stroma"])


def test_overlay_row_has_a_legend_of_the_classes_in_the_colours_they_show():
    image, mask, probs = _tile()
    figure = overlay_row(image, [None, mask, probs.argmax(0)], ["tile", "truth", "prediction"], class_names=NAMES,
                         probs=[None, None, probs], alpha=0.4)  # fmt: skip
    legend = [trace for trace in figure.data if trace.type == "scatter"]
    assert [trace.name for trace in legend] == NAMES and figure.layout.legend.title.text.startswith("classes")
    # each swatch is the median of the pixels the class covers in the overlays, as drawn
    drawn = [overlay(image, labels, class_colors(NAMES), 0.4) for labels in (mask, probs.argmax(0))]
    for index, trace in enumerate(legend):
        pixels = np.concatenate([picture[np.asarray(labels) == index]
                                 for picture, labels in zip(drawn, (mask, probs.argmax(0)))])  # fmt: skip
        assert trace.marker.color == f"rgb{tuple(int(v) for v in np.median(pixels, axis=0).round())}"
    pictures = [trace for trace in figure.data if trace.type == "image"]
    assert len(pictures) == 3 and [a.text for a in figure.layout.annotations] == ["tile", "truth", "prediction"]


def test_legend_colors_show_grey_over_glass_and_teal_over_pink_stroma():
    glass = np.full((4, 4, 3), 250, np.uint8)  # white glass: a grey overlay stays grey there
    stroma = np.tile(np.array(EOSIN_PINK, np.uint8), (4, 4, 1))  # pink stroma: bluish green turns teal
    colours = [(187, 187, 187), (0, 158, 115), (213, 94, 0)]
    labels = [torch.zeros(4, 4, dtype=torch.long), torch.ones(4, 4, dtype=torch.long)]
    pictures = [overlay(glass, labels[0], colours, 0.4), overlay(stroma, labels[1], colours, 0.4)]
    swatches = legend_colors(pictures, labels, colours, 0.4)
    assert swatches[0] == (225, 225, 225) and swatches[1] == on_stain(colours[1], 0.4) == (139, 159, 166)
    assert swatches[2] == on_stain(colours[2], 0.4)  # a class no panel shows: its colour over the stain


def test_overlay_row_hovers_class_names_and_probabilities_not_rgba():
    image, mask, probs = _tile()
    preds = probs.argmax(0)
    figure = overlay_row(image, [None, mask, preds], ["tile", "truth", "prediction"], class_names=NAMES,
                         probs=[None, None, probs])  # fmt: skip
    pictures = [trace for trace in figure.data if trace.type == "image"]
    layers = [trace for trace in figure.data if trace.type == "heatmap"]
    assert pictures[0].hovertemplate == "row %{y}, col %{x}<extra></extra>"  # the plain tile: its position
    assert all(picture.hoverinfo == "skip" for picture in pictures[1:])  # no RGBA tuple on the overlays
    assert [(layer.xaxis, layer.yaxis) for layer in layers] == [(p.xaxis, p.yaxis) for p in pictures[1:]]
    truth, prediction = (np.array(layer.text) for layer in layers)
    assert truth[0, 0] == "stroma" and truth[0, 7] == "tumor"
    assert prediction[4, 5] == f"{NAMES[int(preds[4, 5])]}, p = {float(probs[:, 4, 5].max()):.2f}"
    assert all(layer.hovertemplate.startswith("%{text}") for layer in layers)
    assert figure.layout.xaxis.title.text == "pixels" and figure.layout.yaxis.title.text == "pixels"


def test_overlay_row_draws_axes_in_microns_where_the_pixel_size_is_known():
    image, mask, _ = _tile()
    figure = overlay_row([image, image], [mask, mask], ["a", "b"], class_names=NAMES, microns_per_pixel=2.0)
    assert figure.layout.xaxis.title.text == "µm (2 µm per pixel)"
    assert figure.layout.yaxis.title.text.startswith("µm")
    picture = figure.data[0]
    assert (picture.x0, picture.dx, picture.y0, picture.dy) == (1.0, 2.0, 1.0, 2.0)  # pixel 0 covers 0-2 µm
    layer = next(trace for trace in figure.data if trace.type == "heatmap")
    assert list(layer.x) == [1.0 + 2.0 * col for col in range(8)]  # the class layer sits on the pixels' centres
    assert "µm" in layer.hovertemplate


def test_overlay_row_paints_with_the_given_colours_and_checks_its_arguments():
    image, mask, _ = _tile()
    colours = [(255, 0, 0), (0, 0, 255)]
    figure = overlay_row(image, [mask], ["truth"], class_names=NAMES, colors=colours, alpha=0.5)
    legend = [trace.marker.color for trace in figure.data if trace.type == "scatter"]
    shown = overlay(image, mask, colours, 0.5)
    assert legend == [f"rgb{tuple(int(v) for v in np.median(shown[mask.numpy() == k], axis=0).round())}" for k in
                      range(2)]  # fmt: skip
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(figure.data[0].source.split(",", 1)[1]))))[..., :3]
    np.testing.assert_array_equal(shown, overlay(image, mask, colours, 0.5))  # the panel is the overlay itself
    with pytest.raises(ValueError, match="one of each per panel"):
        overlay_row(image, [mask, mask], ["only one title"], class_names=NAMES)
    with pytest.raises(ValueError, match="one colour per class"):
        overlay_row(image, [mask], ["truth"], class_names=NAMES, colors=[(0, 0, 0)])


def test_overlay_row_gives_hover_on_a_coarser_grid_for_a_whole_slide():
    height, width = 300, 400  # more pixels than MAX_HOVER_CELLS
    image = np.zeros((height, width, 3), np.uint8)
    mask = torch.zeros(height, width, dtype=torch.long)
    mask[:, 200:] = 1
    layer = next(t for t in overlay_row(image, [mask], ["slide"], class_names=NAMES).data if t.type == "heatmap")
    text = np.array(layer.text)
    assert text.size <= MAX_HOVER_CELLS and text.shape[1] < width
    step = int(layer.x[1] - layer.x[0])
    assert step > 1 and all(text[0, k] == ("tumor" if layer.x[k] >= 200 else "stroma") for k in range(len(layer.x)))


def test_compare_predictions_titles_each_prediction_with_its_iou_and_boundary_f():
    image = np.full((32, 32, 3), 200, np.uint8)
    truth = torch.zeros(32, 32, dtype=torch.long)
    truth[8:24, 8:24] = 1  # a square tumor nest
    exact, blob = truth.clone(), torch.zeros(32, 32, dtype=torch.long)
    blob[12:28, 12:28] = 1  # the same size, shifted by 4 pixels: half its outline off by more than 2 pixels
    figure = compare_predictions(image, truth, {"sharp": exact, "shifted": blob}, class_names=NAMES,
                                 microns_per_pixel=1.0)  # fmt: skip
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles[0] == "true mask" and titles[1] == "sharp<br>tumor IoU 1.00, boundary F 1.00"
    iou = 144 / (256 + 256 - 144)  # 12 x 12 overlap of two 16 x 16 squares
    outline = boundary_scores(truth, blob, 2).f_score[1]
    assert titles[2] == f"shifted<br>tumor IoU {iou:.2f}, boundary F {outline:.2f}" and outline < 0.8
    assert [trace.name for trace in figure.data if trace.type == "scatter"] == NAMES  # the legend, as overlay_row's
    assert figure.layout.xaxis.title.text.startswith("µm")
    with pytest.raises(ValueError, match="prediction 'small'"):
        compare_predictions(image, truth, {"small": exact[:16]}, class_names=NAMES)
