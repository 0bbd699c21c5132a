"""The training studio: views over the engine (:mod:`segtutor.train`, :mod:`segtutor.predict`, :mod:`segtutor.models`).

Pick a model (:class:`ModelPicker`), train it live (:class:`TrainingDashboard`), look at its predictions
(:class:`PredictionViewer`) and inside its layers (:class:`FeatureMapViewer`), race the architectures
(:class:`ArchitectureRace`), annotate where the model is unsure (:class:`AnnotationViewer`); :class:`TrainingStudio`
puts them in one app. No training loop lives here: every view is a callback of :func:`segtutor.train.fit`'s loop or
draws what the engine computed.
"""

from segtutor.widgets.studio.annotation import AnnotationViewer
from segtutor.widgets.studio.app import TrainingStudio
from segtutor.widgets.studio.features import FeatureMapViewer
from segtutor.widgets.studio.model_picker import ModelPicker
from segtutor.widgets.studio.prediction import PredictionViewer
from segtutor.widgets.studio.race import ArchitectureRace
from segtutor.widgets.studio.settings import TrainSettings
from segtutor.widgets.studio.time_machine import TimeMachineViewer
from segtutor.widgets.studio.training import TrainingDashboard

__all__ = [
    "AnnotationViewer",
    "ArchitectureRace",
    "FeatureMapViewer",
    "ModelPicker",
    "PredictionViewer",
    "TimeMachineViewer",
    "TrainSettings",
    "TrainingDashboard",
    "TrainingStudio",
]
