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
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

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


def architecture_figure(summary: ArchitectureSummary, *, width: int = 1100, title: bool = True) -> go.Figure:
    """Boxes (one per stage, with its output shape) and arrows (its inputs), as a plotly figure.

    Hover a box for what the stage does, its output shape, stride and parameters. ``title`` adds a line with the
    parameter count and FLOPs.
    """
    stages = [item.stage for item in summary.stages]
    positions = place_stages(stages)
    by_name = {item.stage.name: item for item in summary.stages}
    shapes, annotations = [], []
    hover_x, hover_y, hover_text = [], [], []
    for item in summary.stages:
        stage, (x, y) = item.stage, positions[item.stage.name]
        shapes.append(
            dict(type="rect", x0=x - BOX_WIDTH / 2, x1=x + BOX_WIDTH / 2, y0=y - BOX_HEIGHT / 2, y1=y + BOX_HEIGHT / 2,
                 fillcolor=KIND_COLORS.get(stage.kind, "#ffffff"), line=dict(color="#444444", width=1), layer="below")
        )  # fmt: skip
        annotations.append(
            dict(x=x, y=y, text=f"<b>{html.escape(_label(stage))}</b><br>{_shape_text(item.shape)}", showarrow=False,
                 font=dict(size=11), xref="x", yref="y")
        )  # fmt: skip
        hover_x.append(x)
        hover_y.append(y)
        hover_text.append(_hover_text(item, summary.input_size))
        for source in stage.inputs:
            annotations.append(_arrow(positions[source], (x, y), skip=_is_skip(positions[source], (x, y))))
            if _is_skip(positions[source], (x, y)) and by_name[source].stage.kind != "input":
                label = "copy & concatenate" if stage.kind == "decoder" else "skip"
                (x0, y0), (x1, y1) = positions[source], (x, y)
                annotations.append(dict(x=(x0 + x1) / 2, y=(y0 + y1) / 2 + 0.12, text=label, showarrow=False,
                                        font=dict(size=11, color=SKIP_COLOR), xref="x", yref="y"))  # fmt: skip
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    height = int((110 if title else 70) + 75 * (max(ys) - min(ys) + 1))
    figure = go.Figure(
        go.Scatter(x=hover_x, y=hover_y, mode="markers", marker=dict(size=28, opacity=0), hovertext=hover_text,
                   hoverinfo="text", showlegend=False, name="stages"),  # fmt: skip
        layout=dict(
            shapes=shapes,
            annotations=annotations,
            width=width,
            height=height,
            margin=dict(l=10, r=10, t=40 if title else 10, b=10),
            title=dict(text=_title(summary) if title else "", font=dict(size=14), x=0.01),
            xaxis=dict(visible=False, range=[min(xs) - 0.6, max(xs) + 0.6], fixedrange=True),
            yaxis=dict(visible=False, range=[min(ys) - 0.6, max(ys) + 0.6], fixedrange=True),
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
