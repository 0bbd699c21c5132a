"""How good is a segmentation: pixel counts (confusion matrix, IoU, Dice) and outlines (boundary F-score).

- :mod:`~segtutor.metrics.confusion`: :class:`ConfusionMatrix`, :func:`confusion_matrix`, :func:`iou_per_class`,
  :func:`dice_per_class`, :func:`pixel_accuracy`, :func:`mean_iou`, :class:`SegmentationScores`.
- :mod:`~segtutor.metrics.boundary`: :func:`boundary_scores`, :func:`boundary_pixels`, :class:`BoundaryScores`.
- :mod:`~segtutor.metrics.calibration`: :func:`reliability_diagram`, :func:`expected_calibration_error`,
  :func:`fit_temperature`, :func:`apply_temperature`: can the probabilities be trusted?

Masks may hold ``segtutor.data.IGNORE_INDEX`` (255) for unlabelled pixels; no metric counts them.
"""

from segtutor.metrics.boundary import BoundaryScores, boundary_pixels, boundary_scores
from segtutor.metrics.calibration import (
    ReliabilityDiagram,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from segtutor.metrics.confusion import (
    ConfusionMatrix,
    SegmentationScores,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

__all__ = [
    "BoundaryScores",
    "ConfusionMatrix",
    "SegmentationScores",
    "boundary_pixels",
    "boundary_scores",
    "confusion_matrix",
    "dice_per_class",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "ReliabilityDiagram",
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_diagram",
]
