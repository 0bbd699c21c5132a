"""ConvolutionExplorer: watch a kernel slide over an image and the feature map fill in, one sum at a time.

:class:`ConvolutionState` holds what is shown (no widgets: test it on its own); :class:`ConvolutionExplorer` is
the view: controls, a formula and one :class:`~segtutor.widgets.LiveFigure` with four grids
(padded input with the kernel's window, kernel, element-wise products, output).

With the **RGB** input the image has three channels and the kernel three slices, one per channel (drawn one
above the other): each output pixel is the sum of 3 × 3 × 3 = 27 products, the red, green and blue ones together,
as in the first layer of every network in the course. One such kernel gives one output map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from segtutor.explain.arguments import as_array, as_pair
from segtutor.explain.arithmetic import OutputSize, output_size
from segtutor.explain.conv import ConvStep, conv2d_steps
from segtutor.explain.kernels import KERNEL_PRESETS, first_layer_kernels, kernel_preset
from segtutor.explain.samples import number_grid, rgb_patch, tissue_patch
from segtutor.figures import (
    MAX_NUMBERED,
    TEMPLATE,
    cell_outline,
    cell_text,
    empty_cell_grid,
    grid_heatmap,
    square_cells,
)
from segtutor.widgets.explorers.stepping import SteppedExplorer, SteppedState

if TYPE_CHECKING:  # a model is optional: the explorer draws without importing torch
    from torch import nn

INPUT, KERNEL, PRODUCTS, OUTPUT = range(4)  # trace indices, one heatmap per subplot


class ConvolutionState(SteppedState):
    """A convolution being stepped through: its settings, all its steps, and the current one.

    Args:
        image: ``(H, W)``, or ``(C, H, W)`` for a colour image.
        kernel: ``(kh, kw)``, or ``(C, kh, kw)``: one slice per channel of the image.
        stride, padding, dilation: as in :func:`segtutor.explain.conv2d_steps`.

    Raises:
        ValueError: on settings that do not make a convolution (the message says how to fix them).
    """

    SETTINGS = ("image", "kernel", "stride", "padding", "dilation")

    def __init__(
        self,
        image: np.ndarray,
        kernel: np.ndarray,
        *,
        stride: int = 1,
        padding: int | str = 0,
        dilation: int = 1,
    ) -> None:
        self._apply(image, kernel, stride, padding, dilation)

    def _apply(self, image, kernel, stride, padding, dilation) -> None:
        image = as_array(image, "image", {2: "(H, W)", 3: "(C, H, W)"})
        kernel = as_array(kernel, "kernel", {2: "(kh, kw)", 3: "(C, kh, kw)"})
        steps = conv2d_steps(image, kernel, stride=stride, padding=padding, dilation=dilation)  # may raise
        self.image, self.kernel, self.stride, self.padding, self.dilation = image, kernel, stride, padding, dilation
        self.steps: list[ConvStep] = steps
        self.output_shape = (steps[-1].position[0] + 1, steps[-1].position[1] + 1)
        self.feature_map = np.array([s.value for s in steps]).reshape(self.output_shape)  # (H_out, W_out)
        self.index = 0

    def output_so_far(self) -> np.ndarray:
        """The feature map with only the steps up to the current one filled in (NaN elsewhere)."""
        return self.values_so_far(self.feature_map)

    @property
    def padded_image(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(padded (..., H + top + bottom, W + left + right), rows, cols)``: the image in its zero frame, with the
        coordinates of its rows and columns (padding rows are negative or ≥ H)."""
        height, width = self.image.shape[-2:]
        first, last = self.steps[0], self.steps[-1]
        top, left = max(0, -int(first.rows.min())), max(0, -int(first.cols.min()))
        bottom = max(0, int(last.rows.max()) - height + 1)
        right = max(0, int(last.cols.max()) - width + 1)
        padded = np.pad(self.image, ((0, 0),) * (self.image.ndim - 2) + ((top, bottom), (left, right)))
        return padded, np.arange(-top, height + bottom), np.arange(-left, width + right)

    def size_formulas(self) -> tuple[OutputSize, OutputSize]:
        """The output height and width, each with its formula (``padding="same"`` shown as the amounts it adds)."""
        (kh, kw), stride = self.kernel.shape[-2:], as_pair(self.stride, "stride")
        dilation = as_pair(self.dilation, "dilation")
        if self.padding == "same":  # stride 1: the output keeps the input's size
            return tuple(
                OutputSize(n, f"padding 'same' adds {d}·({k} − 1) = {d * (k - 1)} → {n} (stride 1 keeps the size)")
                for n, k, d in zip(self.image.shape[-2:], (kh, kw), dilation)
            )
        padding = as_pair(self.padding, "padding", minimum=0)
        return tuple(
            output_size(n, k, s, p, d)
            for n, k, s, p, d in zip(self.image.shape[-2:], (kh, kw), stride, padding, dilation)
        )


