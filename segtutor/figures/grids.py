"""Drawing grids of numbers with plotly: heatmaps with the value written in each cell, and cell outlines.

Grids are drawn the way images are read: row 0 at the top, one square cell per pixel, cell ``(row, col)``
centred on ``x = col, y = row``. Subplot ``k`` (1-based, as in ``make_subplots``) uses axes ``x{k}``/``y{k}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from segtutor.explain.formula import format_number
from segtutor.figures.theme import HIGHLIGHT

MAX_NUMBERED = 11  # grids larger than this (in either direction) show colours only: numbers would not fit
TEXT_PX = 12  # the numbers in the cells (plotly would shrink them to fit small cells: unreadable under 11 px)


def cell_text(values: np.ndarray, decimals: int = 2) -> list[list[str]]:
    """Each cell's value as text (``""`` for NaN: not computed yet)."""
    return [["" if np.isnan(v) else format_number(v, decimals) for v in row] for row in np.asarray(values, float)]


def grid_heatmap(
    values: np.ndarray,
    *,
    colorscale: str | list,
    name: str,
    zmin: float | None = None,
    zmax: float | None = None,
    zmid: float | None = None,
    rows: Sequence[int] | None = None,
    cols: Sequence[int] | None = None,
    decimals: int = 2,
    max_numbered: int = MAX_NUMBERED,
    text_px: int = TEXT_PX,
) -> go.Heatmap:
    """A heatmap of ``values (h, w)`` with numbers in the cells when the grid is small enough to read.

    Args:
        values: the grid; NaN cells are left blank.
        colorscale: a plotly colour scale name or list.
        name: the trace name (shown on hover).
        zmin, zmax, zmid: colour range (give ``zmid=0`` for signed values such as kernels).
        rows, cols: coordinates of the rows/columns (default ``0 … h−1``); padding rows are negative.
        decimals: digits shown in the cells.
        max_numbered: larger grids (in either direction) show colours only; a figure that gives its grids more
            room (or shows short numbers: counts) may write numbers into larger ones.
        text_px: font size of the numbers, in px (never under 11: give the grid room instead).
    """
    values = np.asarray(values, float)
    numbered = max(values.shape) <= max_numbered
    return go.Heatmap(
        z=values,
        x=np.arange(values.shape[1]) if cols is None else np.asarray(cols),
        y=np.arange(values.shape[0]) if rows is None else np.asarray(rows),
        text=cell_text(values, decimals) if numbered else None,
        texttemplate="%{text}" if numbered else None,
        textfont={"size": text_px},
        colorscale=colorscale,
        zmin=zmin,
        zmax=zmax,
        zmid=zmid,
        showscale=False,
        xgap=1,
        ygap=1,
        name=name,
        hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra>" + name + "</extra>",
    )


def cell_outline(
    row: float,
    col: float,
    *,
    subplot: int,
    name: str,
    height: float = 1,
    width: float = 1,
    color: str = HIGHLIGHT,
    line_width: float = 3,
    dash: str = "solid",
) -> dict:
    """A rectangle (a plotly shape) around the ``height × width`` cells whose top-left cell is ``(row, col)``."""
    suffix = "" if subplot == 1 else str(subplot)
    return {
        "type": "rect",
        "name": name,
        "xref": f"x{suffix}",
        "yref": f"y{suffix}",
        "x0": col - 0.5,
        "x1": col + width - 0.5,
        "y0": row - 0.5,
        "y1": row + height - 0.5,
        "line": {"color": color, "width": line_width, "dash": dash},
    }


def square_cells(figure: go.Figure, num_subplots: int) -> None:
    """Make every subplot's cells square, row 0 at the top, ticks on whole cells."""
    for k in range(1, num_subplots + 1):
        suffix = "" if k == 1 else str(k)
        figure.update_layout(
            {
                f"xaxis{suffix}": {"constrain": "domain", "dtick": 1, "showgrid": False, "zeroline": False,
                                   "tickfont": {"size": 11}},
                f"yaxis{suffix}": {"scaleanchor": f"x{suffix}", "constrain": "domain", "autorange": "reversed",
                                   "dtick": 1, "showgrid": False, "zeroline": False, "tickfont": {"size": 11}},
            }
        )  # fmt: skip


def empty_cell_grid(figure: go.Figure, subplot: int, color: str = "#dfe4ea") -> None:
    """Faint lines between the cells of subplot ``subplot``: an output that fills in step by step shows its size
    (a 5 × 5 result) from step 0. The lines lie under the heatmap, so computed cells cover them."""
    suffix = "" if subplot == 1 else str(subplot)
    lines = {"minor": {"tick0": 0.5, "dtick": 1, "showgrid": True, "gridcolor": color, "gridwidth": 1}}
    figure.update_layout({f"xaxis{suffix}": lines, f"yaxis{suffix}": lines})
