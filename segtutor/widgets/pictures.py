"""Pictures in plotly figures: RGB arrays as compact PNG images.

A ``go.Image`` whose ``source`` is a PNG data URI costs a few kilobytes, where the same picture as a ``z`` array
of numbers costs hundreds: live previews send PNGs.
"""

from __future__ import annotations

import base64
import io
import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from segtutor.predict import ImageLike, image_to_tensor


def png_uri(rgb: np.ndarray, *, scale: int = 1) -> str:
    """``rgb`` uint8 ``(H, W, 3)`` (or ``(H, W)`` grey) as a ``data:image/png;base64,...`` URI.

    Args:
        rgb: the picture.
        scale: repeat each pixel ``scale × scale`` times (crisp pixels for tiny pictures such as 3x3 kernels).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise TypeError(f"png_uri needs uint8 pixels, got {rgb.dtype}")
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)  # fast: sent live, not archived
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_trace(rgb: np.ndarray, name: str, *, scale: int = 1) -> go.Image:
    """A ``go.Image`` of ``rgb`` (uint8 ``(H, W, 3)``), hover showing the pixel's row and column."""
    height, width = np.asarray(rgb).shape[:2]
    return go.Image(source=png_uri(rgb, scale=scale), name=name, dx=1 / scale, dy=1 / scale,
                    x0=-0.5 + 0.5 / scale, y0=-0.5 + 0.5 / scale,
                    hovertemplate=f"{name}<br>row %{{y:.0f}}, col %{{x:.0f}}<extra></extra>")  # fmt: skip


def as_rgb(image: ImageLike) -> np.ndarray:
    """Any image segtutor accepts (float tensor ``(C, H, W)``, uint8 array, PIL) as uint8 ``(H, W, 3)``."""
    pixels = image_to_tensor(image)  # (C, H, W) in [0, 1]
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    return (pixels[:3] * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

