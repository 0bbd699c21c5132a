"""Widgets that animate segtutor's arithmetic; all draw with :class:`LiveFigure` (see :mod:`segtutor.widgets.figures`)."""

from segtutor.widgets.convolution import ConvolutionExplorer, ConvolutionState
from segtutor.widgets.figures import Click, LiveFigure, PlotlyLibrary

__all__ = ["Click", "ConvolutionExplorer", "ConvolutionState", "LiveFigure", "PlotlyLibrary"]
