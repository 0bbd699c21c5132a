"""Data augmentation: new views of the same tissue, with the mask moved exactly like the image.

Tissue on a slide has no "up": a flipped or turned tile is just as real, so flips and quarter turns give the
network more examples for free. The mask must follow the image pixel for pixel, or the labels go wrong.
Colour jitter mimics staining that is a little stronger or weaker; it changes the image only. A random zoom
(:class:`RandomZoom`) mimics scanners with other pixel sizes.

:func:`augment` is the standard recipe. Further steps, such as :class:`RandomZoom` or the stain module's
:class:`~segtutor.data.stain.HEDJitter`, follow the :class:`Augmentation` protocol, and a dataset runs them after
it: ``TissueDataset(augment=True, augmentations=[RandomZoom(0.8, 1.25)])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:  # zoom_pair is numpy and the generated tissue uses it: no torch at import
    import torch


class Augmentation(Protocol):
    """One random augmentation step: ``step(image, mask, rng) -> (image, mask)``.

    ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W) come in and go out; ``rng`` is the only source
    of randomness, so the dataset's ``(seed, index, epoch)`` generator makes every step reproducible.
    """

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


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
        gain = image.new_tensor(rng.uniform(1 - color_jitter, 1 + color_jitter, size=(3, 1, 1)))  # (3, 1, 1)
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


def zoom_pair(
    image: np.ndarray, mask: np.ndarray, zoom: float, *, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Magnify an image and its mask about their centres: the image bilinear, the mask nearest-neighbour.

    ``zoom > 1`` shows the tissue larger (as a scanner with smaller pixels would), ``zoom < 1`` smaller; where the
    output reaches past the input's border, the input is mirrored (the mask with it). Before shrinking, the image
    is blurred by a Gaussian of ``(1 / zoom - 1) / 2`` pixels, so that fine texture does not alias.

    Args:
        image: float (H, W) or (H, W, C).
        mask: integer (H, W) labels (``IGNORE_INDEX`` stays ``IGNORE_INDEX``).
        zoom: magnification, > 0.
        size: (height, width) of the output; default (H, W).

    Returns:
        ``image`` (height, width[, C]) of the input's dtype and ``mask`` (height, width).

    Example:
        >>> big_image, big_mask = zoom_pair(image, mask, 1.25)  # nuclei 25 % wider, same tile size
    """
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ in height and width")
    if not zoom > 0:
        raise ValueError(f"zoom must be > 0, got {zoom!r}")
    height, width = mask.shape
    out_height, out_width = size if size is not None else (height, width)
    # 1) Output pixel i samples the input at (i + 0.5 - out / 2) / zoom + in / 2 - 0.5 (pixel centres, about the
    #    centre), per axis: a diagonal affine map; the channel axis, if any, maps to itself.
    scale = [1.0 / zoom, 1.0 / zoom] + [1.0] * (image.ndim - 2)
    offset = [(0.5 - out_height / 2) / zoom + height / 2 - 0.5, (0.5 - out_width / 2) / zoom + width / 2 - 0.5]
    offset += [0.0] * (image.ndim - 2)
    # 2) Shrinking: blur first, so that no detail finer than the new pixels survives as aliasing.
    if zoom < 1:
        sigma = (1.0 / zoom - 1.0) / 2.0
        image = ndimage.gaussian_filter(image, [sigma, sigma] + [0.0] * (image.ndim - 2), mode="reflect")
    shape = (out_height, out_width) + image.shape[2:]
    zoomed = ndimage.affine_transform(image, scale, offset, output_shape=shape, order=1, mode="reflect")
    zoomed_mask = ndimage.affine_transform(mask, scale[:2], offset[:2], output_shape=(out_height, out_width), order=0,
                                           mode="reflect")
    return zoomed, zoomed_mask


@dataclass(frozen=True)
class RandomZoom:
    """Scale augmentation: magnify image and mask by a random factor in ``[low, high]``, keeping the tile size.

    The factor is drawn log-uniformly, so zooming in by 1.25 is as likely as zooming out by 1 / 1.25. See
    :func:`zoom_pair` for the resampling (image bilinear, mask nearest).

    Example:
        >>> data = TissueDataset(256, augment=True, augmentations=[RandomZoom(0.8, 1.25)])
    """

    low: float = 0.8  # smallest magnification
    high: float = 1.25  # largest magnification

    def __post_init__(self):
        if not 0 < self.low <= self.high:
            raise ValueError(f"RandomZoom needs 0 < low <= high, got low={self.low!r}, high={self.high!r}")

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` float32 (3, H, W) and ``mask`` int64 (H, W), both magnified by the same random factor."""
        import torch  # the image is a tensor: torch is imported already

        zoom = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        pixels, labels = zoom_pair(image.permute(1, 2, 0).numpy(), mask.numpy(), zoom)  # (H, W, 3), (H, W)
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))), torch.from_numpy(labels)
