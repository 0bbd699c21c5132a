"""Data augmentation: new views of the same tissue, with the mask moved exactly like the image.

Tissue on a slide has no "up": a flipped or turned tile is just as real, so flips and quarter turns give the
network more examples for free. The mask must follow the image pixel for pixel, or the labels go wrong.
Colour jitter mimics staining that is a little stronger or weaker; it changes the image only.
"""

from __future__ import annotations

import numpy as np
import torch


def augment(
    image: torch.Tensor,
    mask: torch.Tensor,
    rng: np.random.Generator,
    *,
    color_jitter: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random flip, a random quarter turn and mild colour jitter.

    A flip and 0–3 quarter turns reach all 8 symmetries of a square. Non-square images turn only by 0 or 180
    degrees, so their shape (and a batch of them) stays the same.

    Args:
        image: float32 (3, H, W) in [0, 1].
        mask: int64 (H, W).
        rng: the only source of randomness; the same generator state gives the same result.
        color_jitter: largest relative change of each colour channel's gain and of the brightness.

    Returns:
        ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W), moved together.

    Example:
        >>> image, mask = augment(image, mask, np.random.default_rng(0))
    """
    if image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in height and width")
    # 1) Mirror left-right half of the time.
    if rng.random() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    # 2) Turn by a random number of quarter turns (by 0 or 2 when the image is not square).
    square = image.shape[-1] == image.shape[-2]
    turns = int(rng.integers(4)) if square else 2 * int(rng.integers(2))
    image, mask = image.rot90(turns, dims=(-2, -1)), mask.rot90(turns, dims=(-2, -1))
    # 3) Colour: each channel's gain and the overall brightness move a little; the mask does not change.
    if color_jitter > 0:
        gain = torch.as_tensor(rng.uniform(1 - color_jitter, 1 + color_jitter, size=(3, 1, 1)), dtype=image.dtype)
        shift = float(rng.uniform(-color_jitter, color_jitter))
        image = (image * gain + shift).clamp(0.0, 1.0)
    return image.contiguous(), mask.contiguous()


def random_crop(
    image: np.ndarray, mask: np.ndarray, crop_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``crop_size`` x ``crop_size`` window of an image and its mask.

    Args:
        image: (H, W, C) or (H, W) array.
        mask: (H, W) array.
        crop_size: side of the window; at most min(H, W).
        rng: picks the window's top-left corner.

    Returns:
        ``image`` (crop_size, crop_size, ...) and ``mask`` (crop_size, crop_size), views into the inputs.
    """
    height, width = mask.shape
    if crop_size > min(height, width):
        raise ValueError(
            f"crop_size {crop_size} is larger than the image ({height}x{width}); use a crop_size of at most "
            f"{min(height, width)}"
        )
    top = int(rng.integers(height - crop_size + 1))
    left = int(rng.integers(width - crop_size + 1))
    window = (slice(top, top + crop_size), slice(left, left + crop_size))
    return image[window], mask[window]
