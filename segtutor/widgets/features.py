"""What does a layer see? Its feature maps for one tile, and the first layer's learned kernels.

A convolution layer with C output channels turns a tile into C feature maps, one per learned kernel. Early maps
respond to colours and edges at full resolution; deep ones are small (the encoder has downsampled) and respond to
larger patterns, such as "a crowded cluster of dark nuclei". The first layer's kernels act on the RGB pixels
themselves, so they can be drawn as tiny colour images.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.widgets.controls import report_errors
from segtutor.widgets.figures import LiveFigure
from segtutor.widgets.pictures import as_rgb, image_trace, png_uri
from segtutor.widgets.theme import style

KERNEL_SCALE = 12  # screen pixels per kernel tap in the kernel mosaic


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor, module_name: str) -> torch.Tensor:
    """The output of ``model``'s module ``module_name`` when ``image`` passes through (in eval mode).

    Args:
        model: the network.
        image: ``(C, H, W)`` float in [0, 1].
        module_name: a name from ``model.named_modules()``, e.g. ``"encoder.2"``.

    Returns:
        ``(channels, h, w)`` float32 on the CPU.
    """
    modules = dict(model.named_modules())
    if module_name not in modules:
        raise ValueError(f"the model has no module {module_name!r}; e.g. {', '.join(list(modules)[1:6])}, …")
    captured: list[torch.Tensor] = []
    handle = modules[module_name].register_forward_hook(lambda _m, _i, output: captured.append(output))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(image.unsqueeze(0).to(device))  # (1, C, H, W)
    finally:
        handle.remove()
        model.train(was_training)
    output = captured[0]
    output = output[0] if isinstance(output, (tuple, list)) else output
    return output[0].float().cpu()  # (channels, h, w)


def mosaic(maps: torch.Tensor | np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Feature maps side by side in a grid, each scaled to [0, 1] on its own (a flat map becomes 0).

    Args:
        maps: ``(n, h, w)``.
        columns: maps per grid row.
        gap: NaN pixels between maps (drawn as blank).

    Returns:
        ``(rows * (h + gap) - gap, columns * (w + gap) - gap)`` float with NaN in the gaps and unused cells.
    """
    maps = np.asarray(maps, dtype=np.float64)
    count, height, width = maps.shape
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.0)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    for index in range(count):
        row, col = divmod(index, columns)
        top, left = row * (height + gap), col * (width + gap)
        grid[top : top + height, left : left + width] = scaled[index]
    return grid


def kernel_mosaic(weight: torch.Tensor, columns: int = 8, gap: int = 1) -> np.ndarray:
    """The kernels of a first convolution layer as small pictures: uint8 ``(rows * (k + gap) - gap, ..., 3)``.

    Each kernel ``weight[o]`` (``(in_channels, k, k)``) is scaled by its largest absolute weight so that 0 is
    mid-grey: a reddish tap means "more red in the pixel raises this feature". Kernels over 3 input channels
    are drawn in RGB, others in grey (their mean over the input channels). Gaps are white.
    """
    weight = weight.detach().float().cpu()
    out_channels, in_channels, height, width = weight.shape
    pictures = weight if in_channels == 3 else weight.mean(1, keepdim=True).expand(-1, 3, -1, -1)  # (O, 3, k, k)
    scale = pictures.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)
    pictures = (0.5 + 0.5 * pictures / scale).clamp(0, 1)  # 0 -> grey
    columns = max(1, min(columns, out_channels))
    rows = math.ceil(out_channels / columns)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for index in range(out_channels):
        row, col = divmod(index, columns)
        top, left = row * (height + gap), col * (width + gap)
        grid[top : top + height, left : left + width] = (pictures[index].permute(1, 2, 0) * 255).round().byte().numpy()
    return grid


