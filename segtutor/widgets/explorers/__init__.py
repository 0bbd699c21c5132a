"""The concept explorers: the arithmetic of :mod:`segtutor.explain`, animated step by step.

Each explorer is a view (an ``ipywidgets.VBox``) over a state object that holds no widgets and can be used and
tested on its own (the ``...State`` classes).
"""

from segtutor.widgets.explorers.backprop import BackpropExplorer, OptimizerExplorer
from segtutor.widgets.explorers.convolution import ConvolutionExplorer, ConvolutionState
from segtutor.widgets.explorers.gallery import ExplorerGallery
from segtutor.widgets.explorers.loss_playground import LossPlaygroundExplorer, LossPlaygroundState
from segtutor.widgets.explorers.pooling import PoolingExplorer, PoolingState
from segtutor.widgets.explorers.receptive_field import ReceptiveFieldExplorer, ReceptiveFieldState
from segtutor.widgets.explorers.upsampling import UpsamplingExplorer, UpsamplingState

__all__ = [
    "BackpropExplorer",
    "ConvolutionExplorer",
    "ConvolutionState",
    "ExplorerGallery",
    "LossPlaygroundExplorer",
    "LossPlaygroundState",
    "OptimizerExplorer",
    "PoolingExplorer",
    "PoolingState",
    "ReceptiveFieldExplorer",
    "ReceptiveFieldState",
    "UpsamplingExplorer",
    "UpsamplingState",
]
