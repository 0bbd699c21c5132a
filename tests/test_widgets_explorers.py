"""The concept explorers driven headlessly: set controls, press Step, click; compare what is drawn with the core."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import cell_centres

from segtutor.explain import (
    box_at,
    conv2d_steps,
    first_layer_kernels,
    kernel_preset,
    overlap_count,
    pool2d_steps,
    receptive_spans,
    upsampling_kernel,
)
from segtutor.explain.transposed import add_stamp, conv_transpose2d_steps
from segtutor.models import create_model
from segtutor.widgets import ConvolutionExplorer, PoolingExplorer, ReceptiveFieldExplorer, UpsamplingExplorer
from segtutor.widgets.explorers.convolution import OUTPUT, PRODUCTS, ConvolutionState
from segtutor.widgets.explorers.pooling import POOLED
from segtutor.widgets.explorers.upsampling import (
    BILINEAR,
    CELL_PX,
    GAP_PX,
    MARGIN_PX,
    OVERLAP,
    WIDEST_PX,
    UpsamplingState,
    panels_per_row,
)
from segtutor.widgets.explorers.upsampling import OUTPUT as UPSAMPLED


def shown(values: list) -> np.ndarray:
    """A trace's z as an array, blank cells (None) as NaN."""
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)


def errors_text(explorer) -> str:
    return "".join(output.get("text", "") for output in explorer.errors.outputs)


@pytest.mark.parametrize(
    ("settings", "steps"),
    [
        (dict(), 3),
        (dict(kernel_size=5, padding=2), 7),
        (dict(stride=2, padding=1, dilation=2), 4),
        (dict(kernel_picker="blur", padding="same"), 10),
        (dict(input_picker="tissue", kernel_picker="sharpen", stride=3), 5),
    ],
)
def test_convolution_explorer_shows_the_core_step(settings, steps):
    explorer = ConvolutionExplorer()
    for name, value in settings.items():
        getattr(explorer, name).value = value
    for _ in range(steps):
        explorer.stepper.step_button.click()
    assert errors_text(explorer) == ""
    image = {"numbers": explorer._inputs["numbers"], "tissue": explorer._inputs["tissue"]}[explorer.input_picker.value]
    kernel = kernel_preset(explorer.kernel_picker.value, explorer.kernel_size.value)
    core = conv2d_steps(image, kernel, stride=explorer.stride.value, padding=explorer.padding.value,
                        dilation=explorer.dilation.value)  # fmt: skip
    step = core[steps]
    fig = explorer.figure
    # the highlighted window is exactly the taps of the core's step
    window = cell_centres(fig.layout["shapes"], "window")
    assert window == {(int(r), int(c)) for r in step.rows for c in step.cols}
    assert cell_centres(fig.layout["shapes"], "output cell") == {step.position}
    # the formula and the products are the core's
    assert step.formula() in explorer.formula.value
    np.testing.assert_allclose(fig.data[PRODUCTS]["z"], step.products)
    # the output shows the cells computed so far, and nothing else
    out_w = core[-1].position[1] + 1
    expected = np.full((core[-1].position[0] + 1, out_w), np.nan)
    for done in core[: steps + 1]:
        expected[done.position] = done.value
    np.testing.assert_allclose(shown(fig.data[OUTPUT]["z"]), expected)


def test_convolution_explorer_play_and_slider_stay_in_step():
    explorer = ConvolutionExplorer()
    explorer.stepper.slider.value = 24  # the last of 5 × 5 steps
    assert explorer.state.index == 24 and explorer.state.step.position == (4, 4)
    explorer.stepper.step_button.click()  # past the end: back to the start
    assert explorer.stepper.slider.value == explorer.stepper.play.value == 0
    explorer.kernel_size.value = 1  # 7 × 7 outputs now
    assert explorer.stepper.slider.max == explorer.stepper.play.max == 48
    assert "⌊(7 + 2·0 − 1·(1 − 1) − 1) / 1⌋ + 1 = 7" in explorer.size_formula.value


def test_convolution_explorer_reports_bad_settings_and_keeps_working():
    explorer = ConvolutionExplorer()
    explorer.padding.value = "same"
    explorer.stride.value = 2
    assert "padding='same' needs stride 1" in errors_text(explorer)
    assert explorer.state.stride == 1  # the state kept its last good settings
    explorer.stride.value = 1
    assert errors_text(explorer) == ""
    assert explorer.state.output_shape == (7, 7)


def test_convolution_explorer_offers_a_trained_models_kernels():
    model = create_model("unet", size="tiny")
    explorer = ConvolutionExplorer(model=model, kernel="model:2")
    np.testing.assert_allclose(explorer.state.kernel, first_layer_kernels(model)[2])
    assert explorer.kernel_size.disabled
    with pytest.raises(ValueError, match="kernel must be one of"):
        ConvolutionExplorer(kernel="model:0")  # no model given