def first_convolution(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """Name and module of the first ``Conv2d`` the model defines (the one that sees the pixels)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")


def layer_choices(model: nn.Module) -> list[tuple[str, str]]:
    """``(label, module name)`` of the layers worth looking at: the model's named stages, else every Conv2d."""
    if hasattr(model, "describe"):
        return [(f"{stage.name} ({stage.kind}, stride {stage.stride})", stage.module)
                for stage in model.describe() if stage.module]  # fmt: skip
    return [(name, name) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


class FeatureMapViewer(widgets.VBox):
    """Pick a layer and a tile; see the layer's feature maps, and the first layer's kernels.

    Args:
        model: a (trained) segtutor model.
        dataset: ``(image (C, H, W), mask)`` pairs to push through it.
        max_maps: feature maps shown at once; a slider pages through the rest.
        layer: module name to show first (default: the first stage).

    Example:
        >>> viewer = FeatureMapViewer(trained_model, TissueDataset(8, seed=1))
        >>> viewer.layer.value = "encoder.2"
    """

    def __init__(self, model: nn.Module, dataset: Dataset, *, max_maps: int = 32, layer: str | None = None) -> None:
        self.model = model
        self.dataset = dataset
        self.max_maps = max_maps
        self.maps: torch.Tensor | None = None  # (channels, h, w) of the layer shown

        choices = layer_choices(model)
        self.layer = widgets.Dropdown(options=choices, value=layer if layer is not None else choices[0][1],
                                      description="layer", layout=widgets.Layout(width="380px"))  # fmt: skip
        self.tile = widgets.IntSlider(value=0, min=0, max=len(dataset) - 1, description="tile", continuous_update=False)
        self.first_channel = widgets.IntSlider(value=0, min=0, max=0, step=max_maps, description="from channel",
                                               continuous_update=False,
                                               style={"description_width": "initial"})  # fmt: skip
        self.caption = widgets.HTML()
        self.errors = widgets.Output()
        figure = make_subplots(rows=1, cols=3, column_widths=[0.22, 0.53, 0.25], horizontal_spacing=0.04,
                               subplot_titles=("tile", "feature maps", "first layer's kernels"))  # fmt: skip
        blank = np.full((8, 8, 3), 255, np.uint8)
        figure.add_trace(image_trace(blank, "tile"), 1, 1)
        figure.add_trace(go.Heatmap(z=[[0.0]], colorscale="Viridis", zmin=0, zmax=1, showscale=False, name="maps",
                                    hovertemplate="%{z:.2f}<extra></extra>"), 1, 2)  # fmt: skip
        figure.add_trace(image_trace(blank, "kernels"), 1, 3)
        for k in (1, 2, 3):
            suffix = "" if k == 1 else str(k)
            figure.update_layout({f"xaxis{suffix}": dict(visible=False, constrain="domain"),
                                  f"yaxis{suffix}": dict(visible=False, autorange="reversed", constrain="domain",
                                                         scaleanchor=f"x{suffix}")})  # fmt: skip
        style(figure, width=1120, height=380, margin=dict(l=10, r=10, t=40, b=10))
        self.figure = LiveFigure(figure)
        self.figure.add_class("segtutor-features")
        self._titles = [dict(annotation) for annotation in self.figure.layout["annotations"]]

        guard = report_errors(self.errors)
        self.layer.observe(guard(lambda _: self.show()), names="value")
        self.tile.observe(guard(lambda _: self.show()), names="value")
        self.first_channel.observe(guard(lambda _: self._draw_maps()), names="value")
        self.show()
        super().__init__([widgets.HBox([self.layer, self.tile, self.first_channel]), self.caption, self.figure,
                          self.errors])  # fmt: skip

    def set_model(self, model: nn.Module) -> None:
        """Look inside ``model`` from now on (e.g. after more training)."""
        self.model = model
        choices = layer_choices(model)
        if [value for _, value in choices] != [value for _, value in self.layer.options]:
            self.layer.options = choices  # resets the value, which redraws
        self.show()

    def show(self) -> None:
        """Compute and draw the chosen layer's feature maps for the chosen tile, and the first layer's kernels."""
        image, _ = self.dataset[self.tile.value]
        self.maps = feature_maps(self.model, image, self.layer.value)
        channels, height, width = self.maps.shape
        self.first_channel.max = max(0, channels - 1)
        self.first_channel.disabled = channels <= self.max_maps  # all maps on screen already
        _, conv = first_convolution(self.model)
        with self.figure.batch():
            self.figure.update_trace(0, source=png_uri(as_rgb(image)))
            self._draw_maps()
            # each tap drawn as KERNEL_SCALE x KERNEL_SCALE screen pixels, so 3x3 kernels stay crisp
            offset = -0.5 + 0.5 / KERNEL_SCALE
            self.figure.update_trace(2, source=png_uri(kernel_mosaic(conv.weight, columns=4), scale=KERNEL_SCALE),
                                     dx=1 / KERNEL_SCALE, dy=1 / KERNEL_SCALE, x0=offset, y0=offset)  # fmt: skip
            self._set_title(2, f"first-layer kernels: {conv.out_channels} × "
                               f"{conv.in_channels}×{conv.kernel_size[0]}×{conv.kernel_size[1]}")  # fmt: skip
        self.caption.value = (
            f"<span style='font-size:13px'><b>{html.escape(self.layer.label)}</b>: {channels} feature maps of "
            f"{height}×{width} pixels for a {image.shape[-2]}×{image.shape[-1]} tile. Each map is scaled to its own "
            "range: yellow = strongest response in that map.</span>"
        )

    def _draw_maps(self) -> None:
        if self.maps is None:
            return
        start = self.first_channel.value
        shown = self.maps[start : start + self.max_maps]
        columns = min(8, math.ceil(math.sqrt(2 * len(shown))))  # a grid about twice as wide as tall
        self.figure.update_trace(1, z=np.round(mosaic(shown, columns=columns), 3))
        self._set_title(1, f"feature maps {start}–{start + len(shown) - 1} of {len(self.maps)}")

    def _set_title(self, index: int, text: str) -> None:
        self._titles[index] = {**self._titles[index], "text": text}
        self.figure.update_layout(annotations=self._titles)
