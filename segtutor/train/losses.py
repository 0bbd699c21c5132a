"""The number training pushes down: cross-entropy, focal loss, Dice loss, or a sum of two.

Cross-entropy scores every pixel on its own: ``-log p(true class)``, averaged over pixels. The focal loss
multiplies each pixel's cross-entropy by ``(1 - p(true class))^gamma``, so pixels the model already gets right
with confidence add almost nothing and the hard ones dominate. The soft Dice loss scores each class's overlap as a
whole, ``1 - 2|P ∩ M| / (|P| + |M|)`` with probabilities in place of 0/1 pixels, so a class that covers few pixels
counts as much as a large one. Pixels whose mask is ``ignore_index`` add nothing to any of them, and a batch with
no labelled pixel at all (sparse annotations: only a few regions drawn, the rest ignored) has a loss of 0 with zero
gradients, not 0/0 = NaN. :func:`logit_gradients` says, pixel by pixel, how hard and which way a loss pushes the
scores. :func:`choose_loss` picks the loss a run gets when its config names none, from the data's class balance.

A model with one output channel (``num_classes=1``) is read as binary: ``sigmoid(logit)`` is the probability of
class 1, and cross-entropy becomes binary cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from segtutor.data import IGNORE_INDEX
from segtutor.models import logits_to_probs

LOSSES = ("cross_entropy", "dice", "cross_entropy+dice", "focal", "focal+dice")
FOCAL_GAMMA = 2.0  # the focal loss's focusing exponent, as in Lin et al. (2017)

# A class is rare when it has less than this share of a fair split (1/K of the labelled pixels for K classes). Then a
# run whose config names no loss trains cross-entropy + Dice, the cross-entropy weighted by 1 / sqrt(class share).
# Cross-entropy is averaged over pixels, so a rare class's few pixels barely move it; the Dice term averages over
# classes, so each counts the same; the weights turn the rare classes' pixels up, by the root of their rarity only
# (median-frequency balancing, weights in proportion to 1 / share, turned the dermis down to 0.2-0.3, and the
# epidermis suffered).
# Measured on the skin slide (stratum corneum 7.7 % of the training crops' pixels, under half of a fair 25 %), 60 s of
# the small UNet on a machine that takes ~400 steps in that time, one-pass mean IoU on seeds 0 / 1 / 2
# (benchmarks/skin.py): cross-entropy 0.66 (corneum 0.00) / 0.80 / -; + Dice 0.69 (corneum 0.07) / 0.85 / 0.89;
# weighted by median frequency + Dice 0.76 / 0.82 / 0.85; weighted by 1 / sqrt(share) + Dice 0.84 / 0.81 / 0.88, every
# class >= 0.61. With this choice FCN-8s reached 0.90 / 0.91 (seeds 0 / 1; 0.89 with cross-entropy) and DeepLabv3
# 0.87 / 0.83 (0.90 / 0.82), every class >= 0.60. The generated tiles (tumor about 40 % of two classes) stay with
# cross-entropy alone.
RARE_CLASS_OF_FAIR_SHARE = 0.5


@dataclass(frozen=True)
class LossChoice:
    """The loss :func:`choose_loss` picks for a data set, its class weights, and why, in words."""

    loss: str  # a name from LOSSES
    class_weights: list[float] | None  # cross-entropy weight per class, or None
    reason: str


def cross_entropy_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    *,
    class_weights: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean ``-log p(true class)`` over labelled pixels (weighted by ``class_weights[true class]`` if given).

    Args:
        logits: ``(N, K, H, W)`` raw scores; ``K = 1`` means binary (sigmoid).
        masks: ``(N, H, W)`` int64 true classes, ``ignore_index`` where unlabelled.
        class_weights: ``(K,)`` weight per class (``(2,)`` for a binary model), or None.
        ignore_index: mask value that adds nothing to the loss.

    Returns:
        Scalar tensor.
    """
    labelled = masks != ignore_index  # (N, H, W)
    targets = torch.where(labelled, masks, 0)
    weights = labelled.to(logits.dtype)  # (N, H, W): each labelled pixel's weight, 0 where ignored
    if class_weights is not None:
        weights = weights * class_weights[targets]
    if logits.shape[1] > 1:
        total = F.cross_entropy(logits, masks, weight=class_weights, ignore_index=ignore_index, reduction="sum")
    else:  # binary: one logit per pixel, the probability of class 1 is sigmoid(logit)
        per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], targets.to(logits.dtype), reduction="none")
        total = (per_pixel * weights).sum()
    # the weighted mean over labelled pixels; no labelled pixel: 0 / tiny = 0, with zero gradients (not 0/0 = NaN)
    return total / weights.sum().clamp(min=torch.finfo(weights.dtype).tiny)


