"""Exercise checks of notebook 13 (another lab: domain shift, its fixes, pretrained encoders, calibration)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from segtutor.exercises.feedback import Feedback, as_tensor, check_count, check_number


def check_share_won_back(answer: Any, home_iou: float, shifted_iou: float, fixed_iou: float) -> Feedback:
    """The share of the IoU lost to a domain shift that a fix wins back: ``(fixed - shifted) / (home - shifted)``."""
    lost = home_iou - shifted_iou
    if not lost > 0:
        raise ValueError(f"nothing was lost: home_iou {home_iou} is not above shifted_iou {shifted_iou}")
    expected = (fixed_iou - shifted_iou) / lost
    return check_number(
        "share of the lost IoU won back",
        answer,
        expected,
        tolerance=0.005,
        right=f"the shift cost {home_iou:.3f} − {shifted_iou:.3f} = {lost:.3f}; the fix wins back "
        f"{fixed_iou:.3f} − {shifted_iou:.3f} = {fixed_iou - shifted_iou:.3f} of it, a share of {expected:.2f}.",
        hint="first the loss (IoU at home minus IoU in the other lab), then what the fix gained over the shifted "
        "IoU; divide the gain by the loss (a share: 1 means everything won back).",
    )


def check_ece(
    answer: Any, confidences: np.ndarray | torch.Tensor, correct: np.ndarray | torch.Tensor, num_bins: int
) -> Feedback:
    """The expected calibration error of pixels with these ``confidences`` and ``correct`` flags, in equal bins."""
    confidences = as_tensor(confidences, torch.float64).flatten()
    correct = as_tensor(correct, torch.float64).flatten()
    if confidences.shape != correct.shape:
        raise ValueError(f"confidences {tuple(confidences.shape)} and correct {tuple(correct.shape)} differ in size")
    edges = np.arange(1, num_bins) / num_bins  # the inner bin edges
    on_edge = [float(c) for c in confidences.numpy() if np.isclose(c, edges).any()]
    if on_edge:  # (low, high] and [low, high) bins would disagree about these pixels, and so would two right answers
        raise ValueError(f"confidences {on_edge} lie on a bin edge of {num_bins} bins, where the binning convention "
                         "decides the answer; choose confidences between the edges")  # fmt: skip
    # Independent of segtutor.metrics: a loop over the bins (b / B, (b + 1) / B], the first one holding 0 too.
    total, lines = 0.0, []
    for b in range(num_bins):
        low, high = b / num_bins, (b + 1) / num_bins
        inside = (confidences > low) & (confidences <= high) if b else (confidences <= high)
        if inside.any():
            gap = abs(float(correct[inside].mean()) - float(confidences[inside].mean()))
            total += int(inside.sum()) / len(confidences) * gap
            lines.append(f"{int(inside.sum())}/{len(confidences)}·{gap:.3f}")
    return check_number(
        f"expected calibration error ({num_bins} bins)",
        answer,
        total,
        tolerance=0.002,
        right=f"ECE = {' + '.join(lines)} = {total:.4f}: each filled bin's |accuracy − mean confidence|, weighted "
        "by its share of the pixels.",
        hint=f"put the pixels into {num_bins} bins of equal width by confidence; in each bin take the share that is "
        "correct and the mean confidence; add up |difference| times the bin's share of all pixels.",
    )


def check_trainable_parameters(answer: Any, model: nn.Module) -> Feedback:
    """How many of ``model``'s weights the optimizer updates: those with ``requires_grad`` (not frozen)."""
    expected = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    total = sum(parameter.numel() for parameter in model.parameters())
    return check_count(
        "parameters that learn",
        answer,
        expected,
        unit="a number of parameters",
        mistakes=[(total, "that is every parameter, the frozen ones too; count only those with requires_grad.")],
        right=f"{expected:,} of {total:,} parameters learn ({expected / total:.0%}); the frozen encoder's "
        f"{total - expected:,} keep their pretrained values.",
        hint="count the elements (parameter.numel()) of the parameters whose requires_grad is True.",
    )
