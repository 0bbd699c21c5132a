"""The input checks every model runs first, so a wrong tensor fails with a message that says how to fix it.

The contract itself is written in :mod:`segtutor.models`.
"""

from __future__ import annotations

import torch

MIN_SIZE = 32  # smallest H and W: UNet pools 4 times, FCN-8s and DeepLabv3 reach stride 32 or 16


def check_channels(in_channels: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``in_channels`` and ``num_classes`` are positive integers."""
    for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_images(images: torch.Tensor, in_channels: int) -> None:
    """Raise a clear error unless ``images`` is a float ``(N, in_channels, H, W)`` tensor with H, W >= 32."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (N, {in_channels}, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        hint = "; add the batch dimension with images.unsqueeze(0)" if images.ndim == 3 else ""
        raise ValueError(f"images must have shape (N, {in_channels}, H, W), got {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point, got {images.dtype}; convert with images.float() / 255")
    if images.shape[1] != in_channels:
        raise ValueError(
            f"this model was built for in_channels={in_channels}, got images with {images.shape[1]} channels "
            f"(shape {tuple(images.shape)}); build it with create_model(..., in_channels={images.shape[1]})"
        )
    height, width = images.shape[-2:]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(
            f"images are {height}x{width} pixels, but the models need H and W >= {MIN_SIZE}; "
            f"pad or resize them to at least {MIN_SIZE}x{MIN_SIZE}"
        )
