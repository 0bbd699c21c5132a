"""Can the model's probabilities be trusted? Reliability diagrams, expected calibration error, temperature scaling.

A model is *calibrated* when, of all the pixels it calls tumor with 80 % confidence, about 80 % are tumor. Deep
networks trained with cross-entropy are usually overconfident (Guo et al. 2017, "On Calibration of Modern Neural
Networks"), and more so on slides from another lab.

- Reliability diagram (:func:`reliability_diagram`): sort pixels into equal-width bins of confidence (the
  largest softmax probability) and compare each bin's mean confidence with its accuracy.
- Expected calibration error (:func:`expected_calibration_error`): the bins' ``|accuracy - confidence|``,
  weighted by the share of pixels in each bin. 0 is perfect.
- Temperature scaling (:func:`fit_temperature`, :func:`apply_temperature`): divide all logits by one number
  ``T > 0`` fitted on validation data by minimising the negative log-likelihood. ``T > 1`` softens an
  overconfident model; the argmax, and so IoU and Dice, do not change.

Inputs are ``logits (N, K, ...)`` (e.g. ``(N, K, H, W)``) and ``masks (N, ...)``; pixels whose mask is
``ignore_index`` are left out. A one-channel (binary) model's logit is read as ``sigmoid`` of class 1.

Example:
    >>> temperature = fit_temperature(val_logits, val_masks)
    >>> expected_calibration_error(apply_temperature(test_logits, temperature), test_masks)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from segtutor.data import IGNORE_INDEX


@dataclass
class ReliabilityDiagram:
    """The data of a reliability diagram: per confidence bin, mean confidence, accuracy and pixel count.

    Attributes:
        bin_edges: ``(B + 1,)`` float64 edges, ``0, 1/B, ..., 1``; bin ``b`` holds confidences in
            ``(edges[b], edges[b + 1]]`` (the first bin also holds 0).
        confidence: ``(B,)`` float64 mean confidence of each bin's pixels; NaN for an empty bin.
        accuracy: ``(B,)`` float64 share of each bin's pixels whose predicted class is right; NaN if empty.
        count: ``(B,)`` int64 pixels in each bin.
    """

    bin_edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error: ``sum_b count_b / total * |accuracy_b - confidence_b|``."""
        filled = self.count > 0
        gaps = (self.accuracy[filled] - self.confidence[filled]).abs()
        return float((self.count[filled].double() * gaps).sum() / self.count.sum())

    def __repr__(self) -> str:
        return f"ReliabilityDiagram({len(self.count)} bins, {int(self.count.sum())} pixels, ece={self.ece:.4f})"


