"""How segtutor's figures look: one small white template, pale grid lines, one highlight colour.

plotly's named templates (``"plotly_white"``) are large and slow to validate (a third of a second to a second of
CPU per figure in a fresh kernel), and travel to the browser with every figure: a dashboard page would pay that
before the learner sees anything. This template is a few properties.
"""

from __future__ import annotations

import plotly.graph_objects as go

TEMPLATE = {"layout": {"paper_bgcolor": "white", "plot_bgcolor": "white",
                       "font": {"family": "Helvetica, Arial, sans-serif", "size": 12, "color": "#2a3f5f"}}}  # fmt: skip
GRID = "#e8ecf2"  # grid and axis lines
HIGHLIGHT = "#ff7f0e"  # orange: what the current step touches, the clicked pixel


def style(figure: go.Figure, **layout) -> go.Figure:
    """Give ``figure`` segtutor's light look (white, pale grid), plus any ``layout`` properties; returns it."""
    figure.update_layout(template=TEMPLATE, hoverlabel=dict(align="left"), **layout)
    figure.update_xaxes(gridcolor=GRID, zeroline=False, linecolor=GRID)
    figure.update_yaxes(gridcolor=GRID, zeroline=False, linecolor=GRID)
    return figure
