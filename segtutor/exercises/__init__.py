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
    check_conv_pixel,
    check_even_overlap,
    check_output_size,
    check_relu_max_pool,
    check_same_padding,
    check_size_after_pooling,
    check_transposed_output_size,
)
from segtutor.exercises.slides import check_downsample, check_field_in_microns
from segtutor.exercises.shift import check_ece, check_share_won_back, check_trainable_parameters
from segtutor.exercises.training import (
    LossCurves,
    check_adam_steps,
    check_chain_rule,
    check_cross_entropy,
    check_dice,
    check_first_step,
    check_fixed_mask,
    check_iou,
    check_loss_curves,
    check_missed_tumor_cross_entropy,
    check_sgd_step,
    check_soft_dice_loss,
    check_tile_count,
    diagnose_loss_curves,
    example_loss_curves,
)

__all__ = [
    "Feedback",
    "LossCurves",
    "check_adam_steps",
    "check_chain_rule",
    "check_class_share",
    "check_conv_parameters",
    "check_conv_pixel",
    "check_cross_entropy",
    "check_dice",
    "check_dilated_span",
    "check_downsample",
    "check_ece",
    "check_even_overlap",
    "check_feature_size",
    "check_field_in_microns",
    "check_first_step",
    "check_fixed_mask",
    "check_iou",
    "check_label_map",
    "check_loss_curves",
    "check_missed_tumor_cross_entropy",
    "check_most_parameters",
    "check_output_size",
    "check_pixel_accuracy",
    "check_pixel_value",
    "check_receptive_field",
    "check_relu_max_pool",
    "check_same_padding",
    "check_size_after_pooling",
    "check_soft_dice_loss",
    "check_sgd_step",
    "check_share_won_back",
    "check_tile_count",
    "check_trainable_parameters",
    "check_transposed_output_size",
    "check_unet_concat_channels",
    "diagnose_loss_curves",
    "example_loss_curves",
]
