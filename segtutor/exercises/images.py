"""Exercise checks of notebooks 00 (start here) and 01 (images are numbers)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from segtutor.exercises.feedback import Feedback, as_tensor, check_array, check_number
from segtutor.metrics import confusion_matrix, pixel_accuracy


# ---- 00 Start here ------------------------------------------------------------------------------------------


def check_label_map(answer: Any, probs: np.ndarray | torch.Tensor) -> Feedback:
    """The predicted class of every pixel from per-pixel probabilities ``probs (K, H, W)``: an ``(H, W)`` label map."""
    probs = as_tensor(probs, torch.float64)
    expected = probs.argmax(0).numpy()  # (H, W): the class with the highest probability
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
    expected = np.asarray(image)[row, col].astype(np.float64)  # numpy indexes [row, column, channel]
    return check_array(
        f"the colour of pixel (row {row}, column {col})",
        answer,
        expected,
        right=f"image[{row}, {col}] is (R, G, B) = {tuple(int(v) for v in expected)}; rows come first, then "
        "columns, then the channel.",
        hint="index the array as image[row, column]: the row (y, downwards) comes first, the column (x) second.",
        tolerance=0.5,
    )


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
