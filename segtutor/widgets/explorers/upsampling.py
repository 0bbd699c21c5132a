"""UpsamplingExplorer: a transposed convolution stamping the kernel, the overlaps it leaves, and bilinear upsampling.

:class:`UpsamplingState` holds what is shown (no widgets); :class:`UpsamplingExplorer` draws five grids in one
:class:`~segtutor.widgets.LiveFigure`, as many a row as the output's width leaves readable (:func:`panels_per_row`):
the small input, the kernel, the output as the stamps add up,
how many stamps cover each output pixel (uneven counts: the checkerboard), and bilinear upsampling of the same
input for comparison.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
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
from segtutor.widgets.controls import report_errors
from segtutor.widgets.explorers.stepping import SteppedExplorer, SteppedState

INPUT, KERNEL, OUTPUT, OVERLAP, BILINEAR = range(5)  # trace indices, one heatmap per subplot
TITLES = ["input", "kernel", "transposed conv<br>(stamps added)", "stamps per pixel", "bilinear ×{stride}"]
MAX_NUMBERED_OUTPUT = 14  # numbers stay in the output grids at stride 3 (12 × 12): panels_per_row gives them room
WIDEST_PX = 1240  # the figure's widest (a 1280 px output); the browser draws it narrower where the output is
CELL_PX, TEXT_PX = 20, 11  # each grid cell at least this wide, its number written this large
GAP_PX, TITLE_PX, MARGIN_PX = 30, 56, 10  # between panels, above each row (two-line titles), around the figure
RELAYOUT_PX = 48  # the browser's width changed by more: lay out again, so the rows are as tall as the panels


def panels_per_row(room: int, grid_side: int, num_panels: int = 5) -> int:
    """How many square panels of ``grid_side`` cells fit side by side in ``room`` px, each cell ``CELL_PX`` wide.

    ``room`` is the width the browser draws the figure at (0: not drawn yet, lay out for ``WIDEST_PX``). A 12 × 12
    output fits three a row in a wide output and two in a narrow one; fewer per row than that would shrink the cells
    until their numbers are too small to read.
    """
    width = min(room, WIDEST_PX) if room > 0 else WIDEST_PX
    plot = width - 2 * MARGIN_PX
    fits = [n for n in range(1, num_panels + 1) if (plot - (n - 1) * GAP_PX) / n >= grid_side * CELL_PX]
    return max(fits, default=1)


def panel_grid_figure(room: int, grid_side: int, titles: list[str]) -> go.Figure:
    """An empty figure with one square subplot per title, as many a row as :func:`panels_per_row` allows; the
    figure is as tall as its rows. Subplot ``k`` (1-based) is the ``k``-th title's."""
    count = len(titles)
    per_row = panels_per_row(room, grid_side, count)
    rows = -(-count // per_row)  # ceiling
    width = min(room, WIDEST_PX) if room > 0 else WIDEST_PX
    plot_width = width - 2 * MARGIN_PX
    panel = (plot_width - (per_row - 1) * GAP_PX) / per_row  # px, square
    plot_height = rows * panel + (rows - 1) * TITLE_PX
    specs = [[{} if r * per_row + c < count else None for c in range(per_row)] for r in range(rows)]
    figure = make_subplots(rows=rows, cols=per_row, specs=specs, subplot_titles=titles,
                           horizontal_spacing=GAP_PX / plot_width,
                           vertical_spacing=TITLE_PX / plot_height if rows > 1 else 0.0)  # fmt: skip
    figure.update_layout(width=WIDEST_PX, height=round(plot_height + TITLE_PX + MARGIN_PX),
                         margin=dict(l=MARGIN_PX, r=MARGIN_PX, t=TITLE_PX, b=MARGIN_PX))  # fmt: skip
    return figure


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
        self.figure.observe(report_errors(self.errors)(self._on_room), names="room")

    def _kernel(self) -> np.ndarray:
        return upsampling_kernel(self.kernel_picker.value, self.kernel_size.value, seed=self._seed)

    def _settings(self) -> dict:
        return dict(x=self._inputs[self.input_picker.value], kernel=self._kernel(), stride=self.stride.value,
                    padding=self.padding.value)  # fmt: skip

    def _redraw(self) -> None:
        self.figure.show(self._figure())
        self._restart()

    def _on_room(self, _change: dict) -> None:
        """The browser draws the figure at another width: lay the panels out again if fewer or more fit a row (or
        the rows' height is far off)."""
        room = self.figure.room
        if panels_per_row(room, self._grid_side()) != self._per_row or abs(room - self._laid_out_for) > RELAYOUT_PX:
            self.figure.show(self._figure())
            self._draw_step()  # the same step, on the new layout

    def _grid_side(self) -> int:
        return max(*self.state.overlap.shape, *self.state.bilinear.shape)

    def _figure(self) -> go.Figure:
        state, side = self.state, self._grid_side()
        self._per_row, self._laid_out_for = panels_per_row(self.figure.room, side), self.figure.room or WIDEST_PX
        figure = panel_grid_figure(self.figure.room, side, [t.format(stride=state.stride) for t in TITLES])
        out_range = max(float(np.abs(state.partial[-1]).max()), 1e-9)
        kernel_range = max(float(np.abs(state.kernel).max()), 1e-9)
        numbers = dict(max_numbered=MAX_NUMBERED_OUTPUT, text_px=TEXT_PX)
        traces = [
            grid_heatmap(state.x, colorscale="Blues", name="input", decimals=1, **numbers),
            grid_heatmap(state.kernel, colorscale="RdBu", zmin=-kernel_range, zmax=kernel_range, name="kernel",
                         **numbers),
            grid_heatmap(state.output_so_far(), colorscale="RdBu", zmin=-out_range, zmax=out_range, name="output",
                         decimals=1, **numbers),
            grid_heatmap(state.overlap_so_far(), colorscale="Oranges", zmin=0, zmax=max(float(state.overlap.max()), 1),
                         name="stamps per pixel", decimals=0, **numbers),
            grid_heatmap(state.bilinear, colorscale="Blues", name="bilinear", decimals=1, **numbers),
        ]  # fmt: skip
        for index, trace in enumerate(traces):
            figure.add_trace(trace, row=index // self._per_row + 1, col=index % self._per_row + 1)
        square_cells(figure, len(traces))
        figure.update_layout(template=TEMPLATE)
        for annotation in figure.layout.annotations:
            annotation.font.size = 13
        return figure

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
