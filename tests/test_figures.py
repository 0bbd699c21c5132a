"""Static figures: PNG pictures, image rows, mosaics of feature maps and kernels, the architecture diagram."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from segtutor.figures import architecture_figure, image_row, kernel_mosaic, legend_html, mosaic, place_stages, png_uri
from segtutor.figures.curves import log_ticks
from segtutor.figures.diagram import LINE_PX, SKIP_COLOR, text_px
from segtutor.models import create_model, describe_architecture, list_models


def test_png_uri_round_trips():
    picture = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    uri = png_uri(picture, scale=2)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    np.testing.assert_array_equal(decoded, picture.repeat(2, 0).repeat(2, 1))
    with pytest.raises(TypeError, match="uint8"):
        png_uri(picture.astype(float))


def test_image_row_titles_each_picture_and_keeps_the_pixels():
    pictures = [np.full((4, 5, 3), value, np.uint8) for value in (0, 100, 200)]
    figure = image_row(pictures, ["dark", "grey", "light"], height=200, title="three tiles")
    assert [annotation.text for annotation in figure.layout.annotations] == ["dark", "grey", "light"]
    assert figure.layout.title.text == "three tiles" and figure.layout.height == 200
    assert len(figure.data) == 3
    maps = torch.randn(6, 4, 4)  # a stacked tensor of signed maps, two rows of three
    figure = image_row(maps, [f"channel {c}" for c in range(6)], columns=3, color_continuous_midpoint=0)
    assert sorted(annotation.text for annotation in figure.layout.annotations) == [f"channel {c}" for c in range(6)]
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        image_row(pictures, ["a", "b"])


def test_mosaic_and_kernel_mosaic():
    maps = torch.stack([torch.arange(4.0).reshape(2, 2), torch.full((2, 2), 7.0), -torch.arange(4.0).reshape(2, 2)])
    grid = mosaic(maps, columns=2, gap=1)
    assert grid.shape == (5, 5)
    np.testing.assert_allclose(grid[:2, :2], [[0, 1 / 3], [2 / 3, 1]])  # scaled to [0, 1] on its own
    np.testing.assert_allclose(grid[:2, 3:], 0.0)  # a flat map
    np.testing.assert_allclose(grid[3:, :2], [[1, 2 / 3], [1 / 3, 0]])
    assert np.isnan(grid[2]).all() and np.isnan(grid[3:, 3:]).all()  # gaps and the unused cell

    weight = torch.zeros(2, 3, 3, 3)
    weight[1, 0, 1, 1] = 2.0  # one red tap
    pictures = kernel_mosaic(weight, columns=2)
    assert pictures.shape == (3, 7, 3) and pictures.dtype == np.uint8
    assert (pictures[:, :3] == 128).all()  # an all-zero kernel is mid-grey
    assert pictures[1, 5].tolist() == [255, 128, 128] and (pictures[:, 3] == 255).all()  # red tap; white gap


@pytest.mark.parametrize("name", list_models())
def test_architecture_figure_draws_a_box_per_stage_and_an_arrow_per_input(name):
    summary = describe_architecture(create_model(name, size="tiny"), (3, 64, 64))
    figure = architecture_figure(summary)
    arrows = [a for a in figure.layout.annotations if a.showarrow]
    assert len(figure.layout.shapes) == len(summary.stages)  # one box per stage (and the input)
    assert len(arrows) == sum(len(item.stage.inputs) for item in summary.stages)
    skips = [a for a in arrows if a.arrowcolor == SKIP_COLOR]
    assert len(skips) == {"unet": 4, "fcn8s": 2, "deeplabv3": 0, "deeplabv3plus": 1}[name]  # v3+: from layer1
    legend = legend_html(summary)
    assert ("skip connection" in legend) == (name != "deeplabv3")
    assert ("ASPP" in legend) == name.startswith("deeplabv3")


def label_boxes(figure, room: int) -> tuple[list[tuple[str, list[float]]], list[list[float]]]:
    """The diagram's text labels as ``(text, [left, top, right, bottom])`` in px, where ``text_px`` says they reach,
    drawn ``room`` px wide; and its boxes (the stages') in px."""
    layout = figure.layout
    drawn = min(room, layout.width)
    (x0, x1), (y0, y1) = layout.xaxis.range, layout.yaxis.range
    x_px = (drawn - layout.margin.l - layout.margin.r) / (x1 - x0)
    y_px = (layout.height - layout.margin.t - layout.margin.b) / (y1 - y0)
    at = lambda x, y: (layout.margin.l + (x - x0) * x_px, layout.margin.t + (y1 - y) * y_px)  # noqa: E731
    labels = []
    for note in layout.annotations:
        if note.showarrow:
            continue
        lines = re.sub(r"</?b>", "", note.text).split("<br>")
        across, down = max(map(text_px, lines)), len(lines) * LINE_PX
        if note.textangle == -90:
            across, down = down, across
        x, y = at(note.x, note.y)
        y -= note.yshift or 0
        labels.append((note.text, [x - across / 2, y - down / 2, x + across / 2, y + down / 2]))
    boxes = []
    for shape in layout.shapes:
        (left, top), (right, bottom) = at(shape.x0, shape.y1), at(shape.x1, shape.y0)
        boxes.append([left, top, right, bottom])
    return labels, boxes


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("room", [552, 592, 848, 1280])  # outputs at 1024 (552: in the studio), 1280, 1712 px
def test_the_diagrams_labels_stay_in_their_boxes_and_never_overlap_at_any_width(name, room):
    summary = describe_architecture(create_model(name, size="small"), (3, 128, 128))  # the studio's model tab
    figure = architecture_figure(summary, title=False, room=room)
    labels, boxes = label_boxes(figure, room)
    assert all(note.font.size >= 11 for note in figure.layout.annotations if not note.showarrow)
    on_boxes = [(text, label) for text, label in labels if text not in ("skip", "copy & concatenate")]
    assert len(on_boxes) == len(boxes)
    for (text, label), box in zip(on_boxes, boxes):  # one label per box, in the boxes' order
        assert box[0] <= label[0] and label[2] <= box[2] and box[1] <= label[1] and label[3] <= box[3], text
    for i, (text, a) in enumerate(labels):
        for other, b in labels[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], f"{text!r} overlaps {other!r}"
    upright = {note.textangle for note in figure.layout.annotations if not note.showarrow and note.font.color is None}
    assert upright == ({0} if room == 1280 else {-90})  # flat where the figure is drawn 1100 px wide


def test_a_wide_diagram_breaks_long_names_after_their_underscore():
    summary = describe_architecture(create_model("fcn8s", size="small"), (3, 128, 128))
    texts = [note.text for note in architecture_figure(summary, room=1280).layout.annotations if not note.showarrow]
    assert "<b>upscore_<br>pool4</b><br>2 × 16×16" in texts  # "upscore_pool4" is wider than a box at 1100 px
    assert "<b>pool4</b><br>128 × 8×8" in texts  # a short name and shape stay whole
    assert "<b>pool3</b><br>64 × <br>16×16" in texts  # a shape wider than its box breaks after its "× "


def test_log_ticks_label_every_loss_range_with_at_least_three_round_values_at_the_axis_font():
    assert log_ticks(0.01, 10) == [0.01, 0.1, 1, 10]  # decades where they are enough
    assert log_ticks(0.05, 0.7) == [0.05, 0.1, 0.2, 0.5]  # 1-2-5
    assert log_ticks(0.3, 0.7) == [0.3, 0.5, 0.7]
    assert log_ticks(0.62, 0.69) == [0.62, 0.64, 0.66, 0.68]  # a loss that hardly moves: evenly spaced
    rng = np.random.default_rng(0)
    digits = lambda value: len(f"{value:e}".split("e")[0].rstrip("0").rstrip(".").replace(".", ""))  # noqa: E731
    for _ in range(500):
        low = 10 ** rng.uniform(-4, 1)
        high = low * 10 ** rng.uniform(0.05, 1)  # from 12 % to one decade
        ticks = log_ticks(low, high)
        assert 3 <= len(ticks) <= 10, (low, high, ticks)
        assert ticks == sorted(set(ticks)) and all(low <= tick <= high for tick in ticks), (low, high, ticks)
        assert max(map(digits, ticks)) <= 3, (low, high, ticks)  # round values: 0.25, 1.05, never 0.6931
    assert log_ticks(0.5, 0.5) == [0.498, 0.5, 0.502]  # a flat loss
    with pytest.raises(ValueError, match="0 < low <= high"):
        log_ticks(0.0, 1.0)


def test_place_stages_draws_the_u_and_the_aspp_fan():
    unet = place_stages(create_model("unet", size="tiny").describe())
    for level in range(4):
        assert unet[f"enc{level}"][1] == unet[f"dec{level}"][1] == -level  # a skip is a horizontal arrow
        assert unet[f"dec{level}"][0] > unet["enc4"][0] > unet[f"enc{level}"][0]
    deeplab = place_stages(create_model("deeplabv3", size="tiny").describe())
    branches = [deeplab[name] for name in ("aspp_1x1", "aspp_rate1", "aspp_rate2", "aspp_rate3", "aspp_pooling")]
    assert len({x for x, _ in branches}) == 1 and len({y for _, y in branches}) == 5  # parallel, one column
    fcn = place_stages(create_model("fcn8s", size="tiny").describe())
    assert fcn["score_pool4"][0] == fcn["fuse_pool4"][0] - 1  # a score layer sits next to the sum it feeds


def test_reliability_figure_draws_each_filled_bin_with_its_gap_and_titles_the_ece():
    from segtutor.figures import reliability_figure
    from segtutor.metrics import reliability_diagram

    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(4, 2, 16, 16, generator=generator)
    masks = torch.randint(0, 2, (4, 16, 16), generator=generator)
    sharp, soft = reliability_diagram(logits, masks, num_bins=10), reliability_diagram(logits / 4, masks, num_bins=10)
    figure = reliability_figure({"sharp": sharp, "soft": soft}, title="two temperatures")
    assert [a.text for a in figure.layout.annotations] == [f"sharp: ECE {sharp.ece:.3f}", f"soft: ECE {soft.ece:.3f}"]
    bars = {trace.name: trace for trace in figure.data}
    filled = sharp.count > 0
    assert 0 < int(filled.sum()) < 10  # two classes: nothing below 0.5, so some bins stay empty and are left out
    np.testing.assert_allclose(bars["sharp: accuracy"].y, sharp.accuracy[filled].numpy())
    np.testing.assert_allclose(np.asarray(bars["sharp: gap"].base, float), sharp.accuracy[filled].numpy())
    np.testing.assert_allclose(bars["sharp: gap"].y, (sharp.confidence - sharp.accuracy)[filled].numpy())
    np.testing.assert_allclose(bars["sharp: accuracy"].x, (sharp.bin_edges[:-1] + 0.05)[filled].numpy())
    assert list(bars["soft: calibrated"].x) == [0, 1] and list(bars["soft: calibrated"].y) == [0, 1]
    assert figure.layout.xaxis.range == (0.5, 1) and figure.layout.title.text == "two temperatures"
    single = reliability_figure(sharp)
    assert single.layout.annotations[0].text == f"ECE {sharp.ece:.3f}" and len(single.data) == 3
    with pytest.raises(ValueError, match="at least one"):
        reliability_figure({})


def test_image_row_centres_signed_maps_on_zero_and_titles_the_colour_bar():
    maps = np.random.default_rng(0).normal(-0.5, 0.3, size=(8, 6, 6))  # mostly negative, some positive
    figure = image_row(maps, columns=4, color_continuous_scale="RdBu_r")
    assert figure.layout.coloraxis.cmid == 0  # white = 0: a red map is a positive map
    assert figure.layout.coloraxis.colorbar.title.text == "value<br>(white = 0)"
    own = image_row(maps, columns=4, color_continuous_scale="RdBu_r", colorbar_title="activation")
    assert own.layout.coloraxis.colorbar.title.text == "activation"
    ranged = image_row(maps, columns=4, color_continuous_scale="RdBu_r", zmin=-2, zmax=1)  # the caller's range wins
    assert ranged.layout.coloraxis.cmid is None
    positive = image_row(np.abs(maps), color_continuous_scale="Viridis")
    assert positive.layout.coloraxis.cmid is None and positive.layout.coloraxis.colorbar.title.text == "value"


def test_image_row_per_panel_gives_each_map_its_own_symmetric_scale_and_titled_bar():
    rng = np.random.default_rng(1)
    image, edges = rng.random((6, 6)), 3 * rng.normal(size=(6, 6))  # 0 … 1 next to ±8: one scale flattens one
    figure = image_row([image, edges], ["identity", "Sobel x"], color_continuous_scale="RdBu_r",
                       color_continuous_midpoint=0, per_panel=True)  # fmt: skip
    assert [trace.coloraxis for trace in figure.data] == ["coloraxis", "coloraxis2"]
    for axis, values in ((figure.layout.coloraxis, image), (figure.layout.coloraxis2, edges)):
        assert axis.cmax == pytest.approx(np.abs(values).max()) and axis.cmin == -axis.cmax
        assert axis.colorbar.orientation == "h" and axis.colorbar.title.text == "value (white = 0)"
    assert figure.layout.coloraxis2.colorbar.x > figure.layout.coloraxis.colorbar.x  # each bar under its map


def test_image_row_says_its_axes_are_pixels_and_hovers_without_rgba():
    pictures = np.zeros((2, 4, 4, 3), np.uint8)
    figure = image_row(pictures, ["a", "b"])
    assert figure.layout.xaxis.title.text == "pixels" and figure.layout.yaxis.title.text == "pixels"
    assert {trace.hovertemplate for trace in figure.data} == {"row %{y}, col %{x}<extra></extra>"}
    maps = image_row(np.zeros((2, 4, 4)), ["a", "b"])
    assert {trace.hovertemplate for trace in maps.data} == {"row %{y}, col %{x}: %{z:.3f}<extra></extra>"}


def test_image_row_draws_axes_in_microns_where_the_pixel_size_is_known():
    figure = image_row(np.zeros((2, 4, 4, 3), np.uint8), ["10×", "5×"], microns_per_pixel=2.0)
    assert figure.layout.xaxis.title.text == figure.layout.yaxis.title.text == "µm (2 µm per pixel)"
    assert {(trace.x0, trace.dx, trace.y0, trace.dy) for trace in figure.data} == {(1.0, 2.0, 1.0, 2.0)}
    assert {trace.hovertemplate for trace in figure.data} == {"x %{x:.0f} µm, y %{y:.0f} µm<extra></extra>"}
