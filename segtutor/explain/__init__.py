"""The arithmetic a segmentation network does, one step at a time, in plain numpy (no widgets).

Each explainer returns its steps as small dataclasses a learner can print, and assembles them into the same
result torch computes: :func:`conv2d` equals ``F.conv2d``, :func:`pool2d` equals ``max_pool2d``/``avg_pool2d``,
:func:`conv_transpose2d` equals ``F.conv_transpose2d``. :func:`receptive_field`, :func:`receptive_boxes` and
:func:`receptive_region` say which input pixels a network's output pixel can see, :class:`EffectiveField` how
much each one matters. :func:`pixel_gradients` backpropagates one pixel's loss and reports what reaches each layer;
:class:`OptimizerRace` steps SGD and Adam side by side with Adam's running averages on view. The explorers in
:mod:`segtutor.widgets` animate all of this.
"""

from segtutor.lazy import lazy_exports

# each name, by the module that defines it: imported the first time it is used (segtutor.lazy)
lazy_exports(
    __name__,
    {
        "segtutor.explain.backprop": ["LayerGradient", "PixelGradients", "pixel_gradients"],
        "segtutor.explain.arithmetic": ["OutputSize", "output_size", "transposed_output_size"],
        "segtutor.explain.conv": ["ConvStep", "conv2d", "conv2d_steps"],
        "segtutor.explain.effective_field": ["EffectiveField", "receptive_region", "structural_copy"],
        "segtutor.explain.kernels": [
            "KERNEL_PRESETS", "UPSAMPLING_KERNELS", "first_layer_kernels", "kernel_preset", "upsampling_kernel"
        ],
        "segtutor.explain.optimizers": ["OptimizerRace", "OptimizerStep", "WatchedWeight"],
        "segtutor.explain.pool": ["PoolStep", "pool2d", "pool2d_steps"],
        "segtutor.explain.receptive_field": [
            "COURSE_MICRONS_PER_PIXEL", "LayerField", "Span", "box_at", "receptive_boxes", "receptive_field",
            "receptive_spans"
        ],
        "segtutor.explain.samples": ["number_grid", "rgb_patch", "tissue_patch"],
        "segtutor.explain.transposed": [
            "ScatterStep", "bilinear_upsample", "conv_transpose2d", "conv_transpose2d_steps", "overlap_count",
            "transposed_output_shape",
        ],
    },
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
    "bilinear_upsample",
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
