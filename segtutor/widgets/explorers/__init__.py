"""The concept explorers: the arithmetic of :mod:`segtutor.explain`, animated step by step.

Each explorer is a view (an ``ipywidgets.VBox``) over a state object that holds no widgets and can be used and
tested on its own (the ``...State`` classes).
"""

from segtutor.lazy import lazy_exports

# each name, by the module that defines it: imported the first time it is used (segtutor.lazy)
lazy_exports(
    __name__,
    {
        "segtutor.widgets.explorers.backprop": ["BackpropExplorer", "OptimizerExplorer"],
        "segtutor.widgets.explorers.convolution": ["ConvolutionExplorer", "ConvolutionState"],
        "segtutor.widgets.explorers.gallery": ["ExplorerGallery"],
        "segtutor.widgets.explorers.loss_playground": ["LossPlaygroundExplorer", "LossPlaygroundState"],
        "segtutor.widgets.explorers.pooling": ["PoolingExplorer", "PoolingState"],
        "segtutor.widgets.explorers.receptive_field": ["ReceptiveFieldExplorer", "ReceptiveFieldState"],
        "segtutor.widgets.explorers.upsampling": ["UpsamplingExplorer", "UpsamplingState"],
    },
)

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
