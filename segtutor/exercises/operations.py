"""Exercise checks of notebooks 02 (convolution), 03 (ReLU and pooling) and 04 (encoder, decoder, skips)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from segtutor.exercises.feedback import (
    NOT_ANSWERED,
    Feedback,
    as_number,
    as_tensor,
    as_whole_number,
    check_array,
    check_count,
    check_number,
    feedback,
)
from segtutor.explain import conv2d_steps, output_size, overlap_count, pool2d, transposed_output_size


# ---- 02 Convolution -----------------------------------------------------------------------------------------


def check_conv_pixel(
    answer: Any,
    image: np.ndarray,
    kernel: np.ndarray,
    position: tuple[int, int],
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Feedback:
    """One output pixel of a convolution, computed by hand."""
    steps = conv2d_steps(image, kernel, stride=stride, padding=padding, dilation=dilation)
    width = steps[-1].position[1] + 1
    row, col = position
    if not (0 <= row <= steps[-1].position[0] and 0 <= col < width):
        raise ValueError(f"position {position} lies outside the {steps[-1].position[0] + 1}x{width} output")
    step = steps[row * width + col]
    top, left = int(step.rows[0]), int(step.cols[0])
    return check_number(
        f"output pixel {position} of the convolution",
        answer,
        step.value,
        right=step.formula(),
        hint=f"place the kernel's top-left weight on input pixel (row {top}, column {left}), multiply each "
        "weight with the number under it, and add the products up.",
    )


def check_output_size(
    answer: Any, in_size: int, kernel_size: int, *, stride: int = 1, padding: int = 0, dilation: int = 1
) -> Feedback:
    """The output size of a convolution along one dimension."""
    size = output_size(in_size, kernel_size, stride, padding, dilation)
    return check_count(
        "output size of a convolution",
        answer,
        size.value,
        unit="a number of pixels",
        right=str(size.formula),
        hint="count the positions the kernel's first tap can take: add the padding on both sides, subtract the "
        "kernel's span minus one, then count every stride-th position (including the first).",
    )


def check_same_padding(answer: Any, kernel_size: int, *, dilation: int = 1) -> Feedback:
    """The padding that keeps the size of the input (stride 1)."""
    exercise = f"padding that keeps the size, kernel {kernel_size}, dilation {dilation}"
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    hint = "the kernel covers dilation·(kernel_size − 1) + 1 pixels; half of the extra pixels go on each side."
    number = as_number(answer)
    padding = as_whole_number(number) if number is not None else None
    if padding is None or padding < 0:
        return feedback(exercise, "wrong", f"padding is a whole number >= 0, got {answer!r}. Hint: {hint}")
    span = dilation * (kernel_size - 1) + 1
    sizes = [size for size in (span, 32, 33) if size + 2 * padding >= span]  # inputs the kernel fits into
    outs = [output_size(size, kernel_size, 1, padding, dilation).value for size in sizes]
    if outs == sizes:
        formula = output_size(32, kernel_size, 1, padding, dilation).formula
        return feedback(exercise, "correct", f"padding {padding}: {formula}.")
    return feedback(
        exercise,
        "wrong",
        f"with padding {padding} a 32-pixel input becomes {output_size(32, kernel_size, 1, padding, dilation).value} "
        f"pixels, not 32. Hint: {hint}",
    )


# ---- 03 ReLU and pooling ------------------------------------------------------------------------------------


def check_relu_max_pool(answer: Any, x: np.ndarray) -> Feedback:
    """ReLU, then 2x2 max pooling with stride 2, of a small feature map ``x (H, W)``."""
    rectified = torch.relu(as_tensor(x, torch.float64)).numpy()  # negatives become 0
    expected = pool2d(rectified, kernel_size=2, stride=2, mode="max")  # (H/2, W/2)
    return check_array(
        "ReLU, then 2x2 max pooling",
        answer,
        expected,
        right=f"each output is the largest value of its 2x2 window after negatives became 0; {x.shape} -> "
        f"{expected.shape}.",
        hint="first replace every negative number by 0, then cut the map into 2x2 blocks and keep each block's "
        "largest value.",
    )


def check_size_after_pooling(answer: Any, in_size: int, num_pools: int) -> Feedback:
    """The size of a map after ``num_pools`` 2x2 max poolings with stride 2."""
    size = in_size
    for _ in range(num_pools):
        size = output_size(size, kernel_size=2, stride=2).value
    return check_count(
        f"size after {num_pools} poolings",
        answer,
        size,
        unit="a number of pixels",
        right=f"{in_size} -> " + " -> ".join(str(in_size // 2**k) for k in range(1, num_pools + 1)) + " pixels: "
        f"each feature pixel now summarises {in_size // size}x{in_size // size} input pixels.",
        hint="each 2x2 pooling with stride 2 halves the size.",
    )


# ---- 04 Encoder, decoder and skips --------------------------------------------------------------------------


def check_transposed_output_size(
    answer: Any, in_size: int, kernel_size: int, *, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> Feedback:
    """The output size of a transposed convolution along one dimension."""
    size = transposed_output_size(in_size, kernel_size, stride, padding, output_padding)
    return check_count(
        "output size of a transposed convolution",
        answer,
        size.value,
        unit="a number of pixels",
        right=str(size.formula),
        hint="the stamps of neighbouring input pixels start `stride` pixels apart; the last stamp adds the "
        "kernel's size, and padding crops that many pixels from each side.",
    )


def check_even_overlap(answer: Any, stride: int) -> Feedback:
    """A kernel size whose transposed convolution with ``stride`` covers every inner output pixel equally often.

    Even overlap removes one cause of checkerboard artefacts, not all of them: a learned kernel can still paint a
    pattern with the stride's period (Odena et al. 2016). The probe input is sized by the kernel, so that every
    kernel size has an interior to look at.
    """
    exercise = f"kernel size with even overlap at stride {stride}"
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    hint = f"draw the stamps of a row of input pixels, {stride} pixels apart: when do they overlap evenly?"
    number = as_number(answer)
    kernel_size = as_whole_number(number) if number is not None else None
    if kernel_size is None or kernel_size < 1:
        return feedback(exercise, "wrong", f"a kernel size is a whole number >= 1, got {answer!r}. Hint: {hint}")
    in_size = 3 * -(-kernel_size // stride) + 2  # enough stamps for an interior at least 2·kernel + stride wide
    counts = overlap_count((in_size, in_size), kernel_size, stride=stride)  # stamps per output pixel
    margin = kernel_size  # the border is covered less often by any kernel: look inside it
    interior = counts[margin:-margin, margin:-margin]
    if interior.min() == interior.max():
        return feedback(
            exercise,
            "correct",
            f"with kernel {kernel_size} every inner output pixel receives {interior.min()} stamps, because "
            f"{kernel_size} is a multiple of the stride {stride}. Even overlap removes one cause of checkerboard "
            "artefacts; a learned kernel can still paint a pattern, which resize-convolution avoids.",
        )
    row = " ".join(str(v) for v in counts[counts.shape[0] // 2, margin:-margin][: 2 * stride + 2])
    return feedback(
        exercise, "wrong", f"with kernel {kernel_size} the stamp counts along a row go {row}: uneven. Hint: {hint}"
    )
