"""The arithmetic a segmentation network does, one step at a time, in plain numpy (no widgets).

Each explainer returns its steps as small dataclasses a learner can print, and assembles them into the same
result torch computes: :func:`conv2d` equals ``F.conv2d``, :func:`pool2d` equals ``max_pool2d``/``avg_pool2d``,
:func:`conv_transpose2d` equals ``F.conv_transpose2d``. The widgets in :mod:`segtutor.widgets` animate these steps.
"""

from segtutor.explain.arithmetic import OutputSize, output_size, transposed_output_size
from segtutor.explain.conv import ConvStep, conv2d, conv2d_steps
from segtutor.explain.pool import PoolStep, pool2d, pool2d_steps
from segtutor.explain.transposed import (
    ScatterStep,
    conv_transpose2d,
    conv_transpose2d_steps,
    overlap_count,
    transposed_output_shape,
)

__all__ = [
    "ConvStep",
    "OutputSize",
    "PoolStep",
    "ScatterStep",
    "conv2d",
    "conv2d_steps",
    "conv_transpose2d",
    "conv_transpose2d_steps",
    "output_size",
    "overlap_count",
    "pool2d",
    "pool2d_steps",
    "transposed_output_shape",
    "transposed_output_size",
]
