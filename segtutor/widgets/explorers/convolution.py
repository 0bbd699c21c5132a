"""ConvolutionExplorer: watch a kernel slide over an image and the feature map fill in, one sum at a time.

:class:`ConvolutionState` holds what is shown (no widgets: test it on its own); :class:`ConvolutionExplorer` is
the view: controls, a formula and one :class:`~segtutor.widgets.LiveFigure` with four grids
(padded input with the kernel's window, kernel, element-wise products, output).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from plotly.subplots import make_subplots
from torch import nn

from segtutor.explain.arguments import as_array, as_pair
from segtutor.explain.arithmetic import OutputSize, output_size
from segtutor.explain.conv import ConvStep, conv2d_steps
from segtutor.explain.kernels import KERNEL_PRESETS, first_layer_kernels, kernel_preset
from segtutor.explain.samples import number_grid, tissue_patch
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

INPUT, KERNEL, PRODUCTS, OUTPUT = range(4)  # trace indices, one heatmap per subplot


class ConvolutionState(SteppedState):
    """A convolution being stepped through: its settings, all its steps, and the current one.

    Args:
        image: ``(H, W)``.
        kernel: ``(kh, kw)``.
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
        image = as_array(image, "image", {2: "(H, W)"})
        kernel = as_array(kernel, "kernel", {2: "(kh, kw)"})
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
        """``(padded (H + top + bottom, W + left + right), rows, cols)``: the image in its zero frame, with the
        coordinates of its rows and columns (padding rows are negative or ≥ H)."""
        height, width = self.image.shape
        first, last = self.steps[0], self.steps[-1]
        top, left = max(0, -int(first.rows.min())), max(0, -int(first.cols.min()))
        bottom = max(0, int(last.rows.max()) - height + 1)
        right = max(0, int(last.cols.max()) - width + 1)
        padded = np.pad(self.image, ((top, bottom), (left, right)))
        return padded, np.arange(-top, height + bottom), np.arange(-left, width + right)

    def size_formulas(self) -> tuple[OutputSize, OutputSize]:
        """The output height and width, each with its formula (``padding="same"`` shown as the amounts it adds)."""
        (kh, kw), stride, dilation = self.kernel.shape, as_pair(self.stride, "stride"), as_pair(self.dilation, "dilation")
        if self.padding == "same":  # stride 1: the output keeps the input's size
            return tuple(
                OutputSize(n, f"padding 'same' adds {d}·({k} − 1) = {d * (k - 1)} → {n} (stride 1 keeps the size)")
                for n, k, d in zip(self.image.shape, (kh, kw), dilation)
            )
        padding = as_pair(self.padding, "padding", minimum=0)
        return tuple(
            output_size(n, k, s, p, d)
            for n, k, s, p, d in zip(self.image.shape, (kh, kw), stride, padding, dilation)
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
        self._inputs = {"numbers": number_grid(7, seed=seed), "tissue": tissue_patch(16, seed=seed)}
        if image is not None:
            self._inputs["yours"] = as_array(image, "image", {2: "(H, W)"})
        self._model_kernels = first_layer_kernels(model) if model is not None else np.zeros((0, 3, 3))
        kernel_options = [(name.replace("_", " "), name) for name in KERNEL_PRESETS]
        kernel_options += [(f"model: channel {c}", f"model:{c}") for c in range(len(self._model_kernels))]
        if kernel not in dict(kernel_options).values():
            raise ValueError(f"kernel must be one of {[value for _, value in kernel_options]}, got {kernel!r}")

        # Controls
        self.input_picker = widgets.Dropdown(
            options=[("numbers 7×7", "numbers"), ("tissue 16×16", "tissue")]
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
        return dict(image=self._inputs[self.input_picker.value],
                    kernel=self._kernel(self.kernel_picker.value, self.kernel_size.value),
                    stride=self.stride.value, padding=self.padding.value, dilation=self.dilation.value)  # fmt: skip

    def _kernel(self, name: str, size: int) -> np.ndarray:
        if name.startswith("model:"):
            return self._model_kernels[int(name.split(":")[1])]
        return kernel_preset(name, size, seed=self._seed)

    def _redraw(self) -> None:
        """Rebuild the figure for the current settings (sizes may have changed), then draw the current step."""
        state = self.state
        padded, rows, cols = state.padded_image
        is_tissue = self.input_picker.value == "tissue"  # grey levels in [0, 1]
        figure = make_subplots(
            rows=1,
            cols=4,
            subplot_titles=["input (padding outside the frame)", "kernel", "input × kernel", "output"],
            column_widths=[0.34, 0.18, 0.18, 0.30],
            horizontal_spacing=0.05,
        )
        kernel_range = float(np.abs(state.kernel).max()) or 1.0
        product_range = max(float(np.abs(padded).max()) * kernel_range, 1e-9)
        output_range = max(float(np.abs(state.feature_map).max()), 1e-9)
        traces = [
            grid_heatmap(padded, rows=rows, cols=cols, colorscale="Blues" if self.input_picker.value == "numbers"
                         else "gray", name="input",
                         zmin=0 if is_tissue else None, zmax=1 if is_tissue else None),
            grid_heatmap(state.kernel, colorscale="RdBu", zmid=0, zmin=-kernel_range, zmax=kernel_range, name="kernel"),
            grid_heatmap(state.step.products, colorscale="RdBu", zmin=-product_range, zmax=product_range,
                         name="input × kernel"),
            grid_heatmap(state.output_so_far(), colorscale="RdBu", zmin=-output_range, zmax=output_range,
                         name="output"),
        ]  # fmt: skip
        for column, trace in enumerate(traces, start=1):
            figure.add_trace(trace, row=1, col=column)
        square_cells(figure, 4)
        empty_cell_grid(figure, 4)  # the output's cells, before they are computed
        height, width = state.image.shape
        self._fixed_shapes = [
            cell_outline(0, 0, subplot=1, name="image", height=height, width=width, color="black", line_width=2),
            cell_outline(0, 0, subplot=4, name="output", height=state.output_shape[0], width=state.output_shape[1],
                         color="lightgray", line_width=1),
        ]  # fmt: skip
        figure.update_layout(width=960, height=340, margin=dict(l=10, r=10, t=60, b=10), template=TEMPLATE,
                             shapes=self._fixed_shapes)  # fmt: skip
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
            self.figure.update_trace(PRODUCTS, z=step.products, text=cell_text(step.products))
            output = state.output_so_far()
            self.figure.update_trace(OUTPUT, z=output, **({"text": cell_text(output)} if numbered else {}))
            self.figure.update_layout(shapes=[*self._fixed_shapes, *taps, output_cell])
        self.formula.value = f"<span style='font-size: 15px'><b>output[{i}, {j}]</b> = {step.formula()}</span>"
