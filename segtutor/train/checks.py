"""What the training loop checks before it trusts a batch or a loss: each problem gets an error that names its cause.

Without these checks the problems still surface, but as someone else's error: a label the model cannot predict
is torch's bare ``IndexError`` on a CPU and, on a GPU, a device-side assert that takes the kernel down; one NaN
pixel turns the loss NaN, and the run reports a learning rate that was too high. So :class:`~segtutor.train.Trainer`
calls :func:`check_batch` on each batch before it moves to the device and :func:`check_values` before the loss,
on the CPU copy of the batch (no device synchronisation). A check that finds bad values searches the dataset for
the samples that hold them (:func:`find_samples`), so the message says which.

The loss side: :func:`loss_limit` is how far a finite loss may rise before a run counts as diverged,
:func:`lr_advice` what to try instead, and :class:`WeightSnapshot` keeps the weights a diverged run goes back to.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from segtutor.train.config import TrainConfig
from segtutor.train.history import History

# A training loss above this many times its first value (the first value taken as at least 1) counts as
# diverged although it is finite: cross-entropy 1000 means a probability of e^-1000 for the true class.
LOSS_LIMIT_FACTOR = 1000.0
# Float images with values above this are 0-255 pixel values, not the [0, 1] the networks and predict() take.
MAX_IMAGE_VALUE = 10.0
# How many samples, and seconds, a search for the samples with bad values reads at most.
SCAN_SAMPLES, SCAN_SECONDS = 2000, 10.0
# Learning rates that usually work, per optimizer (Adam's 1e-3 and SGD's 1e-2 are the usual starting points).
USUAL_LR = {"adam": (1e-4, 1e-2, 1e-3), "sgd": (1e-3, 1e-1, 1e-2)}


def check_batch(images: torch.Tensor, masks: torch.Tensor) -> None:
    """Types and shapes of a batch: ``images (N, C, H, W)`` float and ``masks (N, H, W)`` integer, same size.

    Raises:
        TypeError, ValueError: with the conversion that fixes it (``image.permute(2, 0, 1)``, ``mask.long()``, ...).
    """
    if not isinstance(images, torch.Tensor) or not isinstance(masks, torch.Tensor):
        raise TypeError(
            "the dataset must yield (image, mask) tensor pairs, got "
            f"({type(images).__name__}, {type(masks).__name__})"
        )
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images must be float (C, H, W) per sample, got a batch {tuple(images.shape)} of {images.dtype}; "
            "convert uint8 images with image.float() / 255"
        )
    if images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4) and masks.shape == images.shape[:3]:
        raise ValueError(
            f"images must be (C, H, W) per sample, channels first, but the batch {tuple(images.shape)} holds "
            f"(H, W, C) images (the masks {tuple(masks.shape)} match their first two sides); turn each with "
            "image.permute(2, 0, 1)"
        )
    if masks.ndim != 3 or masks.is_floating_point() or masks.shape != images.shape[:1] + images.shape[2:]:
        raise ValueError(
            f"masks must be integer (H, W) class indices matching the images, got a batch {tuple(masks.shape)} "
            f"of {masks.dtype} for images {tuple(images.shape)}; convert with mask.long()"
        )


def check_values(
    images: torch.Tensor, masks: torch.Tensor, *, num_classes: int, ignore_index: int, dataset: Dataset, what: str
) -> None:
    """The values of a batch (on the CPU): finite images in [0, 1] and labels the model can predict.

    Args:
        images: ``(N, C, H, W)`` float.
        masks: ``(N, H, W)`` integer.
        num_classes: the model's output channels (1 is binary: labels 0 and 1).
        ignore_index: the label of unlabelled pixels, which may be anything.
        dataset: where the batch came from, searched for the samples with bad values.
        what: "training" or "validation", for the message.

    Raises:
        ValueError: NaN or infinite pixels, 0-255 values, labels outside ``0 .. num_classes - 1``; the message
            names the samples and the fix.
    """
    # 1) images: one pass finds NaN (it spreads to the min and max), inf and the range
    low, high = (float(v) for v in torch.aminmax(images.detach().float()))
    if not (math.isfinite(low) and math.isfinite(high)):
        count = int((~torch.isfinite(images)).sum())
        where = _where(find_samples(dataset, lambda image, mask: not bool(torch.isfinite(image).all())), what)
        raise ValueError(
            f"the {what} data is broken, not the learning rate: {count} pixel value(s) of this batch are NaN or "
            f"infinite ({where}). Fix: find where they come from (a division by zero when normalising? a float "
            "TIFF with empty areas?) and repair those images, e.g. with torch.nan_to_num(image)"
        )
    if high > MAX_IMAGE_VALUE:
        raise ValueError(
            f"the {what} images hold values up to {high:.4g}: they look like 0-255 pixel values, but the networks "
            "(and predict) take float images in [0, 1]. Fix: divide them by 255 (image.float() / 255)"
        )
    # 2) labels: the fast path (one min and max) holds for most batches; ignored pixels need a second look
    classes = max(num_classes, 2)  # one output channel: binary, labels 0 and 1
    low, high = (int(v) for v in torch.aminmax(masks))
    if 0 <= low and high < classes:
        return
    labelled = masks != ignore_index
    values = masks[labelled]
    if values.numel() == 0 or (0 <= int(values.min()) and int(values.max()) < classes):
        return
    bad = torch.unique(values[(values < 0) | (values >= classes)]).tolist()

    def holds_bad(image: torch.Tensor, mask: torch.Tensor) -> bool:
        mask = torch.as_tensor(mask)
        return bool(((mask != ignore_index) & ((mask < 0) | (mask >= classes))).any())

    where = _where(find_samples(dataset, holds_bad), what)
    listed = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
    fix = f"build the model with num_classes={max(bad) + 1} if they are real classes, or relabel them"
    marker = next((value for value in (255, -1, -100) if value in bad), None)  # the usual "unlabelled" values
    if marker is not None:
        fix = (f"if {marker} marks unlabelled pixels, pass TrainConfig(ignore_index={marker}) (it is "
               f"ignore_index={ignore_index} now); otherwise {fix}")  # fmt: skip
    raise ValueError(
        f"the {what} masks hold label(s) {listed} ({where}), but the model predicts {classes} classes (labels "
        f"0..{classes - 1}; {ignore_index} marks unlabelled pixels). A label the model cannot predict crashes the "
        f"loss (on a GPU with a device-side assert that needs a kernel restart). Fix: {fix}"
    )


def find_samples(dataset: Dataset, bad: Callable[[torch.Tensor, torch.Tensor], bool], most: int = 5) -> list[int]:
    """Indices of up to ``most`` samples ``(image, mask)`` of ``dataset`` for which ``bad`` is true.

    Reads at most ``SCAN_SAMPLES`` samples, for at most ``SCAN_SECONDS``; samples that fail to load are skipped.
    """
    found: list[int] = []
    deadline = time.monotonic() + SCAN_SECONDS
    for index in range(min(len(dataset), SCAN_SAMPLES)):
        if len(found) >= most or time.monotonic() > deadline:
            break
        try:
            image, mask = dataset[index]
            if bad(torch.as_tensor(image), torch.as_tensor(mask)):
                found.append(index)
        except Exception:  # noqa: BLE001 (a sample that cannot load has its own error; here we look for values)
            continue
    return found


def _where(indices: list[int], what: str) -> str:
    if not indices:
        return f"not found in the first {SCAN_SAMPLES} {what} samples: the dataset gives other values each read?"
    listed = ", ".join(map(str, indices))
    return f"{what} sample{'s' if len(indices) > 1 else ''} {listed}" + (" and maybe more" if len(indices) >= 5 else "")


@contextlib.contextmanager
def explain_collate_errors(what: str) -> Iterator[None]:
    """Turn torch's "stack expects each tensor to be equal size" while batching into an error that says the fix."""
    try:
        yield
    except RuntimeError as error:
        if "stack expects each tensor to be equal size" not in str(error):
            raise
        raise ValueError(
            f"the {what} samples of one batch have different sizes ({error}), and a batch stacks them into one "
            "tensor. Fix: cut them to one size (FolderDataset(..., crop_size=128) takes random crops), resize "
            "them, or train with batch_size=1"
        ) from error


