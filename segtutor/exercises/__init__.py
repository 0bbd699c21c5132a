"""The course's automatic checks: each compares a learner's answer with the one segtutor computes.

Notebooks call ``exercises.check_…(answer, inputs)``; the checks are grouped by part of the course, and the
comparison machinery they share (:class:`Feedback`, numbers, arrays, sizes) is :mod:`segtutor.exercises.feedback`.

Example:
    >>> image = np.arange(16).reshape(4, 4)
    >>> kernel = np.ones((3, 3))
    >>> check_conv_pixel(45, image, kernel, position=(0, 0))
    ✓ Correct: 0·1 + 1·1 + 2·1 + 4·1 + 5·1 + 6·1 + 8·1 + 9·1 + 10·1 = 45
"""

from segtutor.exercises.architectures import (
    check_conv_parameters,
    check_dilated_span,
    check_feature_size,
    check_most_parameters,
    check_receptive_field,
    check_unet_concat_channels,
)
from segtutor.exercises.feedback import Feedback
from segtutor.exercises.images import check_class_share, check_label_map, check_pixel_accuracy, check_pixel_value
from segtutor.exercises.operations import (
    check_checkerboard_free,
    check_conv_pixel,
    check_output_size,
    check_relu_max_pool,
    check_same_padding,
    check_size_after_pooling,
    check_transposed_output_size,
)
from segtutor.exercises.training import (
    check_cross_entropy,
    check_dice,
    check_first_step,
    check_fixed_mask,
    check_iou,
    check_missed_tumor_cross_entropy,
    check_sgd_step,
    check_tile_count,
)

__all__ = [
    "Feedback",
    "check_checkerboard_free",
    "check_class_share",
    "check_conv_parameters",
    "check_conv_pixel",
    "check_cross_entropy",
    "check_dice",
    "check_dilated_span",
    "check_feature_size",
    "check_first_step",
    "check_fixed_mask",
    "check_iou",
    "check_label_map",
    "check_missed_tumor_cross_entropy",
    "check_most_parameters",
    "check_output_size",
    "check_pixel_accuracy",
    "check_pixel_value",
    "check_receptive_field",
    "check_relu_max_pool",
    "check_same_padding",
    "check_size_after_pooling",
    "check_sgd_step",
    "check_tile_count",
    "check_transposed_output_size",
    "check_unet_concat_channels",
]
