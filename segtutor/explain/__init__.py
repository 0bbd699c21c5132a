"""The arithmetic a segmentation network does, one step at a time, in plain numpy (no widgets).

Each explainer returns its steps as small dataclasses a learner can print, and assembles them into the same
result torch computes: :func:`conv2d` equals ``F.conv2d``, :func:`pool2d` equals ``max_pool2d``/``avg_pool2d``,
:func:`conv_transpose2d` equals ``F.conv_transpose2d``. :func:`receptive_field`, :func:`receptive_boxes` and
:func:`receptive_region` say which input pixels a network's output pixel can see, :class:`EffectiveField` how
much each one matters. :func:`pixel_gradients` backpropagates one pixel's loss and reports what reaches each layer;
:class:`OptimizerRace` steps SGD and Adam side by side with Adam's running averages on view. The explorers in
:mod:`segtutor.widgets` animate all of this.
"""

from segtutor.explain.backprop import LayerGradient, PixelGradients, pixel_gradients
from segtutor.explain.arithmetic import OutputSize, output_size, transposed_output_size
from segtutor.explain.conv import ConvStep, conv2d, conv2d_steps
from segtutor.explain.effective_field import EffectiveField, receptive_region, structural_copy
from segtutor.explain.kernels import (
    KERNEL_PRESETS,
    UPSAMPLING_KERNELS,
    first_layer_kernels,
    kernel_preset,
    upsampling_kernel,
)
from segtutor.explain.optimizers import OptimizerRace, OptimizerStep, WatchedWeight
from segtutor.explain.pool import PoolStep, pool2d, pool2d_steps
from segtutor.explain.receptive_field import (
    COURSE_MICRONS_PER_PIXEL,
    LayerField,
    Span,
    box_at,
    receptive_boxes,
    receptive_field,
    receptive_spans,
)
from segtutor.explain.samples import number_grid, rgb_patch, tissue_patch
from segtutor.explain.transposed import (
    ScatterStep,
    conv_transpose2d,
    conv_transpose2d_steps,
    overlap_count,
    transposed_output_shape,
)

__all__ = [
    "COURSE_MICRONS_PER_PIXEL",
    "KERNEL_PRESETS",
    "UPSAMPLING_KERNELS",
    "ConvStep",
    "EffectiveField",
    "LayerField",
    "LayerGradient",
    "OptimizerRace",
    "OptimizerStep",
    "OutputSize",
    "PixelGradients",
    "PoolStep",
    "ScatterStep",
    "Span",
    "WatchedWeight",
    "box_at",
    "conv2d",
    "conv2d_steps",
    "conv_transpose2d",
    "conv_transpose2d_steps",
    "first_layer_kernels",
    "kernel_preset",
    "number_grid",
    "output_size",
    "pixel_gradients",
    "overlap_count",
    "pool2d",
    "pool2d_steps",
    "receptive_boxes",
    "receptive_field",
    "receptive_region",
    "rgb_patch",
    "receptive_spans",
    "structural_copy",
    "tissue_patch",
    "transposed_output_shape",
    "transposed_output_size",
    "upsampling_kernel",
]