def loss_limit(first_loss: float) -> float:
    """The highest training loss that does not yet count as diverged: ``LOSS_LIMIT_FACTOR`` x the first (>= 1)."""
    return LOSS_LIMIT_FACTOR * max(first_loss, 1.0)


def loss_problem(loss: float, first_loss: float | None) -> str | None:
    """Why a step's training loss ends the run as diverged (not finite, or above :func:`loss_limit`), or None."""
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    if first_loss is not None and loss > loss_limit(first_loss):
        times = loss / max(first_loss, 1e-12)
        return f"the loss rose to {loss:.3g}, {times:.3g} times its first value {first_loss:.3g}"
    return None


def end_note(history: History, first_loss: float | None, config: TrainConfig, lr: float) -> str:
    """A warning to add to the message of a run that ended normally but learned nothing or nonsense, or ""."""
    if history.losses and max(history.losses) == 0.0:
        return (f". Every training loss was 0: no batch held a labelled pixel (all ignore_index="
                f"{config.ignore_index}?); label some pixels 0, 1, 2, ...")  # fmt: skip
    evaluations = history.evaluations
    if evaluations and first_loss is not None and not evaluations[-1].loss <= loss_limit(first_loss):
        return (f". But the validation loss ended at {evaluations[-1].loss:.3g}, far above the first training loss "
                f"{first_loss:.3g}: the model predicts nonsense. {lr_advice(config.optimizer, lr)}")  # fmt: skip
    return ""