def test_convolution_state_on_its_own():
    state = ConvolutionState(np.arange(25.0).reshape(5, 5), np.ones((3, 3)), padding=1)
    assert state.output_shape == (5, 5)
    assert np.isnan(state.output_so_far()).sum() == 24
    state.go_to(6)
    assert state.step.position == (1, 1)
    assert state.step.value == sum(i * 5 + j for i in range(3) for j in range(3))  # the top-left 3×3 block
    with pytest.raises(ValueError, match="step must be in 0 … 24"):
        state.go_to(25)
    with pytest.raises(TypeError, match="unknown settings"):
        state.configure(kernal=np.ones((3, 3)))


@pytest.mark.parametrize(("mode", "window", "stride", "steps"), [("max", 2, 2, 5), ("avg", 2, 2, 3), ("max", 3, 1, 8)])
def test_pooling_explorer_marks_the_window_and_its_winner(mode, window, stride, steps):
    explorer = PoolingExplorer()
    explorer.mode.value, explorer.kernel_size.value, explorer.stride.value = mode, window, stride
    for _ in range(steps):
        explorer.stepper.step_button.click()
    core = pool2d_steps(np.maximum(explorer.state.feature_map, 0), kernel_size=window, stride=stride, mode=mode)
    step = core[steps]
    shapes = explorer.figure.layout["shapes"]
    (box,) = [s for s in shapes if s["name"] == "window"]
    assert (box["y0"] + 0.5, box["x0"] + 0.5, box["y1"] - box["y0"]) == (step.rows[0], step.cols[0], window)
    winners = cell_centres(shapes, "winner")
    assert winners == ({step.winner} if mode == "max" else set())
    assert step.formula(decimals=1) in explorer.formula.value
    pooled = shown(explorer.figure.data[POOLED]["z"])
    assert np.count_nonzero(~np.isnan(pooled)) == steps + 1
    np.testing.assert_allclose(pooled.ravel()[: steps + 1], [s.value for s in core[: steps + 1]])


def test_pooling_explorer_applies_relu_before_pooling():
    explorer = PoolingExplorer(feature_map=np.array([[-3.0, -1.0], [-2.0, -5.0]]))
    explorer.input_picker.value = "yours"
    assert explorer.state.pooled.tolist() == [[0.0]]  # max pooling after ReLU, not max(−3, −1, −2, −5) = −1
    assert explorer.state.activated.min() == 0


@pytest.mark.parametrize(
    ("kernel", "size", "stride", "padding", "steps"),
    [("ones", 3, 2, 0, 6), ("bilinear", 4, 2, 1, 15), ("random", 2, 3, 0, 2)],
)
def test_upsampling_explorer_adds_the_core_stamps(kernel, size, stride, padding, steps):
    explorer = UpsamplingExplorer()
    explorer.kernel_picker.value, explorer.kernel_size.value = kernel, size
    explorer.stride.value, explorer.padding.value = stride, padding
    for _ in range(steps):
        explorer.stepper.step_button.click()
    x = explorer._inputs["numbers"]
    weights = upsampling_kernel(kernel, size)
    core = conv_transpose2d_steps(x, weights, stride=stride, padding=padding)
    expected = np.zeros(explorer.state.overlap.shape)
    for step in core[: steps + 1]:
        add_stamp(expected, step)
    fig = explorer.figure
    np.testing.assert_allclose(fig.data[UPSAMPLED]["z"], expected)
    np.testing.assert_array_equal(fig.data[OVERLAP]["z"], stamps_so_far(x.shape, size, stride, padding, steps))
    bilinear = F.interpolate(torch.from_numpy(x)[None, None], scale_factor=stride, mode="bilinear")[0, 0]
    np.testing.assert_allclose(fig.data[BILINEAR]["z"], bilinear.numpy())
    assert cell_centres(fig.layout["shapes"], "input pixel") == {core[steps].position}
    (stamp,) = [s for s in fig.layout["shapes"] if s["name"] == "stamp"]
    assert (stamp["y0"] + 0.5, stamp["x0"] + 0.5) == (core[steps].rows[0], core[steps].cols[0])
    assert core[steps].formula(decimals=1) in explorer.formula.value


def test_upsampling_with_a_full_kernel_and_stride_interpolates_bilinearly_inside():
    x = np.arange(16.0).reshape(4, 4)
    state = UpsamplingState(x, upsampling_kernel("bilinear", 4), stride=2, padding=1)
    inside = state.partial[-1][1:-1, 1:-1]  # the border sees zeros where interpolate repeats the edge
    np.testing.assert_allclose(inside, state.bilinear[1:-1, 1:-1])


