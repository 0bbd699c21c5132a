"""An architecture diagram drawn from the model itself: its named stages, their output shapes and connections.

Every segtutor model lists its stages with ``model.describe()`` (encoder blocks, UNet's decoder blocks with their
skip connections, FCN-8s's score layers and fusions, DeepLabv3's ASPP branches).
:func:`segtutor.models.describe_architecture` pushes one image through the model to learn each stage's output
shape; this module places the stages on a grid
(:func:`place_stages`) and draws boxes and arrows with plotly (:func:`architecture_figure`):

- left to right: the order of computation (a stage sits one column right of its latest input; a branch that
  feeds a later stage is moved right, next to it);
- top to bottom: the output stride, so UNet's "U", FCN-8s's "V" and DeepLabv3's plateau at stride 8 or 16 appear
  by themselves;
- orange arrows: connections that jump over columns, the skip connections.

Every label stays inside its box, so no two labels overlap at any width (:func:`label_layout`): where the figure is
drawn wide enough, the name and shape lie flat (long names broken after an underscore); where it is narrow (a
13-column FCN-8s in a 592 px output leaves 43 px a column), they stand upright and the rows grow taller to hold
them. A skip arrow is labelled only where its label is clear of every box.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import plotly.graph_objects as go

from segtutor.figures.theme import TEMPLATE
from segtutor.models import ArchitectureSummary, Stage, StageShape, format_count

KIND_COLORS = {  # box fill by stage kind
    "input": "#e0e0e0",
    "encoder": "#9ecae1",
    "bottleneck": "#6baed6",
    "decoder": "#a1d99b",
    "score": "#fdd0a2",
    "upsample": "#c7e9c0",
    "fuse": "#ffffff",
    "aspp": "#fcbba1",
    "classifier": "#dadaeb",
}
SKIP_COLOR = "#e6550d"  # arrows that jump over columns: skip connections
ARROW_COLOR = "#555555"
BOX_WIDTH = 0.84  # in columns
BOX_HEIGHT = 0.62  # in stride rows
ROW_SPACING = 0.8  # vertical distance between stages that would share a place
ROW_PX = 80  # a stride row's height where the labels lie flat: a box holds three lines
TEXT_PX = 11  # labels are written this large
LINE_PX = 1.3 * TEXT_PX  # plotly's distance between two lines of text
CHAR_EM = 0.6  # a character's width in font sizes, on the wide side (Arial/Helvetica: 0.5 to 0.58, bold too)
PAD_PX = 6  # room left between a label and its box's edges
MARGIN_PX = 10  # around the diagram (left, right, bottom; top without a title)


def place_stages(stages: Sequence[Stage]) -> dict[str, tuple[float, float]]:
    """``(x, y)`` of every stage: x counts computation steps, y is ``-log2(stride)`` (finer at the top).

    Args:
        stages: in forward order (every stage after its inputs); inputs may name ``"images"``.

    Returns:
        ``{stage name: (x, y)}``, ``"images"`` at ``(0, 0)``.
    """
    names = ["images"] + [stage.name for stage in stages if stage.name != "images"]
    inputs = {stage.name: stage.inputs for stage in stages if stage.name != "images"}
    stride = {stage.name: stage.stride for stage in stages}
    stride["images"] = 1
    # 1) as early as possible: one column right of the latest input
    column = {"images": 0}
    for name in names[1:]:
        column[name] = 1 + max(column[source] for source in inputs[name])
    # 2) a stage that only feeds later stages moves right, next to its first consumer (FCN's score layers)
    consumers = {name: [target for target in names if name in inputs.get(target, ())] for name in names}
    for name in reversed(names[1:]):
        if consumers[name]:
            column[name] = max(column[name], min(column[target] for target in consumers[name]) - 1)
    # 3) rows by stride; stages sharing a place are spread vertically (DeepLabv3's parallel ASPP branches)
    places: dict[tuple[int, float], list[str]] = {}
    for name in names:
        places.setdefault((column[name], -math.log2(stride[name])), []).append(name)
    positions = {}
    for (x, y), group in places.items():
        for index, name in enumerate(group):
            positions[name] = (float(x), y + (index - (len(group) - 1) / 2) * ROW_SPACING)
    return positions


class LabelLayout(NamedTuple):
    """How the boxes' labels are written: each box's lines ``(label lines, shape lines)``, flat or upright, and how
    tall a stride row is drawn (px)."""

    lines: dict[str, tuple[list[str], list[str]]]
    upright: bool
    row_px: float


def text_px(text: str) -> float:
    """About how wide ``text`` is written at ``TEXT_PX`` (an estimate on the wide side)."""
    return len(text) * TEXT_PX * CHAR_EM


def label_layout(labels: dict[str, tuple[str, str]], column_px: float) -> LabelLayout:
    """How to write each box's label, ``{stage name: (label, shape)}``, in columns ``column_px`` wide.

    Flat where every box can hold its label and shape: each box takes the first that fits of label and shape on a
    line each, the label broken after its underscores ("upscore_" / "pool4"), or the shape after its "× ".
    Otherwise upright (``textangle`` -90): label and shape side by side across each box (two lines need 29 px: FCN-8s
    at 592 px leaves 30), the rows tall enough for the longest line to fit along the box.
    """
    across_px, down_px = BOX_WIDTH * column_px - PAD_PX, BOX_HEIGHT * ROW_PX - PAD_PX  # inside a flat box

    def fits(lines: list[str]) -> bool:
        return max(map(text_px, lines)) <= across_px and len(lines) * LINE_PX <= down_px

    flat = {}
    for name, (label, shape) in labels.items():
        ways = [([label], [shape]), (_broken(label), [shape]), ([label], _broken(shape))]
        flat[name] = next((way for way in ways if fits(way[0] + way[1])), None)
    if all(way is not None for way in flat.values()):
        return LabelLayout(flat, upright=False, row_px=ROW_PX)
    longest = max(text_px(text) for label, shape in labels.values() for text in (label, shape))
    upright = {name: ([label], [shape]) for name, (label, shape) in labels.items()}
    return LabelLayout(upright, upright=True, row_px=max(ROW_PX, (longest + PAD_PX) / BOX_HEIGHT))


def architecture_figure(
    summary: ArchitectureSummary, *, width: int = 1100, title: bool = True, room: int = 0
) -> go.Figure:
    """Boxes (one per stage, with its output shape) and arrows (its inputs), as a plotly figure.

    Hover a box for what the stage does, its output shape, stride and parameters. ``title`` adds a line with the
    parameter count and FLOPs. ``room``: the width (px) the browser draws the figure at (``LiveFigure.room``;
    0: ``width``); the labels are laid out for it (:func:`label_layout`).
    """
    stages = [item.stage for item in summary.stages]
    positions = place_stages(stages)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    x_range, y_range = [min(xs) - 0.6, max(xs) + 0.6], [min(ys) - 0.6, max(ys) + 0.6]
    drawn_px = min(room, width) if room > 0 else width
    column_px = (drawn_px - 2 * MARGIN_PX) / (x_range[1] - x_range[0])
    layout = label_layout({item.stage.name: (_label(item.stage), _shape_text(item.shape)) for item in summary.stages},
                          column_px)  # fmt: skip
    by_name = {item.stage.name: item for item in summary.stages}
    shapes, annotations = [], []
    hover_x, hover_y, hover_text = [], [], []
    for item in summary.stages:
        stage, (x, y) = item.stage, positions[item.stage.name]
        shapes.append(
            dict(type="rect", x0=x - BOX_WIDTH / 2, x1=x + BOX_WIDTH / 2, y0=y - BOX_HEIGHT / 2, y1=y + BOX_HEIGHT / 2,
                 fillcolor=KIND_COLORS.get(stage.kind, "#ffffff"), line=dict(color="#444444", width=1), layer="below")
        )  # fmt: skip
        name_lines, shape_lines = layout.lines[stage.name]
        text = f"<b>{'<br>'.join(map(html.escape, name_lines))}</b><br>{'<br>'.join(shape_lines)}"
        annotations.append(dict(x=x, y=y, text=text, showarrow=False, font=dict(size=TEXT_PX), xref="x", yref="y",
                                textangle=-90 if layout.upright else 0))  # fmt: skip
        hover_x.append(x)
        hover_y.append(y)
        hover_text.append(_hover_text(item, summary.input_size))
        for source in stage.inputs:
            annotations.append(_arrow(positions[source], (x, y), skip=_is_skip(positions[source], (x, y))))
            if _is_skip(positions[source], (x, y)) and by_name[source].stage.kind != "input":
                label = "copy & concatenate" if stage.kind == "decoder" else "skip"
                (x0, y0), (x1, y1) = positions[source], (x, y)
                centre = ((x0 + x1) / 2, (y0 + y1) / 2 + (LINE_PX / 2 + 2) / layout.row_px)  # just above the arrow
                size = ((text_px(label) + 2 * PAD_PX) / column_px, LINE_PX / layout.row_px)  # in columns and rows
                if not any(_meets(centre, size, place) for place in positions.values()):  # clear of every box
                    annotations.append(dict(x=centre[0], y=centre[1], text=label, showarrow=False,
                                            font=dict(size=TEXT_PX, color=SKIP_COLOR), xref="x", yref="y"))
    top = 40 if title else MARGIN_PX
    height = round(top + MARGIN_PX + layout.row_px * (y_range[1] - y_range[0]))
    figure = go.Figure(
        go.Scatter(x=hover_x, y=hover_y, mode="markers", marker=dict(size=28, opacity=0), hovertext=hover_text,
                   hoverinfo="text", showlegend=False, name="stages"),  # fmt: skip
        layout=dict(
            shapes=shapes,
            annotations=annotations,
            width=width,
            height=height,
            margin=dict(l=MARGIN_PX, r=MARGIN_PX, t=top, b=MARGIN_PX),
            title=dict(text=_title(summary) if title else "", font=dict(size=14), x=0.01),
            xaxis=dict(visible=False, range=x_range, fixedrange=True),
            yaxis=dict(visible=False, range=y_range, fixedrange=True),
            template=TEMPLATE,
            hoverlabel=dict(align="left"),
        ),
    )
    return figure


def legend_html(summary: ArchitectureSummary) -> str:
    """One line of HTML naming the box colours of the kinds of stage in ``summary``, and the skip arrows."""
    kinds = list(dict.fromkeys(item.stage.kind for item in summary.stages))  # in order of appearance
    swatches = " ".join(
        f"<span style='background:{KIND_COLORS.get(kind, '#ffffff')};border:1px solid #444;padding:0 6px'>"
        f"{'ASPP' if kind == 'aspp' else kind}</span>"
        for kind in kinds
    )
    skips = any(_is_skip(a, b) for a, b in _edges(summary))
    arrow = f" &nbsp;<span style='color:{SKIP_COLOR}'>⟶ skip connection</span>" if skips else ""
    return f"<div style='font-size:12px'>{swatches}{arrow} &nbsp;<i>hover a box for what it does</i></div>"


def _edges(summary: ArchitectureSummary) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    positions = place_stages([item.stage for item in summary.stages])
    return [(positions[source], positions[item.stage.name]) for item in summary.stages for source in item.stage.inputs]


def _title(summary: ArchitectureSummary) -> str:
    channels, height, width = summary.input_size
    return (
        f"{summary.name}: {format_count(summary.num_params)} parameters · "
        f"{format_count(summary.flops)}FLOPs per {height}×{width} image"
    )


def _label(stage: Stage) -> str:
    if stage.name.startswith("aspp_rate"):
        return f"rate {stage.name.removeprefix('aspp_rate')}"
    if stage.kind == "fuse":
        return f"+ {stage.name}"
    return stage.name


def _broken(text: str) -> list[str]:
    """``text`` in lines, broken after each underscore and "× ": "upscore_pool4" -> ["upscore_", "pool4"]."""
    return re.split(r"(?<=_)|(?<=× )", text)


def _shape_text(shape: tuple[int, ...]) -> str:
    _, channels, height, width = shape
    return f"{channels} × {height}×{width}"


def _hover_text(item: StageShape, input_size: tuple[int, int, int]) -> str:
    stage = item.stage
    lines = [f"<b>{html.escape(stage.name)}</b> ({stage.kind})"]
    if stage.note:
        lines.append(html.escape(stage.note))
    lines.append(f"output {tuple(item.shape)} = (N, C, H, W)")
    if stage.kind != "input":
        lines.append(f"stride {stage.stride}: one output pixel per {stage.stride}×{stage.stride} input pixels")
        lines.append(f"parameters {item.num_params:,}")
    if stage.name.startswith("aspp_rate"):
        rate, size = int(stage.name.removeprefix("aspp_rate")), min(item.shape[-2:])
        if rate >= size:
            lines.append(f"rate {rate} ≥ map size {size}: the outer taps see only padding here")
    return "<br>".join(lines)


def _meets(centre: tuple[float, float], size: tuple[float, float], box: tuple[float, float]) -> bool:
    """Whether a label of ``size`` (width, height) at ``centre`` reaches into the box around ``box``."""
    (x, y), (width, height) = centre, size
    return abs(x - box[0]) < (width + BOX_WIDTH) / 2 and abs(y - box[1]) < (height + BOX_HEIGHT) / 2


def _is_skip(source: tuple[float, float], target: tuple[float, float]) -> bool:
    return target[0] - source[0] > 1.5  # jumps over at least one column


def _arrow(source: tuple[float, float], target: tuple[float, float], *, skip: bool) -> dict:
    """An arrow annotation from the edge of the source box to the edge of the target box."""
    (x0, y0), (x1, y1) = _box_edge(source, target), _box_edge(target, source)
    color = SKIP_COLOR if skip else ARROW_COLOR
    return dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="", showarrow=True,
                arrowhead=2, arrowsize=1, arrowwidth=1.6 if skip else 1.2, arrowcolor=color)  # fmt: skip


def _box_edge(centre: tuple[float, float], towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from ``centre`` to ``towards`` leaves the box around ``centre``."""
    (x, y), (tx, ty) = centre, towards
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return centre
    scale = min(
        (BOX_WIDTH / 2) / abs(dx) if dx else math.inf,
        (BOX_HEIGHT / 2) / abs(dy) if dy else math.inf,
    )
    return x + dx * scale, y + dy * scale
