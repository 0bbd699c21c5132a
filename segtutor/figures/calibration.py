"""Reliability diagrams: is a model that says "90 % sure" right 90 % of the time?

One panel per diagram (e.g. per lab, or before and after temperature scaling): for each confidence bin, a bar as
tall as the share of its pixels that are predicted right, the gap to the bin's mean confidence shaded above or
below it, and the diagonal where a calibrated model's bars would end. The numbers come from
:func:`segtutor.metrics.reliability_diagram`.

Example:
    >>> diagrams = {"lab A": reliability_diagram(logits_a, masks_a), "lab C": reliability_diagram(logits_c, masks_c)}
    >>> reliability_figure(diagrams)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from segtutor.figures.theme import style
from segtutor.metrics.calibration import ReliabilityDiagram

ACCURACY_COLOR = "#1f77b4"  # the bars: how often the model is right in each bin
GAP_COLOR = "rgba(214, 39, 40, 0.45)"  # the gap between confidence and accuracy


def reliability_figure(
    diagrams: Mapping[str, ReliabilityDiagram] | ReliabilityDiagram,
    *,
    title: str | None = None,
    height: int = 340,
    panel_width: int = 300,
) -> go.Figure:
    """Reliability diagrams side by side, each titled with its name and expected calibration error.

    Traces per panel ``name``: ``"<name>: accuracy"`` (bars), ``"<name>: gap"`` (from accuracy to confidence,
    red), ``"<name>: calibrated"`` (the diagonal). Empty bins are left out. The x-axes start at the lowest
    filled bin (with two classes no pixel has a confidence below 0.5).

    Args:
        diagrams: ``{name: ReliabilityDiagram}``, or one diagram.
        title: the figure's title.
        height: in pixels.
        panel_width: width of one panel in pixels.

    Returns:
        The figure.

    Example:
        >>> reliability_figure({"before": reliability_diagram(logits, masks),
        ...                     "after T": reliability_diagram(logits / temperature, masks)})
    """
    if isinstance(diagrams, ReliabilityDiagram):
        diagrams = {"": diagrams}
    if not diagrams:
        raise ValueError("give at least one ReliabilityDiagram")
    names = list(diagrams)
    titles = [f"{name}: ECE {diagram.ece:.3f}" if name else f"ECE {diagram.ece:.3f}" for name, diagram in
              diagrams.items()]  # fmt: skip
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=titles, horizontal_spacing=0.08)
    lowest = 1.0
    for col, name in enumerate(names, start=1):
        diagram = diagrams[name]
        edges = diagram.bin_edges.numpy()
        filled = diagram.count.numpy() > 0
        left, right = edges[:-1][filled], edges[1:][filled]
        accuracy, confidence = diagram.accuracy.numpy()[filled], diagram.confidence.numpy()[filled]
        count = diagram.count.numpy()[filled]
        if len(left):
            lowest = min(lowest, float(left.min()))
        centres, widths = (left + right) / 2, (right - left) * 0.9
        hover = [f"confidence {a:.2f}–{b:.2f}<br>{n} pixels<br>mean confidence {c:.3f}<br>accuracy {r:.3f}"
                 for a, b, n, c, r in zip(left, right, count, confidence, accuracy)]  # fmt: skip
        label = f"{name}: " if name else ""
        # 1) Accuracy per bin; 2) the gap from accuracy to confidence (overconfident: above the bar).
        figure.add_trace(go.Bar(x=centres, y=accuracy, width=widths, marker_color=ACCURACY_COLOR,
                                name=f"{label}accuracy", hovertext=hover, hoverinfo="text", showlegend=col == 1,
                                legendgroup="accuracy"), 1, col)  # fmt: skip
        figure.add_trace(go.Bar(x=centres, y=confidence - accuracy, base=accuracy, width=widths,
                                marker=dict(color=GAP_COLOR, line=dict(color="rgb(214, 39, 40)", width=1)),
                                name=f"{label}gap", hovertext=hover, hoverinfo="text", showlegend=col == 1,
                                legendgroup="gap"), 1, col)  # fmt: skip
        # 3) Where a calibrated model's bars end: accuracy = confidence.
        figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dash"),
                                    name=f"{label}calibrated", showlegend=col == 1, legendgroup="calibrated",
                                    hoverinfo="skip"), 1, col)  # fmt: skip
    start = math.floor(lowest * 10) / 10 if lowest < 1 else 0.0
    figure.update_xaxes(range=[start, 1], title_text="confidence (largest probability)")
    figure.update_yaxes(range=[start, 1])
    figure.update_yaxes(title_text="accuracy (share right)", col=1)
    style(figure)
    figure.update_layout(barmode="overlay", height=height, width=max(480, panel_width * len(names) + 120),
                         title=title, margin=dict(l=60, r=20, t=70 if title else 50, b=50),
                         legend=dict(orientation="h", y=-0.25))  # fmt: skip
    for annotation in figure.layout.annotations:
        annotation.font.size = 13
    return figure
