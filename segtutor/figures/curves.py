"""Curves of training: the learning-rate finder's loss against the learning rate."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from segtutor.figures.theme import HIGHLIGHT, style
from segtutor.train import LRFinderResult

RAW_COLOR, SMOOTH_COLOR = "#9ecae1", "#08519c"  # as the training dashboard's loss curves


def lr_finder_figure(result: LRFinderResult, *, width: int = 560, height: int = 330) -> go.Figure:
    """The loss of each step of :func:`~segtutor.train.lr_find` against its learning rate (log scale).

    Traces, by name: "loss" (each step), "smoothed loss" (the curve to read) and "suggestion" (a marker on the
    smoothed curve at the suggested learning rate, with a dashed line). The y axis spans the smoothed curve from its
    minimum to a little above its flat start, so the climb at the end does not squash the valley.

    Example:
        >>> lr_finder_figure(lr_find(create_model("unet"), train_data))
    """
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=result.lrs, y=result.losses, mode="lines", name="loss",
                                line=dict(color=RAW_COLOR, width=1),
                                hovertemplate="lr %{x:.1e}: loss %{y:.3f}<extra>step</extra>"))  # fmt: skip
    figure.add_trace(go.Scatter(x=result.lrs, y=result.smoothed, mode="lines", name="smoothed loss",
                                line=dict(color=SMOOTH_COLOR, width=2.5),
                                hovertemplate="lr %{x:.1e}: loss %{y:.3f}<extra>smoothed</extra>"))  # fmt: skip
    # the marker sits on the smoothed curve at the step whose lr is closest to the suggestion (in log terms)
    nearest = min(range(result.steps), key=lambda i: abs(math.log(result.lrs[i] / result.suggestion)))
    figure.add_trace(go.Scatter(x=[result.suggestion], y=[result.smoothed[nearest]], mode="markers",
                                name="suggestion", marker=dict(color=HIGHLIGHT, size=12, symbol="diamond"),
                                hovertemplate="suggested lr %{x:.1e}<extra></extra>"))  # fmt: skip
    figure.add_vline(x=result.suggestion, line=dict(color=HIGHLIGHT, dash="dash", width=1.5))
    finite = [loss for loss in result.smoothed if math.isfinite(loss)]
    top = max(finite[: max(len(finite) // 10, 1)])  # the flat start
    figure.update_xaxes(type="log", title_text="learning rate (log scale)", exponentformat="power")
    figure.update_yaxes(title_text="training loss", range=[0.9 * min(finite), 1.15 * top])
    title = f"learning-rate finder: suggestion {result.suggestion:.1e} (the minimum's {result.min_loss_lr:.1e} / 10)"
    return style(figure, width=width, height=height, title=dict(text=title, font=dict(size=13)),
                 margin=dict(l=55, r=15, t=45, b=45), legend=dict(orientation="h", x=0, y=-0.25))  # fmt: skip
