"""Widgets that animate segtutor's arithmetic; all draw with :class:`LiveFigure` (see :mod:`segtutor.widgets.figures`).

Each explorer is a view (an ``ipywidgets.VBox``) over a state object that holds no widgets and can be used and
tested on its own.
"""

from segtutor.widgets.convolution import ConvolutionExplorer, ConvolutionState
from segtutor.widgets.figures import Click, LiveFigure, PlotlyLibrary
from segtutor.widgets.pooling import PoolingExplorer, PoolingState
from segtutor.widgets.receptive_field import ReceptiveFieldExplorer, ReceptiveFieldState
from segtutor.widgets.upsampling import UpsamplingExplorer, UpsamplingState

__all__ = [
    "Click",
    "ConvolutionExplorer",
    "ConvolutionState",
    "LiveFigure",
    "PlotlyLibrary",
    "PoolingExplorer",
    "PoolingState",
    "ReceptiveFieldExplorer",
    "ReceptiveFieldState",
    "UpsamplingExplorer",
    "UpsamplingState",
]
