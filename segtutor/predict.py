"""Using a trained model on a new image: step 7 of the course.

The model gives logits; softmax turns them into per-pixel class probabilities ``probs (K, H, W)`` that sum to 1
over the classes, and argmax picks each pixel's class, the label map ``(H, W)``. A model with one output
channel (``num_classes=1``) is read as binary: ``sigmoid(logit)`` is the probability of class 1, so its
probabilities come back as two channels, ``[1 - p, p]``, and everything below treats it as two classes.

Images larger than the training tiles are predicted tile by tile (:func:`sliding_window_proba`); tiles overlap
and their probabilities are blended with weights that fall towards each tile's edge, where the network sees
least context, so no seams show. :func:`analyse_prediction` adds what a viewer shows about one prediction: the
confusion matrix and scores against a mask, and :func:`error_map` where the prediction is right and wrong.
:func:`predict_dataset` and :func:`score_dataset` do a whole validation set at once.

Example:
    >>> probs = predict_proba(model, image)      # image: uint8 (H, W, 3) array, PIL image or float tensor
    >>> labels = probs.argmax(0)                 # (H, W)
    >>> picture = overlay(image, labels, class_colors(["stroma", "tumor"]))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segtutor.data import IGNORE_INDEX, class_names_of, stitch, tile_starts
from segtutor.device import check_device
from segtutor.metrics import SegmentationScores, confusion_matrix
from segtutor.models import MIN_SIZE, evaluating, input_channels, logits_to_probs

ImageLike = np.ndarray | Image.Image | torch.Tensor

# Codes of the error map of one class c.
TRUE_NEGATIVE = 0  # neither truth nor prediction is c
TRUE_POSITIVE = 1  # both are c
FALSE_POSITIVE = 2  # predicted c, truly another class
FALSE_NEGATIVE = 3  # truly c, predicted another class
OTHER_ERROR = 4  # wrong, but neither side is c (three or more classes)


def image_to_tensor(image: ImageLike) -> torch.Tensor:
    """One image as a float tensor ``(C, H, W)`` with values in [0, 1], the way segtutor's datasets give them.

    Accepts a uint8 array ``(H, W, 3)`` or ``(H, W)``, a float array in [0, 1], a PIL image, or a tensor
    ``(C, H, W)`` / ``(1, C, H, W)`` (float in [0, 1], or uint8). An alpha channel (RGBA) is dropped.
    """
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")  # palette, CMYK, RGBA (alpha dropped), ...
        image = np.asarray(image)
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = image[:, :, None]  # grey: one channel
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise ValueError(
                f"an image array must be (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, got shape {image.shape}"
            )
        tensor = torch.from_numpy(np.array(image[:, :, :3])).permute(2, 0, 1)  # (C, H, W), a writable copy
    elif isinstance(image, torch.Tensor):
        tensor = image.detach()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim == 3 and tensor.shape[-1] in (1, 3, 4) and tensor.shape[0] not in (1, 3, 4):
            raise ValueError(
                f"a tensor image must be (C, H, W), got {tuple(tensor.shape)} which looks like (H, W, C): "
                "use image.permute(2, 0, 1)"
            )
        if tensor.ndim != 3:
            raise ValueError(
                f"a tensor image must be (C, H, W) or (1, C, H, W), got {tuple(tensor.shape)}; "
                "predict takes one image at a time (call the model directly on a batch)"
            )
        tensor = tensor[:3] if tensor.shape[0] == 4 else tensor
    else:
        raise TypeError(f"image must be a numpy array, a PIL image or a torch tensor, got {type(image).__name__}")

    # values in [0, 1], as float32
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255
    if not tensor.is_floating_point():
        raise TypeError(f"image must be uint8 (0-255) or float (0-1), got {tensor.dtype}; convert it to uint8 first")
    tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        count = int((~torch.isfinite(tensor)).sum())
        raise ValueError(
            f"the image holds {count} NaN or infinite value(s), which no model can predict from (every pixel would "
            "come out as class 0); repair the image first, e.g. torch.nan_to_num(image)"
        )
    if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
        raise ValueError(
            f"a float image must have values in [0, 1], got {float(tensor.min()):.3g} to {float(tensor.max()):.3g}; "
            "divide 0-255 values by 255"
        )
    return tensor


def image_to_rgb(image: ImageLike) -> np.ndarray:
    """Any image :func:`image_to_tensor` accepts as uint8 ``(H, W, 3)``, for drawing (grey becomes three channels)."""
    pixels = image_to_tensor(image)  # (C, H, W) in [0, 1]
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    return (pixels[:3] * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@torch.no_grad()
def predict_proba(model: nn.Module, image: ImageLike, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Per-pixel class probabilities of one image, in one pass.

    Args:
        model: a segmentation model (``images (N, C, H, W) -> logits (N, K, H, W)``).
        image: uint8 ``(H, W, 3)`` array, PIL image, or float tensor ``(3, H, W)`` / ``(1, 3, H, W)`` in [0, 1].
        device: where to run; default: where the model's weights are (the model is moved if another is given).

    Returns:
        ``probs (K, H, W)`` float32 on the CPU, summing to 1 over the classes (K = 2 for a binary model).
    """
    images = _image_batch(model, image)  # (1, C, H, W)
    return _run(model, images, device)[0].cpu()