def reliability_diagram(
    logits: torch.Tensor, masks: torch.Tensor, *, num_bins: int = 15, ignore_index: int | None = IGNORE_INDEX
) -> ReliabilityDiagram:
    """Bin every counted pixel by its confidence, and measure each bin's confidence and accuracy.

    Args:
        logits: ``(N, K, ...)`` float, e.g. ``(N, K, H, W)``.
        masks: ``(N, ...)`` integer true classes; pixels equal to ``ignore_index`` are left out.
        num_bins: B, the number of equal-width bins on [0, 1] (Guo et al. use 15).
        ignore_index: mask value to leave out, or None to count every pixel.

    Returns:
        A :class:`ReliabilityDiagram`.

    Example:
        >>> diagram = reliability_diagram(logits, masks)
        >>> diagram.accuracy - diagram.confidence  # negative: overconfident
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be at least 1, got {num_bins}")
    probs, masks = _probs_and_labels(logits, masks, ignore_index)  # (P, K), (P,)
    # 1) Confidence and prediction per pixel: the largest probability and its class.
    confidence, preds = probs.max(dim=1)
    correct = (preds == masks).double()
    # 2) Bin b holds confidences in (b / B, (b + 1) / B].
    edges = torch.linspace(0.0, 1.0, num_bins + 1, dtype=torch.float64)
    bins = torch.bucketize(confidence, edges[1:-1].to(confidence.device)).cpu()
    confidence, correct = confidence.cpu(), correct.cpu()
    # 3) Per bin: pixel count, summed confidence and summed correctness, then their means.
    count = torch.bincount(bins, minlength=num_bins)
    summed_confidence = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, bins, confidence)
    summed_correct = torch.zeros(num_bins, dtype=torch.float64).index_add_(0, bins, correct)
    filled = count.double().clamp(min=1)
    empty = count == 0
    mean_confidence = torch.where(empty, torch.nan, summed_confidence / filled)
    accuracy = torch.where(empty, torch.nan, summed_correct / filled)
    return ReliabilityDiagram(bin_edges=edges, confidence=mean_confidence, accuracy=accuracy, count=count)


def expected_calibration_error(
    logits: torch.Tensor, masks: torch.Tensor, *, num_bins: int = 15, ignore_index: int | None = IGNORE_INDEX
) -> float:
    """Expected calibration error (Guo et al. 2017): the count-weighted mean of ``|accuracy - confidence|``.

    See :func:`reliability_diagram` for the arguments. 0 for a perfectly calibrated model; a model that is 99 %
    sure and right 80 % of the time scores about 0.19.
    """
    return reliability_diagram(logits, masks, num_bins=num_bins, ignore_index=ignore_index).ece


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Temperature-scaled logits, ``logits / temperature``: same argmax, softer (T > 1) or sharper (T < 1)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return logits / temperature


def fit_temperature(
    logits: torch.Tensor,
    masks: torch.Tensor,
    *,
    ignore_index: int | None = IGNORE_INDEX,
    bounds: tuple[float, float] = (0.01, 100.0),
    tolerance: float = 1e-6,
) -> float:
    """The temperature ``T`` that minimises the negative log-likelihood of ``masks`` under ``logits / T``.

    Fit it on validation data, never on the test data you report. The NLL is a convex function of ``1 / T`` (a
    log-sum-exp of linear functions), so it has one minimum: a golden-section search on ``log T`` within
    ``bounds`` finds it without a learning rate. A model that is right on every pixel has no finite best ``T``
    (sharper is always better); it gets ``bounds[0]``.

    Args:
        logits: ``(N, K, ...)`` float validation logits.
        masks: ``(N, ...)`` integer true classes; pixels equal to ``ignore_index`` are left out.
        ignore_index: mask value to leave out, or None to count every pixel.
        bounds: the smallest and largest temperature considered.
        tolerance: stop once ``log T`` is known to within this.

    Returns:
        The temperature, a float in ``bounds``.

    Example:
        >>> temperature = fit_temperature(val_logits, val_masks)  # e.g. 1.8 for an overconfident model
        >>> probs = apply_temperature(test_logits, temperature).softmax(1)
    """
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    flat_logits, labels = _logits_and_labels(logits, masks, ignore_index)  # (P, K), (P,)

    def nll(log_temperature: float) -> float:
        scaled = flat_logits / math.exp(log_temperature)
        return float(torch.nn.functional.cross_entropy(scaled, labels))

    # Golden-section search: keep a bracket [a, b] around the minimum, and shrink it by 0.618 per step by
    # comparing the NLL at two inner points.
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = math.log(low), math.log(high)
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    nll_c, nll_d = nll(c), nll(d)
    while b - a > tolerance:
        if nll_c <= nll_d:  # the minimum lies in [a, d]
            b, d, nll_d = d, c, nll_c
            c = b - ratio * (b - a)
            nll_c = nll(c)
        else:  # the minimum lies in [c, b]
            a, c, nll_c = c, d, nll_d
            d = a + ratio * (b - a)
            nll_d = nll(d)
    return math.exp((a + b) / 2.0)


def _logits_and_labels(
    logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits as ``(P, K)`` float64 (a binary model's one logit becomes two: ``[0, logit]``) and labels ``(P,)``."""
    if logits.dim() < 2 or not logits.is_floating_point():
        raise TypeError(f"logits must be a float tensor (N, K, ...), got {logits.dtype} {tuple(logits.shape)}")
    if masks.is_floating_point():
        raise TypeError(f"masks must hold integer class indices, got {masks.dtype}")
    if masks.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"masks {tuple(masks.shape)} must have the shape of logits {tuple(logits.shape)} without the class "
            "dimension (logits (N, K, H, W) go with masks (N, H, W))"
        )
    num_classes = logits.shape[1]
    flat = logits.movedim(1, -1).reshape(-1, num_classes).double()  # (P, K)
    if num_classes == 1:  # binary: sigmoid(z) = softmax([0, z])[1]
        flat = torch.cat([torch.zeros_like(flat), flat], dim=1)
    labels = masks.reshape(-1).long().to(flat.device)
    if ignore_index is not None:
        keep = labels != ignore_index
        flat, labels = flat[keep], labels[keep]
    if len(labels) == 0:
        raise ValueError("no pixel to score: every mask pixel equals ignore_index")
    if int(labels.min()) < 0 or int(labels.max()) >= flat.shape[1]:
        raise ValueError(
            f"masks contain the class {int(labels.max()) if int(labels.max()) >= flat.shape[1] else int(labels.min())}"
            f", but the logits have {flat.shape[1]} classes (0..{flat.shape[1] - 1}); check num_classes and "
            f"ignore_index={ignore_index}"
        )
    return flat, labels


def _probs_and_labels(
    logits: torch.Tensor, masks: torch.Tensor, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    flat, labels = _logits_and_labels(logits, masks, ignore_index)
    return flat.softmax(dim=1), labels
