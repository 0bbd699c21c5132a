"""How well does a prediction follow the outline of each class? The boundary F-score.

IoU and Dice count pixels, and most pixels of a blob lie far inside it: a prediction whose edges are a few pixels
off can still score a high IoU. A pathologist looks at the border of a tumor nest. The boundary F-score
(Csurka et al. 2013, "What is a good evaluation measure for semantic segmentation?",
http://www.bmva.org/bmvc/2013/Papers/paper0032/paper0032.pdf) scores only the outlines:

1. The *boundary* of class ``c`` is the set of its pixels that touch (4-neighbourhood) a pixel of another class.
   The image border is not a boundary: a tile cuts tissue, it does not outline it.
2. Precision: the share of predicted boundary pixels that lie within ``tolerance`` pixels (Euclidean distance)
   of a true boundary pixel. Recall: the share of true boundary pixels within ``tolerance`` of a predicted one.
3. ``F = 2 · precision · recall / (precision + recall)``.

Counts are summed over all images of a batch before dividing, as the confusion matrix does for IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from segtutor.data import IGNORE_INDEX

CROSS = ndimage.generate_binary_structure(2, 1)  # the 4-neighbourhood: up, down, left, right


def boundary_pixels(region: np.ndarray) -> np.ndarray:
    """The pixels of ``region`` that touch a pixel outside it (4-neighbourhood; the image border does not count).

    Args:
        region: ``(H, W)`` bool, e.g. ``mask == c``.

    Returns:
        ``(H, W)`` bool, True on the region's outline.
    """
    region = np.asarray(region, dtype=bool)
    # border_value=1: pixels beyond the image count as inside, so the image's edge is no boundary
    interior = ndimage.binary_erosion(region, structure=CROSS, border_value=1)
    return region & ~interior


@dataclass(frozen=True)
class BoundaryScores:
    """Per-class boundary precision, recall and F-score (NaN where the class has no boundary on either side)."""

    tolerance: float  # pixels a predicted outline may be off and still count as right
    precision: list[float]  # share of predicted boundary pixels near a true boundary
    recall: list[float]  # share of true boundary pixels near a predicted boundary
    f_score: list[float]  # harmonic mean of the two

    @property
    def mean_f_score(self) -> float:
        """Mean F-score over the classes that have a boundary (NaN if none has)."""
        scores = [score for score in self.f_score if score == score]
        return float(np.mean(scores)) if scores else float("nan")


def boundary_scores(
    masks: torch.Tensor | np.ndarray,
    preds: torch.Tensor | np.ndarray,
    num_classes: int,
    *,
    tolerance: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> BoundaryScores:
    """Boundary precision, recall and F-score of every class.

    Args:
        masks: true classes ``(H, W)`` or ``(N, H, W)``, integers; ``ignore_index`` marks unlabelled pixels.
        preds: predicted classes of the same shape.
        num_classes: K.
        tolerance: how many pixels (Euclidean) an outline may be off and still match, e.g. 2.
        ignore_index: pixels with this mask value are unlabelled: boundary pixels in them or next to them count
            on neither side.

    Returns:
        :class:`BoundaryScores` with K values in each list.

    Example:
        >>> scores = boundary_scores(masks, logits.argmax(1), num_classes=2, tolerance=2)
        >>> scores.f_score   # [stroma, tumor]
    """
    masks, preds = _as_batch(masks, "masks"), _as_batch(preds, "preds")
    if masks.shape != preds.shape:
        raise ValueError(f"masks and preds must have the same shape, got {masks.shape} and {preds.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    matched_pred = np.zeros(num_classes)  # predicted boundary pixels near a true boundary
    total_pred = np.zeros(num_classes)  # predicted boundary pixels
    matched_true = np.zeros(num_classes)  # true boundary pixels near a predicted boundary
    total_true = np.zeros(num_classes)  # true boundary pixels
    for mask, pred in zip(masks, preds):
        # scored pixels: labelled, and not next to an unlabelled one (the outline of a hole is no real boundary)
        scored = ~ndimage.binary_dilation(mask == ignore_index, structure=CROSS)
        for c in range(num_classes):
            true_edge = boundary_pixels(mask == c) & scored
            pred_edge = boundary_pixels(pred == c) & scored
            total_true[c] += true_edge.sum()
            total_pred[c] += pred_edge.sum()
            matched_pred[c] += (pred_edge & _within(true_edge, tolerance)).sum()
            matched_true[c] += (true_edge & _within(pred_edge, tolerance)).sum()
    precision = _ratio(matched_pred, total_pred, total_true)
    recall = _ratio(matched_true, total_true, total_pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        f_score = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f_score = np.where(np.isnan(precision) | np.isnan(recall), np.nan, f_score)
    return BoundaryScores(float(tolerance), precision.tolist(), recall.tolist(), f_score.tolist())


def _within(edge: np.ndarray, tolerance: float) -> np.ndarray:
    """True at every pixel within ``tolerance`` of a True pixel of ``edge`` (all False if ``edge`` is empty)."""
    if not edge.any():
        return np.zeros_like(edge)
    return ndimage.distance_transform_edt(~edge) <= tolerance


def _ratio(matched: np.ndarray, total: np.ndarray, other_total: np.ndarray) -> np.ndarray:
    """``matched / total``; 0 where this side has no boundary but the other has; NaN where neither has."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(total > 0, matched / np.maximum(total, 1), 0.0)
    return np.where((total == 0) & (other_total == 0), np.nan, ratio)


def _as_batch(labels: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.dtype.kind not in "iub":
        raise TypeError(f"{name} must be integer class indices, got {array.dtype}; use logits.argmax(1) for preds")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or (N, H, W), got shape {array.shape}")
    return array