def lr_advice(optimizer: str, lr: float) -> str:
    """What to try after a divergence: a 10 x lower rate, or the usual start if ``lr`` is far out of range.

    Example:
        >>> lr_advice("adam", 1e3)
        'Try a smaller learning rate: lr=1e+03 is far above the usual 0.0001 to 0.01 for adam; start at lr=0.001.'
    """
    low, high, start = USUAL_LR.get(optimizer, (1e-4, 1e-1, 1e-3))
    if lr > 10 * high:
        return (f"Try a smaller learning rate: lr={lr:.3g} is far above the usual {low:g} to {high:g} for "
                f"{optimizer}; start at lr={start:g}.")  # fmt: skip
    return f"Try a smaller learning rate, e.g. lr={lr / 10:.3g} (10x lower)."


def absurd_lr(optimizer: str, lr: float) -> str | None:
    """The warning for a learning rate more than 10 x above the usual range, given before training starts, or None.

    Example:
        >>> absurd_lr("adam", 1e3)[:62]
        'lr=1e+03 is far above the usual 0.0001 to 0.01 for adam: such '
    """
    low, high, start = USUAL_LR.get(optimizer, (1e-4, 1e-1, 1e-3))
    if lr is None or lr <= 10 * high:
        return None
    return (f"lr={lr:.3g} is far above the usual {low:g} to {high:g} for {optimizer}: such a run usually diverges in "
            f"its first steps (or ends with a huge loss). Fix: start at lr={start:g}, or let lr_find suggest one")


@torch.no_grad()
def predicts_sanely(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, loss_fn: nn.Module, limit: float, autocast
) -> bool:
    """True if ``model`` in eval mode gives a finite loss below ``limit`` on the batch (the model's mode is kept)."""
    was_training = model.training
    model.eval()
    try:
        with autocast():
            logits = model(images)  # (N, K, H, W)
        loss = float(loss_fn(logits, masks))
    except Exception:  # noqa: BLE001 (weights that cannot even predict are not sane)
        return False
    finally:
        model.train(was_training)
    return math.isfinite(loss) and loss <= limit


class WeightSnapshot:
    """A copy of a model's parameters, refreshed before each optimizer update, to go back to after a divergence.

    The step that diverges is computed on weights that an update made a moment before: those weights may already
    be broken (they predict NaN). The snapshot holds the weights before that update, whose own step was finite.
    """

    def __init__(self, model: nn.Module) -> None:
        self.parameters = [p for p in model.parameters()]
        self.copies = [p.detach().clone() for p in self.parameters]

    @torch.no_grad()
    def save(self) -> None:
        """Remember the parameters as they are now."""
        for copy, parameter in zip(self.copies, self.parameters):
            copy.copy_(parameter)

    @torch.no_grad()
    def restore(self) -> None:
        """Put the remembered parameters back into the model."""
        for copy, parameter in zip(self.copies, self.parameters):
            parameter.copy_(copy)


def shared_data(train_data: Dataset, val_data: Dataset | None) -> str | None:
    """A warning if the validation data is (or starts like) the training data, else None.

    Checks: the same object; FolderDatasets that share image/mask pairs; TensorDatasets over the same tensors;
    two datasets of one kind whose first samples are equal (e.g. two TissueDatasets with the same seed).
    """
    if val_data is None:
        return None
    advice = ("validation scores then measure how well the model remembers its training images, not how well it "
              "does on new ones. Fix: validate on other images (for a TissueDataset, another seed: "
              "TissueDataset(16, seed=1))")  # fmt: skip
    if val_data is train_data:
        return f"val_data is the training data itself: {advice}"
    train_pairs, val_pairs = getattr(train_data, "pairs", None), getattr(val_data, "pairs", None)
    if train_pairs is not None and val_pairs is not None:
        shared = {tuple(pair) for pair in val_pairs} & {tuple(pair) for pair in train_pairs}
        if shared:
            example = sorted(shared)[0][0]
            return (f"{len(shared)} of the {len(val_pairs)} validation image/mask pairs are training pairs too "
                    f"(e.g. {getattr(example, 'name', example)}): {advice}")  # fmt: skip
        return None
    if isinstance(train_data, TensorDataset) and isinstance(val_data, TensorDataset):
        if any(a is b for a, b in zip(train_data.tensors, val_data.tensors)):
            return f"val_data holds the same tensors as the training data: {advice}"
    if type(train_data) is type(val_data) and len(train_data) and len(val_data):
        try:
            first = [_first_sample(data) for data in (train_data, val_data)]
            if all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(*first)):
                return f"the first validation sample is also the first training sample: {advice}"
        except Exception:  # noqa: BLE001 (a dataset that cannot be compared this way: nothing to say)
            return None
    return None


def _first_sample(dataset: Dataset) -> tuple:
    """Sample 0 as stored (before augmentation, where the dataset can say)."""
    load = getattr(dataset, "load_sample", None)
    return tuple(load(0)) if callable(load) else tuple(dataset[0])