def predict(model: nn.Module, image: ImageLike, *, device: torch.device | str | None = None) -> torch.Tensor:
    """The predicted class of every pixel of one image: ``labels (H, W)`` int64 on the CPU.

    Takes the same ``image`` and ``device`` as :func:`predict_proba`.
    """
    return predict_proba(model, image, device=device).argmax(0)


def labels_of(probs: torch.Tensor) -> torch.Tensor:
    """``probs (K, H, W)`` -> ``labels (H, W)`` int64, the argmax over the classes.

    The same as ``probs.argmax(0)``, taken over a channels-last copy: torch's argmax over the first of three dimensions
    walks the memory with a stride and takes about 9 times longer (1.3 ms against 0.15 ms for 2 × 128 × 128 on a
    2-core CPU); a live view that draws a prediction every second notices.
    """
    return probs.permute(1, 2, 0).contiguous().argmax(-1)


@torch.no_grad()
def sliding_window_proba(
    model: nn.Module,
    image: ImageLike,
    *,
    tile_size: int = 128,
    overlap: int = 32,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-pixel class probabilities of an image of any size, predicted tile by tile.

    Tiles of ``tile_size`` pixels overlap by at least ``overlap`` pixels (the last tile of a row or column is
    shifted back to end at the image's edge). Each tile's probabilities are weighted by a window that is 1 in
    the middle and falls linearly over the ``overlap`` pixels next to the tile's edges; the blend is the
    weighted mean. An image no larger than one tile is predicted in one pass, exactly as :func:`predict_proba`.

    Args:
        model: a segmentation model.
        image: as for :func:`predict_proba`.
        tile_size: side of the square tiles, e.g. the training tile size (>= 32).
        overlap: pixels shared by neighbouring tiles, ``0 <= overlap < tile_size``.
        batch_size: tiles per forward pass (more is faster, needs more memory).
        device: as for :func:`predict_proba`.

    Returns:
        ``probs (K, H, W)`` float32 on the CPU.
    """
    if tile_size < MIN_SIZE:
        raise ValueError(f"tile_size must be >= {MIN_SIZE} (the models' smallest input), got {tile_size}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile_size), got overlap={overlap}, tile_size={tile_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    images = _image_batch(model, image)  # (1, C, H, W)
    height, width = images.shape[-2:]
    tile_h, tile_w = min(tile_size, height), min(tile_size, width)  # a smaller image: one tile of its own size
    # 1) where the tiles go (the last row and column end at the image's border), 2) predict them in batches
    rows = tile_starts(height, tile_h, min(overlap, tile_h - 1))
    columns = tile_starts(width, tile_w, min(overlap, tile_w - 1))
    corners = [(y, x) for y in rows for x in columns]
    probs = []
    for start in range(0, len(corners), batch_size):
        batch = torch.cat([images[..., y : y + tile_h, x : x + tile_w] for y, x in corners[start : start + batch_size]])
        probs.append(_run(model, batch, device).cpu())  # (B, K, tile_h, tile_w)
    # 3) blend: a weighted mean, each tile's weight falling towards its edges
    window = blend_window(tile_h, overlap)[:, None] * blend_window(tile_w, overlap)[None, :]  # (tile_h, tile_w)
    tiles = torch.cat(probs).permute(0, 2, 3, 1).numpy()  # (T, tile_h, tile_w, K)
    blended = stitch(tiles, corners, (height, width, tiles.shape[-1]), weight=window.numpy())
    return torch.from_numpy(blended).permute(2, 0, 1)  # (K, H, W)


def blend_window(tile_size: int, overlap: int) -> torch.Tensor:
    """1-D blending weights ``(tile_size,)``: 1 in the middle, falling linearly to ``1 / (overlap + 1)`` at the edges.

    Example:
        >>> blend_window(6, 2)
        tensor([0.3333, 0.6667, 1.0000, 1.0000, 0.6667, 0.3333])
    """
    position = torch.arange(tile_size, dtype=torch.float32)
    distance_to_edge = torch.minimum(position, tile_size - 1 - position)  # 0 at both edges
    ramp = min(overlap, tile_size - 1) + 1  # a tile narrower than the overlap ramps over its own width
    return (distance_to_edge + 1).clamp(max=ramp) / ramp


def overlay(
    image: ImageLike,
    labels: np.ndarray | torch.Tensor,
    colors: Sequence[Sequence[int]],
    alpha: float = 0.5,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """The image with each pixel tinted by the colour of its class.

    Args:
        image: the image, as for :func:`predict_proba` (grey images are shown in grey).
        labels: ``(H, W)`` class per pixel (a prediction or a mask).
        colors: one ``(R, G, B)`` in 0-255 per class, e.g. ``segtutor.data.class_colors(class_names)``.
        alpha: colour share, 0 (image only) to 1 (colours only).
        ignore_index: label of unannotated pixels, left untinted.

    Returns:
        ``(H, W, 3)`` uint8 array.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    pixels = image_to_tensor(image)  # (C, H, W) in [0, 1]
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    labels = torch.as_tensor(labels)
    if labels.shape != pixels.shape[1:]:
        raise ValueError(f"labels {tuple(labels.shape)} must match the image's (H, W) = {tuple(pixels.shape[1:])}")
    if labels.is_floating_point():
        raise TypeError(f"labels must be integer classes, got {labels.dtype}")
    palette = torch.tensor([list(color) for color in colors], dtype=torch.float32) / 255  # (K, 3)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"colors must be (R, G, B) triples, got {colors!r}")
    labels = labels.long()
    annotated = labels != ignore_index
    used = labels[annotated]
    if used.numel() and (used.min() < 0 or used.max() >= len(palette)):
        raise ValueError(f"labels go up to {int(used.max())} but only {len(palette)} colors were given")
    tint = palette[torch.where(annotated, labels, 0)].permute(2, 0, 1)  # (3, H, W)
    blended = torch.where(annotated, (1 - alpha) * pixels + alpha * tint, pixels)
    return (blended * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _image_batch(model: nn.Module, image: ImageLike) -> torch.Tensor:
    tensor = image_to_tensor(image)  # (C, H, W)
    expected = input_channels(model)
    if tensor.shape[0] != expected:
        if tensor.shape[0] == 1 and expected == 3:
            raise ValueError(
                "the image is grey (one channel) but the model expects 3 (RGB): convert it, e.g. "
                "PIL's image.convert('RGB') or np.stack([image] * 3, axis=-1)"
            )
        raise ValueError(f"the image has {tensor.shape[0]} channels but the model expects {expected}")
    return tensor.unsqueeze(0)  # (1, C, H, W)


class BrokenModelError(ValueError):
    """The model predicts NaN or infinity: its weights are broken, so there is no prediction to show."""


def _run(model: nn.Module, images: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """Probabilities of a batch in eval mode, leaving the model's train/eval mode as it was."""
    if device is not None:
        model.to(check_device(device))
    weights = next(model.parameters(), None)
    images = images.to(weights.device if weights is not None else "cpu")
    with evaluating(model):
        probs = logits_to_probs(model(images).float())  # (N, K, H, W)
    if not bool(torch.isfinite(probs).all()):  # argmax of NaN is class 0: a "prediction" that is no prediction
        raise BrokenModelError(
            "the model predicts NaN for this image: its weights are broken (a training run that diverged?), and "
            "the argmax would call every such pixel class 0. Fix: "
            "train it again with a smaller learning rate, or load a checkpoint saved before it went wrong"
        )
    return probs


# ---- looking at one prediction ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PredictionAnalysis:
    """Everything a prediction viewer shows about one image."""

    image: np.ndarray  # uint8 (H, W, 3)
    probs: torch.Tensor  # (K, H, W) float32
    preds: torch.Tensor  # (H, W) int64, probs.argmax(0)
    mask: torch.Tensor | None  # (H, W) int64 ground truth, None for an image without one
    confusion: torch.Tensor | None  # (K, K) int64, rows true classes, columns predicted
    scores: SegmentationScores | None  # per-class IoU and Dice, pixel accuracy
    tiled: bool = False  # larger than one tile, so predicted with sliding windows


def analyse_prediction(
    model: nn.Module,
    image: ImageLike,
    mask: torch.Tensor | np.ndarray | None,
    class_names: Sequence[str],
    *,
    tile_size: int = 128,
    ignore_index: int = IGNORE_INDEX,
) -> PredictionAnalysis:
    """Predict ``image`` (in tiles when it is larger than ``tile_size``) and score it against ``mask`` if given.

    Args:
        model: a segmentation model.
        image: as for :func:`predict_proba`.
        mask: ``(H, W)`` true classes, or None.
        class_names: one name per class.
        tile_size: larger images are predicted with :func:`sliding_window_proba` in tiles of this size.
        ignore_index: mask value of unlabelled pixels.
    """
    rgb = image_to_rgb(image)
    probs = sliding_window_proba(model, image, tile_size=tile_size, overlap=tile_size // 4)
    preds = probs.argmax(0)  # (H, W)
    confusion = scores = None
    if mask is not None:
        mask = torch.as_tensor(mask).long()
        confusion = confusion_matrix(mask, preds, len(class_names), ignore_index=ignore_index)
        scores = SegmentationScores.from_matrix(confusion, list(class_names))
    return PredictionAnalysis(rgb, probs, preds, mask, confusion, scores, max(rgb.shape[:2]) > tile_size)


def error_map(
    mask: torch.Tensor | np.ndarray,
    preds: torch.Tensor | np.ndarray,
    class_index: int,
    *,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Where a prediction is right and wrong about class ``class_index``.

    Returns:
        ``(H, W)`` uint8 codes: ``TRUE_NEGATIVE``, ``TRUE_POSITIVE``, ``FALSE_POSITIVE``, ``FALSE_NEGATIVE``,
        ``OTHER_ERROR`` (wrong between two other classes), and ``ignore_index`` where the mask is unlabelled.
    """
    mask, preds = np.asarray(mask), np.asarray(preds)
    if mask.shape != preds.shape:
        raise ValueError(f"mask {mask.shape} and preds {preds.shape} must have the same shape")
    truly, predicted = mask == class_index, preds == class_index
    codes = np.full(mask.shape, TRUE_NEGATIVE, dtype=np.uint8)
    codes[(mask != preds) & ~truly & ~predicted] = OTHER_ERROR
    codes[truly & predicted] = TRUE_POSITIVE
    codes[predicted & ~truly] = FALSE_POSITIVE
    codes[truly & ~predicted] = FALSE_NEGATIVE
    codes[mask == ignore_index] = ignore_index
    return codes


# ---- a whole data set ------------------------------------------------------------------------------------------
@torch.no_grad()
def predict_dataset(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 32, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of every sample of ``dataset``, in eval mode, with the masks: what a score or a calibration needs.

    Args:
        model: a segmentation model.
        dataset: ``(image (C, H, W), mask (H, W))`` pairs of one size.
        batch_size: images per forward pass.
        device: where to run (default: where the model's weights are).

    Returns:
        ``logits (N, K, H, W)`` float32 on the CPU and ``masks (N, H, W)`` int64.

    Example:
        >>> logits, masks = predict_dataset(model, TissueDataset(48, 96, seed=1, lab="B"))
        >>> expected_calibration_error(logits, masks)
    """
    if device is not None:
        model.to(device)
    weights = next(model.parameters(), None)
    where = weights.device if weights is not None else torch.device("cpu")
    logits, masks = [], []
    with evaluating(model):
        for images, batch_masks in DataLoader(dataset, batch_size=batch_size):
            logits.append(model(images.to(where)).float().cpu())  # (n, K, H, W)
            masks.append(batch_masks.long())
    return torch.cat(logits), torch.cat(masks)


def score_dataset(
    model: nn.Module,
    dataset: Dataset,
    *,
    class_names: Sequence[str] | None = None,
    batch_size: int = 32,
    ignore_index: int = IGNORE_INDEX,
) -> SegmentationScores:
    """Per-class IoU and Dice of ``model`` over all pixels of ``dataset`` (one confusion matrix for them all).

    Example:
        >>> score_dataset(model, TissueDataset(48, 96, seed=1, lab="C")).iou  # [stroma, tumor]
    """
    logits, masks = predict_dataset(model, dataset, batch_size=batch_size)
    names = class_names_of(dataset, class_names)
    num_classes = max(logits.shape[1], 2)  # one channel: binary
    matrix = confusion_matrix(masks, logits_to_probs(logits).argmax(1), num_classes, ignore_index=ignore_index)
    return SegmentationScores.from_matrix(matrix, list(names))
