"""How the studio's plots look: the explorers' small white template, plus pale grid lines on every axis.

plotly's named templates (``"plotly_white"``) cost about a second of CPU per figure in a fresh kernel (they are
validated and deep-copied), which a dashboard page would pay before the learner sees anything.
"""

from __future__ import annotations

import plotly.graph_objects as go

from segtutor.widgets.grids import TEMPLATE

GRID = "#e8ecf2"  # grid and axis lines


def style(figure: go.Figure, **layout) -> go.Figure:
    """Give ``figure`` the studio's light look (white, pale grid), plus any ``layout`` properties; returns it."""
    figure.update_layout(template=TEMPLATE, hoverlabel=dict(align="left"), **layout)
    figure.update_xaxes(gridcolor=GRID, zeroline=False, linecolor=GRID)
    figure.update_yaxes(gridcolor=GRID, zeroline=False, linecolor=GRID)
    return figure