def focal_loss(
    logits: torch.Tensor,
    masks: torch.Tensor,
    *,
    gamma: float = FOCAL_GAMMA,
    class_weights: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean focal loss ``-(1 - p_t)^gamma · log p_t`` over labelled pixels, ``p_t`` the probability of the true class.

    ``gamma = 0`` is cross-entropy; larger ``gamma`` turns down the pixels that are already right with confidence
    (Lin et al. 2017, "Focal loss for dense object detection", https://arxiv.org/abs/1708.02002). With
    ``class_weights`` each pixel is weighted by its true class's weight (the paper's alpha), normalised as
    :func:`cross_entropy_loss` does.

    Args:
        logits: ``(N, K, H, W)`` raw scores; ``K = 1`` means binary (sigmoid).
        masks: ``(N, H, W)`` int64 true classes, ``ignore_index`` where unlabelled.
        gamma: focusing exponent, >= 0.
        class_weights: ``(K,)`` weight per class (``(2,)`` for a binary model), or None.
        ignore_index: mask value that adds nothing to the loss.

    Returns:
        Scalar tensor.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0 (0 is cross-entropy), got {gamma}")
    if logits.shape[1] > 1:
        log_probs = F.log_softmax(logits, dim=1)  # (N, K, H, W)
    else:  # binary: log(1 - sigmoid(x)) = logsigmoid(-x), log(sigmoid(x)) = logsigmoid(x)
        log_probs = torch.cat([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=1)  # (N, 2, H, W)
    labelled = masks != ignore_index  # (N, H, W)
    targets = torch.where(labelled, masks, 0)
    log_p_true = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)  # (N, H, W)
    per_pixel = -((1 - log_p_true.exp()) ** gamma) * log_p_true
    weights = labelled.to(logits.dtype)
    if class_weights is not None:
        weights = weights * class_weights.to(logits.dtype)[targets]
    return (per_pixel * weights).sum() / weights.sum().clamp(min=torch.finfo(weights.dtype).tiny)  # 0 if none labelled


def logit_gradients(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """The gradient of ``loss(logits, masks)`` with respect to every logit, by autograd: ``(N, K, H, W)``.

    Gradient descent moves each logit *against* its gradient, so ``-gradient`` is the push the loss gives each
    pixel's score for each class: which pixels a loss works on, and how hard.

    Args:
        loss: any function of ``(logits, masks)`` returning a scalar, e.g. :func:`cross_entropy_loss`.
        logits: ``(N, K, H, W)`` scores (not changed; their gradient is computed on a copy).
        masks: ``(N, H, W)`` int64 true classes.

    Example:
        >>> push = -logit_gradients(dice_loss, logits, masks)[0, 1]  # (H, W): towards class 1 where > 0
    """
    logits = logits.detach().clone().requires_grad_(True)
    value = loss(logits, masks)
    if value.ndim != 0:
        raise ValueError(f"loss must return a scalar, got a tensor of shape {tuple(value.shape)}")
    (gradient,) = torch.autograd.grad(value, logits)
    return gradient


def dice_loss(
    logits: torch.Tensor, masks: torch.Tensor, *, ignore_index: int = IGNORE_INDEX, smooth: float = 1.0
) -> torch.Tensor:
    """Soft Dice loss, ``1 - mean over classes of (2 Σ p·m + smooth) / (Σ p + Σ m + smooth)``.

    Sums run over all labelled pixels of the batch; ``p`` is the softmax probability of the class (sigmoid for
    a binary model), ``m`` is 1 where the mask says that class. ``smooth`` keeps a class absent from both at
    Dice 1 instead of 0/0. This is the variant with plain sums below the fraction; V-Net (Milletari et al. 2016,
    https://arxiv.org/abs/1606.04797) squares them, ``Σ p² + Σ m²``.

    Args:
        logits: ``(N, K, H, W)`` raw scores; ``K = 1`` means binary (sigmoid).
        masks: ``(N, H, W)`` int64 true classes, ``ignore_index`` where unlabelled.
        ignore_index: mask value that adds nothing to the loss.
        smooth: added to numerator and denominator.

    Returns:
        Scalar tensor in [0, 1].
    """
    probs = logits_to_probs(logits)  # (N, C, H, W), C = max(K, 2)
    num_classes = probs.shape[1]
    labelled = (masks != ignore_index).unsqueeze(1).to(probs.dtype)  # (N, 1, H, W)
    one_hot = F.one_hot(torch.where(masks != ignore_index, masks, 0), num_classes)  # (N, H, W, C)
    one_hot = one_hot.permute(0, 3, 1, 2).to(probs.dtype) * labelled  # (N, C, H, W)
    probs = probs * labelled
    dims = (0, 2, 3)  # sum over the batch and the pixels, keep the classes
    intersection = (probs * one_hot).sum(dims)  # (C,)
    sizes = probs.sum(dims) + one_hot.sum(dims)  # (C,)
    dice = (2 * intersection + smooth) / (sizes + smooth)  # (C,)
    return 1 - dice.mean()


def choose_loss(balance: Sequence[float], class_names: Sequence[str] = ()) -> LossChoice:
    """The loss for data with class shares ``balance`` (:func:`~segtutor.data.class_balance`), and why.

    Where a class that occurs has less than half of a fair share of the labelled pixels
    (:data:`RARE_CLASS_OF_FAIR_SHARE` of ``1/K``): ``"cross_entropy+dice"``, the cross-entropy weighted by
    ``1 / sqrt(share)`` per class (scaled so that the average pixel weighs 1; a class that never occurs gets the largest
    weight). Else plain ``"cross_entropy"``.

    Example:
        >>> choice = choose_loss([0.097, 0.077, 0.146, 0.681], SKIN_CLASS_NAMES)
        >>> choice.loss, [round(w, 2) for w in choice.class_weights]
        ('cross_entropy+dice', [1.79, 2.01, 1.46, 0.67])
    """
    shares = [float(share) for share in balance]
    fair = 1.0 / max(len(shares), 1)
    present = [(share, k) for k, share in enumerate(shares) if share > 0]
    if not present or min(present)[0] >= RARE_CLASS_OF_FAIR_SHARE * fair:
        return LossChoice("cross_entropy", None, "every class has at least half of a fair share of the pixels")
    share, k = min(present)
    name = repr(class_names[k]) if k < len(class_names) else f"class {k}"
    weights = [share**-0.5 if share > 0 else 0.0 for share in shares]
    scale = sum(s * w for s, w in zip(shares, weights))  # the mean weight of a pixel
    weights = [round((w if w > 0 else max(weights)) / scale, 4) for w in weights]
    return LossChoice("cross_entropy+dice", weights, (
        f"{name} has {share:.1%} of the labelled pixels, under half of a fair {fair:.0%}: the Dice term counts every "
        f"class the same, and the cross-entropy weighs each class by 1 / sqrt(its share): "
        + ", ".join(f"{w:.2f}" for w in weights)
    ))  # fmt: skip


class SegmentationLoss(nn.Module):
    """The loss named in :class:`~segtutor.train.TrainConfig`: ``"cross_entropy"``, ``"dice"``, ``"focal"`` or a sum.

    Args:
        name: ``"cross_entropy"``, ``"dice"``, ``"focal"``, ``"cross_entropy+dice"`` or ``"focal+dice"``.
        class_weights: cross-entropy (or focal) weight per class (the Dice term weighs classes equally already,
            so ``loss="dice"`` with class weights is refused: they would change nothing).
        ignore_index: mask value that adds nothing to the loss.
    """

    def __init__(self, name: str = "cross_entropy", *, class_weights: list[float] | None = None,
                 ignore_index: int = IGNORE_INDEX):
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"loss={name!r} is unknown; choose one of {', '.join(LOSSES)}")
        if name == "dice" and class_weights is not None:
            raise ValueError(
                f"class_weights={list(class_weights)} weigh the cross-entropy only, and loss='dice' has none: they "
                "would be ignored. The Dice loss weighs every class equally already; for both, use "
                "loss='cross_entropy+dice', or drop class_weights"
            )
        self.name = name
        self.ignore_index = ignore_index
        weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights)

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``logits (N, K, H, W)`` against ``masks (N, H, W)``."""
        logits = logits.float()  # the loss in float32 even under bfloat16 autocast
        if self.class_weights is not None and len(self.class_weights) != max(logits.shape[1], 2):
            raise ValueError(
                f"class_weights has {len(self.class_weights)} entries but the model predicts "
                f"{max(logits.shape[1], 2)} classes; give one weight per class"
            )
        loss = 0.0
        if "cross_entropy" in self.name:
            loss = loss + cross_entropy_loss(
                logits, masks, class_weights=self.class_weights, ignore_index=self.ignore_index
            )
        if "focal" in self.name:
            loss = loss + focal_loss(logits, masks, class_weights=self.class_weights, ignore_index=self.ignore_index)
        if "dice" in self.name:
            loss = loss + dice_loss(logits, masks, ignore_index=self.ignore_index)
        return loss

    def extra_repr(self) -> str:
        return f"{self.name!r}, ignore_index={self.ignore_index}"