def test_receptive_field_explorer_draws_the_regions_of_the_clicked_pixel():
    explorer = ReceptiveFieldExplorer(tile_size=64)
    state = explorer.state
    for name in ("unet", "deeplabv3"):
        explorer.model_picker.value = name
        explorer.figure.click(0, x=40, y=12)  # a learner clicks column 40, row 12
        assert errors_text(explorer) == ""
        assert state.pixel == (12, 40)
        stages = [s.module for s in state.stages()]
        spans = receptive_spans(state.model, (64, 64), layers=stages)
        shapes = explorer.figure.layout["shapes"]
        (network, _) = [s for s in shapes if s["name"] == "network"]
        top, bottom, left, right = box_at(spans["output"], (64, 64), (12, 40))
        drawn = (network["y0"], network["y1"], network["x0"], network["x1"])
        assert drawn == (top - 0.5, bottom + 0.5, left - 0.5, right + 0.5)
        for stage in state.stages():
            drawn = [s for s in shapes if s["name"] == stage.name]
            if drawn:
                top, bottom, left, right = box_at(spans[stage.module], (64, 64), (12, 40))
                assert (drawn[0]["y0"], drawn[0]["x1"]) == (top - 0.5, right + 0.5)
        gradient = np.array(explorer.figure.data[1]["z"])
        assert gradient.shape == (64, 64) and gradient.max() == 1.0
        assert np.unravel_index(gradient.argmax(), gradient.shape) != (0, 0)
    taps = [s for s in shapes if s["name"].startswith("rate ")]
    assert len(taps) == 9 * len(state.aspp_rates()) > 0  # DeepLabv3: the 3×3 taps of every ASPP rate
    assert "whole image" in explorer.summary.value
    assert "µm" in explorer.summary.value  # DeepLabv3's ASPP reach, in µm too


def test_receptive_field_explorer_gives_the_fields_in_microns_at_the_pixel_size():
    explorer = ReceptiveFieldExplorer(tile_size=64, microns_per_pixel=0.5)  # a 20× scan
    network = explorer.state.network_field()  # UNet
    assert network.microns_per_pixel == 0.5
    assert f"<b>{network.size} px</b> across = {network.size * 0.5:.0f} µm of tissue at 0.5 µm/px, ≈ 20×" in (
        explorer.summary.value
    )
    assert "the tile is 64 px = 32 µm" in explorer.summary.value
    assert "in µm at 0.5 µm/px, ≈ 20×" in explorer.table.value
    assert f"<td>{network.size} px</td><td>{network.size * 0.5:.0f} µm</td>" in explorer.table.value
    assert "at 1 µm/px, ≈ 10×" in ReceptiveFieldExplorer(tile_size=64).summary.value  # the course's tissue


def test_receptive_field_explorer_rejects_unknown_models():
    with pytest.raises(ValueError, match="unknown model names"):
        ReceptiveFieldExplorer({"segnet": torch.nn.Conv2d(3, 2, 1)}, tile_size=64)


def test_the_rgb_input_sums_27_products_as_the_first_layer_of_a_network_does():
    model = create_model("unet", size="tiny", seed=0)
    explorer = ConvolutionExplorer(model=model, kernel="model:1")
    explorer.input_picker.value = "rgb"
    state = explorer.state
    assert state.image.shape == (3, 8, 8) and state.kernel.shape == (3, 3, 3)
    weight = model.encoder[0][0].weight[1].detach().double()  # (3, 3, 3): the model's own three slices
    expected = F.conv2d(torch.tensor(state.image)[None], weight[None])[0, 0].numpy()  # (6, 6)
    np.testing.assert_allclose(state.feature_map, expected, atol=1e-12)
    assert state.step.products.size == 27 and explorer.formula.value.count("·") == 27  # all written out
    kernel_grid = np.array(explorer.figure.data[1]["z"], dtype=float)  # the three slices, a blank row between
    assert kernel_grid.shape == (11, 3) and np.isnan(kernel_grid[3]).all() and np.isnan(kernel_grid[7]).all()
    np.testing.assert_allclose(kernel_grid[4:7], weight[1].numpy())
    explorer.kernel_picker.value = "sobel_x"  # a preset: a third of it on each channel, an edge finder on grey
    np.testing.assert_allclose(explorer.state.kernel.sum(0), kernel_preset("sobel_x"))
    explorer.input_picker.value = "numbers"  # back to one channel
    assert explorer.state.image.ndim == 2 and explorer.state.kernel.shape == (3, 3)


