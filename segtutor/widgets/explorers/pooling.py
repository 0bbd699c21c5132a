"""PoolingExplorer: the encoder's order, feature map → ReLU → 2×2 max pooling, one window at a time.

:class:`PoolingState` holds what is shown (no widgets); :class:`PoolingExplorer` draws three grids in one
:class:`~segtutor.widgets.LiveFigure`: the feature map a convolution made (negative values included),
the same map after ReLU (negatives become 0), and the pooled map filling in, with each window's winner marked.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from plotly.subplots import make_subplots

from segtutor.explain.arguments import as_array
from segtutor.explain.conv import conv2d
from segtutor.explain.kernels import KERNEL_PRESETS, kernel_preset
from segtutor.explain.pool import PoolStep, pool2d_steps
from segtutor.explain.samples import number_grid, tissue_patch
from segtutor.figures import (
    HIGHLIGHT,
    MAX_NUMBERED,
    TEMPLATE,
    cell_outline,
    cell_text,
    empty_cell_grid,
    grid_heatmap,
    square_cells,
)
from segtutor.widgets.explorers.stepping import SteppedExplorer, SteppedState

FEATURES, RELU, POOLED = range(3)  # trace indices, one heatmap per subplot


class PoolingState(SteppedState):
    """Pooling of ``ReLU(feature_map)`` being stepped through.

    Args:
        feature_map: ``(H, W)``, e.g. a convolution's output (it may hold negative values).
        kernel_size: pooling window size.
        stride: step between windows.
        mode: ``"max"`` or ``"avg"``.

    Raises:
        ValueError: on a bad mode, shape or window size.
    """

    SETTINGS = ("feature_map", "kernel_size", "stride", "mode")

    def __init__(self, feature_map: np.ndarray, *, kernel_size: int = 2, stride: int = 2, mode: str = "max") -> None:
        self._apply(feature_map, kernel_size, stride, mode)

    def _apply(self, feature_map, kernel_size, stride, mode) -> None:
        feature_map = as_array(feature_map, "feature_map", {2: "(H, W)"})
        activated = np.maximum(feature_map, 0.0)  # ReLU
        steps = pool2d_steps(activated, kernel_size=kernel_size, stride=stride, mode=mode)  # may raise
        self.feature_map, self.activated = feature_map, activated
        self.kernel_size, self.stride, self.mode = kernel_size, stride, mode
        self.steps: list[PoolStep] = steps
        self.output_shape = (steps[-1].position[0] + 1, steps[-1].position[1] + 1)
        self.pooled = np.array([s.value for s in steps]).reshape(self.output_shape)  # (H_out, W_out)
        self.index = 0

    def output_so_far(self) -> np.ndarray:
        """The pooled map with only the windows up to the current one filled in (NaN elsewhere)."""
        return self.values_so_far(self.pooled)


class PoolingExplorer(SteppedExplorer):
    """Step through ReLU and pooling of a feature map; the winner of each max-pooling window is marked.

    Args:
        feature_map: your own ``(H, W)`` feature map, offered next to the built-in ones (a Sobel-filtered
            8×8 number grid and 16×16 tissue patch).
        seed: seeds the sample inputs.
    """

    LINK_VIEW = "pooling"
    LINK_CONTROLS = {"input": "input_picker", "kernel": "kernel_picker", "mode": "mode", "window": "kernel_size",
                     "stride": "stride", "step": "stepper.slider"}  # fmt: skip

    def __init__(self, feature_map: np.ndarray | None = None, *, seed: int = 0) -> None:
        self._images = {"numbers": number_grid(8, seed=seed), "tissue": tissue_patch(16, seed=seed)}
        self._yours = None if feature_map is None else as_array(feature_map, "feature_map", {2: "(H, W)"})
        self._seed = seed
        options = [("numbers 8×8", "numbers"), ("tissue 16×16", "tissue")]
        self.input_picker = widgets.Dropdown(
            options=options + ([("your feature map", "yours")] if feature_map is not None else []), description="input"
        )
        self.kernel_picker = widgets.Dropdown(options=[(n.replace("_", " "), n) for n in KERNEL_PRESETS],
                                              value="sobel_x", description="conv kernel")  # fmt: skip
        self.mode = widgets.ToggleButtons(options=[("max", "max"), ("average", "avg")], value="max",
                                          description="pooling", style={"button_width": "auto"})  # fmt: skip
        self.kernel_size = widgets.IntSlider(value=2, min=1, max=4, description="window")
        self.stride = widgets.IntSlider(value=2, min=1, max=3, description="stride")
        self.state = PoolingState(self._feature_map())
        self._fixed_shapes: list[dict] = []  # the output grid's outline, drawn at every step
        super().__init__([[self.input_picker, self.kernel_picker, self.mode], [self.kernel_size, self.stride]])

    def _feature_map(self) -> np.ndarray:
        """The chosen input, convolved with the chosen kernel (padding 1 keeps the size)."""
        if self.input_picker.value == "yours":
            return self._yours
        image = self._images[self.input_picker.value]
        return conv2d(image, kernel_preset(self.kernel_picker.value, 3, seed=self._seed), padding=1)

    def _settings(self) -> dict:
        return dict(feature_map=self._feature_map(), kernel_size=self.kernel_size.value, stride=self.stride.value,
                    mode=self.mode.value)  # fmt: skip

    def _redraw(self) -> None:
        state = self.state
        figure = make_subplots(rows=1, cols=3, horizontal_spacing=0.06, column_widths=[0.37, 0.37, 0.26],
                               subplot_titles=["feature map<br>(convolution output)", "after ReLU: max(0, x)",
                                               f"{'max' if state.mode == 'max' else 'average'} pooled"])  # fmt: skip
        scale = max(float(np.abs(state.feature_map).max()), 1e-9)
        for column, values in enumerate((state.feature_map, state.activated, state.output_so_far()), start=1):
            name = ["feature map", "ReLU", "pooled"][column - 1]
            figure.add_trace(grid_heatmap(values, colorscale="RdBu", zmin=-scale, zmax=scale, name=name, decimals=1,
                                          text_px=11),  # "−26" fits its cell at 592 px
                             row=1, col=column)  # fmt: skip
        square_cells(figure, 3)
        empty_cell_grid(figure, 3)  # the pooled map's cells, before they are computed
        self._fixed_shapes = [
            cell_outline(0, 0, subplot=3, name="output", height=state.output_shape[0], width=state.output_shape[1],
                         color="lightgray", line_width=1),
        ]  # fmt: skip
        figure.update_layout(width=960, height=360, margin=dict(l=10, r=10, t=60, b=10), template=TEMPLATE,
                             shapes=self._fixed_shapes)  # fmt: skip
        for annotation in figure.layout.annotations:
            annotation.font.size = 13
        self.figure.show(figure)
        self._restart()

    def _draw_step(self) -> None:
        state, step = self.state, self.state.step
        (kh, kw), i, j = step.window.shape, *step.position
        shapes = [
            *self._fixed_shapes,
            cell_outline(int(step.rows[0]), int(step.cols[0]), subplot=2, name="window", height=kh, width=kw),
            cell_outline(i, j, subplot=3, name="output cell"),
        ]
        if step.winner is not None:
            winner = cell_outline(*step.winner, subplot=2, name="winner", color=HIGHLIGHT, line_width=1)
            shapes.append({**winner, "fillcolor": HIGHLIGHT, "opacity": 0.45})
        output = state.output_so_far()
        numbered = max(output.shape) <= MAX_NUMBERED
        with self.figure.batch():
            self.figure.update_trace(POOLED, z=output, **({"text": cell_text(output, 1)} if numbered else {}))
            self.figure.update_layout(shapes=shapes)
        self.formula.value = (
            f"<span style='font-size: 15px'><b>pooled[{i}, {j}]</b> = {step.formula(decimals=1)}</span>"
        )
