"""Exercise checks of notebooks 00 (start here) and 01 (images are numbers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from segtutor.exercises.feedback import Feedback, as_tensor, check_array, check_number
from segtutor.metrics import confusion_matrix, pixel_accuracy


# ---- 00 Start here ------------------------------------------------------------------------------------------


def check_label_map(answer: Any, probs: np.ndarray | torch.Tensor) -> Feedback:
    """The predicted class of every pixel from per-pixel probabilities ``probs (K, H, W)``: an ``(H, W)`` label map.

    Where two classes tie for the highest probability, either of them is accepted: a tie has no right class.
    """
    probs = as_tensor(probs, torch.float64)
    expected = probs.argmax(0).numpy()  # (H, W): the class with the highest probability (the first, at a tie)
    try:
        given = np.asarray(answer.detach().cpu() if isinstance(answer, torch.Tensor) else answer, dtype=np.float64)
    except (TypeError, ValueError):
        given = None  # check_array says what is wrong with it
    if given is not None and given.shape == expected.shape:
        highest = probs.max(0).values  # (H, W)
        for (row, col), label in np.ndenumerate(given):
            tied = [k for k in range(probs.shape[0]) if probs[k, row, col] == highest[row, col]]
            if len(tied) > 1 and label in tied:
                expected[row, col] = int(label)  # a tie: the learner's choice is as good as argmax's
    return check_array(
        "label map from probabilities",
        answer,
        expected.astype(np.float64),
        right=f"each pixel takes the class with the highest probability (argmax over the {probs.shape[0]} "
        f"classes); here {int((expected == 1).sum())} of {expected.size} pixels are class 1.",
        hint="for every pixel, compare the K probabilities and keep the index of the largest: probs.argmax(0).",
    )


def check_pixel_accuracy(answer: Any, preds: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor) -> Feedback:
    """The share of pixels whose predicted class equals the label."""
    masks, preds = as_tensor(masks, torch.int64), as_tensor(preds, torch.int64)
    num_classes = int(max(masks.max(), preds.max())) + 1
    matrix = confusion_matrix(masks, preds, num_classes, ignore_index=None)
    expected = pixel_accuracy(matrix)
    correct = int(matrix.diagonal().sum())
    return check_number(
        "pixel accuracy",
        answer,
        expected,
        right=f"{correct} of {masks.numel()} pixels agree with the label, {expected:.3f} (a share between 0 and 1).",
        hint="count the pixels where preds == masks and divide by the number of pixels; give a share, not a "
        "percentage.",
    )


# ---- 01 Images are numbers ----------------------------------------------------------------------------------


def check_pixel_value(answer: Any, image: np.ndarray, row: int, col: int) -> Feedback:
    """The (R, G, B) values of one pixel of an ``(H, W, 3)`` image."""
    image = np.asarray(image)
    expected = image[row, col].astype(np.float64)  # numpy indexes [row, column, channel]
    hint = "index the array as image[row, column]: the row (y, downwards) comes first, the column (x) second."
    if is_reversed(answer, expected):
        hint = "these are the right three numbers in reverse order (B, G, R, as OpenCV stores them): red comes first."
    return check_array(
        f"the colour of pixel (row {row}, column {col})",
        answer,
        expected,
        right=f"image[{row}, {col}] is (R, G, B) = {tuple(int(v) for v in expected)}; rows come first, then "
        "columns, then the channel.",
        hint=hint,
        tolerance=0.5,
    )


def is_reversed(answer: Any, expected: np.ndarray) -> bool:
    """True if ``answer`` holds the channels of ``expected`` in reverse order (BGR for RGB), and that differs."""
    try:
        given = np.asarray(answer.detach().cpu() if isinstance(answer, torch.Tensor) else answer, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    reverse = expected[::-1]
    return given.shape == expected.shape and not np.allclose(reverse, expected) and np.allclose(given, reverse, atol=0.5)


def check_class_share(answer: Any, mask: np.ndarray | torch.Tensor, class_index: int) -> Feedback:
    """The share of a mask's pixels labelled ``class_index`` (0 to 1)."""
    mask = as_tensor(mask, torch.int64)
    num_classes = max(int(mask.max()) + 1, class_index + 1)
    pixels_per_class = confusion_matrix(mask, mask, num_classes, ignore_index=None).sum(1)  # (K,)
    expected = float(pixels_per_class[class_index] / pixels_per_class.sum())
    return check_number(
        f"share of class {class_index}",
        answer,
        expected,
        right=f"{int(pixels_per_class[class_index])} of {mask.numel()} pixels are class {class_index}, a share of "
        f"{expected:.3f}.",
        hint=f"count the pixels where mask == {class_index}, divide by mask.size; give a share between 0 and 1.",
    )