def stamps_so_far(in_size: tuple[int, int], size: int, stride: int, padding: int, step: int) -> np.ndarray:
    """torch's transposed convolution of ones at the input pixels stamped so far (row by row) with a kernel of ones."""
    stamped = (torch.arange(in_size[0] * in_size[1]) <= step).double().reshape(1, 1, *in_size)
    return F.conv_transpose2d(stamped, torch.ones(1, 1, size, size, dtype=torch.float64), stride=stride,
                              padding=padding)[0, 0].numpy()  # fmt: skip


def test_upsampling_explorer_counts_the_stamps_as_they_land_and_numbers_them_at_stride_3():
    explorer = UpsamplingExplorer()
    explorer.stride.value = 3  # kernel 3 on 4 × 4: a 12 × 12 output, every pixel stamped once
    fig = explorer.figure
    assert np.asarray(fig.data[OVERLAP]["z"]).sum() == 9  # step 0: one stamp of 3 × 3
    for trace in (UPSAMPLED, OVERLAP, BILINEAR):  # the numbers stay on the 12 × 12 grids
        assert np.asarray(fig.data[trace]["z"]).shape == (12, 12)
        assert fig.data[trace]["texttemplate"] == "%{text}" and len(fig.data[trace]["text"]) == 12
    assert fig.data[OVERLAP]["text"][0][:4] == ["1", "1", "1", "0"]  # a "1" where the first stamp landed
    last = len(explorer.state.steps) - 1
    explorer.stepper.slider.value = last
    np.testing.assert_array_equal(fig.data[OVERLAP]["z"], overlap_count((4, 4), 3, stride=3))
    np.testing.assert_array_equal(fig.data[OVERLAP]["z"], stamps_so_far((4, 4), 3, 3, 0, last))
    assert {text for row in fig.data[OVERLAP]["text"] for text in row} == {"1"}  # "1 everywhere": no checkerboard
    assert fig.data[OVERLAP]["zmax"] == 1
    assert fig.layout["xaxis"]["tickfont"]["size"] >= 11  # no tick labels under 11 px


def test_convolution_and_pooling_outputs_show_their_empty_cells_from_step_0():
    explorer = ConvolutionExplorer()
    z = np.asarray(explorer.figure.data[OUTPUT]["z"], dtype=float)
    assert np.isnan(z).sum() == z.size - 1  # only output[0, 0] is computed at step 0 ...
    for axis in ("xaxis4", "yaxis4"):  # ... and lines between the cells show the 5 × 5 result it will be
        minor = explorer.figure.layout[axis]["minor"]
        assert minor["showgrid"] and (minor["tick0"], minor["dtick"]) == (0.5, 1)
    assert PoolingExplorer().figure.layout["xaxis3"]["minor"]["showgrid"]


@pytest.mark.parametrize("room", [0, 1280, 844, 588, 400])
@pytest.mark.parametrize("side", [6, 9, 12])
def test_upsampling_panels_per_row_leave_every_cell_wide_enough_for_its_number(room, side):
    per_row = panels_per_row(room, side)
    plot = min(room or WIDEST_PX, WIDEST_PX) - 2 * MARGIN_PX

    def cell(n: int) -> float:  # px per grid cell with n panels a row
        return (plot - (n - 1) * GAP_PX) / n / side

    assert 1 <= per_row <= 5
    assert cell(per_row) >= CELL_PX or per_row == 1  # the numbers fit their cells
    assert per_row == 5 or cell(per_row + 1) < CELL_PX  # and no more panels would have fitted


def test_upsampling_explorer_lays_its_panels_out_for_the_width_the_browser_draws_it_at():
    explorer = UpsamplingExplorer()
    explorer.stride.value = 3  # 12 × 12 grids
    explorer.stepper.slider.value = 4
    fig = explorer.figure

    def panels_in_first_row() -> int:
        return sum(fig.layout[f"yaxis{k if k > 1 else ''}"]["domain"][1] == 1.0 for k in range(1, 6))

    assert panels_in_first_row() == 4  # before a browser says its width: laid out for the widest, 1240 px
    tall = fig.layout["height"]
    fig.room = 588  # a 1024 px laptop with the file browser open
    assert panels_in_first_row() == 2 and fig.layout["height"] > tall  # fewer a row, more rows
    assert explorer.stepper.slider.value == 4  # the learner's step is kept, and drawn
    assert fig.data[OVERLAP]["z"] == explorer.state.overlap_so_far().tolist()
    assert [s["name"] for s in fig.layout["shapes"]] == ["input pixel", "stamp"]
    assert all(trace["textfont"]["size"] >= 11 for trace in fig.data)  # the numbers at 11 px or more
    assert "<br>" in fig.layout["annotations"][UPSAMPLED]["text"]  # the long title on two lines
