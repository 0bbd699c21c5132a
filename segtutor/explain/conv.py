"""One 2-D convolution, one output pixel at a time.

A convolution layer slides a small kernel over the image. At each placement it multiplies the kernel with the
pixels underneath, element by element, and adds the products up: that sum is one output pixel. Like every
deep-learning library we compute the *cross-correlation* (the kernel is not flipped), so :func:`conv2d` equals
``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segtutor.explain.arguments import as_array, as_pair, conv_padding
from segtutor.explain.arithmetic import output_size
from segtutor.explain.formula import sum_of_products

if TYPE_CHECKING:  # torch only for the type hints: the explorers draw without it
    import torch


@dataclass(frozen=True, eq=False)
class ConvStep:
    """One kernel placement: how output pixel ``(i, j)`` is computed.

    Shapes use the input's layout: ``(kh, kw)`` for an ``(H, W)`` image, ``(C, kh, kw)`` for ``(C, H, W)``.

    Attributes:
        position: ``(i, j)``, the output pixel.
        rows: ``(kh,)`` input row each kernel row lands on; rows outside ``0 … H−1`` are padding.
        cols: ``(kw,)`` input column each kernel column lands on.
        is_padding: ``(kh, kw)`` True where the tap lands on a padding zero rather than on the image.
        inputs: the input values under the taps (0 on padding).
        kernel: the kernel weights.
        products: ``inputs * kernel``, element by element.
        bias: the bias added to the sum.
        value: ``products.sum() + bias``, the output pixel.
    """

    position: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    is_padding: np.ndarray
    inputs: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    bias: float
    value: float

    def formula(self, *, decimals: int = 2, max_terms: int = 9) -> str:
        """The sum written out, input·weight for each tap: ``"3·1 + 0·0 + … = 7"``."""
        return sum_of_products(
            self.inputs.ravel(), self.kernel.ravel(), self.value, bias=self.bias, decimals=decimals, max_terms=max_terms
        )


def conv2d_steps(
    image: np.ndarray | torch.Tensor,
    kernel: np.ndarray | torch.Tensor,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    bias: float = 0.0,
) -> list[ConvStep]:
    """Every step of a convolution, one per output pixel, in row-major order.

    Args:
        image: ``(H, W)`` or ``(C, H, W)``.
        kernel: ``(kh, kw)`` for an ``(H, W)`` image, ``(C, kh, kw)`` for a ``(C, H, W)`` one (one output channel).
        stride: step between placements, an int or ``(rows, cols)``.
        padding: zeros added on each side, an int, ``(rows, cols)``, ``"valid"`` (0) or ``"same"`` (stride 1).
        dilation: spacing between taps (atrous convolution), an int or ``(rows, cols)``.
        bias: added to every output pixel.

    Returns:
        ``H_out · W_out`` steps; ``steps[k].position == divmod(k, W_out)``.

    Raises:
        ValueError: on shapes that do not match, or a kernel that does not fit in the padded image.

    Example:
        >>> steps = conv2d_steps(np.arange(16).reshape(4, 4), np.ones((3, 3)))
        >>> steps[0].formula()
        '0·1 + 1·1 + 2·1 + 4·1 + 5·1 + 6·1 + 8·1 + 9·1 + 10·1 = 45'
    """
    image = as_array(image, "image", {2: "(H, W)", 3: "(C, H, W)"})
    kernel = as_array(kernel, "kernel", {2: "(kh, kw)", 3: "(C, kh, kw)"})
    if kernel.ndim != image.ndim or (image.ndim == 3 and kernel.shape[0] != image.shape[0]):
        expected = "(kh, kw)" if image.ndim == 2 else f"({image.shape[0]}, kh, kw)"
        raise ValueError(
            f"an image of shape {image.shape} needs a kernel of shape {expected} (one slice per channel), "
            f"got {kernel.shape}"
        )
    stride, dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    kh, kw = kernel.shape[-2:]
    (top, bottom), (left, right) = conv_padding(padding, (kh, kw), stride, dilation)
    height, width = image.shape[-2:]
    # torch pads symmetrically with an int; "same" may pad one more pixel at the bottom/right.
    out_h = output_size(height + top + bottom, kh, stride[0], 0, dilation[0]).value
    out_w = output_size(width + left + right, kw, stride[1], 0, dilation[1]).value

    # Zero-pad once; tap (a, b) of placement (i, j) reads padded[i·s + a·d, j·s + b·d].
    spatial_pad = ((top, bottom), (left, right))
    padded = np.pad(image, ((0, 0),) * (image.ndim - 2) + spatial_pad)
    tap_rows, tap_cols = dilation[0] * np.arange(kh), dilation[1] * np.arange(kw)
    steps = []
    for i in range(out_h):
        rows = i * stride[0] + tap_rows  # (kh,) in padded coordinates
        for j in range(out_w):
            cols = j * stride[1] + tap_cols  # (kw,)
            inputs = padded[..., rows[:, None], cols[None, :]]  # (kh, kw) or (C, kh, kw)
            products = inputs * kernel
            image_rows, image_cols = rows - top, cols - left  # back to the image's coordinates
            is_padding = ((image_rows < 0) | (image_rows >= height))[:, None] | (
                (image_cols < 0) | (image_cols >= width)
            )[None, :]
            steps.append(
                ConvStep(
                    position=(i, j),
                    rows=image_rows,
                    cols=image_cols,
                    is_padding=is_padding,
                    inputs=inputs,
                    kernel=kernel,
                    products=products,
                    bias=float(bias),
                    value=float(products.sum() + bias),
                )
            )
    return steps


def conv2d(
    image: np.ndarray | torch.Tensor,
    kernel: np.ndarray | torch.Tensor,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    bias: float = 0.0,
) -> np.ndarray:
    """The feature map ``(H_out, W_out)``, assembled from :func:`conv2d_steps`; equals ``F.conv2d``.

    Arguments as in :func:`conv2d_steps`.
    """
    steps = conv2d_steps(image, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
    out_h, out_w = steps[-1].position[0] + 1, steps[-1].position[1] + 1
    feature_map = np.zeros((out_h, out_w))
    for step in steps:
        feature_map[step.position] = step.value
    return feature_map
