"""Exercise checks of notebooks 08 (loss, backpropagation, optimizer, the loss playground), 09 (training, evaluating,
the time machine) and 10 (real tissue)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segtutor.data import tile_starts
from segtutor.exercises.feedback import NOT_ANSWERED, Feedback, as_tensor, check_array, check_count, check_number, feedback
from segtutor.metrics import confusion_matrix, dice_per_class, iou_per_class
from segtutor.train import TimeMachine, cross_entropy_loss, dice_loss


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


def check_soft_dice_loss(
    answer: Any, probs: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor, *, smooth: float = 1.0
) -> Feedback:
    """The soft Dice loss of one image's probabilities ``probs (K, H, W)`` against ``masks (H, W)``, as segtutor's.

    ``1 − mean over classes of (2 Σ p·m + smooth) / (Σ p + Σ m + smooth)``, checked against
    :func:`segtutor.train.dice_loss` (the probabilities are passed to it as log-probabilities, whose softmax they are).
    """
    probs, masks = as_tensor(probs, torch.float64), as_tensor(masks, torch.int64)
    expected = float(dice_loss(probs.log()[None], masks[None], smooth=smooth))  # softmax(log p) = p
    one_hot = F.one_hot(masks, probs.shape[0]).permute(2, 0, 1).to(probs.dtype)  # (K, H, W)
    overlap, p_sum, m_sum = (probs * one_hot).sum((1, 2)), probs.sum((1, 2)), one_hot.sum((1, 2))  # (K,) each
    dice = (2 * overlap + smooth) / (p_sum + m_sum + smooth)  # (K,)
    hard = F.one_hot(probs.argmax(0), probs.shape[0]).permute(2, 0, 1).to(probs.dtype)
    hard_dice = (2 * (hard * one_hot).sum((1, 2)) + smooth) / (hard.sum((1, 2)) + m_sum + smooth)
    squared = (2 * overlap + smooth) / ((probs**2).sum((1, 2)) + m_sum + smooth)  # V-Net's Σp² + Σm²
    mistakes = [
        (float(1 - (2 * overlap / (p_sum + m_sum)).mean()), "without smooth = 1 added to the top and the bottom."),
        (float(dice.mean()), "that is the mean soft Dice; the loss is 1 − that."),
        (float(1 - dice[-1]), "that is the loss of the last class alone; average the Dice over all classes."),
        (float(1 - hard_dice.mean()), "that is the Dice of the hard prediction (argmax); use the probabilities."),
        (float(1 - squared.mean()), "that is V-Net's variant, with squared probabilities below; segtutor sums them "
         "as they are."),
    ]
    terms = ", ".join(f"class {k}: (2·{overlap[k]:.2f} + {smooth:g}) / ({p_sum[k]:.2f} + {m_sum[k]:g} + {smooth:g}) "
                      f"= {dice[k]:.3f}" for k in range(len(dice)))  # fmt: skip
    return check_number(
        "soft Dice loss",
        answer,
        expected,
        tolerance=1e-3,
        right=f"{terms}; loss = 1 − mean = {expected:.4f}, what segtutor.train.dice_loss computes.",
        hint="for each class, sum p·m (p the probability of the class, m 1 where the mask says it), the p and the m; "
        "Dice = (2·overlap + 1) / (Σp + Σm + 1); the loss is 1 − the mean over the classes.",
        mistakes=mistakes,
    )


def check_chain_rule(answer: Any, *, x: float, w1: float, w2: float) -> Feedback:
    """``∂loss/∂w1`` of a two-layer network on a tumor pixel, checked against autograd's ``backward()``.

    Layer 1: ``h = relu(w1·x)``; layer 2: ``z = w2·h``; ``p = sigmoid(z)``; ``loss = −log p`` (the true class is 1).
    """
    weights = torch.tensor([float(w1), float(w2)], dtype=torch.float64, requires_grad=True)
    h = torch.relu(weights[0] * x)  # layer 1
    z = weights[1] * h  # layer 2: the logit
    loss = F.binary_cross_entropy_with_logits(z, torch.tensor(1.0, dtype=torch.float64))  # −log sigmoid(z)
    loss.backward()  # autograd: the chain rule, backwards
    expected, for_w2 = float(weights.grad[0]), float(weights.grad[1])
    p = float(torch.sigmoid(z.detach()))
    relu_slope = 1.0 if w1 * x > 0 else 0.0
    return check_number(
        "∂loss/∂w1 by the chain rule",
        answer,
        expected,
        tolerance=1e-3,
        right=f"∂loss/∂z = p − 1 = {p:.3f} − 1 = {p - 1:.3f}; times ∂z/∂h = w2 = {w2:g}; times ∂h/∂w1 = x = {x:g} "
        f"(the ReLU lets it through: w1·x > 0): {expected:.4f}, the same number backward() finds.",
        hint="multiply the slopes along the chain from the loss back to w1: ∂loss/∂z (sigmoid and −log give p − 1), "
        "∂z/∂h = w2, and ∂h/∂w1 = x where the ReLU is open.",
        mistakes=[
            (for_w2, "that is ∂loss/∂w2 = (p − 1)·h. For w1 the chain runs one layer further back, through w2 "
             "and the ReLU."),
            (-expected, "the size is right, the sign is not: ∂loss/∂z = p − 1 is negative (raising z lowers the loss)."),
            ((p - 1) * x * relu_slope, "the factor w2 is missing: z depends on h through w2."),
        ],
    )


def check_adam_steps(
    answer: Any,
    *,
    weight: float,
    grads: Sequence[float],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> Feedback:
    """A weight after ``len(grads)`` Adam steps (Kingma & Ba 2014, Algorithm 1), checked against torch.optim.Adam."""
    parameter = nn.Parameter(torch.tensor([float(weight)], dtype=torch.float64))
    optimizer = torch.optim.Adam([parameter], lr=lr, betas=betas, eps=eps)
    for grad in grads:
        parameter.grad = torch.tensor([float(grad)], dtype=torch.float64)
        optimizer.step()  # m, v, bias correction, then w <- w − lr·m̂ / (√v̂ + eps)
    expected = float(parameter.detach()[0])
    (beta1, beta2), m, v, w, uncorrected, steps = betas, 0.0, 0.0, float(weight), float(weight), []
    for t, grad in enumerate(grads, start=1):
        m, v = beta1 * m + (1 - beta1) * grad, beta2 * v + (1 - beta2) * grad**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        steps.append(lr * m_hat / (v_hat**0.5 + eps))
        w, uncorrected = w - steps[-1], uncorrected - lr * m / (v**0.5 + eps)
    written = " then ".join(f"−{step:.4f}" for step in steps)
    return check_number(
        f"the weight after {len(grads)} Adam steps",
        answer,
        expected,
        tolerance=1e-4,
        right=f"the steps are {written}: {weight:g} → {expected:.4f}. Each step is about lr in size whatever the "
        "gradient's scale, and m, the running average, keeps the direction of the earlier gradients.",
        hint="for t = 1, 2, ...: m = β1·m + (1 − β1)·g, v = β2·v + (1 − β2)·g², m̂ = m / (1 − β1^t), "
        "v̂ = v / (1 − β2^t), then w = w − lr·m̂ / (√v̂ + ε), with m and v starting at 0.",
        mistakes=[
            (float(weight) - lr * sum(grads), "that is plain gradient descent (w − lr·g each step). Adam divides by "
             "the root mean square of the gradients."),
            (uncorrected, "the bias correction is missing: divide m by 1 − β1^t and v by 1 − β2^t, because both "
             "averages start at 0."),
            (float(weight) - steps[0], "that is the weight after the first step only."),
        ],
    )


# ---- 09 Training and evaluating -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LossCurves:
    """The recorded losses of one training run: every ``iterations`` step, and at every evaluation."""

    iterations: np.ndarray  # (T,) iteration of each training loss
    train: np.ndarray  # (T,) training loss (one batch each)
    eval_iterations: np.ndarray  # (E,) iteration of each evaluation
    val: np.ndarray  # (E,) validation loss


def example_loss_curves(seed: int = 0) -> dict[str, LossCurves]:
    """Three runs' loss curves, ``"A"``, ``"B"`` and ``"C"``, drawn the way typical runs look (for 09's exercise).

    One run learns well, one overfits (its training loss keeps falling while the validation loss turns up), and
    one has too high a learning rate (its loss jumps up early and stays high and erratic). They are generated,
    not trained, so the exercise is the same on every machine; the order of the three depends on ``seed``.
    """
    rng = np.random.default_rng(seed)
    steps, evals = np.arange(0, 1001, 10), np.arange(0, 1001, 50)

    def noisy(curve: np.ndarray, scale: float) -> np.ndarray:
        return np.clip(curve * (1 + scale * rng.standard_normal(curve.shape)), 0.01, None)

    good = (noisy(0.12 + 0.57 * np.exp(-steps / 150), 0.08), noisy(0.18 + 0.51 * np.exp(-evals / 170), 0.03))
    overfit = (noisy(0.02 + 0.67 * np.exp(-steps / 120), 0.08),
               noisy(0.30 + 0.39 * np.exp(-evals / 90) + 0.0004 * np.clip(evals - 250, 0, None), 0.03))  # fmt: skip
    spikes = np.where(rng.random(steps.shape) < 0.08, rng.uniform(1.5, 4.0, steps.shape), 1.0)
    start = 3.0 * np.exp(-(((steps - 30) / 12.0) ** 2)) * (steps > 0)  # the first steps overshoot: the loss jumps up
    high = (noisy(0.69 + start + 0.1 * (spikes - 1), 0.15), noisy(0.75 + 0.8 * np.exp(-((evals - 50) / 40.0) ** 2), 0.12))
    runs = [LossCurves(steps, train, evals, val) for train, val in (good, overfit, high)]
    order = rng.permutation(3)
    return {name: runs[index] for name, index in zip("ABC", order)}


def diagnose_loss_curves(run: LossCurves) -> str:
    """``"too high a learning rate"``, ``"overfitting"`` or ``"learning"``: what a run's curves show.

    1. Too high a learning rate: the training loss jumps well above where it started, or ends no lower.
    2. Over-fitting: the validation loss ends clearly above its lowest point while the training loss kept falling.
    3. Otherwise the run is learning.
    """
    start, end = run.train[0], run.train[-10:].mean()
    if run.train.max() > 2 * start or end > 0.8 * start:
        return "too high a learning rate"
    lowest = int(np.argmin(run.val))
    train_at_lowest = run.train[np.searchsorted(run.iterations, run.eval_iterations[lowest])]
    if run.val[-1] > 1.3 * run.val[lowest] and end < 0.7 * train_at_lowest:
        return "overfitting"
    return "learning"


def check_loss_curves(answer: Any, runs: dict[str, LossCurves]) -> Feedback:
    """Which run overfits and which has too high a learning rate: ``answer = (run, run)``, e.g. ``("A", "C")``."""
    exercise = "reading loss curves"
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    diagnosis = {name: diagnose_loss_curves(run) for name, run in runs.items()}
    found = {kind: [name for name, seen in diagnosis.items() if seen == kind] for kind in set(diagnosis.values())}
    expected = (found["overfitting"][0], found["too high a learning rate"][0])
    hint = ("overfitting: the training loss keeps falling while the validation loss turns up; too high a learning "
            "rate: the loss jumps up early, then stays high and erratic.")  # fmt: skip
    given = tuple(str(name).strip().upper() for name in answer) if isinstance(answer, list | tuple) else ()
    if len(given) != 2 or not set(given) <= set(runs):
        return feedback(exercise, "wrong", f"answer with two run names, (overfitting, too high a learning rate), "
                        f"e.g. ('A', 'B'); got {answer!r}. Hint: {hint}")  # fmt: skip
    if given == expected:
        best = min(runs[expected[0]].val)
        return feedback(
            exercise, "correct", f"run {expected[0]} overfits: its validation loss falls to {best:.2f} and then "
            f"climbs back to {runs[expected[0]].val[-1]:.2f} while its training loss keeps falling (it memorises "
            f"its tiles); run {expected[1]} jumps to {runs[expected[1]].train.max():.1f} early and never settles "
            "low (lower the learning rate). The third run learns.",
        )
    if given == expected[::-1]:
        return feedback(exercise, "wrong", f"the other way round. Hint: {hint}")
    return feedback(exercise, "wrong", f"{given} is not it: one of those runs is the one that learns well. Hint: {hint}")


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
    return check_count(
        "tiles of a sliding-window prediction",
        answer,
        expected,
        unit="a number of tiles",
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
    mistakes = []
    if before is not None:
        mistakes.append((before, f"at step {before} the {class_name} IoU was still below {threshold}; look one "
                                 "snapshot later."))  # fmt: skip
    after = [step for step in steps if step > expected]
    if after:
        mistakes.append((after[0], f"by step {after[0]} it had reached {threshold} already; look one snapshot "
                                   "earlier."))  # fmt: skip
    return check_count(
        "the step the tile was learned",
        answer,
        expected,
        unit="a step number",
        right=f"the snapshot of step {expected} is the first with {class_name} IoU ≥ {threshold} "
        + (f"(at step {before}, the snapshot before, it was not yet)." if before is not None else "."),
        hint=f"move the time machine's slider (or look at machine.snapshots: each has .iteration and .iou) and find "
        f"the first snapshot whose {class_name} IoU is at least {threshold}; snapshots are {machine.every} steps "
        "apart.",
        mistakes=mistakes,
    )
