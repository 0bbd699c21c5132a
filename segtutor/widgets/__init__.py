"""Widgets that animate segtutor's arithmetic; all draw with :class:`LiveFigure` (see :mod:`segtutor.widgets.figures`).

Each explorer is a view (an ``ipywidgets.VBox``) over a state object that holds no widgets and can be used and
tested on its own.
"""

from segtutor.widgets.convolution import ConvolutionExplorer, ConvolutionState
from segtutor.widgets.features import FeatureMapViewer
from segtutor.widgets.figures import Click, LiveFigure, PlotlyLibrary
from segtutor.widgets.model_picker import ModelPicker
from segtutor.widgets.pooling import PoolingExplorer, PoolingState
from segtutor.widgets.prediction import PredictionViewer
from segtutor.widgets.race import ArchitectureRace
from segtutor.widgets.receptive_field import ReceptiveFieldExplorer, ReceptiveFieldState
from segtutor.widgets.session import RunListener, TrainingSession
from segtutor.widgets.studio import TrainingStudio
from segtutor.widgets.training import TrainingDashboard
from segtutor.widgets.upsampling import UpsamplingExplorer, UpsamplingState

__all__ = [
    "ArchitectureRace",
    "Click",
    "ConvolutionExplorer",
    "ConvolutionState",
    "FeatureMapViewer",
    "LiveFigure",
    "ModelPicker",
    "PlotlyLibrary",
    "PoolingExplorer",
    "PoolingState",
    "PredictionViewer",
    "ReceptiveFieldExplorer",
    "ReceptiveFieldState",
    "RunListener",
    "TrainingDashboard",
    "TrainingSession",
    "TrainingStudio",
    "UpsamplingExplorer",
    "UpsamplingState",
]
