"""Exercise checks of notebooks 08 (loss, backpropagation, optimizer, the loss playground), 09 (training, evaluating,
the time machine) and 10 (real tissue)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from segtutor.data import tile_starts
from segtutor.exercises.feedback import Feedback, as_tensor, check_array, check_number, feedback
from segtutor.metrics import confusion_matrix, dice_per_class, iou_per_class
from segtutor.train import TimeMachine, cross_entropy_loss


# ---- 08 Loss, backpropagation, optimizer --------------------------------------------------------------------


def check_cross_entropy(answer: Any, logits: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor) -> Feedback:
    """The mean per-pixel cross-entropy of ``logits (N, K, H, W)`` against ``masks (N, H, W)``."""
    logits, masks = as_tensor(logits, torch.float64), as_tensor(masks, torch.int64)
    expected = float(cross_entropy_loss(logits, masks))
    return check_number(
        "per-pixel cross-entropy",
        answer,
        expected,
        tolerance=0.005,
        right=f"the mean of −log p(true class) over the {masks.numel()} pixels is {expected:.4f}.",
        hint="softmax each pixel's logits over the classes (exp, then divide by the sum), take −log of the "
        "probability of the true class, then average over the pixels.",
    )


def check_dice(
    answer: Any, preds: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor, class_index: int
) -> Feedback:
    """The Dice score of one class, ``2 TP / (2 TP + FP + FN)``."""
    masks, preds = as_tensor(masks, torch.int64), as_tensor(preds, torch.int64)
    num_classes = int(max(masks.max(), preds.max(), class_index)) + 1
    matrix = confusion_matrix(masks, preds, num_classes, ignore_index=None)
    expected = float(dice_per_class(matrix)[class_index])
    true_pos = int(matrix[class_index, class_index])
    predicted, labelled = int(matrix[:, class_index].sum()), int(matrix[class_index].sum())
    return check_number(
        f"Dice of class {class_index}",
        answer,
        expected,
        right=f"2·{true_pos} / ({predicted} predicted + {labelled} labelled pixels) = {expected:.3f}.",
        hint=f"count the pixels that are class {class_index} in both (TP), in the prediction only (FP) and in the "
        "mask only (FN); Dice = 2·TP / (2·TP + FP + FN).",
    )


def check_sgd_step(answer: Any, weight: float, grad: float, lr: float) -> Feedback:
    """A weight after one plain gradient-descent step."""
    parameter = nn.Parameter(torch.tensor([float(weight)], dtype=torch.float64))
    parameter.grad = torch.tensor([float(grad)], dtype=torch.float64)
    torch.optim.SGD([parameter], lr=lr).step()  # what the optimizer does: w <- w − lr·grad
    expected = float(parameter.detach()[0])
    return check_number(
        "one gradient-descent step",
        answer,
        expected,
        tolerance=1e-6,
        right=f"{weight:g} − {lr:g}·({grad:g}) = {expected:g}: the weight moves against its gradient.",
        hint="the new weight is the old one minus the learning rate times the gradient (mind the sign).",
    )


# ---- 09 Training and evaluating -----------------------------------------------------------------------------


def check_iou(answer: Any, matrix: np.ndarray | torch.Tensor, class_index: int) -> Feedback:
    """The IoU of one class from a confusion matrix (rows: true classes, columns: predicted classes)."""
    matrix = as_tensor(matrix, torch.int64)
    expected = float(iou_per_class(matrix)[class_index])
    true_pos = int(matrix[class_index, class_index])
    false_pos = int(matrix[:, class_index].sum()) - true_pos
    false_neg = int(matrix[class_index].sum()) - true_pos
    return check_number(
        f"IoU of class {class_index}",
        answer,
        expected,
        right=f"{true_pos} / ({true_pos} + {false_pos} + {false_neg}) = {expected:.3f}.",
        hint=f"TP is the diagonal entry [{class_index}, {class_index}]; FP the rest of column {class_index} "
        f"(predicted as it, truly another class); FN the rest of row {class_index}. IoU = TP / (TP + FP + FN).",
    )


def check_fixed_mask(answer: Any, mask: np.ndarray) -> Feedback:
    """A mask saved as {0, 255} turned into class indices {0, 1}."""
    mask = np.asarray(mask)
    expected = (mask == mask.max()).astype(np.float64)  # 255 (the drawn class) becomes 1, 0 stays 0
    return check_array(
        "a 0/255 mask as class indices",
        answer,
        expected,
        tolerance=0,
        right=f"{int(expected.sum())} pixels are class 1 and {int(expected.size - expected.sum())} class 0; the "
        "mask now holds class indices, as the loss and the metrics expect.",
        hint="a mask must hold the class index of each pixel (0, 1, ...), not a grey value: map 255 to 1, "
        "e.g. (mask == 255).astype(np.int64) or mask // 255.",
    )


# ---- 10 Real tissue -----------------------------------------------------------------------------------------


def check_tile_count(answer: Any, height: int, width: int, tile_size: int, overlap: int) -> Feedback:
    """How many tiles a sliding-window prediction cuts an ``height x width`` image into."""
    rows, cols = tile_starts(height, tile_size, overlap), tile_starts(width, tile_size, overlap)
    expected = len(rows) * len(cols)
    return check_number(
        "tiles of a sliding-window prediction",
        answer,
        expected,
        tolerance=0,
        right=f"{len(rows)} rows of tiles (starting at {rows}) x {len(cols)} columns = {expected} tiles.",
        hint=f"tiles start every tile_size − overlap = {tile_size - overlap} pixels, and one more tile is added "
        "where needed so the last one ends at the image's edge; count rows and columns separately.",
    )


# ---- 08 and 09: the loss playground, the time machine ------------------------------------------------------


def check_missed_tumor_cross_entropy(answer: Any, tumor_share: float, p_tumor: float) -> Feedback:
    """The cross-entropy of a prediction that calls every pixel stroma with ``P(tumor) = p_tumor``, on a tile whose
    tumor covers ``tumor_share`` of the pixels."""
    pixels = 1000
    masks = torch.zeros(1, 1, pixels, dtype=torch.int64)  # (N, H, W)
    masks[..., : round(tumor_share * pixels)] = 1
    probs = torch.tensor([1 - p_tumor, p_tumor], dtype=torch.float64)
    logits = probs.log().view(1, 2, 1, 1).expand(1, 2, 1, pixels)  # softmax gives back probs
    expected = float(cross_entropy_loss(logits, masks))
    return check_number(
        "cross-entropy of a prediction that misses the tumor",
        answer,
        expected,
        tolerance=0.002,
        right=f"{1 - tumor_share:g}·(−log {1 - p_tumor:g}) + {tumor_share:g}·(−log {p_tumor:g}) = {expected:.4f}: "
        "the missed tumor costs little because it covers few pixels, while its soft Dice stays near 0.",
        hint=f"{1 - tumor_share:.0%} of the pixels are stroma and cost −log {1 - p_tumor:g} each; the "
        f"{tumor_share:.0%} tumor pixels cost −log {p_tumor:g} each; the loss is their mean over all pixels.",
    )


def check_first_step(answer: Any, machine: TimeMachine, class_name: str, threshold: float) -> Feedback:
    """The step of the first time-machine snapshot whose IoU for ``class_name`` reached ``threshold``."""
    expected = machine.first_iteration(class_name, threshold)
    if expected is None:
        problem = f"no snapshot reached {class_name} IoU {threshold}: train longer and run the cell again"
        return feedback("the step the tile was learned", "wrong", problem)
    steps = machine.iterations
    before = steps[steps.index(expected) - 1] if expected > 0 else None
    return check_number(
        "the step the tile was learned",
        answer,
        expected,
        tolerance=0,
        right=f"the snapshot of step {expected} is the first with {class_name} IoU ≥ {threshold} "
        + (f"(at step {before}, the snapshot before, it was not yet)." if before is not None else "."),
        hint=f"move the time machine's slider (or look at machine.snapshots: each has .iteration and .iou) and find "
        f"the first snapshot whose {class_name} IoU is at least {threshold}; snapshots are {machine.every} steps "
        "apart.",
    )
