"""Using a trained model on a new image: step 7 of the course.

The model gives logits; softmax turns them into per-pixel class probabilities ``probs (K, H, W)`` that sum to 1
over the classes, and argmax picks each pixel's class, the label map ``(H, W)``. A model with one output
channel (``num_classes=1``) is read as binary: ``sigmoid(logit)`` is the probability of class 1, so its
probabilities come back as two channels, ``[1 - p, p]``, and everything below treats it as two classes.

Images larger than the training tiles are predicted tile by tile (:func:`sliding_window_proba`); tiles overlap
and their probabilities are blended with weights that fall towards each tile's edge, where the network sees
least context, so no seams show.

Example:
    >>> probs = predict_proba(model, image)      # image: uint8 (H, W, 3) array, PIL image or float tensor
    >>> labels = probs.argmax(0)                 # (H, W)
    >>> picture = overlay(image, labels, class_colors(["stroma", "tumor"]))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from segtutor.data.tiling import tile_starts
from segtutor.metrics import IGNORE_INDEX

ImageLike = np.ndarray | Image.Image | torch.Tensor


def logits_to_probs(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel class probabilities from logits: ``(N, K, H, W) -> (N, max(K, 2), H, W)``.

    Softmax over the classes; a binary model (``K = 1``) gets ``[1 - sigmoid, sigmoid]``.
    """
    if logits.shape[1] > 1:
        return logits.softmax(1)
    foreground = logits.sigmoid()
    return torch.cat([1 - foreground, foreground], dim=1)


def logits_to_preds(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class per pixel: ``(N, K, H, W) -> (N, H, W)`` int64 (binary model: 1 where the logit > 0)."""
    if logits.shape[1] > 1:
        return logits.argmax(1)
    return (logits[:, 0] > 0).long()


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
    if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
        raise ValueError(
            f"a float image must have values in [0, 1], got {float(tensor.min()):.3g} to {float(tensor.max()):.3g}; "
            "divide 0-255 values by 255"
        )
    return tensor


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
    if tile_size < 32:
        raise ValueError(f"tile_size must be >= 32 (the models' smallest input), got {tile_size}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile_size), got overlap={overlap}, tile_size={tile_size}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    images = _image_batch(model, image)  # (1, C, H, W)
    height, width = images.shape[-2:]
    tile_h, tile_w = min(tile_size, height), min(tile_size, width)
    # an image smaller than a tile along an axis gets one tile of its own size there
    rows = tile_starts(height, tile_h, min(overlap, tile_h - 1))
    columns = tile_starts(width, tile_w, min(overlap, tile_w - 1))
    corners = [(y, x) for y in rows for x in columns]
    window = blend_window(tile_h, overlap)[:, None] * blend_window(tile_w, overlap)[None, :]  # (tile_h, tile_w)

    total, weights = None, torch.zeros(height, width)
    for start in range(0, len(corners), batch_size):
        batch = corners[start : start + batch_size]
        tiles = torch.cat([images[..., y : y + tile_h, x : x + tile_w] for y, x in batch])  # (B, C, th, tw)
        probs = _run(model, tiles, device).cpu()  # (B, K, th, tw)
        if total is None:
            total = torch.zeros(probs.shape[1], height, width)
        for (y, x), tile_probs in zip(batch, probs):
            total[:, y : y + tile_h, x : x + tile_w] += tile_probs * window
            weights[y : y + tile_h, x : x + tile_w] += window
    return total / weights  # (K, H, W)


def sliding_window_predict(
    model: nn.Module,
    image: ImageLike,
    *,
    tile_size: int = 128,
    overlap: int = 32,
    batch_size: int = 8,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Labels ``(H, W)`` int64 of an image of any size: the argmax of :func:`sliding_window_proba`."""
    probs = sliding_window_proba(
        model, image, tile_size=tile_size, overlap=overlap, batch_size=batch_size, device=device
    )
    return probs.argmax(0)


def blend_window(tile_size: int, overlap: int) -> torch.Tensor:
    """1-D blending weights ``(tile_size,)``: 1 in the middle, falling linearly to ``1 / (overlap + 1)`` at the edges.

    Example:
        >>> blend_window(6, 2)
        tensor([0.3333, 0.6667, 1.0000, 1.0000, 0.6667, 0.3333])
    """
    position = torch.arange(tile_size, dtype=torch.float32)
    distance_to_edge = torch.minimum(position, tile_size - 1 - position)  # 0 at both edges
    return (distance_to_edge + 1).clamp(max=overlap + 1) / (overlap + 1)


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
    expected = _in_channels(model)
    if expected is not None and tensor.shape[0] != expected:
        if tensor.shape[0] == 1 and expected == 3:
            raise ValueError(
                "the image is grey (one channel) but the model expects 3 (RGB): convert it, e.g. "
                "PIL's image.convert('RGB') or np.stack([image] * 3, axis=-1)"
            )
        raise ValueError(f"the image has {tensor.shape[0]} channels but the model expects {expected}")
    return tensor.unsqueeze(0)  # (1, C, H, W)


def _run(model: nn.Module, images: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """Probabilities of a batch in eval mode, leaving the model's train/eval mode as it was."""
    if device is not None:
        model.to(device)
    weights = next(model.parameters(), None)
    images = images.to(weights.device if weights is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        return logits_to_probs(model(images).float())  # (N, K, H, W)
    finally:
        model.train(was_training)


def _in_channels(model: nn.Module) -> int | None:
    if hasattr(model, "in_channels"):
        return model.in_channels
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first_conv.in_channels if first_conv is not None else None
