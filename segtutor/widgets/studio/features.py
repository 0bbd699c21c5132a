"""What does a layer see? Its feature maps for one tile, and the first layer's learned kernels.

The maps come from :func:`segtutor.models.feature_maps`, the pictures from :mod:`segtutor.figures.pictures`.

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

from segtutor.figures import image_trace, kernel_mosaic, mosaic, png_uri, style
from segtutor.models import feature_maps, first_convolution, layer_choices
from segtutor.predict import image_to_rgb
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.live_figure import LiveFigure

KERNEL_SCALE = 12  # screen pixels per kernel tap in the kernel mosaic


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

        guard = report_errors(self.errors)
        self.layer.observe(guard(lambda _: self.show()), names="value")
        self.tile.observe(guard(lambda _: self.show()), names="value")
        self.first_channel.observe(guard(lambda _: self._draw_maps()), names="value")
        self.show()
        super().__init__([row([self.layer, self.tile, self.first_channel]), self.caption, self.figure,
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
            self.figure.update_trace("tile", source=png_uri(image_to_rgb(image)))
            self._draw_maps()
            # each tap drawn as KERNEL_SCALE x KERNEL_SCALE screen pixels, so 3x3 kernels stay crisp
            offset = -0.5 + 0.5 / KERNEL_SCALE
            self.figure.update_trace("kernels", source=png_uri(kernel_mosaic(conv.weight, columns=4),
                                     scale=KERNEL_SCALE), dx=1 / KERNEL_SCALE, dy=1 / KERNEL_SCALE, x0=offset,
                                     y0=offset)  # fmt: skip
            self.figure.set_subplot_title(2, f"first-layer kernels:<br>{conv.out_channels} × "
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
        self.figure.update_trace("maps", z=np.round(mosaic(shown, columns=columns), 3))
        self.figure.set_subplot_title(1, f"feature maps {start}–{start + len(shown) - 1} of {len(self.maps)}")
