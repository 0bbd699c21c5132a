"""How good is a segmentation? Everything here follows from one table, the confusion matrix.

Entry ``[t, p]`` of the ``(K, K)`` confusion matrix counts the pixels whose true class is ``t`` and whose
predicted class is ``p``: the diagonal holds the correct pixels. Per class ``c``:

- ``IoU  = TP / (TP + FP + FN)``  (intersection over union, the Jaccard index),
- ``Dice = 2 TP / (2 TP + FP + FN)``  (the F1 score of the class's pixels),

and the pixel accuracy is the diagonal's share of all pixels. A class absent from both the masks and the
predictions has no IoU or Dice: it is NaN and left out of the means.

Why per-class numbers matter: on a tile that is 95 % stroma, a model that predicts "stroma" everywhere reaches
95 % pixel accuracy and a tumor IoU of 0.

Example:
    >>> scores = ConfusionMatrix(num_classes=2, class_names=["stroma", "tumor"])
    >>> scores.update(masks, logits)   # once per batch
    >>> print(scores.compute())        # pixel accuracy, and IoU and Dice per class
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from segtutor.data import IGNORE_INDEX, class_colors  # mask value for "no label here": not counted, no loss
from segtutor.models import logits_to_preds


def confusion_matrix(
    masks: torch.Tensor, preds: torch.Tensor, num_classes: int, *, ignore_index: int | None = IGNORE_INDEX
) -> torch.Tensor:
    """Count pixels by (true class, predicted class).

    Args:
        masks: true classes, integer tensor of any shape, e.g. ``(N, H, W)``; pixels equal to ``ignore_index``
            are not counted.
        preds: predicted classes, integer tensor of the same shape as ``masks``.
        num_classes: K, the number of classes.
        ignore_index: mask value to leave out, or None to count every pixel.

    Returns:
        ``(K, K)`` int64 tensor on the inputs' device; rows are true classes, columns predicted classes.
    """
    if masks.shape != preds.shape:
        raise ValueError(
            f"masks and preds must have the same shape, got {tuple(masks.shape)} and {tuple(preds.shape)}; "
            "turn logits (N, K, H, W) into preds (N, H, W) with logits.argmax(1)"
        )
    if masks.is_floating_point() or preds.is_floating_point():
        raise TypeError(f"masks and preds must be integer class indices, got {masks.dtype} and {preds.dtype}")
    masks, preds = masks.reshape(-1).long(), preds.reshape(-1).long()
    if ignore_index is not None:
        keep = masks != ignore_index
        masks, preds = masks[keep], preds[keep]
    _check_range("masks", masks, num_classes, ignore_index)
    _check_range("preds", preds, num_classes, None)
    # 1) one number per pixel that says both classes: K * true + predicted, in [0, K * K)
    pairs = num_classes * masks + preds
    # 2) count each pair, then fold the K * K counts into the table
    return torch.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _check_range(name: str, labels: torch.Tensor, num_classes: int, ignore_index: int | None) -> None:
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = high if high >= num_classes else low
        hint = f" (and {ignore_index} for ignored pixels)" if ignore_index is not None else ""
        raise ValueError(
            f"{name} contain the class {bad}, but num_classes={num_classes} allows only 0..{num_classes - 1}{hint}; "
            "check num_classes, or masks saved as {0, 255} instead of {0, 1}"
        )


def iou_per_class(matrix: torch.Tensor) -> torch.Tensor:
    """IoU of each class, ``TP / (TP + FP + FN)``, from a ``(K, K)`` confusion matrix.

    Returns:
        ``(K,)`` float64 tensor; NaN for a class that appears in neither masks nor predictions.
    """
    true_pos, false_pos, false_neg = _counts(matrix)
    return _divide(true_pos, true_pos + false_pos + false_neg)


def dice_per_class(matrix: torch.Tensor) -> torch.Tensor:
    """Dice of each class, ``2 TP / (2 TP + FP + FN)``, from a ``(K, K)`` confusion matrix.

    Returns:
        ``(K,)`` float64 tensor; NaN for a class that appears in neither masks nor predictions.
    """
    true_pos, false_pos, false_neg = _counts(matrix)
    return _divide(2 * true_pos, 2 * true_pos + false_pos + false_neg)


def pixel_accuracy(matrix: torch.Tensor) -> float:
    """Share of counted pixels whose predicted class is right (NaN if no pixel was counted)."""
    matrix = matrix.double()
    total = matrix.sum()
    return float(matrix.diagonal().sum() / total) if total > 0 else math.nan


def mean_iou(matrix: torch.Tensor) -> float:
    """Mean of the per-class IoU over the classes that occur (NaN classes left out)."""
    return float(iou_per_class(matrix).nanmean())


def _counts(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    matrix = matrix.double()
    true_pos = matrix.diagonal()
    false_pos = matrix.sum(0) - true_pos  # predicted as c, but another class
    false_neg = matrix.sum(1) - true_pos  # truly c, predicted as another class
    return true_pos, false_pos, false_neg


def _divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), torch.nan)


@dataclass(frozen=True)
class SegmentationScores:
    """The numbers of one evaluation, as plain Python values (JSON-ready with :meth:`to_dict`)."""

    class_names: list[str]  # one name per class, in class-index order
    iou: list[float]  # per-class IoU; NaN for a class absent from masks and predictions
    dice: list[float]  # per-class Dice; NaN likewise
    pixel_accuracy: float  # share of pixels classified correctly
    mean_iou: float  # mean of the per-class IoU over classes that occur
    class_pixels: list[int]  # labelled pixels per true class: shows how unbalanced the classes are

    @classmethod
    def from_matrix(cls, matrix: torch.Tensor, class_names: list[str] | None = None) -> SegmentationScores:
        """Scores of a ``(K, K)`` confusion matrix; ``class_names`` default to ``"class 0"``, ``"class 1"``, ..."""
        num_classes = matrix.shape[0]
        names = list(class_names) if class_names is not None else [f"class {c}" for c in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"got {len(names)} class_names for a {num_classes}-class confusion matrix")
        return cls(
            class_names=names,
            iou=iou_per_class(matrix).tolist(),
            dice=dice_per_class(matrix).tolist(),
            pixel_accuracy=pixel_accuracy(matrix),
            mean_iou=mean_iou(matrix),
            class_pixels=matrix.sum(1).tolist(),
        )

    def to_dict(self) -> dict:
        """Plain dict of lists and numbers."""
        return asdict(self)

    def __repr__(self) -> str:
        total = max(sum(self.class_pixels), 1)
        lines = [f"pixel accuracy {self.pixel_accuracy:.3f}   mean IoU {self.mean_iou:.3f}"]
        lines.append(f"{'class':<12} {'share':>6} {'IoU':>6} {'Dice':>6}")
        for name, pixels, iou, dice in zip(self.class_names, self.class_pixels, self.iou, self.dice):
            lines.append(f"{name:<12} {pixels / total:>6.1%} {iou:>6.3f} {dice:>6.3f}")
        return "\n".join(lines)

    def to_html(self, colors: Sequence[Sequence[int]] | None = None) -> str:
        """The scores as an HTML table, a colour swatch per class (default: ``segtutor.data.class_colors``)."""
        colors = colors if colors is not None else class_colors(self.class_names)
        total = max(sum(self.class_pixels), 1)
        rows = "".join(
            f"<tr><td style='text-align:left'><span style='color:rgb{tuple(color)}'>■</span> {html.escape(name)}</td>"
            f"<td>{pixels / total:.1%}</td><td><b>{iou:.3f}</b></td><td>{dice:.3f}</td></tr>"
            for name, color, pixels, iou, dice in zip(self.class_names, colors, self.class_pixels, self.iou, self.dice)
        )
        return (
            "<table style='font-size:13px'><tr><th style='text-align:left'>class</th><th>share of pixels</th>"
            f"<th>IoU</th><th>Dice</th></tr>{rows}</table><span style='font-size:13px'>pixel accuracy "
            f"{self.pixel_accuracy:.3f} · mean IoU {self.mean_iou:.3f}</span>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()


class ConfusionMatrix:
    """Accumulates a confusion matrix batch by batch, then computes the scores once.

    Args:
        num_classes: K, the number of classes.
        ignore_index: mask value to leave out, or None to count every pixel.
        class_names: names for the report, one per class.
    """

    def __init__(
        self, num_classes: int, *, ignore_index: int | None = IGNORE_INDEX, class_names: list[str] | None = None
    ):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = class_names
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # rows: true, columns: predicted

    def update(self, masks: torch.Tensor, preds: torch.Tensor) -> None:
        """Add one batch: ``masks (N, H, W)`` and either ``preds (N, H, W)`` or ``logits (N, K, H, W)``.

        Logits become predictions by ``argmax`` over the classes; one channel (``K = 1``) means binary,
        class 1 where the logit is > 0.
        """
        if preds.ndim == masks.ndim + 1:
            preds = logits_to_preds(preds)
        batch = confusion_matrix(masks, preds, self.num_classes, ignore_index=self.ignore_index)
        self.matrix += batch.cpu()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self.matrix.zero_()

    def compute(self) -> SegmentationScores:
        """Per-class IoU and Dice, pixel accuracy and mean IoU of everything seen since the last reset."""
        return SegmentationScores.from_matrix(self.matrix, self.class_names)

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={int(self.matrix.sum())})"
