"""ReceptiveFieldExplorer: click an output pixel of a tissue tile and see which input pixels can influence it.

:class:`ReceptiveFieldState` computes what is shown (no widgets); :class:`ReceptiveFieldExplorer` draws, in one
:class:`~segtutor.widgets.LiveFigure`, the tile with one box per stage of the network (the region the
feature pixel under the click sees, growing with depth; for DeepLabv3 also the taps of each ASPP rate) and the
effective receptive field: how strongly each input pixel actually moves the clicked output (the gradient). Sizes
are given in pixels and in µm of tissue at the tile's pixel size (``microns_per_pixel``, 1.0 for the course's
tissue, about 10×).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.colors
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from segtutor.data import generate_tile
from segtutor.explain import (
    COURSE_MICRONS_PER_PIXEL,
    EffectiveField,
    LayerField,
    box_at,
    receptive_field,
    receptive_spans,
)
from segtutor.figures import HIGHLIGHT, TEMPLATE, png_uri
from segtutor.models import LABELS, create_model, list_models
from segtutor.widgets.controls import report_errors
from segtutor.widgets.links import LinkField, Shareable, ShareLink
from segtutor.widgets.live_figure import Click, LiveFigure

STAGE_KINDS = ("encoder", "bottleneck")  # stages drawn as boxes; DeepLabv3's ASPP branches are drawn as taps
TILE, GRADIENT = range(2)  # trace indices


@dataclass(frozen=True)
class StageField:
    """A stage of a network, as its ``describe()`` names it, with the receptive field of its output."""

    name: str  # e.g. "enc2", "aspp_rate12"
    module: str  # qualified module name
    kind: str  # "encoder", "bottleneck", "aspp", ...
    field: LayerField


class ReceptiveFieldState:
    """Receptive fields of the course's models on one tissue tile (no widgets).

    Args:
        models: ``{name: model}`` for the names of :func:`segtutor.models.list_models`; missing ones are created
            untrained (``size="small"``, weights from ``seed``).
        tile_size: height and width of the generated H&E tile.
        seed: seeds the tile and the untrained weights.
        microns_per_pixel: the pixel size the fields are also given in, in µm (1.0: the course's tissue, ≈ 10×).
    """

    def __init__(
        self,
        models: dict[str, nn.Module] | None = None,
        *,
        tile_size: int = 96,
        seed: int = 0,
        microns_per_pixel: float = COURSE_MICRONS_PER_PIXEL,
    ) -> None:
        if not microns_per_pixel > 0:
            raise ValueError(f"microns_per_pixel must be a positive pixel size in µm, got {microns_per_pixel}")
        self.microns_per_pixel = float(microns_per_pixel)
        models = dict(models or {})
        unknown = sorted(set(models) - set(list_models()))
        if unknown:
            raise ValueError(f"unknown model names {unknown}; use names from {list_models()}")
        for name in list_models():
            if name not in models:
                models[name] = create_model(name, size="small", seed=seed)
        self.models = models
        self.tile, _mask = generate_tile(tile_size, seed=seed)  # (H, W, 3) uint8
        self._stages: dict[str, list[StageField]] = {}
        self.select(list_models()[0])

    def select(self, name: str) -> None:
        """Make ``name`` the current model and click the centre of the tile."""
        if name not in self.models:
            raise ValueError(f"unknown model {name!r}; choose one of {list(self.models)}")
        self.name = name
        model, size = self.model, self.tile.shape[:2]
        self._spans = receptive_spans(model, size, layers=[s.module for s in self.stages()])
        # One forward pass with gradients kept: every click then costs one backward pass (the effective field).
        self._field = EffectiveField(model, torch.from_numpy(self.tile).permute(2, 0, 1)[None] / 255)  # (1, 3, H, W)
        self.click((size[0] // 2, size[1] // 2))

    @property
    def model(self) -> nn.Module:
        """The current model."""
        return self.models[self.name]

    def stages(self) -> list[StageField]:
        """The current model's stages with their receptive fields, from its ``describe()`` (computed once)."""
        if self.name not in self._stages:
            described = [s for s in self.model.describe() if s.module]
            modules = [s.module for s in described]
            fields = {f.name: f for f in receptive_field(self.model, layers=modules,
                                                         microns_per_pixel=self.microns_per_pixel)}  # fmt: skip
            self._stages[self.name] = [
                StageField(s.name, s.module, s.kind, fields[s.module]) for s in described if s.module in fields
            ]
        return self._stages[self.name]

    def network_field(self) -> LayerField:
        """The receptive field of the whole network's output."""
        return self.stages()[-1].field  # the last stage computes the output (the final resize adds nothing visible)

    def aspp_rates(self) -> list[int]:
        """The atrous rates of the current model's ASPP (empty for models without one)."""
        return list(getattr(self.model, "aspp_rates", []))

    def click(self, pixel: tuple[int, int]) -> None:
        """Pick output pixel ``(row, col)``: computes :attr:`boxes` and :attr:`gradient` for it."""
        height, width = self.tile.shape[:2]
        row, col = pixel
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(f"pixel {pixel} lies outside the {height}×{width} tile")
        self.pixel = (int(row), int(col))
        self.boxes = {name: box_at(spans, (height, width), self.pixel) for name, spans in self._spans.items()}
        self.gradient = self._field.at(self.pixel)  # (H, W): the effective receptive field

    def aspp_taps(self) -> dict[int, list[tuple[int, int]]]:
        """For each ASPP rate, the input pixels at the centres of its 3×3 taps around the clicked pixel.

        A tap ``rate`` feature pixels away lies ``rate · jump`` input pixels away; taps outside the tile read
        padding zeros.
        """
        jump = self.stages()[-1].field.jump
        row, col = self.pixel
        return {
            rate: [(row + a * rate * jump, col + b * rate * jump) for a in (-1, 0, 1) for b in (-1, 0, 1)]
            for rate in self.aspp_rates()
        }


def _size_text(size: float) -> str:
    return "the whole image" if math.isinf(size) else f"{size} px"


def _microns_text(microns: float) -> str:
    """A length in µm for the tables: '204 µm', '51 µm', '0.25 µm'; 'the whole image' for inf."""
    return "the whole image" if math.isinf(microns) else f"{microns:.3g} µm" if microns < 10 else f"{microns:.0f} µm"


def _scale_text(microns_per_pixel: float) -> str:
    """'1 µm/px, ≈ 10×': the pixel size and the magnification it corresponds to (scanners' convention)."""
    return f"{microns_per_pixel:g} µm/px, ≈ {10 / microns_per_pixel:.3g}×"


class ReceptiveFieldExplorer(widgets.VBox, Shareable):
    """Choose UNet, FCN-8s or DeepLabv3 and click an output pixel: see the input region that can influence it.

    Args:
        models: trained models by name (``{"unet": model}``); the others are untrained ``"small"`` ones.
        tile_size: size of the generated H&E tile.
        seed: seeds the tile and the untrained weights.
        microns_per_pixel: the tile's pixel size in µm, for the sizes in µm; 1.0 for the course's tissue (≈ 10×);
            give your own scan's (0.5 at 20×, 0.25 at 40×) to see how much tissue a network sees there.
    """

    LINK_VIEW = "receptive-field"
    LINK_CONTROLS = {"model": "model_picker"}  # and the clicked pixel, see link_fields

    def __init__(
        self,
        models: dict[str, nn.Module] | None = None,
        *,
        tile_size: int = 96,
        seed: int = 0,
        microns_per_pixel: float = COURSE_MICRONS_PER_PIXEL,
    ) -> None:
        self.state = ReceptiveFieldState(models, tile_size=tile_size, seed=seed, microns_per_pixel=microns_per_pixel)
        self.model_picker = widgets.ToggleButtons(options=[(LABELS.get(n, n), n) for n in list_models()],
                                                  description="model")  # fmt: skip
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.figure = LiveFigure()
        self.errors = widgets.Output()

        guard = report_errors(self.errors)
        self.model_picker.observe(guard(self._on_model), names="value")
        self.figure.on_click(guard(self._on_click))
        hint = widgets.HTML("Click a pixel of the tile (left) to choose the output pixel.")
        self.share = ShareLink(self)
        super().__init__([self.model_picker, hint, self.summary, self.figure, self.table, self.errors, self.share])
        self._build_figure()
        self._draw()

    def link_fields(self) -> list[LinkField]:
        """The model, and the clicked output pixel as ``pixel=row,col``."""
        return [*super().link_fields(), LinkField("pixel", self._pixel_text, self._set_pixel)]

    def _pixel_text(self) -> str:
        return ",".join(str(int(v)) for v in self.state.pixel)

    def _set_pixel(self, text: str) -> None:
        try:
            row, col = (int(part) for part in text.split(","))
        except ValueError:
            raise ValueError("not a pixel row,col") from None
        self.state.click((row, col))  # raises ValueError outside the tile
        self._draw()

    def _on_model(self, change: dict) -> None:
        self.state.select(change["new"])
        self._draw()

    def _on_click(self, click: Click) -> None:
        self.state.click((round(click.y), round(click.x)))
        self._draw()
        self.share.refresh()

    def _build_figure(self) -> None:
        height, width = self.state.tile.shape[:2]
        titles = ["what the clicked pixel can see", "how much each pixel matters"]
        figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=titles)
        figure.add_trace(go.Image(source=png_uri(self.state.tile), name="tile", hoverinfo="x+y"), row=1, col=1)
        figure.add_trace(go.Heatmap(z=np.zeros((height, width)), colorscale="Magma", showscale=False, name="gradient",
                                    hovertemplate="row %{y}, col %{x}<extra></extra>"), row=1, col=2)  # fmt: skip
        plain = dict(constrain="domain", showgrid=False, zeroline=False)
        for suffix in ("", "2"):  # row 0 at the top, square pixels
            x_axis = dict(range=[-0.5, width - 0.5], **plain)
            y_axis = dict(range=[height - 0.5, -0.5], scaleanchor=f"x{suffix}", **plain)
            figure.update_layout({f"xaxis{suffix}": x_axis, f"yaxis{suffix}": y_axis})
        figure.update_layout(width=900, height=470, margin=dict(l=10, r=10, t=40, b=10), template=TEMPLATE,
                             showlegend=False, clickmode="event")  # fmt: skip
        self.figure.show(figure)

    def _draw(self) -> None:
        state = self.state
        row, col = state.pixel
        stages = state.stages()
        shown = [s for s in stages if s.kind in STAGE_KINDS]
        colours = plotly.colors.sample_colorscale("Viridis", [k / max(len(shown) - 1, 1) for k in range(len(shown))])
        colour_of = {s.name: colour for s, colour in zip(shown, colours)}
        shapes, annotations = [], []
        for stage, colour in zip(shown, colours):
            top, bottom, left, right = state.boxes[stage.module]
            shapes.append({"type": "rect", "name": stage.name, "xref": "x", "yref": "y", "x0": left - 0.5,
                           "x1": right + 0.5, "y0": top - 0.5, "y1": bottom + 0.5,
                           "line": {"color": colour, "width": 2}})  # fmt: skip
        top, bottom, left, right = state.boxes["output"]
        for suffix in ("", "2"):
            shapes.append({"type": "rect", "name": "network", "xref": f"x{suffix}", "yref": f"y{suffix}",
                           "x0": left - 0.5, "x1": right + 0.5, "y0": top - 0.5, "y1": bottom + 0.5,
                           "line": {"color": "white" if suffix else "black", "width": 2, "dash": "dash"}})  # fmt: skip
            shapes.append({"type": "circle", "name": "pixel", "xref": f"x{suffix}", "yref": f"y{suffix}",
                           "x0": col - 2, "x1": col + 2, "y0": row - 2, "y1": row + 2,
                           "fillcolor": HIGHLIGHT, "line": {"color": "white", "width": 1}})  # fmt: skip
        for rate, taps in state.aspp_taps().items():
            for tap_row, tap_col in taps:
                shapes.append({"type": "rect", "name": f"rate {rate}", "xref": "x", "yref": "y",
                               "x0": tap_col - 1.5, "x1": tap_col + 1.5, "y0": tap_row - 1.5, "y1": tap_row + 1.5,
                               "line": {"color": HIGHLIGHT, "width": 1.5}})  # fmt: skip
            annotations.append({"xref": "x", "yref": "y", "x": col + rate * stages[-1].field.jump, "y": row,
                                "text": f"rate {rate}", "showarrow": False, "yshift": 10,
                                "font": {"color": HIGHLIGHT, "size": 11}})  # fmt: skip
        # DeepLabv3: widen the view so the nearest ASPP taps show; grey is the zero padding around the tile
        height, width = state.tile.shape[:2]
        rates = state.aspp_rates()
        margin = rates[0] * stages[-1].field.jump + 8 if rates else 0
        if margin:
            shapes.insert(0, {"type": "rect", "name": "padding", "xref": "x", "yref": "y", "layer": "below",
                              "x0": -0.5 - margin, "x1": width - 0.5 + margin, "y0": -0.5 - margin,
                              "y1": height - 0.5 + margin, "fillcolor": "#e5e5e5", "line": {"width": 0}})  # fmt: skip
        strength = np.sqrt(state.gradient / max(float(state.gradient.max()), 1e-12))  # sqrt: the faint tail shows
        with self.figure.batch():
            self.figure.update_trace(GRADIENT, z=np.round(strength, 3))
            self.figure.update_layout({"xaxis.range": [-0.5 - margin, width - 0.5 + margin],
                                       "yaxis.range": [height - 0.5 + margin, -0.5 - margin]},
                                      shapes=shapes, annotations=annotations)  # fmt: skip
        network = state.network_field()
        label = LABELS.get(state.name, state.name)
        microns = state.microns_per_pixel
        across = (
            f" = {_microns_text(network.size_um)} of tissue at {_scale_text(microns)} (the tile is {height} px "
            f"= {_microns_text(height * microns)})"
            if not math.isinf(network.size)
            else " (image pooling)"
        )
        self.summary.value = (
            f"<b>{label}</b>, output pixel <b>({row}, {col})</b>: the dashed box is every input pixel that can change "
            f"it; the coloured boxes are what the encoder's stages see. The whole network sees "
            f"<b>{_size_text(network.size)}</b> across{across}. The right panel shows how strongly each pixel "
            "actually matters: the effective receptive field."
        )
        if rates:
            jump = stages[-1].field.jump
            reach = ", ".join(
                f"rate {rate}: {rate * jump} px = {_microns_text(rate * jump * microns)}" for rate in rates
            )
            self.summary.value += (
                f"<br>ASPP: each rate's 3×3 taps lie rate × {jump} px apart ({reach}). "
                "Taps beyond the tile (grey) read padding zeros: on small tiles the large rates see almost nothing."
            )
        rows = "".join(
            f"<tr><td style='color:{colour_of.get(s.name, 'white')}'>■</td><td>{s.name}</td><td>{s.field.jump}</td>"
            f"<td>{_size_text(s.field.size)}</td><td>{_microns_text(s.field.size_um)}</td></tr>"
            for s in stages
        )
        self.table.value = (
            "<table><tr><th></th><th>stage</th><th>jump (px)</th><th>receptive field</th>"
            f"<th>in µm at {_scale_text(microns)}</th></tr>" + rows + "</table>"
        )
