"""UpsamplingExplorer: a transposed convolution stamping the kernel, the overlaps it leaves, and bilinear upsampling.

:class:`UpsamplingState` holds what is shown (no widgets); :class:`UpsamplingExplorer` draws five grids in one
:class:`~segtutor.widgets.LiveFigure`: the small input, the kernel, the output as the stamps add up,
how many stamps cover each output pixel (uneven counts: the checkerboard), and bilinear upsampling of the same
input for comparison.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from plotly.subplots import make_subplots

from segtutor.explain.arguments import as_array
from segtutor.explain.kernels import UPSAMPLING_KERNELS, upsampling_kernel
from segtutor.explain.samples import number_grid, tissue_patch
from segtutor.explain.transposed import (
    ScatterStep,
    add_stamp,
    bilinear_upsample,
    conv_transpose2d_steps,
    overlap_count,
)
from segtutor.figures import TEMPLATE, cell_outline, cell_text, grid_heatmap, square_cells
from segtutor.widgets.explorers.stepping import SteppedExplorer, SteppedState

INPUT, KERNEL, OUTPUT, OVERLAP, BILINEAR = range(5)  # trace indices, one heatmap per subplot
MAX_NUMBERED_OUTPUT = 14  # the three output grids are the widest panels: numbers stay readable at stride 3 (12 × 12)
class UpsamplingState(SteppedState):
    """A transposed convolution being stepped through, one input pixel's stamp at a time.

    Args:
        x: ``(H, W)`` the small map to upsample.
        kernel: ``(kh, kw)``.
        stride: spacing of the stamps (the upsampling factor).
        padding: pixels cropped from each side of the output.

    Raises:
        ValueError: on settings that leave no output.
    """

    SETTINGS = ("x", "kernel", "stride", "padding")

    def __init__(self, x: np.ndarray, kernel: np.ndarray, *, stride: int = 2, padding: int = 0) -> None:
        self._apply(x, kernel, stride, padding)

    def _apply(self, x, kernel, stride, padding) -> None:
        x, kernel = as_array(x, "x", {2: "(H, W)"}), as_array(kernel, "kernel", {2: "(kh, kw)"})
        steps = conv_transpose2d_steps(x, kernel, stride=stride, padding=padding)  # may raise
        self.x, self.kernel, self.stride, self.padding = x, kernel, stride, padding
        self.steps: list[ScatterStep] = steps
        self.overlap = overlap_count(x.shape, kernel.shape, stride=stride, padding=padding)  # (H_out, W_out)
        # the output after each step: partial[k] holds the stamps of steps 0 … k
        output = np.zeros(self.overlap.shape)
        partial = []
        for step in steps:
            add_stamp(output, step)
            partial.append(output.copy())
        self.partial = np.stack(partial)  # (H·W, H_out, W_out)
        self.bilinear = bilinear_upsample(x, stride)  # (stride·H, stride·W)
        self.index = 0

    def output_so_far(self) -> np.ndarray:
        """The output with the stamps of the steps up to the current one added."""
        return self.partial[self.index]

    def overlap_so_far(self) -> np.ndarray:
        """How many of the stamps up to the current step cover each output pixel: ``overlap`` at the last step."""
        count = np.zeros(self.overlap.shape)  # (H_out, W_out)
        for step in self.steps[: self.index + 1]:
            add_stamp(count, step, 1)  # +1 on the output pixels this stamp lands on
        return count


class UpsamplingExplorer(SteppedExplorer):
    """Step through a transposed convolution as scatter-add, with its overlap count map and bilinear upsampling.

    Args:
        x: your own small ``(H, W)`` map, offered next to the built-in ones (numbers 4×4, tissue 8×8).
        seed: seeds the random kernel and the sample inputs.
    """

    LINK_VIEW = "upsampling"
    LINK_CONTROLS = {"input": "input_picker", "kernel": "kernel_picker", "kernel_size": "kernel_size",
                     "stride": "stride", "padding": "padding", "step": "stepper.slider"}  # fmt: skip

    def __init__(self, x: np.ndarray | None = None, *, seed: int = 0) -> None:
        self._seed = seed
        self._inputs = {"numbers": number_grid(4, seed=seed), "tissue": tissue_patch(8, seed=seed)}
        if x is not None:
            self._inputs["yours"] = as_array(x, "x", {2: "(H, W)"})
        options = [("numbers 4×4", "numbers"), ("tissue 8×8", "tissue")]
        options += [("your map", "yours")] if x is not None else []
        self.input_picker = widgets.Dropdown(options=options, description="input")
        self.kernel_picker = widgets.Dropdown(options=UPSAMPLING_KERNELS, value="ones", description="kernel")
        self.kernel_size = widgets.IntSlider(value=3, min=1, max=5, description="kernel size")
        self.stride = widgets.IntSlider(value=2, min=1, max=3, description="stride")
        self.padding = widgets.IntSlider(value=0, min=0, max=2, description="padding")
        self.state = UpsamplingState(self._inputs["numbers"], self._kernel(), stride=2)
        super().__init__([[self.input_picker, self.kernel_picker, self.kernel_size], [self.stride, self.padding]])

    def _kernel(self) -> np.ndarray:
        return upsampling_kernel(self.kernel_picker.value, self.kernel_size.value, seed=self._seed)

    def _settings(self) -> dict:
        return dict(x=self._inputs[self.input_picker.value], kernel=self._kernel(), stride=self.stride.value,
                    padding=self.padding.value)  # fmt: skip

    def _redraw(self) -> None:
        state = self.state
        figure = make_subplots(
            rows=1, cols=5, horizontal_spacing=0.04, column_widths=[0.14, 0.12, 0.26, 0.24, 0.24],
            subplot_titles=["input", "kernel", "transposed conv (stamps added)", "stamps per pixel",
                            f"bilinear ×{state.stride}"],
        )  # fmt: skip
        out_range = max(float(np.abs(state.partial[-1]).max()), 1e-9)
        kernel_range = max(float(np.abs(state.kernel).max()), 1e-9)
        traces = [
            grid_heatmap(state.x, colorscale="Blues", name="input", decimals=1),
            grid_heatmap(state.kernel, colorscale="RdBu", zmin=-kernel_range, zmax=kernel_range, name="kernel"),
            grid_heatmap(state.output_so_far(), colorscale="RdBu", zmin=-out_range, zmax=out_range, name="output",
                         decimals=1, max_numbered=MAX_NUMBERED_OUTPUT),
            grid_heatmap(state.overlap_so_far(), colorscale="Oranges", zmin=0, zmax=max(float(state.overlap.max()), 1),
                         name="stamps per pixel", decimals=0, max_numbered=MAX_NUMBERED_OUTPUT),
            grid_heatmap(state.bilinear, colorscale="Blues", name="bilinear", decimals=1,
                         max_numbered=MAX_NUMBERED_OUTPUT),
        ]  # fmt: skip
        for column, trace in enumerate(traces, start=1):
            figure.add_trace(trace, row=1, col=column)
        square_cells(figure, 5)
        figure.update_layout(width=960, height=320, margin=dict(l=10, r=10, t=60, b=10), template=TEMPLATE)
        self.figure.show(figure)
        self._restart()

    def _draw_step(self) -> None:
        state, step = self.state, self.state.step
        i, j = step.position
        (kh, kw), rows, cols = step.contribution.shape, step.rows, step.cols
        stamp = cell_outline(int(rows[0]), int(cols[0]), subplot=3, name="stamp", height=kh, width=kw)
        output, overlap = state.output_so_far(), state.overlap_so_far()
        numbered = max(output.shape) <= MAX_NUMBERED_OUTPUT
        with self.figure.batch():
            self.figure.update_trace(OUTPUT, z=output, **({"text": cell_text(output, 1)} if numbered else {}))
            self.figure.update_trace(OVERLAP, z=overlap, **({"text": cell_text(overlap, 0)} if numbered else {}))
            self.figure.update_layout(shapes=[cell_outline(i, j, subplot=1, name="input pixel"), stamp])
        self.formula.value = f"<span style='font-size: 15px'><b>input[{i}, {j}]</b>: {step.formula(decimals=1)}</span>"
