"""Curves of training: the learning-rate finder's loss against the learning rate; readable ticks for a log axis."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from segtutor.figures.theme import HIGHLIGHT, style
from segtutor.train import LRFinderResult

RAW_COLOR, SMOOTH_COLOR = "#9ecae1", "#08519c"  # as the training dashboard's loss curves
LOG_MANTISSAS = ((1,), (1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9))  # sparsest first


def log_ticks(low: float, high: float, min_ticks: int = 3) -> list[float]:
    """Where to label a log axis that shows ``low`` … ``high`` (both > 0): at least ``min_ticks`` round values.

    plotly's own log ticks write the in-between values (2, 5) small, at about 8 px; an axis given these values
    (``tickvals``) writes them all at its font size. The sparsest sequence that puts ``min_ticks`` values in range
    wins: decades (0.1, 1, 10), then 1-2-5 (0.2, 0.5, 1), 1-2-3-5-7, every digit; a range narrower still (a loss
    that hardly moves: 0.62 … 0.69) gets evenly spaced values (0.62, 0.64, 0.66, 0.68).

    Example:
        >>> log_ticks(0.15, 0.9)  # 1-2-5 would leave two: 0.2 and 0.5
        [0.2, 0.3, 0.5, 0.7]
    """
    if not 0 < low <= high:
        raise ValueError(f"a log axis needs 0 < low <= high, got {low} and {high}")
    decades = range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1)
    for mantissas in LOG_MANTISSAS:
        ticks = [_round(m * 10.0**e) for e in decades for m in mantissas if low <= _round(m * 10.0**e) <= high]
        if len(ticks) >= min_ticks:
            return ticks
    span = high - low or low / 100  # a flat loss: label the 1 % around it
    low, high = (low, high) if high > low else (low - span / 2, high + span / 2)
    step = 10.0 ** math.ceil(math.log10(span))
    while True:  # evenly spaced: the largest step of 1, 0.5 or 0.2 times a power of ten that gives min_ticks values
        for size in (step, step / 2, step / 5):
            first, last = math.ceil(_round(low / size)), math.floor(_round(high / size))
            ticks = [_round(k * size) for k in range(first, last + 1)]
            if len(ticks) >= min_ticks:
                return ticks
        step /= 10


def _round(value: float) -> float:
    """``value`` without floating-point dust: 3 * 0.1 -> 0.3."""
    return float(f"{value:.6g}")


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
