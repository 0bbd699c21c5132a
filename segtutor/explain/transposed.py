"""Transposed convolution seen as scatter-add: how decoders (UNet, FCN-8s) upsample.

An ordinary convolution *gathers*: each output pixel is a weighted sum of an input window. A transposed
convolution *scatters*: each input pixel stamps a copy of the kernel, scaled by its value, onto the output, and
overlapping stamps add up. With ``stride=2`` the stamps are placed two pixels apart, so the output is twice as
large. When the kernel size is not a multiple of the stride, some output pixels receive more stamps than their
neighbours: the overlap count map shows this unevenness, one source of checkerboard artefacts
(Odena et al., https://distill.pub/2016/deconv-checkerboard/). Even overlap does not rule them out: a learned
kernel whose weights differ still paints a pattern with the stride's period; resize-convolution (upsample, then
convolve) avoids both. :func:`conv_transpose2d` equals
``torch.nn.functional.conv_transpose2d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segtutor.explain.arguments import as_array, as_pair
from segtutor.explain.arithmetic import transposed_output_size
from segtutor.explain.formula import format_number

if TYPE_CHECKING:  # torch only for the type hints: the explorers draw without it
    import torch


@dataclass(frozen=True, eq=False)
class ScatterStep:
    """One input pixel stamping the scaled kernel onto the output.

    Attributes:
        position: ``(i, j)``, the input pixel.
        inputs: its value, ``()`` for an ``(H, W)`` input or ``(C,)`` for ``(C, H, W)``.
        rows: ``(kh,)`` output row each kernel row lands on; rows outside ``0 … H_out−1`` are cropped away
            by ``padding``.
        cols: ``(kw,)`` output column each kernel column lands on.
        is_cropped: ``(kh, kw)`` True where the stamp falls outside the output.
        contribution: ``(kh, kw)`` what is added to the output: ``inputs · kernel`` (summed over channels).
    """

    position: tuple[int, int]
    inputs: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    is_cropped: np.ndarray
    contribution: np.ndarray

    def formula(self, *, decimals: int = 2) -> str:
        """``"2 × kernel → added to rows 0 to 2, cols 2 to 4"`` (single-channel inputs show the value)."""
        i, j = self.position
        value = format_number(self.inputs, decimals) if self.inputs.ndim == 0 else f"x[:, {i}, {j}]"
        return (
            f"{value} × kernel → added to rows {format_number(self.rows[0])} to {format_number(self.rows[-1])}, "
            f"cols {format_number(self.cols[0])} to {format_number(self.cols[-1])}"
        )


def _check_stride_dilation(stride, padding, output_padding, dilation) -> tuple:
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    padding = as_pair(padding, "padding", minimum=0)
    output_padding = as_pair(output_padding, "output_padding", minimum=0)
    return stride, padding, output_padding, dilation


def conv_transpose2d_steps(
    x: np.ndarray | torch.Tensor,
    kernel: np.ndarray | torch.Tensor,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> list[ScatterStep]:
    """Every stamp of a transposed convolution, one per input pixel, in row-major order.

    Input pixel ``(i, j)`` adds ``x[i, j] · kernel[a, b]`` to output pixel
    ``(i·stride + a·dilation − padding, j·stride + b·dilation − padding)``.

    Args:
        x: ``(H, W)`` or ``(C, H, W)``.
        kernel: ``(kh, kw)`` for an ``(H, W)`` input, ``(C, kh, kw)`` for ``(C, H, W)`` (one output channel).
        stride: spacing of the stamps in the output, an int or ``(rows, cols)``.
        padding: pixels cropped from each side of the full output.
        output_padding: pixels added at the bottom/right (smaller than stride or dilation).
        dilation: spacing between kernel taps.

    Returns:
        ``H · W`` steps; ``steps[k].position == divmod(k, W)``.

    Raises:
        ValueError: on shapes that do not match or arguments out of range.
    """
    x = as_array(x, "x", {2: "(H, W)", 3: "(C, H, W)"})
    kernel = as_array(kernel, "kernel", {2: "(kh, kw)", 3: "(C, kh, kw)"})
    if kernel.ndim != x.ndim or (x.ndim == 3 and kernel.shape[0] != x.shape[0]):
        expected = "(kh, kw)" if x.ndim == 2 else f"({x.shape[0]}, kh, kw)"
        raise ValueError(f"an input of shape {x.shape} needs a kernel of shape {expected}, got {kernel.shape}")
    stride, padding, output_padding, dilation = _check_stride_dilation(stride, padding, output_padding, dilation)
    (height, width), (kh, kw) = x.shape[-2:], kernel.shape[-2:]
    out_h, out_w = transposed_output_shape((height, width), (kh, kw), stride, padding, output_padding, dilation)
    steps = []
    for i in range(height):
        rows = i * stride[0] + dilation[0] * np.arange(kh) - padding[0]  # (kh,) in output coordinates
        for j in range(width):
            cols = j * stride[1] + dilation[1] * np.arange(kw) - padding[1]  # (kw,)
            inputs = x[..., i, j]  # () or (C,)
            contribution = np.tensordot(inputs, kernel, axes=inputs.ndim)  # (kh, kw)
            is_cropped = ((rows < 0) | (rows >= out_h))[:, None] | ((cols < 0) | (cols >= out_w))[None, :]
            steps.append(ScatterStep((i, j), inputs, rows, cols, is_cropped, contribution))
    return steps


def transposed_output_shape(
    in_size: tuple[int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> tuple[int, int]:
    """``(H_out, W_out)`` of a transposed convolution of an ``(H, W)`` input."""
    kernel_size = as_pair(kernel_size, "kernel_size")
    stride, padding, output_padding, dilation = _check_stride_dilation(stride, padding, output_padding, dilation)
    return tuple(
        transposed_output_size(in_size[d], kernel_size[d], stride[d], padding[d], output_padding[d], dilation[d]).value
        for d in range(2)
    )


def conv_transpose2d(
    x: np.ndarray | torch.Tensor,
    kernel: np.ndarray | torch.Tensor,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """The upsampled map ``(H_out, W_out)``: the sum of every stamp; equals ``F.conv_transpose2d``.

    Arguments as in :func:`conv_transpose2d_steps`.
    """
    steps = conv_transpose2d_steps(
        x, kernel, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    in_size = (steps[-1].position[0] + 1, steps[-1].position[1] + 1)
    kernel_size = steps[0].contribution.shape
    output = np.zeros(transposed_output_shape(in_size, kernel_size, stride, padding, output_padding, dilation))
    for step in steps:
        add_stamp(output, step)
    return output


def add_stamp(output: np.ndarray, step: ScatterStep, weight: np.ndarray | float | None = None) -> None:
    """Add one step's stamp to ``output (H_out, W_out)`` in place, dropping what falls outside.

    With ``weight`` given, that is added instead of the contribution (``1`` counts overlaps).
    """
    keep = ~step.is_cropped
    rows, cols = np.broadcast_to(step.rows[:, None], keep.shape), np.broadcast_to(step.cols[None, :], keep.shape)
    added = step.contribution if weight is None else np.broadcast_to(weight, keep.shape)
    output[rows[keep], cols[keep]] += added[keep]  # a stamp's taps never repeat a pixel, so += is safe


def overlap_count(
    in_size: tuple[int, int],
    kernel_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """How many stamps land on each output pixel, ``(H_out, W_out)`` int64.

    Uneven counts (e.g. kernel 3 with stride 2: 1, 2, 1, 2, …) are one cause of checkerboard artefacts; a kernel
    size divisible by the stride gives a flat map inside the border (even overlap), which removes that cause but
    not every checkerboard a learned kernel can paint.
    """
    kernel_size = as_pair(kernel_size, "kernel_size")
    ones = np.ones(tuple(in_size))
    steps = conv_transpose2d_steps(
        ones, np.ones(kernel_size), stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
    )
    out_shape = transposed_output_shape(in_size, kernel_size, stride, padding, output_padding, dilation)
    counts = np.zeros(out_shape, np.int64)
    for step in steps:
        add_stamp(counts, step, weight=1)
    return counts


def bilinear_upsample(x: np.ndarray | torch.Tensor, factor: int) -> np.ndarray:
    """``x (H, W)`` enlarged ``factor`` times by bilinear interpolation: ``(factor·H, factor·W)``.

    Output pixel ``i`` sits at input position ``(i + 0.5) / factor − 0.5`` (pixel centres line up, torch's
    ``align_corners=False``), clamped to the border, and mixes its two neighbours along each axis by distance.
    Equals ``F.interpolate(x[None, None], scale_factor=factor, mode="bilinear", align_corners=False)``.
    """
    x = as_array(x, "x", {2: "(H, W)"})
    factor = as_pair(factor, "factor")[0]

    def along(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.clip((np.arange(size * factor) + 0.5) / factor - 0.5, 0, None)  # in input pixels
        low = np.minimum(position.astype(int), size - 1)
        return low, np.minimum(low + 1, size - 1), position - low  # neighbours and the weight of the upper one

    (top, bottom, dy), (left, right, dx) = along(x.shape[0]), along(x.shape[1])
    rows = x[top] * (1 - dy)[:, None] + x[bottom] * dy[:, None]  # (factor·H, W): between rows first
    return rows[:, left] * (1 - dx) + rows[:, right] * dx  # (factor·H, factor·W)