class ConvolutionExplorer(SteppedExplorer):
    """Step through a 2-D convolution: window, kernel, products, the sum written out, and the growing output.

    Args:
        image: your own ``(H, W)`` image to offer next to the built-in ones (numbers 7×7, tissue 16×16).
        model: a (trained) segtutor model: its first-layer kernels become presets.
        kernel: the preset to start with (see :data:`segtutor.explain.kernels.KERNEL_PRESETS`).
        seed: seeds the random kernel and the sample inputs.

    Example:
        >>> explorer = ConvolutionExplorer(kernel="sobel_x")
        >>> explorer  # last line of a cell: displays it
    """

    LINK_VIEW = "convolution"
    LINK_CONTROLS = {"input": "input_picker", "kernel": "kernel_picker", "kernel_size": "kernel_size", "stride": "stride",
                     "padding": "padding", "dilation": "dilation", "step": "stepper.slider"}  # fmt: skip

    def __init__(
        self,
        image: np.ndarray | None = None,
        *,
        model: nn.Module | None = None,
        kernel: str = "sobel_x",
        seed: int = 0,
    ) -> None:
        self._seed = seed
        self._inputs = {"numbers": number_grid(7, seed=seed), "tissue": tissue_patch(16, seed=seed),
                        "rgb": rgb_patch(8, seed=seed)}  # fmt: skip
        if image is not None:
            self._inputs["yours"] = as_array(image, "image", {2: "(H, W)"})
        self._model_kernels = first_layer_kernels(model) if model is not None else np.zeros((0, 3, 3))
        self._model_rgb_kernels = _rgb_kernels(model)  # (out_channels, 3, kh, kw), or None
        kernel_options = [(name.replace("_", " "), name) for name in KERNEL_PRESETS]
        kernel_options += [(f"model: channel {c}", f"model:{c}") for c in range(len(self._model_kernels))]
        if kernel not in dict(kernel_options).values():
            raise ValueError(f"kernel must be one of {[value for _, value in kernel_options]}, got {kernel!r}")

        # Controls
        self.input_picker = widgets.Dropdown(
            options=[("numbers 7×7", "numbers"), ("tissue 16×16", "tissue"), ("tissue RGB 8×8", "rgb")]
            + ([("your image", "yours")] if image is not None else []),
            value="numbers",
            description="input",
        )
        self.kernel_picker = widgets.Dropdown(options=kernel_options, value=kernel, description="kernel")
        self.kernel_size = widgets.IntSlider(value=3, min=1, max=7, description="kernel size",
                                             disabled=kernel.startswith("model:"))  # a model's kernels have their size
        self.stride = widgets.IntSlider(value=1, min=1, max=3, description="stride")
        self.padding = widgets.Dropdown(options=[("0", 0), ("1", 1), ("2", 2), ("3", 3), ("same", "same")], value=0,
                                        description="padding")  # fmt: skip
        self.dilation = widgets.IntSlider(value=1, min=1, max=3, description="dilation")
        self.state = ConvolutionState(self._inputs["numbers"], self._kernel(kernel, 3))
        self.size_formula = widgets.HTML()
        self._fixed_shapes: list[dict] = []  # outlines drawn at every step (image frame, output grid)
        super().__init__(
            [[self.input_picker, self.kernel_picker, self.kernel_size], [self.stride, self.padding, self.dilation]],
            below=[self.size_formula],
        )

    # --- settings and drawing ------------------------------------------------------------------------------------
    def _settings(self) -> dict:
        self.kernel_size.disabled = self.kernel_picker.value.startswith("model:")  # a model's kernels have their size
        rgb = self.input_picker.value == "rgb"
        return dict(image=self._inputs[self.input_picker.value],
                    kernel=self._kernel(self.kernel_picker.value, self.kernel_size.value, rgb=rgb),
                    stride=self.stride.value, padding=self.padding.value, dilation=self.dilation.value)  # fmt: skip

    def _kernel(self, name: str, size: int, *, rgb: bool = False) -> np.ndarray:
        """``(k, k)``, or ``(3, k, k)`` for the RGB input: a model's own three slices, a random slice per channel,
        or a preset divided by 3 on each channel (so that it works on the mean of R, G and B)."""
        if name.startswith("model:"):
            channel = int(name.split(":")[1])
            if rgb and self._model_rgb_kernels is not None:
                return self._model_rgb_kernels[channel]
            return self._model_kernels[channel] if not rgb else np.stack([self._model_kernels[channel] / 3] * 3)
        if not rgb:
            return kernel_preset(name, size, seed=self._seed)
        if name == "random":
            return np.stack([kernel_preset(name, size, seed=self._seed + channel) for channel in range(3)])
        return np.stack([kernel_preset(name, size, seed=self._seed) / 3] * 3)

    def _redraw(self) -> None:
        """Rebuild the figure for the current settings (sizes may have changed), then draw the current step."""
        state = self.state
        padded, rows, cols = state.padded_image
        is_tissue = self.input_picker.value == "tissue"  # grey levels in [0, 1]
        rgb = state.image.ndim == 3
        figure = make_subplots(
            rows=1,
            cols=4,
            subplot_titles=(["RGB input<br>(padding outside the frame)", "kernel:<br>R, G, B slices",
                             "input × kernel,<br>per channel", "output: the 27<br>products summed"] if rgb else
                            ["input<br>(padding outside the frame)", "kernel", "input × kernel", "output"]),
            column_widths=[0.34, 0.18, 0.18, 0.30],
            horizontal_spacing=0.05,
        )
        kernel_range = float(np.abs(state.kernel).max()) or 1.0
        product_range = max(float(np.abs(padded).max()) * kernel_range, 1e-9)
        output_range = max(float(np.abs(state.feature_map).max()), 1e-9)
        if rgb:  # the colour patch itself, in its frame of padding
            picture = (padded.transpose(1, 2, 0).clip(0, 1) * 255).round().astype(np.uint8)  # (H', W', 3)
            first = go.Image(z=picture, x0=int(cols[0]), y0=int(rows[0]), name="input",
                             hovertemplate="row %{y}, col %{x}<br>R, G, B %{z}<extra></extra>")  # fmt: skip
        else:
            first = grid_heatmap(padded, rows=rows, cols=cols, colorscale="Blues" if self.input_picker.value ==
                                 "numbers" else "gray", name="input", zmin=0 if is_tissue else None,
                                 zmax=1 if is_tissue else None)  # fmt: skip
        traces = [
            first,
            grid_heatmap(stacked(state.kernel), colorscale="RdBu", zmid=0, zmin=-kernel_range, zmax=kernel_range,
                         name="kernel"),
            grid_heatmap(stacked(state.step.products), colorscale="RdBu", zmin=-product_range, zmax=product_range,
                         name="input × kernel"),
            grid_heatmap(state.output_so_far(), colorscale="RdBu", zmin=-output_range, zmax=output_range,
                         name="output"),
        ]  # fmt: skip
        for column, trace in enumerate(traces, start=1):
            figure.add_trace(trace, row=1, col=column)
        square_cells(figure, 4)
        empty_cell_grid(figure, 4)  # the output's cells, before they are computed
        height, width = state.image.shape[-2:]
        self._fixed_shapes = [
            cell_outline(0, 0, subplot=1, name="image", height=height, width=width, color="black", line_width=2),
            cell_outline(0, 0, subplot=4, name="output", height=state.output_shape[0], width=state.output_shape[1],
                         color="lightgray", line_width=1),
        ]  # fmt: skip
        figure.update_layout(width=960, height=340, margin=dict(l=10, r=10, t=60, b=10), template=TEMPLATE,
                             shapes=self._fixed_shapes)  # fmt: skip
        for annotation in figure.layout.annotations:  # titles on two lines fit four panels in a 592 px output
            annotation.font.size = 13
        if rgb:  # name the three slices of the kernel and of the products: R, G, B
            kh = state.kernel.shape[-2]
            ticks = dict(tickvals=[c * (kh + 1) + (kh - 1) / 2 for c in range(3)], ticktext=["R", "G", "B"])
            figure.update_layout(yaxis2=ticks, yaxis3=ticks)
        self.figure.show(figure)
        h_out, w_out = state.size_formulas()
        self.size_formula.value = (
            f"<b>output size</b> &nbsp; height: {h_out.formula} &nbsp;·&nbsp; width: {w_out.formula}"
        )
        self._restart()

    def _draw_step(self) -> None:
        """Draw the current step: the window's taps, the products, the output so far, the formula."""
        state, step = self.state, self.state.step
        taps = [
            cell_outline(int(r), int(c), subplot=1, name="window", dash="dot" if step.is_padding[a, b] else "solid")
            for a, r in enumerate(step.rows)
            for b, c in enumerate(step.cols)
        ]
        i, j = step.position
        output_cell = cell_outline(i, j, subplot=4, name="output cell")
        numbered = max(state.output_shape) <= MAX_NUMBERED
        with self.figure.batch():
            products = stacked(step.products)  # (kh, kw), or the three channels' products one above the other
            self.figure.update_trace(PRODUCTS, z=products, text=cell_text(products))
            output = state.output_so_far()
            self.figure.update_trace(OUTPUT, z=output, **({"text": cell_text(output)} if numbered else {}))
            self.figure.update_layout(shapes=[*self._fixed_shapes, *taps, output_cell])
        written = step.formula(max_terms=step.products.size) if step.products.ndim == 3 else step.formula()
        self.formula.value = f"<span style='font-size: 15px'><b>output[{i}, {j}]</b> = {written}</span>"  # RGB: all 27


def stacked(values: np.ndarray) -> np.ndarray:
    """A ``(kh, kw)`` grid as it is; ``(C, kh, kw)`` as the C slices one above the other, a blank row between."""
    if values.ndim == 2:
        return values
    blank = np.full((1, values.shape[-1]), np.nan)
    rows = [part for channel in values for part in (channel, blank)][:-1]
    return np.concatenate(rows, axis=0)  # (C·kh + C − 1, kw)


def _rgb_kernels(model: nn.Module | None) -> np.ndarray | None:
    """The first convolution's full kernels ``(out_channels, 3, kh, kw)`` if it takes RGB, else None."""
    if model is None:
        return None
    from torch import nn  # a model exists: torch is imported already

    weight = next((m.weight for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if weight is None or weight.shape[1] != 3:
        return None
    return weight.detach().double().cpu().numpy()
