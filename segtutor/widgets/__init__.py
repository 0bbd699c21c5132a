"""Interactive views for JupyterLab and Voila; notebooks import every widget from here.

Three parts, each over the engine, none holding engine code:

- the live figure, :class:`LiveFigure` (:mod:`~segtutor.widgets.live_figure`): a plotly figure that updates in
  place, in JupyterLab and in Voila;
- the concept explorers (:mod:`~segtutor.widgets.explorers`), over :mod:`segtutor.explain`;
- the training studio (:mod:`~segtutor.widgets.studio`), over :mod:`segtutor.train`, :mod:`segtutor.predict` and
  :mod:`segtutor.models`.

Every explorer and the studio can be shared as a link (:mod:`~segtutor.widgets.links`): ``view_link(view)``,
and ``open_link(view)`` in a Voila dashboard opens it in the state of the page's query string.
"""

from segtutor.lazy import lazy_exports

# each name, by the module that defines it: imported the first time it is used (segtutor.lazy)
lazy_exports(
    __name__,
    {
        "segtutor.widgets.explorers": [
            "BackpropExplorer", "ConvolutionExplorer", "ConvolutionState", "ExplorerGallery", "LossPlaygroundExplorer",
            "LossPlaygroundState", "OptimizerExplorer", "PoolingExplorer", "PoolingState", "ReceptiveFieldExplorer",
            "ReceptiveFieldState", "UpsamplingExplorer", "UpsamplingState"
        ],
        "segtutor.widgets.links": ["ShareLink", "apply_link", "open_link", "view_link"],
        "segtutor.widgets.live_figure": ["Click", "LiveFigure", "PlotlyLibrary"],
        "segtutor.widgets.studio": [
            "AnnotationViewer", "ArchitectureRace", "FeatureMapViewer", "ModelPicker", "PredictionViewer",
            "TimeMachineViewer", "TrainingDashboard", "TrainingStudio", "TrainSettings"
        ],
    },
)

__all__ = [
    "AnnotationViewer",
    "ArchitectureRace",
    "BackpropExplorer",
    "Click",
    "ConvolutionExplorer",
    "ConvolutionState",
    "ExplorerGallery",
    "FeatureMapViewer",
    "LiveFigure",
    "LossPlaygroundExplorer",
    "LossPlaygroundState",
    "ModelPicker",
    "OptimizerExplorer",
    "PlotlyLibrary",
    "PoolingExplorer",
    "PoolingState",
    "PredictionViewer",
    "ReceptiveFieldExplorer",
    "ReceptiveFieldState",
    "ShareLink",
    "TimeMachineViewer",
    "TrainSettings",
    "TrainingDashboard",
    "TrainingStudio",
    "UpsamplingExplorer",
    "UpsamplingState",
    "apply_link",
    "open_link",
    "view_link",
]
